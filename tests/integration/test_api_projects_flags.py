"""Projects, feature flags and the activity log over HTTP, in PostHog's shapes."""
import re
import urllib.parse

import kwtest
from kwtest import KWTestCase

FLAGS = "/api/projects/1/feature_flags/"
LOG = "/api/projects/1/activity_log/"
PK = "/api/personal_api_keys/"
FLAG_FIELDS = ["id", "team_id", "name", "key", "filters", "deleted", "active", "created_by",
               "created_at", "version"]
FULL_KEY_RE = re.compile(r"ph[xsc]_[0-9A-Za-z]{20,}")


class TestProjects(KWTestCase):
    def test_project_shape(self):
        p = self.assertStatus(self.srv.get("/api/projects/1/", key=self.key), 200)
        for field in ("id", "uuid", "organization", "api_token", "name", "created_at"):
            self.assertIn(field, p)
        self.assertEqual(p["id"], 1)
        self.assertEqual(p["name"], "Web")
        self.assertEqual(p["api_token"], self.token)
        self.assertEqual(p["organization"], self.env.org_a)
        page = self.assertStatus(self.srv.get("/api/projects/", key=self.key), 200)
        self.assertEqual(list(page.keys()), ["count", "next", "previous", "results"])
        self.assertEqual(page["count"], 1)
        # The list is PostHog's basic shape: the project's fields without
        # its SDK settings (autocapture_opt_out …), which only GET shows.
        listed = page["results"][0]
        self.assertEqual(listed, {k: v for k, v in p.items() if k in listed})
        self.assertNotIn("autocapture_opt_out", listed)
        self.assertIn("autocapture_opt_out", p)

    def test_project_list_pagination(self):
        for i in range(3):
            self.env.add_project(self.env.org_a, "extra %d" % i)
        # the server reads the store per request: new rows show at once
        page = self.assertStatus(self.srv.get("/api/projects/?limit=2", key=self.key), 200)
        self.assertEqual(page["count"], 4)
        self.assertEqual(len(page["results"]), 2)
        self.assertIsNotNone(page["next"])
        nxt = urllib.parse.urlsplit(page["next"])
        page2 = self.assertStatus(self.srv.get(nxt.path + "?" + nxt.query, key=self.key), 200)
        self.assertEqual(len(page2["results"]), 2)
        self.assertIsNone(page2["next"])
        ids = [p["id"] for p in page["results"] + page2["results"]]
        self.assertEqual(sorted(ids), sorted(set(ids)))
        self.assertEqual(len(ids), 4)

    def test_me(self):
        me = self.assertStatus(self.srv.get("/api/users/@me/", key=self.key), 200)
        self.assertEqual(me["email"], "a@x.io")
        self.assertEqual(me["team"]["id"], 1)
        self.assertEqual(me["organization"]["id"], self.env.org_a)


class TestFlags(KWTestCase):
    def create(self, body, key=None):
        return self.srv.post(FLAGS, body, key=key or self.key)

    def flag_rows(self):
        return self.env.sql("SELECT * FROM feature_flags ORDER BY id")

    def test_create_fields(self):
        filters = {"groups": [{"properties": [], "rollout_percentage": 50}]}
        st, hdrs, f = self.create({"key": "new-checkout", "name": "New checkout",
                                   "filters": filters})
        self.assertEqual(st, 201, f)
        keys = list(f.keys())
        for field in FLAG_FIELDS:
            self.assertIn(field, keys)
        # PostHog's order for the leading fields
        self.assertEqual([k for k in keys if k in FLAG_FIELDS], FLAG_FIELDS)
        self.assertIsInstance(f["id"], int)
        self.assertEqual(f["team_id"], 1)
        self.assertEqual(f["key"], "new-checkout")
        self.assertEqual(f["name"], "New checkout")
        self.assertEqual(f["filters"], filters)
        self.assertIs(f["deleted"], False)
        self.assertIs(f["active"], True)
        self.assertEqual(f["created_by"]["id"], self.env.user_a)
        self.assertEqual(f["created_by"]["email"], "a@x.io")
        self.assertIsInstance(f["version"], int)
        self.assertIsNotNone(f["created_at"])
        got = self.assertStatus(self.srv.get(FLAGS + "%d/" % f["id"], key=self.key), 200)
        self.assertEqual(got, f)
        page = self.assertStatus(self.srv.get(FLAGS, key=self.key), 200)
        self.assertEqual(list(page.keys()), ["count", "next", "previous", "results"])
        self.assertEqual(page["count"], 1)
        self.assertEqual(page["results"], [f])

    def test_key_required(self):
        before = self.flag_rows()
        self.assertProblem(self.create({"name": "x"}), 400, "required", "This field is required.",
                           "key")
        self.assertEqual(self.flag_rows(), before)

    def test_duplicate_key(self):
        self.assertStatus(self.create({"key": "dup"}), 201)
        before = self.flag_rows()
        self.assertProblem(self.create({"key": "dup"}), 400, None, attr="key")
        self.assertEqual(self.flag_rows(), before)
        # a key that exists in another project is fine
        other = self.env  # same org: add project 2 and create there
        p2 = other.add_project(other.org_a, "Other")
        self.assertStatus(self.srv.post("/api/projects/%d/feature_flags/" % p2, {"key": "dup"},
                                        key=self.key), 201)

    def test_bad_key_chars(self):
        before = self.flag_rows()
        for key in ("has space", "semi;colon", "slash/es", "dot.ted", "ünï", ""):
            with self.subTest(key=key):
                st, _, err = self.create({"key": key})
                self.assertEqual(st, 400, err)
                self.assertEqual(err["type"], "validation_error")
                self.assertEqual(err["attr"], "key")
        self.assertEqual(self.flag_rows(), before)
        for key in ("ok-key", "ok_key", "OK123"):
            with self.subTest(key=key):
                self.assertStatus(self.create({"key": key}), 201)

    def test_bad_types_and_filters(self):
        before = self.flag_rows()
        for body, attr in (({"key": 5}, "key"), ({"key": "k", "active": "yes"}, "active"),
                           ({"key": "k", "filters": "all"}, "filters"),
                           ({"key": "k", "filters": {"groups": [{"rollout_percentage": 150}]}},
                            "filters"),
                           ({"key": "k", "filters": {"groups": "x"}}, "filters"),
                           ({"key": "k" * 401}, "key"),
                           ({"key": "k", "filters": {"groups": [], "multivariate": {"variants": [
                               {"key": "a", "rollout_percentage": 60},
                               {"key": "b", "rollout_percentage": 60}]}}}, "filters")):
            with self.subTest(body=body):
                st, _, err = self.create(body)
                self.assertEqual(st, 400, err)
                self.assertEqual(err["attr"], attr, err)
        self.assertProblem(self.srv.request("POST", FLAGS, key=self.key, raw="{"), 400,
                           "parse_error")
        self.assertEqual(self.flag_rows(), before)

    def test_patch_bumps_version(self):
        f = self.assertStatus(self.create({"key": "v"}), 201)
        path = FLAGS + "%d/" % f["id"]
        u = self.assertStatus(self.srv.patch(path, {"name": "Renamed"}, key=self.key), 200)
        self.assertEqual(u["name"], "Renamed")
        self.assertEqual(u["version"], f["version"] + 1)
        u2 = self.assertStatus(self.srv.patch(path, {"active": False}, key=self.key), 200)
        self.assertIs(u2["active"], False)
        self.assertEqual(u2["version"], f["version"] + 2)
        got = self.assertStatus(self.srv.get(path, key=self.key), 200)
        self.assertEqual((got["name"], got["active"], got["version"]),
                         ("Renamed", False, f["version"] + 2))
        # invalid patch changes nothing
        self.assertEqual(self.srv.patch(path, {"key": "bad key"}, key=self.key)[0], 400)
        self.assertEqual(self.srv.get(path, key=self.key)[2], got)

    def test_patch_key_to_existing_refused(self):
        self.assertStatus(self.create({"key": "a"}), 201)
        b = self.assertStatus(self.create({"key": "b"}), 201)
        st, _, err = self.srv.patch(FLAGS + "%d/" % b["id"], {"key": "a"}, key=self.key)
        self.assertEqual(st, 400, err)
        self.assertEqual(err["attr"], "key")
        self.assertEqual(self.srv.get(FLAGS + "%d/" % b["id"], key=self.key)[2]["key"], "b")

    def test_delete(self):
        f = self.assertStatus(self.create({"key": "gone"}), 201)
        path = FLAGS + "%d/" % f["id"]
        st, _, body = self.srv.delete(path, key=self.key)
        self.assertEqual(st, 204, body)
        self.assertEqual(self.srv.last_text, "")
        self.assertProblem(self.srv.get(path, key=self.key), 404, "not_found", "Not found.")
        self.assertProblem(self.srv.patch(path, {"name": "x"}, key=self.key), 404, "not_found")
        self.assertProblem(self.srv.delete(path, key=self.key), 404, "not_found")
        self.assertEqual(self.srv.get(FLAGS, key=self.key)[2]["count"], 0)
        again = self.assertStatus(self.create({"key": "gone"}), 201)
        self.assertNotEqual(again["id"], f["id"])
        self.assertIs(again["deleted"], False)

    def test_patch_deleted_true_is_a_delete(self):
        f = self.assertStatus(self.create({"key": "soft"}), 201)
        path = FLAGS + "%d/" % f["id"]
        self.assertStatus(self.srv.patch(path, {"deleted": True}, key=self.key), 200)
        self.assertProblem(self.srv.get(path, key=self.key), 404, "not_found")
        self.assertEqual(self.srv.get(FLAGS, key=self.key)[2]["count"], 0)
        self.assertStatus(self.create({"key": "soft"}), 201)

    def test_unknown_flag_ids(self):
        for fid in ("999", "abc", "-1", "1.5"):
            with self.subTest(fid=fid):
                self.assertProblem(self.srv.get(FLAGS + fid + "/", key=self.key), 404, "not_found")

    def test_concurrent_same_key_one_wins(self):
        import concurrent.futures
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda i: self.create({"key": "race"})[0], range(8)))
        self.assertEqual(sorted(statuses), [201] + [400] * 7, statuses)
        self.assertEqual(self.srv.get(FLAGS, key=self.key)[2]["count"], 1)

    def test_list_newest_first(self):
        ids = [self.assertStatus(self.create({"key": "k%d" % i}), 201)["id"] for i in range(3)]
        page = self.assertStatus(self.srv.get(FLAGS, key=self.key), 200)
        self.assertEqual([f["id"] for f in page["results"]], list(reversed(ids)))

    def test_list_pages_and_follows_every_write(self):
        # The list is served from rendered objects kept per version of the
        # project's flags: every page, and every write at once, must show.
        ids = [self.assertStatus(self.create({"key": "p%d" % i}), 201)["id"] for i in range(5)]
        newest = list(reversed(ids))
        whole = self.assertStatus(self.srv.get(FLAGS, key=self.key), 200)
        one = self.assertStatus(self.srv.get(FLAGS + "%d/" % ids[2], key=self.key), 200)
        self.assertEqual(whole["results"][2], one, "a listed flag is the flag as GET shows it")
        for limit, offset in ((2, 0), (2, 2), (2, 4), (2, 5), (3, 99), (1000, 0), (1, 4)):
            with self.subTest(limit=limit, offset=offset):
                page = self.assertStatus(self.srv.get(FLAGS + "?limit=%d&offset=%d" % (limit, offset),
                                                      key=self.key), 200)
                self.assertEqual(page["count"], 5)
                self.assertEqual([f["id"] for f in page["results"]], newest[offset:offset + limit])
                self.assertEqual(page["next"] is not None, offset + limit < 5)
                self.assertEqual(page["previous"] is not None, offset > 0)
        # a write shows in the very next list: rename, deactivate, delete, create
        self.assertStatus(self.srv.patch(FLAGS + "%d/" % ids[0], {"name": "Renamed", "active": False},
                                         key=self.key), 200)
        listed = {f["id"]: f for f in self.srv.get(FLAGS, key=self.key)[2]["results"]}
        self.assertEqual((listed[ids[0]]["name"], listed[ids[0]]["active"]), ("Renamed", False))
        self.assertEqual(listed[ids[0]]["version"], 2)
        self.assertEqual(self.srv.delete(FLAGS + "%d/" % ids[1], key=self.key)[0], 204)
        page = self.srv.get(FLAGS, key=self.key)[2]
        self.assertEqual((page["count"], ids[1] in [f["id"] for f in page["results"]]), (4, False))
        made = self.assertStatus(self.create({"key": "p9"}), 201)
        self.assertEqual(self.srv.get(FLAGS + "?limit=1", key=self.key)[2]["results"], [made])
        # another project's list is its own
        other = self.env.add_project(self.env.org_a, "Other")
        page = self.assertStatus(self.srv.get("/api/projects/%d/feature_flags/" % other, key=self.key), 200)
        self.assertEqual((page["count"], page["results"]), (0, []))


class TestActivityLog(KWTestCase):
    def log(self, query="", key=None):
        st, _, body = self.srv.get(LOG + query, key=key or self.key)
        self.assertEqual(st, 200, body)
        text = self.srv.last_text
        self.assertNotIn("sha256$", text)
        self.assertNotIn("pbkdf2", text)
        self.assertIsNone(FULL_KEY_RE.search(text), "a key value in the activity log")
        for v in getattr(self, "values", []):
            self.assertNotIn(v, text)
            self.assertNotIn(v[4:], text)
        return body

    def make_history(self):
        self.values = [self.key]
        f = self.assertStatus(self.srv.post(FLAGS, {"key": "audited"}, key=self.key), 201)
        self.assertStatus(self.srv.patch(FLAGS + "%d/" % f["id"], {"name": "Audited"},
                                         key=self.key), 200)
        self.assertEqual(self.srv.delete(FLAGS + "%d/" % f["id"], key=self.key)[0], 204)
        k = self.assertStatus(self.srv.post(PK, {"label": "audited key", "scopes": ["user:read"]},
                                            key=self.key), 201)
        self.values.append(k["value"])
        self.assertStatus(self.srv.patch(PK + k["id"] + "/", {"label": "audited key 2"},
                                         key=self.key), 200)
        r = self.assertStatus(self.srv.post(PK + k["id"] + "/roll/", key=self.key), 200)
        self.values.append(r["value"])
        self.assertEqual(self.srv.delete(PK + k["id"] + "/", key=self.key)[0], 204)
        return f, k

    def test_entries_for_flag_and_key_events(self):
        f, k = self.make_history()
        body = self.log()
        self.assertEqual(list(body.keys()), ["next", "previous", "results"])
        entries = body["results"]
        seen = {(e["scope"], e["activity"], e["item_id"]) for e in entries}
        fid = str(f["id"])
        for activity in ("created", "updated", "deleted"):
            self.assertIn(("FeatureFlag", activity, fid), seen)
        for activity in ("created", "updated", "rolled", "deleted"):
            self.assertIn(("PersonalAPIKey", activity, k["id"]), seen)
        for e in entries:
            for field in ("id", "user", "activity", "item_id", "scope", "detail", "created_at"):
                self.assertIn(field, e)
            self.assertIsNotNone(e["created_at"])
            self.assertEqual(e["user"]["email"], "a@x.io")
            self.assertIn("changes", e["detail"])
        # newest first
        times = [e["created_at"] for e in entries]
        self.assertEqual(times, sorted(times, reverse=True))
        upd = [e for e in entries if e["scope"] == "PersonalAPIKey" and e["activity"] == "updated"]
        changes = upd[0]["detail"]["changes"]
        self.assertIn({"field": "label", "before": "audited key", "after": "audited key 2"},
                      [{x: c.get(x) for x in ("field", "before", "after")} for c in changes])
        fupd = [e for e in entries if e["scope"] == "FeatureFlag" and e["activity"] == "updated"]
        self.assertEqual(fupd[0]["detail"]["name"], "audited")

    def test_scope_filter(self):
        self.make_history()
        for scope in ("FeatureFlag", "PersonalAPIKey"):
            with self.subTest(scope=scope):
                entries = self.log("?scope=" + scope)["results"]
                self.assertTrue(entries)
                self.assertEqual({e["scope"] for e in entries}, {scope})
        both = self.log("?scopes=FeatureFlag,PersonalAPIKey")["results"]
        self.assertEqual(len(both), len(self.log()["results"]))
        self.assertEqual(self.log("?scope=Nope")["results"], [])

    def test_item_filter(self):
        f, k = self.make_history()
        entries = self.log("?item_id=" + k["id"])["results"]
        self.assertEqual({e["item_id"] for e in entries}, {k["id"]})
        self.assertEqual(len(entries), 4)

    def test_cursor_pagination(self):
        self.make_history()
        full = self.log()["results"]
        self.assertGreaterEqual(len(full), 8)
        collected = []
        page = self.log("?page_size=2")
        pages = 0
        while True:
            pages += 1
            self.assertLessEqual(len(page["results"]), 2)
            collected += page["results"]
            if not page["next"]:
                break
            nxt = urllib.parse.urlsplit(page["next"])
            self.assertEqual(nxt.path.rstrip("/"), LOG.rstrip("/"))
            page = self.log("?" + nxt.query)
            self.assertLess(pages, 50)
        self.assertEqual([e["id"] for e in collected], [e["id"] for e in full])

    def test_page_numbers_give_count(self):
        self.make_history()
        total = len(self.log()["results"])
        p1 = self.log("?page=1&page_size=2")
        self.assertEqual(list(p1.keys()), ["count", "next", "previous", "results"])
        self.assertEqual(p1["count"], total)
        self.assertEqual(len(p1["results"]), 2)
        self.assertIsNone(p1["previous"])
        self.assertIsNotNone(p1["next"])
        nxt = urllib.parse.urlsplit(p1["next"])
        p2 = self.log("?" + nxt.query)
        self.assertEqual(p2["count"], total)
        self.assertNotEqual([e["id"] for e in p2["results"]], [e["id"] for e in p1["results"]])
        self.assertIsNotNone(p2["previous"])

    def test_reset_token_logged_without_token(self):
        old = self.token
        new = self.assertStatus(self.srv.patch("/api/projects/1/reset_token/", key=self.key),
                                200)["api_token"]
        body = self.log("?scope=Project")
        self.assertEqual(len(body["results"]), 1)
        self.assertEqual(body["results"][0]["activity"], "updated")
        self.assertNotIn(old, self.srv.last_text)
        self.assertNotIn(new, self.srv.last_text)

    def test_user_filter_and_ip(self):
        self.make_history()
        mine = self.log("?user=%d" % self.env.user_a)["results"]
        self.assertEqual(len(mine), len(self.log()["results"]))
        self.assertEqual(self.log("?user=999")["results"], [])
        api_entries = [e for e in mine if e["activity"] != "created" or e["scope"] != "PersonalAPIKey"
                       or e["detail"].get("name") != "keyward init"]
        for e in api_entries:
            self.assertEqual(e["ip_address"], "127.0.0.1", e)

    def test_key_events_fan_out_to_reachable_projects(self):
        p2 = self.env.add_project(self.env.org_a, "Second")
        wide = self.assertStatus(self.srv.post(PK, {"label": "wide", "scopes": ["*"]},
                                               key=self.key), 201)
        narrow = self.assertStatus(self.srv.post(PK, {"label": "narrow", "scopes": ["*"],
                                                      "scoped_teams": [1]}, key=self.key), 201)
        self.values = [self.key, wide["value"], narrow["value"]]
        log1 = self.log("?scope=PersonalAPIKey")["results"]
        st, _, log2 = self.srv.get("/api/projects/%d/activity_log/?scope=PersonalAPIKey" % p2,
                                   key=self.key)
        self.assertEqual(st, 200, log2)
        items1 = {e["item_id"] for e in log1}
        items2 = {e["item_id"] for e in log2["results"]}
        self.assertIn(wide["id"], items1)
        self.assertIn(wide["id"], items2)
        self.assertIn(narrow["id"], items1)
        self.assertNotIn(narrow["id"], items2)

    def test_key_use_writes_no_activity(self):
        before = self.log()["results"]
        k = self.assertStatus(self.srv.post(PK, {"label": "u", "scopes": ["user:read"]},
                                            key=self.key), 201)
        for _ in range(3):
            self.assertStatus(self.srv.get("/api/users/@me/", key=k["value"]), 200)
        self.poll(lambda: self.srv.get(PK + k["id"] + "/", key=self.key)[2]["last_used_at"])
        after = self.log()["results"]
        self.assertEqual(len(after), len(before) + 1)  # the "created" entry only

    def test_ordering_ascending(self):
        self.make_history()
        desc = [e["id"] for e in self.log()["results"]]
        asc = [e["id"] for e in self.log("?ordering=created_at")["results"]]
        self.assertEqual(asc, list(reversed(desc)))

    def test_empty_patch_logs_nothing(self):
        f = self.assertStatus(self.srv.post(FLAGS, {"key": "quiet"}, key=self.key), 201)
        k = self.assertStatus(self.srv.post(PK, {"label": "quiet", "scopes": ["*"]},
                                            key=self.key), 201)
        before = len(self.log()["results"])
        same = self.assertStatus(self.srv.patch(FLAGS + "%d/" % f["id"], {}, key=self.key), 200)
        self.assertEqual(same["version"], f["version"])
        self.assertStatus(self.srv.patch(PK + k["id"] + "/", {"label": "quiet"}, key=self.key), 200)
        self.assertEqual(len(self.log()["results"]), before)

    def test_failed_writes_are_not_logged(self):
        before = len(self.log()["results"])
        self.srv.post(PK, {"label": "x" * 41, "scopes": ["*"]}, key=self.key)
        self.srv.post(FLAGS, {"key": "bad key"}, key=self.key)
        self.assertEqual(len(self.log()["results"]), before)


if __name__ == "__main__":
    kwtest.main()
