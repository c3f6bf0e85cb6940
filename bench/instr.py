#!/usr/bin/env python3
"""bench/instr.py — instructions per request, keyward's routes against the
hello-world reference returning as many bytes, counted by callgrind.

Wall-clock ratios (bench/run) are what users feel, but on a shared, noisy
machine a 20 % change hides in the noise.  Instruction counts do not move
with the neighbours: each server runs under valgrind's callgrind, which
counts every instruction executed in user space (not the kernel's share:
syscalls, copies to the socket — the same for both servers when the bytes
are the same).  Each case runs twice, with SMALL and LARGE requests on one
keep-alive connection; the difference divided by LARGE - SMALL is the
marginal cost of one request, free of start-up (keyward hashes a dummy
password with argon2 at start).  The ratio hello/keyward is the share of a
hello-world's speed keyward could reach if instructions were all that
counted — an upper bound for the wall-clock ratio, and the figure that
shows whether a change made a route cheaper.

usage: bench/instr.py BUILD_DIR [--hello PATH] [--small N] [--large N] [--flags N] [--out FILE]
                       [--only TEXT] [--profile FILE]
  BUILD_DIR holds keyward and bench/kw_bench_hello (any build type; Release
  for figures to report); --hello takes the reference from elsewhere (an
  older build's keyward against today's reference).  Only loopback
  addresses are used.
"""
import argparse
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import flagset  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(port):
    for _ in range(600):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            c.request("GET", "/_health")
            c.getresponse().read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server on port %d did not come up" % port)


def send(port, method, path, headers, body, n):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    size = 0
    for _ in range(n):
        c.request(method, path, body=body, headers=headers)
        r = c.getresponse()
        data = r.read()
        if r.status != 200:
            raise RuntimeError("%s %s answered %d: %s" % (method, path, r.status, data[:200]))
        size = len(data)
    return size


def counted(cmd, port, method, path, headers, body, n, tmp, keep=None):
    """Total instructions of a server run that answered n requests (its
    callgrind output kept as `keep` when given)."""
    out = keep or os.path.join(tmp, "cg.%d.out" % port)
    proc = subprocess.Popen(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out] + cmd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_up(port)
        size = send(port, method, path, headers, body, n)
    finally:
        proc.terminate()
        proc.wait(timeout=120)
    with open(out) as f:
        total = next(int(line.split()[1]) for line in f if line.startswith("summary:"))
    if not keep:
        os.unlink(out)
    return total, size


def per_request(make_cmd, method, path, headers, body, small, large, tmp, keep=None):
    port = free_port()
    a, size = counted(make_cmd(port), port, method, path, headers, body, small, tmp)
    port = free_port()
    b, _ = counted(make_cmd(port), port, method, path, headers, body, large, tmp, keep)
    return (b - a) / (large - small), size


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--hello")
    ap.add_argument("--small", type=int, default=50)
    ap.add_argument("--large", type=int, default=250)
    ap.add_argument("--flags", type=int, default=20)
    ap.add_argument("--out")
    ap.add_argument("--only", help="run only the cases whose name contains this text")
    ap.add_argument("--profile", help="keep keyward's callgrind output of the LARGE run here "
                                      "(for callgrind_annotate)")
    args = ap.parse_args()
    keyward = os.path.join(args.build, "keyward")
    hello = args.hello or os.path.join(args.build, "bench", "kw_bench_hello")
    tmp = tempfile.mkdtemp(prefix="kw-instr-")
    db = os.path.join(tmp, "instr.db")
    out = subprocess.run([keyward, "init", "--email", "instr@example.com", "--db", db],
                         check=True, capture_output=True, text=True).stdout
    phx = re.search(r"phx_[0-9A-Za-z]+", out).group(0)
    phc = re.search(r"phc_[0-9A-Za-z]+", out).group(0)
    port = free_port()
    setup = subprocess.Popen([keyward, "serve", "--listen", "127.0.0.1:%d" % port, "--db", db],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_up(port)
        base = "http://127.0.0.1:%d" % port
        flagset.create(base, phx, 1, args.flags)
        req = urllib_post(base + "/api/projects/1/project_secret_api_keys/", phx,
                          {"label": "instr", "scopes": ["feature_flag:read"]})
        phs = req["value"]
    finally:
        setup.terminate()
        setup.wait(timeout=30)

    def kw_cmd(port):
        return [keyward, "serve", "--listen", "127.0.0.1:%d" % port, "--db", db, "--threads", "2"]

    auth = {"Authorization": "Bearer " + phx}
    json_h = {"Content-Type": "application/json"}
    cases = [
        ("GET /_health", "GET", "/_health", {}, None),
        ("phs_ GET /flags/definitions (%d flags)" % args.flags, "GET",
         "/flags/definitions?token=" + phc, {"Authorization": "Bearer " + phs}, None),
        ("POST /flags?v=2 (%d flags)" % args.flags, "POST", "/flags/?v=2", json_h,
         flagset.flags_body(phc)),
        ("POST /decide?v=4 (%d flags)" % args.flags, "POST", "/decide/?v=4", json_h,
         flagset.flags_body(phc)),
        ("phx_ GET /api/users/@me/", "GET", "/api/users/@me/", auth, None),
        ("phx_ GET feature flag list (%d flags)" % args.flags, "GET",
         "/api/projects/1/feature_flags/", auth, None),
        # One request at a time on one connection: each is its own group
        # commit, so this counts a capture's whole cost, commit included.
        ("POST /batch/ (1 event)", "POST", "/batch/", json_h,
         json.dumps({"api_key": phc, "batch": [{"event": "instr", "distinct_id": "user-42",
                                                "properties": {"plan": "pro"}}]})),
        ("POST /batch/ (50 events)", "POST", "/batch/", json_h,
         json.dumps({"api_key": phc, "batch": [{"event": "instr", "distinct_id": "user-%d" % i,
                                                "properties": {"plan": "pro", "i": i}}
                                               for i in range(50)]}, separators=(",", ":"))),
    ]
    rows = ["| route | body bytes | hello instr/req | keyward instr/req | hello/keyward |",
            "|---|---:|---:|---:|---:|"]
    for name, method, path, headers, body in cases:
        if args.only and args.only not in name:
            continue
        kw, size = per_request(kw_cmd, method, path, headers, body, args.small, args.large, tmp,
                               args.profile)

        def hello_cmd(port, size=size):
            return [hello, "--listen", "127.0.0.1:%d" % port, "--threads", "2",
                    "--body-bytes", str(size)]

        hw, _ = per_request(hello_cmd, method, path, headers, body, args.small, args.large, tmp)
        rows.append("| %s | %d | %.0f | %.0f | %.2f |" % (name, size, hw, kw, hw / kw))
        print(rows[-1], file=sys.stderr)
    text = "\n".join(rows) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


def urllib_post(url, key, body):
    import urllib.request
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Authorization": "Bearer " + key,
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


if __name__ == "__main__":
    main()
