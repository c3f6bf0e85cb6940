"""test_cli_members.py — `keyward member list|set-level|remove` against the
database a server is running on.

The command acts as a user (--email) with the API's rules: the route
table's level and membership checks and lib/org/member.c's rules (never
above one's own level, the last owner stays) refuse the same things over
the shell as over HTTP, and the server sees each change at once.  Also
refusals: unknown users, bad levels, another organization, usage errors;
each refusal changes nothing.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kwtest  # noqa: E402
from kwtest import KWTestCase  # noqa: E402

MSG_ORG_LEVEL = "You don't have sufficient permissions in the organization."
MSG_BAD_LEVEL = "keyward member: level: Level must be 1 (member), 8 (admin) or 15 (owner)."
LAST_OWNER = "keyward member: level: An organization must keep an owner: the last owner cannot be %s."


class MemberCli(KWTestCase):
    """A owns org A (Acme); C is a plain member of org A; B owns org B."""

    def setup_db(self):
        self.env.tenants()
        self.user_d = self.env.add_user("d@x.io")
        self.env.add_membership(self.user_d, self.env.org_a, 8)

    def cli(self, *args):
        return kwtest.run_cli("member", *args[:1], "--db", self.env.db, *args[1:])

    def levels(self):
        return dict(self.env.sql(
            "SELECT u.email, m.level FROM memberships m JOIN users u ON u.id = m.user_id "
            "WHERE m.org_id=?", (self.env.org_a,)))

    def refused(self, out, stderr, status=1):
        self.assertEqual((out.returncode, out.stderr.strip()), (status, stderr), out.stdout)
        self.assertEqual(out.stdout, "")

    def member_log(self):
        return self.env.sql("SELECT activity, ip_address FROM activity_log WHERE "
                            "scope='OrganizationMembership' AND project_id IS NULL")

    def test_list(self):
        out = self.cli("list", "--email", "c@x.io", "--org", self.env.org_a)
        self.assertEqual(out.returncode, 0, out.stderr)
        lines = out.stdout.splitlines()
        self.assertEqual(len(lines), 3)
        self.assertEqual(lines[0].split()[:3], [self.uuid_of(self.env.user_a), "owner", "a@x.io"])
        self.assertIn("member  c@x.io", out.stdout)
        self.assertIn("admin   d@x.io", out.stdout)
        self.assertNotIn("b@y.io", out.stdout)
        # @current is the user's first organization
        self.assertEqual(self.cli("list", "--email", "a@x.io", "--org", "@current").stdout, out.stdout)
        # another organization, or none that exists: not found
        self.refused(self.cli("list", "--email", "a@x.io", "--org", self.env.org_b),
                     "keyward member: Not found.")
        self.refused(self.cli("list", "--email", "a@x.io", "--org", "0000-nope"),
                     "keyward member: Not found.")

    def test_set_level_seen_by_the_server(self):
        c_uuid = self.uuid_of(self.env.user_c)
        members = "/api/organizations/%s/members/" % self.env.org_a
        out = self.cli("set-level", "--email", "a@x.io", "--org", self.env.org_a, "c@x.io", "admin")
        self.assertEqual((out.returncode, out.stdout.strip()),
                         (0, "c@x.io is now an admin of organization %s." % self.env.org_a), out.stderr)
        self.assertEqual(self.levels()["c@x.io"], 8)
        got = self.assertStatus(self.srv.get(members, key=self.key), 200)
        self.assertEqual({m["user"]["email"]: m["level"] for m in got["results"]}["c@x.io"], 8)
        # by uuid and by number; the same level again is no change
        out = self.cli("set-level", "--email", "a@x.io", "--org", "@current", c_uuid, "15")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(self.levels()["c@x.io"], 15)
        out = self.cli("set-level", "--email", "a@x.io", "--org", "@current", c_uuid, "owner")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(self.member_log(), [("updated", "cli"), ("updated", "cli")])
        # now that C is an owner too, A may step down
        out = self.cli("set-level", "--email", "a@x.io", "--org", "@current", "a@x.io", "member")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(self.levels(), {"a@x.io": 1, "c@x.io": 15, "d@x.io": 8})

    def test_level_rules(self):
        before = (self.levels(), self.member_log())
        # a plain member changes nobody
        self.refused(self.cli("set-level", "--email", "c@x.io", "--org", self.env.org_a, "c@x.io", "admin"),
                     "keyward member: " + MSG_ORG_LEVEL)
        self.refused(self.cli("remove", "--email", "c@x.io", "--org", self.env.org_a, "d@x.io"),
                     "keyward member: " + MSG_ORG_LEVEL)
        # an admin raises nobody above their own level, nor acts on an owner
        out = self.cli("set-level", "--email", "d@x.io", "--org", self.env.org_a, "c@x.io", "owner")
        self.assertEqual(out.returncode, 1)
        self.assertTrue(out.stderr.startswith("keyward member: level: "), out.stderr)
        out = self.cli("set-level", "--email", "d@x.io", "--org", self.env.org_a, "a@x.io", "member")
        self.assertEqual(out.returncode, 1)
        self.assertIn("keyward member: ", out.stderr)
        out = self.cli("remove", "--email", "d@x.io", "--org", self.env.org_a, "a@x.io")
        self.assertEqual(out.returncode, 1)
        # the last owner is neither demoted nor removed
        self.refused(self.cli("set-level", "--email", "a@x.io", "--org", self.env.org_a, "a@x.io", "admin"),
                     LAST_OWNER % "demoted")
        self.refused(self.cli("remove", "--email", "a@x.io", "--org", self.env.org_a, "a@x.io"),
                     LAST_OWNER % "removed")
        self.assertEqual((self.levels(), self.member_log()), before)
        # the admin may change a plain member, up to their own level
        out = self.cli("set-level", "--email", "d@x.io", "--org", self.env.org_a, "c@x.io", "admin")
        self.assertEqual(out.returncode, 0, out.stderr)

    def test_bad_levels_and_unknown_users(self):
        before = (self.levels(), self.member_log())
        for level in ("boss", "0", "2", "16", "-1", "8.0", "", "99999999999", "Admin", "\u00e9"):
            self.refused(self.cli("set-level", "--email", "a@x.io", "--org", self.env.org_a, "--", "c@x.io",
                                  level), MSG_BAD_LEVEL)
        self.refused(self.cli("set-level", "--email", "a@x.io", "--org", self.env.org_a, "x@x.io", "admin"),
                     "keyward member: no user with email x@x.io")
        self.refused(self.cli("remove", "--email", "a@x.io", "--org", self.env.org_a, "x@x.io"),
                     "keyward member: no user with email x@x.io")
        # a user who is not a member, a made-up uuid, odd text: not found
        for who in ("b@y.io", "00000000-0000-0000-0000-000000000000", "../../x", "a" * 300):
            out = self.cli("remove", "--email", "a@x.io", "--org", self.env.org_a, who)
            self.assertEqual(out.returncode, 1, who)
            self.assertRegex(out.stderr, r"^keyward member: (Not found\.|not found|no user .*)\n$")
        # the acting user must exist and be active
        out = self.cli("list", "--email", "nobody@x.io", "--org", self.env.org_a)
        self.assertEqual(out.returncode, 1)
        self.assertIn("no user with email nobody@x.io", out.stderr)
        self.assertEqual((self.levels(), self.member_log()), before)

    def test_another_organization(self):
        # A owns org A but is no member of org B: B's members are out of reach
        b_uuid = self.uuid_of(self.env.user_b)
        self.refused(self.cli("remove", "--email", "a@x.io", "--org", self.env.org_b, b_uuid),
                     "keyward member: Not found.")
        self.refused(self.cli("set-level", "--email", "a@x.io", "--org", self.env.org_b, "b@y.io", "member"),
                     "keyward member: Not found.")
        # B owns org B but cannot reach org A's members through its own id
        self.refused(self.cli("remove", "--email", "b@y.io", "--org", self.env.org_a, "c@x.io"),
                     "keyward member: Not found.")
        self.assertEqual(self.env.sql("SELECT COUNT(*) FROM memberships"), [(4,)])

    def test_remove_is_departure(self):
        key_c = self.env.key_c
        org = "/api/organizations/%s/" % self.env.org_a
        self.assertStatus(self.srv.get(org, key=key_c), 200)
        out = self.cli("remove", "--email", "a@x.io", "--org", self.env.org_a, "c@x.io")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("c@x.io removed from organization", out.stdout)
        self.assertNotIn("c@x.io", self.levels())
        # C's personal key stops reaching the organization and its project:
        # the CLI is another process, so within the server's next poll
        self.assertEqual(self.eventually(lambda: self.srv.get(org, key=key_c), 404)[0], 404)
        self.assertIn(self.srv.get("/api/projects/1/", key=key_c)[0], (403, 404))
        for _ in range(5):
            self.assertEqual(self.srv.get(org, key=key_c)[0], 404)
        self.assertEqual(self.member_log(), [("deleted", "cli")])
        # removing again: not a member any more
        self.refused(self.cli("remove", "--email", "a@x.io", "--org", self.env.org_a, "c@x.io"),
                     "keyward member: Not found.")

    def test_usage(self):
        for args in ([], ["list"], ["list", "--email", "a@x.io"], ["frob", "--email", "a@x.io", "--org", "@current"],
                     ["remove", "--email", "a@x.io", "--org", "@current"],
                     ["set-level", "--email", "a@x.io", "--org", "@current", "c@x.io"],
                     ["list", "--email", "a@x.io", "--org", "@current", "extra"],
                     ["list", "--email", "a@x.io", "--org", "@current", "--level", "1"]):
            out = kwtest.run_cli("member", *args) if not args else self.cli(*args)
            self.assertEqual(out.returncode, 2, args)
            self.assertIn("usage: keyward member", out.stderr)
        out = kwtest.run_cli("member", "--help")
        self.assertEqual(out.returncode, 0)
        self.assertIn("keyward member set-level", out.stdout)
        self.assertIn("member", kwtest.run_cli("--help").stdout)


if __name__ == "__main__":
    kwtest.main()
