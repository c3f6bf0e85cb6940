"""Security sweep, driven by the route table.

The routes are not listed here: they are parsed from lib/policy/policy.c's ROUTES
rows (method, pattern, credentials, scope, the personal-key scope text), so
a route added there is swept without touching this file.  For every /api/
route: no credential, a phc_ token, a phs_ key, a phx_ key without the
route's scope, another organization's key on project 1 and another user's
key ids (BOLA/IDOR) are all refused with the documented status and text,
and nothing was changed by the refused requests.

Then the limits and the hygiene: oversized headers and bodies, SQL
injection strings in every text field of the create routes, no plaintext
key in the server's output, verification timing of existing vs unknown
keys (cache miss and cache hit), and the security headers."""
import json
import os
import re
import socket
import statistics
import time
import urllib.parse

import kwtest
from kwtest import (KWTestCase, MSG_INVALID_HEADER, MSG_NOT_PROVIDED, MSG_PERSONAL_UNSUPPORTED,
                    MSG_SECRET_UNSUPPORTED, make_key, mask, sha256_secure, now_us)

MSG_SECRET_INVALID = "Secret API token is invalid."

# --------------------------------------------------------------------------
# The route table, read from lib/policy/policy.c

CRED_MACROS = {
    "ADMIN": {"personal", "session"},
    "EXEC": {"secret", "personal", "session"},
    "KW_CRED_NONE": {"none"},
    "KW_CRED_PROJECT": {"project"},
    "KW_CRED_PERSONAL": {"personal"},
    "KW_CRED_SECRET": {"secret"},
    "KW_CRED_SESSION": {"session"},
}
MSG_MACROS = {"KW_MSG_PERSONAL_UNSUPPORTED": MSG_PERSONAL_UNSUPPORTED}

ROW_RE = re.compile(
    r"\{\s*(KW_ROUTE_[A-Z0-9_]+)\s*,\s*\"([A-Z]+)\"\s*,\s*\"([^\"]+)\"\s*,\s*"
    r"([A-Z_]+(?:\s*\|\s*[A-Z_]+)*)\s*,\s*(NULL|\"[^\"]*\")\s*,\s*([A-Z_0-9]+)\s*,\s*"
    r"(NULL|[A-Z_]+)\s*(?:,\s*\d+\s*)?\}")


def load_routes():
    with open(os.path.join(kwtest.ROOT, "lib", "policy", "policy.c")) as f:
        src = f.read()
    table = src[src.index("ROUTES[] = {"):src.index("_Static_assert")]
    # Comments may hold braces or quotes: drop them before matching rows.
    table = re.sub(r"/\*.*?\*/", "", table, flags=re.S)
    routes = []
    for m in ROW_RE.finditer(table):
        rid, method, pattern, creds, scope, level, denied = m.groups()
        kinds = set()
        for part in creds.split("|"):
            kinds |= CRED_MACROS[part.strip()]
        routes.append({
            "id": rid, "method": method, "pattern": pattern, "creds": kinds,
            "scope": None if scope == "NULL" else scope.strip('"'),
            "level": level,
            "denied": None if denied == "NULL" else MSG_MACROS[denied]})
    # Every row must have been understood: as many rows as route ids.
    n_ids = len(re.findall(r"\{\s*KW_ROUTE_", table))
    if len(routes) != n_ids or not routes:
        raise AssertionError("parsed %d of %d route rows in lib/policy/policy.c" % (len(routes), n_ids))
    return routes


ROUTES = load_routes()
API_ROUTES = [r for r in ROUTES if r["pattern"].startswith("/api/")]

SQLI = ["'; DROP TABLE users; --", "\" OR 1=1 --", "%' OR '1'='1"]


def median_ms(samples):
    return statistics.median(samples) * 1000.0


class SweepBase(KWTestCase):
    """Tenants: user A (owner of org A, project 1), user B (org B, project
    2), user C (member of org A).  Project 1 holds a flag, an endpoint and a
    project secret key; project 2 has its own secret key."""

    FLAG_KEY = "alpha-secret-flag"
    ENDPOINT = "alpha-endpoint"

    def setup_db(self):
        self.env.tenants()

    def setUp(self):
        super().setUp()
        s, k = self.srv, self.key
        self.flag = self.assertStatus(s.post("/api/projects/1/feature_flags/",
                                             {"key": self.FLAG_KEY, "name": "Alpha flag"}, key=k),
                                      201)
        self.endpoint = self.assertStatus(s.post(
            "/api/projects/1/endpoints/",
            {"name": self.ENDPOINT, "description": "alpha", "query": {"kind": "event_counts"}},
            key=k), 201)
        self.psk = self.assertStatus(s.post(
            "/api/projects/1/project_secret_api_keys/",
            {"label": "alpha psk", "scopes": ["feature_flag:read", "endpoint:read"]}, key=k), 201)
        self.psk_b = self.assertStatus(s.post(
            "/api/projects/%d/project_secret_api_keys/" % self.env.project_b,
            {"label": "beta psk", "scopes": ["feature_flag:read", "endpoint:read"]},
            key=self.env.key_b), 201)
        me = self.assertStatus(s.get("/api/personal_api_keys/@current/", key=k), 200)
        self.pkey_a_id = me["id"]
        self.token_b = self.env.sql("SELECT api_token FROM projects WHERE id=?",
                                    (self.env.project_b,))[0][0]

    # paths ----------------------------------------------------------------

    def fill(self, pattern, project=1, pkey=None, psk=None, flag=None, endpoint=None, user=None,
             org=None):
        """The route's path with every parameter filled, and a trailing /."""
        path = pattern
        path = path.replace(":project", str(project))
        path = path.replace(":org", org or self.env.org_a)
        if "/personal_api_keys/:id" in path:
            path = path.replace(":id", pkey or self.pkey_a_id)
        elif "/project_secret_api_keys/:id" in path:
            path = path.replace(":id", psk or self.psk["id"])
        elif "/endpoints/:id" in path:
            path = path.replace(":id", endpoint or self.ENDPOINT)
        elif "/users/:id" in path:
            path = path.replace(":id", str(user or self.env.user_a))
        elif "/members/:id" in path:
            path = path.replace(":id", self.env.sql("SELECT uuid FROM users WHERE id=?",
                                                    (user or self.env.user_a,))[0][0])
        elif "/webhooks/:id" in path:  # refusals come from the policy, before any lookup
            path = path.replace(":id", "00000000-0000-4000-8000-000000000000")
        elif "/invites/:id" in path:
            path = path.replace(":id", "no-such-invitation")
        elif "/feature_flags/:id" in path:  # remote config: by flag key
            path = path.replace(":id", self.FLAG_KEY)
        path = path.replace(":num", str(flag or self.flag["id"]))
        self.assertNotIn(":", path, "a parameter this sweep does not know: %s" % pattern)
        return path + "/"

    def call(self, route, path, key):
        body = {} if route["method"] in ("POST", "PATCH") else None
        if route["id"] in ("KW_ROUTE_LEAK_REPORT", "KW_ROUTE_LEAK_VERIFY"):
            body = []
        elif route["id"] == "KW_ROUTE_USER_UPDATE":
            # A valid body, so a refusal cannot hide behind a 400.
            body = {"is_active": False}
        return self.srv.request(route["method"], path, key=key, body=body)

    def assertUntouched(self):
        """Nothing of project 1 / user A was changed by refused requests."""
        s = self.srv
        self.assertStatus(s.get("/api/users/@me/", key=self.key), 200)
        got = self.assertStatus(s.get("/api/projects/1/feature_flags/%d/" % self.flag["id"],
                                      key=self.key), 200)
        self.assertFalse(got["deleted"])
        self.assertEqual(got["version"], self.flag["version"])
        self.assertStatus(s.get("/api/projects/1/endpoints/%s/" % self.ENDPOINT, key=self.key), 200)
        self.assertStatus(s.get("/flags/definitions", key=self.psk["value"]), 200)
        token = self.env.sql("SELECT api_token FROM projects WHERE id=1")[0][0]
        self.assertEqual(token, self.token)
        self.assertEqual(self.env.sql("SELECT is_active FROM users WHERE id=?",
                                      (self.env.user_a,))[0][0], 1)


class TestRouteTable(SweepBase):
    def test_table_parsed(self):
        # A sanity floor, so a broken regex cannot make the sweep vacuous.
        self.assertGreaterEqual(len(API_ROUTES), 30)
        ids = {r["id"] for r in API_ROUTES}
        for must in ("KW_ROUTE_PKEY_CREATE", "KW_ROUTE_PSK_ROLL", "KW_ROUTE_ENDPOINT_RUN_POST",
                     "KW_ROUTE_LEAK_REPORT", "KW_ROUTE_FLAG_DEFS_LEGACY"):
            self.assertIn(must, ids)
        print("\nswept %d /api/ routes of %d in lib/policy/policy.c" % (len(API_ROUTES), len(ROUTES)))

    def test_no_credential(self):
        for r in API_ROUTES:
            path = self.fill(r["pattern"])
            with self.subTest(route=r["id"], path=path):
                res = self.call(r, path, None)
                if r["id"] == "KW_ROUTE_SCHEMA":
                    # The API's description: public, the same for everyone.
                    self.assertEqual(res[0], 200)
                    self.assertEqual(res[2]["openapi"], "3.1.0")
                elif r["id"] == "KW_ROUTE_LEAK_REPORT":
                    # The leak report: the token in the body is the proof
                    # (docs/security.md); an empty report changes nothing.
                    self.assertEqual(res[0], 200, res[2])
                    self.assertEqual(res[2], [])
                elif "none" in r["creds"]:
                    # The console's sign-in routes carry their own credential
                    # (a password, an invitation token): without it, a 400
                    # naming the missing field or a 404 for an unknown
                    # invitation — never data, never a session.
                    self.assertIn(res[0], (400, 404), res[2])
                    self.assertNotIn("Set-Cookie", res[1])
                else:
                    self.assertProblem(res, 401, "not_authenticated", MSG_NOT_PROVIDED, None)
        self.assertUntouched()

    def test_nul_in_path_is_refused(self):
        # libmicrohttpd decodes %00 and hands the path over as a C string:
        # a NUL must not cut the path short (DELETE …/ID%00/roll/ used to
        # delete the key), on any route, with the key that may do anything.
        for r in API_ROUTES:
            path = self.fill(r["pattern"])
            for bad in (path[:-1] + "%00/", path[:-1] + "%00/roll/", path + "%00"):
                with self.subTest(route=r["id"], path=bad):
                    self.assertProblem(self.call(r, bad, self.key), 400, "path_invalid",
                                       "The path may not contain a NUL byte (%00).", None)
        self.assertUntouched()
        self.assertStatus(self.srv.get("/api/personal_api_keys/%s/" % self.pkey_a_id,
                                       key=self.key), 200)

    def test_project_token_as_bearer(self):
        for r in API_ROUTES:
            if "none" in r["creds"]:
                continue
            path = self.fill(r["pattern"])
            with self.subTest(route=r["id"], path=path):
                self.assertNotIn("project", r["creds"])
                self.assertProblem(self.call(r, path, self.token), 401, "authentication_failed",
                                   MSG_INVALID_HEADER, None)
        self.assertUntouched()

    def test_secret_key(self):
        phs = self.psk["value"]
        for r in API_ROUTES:
            if "none" in r["creds"]:
                continue
            with self.subTest(route=r["id"]):
                own = self.fill(r["pattern"])
                if "secret" not in r["creds"]:
                    self.assertProblem(self.call(r, own, phs), 403, "permission_denied",
                                       MSG_SECRET_UNSUPPORTED, None)
                    continue
                # An execution route: its own project only.
                st, _, body = self.call(r, own, phs)
                self.assertEqual(st, 200, body)
                if ":project" in r["pattern"]:
                    other = self.fill(r["pattern"], project=self.env.project_b)
                    self.assertProblem(
                        self.call(r, other, phs), 403, "permission_denied",
                        "API key does not have access to the requested project: ID %d."
                        % self.env.project_b)
                else:
                    # The project comes from the key; a token of another
                    # project in the query does not switch it.
                    sep = "&" if "?" in own else "?"
                    self.assertProblem(self.call(r, own + sep + "token=" + self.token_b, phs),
                                       401, "authentication_failed", MSG_SECRET_INVALID)
                # Another project's secret key never reaches project 1.
                if ":project" not in r["pattern"]:
                    sep = "&" if "?" in own else "?"
                    own = own + sep + "token=" + self.token
                st, _, body = self.call(r, own, self.psk_b["value"])
                self.assertIn(st, (401, 403), body)
                self.assertNotIn(self.FLAG_KEY, json.dumps(body))
        self.assertUntouched()

    def test_personal_key_without_scope(self):
        # One key per object this sweep needs: the read scope of the
        # route's object lacks every write scope; annotation:read lacks all.
        none_key = self.env.cli_key_create("a@x.io", "no scope", scopes="annotation:read")
        # Made one object at a time and deleted after (a user holds at
        # most 10 keys).
        read_keys = {}

        def read_key(obj):
            if obj not in read_keys:
                for old in read_keys.values():
                    self.env.sql("DELETE FROM personal_api_keys WHERE secure_value=?",
                                 (kwtest.sha256_secure(old),))
                read_keys.clear()
                read_keys[obj] = self.env.cli_key_create("a@x.io", "ro " + obj,
                                                         scopes=obj + ":read")
            return read_keys[obj]
        swept = 0
        for r in sorted(API_ROUTES, key=lambda r: (r["scope"] or "").split(":")[0]):
            if not r["scope"]:
                continue
            path = self.fill(r["pattern"])
            want = r["denied"] or "API key missing required scope '%s'" % r["scope"]
            keys = [none_key]
            if r["scope"].endswith(":write"):
                keys.append(read_key(r["scope"].split(":")[0]))
            for k in keys:
                with self.subTest(route=r["id"], key=k[:8]):
                    self.assertProblem(self.call(r, path, k), 403, "permission_denied", want, None)
                    swept += 1
        self.assertGreater(swept, 20)
        self.assertUntouched()

    def test_other_organization(self):
        """User B (owner of org B, key with '*') on project 1 or org A: 404,
        as if it did not exist, never anything of project 1 in the body."""
        secrets_of_a = [self.token, self.FLAG_KEY, self.ENDPOINT, "a@x.io", self.psk["mask_value"],
                        mask(self.key), self.pkey_a_id, self.psk["id"], "Alpha flag"]
        swept = 0
        for r in API_ROUTES:
            if ":project" not in r["pattern"] and ":org" not in r["pattern"]:
                continue
            path = self.fill(r["pattern"], project=1, org=self.env.org_a)
            with self.subTest(route=r["id"], path=path):
                res = self.call(r, path, self.env.key_b)
                self.assertProblem(res, 404, "not_found", "Not found.", None)
                for s in secrets_of_a:
                    self.assertNotIn(s, self.srv.last_text)
                swept += 1
        self.assertGreater(swept, 15)
        self.assertUntouched()

    def test_other_users_ids(self):
        """BOLA/IDOR: ids of objects that are not the caller's, through the
        caller's own paths, answer 404 and change nothing."""
        pb = self.env.project_b
        swept = 0
        for r in API_ROUTES:
            p = r["pattern"]
            cases = []
            if "/personal_api_keys/:id" in p:
                # B (other org) and C (same org) on A's key id.
                cases = [(self.fill(p, pkey=self.pkey_a_id), self.env.key_b),
                         (self.fill(p, pkey=self.pkey_a_id), self.env.key_c)]
            elif "/project_secret_api_keys/:id" in p:
                cases = [(self.fill(p, project=pb, psk=self.psk["id"]), self.env.key_b)]
            elif ":num" in p or "/feature_flags/:id" in p:
                cases = [(self.fill(p, project=pb, flag=self.flag["id"]), self.env.key_b)]
            elif "/endpoints/:id" in p:
                cases = [(self.fill(p, project=pb, endpoint=self.ENDPOINT), self.env.key_b)]
            elif "/users/:id" in p:
                cases = [(self.fill(p, user=self.env.user_a), self.env.key_b)]
            for path, key in cases:
                with self.subTest(route=r["id"], path=path, key=key[:8]):
                    res = self.call(r, path, key)
                    self.assertProblem(res, 404, "not_found", "Not found.", None)
                    self.assertNotIn(self.FLAG_KEY, self.srv.last_text)
                    swept += 1
        self.assertGreater(swept, 12)
        self.assertUntouched()
        # A's key and A's project secret key were neither rolled nor deleted.
        self.assertEqual(self.env.sql("SELECT count(*) FROM project_secret_api_keys "
                                      "WHERE project_id=1")[0][0], 1)


class TestLimits(SweepBase):
    def raw(self, data, timeout=10.0):
        """Sends bytes, reads until the server closes (bounded); returns
        (response bytes, closed by the server)."""
        s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=timeout)
        try:
            try:
                s.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                pass
            out = b""
            deadline = time.monotonic() + timeout
            closed = False
            while time.monotonic() < deadline:
                try:
                    chunk = s.recv(65536)
                except ConnectionResetError:
                    closed = True
                    break
                except socket.timeout:
                    break
                if not chunk:
                    closed = True
                    break
                out += chunk
            return out, closed
        finally:
            s.close()

    def test_header_too_large(self):
        big = "X-Filler: " + "a" * (70 * 1024) + "\r\n"
        req = ("GET /api/users/@me/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n%s\r\n"
               % (self.key, big)).encode()
        out, closed = self.raw(req)
        status = int(out.split(b" ", 2)[1]) if out.startswith(b"HTTP/1.") else None
        print("\n> 64 KiB of headers: %r, connection closed: %s" % (out.split(b"\r\n", 1)[0],
                                                                    closed))
        self.assertIn(status, (413, 431), out[:200])
        self.assertTrue(closed)
        self.assertStatus(self.srv.get("/_health"), 200)
        self.assertStatus(self.srv.get("/api/users/@me/", key=self.key), 200)

    def test_ambiguous_framing_is_refused_and_the_connection_closed(self):
        """Headers a proxy in front may read otherwise than libmicrohttpd
        (which takes the first of repeated headers, and a chunked body over
        a Content-Length): request smuggling, or a credential checked on
        another header than the one used.  Each is 400 JSON, the connection
        is closed (nothing after it is read as a request), nothing changes."""
        body = json.dumps({"api_key": self.token, "event": "smuggled", "distinct_id": "d"}).encode()
        chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
        nxt = b"GET /_health HTTP/1.1\r\nHost: x\r\n\r\n"
        head = b"POST /e/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        cases = {
            "two Content-Length": head + b"Content-Length: %d\r\nContent-Length: %d\r\n\r\n"
                                  % (len(body), len(body) + len(nxt)) + body + nxt,
            "Content-Length and chunked": head + b"Content-Length: 4\r\n"
                                          b"Transfer-Encoding: chunked\r\n\r\n" + chunked + nxt,
            "Transfer-Encoding identity": head + b"Transfer-Encoding: identity\r\n\r\n" + body,
            "Transfer-Encoding gzip, chunked": head + b"Transfer-Encoding: gzip, chunked\r\n\r\n"
                                               + chunked + nxt,
            "two Transfer-Encoding": head + b"Transfer-Encoding: chunked\r\n"
                                     b"Transfer-Encoding: chunked\r\n\r\n" + chunked + nxt,
            "two Authorization": b"GET /api/users/@me/ HTTP/1.1\r\nHost: x\r\nAuthorization: "
                                 b"Bearer phx_nope\r\nAuthorization: Bearer %s\r\n\r\n"
                                 % self.key.encode() + nxt,
        }
        for name, data in cases.items():
            with self.subTest(name):
                out, closed = self.raw(data, timeout=5.0)
                self.assertTrue(out.startswith(b"HTTP/1.1 400 "), out[:200])
                self.assertEqual(out.count(b"HTTP/1.1 "), 1, out)  # nothing after it served
                self.assertTrue(closed, name)
                doc = json.loads(out.split(b"\r\n\r\n", 1)[1])
                self.assertEqual((doc["type"], doc["code"]), ("validation_error", "invalid_input"))
        self.assertEqual(self.env.sql("SELECT count(*) FROM events WHERE event='smuggled'")[0][0], 0)
        # plain chunked and a single Content-Length still work
        out, _ = self.raw(head + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                          + chunked)
        self.assertTrue(out.startswith(b"HTTP/1.1 200 "), out[:200])
        self.assertStatus(self.srv.post("/e/", json.loads(body)), 200)
        self.assertEqual(self.env.sql("SELECT count(*) FROM events WHERE event='smuggled'")[0][0], 2)

    def test_body_too_large(self):
        body = b'{"label": "' + b"a" * kwtest.MAX_BODY + b'"}'
        res = self.srv.request("POST", "/api/personal_api_keys/", key=self.key, raw=body)
        self.assertProblem(res, 413, "payload_too_large", attr=None)
        # Chunked, so no Content-Length announces it: refused once it crosses.
        chunk = b"a" * 65536
        head = ("POST /api/personal_api_keys/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
                "Connection: close\r\n\r\n" % self.key).encode()
        data = head + (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 17 + b"0\r\n\r\n"
        out, _ = self.raw(data)
        self.assertTrue(out.startswith(b"HTTP/1.1 413"), out[:200])
        body = json.loads(out.split(b"\r\n\r\n", 1)[1])
        self.assertEqual(body["code"], "payload_too_large")
        self.assertEqual(self.env.sql("SELECT count(*) FROM personal_api_keys WHERE user_id=?",
                                      (self.env.user_a,))[0][0], 1)
        self.assertStatus(self.srv.get("/_health"), 200)

    def test_oversized_body_gets_its_413(self):
        """A client that writes its whole body before it reads (Node's
        fetch, and with it posthog-node, which halves its batch on 413) must
        read the 413, not a connection reset: a body over the limit is read
        and dropped, then answered, and the connection stays usable.  A
        client waiting for 100 Continue, or one announcing more than the
        server would read, is answered at once."""
        head = ("POST /batch/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                "Content-Length: %d\r\n%s\r\n")
        nxt = b"GET /_health HTTP/1.1\r\nHost: x\r\n\r\n"
        for size in (kwtest.MAX_BODY + 1, 5 * kwtest.MAX_BODY, 20 * kwtest.MAX_BODY):
            with self.subTest(size=size):
                s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=20)
                try:
                    s.sendall((head % (size, "")).encode() + b"[" * size + nxt)
                    out = b""
                    while out.count(b"HTTP/1.1 ") < 2 or not out.endswith(b"}"):
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        out += chunk
                finally:
                    s.close()
                first, second = out.split(b"HTTP/1.1 ")[1:3]
                self.assertTrue(first.startswith(b"413 "), out[:300])
                doc = json.loads(first.split(b"\r\n\r\n", 1)[1])
                self.assertEqual(doc["code"], "payload_too_large")
                self.assertTrue(second.startswith(b"200 "), out[-300:])  # same connection
        # Expect: 100-continue: the client has sent nothing, so the 413 comes at once
        s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=10)
        try:
            s.sendall((head % (2 * kwtest.MAX_BODY, "Expect: 100-continue\r\n")).encode())
            out = s.recv(65536)
        finally:
            s.close()
        self.assertTrue(out.startswith(b"HTTP/1.1 413 "), out[:200])
        # more than the server would ever read: answered before the body
        out, closed = self.raw((head % (64 * kwtest.MAX_BODY, "")).encode(), timeout=5.0)
        self.assertTrue(out.startswith(b"HTTP/1.1 413 ") and closed, out[:200])
        self.assertStatus(self.srv.get("/_health"), 200)

    def test_endless_chunked_body_is_cut(self):
        """A chunked body over the limit is dropped while it is read (the
        413 comes at its end), but not for ever: a body that never ends
        has its connection closed once it is 32 times the limit, instead
        of keeping a connection reading it as long as the client sends."""
        chunk = b"a" * 65536
        s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=10)
        sent, cut = 0, False
        try:
            s.sendall(b"POST /e/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n")
            while sent < 64 * kwtest.MAX_BODY:
                s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            cut = True
        if not cut:  # everything went into socket buffers: the close must follow
            try:
                cut = s.recv(65536) == b""
            except (ConnectionResetError, BrokenPipeError):
                cut = True
            except socket.timeout:
                pass
        s.close()
        self.assertTrue(cut, "the connection kept reading %d bytes" % sent)
        self.assertLess(sent, 64 * kwtest.MAX_BODY)
        self.assertStatus(self.srv.get("/_health"), 200)

    def test_security_headers(self):
        s = self.srv
        cases = [("GET", "/api/users/@me/", self.key, None),            # 200
                 ("GET", "/api/users/@me/", None, None),                # 401
                 ("GET", "/api/projects/1/", self.env.key_b, None),     # 404
                 ("DELETE", "/api/projects/", self.key, None),          # 405
                 ("POST", "/api/personal_api_keys/", self.key, {"label": "h", "scopes": ["*"]}),
                 ("GET", "/", None, None),                              # the console's path
                 ("GET", "/_health", None, None),
                 ("POST", "/flags/?v=2", None, {"token": self.token, "distinct_id": "d"}),
                 ("GET", "/flags/definitions", self.psk["value"], None)]
        for method, path, key, body in cases:
            with self.subTest(method=method, path=path):
                st, h, _ = s.request(method, path, key=key, body=body)
                self.assertEqual(h.get("X-Content-Type-Options"), "nosniff")
                self.assertEqual(h.get("X-Frame-Options"), "DENY")
                self.assertEqual(h.get("Referrer-Policy"), "no-referrer")
                cc = h.get("Cache-Control", "")
                if path.startswith("/flags/definitions"):
                    # Definitions are revalidated with their ETag, per client.
                    self.assertEqual(cc, "private, must-revalidate")
                elif path == "/":
                    # The console's page: revalidated (a new binary serves new
                    # files), under a strict Content-Security-Policy.
                    self.assertEqual(cc, "no-cache")
                    self.assertIn("default-src 'self'", h.get("Content-Security-Policy", ""))
                else:
                    self.assertEqual(cc, "no-store", (st, path))


class TestInjection(SweepBase):
    def test_sql_injection_strings_in_every_text_field(self):
        s, k = self.srv, self.key
        before = {t: self.env.sql("SELECT count(*) FROM %s" % t)[0][0]
                  for t in ("users", "organizations", "projects", "memberships")}
        for i, inj in enumerate(SQLI):
            with self.subTest(inj=inj):
                # Personal key label.
                made = self.assertStatus(s.post("/api/personal_api_keys/",
                                                {"label": inj, "scopes": ["*"]}, key=k), 201)
                got = self.assertStatus(s.get("/api/personal_api_keys/%s/" % made["id"], key=k),
                                        200)
                self.assertEqual(got["label"], inj)
                self.assertStatus(s.delete("/api/personal_api_keys/%s/" % made["id"], key=k), 204)
                # Project secret key label.
                made = self.assertStatus(s.post("/api/projects/1/project_secret_api_keys/",
                                                {"label": inj, "scopes": ["feature_flag:read"]},
                                                key=k), 201)
                got = self.assertStatus(s.get("/api/projects/1/project_secret_api_keys/%s/"
                                              % made["id"], key=k), 200)
                self.assertEqual(got["label"], inj)
                # Flag key (refused or verbatim) and name (verbatim).
                st, _, body = s.post("/api/projects/1/feature_flags/",
                                     {"key": inj, "name": inj}, key=k)
                if st == 201:
                    self.assertEqual(body["key"], inj)
                else:
                    self.assertProblem((st, _, body), 400, None, attr="key")
                made = self.assertStatus(s.post("/api/projects/1/feature_flags/",
                                                {"key": "inj-%d" % i, "name": inj}, key=k), 201)
                got = self.assertStatus(s.get("/api/projects/1/feature_flags/%d/" % made["id"],
                                              key=k), 200)
                self.assertEqual(got["name"], inj)
                # Endpoint name (refused or verbatim), description and the
                # query's event (verbatim).
                st, _, body = s.post("/api/projects/1/endpoints/",
                                     {"name": inj, "query": {"kind": "event_counts"}}, key=k)
                if st == 201:
                    self.assertEqual(body["name"], inj)
                else:
                    self.assertProblem((st, _, body), 400, None, attr="name")
                name = "inj-%d" % i
                self.assertStatus(s.post("/api/projects/1/endpoints/", {
                    "name": name, "description": inj,
                    "query": {"kind": "recent_events", "event": inj}}, key=k), 201)
                got = self.assertStatus(s.get("/api/projects/1/endpoints/%s/" % name, key=k), 200)
                self.assertEqual(got["description"], inj)
                self.assertEqual(got["query"]["event"], inj)
                # Capture: event name, property key and value, distinct id.
                self.assertStatus(s.post("/e/", {"api_key": self.token, "event": inj,
                                                 "distinct_id": inj,
                                                 "properties": {inj: inj}}), 200)
                run = self.assertStatus(s.get("/api/projects/1/endpoints/%s/run/" % name, key=k),
                                        200)
                self.assertEqual(len(run["results"]), 1, run)
                row = dict(zip(run["columns"], run["results"][0]))
                self.assertEqual(row["event"], inj)
                self.assertEqual(row["distinct_id"], inj)
                props = row["properties"]
                if isinstance(props, str):
                    props = json.loads(props)
                self.assertEqual(props.get(inj), inj)
                # Endpoint variables: a string variable carrying the text.
                vname = "v-%d" % i
                self.assertStatus(s.post("/api/projects/1/endpoints/", {
                    "name": vname, "query": {"kind": "event_counts", "event": "{variables.e}"},
                    "variables": {"e": {"type": "string", "default": "x"}}}, key=k), 201)
                q = urllib.parse.quote(json.dumps({"e": inj}))
                run = self.assertStatus(s.get("/api/projects/1/endpoints/%s/run/?variables=%s"
                                              % (vname, q), key=k), 200)
                self.assertEqual(run["results"], [[inj, 1]])
        after = {t: self.env.sql("SELECT count(*) FROM %s" % t)[0][0] for t in before}
        self.assertEqual(before, after)
        self.assertUntouched()


class TestNoPlaintextInOutput(SweepBase):
    def test_full_lifecycle_leaves_no_key_in_output(self):
        s, k = self.srv, self.key
        seen = [k, self.psk["value"], self.psk_b["value"], self.env.key_b, self.env.key_c]
        made = self.assertStatus(s.post("/api/personal_api_keys/",
                                        {"label": "life", "scopes": ["*"]}, key=k), 201)
        seen.append(made["value"])
        self.assertStatus(s.get("/api/users/@me/", key=made["value"]), 200)
        rolled = self.assertStatus(s.post("/api/personal_api_keys/%s/roll/" % made["id"], key=k),
                                   200)
        seen.append(rolled["value"])
        self.assertProblem(s.get("/api/users/@me/", key=made["value"]), 401,
                           "authentication_failed")
        self.assertStatus(s.get("/api/users/@me/", key=rolled["value"]), 200)
        psk = self.assertStatus(s.post("/api/projects/1/project_secret_api_keys/",
                                       {"label": "life", "scopes": ["feature_flag:read"]}, key=k),
                                201)
        seen.append(psk["value"])
        self.assertStatus(s.get("/flags/definitions", key=psk["value"]), 200)
        rolled_psk = self.assertStatus(s.post("/api/projects/1/project_secret_api_keys/%s/roll/"
                                              % psk["id"], key=k), 200)
        seen.append(rolled_psk["value"])
        self.assertStatus(s.get("/flags/definitions", key=rolled_psk["value"]), 200)
        # Unknown and malformed keys presented, a leak report, a deletion.
        for bogus in (make_key(), make_key("phs_"), kwtest.bad_checksum(k), kwtest.legacy_key()):
            seen.append(bogus)
            s.get("/api/users/@me/", key=bogus)
            s.get("/flags/definitions", key=bogus)
        leaked = self.assertStatus(s.post("/api/personal_api_keys/",
                                          {"label": "leak", "scopes": ["*"]}, key=k), 201)
        seen.append(leaked["value"])
        self.assertStatus(s.post("/api/secret_scanning/report/",
                                 [{"token": leaked["value"], "type": "posthog_personal_api_key",
                                   "url": "https://example.com/leak", "source": "content"}]), 200)
        self.assertStatus(s.delete("/api/personal_api_keys/%s/" % rolled["id"], key=k), 204)
        self.assertStatus(s.delete("/api/projects/1/project_secret_api_keys/%s/"
                                   % rolled_psk["id"], key=k), 204)
        self.assertStatus(s.post("/flags?v=2", {"token": self.token, "distinct_id": "d"}), 200)
        # Stop the server, then read everything it wrote.
        self.assertEqual(s.stop(), 0)
        with open(s.stderr_path, "rb") as f:
            err = f.read().decode(errors="replace")
        out = s.listen_line
        text = out + "\n" + err
        print("\nserver output after a full key lifecycle: %d bytes stdout, %d bytes stderr"
              % (len(out), len(err)))
        for v in seen:
            self.assertNotIn(v[4:], text)   # the body, whatever prefix it is printed with
        self.assertIsNone(re.search(r"ph[xs]_[0-9A-Za-z]{20,}", text), text)


class TestVerifyTiming(SweepBase):
    """Verification time must not tell an attacker anything about which
    keys exist.  Measured through the server on loopback, interleaved, with
    medians; a key that exists but lacks the route's scope (403) against a
    well-formed key that does not exist (401), so that both requests stop
    right after verification and no handler runs."""

    N = int(os.environ.get("KEYWARD_TIMING_N", "320"))
    LOW, HIGH = 0.8, 1.25
    ROUNDS = 3   # a loaded CI box may spoil one round; the claim must hold in one

    def setup_db(self):
        super().setup_db()
        # N existing keys never presented before (cache misses), written
        # straight into the store so the server has not seen them.
        self.uncached = [make_key() for _ in range(self.N * self.ROUNDS)]
        rows, args = [], []
        base = now_us()
        for i, key in enumerate(self.uncached):
            rows.append("(?,?,?,?,?,?,?)")
            args += ["timing-%d" % i, self.env.user_a, "t%d" % i, sha256_secure(key), mask(key),
                     base + i, '["annotation:read"]']
        with self.env.connect() as c:
            for lo in range(0, len(rows), 200):
                c.execute("INSERT INTO personal_api_keys(id, user_id, label, secure_value, "
                          "mask_value, created_at, scopes) VALUES " + ",".join(rows[lo:lo + 200]),
                          args[lo * 7:(lo + 200) * 7])

    def timed(self, key, want):
        t0 = time.perf_counter()
        st, _, _ = self.srv.get("/api/users/@me/", key=key)
        dt = time.perf_counter() - t0
        self.assertEqual(st, want)
        return dt

    def measure(self, existing_for, label):
        results = []
        for rnd in range(self.ROUNDS):
            ex, no = [], []
            for i in range(self.N):
                # Alternate which goes first, so neither always follows the other.
                pair = [(existing_for(rnd, i), 403, ex), (make_key(), 401, no)]
                if i % 2:
                    pair.reverse()
                for key, want, out in pair:
                    out.append(self.timed(key, want))
            m_ex, m_no = median_ms(ex), median_ms(no)
            ratio = m_ex / m_no
            results.append(ratio)
            print("\n%s round %d: existing median %.3f ms, nonexistent median %.3f ms, "
                  "ratio %.3f (n=%d each)" % (label, rnd + 1, m_ex, m_no, ratio, self.N))
            if self.LOW <= ratio <= self.HIGH:
                break
        return results

    def test_cache_miss_existing_vs_nonexistent(self):
        ratios = self.measure(lambda rnd, i: self.uncached[rnd * self.N + i], "cache miss")
        if kwtest.BACKEND == "postgresql":
            # A first-seen existing key also queues its last_used_at UPDATE,
            # which on PostgreSQL is a round trip competing for the same two
            # CPUs; measured 1.37-1.50x on a loaded CI box.  It tells the
            # holder of a whole valid key nothing the 403 (vs 401) does not
            # already say (docs/security.md); the near-miss test below is the
            # one that guards partial matches.  Here: no gross difference.
            self.assertTrue(any(r <= 2.0 for r in ratios), ratios)
        else:
            # The same on SQLite, in a smaller measure: the first use writes
            # last_used_at from the verifier's thread at once, on the same
            # two CPUs (normal build 1.2x here; CI's loaded ASan run measured
            # 1.25-1.33x in all three rounds).  A holder of the whole key
            # learns nothing the 403 does not say; partial matches are the
            # near-miss test's, which keeps the tight bounds.
            self.assertTrue(any(self.LOW <= r <= 1.5 for r in ratios), ratios)

    def test_cache_hit_existing_vs_nonexistent(self):
        """The verification cache answers a key seen before without the
        database; an unknown key always costs a lookup.  That difference
        only tells the holder of a full, valid key that it is valid, which
        the status code says anyway; it is measured and printed, and bounded
        only from above (a cached key must never be slower)."""
        known = self.uncached[-1]
        self.srv.get("/api/users/@me/", key=known)
        ratios = self.measure(lambda rnd, i: known, "cache hit")
        self.assertLessEqual(min(ratios), self.HIGH)

    def test_near_miss_vs_random(self):
        """A key that shares 47 of 48 random characters with a live key (with
        a valid checksum) costs what a random key costs: lookup by hash."""
        live = self.key
        body = live[4:52]

        def near(rnd, i):
            j = (rnd * self.N + i) % 48
            c = "A" if body[j] != "A" else "B"
            r = body[:j] + c + body[j + 1:]
            return "phx_" + r + kwtest.checksum("phx_", r)

        results = []
        for rnd in range(self.ROUNDS):
            nm, rd = [], []
            for i in range(self.N):
                pair = [(near(rnd, i), nm), (make_key(), rd)]
                if i % 2:
                    pair.reverse()
                for key, out in pair:
                    out.append(self.timed(key, 401))
            ratio = median_ms(nm) / median_ms(rd)
            results.append(ratio)
            print("\nnear miss round %d: near-miss median %.3f ms, random median %.3f ms, "
                  "ratio %.3f" % (rnd + 1, median_ms(nm), median_ms(rd), ratio))
            if self.LOW <= ratio <= self.HIGH:
                break
        self.assertTrue(any(self.LOW <= r <= self.HIGH for r in results), results)


if __name__ == "__main__":
    kwtest.main()
