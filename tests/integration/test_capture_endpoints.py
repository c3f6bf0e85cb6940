"""test_capture_endpoints.py — capture (phc_) and endpoints over HTTP.

Capture: every body shape the PostHog SDKs send (posthog-node /batch/,
posthog-js /e/ JSON, gzip-js, form data=base64, posthog-python gzip) lands
in the events table; PostHog's 401/400 texts for bad tokens and events.
Endpoints: CRUD with scopes, run with phs_ (endpoint:read, own project
only) and phx_, typed variables, and hostile strings that stay data.
"""
import base64
import gzip
import json
import os
import sys
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kwtest  # noqa: E402

INVALID_TOKEN = ("Project API key invalid. You can find your project API key in PostHog "
                 "project settings.")
EVIL = "x'); DROP TABLE events; --"


class Capture(kwtest.KWTestCase):
    def count(self, event=None):
        if event is None:
            return self.env.sql("SELECT COUNT(*) FROM events")[0][0]
        return self.env.sql("SELECT COUNT(*) FROM events WHERE event=?", (event,))[0][0]

    def ok(self, result):
        self.assertEqual(self.assertStatus(result, 200), {"status": 1})

    def test_batch_posthog_node_shape(self):
        batch = [{"event": "signup", "distinct_id": "u%d" % i, "properties": {"$lib": "posthog-node"},
                  "timestamp": "2024-05-01T10:00:0%d.123Z" % i, "uuid": str(uuid.uuid4()),
                  "type": "capture"} for i in range(3)]
        for path in ("/batch/", "/batch"):
            self.ok(self.srv.post(path, {"api_key": self.token, "batch": batch}))
        self.assertEqual(self.count("signup"), 6)
        row = self.env.sql("SELECT uuid, distinct_id, properties, timestamp, project_id FROM events "
                           "ORDER BY id LIMIT 1")[0]
        self.assertEqual(row[0], batch[0]["uuid"])
        self.assertEqual(row[1], "u0")
        self.assertEqual(json.loads(row[2]), {"$lib": "posthog-node"})
        self.assertEqual(row[3], 1714557600123000)
        self.assertEqual(row[4], 1)

    def test_every_capture_path(self):
        for path in ("/e/", "/e", "/i/v0/e/", "/capture/", "/capture", "/track/", "/engage/"):
            self.ok(self.srv.post(path, {"token": self.token, "event": "p", "distinct_id": "d"}))
        self.assertEqual(self.count("p"), 7)

    def test_posthog_js_shapes(self):
        # one object, token in properties (posthog-js), id from properties
        self.ok(self.srv.post("/e/", {"event": "$pageview",
                                      "properties": {"token": self.token, "distinct_id": "js1"}}))
        # an array of events
        arr = [{"event": "$pageview", "properties": {"token": self.token, "distinct_id": "js%d" % i}}
               for i in range(2)]
        self.ok(self.srv.post("/e/", arr))
        # gzip-js: the gzip of the JSON, sent as text/plain
        self.ok(self.srv.request("POST", "/e/?compression=gzip-js&ver=1.0", raw=gzip.compress(
            json.dumps(arr).encode()), headers={"Content-Type": "text/plain"}))
        # form: data=<base64 of JSON>
        form = "data=" + urllib.parse.quote(base64.b64encode(json.dumps(arr).encode()).decode())
        self.ok(self.srv.request("POST", "/e/", raw=form, headers={
            "Content-Type": "application/x-www-form-urlencoded"}))
        # $token and $distinct_id ($identify-style payloads)
        self.ok(self.srv.post("/capture/", {"$token": self.token, "event": "$identify",
                                             "$distinct_id": 3}))
        self.assertEqual(self.count("$pageview"), 7)
        self.assertEqual(self.env.sql("SELECT distinct_id FROM events WHERE event='$identify'"),
                         [("3",)])

    def test_posthog_python_gzip(self):
        body = gzip.compress(json.dumps({"api_key": self.token, "batch": [
            {"event": "py", "distinct_id": "p", "properties": {}}]}).encode())
        self.ok(self.srv.request("POST", "/batch/", raw=body, headers={"Content-Encoding": "gzip"}))
        self.assertEqual(self.count("py"), 1)

    def test_gzip_bomb_and_garbage(self):
        bomb = gzip.compress(b"[" + b" " * (11 * 1024 * 1024) + b"]")
        self.assertLess(len(bomb), 1024 * 1024)
        self.assertProblem(self.srv.request("POST", "/batch/", raw=bomb, headers={
            "Content-Encoding": "gzip"}), 413, "payload_too_large")
        self.assertProblem(self.srv.request("POST", "/e/?compression=gzip-js", raw=b"\x1f\x8bnot gzip"),
                           400, "invalid_payload")
        self.assertProblem(self.srv.request("POST", "/e/", raw="{not json"), 400, "invalid_payload")

    def test_gzip_members_and_the_inflated_cap(self):
        doc = json.dumps({"api_key": self.token, "batch": [
            {"event": "membered", "distinct_id": "m", "properties": {}}]}).encode()
        gz = {"Content-Encoding": "gzip"}
        # a gzip body is a series of members: all of it is read, as gunzip does
        half = len(doc) // 2
        self.ok(self.srv.request("POST", "/batch/", raw=gzip.compress(doc[:half]) +
                                 gzip.compress(doc[half:]), headers=gz))
        self.assertEqual(self.count("membered"), 1)
        # never a 200 that drops what follows the first member
        self.assertProblem(self.srv.request("POST", "/batch/", raw=gzip.compress(doc) +
                                            gzip.compress(doc), headers=gz), 400, "invalid_payload")
        self.assertProblem(self.srv.request("POST", "/batch/", raw=gzip.compress(doc) +
                                            b"\x00\xffGARBAGE", headers=gz), 400, "invalid_payload")
        self.assertEqual(self.count("membered"), 1)
        # zero padding after the last member is not garbage (gunzip skips it)
        self.ok(self.srv.request("POST", "/batch/", raw=gzip.compress(doc) + b"\x00" * 512,
                                 headers=gz))
        self.assertEqual(self.count("membered"), 2)
        # 10 MiB inflated is allowed, one byte more is not
        cap = 10 * 1024 * 1024
        at_cap = doc + b" " * (cap - len(doc))
        self.ok(self.srv.request("POST", "/batch/", raw=gzip.compress(at_cap), headers=gz))
        self.assertEqual(self.count("membered"), 3)
        self.assertProblem(self.srv.request("POST", "/batch/", raw=gzip.compress(at_cap + b" "),
                                            headers=gz), 413, "payload_too_large")
        self.assertEqual(self.count("membered"), 3)

    def test_bad_or_missing_token(self):
        ev = {"event": "x", "distinct_id": "d"}
        self.assertProblem(self.srv.post("/e/", dict(ev, api_key="phc_nope")), 401, "invalid_api_key",
                           INVALID_TOKEN, attr=None)
        self.assertProblem(self.srv.post("/e/", ev), 401, "missing_api_key", attr=None)
        # an Authorization header never stands in for the body token
        self.assertProblem(self.srv.post("/e/", ev, key=self.key), 401, "missing_api_key")
        self.assertProblem(self.srv.post("/batch/", {"api_key": self.key, "batch": [ev]}), 401,
                           "invalid_api_key", INVALID_TOKEN)
        self.assertEqual(self.count(), 0)

    def test_invalid_events(self):
        self.assertProblem(self.srv.post("/e/", {"api_key": self.token, "distinct_id": "d"}), 400,
                           "invalid_payload",
                           'Invalid payload: All events must have the event name field "event"!',
                           attr="event")
        self.assertProblem(self.srv.post("/e/", {"api_key": self.token, "event": "e"}), 400,
                           "invalid_payload",
                           'Invalid payload: All events must have the event field "distinct_id"!',
                           attr="distinct_id")
        # one bad event refuses the whole batch: nothing is half-stored
        batch = [{"event": "ok", "distinct_id": "d"}, {"distinct_id": "d"}]
        self.assertProblem(self.srv.post("/batch/", {"api_key": self.token, "batch": batch}), 400,
                           "invalid_payload", attr="event")
        self.assertProblem(self.srv.post("/batch/", {"api_key": self.token, "batch": [
            {"event": "e", "distinct_id": "d"}] * 1001}), 413, "payload_too_large")
        self.assertEqual(self.count(), 0)


class Endpoints(kwtest.KWTestCase):
    base = "/api/projects/1/endpoints/"

    def setup_db(self):
        self.other_project = self.env.add_project(self.env.org_a, "Other")

    def capture(self, events, token=None):
        batch = [dict(e, distinct_id=e.get("distinct_id", "d")) for e in events]
        self.assertStatus(self.srv.post("/batch/", {"api_key": token or self.token, "batch": batch}), 200)

    def psk(self, project, scopes):
        body = self.assertStatus(self.srv.post(
            "/api/projects/%d/project_secret_api_keys/" % project,
            {"label": "k%s" % uuid.uuid4().hex[:8], "scopes": scopes}, key=self.key), 201)
        return body["value"]

    def create(self, body, key=None):
        return self.srv.post(self.base, body, key=key or self.key)

    def test_crud(self):
        q = {"kind": "event_counts", "event": None}
        made = self.assertStatus(self.create({"name": "counts", "description": "all", "query": q}), 201)
        self.assertEqual(made["name"], "counts")
        self.assertEqual(made["query"], q)
        self.assertEqual(made["variables"], {})
        self.assertEqual(made["created_by"]["email"], "a@x.io")
        self.assertEqual(made["endpoint_path"], "/api/projects/1/endpoints/counts/run")
        self.assertProblem(self.create({"name": "counts", "query": q}), 400, "unique", attr="name")
        for bad in ("Caps", "", "a" * 65, "sp ace", "semi;colon"):
            self.assertProblem(self.create({"name": bad, "query": q}), 400, None, attr="name")
        self.assertProblem(self.create({"name": "x"}), 400, "required", attr="query")
        self.assertProblem(self.create({"name": "x", "query": {"kind": "sql"}}), 400, None,
                           attr="query")
        listed = self.assertStatus(self.srv.get(self.base, key=self.key), 200)
        self.assertEqual(listed["count"], 1)
        got = self.assertStatus(self.srv.get(self.base + "counts/", key=self.key), 200)
        self.assertEqual(got["description"], "all")
        upd = self.assertStatus(self.srv.patch(self.base + "counts/", {"name": "counts2",
                                                                      "description": "d2"},
                                               key=self.key), 200)
        self.assertEqual(upd["name"], "counts2")
        self.assertStatus(self.srv.get(self.base + "counts/", key=self.key), 404)
        activity = self.assertStatus(self.srv.get("/api/projects/1/activity_log/?scope=Endpoint",
                                                  key=self.key), 200)
        self.assertEqual([a["activity"] for a in activity["results"]], ["updated", "created"])
        self.assertStatus(self.srv.delete(self.base + "counts2/", key=self.key), 204)
        self.assertStatus(self.srv.get(self.base + "counts2/", key=self.key), 404)

    def test_scopes(self):
        ro = self.env.cli_key_create("a@x.io", "ro", scopes="endpoint:read")
        q = {"name": "n", "query": {"kind": "unique_users"}}
        self.assertProblem(self.create(q, key=ro), 403, "permission_denied",
                           "API key missing required scope 'endpoint:write'")
        self.assertStatus(self.create(q), 201)
        self.assertStatus(self.srv.get(self.base + "n/", key=ro), 200)
        self.assertStatus(self.srv.get(self.base + "n/run/", key=ro), 200)
        # phs_ may run, never manage
        phs = self.psk(1, ["endpoint:read"])
        self.assertProblem(self.srv.get(self.base, key=phs), 403, "permission_denied")
        self.assertProblem(self.create(q, key=phs), 403, "permission_denied")

    def test_run_counts_match_captured(self):
        self.capture([{"event": "signup"}] * 3 + [{"event": "$pageview", "distinct_id": "a"},
                                                   {"event": "$pageview", "distinct_id": "b"}])
        self.capture([{"event": "signup"}] * 5, token=self.env.sql(
            "SELECT api_token FROM projects WHERE id=?", (self.other_project,))[0][0])
        self.assertStatus(self.create({
            "name": "by-event", "query": {"kind": "event_counts", "event": "{variables.event}"},
            "variables": {"event": {"type": "string", "default": "signup"}}}), 201)
        phs = self.psk(1, ["endpoint:read"])
        run = self.assertStatus(self.srv.get(self.base + "by-event/run/", key=phs), 200)
        self.assertEqual(run["columns"], ["event", "count"])
        self.assertEqual(run["results"], [["signup", 3]])
        self.assertEqual(run["name"], "by-event")
        self.assertEqual(run["kind"], "event_counts")
        run = self.assertStatus(self.srv.post(self.base + "by-event/run/",
                                              {"variables": {"event": "$pageview"}}, key=phs), 200)
        self.assertEqual(run["results"], [["$pageview", 2]])
        q = urllib.parse.quote(json.dumps({"event": "$pageview"}))
        run = self.assertStatus(self.srv.get(self.base + "by-event/run/?variables=" + q,
                                             key=self.key), 200)
        self.assertEqual(run["results"], [["$pageview", 2]])
        # phx_ runs it too
        self.assertStatus(self.srv.post(self.base + "by-event/run/", key=self.key), 200)

    def test_run_refusals(self):
        self.assertStatus(self.create({"name": "n", "query": {"kind": "unique_users"}}), 201)
        other = self.psk(self.other_project, ["endpoint:read"])
        self.assertProblem(self.srv.get(self.base + "n/run/", key=other), 403, "permission_denied",
                           "API key does not have access to the requested project: ID 1.")
        flags_only = self.psk(1, ["feature_flag:read"])
        self.assertProblem(self.srv.get(self.base + "n/run/", key=flags_only), 403,
                           "permission_denied", "API key missing required scope 'endpoint:read'")
        self.assertProblem(self.srv.get(self.base + "n/run/", key=self.token), 401,
                           "authentication_failed")
        self.assertStatus(self.srv.get(self.base + "missing/run/", key=self.key), 404)
        run = self.assertStatus(self.srv.get(self.base + "n/run/", key=self.key), 200)
        self.assertEqual(run["results"], [[0]])

    def test_variables_typed(self):
        self.assertProblem(self.create({"name": "v", "query": {"kind": "event_counts"},
                                        "variables": {"x": {"type": "sql"}}}), 400, None,
                           attr="variables")
        self.assertProblem(self.create({"name": "v", "query": {"kind": "event_counts",
                                                               "event": "{variables.nope}"}}),
                           400, None, attr="query")
        self.assertProblem(self.create({"name": "v", "query": {"kind": "event_counts",
                                                               "limit": "{variables.n}"},
                                        "variables": {"n": {"type": "string"}}}), 400, None,
                           attr="query")
        self.assertStatus(self.create({
            "name": "v", "query": {"kind": "recent_events", "limit": "{variables.n}",
                                   "date_from": "{variables.since}"},
            "variables": {"n": {"type": "integer", "default": 2},
                          "since": {"type": "date", "default": "-7d"}}}), 201)
        for bad in ({"n": "two"}, {"n": 0}, {"since": "yesterday"}, {"unknown": 1}):
            self.assertProblem(self.srv.post(self.base + "v/run/", {"variables": bad}, key=self.key),
                               400, None, attr="variables")
        self.capture([{"event": "e%d" % i} for i in range(3)])
        run = self.assertStatus(self.srv.post(self.base + "v/run/", {"variables": {"n": 1}},
                                              key=self.key), 200)
        self.assertEqual(run["columns"], ["uuid", "event", "distinct_id", "properties", "timestamp"])
        self.assertEqual(len(run["results"]), 1)

    def test_hostile_strings_are_data(self):
        props = {"plan": "' OR 1=1 --", EVIL: "v"}
        self.capture([{"event": EVIL, "properties": props}, {"event": "ok", "properties": {"plan": "p"}},
                      {"event": "ok", "properties": {"plan": "p"}}])
        self.assertEqual(self.env.sql("SELECT event, properties FROM events WHERE event=?", (EVIL,)),
                         [(EVIL, json.dumps(props, separators=(",", ":")))])
        self.assertStatus(self.create({
            "name": "b", "query": {"kind": "property_breakdown", "property": "{variables.p}",
                                   "event": "{variables.e}"},
            "variables": {"p": {"type": "string", "default": "plan"},
                          "e": {"type": "string", "default": None}}}), 201)
        run = self.assertStatus(self.srv.post(self.base + "b/run/", {"variables": {"e": EVIL}},
                                              key=self.key), 200)
        self.assertEqual(run["results"], [["' OR 1=1 --", 1]])
        run = self.assertStatus(self.srv.post(self.base + "b/run/", {"variables": {"p": EVIL}},
                                              key=self.key), 200)
        self.assertEqual(run["results"], [[None, 2], ["v", 1]])
        run = self.assertStatus(self.srv.post(self.base + "b/run/", {"variables": {
            "e": "ok' OR '1'='1"}}, key=self.key), 200)
        self.assertEqual(run["results"], [])
        self.assertEqual(self.env.sql("SELECT COUNT(*) FROM events")[0][0], 3)

    def test_interval(self):
        self.capture([{"event": "e", "timestamp": "2024-05-01T10:00:00Z"},
                      {"event": "e", "timestamp": "2024-05-01T23:00:00Z"},
                      {"event": "e", "timestamp": "2024-05-02T01:00:00+00:00"}])
        self.assertStatus(self.create({"name": "daily", "query": {
            "kind": "event_counts", "interval": "day", "date_from": "2024-05-01",
            "date_to": "2024-06-01"}}), 201)
        run = self.assertStatus(self.srv.get(self.base + "daily/run/", key=self.key), 200)
        self.assertEqual(run["columns"], ["date", "event", "count"])
        self.assertEqual(run["results"], [["2024-05-01", "e", 2], ["2024-05-02", "e", 1]])


if __name__ == "__main__":
    kwtest.main()
