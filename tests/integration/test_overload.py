"""test_overload.py — more connections than the server serves.

With --max-connections N, the first N connections are served as usual; a
request on a connection opened beyond them is answered at once with 503
`service_unavailable`, Retry-After and `Connection: close`, and the
connection is closed, so the excess is refused promptly (never left to
time out) and a client's retry opens a new connection that fits once
others have closed.  Every request here gets its answer within a few
seconds: the test fails on a hang, not on a latency figure.
"""
import json
import socket
import time

import kwtest
from kwtest import KWTestCase

LIMIT = 4


def read_response(sock, timeout=10.0):
    """One HTTP/1.1 response from a raw socket: (status, headers, body,
    closed) — closed when the server closed the connection after it."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise AssertionError("connection closed before a response: %r" % data)
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(4096)
        if not chunk:
            break
        body += chunk
    closed = False
    if headers.get("connection", "").lower() == "close":  # then it must really close
        try:
            closed = sock.recv(1) == b""
        except socket.timeout:
            closed = False
    return status, headers, body[:length], closed


class TestOverload(KWTestCase):
    serve_in_setup = False

    def setUp(self):
        super().setUp()
        self.srv = kwtest.Server(self.env.db, self.env.dir, ["--max-connections", str(LIMIT)])
        self.addCleanup(self.srv.kill)

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=10)
        self.addCleanup(s.close)
        return s

    def ask(self, sock, path="/_health"):
        sock.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path).encode())
        return read_response(sock)

    def test_connections_beyond_the_limit_get_503_at_once(self):
        # Opened and served one at a time, so the server has accepted each
        # before the next one opens.
        served = []
        for _ in range(LIMIT):
            s = self.connect()
            status, _, _, closed = self.ask(s)
            self.assertEqual((status, closed), (200, False))
            served.append(s)
        t0 = time.monotonic()
        for _ in range(3):
            s = self.connect()
            status, headers, body, closed = self.ask(s)
            self.assertEqual(status, 503)
            self.assertEqual(headers.get("retry-after"), "1")
            problem = json.loads(body)
            self.assertEqual((problem["type"], problem["code"]),
                             ("server_error", "service_unavailable"))
            self.assertTrue(closed, "the refused connection is closed")
        self.assertLess(time.monotonic() - t0, 10)
        # The connections within the limit keep being served meanwhile.
        for s in served:
            self.assertEqual(self.ask(s)[0], 200)
            self.assertEqual(self.ask(s, "/api/users/@me/")[0], 401)
        # Once they close, new connections fit again.
        for s in served:
            s.close()
        deadline = time.monotonic() + 10
        while True:
            status = self.ask(self.connect())[0]
            if status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(status, 200)

    def test_a_body_on_a_refused_connection_is_not_read(self):
        held = [self.connect() for _ in range(LIMIT)]
        for s in held:
            self.assertEqual(self.ask(s)[0], 200)
        s = self.connect()
        body = json.dumps({"api_key": "phc_x", "event": "e", "distinct_id": "d"})
        s.sendall(("POST /batch/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                   "Content-Length: %d\r\n\r\n%s" % (len(body), body)).encode())
        status, headers, _, closed = read_response(s)
        self.assertEqual((status, closed), (503, True))
        self.assertEqual(self.env.sql("SELECT COUNT(*) FROM events"), [(0,)])


if __name__ == "__main__":
    kwtest.main()
