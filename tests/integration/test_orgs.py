"""test_orgs.py — organizations, projects (environments) and members over
PostHog's routes.

GET/POST /api/organizations/, GET/PATCH/DELETE /api/organizations/:id/
(@current too), GET/POST /api/organizations/:id/projects/, POST
/api/projects/, PATCH/DELETE /api/projects/:id/, GET
/api/organizations/:id/members/, PATCH/DELETE …/members/:user_uuid/.
Each credential kind, another organization's key, narrower keys
(scopes, scoped_teams, scoped_organizations), levels and the last-owner
rule; deleting a project or an organization revokes its phs_ keys and phc_
token at once (and on a second instance within a second); a key scoped to
a deleted project never reaches a new one; odd input is a JSON 400 that
changes nothing; every change is in the activity log.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kwtest  # noqa: E402
from kwtest import (MSG_INVALID_HEADER, MSG_NOT_PROVIDED, MSG_SECRET_UNSUPPORTED,  # noqa: E402
                    KWTestCase)

ORGS = "/api/organizations/"
PK = "/api/personal_api_keys/"
MSG_ORG_LEVEL = "You don't have sufficient permissions in the organization."
MSG_PROJECT_LIMITED = ("API key is limited to projects (scoped_teams); this is an "
                       "organization-level action.")


class OrgBase(KWTestCase):
    """User A owns org A (project 1); B owns org B (project_b); C is a
    plain member of org A."""

    def setup_db(self):
        self.env.tenants()

    def new_key(self, key=None, **fields):
        body = {"label": fields.pop("label", "k"), "scopes": fields.pop("scopes", ["*"])}
        body.update(fields)
        st, _, got = self.srv.post(PK, body, key=key or self.key)
        self.assertEqual(st, 201, got)
        return got["value"]

    def new_project(self, name, org=None, key=None):
        path = ORGS + (org or self.env.org_a) + "/projects/" if org != "current" else "/api/projects/"
        return self.assertStatus(self.srv.post(path, {"name": name}, key=key or self.key), 201)

    def new_psk(self, project_id, key=None):
        return self.assertStatus(self.srv.post(
            "/api/projects/%d/project_secret_api_keys/" % project_id,
            {"label": "psk %d" % project_id, "scopes": ["feature_flag:read"]}, key=key or self.key),
            201)["value"]

    def phs_works(self, phs, srv=None):
        return (srv or self.srv).get("/flags/definitions", key=phs)[0]

    def phc_works(self, phc, srv=None):
        return (srv or self.srv).post("/flags/?v=2", {"token": phc, "distinct_id": "d"})[0]

    def activity(self, scope):
        return self.env.sql("SELECT activity, project_id, item_id, user_id, detail FROM activity_log "
                            "WHERE scope=? ORDER BY created_at", (scope,))

    def counts(self):
        return tuple(self.env.sql(q)[0][0] for q in (
            "SELECT COUNT(*) FROM organizations", "SELECT COUNT(*) FROM projects",
            "SELECT COUNT(*) FROM memberships", "SELECT COUNT(*) FROM activity_log"))


class Organizations(OrgBase):
    def test_list_only_the_callers_with_level_and_pages(self):
        body = self.assertStatus(self.srv.get(ORGS, key=self.key), 200)
        self.assertEqual(body["count"], 1)
        org = body["results"][0]
        self.assertEqual((org["id"], org["name"], org["membership_level"]), (self.env.org_a, "Acme", 15))
        self.assertEqual([t["id"] for t in org["teams"]], [1])
        self.assertEqual(org["member_count"], 2)
        for f in ("slug", "created_at", "updated_at", "projects", "logo_media_id"):
            self.assertIn(f, org)
        c = self.assertStatus(self.srv.get(ORGS, key=self.env.key_c), 200)
        self.assertEqual([(o["id"], o["membership_level"]) for o in c["results"]], [(self.env.org_a, 1)])
        b = self.assertStatus(self.srv.get(ORGS, key=self.env.key_b), 200)
        self.assertEqual([o["id"] for o in b["results"]], [self.env.org_b])
        for name in ("Two", "Three"):
            self.assertStatus(self.srv.post(ORGS, {"name": name}, key=self.key), 201)
        page = self.assertStatus(self.srv.get(ORGS + "?limit=1&offset=1", key=self.key), 200)
        self.assertEqual(page["count"], 3)
        self.assertEqual([o["name"] for o in page["results"]], ["Two"])
        self.assertIn("offset=2", page["next"])

    def test_get_current_and_other_organizations(self):
        got = self.assertStatus(self.srv.get(ORGS + "@current/", key=self.key), 200)
        self.assertEqual((got["id"], got["membership_level"]), (self.env.org_a, 15))
        got = self.assertStatus(self.srv.get(ORGS + self.env.org_a + "/", key=self.env.key_c), 200)
        self.assertEqual(got["membership_level"], 1)
        for path, key in ((ORGS + self.env.org_b + "/", self.key),
                          (ORGS + self.env.org_a + "/", self.env.key_b),
                          (ORGS + "00000000-0000-4000-8000-000000000000/", self.key),
                          (ORGS + "x" * 200 + "/", self.key)):
            with self.subTest(path=path[:60]):
                self.assertProblem(self.srv.get(path, key=key), 404, "not_found", "Not found.", None)
                self.assertNotIn("Beta", self.srv.last_text)

    def test_credential_kinds(self):
        phs = self.new_psk(1)
        for method, path in (("GET", ORGS), ("POST", ORGS), ("GET", ORGS + "@current/"),
                             ("PATCH", ORGS + self.env.org_a + "/"),
                             ("DELETE", ORGS + self.env.org_a + "/"),
                             ("GET", ORGS + self.env.org_a + "/members/"),
                             ("POST", "/api/projects/"), ("DELETE", "/api/projects/1/")):
            body = {"name": "x"} if method in ("POST", "PATCH") else None
            with self.subTest(method=method, path=path):
                self.assertProblem(self.srv.request(method, path, body=body), 401, "not_authenticated",
                                   MSG_NOT_PROVIDED, None)
                self.assertProblem(self.srv.request(method, path, key=self.token, body=body), 401,
                                   "authentication_failed", MSG_INVALID_HEADER, None)
                self.assertProblem(self.srv.request(method, path, key=phs, body=body), 403,
                                   "permission_denied", MSG_SECRET_UNSUPPORTED, None)
        self.assertEqual(self.env.sql("SELECT name FROM organizations WHERE id=?",
                                      (self.env.org_a,))[0][0], "Acme")
        self.assertEqual(self.phs_works(phs), 200)

    def test_rename_levels_and_odd_input(self):
        path = ORGS + self.env.org_a + "/"
        got = self.assertStatus(self.srv.patch(path, {"name": "Acme Inc"}, key=self.key), 200)
        self.assertEqual(got["name"], "Acme Inc")
        self.assertEqual(self.activity("Organization")[-1][:3], ("updated", None, self.env.org_a))
        self.assertIn('"before":"Acme","after":"Acme Inc"', self.activity("Organization")[-1][4])
        # …and readable where PostHog's readers look: the project's activity log
        log = self.assertStatus(self.srv.get("/api/projects/1/activity_log/?scope=Organization",
                                             key=self.key), 200)
        self.assertEqual([(r["activity"], r["detail"]["name"]) for r in log["results"]],
                         [("updated", "Acme Inc")])
        self.assertEqual(log["results"][0]["detail"]["changes"][0]["after"], "Acme Inc")
        self.assertProblem(self.srv.patch(path, {"name": "C's"}, key=self.env.key_c), 403,
                           "permission_denied", MSG_ORG_LEVEL)
        self.assertProblem(self.srv.patch(path, {"name": "B's"}, key=self.env.key_b), 404, "not_found")
        ro = self.new_key(scopes=["organization:read"])
        self.assertProblem(self.srv.patch(path, {"name": "ro"}, key=ro), 403, "permission_denied",
                           "API key missing required scope 'organization:write'")
        before = self.counts()
        for body, code in (({"name": "x" * 65}, "max_length"), ({"name": "a\u0000b"},
                                                                 "parse_error"),
                           ({"name": 12}, "invalid"), ({"name": None}, "null"),
                           ({"name": "   "}, "blank"), ([{"name": "x"}], "invalid"),
                           ("name", "parse_error")):
            with self.subTest(body=repr(body)[:40]):
                self.assertProblem(self.srv.patch(path, body, key=self.key), 400, code)
        self.assertProblem(self.srv.request("PATCH", path, key=self.key, raw=b'{"name": "\xff\xfe"}'),
                           400, None)
        self.assertProblem(self.srv.request("PATCH", path, key=self.key, raw=b'{"name": '), 400, None)
        self.assertEqual(self.counts(), before)
        self.assertEqual(self.env.sql("SELECT name FROM organizations WHERE id=?",
                                      (self.env.org_a,))[0][0], "Acme Inc")
        # 64 characters of 4 bytes each fit
        got = self.assertStatus(self.srv.patch(path, {"name": "\U0001F600" * 64}, key=self.key), 200)
        self.assertEqual(got["name"], "\U0001F600" * 64)

    def test_create_makes_the_caller_owner(self):
        got = self.assertStatus(self.srv.post(ORGS, {"name": "Staging Co"}, key=self.env.key_c), 201)
        self.assertEqual((got["name"], got["membership_level"], got["teams"]), ("Staging Co", 15, []))
        self.assertEqual(self.env.sql("SELECT level FROM memberships WHERE user_id=? AND org_id=?",
                                      (self.env.user_c, got["id"]))[0][0], 15)
        self.assertEqual(self.activity("Organization")[-1][:4], ("created", None, got["id"], self.env.user_c))
        # the new organization is C's alone
        self.assertProblem(self.srv.get(ORGS + got["id"] + "/", key=self.key), 404, "not_found")
        before = self.counts()
        ro = self.new_key(scopes=["organization:read"])
        self.assertProblem(self.srv.post(ORGS, {"name": "n"}, key=ro), 403, "permission_denied",
                           "API key missing required scope 'organization:write'")
        limited = self.new_key(scoped_teams=[1])
        self.assertProblem(self.srv.post(ORGS, {"name": "n"}, key=limited), 403, "permission_denied",
                           MSG_PROJECT_LIMITED)
        org_limited = self.new_key(scoped_organizations=[self.env.org_a])
        self.assertProblem(self.srv.post(ORGS, {"name": "n"}, key=org_limited), 403,
                           "permission_denied", None, "scoped_organizations")
        self.assertProblem(self.srv.post(ORGS, {}, key=self.key), 400, "required", None, "name")
        self.assertProblem(self.srv.post(ORGS, {"name": "y" * 65}, key=self.key), 400, "max_length")
        self.assertEqual(self.counts()[:3], before[:3])

    def test_org_limited_key_sees_only_its_organizations(self):
        other = self.assertStatus(self.srv.post(ORGS, {"name": "Other"}, key=self.key), 201)
        k = self.new_key(scoped_organizations=[self.env.org_a])
        body = self.assertStatus(self.srv.get(ORGS, key=k), 200)
        self.assertEqual([o["id"] for o in body["results"]], [self.env.org_a])
        for method, path in (("GET", ORGS + other["id"] + "/"),
                             ("PATCH", ORGS + other["id"] + "/"),
                             ("GET", ORGS + other["id"] + "/projects/"),
                             ("POST", ORGS + other["id"] + "/projects/"),
                             ("GET", ORGS + other["id"] + "/members/"),
                             ("DELETE", ORGS + other["id"] + "/")):
            with self.subTest(method=method, path=path):
                self.assertProblem(self.srv.request(method, path, key=k,
                                                    body={"name": "z"} if method != "GET" else None),
                                   403, "permission_denied",
                                   "API key does not have access to the requested organization: ID %s."
                                   % other["id"])
        self.assertEqual(self.env.sql("SELECT name FROM organizations WHERE id=?", (other["id"],))[0][0],
                         "Other")

    def test_delete_by_owner_revokes_everything_of_it(self):
        org = self.assertStatus(self.srv.post(ORGS, {"name": "Doomed"}, key=self.key), 201)
        p = self.new_project("doomed web", org=org["id"])
        phs = self.new_psk(p["id"])
        self.assertStatus(self.srv.post("/api/projects/%d/feature_flags/" % p["id"], {"key": "f"},
                                        key=self.key), 201)
        scoped = self.new_key(scoped_organizations=[org["id"]])
        self.assertEqual(self.phs_works(phs), 200)
        self.assertEqual(self.phc_works(p["api_token"]), 200)
        self.assertEqual(self.srv.get("/api/projects/%d/" % p["id"], key=scoped)[0], 200)
        # C becomes an admin there: admins may not delete, owners may
        self.env.add_membership(self.env.user_c, org["id"], 8)
        path = ORGS + org["id"] + "/"
        self.assertProblem(self.srv.delete(path, key=self.env.key_c), 403, "permission_denied",
                           MSG_ORG_LEVEL)
        self.assertProblem(self.srv.delete(path, key=self.env.key_b), 404, "not_found")
        self.assertEqual(self.srv.delete(path, key=self.key)[0], 204)
        # at once, on this instance
        self.assertEqual(self.phs_works(phs), 401)
        self.assertNotEqual(self.phc_works(p["api_token"]), 200)
        self.assertEqual(self.srv.get("/api/projects/%d/" % p["id"], key=scoped)[0], 404)
        self.assertEqual(self.assertStatus(self.srv.get(ORGS, key=scoped), 200)["count"], 0)
        self.assertProblem(self.srv.get(path, key=self.key), 404, "not_found")
        self.assertEqual(self.env.sql("SELECT COUNT(*) FROM memberships WHERE org_id=?", (org["id"],)),
                         [(0,)])
        self.assertEqual(self.env.sql("SELECT COUNT(*) FROM project_secret_api_keys WHERE project_id=?",
                                      (p["id"],)), [(0,)])
        entry = self.activity("Organization")[-1]
        self.assertEqual(entry[:4], ("deleted", None, org["id"], self.env.user_a))
        self.assertIn('"projects_deleted":[%d]' % p["id"], entry[4])
        # the personal key itself lives on, reaching nothing of the dead org
        self.assertEqual(self.srv.get("/api/users/@me/", key=scoped)[0], 200)
        # org A is untouched
        self.assertStatus(self.srv.get(ORGS + self.env.org_a + "/", key=self.key), 200)


class Projects(OrgBase):
    def test_environments_with_their_own_keys(self):
        """The README's walk-through: staging and production projects, each
        with its own phs_ key and a phx_ key scoped to it; a key of one
        environment is refused on the other."""
        staging = self.new_project("staging")
        production = self.new_project("production", org="current")
        self.assertEqual(production["organization"], self.env.org_a)
        self.assertNotEqual(staging["api_token"], production["api_token"])
        listed = self.assertStatus(self.srv.get(ORGS + self.env.org_a + "/projects/", key=self.key), 200)
        self.assertEqual([p["name"] for p in listed["results"]], ["Web", "staging", "production"])
        phs_staging = self.new_psk(staging["id"])
        phs_prod = self.new_psk(production["id"])
        phx_staging = self.new_key(scoped_teams=[staging["id"]], scopes=["feature_flag:read"])
        self.assertEqual(self.srv.get("/api/projects/%d/feature_flags/" % staging["id"],
                                      key=phx_staging)[0], 200)
        self.assertProblem(self.srv.get("/api/projects/%d/feature_flags/" % production["id"],
                                        key=phx_staging), 403, "permission_denied",
                           "API key does not have access to the requested project: ID %d."
                           % production["id"])
        self.assertProblem(self.srv.get("/api/projects/%d/feature_flags/local_evaluation/"
                                        % production["id"], key=phs_staging), 403,
                           "permission_denied",
                           "API key does not have access to the requested project: ID %d."
                           % production["id"])
        self.assertEqual(self.srv.get("/api/projects/%d/feature_flags/local_evaluation/"
                                      % production["id"], key=phs_prod)[0], 200)
        # /api/environments/ is the same project
        got = self.assertStatus(self.srv.get("/api/environments/%d/" % staging["id"], key=self.key), 200)
        self.assertEqual(got["name"], "staging")
        self.assertEqual([r[:3] for r in self.activity("Project") if r[1] is None],
                         [("created", None, str(staging["id"])),
                          ("created", None, str(production["id"]))])

    def test_rename_and_delete_revokes_at_once(self):
        p = self.new_project("temp")
        got = self.assertStatus(self.srv.patch("/api/environments/%d/" % p["id"], {"name": "tmp"},
                                               key=self.key), 200)
        self.assertEqual(got["name"], "tmp")
        phs = self.new_psk(p["id"])
        scoped = self.new_key(scoped_teams=[p["id"]])
        self.assertEqual(self.phs_works(phs), 200)
        self.assertEqual(self.phc_works(p["api_token"]), 200)
        self.assertProblem(self.srv.delete("/api/projects/%d/" % p["id"], key=self.env.key_c), 403,
                           "permission_denied", kwtest.MSG_LEVEL)
        self.assertProblem(self.srv.delete("/api/projects/%d/" % p["id"], key=self.env.key_b), 404,
                           "not_found")
        self.assertEqual(self.srv.delete("/api/projects/%d/" % p["id"], key=self.key)[0], 204)
        self.assertEqual(self.phs_works(phs), 401)
        self.assertNotEqual(self.phc_works(p["api_token"]), 200)
        self.assertProblem(self.srv.get("/api/projects/%d/" % p["id"], key=self.key), 404, "not_found")
        self.assertEqual(self.srv.delete("/api/projects/%d/" % p["id"], key=self.key)[0], 404)
        # the key scoped to it reaches nothing, and never a new project
        self.assertEqual(self.assertStatus(self.srv.get("/api/projects/", key=scoped), 200)["count"], 0)
        fresh = self.new_project("fresh")
        self.assertGreater(fresh["id"], p["id"])
        self.assertProblem(self.srv.get("/api/projects/%d/" % fresh["id"], key=scoped), 403,
                           "permission_denied")
        self.assertEqual(self.assertStatus(self.srv.get("/api/projects/", key=scoped), 200)["count"], 0)
        deleted = [r for r in self.activity("Project") if r[0] == "deleted"]
        self.assertTrue(deleted)
        self.assertTrue(all(r[2] == str(p["id"]) and r[3] == self.env.user_a for r in deleted))
        self.assertIn("revoked", deleted[0][4])
        # project 1 is untouched
        self.assertEqual(self.phc_works(self.token), 200)

    def test_ids_never_reused_after_deleting_the_newest(self):
        p = self.new_project("newest")
        scoped = self.new_key(scoped_teams=[p["id"]])
        self.assertEqual(self.srv.delete("/api/projects/%d/" % p["id"], key=self.key)[0], 204)
        again = self.new_project("after", org="current")
        self.assertNotEqual(again["id"], p["id"])
        self.assertProblem(self.srv.get("/api/projects/%d/" % again["id"], key=scoped), 403,
                           "permission_denied")

    def test_narrower_and_cross_keys(self):
        limited = self.new_key(scoped_teams=[1])
        self.assertProblem(self.srv.post("/api/projects/", {"name": "n"}, key=limited), 403,
                           "permission_denied", MSG_PROJECT_LIMITED)
        self.assertProblem(self.srv.post(ORGS + self.env.org_a + "/projects/", {"name": "n"},
                                         key=limited), 403, "permission_denied", MSG_PROJECT_LIMITED)
        # inside its own project a project-limited key with project:write may rename it
        self.assertStatus(self.srv.patch("/api/projects/1/", {"name": "Web 2"}, key=limited), 200)
        ro = self.new_key(scopes=["project:read"])
        self.assertProblem(self.srv.post("/api/projects/", {"name": "n"}, key=ro), 403,
                           "permission_denied", "API key missing required scope 'project:write'")
        self.assertProblem(self.srv.delete("/api/projects/1/", key=ro), 403, "permission_denied")
        self.assertProblem(self.srv.post("/api/projects/", {"name": "n"}, key=self.env.key_c), 403,
                           "permission_denied", MSG_ORG_LEVEL)
        self.assertProblem(self.srv.post(ORGS + self.env.org_b + "/projects/", {"name": "n"},
                                         key=self.key), 404, "not_found")
        self.assertProblem(self.srv.get(ORGS + self.env.org_b + "/projects/", key=self.key), 404,
                           "not_found")
        self.assertProblem(self.srv.patch("/api/projects/%d/" % self.env.project_b, {"name": "x"},
                                          key=self.key), 404, "not_found")
        self.assertProblem(self.srv.delete("/api/projects/%d/" % self.env.project_b, key=self.key),
                           404, "not_found")
        self.assertEqual(self.env.sql("SELECT COUNT(*) FROM projects"), [(2,)])
        # B's own POST /api/projects/ lands in B's organization
        got = self.assertStatus(self.srv.post("/api/projects/", {"name": "b2"}, key=self.env.key_b), 201)
        self.assertEqual(got["organization"], self.env.org_b)

    def test_odd_input(self):
        before = self.counts()
        for body, code in (({"name": "x" * 201}, "max_length"), ({"name": "\U0001F600" * 101},
                                                                   "max_length"),
                           ({"name": "a\u0000"}, "parse_error"),
                           ({"name": ["x"]}, "invalid"), ({"name": True}, "invalid"),
                           ({"name": ""}, "blank"), ([], "invalid"), (7, "parse_error")):
            for path in ("/api/projects/", ORGS + self.env.org_a + "/projects/"):
                with self.subTest(body=repr(body)[:40], path=path):
                    self.assertProblem(self.srv.post(path, body, key=self.key), 400, code)
            with self.subTest(body=repr(body)[:40], patch=1):
                self.assertProblem(self.srv.patch("/api/projects/1/", body, key=self.key), 400, code)
        self.assertProblem(self.srv.request("POST", "/api/projects/", key=self.key,
                                            raw=b'{"name": "\xc3\x28"}'), 400, None)
        self.assertEqual(self.counts(), before)
        self.assertEqual(self.env.sql("SELECT name FROM projects WHERE id=1"), [("Web",)])
        # a name is optional on create, as PostHog's
        got = self.assertStatus(self.srv.post("/api/projects/", {}, key=self.key), 201)
        self.assertEqual(got["name"], "Default project")


class Members(OrgBase):
    def member_path(self, user_id, org=None):
        return ORGS + (org or self.env.org_a) + "/members/" + self.uuid_of(user_id) + "/"

    def level(self, user_id, org=None):
        rows = self.env.sql("SELECT level FROM memberships WHERE user_id=? AND org_id=?",
                            (user_id, org or self.env.org_a))
        return rows[0][0] if rows else None

    def test_list(self):
        body = self.assertStatus(self.srv.get(ORGS + self.env.org_a + "/members/", key=self.env.key_c),
                                 200)
        self.assertEqual(body["count"], 2)
        self.assertEqual([(m["user"]["email"], m["level"]) for m in body["results"]],
                         [("a@x.io", 15), ("c@x.io", 1)])
        for f in ("id", "joined_at", "updated_at", "is_2fa_enabled", "has_social_auth"):
            self.assertIn(f, body["results"][0])
        page = self.assertStatus(self.srv.get(ORGS + "@current/members/?limit=1&offset=1",
                                              key=self.key), 200)
        self.assertEqual([m["user"]["email"] for m in page["results"]], ["c@x.io"])
        self.assertProblem(self.srv.get(ORGS + self.env.org_b + "/members/", key=self.key), 404,
                           "not_found")
        ro = self.new_key(scopes=["organization:read"])
        self.assertProblem(self.srv.get(ORGS + self.env.org_a + "/members/", key=ro), 403,
                           "permission_denied",
                           "API key missing required scope 'organization_member:read'")

    def test_levels_and_escalation(self):
        c = self.member_path(self.env.user_c)
        got = self.assertStatus(self.srv.patch(c, {"level": 8}, key=self.key), 200)
        self.assertEqual((got["level"], got["user"]["email"]), (8, "c@x.io"))
        entry = self.activity("OrganizationMembership")[-1]
        self.assertEqual(entry[:4], ("updated", None, self.uuid_of(self.env.user_c), self.env.user_a))
        self.assertIn('"field":"level","before":1,"after":8', entry[4])
        # C (admin) cannot raise themself or anyone to owner, nor touch the owner
        self.assertProblem(self.srv.patch(c, {"level": 15}, key=self.env.key_c), 403,
                           "permission_denied", None, "level")
        d = self.env.add_user("d@x.io")
        self.env.add_membership(d, self.env.org_a, 1)
        self.assertProblem(self.srv.patch(self.member_path(d), {"level": 15}, key=self.env.key_c), 403,
                           "permission_denied", None, "level")
        self.assertProblem(self.srv.patch(self.member_path(self.env.user_a), {"level": 1},
                                          key=self.env.key_c), 403, "permission_denied", None, "level")
        self.assertProblem(self.srv.delete(self.member_path(self.env.user_a), key=self.env.key_c), 403,
                           "permission_denied", None, "level")
        # …but can promote a member to admin
        self.assertStatus(self.srv.patch(self.member_path(d), {"level": 8}, key=self.env.key_c), 200)
        self.assertEqual((self.level(self.env.user_a), self.level(self.env.user_c), self.level(d)),
                         (15, 8, 8))
        # a plain member cannot change levels at all
        self.assertStatus(self.srv.patch(self.member_path(d), {"level": 1}, key=self.key), 200)
        key_d = self.env.cli_key_create("d@x.io", "d key")
        self.assertProblem(self.srv.patch(c, {"level": 1}, key=key_d), 403, "permission_denied",
                           MSG_ORG_LEVEL)

    def test_last_owner(self):
        a = self.member_path(self.env.user_a)
        self.assertProblem(self.srv.patch(a, {"level": 8}, key=self.key), 400, "last_owner", None, "level")
        self.assertProblem(self.srv.delete(a, key=self.key), 400, "last_owner", None, "level")
        self.assertEqual(self.level(self.env.user_a), 15)
        # with a second owner, the first may step down
        self.assertStatus(self.srv.patch(self.member_path(self.env.user_c), {"level": 15},
                                         key=self.key), 200)
        self.assertStatus(self.srv.patch(a, {"level": 8}, key=self.key), 200)
        self.assertProblem(self.srv.delete(self.member_path(self.env.user_c), key=self.key), 403,
                           "permission_denied", None, "level")
        self.assertProblem(self.srv.patch(self.member_path(self.env.user_c), {"level": 8},
                                          key=self.env.key_c), 400, "last_owner")
        self.assertEqual((self.level(self.env.user_a), self.level(self.env.user_c)), (8, 15))

    def test_remove_is_departure_from_that_org(self):
        # C, an admin, makes a phs_ key; C also belongs to org B
        self.env.sql("UPDATE memberships SET level=8 WHERE user_id=?", (self.env.user_c,))
        self.env.add_membership(self.env.user_c, self.env.org_b, 1)
        phs = self.new_psk(1, key=self.env.key_c)
        self.assertEqual(self.srv.get("/api/projects/1/", key=self.env.key_c)[0], 200)
        self.assertEqual(self.srv.delete(self.member_path(self.env.user_c), key=self.key)[0], 204)
        # at once: org A and its projects are gone for C's personal key
        self.assertProblem(self.srv.get("/api/projects/1/", key=self.env.key_c), 404, "not_found")
        self.assertProblem(self.srv.get(ORGS + self.env.org_a + "/", key=self.env.key_c), 404,
                           "not_found")
        orgs = self.assertStatus(self.srv.get(ORGS, key=self.env.key_c), 200)
        self.assertEqual([o["id"] for o in orgs["results"]], [self.env.org_b])
        # the key still works elsewhere, and the phs_ key C made keeps working
        self.assertEqual(self.srv.get("/api/projects/%d/" % self.env.project_b, key=self.env.key_c)[0],
                         200)
        self.assertEqual(self.phs_works(phs), 200)
        self.assertEqual(self.activity("OrganizationMembership")[-1][:4],
                         ("deleted", None, self.uuid_of(self.env.user_c), self.env.user_a))
        self.assertEqual(self.srv.delete(self.member_path(self.env.user_c), key=self.key)[0], 404)

    def test_other_org_and_odd_input(self):
        c = self.member_path(self.env.user_c)
        before = self.counts()
        self.assertProblem(self.srv.patch(c, {"level": 8}, key=self.env.key_b), 404, "not_found")
        self.assertProblem(self.srv.delete(c, key=self.env.key_b), 404, "not_found")
        # B is no member of org A: not found through A's path
        self.assertProblem(self.srv.patch(self.member_path(self.env.user_b), {"level": 8},
                                          key=self.key), 404, "not_found")
        self.assertProblem(self.srv.delete(ORGS + self.env.org_a + "/members/nope/", key=self.key),
                           404, "not_found")
        for body, code in (({"level": 2}, "invalid_choice"), ({"level": "8"}, "invalid_choice"),
                           ({"level": None}, "invalid_choice"), ({"level": 8.0}, "invalid_choice"),
                           ({}, "required"), ([8], "invalid"), ({"level": 2 ** 40}, "invalid_choice")):
            with self.subTest(body=body):
                self.assertProblem(self.srv.patch(c, body, key=self.key), 400, code)
        self.assertProblem(self.srv.request("PATCH", c, key=self.key, raw=b'{"level": 8, "x": "\xff"}'),
                           400, None)
        self.assertEqual(self.counts(), before)
        self.assertEqual(self.level(self.env.user_c), 1)
        limited = self.new_key(scoped_teams=[1])
        self.assertProblem(self.srv.get(ORGS + self.env.org_a + "/members/", key=limited), 403,
                           "permission_denied", MSG_PROJECT_LIMITED)


class Sessions(OrgBase):
    """A console session acts with the person's rights: no scopes, the same
    membership and level rules, and CSRF on writes."""

    PASSWORD = "correct horse battery"

    def setup_db(self):
        super().setup_db()
        for email in ("a@x.io", "c@x.io"):
            proc = subprocess.run([kwtest.BIN, "user", "set-password", email, "--db",
                                          self.env.db], input=self.PASSWORD + "\n",
                                         capture_output=True, text=True, timeout=30)
            self.assertEqual(proc.returncode, 0, proc.stderr)

    def session(self, email):
        st, hdrs, body = self.srv.post("/api/login/", {"email": email, "password": self.PASSWORD})
        self.assertEqual(st, 200, body)
        cookie = hdrs["Set-Cookie"].split(";")[0]
        return {"Cookie": cookie, "X-CSRFToken": body["csrf_token"]}, {"Cookie": cookie}

    def test_session_routes(self):
        a, a_no_csrf = self.session("a@x.io")
        c, _ = self.session("c@x.io")
        body = self.assertStatus(self.srv.get(ORGS, headers=a_no_csrf), 200)
        self.assertEqual(body["count"], 1)
        self.assertProblem(self.srv.post("/api/projects/", {"name": "s"}, headers=a_no_csrf), 403,
                           "permission_denied")
        got = self.assertStatus(self.srv.post("/api/projects/", {"name": "s"}, headers=a), 201)
        self.assertProblem(self.srv.delete("/api/projects/%d/" % got["id"], headers=c), 403,
                           "permission_denied", kwtest.MSG_LEVEL)
        self.assertProblem(self.srv.get(ORGS + self.env.org_b + "/", headers=a), 404, "not_found")
        members = self.assertStatus(self.srv.get(ORGS + "@current/members/", headers=c), 200)
        self.assertEqual(members["count"], 2)
        self.assertEqual(self.srv.delete("/api/projects/%d/" % got["id"], headers=a)[0], 204)
        org = self.assertStatus(self.srv.post(ORGS, {"name": "By session"}, headers=c), 201)
        self.assertEqual(org["membership_level"], 15)


class Cli(OrgBase):
    """`keyward org` and `keyward project`, acting as a user with the API's
    rules, against the database a server is running on."""

    def cli(self, *args):
        return kwtest.run_cli(*args, "--db", self.env.db)

    def test_org_and_project_commands(self):
        out = self.cli("org", "create", "--email", "c@x.io", "--name", "C Corp")
        self.assertEqual(out.returncode, 0, out.stderr)
        new_org = self.env.sql("SELECT id FROM organizations WHERE name='C Corp'")[0][0]
        self.assertIn(new_org, out.stdout)
        out = self.cli("org", "list", "--email", "c@x.io")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("member  Acme", out.stdout)
        self.assertIn("owner   C Corp", out.stdout)
        # a plain member of org A cannot add a project there; C owns C Corp
        out = self.cli("project", "create", "--email", "c@x.io", "--name", "nope")
        self.assertEqual(out.returncode, 1)
        self.assertIn("sufficient permissions", out.stderr)
        out = self.cli("project", "create", "--email", "c@x.io", "--name", "c-prod", "--org", new_org)
        self.assertEqual(out.returncode, 0, out.stderr)
        phc = kwtest.parse_phc(out.stdout)
        self.assertEqual(self.phc_works(phc), 200)
        # another organization's id: not found, nothing made
        out = self.cli("project", "create", "--email", "a@x.io", "--name", "x", "--org", new_org)
        self.assertEqual((out.returncode, out.stderr.strip()), (1, "keyward project: Not found."))
        out = self.cli("project", "list", "--email", "c@x.io", "--org", new_org)
        self.assertIn("c-prod", out.stdout)
        self.assertNotIn("Web", out.stdout)
        pid = self.env.sql("SELECT id FROM projects WHERE name='c-prod'")[0][0]
        phs = self.new_psk(pid, key=self.env.cli_key_create("c@x.io", "c2"))
        self.assertEqual(self.phs_works(phs), 200)
        out = self.cli("project", "delete", "--email", "a@x.io", str(pid))
        self.assertEqual(out.returncode, 1)
        out = self.cli("project", "delete", "--email", "c@x.io", str(pid))
        self.assertEqual(out.returncode, 0, out.stderr)
        # the running server learns it from the change log
        self.eventually(lambda: self.srv.get("/flags/definitions", key=phs), 401)
        rows = self.env.sql("SELECT activity, ip_address FROM activity_log WHERE scope='Project' "
                            "AND project_id IS NULL")
        self.assertEqual(rows, [("created", "cli"), ("deleted", "cli")])
        # bad input: usage (2) or a validation message (1), nothing made
        self.assertEqual(self.cli("project", "create", "--email", "a@x.io").returncode, 2)
        out = self.cli("project", "create", "--email", "a@x.io", "--name", "x" * 201)
        self.assertEqual(out.returncode, 1)
        self.assertIn("no more than 200 characters", out.stderr)
        self.assertEqual(self.env.sql("SELECT COUNT(*) FROM projects"), [(2,)])


class TwoInstances(OrgBase):
    """Deleting a project on instance A: instance B, which had its phs_ key
    and phc_ token cached, refuses them within a second."""

    BOUND = 1.0

    def until(self, fn, want):
        start = time.monotonic()
        while True:
            got = fn()
            if got == want:
                return time.monotonic() - start
            if time.monotonic() - start > self.BOUND:
                self.fail("still %r after %.3fs (want %r)" % (got, self.BOUND, want))
            time.sleep(0.005)

    def test_delete_project_on_a_refused_by_b(self):
        a = self.srv
        b = self.start_server()
        p = self.new_project("shared")
        phs = self.new_psk(p["id"])
        for _ in range(3):
            self.assertEqual(self.phs_works(phs, b), 200)
            self.assertEqual(self.phc_works(p["api_token"], b), 200)
        self.assertEqual(a.delete("/api/projects/%d/" % p["id"], key=self.key)[0], 204)
        d1 = self.until(lambda: self.phs_works(phs, b), 401)
        d2 = self.until(lambda: self.phc_works(p["api_token"], b) != 200, True)
        print("\n[%s] project deleted on A: phs_ refused by B after %.0f ms, phc_ after %.0f ms"
              % (kwtest.BACKEND, d1 * 1000, d2 * 1000))
        for _ in range(10):
            self.assertEqual(self.phs_works(phs, b), 401)


if __name__ == "__main__":
    kwtest.main()
