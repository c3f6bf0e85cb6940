"""Remote flag evaluation (POST /flags, /decide) and the flag definitions
cache: the same flag gives the same answer in an SDK's local evaluation
(computed here in Python, the way posthog-python does) and from the
server; response shapes; the project token rules; gzip bodies; changes
through the API are seen at once, changes behind the server's back within
the outside-change bound."""
import gzip
import hashlib
import json
import re
import time

import kwtest

UUID_RE = r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
TOKEN_INVALID = ("Project API key invalid. You can find your project API key in PostHog "
                 "project settings.")


def phash(key, distinct_id, salt=""):
    digest = hashlib.sha1(("%s.%s%s" % (key, distinct_id, salt)).encode()).hexdigest()
    return int(digest[:15], 16) / 0xFFFFFFFFFFFFFFF


def local_eval(flag, distinct_id, props=None):
    """posthog-python's local evaluation for the filters used here:
    conditions in order, exact/icontains properties, rollout, variants."""
    props = props or {}
    if not flag["active"] or flag["deleted"]:
        return False, None
    filters = flag["filters"]
    for group in filters.get("groups", []):
        ok = True
        for p in group.get("properties") or []:
            have = props.get(p["key"])
            op = p.get("operator", "exact")
            if have is None:
                ok = False
            elif op == "exact":
                ok = str(have).lower() == str(p["value"]).lower()
            elif op == "icontains":
                ok = str(p["value"]).lower() in str(have).lower()
            if not ok:
                break
        if not ok:
            continue
        pct = group.get("rollout_percentage")
        if pct is not None and phash(flag["key"], distinct_id) > pct / 100:
            continue
        variants = (filters.get("multivariate") or {}).get("variants") or []
        if not variants:
            return True, None
        h, low = phash(flag["key"], distinct_id, "variant"), 0.0
        for v in variants:
            high = low + v["rollout_percentage"] / 100
            if low <= h < high:
                return True, v["key"]
            low = high
        return True, None
    return False, None


class FlagsEval(kwtest.KWTestCase):

    def make_flag(self, key, filters, active=True, name=None):
        r = self.srv.post("/api/projects/1/feature_flags/", {
            "key": key, "name": key.upper() if name is None else name, "active": active,
            "filters": filters}, key=self.key)
        return self.assertStatus(r, 201)

    def make_phs(self):
        r = self.srv.post("/api/projects/1/project_secret_api_keys/",
                          {"label": "sdk", "scopes": ["feature_flag:read"]}, key=self.key)
        return self.assertStatus(r, 201)["value"]

    def definitions(self, phs):
        return self.assertStatus(self.srv.get("/flags/definitions?token=%s" % self.token, key=phs), 200)

    def evaluate(self, distinct_id, path="/flags/?v=2", **extra):
        body = {"token": self.token, "distinct_id": distinct_id}
        body.update(extra)
        return self.assertStatus(self.srv.post(path, body), 200)

    # -- same answer locally and remotely ----------------------------------

    def test_rollout_matches_local_evaluation(self):
        self.make_flag("rollout-30", {"groups": [{"properties": [], "rollout_percentage": 30}]})
        defs = self.definitions(self.make_phs())
        flag = defs["flags"][0]
        enabled = 0
        for i in range(200):
            did = "user-%d" % i
            want, _ = local_eval(flag, did)
            got = self.evaluate(did)["flags"]["rollout-30"]
            self.assertEqual(got["enabled"], want, did)
            self.assertEqual(got["reason"]["code"],
                             "condition_match" if want else "out_of_rollout_bound", did)
            enabled += want
        self.assertTrue(40 <= enabled <= 80, enabled)  # ~30% of 200
        # the legacy shape agrees
        for i in range(20):
            did = "user-%d" % i
            legacy = self.evaluate(did, path="/flags")
            self.assertEqual(legacy["featureFlags"]["rollout-30"], local_eval(flag, did)[0])

    def test_multivariate_matches_local_evaluation(self):
        self.make_flag("mv", {"groups": [{"properties": [], "rollout_percentage": 100}],
                              "multivariate": {"variants": [
                                  {"key": "control", "rollout_percentage": 50},
                                  {"key": "blue", "rollout_percentage": 30},
                                  {"key": "green", "rollout_percentage": 20}]},
                              "payloads": {"blue": "{\"color\": \"#00f\"}"}})
        flag = self.definitions(self.make_phs())["flags"][0]
        seen = set()
        for i in range(100):
            did = "mv-%d" % i
            _, variant = local_eval(flag, did)
            got = self.evaluate(did)["flags"]["mv"]
            self.assertEqual(got["variant"], variant, did)
            self.assertTrue(got["enabled"])
            self.assertEqual(got["metadata"]["payload"],
                             "{\"color\": \"#00f\"}" if variant == "blue" else None)
            legacy = self.evaluate(did, path="/decide/?v=3")
            self.assertEqual(legacy["featureFlags"]["mv"], variant)
            if variant == "blue":
                self.assertEqual(legacy["featureFlagPayloads"], {"mv": "{\"color\": \"#00f\"}"})
            else:
                self.assertEqual(legacy["featureFlagPayloads"], {})
            seen.add(variant)
        self.assertEqual(seen, {"control", "blue", "green"})

    def test_property_match(self):
        self.make_flag("staff", {"groups": [{"properties": [
            {"key": "email", "operator": "icontains", "value": "@acme.com", "type": "person"}],
            "rollout_percentage": 100}]})
        yes = self.evaluate("u1", person_properties={"email": "Ann@ACME.com"})["flags"]["staff"]
        self.assertTrue(yes["enabled"])
        self.assertEqual(yes["reason"], {"code": "condition_match", "condition_index": 0,
                                         "description": "Matched condition set 1"})
        no = self.evaluate("u1", person_properties={"email": "bob@other.org"})["flags"]["staff"]
        self.assertFalse(no["enabled"])
        self.assertEqual(no["reason"]["code"], "no_condition_match")
        missing = self.evaluate("u1")["flags"]["staff"]
        self.assertFalse(missing["enabled"])

    # -- shapes ------------------------------------------------------------

    def test_v2_shape(self):
        on = self.make_flag("on", {"groups": [{"properties": [], "rollout_percentage": 100}],
                                   "payloads": {"true": "{\"a\": 1}"}})
        self.make_flag("off", {"groups": [{"properties": [], "rollout_percentage": 100}]},
                       active=False, name="")
        before = int(time.time() * 1000)
        body = self.evaluate("someone")
        after = int(time.time() * 1000)
        self.assertEqual(list(body.keys()), ["errorsWhileComputingFlags", "flags", "requestId",
                                             "evaluatedAt"])
        self.assertIs(body["errorsWhileComputingFlags"], False)
        self.assertRegex(body["requestId"], UUID_RE)
        self.assertTrue(before <= body["evaluatedAt"] <= after, body["evaluatedAt"])
        self.assertEqual(body["flags"]["on"], {
            "key": "on", "enabled": True, "variant": None,
            "reason": {"code": "condition_match", "condition_index": 0,
                       "description": "Matched condition set 1"},
            "metadata": {"id": on["id"], "version": 1, "description": "ON",
                         "payload": "{\"a\": 1}"}})
        off = body["flags"]["off"]
        self.assertFalse(off["enabled"])
        self.assertEqual(off["reason"], {"code": "flag_disabled", "condition_index": None,
                                         "description": "Feature flag is disabled"})
        self.assertIsNone(off["metadata"]["description"])
        self.assertIsNone(off["metadata"]["payload"])
        # /decide?v=4 is the same shape; a fresh requestId each time
        again = self.evaluate("someone", path="/decide/?v=4")
        self.assertEqual(again["flags"], body["flags"])
        self.assertNotEqual(again["requestId"], body["requestId"])

    def test_legacy_shapes(self):
        self.make_flag("on", {"groups": [{"properties": [], "rollout_percentage": 100}],
                              "payloads": {"true": "{\"a\": 1}"}})
        self.make_flag("off", {"groups": [{"properties": [], "rollout_percentage": 100}]},
                       active=False)
        for path in ("/flags", "/flags/?v=1", "/decide/", "/decide?v=3"):
            body = self.evaluate("someone", path=path)
            self.assertEqual(list(body.keys()), [
                "featureFlags", "featureFlagPayloads", "errorsWhileComputingFlags", "config",
                "toolbarParams", "isAuthenticated", "supportedCompression", "sessionRecording",
                "requestId", "evaluatedAt"], path)
            self.assertEqual(body["featureFlags"], {"off": False, "on": True}, path)
            self.assertEqual(body["featureFlagPayloads"], {"on": "{\"a\": 1}"}, path)
            self.assertEqual(body["config"], {"enable_collect_everything": True})
            self.assertEqual(body["supportedCompression"], ["gzip", "gzip-js"])
            self.assertIs(body["isAuthenticated"], False)
            self.assertIs(body["sessionRecording"], False)
        # PostHog's older decide versions: enabled flags only
        self.assertEqual(self.evaluate("someone", path="/decide/?v=2")["featureFlags"], {"on": True})
        self.assertEqual(self.evaluate("someone", path="/decide/?v=1")["featureFlags"], ["on"])

    def test_token_fields_and_distinct_id(self):
        self.make_flag("on", {"groups": [{"properties": [], "rollout_percentage": 100}]})
        for field in ("token", "api_key", "$token"):
            r = self.srv.post("/flags/?v=2", {field: self.token, "distinct_id": "x"})
            self.assertTrue(self.assertStatus(r, 200)["flags"]["on"]["enabled"], field)
        # ids longer than 200 characters are truncated (whole characters)
        self.make_flag("half", {"groups": [{"properties": [], "rollout_percentage": 50}]})
        flag = [f for f in self.definitions(self.make_phs())["flags"] if f["key"] == "half"][0]
        seen = set()
        for i in range(40):
            did = "€" * (190 + i) + "tail"
            want = local_eval(flag, did[:200])[0]
            seen.add(want)
            self.assertEqual(self.evaluate(did)["flags"]["half"]["enabled"], want, i)
        self.assertEqual(seen, {True, False})
        # an integer distinct_id is read as its decimal text
        r = self.srv.post("/flags/?v=2", {"token": self.token, "distinct_id": 42})
        self.assertStatus(r, 200)
        self.assertProblem(self.srv.post("/flags/?v=2", {"token": self.token}), 400, "required",
                           "The distinct_id field is missing from the request. Please include a "
                           "valid identifier.", "distinct_id")
        self.assertProblem(self.srv.post("/flags/?v=2", {"token": self.token, "distinct_id": ""}),
                           400, "invalid_input", None, "distinct_id")

    def test_bad_tokens(self):
        phs = self.make_phs()
        expect = dict(status=401, code="invalid_api_key", detail=TOKEN_INVALID, attr=None,
                      type_="authentication_error")
        # No token in the body at all: PostHog's "not provided" answer (the
        # same as capture's), whatever Authorization header comes along.
        missing = dict(status=401, code="missing_api_key", attr=None, type_="authentication_error",
                       detail="API key not provided. You can find your project API key in PostHog "
                              "project settings.")
        cases = [
            ({"distinct_id": "x"}, None, missing),                                   # none
            ({"token": kwtest.make_key("phc_"), "distinct_id": "x"}, None, expect),  # unknown
            ({"token": kwtest.bad_checksum(self.token), "distinct_id": "x"}, None, expect),
            ({"token": self.key, "distinct_id": "x"}, None, expect),        # a phx_ in the body
            ({"token": phs, "distinct_id": "x"}, None, expect),             # a phs_ in the body
            ({"distinct_id": "x"}, phs, missing),                           # phs_ header alone
            ({"distinct_id": "x"}, self.key, missing),                      # phx_ header alone
        ]
        for body, header, want in cases:
            for path in ("/flags/?v=2", "/decide/"):
                r = self.srv.post(path, body, key=header)
                self.assertProblem(r, **want)
                self.assertEqual(r[1]["Access-Control-Allow-Origin"], "*")
        # a header never replaces the body token, and never spoils a good one
        r = self.srv.post("/flags/?v=2", {"token": self.token, "distinct_id": "x"}, key=phs)
        self.assertStatus(r, 200)
        r = self.srv.post("/flags/?v=2", {"token": self.token, "distinct_id": "x"},
                          key=kwtest.make_key("phx_"))
        self.assertStatus(r, 200)
        # only POST
        self.assertProblem(self.srv.get("/flags/?v=2"), 405, "method_not_allowed")

    # -- gzip ----------------------------------------------------------------

    def test_gzip_bodies(self):
        self.make_flag("on", {"groups": [{"properties": [], "rollout_percentage": 100}]})
        raw = gzip.compress(json.dumps({"token": self.token, "distinct_id": "z"}).encode())
        for path, headers in (("/flags/?v=2", {"Content-Encoding": "gzip"}),
                              ("/flags/?v=2&compression=gzip-js", {}),
                              ("/decide/?v=4&compression=gzip", {})):
            r = self.srv.request("POST", path, raw=raw, headers=headers)
            self.assertTrue(self.assertStatus(r, 200)["flags"]["on"]["enabled"], path)
        self.assertProblem(self.srv.request("POST", "/flags/?v=2&compression=gzip-js",
                                            raw=b"not gzip at all"), 400, "invalid_payload")
        self.assertProblem(self.srv.request("POST", "/flags/?v=2&compression=gzip-js",
                                            raw=raw[:-12]), 400, "invalid_payload")
        # a body that inflates past 10 MiB is refused without inflating it all
        bomb = gzip.compress(b"{\"pad\": \"" + b"a" * (11 * 1024 * 1024) + b"\"}")
        self.assertLess(len(bomb), 1024 * 1024)
        self.assertProblem(self.srv.request("POST", "/flags/?v=2", raw=bomb,
                                            headers={"Content-Encoding": "gzip"}),
                           413, "payload_too_large")

    # -- definitions: methods, cache, freshness ------------------------------

    def test_definitions_methods(self):
        phs = self.make_phs()
        routes = ("/flags/definitions?token=%s" % self.token,
                  "/api/feature_flag/local_evaluation/?token=%s" % self.token,
                  "/api/projects/1/feature_flags/local_evaluation/")
        for path in routes:
            st, hdrs, _ = self.srv.request("OPTIONS", path)
            self.assertEqual(st, 204, path)
            self.assertEqual(hdrs["Allow"], "GET, HEAD, OPTIONS", path)
            self.assertEqual(self.srv.last_text, "")
            st, hdrs, _ = self.srv.request("HEAD", path, key=phs)
            self.assertEqual(st, 200, path)
            self.assertEqual(self.srv.last_text, "")
            self.assertRegex(hdrs["ETag"], r'^W/"[0-9a-f]{32}"$')
            self.assertProblem(self.srv.request("PUT", path, key=phs), 405, "method_not_allowed")
        st, hdrs, _ = self.srv.request("OPTIONS", "/flags/?v=2")
        self.assertEqual(st, 204)
        self.assertEqual(hdrs["Allow"], "POST, OPTIONS")
        self.assertEqual(hdrs["Access-Control-Allow-Origin"], "*")
        self.assertProblem(self.srv.request("OPTIONS", "/nowhere"), 404, "not_found")

    def test_definitions_unchanged_etag(self):
        self.make_flag("a", {"groups": [{"properties": [], "rollout_percentage": 10}]})
        phs = self.make_phs()
        path = "/flags/definitions?token=%s" % self.token
        st, hdrs, first = self.srv.get(path, key=phs)
        etag = hdrs["ETag"]
        for _ in range(5):
            st, hdrs, body = self.srv.get(path, key=phs)
            self.assertEqual((st, hdrs["ETag"], body), (200, etag, first))
            st, hdrs, _ = self.srv.get(path, key=phs, headers={"If-None-Match": etag})
            self.assertEqual((st, hdrs["ETag"]), (304, etag))
        # If-None-Match is a list of tags, or "*" (a cache that kept several
        # versions sends them all)
        # (weak comparison: the strong form of the tag matches too)
        for inm in ('"other", ' + etag, 'W/"x",' + etag, "*", " %s " % etag,
                    etag.replace("W/", "")):
            st, _, _ = self.srv.get(path, key=phs, headers={"If-None-Match": inm})
            self.assertEqual(st, 304, inm)
        for inm in ('"other"', 'W/"x", W/"y"', etag[:-2] + '"', "**", "W/", 'W/""'):
            st, _, body = self.srv.get(path, key=phs, headers={"If-None-Match": inm})
            self.assertEqual((st, body), (200, first), inm)

    def test_api_change_visible_at_once(self):
        flag = self.make_flag("switch", {"groups": [{"properties": [], "rollout_percentage": 0}]})
        phs = self.make_phs()
        path = "/flags/definitions?token=%s" % self.token
        st, hdrs, _ = self.srv.get(path, key=phs)
        etag = hdrs["ETag"]
        self.assertFalse(self.evaluate("u")["flags"]["switch"]["enabled"])
        self.assertStatus(self.srv.patch("/api/projects/1/feature_flags/%d/" % flag["id"], {
            "filters": {"groups": [{"properties": [], "rollout_percentage": 100}]}},
            key=self.key), 200)
        # no wait: the write bumped this server's cache
        self.assertTrue(self.evaluate("u")["flags"]["switch"]["enabled"])
        st, hdrs, body = self.srv.get(path, key=phs, headers={"If-None-Match": etag})
        self.assertEqual(st, 200)
        self.assertNotEqual(hdrs["ETag"], etag)
        self.assertEqual(body["flags"][0]["filters"]["groups"][0]["rollout_percentage"], 100)
        self.assertEqual(body["flags"][0]["version"], 2)
        # deleting removes it at once
        self.assertStatus(self.srv.delete("/api/projects/1/feature_flags/%d/" % flag["id"],
                                          key=self.key), 204)
        self.assertEqual(self.evaluate("u")["flags"], {})
        self.assertEqual(self.definitions(phs)["flags"], [])

    def test_outside_change_visible_within_bound(self):
        flag = self.make_flag("outside", {"groups": [{"properties": [], "rollout_percentage": 0}]})
        phs = self.make_phs()
        self.assertFalse(self.evaluate("u")["flags"]["outside"]["enabled"])
        self.definitions(phs)  # both routes now answer from the cache
        self.env.sql("UPDATE feature_flags SET filters = ?, version = version + 1 WHERE id = ?",
                     (json.dumps({"groups": [{"properties": [], "rollout_percentage": 100}]}),
                      flag["id"]))

        def evaluated():
            r = self.srv.post("/flags/?v=2", {"token": self.token, "distinct_id": "u"})
            return (r[0] if r[2]["flags"]["outside"]["enabled"] else 0), r[1], r[2]
        self.eventually(evaluated, 200)
        self.assertTrue(self.evaluate("u")["flags"]["outside"]["enabled"])
        self.assertEqual(self.definitions(phs)["flags"][0]["version"], 2)
        # a flag inserted behind the server's back appears too
        self.env.sql("INSERT INTO feature_flags(project_id, key, name, filters, created_at, "
                     "updated_at) VALUES (1, 'inserted', '', '{\"groups\":[]}', 0, 0)")
        r = self.eventually(lambda: (200 if "inserted" in self.evaluate("u")["flags"] else 0,
                                     None, None), 200)
        self.assertEqual(r[0], 200)

    def test_token_reset_seen(self):
        self.make_flag("on", {"groups": [{"properties": [], "rollout_percentage": 100}]})
        old = self.token
        self.evaluate("u")  # cached
        r = self.srv.patch("/api/projects/1/reset_token/", {}, key=self.key)
        new = self.assertStatus(r, 200)["api_token"]
        self.assertProblem(self.srv.post("/flags/?v=2", {"token": old, "distinct_id": "u"}),
                           401, "invalid_api_key")
        self.assertStatus(self.srv.post("/flags/?v=2", {"token": new, "distinct_id": "u"}), 200)
        # a change behind the server's back: the auth generation trigger
        newer = kwtest.make_key("phc_")
        self.env.sql("UPDATE projects SET api_token = ? WHERE id = 1", (newer,))
        r = self.eventually(lambda: self.srv.post("/flags/?v=2", {"token": new, "distinct_id": "u"}),
                            401)
        self.assertProblem(r, 401, "invalid_api_key")
        self.assertStatus(self.srv.post("/flags/?v=2", {"token": newer, "distinct_id": "u"}), 200)

    # -- member-written regexes run under bounds ---------------------------

    def test_regex_limits_refused_at_write(self):
        def rx(value):
            return {"key": "a", "operator": "regex", "value": value, "type": "person"}
        path = "/api/projects/1/feature_flags/"
        cases = [([rx("a")] * 21, "at most 20 regex filters"),
                 ([rx("a" * 1025)], "at most 1024 bytes"),
                 ([{"key": "a", "operator": "not_regex", "value": "b" * 1025}], "at most 1024 bytes")]
        for props, text in cases:
            r = self.srv.post(path, {"key": "rx", "filters": {"groups": [{"properties": props}]}},
                              key=self.key)
            body = self.assertStatus(r, 400)
            self.assertEqual((body["type"], body["attr"]), ("validation_error", "filters"))
            self.assertIn(text, body["detail"])
        # the limits themselves are allowed, spread over conditions too
        groups = [{"properties": [rx("b" * 1024)] * 10}, {"properties": [rx("c")] * 10}]
        flag = self.make_flag("rx-max", {"groups": groups})
        st, _, body = self.srv.patch(path + "%d/" % flag["id"], {"filters": {"groups": groups + [
            {"properties": [rx("d")]}]}}, key=self.key)
        self.assertEqual(st, 400, body)
        self.assertIn("at most 20 regex filters", body["detail"])
        got = self.assertStatus(self.srv.get(path + "%d/" % flag["id"], key=self.key), 200)
        self.assertEqual(got["filters"]["groups"], groups)  # unchanged

    def test_hostile_regex_costs_no_time(self):
        # every filter its own condition, so each one is matched; on a
        # long value each of these backtracks catastrophically
        hostile = ["(a+)+$", "(a|aa)+$", "^(a+)+$", "(\\w+)+$", "(a|a)+$"]
        for i in range(20):
            self.make_flag("hostile-%02d" % i, {"groups": [
                {"properties": [{"key": "v", "operator": "regex",
                                 "value": hostile[j % len(hostile)], "type": "person"}],
                 "rollout_percentage": 100} for j in range(20)]})
        self.make_flag("plain", {"groups": [{"properties": [
            {"key": "email", "operator": "regex", "value": "@acme\\.com$", "type": "person"}],
            "rollout_percentage": 100}]})
        start = time.monotonic()
        got = self.evaluate("u", person_properties={"v": "a" * 30000 + "!",
                                                    "email": "ann@acme.com"})["flags"]
        elapsed = time.monotonic() - start
        self.assertLess(elapsed, 2.0)  # 8.9 s before the bounds, 0.12 s after
        for i in range(20):
            self.assertFalse(got["hostile-%02d" % i]["enabled"])
        # the budget is per request: the next one matches ordinary patterns
        got = self.evaluate("u", person_properties={"email": "ann@acme.com"})["flags"]
        self.assertTrue(got["plain"]["enabled"])


if __name__ == "__main__":
    kwtest.main()
