#!/usr/bin/env python3
"""flood.py — do unauthenticated legacy-key guesses slow down valid callers?

An imported PostHog key may be stored as pbkdf2_sha256, and checking a
made-up legacy-length phx_ against that form costs two PBKDF2 runs.  This
starts one `keyward serve` (SQLite, in a temporary directory) holding such a
row, then measures the latency of valid requests (GET /api/users/@me/ with a
current-format key, one client, sequential) twice in the same run: with the
server otherwise idle, and while FLOODERS clients send made-up phx_ keys
with 20-53-character bodies as fast as the server answers them.  It prints
both p50/p90/p99, the p90 ratio, and what the flood got back (429 = the
legacy-check budget was spent, 401 = checked and refused).

    python3 bench/flood.py [--requests N] [--flooders K] [--threads T] [--kind K]

--kind current floods made-up keys of keyward's own (checksummed) format
instead, which cost no PBKDF2: the cost of the flood's request volume
alone, for comparison.

The binary is $KEYWARD_BIN or build/keyward.  Loopback only.
"""
import argparse
import http.client
import os
import secrets
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
import kwtest  # noqa: E402

BASE62 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def made_up_legacy_key():
    n = 20 + secrets.randbelow(34)  # 20..53 characters after the prefix
    return "phx_" + "".join(secrets.choice(BASE62) for _ in range(n))


def pct(sorted_values, p):
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, int(round(p / 100.0 * (len(sorted_values) - 1))))
    return sorted_values[i]


def measure(port, key, n):
    """Latencies (s) of n sequential valid requests on one keep-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    out, failures = [], 0
    for _ in range(n):
        t0 = time.perf_counter()
        conn.request("GET", "/api/users/@me/", headers={"Authorization": "Bearer " + key})
        resp = conn.getresponse()
        resp.read()
        out.append(time.perf_counter() - t0)
        if resp.status != 200:
            failures += 1
    conn.close()
    return sorted(out), failures


def made_up_current_key():
    return kwtest.make_key("phx_")


def flooder(port, stop, counts, lock, make):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    local = {}
    while not stop.is_set():
        try:
            conn.request("GET", "/api/users/@me/",
                         headers={"Authorization": "Bearer " + make()})
            resp = conn.getresponse()
            resp.read()
            local[resp.status] = local.get(resp.status, 0) + 1
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.close()
    with lock:
        for k, v in local.items():
            counts[k] = counts.get(k, 0) + v


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=400, help="valid requests per phase")
    ap.add_argument("--flooders", type=int, default=4, help="flooding clients")
    ap.add_argument("--threads", type=int, default=0, help="server threads (default: its own)")
    ap.add_argument("--kind", choices=("legacy", "current"), default="legacy",
                    help="made-up keys to flood with (default legacy)")
    args = ap.parse_args()

    env = kwtest.Env()
    try:
        imported = kwtest.legacy_key(45)
        env.add_legacy_key(env.user_a, imported, kwtest.pbkdf2_secure(imported, 260000))
        extra = ["--threads", str(args.threads)] if args.threads else []
        srv = kwtest.Server(env.db, env.dir, extra)
        try:
            measure(srv.port, env.key, 50)  # warm the cache and the connection path
            idle, idle_fail = measure(srv.port, env.key, args.requests)

            stop, lock, counts = threading.Event(), threading.Lock(), {}
            make = made_up_legacy_key if args.kind == "legacy" else made_up_current_key
            threads = [threading.Thread(target=flooder, args=(srv.port, stop, counts, lock, make))
                       for _ in range(args.flooders)]
            for t in threads:
                t.start()
            time.sleep(1.0)  # let the flood spend whatever budget there is
            t0 = time.monotonic()
            flood, flood_fail = measure(srv.port, env.key, args.requests)
            seconds = time.monotonic() - t0
            stop.set()
            for t in threads:
                t.join()
        finally:
            srv.stop()
    finally:
        env.cleanup()

    ms = lambda v: v * 1000.0  # noqa: E731
    print("valid requests: %d per phase, %d flooding clients (%s keys), pbkdf2 row present"
          % (args.requests, args.flooders, args.kind))
    print("idle : p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  (non-200: %d)"
          % (ms(pct(idle, 50)), ms(pct(idle, 90)), ms(pct(idle, 99)), idle_fail))
    print("flood: p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  (non-200: %d)"
          % (ms(pct(flood, 50)), ms(pct(flood, 90)), ms(pct(flood, 99)), flood_fail))
    print("p90 ratio flood/idle: %.2f" % (pct(flood, 90) / pct(idle, 90)))
    total = sum(counts.values())
    print("flood answers over %.1f s: %s (%d requests, %.0f/s)"
          % (seconds + 1.0, ", ".join("%d x%d" % (k, v) for k, v in sorted(counts.items())),
             total, total / (seconds + 1.0)))
    return 1 if idle_fail or flood_fail else 0


if __name__ == "__main__":
    sys.exit(main())
