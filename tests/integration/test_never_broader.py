"""test_never_broader.py — "never broader than the caller", as a property.

Whatever a credential creates, changes, rolls, deletes or invites is never
broader than the credential itself in any dimension: scopes, scoped_teams,
scoped_organizations, expires_at, rate_limit_per_minute, membership level
and key kind.  Each test generates caller/target pairs across those
dimensions (a fixed seed, plus every one-step-broader case), runs them
through every key-mutating and membership-mutating route of a real
`keyward serve`, and checks the answer against a model of the rule written
here independently of the server: broader -> 403 and nothing in the
database changed; equal or narrower -> allowed.

Then the regressions of the audit, exactly as reported: a project-limited
key inviting an owner; an expiring, rate-limited key escaping its limits
(child key, PATCH @current, roll); a project-limited key deleting a '*'
key; an admin of one organization deactivating a user of another.
"""
import datetime
import itertools
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kwtest  # noqa: E402

PK = "/api/personal_api_keys/"
PSK = "/api/projects/1/project_secret_api_keys/"
SEED = 1313
# Random pairs per test on top of the fixed one-step cases; fewer against
# PostgreSQL, where every direct database read is a psql process.
CASES = int(os.environ.get("KW_NEVER_BROADER_CASES", "8" if kwtest.BACKEND == "postgresql" else "24"))
FORBIDDEN = 403


def scopes_within(inner, outer):
    """The model of scope inclusion: '*' holds everything; obj:write holds
    obj:read too."""
    if "*" in outer:
        return True
    if "*" in inner:
        return False
    held = set()
    for s in outer:
        obj, act = s.split(":")
        held.add((obj, "read"))
        if act == "write":
            held.add((obj, "write"))
    return all(tuple(s.split(":")) in held for s in inner)


def list_within(inner, outer):
    """Narrowing lists: None = not narrowed (reaches everything)."""
    if outer is None:
        return True
    return inner is not None and set(inner) <= set(outer)


def broader(target, caller):
    """The dimensions in which `target` reaches further than `caller`
    (empty: not broader).  Expiry and rate: None = never / unlimited."""
    out = []
    if not scopes_within(target["scopes"], caller["scopes"]):
        out.append("scopes")
    if not list_within(target["teams"], caller["teams"]):
        out.append("scoped_teams")
    if not list_within(target["orgs"], caller["orgs"]):
        out.append("scoped_organizations")
    if caller["exp"] is not None and (target["exp"] is None or target["exp"] > caller["exp"]):
        out.append("expires_at")
    if caller["rate"] is not None and (target["rate"] is None or target["rate"] > caller["rate"]):
        out.append("rate_limit_per_minute")
    return out


class NeverBroader(kwtest.KWTestCase):
    def setup_db(self):
        env = self.env
        # user A owns org A (projects 1 and p3) and org B (project p4);
        # user E is an admin of org A only.
        self.p3 = env.add_project(env.org_a, "Second")
        self.org_b = env.add_org("Beta")
        env.add_membership(env.user_a, self.org_b, 15)
        self.p4 = env.add_project(self.org_b, "Beta web")
        self.org_c = env.add_org("Gamma")  # nobody of ours administers it
        self.user_e = env.add_user("e@x.io")
        env.add_membership(self.user_e, env.org_a, 8)
        self.root_e = env.cli_key_create("e@x.io", "e root")
        self.roots = {env.user_a: self.key, self.user_e: self.root_e}
        self.levels = {env.user_a: 15, self.user_e: 8}
        base = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=2)
        self.base = base.replace(microsecond=0)
        self.rnd = random.Random(SEED)
        self.made = []

    # helpers --------------------------------------------------------------

    def when(self, minutes):
        if minutes is None:
            return None
        return (self.base + datetime.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def key_body(self, spec, label):
        return {"label": label, "scopes": spec["scopes"], "scoped_teams": spec["teams"],
                "scoped_organizations": spec["orgs"], "expires_at": self.when(spec["exp"]),
                "rate_limit_per_minute": spec["rate"]}

    def make_key(self, spec, user=None, label="k"):
        user = user or self.env.user_a
        st, _, body = self.srv.post(PK, self.key_body(spec, label), key=self.roots[user])
        self.assertEqual(st, 201, (spec, body))
        self.made.append((PK + body["id"] + "/", self.roots[user]))
        return body

    def make_psk(self, spec, label="s"):
        body = {"label": label, "scopes": spec["scopes"], "expires_at": self.when(spec["exp"]),
                "rate_limit_per_minute": spec["rate"]}
        st, _, out = self.srv.post(PSK, body, key=self.key)
        self.assertEqual(st, 201, (spec, out))
        self.made.append((PSK + out["id"] + "/", self.key))
        return out

    def cleanup_keys(self, result=None, path=None, user=None):
        """Back to the root keys only, through the API (the root keys are
        '*' and unlimited: they cover everything).  `result` of a create
        at `path` adds the key it made."""
        if result is not None and result[0] == 201:
            self.made.append((path + result[2]["id"] + "/", self.roots[user or self.env.user_a]))
        for path, root in self.made:
            self.assertIn(self.srv.delete(path, key=root)[0], (204, 404), path)
        self.made = []

    def snapshot(self):
        """Every row a refused call must leave alone, in one query."""
        t = "CAST(%s AS TEXT)"
        cols = lambda *c: ", ".join([t % x for x in c] + ["NULL"] * (9 - len(c)))  # noqa: E731
        sql = " UNION ALL ".join([
            "SELECT 'k' AS w, " + cols("id", "label", "secure_value", "scopes", "scoped_teams",
                                       "scoped_organizations", "expires_at",
                                       "rate_limit_per_minute", "last_rolled_at")
            + " FROM personal_api_keys",
            "SELECT 's', " + cols("id", "label", "secure_value", "scopes", "expires_at",
                                  "rate_limit_per_minute", "last_rolled_at")
            + " FROM project_secret_api_keys",
            "SELECT 'i', " + cols("id", "org_id", "level") + " FROM invites",
            "SELECT 'u', " + cols("id", "is_active") + " FROM users",
            "SELECT 'm', " + cols("user_id", "org_id", "level") + " FROM memberships",
            "SELECT 'a', " + cols("COUNT(*)") + " FROM activity_log"])
        return sorted(tuple("" if v is None else str(v) for v in row) for row in self.env.sql(sql))

    def before(self, why):
        """The snapshot a refusal is compared with (only taken when a
        refusal is expected)."""
        return self.snapshot() if why else None

    def expect(self, result, why, before, ctx):
        """why: the broader dimensions (refusal expected) or [] (allowed)."""
        st, _, body = result
        if why:
            self.assertEqual(st, FORBIDDEN, "%s: broader in %s, got %r" % (ctx, why, body))
            self.assertEqual(body["code"], "permission_denied", ctx)
            self.assertEqual(self.snapshot(), before, "%s: refused but changed" % ctx)
            self.assertIsNone(body.get("value"), ctx)
        else:
            self.assertIn(st, (200, 201, 204), "%s: not broader, got %r" % (ctx, body))

    # generators -----------------------------------------------------------

    def one_of(self, *options):
        return self.rnd.choice(options)

    def caller_spec(self, need):
        extra = [s for s in ("feature_flag:read", "feature_flag:write", "project:read",
                             "endpoint:read") if self.rnd.random() < 0.5]
        return {
            "scopes": self.one_of(["*"], [need] + extra),
            "teams": self.one_of(None, [1], [1, self.p3], [1, self.p4]),
            "orgs": self.one_of(None, [self.env.org_a], [self.env.org_a, self.org_b]),
            "exp": self.one_of(None, 60, 120),
            "rate": self.one_of(None, 50, 100),
        }

    def target_spec(self, caller, scopes_pool):
        """Half the time a copy of the caller narrowed or widened in one
        dimension, else random in every dimension."""
        if self.rnd.random() < 0.5:
            t = dict(caller)
            dim = self.one_of("scopes", "teams", "orgs", "exp", "rate")
            if dim == "scopes":
                t["scopes"] = [self.rnd.choice(scopes_pool)]
            elif dim == "teams":
                t["teams"] = self.one_of(None, [1], [self.p3], [1, self.p3, self.p4])
            elif dim == "orgs":
                t["orgs"] = self.one_of(None, [self.env.org_a], [self.org_b])
            elif dim == "exp":
                t["exp"] = self.one_of(None, 30, 60, 90, 180)
            else:
                t["rate"] = self.one_of(None, 10, 50, 60, 1000)
            return t
        n = self.rnd.randint(1, 3)
        return {
            "scopes": sorted(set(self.rnd.sample(scopes_pool, n))),
            "teams": self.one_of(None, [1], [self.p3], [1, self.p3], [self.p4]),
            "orgs": self.one_of(None, [self.env.org_a], [self.org_b],
                                [self.env.org_a, self.org_b]),
            "exp": self.one_of(None, 30, 60, 90, 180),
            "rate": self.one_of(None, 10, 50, 60, 1000),
        }

    def pairs(self, need, scopes_pool):
        """CASES random pairs, then for a fixed narrowed caller every
        target that is one step broader in exactly one dimension, and the
        caller itself (equal is allowed)."""
        out = []
        for _ in range(CASES):
            c = self.caller_spec(need)
            out.append((c, self.target_spec(c, scopes_pool)))
        fixed = {"scopes": [need, "feature_flag:read"], "teams": [1, self.p3],
                 "orgs": [self.env.org_a], "exp": 60, "rate": 50}
        steps = [("scopes", [need, "feature_flag:write"]), ("scopes", ["*"]),
                 ("teams", [1, self.p4]), ("teams", None), ("orgs", [self.org_b]),
                 ("orgs", None), ("exp", 61), ("exp", None), ("rate", 51), ("rate", None)]
        steps.append(("scopes", ["endpoint:read"]))
        out.append((fixed, dict(fixed)))
        for dim, value in steps:
            t = dict(fixed)
            t[dim] = value
            out.append((fixed, t))
        # targets hold only scopes their kind accepts
        return [(c, dict(t, scopes=[x for x in t["scopes"] if x in scopes_pool] or
                         [scopes_pool[0]])) for c, t in out]


class TestPersonalKeyRoutes(NeverBroader):
    POOL = ["personal_api_key:read", "personal_api_key:write", "feature_flag:read",
            "feature_flag:write", "project:read", "endpoint:read", "*"]

    def test_create(self):
        for i, (c, t) in enumerate(self.pairs("personal_api_key:write", self.POOL)):
            caller = self.make_key(c, label="caller")
            why = broader(t, c)
            before = self.before(why)
            got = self.srv.post(PK, self.key_body(t, "child"), key=caller["value"])
            self.expect(got, why, before, "create #%d %r -> %r" % (i, c, t))
            self.cleanup_keys(got, PK)

    def test_update_self(self):
        """PATCH @current: a key may tighten itself, never loosen itself."""
        for i, (c, t) in enumerate(self.pairs("personal_api_key:write", self.POOL)):
            caller = self.make_key(c, label="caller")
            why = broader(t, c)
            before = self.before(why)
            body = self.key_body(t, "self")
            got = self.srv.patch(PK + "@current/", body, key=caller["value"])
            self.expect(got, why, before, "patch self #%d %r -> %r" % (i, c, t))
            self.cleanup_keys()

    def test_change_roll_delete_another_key(self):
        """Changing, rolling or deleting a key needs the caller to cover it."""
        for i, (c, x) in enumerate(self.pairs("personal_api_key:write", self.POOL)):
            why = broader(x, c)
            caller = self.make_key(c, label="caller")
            other = self.make_key(x, label="other")
            path = PK + other["id"] + "/"
            # refused calls change nothing, allowed ones keep the key (delete last)
            for action in ("patch", "roll", "delete"):
                before = self.before(why)
                if action == "patch":
                    got = self.srv.patch(path, {"label": "renamed"}, key=caller["value"])
                elif action == "roll":
                    got = self.srv.post(path + "roll/", key=caller["value"])
                else:
                    got = self.srv.delete(path, key=caller["value"])
                self.expect(got, why, before, "%s #%d %r on %r" % (action, i, c, x))
            self.cleanup_keys()

    def test_roll_self_with_expiry(self):
        """Roll carries expires_at: never later than (or null while) the
        caller expires."""
        for c_exp, t_exp in itertools.product((None, 60), (None, 30, 60, 90)):
            spec = {"scopes": ["personal_api_key:write"], "teams": None, "orgs": None,
                    "exp": c_exp, "rate": None}
            caller = self.make_key(spec, label="caller")
            why = broader(dict(spec, exp=t_exp), spec)
            before = self.before(why)
            got = self.srv.post(PK + "@current/roll/", {"expires_at": self.when(t_exp)},
                                key=caller["value"])
            self.expect(got, why, before, "roll self %r -> %r" % (c_exp, t_exp))
            self.cleanup_keys()


class TestSecretKeyRoutes(NeverBroader):
    POOL = ["feature_flag:read", "endpoint:read", "experiment:read"]

    def psk_reach(self, spec):
        """A project secret key reaches its project (1, in org A) only."""
        return dict(spec, teams=[1], orgs=[self.env.org_a])

    def test_create_change_roll_delete(self):
        for i, (c, t) in enumerate(self.pairs("project:write", self.POOL)):
            t = self.psk_reach(t)
            why = broader(t, c)
            caller = self.make_key(c, label="caller")
            other = self.make_psk(t, label="other")
            v = caller["value"]
            # refused calls change nothing, allowed ones keep the key (delete last)
            for action in ("create", "patch", "roll", "delete"):
                before = self.before(why)
                if action == "create":
                    body = {"label": "new", "scopes": t["scopes"],
                            "expires_at": self.when(t["exp"]), "rate_limit_per_minute": t["rate"]}
                    got = self.srv.post(PSK, body, key=v)
                elif action == "patch":
                    got = self.srv.patch(PSK + other["id"] + "/", {"label": "renamed"}, key=v)
                elif action == "roll":
                    got = self.srv.post(PSK + other["id"] + "/roll/", key=v)
                else:
                    got = self.srv.delete(PSK + other["id"] + "/", key=v)
                self.expect(got, why, before, "psk %s #%d %r / %r" % (action, i, c, t))
                if action == "create" and got[0] == 201:
                    self.made.append((PSK + got[2]["id"] + "/", self.key))
            self.cleanup_keys()

    def test_psk_may_not_be_widened_by_patch(self):
        caller = {"scopes": ["project:write", "feature_flag:read"], "teams": None, "orgs": None,
                  "exp": 60, "rate": 50}
        for change, bad in (({"expires_at": None}, True), ({"rate_limit_per_minute": None}, True),
                            ({"rate_limit_per_minute": 51}, True),
                            ({"scopes": ["endpoint:read"]}, True),
                            ({"expires_at": self.when(30)}, False),
                            ({"rate_limit_per_minute": 5}, False)):
            k = self.make_key(caller, label="caller")
            other = self.make_psk({"scopes": ["feature_flag:read"], "exp": 60, "rate": 50})
            before = self.before(bad)
            got = self.srv.patch(PSK + other["id"] + "/", change, key=k["value"])
            self.expect(got, ["x"] if bad else [], before, "psk patch %r" % (change,))
            self.cleanup_keys()


class TestMembershipRoutes(NeverBroader):
    def test_invite(self):
        """An invitation makes whoever holds the link a person in the
        organization at `level` — all scopes, no expiry, no rate limit — so
        the caller must reach that far itself, at that level or above."""
        rnd = self.rnd
        cases = []
        for _ in range(CASES * 2):
            user = rnd.choice([self.env.user_a, self.user_e])
            c = {"scopes": rnd.choice([["*"], ["organization_member:write"],
                                       ["organization_member:write", "user:read"]]),
                 "teams": rnd.choice([None, None, [1]]),
                 "orgs": rnd.choice([None, [self.env.org_a], [self.org_b]]) if user ==
                 self.env.user_a else rnd.choice([None, [self.env.org_a]]),
                 "exp": rnd.choice([None, None, 60]), "rate": rnd.choice([None, None, 50])}
            cases.append((user, c, rnd.choice([1, 8, 15])))
        # every level for an unrestricted key of an owner and of an admin
        for user, level in itertools.product((self.env.user_a, self.user_e), (1, 8, 15)):
            cases.append((user, {"scopes": ["*"], "teams": None, "orgs": None, "exp": None,
                                 "rate": None}, level))
        for i, (user, c, level) in enumerate(cases):
            person = {"scopes": ["*"], "teams": None, "orgs": [self.env.org_a], "exp": None,
                      "rate": None}
            why = broader(person, c)
            if level > self.levels[user]:
                why.append("level")
            caller = self.make_key(c, user=user, label="inviter")
            before = self.before(why)
            got = self.srv.post("/api/organizations/%s/invites/" % self.env.org_a,
                                {"target_email": "n%d@x.io" % i, "level": level},
                                key=caller["value"])
            self.expect(got, why, before, "invite #%d user %d level %d %r" % (i, user, level, c))
            self.cleanup_keys()

    def test_user_activation(self):
        """Deactivating (or reactivating) a person changes their account
        everywhere: the caller needs an admin's level, no lower than the
        target's, in every organization the target belongs to, and must
        reach all of them (no project narrowing, organization narrowing
        covering them)."""
        env = self.env
        targets = []
        for orgs in ({env.org_a: 1}, {env.org_a: 8}, {env.org_a: 15},
                     {env.org_a: 1, self.org_b: 1}, {env.org_a: 1, self.org_c: 1}):
            uid = env.add_user("t%d@x.io" % len(targets))
            for org, level in orgs.items():
                env.add_membership(uid, org, level)
            targets.append((uid, orgs))
        member_levels = {env.user_a: {env.org_a: 15, self.org_b: 15},
                         self.user_e: {env.org_a: 8}}
        rnd = self.rnd
        cases = []
        for uid, orgs in targets:
            for user in (env.user_a, self.user_e):
                cases.append((uid, orgs, user, {"scopes": ["*"], "teams": None, "orgs": None,
                                                "exp": None, "rate": None}))
                for _ in range(CASES // 4):
                    cases.append((uid, orgs, user, {
                        "scopes": rnd.choice([["*"], ["user:write"], ["user:write", "user:read"]]),
                        "teams": rnd.choice([None, None, [1]]),
                        "orgs": rnd.choice([None, [env.org_a], [env.org_a, self.org_b]])
                        if user == env.user_a else rnd.choice([None, [env.org_a]]),
                        "exp": rnd.choice([None, 60]), "rate": rnd.choice([None, 50])}))
        for i, (uid, orgs, user, c) in enumerate(cases):
            why = []
            if c["teams"] is not None:
                why.append("project-limited key on an organization route")
            for org, level in orgs.items():
                mine = member_levels[user].get(org)
                if mine is None:
                    why.append("not in %s" % org)
                elif mine < 8 or mine < level:
                    why.append("level in %s" % org)
                elif c["orgs"] is not None and org not in c["orgs"]:
                    why.append("scoped_organizations")
            caller = self.make_key(c, user=user, label="admin")
            before = self.before(why)
            got = self.srv.patch("/api/users/%d/" % uid, {"is_active": False}, key=caller["value"])
            self.expect(got, why, before, "deactivate #%d %d by %d %r" % (i, uid, user, c))
            if not why:
                got = self.srv.patch("/api/users/%d/" % uid, {"is_active": True},
                                     key=caller["value"])
                self.assertEqual(got[0], 200, got)
            self.cleanup_keys()


class TestKind(NeverBroader):
    def test_secret_key_mutates_nothing(self):
        """A project secret key is the weakest key that can call anything:
        it creates, changes, rolls, deletes and invites nothing."""
        st, _, phs = self.srv.post(PSK, {"label": "sdk", "scopes": ["feature_flag:read"]},
                                   key=self.key)
        self.assertEqual(st, 201, phs)
        other = self.make_key({"scopes": ["feature_flag:read"], "teams": None, "orgs": None,
                               "exp": None, "rate": None}, label="other")
        calls = [("POST", PK, {"label": "x", "scopes": ["feature_flag:read"]}),
                 ("PATCH", PK + other["id"] + "/", {"label": "y"}),
                 ("POST", PK + other["id"] + "/roll/", None),
                 ("DELETE", PK + other["id"] + "/", None),
                 ("POST", PSK, {"label": "x", "scopes": ["feature_flag:read"]}),
                 ("PATCH", PSK + phs["id"] + "/", {"label": "y"}),
                 ("POST", PSK + phs["id"] + "/roll/", None),
                 ("DELETE", PSK + phs["id"] + "/", None),
                 ("POST", "/api/organizations/%s/invites/" % self.env.org_a,
                  {"target_email": "z@x.io"}),
                 ("PATCH", "/api/users/%d/" % self.user_e, {"is_active": False})]
        for method, path, body in calls:
            with self.subTest(method=method, path=path):
                before = self.snapshot()
                self.expect(self.srv.request(method, path, key=phs["value"], body=body), ["kind"],
                            before, "%s %s by phs_" % (method, path))


class TestAuditRegressions(NeverBroader):
    """The audit's reports, reproduced as they were sent."""

    def test_project_limited_key_cannot_invite_an_owner(self):
        k = self.make_key({"scopes": ["organization_member:write"], "teams": [1], "orgs": None,
                           "exp": None, "rate": None})
        before = self.snapshot()
        got = self.srv.post("/api/organizations/%s/invites/" % self.env.org_a,
                            {"target_email": "owner@evil.example", "level": 15}, key=k["value"])
        self.assertProblem(got, 403, "permission_denied",
                           "API key is limited to projects (scoped_teams); this is an "
                           "organization-level action.")
        self.assertEqual(self.snapshot(), before)

    def test_expiring_limited_key_cannot_escape(self):
        soon = (datetime.datetime.now(datetime.timezone.utc) +
                datetime.timedelta(minutes=10)).isoformat()
        st, _, k = self.srv.post(PK, {"label": "short", "scopes": ["personal_api_key:write"],
                                      "expires_at": soon, "rate_limit_per_minute": 50},
                                 key=self.key)
        self.assertEqual(st, 201, k)
        v = k["value"]
        before = self.snapshot()
        # a child with no expiry and no limit
        got = self.srv.post(PK, {"label": "forever", "scopes": ["personal_api_key:write"]}, key=v)
        self.assertProblem(got, 403, "permission_denied", attr="expires_at")
        # loosening itself
        got = self.srv.patch(PK + "@current/", {"expires_at": None, "rate_limit_per_minute": 100000},
                             key=v)
        self.assertProblem(got, 403, "permission_denied")
        got = self.srv.patch(PK + "@current/", {"rate_limit_per_minute": 100000}, key=v)
        self.assertProblem(got, 403, "permission_denied", attr="rate_limit_per_minute")
        got = self.srv.patch(PK + "@current/", {"expires_at": None}, key=v)
        self.assertProblem(got, 403, "permission_denied", attr="expires_at")
        # a roll to "never"
        got = self.srv.post(PK + "@current/roll/", {"expires_at": None}, key=v)
        self.assertProblem(got, 403, "permission_denied", attr="expires_at")
        self.assertIsNone(got[2].get("value"))
        self.assertEqual(self.snapshot(), before)
        # tightening itself is fine
        self.assertStatus(self.srv.patch(PK + "@current/", {"rate_limit_per_minute": 10}, key=v),
                          200)

    def test_project_limited_key_cannot_delete_a_wider_key(self):
        k = self.make_key({"scopes": ["personal_api_key:write"], "teams": [1], "orgs": None,
                           "exp": None, "rate": None})
        wide = self.make_key({"scopes": ["*"], "teams": None, "orgs": None, "exp": None,
                              "rate": None}, label="wide")
        before = self.snapshot()
        path = PK + wide["id"] + "/"
        for got in (self.srv.delete(path, key=k["value"]),
                    self.srv.patch(path, {"label": "x"}, key=k["value"]),
                    self.srv.post(path + "roll/", key=k["value"])):
            self.assertProblem(got, 403, "permission_denied")
        self.assertEqual(self.snapshot(), before)
        self.assertStatus(self.srv.get(PK + "@current/", key=wide["value"]), 200)

    def test_admin_of_one_org_cannot_lock_a_user_out_of_another(self):
        env = self.env
        both = env.add_user("both@x.io")
        env.add_membership(both, env.org_a, 1)
        env.add_membership(both, self.org_c, 15)
        before = self.snapshot()
        got = self.srv.patch("/api/users/%d/" % both, {"is_active": False}, key=self.key)
        self.assertProblem(got, 403, "permission_denied")
        self.assertEqual(self.snapshot(), before)
        # a user only of organizations the caller administers: allowed
        only_a = env.add_user("only@x.io")
        env.add_membership(only_a, env.org_a, 1)
        env.add_membership(only_a, self.org_b, 1)
        self.assertStatus(self.srv.patch("/api/users/%d/" % only_a, {"is_active": False},
                                         key=self.key), 200)


if __name__ == "__main__":
    kwtest.main()
