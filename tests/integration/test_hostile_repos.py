"""test_hostile_repos.py — `keyward scan` and `keyward hook` pointed at
repositories an attacker prepared.

Every repository is built here at run time: staged names that mean something
to git's object syntax (`1:path`), newlines, leading dashes, names hundreds of
bytes long, names that are not UTF-8, a `.git/config` that asks git to run a
program, hook paths that are symbolic links, one line of 10 MiB.  Each case
fails on a scanner that trusts git's output or the repository's config."""
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

from test_scan_cli import BIN, GitRepo, keyward_key, mask


def run_bytes(args, cwd, env, timeout=300):
    return subprocess.run([BIN] + args, cwd=cwd, env=env, capture_output=True, timeout=timeout)


def signed_commit(repo):
    """Moves HEAD to a commit (same tree) carrying a PGP signature header, so
    `git log` with log.showSignature would ask gpg.program to verify it."""
    head = repo.git("rev-parse", "HEAD").stdout.strip()
    tree = repo.git("rev-parse", "HEAD^{tree}").stdout.strip()
    body = ("tree %s\nparent %s\nauthor t <t@example.com> 1700000000 +0000\n"
            "committer t <t@example.com> 1700000000 +0000\n"
            "gpgsig -----BEGIN PGP SIGNATURE-----\n \n iQEzBAABCAAdFiEE\n"
            " -----END PGP SIGNATURE-----\n\nsigned\n" % (tree, head))
    oid = subprocess.run(["git", "hash-object", "-t", "commit", "-w", "--stdin"], cwd=repo.dir,
                         env=repo.env, input=body, capture_output=True, text=True,
                         check=True).stdout.strip()
    repo.git("update-ref", "HEAD", oid)


class Repo(GitRepo):
    def write_bytes(self, name, data):
        """name is bytes: any byte but NUL and '/' is a legal file name."""
        path = os.path.join(os.fsencode(self.dir), name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)

    def add_all(self):
        self.git("add", "-A")


class StagedNamesTest(unittest.TestCase):
    def setUp(self):
        self.repo = Repo()

    def tearDown(self):
        self.repo.close()

    def staged_json(self):
        r = run_bytes(["scan", "--staged", "--format", "json"], self.repo.dir, self.repo.env)
        self.assertNotIn(b"AddressSanitizer", r.stderr)
        return r, (json.loads(r.stdout) if r.stdout else None)

    def test_crafted_names_are_all_scanned(self):
        # "1:..." is "stage 1 of ..." to `cat-file :name`; the long one (over
        # 512 bytes) with " 18446744073709551615" once sized the blob buffer
        # from a truncated "missing" header.
        names = [b"0-first.txt", b"1:leak.txt", b"-rf", b"--batch", b"new\nline.txt",
                 b"1:" + b"a" * 200 + b"/" + b"b" * 200 + b"/x 18446744073709551615" + b"c" * 200,
                 b"x" * 250, b"tab\tand space.txt", b"caf\xe9.txt"]
        keys = {}
        for n in names:
            keys[n] = keyward_key("phx_")
            self.repo.write_bytes(n, b"token = '" + keys[n].encode() + b"'\n")
        self.repo.add_all()
        r, findings = self.staged_json()
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(len(findings), len(names), r.stderr)
        self.assertEqual(sorted(f["mask"] for f in findings), sorted(mask(k) for k in keys.values()))

    def test_unreadable_staged_blob_is_an_error_not_zero_findings(self):
        self.repo.write("a.txt", "token = '%s'\n" % keyward_key("phx_"))
        self.repo.add_all()
        oid = self.repo.git("rev-parse", ":a.txt").stdout.strip()
        obj = os.path.join(self.repo.dir, ".git", "objects", oid[:2], oid[2:])
        os.chmod(obj, 0o600)
        with open(obj, "wb") as f:
            f.write(b"not a zlib stream")
        r, _ = self.staged_json()
        self.assertEqual(r.returncode, 2, (r.stdout, r.stderr))

    def test_over_max_size_is_reported_not_silent(self):
        self.repo.write("big.txt", "x" * 5000 + "\n")
        self.repo.add_all()
        r = run_bytes(["scan", "--staged", "--max-size", "100"], self.repo.dir, self.repo.env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"big.txt", r.stderr)
        self.assertIn(b"max-size", r.stderr)


class NoCodeRunsTest(unittest.TestCase):
    """A repository's config never makes the scanner run a program."""

    def setUp(self):
        self.repo = Repo()
        self.marker = os.path.join(self.repo.dir, "..", os.path.basename(self.repo.dir) + ".ran")
        self.marker = os.path.abspath(self.marker)
        script = os.path.join(self.repo.dir, ".git", "evil.sh")
        with open(script, "w") as f:
            f.write("#!/bin/sh\ntouch '%s'\nexit 0\n" % self.marker)
        os.chmod(script, 0o755)
        self.repo.write("a.txt", "token = '%s'\n" % keyward_key("phx_"))
        self.repo.git("add", "-A")
        self.repo.git("commit", "-qm", "one")
        signed_commit(self.repo)
        self.repo.write("b.txt", "token = '%s'\n" % keyward_key("phx_"))
        self.repo.git("add", "-A")
        # after the last `git add` of the test itself: git would run the filter
        self.repo.write(".gitattributes", "* diff=evil filter=evil\n")
        for key, value in [("core.fsmonitor", script), ("core.pager", script),
                           ("diff.external", script), ("core.hooksPath", ".git/evilhooks"),
                           ("log.showSignature", "true"), ("gpg.program", script),
                           ("gpg.ssh.program", script), ("diff.evil.textconv", script),
                           ("diff.evil.command", script), ("filter.evil.clean", script),
                           ("filter.evil.smudge", script), ("filter.evil.process", script)]:
            self.repo.git("config", key, value)
        hooks = os.path.join(self.repo.dir, ".git", "evilhooks")
        os.makedirs(hooks)
        for hook in ("post-index-change", "reference-transaction", "post-checkout"):
            os.symlink(script, os.path.join(hooks, hook))

    def tearDown(self):
        self.repo.close()
        if os.path.exists(self.marker):
            os.unlink(self.marker)

    def check(self, *args, cwd=None, status=(0, 1)):
        r = run_bytes(list(args), cwd or self.repo.dir, self.repo.env)
        self.assertIn(r.returncode, status, r.stderr)
        self.assertFalse(os.path.exists(self.marker), "scan %s ran the repository's program" % (args,))
        return r

    def test_scan_history_of_a_path(self):
        r = self.check("scan", "--git-history", self.repo.dir, cwd="/")
        self.assertEqual(r.returncode, 1)

    def test_scan_staged_of_a_path(self):
        r = self.check("scan", "--staged", self.repo.dir, cwd="/")
        self.assertEqual(r.returncode, 1)

    def test_repository_owned_by_someone_else_is_refused(self):
        """git's safe.directory check stands: a repository another user owns
        is not read (its config could name a program), with or without PATH."""
        if os.geteuid() != 0:
            self.skipTest("needs root to give the repository away")
        subprocess.run(["chown", "-R", "65534:65534", self.repo.dir], check=True)
        self.repo.env.pop("SUDO_UID", None)
        for args, cwd in [(["--git-history", self.repo.dir], "/"), (["--staged", self.repo.dir], "/"),
                          (["--git-history"], None), (["--staged"], None)]:
            r = self.check("scan", *args, cwd=cwd, status=(2,))
            self.assertEqual(r.stdout, b"", args)
            self.assertIn(b"dubious ownership", r.stderr, args)

    def test_scan_directory(self):
        r = self.check("scan", ".")
        self.assertEqual(r.returncode, 1)

    def test_scan_staged(self):
        r = self.check("scan", "--staged")
        self.assertEqual(r.returncode, 1)

    def test_scan_history(self):
        r = self.check("scan", "--git-history")
        self.assertEqual(r.returncode, 1)


class RepositoryPathTest(unittest.TestCase):
    """The repository path is one argument to git, whatever it reads like."""

    def test_path_that_reads_as_an_option(self):
        parent = tempfile.mkdtemp(prefix="kw_parent_")
        try:
            for name in ["-rf", "--exec-path=/tmp", "-c core.pager=false"]:
                path = os.path.join(parent, name)
                subprocess.run(["git", "init", "-q", "--", path], check=True, capture_output=True)
                repo = Repo.__new__(Repo)
                repo.dir = path
                repo.env = dict(os.environ, HOME=parent, GIT_CONFIG_NOSYSTEM="1",
                                GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
                                GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com")
                key = keyward_key("phx_")
                repo.write("a.txt", "token = '%s'\n" % key)
                repo.git("add", "-A")
                r = run_bytes(["scan", "--staged", "--", name], parent, repo.env)
                self.assertEqual(r.returncode, 1, (name, r.stderr))
                self.assertIn(mask(key).encode(), r.stdout)
                repo.git("commit", "-qm", "one")
                r = run_bytes(["scan", "--git-history", "--", name], parent, repo.env)
                self.assertEqual(r.returncode, 1, (name, r.stderr))
                self.assertIn(mask(key).encode(), r.stdout)
        finally:
            subprocess.run(["rm", "-rf", parent])


class GitOutputTest(unittest.TestCase):
    """git's output is checked, not believed: a `git` that answers log with
    other commits than those asked for makes the scan fail, never pass."""

    def test_history_commit_lines_must_match(self):
        repo = Repo()
        bindir = tempfile.mkdtemp(prefix="kw_fakegit_")
        try:
            repo.write("a.txt", "token = '%s'\n" % keyward_key("phx_"))
            repo.add_all()
            repo.git("commit", "-qm", "one")
            real = subprocess.run(["sh", "-c", "command -v git"], capture_output=True,
                                  text=True).stdout.strip()
            fake = os.path.join(bindir, "git")
            with open(fake, "w") as f:
                f.write("#!/bin/sh\n"
                        "for a in \"$@\"; do [ \"$a\" = log ] && {\n"
                        "  cat > /dev/null; printf 'commit %s\\n' " + "0" * 40 + "; exit 0; }; done\n"
                        "exec '%s' \"$@\"\n" % real)
            os.chmod(fake, 0o755)
            env = dict(repo.env, PATH=bindir + os.pathsep + repo.env.get("PATH", ""))
            r = run_bytes(["scan", "--git-history", repo.dir], "/", env)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn(b"unexpected output from git log", r.stderr)
        finally:
            repo.close()
            subprocess.run(["rm", "-rf", bindir])


class HookLinksTest(unittest.TestCase):
    """`keyward hook install` never writes through a link the repository planted."""

    def setUp(self):
        self.repo = Repo()
        self.outside = self.repo.dir + ".outside"
        os.makedirs(self.outside)
        self.victim = os.path.join(self.outside, "victim")
        with open(self.victim, "w") as f:
            f.write("precious\n")
        self.hooks = os.path.join(self.repo.dir, ".git", "hooks")
        os.makedirs(self.hooks, exist_ok=True)

    def tearDown(self):
        self.repo.close()
        subprocess.run(["rm", "-rf", self.outside])

    def victim_intact(self):
        with open(self.victim) as f:
            self.assertEqual(f.read(), "precious\n")

    def test_planted_temp_name_is_not_written_through(self):
        os.symlink(self.victim, os.path.join(self.hooks, "pre-commit.keyward-tmp"))
        r = self.repo.keyward("hook", "install")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.victim_intact()
        self.assertFalse(os.path.islink(os.path.join(self.hooks, "pre-commit")))

    def test_dangling_symlink_is_an_existing_hook(self):
        target = os.path.join(self.outside, "not-yet")
        hook = os.path.join(self.hooks, "pre-commit")
        os.symlink(target, hook)
        r = self.repo.keyward("hook", "install")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertTrue(os.path.islink(hook))
        self.assertFalse(os.path.exists(target))
        r = self.repo.keyward("hook", "install", "--force")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse(os.path.exists(target), "wrote through the dangling link")
        backup = os.path.join(self.hooks, "pre-commit.keyward-backup")
        self.assertTrue(os.path.islink(backup))
        self.assertEqual(os.readlink(backup), target)
        self.assertFalse(os.path.islink(hook))

    def test_symlinked_hook_points_outside(self):
        hook = os.path.join(self.hooks, "pre-commit")
        os.symlink(self.victim, hook)
        r = self.repo.keyward("hook", "install", "--force")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.victim_intact()
        r = self.repo.keyward("hook", "uninstall")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.victim_intact()

    def test_symlinked_hooks_path_is_refused(self):
        self.repo.git("config", "core.hooksPath", "linked-hooks")
        os.symlink(self.outside, os.path.join(self.repo.dir, "linked-hooks"))
        r = self.repo.keyward("hook", "install")
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertEqual(sorted(os.listdir(self.outside)), ["victim"])


    def test_hooks_path_through_a_linked_directory_is_refused(self):
        self.repo.git("config", "core.hooksPath", "via/hooks")
        os.symlink(self.outside, os.path.join(self.repo.dir, "via"))
        r = self.repo.keyward("hook", "install")
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertEqual(sorted(os.listdir(self.outside)), ["victim"])

    def test_hooks_path_in_a_fresh_directory_works(self):
        self.repo.git("config", "core.hooksPath", "tools/githooks")
        os.makedirs(os.path.join(self.repo.dir, "tools"))
        r = self.repo.keyward("hook", "install")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(os.path.isfile(os.path.join(self.repo.dir, "tools", "githooks", "pre-commit")))
        r = self.repo.keyward("hook", "uninstall")
        self.assertEqual(r.returncode, 0, r.stderr)


class VerifyUrlTest(unittest.TestCase):
    def test_userinfo_and_lookalike_hosts_are_refused(self):
        repo = Repo()
        try:
            repo.write("a.txt", "token = '%s'\n" % keyward_key("phx_"))
            for url in ["http://localhost@example.invalid/", "http://localhost:pw@example.invalid/",
                        "http://user@localhost/", "http://localhost.example.invalid/",
                        "http://127.0.0.1.example.invalid/", "http://localhost#@example.invalid/"]:
                r = repo.keyward("scan", "--verify", url, "--verify-key", "phx_x", ".")
                self.assertEqual(r.returncode, 2, (url, r.stderr))
                self.assertIn("use https://", r.stderr, url)
        finally:
            repo.close()


class ReportNamesTest(unittest.TestCase):
    def test_non_utf8_name_is_escaped_not_dropped(self):
        repo = Repo()
        try:
            key = keyward_key("phx_")
            repo.write_bytes(b"caf\xe9\n.txt", b"token = '" + key.encode() + b"'\n")
            r = run_bytes(["scan", "--no-ignore", "--format", "json", "."], repo.dir, repo.env)
            self.assertEqual(r.returncode, 1, r.stderr)
            findings = json.loads(r.stdout)
            self.assertEqual(len(findings), 1, r.stdout)
            self.assertEqual(findings[0]["file"], "caf\\xe9\\x0a.txt")
            r = run_bytes(["scan", "--no-ignore", "--format", "sarif", "."], repo.dir, repo.env)
            results = json.loads(r.stdout)["runs"][0]["results"]
            self.assertEqual(len(results), 1, r.stdout)
            uri = results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            self.assertEqual(uri, "caf\\xe9\\x0a.txt")
            r = run_bytes(["scan", "--no-ignore", "."], repo.dir, repo.env)
            self.assertEqual(r.stdout.count(b"\n"), 1, r.stdout)
            self.assertIn(b"caf\\xe9\\x0a.txt:1:", r.stdout)
        finally:
            repo.close()

    def test_tracked_file_deleted_from_the_work_tree_is_not_an_error(self):
        repo = Repo()
        try:
            repo.write("a.txt", "nothing here\n")
            repo.write("b.txt", "token = '%s'\n" % keyward_key("phx_"))
            repo.git("add", "-A")
            os.unlink(os.path.join(repo.dir, "a.txt"))
            r = run_bytes(["scan", "."], repo.dir, repo.env)
            self.assertEqual(r.returncode, 1, r.stderr)
        finally:
            repo.close()

    def test_unreadable_file_is_an_error(self):
        if os.geteuid() == 0:
            self.skipTest("root reads every file")
        repo = Repo()
        try:
            repo.write("a.txt", "token = '%s'\n" % keyward_key("phx_"))
            os.chmod(os.path.join(repo.dir, "a.txt"), 0)
            r = run_bytes(["scan", "--no-ignore", "."], repo.dir, repo.env)
            self.assertEqual(r.returncode, 2, (r.stdout, r.stderr))
        finally:
            repo.close()


class LongLineTest(unittest.TestCase):
    """One line of id-like tokens: the time grows linearly with the line."""

    def timed(self, repo, size):
        key = keyward_key("phx_")
        unit = (key + " ").encode()
        path = os.path.join(repo.dir, "long.txt")
        with open(path, "wb") as f:
            f.write(unit * (size // len(unit)) + b"\n")
        start = time.monotonic()
        r = run_bytes(["scan", "--no-ignore", "--max-size", str(32 << 20), "long.txt"], repo.dir,
                      repo.env, timeout=180)
        elapsed = time.monotonic() - start
        self.assertEqual(r.returncode, 1, r.stderr[-500:])
        self.assertEqual(r.stdout.count(b"\n"), size // len(unit))
        with open(path, "rb") as f:
            start = time.monotonic()
            r = subprocess.run([BIN, "redact"], stdin=f, capture_output=True, timeout=180)
            redact = time.monotonic() - start
        self.assertEqual(r.returncode, 0, r.stderr[-500:])
        self.assertEqual(r.stdout.count(mask(key).encode()), size // len(unit))
        return elapsed, redact

    def test_ten_mib_line_is_linear(self):
        repo = Repo()
        try:
            runs = [self.timed(repo, 1 << 20) for _ in range(2)]
            small = min(r[0] for r in runs), min(r[1] for r in runs)
            big = self.timed(repo, 10 << 20)
            for what, a, b in (("scan", small[0], big[0]), ("redact", small[1], big[1])):
                sys.stderr.write("%s: 1 MiB line %.2fs, 10 MiB line %.2fs, ratio %.1f\n"
                                 % (what, a, b, b / a))
                self.assertLess(b / a, 30, what)
        finally:
            repo.close()


if __name__ == "__main__":
    unittest.main()
