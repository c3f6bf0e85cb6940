"""`keyward serve`'s configuration file, and its precedence.

A setting comes from the command line, else its environment variable, else
the configuration file (--config FILE, else $KEYWARD_CONFIG), else the
default.  Which one won is observed from outside: three databases, each
made by `keyward init` with its own key, and the server must accept
exactly the key of the database the winning source named.  A file with an
unknown key, a key set twice, a section, a bad value (even one a flag
overrides), a NUL byte or an over-long line, and a missing file, stop the
start with exit status 2 and a message naming the file, line and key."""
import os
import subprocess
import unittest

import kwtest
from kwtest import Env, Server

ME = "/api/users/@me/"


def clean_env(**extra):
    """The test's environment without any KEYWARD_ setting of the caller's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYWARD_")}
    env.update(extra)
    return env


class ConfigTest(unittest.TestCase):
    def setUp(self):
        # Three databases; which one is served shows which source won.
        self.envs = {}
        for name in ("file", "env", "flag"):
            e = Env(email="%s@x.io" % name)
            self.addCleanup(e.cleanup)
            self.envs[name] = e
        self.dir = self.envs["file"].dir

    def write(self, text, name="keyward.conf", mode="w"):
        path = os.path.join(self.dir, name)
        with open(path, mode) as f:
            f.write(text)
        return path

    def serve(self, args=(), env=None):
        srv = Server(None, self.dir, extra_args=list(args), env=env or clean_env())
        self.addCleanup(self._stop, srv)
        return srv

    def _stop(self, srv):
        if not srv.stopped:
            self.assertEqual(srv.stop(), 0, srv.stderr())

    def served(self, srv):
        """Which of the three databases srv serves: the one whose key works."""
        won = [n for n, e in self.envs.items() if srv.get(ME, key=e.key)[0] == 200]
        self.assertEqual(len(won), 1, won)
        return won[0]

    def refused(self, args=(), env=None, timeout=10):
        proc = subprocess.run([kwtest.BIN, "serve"] + list(args), capture_output=True, text=True,
                              env=env or clean_env(), timeout=timeout, stdin=subprocess.DEVNULL)
        self.assertEqual(proc.returncode, 2, "stdout=%r stderr=%r" % (proc.stdout, proc.stderr))
        self.assertNotIn("listening", proc.stdout)
        return proc.stderr

    # precedence ----------------------------------------------------------

    def test_file_alone(self):
        conf = self.write("# keyward.conf\n\n; another comment\nlisten = 127.0.0.1:0\n"
                          "db = %s\nthreads = 2\nlog-format = json\n" % self.envs["file"].db)
        srv = self.serve(["--config", conf])
        self.assertEqual(self.served(srv), "file")
        srv.stop()
        self.assertIn('"event"', srv.stderr())  # log-format = json from the file

    def test_env_beats_file(self):
        conf = self.write("listen = 127.0.0.1:0\ndb = %s\nlog-format = json\n"
                          % self.envs["file"].db)
        srv = self.serve(["--config", conf], env=clean_env(
            KEYWARD_DATABASE_URL=self.envs["env"].db, KEYWARD_LOG_FORMAT="text"))
        self.assertEqual(self.served(srv), "env")
        srv.stop()
        self.assertNotIn('"event"', srv.stderr())

    def test_flag_beats_env_and_file(self):
        conf = self.write("listen = 127.0.0.1:0\ndb = %s\n" % self.envs["file"].db)
        srv = self.serve(["--config", conf, "--db", self.envs["flag"].db, "--log-format", "json"],
                         env=clean_env(KEYWARD_DATABASE_URL=self.envs["env"].db,
                                       KEYWARD_LOG_FORMAT="text"))
        self.assertEqual(self.served(srv), "flag")
        srv.stop()
        self.assertIn('"event"', srv.stderr())

    def test_listen_from_env_over_file(self):
        # The file names a port that is taken; the variable's port 0 wins.
        conf = self.write("listen = 127.0.0.1:1\ndb = %s\n" % self.envs["file"].db)
        srv = self.serve(["--config", conf], env=clean_env(KEYWARD_LISTEN="127.0.0.1:0"))
        self.assertEqual(self.served(srv), "file")

    def test_empty_variable_is_unset(self):
        # KEYWARD_DATABASE_URL= (empty) does not hide the file's db.
        conf = self.write("listen = 127.0.0.1:0\ndb = %s\n" % self.envs["file"].db)
        srv = self.serve(["--config", conf], env=clean_env(KEYWARD_DATABASE_URL="",
                                                           KEYWARD_LISTEN=""))
        self.assertEqual(self.served(srv), "file")

    def test_keyward_config_names_the_file(self):
        conf = self.write("listen = 127.0.0.1:0\ndb = %s\n" % self.envs["file"].db)
        srv = self.serve(env=clean_env(KEYWARD_CONFIG=conf))
        self.assertEqual(self.served(srv), "file")

    def test_config_flag_beats_keyward_config(self):
        good = self.write("listen = 127.0.0.1:0\ndb = %s\n" % self.envs["flag"].db, "good.conf")
        bad = self.write("no such key = 1\n", "bad.conf")
        srv = self.serve(["--config", good], env=clean_env(KEYWARD_CONFIG=bad))
        self.assertEqual(self.served(srv), "flag")

    def test_no_file_env_alone(self):
        srv = self.serve(env=clean_env(KEYWARD_LISTEN="127.0.0.1:0",
                                       KEYWARD_DATABASE_URL=self.envs["env"].db))
        self.assertEqual(self.served(srv), "env")

    def test_installed_file_is_valid(self):
        # The configuration file cmake --install lays out (all comments,
        # the defaults) is accepted as it ships.
        shipped = os.path.join(os.path.dirname(kwtest.BIN), "keyward.conf")
        if not os.path.exists(shipped):
            self.skipTest("no keyward.conf beside %s" % kwtest.BIN)
        srv = self.serve(["--config", shipped, "--listen", "127.0.0.1:0",
                          "--db", self.envs["flag"].db])
        self.assertEqual(self.served(srv), "flag")

    def test_empty_js_dir_is_a_value(self):
        conf = self.write("listen = 127.0.0.1:0\ndb = %s\njs-dir =\n" % self.envs["file"].db)
        srv = self.serve(["--config", conf])
        self.assertEqual(srv.get("/static/array.js")[0], 404)

    # refusals ------------------------------------------------------------

    def test_unknown_key(self):
        conf = self.write("listen = 127.0.0.1:0\nlisten-address = 127.0.0.1:0\n")
        err = self.refused(["--config", conf])
        self.assertIn("%s:2: unknown key \"listen-address\"" % conf, err)
        self.assertIn("known: listen db threads", err)

    def test_unknown_key_even_when_flags_set_everything(self):
        conf = self.write("typo = 1\n")
        err = self.refused(["--config", conf, "--listen", "127.0.0.1:0",
                            "--db", self.envs["flag"].db])
        self.assertIn("unknown key \"typo\"", err)

    def test_bad_values(self):
        cases = [("threads = 0", "threads must be an integer 1-256"),
                 ("threads = 2x", "threads must be an integer 1-256"),
                 ("threads = 99999999999999999999", "threads must be an integer 1-256"),
                 ("conn-timeout = 0", "conn-timeout must be an integer 1-3600"),
                 ("capture-ack-window = -1", "capture-ack-window must be an integer 0-1000000"),
                 ("capture-ack-window = 1000001", "capture-ack-window must be an integer 0-1000000"),
                 ("capture-ack-window = 1e3", "capture-ack-window must be an integer 0-1000000"),
                 ("degraded-grace = -1", "degraded-grace must be a number of seconds"),
                 ("listen = localhost", "listen must be HOST:PORT"),
                 ("listen = 127.0.0.1:70000", "listen must be HOST:PORT"),
                 ("metrics-listen = 127.0.0.1:", "metrics-listen must be HOST:PORT"),
                 ("secure-cookies = maybe", "secure-cookies must be true or false"),
                 ("log-format = xml", "log-format must be text or json"),
                 ("public-url = ftp://x", "public-url must be http:// or https://"),
                 ("db =", "db must be given a value"),
                 ('listen = "127.0.0.1:0"', "listen must be HOST:PORT")]
        for line, msg in cases:
            with self.subTest(line=line):
                conf = self.write("# first\n%s\n" % line)
                err = self.refused(["--config", conf])
                self.assertIn("%s:2: %s" % (conf, msg), err)

    def test_bad_value_in_file_even_when_a_flag_overrides_it(self):
        conf = self.write("threads = none\n")
        err = self.refused(["--config", conf, "--threads", "2"])
        self.assertIn(":1: threads must be an integer 1-256", err)

    def test_bad_env_and_flag_values(self):
        err = self.refused(env=clean_env(KEYWARD_THREADS="0"))
        self.assertIn("$KEYWARD_THREADS (threads) must be an integer 1-256", err)
        err = self.refused(env=clean_env(KEYWARD_SECURE_COOKIES="sometimes"))
        self.assertIn("$KEYWARD_SECURE_COOKIES (secure-cookies) must be true or false", err)
        err = self.refused(["--conn-timeout", "3601"])
        self.assertIn("--conn-timeout must be an integer 1-3600", err)
        err = self.refused(["--capture-ack-window", ""])
        self.assertIn("--capture-ack-window must be given a value", err)
        err = self.refused(env=clean_env(KEYWARD_CAPTURE_ACK_WINDOW="lots"))
        self.assertIn("$KEYWARD_CAPTURE_ACK_WINDOW (capture-ack-window) must be an integer 0-1000000",
                      err)
        err = self.refused(["--conn-timeout", "3601"])
        self.assertIn("--conn-timeout must be an integer 1-3600", err)
        err = self.refused(["--listen", "nocolon"])
        self.assertIn("--listen must be HOST:PORT", err)

    def test_malformed_lines(self):
        cases = [("listen = 127.0.0.1:0\nlisten = 127.0.0.1:0\n", ":2: listen is set twice"),
                 ("[serve]\nlisten = 127.0.0.1:0\n", "sections are not used"),
                 ("just words\n", ":1: not a key = value line"),
                 ("threads = 2\x00\n", ":1: a NUL byte"),
                 ("public-url = https://x.io/%s\n" % ("a" * 9000), ":1: a line longer than"),
                 ("\xff\xfe = 1\n", "unknown key \"\\xff\\xfe\"")]
        for text, msg in cases:
            with self.subTest(text=text[:40]):
                conf = self.write(text.encode("latin-1"), mode="wb")
                self.assertIn(msg, self.refused(["--config", conf]))

    def test_missing_file(self):
        missing = os.path.join(self.dir, "nope.conf")
        err = self.refused(["--config", missing])
        self.assertIn("cannot read configuration file %s: No such file" % missing, err)
        err = self.refused(env=clean_env(KEYWARD_CONFIG=missing))
        self.assertIn("cannot read configuration file %s" % missing, err)

    def test_unreadable_file(self):
        if os.geteuid() == 0:
            self.skipTest("root reads any file")
        conf = self.write("listen = 127.0.0.1:0\n")
        os.chmod(conf, 0)
        self.assertIn("Permission denied", self.refused(["--config", conf]))

    def test_directory_as_file(self):
        self.assertIn("cannot read configuration file", self.refused(["--config", self.dir]))

    def test_help_documents_config(self):
        out = kwtest.run_cli("serve", "--help", check=True).stdout
        self.assertIn("--config FILE", out)
        self.assertIn("wins over", out)


if __name__ == "__main__":
    kwtest.main()
