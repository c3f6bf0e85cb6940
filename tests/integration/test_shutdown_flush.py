"""test_shutdown_flush.py — a clean stop after many keys' first use.

Each key's first use in a process leaves its scope usage pending in memory
(and queues its hourly last_used_at write); SIGTERM writes what is pending
before exit.  That flush used to be one UPDATE per key — a round trip each,
about 3 s for 10,000 keys on PostgreSQL — and is now a few batched
statements.  Here 2,000 existing keys are each used once, then the server
gets SIGTERM: it must exit cleanly within SHUTDOWN_BOUND (generous: the
batched flush takes a small fraction of it, so only a gross regression
fails), and every key's scope usage must be in the store afterwards — no
write lost on a clean stop.  Whether the flush is batched is checked
without timing by the unit tests (test_store: test_scopes_used_many,
test_scopes_used_race; test_lifecycle: test_usage_flush_many).
"""
import http.client
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kwtest  # noqa: E402
from kwtest import make_key, mask, now_us, sha256_secure  # noqa: E402

KEYS = 2000
SHUTDOWN_BOUND = 2.0  # seconds from SIGTERM to exit
ROWS_PER_INSERT = 200  # psql takes each statement as one argument: keep it short


class TestShutdownFlush(kwtest.KWTestCase):
    serve_in_setup = False

    def setup_db(self):
        t = now_us()
        self.keys = [make_key() for _ in range(KEYS)]
        rows = [("flush-%d" % i, self.env.user_a, "flush %d" % i, sha256_secure(k), mask(k), t,
                 '["*"]') for i, k in enumerate(self.keys)]
        with self.env.connect() as c:
            for lo in range(0, len(rows), ROWS_PER_INSERT):
                chunk = rows[lo:lo + ROWS_PER_INSERT]
                values = ",".join(["(?,?,?,?,?,?,?)"] * len(chunk))
                c.execute("INSERT INTO personal_api_keys(id, user_id, label, secure_value, "
                          "mask_value, created_at, scopes) VALUES " + values,
                          [v for r in chunk for v in r])

    def test_first_uses_flushed_quickly_on_sigterm(self):
        srv = self.start_server()
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
        try:
            for k in self.keys:
                conn.request("GET", "/api/users/@me/", headers={"Authorization": "Bearer " + k})
                resp = conn.getresponse()
                resp.read()
                self.assertEqual(resp.status, 200)
        finally:
            conn.close()
        t0 = time.monotonic()
        rc = srv.stop(signal.SIGTERM, 30.0)
        elapsed = time.monotonic() - t0
        print("\nshutdown after %d first uses (%s): %.3f s" % (KEYS, kwtest.BACKEND, elapsed))
        self.assertEqual(rc, 0, "server did not exit cleanly; stderr:\n%s" % srv.stderr())
        self.assertLess(elapsed, SHUTDOWN_BOUND)
        missing = self.env.sql("SELECT COUNT(*) FROM personal_api_keys WHERE id LIKE 'flush-%' "
                               "AND (scopes_used IS NULL OR scopes_used NOT LIKE '%user:read%')")
        self.assertEqual(missing, [(0,)])


if __name__ == "__main__":
    kwtest.main()
