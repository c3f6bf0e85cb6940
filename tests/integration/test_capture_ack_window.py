"""test_capture_ack_window.py — `serve --capture-ack-window EVENTS`.

Without the window a capture is answered only once its events are
committed; with it, a capture is answered at once while fewer than EVENTS
events so answered wait to be stored.  The database is made to wait from
outside (its write lock held, as a busy database would) to tell the two
apart:

- without the window the answer waits for the lock; with it the 200 comes
  while the event is not stored yet, and the event is stored once the lock
  is released;
- past the window a capture waits for its outcome again;
- events answered early that the database then refuses are lost: logged
  (capture_lost) and counted (keyward_capture_lost_events_total); the next
  captures wait for their outcome until one is stored;
- SIGTERM stores every event answered early before the process exits.

The crash test (test_crash_safety.py) kills the server under capture load
with a window and checks what a crash may lose is bounded by it."""
import http.client
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kwtest  # noqa: E402

METRICS_LINE = re.compile(r"^keyward metrics on http://127\.0\.0\.1:(\d+)/metrics$")
HOLD = 1.5  # seconds the lock is held; an answer that waited for it takes about this long


class EventsLock:
    """Holds the events table's write lock from another connection, so the
    server's inserts wait (SQLite: the database's write lock; PostgreSQL:
    LOCK TABLE events in a transaction of psql)."""

    def __init__(self, env):
        self.env = env
        self.conn = None
        self.lock = threading.Lock()  # release() may run on a timer's thread too

    def __enter__(self):
        if self.env.pg_dbname:
            self.proc = subprocess.Popen(
                ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", self.env.db],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            self.proc.stdin.write("BEGIN; LOCK TABLE events IN EXCLUSIVE MODE; SELECT 'locked';\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline().strip()
            if line != "locked":
                raise AssertionError("could not lock events: %r %s" % (line, self.proc.stderr.read()))
        else:
            self.conn = sqlite3.connect(self.env.db, timeout=10, isolation_level=None,
                                        check_same_thread=False)  # released by a timer
            self.conn.execute("BEGIN IMMEDIATE")
        return self

    def release(self):
        with self.lock:
            self._release()

    def _release(self):
        if self.env.pg_dbname:
            if self.proc.poll() is None:
                self.proc.communicate("COMMIT;\n", timeout=30)
        elif self.conn:
            self.conn.execute("ROLLBACK")
            self.conn.close()
            self.conn = None

    def __exit__(self, *exc):
        self.release()


class CaptureAckWindow(kwtest.KWTestCase):
    serve_in_setup = False

    def serve(self, *args):
        srv = kwtest.Server(self.env.db, self.env.dir, list(args))
        self.addCleanup(self._stop_server, srv)
        return srv

    def capture(self, srv, event="w", n=1, timeout=30):
        """Sends a /batch/ of n events with fresh uuids: (status, seconds
        taken, uuids)."""
        uuids = [str(uuid.uuid4()) for _ in range(n)]
        batch = [{"event": event, "distinct_id": "u", "uuid": u} for u in uuids]
        t0 = time.monotonic()
        st, _, body = srv.post("/batch/", {"api_key": self.token, "batch": batch}, timeout=timeout)
        return st, time.monotonic() - t0, uuids

    def stored(self, uuids):
        marks = ",".join("?" * len(uuids))
        return self.env.sql("SELECT COUNT(*) FROM events WHERE uuid IN (%s)" % marks,
                            tuple(uuids))[0][0]

    def wait_stored(self, uuids, seconds=15):
        deadline = time.monotonic() + seconds
        while self.stored(uuids) < len(uuids) and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.stored(uuids)

    def release_later(self, lock, after):
        t = threading.Timer(after, lock.release)
        t.start()
        self.addCleanup(t.join)
        return t

    def test_without_the_window_the_answer_waits_for_the_commit(self):
        srv = self.serve()
        with EventsLock(self.env) as lock:
            self.release_later(lock, HOLD)
            st, took, uuids = self.capture(srv)
        self.assertEqual(st, 200)
        self.assertGreaterEqual(took, HOLD * 0.8, "answered before the lock was released")
        self.assertEqual(self.stored(uuids), 1, "answered 200 before it was stored")

    def test_with_the_window_the_answer_comes_first_and_the_events_follow(self):
        srv = self.serve("--capture-ack-window", "100")
        with EventsLock(self.env) as lock:
            st, took, uuids = self.capture(srv, n=3)
            self.assertEqual(st, 200)
            self.assertLess(took, HOLD * 0.6)
            self.assertEqual(self.stored(uuids), 0)
        self.assertEqual(self.wait_stored(uuids), 3)

    def test_past_the_window_captures_wait_again(self):
        srv = self.serve("--capture-ack-window", "10")
        with EventsLock(self.env) as lock:
            st, took, first = self.capture(srv, n=8)  # 8 of 10: answered at once
            self.assertEqual((st, self.stored(first)), (200, 0))
            self.assertLess(took, HOLD * 0.6)
            self.release_later(lock, HOLD)
            st, took, second = self.capture(srv, n=3)  # 8 + 3 > 10: waits
        self.assertEqual(st, 200)
        self.assertGreaterEqual(took, HOLD * 0.8)
        self.assertEqual(self.stored(second), 3)
        self.assertEqual(self.wait_stored(first), 8)

    def test_answered_requests_are_bounded_too_and_never_shed(self):
        """However large the window, at most 1,024 requests wait answered
        (their memory is bounded by requests, not events); the next one
        waits for its outcome and is not shed: the early ones never take
        a waiting request's place in the queue."""
        srv = self.serve("--capture-ack-window", "1000000")
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
        self.addCleanup(conn.close)
        body = json.dumps({"api_key": self.token,
                           "batch": [{"event": "w", "distinct_id": "u"}]}).encode()
        with EventsLock(self.env) as lock:  # released well within the store's 5 s busy wait
            t0 = time.monotonic()
            for i in range(1024):
                conn.request("POST", "/batch/", body=body,
                             headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                self.assertEqual((i, resp.status), (i, 200), resp.read())
                resp.read()
            self.assertLess(time.monotonic() - t0, 3.0, "too slow to test within the busy wait")
            self.release_later(lock, 0.5)
            st, took, uuids = self.capture(srv)
        self.assertEqual(st, 200)
        self.assertGreaterEqual(took, 0.3, "answered before it was stored past 1,024 requests")
        self.assertEqual(self.stored(uuids), 1)
        self.assertEqual(self.wait_stored_count("w", 1025), 1025)

    def wait_stored_count(self, event, n, seconds=15):
        deadline = time.monotonic() + seconds
        count = lambda: self.env.sql("SELECT COUNT(*) FROM events WHERE event = ?", (event,))[0][0]
        while count() < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return count()

    def poison(self):
        """Makes the database refuse events named 'poison' (a trigger), as a
        failing database would refuse a group."""
        if self.env.pg_dbname:
            self.env.sql("CREATE FUNCTION kw_poison() RETURNS trigger LANGUAGE plpgsql AS $$ "
                         "BEGIN IF NEW.event = 'poison' THEN RAISE EXCEPTION 'poisoned'; END IF; "
                         "RETURN NEW; END $$")
            self.env.sql("CREATE TRIGGER kw_poison BEFORE INSERT ON events FOR EACH ROW "
                         "EXECUTE FUNCTION kw_poison()")
        else:
            self.env.sql("CREATE TRIGGER kw_poison BEFORE INSERT ON events "
                         "WHEN NEW.event = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned'); END")

    def test_a_refused_early_capture_is_logged_counted_and_makes_captures_wait(self):
        self.poison()
        srv = self.serve("--capture-ack-window", "100", "--metrics-listen", "127.0.0.1:0")
        mport = int(METRICS_LINE.match(srv.next_line()).group(1))
        st, _, lost = self.capture(srv, event="poison", n=2)
        self.assertEqual(st, 200)  # answered before the database refused it
        deadline = time.monotonic() + 10
        while "capture_lost" not in srv.stderr() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertIn("2 captured events answered before they were stored could not be stored",
                      srv.stderr())
        self.assertEqual(self.stored(lost), 0)
        conn = http.client.HTTPConnection("127.0.0.1", mport, timeout=10)
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
        conn.close()
        self.assertIn("\nkeyward_capture_lost_events_total 2\n", text)
        # The last group failed: the next capture is answered with its outcome.
        with EventsLock(self.env) as lock:
            self.release_later(lock, HOLD)
            st, took, after = self.capture(srv)
        self.assertEqual((st, self.stored(after)), (200, 1))
        self.assertGreaterEqual(took, HOLD * 0.8)
        # It was stored: captures are answered early again.
        with EventsLock(self.env):
            st, took, again = self.capture(srv)
            self.assertEqual((st, self.stored(again)), (200, 0))
            self.assertLess(took, HOLD * 0.6)
        self.assertEqual(self.wait_stored(again), 1)

    def test_a_stalled_database_answers_waiting_captures_at_once_not_one_by_one(self):
        # The write lock held for longer than SQLite's busy timeout (5 s):
        # a group that fails for it is answered 503 as a whole.  Retried one
        # by one, its k-th request waited k busy timeouts, clients timed out
        # and their events were stored afterwards (SDKs then send them twice).
        if self.env.pg_dbname:
            self.skipTest("SQLite's busy timeout; a PostgreSQL insert waits on the lock")
        srv = self.serve()
        n = 8
        results = [None] * n

        def one(i):
            uuids = [str(uuid.uuid4())]
            t0 = time.monotonic()
            st, hdrs, body = srv.post("/batch/", {"api_key": self.token, "batch": [
                {"event": "stalled", "distinct_id": "u", "uuid": uuids[0]}]}, timeout=90)
            results[i] = (st, hdrs, body, time.monotonic() - t0, uuids)
        with EventsLock(self.env):
            threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        for st, hdrs, body, _, _ in results:
            self.assertProblem((st, hdrs, body), 503, "service_unavailable")
            self.assertGreaterEqual(int(hdrs["Retry-After"]), 1)
        # A request waits for the group attempt under way when it came, then
        # its own: two busy timeouts at most, never one per request.
        slowest = max(r[3] for r in results)
        self.assertLess(slowest, 12.5, "slowest answer after %.1f s" % slowest)
        self.assertEqual(self.stored([u for r in results for u in r[4]]), 0)
        st, _, back = self.capture(srv)  # the lock released: stored again
        self.assertEqual((st, self.stored(back)), (200, 1))

    def test_a_capture_whose_project_is_deleted_meanwhile_is_refused_as_its_token(self):
        # Verified, queued, and then its project is deleted before the
        # insert: the foreign key refuses the events.  That is the token's
        # fault, as it would be a moment later (401), not a server error;
        # another project's capture in the same group is stored.
        if self.env.pg_dbname:
            self.skipTest("the lock and the delete share one SQLite transaction here")
        srv = self.serve()
        doomed = self.assertStatus(srv.post("/api/projects/", {"name": "Doomed"}, key=self.key), 201)
        st, _, _ = srv.post("/batch/", {"api_key": doomed["api_token"], "batch": [
            {"event": "warm", "distinct_id": "u"}]})
        self.assertEqual(st, 200)  # its token is verified and cached
        results = {}

        def send(name, token):
            results[name] = srv.post("/batch/", {"api_key": token, "batch": [
                {"event": name, "distinct_id": "u"}]}, timeout=30)
        conn = sqlite3.connect(self.env.db, timeout=10, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        threads = [threading.Thread(target=send, args=("gone", doomed["api_token"])),
                   threading.Thread(target=send, args=("kept", self.token))]
        for t in threads:
            t.start()
        time.sleep(0.5)
        conn.execute("DELETE FROM events WHERE project_id=?", (doomed["id"],))
        conn.execute("DELETE FROM projects WHERE id=?", (doomed["id"],))
        conn.execute("COMMIT")
        conn.close()
        for t in threads:
            t.join()
        self.assertProblem(results["gone"], 401, "invalid_api_key")
        self.assertEqual(results["kept"][0], 200, results["kept"])
        self.assertEqual(self.env.sql("SELECT event FROM events WHERE event IN ('gone', 'kept')"),
                         [("kept",)])

    def test_the_answer_is_the_same_either_way_and_a_refusal_is_not_a_200(self):
        """The 200 is one ready response shared by every capture: the same
        bytes and headers whether answered before or after storing; a
        capture the database refuses (no window: its outcome is awaited)
        gets the refusal, not that 200."""
        self.poison()
        answers = []
        for args in ([], ["--capture-ack-window", "100"]):
            srv = self.serve(*args)
            st, hdrs, body = srv.post("/batch/", {"api_key": self.token,
                                                  "batch": [{"event": "ok", "distinct_id": "u"}]})
            answers.append((st, srv.last_text, hdrs.get("Content-Type"),
                            hdrs.get("Access-Control-Allow-Origin"), hdrs.get("Cache-Control"),
                            hdrs.get("X-Content-Type-Options")))
            if not args:
                st, _, body = srv.post("/batch/", {"api_key": self.token,
                                                   "batch": [{"event": "poison", "distinct_id": "u"}]})
                self.assertGreaterEqual(st, 500, body)
                self.assertEqual(sorted(body), ["attr", "code", "detail", "type"])
            srv.stop()
        self.assertEqual(answers[0], (200, '{"status":1}', "application/json", "*", "no-store",
                                      "nosniff"))
        self.assertEqual(answers[1], answers[0])

    def test_sigterm_stores_what_was_answered_early(self):
        srv = self.serve("--capture-ack-window", "100000")
        sent = []
        with EventsLock(self.env) as lock:
            for _ in range(40):
                st, took, uuids = self.capture(srv, n=5)
                self.assertEqual(st, 200)
                sent += uuids
            self.assertEqual(self.stored(sent), 0)
            srv.proc.send_signal(15)
            time.sleep(0.5)  # stopping, and waiting for the lock
            self.assertIsNone(srv.proc.poll(), "exited with events still unstored")
        self.assertEqual(srv.stop(timeout=20), 0, srv.stderr())
        self.assertEqual(self.stored(sent), 200)


    def test_sigterm_answers_every_capture_it_stores(self):
        # Captures waiting for their commit when SIGTERM comes are stored by
        # the stop; each must get its 200 before the process closes its
        # connection (a stored capture left unanswered is sent again by its
        # SDK: a duplicate).  One sent after the stop began is refused, not
        # stored.
        srv = self.serve()
        n = 6
        results = [None] * n

        def one(i):
            uuids = [str(uuid.uuid4())]
            try:
                st, _, _ = srv.post("/batch/", {"api_key": self.token, "batch": [
                    {"event": "at-stop", "distinct_id": "u", "uuid": uuids[0]}]}, timeout=30)
            except OSError as e:  # the connection closed without an answer
                st = e.__class__.__name__
            results[i] = (st, uuids)
        with EventsLock(self.env) as lock:
            threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
            for t in threads:
                t.start()
            time.sleep(0.5)  # all of them wait for the commit
            srv.proc.send_signal(15)
            time.sleep(0.3)
            lock.release()
            for t in threads:
                t.join()
        self.assertEqual(srv.stop(timeout=20), 0, srv.stderr())
        for st, uuids in results:
            self.assertEqual((st, self.stored(uuids)), (200, 1), results)


if __name__ == "__main__":
    kwtest.main()
