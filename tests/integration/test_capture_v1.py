"""test_capture_v1.py — posthog-node 5's newer capture routes, as it sends them.

POST /i/v1/analytics/events (Capture V1, POSTHOG_CAPTURE_MODE=v1): the phc_
token as a bearer token (the one phc_ route that reads Authorization), a
{created_at, batch} body whose events carry session_id / window_id and
typed options, gzip with Content-Encoding, PostHog-Sdk-Info naming the
library.  Events land as on /batch/, with what the SDK lifted out of the
properties put back.  POST /i/v0/ai/batch/ (captureAi): the /batch/ body.
Refusals: PostHog's capture texts, the whole batch refused, nothing stored.
(tests/sdk/ runs the real posthog-node 5 against both.)
"""
import gzip
import json
import os
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kwtest  # noqa: E402

V1 = "/i/v1/analytics/events"
AI = "/i/v0/ai/batch/"
SDK_INFO = "posthog-node/5.70.0"
INVALID_TOKEN = ("Project API key invalid. You can find your project API key in PostHog "
                 "project settings.")


def v1_event(i, **extra):
    e = {"event": "v1 event", "uuid": str(uuid.uuid4()), "distinct_id": "user-%d" % i,
         "timestamp": "2026-01-02T03:04:05.123456Z", "options": {}, "properties": {"i": i}}
    e.update(extra)
    return e


class CaptureV1(kwtest.KWTestCase):
    def send(self, body, token=None, gz=False, sdk_info=SDK_INFO, headers=None, raw=None):
        data = raw if raw is not None else json.dumps(body).encode()
        h = {"Content-Type": "application/json", "PostHog-Attempt": "1",
             "PostHog-Request-Id": str(uuid.uuid4()),
             "PostHog-Request-Timestamp": "2026-01-02T03:04:06.000Z"}
        if token is not False:
            h["Authorization"] = "Bearer " + (token or self.token)
        if sdk_info is not None:
            h["PostHog-Sdk-Info"] = sdk_info
        if gz:
            data = gzip.compress(data)
            h["Content-Encoding"] = "gzip"
        h.update(headers or {})
        return self.srv.request("POST", V1, raw=data, headers=h)

    def rows(self, event="v1 event"):
        return [(r[0], r[1], json.loads(r[2]), r[3], r[4]) for r in self.env.sql(
            "SELECT uuid, distinct_id, properties, timestamp, project_id FROM events "
            "WHERE event=? ORDER BY id", (event,))]

    def count(self):
        return self.env.sql("SELECT COUNT(*) FROM events")[0][0]

    def test_batch_stored_with_properties_folded_back(self):
        events = [v1_event(0, session_id="s-0", window_id="w-0",
                           options={"process_person_profile": False, "cookieless_mode": True,
                                    "disable_skew_correction": True, "product_tour_id": "t1"}),
                  v1_event(1, properties={"i": 1, "$set": {"plan": "pro"}}),
                  v1_event(2, options={}, properties={"i": 2, "$lib": "custom-lib",
                                                      "$session_id": "kept"},
                           session_id="lifted")]
        for gz in (False, True):
            with self.subTest(gz=gz):
                st, hdrs, body = self.send({"created_at": "2026-01-02T03:04:06.000Z",
                                            "batch": events}, gz=gz)
                self.assertEqual((st, body), (200, {"results": {}}))
                self.assertEqual(hdrs["Access-Control-Allow-Origin"], "*")
        rows = self.rows()
        self.assertEqual(len(rows), 6)
        by_i = {r[2]["i"]: r for r in rows[:3]}
        u, did, props, ts, project = by_i[0]
        self.assertEqual((u, did, ts, project), (events[0]["uuid"], "user-0", 1767323045123456, 1))
        self.assertEqual(props, {"i": 0, "$session_id": "s-0", "$window_id": "w-0",
                                 "$process_person_profile": False, "$cookieless_mode": True,
                                 "$ignore_sent_at": True, "$product_tour_id": "t1",
                                 "$lib": "posthog-node", "$lib_version": "5.70.0"})
        self.assertEqual(by_i[1][2]["$set"], {"plan": "pro"})
        # what the properties already say wins over the lifted fields
        self.assertEqual(by_i[2][2]["$lib"], "custom-lib")
        self.assertEqual(by_i[2][2]["$session_id"], "kept")
        self.assertEqual(by_i[2][2]["$lib_version"], "5.70.0")

    def test_historical_and_empty(self):
        st, _, body = self.send({"created_at": "x", "historical_migration": True,
                                 "batch": [v1_event(0)]})
        self.assertEqual((st, body), (200, {"results": {}}))
        self.assertEqual((self.send({"created_at": "x", "batch": []})[0]), 200)
        self.assertEqual(self.count(), 1)

    def test_sdk_info_odd_or_missing(self):
        for info in (None, "", "posthog-node", "/5.0", "posthog node/5", "a/" + "9" * 100,
                     'x"y/1', "posthog-node/5.70.0/extra"):
            with self.subTest(info=info):
                self.assertEqual(self.send({"batch": [v1_event(0)]}, sdk_info=info)[0], 200)
        libs = [(r[2].get("$lib"), r[2].get("$lib_version")) for r in self.rows()]
        self.assertEqual(libs[:7], [(None, None)] * 7)
        self.assertEqual(libs[7], ("posthog-node/5.70.0", "extra"))

    def test_token_only_as_bearer(self):
        self.env.tenants()
        token_b = self.env.sql("SELECT api_token FROM projects WHERE id=?",
                               (self.env.project_b,))[0][0]
        body = {"batch": [v1_event(0)]}
        self.assertProblem(self.send(body, token=False), 401, "missing_api_key")
        # a token in the body is not read on this route
        self.assertProblem(self.send(dict(body, api_key=self.token), token=False), 401,
                           "missing_api_key")
        self.assertProblem(self.send(body, headers={"Authorization": "Basic " + self.token}),
                           401, "missing_api_key")
        self.assertProblem(self.send(body, headers={"Authorization": "Bearer "}), 401,
                           "missing_api_key")
        for bad in (kwtest.make_key("phc_"), kwtest.bad_checksum(self.token), self.key,
                    self.env.key_b, "x" * 5000, "phc_"):
            with self.subTest(bad=bad[:10]):
                self.assertProblem(self.send(body, token=bad), 401, "invalid_api_key",
                                   INVALID_TOKEN)
        self.assertEqual(self.count(), 0)
        # another project's token: its project, never ours
        self.assertEqual(self.send(body, token=token_b)[0], 200)
        self.assertEqual(self.send(body, headers={"Authorization": "bearer  " + self.token})[0],
                         200)
        self.assertEqual(sorted(r[4] for r in self.rows()), [1, self.env.project_b])

    def test_refused_batches_store_nothing(self):
        ok = v1_event(0)
        cases = [
            ({"batch": [ok, {"uuid": "u", "distinct_id": "d", "options": {}}]}, 400, "event"),
            ({"batch": [ok, v1_event(1, event="")]}, 400, "event"),
            ({"batch": [ok, v1_event(1, distinct_id="")]}, 400, "distinct_id"),
            ({"batch": [ok, v1_event(1, options=[1])]}, 400, "options"),
            ({"batch": [ok, v1_event(1, options="x")]}, 400, "options"),
            ({"batch": [ok, v1_event(1, properties=[1])]}, 400, "properties"),
            ({"batch": [ok, v1_event(1, properties={"x": "a\u0000b"})]}, 400, None),
            ({"batch": [ok, "not an event"]}, 400, None),
            ({"batch": {"0": ok}}, 400, "batch"),
            ({"events": [ok]}, 400, "batch"),
            ({"batch": [ok] * 1001}, 413, None),
        ]
        for body, status, attr in cases:
            with self.subTest(body=str(body)[:60]):
                r = self.assertProblem(self.send(body), status, None)
                if status == 400:
                    self.assertEqual(r["code"], "invalid_payload")
                    if attr:
                        self.assertEqual(r["attr"], attr)
        for raw in (b"[]", b'"x"', b"{", b"", b"\xff\xfe"):
            with self.subTest(raw=raw):
                st, _, body = self.send(None, raw=raw)
                self.assertEqual(st, 400, body)
        st, _, body = self.send(None, raw=b"not gzip", headers={"Content-Encoding": "gzip"})
        self.assertEqual(st, 400, body)
        self.assertEqual(self.count(), 0)

    def test_methods_and_preflight(self):
        st, hdrs, _ = self.srv.request("OPTIONS", V1)
        self.assertEqual(st, 204)
        self.assertEqual(hdrs["Access-Control-Allow-Origin"], "*")
        self.assertEqual(hdrs["Allow"], "POST, OPTIONS")
        self.assertProblem(self.srv.get(V1), 405, None)
        self.assertEqual(self.srv.request("POST", V1 + "/", raw=json.dumps(
            {"batch": [v1_event(0)]}), headers={"Authorization": "Bearer " + self.token})[0], 200)


class AiBatch(kwtest.KWTestCase):
    def test_posthog_node_body_plain_and_gzip(self):
        batch = [{"event": "$ai_generation", "distinct_id": "u", "uuid": str(uuid.uuid4()),
                  "timestamp": "2026-01-02T03:04:05Z", "type": "capture",
                  "properties": {"$ai_model": "m", "$lib": "posthog-node", "n": i}}
                 for i in range(3)]
        body = {"api_key": self.token, "batch": batch, "sent_at": "2026-01-02T03:04:06Z"}
        for path in (AI, AI.rstrip("/")):
            st, hdrs, resp = self.srv.post(path, body)
            self.assertEqual((st, resp), (200, {"status": 1}))
            self.assertEqual(hdrs["Access-Control-Allow-Origin"], "*")
        st, _, resp = self.srv.request("POST", AI, raw=gzip.compress(json.dumps(body).encode()),
                                       headers={"Content-Encoding": "gzip"})
        self.assertEqual((st, resp), (200, {"status": 1}))
        rows = self.env.sql("SELECT properties, project_id FROM events WHERE event='$ai_generation'")
        self.assertEqual(len(rows), 9)
        self.assertEqual({r[1] for r in rows}, {1})
        self.assertEqual(json.loads(rows[0][0])["$ai_model"], "m")

    def test_token_from_body_only(self):
        batch = [{"event": "$ai_span", "distinct_id": "u"}]
        self.assertProblem(self.srv.post(AI, {"batch": batch}, key=self.key), 401,
                           "missing_api_key")
        self.assertProblem(self.srv.post(AI, {"batch": batch},
                                         headers={"Authorization": "Bearer " + self.token}),
                           401, "missing_api_key")
        self.assertProblem(self.srv.post(AI, {"api_key": kwtest.make_key("phc_"),
                                              "batch": batch}), 401, "invalid_api_key")
        self.assertProblem(self.srv.post(AI, {"api_key": self.token, "batch": [{"event": "x"}]}),
                           400, "invalid_payload")
        self.assertEqual(self.env.sql("SELECT COUNT(*) FROM events")[0][0], 0)
        self.assertProblem(self.srv.get(AI), 405, None)


if __name__ == "__main__":
    kwtest.main()
