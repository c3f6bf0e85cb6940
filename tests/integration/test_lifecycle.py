"""test_lifecycle.py — key lifecycle beyond PostHog.

Expiry (401 key_expired; roll keeps or resets it), per-key rate limits
(429 with Retry-After, checked without waiting for a refill), the key
report (scopes used after real calls; the report flushes the in-memory
usage first, so no waiting), `keyward keys report`, and the PostHog import
of keys hashed by Python's hashlib (pbkdf2 and sha256), which then verify
and are rewritten as sha256 on first use.
"""
import datetime
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kwtest  # noqa: E402

PK = "/api/personal_api_keys/"
PSK = "/api/projects/1/project_secret_api_keys/"
EXPIRED = {"type": "authentication_error", "code": "key_expired",
           "detail": "API key has expired.", "attr": None}
THROTTLED_RE = re.compile(r"^Request was throttled\. Expected available in (\d+) seconds?\.$")


def iso(days):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=days)
    return t.isoformat()


class Expiry(kwtest.KWTestCase):
    def create(self, **fields):
        body = {"label": "k", "scopes": ["*"]}
        body.update(fields)
        return self.srv.post(PK, body, key=self.key)

    def test_personal_key_expiry_and_roll(self):
        created = self.assertStatus(self.create(expires_at=iso(1)), 201)
        self.assertIsNotNone(created["expires_at"])
        self.assertIsNone(created["rate_limit_per_minute"])
        kid, value = created["id"], created["value"]
        self.assertStatus(self.srv.get("/api/users/@me/", key=value), 200)
        listed = self.assertStatus(self.srv.get(PK, key=self.key), 200)
        self.assertEqual([k["expires_at"] for k in listed if k["id"] == kid], [created["expires_at"]])
        # an update may move expiry into the past: the key stops at once
        upd = self.assertStatus(self.srv.patch(PK + kid + "/", {"expires_at": iso(-1)},
                                               key=self.key), 200)
        self.assertIsNotNone(upd["expires_at"])
        st, _, body = self.srv.get("/api/users/@me/", key=value)
        self.assertEqual((st, body), (401, EXPIRED))
        # roll without a body keeps the (past) expiry: the new value is expired too
        rolled = self.assertStatus(self.srv.post(PK + kid + "/roll/", key=self.key), 200)
        self.assertEqual(rolled["expires_at"], upd["expires_at"])
        st, _, body = self.srv.get("/api/users/@me/", key=rolled["value"])
        self.assertEqual((st, body), (401, EXPIRED))
        # roll with expires_at null resets it
        rolled = self.assertStatus(self.srv.post(PK + kid + "/roll/", {"expires_at": None},
                                                 key=self.key), 200)
        self.assertIsNone(rolled["expires_at"])
        self.assertStatus(self.srv.get("/api/users/@me/", key=rolled["value"]), 200)
        # roll with a new future expiry
        rolled = self.assertStatus(self.srv.post(PK + kid + "/roll/", {"expires_at": iso(30)},
                                                 key=self.key), 200)
        self.assertTrue(rolled["expires_at"].startswith(iso(30)[:10]))
        self.assertStatus(self.srv.get("/api/users/@me/", key=rolled["value"]), 200)

    def test_epoch_is_not_never(self):
        # A stored expiry of 0 means "never expires": the epoch itself (in
        # any offset) or an earlier date must be refused, not become null.
        created = self.assertStatus(self.create(expires_at=iso(1)), 201)
        kid, value = created["id"], created["value"]
        for when in ("1970-01-01T00:00:00Z", "1970-01-01T01:00:00+01:00", "1969-07-20T20:17:00Z"):
            for result in (self.create(expires_at=when),
                           self.srv.patch(PK + kid + "/", {"expires_at": when}, key=self.key),
                           self.srv.post(PK + kid + "/roll/", {"expires_at": when}, key=self.key)):
                body = self.assertProblem(result, 400, "invalid", attr="expires_at")
                if not when.startswith("1969"):  # before 1970 is not a time kw_time_parse reads
                    self.assertEqual(body["detail"], "Datetime must be after 1970-01-01T00:00:00Z.")
        # nothing changed: the key still works and still expires
        self.assertStatus(self.srv.get("/api/users/@me/", key=value), 200)
        listed = self.assertStatus(self.srv.get(PK, key=self.key), 200)
        self.assertEqual([k["expires_at"] for k in listed if k["id"] == kid], [created["expires_at"]])
        psk = self.srv.post(PSK, {"label": "epoch", "scopes": ["feature_flag:read"],
                                  "expires_at": "1970-01-01T00:00:00Z"}, key=self.key)
        self.assertProblem(psk, 400, "invalid", attr="expires_at",
                           detail="Datetime must be after 1970-01-01T00:00:00Z.")

    def test_validation(self):
        self.assertProblem(self.create(expires_at=iso(-1)), 400, "invalid_input",
                           attr="expires_at")
        self.assertProblem(self.create(expires_at="next week"), 400, "invalid", attr="expires_at")
        self.assertProblem(self.create(rate_limit_per_minute=0), 400, "min_value",
                           "Ensure this value is greater than or equal to 1.",
                           attr="rate_limit_per_minute")
        self.assertProblem(self.create(rate_limit_per_minute=1000001), 400, "max_value",
                           "Ensure this value is less than or equal to 1000000.",
                           attr="rate_limit_per_minute")
        self.assertProblem(self.create(rate_limit_per_minute="5"), 400, "invalid",
                           "A valid integer is required.", attr="rate_limit_per_minute")
        ok = self.assertStatus(self.create(expires_at=None, rate_limit_per_minute=None), 201)
        self.assertIsNone(ok["expires_at"])

    def test_secret_key_expiry(self):
        created = self.assertStatus(self.srv.post(PSK, {
            "label": "sdk", "scopes": ["feature_flag:read"], "expires_at": iso(2),
            "rate_limit_per_minute": 100}, key=self.key), 201)
        self.assertEqual(created["rate_limit_per_minute"], 100)
        defs = "/flags/definitions?token=" + self.token
        self.assertStatus(self.srv.get(defs, key=created["value"]), 200)
        self.assertStatus(self.srv.patch(PSK + created["id"] + "/", {"expires_at": iso(-2)},
                                         key=self.key), 200)
        st, _, body = self.srv.get(defs, key=created["value"])
        self.assertEqual((st, body), (401, EXPIRED))
        rolled = self.assertStatus(self.srv.post(PSK + created["id"] + "/roll/",
                                                 {"expires_at": iso(5)}, key=self.key), 200)
        self.assertStatus(self.srv.get(defs, key=rolled["value"]), 200)
        listed = self.assertStatus(self.srv.get(PSK, key=self.key), 200)
        self.assertEqual(listed["results"][0]["expires_at"], rolled["expires_at"])


class RateLimit(kwtest.KWTestCase):
    def test_throttled_then_recovers(self):
        created = self.assertStatus(self.srv.post(PK, {
            "label": "slow", "scopes": ["*"], "rate_limit_per_minute": 3}, key=self.key), 201)
        value = created["value"]
        for _ in range(3):
            self.assertStatus(self.srv.get("/api/users/@me/", key=value), 200)
        # every route the key reaches counts, and the 4th is refused
        result = self.srv.get("/api/projects/1/", key=value)
        body = self.assertProblem(result, 429, "throttled", attr=None, type_="throttled_error")
        m = THROTTLED_RE.match(body["detail"])
        self.assertIsNotNone(m, body)
        retry = result[1].get("Retry-After")
        self.assertEqual(retry, m.group(1))
        self.assertTrue(1 <= int(retry) <= 20, retry)
        # other keys are not affected
        self.assertStatus(self.srv.get("/api/users/@me/", key=self.key), 200)
        # raising the limit takes effect at once (no waiting for a refill)
        self.assertStatus(self.srv.patch(PK + created["id"] + "/",
                                         {"rate_limit_per_minute": 1000}, key=self.key), 200)
        self.assertStatus(self.srv.get("/api/users/@me/", key=value), 200)
        # and removing it too
        self.assertStatus(self.srv.patch(PK + created["id"] + "/",
                                         {"rate_limit_per_minute": None}, key=self.key), 200)
        for _ in range(20):
            self.assertStatus(self.srv.get("/api/users/@me/", key=value), 200)


    def test_lowering_its_own_limit_never_refills(self):
        # A limited key that may write keys tightens its own limit after
        # each burst: what it spent stays spent, so it gets its first
        # limit's worth of requests in a minute, not the sum of them all.
        created = self.assertStatus(self.srv.post(PK, {
            "label": "sawtooth", "scopes": ["personal_api_key:write", "project:read"],
            "rate_limit_per_minute": 8}, key=self.key), 201)
        value = created["value"]
        allowed = 0
        for limit in range(8, 1, -1):
            for _ in range(limit - 1):
                allowed += self.srv.get("/api/projects/1/", key=value)[0] == 200
            self.srv.patch(PK + "@current/", {"rate_limit_per_minute": limit - 1}, key=value)
        self.assertLessEqual(allowed, 8)
        self.assertProblem(self.srv.get("/api/projects/1/", key=value), 429, "throttled",
                           attr=None, type_="throttled_error")


class Report(kwtest.KWTestCase):
    def entry(self, report, kid):
        found = [e for e in report["results"] if e["id"] == kid]
        self.assertEqual(len(found), 1, report)
        return found[0]

    def test_reports_show_used_scopes(self):
        created = self.assertStatus(self.srv.post(PK, {
            "label": "ci", "scopes": ["feature_flag:read", "project:read", "insight:write"]},
            key=self.key), 201)
        self.assertStatus(self.srv.get("/api/projects/1/feature_flags/", key=created["value"]), 200)
        idle = self.assertStatus(self.srv.post(PK, {"label": "idle", "scopes": ["project:read"]},
                                               key=self.key), 201)
        psk = self.assertStatus(self.srv.post(PSK, {"label": "sdk", "scopes": ["feature_flag:read"]},
                                              key=self.key), 201)
        self.assertStatus(self.srv.get("/flags/definitions?token=" + self.token, key=psk["value"]), 200)

        report = self.assertStatus(self.srv.get(PK + "report/", key=self.key), 200)
        self.assertEqual(report["rotation_days"], 90)
        self.assertEqual(report["count"], len(report["results"]))
        e = self.entry(report, created["id"])
        self.assertEqual(e["kind"], "personal")
        self.assertEqual(e["mask_value"], created["mask_value"])
        self.assertEqual(e["scopes"], ["feature_flag:read", "project:read", "insight:write"])
        self.assertEqual(e["scopes_used"], ["feature_flag:read"])
        self.assertEqual(e["suggested_scopes"], ["feature_flag:read"])
        self.assertEqual(e["suggestion"], "narrow")
        self.assertEqual(e["flags"], {"not_rotated": False, "unused": False,
                                      "expiring_soon": False, "expired": False})
        e = self.entry(report, idle["id"])
        self.assertEqual(e["scopes_used"], [])
        self.assertEqual(e["suggestion"], "revoke")
        self.assertTrue(e["flags"]["unused"])
        # the bootstrap key: "*" narrowed to what it used (personal_api_key
        # writes, project reads, …)
        boot = [x for x in report["results"] if x["scopes"] == ["*"]][0]
        self.assertIn("personal_api_key:write", boot["suggested_scopes"])
        self.assertEqual(boot["suggestion"], "narrow")

        proj = self.assertStatus(self.srv.get("/api/projects/1/key_report/", key=self.key), 200)
        e = self.entry(proj, psk["id"])
        self.assertEqual(e["kind"], "project_secret")
        self.assertEqual(e["scopes_used"], ["feature_flag:read"])
        self.assertEqual(e["suggestion"], "keep")
        self.entry(proj, created["id"])  # the caller's personal keys reaching project 1
        self.assertStatus(self.srv.get("/api/environments/1/key_report?rotation_days=1",
                                       key=self.key), 200)
        self.assertProblem(self.srv.get("/api/projects/1/key_report/?rotation_days=0",
                                        key=self.key), 400, None, attr="rotation_days")
        # scopes: project:read for the project report, personal_api_key:read for ours
        self.assertProblem(self.srv.get(PK + "report/", key=idle["value"]), 403, "permission_denied",
                           kwtest.MSG_PERSONAL_UNSUPPORTED)
        self.assertProblem(self.srv.get("/api/projects/1/key_report/", key=psk["value"]), 403,
                           "permission_denied", kwtest.MSG_SECRET_UNSUPPORTED)

        # the shell's report reads the same rows
        proc = kwtest.run_cli("keys", "report", "--format", "json", "--db", self.env.db, check=True)
        doc = json.loads(proc.stdout)
        self.assertEqual(self.entry(doc, created["id"])["scopes_used"], ["feature_flag:read"])
        self.assertEqual(self.entry(doc, psk["id"])["kind"], "project_secret")
        proc = kwtest.run_cli("keys", "report", "--email", "a@x.io", "--rotation-days", "30",
                              "--db", self.env.db, check=True)
        self.assertIn("suggestion", proc.stdout)
        self.assertIn(created["mask_value"], proc.stdout)
        self.assertEqual(kwtest.run_cli("keys", "report", "--format", "xml",
                                        "--db", self.env.db).returncode, 2)


class RollGrace(kwtest.KWTestCase):
    """Roll with a grace period: expire_previous_in_seconds keeps the old
    value working that long (0 = now, at most 7 days)."""

    def setup_db(self):
        self.env.tenants()

    def grace_detail(self, kid):
        rows = self.env.sql("SELECT detail FROM activity_log WHERE activity='rolled' AND item_id=?",
                            (kid,))
        return [json.loads(r[0])["context"] for r in rows]

    def test_personal_key(self):
        created = self.assertStatus(self.srv.post(PK, {"label": "g", "scopes": ["*"]},
                                                  key=self.key), 201)
        self.assertIsNone(created["previous_value_expires_at"])
        kid, first = created["id"], created["value"]
        rolled = self.assertStatus(self.srv.post(PK + kid + "/roll/",
                                                 {"expire_previous_in_seconds": 3600},
                                                 key=self.key), 200)
        second = rolled["value"]
        # listed as expiring, about an hour from now
        until = datetime.datetime.fromisoformat(rolled["previous_value_expires_at"].replace("Z", "+00:00"))
        left = (until - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
        self.assertTrue(3500 < left <= 3600, left)
        got = self.assertStatus(self.srv.get(PK + kid + "/", key=self.key), 200)
        self.assertEqual(got["previous_value_expires_at"], rolled["previous_value_expires_at"])
        # both values work, as the same key
        me_old = self.assertStatus(self.srv.get("/api/users/@me/", key=first), 200)
        me_new = self.assertStatus(self.srv.get("/api/users/@me/", key=second), 200)
        self.assertEqual(me_old["id"], me_new["id"])
        cur = self.assertStatus(self.srv.get(PK + "@current/", key=first), 200)
        self.assertEqual(cur["id"], kid)
        # rolling again with 0: the previous value stops at once
        third = self.assertStatus(self.srv.post(PK + kid + "/roll/",
                                                {"expire_previous_in_seconds": 0},
                                                key=self.key), 200)
        self.assertIsNone(third["previous_value_expires_at"])
        for old in (first, second):
            self.assertProblem(self.srv.get("/api/users/@me/", key=old), 401,
                               "authentication_failed")
        self.assertStatus(self.srv.get("/api/users/@me/", key=third["value"]), 200)
        self.assertEqual(self.grace_detail(kid), [{"expire_previous_in_seconds": 3600},
                                                  {"expire_previous_in_seconds": 0}])
        # deleting the key ends a live previous value too
        fourth = self.assertStatus(self.srv.post(PK + kid + "/roll/",
                                                 {"expire_previous_in_seconds": 60},
                                                 key=self.key), 200)
        self.assertStatus(self.srv.get("/api/users/@me/", key=third["value"]), 200)
        self.assertStatus(self.srv.delete(PK + kid + "/", key=self.key), 204)
        for old in (third["value"], fourth["value"]):
            self.assertProblem(self.srv.get("/api/users/@me/", key=old), 401,
                               "authentication_failed")

    def test_secret_key(self):
        created = self.assertStatus(self.srv.post(PSK, {"label": "g", "scopes": ["feature_flag:read"]},
                                                  key=self.key), 201)
        kid, first = created["id"], created["value"]
        path = "/flags/definitions?token=%s" % self.token
        self.assertStatus(self.srv.get(path, key=first), 200)
        rolled = self.assertStatus(self.srv.post(PSK + kid + "/roll/",
                                                 {"expire_previous_in_seconds": 3600},
                                                 key=self.key), 200)
        self.assertIsNotNone(rolled["previous_value_expires_at"])
        listed = self.assertStatus(self.srv.get(PSK, key=self.key), 200)["results"]
        self.assertEqual([k["previous_value_expires_at"] for k in listed if k["id"] == kid],
                         [rolled["previous_value_expires_at"]])
        self.assertStatus(self.srv.get(path, key=first), 200)
        self.assertStatus(self.srv.get(path, key=rolled["value"]), 200)
        again = self.assertStatus(self.srv.post(PSK + kid + "/roll/", key=self.key), 200)
        self.assertIsNone(again["previous_value_expires_at"])
        self.assertProblem(self.srv.get(path, key=first), 401, "authentication_failed",
                           "Secret API token is invalid.")
        self.assertProblem(self.srv.get(path, key=rolled["value"]), 401, "authentication_failed",
                           "Secret API token is invalid.")
        self.assertStatus(self.srv.get(path, key=again["value"]), 200)
        self.assertEqual(self.grace_detail(kid), [{"expire_previous_in_seconds": 3600}, None])

    def test_grace_with_expiry_both_kinds(self):
        """Both kinds take the one roll path (lib/keys/keywrite.c): a refused roll
        changes nothing; an accepted one with a grace period and a new
        expiry keeps the old value, writes the expiry, and logs one
        "rolled" entry carrying the change and the grace context."""
        defs = "/flags/definitions?token=%s" % self.token
        kinds = [(PK, ["*"], "/api/users/@me/", "PersonalAPIKey"),
                 (PSK, ["feature_flag:read"], defs, "ProjectSecretAPIKey")]
        for base, scopes, probe, audit_type in kinds:
            with self.subTest(kind=audit_type):
                created = self.assertStatus(self.srv.post(base, {
                    "label": "ge", "scopes": scopes, "expires_at": iso(2)}, key=self.key), 201)
                kid, first = created["id"], created["value"]
                roll = base + kid + "/roll/"
                self.assertProblem(self.srv.post(roll, {"expire_previous_in_seconds": 60,
                                                        "expires_at": iso(-1)}, key=self.key),
                                   400, "invalid_input", "Expiry must be in the future.",
                                   attr="expires_at")
                self.assertStatus(self.srv.get(probe, key=first), 200)
                self.assertEqual(self.grace_detail(kid), [])
                rolled = self.assertStatus(self.srv.post(roll, {"expire_previous_in_seconds": 600,
                                                                "expires_at": iso(9)},
                                                         key=self.key), 200)
                self.assertTrue(rolled["expires_at"].startswith(iso(9)[:10]), rolled)
                self.assertNotEqual(rolled["expires_at"], created["expires_at"])
                self.assertIsNotNone(rolled["previous_value_expires_at"])
                self.assertStatus(self.srv.get(probe, key=first), 200)
                self.assertStatus(self.srv.get(probe, key=rolled["value"]), 200)
                got = self.assertStatus(self.srv.get(base + kid + "/", key=self.key), 200)
                self.assertEqual(got["expires_at"], rolled["expires_at"])
                rows = self.env.sql("SELECT scope, detail FROM activity_log "
                                    "WHERE activity='rolled' AND item_id=?", (kid,))
                self.assertTrue(rows)
                for scope, detail in rows:
                    detail = json.loads(detail)
                    self.assertEqual(scope, audit_type)
                    self.assertEqual(detail["context"], {"expire_previous_in_seconds": 600})
                    self.assertEqual([(ch["type"], ch["action"], ch["field"])
                                      for ch in detail["changes"]],
                                     [(audit_type, "changed", "expires_at")])
                    self.assertEqual(detail["changes"][0]["before"], created["expires_at"])

    def test_validation(self):
        created = self.assertStatus(self.srv.post(PK, {"label": "v", "scopes": ["*"]},
                                                  key=self.key), 201)
        roll = PK + created["id"] + "/roll/"
        cases = [(604801, "max_value", "Ensure this value is less than or equal to 604800."),
                 (-1, "min_value", "Ensure this value is greater than or equal to 0."),
                 ("60", "invalid", "A valid integer is required."),
                 (1.5, "invalid", "A valid integer is required."),
                 (True, "invalid", "A valid integer is required."),
                 (None, "null", "This field may not be null.")]
        for value, code, text in cases:
            with self.subTest(value=value):
                self.assertProblem(self.srv.post(roll, {"expire_previous_in_seconds": value},
                                                 key=self.key), 400, code, text,
                                   attr="expire_previous_in_seconds")
        # nothing was rolled
        self.assertStatus(self.srv.get("/api/users/@me/", key=created["value"]), 200)
        ok = self.assertStatus(self.srv.post(roll, {"expire_previous_in_seconds": 604800},
                                             key=self.key), 200)
        self.assertIsNotNone(ok["previous_value_expires_at"])


class Import(kwtest.KWTestCase):
    serve_in_setup = False

    def fixture(self):
        self.k260 = kwtest.legacy_key(43)
        self.k390 = kwtest.legacy_key(45)
        self.ksha = kwtest.legacy_key(41)
        self.phs = "phs_" + kwtest.legacy_key(43)[4:]
        self.phc = "phc_" + kwtest.legacy_key(43)[4:]
        org = "0188f5a4-7d1e-7000-8000-0000000000aa"
        keys = []
        for i, (key, secure) in enumerate([
                (self.k260, kwtest.pbkdf2_secure(self.k260, 260000)),
                (self.k390, kwtest.pbkdf2_secure(self.k390, 390000)),
                (self.ksha, kwtest.sha256_secure(self.ksha))]):
            keys.append({"id": "legacy-key-%d" % i, "user_id": 101, "label": "legacy %d" % i,
                         "secure_value": secure, "mask_value": kwtest.mask(key),
                         "scopes": ["*"], "scoped_teams": [501] if i == 2 else None,
                         "scoped_organizations": None,
                         "created_at": "2024-03-01T10:00:00.000000Z",
                         "last_used_at": None, "last_rolled_at": None})
        return {
            "users": [{"id": 101, "uuid": "0188f5a4-7d1e-7000-8000-000000000101",
                       "email": "legacy@ph.io", "first_name": "Leg", "is_active": True,
                       "date_joined": "2023-05-01T09:00:00Z"}],
            "organizations": [{"id": org, "name": "Legacy Inc",
                               "created_at": "2023-05-01T09:00:00Z"}],
            "memberships": [{"user_id": 101, "organization_id": org, "level": 15}],
            "projects": [{"id": 501, "uuid": "0188f5a4-7d1e-7000-8000-000000000501",
                          "organization_id": org, "name": "Legacy web", "api_token": self.phc,
                          "secret_api_token": self.phs, "created_at": "2023-05-02T09:00:00Z"}],
            "personal_api_keys": keys,
        }

    def test_import_then_keys_verify_and_upgrade(self):
        path = os.path.join(self.env.dir, "export.json")
        with open(path, "w") as f:
            json.dump(self.fixture(), f)
        proc = kwtest.run_cli("import", "posthog", "--file", path, "--db", self.env.db, check=True)
        for line in ("users                1 imported", "organizations        1 imported",
                     "memberships          1 imported", "projects             1 imported",
                     "personal_api_keys    3 imported", "project_secret_keys  1 imported"):
            self.assertIn(line, proc.stdout)
        # a second run without --merge stops at the first row that already exists
        proc = kwtest.run_cli("import", "posthog", "--file", path, "--db", self.env.db)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("users[0].id: this user existed before this import", proc.stderr)
        # with --merge every row matches exactly and is skipped
        proc = kwtest.run_cli("import", "posthog", "--file", path, "--merge", "--db", self.env.db,
                              check=True)
        self.assertIn("personal_api_keys    0 imported, 3 already present", proc.stdout)
        self.assertIn("project_secret_keys  0 imported, 1 already present", proc.stdout)
        rows = dict(self.env.sql("SELECT id, secure_value FROM personal_api_keys "
                                 "WHERE id LIKE 'legacy-key-%'"))
        self.assertTrue(rows["legacy-key-0"].startswith("pbkdf2_sha256$260000$"))

        self.start_server()
        for kid, key in (("legacy-key-0", self.k260), ("legacy-key-1", self.k390),
                         ("legacy-key-2", self.ksha)):
            me = self.assertStatus(self.srv.get("/api/users/@me/", key=key), 200)
            self.assertEqual(me["email"], "legacy@ph.io")
            stored = self.env.sql("SELECT secure_value FROM personal_api_keys WHERE id=?", (kid,))
            self.assertEqual(stored[0][0], kwtest.sha256_secure(key))
            # and it keeps working from the sha256 row
            self.assertStatus(self.srv.get("/api/users/@me/", key=key), 200)
        got = self.assertStatus(self.srv.get("/api/projects/501/", key=self.k260), 200)
        self.assertEqual(got["api_token"], self.phc)
        listed = self.assertStatus(self.srv.get(PK, key=self.k260), 200)
        self.assertEqual(sorted(k["mask_value"] for k in listed),
                         sorted(kwtest.mask(k) for k in (self.k260, self.k390, self.ksha)))
        # the legacy feature-flags secure key is a phs_ key with feature_flag:read
        defs = self.srv.get("/flags/definitions?token=" + self.phc, key=self.phs)
        self.assertStatus(defs, 200)
        psks = self.assertStatus(self.srv.get("/api/projects/501/project_secret_api_keys/",
                                              key=self.k260), 200)
        self.assertEqual(psks["results"][0]["label"], "Feature flags secure key (imported)")
        self.assertEqual(psks["results"][0]["scopes"], ["feature_flag:read"])
        stored = self.env.sql("SELECT secure_value FROM project_secret_api_keys")
        self.assertEqual(stored[0][0], kwtest.sha256_secure(self.phs))
        # ids created after the import do not collide with imported ones
        self.assertStatus(self.srv.post(PK, {"label": "new", "scopes": ["*"]}, key=self.k260), 201)

    def test_bad_export_imports_nothing(self):
        doc = self.fixture()
        doc["personal_api_keys"][1]["secure_value"] = "md5$abc"
        path = os.path.join(self.env.dir, "bad.json")
        with open(path, "w") as f:
            json.dump(doc, f)
        proc = kwtest.run_cli("import", "posthog", "--file", path, "--db", self.env.db)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("personal_api_keys[1].secure_value", proc.stderr)
        self.assertEqual(self.env.sql("SELECT COUNT(*) FROM users WHERE id=101"), [(0,)])


if __name__ == "__main__":
    kwtest.main()
