"""test_secret_keys.py — project secret API keys (phs_) over HTTP.

Covers /api/projects/:id/project_secret_api_keys/ (CRUD, roll, PostHog's
validation texts for labels and the scopes a phs_ key may hold, admin level
for writes), and what a phs_ key may do: nothing under /api/ except the
execution routes (flag definitions, endpoint runs).
"""
import os
import json
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hashlib
import http.client

import kwtest  # noqa: E402

PHS_RE = re.compile(r"^phs_[0-9A-Za-z]{54}$")
FIELDS = ["id", "label", "value", "mask_value", "created_at", "created_by", "last_used_at",
          "last_rolled_at", "scopes", "expires_at", "rate_limit_per_minute",
          "previous_value_expires_at"]
ALLOWED_TEXT = "Allowed scopes: endpoint:read, experiment:read, feature_flag:read"
MSG_SECRET_INVALID = "Secret API token is invalid."


class SecretKeyCrud(kwtest.KWTestCase):
    base = "/api/projects/1/project_secret_api_keys/"

    def create(self, label="server", scopes=("feature_flag:read",), key=None):
        return self.srv.post(self.base, {"label": label, "scopes": list(scopes)},
                             key=key or self.key)

    def test_crud_value_shown_once(self):
        created = self.assertStatus(self.create(), 201)
        self.assertEqual(list(created.keys()), FIELDS)
        self.assertRegex(created["value"], PHS_RE)
        self.assertEqual(created["mask_value"], kwtest.mask(created["value"]))
        self.assertEqual(created["created_by"]["email"], "a@x.io")
        self.assertEqual(created["scopes"], ["feature_flag:read"])
        self.assertIsNone(created["last_used_at"])
        kid = created["id"]
        # the value is never shown again, and never stored in plain text
        got = self.assertStatus(self.srv.get(self.base + kid + "/", key=self.key), 200)
        self.assertIsNone(got["value"])
        self.assertEqual(got["mask_value"], created["mask_value"])
        stored = self.env.sql("SELECT secure_value FROM project_secret_api_keys WHERE id=?", (kid,))
        self.assertEqual(stored[0][0], kwtest.sha256_secure(created["value"]))
        listed = self.assertStatus(self.srv.get(self.base, key=self.key), 200)
        self.assertEqual(list(listed.keys()), ["count", "next", "previous", "results"])
        self.assertEqual(listed["count"], 1)
        self.assertIsNone(listed["results"][0]["value"])
        # update label and scopes
        upd = self.assertStatus(self.srv.patch(self.base + kid + "/", {
            "label": "renamed", "scopes": ["feature_flag:read", "endpoint:read"]}, key=self.key), 200)
        self.assertEqual(upd["label"], "renamed")
        self.assertEqual(upd["scopes"], ["feature_flag:read", "endpoint:read"])
        self.assertIsNone(upd["value"])
        # roll: a new value once; the old one stops working
        old = created["value"]
        rolled = self.assertStatus(self.srv.post(self.base + kid + "/roll/", key=self.key), 200)
        self.assertRegex(rolled["value"], PHS_RE)
        self.assertNotEqual(rolled["value"], old)
        self.assertIsNotNone(rolled["last_rolled_at"])
        # delete
        self.assertStatus(self.srv.delete(self.base + kid + "/", key=self.key), 204)
        self.assertProblem(self.srv.get(self.base + kid + "/", key=self.key), 404, "not_found")
        acts = [r[0] for r in self.env.sql(
            "SELECT activity FROM activity_log WHERE scope='ProjectSecretAPIKey' AND project_id=1 "
            "ORDER BY created_at")]
        self.assertEqual(acts, ["created", "updated", "rolled", "deleted"])
        details = " ".join(r[0] for r in self.env.sql("SELECT detail FROM activity_log"))
        self.assertNotIn(old, details)
        self.assertNotIn(rolled["value"], details)

    def test_validation_texts(self):
        p = self.srv.post(self.base, {"scopes": ["feature_flag:read"]}, key=self.key)
        self.assertProblem(p, 400, "required", attr="label")
        p = self.create(label="x" * 41)
        self.assertProblem(p, 400, "max_length", attr="label")
        self.assertProblem(self.srv.post(self.base, {"label": "a"}, key=self.key), 400, "required",
                           attr="scopes")
        self.assertProblem(self.create(scopes=()), 400, "empty", "This list may not be empty.",
                           attr="scopes")
        self.assertProblem(
            self.create(scopes=("*",)), 400, "invalid_input",
            "Wildcard scope '*' is not allowed for project API keys. Please specify explicit scopes.",
            attr="scopes")
        self.assertProblem(
            self.create(scopes=("feature_flag:write",)), 400, "invalid_input",
            "Scope 'feature_flag:write' can not be assigned to a project secret API key. "
            + ALLOWED_TEXT, attr="scopes")
        self.assertProblem(
            self.create(scopes=("project:read",)), 400, "invalid_input",
            "Scope 'project:read' can not be assigned to a project secret API key. " + ALLOWED_TEXT,
            attr="scopes")
        self.assertProblem(self.create(scopes=("bogus:read",)), 400, "invalid_input",
                           "Invalid scope: bogus:read", attr="scopes")
        self.assertStatus(self.create(label="dup"), 201)
        self.assertProblem(self.create(label="dup"), 400, "invalid_input",
                           "Project secret API key with label 'dup' already exists.", attr=None)
        # the same label through PATCH
        other = self.assertStatus(self.create(label="other"), 201)
        self.assertProblem(self.srv.patch(self.base + other["id"] + "/", {"label": "dup"},
                                          key=self.key),
                           400, "invalid_input",
                           "Project secret API key with label 'dup' already exists.", attr=None)

    def test_limit_50(self):
        for i in range(50):
            self.assertStatus(self.create(label="k%d" % i), 201)
        self.assertProblem(
            self.create(label="one too many"), 400, "invalid_input",
            "You can only have 50 project secret API keys. Remove an existing key before "
            "creating a new one.", attr=None)
        page = self.assertStatus(self.srv.get(self.base + "?limit=10&offset=45", key=self.key), 200)
        self.assertEqual(page["count"], 50)
        self.assertEqual(len(page["results"]), 5)
        self.assertIsNotNone(page["previous"])
        self.assertIsNone(page["next"])


class SecretKeyAccess(kwtest.KWTestCase):
    base = "/api/projects/1/project_secret_api_keys/"

    def setup_db(self):
        self.env.tenants()

    def test_member_reads_admin_writes(self):
        self.assertStatus(self.srv.get(self.base, key=self.env.key_c), 200)
        self.assertProblem(self.srv.post(self.base, {"label": "m", "scopes": ["endpoint:read"]},
                                         key=self.env.key_c),
                           403, "permission_denied", kwtest.MSG_LEVEL)
        # another organization's project is "Not found."
        self.assertProblem(self.srv.get(self.base, key=self.env.key_b), 404, "not_found")

    def test_phs_refused_on_admin_routes(self):
        phs = self.assertStatus(self.srv.post(self.base, {"label": "s", "scopes": ["feature_flag:read"]},
                                              key=self.key), 201)["value"]
        for method, path in (("GET", "/api/projects/"), ("GET", "/api/projects/1/"),
                             ("GET", self.base), ("POST", self.base),
                             ("GET", "/api/projects/1/feature_flags/"),
                             ("GET", "/api/personal_api_keys/")):
            self.assertProblem(self.srv.request(method, path, key=phs), 403, "permission_denied",
                               kwtest.MSG_SECRET_UNSUPPORTED)


class FlagDefinitions(kwtest.KWTestCase):
    """The execution route: phs_ (and phx_) fetch flag definitions."""

    base = "/api/projects/1/project_secret_api_keys/"

    def setup_db(self):
        self.env.tenants()

    def make_phs(self, project=1, scopes=("feature_flag:read",), key=None, label="sdk"):
        r = self.srv.post("/api/projects/%d/project_secret_api_keys/" % project,
                          {"label": label, "scopes": list(scopes)}, key=key or self.key)
        return self.assertStatus(r, 201)["value"]

    def make_flag(self, key, active=True, project=1, api_key=None):
        r = self.srv.post("/api/projects/%d/feature_flags/" % project, {
            "key": key, "name": key.upper(), "active": active,
            "filters": {"groups": [{"properties": [], "rollout_percentage": 50}]}},
            key=api_key or self.key)
        return self.assertStatus(r, 201)

    def test_remote_config(self):
        """posthog-node's getRemoteConfigPayload: the "true" payload by flag key."""
        text = json.dumps({"a": 1, "b": [True, None]})
        r = self.srv.post("/api/projects/1/feature_flags/", {
            "key": "remote-cfg", "name": "cfg", "active": True,
            "filters": {"groups": [{"properties": [], "rollout_percentage": 100}],
                        "payloads": {"true": text}}}, key=self.key)
        flag = self.assertStatus(r, 201)
        self.make_flag("no-payload")
        phs = self.make_phs()
        path = "/api/projects/@current/feature_flags/%s/remote_config?token=%s"
        # as posthog-node asks: @current + ?token=phc_, phs_ in the header
        want = {"a": 1, "b": [True, None]}
        st, _, body = self.srv.get(path % ("remote-cfg", self.token), key=phs)
        self.assertEqual((st, body), (200, want))
        # phx_, by project id, by flag id, the environments alias, a trailing slash
        for p in ("/api/projects/1/feature_flags/remote-cfg/remote_config",
                  "/api/environments/1/feature_flags/%d/remote_config/" % flag["id"],
                  path % ("remote-cfg", self.token)):
            st, _, body = self.srv.get(p, key=self.key)
            self.assertEqual((st, body), (200, want), p)
        # no payload: null; unknown or deleted flag: 404
        st, _, body = self.srv.get(path % ("no-payload", self.token), key=phs)
        self.assertEqual((st, body), (200, None))
        self.assertProblem(self.srv.get(path % ("nope", self.token), key=phs), 404, "not_found")
        self.assertStatus(self.srv.delete("/api/projects/1/feature_flags/%d/" % flag["id"],
                                          key=self.key), 204)
        self.assertProblem(self.srv.get(path % ("remote-cfg", self.token), key=phs), 404,
                           "not_found")
        # credentials as for the definitions
        self.assertProblem(self.srv.get(path % ("no-payload", self.token)), 401,
                           "not_authenticated")
        self.assertProblem(self.srv.get(path % ("no-payload", self.token),
                                        key=self.make_phs(scopes=("endpoint:read",), label="ep")),
                           403, "permission_denied")
        self.assertProblem(self.srv.get(path % ("no-payload", "phc_" + "x" * 43), key=phs), 401,
                           "authentication_failed", MSG_SECRET_INVALID)
        self.assertProblem(self.srv.post("/api/projects/1/feature_flags/no-payload/remote_config",
                                         {}, key=self.key), 405, "method_not_allowed")

    def test_definitions_body_etag_304(self):
        self.make_flag("zeta")
        self.make_flag("alpha", active=False)
        gone = self.make_flag("gone")
        self.assertStatus(self.srv.delete("/api/projects/1/feature_flags/%d/" % gone["id"],
                                          key=self.key), 204)
        phs = self.make_phs()
        path = "/flags/definitions?token=%s&send_cohorts" % self.token
        st, hdrs, body = self.srv.get(path, key=phs)
        self.assertEqual(st, 200, body)
        self.assertEqual(list(body.keys()), ["flags", "group_type_mapping", "cohorts",
                                             "minimal_flag_called_events",
                                             "property_matching_version"])
        self.assertEqual([f["key"] for f in body["flags"]], ["alpha", "zeta"])
        self.assertEqual(list(body["flags"][0].keys()), [
            "id", "team_id", "name", "key", "filters", "deleted", "active",
            "ensure_experience_continuity", "version"])
        self.assertFalse(body["flags"][0]["active"])
        self.assertEqual(body["flags"][1]["team_id"], 1)
        self.assertEqual(body["group_type_mapping"], {})
        self.assertEqual(body["cohorts"], {})
        self.assertIs(body["minimal_flag_called_events"], False)
        self.assertEqual(body["property_matching_version"], 1)
        etag = hdrs["ETag"]
        self.assertRegex(etag, r'^W/"[0-9a-f]{32}"$')
        self.assertEqual(hdrs["Cache-Control"], "private, must-revalidate")
        st2, hdrs2, body2 = self.srv.get(path, key=phs, headers={"If-None-Match": etag})
        self.assertEqual(st2, 304)
        self.assertEqual(self.srv.last_text, "")
        self.assertEqual(hdrs2["ETag"], etag)
        self.assertEqual(hdrs2["Cache-Control"], "private, must-revalidate")
        # a change gives a new ETag and a full body
        self.make_flag("beta")
        st3, hdrs3, body3 = self.srv.get(path, key=phs, headers={"If-None-Match": etag})
        self.assertEqual(st3, 200)
        self.assertNotEqual(hdrs3["ETag"], etag)
        self.assertEqual([f["key"] for f in body3["flags"]], ["alpha", "beta", "zeta"])
        # the same definitions on the older routes, and without ?token= for phs_
        for p in ("/api/feature_flag/local_evaluation/?token=%s" % self.token,
                  "/api/feature_flag/local_evaluation",
                  "/flags/definitions",
                  "/api/projects/1/feature_flags/local_evaluation/",
                  "/api/environments/1/feature_flags/local_evaluation"):
            got = self.assertStatus(self.srv.get(p, key=phs), 200)
            self.assertEqual(got, body3, p)
        # a personal key with the scope works too
        self.assertStatus(self.srv.get(path, key=self.key), 200)
        # last_used_at is recorded (off the request path)
        self.assertTrue(self.poll(lambda: self.env.sql(
            "SELECT last_used_at FROM project_secret_api_keys")[0][0]))

    def test_definitions_while_flags_change(self):
        """Polls on keep-alive connections while flags change: the ready
        responses a set shares between requests must never outlive it
        (run under ASan too) nor mix one set's ETag with another's body."""
        import threading
        phs = self.make_phs()
        self.make_flag("first")
        path = "/flags/definitions?token=%s" % self.token
        errors, counts = [], {"200": 0, "304": 0}
        stop = threading.Event()

        def poll(conditional):
            conn = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=10)
            etag = None
            try:
                while not stop.is_set():
                    hdrs = {"Authorization": "Bearer " + phs}
                    if conditional and etag:
                        hdrs["If-None-Match"] = etag
                    conn.request("GET", path, headers=hdrs)
                    r = conn.getresponse()
                    data = r.read()
                    got = r.getheader("ETag")
                    if r.status == 200:
                        want = 'W/"%s"' % hashlib.sha256(data).hexdigest()[:32]
                        if got != want:
                            errors.append("ETag %s for a body hashing to %s" % (got, want))
                        json.loads(data)
                        etag = got
                        counts["200"] += 1
                    elif r.status == 304:
                        if got != etag or data:
                            errors.append("304 with ETag %s after sending %s" % (got, etag))
                        counts["304"] += 1
                    else:
                        errors.append("status %d: %r" % (r.status, data[:200]))
            except Exception as e:  # noqa: BLE001 — reported below
                errors.append(repr(e))
            finally:
                conn.close()

        threads = [threading.Thread(target=poll, args=(i % 2 == 0,)) for i in range(4)]
        for t in threads:
            t.start()
        try:
            for i in range(25):
                self.make_flag("changed-%02d" % i)
        finally:
            stop.set()
            for t in threads:
                t.join()
        self.assertEqual(errors, [])
        self.assertGreater(counts["200"], 25)
        st, _, body = self.srv.get(path, key=phs)
        self.assertEqual(st, 200)
        self.assertEqual(len(body["flags"]), 26)

    def test_refusals(self):
        phs = self.make_phs()
        # no credential
        self.assertProblem(self.srv.get("/flags/definitions?token=" + self.token), 401,
                           "not_authenticated", kwtest.MSG_NOT_PROVIDED)
        # a phs_ of project 1 with the token of project 2
        token_b = self.env.sql("SELECT api_token FROM projects WHERE id=?",
                               (self.env.project_b,))[0][0]
        self.assertProblem(self.srv.get("/flags/definitions?token=" + token_b, key=phs), 401,
                           "authentication_failed", MSG_SECRET_INVALID)
        self.assertProblem(self.srv.get("/api/projects/1/feature_flags/local_evaluation/?token="
                                        + token_b, key=phs), 401,
                           "authentication_failed", MSG_SECRET_INVALID)
        # unknown and bad-checksum phs_
        self.assertProblem(self.srv.get("/flags/definitions?token=" + self.token,
                                        key=kwtest.make_key("phs_")),
                           401, "authentication_failed", MSG_SECRET_INVALID)
        self.assertProblem(self.srv.get("/flags/definitions?token=" + self.token,
                                        key=kwtest.bad_checksum(phs)),
                           401, "authentication_failed", MSG_SECRET_INVALID)
        # phs_ of project 1 on project 2's local_evaluation route
        self.assertProblem(self.srv.get("/api/projects/%d/feature_flags/local_evaluation/"
                                        % self.env.project_b, key=phs), 403, "permission_denied")
        # ... the same answer for a project that does not exist (another
        # tenant's ids are never confirmed)
        for ref in ("9999", "0", "123456789012"):
            self.assertProblem(self.srv.get("/api/projects/%s/feature_flags/local_evaluation/"
                                            % ref, key=phs), 403, "permission_denied")
        # (a segment that is no project id matches no route: 404 for anyone)
        # a phs_ without feature_flag:read
        ep = self.make_phs(scopes=("endpoint:read",), label="endpoints")
        self.assertProblem(self.srv.get("/flags/definitions", key=ep), 403, "permission_denied",
                           "API key missing required scope 'feature_flag:read'")
        # phc_ is not a credential here
        self.assertProblem(self.srv.get("/flags/definitions", key=self.token), 401,
                           "authentication_failed")
        # a person outside the token's organization
        self.assertProblem(self.srv.get("/flags/definitions?token=" + self.token,
                                        key=self.env.key_b), 404, "not_found")

    def test_roll_invalidates_old_value(self):
        r = self.assertStatus(self.srv.post(self.base, {"label": "r", "scopes": ["feature_flag:read"]},
                                            key=self.key), 201)
        old = r["value"]
        self.assertStatus(self.srv.get("/flags/definitions", key=old), 200)
        new = self.assertStatus(self.srv.post(self.base + r["id"] + "/roll/", key=self.key),
                                200)["value"]
        self.assertProblem(self.srv.get("/flags/definitions", key=old), 401,
                           "authentication_failed", MSG_SECRET_INVALID)
        self.assertStatus(self.srv.get("/flags/definitions", key=new), 200)

    def test_creator_deactivated(self):
        # user C becomes an admin of org A and creates a phs_ key
        self.env.sql("UPDATE memberships SET level=8 WHERE user_id=?", (self.env.user_c,))
        phs = self.make_phs(key=self.env.key_c, label="by c")
        self.make_flag("f1")
        self.env.sql("UPDATE users SET is_active=0 WHERE id=?", (self.env.user_c,))
        # An outside write: seen within the cache's bound (1 s), then for good.
        self.eventually(lambda: self.srv.get("/api/projects/", key=self.env.key_c), 401)
        self.assertProblem(self.srv.get("/api/projects/", key=self.env.key_c), 401,
                           "authentication_failed", kwtest.MSG_INVALID_HEADER)
        self.assertStatus(self.srv.get("/flags/definitions?token=" + self.token, key=phs), 200)


if __name__ == "__main__":
    kwtest.main()
