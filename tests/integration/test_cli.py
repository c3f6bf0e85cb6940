"""The keyward command line: help, init, key create/list/roll/revoke,
serve's listening line and graceful shutdown on SIGTERM and SIGINT."""
import os
import re
import signal
import tempfile
import unittest

import kwtest
from kwtest import (KWTestCase, KEY_RE, MSG_INVALID_HEADER, Server, checksum_ok, run_cli,
                    sha256_secure)


class TestHelp(unittest.TestCase):
    def test_help(self):
        for args in (["--help"], ["-h"], ["help"]):
            with self.subTest(args=args):
                p = run_cli(*args)
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertIn("usage", p.stdout.lower())
                for cmd in ("init", "serve", "key"):
                    self.assertIn(cmd, p.stdout)

    def test_subcommand_help(self):
        for cmd in ("init", "serve", "key"):
            with self.subTest(cmd=cmd):
                p = run_cli(cmd, "--help")
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertIn("usage", p.stdout.lower())

    def test_no_args_and_unknown_command_fail(self):
        p = run_cli()
        self.assertNotEqual(p.returncode, 0)
        p = run_cli("frobnicate")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("frobnicate", p.stderr)

    def test_version(self):
        p = run_cli("--version")
        self.assertEqual(p.returncode, 0)
        self.assertRegex(p.stdout, r"^keyward \d+\.\d+\.\d+")


class TestInit(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="kwtest-")
        self.addCleanup(self.tmp.cleanup)
        self.db = os.path.join(self.tmp.name, "kw.db")

    def test_init_prints_key_and_token(self):
        p = run_cli("init", "--email", "a@x.io", "--org", "Acme", "--project", "Web",
                    "--db", self.db)
        self.assertEqual(p.returncode, 0, p.stderr)
        key = kwtest.parse_phx(p.stdout)
        token = kwtest.parse_phc(p.stdout)
        self.assertRegex(key, KEY_RE)
        self.assertTrue(checksum_ok(key))
        self.assertRegex(token, r"^phc_[0-9A-Za-z]{54}$")
        self.assertTrue(checksum_ok(token))
        import sqlite3
        c = sqlite3.connect(self.db)
        try:
            rows = c.execute("SELECT secure_value, scopes FROM personal_api_keys").fetchall()
            self.assertEqual(rows, [(sha256_secure(key), '["*"]')])
            self.assertEqual(c.execute("SELECT api_token, name FROM projects").fetchall(),
                             [(token, "Web")])
            self.assertEqual(c.execute("SELECT name FROM organizations").fetchall(), [("Acme",)])
            self.assertEqual(c.execute("SELECT level FROM memberships").fetchall(), [(15,)])
        finally:
            c.close()

    def test_init_twice_fails(self):
        first = run_cli("init", "--email", "a@x.io", "--db", self.db)
        self.assertEqual(first.returncode, 0, first.stderr)
        second = run_cli("init", "--email", "other@x.io", "--db", self.db)
        self.assertNotEqual(second.returncode, 0)
        self.assertIn("already initialized", second.stderr)
        self.assertNotIn("phx_", second.stdout + second.stderr)
        import sqlite3
        c = sqlite3.connect(self.db)
        try:
            self.assertEqual(c.execute("SELECT COUNT(*) FROM users").fetchone()[0], 1)
            self.assertEqual(c.execute("SELECT COUNT(*) FROM personal_api_keys").fetchone()[0], 1)
        finally:
            c.close()

    def test_init_needs_email(self):
        p = run_cli("init", "--db", self.db)
        self.assertNotEqual(p.returncode, 0)
        p = run_cli("init", "--email", "not-an-email", "--db", self.db)
        self.assertNotEqual(p.returncode, 0)

    def test_database_from_env(self):
        env = dict(os.environ, KEYWARD_DATABASE_URL=self.db)
        p = run_cli("init", "--email", "a@x.io", env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(os.path.exists(self.db))


class TestKeyCommands(KWTestCase):
    serve_in_setup = False

    def key_cli(self, *args):
        return run_cli("key", *args, "--db", self.env.db)

    def test_create_list_roll_revoke(self):
        p = self.key_cli("create", "--email", "a@x.io", "--label", "ci deploy",
                         "--scopes", "feature_flag:read,user:read")
        self.assertEqual(p.returncode, 0, p.stderr)
        value = kwtest.parse_phx(p.stdout)
        self.assertRegex(value, KEY_RE)
        self.assertTrue(checksum_ok(value))
        kid = self.env.sql("SELECT id FROM personal_api_keys WHERE label='ci deploy'")[0][0]
        self.assertIn(kid, p.stdout)
        row = self.env.sql("SELECT secure_value, scopes FROM personal_api_keys WHERE id=?", (kid,))
        self.assertEqual(row, [(sha256_secure(value), '["feature_flag:read","user:read"]')])

        p = self.key_cli("list", "--email", "a@x.io")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(kid, p.stdout)
        self.assertIn("ci deploy", p.stdout)
        self.assertIn(kwtest.mask(value), p.stdout)
        self.assertIn("keyward init", p.stdout)
        self.assertNotIn(value, p.stdout)
        self.assertIsNone(re.search(r"phx_[0-9A-Za-z]{20,}", p.stdout))

        srv = self.start_server()
        self.assertStatus(srv.get("/api/users/@me/", key=value), 200)
        # CLI and server share the database while the server runs
        p = self.key_cli("roll", "--email", "a@x.io", kid)
        self.assertEqual(p.returncode, 0, p.stderr)
        new = kwtest.parse_phx(p.stdout)
        self.assertNotEqual(new, value)
        self.assertTrue(checksum_ok(new))
        self.assertProblem(self.eventually(lambda: srv.get("/api/users/@me/", key=value), 401),
                           401, "authentication_failed", MSG_INVALID_HEADER)
        self.assertStatus(srv.get("/api/users/@me/", key=new), 200)
        got = self.assertStatus(srv.get("/api/personal_api_keys/%s/" % kid, key=self.key), 200)
        self.assertIsNotNone(got["last_rolled_at"])

        p = self.key_cli("revoke", "--email", "a@x.io", kid)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(kid, p.stdout)
        self.assertProblem(self.eventually(lambda: srv.get("/api/users/@me/", key=new), 401),
                           401, "authentication_failed", MSG_INVALID_HEADER)
        p = self.key_cli("list", "--email", "a@x.io")
        self.assertNotIn(kid, p.stdout)
        # the CLI's changes are in the activity log, like the API's
        log = self.assertStatus(srv.get("/api/projects/1/activity_log/?item_id=" + kid,
                                        key=self.key), 200)
        self.assertEqual(sorted(e["activity"] for e in log["results"]),
                         ["created", "deleted", "rolled"])

    def test_create_unknown_scope(self):
        before = self.env.sql("SELECT COUNT(*) FROM personal_api_keys")
        p = self.key_cli("create", "--email", "a@x.io", "--label", "x", "--scopes", "nope:read")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("Invalid scope", p.stderr)
        self.assertIn("nope:read", p.stderr)
        self.assertNotIn("phx_", p.stdout)
        self.assertEqual(self.env.sql("SELECT COUNT(*) FROM personal_api_keys"), before)

    def test_create_validation(self):
        before = self.env.sql("SELECT COUNT(*) FROM personal_api_keys")
        for args in (["--label", "x" * 41, "--scopes", "*"], ["--scopes", "*"],
                     ["--label", "x"], ["--label", "x", "--scopes", "*", "--teams", "999"]):
            with self.subTest(args=args):
                p = self.key_cli("create", "--email", "a@x.io", *args)
                self.assertNotEqual(p.returncode, 0, p.stdout)
                self.assertTrue(p.stderr.strip())
                self.assertNotIn("phx_", p.stdout)
        self.assertEqual(self.env.sql("SELECT COUNT(*) FROM personal_api_keys"), before)

    def test_unknown_or_inactive_user(self):
        p = self.key_cli("create", "--email", "nobody@x.io", "--label", "x", "--scopes", "*")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("nobody@x.io", p.stderr)
        uid = self.env.add_user("off@x.io", is_active=0)
        self.assertTrue(uid)
        p = self.key_cli("create", "--email", "off@x.io", "--label", "x", "--scopes", "*")
        self.assertNotEqual(p.returncode, 0)
        p = self.key_cli("list")
        self.assertNotEqual(p.returncode, 0)

    def test_limit_of_ten(self):
        for i in range(9):
            self.env.cli_key_create("a@x.io", "k%d" % i)
        p = self.key_cli("create", "--email", "a@x.io", "--label", "11th", "--scopes", "*")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("You can only have 10 personal API keys", p.stderr)

    def test_other_users_key_cannot_be_rolled_or_revoked(self):
        self.env.tenants()
        kid = self.env.sql("SELECT id FROM personal_api_keys WHERE user_id=1")[0][0]
        before = self.env.sql("SELECT * FROM personal_api_keys WHERE id=?", (kid,))
        for action in ("roll", "revoke"):
            with self.subTest(action=action):
                p = self.key_cli(action, "--email", "b@y.io", kid)
                self.assertNotEqual(p.returncode, 0)
                self.assertIn("Not found", p.stderr)
        self.assertEqual(self.env.sql("SELECT * FROM personal_api_keys WHERE id=?", (kid,)), before)

    def test_unknown_action(self):
        p = self.key_cli("frob", "--email", "a@x.io")
        self.assertNotEqual(p.returncode, 0)
        p = self.key_cli("roll", "--email", "a@x.io")  # missing id
        self.assertNotEqual(p.returncode, 0)


class TestServe(KWTestCase):
    serve_in_setup = False

    def test_listening_line_and_sigterm(self):
        srv = Server(self.env.db, self.env.dir)
        self.assertRegex(srv.listen_line,
                         r"^keyward \d+\.\d+\.\d+ listening on http://127\.0\.0\.1:\d+ "
                         r"\((sqlite|postgresql) store\)$")
        self.assertGreater(srv.port, 0)
        self.assertEqual(srv.get("/_health")[0], 200)
        self.assertEqual(srv.stop(signal.SIGTERM), 0, srv.stderr())
        self.assertIn("SIGTERM", srv.stderr())

    def test_sigint(self):
        srv = Server(self.env.db, self.env.dir)
        self.assertEqual(srv.get("/_health")[0], 200)
        self.assertEqual(srv.stop(signal.SIGINT), 0, srv.stderr())

    def test_sigterm_right_after_start(self):
        srv = Server(self.env.db, self.env.dir)
        self.assertEqual(srv.stop(signal.SIGTERM), 0, srv.stderr())

    def test_pending_last_used_write_flushed_on_shutdown(self):
        srv = Server(self.env.db, self.env.dir)
        self.assertEqual(srv.get("/api/projects/", key=self.key)[0], 200)
        self.assertEqual(srv.stop(signal.SIGTERM), 0, srv.stderr())
        self.assertIsNotNone(self.env.sql("SELECT last_used_at FROM personal_api_keys")[0][0])

    def test_two_servers_on_port_zero(self):
        a = Server(self.env.db, self.env.dir)
        b = Server(self.env.db, self.env.dir)
        try:
            self.assertNotEqual(a.port, b.port)
            self.assertEqual(a.get("/api/projects/", key=self.key)[0], 200)
            self.assertEqual(b.get("/api/projects/", key=self.key)[0], 200)
        finally:
            self.assertEqual(a.stop(), 0)
            self.assertEqual(b.stop(), 0)

    def test_bad_listen_address(self):
        for listen in ("nonsense", "127.0.0.1:99999", "127.0.0.1:"):
            with self.subTest(listen=listen):
                p = run_cli("serve", "--listen", listen, "--db", self.env.db, timeout=10)
                self.assertNotEqual(p.returncode, 0)
                self.assertIn("listen", p.stderr)

    def test_listen_from_env(self):
        env = dict(os.environ, KEYWARD_LISTEN="127.0.0.1:0")
        import subprocess
        proc = subprocess.Popen([kwtest.BIN, "serve", "--db", self.env.db], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            line = proc.stdout.readline().decode()
            self.assertRegex(line, r"listening on http://127\.0\.0\.1:\d+ ")
        finally:
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(5), 0)
            proc.stdout.close()


if __name__ == "__main__":
    kwtest.main()
