"""test_snippet.py — posthog-js's files for PostHog's HTML snippet.

GET /static/array.js (what the snippet loads from api_host), array.full.js
and the bundles array.js loads lazily, from the folder `keyward serve
--js-dir DIR` (or $KEYWARD_JS_DIR) names: read once at start, served from
memory by exact name from a fixed list, with the JavaScript content type,
CORS, an ETag (304 on If-None-Match) and Cache-Control.  Nothing else in
that folder, and nothing outside it, can be reached ("../", encoded or
not).  Without a copy: a 404 that names the setting.  A bad --js-dir stops
the start with a message.  When the build tree holds the real posthog-js
(scripts/deps), it is served byte for byte.
"""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kwtest  # noqa: E402

JS_TYPE = "application/javascript; charset=utf-8"
SECRET = "TOP-SECRET-MARKER-9d1f"
ALLOWED_PRESENT = ("array.js", "array.full.js", "array.no-external.js", "surveys.js",
                   "web-vitals.js", "lazy-recorder.js")
REAL_DIST = os.path.join(os.path.dirname(kwtest.BIN), "posthog-js", "node_modules", "posthog-js",
                         "dist")


def make_dist(root):
    """A fake dist/ folder: allowed bundles, and files that must never be
    served (not on the list, or outside the folder)."""
    dist = os.path.join(root, "dist")
    os.makedirs(dist)
    files = {}
    for name in ALLOWED_PRESENT:
        files[name] = ("/* %s */ window.__kw_loaded = %r;\n" % (name, name)).encode()
    files["module.js"] = ("/* %s module */" % SECRET).encode()
    files["array.js.map"] = ("{\"%s\": 1}" % SECRET).encode()
    files["secret.txt"] = SECRET.encode()
    files[".env"] = SECRET.encode()
    for name, data in files.items():
        with open(os.path.join(dist, name), "wb") as f:
            f.write(data)
    with open(os.path.join(root, "outside.js"), "w") as f:
        f.write(SECRET)
    return dist, {k: v for k, v in files.items() if k in ALLOWED_PRESENT}


class SnippetCase(kwtest.KWTestCase):
    serve_in_setup = False

    def serve(self, *args, env=None):
        old = {}
        for k, v in (env or {}).items():
            old[k] = os.environ.get(k)
            os.environ[k] = v
        try:
            self.srv = kwtest.Server(self.env.db, self.env.dir, extra_args=list(args))
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        self.addCleanup(self._stop_server, self.srv)
        return self.srv

    def raw_get(self, path, headers=None, method="GET"):
        """(status, headers, bytes) — the body exactly as sent."""
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=10)
        try:
            conn.putrequest(method, path, skip_accept_encoding=True, skip_host=False)
            for k, v in (headers or {}).items():
                conn.putheader(k, v)
            conn.endheaders()
            resp = conn.getresponse()
            return resp.status, resp.headers, resp.read()
        finally:
            conn.close()


class TestServed(SnippetCase):
    def setUp(self):
        super().setUp()
        self.dist, self.files = make_dist(self.env.dir)
        self.serve("--js-dir", self.dist)

    def test_each_listed_file_byte_for_byte(self):
        for name, data in self.files.items():
            for path in ("/static/" + name, "/static/%s?v=1.449.2" % name):
                with self.subTest(path=path):
                    st, h, body = self.raw_get(path)
                    self.assertEqual(st, 200)
                    self.assertEqual(body, data)
                    self.assertEqual(h["Content-Type"], JS_TYPE)
                    self.assertEqual(h["Access-Control-Allow-Origin"], "*")
                    self.assertEqual(h["Cache-Control"], "public, max-age=300")
                    self.assertRegex(h["ETag"], r'^W/"[0-9a-f]{32}"$')
                    self.assertEqual(h["X-Content-Type-Options"], "nosniff")
        etags = {self.raw_get("/static/" + n)[1]["ETag"] for n in self.files}
        self.assertEqual(len(etags), len(self.files))

    def test_etag_304_head_options_methods(self):
        st, h, _ = self.raw_get("/static/array.js")
        etag = h["ETag"]
        st, h2, body = self.raw_get("/static/array.js", {"If-None-Match": etag})
        self.assertEqual((st, body), (304, b""))
        self.assertEqual(h2["ETag"], etag)
        self.assertEqual(self.raw_get("/static/array.js", {"If-None-Match": 'W/"x"'})[0], 200)
        st, h3, body = self.raw_get("/static/array.js", method="HEAD")
        self.assertEqual((st, body), (200, b""))
        self.assertEqual(h3["ETag"], etag)
        st, h4, _ = self.srv.request("OPTIONS", "/static/array.js")
        self.assertEqual(st, 204)
        self.assertEqual(h4["Access-Control-Allow-Origin"], "*")
        self.assertEqual(h4["Allow"], "GET, HEAD, OPTIONS")
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            self.assertProblem(self.srv.request(method, "/static/array.js", raw="x"), 405, None)

    def test_loaded_once_at_start(self):
        with open(os.path.join(self.dist, "array.js"), "wb") as f:
            f.write(b"changed on disk")
        os.unlink(os.path.join(self.dist, "surveys.js"))
        self.assertEqual(self.raw_get("/static/array.js")[2], self.files["array.js"])
        self.assertEqual(self.raw_get("/static/surveys.js")[2], self.files["surveys.js"])

    def test_nothing_else_reachable(self):
        not_found = ["/static/module.js", "/static/array.js.map", "/static/secret.txt",
                     "/static/.env", "/static/toolbar.js", "/static/recorder.js",
                     "/static/ARRAY.JS", "/static/array.js.", "/static/array", "/static/",
                     "/static/%2e%2e", "/static/..%2Foutside.js", "/static/%2e%2e%2foutside.js",
                     "/static/..%5Coutside.js", "/static/array.js%2F..%2Fsecret.txt",
                     "/static/%252e%252e%252fsecret.txt", "/static/" + "a" * 300 + ".js",
                     "/static/1.449.2/secret.txt", "/static/1.449.2/module.js",
                     "/static/%2e%2e/secret.txt", "/static/x/../secret.txt",
                     "/static/a/b/array.js", "/static/array.js/secret.txt",
                     "/static/../secret.txt", "/static/../../outside.js",
                     "/static/..%2F..%2Foutside.js",
                     "/static//secret.txt", "/static/array.js%20", "/static/%C0%AE%C0%AE"]
        for path in not_found:
            with self.subTest(path=path):
                st, h, body = self.raw_get(path)
                self.assertNotIn(SECRET.encode(), body)
                self.assertEqual(st, 404, body)
                self.assertIn(b'"code":"not_found"', body)
        # a NUL in the path is refused before routing: it used to cut the
        # path short, so /static/array.js%00.txt served array.js
        for path in ("/static/%00secret.txt", "/static/array.js%00.txt"):
            with self.subTest(path=path):
                st, h, body = self.raw_get(path)
                self.assertNotIn(SECRET.encode(), body)
                self.assertEqual(st, 400, body)
                self.assertIn(b'"code":"path_invalid"', body)
        # spellings the HTTP layer folds into a listed name serve that name
        for path in ("/static//array.js", "/static/array.js/",
                     # posthog-js's strict script versioning: the version is not read
                     "/static/1.449.2/array.js", "/static/0.0.1/array.js?v=x"):
            with self.subTest(path=path):
                st, _, body = self.raw_get(path)
                self.assertEqual((st, body), (200, self.files["array.js"]))


class TestNotConfigured(SnippetCase):
    def test_no_copy_names_the_setting(self):
        self.serve("--js-dir", "")
        for name in ("array.js", "array.full.js", "nothing.js"):
            with self.subTest(name=name):
                r = self.srv.get("/static/" + name)
                body = self.assertProblem(r, 404, "js_dir_not_configured", attr="js_dir")
                self.assertIn("--js-dir", body["detail"])
                self.assertIn("KEYWARD_JS_DIR", body["detail"])
                self.assertEqual(r[1]["Access-Control-Allow-Origin"], "*")
        # the rest of the server works
        self.assertEqual(self.srv.get("/array/%s/config" % self.token)[0], 200)

    def test_env_names_the_folder_and_flag_overrides_it(self):
        dist, files = make_dist(self.env.dir)
        self.serve(env={"KEYWARD_JS_DIR": dist})
        st, _, body = self.raw_get("/static/array.js")
        self.assertEqual((st, body), (200, files["array.js"]))
        self.srv.stop()
        self.serve("--js-dir", "", env={"KEYWARD_JS_DIR": dist})
        self.assertProblem(self.srv.get("/static/array.js"), 404, "js_dir_not_configured")

    def test_default_is_the_build_tree_copy(self):
        self.serve(env={"KEYWARD_JS_DIR": ""})  # empty env: none
        self.assertProblem(self.srv.get("/static/array.js"), 404, "js_dir_not_configured")
        self.srv.stop()
        os.environ.pop("KEYWARD_JS_DIR", None)
        self.serve()
        st, _, body = self.raw_get("/static/array.js")
        if os.path.exists(os.path.join(REAL_DIST, "array.js")):
            with open(os.path.join(REAL_DIST, "array.js"), "rb") as f:
                self.assertEqual((st, body), (200, f.read()))
        else:
            self.assertEqual(st, 404)
            self.assertIn(b"js_dir_not_configured", body)

    def test_bad_folder_stops_the_start(self):
        root = self.env.dir
        no_array = os.path.join(root, "empty")
        os.makedirs(no_array)
        dir_array = os.path.join(root, "dirarray")
        os.makedirs(os.path.join(dir_array, "array.js"))
        fifo = os.path.join(root, "fifo")
        os.makedirs(fifo)
        os.mkfifo(os.path.join(fifo, "array.js"))
        for d, want in ((os.path.join(root, "missing"), "no array.js"), (no_array, "no array.js"),
                        (dir_array, "not a regular file"), (fifo, "not a regular file"),
                        (os.path.join(root, "x" * 5000), "too long")):
            with self.subTest(d=d[-20:]):
                proc = subprocess.run([kwtest.BIN, "serve", "--listen", "127.0.0.1:0", "--db",
                                       self.env.db, "--js-dir", d], capture_output=True,
                                      text=True, timeout=20)
                self.assertEqual(proc.returncode, 1, proc.stdout)
                self.assertIn("--js-dir", proc.stderr)
                self.assertIn(want, proc.stderr)


@__import__("unittest").skipUnless(os.path.exists(os.path.join(REAL_DIST, "array.js")),
                                   "posthog-js is not installed in the build tree "
                                   "(scripts/deps installs it)")
class TestRealPosthogJs(SnippetCase):
    def test_real_bundles(self):
        self.serve("--js-dir", REAL_DIST)
        with open(os.path.join(REAL_DIST, "array.js"), "rb") as f:
            array = f.read()
        # array.js loads the remote config and its extensions from these paths
        self.assertIn(b"/array/", array)
        self.assertIn(b"/config.js", array)
        self.assertIn(b"/static/", array)
        for name in ("array.js", "array.full.js", "surveys.js", "web-vitals.js",
                     "dead-clicks-autocapture.js", "exception-autocapture.js",
                     "tracing-headers.js", "lazy-recorder.js"):
            path = os.path.join(REAL_DIST, name)
            if not os.path.exists(path):
                continue
            with self.subTest(name=name):
                with open(path, "rb") as f:
                    data = f.read()
                st, h, body = self.raw_get("/static/%s?v=1" % name)
                self.assertEqual(st, 200)
                self.assertEqual(body, data)
                self.assertEqual(h["Content-Type"], JS_TYPE)
        self.assertEqual(self.raw_get("/static/module.js")[0], 404)


if __name__ == "__main__":
    kwtest.main()
