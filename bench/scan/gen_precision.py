#!/usr/bin/env python3
"""Writes the scanner precision corpus: SIZE_MB of realistic code and config
in seven languages (Python, Go, JS/TS, Ruby, YAML, JSON, .env) full of
identifier-like assignments to secret-like names (token=someVariable,
"refresh_token_mode": "cacheRetryPolicy", api_key: getKey(), ...), with
three kinds of planted lines:

  hit      a real-format secret of some rule (provider samples from the
           table in tests/unit/test_scan_rules.c, random generic values);
  miss     a near miss of a provider format (wrong length, alphabet,
           checksum, context), which no provider rule may report;
  clean    everything else, which no rule may report.

Provider samples are the test table's templates, filled here with random
content (same template language as tests/unit/scan_samples.h), so the
corpus covers exactly the rules the unit test covers.  OUT/manifest.tsv
lists every planted line: kind, file, line, rule.  Deterministic (seed).
usage: gen_precision.py OUT SIZE_MB [SEED]"""
import os
import random
import re
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
TABLE = os.path.join(HERE, "..", "..", "tests", "unit", "test_scan_rules.c")
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
ALPHABETS = {
    "A": BASE62, "a": "0123456789abcdef", "U": BASE62[:36], "L": BASE62[10:],
    "l": "0123456789abcdefghijklmnopqrstuvwxyz", "d": "0123456789", "B": BASE62 + "+/",
    "Z": "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L",
}
PLACEHOLDER = re.compile(r"example|xxxx|your_|your-|yourkey|changeme|placeholder|dummy|redacted|"
                         r"sample|insert|1234|abcd|\.\.\.|(.)\1{4}", re.I)
rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 18)


def rand(n, alphabet):
    while True:
        s = "".join(rng.choice(alphabet) for _ in range(n))
        if not PLACEHOLDER.search(s):
            return s


def b64_id(digits):
    import base64
    ident = str(rng.randint(1, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(digits - 1))
    return base64.b64encode(ident.encode()).decode().rstrip("=")


def expand(template):
    out, pos = "", 0
    for m in re.finditer(r"\{([AaULldBZD]):(\d+)\}|\{C\}", template):
        out += template[pos:m.start()]
        pos = m.end()
        if m.group(0) == "{C}":  # base62 CRC32 of the 30 chars before
            crc, digits = zlib.crc32(out[-30:].encode()), ""
            for _ in range(6):
                digits = BASE62[crc % 62] + digits
                crc //= 62
            out += digits
        elif m.group(1) == "D":
            out += b64_id(int(m.group(2)))
        else:
            out += rand(int(m.group(2)), ALPHABETS[m.group(1)])
    return out + template[pos:]


def c_unescape(s):
    return s.replace('\\"', '"').replace("\\\\", "\x00").replace("\\n", "\n").replace("\x00", "\\")


def load_cases():
    text = open(TABLE).read()
    body = text[text.index("CASES[] = {"):text.index("};", text.index("CASES[] = {"))]
    cases = []
    for m in re.finditer(r'\{"([a-z0-9-]+)",\s*((?:"(?:[^"\\]|\\.)*"\s*)+),\s*((?:"(?:[^"\\]|\\.)*"\s*)+)\}',
                         body):
        hit = "".join(c_unescape(x) for x in re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(2)))
        miss = "".join(c_unescape(x) for x in re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(3)))
        cases.append((m.group(1), hit, miss))
    return cases


WORDS = ("user account request response handler config value index buffer session manager "
         "client server cache query result status error message payload timestamp event "
         "project feature flag rollout percentage variant cohort person properties filter "
         "group insight dashboard endpoint retry backoff limit offset count policy refresh "
         "rotate expiry scope audience issuer provider strategy header bearer default "
         "tenant lookup storage bucket region cluster worker queue topic channel billing "
         "invoice customer order payment webhook signing upload download archive").split()
NAMES = ("token access_token refresh_token api_key apiKey auth_key secret client_secret "
         "secret_name password password_hint private_key_path token_type id_token csrf_token "
         "accessToken refreshToken apiToken authToken secretKey").split()


def w():
    return rng.choice(WORDS)


def camel(k=3):
    parts = [w() for _ in range(k)]
    return parts[0] + "".join(p.capitalize() for p in parts[1:])


def pascal(k=3):
    return "".join(w().capitalize() for _ in range(k))


def snake(k=3):
    return "_".join(w() for _ in range(k))


def kebab(k=3):
    return "-".join(w() for _ in range(k))


def compound():
    return rng.choice([camel, pascal, snake, kebab])(rng.randint(2, 4))


def name():
    return rng.choice(NAMES)


# Each entry: (extension, line generator).  Every generator mixes ordinary
# code with assignments of identifiers and word compounds to secret names.
def py():
    return rng.choice([
        lambda: f"    {name()} = self._{snake(2)}(request)",
        lambda: f"    client = {pascal(2)}({name()}={camel(2)}, timeout={rng.randint(1, 90)})",
        lambda: f"    {name()} = settings.{snake(2).upper()}",
        lambda: f'    {name()} = "{compound()}"',
        lambda: f"    {snake(2)} = {w()}.get('{w()}', {rng.randint(0, 999)})",
        lambda: f"def {snake(2)}(self, {w()}, {name()}=None):",
        lambda: f"    if {w()} is None or {w()} > {rng.randint(0, 99)}:",
        lambda: f"        return self.{w()}.{w()}({w()}, {name()}={name()})",
        lambda: f"    log.info(\"{w()} {w()} %s\", {camel(2)})",
        lambda: f"    {name()} = os.environ[\"{snake(2).upper()}\"]",
        lambda: f"    {name()} = {camel(3)}",
        lambda: f"    # {w()} the {w()} before the {w()}",
    ])()


def go():
    return rng.choice([
        lambda: f"\t{camel(2)} := r.Header.Get(\"{pascal(2)}\")",
        lambda: f"\tapiKey := os.Getenv(\"{snake(2).upper()}\")",
        lambda: f"\tcfg.Token = {camel(2)}FromContext(ctx)",
        lambda: f"\t\t{pascal(1)}Secret: \"{kebab(3)}\",",
        lambda: f"\ttoken := {camel(3)}",
        lambda: f"func ({w()[0]} *{pascal(2)}) {pascal(2)}(ctx context.Context, token string) error {{",
        lambda: f"\tif err != nil {{ return fmt.Errorf(\"{w()} {w()}: %w\", err) }}",
        lambda: f"\tsecretName := \"{kebab(2)}\"",
        lambda: f"\t{camel(2)}, err := {w()}.{pascal(2)}(ctx, {camel(2)})",
    ])()


def js():
    return rng.choice([
        lambda: f"const apiKey = process.env.{snake(2).upper()};",
        lambda: f"const token = await {camel(2)}({{ scope: \"{w()}\" }});",
        lambda: f"  headers: {{ \"X-Api-Key\": {camel(2)} }},",
        lambda: f"  accessToken: {camel(3)},",
        lambda: f"  {name()}: \"{compound()}\",",
        lambda: f"export function {camel(2)}({camel(2)}: string, token?: string) {{",
        lambda: f"  const {camel(2)} = {w()}.{camel(2)}({w()}, {rng.randint(0, 99)});",
        lambda: f"  // {w()} the {w()} before the {w()}",
        lambda: f"  {name()} = {camel(2)}.{camel(2)}();",
    ])()


def rb():
    return rng.choice([
        lambda: f"    token = params[:{snake(2)}]",
        lambda: f"    api_key: ENV.fetch(\"{snake(2).upper()}\"),",
        lambda: f"    password_digest = BCrypt::Password.create({w()})",
        lambda: f"  def {snake(2)}({w()}, token: nil)",
        lambda: f"    {name()} = {snake(3)}",
        lambda: f"    {name()} = '{compound()}'",
        lambda: f"    @{w()}.{snake(2)}!({w()}: {rng.randint(0, 99)})",
    ])()


def yaml():
    return rng.choice([
        lambda: f"  refresh_token_mode: {camel(3)}",
        lambda: f"  secret_ref: {kebab(3)}",
        lambda: f"  api_key_name: {snake(3)}",
        lambda: f"  token_cache_policy: \"{pascal(3)}\"",
        lambda: f"  {snake(2)}: {rng.randint(0, 9999)}",
        lambda: f"  - name: {kebab(2)}",
        lambda: f"    secretKeyRef: {{ name: {kebab(2)}, key: {snake(2)} }}",
        lambda: f"  password: ${{{snake(2).upper()}}}",
    ])()


def json_line():
    return rng.choice([
        lambda: f'  "access_token_strategy": "{camel(3)}",',
        lambda: f'  "secretKeyRef": "{kebab(3)}",',
        lambda: f'  "{camel(2)}": {rng.randint(0, 9999)},',
        lambda: f'  "{name()}": "{compound()}",',
        lambda: f'  "{w()}": ["{w()}", "{w()}"],',
    ])()


def env():
    return rng.choice([
        lambda: "API_TOKEN_HEADER=X-Api-Token",
        lambda: f"SECRET_BACKEND={snake(2)}",
        lambda: f"PASSWORD_MIN_LENGTH={rng.randint(8, 20)}",
        lambda: f"TOKEN_AUDIENCE={kebab(3)}",
        lambda: f"{snake(2).upper()}={w()}",
        lambda: f"ACCESS_TOKEN_ISSUER={pascal(3)}",
    ])()


LANGS = [(".py", py), (".go", go), (".ts", js), (".js", js), (".rb", rb), (".yaml", yaml),
         (".json", json_line), (".env", env)]
GENERIC_HITS = [
    'client_secret: "{A:24}"', "SESSION_SECRET={A:32}", "api_key = '{A:28}'",
    '  "password": "{B:20}",', "export AUTH_TOKEN={a:40}", 'const client = new Client({ apiKey: "{A:28}" });',
]


def main():
    out, size_mb = sys.argv[1], int(sys.argv[2])
    cases = load_cases()
    tree = os.path.join(out, "tree")
    os.makedirs(tree, exist_ok=True)
    pools = {ext: [gen() + "\n" for _ in range(6000)] for ext, gen in LANGS}
    manifest = open(os.path.join(out, "manifest.tsv"), "w")
    target, written, index = size_mb << 20, 0, 0
    counts = {"hit": 0, "miss": 0}
    while written < target:
        ext, _ = rng.choice(LANGS)
        size = rng.randint(4, 128) << 10
        lines, n = [], 0
        pool = pools[ext]
        while n < size:
            line = rng.choice(pool)
            lines.append(line)
            n += len(line)
        rel = os.path.join(f"pkg{index % 64:02d}", f"file_{index:05d}{ext}")
        # plant about one hit and one near miss per 24 KiB
        planted = {}
        for _ in range(max(1, size // (24 << 10))):
            rule, hit, miss = rng.choice(cases)
            hit_rule = rule
            if rng.random() < 0.15:
                hit_rule, hit = "generic-secret-assignment", rng.choice(GENERIC_HITS)
            for kind, template, rule in (("hit", hit, hit_rule), ("miss", miss, rule)):
                at = rng.randrange(len(lines))
                while at in planted:
                    at = rng.randrange(len(lines))
                text = expand(template)
                # a sample spanning lines (a PEM block) counts at its first line
                lines[at] = text if text.endswith("\n") else text + "\n"
                planted[at] = (kind, rule)
        text = "".join(lines)
        path = os.path.join(tree, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        line_no, at_line = 1, {}
        for i, l in enumerate(lines):
            at_line[i] = line_no
            line_no += l.count("\n")
        for i, (kind, rule) in sorted(planted.items()):
            manifest.write(f"{kind}\t{rel}\t{at_line[i]}\t{rule}\t{line_count(lines[i])}\n")
            counts[kind] += 1
        written += len(text)
        index += 1
    manifest.close()
    print(f"files={index} bytes={written} hits={counts['hit']} misses={counts['miss']} "
          f"rules={len(set(c[0] for c in cases))}")


def line_count(text):
    return text.count("\n")


main()
