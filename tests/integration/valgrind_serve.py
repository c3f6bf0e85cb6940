"""valgrind_serve.py — `keyward serve` start to stop under Valgrind.
Registered by tests/CMakeLists.txt as `valgrind_serve` when
valgrind is installed (not a test_*.py: it runs once, on SQLite).

Runs `valgrind --error-exitcode=1 --leak-check=full
--errors-for-leak-kinds=definite keyward serve` on a temporary database,
sends a handful of requests that touch every layer (personal and project
secret keys: create, use, roll, delete; flags: create, definitions,
remote evaluation; capture; an endpoint run; a leak report; an error or
two), then SIGTERM, and requires exit 0: no invalid read/write, no use of
uninitialised memory, no definitely lost block.  Valgrind slows the server
20-50x, so this stays short."""
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import kwtest

VALGRIND = os.environ.get("VALGRIND") or shutil.which("valgrind")


def main():
    if not VALGRIND:
        print("SKIPPED: valgrind not installed (scripts/deps installs it)")
        sys.exit(kwtest.SKIP_EXIT)
    env = kwtest.Env()
    log = os.path.join(env.dir, "valgrind.log")
    srv = kwtest.Server.__new__(kwtest.Server)
    srv.stderr_path = os.path.join(env.dir, "serve.stderr")
    srv._stderr = open(srv.stderr_path, "wb")
    cmd = [VALGRIND, "--error-exitcode=1", "--leak-check=full",
           "--errors-for-leak-kinds=definite", "--log-file=" + log,
           kwtest.BIN, "serve", "--listen", "127.0.0.1:0", "--db", env.db, "--threads", "2"]
    t0 = time.monotonic()
    srv.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=srv._stderr,
                                stdin=subprocess.DEVNULL)
    srv._stdout_buf = b""
    rc = None
    try:
        line = srv._read_line(120.0)
        m = kwtest.LISTEN_RE.match(line)
        assert m, "unexpected listening line %r" % line
        srv.port = int(m.group(1))
        srv.stopped = False
        print("valgrind: server up after %.1f s" % (time.monotonic() - t0))

        def ok(res, status):
            assert res[0] == status, (res[0], res[2])
            return res[2]

        k, tok, T = env.key, env.token, 60
        made = ok(srv.post("/api/personal_api_keys/", {"label": "vg", "scopes": ["*"]}, key=k,
                           timeout=T), 201)
        ok(srv.get("/api/users/@me/", key=made["value"], timeout=T), 200)
        rolled = ok(srv.post("/api/personal_api_keys/%s/roll/" % made["id"], key=k, timeout=T),
                    200)
        ok(srv.get("/api/projects/1/", key=rolled["value"], timeout=T), 200)
        ok(srv.get("/api/users/@me/", key=made["value"], timeout=T), 401)
        ok(srv.get("/api/users/@me/", key=kwtest.make_key(), timeout=T), 401)
        flag = ok(srv.post("/api/projects/1/feature_flags/", {
            "key": "vg", "filters": {"groups": [{"properties": [], "rollout_percentage": 50}]}},
            key=k, timeout=T), 201)
        ok(srv.patch("/api/projects/1/feature_flags/%d/" % flag["id"], {"active": False}, key=k,
                     timeout=T), 200)
        psk = ok(srv.post("/api/projects/1/project_secret_api_keys/",
                          {"label": "vg", "scopes": ["feature_flag:read", "endpoint:read"]},
                          key=k, timeout=T), 201)
        ok(srv.get("/flags/definitions", key=psk["value"], timeout=T), 200)
        ok(srv.post("/flags?v=2", {"token": tok, "distinct_id": "d1"}, timeout=T), 200)
        ok(srv.post("/decide/", {"token": tok, "distinct_id": "d2"}, timeout=T), 200)
        ok(srv.post("/e/", {"api_key": tok, "event": "signup", "distinct_id": "d1",
                            "properties": {"plan": "pro"}}, timeout=T), 200)
        ok(srv.post("/api/projects/1/endpoints/", {"name": "vg", "query": {
            "kind": "event_counts"}}, key=k, timeout=T), 201)
        ok(srv.get("/api/projects/1/endpoints/vg/run/", key=psk["value"], timeout=T), 200)
        ok(srv.get("/api/projects/1/activity_log/", key=k, timeout=T), 200)
        ok(srv.post("/api/secret_scanning/report/", [{"token": rolled["value"], "type": "t",
                                                       "url": "https://x", "source": "s"}],
                    timeout=T), 200)
        ok(srv.delete("/api/projects/1/project_secret_api_keys/%s/" % psk["id"], key=k,
                      timeout=T), 204)
        ok(srv.post("/api/personal_api_keys/", raw=b"{bad json", key=k, timeout=T), 400)
        ok(srv.get("/nope", timeout=T), 404)
        print("valgrind: 20 requests answered after %.1f s" % (time.monotonic() - t0))
        rc = srv.stop(signal.SIGTERM, 240.0)
    finally:
        if rc is None and srv.proc.poll() is None:
            srv.kill()
    with open(log) as f:
        report = f.read()
    for pat in (r"ERROR SUMMARY: .*", r"All heap blocks were freed.*", r"in use at exit: .*", r"definitely lost: .*", r"indirectly lost: .*",
                r"possibly lost: .*", r"still reachable: .*"):
        m = re.search(pat, report)
        if m:
            print("valgrind: " + m.group(0))
    print("valgrind: exit code %r after %.1f s" % (rc, time.monotonic() - t0))
    env.cleanup()
    if rc != 0:
        print(report[-6000:])
        sys.exit(1)


if __name__ == "__main__":
    main()
