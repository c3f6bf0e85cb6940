"""Query strings an attacker controls, on every route of the route table.

A long query value once overflowed a stack buffer in the activity log's
pagination links (GET /api/projects/1/activity_log/?scope=<1828 x A>&user=1
killed the server).  The rule now holds in one place for every route: a
query value (or name) longer than 1024 bytes, a name given twice, a NUL
byte, or more than 64 parameters is refused with a 400 problem before the
route runs, and the server stays up.  Values up to the cap work, including
in the links that repeat them."""
import re
import socket

import kwtest
from test_security_sweep import ROUTES, SweepBase

CAP = 1024
# Every name a handler reads from the query string (grep kw_req_query).
PARAMS = ["compression", "cursor", "item_id", "limit", "offset", "ordering", "page", "page_size",
          "personal_api_key", "rotation_days", "scope", "scopes", "token", "user", "v",
          "variables"]
GET_ROUTES = [r for r in ROUTES if r["method"] == "GET"]


class TestQueryLimits(SweepBase):
    def alive(self):
        self.assertStatus(self.srv.get("/_health"), 200)

    def get_path(self, route):
        pattern = route["pattern"]
        if not pattern.startswith("/api/"):  # console pages, /flags/…, /_health
            return re.sub(r":[a-z]+", "x", pattern)
        return self.fill(pattern)

    def test_activity_long_scope_regression(self):
        # The reported crash, verbatim: the server must answer and live.
        path = "/api/projects/1/activity_log/?scope=%s&user=1" % ("A" * 1828)
        try:
            res = self.srv.get(path, key=self.key)
        except (ConnectionError, OSError) as e:
            self.fail("the server died on a long scope: %r; stderr:\n%s" % (e, self.srv.stderr()))
        self.assertProblem(res, 400, "query_too_long", attr="scope")
        self.alive()

    def test_every_get_route_every_param_5000(self):
        big = "A" * 5000
        n = 0
        for route in GET_ROUTES:
            path = self.get_path(route)
            for name in PARAMS:
                res = self.srv.get("%s?%s=%s" % (path, name, big), key=self.key)
                self.assertProblem(res, 400, "query_too_long", attr=name)
                n += 1
            # and all of them at once (each at the cap + 1)
            q = "&".join("%s=%s" % (p, "B" * (CAP + 1)) for p in PARAMS[:8])
            self.assertProblem(self.srv.get("%s?%s" % (path, q), key=self.key), 400,
                               "query_too_long")
        self.alive()
        print("\n%d GET routes x %d parameters at 5,000 bytes: all 400" % (len(GET_ROUTES), len(PARAMS)))
        self.assertGreaterEqual(n, 100)

    def test_long_name_and_no_credential(self):
        # The check runs before authentication: no key needed to reach it.
        res = self.srv.get("/api/projects/1/activity_log/?%s=1" % ("n" * 5000))
        self.assertProblem(res, 400, "query_too_long")
        res = self.srv.get("/_health?scope=%s" % ("A" * 5000))
        self.assertProblem(res, 400, "query_too_long", attr="scope")
        self.alive()

    def test_at_cap_works_and_links_keep_it(self):
        s = self.srv
        for i in range(3):
            self.assertStatus(s.post("/api/projects/1/feature_flags/",
                                     {"key": "f%d" % i, "name": "F"}, key=self.key), 201)
        # The links repeat the caller's filters (cursor pagination here).
        path = ("/api/projects/1/activity_log/?page_size=1&user=%d&scope=FeatureFlag"
                % self.env.user_a)
        body = self.assertStatus(s.get(path, key=self.key), 200)
        self.assertEqual(len(body["results"]), 1)
        self.assertIn("scope=FeatureFlag", body["next"])
        self.assertIn("user=%d" % self.env.user_a, body["next"])
        at_cap = "x" * CAP
        body = self.assertStatus(
            s.get("/api/projects/1/activity_log/?page_size=1&scope=%s&user=1" % at_cap,
                  key=self.key), 200)
        self.assertEqual(body["results"], [])
        body = self.assertStatus(
            s.get("/api/projects/1/activity_log/?page=1&page_size=1&item_id=%s" % at_cap,
                  key=self.key), 200)
        self.assertEqual(body["count"], 0)
        self.alive()

    def test_percent_encoded_length_counts_decoded(self):
        # %41 is one byte once decoded: 1024 of them are at the cap, 1025 over.
        ok = self.srv.get("/api/projects/1/activity_log/?scope=%s" % ("%41" * CAP), key=self.key)
        self.assertStatus(ok, 200)
        res = self.srv.get("/api/projects/1/activity_log/?scope=%s" % ("%41" * (CAP + 1)),
                           key=self.key)
        self.assertProblem(res, 400, "query_too_long", attr="scope")

    def test_repeated_parameter(self):
        for route in GET_ROUTES:
            path = self.get_path(route)
            res = self.srv.get("%s?limit=1&limit=2" % path, key=self.key)
            self.assertProblem(res, 400, "query_repeated", attr="limit")
        # Also when the credential is the repeated one: never "first wins".
        res = self.srv.get("/api/users/@me/?personal_api_key=%s&personal_api_key=x" % self.key)
        self.assertProblem(res, 400, "query_repeated", attr="personal_api_key")
        self.alive()

    def test_nul_byte(self):
        for value in ("a%00b", "%00", "abc%00"):
            res = self.srv.get("/api/projects/1/activity_log/?scope=%s" % value, key=self.key)
            self.assertProblem(res, 400, "query_invalid", attr="scope")
        res = self.srv.get("/api/projects/1/activity_log/?sc%00ope=1", key=self.key)
        self.assertProblem(res, 400, "query_invalid")
        self.alive()

    def test_too_many_parameters(self):
        q = "&".join("p%d=1" % i for i in range(65))
        res = self.srv.get("/api/users/@me/?%s" % q, key=self.key)
        self.assertProblem(res, 400, "query_too_many")
        q = "&".join("p%d=1" % i for i in range(64))
        self.assertStatus(self.srv.get("/api/users/@me/?%s" % q, key=self.key), 200)

    def test_post_routes_too(self):
        res = self.srv.post("/api/projects/1/feature_flags/?x=%s" % ("A" * 5000),
                            {"key": "q", "name": "Q"}, key=self.key)
        self.assertProblem(res, 400, "query_too_long", attr="x")
        # nothing was created
        got = self.assertStatus(self.srv.get("/api/projects/1/feature_flags/", key=self.key), 200)
        self.assertNotIn("q", [f["key"] for f in got["results"]])

    def test_header_too_large_is_431(self):
        s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=5)
        try:
            big = "X-Filler: " + "a" * (70 * 1024) + "\r\n"
            s.sendall(("GET /_health HTTP/1.1\r\nHost: x\r\n%s\r\n" % big).encode())
            out = s.recv(4096)
        finally:
            s.close()
        self.assertTrue(out.startswith(b"HTTP/1.1 431"), out[:100])
        self.alive()


if __name__ == "__main__":
    kwtest.main()
