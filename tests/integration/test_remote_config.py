"""test_remote_config.py — posthog-js's remote config and the settings it serves.

GET /array/<phc_>/config (JSON) and /array/<phc_>/config.js (the script
posthog-js loads at init): PostHog's fields, CORS for any origin (preflight
too), ETag / If-None-Match → 304, an unknown or malformed token answered
"Not found." with CORS and without a word about other projects.  The
settings behind it (autocapture_opt_out, capture_performance_opt_in,
heatmaps_opt_in) change only through PATCH /api/projects/:id/ by a project
admin with project:write; every other caller is refused and nothing
changes; a change shows in the project's GET, the config and its ETag.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kwtest  # noqa: E402
from kwtest import make_key, MSG_LEVEL, MSG_SECRET_UNSUPPORTED, MSG_INVALID_HEADER  # noqa: E402

PROJECT = "/api/projects/1/"
SETTINGS = ("autocapture_opt_out", "capture_performance_opt_in", "heatmaps_opt_in")
DEFAULTS = {"autocapture_opt_out": False, "capture_performance_opt_in": True,
            "heatmaps_opt_in": False}
CONFIG_KEYS = ["token", "supportedCompression", "hasFeatureFlags", "captureDeadClicks",
               "capturePerformance", "autocapture_opt_out", "autocaptureExceptions", "analytics",
               "elementsChainAsString", "errorTracking", "sessionRecording", "heatmaps", "surveys",
               "defaultIdentifiedOnly"]
SCRIPT_RE = re.compile(
    r"^\(function\(\) \{\n"
    r"    window\._POSTHOG_REMOTE_CONFIG = window\._POSTHOG_REMOTE_CONFIG \|\| \{\};\n"
    r"    window\._POSTHOG_REMOTE_CONFIG\[\"(?P<token>[^\"]+)\"\] = \{\n"
    r"        config: (?P<config>\{.*\}),\n"
    r"        siteApps: \[\]\n"
    r"    \}\n"
    r"\}\)\(\);\n$", re.S)
NODE = shutil.which("node")


class RemoteConfigBase(kwtest.KWTestCase):
    def config(self, token=None, js=False, headers=None):
        path = "/array/%s/config%s" % (token or self.token, ".js" if js else "")
        return self.srv.get(path, headers=headers)

    def settings_in_db(self, project=1):
        row = self.env.sql("SELECT autocapture_opt_out, capture_performance_opt_in, "
                           "heatmaps_opt_in FROM projects WHERE id=?", (project,))[0]
        return dict(zip(SETTINGS, (bool(v) for v in row)))

    def assertCors(self, hdrs):
        self.assertEqual(hdrs.get("Access-Control-Allow-Origin"), "*")

    def assertNotFound(self, result):
        self.assertCors(result[1])
        self.assertProblem(result, 404, "not_found", "Not found.")


class TestConfig(RemoteConfigBase):
    def test_json_shape_and_defaults(self):
        st, hdrs, body = self.config()
        self.assertEqual(st, 200, body)
        self.assertCors(hdrs)
        self.assertEqual(hdrs["Content-Type"], "application/json")
        self.assertRegex(hdrs["ETag"], r'^W/"[0-9a-f]{32}"$')
        self.assertEqual(hdrs["Cache-Control"], "public, no-cache")
        self.assertEqual(list(body.keys()), CONFIG_KEYS)
        self.assertEqual(body["token"], self.token)
        self.assertEqual(body["supportedCompression"], ["gzip", "gzip-js"])
        self.assertIs(body["hasFeatureFlags"], False)
        self.assertEqual(body["capturePerformance"], {"network_timing": True, "web_vitals": False,
                                                      "web_vitals_allowed_metrics": None})
        self.assertIs(body["autocapture_opt_out"], False)
        self.assertEqual(body["analytics"], {"endpoint": "/i/v0/e/"})
        self.assertIs(body["elementsChainAsString"], True)
        # what keyward does not serve stays off, so posthog-js never calls it
        for off in ("sessionRecording", "surveys", "captureDeadClicks", "autocaptureExceptions",
                    "heatmaps"):
            self.assertIs(body[off], False, off)
        self.assertEqual(body["errorTracking"], {"autocaptureExceptions": False,
                                                 "suppressionRules": []})
        self.assertIs(body["defaultIdentifiedOnly"], True)
        # the analytics endpoint it names is served
        self.assertEqual(self.srv.post("/i/v0/e/", {"token": self.token, "event": "x",
                                                    "distinct_id": "d"})[0], 200)
        # trailing slash and HEAD
        self.assertEqual(self.srv.get("/array/%s/config/" % self.token)[2], body)
        st, hdrs2, _ = self.srv.request("HEAD", "/array/%s/config" % self.token)
        self.assertEqual(st, 200)
        self.assertEqual(hdrs2["ETag"], hdrs["ETag"])

    def test_script_sets_the_global_posthog_js_reads(self):
        st, hdrs, _ = self.config(js=True)
        self.assertEqual(st, 200)
        text = self.srv.last_text
        self.assertCors(hdrs)
        self.assertEqual(hdrs["Content-Type"], "application/javascript; charset=utf-8")
        self.assertRegex(hdrs["ETag"], r'^W/"[0-9a-f]{32}"$')
        m = SCRIPT_RE.match(text)
        self.assertIsNotNone(m, text)
        self.assertEqual(m.group("token"), self.token)
        self.assertEqual(json.loads(m.group("config")), self.config()[2])
        self.assertNotIn("</", text)
        if NODE:  # run it as a browser would, and read what posthog-js reads
            js = ("const window = {}; %s\nprocess.stdout.write(JSON.stringify("
                  "window._POSTHOG_REMOTE_CONFIG[%s]));" % (text, json.dumps(self.token)))
            out = subprocess.run([NODE, "-e", js], capture_output=True, text=True, timeout=30)
            self.assertEqual(out.returncode, 0, out.stderr)
            got = json.loads(out.stdout)
            self.assertEqual(got, {"config": self.config()[2], "siteApps": []})

    def test_has_feature_flags_follows_active_flags(self):
        flags = "/api/projects/1/feature_flags/"
        st, _, flag = self.srv.post(flags, {"key": "f", "filters": {"groups": [
            {"rollout_percentage": 100}]}, "active": False}, key=self.key)
        self.assertEqual(st, 201, flag)
        self.assertIs(self.config()[2]["hasFeatureFlags"], False)
        self.assertStatus(self.srv.patch(flags + "%d/" % flag["id"], {"active": True},
                                         key=self.key), 200)
        self.assertIs(self.config()[2]["hasFeatureFlags"], True)
        self.assertIn('"hasFeatureFlags":true', self.config(js=True) and self.srv.last_text)
        self.assertStatus(self.srv.patch(flags + "%d/" % flag["id"], {"deleted": True},
                                         key=self.key), 200)
        self.assertIs(self.config()[2]["hasFeatureFlags"], False)

    def test_etag_and_304(self):
        for js in (False, True):
            with self.subTest(js=js):
                st, hdrs, _ = self.config(js=js)
                etag = hdrs["ETag"]
                # weak comparison: the strong form of the tag matches too
                for inm in (etag, 'W/"0000", ' + etag, "*", "  %s  " % etag,
                            etag.replace("W/", "")):
                    st, h, _ = self.config(js=js, headers={"If-None-Match": inm})
                    self.assertEqual(st, 304, inm)
                    self.assertEqual(self.srv.last_text, "")
                    self.assertEqual(h["ETag"], etag)
                    self.assertCors(h)
                for inm in ('W/"0000"', etag[:-2] + '"', "W/", 'W/""', ""):
                    self.assertEqual(self.config(js=js, headers={"If-None-Match": inm})[0], 200,
                                     inm)
        self.assertNotEqual(self.config()[1]["ETag"], self.config(js=True)[1]["ETag"])

    def test_preflight_and_methods(self):
        for suffix in ("config", "config.js"):
            path = "/array/%s/%s" % (self.token, suffix)
            st, hdrs, _ = self.srv.request("OPTIONS", path,
                                           headers={"Origin": "https://app.example",
                                                    "Access-Control-Request-Method": "GET"})
            self.assertEqual(st, 204)
            self.assertCors(hdrs)
            self.assertIn("GET", hdrs["Access-Control-Allow-Methods"])
            self.assertEqual(hdrs["Allow"], "GET, HEAD, OPTIONS")
            for method in ("POST", "PATCH", "DELETE", "PUT"):
                self.assertProblem(self.srv.request(method, path, raw="{}"), 405, None)

    def test_unknown_and_malformed_tokens(self):
        self.env.tenants()  # other tenants exist; nothing of theirs may show
        psk = self.assertStatus(self.srv.post("/api/projects/1/project_secret_api_keys/",
                                              {"label": "s", "scopes": ["feature_flag:read"]},
                                              key=self.key), 201)["value"]
        tokens = [make_key("phc_"), kwtest.bad_checksum(self.token), self.token[:-1],
                  self.token + "x", self.token.upper(), "phc_", "x", self.key, psk,
                  "phc_" + "A" * 100, "%C3%28",
                  "..", "%2e%2e", "'%3B--", "%20" + self.token, "@current", "1"]
        for token in tokens:
            for js in (False, True):
                with self.subTest(token=token, js=js):
                    self.assertNotFound(self.srv.get("/array/%s/config%s" %
                                                     (token, ".js" if js else "")))
        # traversal out of the route, and over-long segments: no route at all
        for path in ("/array/%s/../config" % self.token, "/array/config",
                     "/array/%s/config/x" % self.token, "/array/%s/config.json" % self.token,
                     "/array/%s/config" % ("phc_" + "A" * 200)):
            with self.subTest(path=path):
                self.assertProblem(self.srv.get(path), 404, "not_found")
        # a NUL in the path is refused before routing (it would cut the path)
        for path in ("/array/%00/config", "/array/phc_%00" + self.token[4:] + "/config",
                     "/array/%s/config%%00.js" % self.token):
            with self.subTest(path=path):
                self.assertProblem(self.srv.get(path), 400, "path_invalid")

    def test_each_token_sees_only_its_project(self):
        self.env.tenants()
        token_b = self.env.sql("SELECT api_token FROM projects WHERE id=?",
                               (self.env.project_b,))[0][0]
        self.env.sql("UPDATE projects SET autocapture_opt_out=1 WHERE id=?",
                     (self.env.project_b,))
        a = self.config()[2]
        b = self.config(token_b)[2]
        self.assertEqual(a["token"], self.token)
        self.assertEqual(b["token"], token_b)
        self.assertIs(a["autocapture_opt_out"], False)
        self.assertIs(b["autocapture_opt_out"], True)
        self.assertNotIn(token_b, json.dumps(a))
        self.assertNotIn(self.token, json.dumps(b))

    def test_reset_token_retires_the_old_one(self):
        st, _, body = self.srv.patch("/api/projects/1/reset_token/", key=self.key)
        self.assertEqual(st, 200, body)
        self.assertEqual(self.config(body["api_token"])[2]["token"], body["api_token"])
        self.assertNotFound(self.config())

    def test_query_string_rules_apply(self):
        self.assertProblem(self.srv.get("/array/%s/config?a=1&a=2" % self.token), 400,
                           "query_repeated")
        # posthog-js adds nothing, but a cache-buster is harmless
        self.assertEqual(self.srv.get("/array/%s/config.js?v=1" % self.token)[0], 200)


class TestSettings(RemoteConfigBase):
    def patch(self, body, key=None, **kw):
        return self.srv.patch(PROJECT, body, key=key or self.key, **kw)

    def test_defaults_in_project_get(self):
        got = self.assertStatus(self.srv.get(PROJECT, key=self.key), 200)
        for k, v in DEFAULTS.items():
            self.assertIs(got[k], v, k)

    def test_patch_changes_config_and_etag(self):
        etag = self.config()[1]["ETag"]
        etag_js = self.config(js=True)[1]["ETag"]
        got = self.assertStatus(self.patch({"autocapture_opt_out": True}), 200)
        self.assertIs(got["autocapture_opt_out"], True)
        self.assertEqual(got["id"], 1)
        self.assertEqual(got["api_token"], self.token)
        self.assertEqual(self.settings_in_db(), dict(DEFAULTS, autocapture_opt_out=True))
        self.assertIs(self.assertStatus(self.srv.get(PROJECT, key=self.key), 200)
                      ["autocapture_opt_out"], True)
        st, hdrs, cfg = self.config(headers={"If-None-Match": etag})
        self.assertEqual(st, 200)  # the old ETag no longer matches
        self.assertNotEqual(hdrs["ETag"], etag)
        self.assertIs(cfg["autocapture_opt_out"], True)
        self.assertNotEqual(self.config(js=True)[1]["ETag"], etag_js)
        # the other two, together
        got = self.assertStatus(self.patch({"capture_performance_opt_in": False,
                                            "heatmaps_opt_in": True}), 200)
        self.assertIs(got["capture_performance_opt_in"], False)
        self.assertIs(got["heatmaps_opt_in"], True)
        self.assertIs(got["autocapture_opt_out"], True)  # kept
        cfg = self.config()[2]
        self.assertIs(cfg["capturePerformance"], False)
        self.assertIs(cfg["heatmaps"], True)
        # and back: the first ETag again (it is over the bytes)
        self.assertStatus(self.patch(dict(DEFAULTS)), 200)
        self.assertEqual(self.config()[1]["ETag"], etag)
        # same values again: no change, no activity entry
        n = self.count_activity()
        self.assertStatus(self.patch({"autocapture_opt_out": False}), 200)
        self.assertEqual(self.count_activity(), n)

    def count_activity(self):
        body = self.assertStatus(self.srv.get("/api/projects/1/activity_log/?scope=Project",
                                              key=self.key), 200)
        return len(body["results"] if isinstance(body, dict) else body)

    def test_change_reaches_other_instances(self):
        # the config is served from the flag cache: a change made on another
        # instance, or straight in the database, is seen within the bound
        other = self.start_server()
        self.assertIs(self.config()[2]["heatmaps"], False)
        self.assertIs(other.get("/array/%s/config" % self.token)[2]["heatmaps"], False)
        self.assertStatus(self.patch({"heatmaps_opt_in": True}), 200)
        self.assertIs(self.config()[2]["heatmaps"], True)  # at once here
        self.poll(lambda: other.get("/array/%s/config" % self.token)[2]["heatmaps"] is True,
                  timeout=self.OUTSIDE_CHANGE_BOUND)
        self.assertIs(other.get("/array/%s/config" % self.token)[2]["heatmaps"], True)
        self.env.sql("UPDATE projects SET autocapture_opt_out=1 WHERE id=1")
        for srv in (self.srv, other):
            self.poll(lambda: srv.get("/array/%s/config" % self.token)[2]
                      ["autocapture_opt_out"] is True, timeout=self.OUTSIDE_CHANGE_BOUND)
            self.assertIs(srv.get("/array/%s/config" % self.token)[2]["autocapture_opt_out"],
                          True)

    def test_activity_entry(self):
        self.assertStatus(self.patch({"heatmaps_opt_in": True}), 200)
        body = self.assertStatus(self.srv.get("/api/projects/1/activity_log/?scope=Project",
                                              key=self.key), 200)
        entries = body["results"] if isinstance(body, dict) else body
        self.assertEqual(len(entries), 1)
        e = entries[0]
        self.assertEqual(e["activity"], "updated")
        self.assertEqual(e["scope"], "Project")
        self.assertEqual(e["item_id"], "1")
        self.assertEqual(e["detail"]["changes"], [{"type": "Project", "action": "changed",
                                                   "field": "heatmaps_opt_in", "before": False,
                                                   "after": True}])

    def test_environments_path_and_no_slash(self):
        self.assertStatus(self.srv.patch("/api/environments/1/", {"heatmaps_opt_in": True},
                                         key=self.key), 200)
        self.assertStatus(self.srv.patch("/api/projects/1", {"autocapture_opt_out": True},
                                         key=self.key), 200)
        self.assertStatus(self.srv.patch("/api/projects/@current/",
                                         {"capture_performance_opt_in": False}, key=self.key), 200)
        self.assertEqual(self.settings_in_db(), {"autocapture_opt_out": True,
                                                 "capture_performance_opt_in": False,
                                                 "heatmaps_opt_in": True})

    def test_refused_callers_change_nothing(self):
        self.env.tenants()  # user B: another org; user C: member (level 1) of org A
        p3 = self.env.add_project(self.env.org_a, "Second")
        psk = self.assertStatus(self.srv.post("/api/projects/1/project_secret_api_keys/",
                                              {"label": "s", "scopes": ["feature_flag:read"]},
                                              key=self.key), 201)["value"]
        read_only = self.env.cli_key_create(self.env.email, "ro", scopes="project:read")
        other_project = self.env.cli_key_create(self.env.email, "p3", scopes="*", teams=str(p3))
        flag_writer = self.env.cli_key_create(self.env.email, "fw", scopes="feature_flag:write")
        body = {"autocapture_opt_out": True}
        before = self.settings_in_db()
        etag = self.config()[1]["ETag"]
        cases = [
            (None, 401, "not_authenticated", None),
            (psk, 403, "permission_denied", MSG_SECRET_UNSUPPORTED),
            (self.token, 401, "authentication_failed", MSG_INVALID_HEADER),
            (make_key("phx_"), 401, "authentication_failed", MSG_INVALID_HEADER),
            (read_only, 403, "permission_denied",
             "API key missing required scope 'project:write'"),
            (flag_writer, 403, "permission_denied",
             "API key missing required scope 'project:write'"),
            (other_project, 403, "permission_denied",
             "API key does not have access to the requested project: ID 1."),
            (self.env.key_c, 403, "permission_denied", MSG_LEVEL),
            (self.env.key_b, 404, "not_found", "Not found."),
        ]
        for key, status, code, detail in cases:
            with self.subTest(key=key and key[:8], status=status):
                if key is None:
                    r = self.srv.patch(PROJECT, body)
                else:
                    r = self.srv.patch(PROJECT, body, key=key)
                self.assertProblem(r, status, code, detail)
        # the token in the body or query string is no credential either
        self.assertProblem(self.srv.patch(PROJECT, dict(body, personal_api_key=self.token)),
                           401, "authentication_failed")
        self.assertProblem(self.srv.patch(PROJECT + "?personal_api_key=" + psk, body), 403,
                           "permission_denied")
        # a member of org A may read the settings, not change them
        self.assertIs(self.assertStatus(self.srv.get(PROJECT, key=self.env.key_c), 200)
                      ["autocapture_opt_out"], False)
        # user B's own project is theirs to change; ours is not found
        self.assertStatus(self.srv.patch("/api/projects/%d/" % self.env.project_b, body,
                                         key=self.env.key_b), 200)
        self.assertEqual(self.settings_in_db(), before)
        self.assertEqual(self.config()[1]["ETag"], etag)
        self.assertTrue(self.settings_in_db(self.env.project_b)["autocapture_opt_out"])
        # an organization admin (level 8) may
        self.env.sql("UPDATE memberships SET level=8 WHERE user_id=?", (self.env.user_c,))
        self.assertStatus(self.srv.patch(PROJECT, body, key=self.env.key_c), 200)
        self.assertTrue(self.settings_in_db()["autocapture_opt_out"])

    def test_session_needs_csrf(self):
        # a console session may change settings only with its CSRF token
        proc = subprocess.run([kwtest.BIN, "user", "set-password", self.env.email, "--db",
                               self.env.db], input="correct horse battery\n",
                              capture_output=True, text=True, timeout=30)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        st, hdrs, body = self.srv.post("/api/login/", {"email": self.env.email,
                                                       "password": "correct horse battery"})
        self.assertEqual(st, 200, body)
        cookie = re.match(r"kw_session=([A-Za-z0-9_-]+);", hdrs["Set-Cookie"]).group(1)
        h = {"Cookie": "kw_session=" + cookie}
        self.assertProblem(self.srv.patch(PROJECT, {"heatmaps_opt_in": True}, headers=h), 403,
                           "permission_denied")
        self.assertFalse(self.settings_in_db()["heatmaps_opt_in"])
        h["X-CSRFToken"] = body["csrf_token"]
        self.assertStatus(self.srv.patch(PROJECT, {"heatmaps_opt_in": True}, headers=h), 200)
        self.assertTrue(self.settings_in_db()["heatmaps_opt_in"])

    def test_bad_input_changes_nothing(self):
        etag = self.config()[1]["ETag"]
        bad = [
            ({"autocapture_opt_out": "true"}, "autocapture_opt_out"),
            ({"autocapture_opt_out": 1}, "autocapture_opt_out"),
            ({"autocapture_opt_out": None}, "autocapture_opt_out"),
            ({"heatmaps_opt_in": [True]}, "heatmaps_opt_in"),
            ({"capture_performance_opt_in": {}}, "capture_performance_opt_in"),
            # one bad field: the good one is not written either
            ({"autocapture_opt_out": True, "heatmaps_opt_in": "yes"}, "heatmaps_opt_in"),
        ]
        for body, attr in bad:
            with self.subTest(body=body):
                self.assertProblem(self.patch(body), 400, "invalid", "Must be a valid boolean.",
                                   attr=attr)
        for raw, code in (("[]", "invalid"), ('"x"', "parse_error"), ("{", "parse_error"),
                          ('{"autocapture_opt_out": true, "autocapture_opt_out": false}',
                           "parse_error"),
                          (b'{"autocapture_opt_out": tr\x00ue}', "parse_error"),
                          (b'{"autocapture_opt_out": true, "x": "\xff"}', "parse_error")):
            with self.subTest(raw=raw):
                self.assertProblem(self.srv.request("PATCH", PROJECT, key=self.key, raw=raw), 400,
                                   code)
        self.assertEqual(self.settings_in_db(), DEFAULTS)
        self.assertEqual(self.config()[1]["ETag"], etag)
        # a bad name with a good setting: refused as a whole, nothing written
        self.assertProblem(self.patch({"name": "x" * 10000, "autocapture_opt_out": True}), 400,
                           "max_length", attr="name")
        self.assertEqual(self.settings_in_db(), DEFAULTS)
        # fields nobody may PATCH are ignored (DRF ignores read-only fields), 200
        got = self.assertStatus(self.patch({"api_token": "phc_x", "id": 99}), 200)
        self.assertEqual(got["id"], 1)
        self.assertEqual(got["api_token"], self.token)
        self.assertEqual(self.settings_in_db(), DEFAULTS)
        # no body at all: refused like every PATCH of keyward's
        self.assertProblem(self.srv.request("PATCH", PROJECT, key=self.key), 400, "invalid",
                           attr="non_field_errors")
        # other projects' ids and odd ids
        for path in ("/api/projects/999/", "/api/projects/0/", "/api/projects/-1/",
                     "/api/projects/1x/", "/api/projects/%s/" % urllib.parse.quote("1 ")):
            with self.subTest(path=path):
                self.assertProblem(self.srv.patch(path, {"heatmaps_opt_in": True},
                                                  key=self.key), 404, "not_found")


if __name__ == "__main__":
    kwtest.main()
