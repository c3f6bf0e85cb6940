"""Route policy over HTTP: health, credentials and their exact
401/403 texts, scope enforcement, tenancy between users/orgs/projects,
membership levels, path aliases, 404/405."""
import kwtest
from kwtest import (KWTestCase, MSG_INVALID_BODY, MSG_INVALID_HEADER, MSG_INVALID_QUERY,
                    MSG_LEVEL, MSG_NOT_PROVIDED, MSG_SECRET_UNSUPPORTED, bad_checksum, make_key,
                    legacy_key)

PK = "/api/personal_api_keys/"


def with_key(test, scopes, label="k", key=None, **extra):
    body = {"label": label, "scopes": scopes}
    body.update(extra)
    st, _, created = test.srv.post(PK, body, key=key or test.key)
    test.assertEqual(st, 201, created)
    return created["value"]


class TestHealth(KWTestCase):
    def test_health(self):
        for path in ("/_health", "/_health/"):
            with self.subTest(path=path):
                st, hdrs, body = self.srv.get(path)
                self.assertEqual(st, 200, body)
                self.assertIsInstance(body, dict)
                self.assertEqual(hdrs.get("X-Content-Type-Options"), "nosniff")
                self.assertTrue(hdrs.get("Content-Type", "").startswith("application/json"))

    def test_health_ignores_bad_credentials(self):
        for key in ("garbage", make_key(), make_key("phs_"), self.token):
            with self.subTest(key=key[:6]):
                self.assertEqual(self.srv.get("/_health", key=key)[0], 200)

    def test_security_headers_on_errors_and_api(self):
        for args in (("GET", "/api/projects/", None), ("GET", "/api/projects/", self.key),
                     ("GET", "/nope", None), ("DELETE", "/_health", None)):
            with self.subTest(args=args):
                st, hdrs, body = self.srv.request(args[0], args[1], key=args[2])
                self.assertEqual(hdrs.get("X-Content-Type-Options"), "nosniff")
                self.assertTrue(hdrs.get("Content-Type", "").startswith("application/json"))
                self.assertIsNotNone(body)

    def test_head_health(self):
        st, _, _ = self.srv.request("HEAD", "/_health")
        self.assertEqual(st, 200)


class TestCredentials(KWTestCase):
    def test_no_credential(self):
        for method, path in (("GET", "/api/projects/"), ("GET", PK), ("GET", "/api/users/@me/"),
                             ("GET", "/api/projects/1/feature_flags/"), ("POST", PK),
                             ("GET", "/api/projects/1/activity_log/"),
                             ("PATCH", "/api/projects/1/reset_token/")):
            with self.subTest(method=method, path=path):
                self.assertProblem(self.srv.request(method, path), 401, "not_authenticated",
                                   MSG_NOT_PROVIDED, None)

    def test_non_bearer_authorization_is_no_credential(self):
        res = self.srv.get("/api/projects/", headers={"Authorization": "Basic " + self.key})
        self.assertProblem(res, 401, "not_authenticated", MSG_NOT_PROVIDED)

    def test_unknown_personal_key_in_header(self):
        for key in (make_key(), bad_checksum(self.key), legacy_key(45), legacy_key(20),
                    "phx_", "phx_short", "phx_" + "a" * 55, "phx_" + "a" * 300,
                    self.key + "x", self.key[:-1], "phx_" + "!" * 54, "garbage"):
            with self.subTest(key=key[:12]):
                self.assertProblem(self.srv.get("/api/projects/", key=key), 401,
                                   "authentication_failed", MSG_INVALID_HEADER, None)

    def test_bad_checksum_with_valid_length(self):
        bad = bad_checksum(self.key)
        self.assertEqual(len(bad), len(self.key))
        self.assertFalse(kwtest.checksum_ok(bad))
        self.assertProblem(self.srv.get("/api/users/@me/", key=bad), 401,
                           "authentication_failed", MSG_INVALID_HEADER)
        # a key whose random part is altered but checksum kept is also refused
        tampered = self.key[:10] + ("A" if self.key[10] != "A" else "B") + self.key[11:]
        self.assertProblem(self.srv.get("/api/users/@me/", key=tampered), 401,
                           "authentication_failed", MSG_INVALID_HEADER)

    def test_query_string(self):
        self.assertStatus(self.srv.get("/api/projects/?personal_api_key=" + self.key), 200)
        self.assertProblem(self.srv.get("/api/projects/?personal_api_key=" + make_key()), 401,
                           "authentication_failed", MSG_INVALID_QUERY)
        self.assertProblem(self.srv.get("/api/projects/?personal_api_key=" + bad_checksum(self.key)),
                           401, "authentication_failed", MSG_INVALID_QUERY)

    def test_body(self):
        st, _, created = self.srv.post(PK, {"personal_api_key": self.key, "label": "via body",
                                            "scopes": ["user:read"]})
        self.assertEqual(st, 201, created)
        self.assertEqual(created["label"], "via body")
        self.assertProblem(self.srv.post(PK, {"personal_api_key": make_key(), "label": "x",
                                              "scopes": ["*"]}), 401,
                           "authentication_failed", MSG_INVALID_BODY)
        self.assertEqual(len(self.srv.get(PK, key=self.key)[2]), 2)

    def test_project_token_on_api_routes(self):
        for path in ("/api/projects/", "/api/projects/1/", PK, "/api/users/@me/",
                     "/api/projects/1/feature_flags/"):
            with self.subTest(path=path):
                self.assertProblem(self.srv.get(path, key=self.token), 401,
                                   "authentication_failed", MSG_INVALID_HEADER)

    def test_secret_key_on_admin_routes(self):
        phs = make_key("phs_")
        for method, path in (("GET", "/api/projects/"), ("GET", "/api/projects/1/"),
                             ("GET", PK), ("POST", PK), ("GET", "/api/users/@me/"),
                             ("GET", "/api/projects/1/activity_log/"),
                             ("POST", "/api/projects/1/feature_flags/"),
                             ("PATCH", "/api/projects/1/reset_token/")):
            with self.subTest(method=method, path=path):
                self.assertProblem(self.srv.request(method, path, key=phs), 403,
                                   "permission_denied", MSG_SECRET_UNSUPPORTED)

    def test_project_token_in_query_string(self):
        self.assertProblem(self.srv.get("/api/projects/?personal_api_key=" + self.token), 401,
                           "authentication_failed", MSG_INVALID_QUERY)

    def test_head_on_api_route(self):
        st, hdrs, body = self.srv.request("HEAD", "/api/projects/", key=self.key)
        self.assertEqual(st, 200)
        self.assertEqual(self.srv.last_text, "")
        st, _, _ = self.srv.request("HEAD", "/api/projects/")
        self.assertEqual(st, 401)

    def test_deactivated_user(self):
        self.assertStatus(self.srv.get("/api/projects/", key=self.key), 200)
        self.env.sql("UPDATE users SET is_active=0 WHERE id=?", (self.env.user_a,))
        self.assertProblem(self.eventually(lambda: self.srv.get("/api/projects/", key=self.key),
                                           401), 401, "authentication_failed", MSG_INVALID_HEADER)
        self.assertProblem(self.srv.get(PK + "@current/", key=self.key), 401,
                           "authentication_failed", MSG_INVALID_HEADER)
        self.assertProblem(self.srv.get("/api/projects/?personal_api_key=" + self.key), 401,
                           "authentication_failed", MSG_INVALID_QUERY)
        self.env.sql("UPDATE users SET is_active=1 WHERE id=?", (self.env.user_a,))
        self.assertStatus(self.eventually(lambda: self.srv.get("/api/projects/", key=self.key),
                                          200), 200)

    def test_deleted_user(self):
        kb = self.env.cli_key_create("a@x.io", "second", "user:read")
        self.assertStatus(self.srv.get("/api/users/@me/", key=kb), 200)
        with self.env.connect() as c:
            c.execute("PRAGMA foreign_keys=OFF")  # leave the key rows behind on purpose
            c.execute("DELETE FROM memberships WHERE user_id=?", (self.env.user_a,))
            c.execute("DELETE FROM users WHERE id=?", (self.env.user_a,))
        for key in (self.key, kb):
            self.assertProblem(self.eventually(lambda: self.srv.get("/api/users/@me/", key=key),
                                               401), 401, "authentication_failed",
                               MSG_INVALID_HEADER)

    def test_header_wins_over_query_and_body(self):
        self.assertStatus(self.srv.get("/api/projects/?personal_api_key=" + make_key(),
                                       key=self.key), 200)
        self.assertProblem(self.srv.get("/api/projects/?personal_api_key=" + self.key,
                                        key=make_key()), 401, "authentication_failed",
                           MSG_INVALID_HEADER)

    def test_key_of_deleted_row_seen_at_once(self):
        """A row removed behind the server's back stops working (within the
        1 s bound for changes made outside the process)."""
        self.assertStatus(self.srv.get("/api/projects/", key=self.key), 200)
        self.env.sql("DELETE FROM personal_api_keys")
        self.assertProblem(self.eventually(lambda: self.srv.get("/api/projects/", key=self.key),
                                           401), 401, "authentication_failed", MSG_INVALID_HEADER)


class TestScopes(KWTestCase):
    FLAGS = "/api/projects/1/feature_flags/"

    def test_read_can_get_not_post(self):
        reader = with_key(self, ["feature_flag:read"])
        self.assertStatus(self.srv.get(self.FLAGS, key=reader), 200)
        self.assertProblem(self.srv.post(self.FLAGS, {"key": "f"}, key=reader), 403,
                           "permission_denied", "API key missing required scope 'feature_flag:write'",
                           None)
        self.assertEqual(self.srv.get(self.FLAGS, key=self.key)[2]["count"], 0)

    def test_write_satisfies_read(self):
        writer = with_key(self, ["feature_flag:write"])
        created = self.assertStatus(self.srv.post(self.FLAGS, {"key": "f"}, key=writer), 201)
        self.assertStatus(self.srv.get(self.FLAGS, key=writer), 200)
        self.assertStatus(self.srv.get(self.FLAGS + "%d/" % created["id"], key=writer), 200)
        self.assertStatus(self.srv.patch(self.FLAGS + "%d/" % created["id"], {"name": "n"},
                                         key=writer), 200)
        self.assertEqual(self.srv.delete(self.FLAGS + "%d/" % created["id"], key=writer)[0], 204)

    def test_read_cannot_patch_or_delete(self):
        created = self.assertStatus(self.srv.post(self.FLAGS, {"key": "f"}, key=self.key), 201)
        reader = with_key(self, ["feature_flag:read"])
        path = self.FLAGS + "%d/" % created["id"]
        msg = "API key missing required scope 'feature_flag:write'"
        self.assertProblem(self.srv.patch(path, {"name": "x"}, key=reader), 403,
                           "permission_denied", msg)
        self.assertProblem(self.srv.delete(path, key=reader), 403, "permission_denied", msg)
        got = self.assertStatus(self.srv.get(path, key=self.key), 200)
        self.assertEqual(got["version"], created["version"])

    def test_activity_log_needs_its_scope(self):
        k = with_key(self, ["project:read"])
        self.assertProblem(self.srv.get("/api/projects/1/activity_log/", key=k), 403,
                           "permission_denied", "API key missing required scope 'activity_log:read'")
        ok = with_key(self, ["activity_log:read"])
        self.assertStatus(self.srv.get("/api/projects/1/activity_log/", key=ok), 200)

    def test_me_needs_user_read(self):
        k = with_key(self, ["project:read"])
        self.assertProblem(self.srv.get("/api/users/@me/", key=k), 403, "permission_denied",
                           "API key missing required scope 'user:read'")
        ok = with_key(self, ["user:read"])
        me = self.assertStatus(self.srv.get("/api/users/@me/", key=ok), 200)
        self.assertEqual(me["email"], "a@x.io")
        self.assertEqual(me["id"], self.env.user_a)

    def test_projects_need_project_scopes(self):
        k = with_key(self, ["feature_flag:write"])
        msg = "API key missing required scope 'project:read'"
        self.assertProblem(self.srv.get("/api/projects/", key=k), 403, "permission_denied", msg)
        self.assertProblem(self.srv.get("/api/projects/1/", key=k), 403, "permission_denied", msg)
        r = with_key(self, ["project:read"])
        self.assertStatus(self.srv.get("/api/projects/1/", key=r), 200)
        before = self.env.sql("SELECT api_token FROM projects WHERE id=1")
        self.assertProblem(self.srv.patch("/api/projects/1/reset_token/", key=r), 403,
                           "permission_denied", "API key missing required scope 'project:write'")
        self.assertEqual(self.env.sql("SELECT api_token FROM projects WHERE id=1"), before)


class TestTenancy(KWTestCase):
    def setup_db(self):
        self.env.tenants()
        # a second project in org A, for scoped_teams checks
        self.p3 = self.env.add_project(self.env.org_a, "Web 2")
        self.env.sql("INSERT INTO feature_flags(project_id, key, name, filters, created_by, "
                     "created_at, updated_at) VALUES (1, 'a-flag', '', '{\"groups\":[]}', 1, ?, ?)",
                     (kwtest.now_us(), kwtest.now_us()))
        self.flag_a = self.env.sql("SELECT id FROM feature_flags WHERE key='a-flag'")[0][0]

    def test_other_tenant_project_is_404(self):
        kb = self.env.key_b
        for method, path, body in (
                ("GET", "/api/projects/1/", None), ("GET", "/api/projects/1", None),
                ("GET", "/api/projects/1/feature_flags/", None),
                ("GET", "/api/environments/1/feature_flags/", None),
                ("GET", "/api/projects/1/feature_flags/%d/" % self.flag_a, None),
                ("POST", "/api/projects/1/feature_flags/", {"key": "intruder"}),
                ("PATCH", "/api/projects/1/feature_flags/%d/" % self.flag_a, {"name": "x"}),
                ("DELETE", "/api/projects/1/feature_flags/%d/" % self.flag_a, None),
                ("GET", "/api/projects/1/activity_log/", None),
                ("PATCH", "/api/projects/1/reset_token/", None),
                ("GET", "/api/projects/%d/" % self.p3, None),
                ("GET", "/api/projects/999/", None)):
            with self.subTest(method=method, path=path):
                self.assertProblem(self.srv.request(method, path, key=kb, body=body), 404,
                                   "not_found", "Not found.", None)
        flags = self.env.sql("SELECT id, key, name, deleted, version FROM feature_flags")
        self.assertEqual(flags, [(self.flag_a, "a-flag", "", 0, 1)])
        tokens = self.env.sql("SELECT id, api_token FROM projects WHERE id=1")
        self.assertEqual(tokens[0][1], self.token)

    def test_flag_of_other_project_not_reachable_through_own(self):
        kb = self.env.key_b
        pb = self.env.project_b
        path = "/api/projects/%d/feature_flags/%d/" % (pb, self.flag_a)
        self.assertProblem(self.srv.get(path, key=kb), 404, "not_found")
        self.assertProblem(self.srv.patch(path, {"name": "x"}, key=kb), 404, "not_found")
        self.assertProblem(self.srv.delete(path, key=kb), 404, "not_found")
        self.assertEqual(self.srv.get("/api/projects/1/feature_flags/%d/" % self.flag_a,
                                      key=self.key)[2]["name"], "")

    def test_project_list_only_own(self):
        def ids(key):
            body = self.assertStatus(self.srv.get("/api/projects/", key=key), 200)
            self.assertEqual(body["count"], len(body["results"]))
            return sorted(p["id"] for p in body["results"])
        self.assertEqual(ids(self.key), [1, self.p3])
        self.assertEqual(ids(self.env.key_b), [self.env.project_b])
        self.assertEqual(ids(self.env.key_c), [1, self.p3])
        one = self.assertStatus(self.srv.get("/api/projects/1/", key=self.key), 200)
        self.assertEqual(one["api_token"], self.token)
        self.assertEqual(one["id"], 1)
        self.assertEqual(one["organization"], self.env.org_a)

    def test_team_scoped_key(self):
        k = with_key(self, ["*"], scoped_teams=[1])
        self.assertStatus(self.srv.get("/api/projects/1/", key=k), 200)
        self.assertStatus(self.srv.get("/api/projects/1/feature_flags/", key=k), 200)
        msg = "API key does not have access to the requested project: ID %d." % self.p3
        for path in ("/api/projects/%d/" % self.p3, "/api/projects/%d/feature_flags/" % self.p3,
                     "/api/environments/%d/feature_flags/" % self.p3,
                     "/api/projects/%d/activity_log/" % self.p3):
            with self.subTest(path=path):
                self.assertProblem(self.srv.get(path, key=k), 403, "permission_denied", msg)
        self.assertProblem(self.srv.post("/api/projects/%d/feature_flags/" % self.p3,
                                         {"key": "x"}, key=k), 403, "permission_denied", msg)
        listed = self.assertStatus(self.srv.get("/api/projects/", key=k), 200)
        self.assertEqual([p["id"] for p in listed["results"]], [1])
        # another tenant's project stays 404 even for a scoped key
        self.assertProblem(self.srv.get("/api/projects/%d/" % self.env.project_b, key=k), 404,
                           "not_found")

    def test_current_project_of_team_scoped_key(self):
        k = with_key(self, ["*"], scoped_teams=[self.p3])
        cur = self.assertStatus(self.srv.get("/api/projects/@current/", key=k), 200)
        self.assertEqual(cur["id"], self.p3)
        self.assertStatus(self.srv.get("/api/projects/@current/feature_flags/", key=k), 200)
        kb = self.assertStatus(self.srv.get("/api/projects/@current/", key=self.env.key_b), 200)
        self.assertEqual(kb["id"], self.env.project_b)

    def test_org_scoped_key(self):
        k = with_key(self, ["*"], scoped_organizations=[self.env.org_a])
        self.assertStatus(self.srv.get("/api/projects/1/", key=k), 200)
        self.assertStatus(self.srv.get("/api/projects/%d/" % self.p3, key=k), 200)

    def test_cannot_scope_to_foreign_team(self):
        before = len(self.srv.get(PK, key=self.key)[2])
        self.assertProblem(self.srv.post(PK, {"label": "x", "scopes": ["*"],
                                              "scoped_teams": [self.env.project_b]}, key=self.key),
                           400, "invalid_input",
                           "You must be a member of all teams that you are scoping the key to.",
                           "scoped_teams")
        self.assertProblem(self.srv.post(PK, {"label": "x", "scopes": ["*"],
                                              "scoped_organizations": [self.env.org_b]},
                                         key=self.key), 400, "invalid_input",
                           attr="scoped_organizations")
        self.assertEqual(len(self.srv.get(PK, key=self.key)[2]), before)

    def test_other_users_key_is_404_and_unchanged(self):
        kid = self.assertStatus(self.srv.get(PK + "@current/", key=self.key), 200)["id"]
        before = self.env.sql("SELECT * FROM personal_api_keys WHERE id=?", (kid,))
        kb = self.env.key_b
        path = PK + kid + "/"
        for method, p, body in (("GET", path, None), ("PATCH", path, {"label": "pwned"}),
                                ("PATCH", path, {"scopes": ["user:read"]}),
                                ("DELETE", path, None), ("POST", path + "roll/", None)):
            with self.subTest(method=method, path=p):
                self.assertProblem(self.srv.request(method, p, key=kb, body=body), 404,
                                   "not_found", "Not found.")
        after = self.env.sql("SELECT * FROM personal_api_keys WHERE id=?", (kid,))
        # last_used_at (column 6) may move from A's own use above
        strip = lambda rows: [r[:6] + r[7:] for r in rows]
        self.assertEqual(strip(after), strip(before))
        self.assertStatus(self.srv.get(PK + "@current/", key=self.key), 200)
        listed_b = self.assertStatus(self.srv.get(PK, key=kb), 200)
        self.assertNotIn(kid, [k["id"] for k in listed_b])
        self.assertTrue(all(k["user_id"] == self.env.user_b for k in listed_b))

    def test_member_cannot_reset_token_owner_can(self):
        kc = self.env.key_c
        self.assertStatus(self.srv.get("/api/projects/1/", key=kc), 200)
        self.assertProblem(self.srv.patch("/api/projects/1/reset_token/", key=kc), 403,
                           "permission_denied", MSG_LEVEL, None)
        self.assertEqual(self.env.sql("SELECT api_token FROM projects WHERE id=1")[0][0],
                         self.token)
        st, _, body = self.srv.patch("/api/projects/1/reset_token/", key=self.key)
        self.assertEqual(st, 200, body)
        new = body["api_token"]
        self.assertRegex(new, r"^phc_[0-9A-Za-z]{54}$")
        self.assertTrue(kwtest.checksum_ok(new))
        self.assertNotEqual(new, self.token)
        self.assertEqual(self.env.sql("SELECT api_token FROM projects WHERE id=1")[0][0], new)
        got = self.assertStatus(self.srv.get("/api/projects/1/", key=self.key), 200)
        self.assertEqual(got["api_token"], new)
        # without the trailing slash too
        st, _, body2 = self.srv.patch("/api/projects/1/reset_token", key=self.key)
        self.assertEqual(st, 200, body2)
        self.assertNotEqual(body2["api_token"], new)

    def test_admin_level_can_reset_token(self):
        self.env.sql("UPDATE memberships SET level=8 WHERE user_id=?", (self.env.user_c,))
        st, _, body = self.srv.patch("/api/projects/1/reset_token/", key=self.env.key_c)
        self.assertEqual(st, 200, body)
        self.assertNotEqual(body["api_token"], self.token)

    def test_removed_membership_seen_at_once(self):
        self.assertStatus(self.srv.get("/api/projects/1/", key=self.env.key_c), 200)
        self.env.sql("DELETE FROM memberships WHERE user_id=?", (self.env.user_c,))
        self.assertProblem(self.eventually(
            lambda: self.srv.get("/api/projects/1/", key=self.env.key_c), 404), 404, "not_found")


class TestPaths(KWTestCase):
    def test_trailing_slash_optional(self):
        for path in ("/api/projects", "/api/projects/1", "/api/users/@me",
                     "/api/projects/1/feature_flags", "/api/projects/1/activity_log",
                     "/api/personal_api_keys", "/api/personal_api_keys/@current"):
            with self.subTest(path=path):
                a = self.assertStatus(self.srv.get(path, key=self.key), 200)
                b = self.assertStatus(self.srv.get(path + "/", key=self.key), 200)
                self.assertEqual(type(a), type(b))

    def test_environments_alias(self):
        created = self.assertStatus(self.srv.post("/api/environments/1/feature_flags/",
                                                  {"key": "via-env"}, key=self.key), 201)
        self.assertEqual(created["team_id"], 1)
        a = self.assertStatus(self.srv.get("/api/projects/1/feature_flags/", key=self.key), 200)
        b = self.assertStatus(self.srv.get("/api/environments/1/feature_flags/", key=self.key), 200)
        self.assertEqual(a, b)
        self.assertEqual([f["key"] for f in a["results"]], ["via-env"])
        path = "/api/environments/1/feature_flags/%d/" % created["id"]
        self.assertStatus(self.srv.get(path, key=self.key), 200)
        self.assertStatus(self.srv.get("/api/environments/1/activity_log", key=self.key), 200)
        self.assertStatus(self.srv.get("/api/environments/1/", key=self.key), 200)

    def test_current_project(self):
        cur = self.assertStatus(self.srv.get("/api/projects/@current/", key=self.key), 200)
        one = self.assertStatus(self.srv.get("/api/projects/1/", key=self.key), 200)
        self.assertEqual(cur, one)
        self.assertStatus(self.srv.get("/api/projects/@current", key=self.key), 200)
        self.assertStatus(self.srv.post("/api/projects/@current/feature_flags/", {"key": "c"},
                                        key=self.key), 201)
        flags = self.assertStatus(self.srv.get("/api/projects/1/feature_flags/", key=self.key), 200)
        self.assertEqual(flags["count"], 1)

    def test_unknown_route_404_json(self):
        # "/" is the web console; /assets/ holds only its files.
        for method, path in (("GET", "/nope/"), ("GET", "/assets/nope.js"), ("GET", "/api/"),
                             ("GET", "/api/nope/"),
                             ("GET", "/api/projects/abc/"), ("GET", "/api/projects/1/nope/"),
                             ("POST", "/api/nope"), ("GET", "/api/personal_api_keys/x/y/z/")):
            with self.subTest(method=method, path=path):
                self.assertProblem(self.srv.request(method, path, key=self.key), 404, "not_found",
                                   "Not found.", None)

    def test_unknown_route_404_without_credentials(self):
        self.assertProblem(self.srv.get("/api/nope/"), 404, "not_found")

    def test_wrong_method_405_json(self):
        for method, path in (("DELETE", "/api/projects/"), ("PUT", PK), ("POST", "/_health"),
                             ("POST", "/api/projects/1/"), ("GET", "/api/projects/1/reset_token/"),
                             ("PUT", "/api/projects/1/feature_flags/1/"),
                             ("GET", PK + "abc/roll/"), ("POST", "/api/users/@me/")):
            with self.subTest(method=method, path=path):
                self.assertProblem(self.srv.request(method, path, key=self.key), 405,
                                   "method_not_allowed", attr=None)


if __name__ == "__main__":
    kwtest.main()
