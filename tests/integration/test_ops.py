"""Operations: liveness, readiness and the Prometheus metrics.

/_health is liveness (a static 200 whatever the database does); readiness
(/_health/ready) says whether this instance reaches its database, read
from the verifier's poll — an outage is exercised in test_pg_outage.py
(PostgreSQL mode), since a SQLite file cannot go away like a server.

Metrics are scraped from the separate listener `serve --metrics-listen`
opens and parsed with the Prometheus project's own text parser
(python3-prometheus-client), so the exposition is checked by a real
consumer; the counters must move by exactly what the requests did."""
import re
import sys
import urllib.request

import kwtest
from kwtest import KWTestCase, Server

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:  # a Python of its own (pyenv) beside Debian's package
    sys.path.append("/usr/lib/python3/dist-packages")
    from prometheus_client.parser import text_string_to_metric_families

PK = "/api/personal_api_keys/"
PSK = "/api/projects/1/project_secret_api_keys/"
REPORT = "/api/secret_scanning/report/"
METRICS_LINE = re.compile(r"^keyward metrics on http://127\.0\.0\.1:(\d+)/metrics$")


class Readiness(KWTestCase):
    def test_ready_ok(self):
        for path in ("/_health/ready", "/_health/ready/"):
            st, hdrs, body = self.srv.get(path)
            self.assertEqual(st, 200, body)
            self.assertEqual(body["status"], "ok")
            self.assertEqual(body["database"], "ok")
            self.assertEqual(body["backend"], kwtest.BACKEND)
            self.assertGreaterEqual(body["last_contact_seconds_ago"], 0)
            self.assertLess(body["last_contact_seconds_ago"], 2)
            self.assertTrue(hdrs["Content-Type"].startswith("application/json"))
            self.assertEqual(hdrs["Cache-Control"], "no-store")

    def test_liveness_unchanged(self):
        st, _, body = self.srv.get("/_health")
        self.assertEqual((st, body), (200, {"status": "ok"}))

    def test_ready_needs_no_credential_and_ignores_bad_ones(self):
        for key in (self.key, kwtest.make_key(), kwtest.make_key("phs_"), "garbage", "phx_short"):
            with self.subTest(key=key[:8]):
                self.assertEqual(self.srv.get("/_health/ready", key=key)[0], 200)

    def test_ready_methods(self):
        self.assertEqual(self.srv.request("HEAD", "/_health/ready")[0], 200)
        for method in ("POST", "PATCH", "DELETE", "PUT"):
            st, hdrs, _ = self.srv.request(method, "/_health/ready")
            self.assertEqual(st, 405, method)
            self.assertIn("GET", hdrs["Allow"])
        st, hdrs, _ = self.srv.request("OPTIONS", "/_health/ready")
        self.assertEqual(st, 204)

    def test_ready_odd_input(self):
        # Repeated or NUL query parameters are refused as on every route;
        # unknown ones are ignored; a longer path is not readiness.
        self.assertEqual(self.srv.get("/_health/ready?x=1")[0], 200)
        self.assertProblem(self.srv.get("/_health/ready?a=1&a=2"), 400, "query_repeated")
        self.assertProblem(self.srv.get("/_health/ready?a=%00"), 400, "query_invalid")
        self.assertEqual(self.srv.get("/_health/ready/x")[0], 404)
        self.assertEqual(self.srv.get("/_health/readyx")[0], 404)


class Metrics(KWTestCase):
    serve_in_setup = False

    def setUp(self):
        super().setUp()
        self.srv = Server(self.env.db, self.env.dir, ["--metrics-listen", "127.0.0.1:0"])
        self.addCleanup(self._stop_server, self.srv)
        line = self.srv.next_line()
        m = METRICS_LINE.match(line)
        self.assertTrue(m, line)
        self.mport = int(m.group(1))

    def fetch(self, path="/metrics", method="GET"):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.mport, path), method=method)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.headers, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read().decode()

    def scrape(self):
        """{(sample name, frozenset(labels)): value}, parsed by prometheus_client."""
        st, hdrs, text = self.fetch()
        self.assertEqual(st, 200, text)
        self.assertTrue(hdrs["Content-Type"].startswith("text/plain; version=0.0.4"), hdrs)
        self.last_text = text
        out = {}
        self.families = {}
        for fam in text_string_to_metric_families(text):
            self.families[fam.name] = fam.type
            for s in fam.samples:
                out[(s.name, frozenset(s.labels.items()))] = s.value
        return out

    @staticmethod
    def v(samples, name, **labels):
        return samples.get((name, frozenset(labels.items())), 0)

    def delta(self, before, after, name, **labels):
        return self.v(after, name, **labels) - self.v(before, name, **labels)

    def test_families_types_and_build_info(self):
        m = self.scrape()
        expected = {
            "keyward_build_info": "gauge",
            "keyward_verifications": "counter",
            "keyward_verification_duration_seconds": "histogram",
            "keyward_verification_cache_hits": "counter",
            "keyward_verification_cache_misses": "counter",
            "keyward_http_requests": "counter",
            "keyward_http_request_duration_seconds": "histogram",
            "keyward_rate_limited": "counter",
            "keyward_leak_reports": "counter",
            "keyward_leak_report_tokens": "counter",
            "keyward_db_errors": "counter",
            "keyward_db_up": "gauge",
            "keyward_db_grace_remaining_seconds": "gauge",
            "keyward_capture_lost_events": "counter",
        }
        for name, typ in expected.items():
            self.assertEqual(self.families.get(name), typ, name)
        info = [k for k in m if k[0] == "keyward_build_info"]
        self.assertEqual(len(info), 1)
        self.assertEqual(dict(info[0][1])["version"], self.srv.listen_line.split()[1])
        self.assertEqual(self.v(m, "keyward_db_up", backend=kwtest.BACKEND), 1)
        self.assertEqual(self.v(m, "keyward_capture_lost_events_total"), 0)
        self.assertGreater(self.v(m, "keyward_db_grace_remaining_seconds"), 0)
        # Every kind and result is listed from the start, zeros included.
        for kind in ("personal", "secret", "project"):
            for result in ("ok", "invalid", "expired", "unavailable", "busy"):
                self.assertIn(("keyward_verifications_total",
                               frozenset({"kind": kind, "result": result}.items())), m)

    def test_counters_move_with_requests(self):
        srv = self.srv
        before = self.scrape()
        psk = self.assertStatus(srv.post(PSK, {"label": "sdk", "scopes": ["feature_flag:read"]},
                                         key=self.key), 201)
        for _ in range(3):
            self.assertStatus(srv.get("/api/users/@me/", key=self.key), 200)
        self.assertEqual(srv.get("/api/users/@me/", key=kwtest.make_key())[0], 401)
        self.assertEqual(srv.get("/api/users/@me/", key=kwtest.bad_checksum(self.key))[0], 401)
        defs = "/api/feature_flag/local_evaluation/?token=" + self.token
        self.assertStatus(srv.get(defs, key=psk["value"]), 200)
        self.assertStatus(srv.get(defs, key=psk["value"]), 200)
        self.assertEqual(srv.get(defs, key=kwtest.make_key("phs_"))[0], 401)
        self.assertStatus(srv.post("/flags/?v=2", {"token": self.token, "distinct_id": "u1"}), 200)
        self.assertEqual(srv.post("/flags/?v=2", {"token": kwtest.make_key("phc_"),
                                                   "distinct_id": "u1"})[0], 401)
        self.assertEqual(srv.get("/api/projects/1/")[0], 401)  # no credential: no verification
        self.assertEqual(srv.get("/no/such/path-7f3a")[0], 404)
        after = self.scrape()
        d = lambda name, **labels: self.delta(before, after, name, **labels)  # noqa: E731
        # phx_: the PSK create + 3 reads ok; a made-up key and a bad checksum invalid.
        self.assertEqual(d("keyward_verifications_total", kind="personal", result="ok"), 4)
        self.assertEqual(d("keyward_verifications_total", kind="personal", result="invalid"), 2)
        self.assertEqual(d("keyward_verifications_total", kind="secret", result="ok"), 2)
        self.assertEqual(d("keyward_verifications_total", kind="secret", result="invalid"), 1)
        # The definitions resolve their ?token= (twice) and /flags its body token.
        self.assertEqual(d("keyward_verifications_total", kind="project", result="ok"), 3)
        self.assertEqual(d("keyward_verifications_total", kind="project", result="invalid"), 1)
        for kind in ("personal", "secret", "project"):
            total = sum(d("keyward_verifications_total", kind=kind, result=r)
                        for r in ("ok", "invalid", "expired", "unavailable", "busy"))
            self.assertEqual(d("keyward_verification_duration_seconds_count", kind=kind), total)
            self.assertEqual(d("keyward_verification_duration_seconds_bucket", kind=kind,
                               le="+Inf"), total)
            self.assertGreater(d("keyward_verification_duration_seconds_sum", kind=kind), 0)
        # The second use of the phs_ key is a cache hit; its first a miss.
        self.assertGreaterEqual(d("keyward_verification_cache_hits_total", kind="secret"), 1)
        self.assertGreaterEqual(d("keyward_verification_cache_misses_total", kind="secret"), 1)
        self.assertGreaterEqual(d("keyward_verification_cache_hits_total", kind="personal"), 3)
        # Requests by route pattern and status class, never by raw path.
        self.assertEqual(d("keyward_http_requests_total", method="GET", route="/api/users/@me",
                           status="2xx"), 3)
        self.assertEqual(d("keyward_http_requests_total", method="GET", route="/api/users/@me",
                           status="4xx"), 2)
        self.assertEqual(d("keyward_http_requests_total", method="POST",
                           route="/api/projects/:project/project_secret_api_keys", status="2xx"), 1)
        self.assertEqual(d("keyward_http_requests_total", method="GET",
                           route="/api/projects/:project", status="4xx"), 1)
        self.assertEqual(d("keyward_http_requests_total", method="none", route="none",
                           status="4xx"), 1)
        self.assertNotIn("path-7f3a", self.last_text)
        self.assertNotIn("/api/projects/1", self.last_text)
        http_total = sum(v for (n, _), v in after.items() if n == "keyward_http_requests_total") - \
            sum(v for (n, _), v in before.items() if n == "keyward_http_requests_total")
        self.assertEqual(http_total, 13)
        self.assertEqual(d("keyward_http_request_duration_seconds_count"), 13)
        # Buckets are cumulative.
        buckets = sorted(((float(dict(k[1])["le"]), v) for k, v in after.items()
                          if k[0] == "keyward_http_request_duration_seconds_bucket"))
        self.assertEqual([v for _, v in buckets], sorted(v for _, v in buckets))

    def test_rate_limit_and_leak_counters(self):
        srv = self.srv
        limited = self.assertStatus(srv.post(PK, {"label": "slow", "scopes": ["user:read"],
                                                  "rate_limit_per_minute": 1}, key=self.key), 201)
        before = self.scrape()
        self.assertStatus(srv.get("/api/users/@me/", key=limited["value"]), 200)
        self.assertEqual(srv.get("/api/users/@me/", key=limited["value"])[0], 429)
        self.assertEqual(srv.get("/api/users/@me/", key=limited["value"])[0], 429)
        psk = self.assertStatus(srv.post(PSK, {"label": "leaky", "scopes": ["feature_flag:read"]},
                                         key=self.key), 201)
        st, _, body = srv.post(REPORT, [
            {"token": psk["value"], "type": "posthog_project_secret_key", "url": "u",
             "source": "content"},
            {"token": self.token, "type": "posthog_project_token", "url": "u", "source": "content"},
            {"token": kwtest.make_key(), "type": "x", "url": "u", "source": "content"}])
        self.assertEqual(st, 200, body)
        after = self.scrape()
        d = lambda name, **labels: self.delta(before, after, name, **labels)  # noqa: E731
        self.assertEqual(d("keyward_rate_limited_total", reason="key"), 2)
        self.assertEqual(d("keyward_http_requests_total", method="GET", route="/api/users/@me",
                           status="4xx"), 2)
        self.assertEqual(d("keyward_leak_reports_total"), 1)
        self.assertEqual(d("keyward_leak_report_tokens_total", action="revoked"), 1)
        self.assertEqual(d("keyward_leak_report_tokens_total", action="public"), 1)
        self.assertEqual(d("keyward_leak_report_tokens_total", action="none"), 1)
        self.assertEqual(d("keyward_db_errors_total", kind="error"), 0)

    def test_only_on_the_metrics_listener(self):
        # The API's listener has no /metrics; the metrics listener nothing else.
        self.assertEqual(self.srv.get("/metrics")[0], 404)
        self.assertEqual(self.srv.get("/metrics/", key=self.key)[0], 404)
        st, _, body = self.fetch("/api/users/@me/")
        self.assertEqual(st, 404, body)
        self.assertEqual(self.fetch("/_health")[0], 404)
        self.assertEqual(self.fetch("/metrics/")[0], 200)
        st, hdrs, _ = self.fetch("/metrics", method="POST")
        self.assertEqual(st, 405)
        self.assertEqual(hdrs["Allow"], "GET, HEAD")
        self.assertEqual(self.fetch("/metrics", method="HEAD")[0], 200)

    def test_bad_metrics_listen_address(self):
        for bad in ("nonsense", "127.0.0.1:99999", "[::1"):
            proc = kwtest.run_cli("serve", "--listen", "127.0.0.1:0", "--db", self.env.db,
                                  "--metrics-listen", bad, timeout=20)
            self.assertNotEqual(proc.returncode, 0, bad)
            self.assertIn("--metrics-listen", proc.stderr, bad)


class NoMetricsByDefault(KWTestCase):
    def test_not_served_without_configuration(self):
        self.assertEqual(self.srv.get("/metrics")[0], 404)
        self.assertEqual(self.srv.get("/metrics", key=self.key)[0], 404)


if __name__ == "__main__":
    kwtest.main()
