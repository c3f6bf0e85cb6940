"""Personal API keys over HTTP: create, list, get, update,
roll, delete; validation; limits; who may manage keys; hash storage;
last_used_at; legacy PostHog imports."""
import hashlib
import re

import kwtest
from kwtest import (KWTestCase, KEY_RE, MSG_INVALID_HEADER, MSG_LIMIT, MSG_PERSONAL_UNSUPPORTED,
                    checksum_ok, mask, sha256_secure, pbkdf2_secure, legacy_key)

FIELDS = ["id", "label", "value", "mask_value", "created_at", "last_used_at", "user_id", "scopes",
          "scoped_teams", "scoped_organizations", "last_rolled_at",
          "expires_at", "rate_limit_per_minute", "previous_value_expires_at"]
ISO_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
PK = "/api/personal_api_keys/"


class KeysBase(KWTestCase):
    def create(self, label="k", scopes=("*",), key=None, **extra):
        body = {"label": label, "scopes": list(scopes)}
        body.update(extra)
        return self.srv.post(PK, body, key=key or self.key)

    def create_ok(self, label="k", scopes=("*",), key=None, **extra):
        body = self.assertStatus(self.create(label, scopes, key, **extra), 201)
        return body

    def listing(self, key=None):
        st, _, body = self.srv.get(PK, key=key or self.key)
        self.assertEqual(st, 200, body)
        return body

    def snapshot(self):
        """The list minus last_used_at (written asynchronously on use)."""
        return [{k: v for k, v in item.items() if k != "last_used_at"} for item in self.listing()]

    def db_keys(self):
        return self.env.sql("SELECT id, label, secure_value, mask_value, scopes, scoped_teams, "
                            "last_rolled_at FROM personal_api_keys ORDER BY id")



class TestCreate(KeysBase):
    def test_create_returns_201_with_value_and_fields_in_order(self):
        st, hdrs, body = self.create("deploy script", ["feature_flag:read", "project:read"])
        self.assertEqual(st, 201, body)
        self.assertTrue(hdrs.get("Content-Type", "").startswith("application/json"))
        self.assertEqual(list(body.keys()), FIELDS)
        value = body["value"]
        self.assertRegex(value, KEY_RE)
        self.assertTrue(checksum_ok(value), "checksum of %s" % value)
        self.assertEqual(body["mask_value"], mask(value))
        self.assertEqual(body["label"], "deploy script")
        self.assertIsInstance(body["id"], str)
        self.assertTrue(body["id"])
        self.assertRegex(body["created_at"], ISO_RE)
        self.assertIsNone(body["last_used_at"])
        self.assertIsNone(body["last_rolled_at"])
        self.assertEqual(body["user_id"], self.env.user_a)
        self.assertEqual(body["scopes"], ["feature_flag:read", "project:read"])
        self.assertIn(body["scoped_teams"], ([], None))
        self.assertIn(body["scoped_organizations"], ([], None))

    def test_new_key_authenticates(self):
        value = self.create_ok("x", ["user:read"])["value"]
        st, _, me = self.srv.get("/api/users/@me/", key=value)
        self.assertEqual(st, 200, me)
        self.assertEqual(me["email"], "a@x.io")

    def test_values_are_distinct(self):
        a = self.create_ok("a")["value"]
        b = self.create_ok("b")["value"]
        self.assertNotEqual(a, b)
        self.assertNotEqual(a[4:52], b[4:52])

    def test_value_null_in_list_get_and_update(self):
        created = self.create_ok("shown once")
        kid = created["id"]
        for item in self.listing():
            self.assertEqual(list(item.keys()), FIELDS)
            self.assertIsNone(item["value"], item)
        st, _, got = self.srv.get(PK + kid + "/", key=self.key)
        self.assertEqual(st, 200, got)
        self.assertEqual(list(got.keys()), FIELDS)
        self.assertIsNone(got["value"])
        self.assertEqual(got["mask_value"], created["mask_value"])
        st, _, upd = self.srv.patch(PK + kid + "/", {"label": "renamed"}, key=self.key)
        self.assertEqual(st, 200, upd)
        self.assertEqual(list(upd.keys()), FIELDS)
        self.assertIsNone(upd["value"])

    def test_list_is_bare_array_newest_first_own_keys_only(self):
        ids = [self.create_ok("k%d" % i)["id"] for i in range(3)]
        body = self.listing()
        self.assertIsInstance(body, list)
        self.assertEqual([k["id"] for k in body[:3]], list(reversed(ids)))
        self.assertEqual(len(body), 4)  # + the init key, last
        self.assertEqual(body[-1]["label"], "keyward init")
        self.assertTrue(all(k["user_id"] == self.env.user_a for k in body))

    def test_label_of_40_chars_accepted_41_refused(self):
        self.create_ok("x" * 40)
        self.create_ok("é" * 40)  # characters, not bytes
        before = self.snapshot()
        self.assertProblem(self.create("x" * 41), 400, "max_length", attr="label")
        self.assertEqual(self.snapshot(), before)

    def test_missing_label_required(self):
        before = self.snapshot()
        self.assertProblem(self.srv.post(PK, {"scopes": ["*"]}, key=self.key), 400, "required",
                           "This field is required.", "label")
        self.assertEqual(self.snapshot(), before)

    def test_missing_scopes_required(self):
        before = self.snapshot()
        self.assertProblem(self.srv.post(PK, {"label": "x"}, key=self.key), 400, "required",
                           attr="scopes")
        self.assertEqual(self.snapshot(), before)

    def test_unknown_scope(self):
        before = self.snapshot()
        for bad in ("x", "nope:read", "feature_flag:delete", "feature_flag", "FEATURE_FLAG:read",
                    "feature_flag:read "):
            with self.subTest(scope=bad):
                self.assertProblem(self.create("x", ["feature_flag:read", bad]), 400,
                                   "invalid_input", "Invalid scope: %s" % bad, "scopes")
        self.assertEqual(self.snapshot(), before)

    def test_empty_scopes(self):
        before = self.snapshot()
        self.assertProblem(self.create("x", []), 400, None, "This list may not be empty.", "scopes")
        self.assertEqual(self.snapshot(), before)

    def test_wrong_types(self):
        before = self.snapshot()
        cases = [({"label": "x", "scopes": "*"}, "scopes"),
                 ({"label": "x", "scopes": "feature_flag:read"}, "scopes"),
                 ({"label": 5, "scopes": ["*"]}, "label"),
                 ({"label": ["x"], "scopes": ["*"]}, "label"),
                 ({"label": "x", "scopes": [5]}, "scopes"),
                 ({"label": "x", "scopes": ["*"], "scoped_teams": "1"}, "scoped_teams"),
                 ({"label": "x", "scopes": ["*"], "scoped_teams": ["one"]}, "scoped_teams")]
        for body, attr in cases:
            with self.subTest(body=body):
                st, _, err = self.srv.post(PK, body, key=self.key)
                self.assertEqual(st, 400, err)
                self.assertEqual(err["type"], "validation_error")
                self.assertEqual(err["attr"], attr, err)
        self.assertEqual(self.snapshot(), before)

    def test_null_label_refused(self):
        before = self.snapshot()
        st, _, err = self.srv.post(PK, {"label": None, "scopes": ["*"]}, key=self.key)
        self.assertEqual(st, 400, err)
        self.assertEqual(err["attr"], "label")
        self.assertEqual(self.snapshot(), before)

    def test_body_not_an_object(self):
        before = self.snapshot()
        for raw in ("[]", '"label"', "42", "null"):
            with self.subTest(raw=raw):
                st, _, err = self.srv.request("POST", PK, key=self.key, raw=raw)
                self.assertEqual(st, 400, err)
                self.assertEqual(err["type"], "validation_error")
        self.assertEqual(self.snapshot(), before)

    def test_malformed_json(self):
        before = self.snapshot()
        for raw in ('{"label": "x", "scopes": ["*"]', "{label: x}", "not json",
                    '{"label":"x","label":"y","scopes":["*"]}'):
            with self.subTest(raw=raw):
                self.assertProblem(self.srv.request("POST", PK, key=self.key, raw=raw), 400,
                                   "parse_error", attr=None)
        self.assertEqual(self.snapshot(), before)

    def test_body_over_1mib(self):
        before = self.snapshot()
        big = '{"label": "x", "scopes": ["*"], "pad": "' + "a" * (kwtest.MAX_BODY) + '"}'
        self.assertProblem(self.srv.request("POST", PK, key=self.key, raw=big), 413,
                           "payload_too_large")
        # the server is still fine afterwards
        self.assertEqual(self.snapshot(), before)

    def test_chunked_body_over_1mib(self):
        import http.client
        before = self.snapshot()
        conn = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=10)
        try:
            conn.putrequest("POST", PK)
            conn.putheader("Authorization", "Bearer " + self.key)
            conn.putheader("Content-Type", "application/json")
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            chunk = b"a" * 65536
            try:
                head = b'{"label":"x","scopes":["*"],"pad":"'
                conn.send(b"%x\r\n%s\r\n" % (len(head), head))
                for _ in range(20):
                    conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                conn.send(b'2\r\n"}\r\n0\r\n\r\n')
            except (BrokenPipeError, ConnectionResetError):
                pass
            resp = conn.getresponse()
            body = resp.read()
            self.assertEqual(resp.status, 413, body)
            self.assertIn(b"payload_too_large", body)
        finally:
            conn.close()
        self.assertEqual(self.snapshot(), before)

    def test_413_has_security_headers(self):
        st, hdrs, _ = self.srv.request("POST", PK, key=self.key, raw="x" * (kwtest.MAX_BODY + 1))
        self.assertEqual(st, 413)
        self.assertEqual(hdrs.get("X-Content-Type-Options"), "nosniff")

    def test_body_just_under_1mib_is_read(self):
        pad = kwtest.MAX_BODY - 100
        raw = '{"label": "big", "scopes": ["*"], "pad": "' + "a" * pad + '"}'
        self.assertLessEqual(len(raw), kwtest.MAX_BODY)
        st, _, body = self.srv.request("POST", PK, key=self.key, raw=raw)
        self.assertEqual(st, 201, body)

    def test_eleventh_key_refused(self):
        for i in range(9):  # the init key is the first of 10
            self.create_ok("k%d" % i)
        self.assertEqual(len(self.listing()), 10)
        before = self.snapshot()
        self.assertProblem(self.create("eleventh"), 400, None, MSG_LIMIT)
        self.assertEqual(self.snapshot(), before)
        # deleting one makes room again
        st, _, _ = self.srv.delete(PK + before[0]["id"] + "/", key=self.key)
        self.assertEqual(st, 204)
        self.create_ok("room again")
        self.assertEqual(len(self.listing()), 10)

    def test_scoped_teams_must_be_users_own(self):
        other_org = self.env.add_org("Other")  # user A is not a member
        before = self.snapshot()
        self.assertProblem(self.create("x", scoped_teams=[999]), 400, "invalid_input",
                           "You must be a member of all teams that you are scoping the key to.",
                           "scoped_teams")
        self.assertProblem(self.create("x", scoped_organizations=[other_org]), 400,
                           "invalid_input", attr="scoped_organizations")
        self.assertEqual(self.snapshot(), before)
        ok = self.create_ok("scoped", scoped_teams=[1], scoped_organizations=[self.env.org_a])
        self.assertEqual(ok["scoped_teams"], [1])
        self.assertEqual(ok["scoped_organizations"], [self.env.org_a])


class TestRollDeleteUpdate(KeysBase):
    def test_roll(self):
        created = self.create_ok("rolled", ["user:read"])
        old = created["value"]
        st, _, rolled = self.srv.post(PK + created["id"] + "/roll/", key=self.key)
        self.assertEqual(st, 200, rolled)
        self.assertEqual(list(rolled.keys()), FIELDS)
        new = rolled["value"]
        self.assertRegex(new, KEY_RE)
        self.assertTrue(checksum_ok(new))
        self.assertNotEqual(new, old)
        self.assertEqual(rolled["id"], created["id"])
        self.assertEqual(rolled["label"], "rolled")
        self.assertEqual(rolled["scopes"], ["user:read"])
        self.assertEqual(rolled["mask_value"], mask(new))
        self.assertRegex(rolled["last_rolled_at"] or "", ISO_RE)
        self.assertProblem(self.srv.get("/api/users/@me/", key=old), 401,
                           "authentication_failed", MSG_INVALID_HEADER)
        self.assertStatus(self.srv.get("/api/users/@me/", key=new), 200)
        got = self.assertStatus(self.srv.get(PK + created["id"] + "/", key=self.key), 200)
        self.assertEqual(got["last_rolled_at"], rolled["last_rolled_at"])
        self.assertIsNone(got["value"])

    def test_roll_own_key_via_itself(self):
        cur = self.assertStatus(self.srv.get(PK + "@current/", key=self.key), 200)
        st, _, rolled = self.srv.post(PK + cur["id"] + "/roll/", key=self.key)
        self.assertEqual(st, 200, rolled)
        self.assertEqual(self.srv.get(PK, key=self.key)[0], 401)
        self.assertEqual(self.srv.get(PK, key=rolled["value"])[0], 200)

    def test_delete(self):
        created = self.create_ok("doomed")
        value = created["value"]
        self.assertStatus(self.srv.get("/api/projects/", key=value), 200)
        st, hdrs, body = self.srv.delete(PK + created["id"] + "/", key=self.key)
        self.assertEqual(st, 204)
        self.assertEqual(self.srv.last_text, "")
        self.assertProblem(self.srv.get("/api/projects/", key=value), 401, "authentication_failed",
                           MSG_INVALID_HEADER)
        self.assertProblem(self.srv.get(PK + created["id"] + "/", key=self.key), 404, "not_found",
                           "Not found.")
        self.assertProblem(self.srv.delete(PK + created["id"] + "/", key=self.key), 404,
                           "not_found")
        self.assertNotIn(created["id"], [k["id"] for k in self.listing()])
        self.assertEqual(self.env.sql("SELECT COUNT(*) FROM personal_api_keys WHERE id=?",
                                      (created["id"],))[0][0], 0)

    def test_patch_label_and_scopes(self):
        created = self.create_ok("before", ["feature_flag:read"])
        path = PK + created["id"] + "/"
        upd = self.assertStatus(self.srv.patch(path, {"label": "after"}, key=self.key), 200)
        self.assertEqual(upd["label"], "after")
        self.assertEqual(upd["scopes"], ["feature_flag:read"])
        upd = self.assertStatus(self.srv.patch(path, {"scopes": ["feature_flag:write"]},
                                               key=self.key), 200)
        self.assertEqual(upd["label"], "after")
        self.assertEqual(upd["scopes"], ["feature_flag:write"])
        got = self.assertStatus(self.srv.get(path, key=self.key), 200)
        self.assertEqual((got["label"], got["scopes"]), ("after", ["feature_flag:write"]))
        # the new scopes take effect for the key itself
        self.assertStatus(self.srv.post("/api/projects/1/feature_flags/", {"key": "f1"},
                                        key=created["value"]), 201)
        # same value still works (PATCH does not roll)
        self.assertStatus(self.srv.get("/api/projects/1/feature_flags/", key=created["value"]), 200)

    def test_narrowing_takes_effect_at_once(self):
        created = self.create_ok("narrowed", ["feature_flag:write", "user:read"])
        v, path = created["value"], PK + created["id"] + "/"
        # warm any verification path with the wide scopes first
        self.assertStatus(self.srv.get("/api/users/@me/", key=v), 200)
        self.assertStatus(self.srv.post("/api/projects/1/feature_flags/", {"key": "w1"}, key=v), 201)
        self.assertStatus(self.srv.patch(path, {"scopes": ["feature_flag:read"]}, key=self.key), 200)
        self.assertProblem(self.srv.post("/api/projects/1/feature_flags/", {"key": "w2"}, key=v),
                           403, "permission_denied",
                           "API key missing required scope 'feature_flag:write'")
        self.assertProblem(self.srv.get("/api/users/@me/", key=v), 403, "permission_denied")
        self.assertStatus(self.srv.get("/api/projects/1/feature_flags/", key=v), 200)
        # team narrowing too
        p2 = self.env.add_project(self.env.org_a, "second")
        self.assertStatus(self.srv.get("/api/projects/%d/feature_flags/" % p2, key=v), 200)
        self.assertStatus(self.srv.patch(path, {"scoped_teams": [1]}, key=self.key), 200)
        self.assertProblem(self.srv.get("/api/projects/%d/feature_flags/" % p2, key=v), 403,
                           "permission_denied",
                           "API key does not have access to the requested project: ID %d." % p2)

    def test_revocation_through_api_is_immediate_after_warm_use(self):
        created = self.create_ok("warm", ["user:read"])
        v = created["value"]
        for _ in range(3):
            self.assertStatus(self.srv.get("/api/users/@me/", key=v), 200)
        self.assertEqual(self.srv.delete(PK + created["id"] + "/", key=self.key)[0], 204)
        self.assertProblem(self.srv.get("/api/users/@me/", key=v), 401, "authentication_failed",
                           MSG_INVALID_HEADER)
        other = self.create_ok("warm2", ["user:read"])
        for _ in range(3):
            self.assertStatus(self.srv.get("/api/users/@me/", key=other["value"]), 200)
        self.assertStatus(self.srv.post(PK + other["id"] + "/roll/", key=self.key), 200)
        self.assertProblem(self.srv.get("/api/users/@me/", key=other["value"]), 401,
                           "authentication_failed", MSG_INVALID_HEADER)

    def test_patch_invalid_changes_nothing(self):
        created = self.create_ok("stable", ["feature_flag:read"])
        path = PK + created["id"] + "/"
        rows = self.db_keys()
        self.assertProblem(self.srv.patch(path, {"scopes": ["nope:read"]}, key=self.key), 400,
                           "invalid_input", "Invalid scope: nope:read", "scopes")
        self.assertProblem(self.srv.patch(path, {"label": "y" * 41}, key=self.key), 400,
                           "max_length", attr="label")
        st, _, err = self.srv.patch(path, {"scopes": []}, key=self.key)
        self.assertEqual((st, err["attr"]), (400, "scopes"), err)
        self.assertEqual(self.srv.patch(path, {"label": 3}, key=self.key)[0], 400)
        self.assertEqual(self.db_keys(), rows)

    def test_get_path_without_trailing_slash(self):
        created = self.create_ok("slash")
        a = self.assertStatus(self.srv.get(PK + created["id"], key=self.key), 200)
        b = self.assertStatus(self.srv.get(PK + created["id"] + "/", key=self.key), 200)
        self.assertEqual(a, b)
        self.assertEqual([k["id"] for k in self.srv.get(PK.rstrip("/"), key=self.key)[2]],
                         [k["id"] for k in self.listing()])
        self.assertStatus(self.srv.post(PK.rstrip("/"), {"label": "ns", "scopes": ["*"]},
                                        key=self.key), 201)
        self.assertStatus(self.srv.post(PK + created["id"] + "/roll", key=self.key), 200)
        self.assertStatus(self.srv.patch(PK + created["id"], {"label": "z"}, key=self.key), 200)
        st, _, _ = self.srv.delete(PK + created["id"], key=self.key)
        self.assertEqual(st, 204)

    def test_unknown_id_is_404(self):
        for path in (PK + "00000000-0000-0000-0000-000000000000/", PK + "nope/"):
            with self.subTest(path=path):
                self.assertProblem(self.srv.get(path, key=self.key), 404, "not_found", "Not found.")
                self.assertProblem(self.srv.patch(path, {"label": "x"}, key=self.key), 404,
                                   "not_found")
                self.assertProblem(self.srv.delete(path, key=self.key), 404, "not_found")
                self.assertProblem(self.srv.post(path + "roll/", key=self.key), 404, "not_found")


class TestWhoMayManageKeys(KeysBase):
    def test_key_without_personal_api_key_scope_is_refused(self):
        narrow = self.create_ok("flags only", ["feature_flag:read"])
        v, kid = narrow["value"], narrow["id"]
        own = PK + kid + "/"
        before = self.db_keys()
        calls = [("GET", PK, None), ("POST", PK, {"label": "x", "scopes": ["feature_flag:read"]}),
                 ("GET", own, None), ("PATCH", own, {"label": "x"}), ("DELETE", own, None),
                 ("POST", own + "roll/", None)]
        for method, path, body in calls:
            with self.subTest(method=method, path=path):
                self.assertProblem(self.srv.request(method, path, key=v, body=body), 403,
                                   "permission_denied", MSG_PERSONAL_UNSUPPORTED)
        self.assertEqual(self.db_keys(), before)

    def test_current_works_for_any_key(self):
        for scopes in (["feature_flag:read"], ["user:read"], ["*"]):
            with self.subTest(scopes=scopes):
                created = self.create_ok("cur", scopes)
                for path in (PK + "@current/", PK + "@current"):
                    got = self.assertStatus(self.srv.get(path, key=created["value"]), 200)
                    self.assertEqual(got["id"], created["id"])
                    self.assertEqual(list(got.keys()), FIELDS)
                    self.assertIsNone(got["value"])
                    self.assertEqual(got["scopes"], scopes)

    def test_read_scope_lists_but_cannot_write(self):
        reader = self.create_ok("reader", ["personal_api_key:read"])["value"]
        got = self.assertStatus(self.srv.get(PK, key=reader), 200)
        self.assertEqual(len(got), 2)
        before = self.db_keys()
        self.assertProblem(self.create("x", ["personal_api_key:read"], key=reader), 403,
                           "permission_denied")
        self.assertEqual(self.db_keys(), before)

    def test_write_key_never_grants_more_than_it_holds(self):
        writer = self.create_ok("writer", ["personal_api_key:write", "feature_flag:read"])["value"]
        before = self.db_keys()
        for scopes in (["*"], ["feature_flag:write"], ["project:read"],
                       ["personal_api_key:write", "user:read"]):
            with self.subTest(scopes=scopes):
                st, _, err = self.create("escalate", scopes, key=writer)
                self.assertEqual(st, 403, err)
                self.assertEqual(err["type"], "authentication_error")
                self.assertEqual(err["code"], "permission_denied")
        self.assertEqual(self.db_keys(), before)
        # within its own scopes it may create (write satisfies read)
        ok = self.create_ok("subset", ["feature_flag:read", "personal_api_key:read"], key=writer)
        self.assertEqual(ok["scopes"], ["feature_flag:read", "personal_api_key:read"])
        ok = self.create_ok("same", ["personal_api_key:write"], key=writer)
        self.assertStatus(self.srv.get(PK, key=ok["value"]), 200)

    def test_write_key_cannot_widen_by_patch(self):
        writer = self.create_ok("writer", ["personal_api_key:write"])
        narrow = self.create_ok("narrow", ["personal_api_key:read"])
        before = self.db_keys()
        for target in (writer["id"], narrow["id"]):
            for scopes in (["*"], ["project:write"]):
                with self.subTest(target=target, scopes=scopes):
                    st, _, err = self.srv.patch(PK + target + "/", {"scopes": scopes},
                                                key=writer["value"])
                    self.assertEqual(st, 403, err)
        self.assertEqual(self.db_keys(), before)

    def test_write_key_cannot_roll_a_broader_key(self):
        """Rolling the '*' key would hand a personal_api_key:write key a '*'
        credential: a key never grants more than it holds."""
        writer = self.create_ok("writer", ["personal_api_key:write"])["value"]
        init_id = self.listing()[-1]["id"]
        before = self.db_keys()
        st, _, body = self.srv.post(PK + init_id + "/roll/", key=writer)
        self.assertEqual(st, 403, body)
        self.assertIsNone((body or {}).get("value"), "a '*' key value leaked to a narrower key")
        self.assertEqual(self.db_keys(), before)

    def test_team_scoped_writer_cannot_unscope_itself(self):
        writer = self.create_ok("scoped writer", ["personal_api_key:write"], scoped_teams=[1])
        path = PK + writer["id"] + "/"
        before = self.db_keys()
        for body in ({"scoped_teams": []}, {"scoped_teams": None}):
            with self.subTest(body=body):
                st, _, err = self.srv.patch(path, body, key=writer["value"])
                self.assertIn(st, (400, 403), err)
        self.assertEqual(self.db_keys(), before)

    def test_write_key_cannot_roll_a_broader_scoped_key(self):
        """A team-scoped writer rolling an unscoped key would obtain an
        unscoped credential."""
        writer = self.create_ok("w", ["personal_api_key:write"], scoped_teams=[1])["value"]
        wide = self.create_ok("wide", ["personal_api_key:write"])
        before = self.db_keys()
        st, _, body = self.srv.post(PK + wide["id"] + "/roll/", key=writer)
        self.assertIn(st, (400, 403), body)
        self.assertEqual(self.db_keys(), before)

    def test_concurrent_creates_respect_the_limit(self):
        import concurrent.futures
        def one(i):
            return self.create("c%d" % i)[0]
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(one, range(16)))
        self.assertEqual(sorted(statuses), [201] * 9 + [400] * 7, statuses)
        self.assertEqual(len(self.listing()), 10)
        self.assertEqual(self.env.sql("SELECT COUNT(*) FROM personal_api_keys")[0][0], 10)

    def test_team_scoped_writer_cannot_create_unscoped_key(self):
        writer = self.create_ok("scoped writer", ["personal_api_key:write"], scoped_teams=[1])
        st, _, err = self.create("wide", ["personal_api_key:write"], key=writer["value"])
        # broader than the caller: a refusal (403), not a validation error
        self.assertEqual(st, 403, err)
        self.assertEqual(err["attr"], "scoped_teams")
        ok = self.create_ok("narrow", ["personal_api_key:write"], key=writer["value"],
                            scoped_teams=[1])
        self.assertEqual(ok["scoped_teams"], [1])


class TestStorage(KeysBase):
    def test_db_holds_only_hashes(self):
        values = [self.key]
        a = self.create_ok("a", ["feature_flag:read"])
        b = self.create_ok("b")
        values += [a["value"], b["value"]]
        rolled = self.assertStatus(self.srv.post(PK + b["id"] + "/roll/", key=self.key), 200)
        values.append(rolled["value"])
        values.append(self.env.cli_key_create("a@x.io", "from cli", "user:read"))
        live = {v for v in values if v != b["value"]}
        # use every live key once so verification paths also ran
        for v in live:
            self.assertEqual(self.srv.get(PK + "@current/", key=v)[0], 200)
        blob = self.env.db_bytes()
        for v in values:
            self.assertNotIn(v.encode(), blob, "plaintext key in the database files")
            self.assertNotIn(v[4:].encode(), blob, "key body in the database files")
            self.assertNotIn(v[4:52].encode(), blob, "random part in the database files")
        stored = {r[0] for r in self.env.sql("SELECT secure_value FROM personal_api_keys")}
        self.assertEqual(stored, {sha256_secure(v) for v in live})
        for sv in stored:
            self.assertRegex(sv, r"^sha256\$[0-9a-f]{64}$")
        masks = {r[0] for r in self.env.sql("SELECT mask_value FROM personal_api_keys")}
        self.assertEqual(masks, {mask(v) for v in live})
        # nor in the server's own output
        err = self.srv.stderr()
        for v in values:
            self.assertNotIn(v, err)
        # and after a clean shutdown (WAL checkpointed into the main file)
        self.assertEqual(self.srv.stop(), 0)
        blob = self.env.db_bytes()
        for v in values:
            self.assertNotIn(v.encode(), blob)


class TestLastUsed(KeysBase):
    def last_used(self, kid):
        for k in self.listing():
            if k["id"] == kid:
                return k["last_used_at"]
        self.fail("key %s not listed" % kid)

    def test_last_used_at_set_once_per_hour(self):
        k1 = self.create_ok("k1", ["user:read"])
        k2 = self.create_ok("k2", ["user:read"])
        self.assertIsNone(self.last_used(k1["id"]))
        self.assertStatus(self.srv.get("/api/users/@me/", key=k1["value"]), 200)
        first = self.poll(lambda: self.last_used(k1["id"]))
        self.assertIsNotNone(first, "last_used_at not set within 5 s of a use")
        self.assertRegex(first, ISO_RE)
        db_first = self.env.sql("SELECT last_used_at FROM personal_api_keys WHERE id=?",
                                (k1["id"],))[0][0]
        # second use within the hour; then a use of k2 — touches are written
        # in order, so once k2's lands any write for k1 would have too
        self.assertStatus(self.srv.get("/api/users/@me/", key=k1["value"]), 200)
        self.assertStatus(self.srv.get("/api/users/@me/", key=k2["value"]), 200)
        self.assertIsNotNone(self.poll(lambda: self.last_used(k2["id"])))
        self.assertEqual(self.last_used(k1["id"]), first)
        self.assertEqual(self.env.sql("SELECT last_used_at FROM personal_api_keys WHERE id=?",
                                      (k1["id"],))[0][0], db_first)

    def test_failed_auth_does_not_touch(self):
        k1 = self.create_ok("k1", ["feature_flag:read"])
        k2 = self.create_ok("k2", ["user:read"])
        # a refused request by scope is still a use of a valid key (PostHog
        # touches on authentication); but a wrong key value touches nothing
        self.assertEqual(self.srv.get("/api/users/@me/", key=kwtest.bad_checksum(k1["value"]))[0],
                         401)
        self.assertStatus(self.srv.get("/api/users/@me/", key=k2["value"]), 200)
        self.assertIsNotNone(self.poll(lambda: self.last_used(k2["id"])))
        self.assertIsNone(self.last_used(k1["id"]))


class TestLegacyImportWhileServing(KeysBase):
    """Stored pbkdf2 forms (PostHog's) are tried after sha256.  A row imported
    while the server runs (e.g. on another instance, or by a migration
    script) must verify too."""

    def test_row_imported_while_serving(self):
        key = legacy_key(45)
        kid = self.env.add_legacy_key(self.env.user_a, key, pbkdf2_secure(key, 260000))
        self.assertStatus(self.eventually(lambda: self.srv.get("/api/users/@me/", key=key), 200),
                          200)
        self.assertEqual(self.env.sql("SELECT secure_value FROM personal_api_keys WHERE id=?",
                                      (kid,))[0][0], sha256_secure(key))

    def test_sha256_legacy_length_row(self):
        """A legacy-length key stored as sha256 (already upgraded) verifies."""
        key = legacy_key(41)
        self.env.add_legacy_key(self.env.user_a, key, sha256_secure(key))
        self.assertStatus(self.eventually(lambda: self.srv.get("/api/users/@me/", key=key), 200),
                          200)


class TestLegacyImport(KeysBase):
    def setup_db(self):
        self.legacy = {}
        for iterations in (260000, 390000):
            key = legacy_key(45)
            kid = self.env.add_legacy_key(self.env.user_a, key, pbkdf2_secure(key, iterations),
                                          label="legacy %d" % iterations)
            self.legacy[iterations] = (key, kid)
        self.no_scopes_key = legacy_key(43)
        self.no_scopes_id = self.env.add_legacy_key(
            self.env.user_a, self.no_scopes_key, pbkdf2_secure(self.no_scopes_key, 260000),
            scopes=None, label="legacy no scopes")
        self.empty_scopes_key = legacy_key(44)
        self.env.add_legacy_key(
            self.env.user_a, self.empty_scopes_key, pbkdf2_secure(self.empty_scopes_key, 390000),
            scopes="[]", label="legacy empty scopes")

    def stored(self, kid):
        return self.env.sql("SELECT secure_value FROM personal_api_keys WHERE id=?", (kid,))[0][0]

    def test_pbkdf2_keys_authenticate_and_are_rehashed(self):
        for iterations, (key, kid) in self.legacy.items():
            with self.subTest(iterations=iterations):
                self.assertTrue(self.stored(kid).startswith("pbkdf2_sha256$%d$" % iterations))
                me = self.assertStatus(self.srv.get("/api/users/@me/", key=key), 200)
                self.assertEqual(me["email"], "a@x.io")
                self.assertEqual(self.stored(kid), sha256_secure(key))
                # and keeps working from the sha256 form
                self.assertStatus(self.srv.get("/api/projects/", key=key), 200)
                cur = self.assertStatus(self.srv.get(PK + "@current/", key=key), 200)
                self.assertEqual(cur["id"], kid)

    def test_wrong_legacy_key_is_401_and_row_untouched(self):
        key, kid = self.legacy[260000]
        before = self.stored(kid)
        wrong = key[:-1] + ("a" if key[-1] != "a" else "b")
        self.assertProblem(self.srv.get("/api/users/@me/", key=wrong), 401,
                           "authentication_failed", MSG_INVALID_HEADER)
        self.assertEqual(self.stored(kid), before)

    def test_null_scopes_grant_nothing(self):
        self.assertProblem(self.srv.get("/api/projects/", key=self.no_scopes_key), 403,
                           "permission_denied", "API key missing required scope 'project:read'")
        self.assertProblem(self.srv.get("/api/users/@me/", key=self.no_scopes_key), 403,
                           "permission_denied")
        self.assertProblem(self.srv.get("/api/projects/1/feature_flags/",
                                        key=self.empty_scopes_key), 403, "permission_denied",
                           "API key missing required scope 'feature_flag:read'")

    def test_legacy_rows_listed_with_their_mask(self):
        listed = {k["id"]: k for k in self.listing()}
        for key, kid in self.legacy.values():
            self.assertEqual(listed[kid]["mask_value"], mask(key))
            self.assertIsNone(listed[kid]["value"])


if __name__ == "__main__":
    kwtest.main()
