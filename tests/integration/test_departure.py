"""test_departure.py — deactivating a user.

PATCH /api/users/:id/ {"is_active": false} by an organization admin, and
`keyward user deactivate EMAIL` from the shell: the user's personal keys
stop working (at once through the API, within the documented bound from
another process), project secret keys they created keep working, and the
activity log says who did it.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kwtest  # noqa: E402


class Departure(kwtest.KWTestCase):
    def setup_db(self):
        # A owns org A (project 1).  tenants(): B owns org B; C is a member
        # of org A.  C becomes an admin (to create a phs_); D is a plain
        # member of org A; E is an admin of org A.
        self.env.tenants()
        self.env.sql("UPDATE memberships SET level=8 WHERE user_id=?", (self.env.user_c,))
        self.user_d = self.env.add_user("d@x.io")
        self.env.add_membership(self.user_d, self.env.org_a, 1)
        self.key_d = self.env.cli_key_create("d@x.io", "d key")
        self.user_e = self.env.add_user("e@x.io")
        self.env.add_membership(self.user_e, self.env.org_a, 8)
        self.key_e = self.env.cli_key_create("e@x.io", "e key")

    def me(self, key):
        return self.srv.get("/api/users/@me/", key=key)

    def deactivate(self, user_id, key, active=False):
        return self.srv.patch("/api/users/%d/" % user_id, {"is_active": active}, key=key)

    def test_admin_deactivates_member_keys_stop_secret_keys_live_on(self):
        st, _, psk = self.srv.post("/api/projects/1/project_secret_api_keys/",
                                   {"label": "by c", "scopes": ["feature_flag:read"]},
                                   key=self.env.key_c)
        self.assertEqual(st, 201, psk)
        phs = psk["value"]
        self.assertStatus(self.me(self.env.key_c), 200)
        body = self.assertStatus(self.deactivate(self.env.user_c, self.key), 200)
        self.assertEqual(body["id"], self.env.user_c)
        self.assertEqual(body["email"], "c@x.io")
        self.assertFalse(body["is_active"])
        # at once: this server made the change
        self.assertProblem(self.me(self.env.key_c), 401, "authentication_failed",
                           kwtest.MSG_INVALID_HEADER)
        st, _, defs = self.srv.get("/flags/definitions?token=" + self.token, key=phs)
        self.assertEqual(st, 200, defs)
        rows = self.env.sql("SELECT activity, scope, item_id, user_id, detail FROM activity_log "
                            "WHERE scope='User'")
        self.assertEqual([r[:4] for r in rows], [("deactivated", "User", str(self.env.user_c),
                                                  self.env.user_a)])
        self.assertIn('"field":"is_active"', rows[0][4])
        # deactivating again changes nothing; reactivating restores the key
        self.assertStatus(self.deactivate(self.env.user_c, self.key), 200)
        self.assertEqual(len(self.env.sql("SELECT 1 FROM activity_log WHERE scope='User'")), 1)
        body = self.assertStatus(self.deactivate(self.env.user_c, self.key, True), 200)
        self.assertTrue(body["is_active"])
        self.assertStatus(self.me(self.env.key_c), 200)

    def test_who_may(self):
        # a plain member: 403; an admin may not deactivate an owner; nobody
        # deactivates themself; another organization's owner: 404
        self.assertProblem(self.deactivate(self.env.user_c, self.key_d), 403, "permission_denied")
        self.assertProblem(self.deactivate(self.env.user_a, self.key_e), 403, "permission_denied")
        self.assertProblem(self.deactivate(self.env.user_a, self.key), 403, "permission_denied",
                           "You cannot deactivate yourself.")
        self.assertProblem(self.deactivate(self.env.user_c, self.env.key_b), 404, "not_found")
        self.assertProblem(self.deactivate(9999, self.key), 404, "not_found")
        self.assertProblem(self.srv.patch("/api/users/abc/", {"is_active": False}, key=self.key),
                           404, "not_found")
        # an admin may deactivate another admin (same level)
        self.assertStatus(self.deactivate(self.env.user_c, self.key_e), 200)
        for key in (self.env.key_b, self.key_d):
            self.assertStatus(self.me(key), 200)

    def test_more_organizations_than_checked_fails_closed(self):
        """The actor's authority is checked in every organization of the
        target; a target in more organizations than are read at once is
        refused, not checked over the first ones only."""
        import uuid
        with self.env.connect() as c:
            for i in range(256):  # D is a member where A owns; A owns them all
                oid = str(uuid.uuid4())
                c.execute("INSERT INTO organizations(id, name, created_at) VALUES (?,?,?)",
                          (oid, "o%d" % i, kwtest.now_us()))
                for user, level in ((self.env.user_a, 15), (self.user_d, 1)):
                    c.execute("INSERT INTO memberships(user_id, org_id, level, created_at) "
                              "VALUES (?,?,?,?)", (user, oid, level, kwtest.now_us()))
        # ... and, last, D owns one where A is nobody
        own = self.env.add_org("d's own")
        self.env.add_membership(self.user_d, own, 15)
        self.assertProblem(self.deactivate(self.user_d, self.key), 400, "invalid_input")
        self.assertStatus(self.me(self.key_d), 200)
        self.assertEqual(self.env.sql("SELECT is_active FROM users WHERE id=?", (self.user_d,)),
                         [(1,)])

    def test_scope_and_input(self):
        narrow = self.env.cli_key_create("a@x.io", "read only", scopes="user:read")
        self.assertProblem(self.deactivate(self.env.user_c, narrow), 403, "permission_denied",
                           "API key missing required scope 'user:write'")
        writer = self.env.cli_key_create("a@x.io", "user writer", scopes="user:write")
        self.assertProblem(self.srv.patch("/api/users/%d/" % self.env.user_c, {"first_name": "x"},
                                          key=writer), 400, None, attr="is_active")
        self.assertProblem(self.srv.patch("/api/users/%d/" % self.env.user_c, {"is_active": "no"},
                                          key=writer), 400, None, attr="is_active")
        self.assertProblem(self.srv.patch("/api/users/%d/" % self.env.user_c, {"is_active": False}),
                           401, "not_authenticated")
        self.assertStatus(self.deactivate(self.env.user_c, writer), 200)
        # a key narrowed to projects cannot act on the organization
        team_key = self.env.cli_key_create("a@x.io", "team", scopes="*", teams="1")
        self.assertProblem(self.deactivate(self.user_d, team_key), 403, "permission_denied")

    def test_cli_deactivate_seen_within_bound(self):
        self.assertStatus(self.me(self.env.key_c), 200)
        proc = kwtest.run_cli("user", "deactivate", "c@x.io", "--db", self.env.db, check=True)
        self.assertIn("deactivated", proc.stdout)
        last = self.eventually(lambda: self.me(self.env.key_c), 401)
        self.assertProblem(last, 401, "authentication_failed")
        self.assertStatus(self.me(self.key), 200)
        rows = self.env.sql("SELECT activity, user_id, ip_address FROM activity_log WHERE scope='User'")
        self.assertEqual(rows, [("deactivated", None, "cli")])
        proc = kwtest.run_cli("user", "activate", "c@x.io", "--db", self.env.db, check=True)
        self.assertIn("activated", proc.stdout)
        self.eventually(lambda: self.me(self.env.key_c), 200)
        self.assertEqual(kwtest.run_cli("user", "deactivate", "nobody@x.io", "--db",
                                        self.env.db).returncode, 1)
        self.assertEqual(kwtest.run_cli("user", "suspend", "c@x.io").returncode, 2)
        self.assertEqual(kwtest.run_cli("user").returncode, 2)


if __name__ == "__main__":
    kwtest.main()
