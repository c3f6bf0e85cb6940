"""test_scan_verify.py — `keyward scan --verify URL` against a real server.

Found keyward-format keys (checksum holds) are sent to
/api/secret_scanning/verify/ with a personal key; the JSON output gains
"live" for those findings only, the text output marks live ones "(live)",
and nothing is revoked.  Plain http:// to another host is refused (the keys
themselves travel), and so is a run without a personal key.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kwtest  # noqa: E402


class ScanVerify(kwtest.KWTestCase):
    def setUp(self):
        super().setUp()
        st, _, psk = self.srv.post("/api/projects/1/project_secret_api_keys/",
                                   {"label": "sdk", "scopes": ["feature_flag:read"]}, key=self.key)
        self.assertEqual(st, 201)
        self.phs = psk["value"]
        self.dead = kwtest.make_key("phx_")
        self.legacy = kwtest.legacy_key(45)
        self.tree = os.path.join(self.env.dir, "src")
        os.makedirs(self.tree)
        with open(os.path.join(self.tree, "config.py"), "w") as f:
            f.write('PERSONAL = "%s"\nOLD = "%s"\nSECRET = "%s"\n' % (self.key, self.dead, self.phs))
        with open(os.path.join(self.tree, "web.js"), "w") as f:
            f.write('posthog.init("%s")\nconst legacy = "%s"\n' % (self.token, self.legacy))
        self.url = "http://127.0.0.1:%d" % self.srv.port

    def scan(self, *args, key=None):
        env = dict(os.environ)
        env.pop("KEYWARD_API_KEY", None)
        if key:
            env["KEYWARD_API_KEY"] = key
        return kwtest.run_cli("scan", "--no-ignore", *args, self.tree, env=env)

    def test_json_and_text_say_which_keys_are_live(self):
        proc = self.scan("--format", "json", "--verify", self.url + "/", key=self.key)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        findings = json.loads(proc.stdout)
        by_mask = {f["mask"]: f for f in findings}
        self.assertIs(by_mask[kwtest.mask(self.key)]["live"], True)
        self.assertIs(by_mask[kwtest.mask(self.phs)]["live"], True)
        self.assertIs(by_mask[kwtest.mask(self.token)]["live"], True)
        self.assertIs(by_mask[kwtest.mask(self.dead)]["live"], False)
        self.assertNotIn("live", by_mask[kwtest.mask(self.legacy)])  # no checksum: not asked
        for secret in (self.key, self.phs, self.dead, self.legacy):
            self.assertNotIn(secret, proc.stdout + proc.stderr)
        # text: "(live)" on live lines only; --verify-key works too
        proc = self.scan("--verify", self.url, "--verify-key", self.key)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        lines = proc.stdout.splitlines()
        live = [l for l in lines if l.endswith(" (live)")]
        self.assertEqual(len(live), 3, proc.stdout)
        self.assertTrue(any(kwtest.mask(self.dead) in l and "(live)" not in l for l in lines))
        # nothing was revoked
        self.assertStatus(self.srv.get("/api/users/@me/", key=self.key), 200)
        self.assertStatus(self.srv.get("/flags/definitions?token=" + self.token, key=self.phs), 200)
        # SARIF carries it as a result property
        proc = self.scan("--format", "sarif", "--verify", self.url, key=self.key)
        results = json.loads(proc.stdout)["runs"][0]["results"]
        self.assertEqual(sum(1 for r in results if r.get("properties", {}).get("live")), 3)

    def test_refusals(self):
        proc = self.scan("--verify", self.url)
        self.assertEqual(proc.returncode, 2)
        self.assertIn("personal API key", proc.stderr)
        proc = self.scan("--verify", "http://example.com", key=self.key)
        self.assertEqual(proc.returncode, 2)
        self.assertIn("https://", proc.stderr)
        proc = self.scan("--verify", self.url, key=kwtest.make_key("phx_"))
        self.assertEqual(proc.returncode, 2)
        self.assertIn("401", proc.stderr)
        proc = self.scan("--verify", self.url, key=self.phs)
        self.assertEqual(proc.returncode, 2)
        self.assertIn("403", proc.stderr)
        # unreachable server: an error, not a clean report
        proc = self.scan("--verify", "http://127.0.0.1:1", key=self.key)
        self.assertEqual(proc.returncode, 2)
        self.assertEqual(proc.stdout, "")


if __name__ == "__main__":
    kwtest.main()
