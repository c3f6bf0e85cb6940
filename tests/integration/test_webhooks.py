"""test_webhooks.py — signed webhooks on key events.

/api/organizations/:id/webhooks/[:webhook_id/[deliveries/|test/]]: create
(the secret shown once), list, get, patch, delete, the delivery log and a
test event; each credential kind, another organization's key, a plain
member, a key without the webhook scope; bad input is a JSON 400 that
stores nothing.  Delivery: a receiver on 127.0.0.1 that refuses the first
attempts, then accepts; every key event (personal and project secret keys
created, rolled, deleted, revoked by a leak report) arrives once per
webhook-id with a valid Standard Webhooks signature and no key value; a
SIGKILL of keyward between events loses none (the outbox is in the
database, written with the event, and deliveries resume at the next
start); loopback receivers are refused without --webhook-allow-private,
and a name that does not resolve reads the same in the delivery log.
Isolation: a receiver that never answers, for another organization's
webhooks, does not hold up this one's events; /test/ queues one pending
test per webhook (429 beyond, 400 while paused) and a webhook's pending
rows are bounded.
"""
import socket
import base64
import datetime
import hashlib
import hmac
import http.client
import http.server
import json
import os
import re
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kwtest  # noqa: E402
from kwtest import (MSG_INVALID_HEADER, MSG_NOT_PROVIDED, MSG_SECRET_UNSUPPORTED,  # noqa: E402
                    KWTestCase, Server)

ORGS = "/api/organizations/"
PK = "/api/personal_api_keys/"
PSK = "/api/projects/1/project_secret_api_keys/"
REPORT = "/api/secret_scanning/report/"
SERVE_ARGS = ["--webhook-allow-private", "--webhook-retry-base", "0.2"]
DELIVERY_WAIT = 30.0


def verify(secret, headers, body):
    """The receiver's check, as docs/webhooks.md shows it."""
    key = base64.b64decode(secret[len("whsec_"):])
    signed = ("%s.%s." % (headers["webhook-id"], headers["webhook-timestamp"])).encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest("v1," + expected, s)
               for s in headers["webhook-signature"].split(" "))


class Receiver:
    """An HTTP receiver on 127.0.0.1: answers 503 to the first `fail_first`
    requests (or to all while `down`), then 204.  Keeps every request."""

    def __init__(self, fail_first=0):
        self.lock = threading.Lock()
        self.fail_left = fail_first
        self.down = False
        self.delay = 0.0     # seconds to wait before answering
        self.requests = []   # (headers dict, body bytes, answered status)
        self.arrived = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                if outer.delay:
                    outer.arrived.set()
                    time.sleep(outer.delay)
                with outer.lock:
                    fail = outer.down or outer.fail_left > 0
                    if outer.fail_left > 0:
                        outer.fail_left -= 1
                    status = 503 if fail else 204
                    outer.requests.append(({k.lower(): v for k, v in self.headers.items()},
                                           body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/hook" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.delay = 0.0
        self.httpd.shutdown()
        self.httpd.server_close()

    def accepted(self):
        """{webhook-id: (headers, body)} of the requests answered 2xx, and
        how many 2xx answers each id got."""
        with self.lock:
            got, times = {}, {}
            for h, b, st in self.requests:
                if st < 300:
                    got[h["webhook-id"]] = (h, b)
                    times[h["webhook-id"]] = times.get(h["webhook-id"], 0) + 1
            return got, times


class BlackHole:
    """A receiver on 127.0.0.1 that accepts connections and reads what is
    sent, but never answers: each attempt waits for keyward's timeout."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = "http://127.0.0.1:%d/hook" % self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.connections = 0
        self.closed = False
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                self.conns.append(conn)
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    @staticmethod
    def _read(conn):
        try:
            while conn.recv(65536):
                pass
        except OSError:
            pass

    def close(self):
        self.closed = True
        self.sock.close()
        with self.lock:
            for c in self.conns:
                c.close()


class WebhookBase(KWTestCase):
    serve_args = SERVE_ARGS

    def setup_db(self):
        self.env.tenants()

    def start_server(self):
        return self.start_server_with(self.serve_args)

    def start_server_with(self, args):
        self.srv = Server(self.env.db, self.env.dir, args)
        self.addCleanup(self._stop_server, self.srv)
        return self.srv

    def hooks(self, org=None):
        return ORGS + (org or self.env.org_a) + "/webhooks/"

    def receiver(self, fail_first=0):
        r = Receiver(fail_first)
        self.addCleanup(r.close)
        return r

    def create(self, url, key=None, org=None, **fields):
        body = {"url": url}
        body.update(fields)
        return self.assertStatus(self.srv.post(self.hooks(org), body, key=key or self.key), 201)

    def wait_accepted(self, receiver, n, timeout=DELIVERY_WAIT):
        got = self.poll(lambda: len(receiver.accepted()[0]) >= n, timeout=timeout, interval=0.1)
        accepted, times = receiver.accepted()
        self.assertTrue(got, "expected %d deliveries, got %d: %r" %
                        (n, len(accepted), [json.loads(b)["type"] for _, b in accepted.values()]))
        return accepted, times

    def check_signed(self, secret, accepted, values=()):
        for wid, (h, b) in accepted.items():
            self.assertTrue(wid.startswith("msg_"), wid)
            self.assertTrue(verify(secret, h, b), "bad signature on %s" % wid)
            self.assertFalse(verify("whsec_" + base64.b64encode(b"x" * 24).decode(), h, b))
            self.assertLess(abs(int(h["webhook-timestamp"]) - time.time()), 300)
            self.assertEqual(h["content-type"], "application/json")
            text = b.decode()
            for v in values:
                self.assertNotIn(v, text)
            self.assertNotIn(secret, text)


class Management(WebhookBase):
    def test_create_shows_the_secret_once_and_crud(self):
        created = self.create("https://hooks.example.com/kw", events=["key.created", "key.revoked"])
        secret = created["secret"]
        self.assertRegex(secret, r"^whsec_[A-Za-z0-9+/]{32}$")
        self.assertEqual((created["url"], created["events"], created["enabled"]),
                         ("https://hooks.example.com/kw", ["key.created", "key.revoked"], True))
        self.assertEqual(created["organization_id"], self.env.org_a)
        wid = created["id"]
        one = self.hooks() + wid + "/"
        for result in (self.srv.get(self.hooks(), key=self.key), self.srv.get(one, key=self.key)):
            body = self.assertStatus(result, 200)
            self.assertNotIn(secret, self.srv.last_text)
            self.assertNotIn("secret", self.srv.last_text)
        listed = self.assertStatus(self.srv.get(self.hooks(), key=self.key), 200)
        self.assertEqual((listed["count"], [w["id"] for w in listed["results"]]), (1, [wid]))
        got = self.assertStatus(self.srv.patch(one, {"url": "http://hooks.example.com/2",
                                                     "events": [], "enabled": False}, key=self.key), 200)
        self.assertEqual((got["url"], got["events"], got["enabled"]),
                         ("http://hooks.example.com/2", [], False))
        self.assertNotIn(secret, self.srv.last_text)
        # the secret is unchanged by a PATCH, and never in the activity log
        self.assertEqual(self.env.sql("SELECT secret FROM webhooks")[0][0], secret)
        log = self.env.sql("SELECT activity, detail FROM activity_log WHERE scope='Webhook' "
                           "ORDER BY created_at")
        self.assertEqual([r[0] for r in log], ["created", "updated"])
        self.assertFalse(any(secret in r[1] for r in log))
        self.assertEqual([json.loads(r[1])["name"] for r in log],
                         ["https://hooks.example.com", "http://hooks.example.com"])
        self.assertFalse(any("/kw" in r[1] or "/2" in r[1] for r in log))
        self.assertStatus(self.srv.delete(one, key=self.key), 204)
        self.assertProblem(self.srv.get(one, key=self.key), 404, "not_found", "Not found.", None)
        self.assertProblem(self.srv.delete(one, key=self.key), 404, "not_found")
        self.assertEqual(self.env.sql("SELECT COUNT(*) FROM webhooks")[0][0], 0)

    def test_credentials_and_other_tenants(self):
        wid = self.create("https://hooks.example.com/a")["id"]
        phs = self.assertStatus(self.srv.post(PSK, {"label": "s", "scopes": ["feature_flag:read"]},
                                              key=self.key), 201)["value"]
        paths = [("GET", self.hooks()), ("POST", self.hooks()), ("GET", self.hooks() + wid + "/"),
                 ("PATCH", self.hooks() + wid + "/"), ("DELETE", self.hooks() + wid + "/"),
                 ("GET", self.hooks() + wid + "/deliveries/"), ("POST", self.hooks() + wid + "/test/")]
        for method, path in paths:
            body = {"url": "https://evil.example.com/"} if method in ("POST", "PATCH") else None
            with self.subTest(method=method, path=path):
                self.assertProblem(self.srv.request(method, path, body=body), 401,
                                   "not_authenticated", MSG_NOT_PROVIDED, None)
                self.assertProblem(self.srv.request(method, path, key=self.token, body=body), 401,
                                   "authentication_failed", MSG_INVALID_HEADER, None)
                self.assertProblem(self.srv.request(method, path, key=phs, body=body), 403,
                                   "permission_denied", MSG_SECRET_UNSUPPORTED, None)
                # another organization's owner: not found, nothing confirmed
                self.assertProblem(self.srv.request(method, path, key=self.env.key_b, body=body),
                                   404, "not_found", "Not found.", None)
                # a plain member of the organization
                self.assertProblem(self.srv.request(method, path, key=self.env.key_c, body=body),
                                   403, "permission_denied")
        # a key without the webhook scopes; one that may only read
        no_scope = self.assertStatus(self.srv.post(PK, {"label": "o", "scopes": ["organization:read"]},
                                                   key=self.key), 201)["value"]
        reader = self.assertStatus(self.srv.post(PK, {"label": "r", "scopes": ["webhook:read"]},
                                                 key=self.key), 201)["value"]
        self.assertProblem(self.srv.get(self.hooks(), key=no_scope), 403, "permission_denied")
        self.assertStatus(self.srv.get(self.hooks(), key=reader), 200)
        self.assertProblem(self.srv.post(self.hooks(), {"url": "https://x.example/"}, key=reader),
                           403, "permission_denied")
        # a key limited to organization B cannot reach A's webhooks
        narrowed = self.assertStatus(self.srv.post(PK, {"label": "n", "scopes": ["*"],
                                                        "scoped_organizations": [self.env.org_a]},
                                                   key=self.key), 201)["value"]
        self.assertStatus(self.srv.get(self.hooks(), key=narrowed), 200)
        # …and not another organization of the same user; nor can a key
        # narrowed to projects act at organization level
        two = self.assertStatus(self.srv.post(ORGS, {"name": "Two"}, key=self.key), 201)["id"]
        self.assertStatus(self.srv.get(self.hooks(two), key=self.key), 200)
        self.assertProblem(self.srv.get(self.hooks(two), key=narrowed), 403, "permission_denied")
        self.assertProblem(self.srv.post(self.hooks(two), {"url": "https://x.example/"}, key=narrowed),
                           403, "permission_denied")
        teams = self.assertStatus(self.srv.post(PK, {"label": "t", "scopes": ["*"], "scoped_teams": [1]},
                                                key=self.key), 201)["value"]
        self.assertProblem(self.srv.get(self.hooks(), key=teams), 403, "permission_denied")
        self.assertProblem(self.srv.post(self.hooks(), {"url": "https://x.example/"}, key=teams), 403,
                           "permission_denied")
        # B's webhook is not reachable through A's path, nor A's through B's
        b_hook = self.create("https://b.example.com/", key=self.env.key_b, org=self.env.org_b)["id"]
        self.assertProblem(self.srv.get(self.hooks() + b_hook + "/", key=self.key), 404, "not_found")
        self.assertProblem(self.srv.get(self.hooks(self.env.org_b) + wid + "/", key=self.env.key_b),
                           404, "not_found")
        self.assertProblem(self.srv.delete(self.hooks() + b_hook + "/", key=self.key), 404, "not_found")
        rows = self.env.sql("SELECT id, url FROM webhooks ORDER BY url")
        self.assertEqual(rows, [(b_hook, "https://b.example.com/"), (wid, "https://hooks.example.com/a")])

    def test_bad_input_stores_nothing(self):
        cases = [
            ({"url": "not a url"}, "url"), ({"url": "ftp://files.example.com/x"}, "url"),
            ({"url": "file:///etc/passwd"}, "url"), ({"url": "gopher://x"}, "url"),
            ({"url": "http://"}, "url"), ({"url": "https:///path"}, "url"),
            ({"url": "http://user:pw@hooks.example.com/"}, "url"),
            ({"url": "http://hooks.example.com/a b"}, "url"),
            ({"url": "http://hooks.example.com/\u00e9"}, "url"),
            ({"url": "http://hooks.example.com/\x07"}, "url"),
            ({"url": "https://h.example.com/" + "a" * 3000}, "url"),
            ({"url": ""}, "url"), ({"url": 5}, "url"), ({"url": None}, "url"), ({}, "url"),
            ({"url": "https://h.example.com/", "events": ["key.exploded"]}, "events"),
            ({"url": "https://h.example.com/", "events": "key.created"}, "events"),
            ({"url": "https://h.example.com/", "events": [1]}, "events"),
            ({"url": "https://h.example.com/", "events": ["key.created"] * 17}, "events"),
            ({"url": "https://h.example.com/", "enabled": "yes"}, "enabled"),
        ]
        for body, attr in cases:
            with self.subTest(body=str(body)[:80]):
                got = self.assertProblem(self.srv.post(self.hooks(), body, key=self.key), 400, None)
                self.assertEqual(got["attr"], attr, got)
        for raw in (b"[]", b"\"x\"", b"{", b"\xff\xfe{}", b'{"url": "https://h.example.com/\\u0000"}'):
            with self.subTest(raw=raw):
                st, _, body = self.srv.post(self.hooks(), raw=raw, key=self.key)
                self.assertEqual(st, 400, body)
        self.assertEqual(self.env.sql("SELECT COUNT(*) FROM webhooks")[0][0], 0)
        # a PATCH takes the same rules and changes nothing when refused
        wid = self.create("https://ok.example.com/")["id"]
        for body in ({"url": "ftp://x"}, {"events": ["nope"]}, {"enabled": 1}, []):
            with self.subTest(patch=body):
                self.assertStatus(self.srv.patch(self.hooks() + wid + "/", body, key=self.key), 400)
        self.assertEqual(self.env.sql("SELECT url, events, enabled FROM webhooks"),
                         [("https://ok.example.com/", "[]", 1)])
        # the per-organization limit
        for i in range(19):
            self.create("https://ok.example.com/%d" % i)
        self.assertStatus(self.srv.post(self.hooks(), {"url": "https://ok.example.com/x"},
                                        key=self.key), 400)
        self.assertEqual(self.env.sql("SELECT COUNT(*) FROM webhooks")[0][0], 20)


class Delivery(WebhookBase):
    def test_every_key_event_arrives_once_signed(self):
        rec = self.receiver(fail_first=3)
        created = self.create(rec.url)
        secret = created["secret"]
        values = []
        # personal key: created, rolled, deleted
        pk = self.assertStatus(self.srv.post(PK, {"label": "ci", "scopes": ["*"]}, key=self.key), 201)
        values.append(pk["value"])
        rolled = self.assertStatus(self.srv.post(PK + pk["id"] + "/roll/", key=self.key), 200)
        values.append(rolled["value"])
        self.assertStatus(self.srv.delete(PK + pk["id"] + "/", key=self.key), 204)
        # project secret key: created, rolled, deleted
        sk = self.assertStatus(self.srv.post(PSK, {"label": "sdk", "scopes": ["feature_flag:read"]},
                                             key=self.key), 201)
        values.append(sk["value"])
        values.append(self.assertStatus(self.srv.post(PSK + sk["id"] + "/roll/", key=self.key),
                                        200)["value"])
        self.assertStatus(self.srv.delete(PSK + sk["id"] + "/", key=self.key), 204)
        # leak reports: a project secret key and C's personal key
        leaked = self.assertStatus(self.srv.post(PSK, {"label": "leaky", "scopes": ["feature_flag:read"]},
                                                 key=self.key), 201)
        values.append(leaked["value"])
        values.append(self.env.key_c)
        got = self.assertStatus(self.srv.post(REPORT, [
            {"token": leaked["value"], "type": "posthog_project_secret_key",
             "url": "https://gist.example.com/x", "source": "gist"},
            {"token": self.env.key_c, "type": "posthog_personal_api_key",
             "url": "https://gist.example.com/y", "source": "content"}]), 200)
        self.assertEqual([g["action"] for g in got], ["revoked", "revoked"])
        # B's key events are not org A's business
        self.assertStatus(self.srv.post(PK, {"label": "b", "scopes": ["*"]}, key=self.env.key_b), 201)

        accepted, times = self.wait_accepted(rec, 9)
        time.sleep(1.0)  # nothing more may come
        accepted, times = rec.accepted()
        self.assertEqual(len(accepted), 9)
        self.assertEqual(set(times.values()), {1}, times)
        self.check_signed(secret, accepted, values)
        by_type = {}
        for _, b in accepted.values():
            p = json.loads(b)
            by_type.setdefault(p["type"], []).append(p["data"])
            self.assertEqual(p["data"]["organization_id"], self.env.org_a)
            self.assertIn("timestamp", p)
            self.assertRegex(p["data"]["mask_value"], r"^ph[xs]_")
        self.assertEqual(sorted((d["kind"], d["label"]) for d in by_type["key.created"]),
                         [("personal", "ci"), ("project_secret", "leaky"), ("project_secret", "sdk")])
        self.assertEqual(sorted((d["kind"], d["label"]) for d in by_type["key.rolled"]),
                         [("personal", "ci"), ("project_secret", "sdk")])
        self.assertEqual(sorted((d["kind"], d["label"]) for d in by_type["key.deleted"]),
                         [("personal", "ci"), ("project_secret", "sdk")])
        revoked = sorted(by_type["key.revoked"], key=lambda d: d["kind"])
        self.assertEqual([(d["kind"], d["label"], d["context"]["reason"]) for d in revoked],
                         [("personal", "c key", "leaked"), ("project_secret", "leaky", "leaked")])
        self.assertEqual([d.get("project_id") for d in revoked], [None, 1])
        # the delivery log: all delivered; the first event took the failures
        log = self.assertStatus(self.srv.get(self.hooks() + created["id"] + "/deliveries/",
                                             key=self.key), 200)
        self.assertEqual(log["count"], 9)
        self.assertEqual({d["status"] for d in log["results"]}, {"delivered"})
        self.assertEqual(sum(d["attempts"] for d in log["results"]), 12)
        for d in log["results"]:
            self.assertEqual(d["last_status"], 204)
            self.assertIsInstance(d["last_latency_ms"], int)
            self.assertIsNone(d["next_attempt_at"])
            self.assertIn(d["id"], accepted)
        self.assertTrue(all(v not in self.srv.last_text for v in values))
        self.assertNotIn(secret, self.srv.last_text)

    def test_filter_disabled_and_test_event(self):
        rec = self.receiver()
        only_deleted = self.create(rec.url, events=["key.deleted"])
        off = self.create(rec.url + "/off", enabled=False)
        pk = self.assertStatus(self.srv.post(PK, {"label": "f", "scopes": ["*"]}, key=self.key), 201)
        self.assertStatus(self.srv.delete(PK + pk["id"] + "/", key=self.key), 204)
        got = self.assertStatus(self.srv.post(self.hooks() + only_deleted["id"] + "/test/",
                                              key=self.key), 202)
        self.assertEqual(got, {"status": "queued"})
        accepted, _ = self.wait_accepted(rec, 2)
        time.sleep(0.8)
        accepted, _ = rec.accepted()
        self.assertEqual(sorted(json.loads(b)["type"] for _, b in accepted.values()),
                         ["key.deleted", "webhook.test"])
        self.check_signed(only_deleted["secret"], accepted, [pk["value"]])
        self.assertEqual(self.env.sql("SELECT COUNT(*) FROM webhook_outbox WHERE webhook_id=?",
                                      (off["id"],))[0][0], 0)
        # deleting a webhook drops its outbox
        self.assertStatus(self.srv.delete(self.hooks() + only_deleted["id"] + "/", key=self.key), 204)
        self.assertEqual(self.env.sql("SELECT COUNT(*) FROM webhook_outbox")[0][0], 0)

    def test_sigkill_between_events_loses_nothing(self):
        rec = self.receiver()
        rec.down = True
        created = self.create(rec.url)
        secret = created["secret"]
        values = []
        for label in ("one", "two"):
            values.append(self.assertStatus(self.srv.post(PK, {"label": label, "scopes": ["*"]},
                                                          key=self.key), 201)["value"])
        # at least one attempt was made and refused, then the process dies
        self.assertTrue(self.poll(lambda: len(rec.requests) >= 2, timeout=DELIVERY_WAIT,
                                  interval=0.05))
        self.srv.proc.send_signal(signal.SIGKILL)
        self.srv.proc.wait(5)
        self.srv.stopped = True
        self.srv._close()
        # an event while no server runs (the CLI writes the outbox too)
        values.append(self.env.cli_key_create(self.env.email, "three"))
        rec.down = False
        self.start_server()
        accepted, times = self.wait_accepted(rec, 3, timeout=60)
        time.sleep(1.0)
        accepted, times = rec.accepted()
        self.assertEqual(set(times.values()), {1}, times)
        self.assertEqual(sorted(json.loads(b)["data"]["label"] for _, b in accepted.values()),
                         ["one", "three", "two"])
        self.check_signed(secret, accepted, values)

    def test_two_instances_send_each_delivery_once(self):
        """Two servers on one database share the outbox: each delivery is
        claimed by one of them, so no event is sent by both."""
        rec = self.receiver(fail_first=4)
        created = self.create(rec.url)
        second = Server(self.env.db, self.env.dir, SERVE_ARGS)
        self.addCleanup(self._stop_server, second)
        n = 12
        for i in range(n // 2):  # created on one instance, deleted on the other
            pk = self.assertStatus(second.post(PK, {"label": "k%d" % i, "scopes": ["*"]},
                                               key=self.key), 201)
            self.assertStatus(self.srv.delete(PK + pk["id"] + "/", key=self.key), 204)
        accepted, times = self.wait_accepted(rec, n)
        time.sleep(1.0)
        accepted, times = rec.accepted()
        self.assertEqual(len(accepted), n)
        self.assertEqual(set(times.values()), {1}, times)
        self.check_signed(created["secret"], accepted)
        # every request the receiver saw is one recorded attempt: no second sender
        with rec.lock:
            sent = len(rec.requests)
        attempts = self.env.sql("SELECT SUM(attempts) FROM webhook_outbox")[0][0]
        self.assertEqual(sent, attempts)
        self.assertEqual(attempts, n + 4)

    def test_sigterm_during_a_slow_delivery(self):
        """A receiver that does not answer does not hold the shutdown: the
        attempt is abandoned and its row is due at once for the next start."""
        rec = self.receiver()
        rec.delay = 8.0
        self.create(rec.url)
        self.assertStatus(self.srv.post(PK, {"label": "slow", "scopes": ["*"]}, key=self.key), 201)
        self.assertTrue(rec.arrived.wait(DELIVERY_WAIT))
        started = time.monotonic()
        self.assertEqual(self.srv.stop(signal.SIGTERM, 5.0), 0, self.srv.stderr())
        self.assertLess(time.monotonic() - started, 5.0)
        row = self.env.sql("SELECT attempts, next_attempt_at, delivered_at, last_error "
                           "FROM webhook_outbox")[0]
        self.assertEqual((row[0], row[2], row[3]), (1, None, "interrupted by shutdown"))
        self.assertLessEqual(row[1], kwtest.now_us())
        rec.delay = 0.0
        self.start_server()
        accepted, times = self.wait_accepted(rec, 1)
        self.assertEqual(list(times.values()), [1])
    def test_project_deletion_tells_of_its_secret_keys(self):
        rec = self.receiver()
        created = self.create(rec.url, events=["key.deleted"])
        project = self.assertStatus(self.srv.post(ORGS + self.env.org_a + "/projects/",
                                                  {"name": "Staging"}, key=self.key), 201)
        path = "/api/projects/%d/project_secret_api_keys/" % project["id"]
        values = [self.assertStatus(self.srv.post(path, {"label": l, "scopes": ["feature_flag:read"]},
                                                  key=self.key), 201)["value"] for l in ("a", "b")]
        self.assertStatus(self.srv.delete("/api/projects/%d/" % project["id"], key=self.key), 204)
        accepted, times = self.wait_accepted(rec, 2)
        self.check_signed(created["secret"], accepted, values)
        data = sorted((json.loads(b)["data"] for _, b in accepted.values()), key=lambda d: d["label"])
        self.assertEqual([(d["label"], d["project_id"], d["context"]) for d in data],
                         [("a", project["id"], {"reason": "project deleted"}),
                          ("b", project["id"], {"reason": "project deleted"})])

    def test_gives_up_after_a_day(self):
        rec = self.receiver()
        rec.down = True
        created = self.create(rec.url)
        self.assertStatus(self.srv.post(self.hooks() + created["id"] + "/test/", key=self.key), 202)
        # the event is older than a day by now: the next failure is the last
        self.env.sql("UPDATE webhook_outbox SET created_at = created_at - 86400000000")
        path = self.hooks() + created["id"] + "/deliveries/"
        self.assertTrue(self.poll(lambda: self.srv.get(path, key=self.key)[2]["results"][0]["status"]
                                  == "failed", timeout=DELIVERY_WAIT, interval=0.1))
        d = self.srv.get(path, key=self.key)[2]["results"][0]
        self.assertEqual((d["last_status"], d["last_error"], d["next_attempt_at"], d["delivered_at"]),
                         (503, "HTTP 503", None, None))
        with rec.lock:
            seen = len(rec.requests)
        time.sleep(1.0)
        with rec.lock:
            self.assertEqual(len(rec.requests), seen)
        self.assertEqual(self.env.sql("SELECT attempts FROM webhook_outbox")[0][0], seen)

    def test_old_finished_rows_are_pruned_at_start(self):
        rec = self.receiver()
        created = self.create(rec.url)
        self.assertStatus(self.srv.post(self.hooks() + created["id"] + "/test/", key=self.key), 202)
        self.wait_accepted(rec, 1)
        self.assertTrue(self.poll(lambda: self.env.sql(
            "SELECT COUNT(*) FROM webhook_outbox WHERE delivered_at IS NOT NULL")[0][0] == 1))
        # 31 days old, and a pending one as old: only the finished one goes
        self.env.sql("UPDATE webhook_outbox SET created_at = created_at - %d" % (31 * 86400 * 10**6))
        self.srv.stop()
        rec.down = True
        with self.env.connect() as c:
            c.execute("INSERT INTO webhook_outbox(id, webhook_id, event, payload, created_at, attempts, "
                      "next_attempt_at) VALUES (?,?,?,?,?,?,?)",
                      ("msg_old_pending", created["id"], "webhook.test", "{}",
                       kwtest.now_us() - 31 * 86400 * 10**6, 0, kwtest.now_us() + 3600 * 10**6))
        self.start_server()
        self.assertTrue(self.poll(lambda: self.env.sql("SELECT id FROM webhook_outbox") ==
                                  [("msg_old_pending",)], timeout=5))
    def test_expiring_soon_and_expired_once_each(self):
        """Keys crossing their expiry-notice lines are announced once each,
        by one of two instances sweeping the same database."""
        second = Server(self.env.db, self.env.dir, SERVE_ARGS)
        self.addCleanup(self._stop_server, second)
        rec = self.receiver()
        created = self.create(rec.url, events=["key.expiring_soon", "key.expired"])

        def iso(seconds):
            t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
            return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        soon = self.assertStatus(self.srv.post(PK, {"label": "soon", "scopes": ["*"],
                                                    "expires_at": iso(2 * 86400)}, key=self.key), 201)
        self.assertStatus(self.srv.post(PK, {"label": "later", "scopes": ["*"],
                                             "expires_at": iso(30 * 86400)}, key=self.key), 201)
        brief = self.assertStatus(self.srv.post(PSK, {"label": "brief", "scopes": ["feature_flag:read"],
                                                      "expires_at": iso(4)}, key=self.key), 201)
        accepted, _ = self.wait_accepted(rec, 3)
        time.sleep(3.0)  # both instances swept again meanwhile
        accepted, times = rec.accepted()
        self.assertEqual(set(times.values()), {1}, times)
        got = sorted((json.loads(b)["type"], json.loads(b)["data"]["label"]) for _, b in accepted.values())
        self.assertEqual(got, [("key.expired", "brief"), ("key.expiring_soon", "brief"),
                               ("key.expiring_soon", "soon")])
        self.check_signed(created["secret"], accepted, [soon["value"], brief["value"]])
        for _, b in accepted.values():
            self.assertIn("expires_at", json.loads(b)["data"])
        # a new expiry re-arms the notices
        self.assertStatus(self.srv.patch(PSK + brief["id"] + "/", {"expires_at": iso(86400)},
                                         key=self.key), 200)
        accepted, _ = self.wait_accepted(rec, 4)
        self.assertEqual(sorted(json.loads(b)["type"] for _, b in accepted.values()).count(
            "key.expiring_soon"), 3)
    def test_rate_limited_burst_is_announced_once_a_minute(self):
        """A key hammered past its rate limit: one key.rate_limited event per
        key per minute however many requests are refused, to the webhooks
        that take it, signed, without the key's value."""
        rec = self.receiver()
        created = self.create(rec.url, events=["key.rate_limited"])
        others = self.receiver()
        self.create(others.url, events=["key.created", "key.deleted"])
        psk = self.assertStatus(self.srv.post(PSK, {"label": "limited", "scopes": ["feature_flag:read"],
                                                    "rate_limit_per_minute": 3}, key=self.key), 201)
        pk = self.assertStatus(self.srv.post(PK, {"label": "limited me", "scopes": ["user:read"],
                                                  "rate_limit_per_minute": 3}, key=self.key), 201)
        statuses = []
        for _ in range(20):
            statuses.append(self.srv.get("/api/projects/1/feature_flags/local_evaluation",
                                         key=psk["value"])[0])
            statuses.append(self.srv.get("/api/users/@me/", key=pk["value"])[0])
        self.assertGreaterEqual(statuses.count(429), 30, statuses)
        accepted, _ = self.wait_accepted(rec, 2)
        time.sleep(1.0)  # five more polls: nothing else may come
        accepted, times = rec.accepted()
        self.assertEqual(set(times.values()), {1})
        events = [json.loads(b) for _, b in accepted.values()]
        self.assertEqual({e["type"] for e in events}, {"key.rate_limited"})
        # one per key and minute (the hammering may straddle a minute)
        per_window = {}
        for e in events:
            minute = e["data"]["context"]["first_refused_at"][:16]
            per_window[(e["data"]["id"], minute)] = per_window.get((e["data"]["id"], minute), 0) + 1
        self.assertEqual(set(per_window.values()), {1}, per_window)
        self.assertEqual({i for i, _ in per_window}, {psk["id"], pk["id"]})
        for e in events:
            d = e["data"]
            self.assertEqual(d["context"]["rate_limit_per_minute"], 3)
            if d["id"] == psk["id"]:
                self.assertEqual((d["kind"], d["label"], d["project_id"]),
                                 ("project_secret", "limited", 1))
                self.assertEqual(d["mask_value"], psk["mask_value"])
            else:
                self.assertEqual((d["kind"], d["label"]), ("personal", "limited me"))
        self.check_signed(created["secret"], accepted, [psk["value"], pk["value"]])
        self.assertNotIn("key.rate_limited",
                         [json.loads(b)["type"] for _, b in others.accepted()[0].values()])

    def test_metrics_count_deliveries_and_backlog(self):
        try:
            from prometheus_client.parser import text_string_to_metric_families
        except ImportError:  # a Python of its own beside Debian's package
            sys.path.append("/usr/lib/python3/dist-packages")
            from prometheus_client.parser import text_string_to_metric_families
        self.srv.stop()
        srv = self.start_server_with(SERVE_ARGS + ["--metrics-listen", "127.0.0.1:0"])
        mport = int(re.search(r":(\d+)/metrics", srv.next_line()).group(1))

        def scrape():
            conn = http.client.HTTPConnection("127.0.0.1", mport, timeout=10)
            conn.request("GET", "/metrics")
            text = conn.getresponse().read().decode()
            conn.close()
            out = {}
            for fam in text_string_to_metric_families(text):
                for smp in fam.samples:
                    out[(smp.name, tuple(sorted(smp.labels.items())))] = smp.value
            return out

        def attempts(outcome):
            return scrape()[("keyward_webhook_deliveries_total", (("outcome", outcome),))]
        rec = self.receiver(fail_first=2)
        rec.down = True
        self.create(rec.url)
        for i in range(3):
            self.assertStatus(srv.post(PK, {"label": "m%d" % i, "scopes": ["*"]}, key=self.key), 201)
        self.assertTrue(self.poll(lambda: scrape()[("keyward_webhook_backlog", ())] == 3,
                                  timeout=10, interval=0.2))
        # the backlog counts the rows as soon as they are written; the first
        # failed attempt comes a moment later
        self.assertTrue(self.poll(lambda: attempts("retry") > 0, timeout=DELIVERY_WAIT,
                                  interval=0.1), scrape())
        rec.down = False
        self.wait_accepted(rec, 3)
        self.assertEqual(attempts("delivered"), 3)
        self.assertEqual(attempts("gave_up"), 0)
        self.assertTrue(self.poll(lambda: scrape()[("keyward_webhook_backlog", ())] == 0,
                                  timeout=10, interval=0.2))
        with rec.lock:
            self.assertEqual(attempts("retry") + 3, len(rec.requests))

class Isolation(WebhookBase):
    def black_hole(self):
        b = BlackHole()
        self.addCleanup(b.close)
        return b

    def pending(self, wid):
        return self.env.sql("SELECT COUNT(*) FROM webhook_outbox WHERE webhook_id = ? "
                            "AND next_attempt_at IS NOT NULL", (wid,))[0][0]

    def test_a_receiver_that_never_answers_does_not_delay_other_organizations(self):
        """Organization B's two webhooks point at a receiver that accepts and
        never answers, with events and tests queued for both; A's key event,
        queued after them, arrives within 15 s (one attempt per B webhook at
        most, on other threads), not after B's rows of 10 s each."""
        hole = self.black_hole()
        b_hooks = [self.create(hole.url, key=self.env.key_b, org=self.env.org_b)["id"]
                   for _ in range(2)]
        for wid in b_hooks:
            self.assertStatus(self.srv.post(self.hooks(self.env.org_b) + wid + "/test/",
                                            key=self.env.key_b), 202)
        for i in range(4):
            self.assertStatus(self.srv.post(PK, {"label": "b%d" % i, "scopes": ["*"]},
                                            key=self.env.key_b), 201)
        self.assertTrue(self.poll(lambda: hole.connections >= 1, timeout=10, interval=0.05))
        rec = self.receiver()
        created = self.create(rec.url)
        started = time.monotonic()
        self.assertStatus(self.srv.post(PK, {"label": "victim", "scopes": ["*"]}, key=self.key), 201)
        accepted, _ = self.wait_accepted(rec, 1, timeout=60)
        took = time.monotonic() - started
        self.assertLess(took, 15.0, "A's event waited %.1f s behind B's receiver" % took)
        self.check_signed(created["secret"], accepted)
        # one attempt in flight per B webhook at a time, however many rows
        with hole.lock:
            self.assertLessEqual(hole.connections, 2 * len(b_hooks), hole.connections)
        self.assertEqual(sum(self.pending(w) for w in b_hooks), 10)

    def test_test_route_is_bounded_and_refused_while_paused(self):
        hole = self.black_hole()
        wid = self.create(hole.url)["id"]
        test = self.hooks() + wid + "/test/"
        self.assertStatus(self.srv.post(test, key=self.key), 202)
        for _ in range(5):
            st, headers, body = self.srv.post(test, key=self.key)
            self.assertEqual(st, 429, body)
            self.assertEqual(body["code"], "throttled")
            self.assertIn("still pending", body["detail"])
            self.assertGreaterEqual(int(headers["Retry-After"]), 1)
        self.assertEqual(self.pending(wid), 1)
        # paused: refused, nothing queued (the pending test stays as it was)
        self.assertStatus(self.srv.patch(self.hooks() + wid + "/", {"enabled": False},
                                         key=self.key), 200)
        off = self.create(hole.url, enabled=False)["id"]
        got = self.assertProblem(self.srv.post(self.hooks() + off + "/test/", key=self.key), 400,
                                 "webhook_disabled")
        self.assertEqual(got["attr"], "enabled")
        self.assertEqual(self.env.sql("SELECT COUNT(*) FROM webhook_outbox WHERE webhook_id = ?",
                                      (off,))[0][0], 0)
        # a test delivered (or given up) no longer counts as pending
        rec = self.receiver()
        ok = self.create(rec.url)["id"]
        self.assertStatus(self.srv.post(self.hooks() + ok + "/test/", key=self.key), 202)
        self.wait_accepted(rec, 1)
        self.assertTrue(self.poll(lambda: self.pending(ok) == 0, timeout=10))
        self.assertStatus(self.srv.post(self.hooks() + ok + "/test/", key=self.key), 202)

    def test_pending_rows_per_webhook_are_bounded(self):
        """A webhook with 1000 rows to deliver takes no more: further events
        for it are dropped (counted), other webhooks still get them."""
        rec = self.receiver()
        rec.down = True
        full = self.create(rec.url, events=["key.created"])["id"]
        healthy = self.receiver()
        other = self.create(healthy.url, events=["key.created"])["id"]
        self.srv.stop()
        now = kwtest.now_us()
        with self.env.connect() as c:
            for i in range(999):
                c.execute("INSERT INTO webhook_outbox(id, webhook_id, event, payload, created_at, "
                          "attempts, next_attempt_at) VALUES (?,?,?,?,?,?,?)",
                          ("msg_fill%04d" % i, full, "key.created", "{}", now, 0,
                           now + 3600 * 10**6))
        self.start_server()
        for i in range(3):
            self.assertStatus(self.srv.post(PK, {"label": "f%d" % i, "scopes": ["*"]},
                                            key=self.key), 201)
        self.assertEqual(self.pending(full), 1000)
        got = self.assertProblem(self.srv.post(self.hooks() + full + "/test/", key=self.key), 429,
                                 "throttled")
        self.assertIn("1000", got["detail"])
        self.assertEqual(self.pending(full), 1000)
        self.wait_accepted(healthy, 3)
        self.assertEqual(self.env.sql("SELECT COUNT(*) FROM webhook_outbox WHERE webhook_id = ?",
                                      (other,))[0][0], 3)


class PrivateAddresses(WebhookBase):
    serve_args = ["--webhook-retry-base", "0.2"]

    def test_unresolvable_name_reads_as_a_refused_address(self):
        """The delivery log does not tell a name that does not resolve from
        one that resolves to a refused address: an admin cannot probe which
        internal names exist."""
        rec = self.receiver()
        logs = []
        for url in (rec.url, "http://no-such-host.invalid/hook"):
            created = self.create(url)
            self.assertStatus(self.srv.post(self.hooks() + created["id"] + "/test/", key=self.key),
                              202)
            path = self.hooks() + created["id"] + "/deliveries/"
            self.assertTrue(self.poll(lambda: (self.srv.get(path, key=self.key)[2]["results"][0]
                                               ["last_error"] or "") != "",
                                      timeout=DELIVERY_WAIT, interval=0.1))
            logs.append(self.srv.get(path, key=self.key)[2]["results"][0])
        self.assertEqual(logs[0]["last_error"], logs[1]["last_error"])
        self.assertIn("address not allowed", logs[0]["last_error"])
        self.assertEqual([(d["status"], d["last_status"]) for d in logs],
                         [("pending", None), ("pending", None)])

    def test_loopback_refused_without_the_flag(self):
        rec = self.receiver()
        created = self.create(rec.url)
        self.assertStatus(self.srv.post(self.hooks() + created["id"] + "/test/", key=self.key), 202)
        path = self.hooks() + created["id"] + "/deliveries/"

        def refused():
            log = self.srv.get(path, key=self.key)[2]
            return log["results"] and "address not allowed" in (log["results"][0]["last_error"] or "")
        self.assertTrue(self.poll(refused, timeout=DELIVERY_WAIT, interval=0.1),
                        self.srv.get(path, key=self.key)[2])
        d = self.srv.get(path, key=self.key)[2]["results"][0]
        self.assertEqual(d["status"], "pending")
        self.assertIsNone(d["last_status"])
        self.assertEqual(rec.requests, [])


class Cli(WebhookBase):
    serve_in_setup = False

    def cli(self, *args):
        return kwtest.run_cli("webhook", *args, "--db", self.env.db)

    def test_manage_from_the_shell(self):
        rec = self.receiver()
        p = self.cli("create", "--email", self.env.email, "--url", rec.url, "--events",
                     "key.created,webhook.test")
        self.assertEqual(p.returncode, 0, p.stderr)
        secret = re.search(r"whsec_[A-Za-z0-9+/]+", p.stdout).group(0)
        wid = self.env.sql("SELECT id FROM webhooks")[0][0]
        p = self.cli("list", "--email", self.env.email)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(wid, p.stdout)
        self.assertIn(rec.url, p.stdout)
        self.assertNotIn(secret, p.stdout)
        # the same rules as the API: bad input, a plain member, another organization
        p = self.cli("create", "--email", self.env.email, "--url", "ftp://x")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("valid URL", p.stderr)
        p = self.cli("create", "--email", self.env.email, "--url", rec.url, "--events", "key.nope")
        self.assertNotEqual(p.returncode, 0)
        p = self.cli("list", "--email", "c@x.io")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("permission", p.stderr.lower())
        p = self.cli("delete", "--email", "b@y.io", "--org", self.env.org_a, wid)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("Not found", p.stderr)
        self.assertEqual(self.env.sql("SELECT COUNT(*) FROM webhooks")[0][0], 1)
        # queued from the shell, delivered by the server
        self.assertEqual(self.cli("test", "--email", self.env.email, wid).returncode, 0)
        self.start_server()
        accepted, _ = self.wait_accepted(rec, 1)
        self.check_signed(secret, accepted)
        p = self.cli("deliveries", "--email", self.env.email, wid)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(self.poll(lambda: "delivered" in self.cli("deliveries", "--email",
                                                                  self.env.email, wid).stdout))
        p = self.cli("delete", "--email", self.env.email, wid)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.env.sql("SELECT COUNT(*) FROM webhooks")[0][0], 0)

if __name__ == "__main__":
    kwtest.main()
