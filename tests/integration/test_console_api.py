"""test_console_api.py — the web console's HTTP side against a real server:
sign-in and the session cookie, CSRF, the login limit, sessions acting
through the same routes as keys, sign-out and revocation, invitations, and
the embedded pages with their security headers."""
import json
import os
import re
import subprocess
import unittest

import kwtest
from kwtest import BIN, KWTestCase

PASSWORD = "correct horse battery staple"
CSRF_DETAIL = "CSRF Failed: CSRF token missing or incorrect."


def set_password(db, email, password):
    return subprocess.run([BIN, "user", "set-password", email, "--db", db],
                          input=password + "\n", capture_output=True, text=True, timeout=30)


class ConsoleCase(KWTestCase):
    def setup_db(self):
        proc = set_password(self.env.db, self.env.email, PASSWORD)
        self.assertEqual(proc.returncode, 0, proc.stderr)

    def login(self, email=None, password=PASSWORD, headers=None):
        st, hdrs, body = self.srv.post("/api/login/", {"email": email or self.env.email,
                                                       "password": password}, headers=headers)
        return st, hdrs, body

    def session(self, email=None, password=PASSWORD):
        st, hdrs, body = self.login(email, password)
        self.assertEqual(st, 200, body)
        m = re.match(r"kw_session=([A-Za-z0-9_-]{43});", hdrs["Set-Cookie"])
        self.assertIsNotNone(m, hdrs["Set-Cookie"])
        return m.group(1), body["csrf_token"]

    def as_session(self, cookie, csrf=None, extra=None):
        h = {"Cookie": "kw_session=" + cookie}
        if csrf:
            h["X-CSRFToken"] = csrf
        h.update(extra or {})
        return h


class TestSignIn(ConsoleCase):
    def test_cookie_flags_and_body(self):
        st, hdrs, body = self.login()
        self.assertEqual(st, 200, body)
        cookie = hdrs["Set-Cookie"]
        parts = [p.strip() for p in cookie.split(";")]
        self.assertIn("HttpOnly", parts)
        self.assertIn("SameSite=Lax", parts)
        self.assertIn("Path=/", parts)
        self.assertNotIn("Secure", parts)  # plain HTTP without --secure-cookies
        self.assertEqual(body["user"]["email"], self.env.email)
        self.assertEqual(len(body["csrf_token"]), 43)
        token = parts[0].split("=", 1)[1]
        # only the hash is stored
        self.assertEqual(self.env.sql("SELECT COUNT(*) FROM sessions WHERE token_hash = ?",
                                      (token,))[0][0], 0)
        self.assertEqual(self.env.sql("SELECT COUNT(*) FROM sessions")[0][0], 1)

    def test_secure_flag_with_option(self):
        srv = kwtest.Server(self.env.db, self.env.dir, ["--secure-cookies"])
        self.addCleanup(self._stop_server, srv)
        st, hdrs, _ = srv.post("/api/login/", {"email": self.env.email, "password": PASSWORD})
        self.assertEqual(st, 200)
        self.assertIn("Secure", [p.strip() for p in hdrs["Set-Cookie"].split(";")])

    def test_wrong_password_and_unknown_user_alike(self):
        a = self.assertProblem(self.login(password="not the password"), 400, "invalid_credentials")
        b = self.assertProblem(self.login(email="nobody@x.io"), 400, "invalid_credentials")
        self.assertEqual(a, b)
        self.assertProblem(self.srv.post("/api/login/", {"email": self.env.email}), 400,
                           "required", attr="password")

    def test_login_rate_limited(self):
        for _ in range(5):
            self.assertProblem(self.login(password="wrong wrong wrong"), 400, "invalid_credentials")
        st, hdrs, body = self.login()  # even the right password waits now
        self.assertProblem((st, hdrs, body), 429, "throttled")
        self.assertGreater(int(hdrs["Retry-After"]), 800)

    def test_stale_failures_of_every_key_are_swept(self):
        """Failed sign-ins past the login window are deleted whatever their
        key, not only when the same key fails again: an attacker trying many
        emails from many addresses cannot grow the table without end.  The
        server's housekeeping deletes them in batches; an instance makes its
        first pass as it starts."""
        self.assertProblem(self.login(password="wrong wrong wrong"), 400, "invalid_credentials")
        stale = kwtest.now_us() - 16 * 60 * 1000000
        self.env.sql("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                     "WHERE i < 2500) INSERT INTO login_attempts(key, at) "
                     "SELECT 'ip:10.9.' || i, CAST(? AS BIGINT) - i FROM n", (stale,))

        def count():
            return self.env.sql("SELECT COUNT(*) FROM login_attempts")[0][0]
        self.assertEqual(count(), 2502)
        srv = kwtest.Server(self.env.db, self.env.dir)
        self.addCleanup(self._stop_server, srv)
        self.poll(lambda: count() == 2, timeout=10)
        self.assertEqual(count(), 2)  # the recent failure's two rows stay

    def test_cross_origin_login_refused(self):
        self.assertProblem(self.login(headers={"Origin": "http://evil.example"}), 403,
                           "permission_denied", CSRF_DETAIL)
        st, _, _ = self.login(headers={"Origin": "http://127.0.0.1:%d" % self.srv.port})
        self.assertEqual(st, 200)

    def test_password_cli_rules(self):
        proc = set_password(self.env.db, self.env.email, "short")
        self.assertEqual(proc.returncode, 1)
        self.assertIn("too short", proc.stderr)
        proc = set_password(self.env.db, "nobody@x.io", PASSWORD)
        self.assertEqual(proc.returncode, 1)


class TestSessions(ConsoleCase):
    def test_session_uses_the_same_routes(self):
        cookie, csrf = self.session()
        me = self.assertStatus(self.srv.get("/api/users/@me/", headers=self.as_session(cookie)), 200)
        self.assertEqual(me["email"], self.env.email)
        created = self.assertStatus(self.srv.post(
            "/api/personal_api_keys/", {"label": "from console", "scopes": ["user:read"]},
            headers=self.as_session(cookie, csrf)), 201)
        key = created["value"]
        self.assertStatus(self.srv.get("/api/users/@me/", key=key), 200)
        rolled = self.assertStatus(self.srv.post(
            "/api/personal_api_keys/%s/roll/" % created["id"], headers=self.as_session(cookie, csrf)),
            200)
        self.assertEqual(self.srv.get("/api/users/@me/", key=key)[0], 401)
        self.assertStatus(self.srv.get("/api/users/@me/", key=rolled["value"]), 200)
        log = self.assertStatus(self.srv.get("/api/projects/1/activity_log/?scope=PersonalAPIKey",
                                             headers=self.as_session(cookie)), 200)
        self.assertEqual([e["activity"] for e in log["results"]][:2], ["rolled", "created"])
        session = self.assertStatus(self.srv.get("/api/session/", headers=self.as_session(cookie)),
                                    200)
        self.assertEqual(session["csrf_token"], csrf)

    def test_csrf_required_on_writes(self):
        cookie, csrf = self.session()
        for extra in ({}, {"X-CSRFToken": "x" * 43}, {"X-CSRFToken": ""}):
            with self.subTest(extra=extra):
                h = self.as_session(cookie)
                h.update(extra)
                self.assertProblem(self.srv.post("/api/personal_api_keys/",
                                                 {"label": "x", "scopes": ["*"]}, headers=h),
                                   403, "permission_denied", CSRF_DETAIL, None)
        self.assertProblem(self.srv.patch("/api/projects/1/reset_token/",
                                          headers=self.as_session(cookie)), 403, "permission_denied",
                           CSRF_DETAIL)
        self.assertEqual(self.env.sql("SELECT COUNT(*) FROM personal_api_keys")[0][0], 1)
        # a key in the Authorization header needs no CSRF token (no cookie involved)
        self.assertStatus(self.srv.post("/api/personal_api_keys/", {"label": "k", "scopes": ["*"]},
                                        key=self.key, headers={"Cookie": "kw_session=" + cookie}),
                          201)

    def test_levels_still_apply(self):
        self.env.add_user("m@x.io")
        self.env.add_membership(self.env.sql("SELECT id FROM users WHERE email='m@x.io'")[0][0],
                                self.env.org_a, 1)
        self.assertEqual(set_password(self.env.db, "m@x.io", PASSWORD).returncode, 0)
        cookie, csrf = self.session("m@x.io")
        self.assertProblem(self.srv.patch("/api/projects/1/reset_token/",
                                          headers=self.as_session(cookie, csrf)), 403,
                           "permission_denied", kwtest.MSG_LEVEL)
        self.assertProblem(self.srv.post("/api/organizations/%s/invites/" % self.env.org_a,
                                         {"email": "z@x.io"}, headers=self.as_session(cookie, csrf)),
                           403, "permission_denied")

    def test_logout_and_revocation(self):
        cookie, csrf = self.session()
        st, hdrs, _ = self.srv.post("/api/logout/", headers=self.as_session(cookie, csrf))
        self.assertEqual(st, 204)
        self.assertIn("Max-Age=0", hdrs["Set-Cookie"])
        self.assertProblem(self.srv.get("/api/users/@me/", headers=self.as_session(cookie)), 401,
                           "not_authenticated")
        cookie, csrf = self.session()
        self.assertEqual(set_password(self.env.db, self.env.email, "a brand new password").returncode, 0)
        self.assertProblem(self.srv.get("/api/users/@me/", headers=self.as_session(cookie)), 401,
                           "not_authenticated")
        cookie, _ = self.session(password="a brand new password")
        self.env.sql("UPDATE users SET is_active = 0 WHERE id = ?", (self.env.user_a,))
        self.assertProblem(self.srv.get("/api/users/@me/", headers=self.as_session(cookie)), 401,
                           "not_authenticated")

    def test_sessions_per_user_are_bounded(self):
        """Each sign-in tidies the user's sessions: at most 20 live ones (the
        oldest end first), so signing in in a loop cannot grow the table."""
        first, _ = self.session()
        for i in range(21):
            st, _, body = self.srv.request("POST", "/api/login/", body={
                "email": self.env.email, "password": PASSWORD}, source="127.0.4.%d" % (i % 4 + 1))
            self.assertEqual(st, 200, body)
        self.assertEqual(self.env.sql("SELECT COUNT(*) FROM sessions WHERE user_id = ?",
                                      (self.env.user_a,))[0][0], 20)
        self.assertProblem(self.srv.get("/api/users/@me/", headers=self.as_session(first)), 401,
                           "not_authenticated")

    def test_deactivation_ends_sessions_for_good(self):
        """Deactivating a user deletes their sessions (as a new password
        does): reactivating them must not bring a stolen cookie back."""
        cookie, _ = self.session()
        self.assertStatus(self.srv.get("/api/users/@me/", headers=self.as_session(cookie)), 200)
        for verb in ("deactivate", "activate"):
            proc = subprocess.run([BIN, "user", verb, self.env.email, "--db", self.env.db],
                                  capture_output=True, text=True, timeout=30)
            self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(self.env.sql("SELECT COUNT(*) FROM sessions WHERE user_id = ?",
                                      (self.env.user_a,))[0][0], 0)
        self.assertProblem(self.srv.get("/api/users/@me/", headers=self.as_session(cookie)), 401,
                           "not_authenticated")
        self.session()  # signing in again works

    def test_session_routes_refuse_keys(self):
        self.assertProblem(self.srv.get("/api/session/", key=self.key), 403, "permission_denied",
                           kwtest.MSG_PERSONAL_UNSUPPORTED)
        self.assertProblem(self.srv.get("/api/session/"), 401, "not_authenticated")
        self.assertProblem(self.srv.get("/api/session/", headers={"Cookie": "kw_session=nope"}),
                           401, "not_authenticated")


class TestInvites(ConsoleCase):
    def test_invite_flow(self):
        cookie, csrf = self.session()
        inv = self.assertStatus(self.srv.post(
            "/api/organizations/%s/invites/" % self.env.org_a, {"email": "new@x.io", "level": 8},
            headers=self.as_session(cookie, csrf)), 201)
        self.assertEqual(inv["target_email"], "new@x.io")
        token = inv["link"].rsplit("/", 1)[1]
        self.assertEqual(self.env.sql("SELECT COUNT(*) FROM invites WHERE token_hash = ?",
                                      (token,))[0][0], 0)
        info = self.assertStatus(self.srv.get("/api/invites/%s/" % token), 200)
        self.assertEqual(info["organization_name"], "Acme")
        self.assertFalse(info["has_account"])
        st, hdrs, _ = self.srv.get(inv["link"])
        self.assertEqual(st, 200)
        self.assertTrue(hdrs["Content-Type"].startswith("text/html"))
        st, hdrs, body = self.srv.post("/api/invites/accept/", {
            "token": token, "password": "newcomer password", "first_name": "Nia"})
        self.assertEqual(st, 201, body)
        self.assertEqual(body["user"]["first_name"], "Nia")
        new_cookie = hdrs["Set-Cookie"].split(";")[0].split("=", 1)[1]
        me = self.assertStatus(self.srv.get("/api/users/@me/", headers=self.as_session(new_cookie)),
                               200)
        self.assertEqual(me["organization"]["membership_level"], 8)
        # once only
        self.assertProblem(self.srv.post("/api/invites/accept/", {
            "token": token, "password": "newcomer password"}), 400, "invalid_input", attr="token")
        self.assertProblem(self.srv.get("/api/invites/%s/" % token), 404, "not_found")
        # the invitation shows in the activity log
        log = self.assertStatus(self.srv.get("/api/projects/1/activity_log/?scope=OrganizationInvite",
                                             key=self.key), 200)
        self.assertEqual(log["results"][0]["detail"]["name"], "new@x.io")

    def test_list_and_revoke_pending_invitations(self):
        invites = "/api/organizations/%s/invites/" % self.env.org_a
        made = [self.assertStatus(self.srv.post(invites, {"target_email": "p%d@x.io" % i},
                                                key=self.key), 201) for i in range(3)]
        page = self.assertStatus(self.srv.get(invites, key=self.key), 200)
        self.assertEqual(page["count"], 3)
        self.assertEqual([i["target_email"] for i in page["results"]],
                         ["p2@x.io", "p1@x.io", "p0@x.io"])
        for item in page["results"]:  # never the link or its token
            self.assertNotIn("link", item)
            self.assertFalse(any(m["link"].rsplit("/", 1)[1] in json.dumps(item) for m in made))
        # revoked: gone from the list, its link dead; a second time 404
        self.assertEqual(self.srv.delete(invites + made[0]["id"] + "/", key=self.key)[0], 204)
        self.assertProblem(self.srv.get("/api/invites/%s/" % made[0]["link"].rsplit("/", 1)[1]),
                           404, "not_found")
        self.assertProblem(self.srv.delete(invites + made[0]["id"] + "/", key=self.key), 404,
                           "not_found")
        # accepted ones are not pending
        token = made[1]["link"].rsplit("/", 1)[1]
        self.assertEqual(self.srv.post("/api/invites/accept/", {
            "token": token, "password": "newcomer password"})[0], 201)
        self.assertEqual([i["id"] for i in self.assertStatus(self.srv.get(invites, key=self.key),
                                                             200)["results"]], [made[2]["id"]])
        # another organization: 404 for its admin, and by its own path
        self.env.tenants()
        self.assertProblem(self.srv.get(invites, key=self.env.key_b), 404, "not_found")
        self.assertProblem(self.srv.delete(invites + made[2]["id"] + "/", key=self.env.key_b),
                           404, "not_found")
        other = "/api/organizations/%s/invites/" % self.env.org_b
        self.assertProblem(self.srv.delete(other + made[2]["id"] + "/", key=self.env.key_b), 404,
                           "not_found")
        # a plain member: 403
        self.assertProblem(self.srv.get(invites, key=self.env.key_c), 403, "permission_denied")
        self.assertProblem(self.srv.delete(invites + made[2]["id"] + "/", key=self.env.key_c),
                           403, "permission_denied")
        self.assertEqual(self.assertStatus(self.srv.get(invites, key=self.key), 200)["count"], 1)
        log = self.env.sql("SELECT activity, org_id, project_id, detail FROM activity_log "
                           "WHERE scope='OrganizationInvite' AND item_id=?", (made[0]["id"],))
        deleted = [row for row in log if row[0] == "deleted"]
        self.assertEqual(len(deleted), 1, log)
        self.assertEqual(deleted[0][1:3], (self.env.org_a, 1))
        self.assertEqual(json.loads(deleted[0][3])["name"], "p0@x.io")
        # nothing logged for the refused revocations of made[2]
        self.assertEqual([row[0] for row in self.env.sql(
            "SELECT activity FROM activity_log WHERE scope='OrganizationInvite' AND item_id=?",
            (made[2]["id"],))], ["created"])

    def test_invite_dies_with_its_creators_standing(self):
        """A link is only as good as its creator is now: removed, demoted
        below the link's level, or deactivated, the creator's pending
        invitations no longer work (no way back in for an admin on the way
        out)."""
        def admin(email):
            uid = self.env.add_user(email)
            self.env.add_membership(uid, self.env.org_a, 8)
            uuid = self.env.sql("SELECT uuid FROM users WHERE id=?", (uid,))[0][0]
            return uid, uuid, self.env.cli_key_create(email, email)

        def invite(key, level):
            inv = self.assertStatus(self.srv.post(
                "/api/organizations/%s/invites/" % self.env.org_a,
                {"target_email": "in%d@x.io" % len(self.env.sql("SELECT id FROM invites")),
                 "level": level}, key=key), 201)
            return inv["link"].rsplit("/", 1)[1]

        def usable(token):
            return self.srv.get("/api/invites/%s/" % token)[0] == 200

        members = "/api/organizations/%s/members/" % self.env.org_a
        _, e_uuid, e_key = admin("e@x.io")
        removed = invite(e_key, 8)
        _, d_uuid, d_key = admin("d@x.io")
        demoted, low = invite(d_key, 8), invite(d_key, 1)
        f_id, _, f_key = admin("f@x.io")
        deactivated = invite(f_key, 1)
        kept = invite(self.key, 8)
        for token in (removed, demoted, low, deactivated, kept):
            self.assertTrue(usable(token))
        self.assertEqual(self.srv.delete(members + e_uuid + "/", key=self.key)[0], 204)
        self.assertStatus(self.srv.patch(members + d_uuid + "/", {"level": 1}, key=self.key), 200)
        self.assertStatus(self.srv.patch("/api/users/%d/" % f_id, {"is_active": False},
                                         key=self.key), 200)
        for token in (removed, demoted, low, deactivated):
            self.assertFalse(usable(token))
            self.assertProblem(self.srv.post("/api/invites/accept/", {
                "token": token, "password": "newcomer password"}), 400, "invalid_input",
                attr="token")
        self.assertEqual(self.env.sql("SELECT COUNT(*) FROM users WHERE email LIKE 'in%'")[0][0], 0)
        st, _, body = self.srv.post("/api/invites/accept/", {"token": kept,
                                                             "password": "newcomer password"})
        self.assertEqual(st, 201, body)

    def test_email_case_finds_the_existing_account(self):
        """An invitation to A@X.io is for the account a@x.io: accepting it
        takes that account's password and adds the membership, instead of
        creating a look-alike second account."""
        org = self.env.add_org("Other")
        uid = self.env.add_user("owner@x.io")
        self.env.add_membership(uid, org, 15)
        key = self.env.cli_key_create("owner@x.io", "o")
        inv = self.assertStatus(self.srv.post("/api/organizations/%s/invites/" % org,
                                              {"target_email": self.env.email.upper()}, key=key),
                                201)
        token = inv["link"].rsplit("/", 1)[1]
        self.assertTrue(self.assertStatus(self.srv.get("/api/invites/%s/" % token), 200)
                        ["has_account"])
        self.assertProblem(self.srv.post("/api/invites/accept/", {
            "token": token, "password": "some other password"}), 400, "invalid_credentials")
        st, _, body = self.srv.post("/api/invites/accept/", {"token": token,
                                                             "password": PASSWORD})
        self.assertEqual(st, 201, body)
        self.assertEqual(body["user"]["email"], self.env.email)
        self.assertEqual(self.env.sql("SELECT COUNT(*) FROM users WHERE lower(email) = ?",
                                      (self.env.email,))[0][0], 1)
        # and signing in with the address in another case reaches the account
        st, _, body = self.login(email=self.env.email.upper())
        self.assertEqual((st, body["user"]["email"]), (200, self.env.email))

    def test_long_texts_are_refused_not_cut(self):
        """Limits in characters alone let 4-byte characters overflow the
        stored field, which was then cut inside a character: the user could
        no longer be shown (a hidden member).  Over-long texts are refused;
        the longest that fit are kept whole."""
        inv = self.assertStatus(self.srv.post(
            "/api/organizations/%s/invites/" % self.env.org_a, {"email": "long@x.io", "level": 1},
            key=self.key), 201)
        token = inv["link"].rsplit("/", 1)[1]
        self.assertProblem(self.srv.post("/api/invites/accept/", {
            "token": token, "password": "newcomer password",
            "first_name": "a" + "\U0001F600" * 149}), 400, "max_length", attr="first_name")
        self.assertProblem(self.srv.post(
            "/api/organizations/%s/invites/" % self.env.org_a,
            {"target_email": "\u00e9" * 200 + "@x.io"}, key=self.key), 400, "max_length",
            attr="target_email")
        name = "\U0001F600" * 100  # 400 bytes: fits
        st, hdrs, body = self.srv.post("/api/invites/accept/", {
            "token": token, "password": "newcomer password", "first_name": name})
        self.assertEqual(st, 201, body)
        self.assertEqual(body["user"]["first_name"], name)
        members = self.assertStatus(self.srv.get(
            "/api/organizations/%s/members/" % self.env.org_a, key=self.key), 200)
        self.assertEqual(members["count"], len(members["results"]))
        self.assertIn(name, [m["user"]["first_name"] for m in members["results"]])

    def test_invite_by_key_and_refusals(self):
        st, _, inv = self.srv.post("/api/organizations/%s/invites/" % self.env.org_a,
                                   {"target_email": "k@x.io"}, key=self.key)
        self.assertEqual(st, 201, inv)
        self.assertEqual(inv["level"], 1)
        self.assertProblem(self.srv.post("/api/organizations/nope/invites/", {"email": "k@x.io"},
                                         key=self.key), 404, "not_found")
        self.assertProblem(self.srv.post("/api/organizations/%s/invites/" % self.env.org_a,
                                         {"email": "k@x.io"}), 401, "not_authenticated")
        self.assertProblem(self.srv.post("/api/invites/accept/", {"token": "x", "password": "y"}),
                           400, "invalid_input", attr="token")


class TestPages(KWTestCase):
    def test_pages_and_headers(self):
        for path, ctype in (("/", "text/html"), ("/assets/app.js", "text/javascript"),
                            ("/assets/auth.js", "text/javascript"),
                            ("/assets/report.js", "text/javascript"),
                            ("/assets/orgs.js", "text/javascript"),
                            ("/assets/style.css", "text/css")):
            with self.subTest(path=path):
                st, hdrs, _ = self.srv.get(path)
                self.assertEqual(st, 200)
                self.assertTrue(hdrs["Content-Type"].startswith(ctype), hdrs["Content-Type"])
                csp = hdrs["Content-Security-Policy"]
                self.assertIn("default-src 'self'", csp)
                self.assertNotIn("unsafe-inline", csp)
                self.assertEqual(hdrs["X-Frame-Options"], "DENY")
                self.assertEqual(hdrs["X-Content-Type-Options"], "nosniff")
                self.assertIn("Referrer-Policy", hdrs)
        self.srv.get("/")
        self.assertNotIn("<script>", self.srv.last_text)  # no inline script
        # every script the page loads is served
        for src in re.findall(r'<script src="([^"]+)"', self.srv.last_text):
            self.assertEqual(self.srv.get(src)[0], 200, src)


class TestConsoleSource(unittest.TestCase):
    def test_scope_picker_lists_every_scope_object(self):
        """app.js mirrors lib/policy/scope.c's objects for the scope picker."""
        def objects(path, start):
            with open(os.path.join(kwtest.ROOT, path)) as f:
                text = f.read()
            block = text[text.index(start):]
            block = block[:block.index("]" if path.endswith(".js") else "};")]
            return re.findall(r"[\"']([a-z_]+)[\"']", block)
        c = objects("lib/policy/scope.c", "OBJECTS[] = {")
        js = objects("src/http/console/app.js", "const SCOPE_OBJECTS = [")
        self.assertGreater(len(c), 30)
        self.assertEqual(js, c)


if __name__ == "__main__":
    kwtest.main()
