"""test_leak_report.py — POST /api/secret_scanning/report/ and /verify/.

The report (GitHub's secret-scanning partner format) needs no credential:
a live phx_ or phs_ key in it — or a rolled key's previous value still in
its grace window — is revoked at once and the activity log says where it
leaked; a current phc_ token is public, so nothing is written for it;
anything else is a false positive, and the token is never echoed.  Being
unauthenticated, the endpoint is rate-limited per client address, keeps what
was costly to learn about a token (never in place of a lookup: a key may be
imported after a report of it), and names owners only to signed reporters.  /verify/ answers the same
question without revoking, for personal-key holders only.  With
--leak-report-keys the server takes signed reports only (ECDSA P-256 over
the raw body, made here with the openssl command).
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kwtest  # noqa: E402

REPORT = "/api/secret_scanning/report/"
VERIFY = "/api/secret_scanning/verify/"


def sha(token):
    return hashlib.sha256(token.encode()).hexdigest()


class LeakReport(kwtest.KWTestCase):
    def setup_db(self):
        self.env.tenants()

    def make_psk(self):
        st, _, body = self.srv.post("/api/projects/1/project_secret_api_keys/",
                                    {"label": "sdk", "scopes": ["feature_flag:read"]}, key=self.key)
        self.assertEqual(st, 201, body)
        return body["value"]

    def flag_defs(self, phs):
        return self.srv.get("/flags/definitions?token=" + self.token, key=phs)

    def test_live_personal_key_is_revoked_at_once(self):
        leaked = self.env.key_c
        self.assertStatus(self.srv.get("/api/users/@me/", key=leaked), 200)
        item = {"token": leaked, "type": "posthog_personal_api_key",
                "url": "https://github.com/acme/app/blob/abc/config.py", "source": "content"}
        st, _, body = self.srv.post(REPORT, [item])
        self.assertEqual(st, 200, body)
        # no owner id for an unauthenticated (unsigned) reporter
        self.assertEqual(body, [{"token_hash": sha(leaked), "token_type": "posthog_personal_api_key",
                                 "label": "true_positive", "action": "revoked"}])
        self.assertNotIn(leaked, self.srv.last_text)
        # stops working at once (no wait: this server made the change)
        self.assertProblem(self.srv.get("/api/users/@me/", key=leaked), 401, "authentication_failed")
        rows = self.env.sql("SELECT project_id, user_id, detail, ip_address FROM activity_log "
                            "WHERE activity='revoked' AND scope='PersonalAPIKey'")
        self.assertEqual([r[0] for r in rows], [1])  # every project C reaches: org A's
        detail = json.loads(rows[0][2])
        self.assertEqual(detail["context"], {"reason": "leaked", "url": item["url"],
                                             "source": "content", "type": item["type"]})
        self.assertIsNone(rows[0][1])  # no acting user
        self.assertEqual(rows[0][3], "127.0.0.1")
        self.assertNotIn(leaked, self.env.db_bytes().decode("latin-1"))
        # the owner sees it through the API
        st, _, log = self.srv.get("/api/projects/1/activity_log/?scope=PersonalAPIKey", key=self.key)
        self.assertEqual(st, 200)
        self.assertEqual(log["results"][0]["activity"], "revoked")
        # reported again: the same answer, and nothing more written
        st, _, again = self.srv.post(REPORT, [item])
        self.assertEqual((st, again), (200, body))
        self.assertEqual(len(self.env.sql("SELECT id FROM activity_log WHERE activity='revoked'")),
                         1)

    def test_secret_key_revoked_and_project_token_left_alone(self):
        phs = self.make_psk()
        self.assertStatus(self.flag_defs(phs), 200)
        st, _, body = self.srv.post(REPORT, [
            {"token": phs, "type": "posthog_project_secret_key", "url": "https://gist.github.com/x",
             "source": "gist"},
            {"token": self.token, "type": "posthog_project_token", "url": "https://x", "source": "content"},
        ])
        self.assertEqual(st, 200, body)
        # the public token is no secret: GitHub's "false_positive", keyward's "public"
        self.assertEqual([(b["label"], b["action"]) for b in body],
                         [("true_positive", "revoked"), ("false_positive", "public")])
        self.assertTrue(all("owner" not in b for b in body), body)
        self.assertProblem(self.flag_defs(phs), 401, None, "Secret API token is invalid.")
        # the public token is not reset: apps keep working; an admin decides
        st, _, proj = self.srv.get("/api/projects/1/", key=self.key)
        self.assertEqual(proj["api_token"], self.token)
        acts = self.env.sql("SELECT activity, scope, item_id, detail FROM activity_log "
                            "WHERE activity IN ('revoked','leaked') ORDER BY created_at")
        self.assertEqual([(a[0], a[1]) for a in acts], [("revoked", "ProjectSecretAPIKey")])
        self.assertEqual(json.loads(acts[0][3])["context"]["url"], "https://gist.github.com/x")

    def test_unknown_tokens_are_false_positives_without_echo(self):
        unknown = kwtest.make_key("phx_")
        bad = kwtest.bad_checksum(self.env.key_b)
        items = [{"token": t, "type": "x", "url": "u", "source": "content"}
                 for t in (unknown, bad, "hello", kwtest.legacy_key(), kwtest.make_key("phs_"),
                           kwtest.make_key("phc_"))]
        st, _, body = self.srv.post(REPORT, items)
        self.assertEqual(st, 200, body)
        self.assertEqual([b["label"] for b in body], ["false_positive"] * len(items))
        self.assertEqual([b["token_hash"] for b in body], [sha(i["token"]) for i in items])
        for i in items:
            self.assertNotIn(i["token"], self.srv.last_text)
        # B's key, reported with a broken checksum, is untouched
        self.assertStatus(self.srv.get("/api/users/@me/", key=self.env.key_b), 200)
        self.assertEqual(self.env.sql("SELECT count(*) FROM activity_log WHERE activity "
                                      "IN ('revoked','leaked')")[0][0], 0)

    def test_no_credential_needed_and_bad_shapes(self):
        # a credential is ignored, not required
        st, _, body = self.srv.post(REPORT, [], key="phx_garbage")
        self.assertEqual((st, body), (200, []))
        self.assertProblem(self.srv.post(REPORT, {"token": "x"}), 400, "not_a_list")
        self.assertProblem(self.srv.request("POST", REPORT), 400, "not_a_list")
        self.assertProblem(self.srv.post(REPORT, [{"type": "x"}]), 400, "required", attr="token")
        self.assertProblem(self.srv.post(REPORT, ["phx_abc"]), 400, "required")
        self.assertProblem(self.srv.post(REPORT, [{"token": "a", "url": 5}]), 400, "invalid")
        self.assertProblem(self.srv.post(REPORT, [{"token": "a", "url": "u" * 3000}]), 400, "invalid")
        # limits are characters, as the message says: 200 "é" (400 bytes) fit, 201 do not
        st, _, body = self.srv.post(REPORT, [{"token": "a", "type": "\u00e9" * 200}])
        self.assertEqual(st, 200, body)
        self.assertProblem(self.srv.post(REPORT, [{"token": "a", "type": "\u00e9" * 201}]), 400,
                           "invalid")
        many = [{"token": "t%d" % i} for i in range(1001)]
        self.assertProblem(self.srv.post(REPORT, many), 400, "max_length")
        st, _, body = self.srv.post(REPORT, many[:1000])
        self.assertEqual((st, len(body)), (200, 1000))
        self.assertProblem(self.srv.get(REPORT), 405, "method_not_allowed")

    def test_verify_needs_a_personal_key_and_revokes_nothing(self):
        phs = self.make_psk()
        items = [{"token": self.env.key_c, "type": "a"}, {"token": phs, "type": "b"},
                 {"token": self.token, "type": "c"}, {"token": kwtest.make_key(), "type": "d"}]
        self.assertProblem(self.srv.post(VERIFY, items), 401, "not_authenticated")
        self.assertProblem(self.srv.post(VERIFY, items, key=phs), 403, "permission_denied")
        self.assertProblem(self.srv.post(VERIFY, items, key=self.token), 401, "authentication_failed")
        st, _, body = self.srv.post(VERIFY, items, key=self.env.key_b)  # any personal key
        self.assertEqual(st, 200, body)
        self.assertEqual(body, [
            {"token_hash": sha(self.env.key_c), "token_type": "a", "live": True},
            {"token_hash": sha(phs), "token_type": "b", "live": True},
            {"token_hash": sha(self.token), "token_type": "c", "live": True},
            {"token_hash": sha(items[3]["token"]), "token_type": "d", "live": False}])
        self.assertStatus(self.srv.get("/api/users/@me/", key=self.env.key_c), 200)
        self.assertStatus(self.flag_defs(phs), 200)
        self.assertEqual(self.env.sql("SELECT count(*) FROM activity_log WHERE activity "
                                      "IN ('revoked','leaked')")[0][0], 0)
        # a deactivated user's key is not live
        self.env.sql("UPDATE users SET is_active=0 WHERE id=?", (self.env.user_c,))
        st, _, body = self.srv.post(VERIFY, items[:1], key=self.key)
        self.assertFalse(body[0]["live"])

    def test_verify_says_an_expired_key_is_not_live(self):
        # Check mode answers "live" only for what would verify: a key past
        # its expires_at is refused with key_expired, so it is not live.
        st, _, pk = self.srv.post("/api/personal_api_keys/", {"label": "soon", "scopes": ["*"]},
                                  key=self.key)
        self.assertEqual(st, 201, pk)
        psk = self.assertStatus(self.srv.post("/api/projects/1/project_secret_api_keys/",
                                              {"label": "soon", "scopes": ["feature_flag:read"]},
                                              key=self.key), 201)
        phs = psk["value"]
        past = "2001-01-01T00:00:00Z"
        self.assertStatus(self.srv.patch("/api/personal_api_keys/%s/" % pk["id"],
                                         {"expires_at": past}, key=self.key), 200)
        self.assertStatus(self.srv.patch("/api/projects/1/project_secret_api_keys/%s/" % psk["id"],
                                         {"expires_at": past}, key=self.key), 200)
        self.assertEqual(self.srv.get("/api/users/@me/", key=pk["value"])[0], 401)
        self.assertEqual(self.flag_defs(phs)[0], 401)
        st, _, body = self.srv.post(VERIFY, [{"token": pk["value"]}, {"token": phs}], key=self.key)
        self.assertEqual(st, 200, body)
        self.assertEqual([r["live"] for r in body], [False, False])


    # ---- a rolled key's previous value (still working) is a leak too ----

    def roll_with_grace(self, path):
        st, _, created = self.srv.post(path, {"label": "rolled", "scopes": ["*"]}
                                       if "personal" in path else
                                       {"label": "rolled", "scopes": ["feature_flag:read"]},
                                       key=self.key)
        self.assertEqual(st, 201, created)
        st, _, rolled = self.srv.post(path + created["id"] + "/roll/",
                                      {"expire_previous_in_seconds": 3600}, key=self.key)
        self.assertEqual(st, 200, rolled)
        return created["id"], created["value"], rolled["value"]

    def check_previous_value_report(self, path, works, scope):
        kid, old, new = self.roll_with_grace(path)
        self.assertStatus(works(old), 200)  # in its grace window: it works (and is cached)
        self.assertStatus(works(new), 200)
        st, _, live = self.srv.post(VERIFY, [{"token": old}], key=self.env.key_b)
        self.assertEqual((st, live[0]["live"]), (200, True), live)
        st, _, body = self.srv.post(REPORT, [{"token": old, "type": "t", "url": "https://leak.example/1",
                                              "source": "content"}])
        self.assertEqual(st, 200, body)
        self.assertEqual((body[0]["label"], body[0]["action"]), ("true_positive", "revoked"))
        # refused at once, cache or not; the value that did not leak keeps working
        self.assertEqual(works(old)[0], 401)
        self.assertStatus(works(new), 200)
        st, _, live = self.srv.post(VERIFY, [{"token": old}, {"token": new}], key=self.env.key_b)
        self.assertEqual([i["live"] for i in live], [False, True])
        rows = self.env.sql("SELECT detail FROM activity_log WHERE activity='revoked' AND scope=?",
                            (scope,))
        self.assertTrue(rows)  # a personal key's entry goes to every project it reaches
        for row in rows:
            ctx = json.loads(row[0])["context"]
            self.assertEqual((ctx["url"], ctx["value"]), ("https://leak.example/1", "previous"))
        self.assertEqual(self.env.sql("SELECT count(*) FROM rolled_key_values")[0][0], 0)
        self.assertNotIn(old, self.env.db_bytes().decode("latin-1"))
        return kid

    def test_previous_personal_value_in_grace_is_revoked(self):
        self.check_previous_value_report(
            "/api/personal_api_keys/", lambda k: self.srv.get("/api/users/@me/", key=k),
            "PersonalAPIKey")

    def test_previous_secret_value_in_grace_is_revoked(self):
        self.check_previous_value_report(
            "/api/projects/1/project_secret_api_keys/", self.flag_defs, "ProjectSecretAPIKey")

    # ---- what an unauthenticated caller can make the server do ----

    def test_public_token_writes_nothing_and_names_no_one(self):
        before = self.env.sql("SELECT count(*) FROM activity_log")[0][0]
        for _ in range(3):
            st, _, body = self.srv.post(REPORT, [{"token": self.token, "url": "https://attacker.example/x"}])
            self.assertEqual(st, 200, body)
            self.assertEqual(body, [{"token_hash": sha(self.token), "token_type": None,
                                     "label": "false_positive", "action": "public"}])
        self.assertEqual(self.env.sql("SELECT count(*) FROM activity_log")[0][0], before)
        self.assertNotIn("attacker.example", self.env.db_bytes().decode("latin-1"))

    def test_rate_limited_per_address(self):
        item = [{"token": kwtest.make_key("phx_")}]
        for i in range(30):
            st, _, body = self.srv.post(REPORT, item)
            self.assertEqual(st, 200, (i, body))
        st, hdrs, body = self.srv.post(REPORT, item)
        self.assertProblem((st, hdrs, body), 429, "throttled")
        self.assertGreaterEqual(int(hdrs["Retry-After"]), 1)
        # another address is not affected, and keys keep working for everyone
        st, _, body = self.srv.request("POST", REPORT, body=item, source="127.0.0.2")
        self.assertEqual(st, 200, body)
        self.assertStatus(self.srv.get("/api/users/@me/", key=self.key), 200)

    def test_repeated_reports_are_deduplicated(self):
        phs = self.make_psk()
        items = [{"token": phs, "url": "https://a"}, {"token": kwtest.make_key("phx_")}]
        st, _, first = self.srv.post(REPORT, items)
        self.assertEqual(st, 200, first)
        for _ in range(3):
            st, _, again = self.srv.post(REPORT, items)
            self.assertEqual((st, again), (200, first))
        self.assertEqual(self.env.sql("SELECT count(*) FROM activity_log WHERE activity='revoked'")[0][0],
                         1)


    # ---- a key that appears after a report: no earlier answer stands for it ----

    def report_one(self, token, source=None):
        st, _, body = self.srv.request("POST", REPORT, body=[{"token": token, "url": "https://x"}],
                                       source=source)
        self.assertEqual(st, 200, body)
        return (body[0]["label"], body[0]["action"])

    def test_key_imported_after_a_report_is_revoked_by_the_next(self):
        # Reported before it exists (say a leaked PostHog key, reported by
        # someone who saw it before the installation imported it): unknown.
        # Imported: it works.  Reported again within the hour: the lookup
        # finds it, so it is revoked, not answered "unknown" from memory.
        for token in (kwtest.legacy_key(41), kwtest.make_key("phx_")):
            self.assertEqual(self.report_one(token), ("false_positive", "none"))
            self.env.add_legacy_key(self.env.user_a, token, kwtest.sha256_secure(token))
            self.assertStatus(self.srv.get("/api/users/@me/", key=token), 200)
            self.assertEqual(self.report_one(token), ("true_positive", "revoked"))
            self.assertProblem(self.srv.get("/api/users/@me/", key=token), 401,
                               "authentication_failed")

    def test_revoked_key_imported_again_is_revoked_again(self):
        token = kwtest.legacy_key(41)
        kid = self.env.add_legacy_key(self.env.user_a, token, kwtest.sha256_secure(token))
        self.assertEqual(self.report_one(token), ("true_positive", "revoked"))
        # the same answer again while it is gone, with nothing written
        self.assertEqual(self.report_one(token), ("true_positive", "revoked"))
        entries = self.env.sql("SELECT count(*) FROM activity_log WHERE activity='revoked'")[0][0]
        again = self.env.add_legacy_key(self.env.user_a, token, kwtest.sha256_secure(token))
        self.assertStatus(self.srv.get("/api/users/@me/", key=token), 200)
        self.assertEqual(self.report_one(token), ("true_positive", "revoked"))
        self.assertProblem(self.srv.get("/api/users/@me/", key=token), 401, "authentication_failed")
        self.assertEqual(self.env.sql("SELECT count(*) FROM personal_api_keys WHERE id IN (?, ?)",
                                      (kid, again))[0][0], 0)
        self.assertGreater(self.env.sql("SELECT count(*) FROM activity_log "
                                        "WHERE activity='revoked'")[0][0], entries)


class LeakReportLegacyForms(kwtest.KWTestCase):
    """Imported PostHog keys stored as pbkdf2: finding a legacy-length
    token among them costs two PBKDF2 runs under a small per-address
    budget.  The forms a report computed are kept, so a token reported
    again is looked up by them without the budget — and is found when it
    was imported in between."""

    def setup_db(self):
        other = kwtest.legacy_key(45)  # some pbkdf2 row exists, so the forms are computed
        self.env.add_legacy_key(self.env.user_a, other, kwtest.pbkdf2_secure(other, 260000))

    def report(self, tokens, source):
        return self.srv.request("POST", REPORT, body=[{"token": t} for t in tokens], source=source)

    def test_pbkdf2_import_after_a_report_is_found_by_the_kept_forms(self):
        token, spare = kwtest.legacy_key(41), [kwtest.legacy_key(42), kwtest.legacy_key(43)]
        st, _, body = self.report([token] + spare, "127.0.0.7")  # the address's burst of 3
        self.assertEqual(st, 200, body)
        self.assertEqual([b["label"] for b in body], ["false_positive"] * 3)
        st, hdrs, body = self.report([kwtest.legacy_key(44)], "127.0.0.7")
        self.assertProblem((st, hdrs, body), 429, "throttled")  # its budget is spent now
        self.env.add_legacy_key(self.env.user_a, token, kwtest.pbkdf2_secure(token, 390000))
        # no PBKDF2 run is needed (the budget would refuse one): the kept
        # forms find the imported row, and it is revoked
        st, _, body = self.report([token], "127.0.0.7")
        self.assertEqual(st, 200, body)
        self.assertEqual((body[0]["label"], body[0]["action"]), ("true_positive", "revoked"))
        self.assertProblem(self.srv.get("/api/users/@me/", key=token, source="127.0.0.8"), 401,
                           "authentication_failed")
        # and a retried report makes progress: the tokens already checked
        # cost nothing, so the spent budget refuses only new ones
        st, _, body = self.report(spare, "127.0.0.7")
        self.assertEqual((st, [b["label"] for b in body]), (200, ["false_positive"] * 2))

    def test_a_spent_budget_still_revokes_the_keys_that_need_none(self):
        # Four legacy-length tokens spend the address's PBKDF2 burst (3) and
        # the report is answered 429 to be sent again for the fourth; a
        # current-format key listed after them costs no PBKDF2 and is
        # revoked at once all the same.
        st, _, made = self.srv.post("/api/personal_api_keys/", {"label": "leaks", "scopes": ["*"]},
                                    key=self.key)
        self.assertEqual(st, 201, made)
        live = made["value"]
        tokens = [kwtest.legacy_key(41 + i) for i in range(4)] + [live]
        st, hdrs, body = self.report(tokens, "127.0.0.9")
        self.assertProblem((st, hdrs, body), 429, "throttled")
        self.assertGreaterEqual(int(hdrs["Retry-After"]), 1)
        self.assertProblem(self.srv.get("/api/users/@me/", key=live), 401, "authentication_failed")

    def test_a_check_handed_to_the_slow_thread_counts_once_against_the_key(self):
        # A /verify/ list with a legacy-length token is processed on the
        # slow thread and the request dispatched again: the caller's key
        # is rate-limited once per request, not once per pass.
        st, _, made = self.srv.post("/api/personal_api_keys/", {
            "label": "limited", "scopes": ["*"], "rate_limit_per_minute": 2}, key=self.key)
        self.assertEqual(st, 201, made)
        items = [{"token": kwtest.legacy_key(41)}]
        for _ in range(2):
            st, _, body = self.srv.request("POST", VERIFY, key=made["value"], body=items,
                                           source="127.0.0.10")
            self.assertEqual(st, 200, body)
            self.assertEqual(body[0]["live"], False)
        st, hdrs, body = self.srv.request("POST", VERIFY, key=made["value"], body=items,
                                          source="127.0.0.10")
        self.assertProblem((st, hdrs, body), 429, "throttled")


@unittest.skipUnless(shutil.which("openssl"), "the openssl command is needed to sign reports")
class SignedReports(kwtest.KWTestCase):
    serve_in_setup = False

    def openssl(self, *args, data=None):
        return subprocess.run(["openssl"] + list(args), input=data, capture_output=True, check=True).stdout

    def setUp(self):
        super().setUp()
        d = self.env.dir
        self.priv = os.path.join(d, "k.pem")
        self.openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", self.priv)
        pub = self.openssl("ec", "-in", self.priv, "-pubout").decode()
        self.keys = os.path.join(d, "keys.pem")
        with open(self.keys, "w") as f:
            f.write("# the reporter's keys\nkey_identifier: k1\n" + pub)
        self.srv = kwtest.Server(self.env.db, d, ["--leak-report-keys", self.keys])
        self.addCleanup(self._stop_server, self.srv)

    def sign(self, raw):
        sig = self.openssl("dgst", "-sha256", "-sign", self.priv, data=raw)
        import base64
        return base64.b64encode(sig).decode()

    def test_signed_only(self):
        leaked = self.key
        raw = json.dumps([{"token": leaked, "type": "t", "url": "https://x", "source": "content"}]).encode()
        self.assertProblem(self.srv.request("POST", REPORT, raw=raw), 401, "not_authenticated")
        bad = {"Github-Public-Key-Identifier": "k1", "Github-Public-Key-Signature": self.sign(raw + b" ")}
        self.assertProblem(self.srv.request("POST", REPORT, raw=raw, headers=bad), 401,
                           "authentication_failed")
        other = {"Github-Public-Key-Identifier": "k2", "Github-Public-Key-Signature": self.sign(raw)}
        self.assertProblem(self.srv.request("POST", REPORT, raw=raw, headers=other), 401,
                           "authentication_failed")
        self.assertStatus(self.srv.get("/api/users/@me/", key=leaked), 200)  # nothing revoked yet
        good = {"Github-Public-Key-Identifier": "k1", "Github-Public-Key-Signature": self.sign(raw)}
        st, _, body = self.srv.request("POST", REPORT, raw=raw, headers=good)
        self.assertEqual(st, 200, body)
        self.assertEqual(body[0]["label"], "true_positive")
        # a verified reporter learns who held it
        self.assertEqual(body[0]["owner"], {"type": "user", "id": self.env.user_a})
        self.assertProblem(self.srv.get("/api/users/@me/", key=leaked), 401, "authentication_failed")

    def test_bad_key_file_refused_at_start(self):
        with open(self.keys, "w") as f:
            f.write("no keys here\n")
        proc = kwtest.run_cli("serve", "--listen", "127.0.0.1:0", "--db", self.env.db,
                              "--leak-report-keys", self.keys, timeout=10)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("no public key", proc.stderr)


if __name__ == "__main__":
    kwtest.main()
