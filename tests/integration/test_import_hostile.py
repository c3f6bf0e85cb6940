"""`keyward import posthog` treats the export as hostile: it may create users,
organizations, projects and keys, but never graft a key, membership, project
or secret key onto a user, organization or project the installation already
had — unless --merge is given and the existing row matches exactly.

Every case starts from `keyward init` (user 1 a@x.io owns org A, project 1)
and checks that a refused import wrote nothing at all."""
import json
import os

import kwtest

ORG_B = "0188f5a4-7d1e-7000-8000-0000000000bb"


class ImportHostile(kwtest.KWTestCase):
    serve_in_setup = False

    def setup_db(self):
        self.planted = kwtest.legacy_key(43)
        self.owner_email = "a@x.io"

    def counts(self):
        return {t: self.env.sql("SELECT COUNT(*) FROM %s" % t)[0][0]
                for t in ("users", "organizations", "memberships", "projects",
                          "personal_api_keys", "project_secret_api_keys")}

    def run_import(self, doc, *extra):
        path = os.path.join(self.env.dir, "export.json")
        with open(path, "w") as f:
            json.dump(doc, f)
        return kwtest.run_cli("import", "posthog", "--file", path, *extra, "--db", self.env.db)

    def planted_key(self, user_id, scopes=("*",)):
        return {"id": "planted", "user_id": user_id, "label": "planted",
                "secure_value": kwtest.sha256_secure(self.planted),
                "mask_value": kwtest.mask(self.planted), "scopes": list(scopes),
                "scoped_teams": None, "scoped_organizations": None}

    def owner_row(self, **changes):
        uuid = self.env.sql("SELECT uuid FROM users WHERE id=?", (self.env.user_a,))[0][0]
        row = {"id": self.env.user_a, "uuid": uuid, "email": self.owner_email}
        row.update(changes)
        return row

    def org_row(self, **changes):
        name = self.env.sql("SELECT name FROM organizations WHERE id=?", (self.env.org_a,))[0][0]
        row = {"id": self.env.org_a, "name": name}
        row.update(changes)
        return row

    def assertRefused(self, doc, text, *extra):
        before = self.counts()
        proc = self.run_import(doc, *extra)
        self.assertEqual(proc.returncode, 1, proc.stdout + proc.stderr)
        self.assertIn(text, proc.stderr)
        self.assertIn("nothing was imported", proc.stderr)
        self.assertEqual(self.counts(), before)
        self.assertEqual(self.env.sql("SELECT COUNT(*) FROM personal_api_keys WHERE id='planted'"),
                         [(0,)])

    def assertPlantedKeyDoesNotWork(self):
        self.start_server()
        self.assertStatus(self.srv.get("/api/users/@me/", key=self.planted), 401)

    def test_key_for_an_existing_user_not_in_the_export(self):
        # the reported attack: a `*` key planted on the installation's first owner
        self.assertRefused({"personal_api_keys": [self.planted_key(self.env.user_a)]},
                           "personal_api_keys[0].user_id: not a user of this export")
        self.assertPlantedKeyDoesNotWork()

    def test_key_for_an_existing_user_listed_in_the_export(self):
        doc = {"users": [self.owner_row()],
               "personal_api_keys": [self.planted_key(self.env.user_a)]}
        self.assertRefused(doc, "users[0].id: this user existed before this import")
        self.assertPlantedKeyDoesNotWork()

    def test_merge_needs_an_exact_match(self):
        cases = [
            ({"uuid": "0188f5a4-7d1e-7000-8000-00000000dead"}, "users[0].uuid: does not match"),
            ({"email": "attacker@evil.io"}, "users[0].id: already belongs to another email"),
            ({"id": 9999}, "users[0].email: already belongs to another user id"),
        ]
        for change, text in cases:
            with self.subTest(change=change):
                doc = {"users": [self.owner_row(**change)],
                       "personal_api_keys": [self.planted_key(change.get("id", self.env.user_a))]}
                self.assertRefused(doc, text, "--merge")

    def test_membership_into_an_existing_organization(self):
        doc = {"users": [{"id": 700, "email": "intruder@evil.io"}],
               "memberships": [{"user_id": 700, "organization_id": self.env.org_a, "level": 15}]}
        self.assertRefused(doc, "memberships[0].organization_id: not an organization of this export")
        # listing the organization without --merge is refused too
        doc["organizations"] = [self.org_row()]
        self.assertRefused(doc, "organizations[0].id: this organization existed before this import")
        # with --merge but another name
        doc["organizations"] = [self.org_row(name="Not Acme")]
        self.assertRefused(doc, "organizations[0].name: does not match", "--merge")

    def test_membership_of_an_existing_user(self):
        doc = {"organizations": [{"id": ORG_B, "name": "B"}],
               "memberships": [{"user_id": self.env.user_a, "organization_id": ORG_B,
                                "level": 1}]}
        self.assertRefused(doc, "memberships[0].user_id: not a user of this export")

    def test_project_or_secret_key_on_an_existing_project(self):
        token = self.env.sql("SELECT api_token FROM projects WHERE id=1")[0][0]
        phs = "phs_" + kwtest.legacy_key(43)[4:]
        project = {"id": 1, "organization_id": self.env.org_a, "name": "Web",
                   "api_token": token, "secret_api_token": phs}
        # into an organization the export did not create
        self.assertRefused({"projects": [project]},
                           "projects[0].organization_id: not an organization of this export")
        # listing its organization without --merge stops there
        doc = {"organizations": [self.org_row()], "projects": [project]}
        self.assertRefused(doc, "organizations[0].id: this organization existed before this import")
        # --merge with a different name or token is not an exact match
        for change in ({"name": "Evil"}, {"api_token": "phc_" + kwtest.legacy_key(43)[4:]}):
            with self.subTest(change=change):
                doc["projects"] = [dict(project, **change)]
                self.assertRefused(doc, "projects[0].id: does not match the existing project",
                                   "--merge")
        # an existing project id under an organization the export creates
        doc = {"organizations": [{"id": ORG_B, "name": "B"}],
               "projects": [dict(project, organization_id=ORG_B)]}
        self.assertRefused(doc, "projects[0].id: this project existed before this import")
        # a new project id may not reuse an existing phc_ token
        doc = {"organizations": [{"id": ORG_B, "name": "B"}],
               "projects": [dict(project, id=77, organization_id=ORG_B)]}
        self.assertRefused(doc, "projects[0].api_token: already belongs to another project id")

    def test_merge_with_exact_match_is_accepted(self):
        # The legitimate use: re-importing the same installation's export.
        doc = {"users": [self.owner_row()], "organizations": [self.org_row()],
               "memberships": [{"user_id": self.env.user_a, "organization_id": self.env.org_a,
                                "level": 15}],
               "personal_api_keys": [self.planted_key(self.env.user_a, ["user:read"])]}
        proc = self.run_import(doc, "--merge")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("users                0 imported, 1 already present", proc.stdout)
        self.assertIn("personal_api_keys    1 imported, 0 already present", proc.stdout)

    def test_a_fresh_export_still_imports(self):
        doc = {"users": [{"id": 700, "email": "new@ph.io"}],
               "organizations": [{"id": ORG_B, "name": "B"}],
               "memberships": [{"user_id": 700, "organization_id": ORG_B, "level": 15}],
               "personal_api_keys": [self.planted_key(700)]}
        proc = self.run_import(doc)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.start_server()
        me = self.assertStatus(self.srv.get("/api/users/@me/", key=self.planted), 200)
        self.assertEqual(me["email"], "new@ph.io")
        # and it reaches nothing of the installation's own organization
        self.assertStatus(self.srv.get("/api/projects/1/", key=self.planted), 404)


if __name__ == "__main__":
    kwtest.main()
