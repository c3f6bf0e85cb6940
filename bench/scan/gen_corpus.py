#!/usr/bin/env python3
"""Writes the scanner benchmark corpus: SIZE_MB of source-like text split
into files of 4-256 KiB under OUT/tree/, plus one log-like file OUT/log.txt
of the same size for the redact benchmark.  A handful of real-format keys
(valid keyward checksums) and AWS ids are planted; the count is printed so
the bench can check every tool found them.  Deterministic (fixed seed).
usage: gen_corpus.py OUT SIZE_MB"""
import os
import random
import sys
import zlib

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
rng = random.Random(7)

WORDS = ("user account request response handler config value index buffer token_count "
         "session manager client server cache query result status error message payload "
         "timestamp event project feature flag rollout percentage variant cohort person "
         "distinct_id properties filter groups insight dashboard secret_name password_hint "
         "api endpoint retry backoff limit offset count next previous results").split()
TEMPLATES = [
    "    {a} = {b}.get('{c}', {n})",
    "def {a}_{b}(self, {c}, {d}=None):",
    "    return self.{a}.{b}({c}, {d})",
    "    if {a} is None or {b} > {n}:",
    "const {a}{B} = await {b}.{c}({{ {d}: {n} }});",
    "  // {a} the {b} before the {c} is {d}",
    "# {a}: {b} {c} {d} {n}",
    "{a}_{b}: {n}",
    "    log.info(\"{a} {b} %s %d\", {c}, {n})",
    "SELECT {a}, {b} FROM {c} WHERE {d} = {n};",
    "  \"{a}\": \"{b}-{c}-{n}\",",
    "    for {a} in range({n}):",
    "2024-06-0{m} 12:{n2}:{n2} INFO {a}.{b} GET /api/projects/{n}/{c}/ 200 {n}ms",
]


def keyward_key(prefix):
    body = "".join(rng.choice(BASE62) for _ in range(48))
    crc = zlib.crc32((prefix + body).encode())
    digits = ""
    for _ in range(6):
        digits = BASE62[crc % 62] + digits
        crc //= 62
    return prefix + body + digits


def make_line():
    w = lambda: rng.choice(WORDS)
    return rng.choice(TEMPLATES).format(a=w(), b=w(), c=w(), d=w(), B=w().capitalize(),
                                        n=rng.randint(0, 99999), n2=rng.randint(10, 59),
                                        m=rng.randint(1, 9)) + "\n"


def main():
    out, size_mb = sys.argv[1], int(sys.argv[2])
    pool = [make_line() for _ in range(20000)]
    tree = os.path.join(out, "tree")
    os.makedirs(tree, exist_ok=True)
    target = size_mb << 20
    planted = 0
    written = 0
    index = 0
    log = open(os.path.join(out, "log.txt"), "w")
    while written < target:
        size = rng.randint(4, 256) << 10
        lines = []
        n = 0
        while n < size:
            line = rng.choice(pool)
            lines.append(line)
            n += len(line)
        if index % 97 == 0:
            lines.insert(rng.randrange(len(lines)), f"    api = Client('{keyward_key('phx_')}')\n")
            planted += 1
        text = "".join(lines)
        sub = os.path.join(tree, f"pkg{index % 64:02d}")
        os.makedirs(sub, exist_ok=True)
        with open(os.path.join(sub, f"module_{index:05d}.py"), "w") as f:
            f.write(text)
        log.write(text)
        written += len(text)
        index += 1
    log.close()
    print(f"files={index} bytes={written} planted={planted}")


main()
