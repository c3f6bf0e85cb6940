"""Load and soak, bounded.

Mixed traffic from several client threads on loopback for
KEYWARD_SOAK_SECONDS (30 by default): verification-heavy execution routes
(flag definitions with phs_, POST /flags?v=2 with phc_, /api/users/@me/ with
phx_) and admin writes (flag PATCH, personal and project secret key create
and delete).  Requires 0 errors (no 5xx, no unexpected status, no connection
error), RSS growth under 5 % between the 1/3 mark and the end, and a flat
open-fd count.  Then, when wrk is installed, a short wrk phase at saturation.

Slow clients: 200 connections that send half a request and stall must not
starve a normal client (each of its requests answered within 1 s), and the
server must close them after its connection timeout (`--conn-timeout`,
short here)."""
import http.client
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import threading
import time

import kwtest
from kwtest import KWTestCase

SOAK_SECONDS = float(os.environ.get("KEYWARD_SOAK_SECONDS", "30"))
CLIENTS = int(os.environ.get("KEYWARD_SOAK_CLIENTS", "6"))
CONN_TIMEOUT = 3       # seconds, passed as --conn-timeout
SLOW_CLIENTS = 200


def proc_rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


def proc_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


class Client:
    """One keep-alive connection; reconnects after an error (counted)."""

    def __init__(self, port):
        self.port = port
        self.conn = None

    def request(self, method, path, key=None, body=None):
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        h = {}
        data = None
        if key:
            h["Authorization"] = "Bearer " + key
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        try:
            self.conn.request(method, path, body=data, headers=h)
            resp = self.conn.getresponse()
            text = resp.read()
            return resp.status, text
        except (OSError, http.client.HTTPException):
            self.close()
            raise

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class TestSoak(KWTestCase):
    def start_server(self):
        self.srv = kwtest.Server(self.env.db, self.env.dir,
                                 ["--conn-timeout", str(CONN_TIMEOUT)])
        self.addCleanup(self._stop_server, self.srv)
        return self.srv

    def setUp(self):
        super().setUp()
        s, k = self.srv, self.key
        self.flags = []
        for i in range(CLIENTS):
            f = self.assertStatus(s.post("/api/projects/1/feature_flags/", {
                "key": "soak-%d" % i, "filters": {"groups": [{"properties": [],
                                                              "rollout_percentage": 50}]}},
                key=k), 201)
            self.flags.append(f["id"])
        self.phs = self.assertStatus(s.post("/api/projects/1/project_secret_api_keys/",
                                            {"label": "soak", "scopes": ["feature_flag:read"]},
                                            key=k), 201)["value"]
        self.pid = self.srv.proc.pid

    # ------------------------------------------------------------------

    def worker(self, idx, stop, stats, lock):
        rng = random.Random(1000 + idx)
        c = Client(self.srv.port)
        n = errors = 0
        problems = []
        key_ops = 0
        try:
            while not stop.is_set():
                r = rng.random()
                try:
                    if r < 0.35:
                        st, _ = c.request("GET", "/flags/definitions", key=self.phs)
                        ok = st in (200, 304)
                    elif r < 0.65:
                        st, _ = c.request("POST", "/flags?v=2",
                                          body={"token": self.token,
                                                "distinct_id": "u%d" % rng.randrange(10 ** 6)})
                        ok = st == 200
                    elif r < 0.85:
                        st, _ = c.request("GET", "/api/users/@me/", key=self.key)
                        ok = st == 200
                    elif r < 0.93:
                        st, _ = c.request("PATCH", "/api/projects/1/feature_flags/%d/"
                                          % self.flags[idx],
                                          key=self.key,
                                          body={"active": bool(rng.randrange(2))})
                        ok = st == 200
                    elif r < 0.97:
                        # Personal keys: at most CLIENTS alive at once (< 10).
                        st, text = c.request("POST", "/api/personal_api_keys/", key=self.key,
                                             body={"label": "soak %d %d" % (idx, key_ops),
                                                   "scopes": ["user:read"]})
                        ok = st == 201
                        if ok:
                            made = json.loads(text)
                            st2, _ = c.request("GET", "/api/users/@me/", key=made["value"])
                            st3, _ = c.request("DELETE", "/api/personal_api_keys/%s/"
                                               % made["id"], key=self.key)
                            ok = st2 == 200 and st3 == 204
                            st = (st, st2, st3)
                            n += 2
                        key_ops += 1
                    else:
                        st, text = c.request("POST", "/api/projects/1/project_secret_api_keys/",
                                             key=self.key,
                                             body={"label": "soak %d %d" % (idx, key_ops),
                                                   "scopes": ["feature_flag:read"]})
                        ok = st == 201
                        if ok:
                            made = json.loads(text)
                            st2, _ = c.request("GET", "/flags/definitions", key=made["value"])
                            st3, _ = c.request("DELETE",
                                               "/api/projects/1/project_secret_api_keys/%s/"
                                               % made["id"], key=self.key)
                            ok = st2 == 200 and st3 == 204
                            st = (st, st2, st3)
                            n += 2
                        key_ops += 1
                    n += 1
                    if not ok:
                        errors += 1
                        if len(problems) < 5:
                            problems.append(("status", r, st))
                except (OSError, http.client.HTTPException) as e:
                    n += 1
                    errors += 1
                    if len(problems) < 5:
                        problems.append(("exception", repr(e)))
        finally:
            c.close()
        with lock:
            stats["requests"] += n
            stats["errors"] += errors
            stats["problems"] += problems

    def test_mixed_traffic(self):
        stop = threading.Event()
        lock = threading.Lock()
        stats = {"requests": 0, "errors": 0, "problems": []}
        fd_before = proc_fds(self.pid)
        threads = [threading.Thread(target=self.worker, args=(i, stop, stats, lock))
                   for i in range(CLIENTS)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        try:
            time.sleep(SOAK_SECONDS / 3)
            rss_third, fd_third = proc_rss_kb(self.pid), proc_fds(self.pid)
            samples = []
            while time.monotonic() - t0 < SOAK_SECONDS:
                time.sleep(min(1.0, max(0.0, SOAK_SECONDS - (time.monotonic() - t0))))
                samples.append((proc_rss_kb(self.pid), proc_fds(self.pid)))
            rss_end, fd_end = proc_rss_kb(self.pid), proc_fds(self.pid)
            if os.environ.get("KEYWARD_SOAK_TRACE"):
                print("\nRSS samples (kB, 1 s apart):", [s[0] for s in samples])
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        elapsed = time.monotonic() - t0
        # After the clients closed their connections the server gives the
        # descriptors back (bounded wait: closing is asynchronous).
        fd_after = self.poll(lambda: proc_fds(self.pid) <= fd_before + 1 and proc_fds(self.pid),
                             timeout=5.0) or proc_fds(self.pid)
        growth = (rss_end - rss_third) / rss_third * 100.0
        print("\nsoak: %d clients, %.1f s, %d requests (%.0f req/s), %d errors"
              % (CLIENTS, elapsed, stats["requests"], stats["requests"] / elapsed,
                 stats["errors"]))
        print("soak: RSS %d kB at 1/3, %d kB at end (growth %+.2f %%), max %d kB"
              % (rss_third, rss_end, growth, max(s[0] for s in samples)))
        print("soak: fds %d before, %d at 1/3, %d at end, %d after the clients left "
              "(range during the last 2/3: %d-%d)"
              % (fd_before, fd_third, fd_end, fd_after, min(s[1] for s in samples),
                 max(s[1] for s in samples)))
        self.assertEqual(stats["errors"], 0, stats["problems"])
        self.assertGreater(stats["requests"], 100 * SOAK_SECONDS / 30)
        if os.environ.get("KEYWARD_SANITIZED"):
            # AddressSanitizer holds freed memory in its quarantine (256 MB by
            # default), so RSS grows by design there; the flat-memory check
            # is the normal build's.  Errors and descriptors still count.
            print("soak: sanitizer build: RSS growth not asserted")
        else:
            self.assertLess(growth, 5.0)
        # Each client holds one keep-alive connection: the count may move by
        # that much, and must come back once they are gone.
        self.assertLessEqual(fd_end, fd_third + CLIENTS)
        self.assertLessEqual(fd_after, fd_before + 1)
        self.assertIsNone(self.srv.proc.poll())

    # ------------------------------------------------------------------

    def test_wrk_phase(self):
        wrk = shutil.which("wrk")
        if not wrk:
            self.skipTest("wrk not installed (scripts/deps installs it)")
        rss0, fd0 = proc_rss_kb(self.pid), proc_fds(self.pid)
        results = {}
        for name, args in (
                ("definitions (phs_)", ["-H", "Authorization: Bearer " + self.phs,
                                         "http://127.0.0.1:%d/flags/definitions" % self.srv.port]),
                ("users/@me (phx_)", ["-H", "Authorization: Bearer " + self.key,
                                       "http://127.0.0.1:%d/api/users/@me/" % self.srv.port])):
            proc = subprocess.run([wrk, "-t2", "-c32", "-d4s"] + args, capture_output=True,
                                  text=True, timeout=60)
            out = proc.stdout
            self.assertEqual(proc.returncode, 0, out + proc.stderr)
            rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
            total = int(re.search(r"(\d+) requests in", out).group(1))
            results[name] = (total, rps)
            print("\nwrk -t2 -c32 -d4s %s: %d requests, %.0f req/s" % (name, total, rps))
            self.assertNotIn("Non-2xx", out, out)
            self.assertNotIn("Socket errors", out, out)
            self.assertGreater(total, 0)
        fd1 = self.poll(lambda: proc_fds(self.pid) <= fd0 + 1 and proc_fds(self.pid),
                        timeout=5.0) or proc_fds(self.pid)
        print("wrk: RSS %d -> %d kB, fds %d -> %d" % (rss0, proc_rss_kb(self.pid), fd0, fd1))
        self.assertLessEqual(fd1, fd0 + 1)
        self.assertStatus(self.srv.get("/_health"), 200)

    # ------------------------------------------------------------------

    def test_slow_clients(self):
        fd0 = proc_fds(self.pid)
        stalled = []
        try:
            for i in range(SLOW_CLIENTS):
                s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=5)
                # Half a request: the header block never ends.
                s.sendall(b"GET /api/users/@me/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bea")
                stalled.append(s)
            opened = time.monotonic()
            # A normal client is served while they stall.
            lat = []
            for i in range(20):
                t = time.monotonic()
                st, _, _ = self.srv.get("/api/users/@me/", key=self.key, timeout=5)
                lat.append(time.monotonic() - t)
                self.assertEqual(st, 200)
                st, _, _ = self.srv.get("/flags/definitions", key=self.phs, timeout=5)
                self.assertEqual(st, 200)
            fd_stalled = proc_fds(self.pid)
            print("\nslow clients: %d stalled connections, server fds %d -> %d; normal client "
                  "latency median %.1f ms, max %.1f ms (20 requests)"
                  % (SLOW_CLIENTS, fd0, fd_stalled, statistics.median(lat) * 1000,
                     max(lat) * 1000))
            self.assertLess(max(lat), 1.0)
            self.assertGreaterEqual(fd_stalled, fd0 + SLOW_CLIENTS // 2)
            # The server closes them after its timeout (bounded wait).
            closed_at = []
            for s in stalled:
                left = max(0.1, opened + CONN_TIMEOUT * 5 - time.monotonic())
                s.settimeout(left)
                try:
                    data = s.recv(4096)
                except ConnectionResetError:
                    data = b""
                except socket.timeout:
                    data = None
                if data is not None:
                    # A close, possibly after an error status line.
                    if data:
                        self.assertTrue(data.startswith(b"HTTP/1.1 "), data[:100])
                        try:
                            while s.recv(4096):
                                pass
                        except (ConnectionResetError, socket.timeout):
                            pass
                    closed_at.append(time.monotonic() - opened)
            print("slow clients: %d of %d closed by the server, last after %.1f s "
                  "(--conn-timeout %d)" % (len(closed_at), SLOW_CLIENTS,
                                           max(closed_at) if closed_at else -1, CONN_TIMEOUT))
            self.assertEqual(len(closed_at), SLOW_CLIENTS)
            self.assertGreaterEqual(min(closed_at), CONN_TIMEOUT * 0.5)
        finally:
            for s in stalled:
                s.close()
        fd1 = self.poll(lambda: proc_fds(self.pid) <= fd0 + 1 and proc_fds(self.pid),
                        timeout=5.0) or proc_fds(self.pid)
        print("slow clients: server fds back to %d" % fd1)
        self.assertLessEqual(fd1, fd0 + 1)
        self.assertStatus(self.srv.get("/api/users/@me/", key=self.key), 200)


if __name__ == "__main__":
    kwtest.main()
