#!/usr/bin/env python3
"""Checks that two keyward binaries give the same `scan` and `redact`
output: on the bench corpus's log file, and on a generated secret-dense
file (assignments of every shape the generic rule knows, high- and
low-entropy values, keys, PEM blocks, long lines) repeated with the
test fixture corpus.  Use it after changing the engine or the redactor.
usage: equiv.py OLD_BIN NEW_BIN [LOG_FILE]
Exit status 0 when every output is byte-identical."""
import os
import random
import subprocess
import sys
import tempfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "..", "tests", "fixtures", "scan", "corpus")
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
rng = random.Random(11)


def key(prefix):
    body = "".join(rng.choice(BASE62) for _ in range(48))
    crc = zlib.crc32((prefix + body).encode())
    digits = ""
    for _ in range(6):
        digits = BASE62[crc % 62] + digits
        crc //= 62
    return prefix + body + digits


NAMES = ["token", "TOKEN", "apiKey", "api_key", "API-KEY", "access_key", "authKey", "secret",
         "client_secret", "clientSecret", "password", "PASSWD", "pwd", "private_key",
         "db_password_for_the_main_replica", "token_count", "secret_name", "x_token.value",
         "mytoken", "passwordHint", "aws_secret_access_key", "AWS_SK"]
SEPS = ["=", ":", ":=", "=>", " = ", ": ", "\t=\t", "    =", "==", " := "]
QUOTES = ["", '"', "'", "`"]
VALUE_CHARS = BASE62 + "/+_.~!@#%^&*-"


def value():
    kind = rng.randrange(8)
    n = rng.choice([5, 11, 12, 13, 16, 24, 40, 64, 199, 200, 201, 300])
    if kind == 0:
        return "".join(rng.choice(BASE62) for _ in range(n))
    if kind == 1:
        return "".join(rng.choice(VALUE_CHARS) for _ in range(n))
    if kind == 2:
        return "".join(rng.choice("abcdefghij") for _ in range(n))
    if kind == 3:
        return rng.choice(["${DB_PASSWORD}", "<your api key>", "changeme_changeme", "get_token()",
                           "self.password", "https://user:pw@host/x", "user-client-123",
                           "DEFAULT_VALUE_HERE", "example-Key-1234"])
    if kind == 4:
        return key(rng.choice(["phx_", "phs_", "phc_"]))
    if kind == 5:
        return "AKIA" + "".join(rng.choice(BASE62[:36]) for _ in range(16))
    if kind == 6:
        return "".join(rng.choice(BASE62 + "/+") for _ in range(40))
    return "".join(rng.choice(BASE62) for _ in range(n)) + rng.choice([",", ";", ")", " x", ""])


def dense_text(lines):
    out = []
    for _ in range(lines):
        q = rng.choice(QUOTES)
        nq = rng.choice(["", '"', "'"])
        line = f"{rng.choice(['', '  ', 'x.', 'let '])}{nq}{rng.choice(NAMES)}{nq}" \
               f"{rng.choice(SEPS)}{q}{value()}{q}"
        if rng.random() < 0.05:
            line += " keyward:allow"
        if rng.random() < 0.02:
            line = "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(
                "".join(rng.choice(BASE62 + "+/") for _ in range(64)) for _ in range(4)) + \
                ("\n-----END RSA PRIVATE KEY-----" if rng.random() < 0.8 else "")
        if rng.random() < 0.001:
            line = "y" * rng.randrange(1000, 3 << 20) + " " + line
        out.append(line)
    return "\n".join(out) + "\n"


def fixture_text():
    parts = []
    for root, _, files in sorted(os.walk(FIXTURES)):
        for f in sorted(files):
            with open(os.path.join(root, f), "rb") as fh:
                data = fh.read()
            if b"\0" not in data[:8192]:
                parts.append(data)
    return b"".join(parts)


def run(binary, args, data):
    r = subprocess.run([binary] + args, input=data, capture_output=True)
    return r.returncode, r.stdout


def main():
    if sys.argv[1] == "--dump":  # the generated input, to look at
        sys.stdout.buffer.write(dense_text(20000).encode() + fixture_text() * 50)
        return
    old, new = sys.argv[1], sys.argv[2]
    inputs = [("dense", dense_text(20000).encode() + fixture_text() * 50)]
    if len(sys.argv) > 3:
        with open(sys.argv[3], "rb") as f:
            inputs.append((os.path.basename(sys.argv[3]), f.read()))
    bad = 0
    for name, data in inputs:
        for args in (["redact"], ["scan", "-"], ["scan", "--format", "json", "-"]):
            a, b = run(old, args, data), run(new, args, data)
            same = a == b
            bad += not same
            print(f"{name:10s} {len(data) / 1e6:7.1f} MB  {' '.join(args):24s} "
                  f"{'same' if same else 'DIFFERENT'} (exit {a[0]}/{b[0]}, "
                  f"{len(a[1])}/{len(b[1])} bytes out)")
    with tempfile.TemporaryDirectory() as d:  # redact output fed in small reads
        path = os.path.join(d, "in")
        with open(path, "wb") as f:
            f.write(inputs[0][1][:4 << 20])
        outs = [subprocess.run(f"dd if={path} bs=4093 status=none | {b} redact", shell=True,
                               capture_output=True).stdout for b in (old, new)]
        same = outs[0] == outs[1]
        bad += not same
        print(f"{'dense/4093':10s} {4.2:7.1f} MB  {'redact (4093-byte pipe)':24s} "
              f"{'same' if same else 'DIFFERENT'}")
    sys.exit(1 if bad else 0)


main()
