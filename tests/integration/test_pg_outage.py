"""Graceful degradation when PostgreSQL goes away.

Runs only in PostgreSQL mode (KEYWARD_TEST_BACKEND=postgresql; exit 77
otherwise), on a throwaway cluster of its own (scripts/pg-test-cluster):
the shared test cluster must keep running for the tests beside this one.

One scenario, in order, under continuous load (a thread polling the flag
definitions with a phs_ key every 10 ms):
  1. warm a phx_ key and a phs_ key (flag definitions), revoke another key;
  2. crash the cluster (pg_ctl -m immediate stop);
  3. within the grace (`serve --degraded-grace 3`): the phs_ route, which
     needs no database, keeps answering 200 from the caches; writes answer
     503 JSON service_unavailable with Retry-After; the revoked key stays
     refused;
  4. after the grace: cached answers stop too (503);
  5. resume the cluster: the server recovers by itself (200, writes work).
Readiness (/_health/ready) follows it: 200 ok before, 503 degraded with the
grace left during the outage (0 once spent), 200 ok again after; so do
the metrics (keyward_db_up, keyward_db_errors_total) and the JSON log
(db_unreachable, then db_recovered with how long it was down).
Throughout: the process stays up and nothing answers 500.  The measured
times are printed so the run log documents them.

A second scenario sweeps every GET route of the route table (parsed from
lib/policy/policy.c, as test_security_sweep.py does) with a phx_ key that
was verified before the crash, inside the grace, so each request passes
verification from the cache and reaches the route's own storage calls:
every route that needs the database answers 503 service_unavailable with
Retry-After in PostHog's JSON error shape, never 500; the routes that need
none (health, the console's embedded files) and the refusals made before
any lookup (a route that takes no personal key) answer as they did before
the crash."""
import os
import json
import subprocess
import sys
import threading
import time
import urllib.request

import kwtest
from kwtest import KWTestCase, Server
from test_ops import text_string_to_metric_families
from test_security_sweep import load_routes

GRACE = 3.0        # seconds, --degraded-grace
RECOVER_BOUND = 10.0
CLUSTER = os.path.join(kwtest.ROOT, "scripts", "pg-test-cluster")
PK = "/api/personal_api_keys/"

# Routes whose answer needs no database, with why: they answer during an
# outage exactly as before it.
NO_DATABASE = {
    "KW_ROUTE_HEALTH": "a liveness probe: a static body",
    "KW_ROUTE_SCHEMA": "the OpenAPI document, built from the route table",
    "KW_ROUTE_CONSOLE": "the console's embedded page",
    "KW_ROUTE_CONSOLE_INVITE": "the console's embedded page",
    "KW_ROUTE_CONSOLE_ASSET": "the console's embedded files",
    "KW_ROUTE_STATIC_JS": "posthog-js's files, read into memory at start",
    "KW_ROUTE_STATIC_JS_VERSIONED": "posthog-js's files, read into memory at start",
    # A public token's remote config comes from the flag cache, which serves
    # what it holds for the degraded grace, as the flag definitions do.
    "KW_ROUTE_REMOTE_CONFIG": "the remote config from the flag cache, within the grace",
    "KW_ROUTE_REMOTE_CONFIG_JS": "the remote config from the flag cache, within the grace",
}
# Readiness answers 503 "degraded" during an outage: a body of its own,
# not the service_unavailable problem.
READINESS = "KW_ROUTE_HEALTH_READY"
# An invitation token of the right form that was never issued: looking it
# up needs the database.
INVITATION = "A" * 43
# The flag-definition routes take ?token= (the project token), as the SDKs
# send it; the others ignore it.
TOKEN_ROUTES = {"KW_ROUTE_FLAG_DEFS", "KW_ROUTE_FLAG_DEFS_LEGACY", "KW_ROUTE_FLAG_DEFS_PROJECT",
                "KW_ROUTE_FLAG_REMOTE_CONFIG"}
# Reads a request thread may answer from memory during an outage when it
# answered them just before: everything they depend on is kept — the key's
# verification (within its grace), the caller's membership (under a
# second, at the last directory generation read), the project's row and
# its flag set or @me answer — and nothing can have been written since.  A
# 200 from one of these must be the answer given before the outage; on a
# thread that did not keep it, it is a miss: 503 like the other routes.
FROM_MEMORY = {"KW_ROUTE_ME", "KW_ROUTE_FLAG_LIST", "KW_ROUTE_FLAG_DEFS",
               "KW_ROUTE_FLAG_DEFS_LEGACY", "KW_ROUTE_FLAG_DEFS_PROJECT"}


def cluster(*args):
    proc = subprocess.run([CLUSTER] + list(args), capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError("pg-test-cluster %s failed: %s" % (" ".join(args), proc.stderr))
    return proc.stdout


class OutageBase(KWTestCase):
    """A throwaway cluster per class, and a crash undone whatever happens."""
    serve_in_setup = False

    @classmethod
    def setUpClass(cls):
        env = {}
        for line in cluster("start").splitlines():
            if line.startswith("export "):
                k, _, v = line[len("export "):].partition("=")
                env[k] = v
        cls.pg_dir = env["KEYWARD_TEST_PG_DIR"]
        cls.saved_url = kwtest.PG_ADMIN_URL
        kwtest.PG_ADMIN_URL = env["KEYWARD_TEST_PG_URL"]  # Env() makes its database here

    @classmethod
    def tearDownClass(cls):
        kwtest.PG_ADMIN_URL = cls.saved_url
        cluster("stop", cls.pg_dir)

    def resume_if_crashed(self):
        if self.crashed:
            cluster("resume", self.pg_dir)
            self.crashed = False

    def assert_degraded(self, result, what):
        st, hdrs, body = result
        self.assertEqual(st, 503, "%s: %r" % (what, body))
        self.assertEqual(body.get("status"), "degraded", what)
        self.assertEqual(body.get("database"), "unreachable", what)
        self.assertEqual(body.get("backend"), "postgresql", what)
        self.assertTrue(hdrs.get("Retry-After"), what + ": no Retry-After")
        return body

    def assert_unavailable(self, result, what):
        st, hdrs, body = result
        self.assertEqual(st, 503, "%s: %r" % (what, body))
        self.assertEqual(body and body.get("type"), "server_error", what)
        self.assertEqual(body.get("code"), "service_unavailable", what)
        self.assertTrue(hdrs.get("Retry-After"), what + ": no Retry-After")
        self.assertTrue(hdrs.get("Content-Type", "").startswith("application/json"), what)


class PgOutage(OutageBase):
    def setUp(self):
        super().setUp()
        self.crashed = False
        self.addCleanup(self.resume_if_crashed)  # runs before Env.cleanup (LIFO)
        self.srv = Server(self.env.db, self.env.dir, ["--degraded-grace", str(GRACE),
                                                      "--metrics-listen", "127.0.0.1:0",
                                                      "--log-format", "json"])
        self.addCleanup(self._stop_server, self.srv)
        self.metrics_url = self.srv.next_line().split(" on ")[1]

    def scrape(self):
        with urllib.request.urlopen(self.metrics_url, timeout=10) as r:
            text = r.read().decode()
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for fam in text_string_to_metric_families(text) for s in fam.samples}

    def test_outage_and_recovery(self):
        srv = self.srv
        st, _, flag = srv.post("/api/projects/1/feature_flags/", {
            "key": "survives", "name": "Survives", "filters": {"groups": [
                {"properties": [], "rollout_percentage": 50}]}}, key=self.key)
        self.assertEqual(st, 201, flag)
        st, _, phs = srv.post("/api/projects/1/project_secret_api_keys/",
                              {"label": "sdk", "scopes": ["feature_flag:read"]}, key=self.key)
        self.assertEqual(st, 201, phs)
        phs = phs["value"]
        defs = "/flags/definitions?token=%s" % self.token
        st, _, body = srv.get(defs, key=phs)
        self.assertEqual(st, 200, body)
        self.assertEqual([f["key"] for f in body["flags"]], ["survives"])
        self.assertStatus(srv.get("/api/users/@me/", key=self.key), 200)
        # A key seen revoked before the outage.
        st, _, victim = srv.post(PK, {"label": "victim", "scopes": ["*"]}, key=self.key)
        self.assertEqual(st, 201, victim)
        self.assertStatus(srv.get("/api/users/@me/", key=victim["value"]), 200)
        self.assertEqual(srv.delete(PK + victim["id"] + "/", key=self.key)[0], 204)
        self.assertStatus(srv.get("/api/users/@me/", key=victim["value"]), 401)
        ready = self.assertStatus(srv.get("/_health/ready"), 200)
        self.assertEqual((ready["status"], ready["database"], ready["backend"]),
                         ("ok", "ok", "postgresql"), ready)
        m0 = self.scrape()
        self.assertEqual(m0[("keyward_db_up", (("backend", "postgresql"),))], 1)
        unavailable = ("keyward_db_errors_total", (("kind", "unavailable"),))

        # Continuous load on the cached route.
        seen = []  # (monotonic time, status)
        stop = threading.Event()

        def load():
            while not stop.is_set():
                try:
                    st, _, _ = srv.get(defs, key=phs, timeout=5)
                except OSError as e:
                    st = "error %s" % e.__class__.__name__
                seen.append((time.monotonic(), st))
                time.sleep(0.01)
        loader = threading.Thread(target=load)
        loader.start()
        try:
            time.sleep(0.3)
            # The test cluster runs with synchronous_commit=off: an immediate
            # stop would lose the last ~0.6 s of commits (the keys made
            # above).  A production server loses none; make this one alike.
            kwtest._psql(kwtest.PG_ADMIN_URL, "CHECKPOINT")
            cluster("crash", self.pg_dir)
            t0 = time.monotonic()
            self.crashed = True

            # Within the grace: cached answers, 503 for writes, revocation kept.
            st, _, body = srv.get(defs, key=phs)
            self.assertEqual(st, 200, body)
            self.assertEqual([f["key"] for f in body["flags"]], ["survives"])
            self.assert_unavailable(srv.post(PK, {"label": "during", "scopes": ["*"]}, key=self.key),
                                    "POST personal key")
            self.assert_unavailable(srv.patch("/api/projects/1/feature_flags/%d/" % flag["id"],
                                              {"name": "changed"}, key=self.key), "PATCH flag")
            st, _, _ = srv.get("/api/users/@me/", key=victim["value"])
            self.assertIn(st, (401, 503), "revoked key accepted during the outage")
            in_grace = time.monotonic() - t0
            self.assertLess(in_grace, GRACE - 1.0, "checks too slow to be inside the grace")

            # Readiness says degraded within a poll or two, with the grace
            # left: at most what remains since the crash, more than 0
            # while inside it.  Liveness stays 200.
            r = self.poll(lambda: (lambda x: x if x[0] == 503 else None)(srv.get("/_health/ready")),
                          timeout=2.5, interval=0.05)
            degraded_after = time.monotonic() - t0
            self.assertIsNotNone(r, "readiness still ok %.1fs after the crash" % degraded_after)
            body = self.assert_degraded(r, "readiness during the outage")
            left = body["grace_remaining_seconds"]
            self.assertLessEqual(left, GRACE - degraded_after + 0.3, body)
            if degraded_after < GRACE - 0.5:
                self.assertGreater(left, 0, body)
                self.assertTrue(body["serving_cached"], body)
            self.assertEqual(body["grace_seconds"], GRACE, body)
            self.assertGreaterEqual(body["unreachable_seconds"], 0, body)
            self.assertStatus(srv.get("/_health"), 200)
            m1 = self.scrape()
            self.assertEqual(m1[("keyward_db_up", (("backend", "postgresql"),))], 0)
            self.assertGreater(m1[unavailable], m0[unavailable])

            # After the grace: cached answers stop too.
            def refused():
                r = srv.get(defs, key=phs)
                return r if r[0] == 503 else None
            r = self.poll(refused, timeout=GRACE + 3.0, interval=0.05)
            self.assertIsNotNone(r, "cached answers still served %.1fs after the crash" %
                                 (time.monotonic() - t0))
            refused_after = time.monotonic() - t0
            self.assert_unavailable(r, "definitions after the grace")
            st, _, _ = srv.get("/api/users/@me/", key=victim["value"])
            self.assertIn(st, (401, 503), "revoked key accepted after the grace")
            self.assertIsNone(srv.proc.poll(), "server exited during the outage")
            # The grace is spent: readiness says so.
            body = self.assert_degraded(srv.get("/_health/ready"), "readiness after the grace")
            self.assertEqual(body["grace_remaining_seconds"], 0, body)
            self.assertFalse(body["serving_cached"], body)
            self.assertGreaterEqual(body["unreachable_seconds"], GRACE - 0.5, body)

            # Back: recovers by itself.
            cluster("resume", self.pg_dir)
            self.crashed = False
            t1 = time.monotonic()

            last = []

            def recovered():
                last[:] = [srv.get(defs, key=phs)]
                return last[0][0] == 200
            self.assertTrue(self.poll(recovered, timeout=RECOVER_BOUND, interval=0.05),
                            "not recovered %.0fs after the restart: %r; stderr: %s" %
                            (RECOVER_BOUND, last[0][::2], srv.stderr()[-2000:]))
            recovered_after = time.monotonic() - t1
            ready_back = self.poll(lambda: srv.get("/_health/ready")[0] == 200,
                                   timeout=RECOVER_BOUND, interval=0.05)
            self.assertTrue(ready_back, "readiness not back: %s" % srv.last_text)
            ready = self.assertStatus(srv.get("/_health/ready"), 200)
            self.assertEqual((ready["status"], ready["database"]), ("ok", "ok"), ready)
            self.assertEqual(self.scrape()[("keyward_db_up", (("backend", "postgresql"),))], 1)
            st, _, made = srv.post(PK, {"label": "after", "scopes": ["*"]}, key=self.key)
            self.assertEqual(st, 201, made)
            self.assertStatus(srv.patch("/api/projects/1/feature_flags/%d/" % flag["id"],
                                        {"name": "changed"}, key=self.key), 200)
            self.assertStatus(srv.get("/api/users/@me/", key=victim["value"]), 401)
            self.assertStatus(srv.get("/api/users/@me/", key=made["value"]), 200)
            time.sleep(0.2)
        finally:
            stop.set()
            loader.join(10)

        # The log told the outage and the recovery, each once, as JSON lines.
        with open(srv.stderr_path, "rb") as f:
            lines = [json.loads(l) for l in f.read().decode().splitlines()]
        events = [l for l in lines if l["event"] in ("db_unreachable", "db_recovered")]
        self.assertEqual([e["event"] for e in events], ["db_unreachable", "db_recovered"], events)
        self.assertEqual(events[0]["level"], "warn")
        # ... saying what failed, in the database's (or libpq's) words.
        self.assertRegex(events[0].get("error", ""), r"^[0-9A-Z]{5}: .|^connection: .", events[0])
        self.assertGreater(events[1]["down_seconds"], GRACE - 0.5)
        self.assertTrue(any(l["event"] == "request" and l["status"] == 503 for l in lines))

        statuses = [s for _, s in seen]
        counts = {s: statuses.count(s) for s in set(statuses)}
        self.assertTrue(set(counts) <= {200, 503}, "unexpected answers under load: %r" % counts)
        # The load saw all three phases: served, refused, served again.
        crash_to_refusal = [s for t, s in seen if t0 <= t < t0 + GRACE - 1.0]
        self.assertTrue(crash_to_refusal and all(s == 200 for s in crash_to_refusal),
                        "the cached route failed inside the grace: %r" % crash_to_refusal)
        self.assertEqual(statuses[-1], 200)
        self.assertIsNone(srv.proc.poll())
        print("\n[postgresql outage, grace %.0fs] cached route served %d/%d requests in the "
              "first %.1fs; refused %.2fs after the crash; recovered %.2fs after the restart; "
              "load answers %r" % (GRACE, len(crash_to_refusal), len(crash_to_refusal), GRACE - 1.0,
                                   refused_after, recovered_after, counts))


class PgOutageSweep(OutageBase):
    """Every GET route, during an outage, with a key verified before it."""

    def setUp(self):
        super().setUp()
        self.crashed = False
        self.addCleanup(self.resume_if_crashed)  # runs before Env.cleanup (LIFO)
        # A grace long enough that the whole sweep runs inside it: the key
        # is then served from the verification cache on every route.
        self.srv = Server(self.env.db, self.env.dir, ["--degraded-grace", "60"])
        self.addCleanup(self._stop_server, self.srv)

    def fill(self, route, ids):
        path = route["pattern"].replace(":project", "1").replace(":org", self.env.org_a)
        path = path.replace(":any", "1.0.0")  # /static/<posthog-js version>/<file>
        for marker, value in (("/array/:id", self.token),
                              ("/static/", "array.js"),
                              ("/personal_api_keys/:id", ids["pkey"]),
                              ("/project_secret_api_keys/:id", ids["psk"]),
                              ("/endpoints/:id", ids["endpoint"]),
                              ("/users/:id", "@me"),
                              ("/invites/:id", INVITATION),
                              ("/feature_flags/:id", ids["flag_key"]),
                              ("/assets/:id", "no-such-asset.js"),
                              ("/invite/:id", INVITATION),
                              ("/webhooks/:id", "00000000-0000-4000-8000-000000000000")):
            if marker in path:
                path = path.replace(":id", value)
        path = path.replace(":num", str(ids["flag"]))
        self.assertNotIn(":", path, "a parameter this sweep does not know: %s" % route["pattern"])
        if path != "/":
            path += "/"
        if route["id"] in TOKEN_ROUTES:
            path += "?token=" + self.token
        return path

    def test_every_get_route_answers_503_not_500(self):
        srv, key = self.srv, self.key
        flag = self.assertStatus(srv.post("/api/projects/1/feature_flags/", {
            "key": "swept", "name": "Swept", "filters": {"groups": [
                {"properties": [], "rollout_percentage": 100}]}}, key=key), 201)
        endpoint = self.assertStatus(srv.post("/api/projects/1/endpoints/", {
            "name": "swept", "query": {"kind": "event_counts"}}, key=key), 201)
        psk = self.assertStatus(srv.post("/api/projects/1/project_secret_api_keys/", {
            "label": "sdk", "scopes": ["feature_flag:read"]}, key=key), 201)
        me = self.assertStatus(srv.get(PK + "@current/", key=key), 200)
        ids = {"pkey": me["id"], "psk": psk["id"], "endpoint": endpoint["name"],
               "flag": flag["id"], "flag_key": flag["key"]}
        routes = [r for r in load_routes() if r["method"] == "GET"]
        self.assertGreaterEqual(len(routes), 20, "the route table was not parsed")
        before = {}
        for r in routes:
            path = self.fill(r, ids)
            st, _, body = srv.get(path, key=key)
            self.assertNotEqual(st, 500, "%s before the outage: %r" % (path, body))
            before[r["id"]] = (path, st, body)

        kwtest._psql(kwtest.PG_ADMIN_URL, "CHECKPOINT")  # see test_outage_and_recovery
        cluster("crash", self.pg_dir)
        self.crashed = True
        t0 = time.monotonic()
        answers = {}
        for r in routes:
            path, st_before, body_before = before[r["id"]]
            res = srv.get(path, key=key)
            if r["id"] == READINESS and res[0] == 200:  # the first failed poll is up to 200 ms away
                res = self.poll(lambda: (lambda x: x if x[0] == 503 else None)(srv.get(path)),
                                timeout=2.5, interval=0.05) or res
            answers[r["id"]] = res[0]
            with self.subTest(route=r["id"], path=path):
                self.assertNotEqual(res[0], 500, "500 during the outage: %s" % srv.last_text[:300])
                if r["id"] == READINESS:
                    self.assertEqual(st_before, 200)
                    self.assert_degraded(res, path)
                elif r["id"] in NO_DATABASE:
                    self.assertEqual(res[0], st_before, NO_DATABASE[r["id"]])
                elif r["id"] in FROM_MEMORY and res[0] == 200:
                    self.assertEqual(res[2], body_before, path)
                elif "personal" in r["creds"] or "none" in r["creds"]:
                    # Served to this key, or to the credential in the path
                    # (an invitation token): both need the database.
                    self.assert_unavailable(res, path)
                else:
                    # A route that takes no personal key refuses it before
                    # any lookup, outage or not.
                    self.assertEqual(res[0], st_before, srv.last_text[:300])
                    self.assertIn(res[0], (401, 403), srv.last_text[:300])
        swept_in = time.monotonic() - t0
        self.assertLess(swept_in, 50.0, "the sweep did not finish inside the grace")
        self.assertIsNone(srv.proc.poll(), "server exited during the outage")
        cluster("resume", self.pg_dir)
        self.crashed = False
        self.assertTrue(self.poll(lambda: srv.get("/api/users/@me/", key=key)[0] == 200,
                                  timeout=RECOVER_BOUND, interval=0.05), "not recovered")
        counts = {}
        for st in answers.values():
            counts[st] = counts.get(st, 0) + 1
        print("\n[postgresql outage] %d GET routes swept in %.2fs with a cached phx_ key: %r" %
              (len(routes), swept_in, counts))


if __name__ == "__main__":
    if kwtest.BACKEND != "postgresql":
        print("SKIPPED: the outage test runs in PostgreSQL mode (KEYWARD_TEST_BACKEND=postgresql)")
        sys.exit(kwtest.SKIP_EXIT)
    import unittest
    unittest.main(verbosity=2)
