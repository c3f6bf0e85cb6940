"""test_shutdown_flush.py — a clean stop after many keys' first use.

Each key's first use in a process leaves its scope usage pending in memory
and queues its hourly last_used_at write in the verifier's touch ring;
SIGTERM writes what is pending before exit.  That flush used to be one UPDATE per key — a round trip each,
about 3 s for 10,000 keys on PostgreSQL — and is now a few batched
statements.  Here 2,000 existing keys are each used once, then the server
gets SIGTERM: it must exit cleanly within SHUTDOWN_BOUND (generous: the
batched flush takes a small fraction of it, so only a gross regression
fails), and every key's scope usage and last_used_at must be in the store
afterwards — no write lost on a clean stop.  The keys are used by CLIENTS
connections at once, so the ring fills faster than with one: it used to
hold 256 touches drained by one UPDATE each, and when it was full a touch
was dropped — on PostgreSQL 3-44 % of 10,000 keys used in a burst were left
"never used".  The ring now holds 4,096 and is drained in batches
(kw_store_key_touch_many); KEYWARD_FLUSH_KEYS raises the key count to
measure larger bursts.  Whether the flush is batched is checked
without timing by the unit tests (test_store: test_scopes_used_many,
test_scopes_used_race; test_lifecycle: test_usage_flush_many).
"""
import http.client
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kwtest  # noqa: E402
from kwtest import make_key, mask, now_us, sha256_secure  # noqa: E402

KEYS = int(os.environ.get("KEYWARD_FLUSH_KEYS", "2000"))
CLIENTS = 4
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

    def use_keys(self, srv):
        """Each key once, from CLIENTS connections at once."""
        statuses = []

        def client(keys):
            conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
            try:
                for k in keys:
                    conn.request("GET", "/api/users/@me/",
                                 headers={"Authorization": "Bearer " + k})
                    resp = conn.getresponse()
                    resp.read()
                    statuses.append(resp.status)
            finally:
                conn.close()

        threads = [threading.Thread(target=client, args=(self.keys[i::CLIENTS],))
                   for i in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(statuses, [200] * KEYS)

    def test_first_uses_flushed_quickly_on_sigterm(self):
        srv = self.start_server()
        self.use_keys(srv)
        t0 = time.monotonic()
        rc = srv.stop(signal.SIGTERM, 30.0)
        elapsed = time.monotonic() - t0
        print("\nshutdown after %d first uses (%s): %.3f s" % (KEYS, kwtest.BACKEND, elapsed))
        self.assertEqual(rc, 0, "server did not exit cleanly; stderr:\n%s" % srv.stderr())
        self.assertLess(elapsed, SHUTDOWN_BOUND)
        missing = self.env.sql("SELECT COUNT(*) FROM personal_api_keys WHERE id LIKE 'flush-%' "
                               "AND (scopes_used IS NULL OR scopes_used NOT LIKE '%user:read%')")
        unused = self.env.sql("SELECT COUNT(*) FROM personal_api_keys WHERE id LIKE 'flush-%' "
                              "AND last_used_at IS NULL")[0][0]
        print("keys with last_used_at after the stop: %d of %d (%.1f %%)"
              % (KEYS - unused, KEYS, 100.0 * (KEYS - unused) / KEYS))
        self.assertEqual(missing, [(0,)])
        self.assertEqual(unused, 0, "used keys left without last_used_at")


if __name__ == "__main__":
    kwtest.main()
