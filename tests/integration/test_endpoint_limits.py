"""test_endpoint_limits.py — what one endpoint run, or one captured event,
may cost the server.

Anyone holding a project's public phc_ token can capture events, and an
endpoint reads them back: a run over a large project must stop at its time
limit and never hold up other requests (it runs on the query thread, at most
KW_ENDPOINT_RUNS_MAX at once), an event's properties are limited at capture
(1 MiB serialized: a gzip body of a few KiB could inflate to megabytes), and
a recent_events answer holds at most 4 MiB of properties and 500,000 JSON
values in them.  Events are planted straight into the database (one INSERT
… SELECT), which is far faster than capturing them.
"""
import gzip
import json
import threading
import time

import kwtest

# A property_breakdown over this many events, each with a few dozen
# properties, takes seconds in a Release build (far more under the
# sanitizers); the tests lower the time limit well below that.
N_EVENTS = 150000
LIMIT = 0.75


def plant_sql(pg, project, n, props_sql, event="e"):
    """One statement inserting n events whose properties text is the SQL
    expression props_sql (of i, 1..n)."""
    if pg:
        return ("INSERT INTO events(project_id, uuid, event, distinct_id, properties, timestamp, "
                "created_at) SELECT %d, md5(i::text), '%s', 'u' || (i %% 1000), %s, "
                "1700000000000000 + i, 1700000000000000 FROM generate_series(1, %d) AS i"
                % (project, event, props_sql, n))
    return ("WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < %d) "
            "INSERT INTO events(project_id, uuid, event, distinct_id, properties, timestamp, "
            "created_at) SELECT %d, lower(hex(randomblob(16))), '%s', 'u' || (i %% 1000), %s, "
            "1700000000000000 + i, 1700000000000000 FROM s" % (n, project, event, props_sql))


def wide_props(pg):
    """Properties of 40 keys, the breakdown's key last."""
    fields = " || ".join("'\"k%d\":\"some value %d\",'" % (k, k) for k in range(80))
    return "'{' || %s || '\"plan\":\"p' || (i %% 7) || '\"}'" % fields


def zeros_sql(pg, count):
    """An object holding an array of `count` zeros (2 bytes each)."""
    if pg:
        return "'{\"z\":[' || repeat('0,', %d) || '0]}'" % (count - 1)
    return "'{\"z\":[' || replace(hex(zeroblob(%d)), '00', '0,') || '0]}'" % (count - 1)


class EndpointLimits(kwtest.KWTestCase):
    serve_in_setup = False

    def setUp(self):
        super().setUp()
        self.pg = bool(self.env.pg_dbname)

    def serve(self, *args):
        self.srv = kwtest.Server(self.env.db, self.env.dir, extra_args=args)
        self.addCleanup(self._stop_server, self.srv)
        return self.srv

    def make_endpoint(self, name, query):
        self.assertStatus(self.srv.post("/api/projects/1/endpoints/", {"name": name, "query": query},
                                        key=self.key), 201)

    def run_endpoint(self, name, key=None, timeout=30):
        t0 = time.monotonic()
        r = self.srv.post("/api/projects/1/endpoints/%s/run/" % name, {}, key=key or self.key,
                          timeout=timeout)
        return r, time.monotonic() - t0

    # ---- time limit and the query thread --------------------------------

    def test_run_is_stopped_at_its_time_limit_and_others_stay_fast(self):
        self.env.tenants()
        self.env.sql(plant_sql(self.pg, 1, N_EVENTS, wide_props(self.pg)))
        self.serve("--endpoint-timeout", str(LIMIT), "--threads", "2")
        self.make_endpoint("plans", {"kind": "property_breakdown", "property": "plan"})
        self.make_endpoint("few", {"kind": "event_counts", "date_from": "2030-01-01"})

        # A run that would take longer is stopped at the limit, with its error.
        r, took = self.run_endpoint("plans")
        body = self.assertProblem(r, 504, "query_timeout", type_="server_error")
        self.assertIn("--endpoint-timeout", body["detail"])
        self.assertGreater(took, LIMIT - 0.05)
        self.assertLess(took, LIMIT + 2.0, "the run was not stopped near its limit")

        # Runs in flight (one running, one waiting for the query thread)
        # hold no request thread: another organization's user is answered
        # at once, and so is a cheap run, which waits at most for the limit.
        results = []

        def runner():
            results.append(self.run_endpoint("plans"))
        threads = [threading.Thread(target=runner) for _ in range(2)]
        for t in threads:
            t.start()
        time.sleep(0.15)
        worst = 0.0
        for _ in range(5):
            t0 = time.monotonic()
            st, _, me = self.srv.get("/api/users/@me/", key=self.env.key_b)
            worst = max(worst, time.monotonic() - t0)
            self.assertEqual(st, 200)
            self.assertEqual(me["email"], "b@y.io")
            time.sleep(0.05)
        self.assertLess(worst, 1.0, "GET /api/users/@me/ waited %.2f s behind endpoint runs" % worst)
        for t in threads:
            t.join(30)
        self.assertEqual(len(results), 2)
        for r, took in results:
            self.assertProblem(r, 504, "query_timeout")
            self.assertLess(took, LIMIT + 2.0, "a waiting run got more than what was left of its limit")
        # The query thread is free again: a cheap run answers at once.
        r, took = self.run_endpoint("few")
        self.assertEqual(self.assertStatus(r, 200)["results"], [])
        self.assertLess(took, 1.0)

    def test_runs_beyond_the_cap_are_refused_at_once(self):
        self.env.sql(plant_sql(self.pg, 1, N_EVENTS, wide_props(self.pg)))
        self.serve("--endpoint-timeout", str(LIMIT))
        self.make_endpoint("plans", {"kind": "property_breakdown", "property": "plan"})
        results = []
        lock = threading.Lock()

        def runner():
            r = self.run_endpoint("plans")
            with lock:
                results.append(r)
        threads = [threading.Thread(target=runner) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        # All arrived within the first run's limit, so the queued ones find
        # their time spent: 504 too, once the first is stopped.
        statuses = sorted(r[0][0] for r in results)
        self.assertEqual(statuses.count(503), 4, statuses)  # 8 taken, 4 refused
        self.assertEqual(statuses.count(504), 8, statuses)
        for (st, hdrs, body), took in results:
            if st == 503:
                self.assertEqual(hdrs.get("Retry-After"), "1")
                self.assertEqual(body["code"], "service_unavailable")
                self.assertLess(took, 1.0, "a refused run was not answered at once")

    # ---- an event's size at capture --------------------------------------

    def count_events(self):
        return self.env.sql("SELECT COUNT(*) FROM events")[0][0]

    def test_oversized_event_is_refused_and_nothing_stored(self):
        self.serve()
        # 2,000,000 zeros: 4 MB of properties from a gzip body of a few KiB.
        zeros = '{"api_key": "%s", "batch": [{"event": "ok", "distinct_id": "u1"}, ' \
                '{"event": "big", "distinct_id": "u1", "properties": {"z": [%s0]}}]}' % (
                    self.token, "0," * 1999999)
        body = gzip.compress(zeros.encode())
        self.assertLess(len(body), 16 * 1024)
        r = self.srv.request("POST", "/batch/", raw=body, headers={"Content-Encoding": "gzip"})
        got = self.assertProblem(r, 413, "payload_too_large", attr="properties")
        self.assertIn("1048576 bytes", got["detail"])
        self.assertEqual(self.count_events(), 0)
        # Just under the limit is taken: the limit is on the serialized
        # properties ({"s":"…"} is 8 bytes more than the string).
        ok = {"api_key": self.token, "event": "fits", "distinct_id": "u1",
              "properties": {"s": "x" * (1048576 - 8)}}
        self.assertStatus(self.srv.request("POST", "/batch/", raw=gzip.compress(
            json.dumps(ok).encode()), headers={"Content-Encoding": "gzip"}), 200)
        ok["properties"]["s"] += "x"
        r = self.srv.request("POST", "/batch/", raw=gzip.compress(json.dumps(ok).encode()),
                             headers={"Content-Encoding": "gzip"})
        self.assertProblem(r, 413, "payload_too_large", attr="properties")
        self.assertEqual(self.count_events(), 1)

    # ---- a recent_events answer's budget ----------------------------------

    def vm_hwm_kib(self):
        with open("/proc/%d/status" % self.srv.proc.pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return 0

    def test_recent_events_answer_stays_within_its_budget(self):
        # Twelve events of ~1 MB: three arrays of 450,000 zeros (newest,
        # 450,001 JSON values each) under nine strings of 1,000,000 bytes;
        # as captured before the capture limit existed, nine more of 9.5 MB.
        self.env.sql(plant_sql(self.pg, 1, 9, zeros_sql(self.pg, 4750000), event="huge"))
        string = ("'{\"s\":\"' || %s || '\"}'" % ("repeat('x', 1000000)" if self.pg else
                                                  "replace(hex(zeroblob(500000)), '0', 'x')"))
        self.env.sql(plant_sql(self.pg, 1, 9, string, event="str").replace(
            "1700000000000000 + i,", "1700000000100000 + i,"))
        self.env.sql(plant_sql(self.pg, 1, 3, zeros_sql(self.pg, 450000), event="zeros").replace(
            "1700000000000000 + i,", "1700000000200000 + i,"))
        self.serve()
        self.make_endpoint("recent", {"kind": "recent_events", "limit": 1000})
        self.make_endpoint("strings", {"kind": "recent_events", "event": "str", "limit": 1000})
        self.make_endpoint("huge", {"kind": "recent_events", "event": "huge", "limit": 1000})
        before = self.vm_hwm_kib()

        # The value budget: the newest zeros array fits, the next does not.
        r, _ = self.run_endpoint("recent")
        got = self.assertStatus(r, 200)
        self.assertEqual(len(got["results"]), 1)
        self.assertEqual(got["results"][0][1], "zeros")
        self.assertIs(got.get("truncated"), True)

        # The byte budget: four strings of 1,000,000 bytes fit in 4 MiB.
        r, _ = self.run_endpoint("strings")
        got = self.assertStatus(r, 200)
        self.assertEqual(len(got["results"]), 4)
        self.assertIs(got.get("truncated"), True)
        self.assertLessEqual(len(self.srv.last_text), 4 * 1024 * 1024 + 64 * 1024)

        # One event over the budget alone: no row, and said so.
        r, _ = self.run_endpoint("huge")
        got = self.assertStatus(r, 200)
        self.assertEqual(got["results"], [])
        self.assertIs(got.get("truncated"), True)

        # An answer that fits says nothing.
        self.make_endpoint("one", {"kind": "recent_events", "event": "str", "limit": 1})
        r, _ = self.run_endpoint("one")
        self.assertNotIn("truncated", self.assertStatus(r, 200))

        if not kwtest.os.environ.get("KEYWARD_SANITIZED"):
            grew = self.vm_hwm_kib() - before
            self.assertLess(grew, 150 * 1024, "the runs took %d MiB of memory" % (grew // 1024))



class EndpointTexts(kwtest.KWTestCase):
    """Endpoint strings are limited in bytes (400, as event names are kept
    at capture), and a variable's default meets its field's range."""

    def create(self, query, variables=None, name="t"):
        body = {"name": name, "query": query}
        if variables is not None:
            body["variables"] = variables
        return self.srv.post("/api/projects/1/endpoints/", body, key=self.key)

    def test_multibyte_strings_are_limited_in_bytes(self):
        capture = {"api_key": self.token, "batch": [
            {"event": "\u00e9" * 200, "distinct_id": "u1"}]}
        self.assertStatus(self.srv.post("/batch/", capture), 200)
        # 300 characters, 600 bytes: refused, never cut to the 200 above.
        for value in ("\u00e9" * 300, "a" + "\u00e9" * 250):
            r = self.create({"kind": "event_counts", "event": value})
            self.assertProblem(r, 400, "max_length", attr="query")
            r = self.create({"kind": "property_breakdown", "property": value})
            self.assertProblem(r, 400, "max_length", attr="query")
            r = self.create({"kind": "event_counts", "event": "{variables.e}"},
                            {"e": {"type": "string", "default": value}})
            self.assertProblem(r, 400, "max_length", attr="variables")
        self.assertEqual(self.srv.get("/api/projects/1/endpoints/", key=self.key)[2]["count"], 0)
        # 400 bytes is the limit, whatever the characters.
        self.assertStatus(self.create({"kind": "event_counts", "event": "\u00e9" * 200}), 201)
        st, _, got = self.srv.post("/api/projects/1/endpoints/t/run/", {}, key=self.key)
        self.assertEqual(st, 200, got)
        self.assertEqual(got["results"], [["\u00e9" * 200, 1]])
        self.assertStatus(self.create({"kind": "event_counts", "event": "{variables.e}"},
                                      {"e": {"type": "string"}}, name="v"), 201)
        r = self.srv.post("/api/projects/1/endpoints/v/run/", {"variables": {"e": "a" + "\u00e9" * 250}},
                          key=self.key)
        self.assertProblem(r, 400, "max_length", attr="variables")

    def test_integer_default_is_checked_against_the_field(self):
        for bad in (5000, 0):
            r = self.create({"kind": "recent_events", "limit": "{variables.n}"},
                            {"n": {"type": "integer", "default": bad}})
            body = self.assertProblem(r, 400, "invalid_input", attr="variables")
            self.assertIn("between 1 and 1000", body["detail"])
        self.assertStatus(self.create({"kind": "recent_events", "limit": "{variables.n}"},
                                      {"n": {"type": "integer", "default": 5}}), 201)
        r = self.srv.patch("/api/projects/1/endpoints/t/",
                           {"variables": {"n": {"type": "integer", "default": 1001}}}, key=self.key)
        self.assertProblem(r, 400, "invalid_input", attr="variables")
        got = self.assertStatus(self.srv.get("/api/projects/1/endpoints/t/", key=self.key), 200)
        self.assertEqual(got["variables"], {"n": {"type": "integer", "default": 5}})
        # Without a default the run's value is checked, as before.
        self.assertStatus(self.create({"kind": "recent_events", "limit": "{variables.n}"},
                                      {"n": {"type": "integer"}}, name="nd"), 201)
        r = self.srv.post("/api/projects/1/endpoints/nd/run/", {"variables": {"n": 5000}},
                          key=self.key)
        self.assertProblem(r, 400, "invalid_input", attr="variables")


if __name__ == "__main__":
    kwtest.main()
