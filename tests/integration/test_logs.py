"""Structured logs: `keyward serve --log-format json`.

Every line the server writes to stderr must be one JSON object — lifecycle
events (start, stop, stopped) and one access line per request — with an
RFC 3339 time, the route's pattern (never the raw path, except for a path
no route matched, and then cleaned), the status, the latency, the
credential kind and the key id.  No key value, no Authorization header,
no session cookie, no password may appear anywhere in the log, whatever
the requests; hostile paths (quotes, encoded newlines, bytes that are not
UTF-8) still give valid JSON lines.  The default (text) writes no access
lines, as before."""
import json
import re
import signal
import socket

import kwtest
from kwtest import KWTestCase, Server
from test_console_api import PASSWORD, set_password

PK = "/api/personal_api_keys/"
PSK = "/api/projects/1/project_secret_api_keys/"
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
KINDS = {"personal", "secret", "project", "session", "none"}


class JsonLogs(KWTestCase):
    serve_in_setup = False

    def setup_db(self):
        proc = set_password(self.env.db, self.env.email, PASSWORD)
        self.assertEqual(proc.returncode, 0, proc.stderr)

    def setUp(self):
        super().setUp()
        self.srv = Server(self.env.db, self.env.dir, ["--log-format", "json"])
        self.addCleanup(self._stop_server, self.srv)

    def lines(self):
        """Every stderr line, each parsed as JSON (a line that is not fails)."""
        with open(self.srv.stderr_path, "rb") as f:
            raw = f.read()
        self.assertTrue(raw.endswith(b"\n") or not raw, raw[-200:])
        out = []
        for line in raw.split(b"\n")[:-1]:
            text = line.decode("utf-8")  # strict: JSON text is UTF-8
            obj = json.loads(text)
            self.assertIsInstance(obj, dict, text)
            self.assertRegex(obj["time"], RFC3339)
            self.assertIn(obj["level"], ("info", "warn", "error"))
            self.assertIsInstance(obj["event"], str)
            out.append(obj)
        return out, raw

    def raw_request(self, request_bytes):
        with socket.create_connection(("127.0.0.1", self.srv.port), timeout=10) as s:
            s.sendall(request_bytes)
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        return data

    def access(self, lines):
        return [l for l in lines if l["event"] == "request"]

    def test_access_lines_fields_and_no_secrets(self):
        srv, key = self.srv, self.key
        made = self.assertStatus(srv.post(PK, {"label": "second", "scopes": ["user:read"]},
                                          key=key), 201)
        psk = self.assertStatus(srv.post(PSK, {"label": "sdk", "scopes": ["feature_flag:read"]},
                                         key=key), 201)
        me = self.assertStatus(srv.get(PK + "@current/", key=key), 200)
        self.assertStatus(srv.get("/api/users/@me/", key=made["value"]), 200)
        # In the query string and the body too: still never logged.
        self.assertStatus(srv.get("/api/users/@me/?personal_api_key=" + made["value"]), 200)
        defs = "/api/feature_flag/local_evaluation/?token=" + self.token
        self.assertStatus(srv.get(defs, key=psk["value"]), 200)
        self.assertStatus(srv.post("/flags/?v=2", {"token": self.token, "distinct_id": "u"}), 200)
        bad = kwtest.make_key()
        self.assertEqual(srv.get("/api/users/@me/", key=bad)[0], 401)
        self.assertEqual(srv.get("/api/users/@me/", key="not-a-key-" + "z" * 40)[0], 401)
        st, hdrs, body = srv.post("/api/login/", {"email": self.env.email, "password": PASSWORD})
        self.assertEqual(st, 200, body)
        cookie = re.match(r"kw_session=([A-Za-z0-9_-]{43});", hdrs["Set-Cookie"]).group(1)
        self.assertStatus(srv.get("/api/users/@me/", headers={"Cookie": "kw_session=" + cookie}), 200)
        self.assertEqual(srv.post("/api/login/", {"email": self.env.email,
                                                  "password": "wrong " + PASSWORD})[0], 400)
        self.assertEqual(srv.get("/api/projects/1/feature_flags/123456/", key=key)[0], 404)
        self.assertEqual(srv.stop(), 0)

        lines, raw = self.lines()
        text = raw.decode()
        for secret in (key, made["value"], psk["value"], self.token, bad, cookie, PASSWORD,
                       body["csrf_token"], "Bearer", "Authorization", key[4:52], bad[4:52]):
            self.assertNotIn(secret, text)
        events = [l["event"] for l in lines]
        self.assertEqual(events[0], "start")
        self.assertEqual(events[-2:], ["stop", "stopped"])
        start = lines[0]
        self.assertEqual((start["port"], start["backend"]), (srv.port, kwtest.BACKEND))
        acc = self.access(lines)
        self.assertEqual(len(acc), 13)
        for a in acc:
            self.assertIsInstance(a["status"], int)
            self.assertIsInstance(a["latency_ms"], (int, float))
            self.assertGreaterEqual(a["latency_ms"], 0)
            self.assertIn(a["credential"], KINDS)
            self.assertIn(a["method"], ("GET", "POST", "PATCH", "DELETE", "HEAD"))
            self.assertTrue(a["route"] is None or a["route"].startswith("/"), a)
            self.assertNotIn("path", a)  # every request above matched a route
            self.assertEqual(a["ip"], "127.0.0.1")
        first = acc[0]
        self.assertEqual((first["method"], first["route"], first["status"], first["credential"],
                          first["key_id"], first["user_id"]),
                         ("POST", "/api/personal_api_keys", 201, "personal", me["id"], 1))
        by_route = [(a["route"], a["status"], a["credential"], a.get("key_id")) for a in acc]
        self.assertIn(("/api/users/@me", 200, "personal", made["id"]), by_route)
        self.assertEqual(sum(1 for r in by_route if r == ("/api/users/@me", 200, "personal",
                                                          made["id"])), 2)
        self.assertIn(("/api/feature_flag/local_evaluation", 200, "secret", psk["id"]), by_route)
        self.assertIn(("/flags", 200, "project", None), by_route)
        self.assertIn(("/api/users/@me", 401, "none", None), by_route)
        self.assertIn(("/api/login", 200, "none", None), by_route)
        self.assertIn(("/api/login", 400, "none", None), by_route)
        self.assertIn(("/api/projects/:project/feature_flags/:num", 404, "personal", me["id"]),
                      by_route)
        session = [a for a in acc if a["credential"] == "session"]
        self.assertEqual(len(session), 1)
        self.assertEqual((session[0]["route"], session[0]["user_id"]), ("/api/users/@me", 1))
        secret_line = [a for a in acc if a["credential"] == "secret"][0]
        self.assertEqual(secret_line["project_id"], 1)

    def test_hostile_requests_give_valid_lines(self):
        key = self.key
        hostile = [
            b'GET /a"b\\c%22%0A{"event":"forged"}%0D%0A HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
            b"GET /\xff\xfe\xc3\x28/%FF%C0%AF HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            b"GET /x%00y HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            ("GET /leak/" + key + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").encode(),
            ("GET /api/users/@me/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key +
             "\"\r\nUser-Agent: \"}\xff\r\nConnection: close\r\n\r\n").encode("latin-1"),
            b"GET /" + b"A/" * 3000 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            b"BREW /coffee%0Apot HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            b"GET /api/projects/1/feature_flags/%0A/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        ]
        for req in hostile:
            self.raw_request(req)
        self.assertStatus(self.srv.get("/_health"), 200)
        self.assertEqual(self.srv.stop(), 0)
        lines, raw = self.lines()
        self.assertNotIn(key.encode(), raw)
        self.assertNotIn(key[4:30].encode(), raw)
        self.assertNotIn(b"forged\"", raw.replace(b'"event":"', b""))
        acc = self.access(lines)
        self.assertGreaterEqual(len(acc), len(hostile))
        for a in acc:
            self.assertIn(a["event"], ("request",))
            if a["route"] is None:
                # Cleaned: printable ASCII only, no quote, no backslash, short.
                self.assertRegex(a["path"], r'^[\x20-\x7e]*$')
                self.assertNotIn('"', a["path"])
                self.assertNotIn("\\", a["path"])
                self.assertLessEqual(len(a["path"]), 160)
                self.assertRegex(a["method"], r"^[\x20-\x7e]*$")
        paths = [a.get("path", "") for a in acc]
        self.assertTrue(any("[redacted]" in p for p in paths), paths)
        self.assertTrue(any(p.endswith("...") for p in paths), paths)
        self.assertTrue(any("%22" in p for p in paths), paths)


class TextLogsUnchanged(KWTestCase):
    def test_text_default_has_no_access_lines(self):
        self.assertStatus(self.srv.get("/api/users/@me/", key=self.key), 200)
        self.assertEqual(self.srv.get("/nope")[0], 404)
        self.assertEqual(self.srv.stop(signal.SIGTERM), 0)
        err = self.srv.stderr()
        self.assertEqual(err, "keyward serve: SIGTERM received, shutting down\n")

    def test_bad_log_format(self):
        for bad in ("xml", "JSON", "text\n", "json "):
            proc = kwtest.run_cli("serve", "--listen", "127.0.0.1:0", "--db", self.env.db,
                                  "--log-format", bad, timeout=20)
            self.assertEqual(proc.returncode, 2, bad)
            self.assertIn("--log-format must be text or json", proc.stderr)


if __name__ == "__main__":
    kwtest.main()
