"""Crash safety: key creations while `keyward serve` is
killed with SIGKILL at random points and restarted on the same database.

Several client threads create personal keys (phx_, 9 per user: each user has
one bootstrap key written into the database) and project secret keys (phs_,
up to 50 per project) over HTTP.  A controller SIGKILLs the server every
0.3-1.5 s (seeded RNG) and starts it again on the same store.  Every 201
response's key is recorded.  Afterwards:

- every acknowledged key verifies (phx_: GET /api/users/@me/, phs_: GET
  /flags/definitions) on a fresh server;
- every key row is whole: label, mask, sha256 secure_value matching the
  acknowledged value, and its "created" activity entry (same transaction);
- the rows the test created are exactly the acknowledged ones plus at most
  those whose request was in flight when the server died.

KEYWARD_CRASH_CREATIONS (default 10000) is the target,
KEYWARD_CRASH_SECONDS (default 60) bounds the creation phase; at least 2000
creations (or the target, when smaller) must be acknowledged.  The count is
printed."""
import hashlib
import http.client
import json
import os
import random
import signal
import threading
import time

import kwtest
from kwtest import KWTestCase, make_key, mask, now_us, sha256_secure

TARGET = int(os.environ.get("KEYWARD_CRASH_CREATIONS", "10000"))
SECONDS = float(os.environ.get("KEYWARD_CRASH_SECONDS", "60"))
MIN_ACKED = min(2000, TARGET)
THREADS = 4
SEED = int(os.environ.get("KEYWARD_CRASH_SEED", "9"))
PKEYS_PER_USER = 9        # + the bootstrap key = the limit of 10
PSKS_PER_PROJECT = 50
PKEY_SHARE = 0.3


class Supervisor:
    """Owns the server process; the controller thread kills and restarts it."""

    def __init__(self, env, args=()):
        self.env = env
        self.args = list(args)
        self.lock = threading.Lock()
        self.srv = None
        self.kills = 0
        self.start()

    def start(self):
        srv = kwtest.Server(self.env.db, self.env.dir, self.args)
        with self.lock:
            self.srv = srv

    def port(self):
        with self.lock:
            return self.srv.port if self.srv else None

    def run_killing(self, workers, join_timeout, progress=None, total=None):
        """Starts the worker threads and kills the server every 0.3-1.5 s
        (seeded) until they have all ended; with progress (a count of the
        work done, out of total), also after every 6-12 % of the work, so a
        fast machine that finishes in a few seconds still sees several
        kills."""
        stop = threading.Event()

        def controller():
            rng = random.Random(SEED)
            while True:
                until = time.monotonic() + rng.uniform(0.3, 1.5)
                work = progress() + total * rng.uniform(0.06, 0.12) if progress else None
                while time.monotonic() < until and not (work and progress() >= work):
                    if stop.wait(0.02):
                        return
                self.kill_and_restart()

        ctl = threading.Thread(target=controller)
        ctl.start()
        for w in workers:
            w.start()
        for w in workers:
            w.join(join_timeout)
        stop.set()
        ctl.join(30)

    def kill_and_restart(self):
        with self.lock:
            srv, self.srv = self.srv, None
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait(10)
        srv._close()
        self.kills += 1
        self.start()


class TestCrashSafety(KWTestCase):
    serve_in_setup = False

    def setup_db(self):
        env = self.env
        n_pkeys = int(TARGET * PKEY_SHARE)
        n_psks = TARGET - n_pkeys
        n_users = -(-n_pkeys // PKEYS_PER_USER)
        n_projects = -(-n_psks // PSKS_PER_PROJECT)
        # Users live in their own organization with one project, so a
        # personal key's creation writes one activity entry.
        org_u = env.add_org("crash users")
        env.add_project(org_u, "crash users' project")
        emails = ["crash-%d@x.io" % i for i in range(n_users)]
        t = now_us()
        self.bulk("INSERT INTO users(uuid, email, first_name, password_hash, is_active, created_at)",
                  [("u-%d" % i, e, "crash", None, 1, t) for i, e in enumerate(emails)])
        ids = dict((e, i) for i, e in env.sql("SELECT id, email FROM users WHERE email LIKE "
                                              "'crash-%'"))
        users = [ids[e] for e in emails]
        self.bulk("INSERT INTO memberships(user_id, org_id, level, created_at)",
                  [(u, org_u, 1, t) for u in users])
        self.bootstrap = {}
        rows = []
        for u in users:
            k = make_key()
            self.bootstrap[u] = k
            rows.append(("boot-%d" % u, u, "bootstrap", sha256_secure(k), mask(k), t, '["*"]'))
        self.bulk("INSERT INTO personal_api_keys(id, user_id, label, secure_value, mask_value, "
                  "created_at, scopes)", rows)
        self.bulk("INSERT INTO projects(uuid, org_id, name, api_token, created_at)",
                  [("p-%d" % i, env.org_a, "cp-%d" % i, make_key("phc_"), t)
                   for i in range(n_projects)])
        projects = [r[0] for r in env.sql("SELECT id FROM projects WHERE name LIKE 'cp-%' "
                                          "ORDER BY id")]
        # The work: one item per creation, interleaved kinds, unique labels.
        items = []
        for i, u in enumerate(users):
            for j in range(PKEYS_PER_USER):
                items.append(("phx", u, "c-u%d-%d" % (u, j)))
        items = items[:n_pkeys]
        psk_items = [("phs", p, "c-p%d-%d" % (p, j)) for p in projects
                     for j in range(PSKS_PER_PROJECT)][:n_psks]
        random.Random(SEED).shuffle(items)
        random.Random(SEED + 1).shuffle(psk_items)
        self.items = items + psk_items
        random.Random(SEED + 2).shuffle(self.items)
        print("\ncrash safety: %d users, %d projects, target %d creations (%d phx_, %d phs_)"
              % (len(users), len(projects), len(self.items), n_pkeys, n_psks))

    def bulk(self, head, rows, per=200):
        with self.env.connect() as c:
            for lo in range(0, len(rows), per):
                chunk = rows[lo:lo + per]
                width = len(chunk[0])
                values = ",".join(["(" + ",".join("?" * width) + ")"] * len(chunk))
                c.execute(head + " VALUES " + values, [v for r in chunk for v in r])

    # ------------------------------------------------------------------

    def create(self, conn_port, item):
        kind, target, label = item
        if kind == "phx":
            path, key = "/api/personal_api_keys/", self.bootstrap[target]
            body = {"label": label, "scopes": ["user:read"]}
        else:
            path, key = "/api/projects/%d/project_secret_api_keys/" % target, self.key
            body = {"label": label, "scopes": ["feature_flag:read"]}
        conn = http.client.HTTPConnection("127.0.0.1", conn_port, timeout=15)
        try:
            conn.request("POST", path, body=json.dumps(body).encode(),
                         headers={"Authorization": "Bearer " + key,
                                  "Content-Type": "application/json"})
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def worker(self, sup, queue, lock, acked, unknown, refused, deadline):
        while time.monotonic() < deadline:
            with lock:
                if not queue:
                    return
                item = queue.pop()
            port = sup.port()
            if port is None:
                time.sleep(0.02)
                with lock:
                    queue.append(item)
                continue
            try:
                st, text = self.create(port, item)
            except (OSError, http.client.HTTPException):
                # In flight when the server died: it may or may not exist.
                with lock:
                    unknown[item[2]] = item
                time.sleep(0.02)
                continue
            if st == 201:
                made = json.loads(text)
                with lock:
                    acked[item[2]] = (item, made["id"], made["value"])
            elif st == 503:
                # The store was unavailable (a restart in progress): nothing
                # was acknowledged; it may still have been written.
                with lock:
                    unknown[item[2]] = item
            else:
                with lock:
                    refused.append((item, st, text[:200]))

    def test_acknowledged_keys_survive_sigkill(self):
        sup = Supervisor(self.env)
        queue = list(reversed(self.items))
        lock = threading.Lock()
        acked, unknown, refused = {}, {}, []
        t0 = time.monotonic()
        deadline = t0 + SECONDS
        sup.run_killing([threading.Thread(target=self.worker,
                                          args=(sup, queue, lock, acked, unknown, refused, deadline))
                         for _ in range(THREADS)], SECONDS + 60,
                         progress=lambda: len(acked) + len(unknown), total=len(self.items))
        elapsed = time.monotonic() - t0
        # The last instance is killed too, then a fresh one does the checks.
        sup.kill_and_restart()
        srv = sup.srv
        self.addCleanup(srv.kill)
        print("crash safety: %d creations acknowledged (201), %d in flight at a kill, "
              "%d refused, %d SIGKILLs, %.1f s (%s)"
              % (len(acked), len(unknown), len(refused), sup.kills, elapsed, kwtest.BACKEND))
        # A duplicate label after a retry can not happen (no retries); any
        # refusal is a bug.
        self.assertEqual(refused, [])
        self.assertGreaterEqual(len(acked), MIN_ACKED)
        self.assertGreaterEqual(sup.kills, 5)

        # 1. Every acknowledged key verifies.
        failures = []
        keys = list(acked.values())

        def verify(part):
            conn = None
            for item, _, value in part:
                path = "/api/users/@me/" if item[0] == "phx" else "/flags/definitions"
                for attempt in range(2):
                    try:
                        if conn is None:
                            conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=15)
                        conn.request("GET", path, headers={"Authorization": "Bearer " + value})
                        resp = conn.getresponse()
                        resp.read()
                        if resp.status != 200:
                            failures.append((item, resp.status))
                        break
                    except (OSError, http.client.HTTPException) as e:
                        conn = None
                        if attempt:
                            failures.append((item, repr(e)))
            if conn:
                conn.close()

        vt = [threading.Thread(target=verify, args=(keys[i::THREADS],)) for i in range(THREADS)]
        for t in vt:
            t.start()
        for t in vt:
            t.join(300)
        print("crash safety: %d acknowledged keys verified, %d failures"
              % (len(keys), len(failures)))
        self.assertEqual(failures, [])

        # 2. No half-written rows; exactly acknowledged + some in-flight ones.
        rows = {}
        for table in ("personal_api_keys", "project_secret_api_keys"):
            for rid, label, secure, msk in self.env.sql(
                    "SELECT id, label, secure_value, mask_value FROM %s WHERE label LIKE 'c-%%'"
                    % table):
                rows[label] = (rid, secure, msk)
        created = set(r[0] for r in self.env.sql(
            "SELECT item_id FROM activity_log WHERE activity = 'created' AND scope IN "
            "('PersonalAPIKey', 'ProjectSecretAPIKey')"))
        missing = [l for l in acked if l not in rows]
        extra = [l for l in rows if l not in acked]
        not_in_flight = [l for l in extra if l not in unknown]
        self.assertEqual(missing, [], "acknowledged but not stored")
        self.assertEqual(not_in_flight, [], "stored but never requested or refused")
        bad = []
        for label, (rid, secure, msk) in rows.items():
            if not (secure.startswith("sha256$") and len(secure) == 71 and msk
                    and msk.startswith("ph") and "..." in msk and rid in created):
                bad.append((label, secure, msk, rid in created))
            if label in acked:
                value = acked[label][2]
                if (rid != acked[label][1] or secure != sha256_secure(value)
                        or msk != mask(value)):
                    bad.append((label, "differs from the 201 response"))
        self.assertEqual(bad, [])
        print("crash safety: %d key rows stored = %d acknowledged + %d of %d in flight; "
              "every row whole, with its activity entry" % (len(rows), len(acked), len(extra),
                                                           len(unknown)))
        # 3. The last instance still shuts down cleanly, within kwtest's
        # usual 5 s, right after the first use of ~10,000 keys (its flush of
        # their scope usage once took seconds on PostgreSQL; see
        # docs/security.md).  Waited for longer, so a slow stop is measured.
        t = time.monotonic()
        rc = srv.stop(signal.SIGTERM, 120.0)
        took = time.monotonic() - t
        print("crash safety: final SIGTERM -> exit %r in %.1f s" % (rc, took))
        self.assertEqual(rc, 0, srv.stderr())
        self.assertLess(took, 5.0)
        if not self.env.pg_dbname:
            self.assertEqual(self.env.sql("PRAGMA integrity_check"), [("ok",)])


CAPTURE_SECONDS = float(os.environ.get("KEYWARD_CRASH_CAPTURE_SECONDS", "20"))
ACK_WINDOW = 200  # events, for the run with --capture-ack-window


class TestCaptureCrashSafety(KWTestCase):
    """Captured events under SIGKILL: the server stores many requests'
    events in one transaction (its capture group) and answers each request
    only once its events are committed.  Clients send /batch/ requests of
    1-20 events with their own uuids while the server is killed every
    0.3-1.5 s; afterwards every event of every acknowledged (200) request is
    stored exactly once, and every request is stored whole or not at all.

    With --capture-ack-window N a request may be answered before it is
    stored: a kill may then lose acknowledged events, at most N per kill,
    and never part of a request; nothing is stored twice."""
    serve_in_setup = False

    def send(self, port, batch):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        try:
            conn.request("POST", "/batch/",
                         body=json.dumps({"api_key": self.env.token, "batch": batch}).encode(),
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def test_acknowledged_events_survive_sigkill(self):
        self.run_killing_capture([], CAPTURE_SECONDS)

    def test_with_an_ack_window_a_kill_loses_at_most_the_window(self):
        self.run_killing_capture(["--capture-ack-window", str(ACK_WINDOW)], CAPTURE_SECONDS / 2)

    def run_killing_capture(self, args, seconds):
        sup = Supervisor(self.env, args)
        lock = threading.Lock()
        acked, unknown, refused = [], [], []
        deadline = time.monotonic() + seconds

        def client(n):
            rng = random.Random(SEED * 100 + n)
            seq = 0
            while time.monotonic() < deadline:
                port = sup.port()
                if port is None:
                    time.sleep(0.01)
                    continue
                seq += 1
                batch = [{"event": "crash", "distinct_id": "c%d" % n,
                          "uuid": "c%d-%d-%d" % (n, seq, i), "properties": {"i": i}}
                         for i in range(rng.randint(1, 20))]
                uuids = [e["uuid"] for e in batch]
                try:
                    st, text = self.send(port, batch)
                except (OSError, http.client.HTTPException):
                    with lock:
                        unknown.append(uuids)
                    continue
                with lock:
                    if st == 200:
                        acked.append(uuids)
                    elif st == 503:  # shed or store unavailable: not acknowledged
                        unknown.append(uuids)
                    else:
                        refused.append((st, text[:200]))

        sup.run_killing([threading.Thread(target=client, args=(n,)) for n in range(2 * THREADS)],
                        seconds + 60)
        sup.kill_and_restart()
        self.addCleanup(sup.srv.kill)
        self.assertEqual(refused, [])
        self.assertGreaterEqual(sup.kills, 5)
        self.assertGreaterEqual(len(acked), 200)
        counts = {}
        for (u,) in self.env.sql("SELECT uuid FROM events WHERE event = 'crash'"):
            counts[u] = counts.get(u, 0) + 1
        self.assertEqual([u for u, k in counts.items() if k != 1], [], "stored twice")
        lost = [u for uuids in acked for u in uuids if u not in counts]
        if args:  # each kill loses at most what the window held
            self.assertLessEqual(len(lost), ACK_WINDOW * sup.kills, "more lost than the window")
        else:
            self.assertEqual(lost, [], "acknowledged but not stored")
        torn = [uuids for uuids in acked + unknown
                if 0 < sum(u in counts for u in uuids) < len(uuids)]
        self.assertEqual(torn, [], "requests stored in part")
        requested = set(u for uuids in acked + unknown for u in uuids)
        self.assertEqual([u for u in counts if u not in requested], [])
        print("\ncrash safety (capture%s): %d requests acknowledged (%d events), %d of them "
              "lost; %d in flight or shed at a kill, %d of them stored; %d SIGKILLs (%s)"
              % (" " + " ".join(args) if args else "", len(acked), sum(map(len, acked)),
                 len(lost), len(unknown), sum(1 for uuids in unknown if uuids[0] in counts),
                 sup.kills, kwtest.BACKEND))


if __name__ == "__main__":
    kwtest.main()
