"""test_group_types.py — PostHog's group analytics: group types and group flags.

Group types are learned from captured events ($groups on any event,
$group_type of $groupidentify), index 0-4 in order of first sight, at most
five per project; served as the flag definitions' group_type_mapping (a
new type changes their ETag, on this instance at once and on another
within the outside-change bound) and used by /flags and /decide to
evaluate group-aggregated flags: rollout hashed on the group key (PostHog's
rule, computed here), group properties from the request.  GET
/api/projects/:id/groups_types/ and PATCH …/update_metadata with their
credentials, scopes, tenancy and bad input.
"""
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kwtest  # noqa: E402
from kwtest import make_key, MSG_SECRET_UNSUPPORTED, MSG_INVALID_HEADER  # noqa: E402

TYPES = "/api/projects/1/groups_types/"
RENAME = "/api/projects/1/groups_types/update_metadata"
FLAGS = "/api/projects/1/feature_flags/"


def phash(key, distinct_id, salt=""):
    digest = hashlib.sha1(("%s.%s%s" % (key, distinct_id, salt)).encode()).hexdigest()
    return int(digest[:15], 16) / 0xFFFFFFFFFFFFFFF


class GroupCase(kwtest.KWTestCase):
    def capture(self, events, token=None, srv=None):
        st, _, body = (srv or self.srv).post("/batch/", {"api_key": token or self.token,
                                                         "batch": events})
        self.assertEqual(st, 200, body)

    def identify(self, group_type, key="k", **props):
        return {"event": "$groupidentify", "distinct_id": "u",
                "properties": {"$group_type": group_type, "$group_key": key,
                               "$group_set": props}}

    def with_groups(self, groups, event="pageview"):
        return {"event": event, "distinct_id": "u", "properties": {"$groups": groups}}

    def defs(self, srv=None, headers=None):
        return (srv or self.srv).get("/flags/definitions?token=" + self.token, key=self.key,
                                     headers=headers)

    def mapping(self, srv=None):
        st, _, body = self.defs(srv)
        self.assertEqual(st, 200, body)
        return body["group_type_mapping"]

    def types(self, key=None):
        return self.assertStatus(self.srv.get(TYPES, key=key or self.key), 200)


class TestLearning(GroupCase):
    def test_first_sight_order_and_etag(self):
        self.assertEqual(self.mapping(), {})
        self.assertEqual(self.types(), [])
        etag = self.defs()[1]["ETag"]
        self.capture([self.identify("company", "acme", plan="pro")])
        self.assertEqual(self.mapping(), {"0": "company"})
        st, hdrs, _ = self.defs(headers={"If-None-Match": etag})
        self.assertEqual(st, 200)
        self.assertNotEqual(hdrs["ETag"], etag)
        # $groups on any event; a known type keeps its index
        self.capture([self.with_groups({"project": "p1", "company": "acme"}),
                      self.with_groups({"team": 7})])
        self.assertEqual(self.mapping(), {"0": "company", "1": "project", "2": "team"})
        got = self.types()
        self.assertEqual([(t["group_type"], t["group_type_index"]) for t in got],
                         [("company", 0), ("project", 1), ("team", 2)])
        self.assertEqual(list(got[0].keys()), ["group_type", "group_type_index", "name_singular",
                                               "name_plural", "detail_dashboard",
                                               "default_columns", "created_at"])
        self.assertIsNone(got[0]["name_singular"])
        # an unchanged mapping: the same ETag (304)
        etag = self.defs()[1]["ETag"]
        self.capture([self.with_groups({"company": "other"}), self.identify("project")])
        self.assertEqual(self.defs(headers={"If-None-Match": etag})[0], 304)

    def test_at_most_five(self):
        self.capture([self.with_groups({"t%d" % i: "k"}) for i in range(4)])
        self.capture([self.with_groups({"t4": "k", "t5": "k"}), self.identify("t6")])
        self.assertEqual(self.mapping(), {str(i): "t%d" % i for i in range(5)})
        self.capture([self.identify("t7")])
        self.assertEqual(len(self.types()), 5)
        self.assertEqual(self.env.sql("SELECT MAX(group_type_index), COUNT(*) FROM "
                                      "group_type_mappings")[0], (4, 5))

    def test_every_capture_route_learns(self):
        self.assertEqual(self.srv.post("/e/", {"event": "$groupidentify", "properties": {
            "token": self.token, "distinct_id": "u", "$group_type": "via_e"}})[0], 200)
        st, _, _ = self.srv.request(
            "POST", "/i/v1/analytics/events", raw=json.dumps({"batch": [{
                "event": "x", "uuid": "0190d4a0-0000-7000-8000-000000000001",
                "distinct_id": "u", "timestamp": "2026-01-01T00:00:00Z", "options": {},
                "properties": {"$groups": {"via_v1": "k"}}}]}),
            headers={"Authorization": "Bearer " + self.token})
        self.assertEqual(st, 200)
        self.assertEqual(self.mapping(), {"0": "via_e", "1": "via_v1"})

    def test_odd_names_are_not_types(self):
        long = "x" * 401
        self.capture([
            self.identify(""), self.identify(long), self.identify(["company"]),
            self.identify(None), self.identify(5),
            {"event": "pageview", "distinct_id": "u", "properties": {"$group_type": "notident"}},
            self.with_groups(["company"]), self.with_groups("company"),
            self.with_groups({"": "k", long: "k", "objval": {"a": 1}, "nullval": None}),
        ])
        self.assertEqual(self.mapping(), {})
        # names are data: quotes, SQL and non-ASCII stay as sent
        odd = ["o'; DROP TABLE group_type_mappings; --", "Ünïcødé 会社", "x" * 400]
        self.capture([self.with_groups({n: "k"}) for n in odd])
        self.assertEqual(self.mapping(), {str(i): n for i, n in enumerate(odd)})

    def test_refused_capture_learns_nothing(self):
        st, _, _ = self.srv.post("/batch/", {"api_key": self.token, "batch": [
            self.identify("company"), {"event": "", "distinct_id": "u"}]})
        self.assertEqual(st, 400)
        self.assertEqual(self.mapping(), {})

    def test_projects_are_separate(self):
        self.env.tenants()
        token_b = self.env.sql("SELECT api_token FROM projects WHERE id=?",
                               (self.env.project_b,))[0][0]
        self.capture([self.identify("org_b_type")], token=token_b)
        self.capture([self.identify("company")])
        self.assertEqual(self.mapping(), {"0": "company"})
        got = self.assertStatus(self.srv.get("/api/projects/%d/groups_types/" %
                                             self.env.project_b, key=self.env.key_b), 200)
        self.assertEqual([t["group_type"] for t in got], ["org_b_type"])

    def test_other_instance_sees_new_types(self):
        other = self.start_server()
        self.assertEqual(self.mapping(other), {})  # cached there
        self.capture([self.identify("company")])
        st, _, body = self.eventually(lambda: self.defs(other) if self.mapping(other) else
                                      (0, None, None), 200)
        self.assertEqual(body["group_type_mapping"], {"0": "company"})


class TestGroupFlags(GroupCase):
    def flag(self, key, filters, **extra):
        body = dict({"key": key, "filters": filters}, **extra)
        return self.assertStatus(self.srv.post(FLAGS, body, key=self.key), 201)

    def evaluate(self, groups=None, group_properties=None, path="/flags?v=2", distinct_id="u"):
        body = {"token": self.token, "distinct_id": distinct_id}
        if groups is not None:
            body["groups"] = groups
        if group_properties is not None:
            body["group_properties"] = group_properties
        return self.assertStatus(self.srv.post(path, body), 200)

    def test_group_flag_targets_the_group(self):
        self.capture([self.identify("company", "acme"), self.identify("project")])
        self.flag("acme-only", {"aggregation_group_type_index": 0, "groups": [
            {"properties": [{"key": "name", "value": ["acme"], "operator": "exact",
                             "type": "group", "group_type_index": 0}],
             "rollout_percentage": 100}]})
        self.flag("projects", {"aggregation_group_type_index": 1,
                               "groups": [{"properties": [], "rollout_percentage": 100}]})
        on = self.evaluate({"company": "acme"}, {"company": {"name": "acme"}})["flags"]
        self.assertIs(on["acme-only"]["enabled"], True)
        self.assertEqual(on["acme-only"]["reason"]["code"], "condition_match")
        # the project type is known, but the caller sent no project
        self.assertIs(on["projects"]["enabled"], False)
        self.assertEqual(on["projects"]["reason"]["code"], "no_group_type")
        off = self.evaluate({"company": "globex"}, {"company": {"name": "globex"}})["flags"]
        self.assertIs(off["acme-only"]["enabled"], False)
        self.assertEqual(off["acme-only"]["reason"]["code"], "no_condition_match")
        none = self.evaluate()["flags"]
        self.assertEqual(none["acme-only"]["reason"]["code"], "no_group_type")
        both = self.evaluate({"company": "acme", "project": 42},
                             {"company": {"name": "acme"}})["flags"]
        self.assertIs(both["projects"]["enabled"], True)
        # legacy shapes
        legacy = self.evaluate({"company": "acme"}, {"company": {"name": "acme"}}, path="/decide/")
        self.assertIs(legacy["featureFlags"]["acme-only"], True)
        legacy = self.evaluate({"company": "globex"}, path="/decide/?v=3")
        self.assertIs(legacy["featureFlags"]["acme-only"], False)

    def test_unknown_type_index_is_no_group_type(self):
        self.flag("idx3", {"aggregation_group_type_index": 3,
                           "groups": [{"properties": [], "rollout_percentage": 100}]})
        r = self.evaluate({"company": "acme"})["flags"]["idx3"]
        self.assertEqual(r["reason"]["code"], "no_group_type")
        # learned later: the same request now evaluates
        self.capture([self.identify(t) for t in ("a", "b", "c", "company")])
        self.assertIs(self.evaluate({"company": "acme"})["flags"]["idx3"]["enabled"], True)

    def test_rollout_hashed_on_the_group_key(self):
        self.capture([self.identify("company")])
        self.flag("half", {"aggregation_group_type_index": 0,
                           "groups": [{"properties": [], "rollout_percentage": 50}]})
        enabled = 0
        for i in range(200):
            key = "company-%d" % i
            want = phash("half", key) <= 0.5
            got = self.evaluate({"company": key}, distinct_id="person-%d" % (i % 7))
            self.assertIs(got["flags"]["half"]["enabled"], want, key)
            enabled += want
        self.assertTrue(40 < enabled < 160, enabled)
        # numbers are keys too, as text
        self.assertIs(self.evaluate({"company": 12345})["flags"]["half"]["enabled"],
                      phash("half", "12345") <= 0.5)


class TestRoutes(GroupCase):
    def setUp(self):
        super().setUp()
        self.capture([self.identify("company"), self.identify("project")])

    def test_rename(self):
        got = self.assertStatus(self.srv.patch(RENAME, [
            {"group_type_index": 0, "name_singular": "Company", "name_plural": "Companies"}],
            key=self.key), 200)
        self.assertEqual([(t["name_singular"], t["name_plural"]) for t in got],
                         [("Company", "Companies"), (None, None)])
        # absent keeps, null clears; the type and index never change
        got = self.assertStatus(self.srv.patch(RENAME, [
            {"group_type_index": 0, "name_plural": None},
            {"group_type_index": 1, "name_singular": "Projekt"}], key=self.key), 200)
        self.assertEqual([(t["group_type"], t["group_type_index"], t["name_singular"],
                           t["name_plural"]) for t in got],
                         [("company", 0, "Company", None), ("project", 1, "Projekt", None)])
        self.assertEqual(self.types(), got)
        self.assertEqual(self.mapping(), {"0": "company", "1": "project"})
        self.assertStatus(self.srv.patch("/api/environments/1/groups_types/update_metadata/", [],
                                         key=self.key), 200)

    def test_bad_renames_change_nothing(self):
        before = self.types()
        cases = [
            ({"group_type_index": 0}, "invalid", "non_field_errors"),
            ("x", "parse_error", None),
            ([{"group_type_index": 0}] * 6, "max_length", "non_field_errors"),
            (["x"], "invalid", "non_field_errors"),
            ([{"name_singular": "x"}], "required", "group_type_index"),
            ([{"group_type_index": None}], "required", "group_type_index"),
            ([{"group_type_index": "0"}], "invalid", "group_type_index"),
            ([{"group_type_index": 5}], "max_value", "group_type_index"),
            ([{"group_type_index": -1}], "min_value", "group_type_index"),
            ([{"group_type_index": 2}], "invalid_input", "group_type_index"),
            ([{"group_type_index": 0, "name_singular": 5}], "invalid", "name_singular"),
            ([{"group_type_index": 0, "name_plural": "x" * 201}], "max_length", "name_plural"),
            # 200 characters, but more bytes than the stored name holds
            ([{"group_type_index": 0, "name_plural": "\U0001F600" * 101}], "max_length",
             "name_plural"),
            ([{"group_type_index": 0, "name_singular": "ok"},
              {"group_type_index": 1, "name_singular": "a\u0000b"}], "parse_error", None),
        ]
        for body, code, attr in cases:
            with self.subTest(body=str(body)[:50]):
                self.assertProblem(self.srv.patch(RENAME, body, key=self.key), 400, code,
                                   attr=attr)
        self.assertProblem(self.srv.request("PATCH", RENAME, key=self.key, raw="[{]"), 400,
                           "parse_error")
        self.assertEqual(self.types(), before)

    def test_who_may(self):
        self.env.tenants()  # B: another org; C: member (level 1) of org A
        p3 = self.env.add_project(self.env.org_a, "Second")
        psk = self.assertStatus(self.srv.post("/api/projects/1/project_secret_api_keys/",
                                              {"label": "s", "scopes": ["feature_flag:read"]},
                                              key=self.key), 201)["value"]
        reader = self.env.cli_key_create(self.env.email, "gr", scopes="group:read")
        other_project = self.env.cli_key_create(self.env.email, "p3", scopes="*", teams=str(p3))
        body = [{"group_type_index": 0, "name_singular": "Hacked"}]
        for method, path, b in (("GET", TYPES, None), ("PATCH", RENAME, body)):
            cases = [
                (None, 401, "not_authenticated", None),
                (psk, 403, "permission_denied", MSG_SECRET_UNSUPPORTED),
                (self.token, 401, "authentication_failed", MSG_INVALID_HEADER),
                (make_key("phx_"), 401, "authentication_failed", MSG_INVALID_HEADER),
                (other_project, 403, "permission_denied",
                 "API key does not have access to the requested project: ID 1."),
                (self.env.key_b, 404, "not_found", "Not found."),
            ]
            if method == "PATCH":
                cases.append((reader, 403, "permission_denied",
                              "API key missing required scope 'group:write'"))
            else:
                flags_only = self.env.cli_key_create(self.env.email, "ff",
                                                     scopes="feature_flag:read")
                cases.append((flags_only, 403, "permission_denied",
                              "API key missing required scope 'group:read'"))
            for key, status, code, detail in cases:
                with self.subTest(method=method, key=key and key[:8]):
                    self.assertProblem(self.srv.request(method, path, key=key,
                                                        body=b), status, code, detail)
        self.assertIsNone(self.types()[0]["name_singular"])
        # a member of the organization may list and rename; a reader may list
        self.assertEqual(len(self.types(key=reader)), 2)
        got = self.assertStatus(self.srv.patch(RENAME, body, key=self.env.key_c), 200)
        self.assertEqual(got[0]["name_singular"], "Hacked")


if __name__ == "__main__":
    kwtest.main()
