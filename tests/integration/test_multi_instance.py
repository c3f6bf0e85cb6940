"""Several `keyward serve` instances on one database:
a key revoked, rolled or re-scoped, or a member removed or demoted, on
instance A is refused by instance B within 1 second, even though B had it
cached.  Runs on SQLite (two
processes, one file) and, as integration_pg_*, on PostgreSQL.  The measured
delays are printed so the run log documents them."""
import time

import kwtest
from kwtest import KWTestCase, MSG_INVALID_HEADER

PK = "/api/personal_api_keys/"
BOUND = 1.0  # seconds: every instance sees a revocation within 1 s


class Pair(KWTestCase):
    """Instance A (the test's server) and instance B on one database."""

    def setUp(self):
        super().setUp()
        self.a = self.srv
        self.b = self.start_server()

    def delay_until(self, request, status, bound):
        """Seconds from now until request() answers `status` (polling every
        5 ms), or fails the test after `bound`."""
        start = time.monotonic()
        while True:
            st, _, body = request()
            elapsed = time.monotonic() - start
            if st == status:
                return elapsed, body
            if elapsed > bound:
                self.fail("still %d after %.3fs (want %d): %r" % (st, elapsed, status, body))
            time.sleep(0.005)


class TwoInstances(Pair):
    def new_key(self, scopes=("*",)):
        st, _, body = self.a.post(PK, {"label": "shared", "scopes": list(scopes)}, key=self.key)
        self.assertEqual(st, 201, body)
        # Warm B's verification cache.
        for _ in range(3):
            self.assertStatus(self.b.get("/api/users/@me/", key=body["value"]), 200)
        return body

    def test_revoke_on_a_is_refused_by_b(self):
        k = self.new_key()
        st, _, _ = self.a.delete(PK + k["id"] + "/", key=self.key)
        self.assertEqual(st, 204)
        delay, body = self.delay_until(lambda: self.b.get("/api/users/@me/", key=k["value"]), 401,
                                       BOUND)
        self.assertEqual(body["detail"], MSG_INVALID_HEADER)
        print("\n[%s] revoke on A refused by B after %.0f ms" % (kwtest.BACKEND, delay * 1000))
        # And it stays refused.
        for _ in range(20):
            self.assertStatus(self.b.get("/api/users/@me/", key=k["value"]), 401)

    def test_roll_on_a_is_refused_by_b(self):
        k = self.new_key()
        st, _, rolled = self.a.post(PK + k["id"] + "/roll/", key=self.key)
        self.assertEqual(st, 200, rolled)
        delay, _ = self.delay_until(lambda: self.b.get("/api/users/@me/", key=k["value"]), 401, BOUND)
        print("\n[%s] roll on A: old value refused by B after %.0f ms" % (kwtest.BACKEND, delay * 1000))
        self.assertStatus(self.b.get("/api/users/@me/", key=rolled["value"]), 200)

    def test_leaked_previous_value_reported_on_a_is_refused_by_b(self):
        k = self.new_key()
        st, _, rolled = self.a.post(PK + k["id"] + "/roll/", {"expire_previous_in_seconds": 3600},
                                    key=self.key)
        self.assertEqual(st, 200, rolled)
        # B verifies (and caches) the previous value inside its grace window
        self.delay_until(lambda: self.b.get("/api/users/@me/", key=k["value"]), 200, BOUND)
        for _ in range(3):
            self.assertStatus(self.b.get("/api/users/@me/", key=k["value"]), 200)
        st, _, body = self.a.post("/api/secret_scanning/report/", [{"token": k["value"]}])
        self.assertEqual((st, body[0]["label"]), (200, "true_positive"), body)
        delay, _ = self.delay_until(lambda: self.b.get("/api/users/@me/", key=k["value"]), 401,
                                    BOUND)
        print("\n[%s] leaked previous value reported on A refused by B after %.0f ms"
              % (kwtest.BACKEND, delay * 1000))
        for _ in range(20):
            self.assertStatus(self.b.get("/api/users/@me/", key=k["value"]), 401)
        self.assertStatus(self.b.get("/api/users/@me/", key=rolled["value"]), 200)

    def test_scope_narrowed_on_a_is_enforced_by_b(self):
        k = self.new_key()
        st, _, _ = self.a.patch(PK + k["id"] + "/", {"scopes": ["feature_flag:read"]}, key=self.key)
        self.assertEqual(st, 200)
        delay, body = self.delay_until(lambda: self.b.get("/api/users/@me/", key=k["value"]), 403,
                                       BOUND)
        self.assertEqual(body["detail"], "API key missing required scope 'user:read'")
        print("\n[%s] scope change on A enforced by B after %.0f ms" % (kwtest.BACKEND, delay * 1000))

    def test_deactivation_outside_any_server(self):
        k = self.new_key()
        self.env.sql("UPDATE users SET is_active=0 WHERE id=?", (self.env.user_a,))
        for srv in (self.a, self.b):
            delay, _ = self.delay_until(lambda: srv.get("/api/users/@me/", key=k["value"]), 401, BOUND)
        print("\n[%s] direct deactivation seen by both after %.0f ms" % (kwtest.BACKEND, delay * 1000))

    def test_writes_on_both_share_limits(self):
        # 10-key limit holds across instances (one database).
        made = 1  # the init key
        for i in range(9):
            srv = self.a if i % 2 else self.b
            st, _, body = srv.post(PK, {"label": "k%d" % i, "scopes": ["*"]}, key=self.key)
            self.assertEqual(st, 201, body)
            made += 1
        st, _, body = self.b.post(PK, {"label": "over", "scopes": ["*"]}, key=self.key)
        self.assertEqual(st, 400, body)
        st, _, listing = self.a.get(PK, key=self.key)
        self.assertEqual(len(listing), made)


class MembershipAcrossInstances(Pair):
    """An instance keeps each caller's membership level for at most 1 s at
    the last directory generation it read: a removal or demotion applies at
    once on the instance that wrote it and within the bound on the other."""

    def setup_db(self):
        self.env.tenants()  # C is a plain member of org A (project 1)

    def member_path(self, user_id):
        return "/api/organizations/%s/members/%s/" % (self.env.org_a, self.uuid_of(user_id))

    def warm(self, path, key):
        for srv in (self.a, self.b):
            for _ in range(3):
                self.assertStatus(srv.get(path, key=key), 200)

    def test_removal_on_a_refused_at_once_by_a_and_within_bound_by_b(self):
        flags = "/api/projects/1/feature_flags/"
        self.warm(flags, self.env.key_c)
        st, _, body = self.a.delete(self.member_path(self.env.user_c), key=self.key)
        self.assertEqual(st, 204, body)
        for _ in range(5):  # the writing instance: no wait at all
            self.assertStatus(self.a.get(flags, key=self.env.key_c), 404)
        delay, _ = self.delay_until(lambda: self.b.get(flags, key=self.env.key_c), 404, BOUND)
        print("\n[%s] member removed on A refused by B after %.0f ms"
              % (kwtest.BACKEND, delay * 1000))
        for _ in range(20):
            self.assertStatus(self.b.get(flags, key=self.env.key_c), 404)

    def test_demotion_on_a_enforced_by_b(self):
        # as an admin, C may read the organization's webhooks (admin only)
        webhooks = "/api/organizations/%s/webhooks/" % self.env.org_a
        self.assertStatus(self.a.patch(self.member_path(self.env.user_c), {"level": 8},
                                       key=self.key), 200)
        self.warm(webhooks, self.env.key_c)
        self.assertStatus(self.a.patch(self.member_path(self.env.user_c), {"level": 1},
                                       key=self.key), 200)
        self.assertStatus(self.a.get(webhooks, key=self.env.key_c), 403)
        delay, _ = self.delay_until(lambda: self.b.get(webhooks, key=self.env.key_c), 403,
                                    BOUND)
        print("\n[%s] demotion on A enforced by B after %.0f ms" % (kwtest.BACKEND, delay * 1000))

    def test_removal_outside_any_server(self):
        flags = "/api/projects/1/feature_flags/"
        self.warm(flags, self.env.key_c)
        self.env.sql("DELETE FROM memberships WHERE user_id=?", (self.env.user_c,))
        for srv in (self.a, self.b):
            delay, _ = self.delay_until(lambda: srv.get(flags, key=self.env.key_c), 404, BOUND)
        print("\n[%s] membership deleted in the database refused by both after %.0f ms"
              % (kwtest.BACKEND, delay * 1000))


if __name__ == "__main__":
    kwtest.main()
