"""Integration tests for `keyward scan`, `keyward redact` and `keyward hook`.

Runs the real binary (env KEYWARD_BIN) against the fixture corpus and
against throwaway git repositories made in temp dirs.  Keys are generated
here the way lib/keys/key.c does (48 random base62 chars + base62 CRC32)."""
import json
import os
import random
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import zlib

BIN = os.environ.get("KEYWARD_BIN", "keyward")
HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures", "scan")
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def github_token(prefix="ghp_", rng=secrets):
    """GitHub's format: 30 random base62 chars and their CRC32 in base62."""
    body = rand(30, rng=rng)
    crc, digits = zlib.crc32(body.encode()), ""
    for _ in range(6):
        digits = BASE62[crc % 62] + digits
        crc //= 62
    return prefix + body + digits


def keyward_key(prefix="phx_", rng=secrets):
    body = "".join(rng.choice(BASE62) for _ in range(48))
    crc = zlib.crc32((prefix + body).encode())
    digits = ""
    for _ in range(6):
        digits = BASE62[crc % 62] + digits
        crc //= 62
    return prefix + body + digits


def mask(key):
    return key[:4] + "..." + key[-4:]


def read(path):
    with open(path, "rb") as f:
        return f.read()


def run(args, cwd=None, stdin=None, env=None):
    return subprocess.run([BIN] + args, cwd=cwd, input=stdin, capture_output=True, env=env,
                          timeout=120)


class GitRepo:
    """A temp git repository with an isolated config."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="kw_git_")
        self.env = dict(os.environ, HOME=self.dir, GIT_CONFIG_NOSYSTEM="1",
                        GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
                        GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com")
        self.git("init", "-q")

    def git(self, *args, check=True):
        return subprocess.run(["git"] + list(args), cwd=self.dir, env=self.env,
                              capture_output=True, text=True, check=check)

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)

    def keyward(self, *args):
        return subprocess.run([BIN] + list(args), cwd=self.dir, env=self.env,
                              capture_output=True, text=True, timeout=120)

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class CorpusTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kw_corpus_")
        self.corpus = os.path.join(self.tmp, "corpus")
        shutil.copytree(os.path.join(FIXTURES, "corpus"), self.corpus)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def expected(self):
        with open(os.path.join(FIXTURES, "expected.txt")) as f:
            return sorted(line.strip() for line in f if line.strip())

    def test_text_output_matches_expected_findings(self):
        r = run(["scan", "."], cwd=self.corpus)
        self.assertEqual(r.returncode, 1, r.stderr)
        found = []
        for line in r.stdout.decode().splitlines():
            file, lineno, col, rest = line.split(":", 3)
            rule, confidence, masked = rest.split()[:3]
            self.assertIn(confidence, ("high", "medium"))
            self.assertRegex(masked, r"^(.{4}\.\.\..{4}|\*{8})$")
            found.append(f"{file}:{lineno}:{rule}")
        self.assertEqual(sorted(found), self.expected())

    def test_output_never_contains_a_secret(self):
        with open(os.path.join(self.corpus, "config", "settings.py")) as f:
            key = re.search(r"phx_[0-9A-Za-z]{54}", f.read()).group(0)
        self.assertTrue(key.startswith("phx_") and len(key) == 58)
        for fmt in ("text", "json", "sarif"):
            r = run(["scan", "--format", fmt, "."], cwd=self.corpus)
            self.assertNotIn(key.encode(), r.stdout + r.stderr)
            self.assertNotIn(key[4:40].encode(), r.stdout)

    def test_json_and_baseline(self):
        r = run(["scan", "--format", "json", "."], cwd=self.corpus)
        self.assertEqual(r.returncode, 1)
        findings = json.loads(r.stdout)
        self.assertEqual(len(findings), len(self.expected()))
        for f in findings:
            self.assertEqual(set(f), {"file", "line", "column", "rule", "confidence", "mask",
                                      "fingerprint"})
            self.assertRegex(f["fingerprint"], "^[0-9a-f]{64}$")
        baseline = os.path.join(self.tmp, "baseline.json")
        with open(baseline, "wb") as f:
            f.write(r.stdout)
        r = run(["scan", "--baseline", baseline, "."], cwd=self.corpus)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertEqual(r.stdout, b"")
        # a new secret is still reported
        key = keyward_key("phs_")
        with open(os.path.join(self.corpus, "new.txt"), "w") as f:
            f.write(f"k = {key}\n")
        r = run(["scan", "--baseline", baseline, "."], cwd=self.corpus)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout.decode().strip(),
                         f"new.txt:1:5: posthog-project-secret-key high {mask(key)}")

    def test_sarif_structure(self):
        r = run(["scan", "--format", "sarif", "."], cwd=self.corpus)
        self.assertEqual(r.returncode, 1)
        doc = json.loads(r.stdout)
        self.assertEqual(doc["version"], "2.1.0")
        self.assertIn("sarif", doc["$schema"])
        self.assertEqual(len(doc["runs"]), 1)
        driver = doc["runs"][0]["tool"]["driver"]
        self.assertEqual(driver["name"], "keyward")
        rule_ids = {rule["id"] for rule in driver["rules"]}
        for rule in driver["rules"]:
            self.assertTrue(rule["shortDescription"]["text"])
        results = doc["runs"][0]["results"]
        self.assertEqual(len(results), len(self.expected()))
        for res in results:
            self.assertIn(res["ruleId"], rule_ids)
            self.assertIn(res["level"], ("error", "warning"))
            self.assertTrue(res["message"]["text"])
            loc = res["locations"][0]["physicalLocation"]
            self.assertFalse(loc["artifactLocation"]["uri"].startswith("/"))
            self.assertGreaterEqual(loc["region"]["startLine"], 1)
            self.assertGreaterEqual(loc["region"]["startColumn"], 1)
            self.assertRegex(res["partialFingerprints"]["keyward/v1"], "^[0-9a-f]{64}$")

    def test_single_file_and_max_size(self):
        r = run(["scan", "deploy/.env"], cwd=self.corpus)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(len(r.stdout.splitlines()), 3)
        r = run(["scan", "--max-size", "100", "deploy/.env"], cwd=self.corpus)
        self.assertEqual(r.returncode, 0)


class ScanTest(unittest.TestCase):
    def test_stdin_and_exit_codes(self):
        key = keyward_key("phc_")
        r = run(["scan", "-"], stdin=f"hello\nposthog.init('{key}')\n".encode())
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout.decode(), f"-:2:15: posthog-project-token high {mask(key)}\n")
        r = run(["scan", "-"], stdin=b"nothing to see\n")
        self.assertEqual((r.returncode, r.stdout), (0, b""))
        for bad in (["scan", "--format", "xml", "-"], ["scan", "--bogus"],
                    ["scan", "--since", "HEAD"]):
            self.assertEqual(run(bad, stdin=b"").returncode, 2, bad)

    def test_list_rules(self):
        r = run(["scan", "--list-rules"])
        self.assertEqual(r.returncode, 0)
        rows = [line.split("\t") for line in r.stdout.decode().splitlines()]
        ids = [row[0] for row in rows]
        self.assertGreaterEqual(len(ids), 80)
        self.assertEqual(len(ids), len(set(ids)))
        self.assertTrue(all(len(row) == 3 and row[1] in ("high", "medium") for row in rows))
        for rule in ("github-pat", "gitlab-pat", "openai-api-key", "postgres-url-password",
                     "generic-secret-assignment"):
            self.assertIn(rule, ids)
        # user rules are listed too
        with tempfile.TemporaryDirectory() as d:
            rules = os.path.join(d, "rules.toml")
            with open(rules, "w") as f:
                f.write("[rule]\nid = \"acme-token\"\npattern = 'acme_[0-9a-f]{32}'\n")
            r = run(["scan", "--rules", rules, "--list-rules"])
            self.assertIn(b"acme-token\thigh\t", r.stdout)

    def test_redact_masks_provider_tokens(self):
        """Every rule is a redaction rule: a provider token keyward scan reports is masked."""
        values = [github_token(), "glpat-" + rand(20), "dop_v1_" + secrets.token_hex(32),
                  "postgres://app:" + rand(20) + "@db/app"]
        text = "".join(f"line {i}: {v}\n" for i, v in enumerate(values))
        r = run(["redact"], stdin=text.encode())
        self.assertEqual(r.returncode, 0)
        out = r.stdout.decode()
        self.assertEqual(out.count("\n"), len(values))
        for v in values:
            secret = v.split(":", 2)[-1].split("@")[0] if v.startswith("postgres") else v
            self.assertNotIn(secret, out)

    def test_user_rules_file(self):
        with tempfile.TemporaryDirectory() as d:
            rules = os.path.join(d, "rules.toml")
            with open(rules, "w") as f:
                f.write("[rule]\nid = \"acme-token\"\npattern = 'acme_[0-9a-f]{32}'\n"
                        "description = \"ACME API token\"\n")
            token = "acme_" + secrets.token_hex(16)
            r = run(["scan", "--rules", rules, "-"], stdin=f"x={token}\n".encode())
            self.assertEqual(r.returncode, 1)
            self.assertIn(b"-:1:3: acme-token high acme...", r.stdout)
            with open(rules, "w") as f:
                f.write("[rule]\nid = \"x\"\n")
            r = run(["scan", "--rules", rules, "-"], stdin=b"")
            self.assertEqual(r.returncode, 2)
            self.assertIn(b"without pattern", r.stderr)

    def test_plain_directory_skips_symlinks_and_binaries(self):
        with tempfile.TemporaryDirectory() as d:
            outside = os.path.join(d, "outside.txt")
            tree = os.path.join(d, "tree")
            os.makedirs(os.path.join(tree, "sub"))
            with open(outside, "w") as f:
                f.write(keyward_key() + "\n")
            os.symlink(outside, os.path.join(tree, "link.txt"))
            os.symlink(d, os.path.join(tree, "sub", "up"))
            with open(os.path.join(tree, "sub", "blob.bin"), "wb") as f:
                f.write(b"\0" + keyward_key().encode())
            key = keyward_key("phs_")
            with open(os.path.join(tree, "sub", "real.txt"), "w") as f:
                f.write(key + "\n")
            r = run(["scan", tree])
            self.assertEqual(r.returncode, 1)
            self.assertEqual(r.stdout.decode(),
                             f"{tree}/sub/real.txt:1:1: posthog-project-secret-key high {mask(key)}\n")


class CacheTest(unittest.TestCase):
    """The compiled rules are kept in a cache directory between runs
    (KEYWARD_CACHE_DIR, else $XDG_CACHE_HOME/keyward, else
    ~/.cache/keyward), in the user's own 0700 directory, and loaded only
    from there; a bad or untrusted cache is ignored, never believed."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.dir = os.path.join(self.tmp.name, "deep", "cache")
        self.env = dict(os.environ, KEYWARD_CACHE_DIR=self.dir)
        self.key = keyward_key("phc_")
        self.text = f"posthog.init('{self.key}')\n".encode()
        self.want = f"-:1:15: posthog-project-token high {mask(self.key)}\n"

    def scan(self, *args, env=None, text=None):
        r = run(["scan"] + list(args) + ["-"], stdin=self.text if text is None else text,
                env=env or self.env)
        # Nothing on stderr but the count: no warning about the cache.
        self.assertRegex(r.stderr.decode(), r"\Akeyward: \d+ findings?\n\Z")
        return r.returncode, r.stdout.decode()

    def files(self):
        return sorted(f for f in os.listdir(self.dir) if f.endswith(".db"))

    def test_written_once_then_loaded(self):
        self.assertEqual(self.scan(), (1, self.want))
        self.assertEqual(os.stat(self.dir).st_mode & 0o777, 0o700)
        [name] = self.files()
        path = os.path.join(self.dir, name)
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        before = os.stat(path).st_mtime_ns
        time.sleep(0.05)
        self.assertEqual(self.scan(), (1, self.want))
        self.assertEqual(os.stat(path).st_mtime_ns, before, "loaded, not written again")

    def test_foreign_database_never_indexes_past_the_rules(self):
        # A user rules file makes a second database; its bytes put under the
        # built-in rules' name (the cache is the user's own, so the user can)
        # report the user rule's id, which is past the built-in rules: it is
        # never used as an index, so nothing is found and nothing breaks.
        self.scan()
        [builtin] = self.files()
        rules = os.path.join(self.tmp.name, "rules.toml")
        with open(rules, "w") as f:
            f.write("[rule]\nid = \"acme-token\"\npattern = 'acme_[0-9a-f]{32}'\n")
        self.scan("--rules", rules)
        [user] = [f for f in self.files() if f != builtin]
        shutil.copyfile(os.path.join(self.dir, user), os.path.join(self.dir, builtin))
        acme = ("acme_" + secrets.token_hex(16) + "\n").encode()
        self.assertEqual(self.scan(text=acme), (0, ""))
        rc, out = self.scan("--rules", rules, text=acme)
        self.assertEqual(rc, 1)
        self.assertIn("acme-token", out)

    def test_damaged_file_is_replaced(self):
        self.scan()
        [name] = self.files()
        path = os.path.join(self.dir, name)
        good = read(path)
        for damage in (b"", b"\0" * len(good), good[:len(good) // 2],
                       good[:100] + bytes(b ^ 0x5A for b in good[100:200]) + good[200:]):
            with open(path, "wb") as f:
                f.write(damage)
            self.assertEqual(self.scan(), (1, self.want), len(damage))
            self.assertEqual(read(path), good)

    def test_untrusted_cache_is_not_used(self):
        os.makedirs(self.dir)
        os.chmod(self.dir, 0o777)  # writable by others: never read or written
        self.assertEqual(self.scan(), (1, self.want))
        self.assertEqual(self.files(), [])
        os.chmod(self.dir, 0o700)
        self.scan()
        [name] = self.files()
        path = os.path.join(self.dir, name)
        good = read(path)
        # A link in the cache is not followed; it is replaced by a file.
        target = os.path.join(self.tmp.name, "target")
        with open(target, "wb") as f:
            f.write(b"not a database")
        os.unlink(path)
        os.symlink(target, path)
        self.assertEqual(self.scan(), (1, self.want))
        self.assertFalse(os.path.islink(path))
        self.assertEqual(read(target), b"not a database")
        # A file writable by others is not loaded.
        with open(path, "wb") as f:
            f.write(good[:50])
        os.chmod(path, 0o666)
        self.assertEqual(self.scan(), (1, self.want))
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        if os.geteuid() == 0:  # a file of another user is not loaded
            with open(path, "wb") as f:
                f.write(good[:50])
            os.chown(path, 65534, 65534)
            self.assertEqual(self.scan(), (1, self.want))
            self.assertEqual(os.stat(path).st_uid, 0)

    def test_no_cache_and_default_place(self):
        home = os.path.join(self.tmp.name, "home")
        os.makedirs(home)
        env = dict(os.environ, HOME=home, KEYWARD_CACHE_DIR="")
        env.pop("XDG_CACHE_HOME", None)
        self.assertEqual(self.scan(env=env), (1, self.want))
        self.assertEqual(os.listdir(home), [])
        del env["KEYWARD_CACHE_DIR"]
        self.assertEqual(self.scan(env=env), (1, self.want))
        self.assertEqual(len(os.listdir(os.path.join(home, ".cache", "keyward"))), 1)
        env["XDG_CACHE_HOME"] = os.path.join(self.tmp.name, "xdg")
        self.assertEqual(self.scan(env=env), (1, self.want))
        self.assertEqual(len(os.listdir(os.path.join(self.tmp.name, "xdg", "keyward"))), 1)

    def test_old_databases_are_pruned(self):
        rules = os.path.join(self.tmp.name, "rules.toml")
        for i in range(12):
            with open(rules, "w") as f:
                f.write("[rule]\nid = \"r%d\"\npattern = 'zz%d_[0-9a-f]{32}'\n" % (i, i))
            self.scan("--rules", rules)
        self.assertEqual(len(self.files()), 8)


class GitTest(unittest.TestCase):
    def setUp(self):
        self.repo = GitRepo()

    def tearDown(self):
        self.repo.close()

    def test_gitignore_respected(self):
        key = keyward_key()
        self.repo.write(".gitignore", "secrets.local\n")
        self.repo.write("secrets.local", key + "\n")
        self.repo.write("app/untracked.py", f"K = '{key}'\n")
        r = self.repo.keyward("scan", ".")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, f"app/untracked.py:1:6: posthog-personal-api-key high {mask(key)}\n")

    def test_staged_only(self):
        key = keyward_key()
        self.repo.write("clean.txt", "hello\n")
        self.repo.git("add", "clean.txt")
        self.repo.write("clean.txt", f"hello {key}\n")  # not staged
        r = self.repo.keyward("scan", "--staged")
        self.assertEqual((r.returncode, r.stdout), (0, ""), r.stderr)
        self.repo.git("add", "clean.txt")
        self.repo.write("clean.txt", "hello\n")  # staged version still has it
        r = self.repo.keyward("scan", "--staged")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, f"clean.txt:1:7: posthog-personal-api-key high {mask(key)}\n")

    def test_git_history_finds_removed_key(self):
        key = keyward_key("phs_")
        self.repo.write("README", "intro\n")
        self.repo.git("add", ".")
        self.repo.git("commit", "-qm", "first")
        first = self.repo.git("rev-parse", "HEAD").stdout.strip()
        self.repo.write("config/app.ini", f"[api]\nname = demo\nkey = {key}\n")
        self.repo.git("add", ".")
        self.repo.git("commit", "-qm", "add key")
        leaked = self.repo.git("rev-parse", "HEAD").stdout.strip()
        self.repo.write("config/app.ini", "[api]\nname = demo\nkey = from-env\n")
        self.repo.git("commit", "-qam", "remove key")
        self.assertEqual(self.repo.keyward("scan", ".").returncode, 0)
        r = self.repo.keyward("scan", "--git-history", "--format", "json")
        self.assertEqual(r.returncode, 1, r.stderr)
        findings = json.loads(r.stdout)
        self.assertEqual(len(findings), 1)
        f = findings[0]
        self.assertEqual((f["file"], f["line"], f["column"], f["rule"], f["commit"]),
                         ("config/app.ini", 3, 7, "posthog-project-secret-key", leaked))
        r = self.repo.keyward("scan", "--git-history")
        self.assertIn(f"config/app.ini:3:7: posthog-project-secret-key high {mask(key)} "
                      f"commit={leaked}", r.stdout)
        r = self.repo.keyward("scan", "--git-history", "--since", leaked)
        self.assertEqual((r.returncode, r.stdout), (0, ""), r.stderr)
        r = self.repo.keyward("scan", "--git-history", "--since", first)
        self.assertEqual(r.returncode, 1)

    def elsewhere(self, *args):
        """keyward run from a directory outside the repository."""
        out = tempfile.mkdtemp(prefix="kw_cwd_")
        try:
            return subprocess.run([BIN] + list(args), cwd=out, env=self.repo.env,
                                  capture_output=True, text=True, timeout=120)
        finally:
            shutil.rmtree(out, ignore_errors=True)

    def test_git_history_of_a_repository_path(self):
        key = keyward_key("phs_")
        self.repo.write("README", "intro\n")
        self.repo.git("add", ".")
        self.repo.git("commit", "-qm", "first")
        first = self.repo.git("rev-parse", "HEAD").stdout.strip()
        self.repo.write("config/app.ini", f"[api]\nname = demo\nkey = {key}\n")
        self.repo.git("add", ".")
        self.repo.git("commit", "-qm", "add key")
        leaked = self.repo.git("rev-parse", "HEAD").stdout.strip()
        self.repo.write("config/app.ini", "[api]\nname = demo\nkey = from-env\n")
        self.repo.git("commit", "-qam", "remove key")
        expected = (f"config/app.ini:3:7: posthog-project-secret-key high {mask(key)} "
                    f"commit={leaked}\n")
        r = self.elsewhere("scan", "--git-history", self.repo.dir)
        self.assertEqual((r.returncode, r.stdout), (1, expected), r.stderr)
        # the same answer as from inside, and from a subdirectory of the work tree
        r = self.repo.keyward("scan", "--git-history")
        self.assertEqual(r.stdout, expected)
        r = self.elsewhere("scan", "--git-history", os.path.join(self.repo.dir, "config"))
        self.assertEqual((r.returncode, r.stdout), (1, expected), r.stderr)
        r = self.elsewhere("scan", "--git-history", "--format", "json", self.repo.dir)
        f = json.loads(r.stdout)
        self.assertEqual([(x["file"], x["commit"]) for x in f], [("config/app.ini", leaked)])
        r = self.elsewhere("scan", "--git-history", "--since", leaked, self.repo.dir)
        self.assertEqual((r.returncode, r.stdout), (0, ""), r.stderr)
        r = self.elsewhere("scan", "--git-history", "--since", first, self.repo.dir)
        self.assertEqual(r.returncode, 1, r.stderr)
        # the .git directory itself is a repository git reads
        r = self.elsewhere("scan", "--git-history", os.path.join(self.repo.dir, ".git"))
        self.assertEqual((r.returncode, r.stdout), (1, expected), r.stderr)

    def test_git_history_same_report_for_any_thread_count(self):
        """Commits are dealt to worker threads; the report is in git log order
        whatever their number (also across branches and a merge)."""
        keys = []
        for i in range(12):
            if i == 6:
                self.repo.git("checkout", "-qb", "side")
            key = keyward_key("phx_")
            keys.append(key)
            self.repo.write(f"f{i % 4}.txt", "line\n" * (i % 3 + 1) + f"k{i} = {key}\n")
            self.repo.git("add", ".")
            self.repo.git("commit", "-qm", f"c{i}")
        self.repo.git("checkout", "-q", "-")
        self.repo.write("main.txt", "on main\n")
        self.repo.git("add", ".")
        self.repo.git("commit", "-qm", "main")
        self.repo.git("merge", "-q", "--no-edit", "side")
        outs = set()
        for threads in ("1", "2", "3", "16"):
            r = self.elsewhere("scan", "--git-history", "--threads", threads, "--format", "json",
                               self.repo.dir)
            self.assertEqual(r.returncode, 1, r.stderr)
            outs.add(r.stdout)
        self.assertEqual(len(outs), 1)
        findings = json.loads(outs.pop())
        self.assertEqual(sorted(f["mask"] for f in findings), sorted(mask(k) for k in keys))
        log = self.repo.git("log", "--all", "--format=%H").stdout.split()
        order = [log.index(f["commit"]) for f in findings]
        self.assertEqual(order, sorted(order))

    def test_staged_of_a_repository_path(self):
        key = keyward_key()
        self.repo.write("clean.txt", "hello\n")
        self.repo.git("add", "clean.txt")
        self.repo.write("clean.txt", f"hello {key}\n")  # not staged
        r = self.elsewhere("scan", "--staged", self.repo.dir)
        self.assertEqual((r.returncode, r.stdout), (0, ""), r.stderr)
        self.repo.git("add", "clean.txt")
        r = self.elsewhere("scan", "--staged", self.repo.dir)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stdout, f"clean.txt:1:7: posthog-personal-api-key high {mask(key)}\n")

    def test_repository_path_wins_over_git_dir(self):
        """GIT_DIR (set while git runs a hook) names another repository: the
        path given is the one scanned."""
        key = keyward_key()
        self.repo.write("a.txt", f"k = {key}\n")
        self.repo.git("add", ".")
        self.repo.git("commit", "-qm", "one")
        other = GitRepo()
        try:
            other.write("b.txt", "clean\n")
            other.git("add", ".")
            other.git("commit", "-qm", "clean")
            env = dict(self.repo.env, GIT_DIR=os.path.join(other.dir, ".git"),
                       GIT_WORK_TREE=other.dir, GIT_INDEX_FILE=os.path.join(other.dir, ".git", "index"))
            for mode in ("--git-history", "--staged"):
                if mode == "--staged":
                    self.repo.write("c.txt", f"k = {key}\n")
                    self.repo.git("add", ".")
                r = subprocess.run([BIN, "scan", mode, self.repo.dir], cwd=other.dir, env=env,
                                   capture_output=True, text=True, timeout=120)
                self.assertEqual(r.returncode, 1, (mode, r.stdout, r.stderr))
                self.assertIn(mask(key), r.stdout)
        finally:
            other.close()

    def test_repository_path_errors(self):
        plain = tempfile.mkdtemp(prefix="kw_plain_")
        bare = tempfile.mkdtemp(prefix="kw_bare_")
        try:
            subprocess.run(["git", "init", "-q", "--bare", bare], check=True, env=self.repo.env)
            afile = os.path.join(plain, "f.txt")
            with open(afile, "w") as f:
                f.write("x\n")
            for mode in ("--git-history", "--staged"):
                for args, says in [([plain], "not in a git repository"),
                                   ([afile], "not a directory"),
                                   ([os.path.join(plain, "missing")], "No such file"),
                                   ([self.repo.dir, self.repo.dir], "at most one"),
                                   (["-"], "at most one")]:
                    r = self.elsewhere("scan", mode, *args)
                    self.assertEqual(r.returncode, 2, (mode, args, r.stdout, r.stderr))
                    self.assertIn(says, r.stderr, (mode, args))
                    self.assertEqual(r.stdout, "")
            r = self.elsewhere("scan", "--staged", bare)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("no work tree", r.stderr)
            r = self.elsewhere("scan", "--git-history", bare)  # empty, but a repository
            self.assertEqual(r.returncode, 0, r.stderr)
        finally:
            shutil.rmtree(plain, ignore_errors=True)
            shutil.rmtree(bare, ignore_errors=True)

    def test_hook_blocks_and_allows(self):
        r = self.repo.keyward("hook", "install")
        self.assertEqual(r.returncode, 0, r.stderr)
        hook = os.path.join(self.repo.dir, ".git", "hooks", "pre-commit")
        self.assertTrue(os.access(hook, os.X_OK))
        self.repo.write("ok.txt", "nothing secret\n")
        self.repo.git("add", "ok.txt")
        c = self.repo.git("commit", "-qm", "clean", check=False)
        self.assertEqual(c.returncode, 0, c.stderr)
        key = keyward_key()
        self.repo.write("leak.py", f"KEY = '{key}'\n")
        self.repo.git("add", "leak.py")
        c = self.repo.git("commit", "-qm", "leak", check=False)
        self.assertNotEqual(c.returncode, 0)
        self.assertIn("commit blocked", c.stderr)
        self.assertIn(mask(key), c.stdout + c.stderr)
        self.assertNotIn(key, c.stdout + c.stderr)
        self.assertEqual(self.repo.git("rev-list", "--count", "HEAD").stdout.strip(), "1")
        # keyward:allow lets a known false positive through
        self.repo.write("leak.py", f"KEY = '{key}'  # keyward:allow\n")
        self.repo.git("add", "leak.py")
        self.assertEqual(self.repo.git("commit", "-qm", "allowed", check=False).returncode, 0)
        r = self.repo.keyward("hook", "uninstall")
        self.assertEqual(r.returncode, 0)
        self.assertFalse(os.path.exists(hook))

    def test_hook_keeps_foreign_hook(self):
        hook = os.path.join(self.repo.dir, ".git", "hooks", "pre-commit")
        os.makedirs(os.path.dirname(hook), exist_ok=True)
        with open(hook, "w") as f:
            f.write("#!/bin/sh\necho theirs\n")
        r = self.repo.keyward("hook", "install")
        self.assertNotEqual(r.returncode, 0)
        with open(hook) as f:
            self.assertIn("theirs", f.read())
        self.assertNotEqual(self.repo.keyward("hook", "uninstall").returncode, 0)
        self.assertTrue(os.path.exists(hook))
        r = self.repo.keyward("hook", "install", "--force")
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(hook) as f:
            self.assertIn("keyward-hook", f.read())
        with open(hook + ".keyward-backup") as f:
            self.assertIn("theirs", f.read())
        self.assertEqual(self.repo.keyward("hook", "install").returncode, 0)  # re-install


class RedactTest(unittest.TestCase):
    def test_redacts_and_keeps_other_bytes(self):
        k1, k2 = keyward_key(), keyward_key("phc_")
        aws = "AKIA" + "".join(secrets.choice(BASE62[:36]) for _ in range(16))
        text = (f"2024-01-01 GET /flags?token={k2} 200\n\tplain \xe9 line\r\n"
                f"auth: Bearer {k1}\nid={aws}\nno newline at end").encode("latin-1")
        r = run(["redact"], stdin=text)
        self.assertEqual(r.returncode, 0, r.stderr)
        expected = (f"2024-01-01 GET /flags?token={mask(k2)} 200\n\tplain \xe9 line\r\n"
                    f"auth: Bearer {mask(k1)}\nid={mask(aws)}\nno newline at end").encode("latin-1")
        self.assertEqual(r.stdout, expected)

    def test_large_input(self):
        key = keyward_key()
        line = b"some ordinary log line with numbers 12345 and words\n"
        blob = line * 50000 + f"leak {key}\n".encode() + line * 50000
        r = run(["redact"], stdin=blob)
        self.assertEqual(r.returncode, 0)
        self.assertEqual(len(r.stdout), len(blob) - len(key) + len(mask(key)))
        self.assertNotIn(key.encode(), r.stdout)

    def test_line_by_line_pipe(self):
        key = keyward_key()
        p = subprocess.Popen([BIN, "redact"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            p.stdin.write(f"first {key}\n".encode())
            p.stdin.flush()
            self.assertEqual(p.stdout.readline(), f"first {mask(key)}\n".encode())
            p.stdin.write(b"second\n")
            p.stdin.flush()
            self.assertEqual(p.stdout.readline(), b"second\n")
        finally:
            p.stdin.close()
            p.wait(timeout=10)
        self.assertEqual(p.returncode, 0)


# Secrets of every kind the scanner knows, for the escape tests.  Random
# parts avoid what the placeholder filter rightly skips ("1234", "abcd",
# runs of one char) except where a kind must ignore it (Slack ids).
PLACEHOLDER = re.compile(r"(?i)1234|abcd|xxxx|example|(.)\1{4}")


def rand(n, alphabet=BASE62, prefix="", rng=secrets):
    """n random chars; with the prefix they will follow, so that no
    placeholder word forms across it either ("AKIA" + "BCD…" holds
    "ABCD": about 1 AWS id in 33,000, one failed run in ~20)."""
    while True:
        s = "".join(rng.choice(alphabet) for _ in range(n))
        if not PLACEHOLDER.search(prefix + s) and len(set(s)) > n // 3:
            return s


# Provider prefixes made of base62 chars only: the generic rule leaves a
# value that starts with one to that provider's rule (docs/scanner.md).
PROVIDER_PREFIXES = ("AKIA", "ASIA", "ABIA", "ACCA", "xox", "eyJ", "AIza", "LTAI", "EAAA",
                     "ATATT", "ATBB", "AKCp", "oy2", "GR1348941")


def rand_value(n, alphabet=BASE62, rng=secrets):
    """A generated secret for an assignment rule: as random as a real key,
    which has a digit (a 28-char letters-only value can read as a type name,
    which the generic rule leaves alone by design, 1 in ~10^4) and does not
    start with another rule's prefix (eyJ is a JWT's, xox Slack's)."""
    while True:
        s = rand(n, alphabet, rng=rng)
        if any(c.isdigit() for c in s) and not s.startswith(PROVIDER_PREFIXES):
            return s


def secret_kinds(rng):
    """(text, secret) pairs: the secret is what must never be in the output.
    Values come from rng: the escape tests use a fixed seed, so that they
    test escapes and chunking and cannot fail on the rare random value
    (about 1 in 50,000) that the generic rule reads as words; the rule's
    recall on random values is measured on its own in the unit tests."""
    out = [(k, k) for k in (keyward_key("phx_", rng), keyward_key("phs_", rng), keyward_key("phc_", rng))]
    out.append(("phx_" + rand(43, rng=rng),) * 2)
    out.append(("AKIA" + rand(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", "AKIA", rng),) * 2)  # base32
    out.append((github_token(rng=rng),) * 2)
    out.append((f"github_pat_{rand(22, rng=rng)}_{rand(59, rng=rng)}",) * 2)
    out.append((f"xoxb-1234{rng.randrange(10**4):04d}-100000{rng.randrange(10**5):05d}-"
                f"{rand(24, rng=rng)}",) * 2)
    out.append(("sk_live_" + rand(24, rng=rng),) * 2)
    out.append(("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI5ODc2In0." + rand(43, rng=rng),) * 2)
    value = rand_value(28, rng=rng)
    out.append(("api_key=" + value, value))
    value = rand_value(24, rng=rng)
    out.append(('{\\"password\\": \\"' + value + '\\"}', value))
    value = rand_value(40, BASE62 + "+/", rng)
    out.append(("AWS_SECRET_ACCESS_KEY=" + value, value))
    return out


ESCAPES = ["", "\\n", "\\t", "\\r", '\\"', "\\\\", "\\/", "\\u003d", "\\u0022",
           "%3D", "%2F", "%22", "%20", "%3A", "%26", "%253D", '"', "'", "=", ":", " ", "("]
LEADS = ["", "msg=", '{"log":"', "GET /cb?next="]
TRAILS = ["", "\\n", '\\"}', "%26x=1", " end", "\\nnext.step=1"]


def escape_log(seed=2026):
    """Lines (text, secret or None, reported here): every kind after every
    escape, with multi-line private keys (reported at their BEGIN line,
    masked on their body lines) and clean lines in between."""
    rng = random.Random(seed)
    lines = []
    for lead in LEADS:
        for esc in ESCAPES:
            for trail in TRAILS:
                for text, secret in secret_kinds(rng):
                    lines.append((lead + esc + text + trail, secret, True))
            lines.append(("plain line with phx_token_lookup_helper() and %3Dvalue", None, False))
            lines.append(("-----BEGIN RSA PRIVATE KEY-----", None, True))
            lines.extend((b, b, False) for b in [rand(64, BASE62 + "+/", rng=rng) for _ in range(4)])
            lines.append(("-----END RSA PRIVATE KEY-----", None, False))
    return lines


class RedactEscapesTest(unittest.TestCase):
    """A secret right after an escape or encoding (\\n, \\u003d, %3D, ...)
    is found by scan and masked by redact, trickled through a pipe in random
    chunks; the output keeps one line per input line."""

    def test_scan_finds_every_secret(self):
        lines = escape_log()
        data = "".join(text + "\n" for text, _, _ in lines).encode()
        r = run(["scan", "--format", "json", "-"], stdin=data)
        self.assertEqual(r.returncode, 1, r.stderr)
        found = {f["line"] for f in json.loads(r.stdout)}
        missed = [text for n, (text, _, reported) in enumerate(lines, 1)
                  if reported and n not in found]
        self.assertEqual(missed, [])
        self.assertEqual(len(found), sum(1 for _, _, reported in lines if reported))

    def test_trickled_redact_leaks_nothing_and_keeps_lines(self):
        lines = escape_log()
        data = "".join(text + "\n" for text, _, _ in lines).encode()
        p = subprocess.Popen([BIN, "redact"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        chunks = []
        reader = threading.Thread(target=lambda: chunks.append(p.stdout.read()))
        reader.start()
        pos, rng = 0, random.Random(13)
        try:
            while pos < len(data):
                n = rng.choice((1, 2, 3, 7, 31, 200, 4096))
                p.stdin.write(data[pos:pos + n])
                p.stdin.flush()
                pos += n
                if rng.random() < 0.001:
                    time.sleep(0.01)  # let the redactor see a partial line alone
        finally:
            p.stdin.close()
            reader.join(timeout=120)
            p.wait(timeout=10)
            p.stdout.close()
        self.assertEqual(p.returncode, 0)
        out = chunks[0].decode().split("\n")
        self.assertEqual(out[-1], "")
        self.assertEqual(len(out) - 1, len(lines))
        leaked = [got for got, (_, secret, _) in zip(out, lines)
                  if secret and secret[len(secret) // 2 - 4:len(secret) // 2 + 4] in got]
        self.assertEqual(leaked, [])


if __name__ == "__main__":
    if not os.path.exists(BIN) and shutil.which(BIN) is None:
        sys.exit(f"KEYWARD_BIN not found: {BIN}")
    unittest.main(verbosity=2)
