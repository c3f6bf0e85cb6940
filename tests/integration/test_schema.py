"""test_schema.py — the OpenAPI document (GET /api/schema/, `keyward schema`).

The document is generated from the route table, so this checks that it
stays whole and true rather than what each route does (the other suites
do that): every row of lib/policy/policy.c is an operation with the
credentials, scope and level of its row; every $ref resolves and every
schema is a valid JSON Schema (2020-12, OpenAPI 3.1's dialect); the route
is public, cacheable (ETag, 304) and open to any origin; `keyward schema`
prints the same document; and real answers of the server — successes and
refusals across the API's kinds of route — validate against the schemas
the document gives for their status.
"""
import json
import os
import re
import subprocess
import sys

import kwtest
from kwtest import BIN, KWTestCase

sys.path.append("/usr/lib/python3/dist-packages")  # Debian's python3-jsonschema
import jsonschema  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
POLICY = os.path.join(HERE, "..", "..", "lib", "policy", "policy.c")
ROW = re.compile(r'\{(KW_ROUTE_[A-Z0-9_]+), "([A-Z]+)", "([^"]+)",\s*([A-Z_| ]+),\s*(NULL|"[^"]*")')
PARAMS = {":project": "{project_id}", ":org": "{organization_id}", ":id": "{id}", ":num": "{id}",
          ":any": "{version}"}
FILES = ("/assets/", "/static/", "/array/", "/invite/")


def route_rows():
    with open(POLICY) as f:
        return [m.groups() for m in ROW.finditer(f.read())]


def openapi_path(pattern):
    path = "/".join(PARAMS.get(seg, seg) for seg in pattern.split("/"))
    return path if pattern == "/" or pattern.startswith(FILES) else path + "/"


def inline(node, schemas, depth=0):
    """The schema with every local $ref replaced by what it names."""
    if depth > 20:
        raise AssertionError("$ref cycle")
    if isinstance(node, dict):
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            if not node["$ref"].startswith("#/components/schemas/") or name not in schemas:
                raise AssertionError("unresolved $ref %r" % node["$ref"])
            return inline(schemas[name], schemas, depth + 1)
        return {k: inline(v, schemas, depth) for k, v in node.items()}
    if isinstance(node, list):
        return [inline(v, schemas, depth) for v in node]
    return node


class SchemaTest(KWTestCase):
    def document(self):
        st, hdrs, doc = self.srv.get("/api/schema/")
        self.assertEqual(st, 200)
        return doc

    def test_every_route_is_an_operation_with_its_rules(self):
        doc = self.document()
        self.assertEqual(doc["openapi"], "3.1.0")
        rows = route_rows()
        self.assertGreater(len(rows), 80)
        ops = sum(len(item) for item in doc["paths"].values())
        self.assertEqual(ops, len(rows), "one operation per route, no more")
        for rid, method, pattern, creds, scope in rows:
            op = doc["paths"].get(openapi_path(pattern), {}).get(method.lower())
            self.assertIsNotNone(op, "%s %s (%s) has no operation" % (method, pattern, rid))
            self.assertTrue(any(s.startswith("2") for s in op["responses"]), rid)
            if scope != "NULL":
                self.assertEqual(op.get("x-required-scope"), scope.strip('"'), rid)
            schemes = {k for s in op["security"] for k in s}
            if creds.strip() == "KW_CRED_NONE":
                self.assertEqual(op["security"], [], rid)
            else:
                self.assertTrue(schemes, rid)
                self.assertIn("401", op["responses"], rid)
            if "ADMIN" in creds:
                self.assertEqual(schemes, {"PersonalAPIKey", "Session"}, rid)

    def test_refs_resolve_and_schemas_are_valid(self):
        doc = self.document()
        schemas = doc["components"]["schemas"]
        validator = jsonschema.Draft202012Validator
        for name, schema in schemas.items():
            validator.check_schema(inline(schema, schemas))
        for path, item in doc["paths"].items():
            for method, op in item.items():
                for status, resp in op["responses"].items():
                    for media in resp.get("content", {}).values():
                        validator.check_schema(inline(media["schema"], schemas))
        used = {s for item in doc["paths"].values() for op in item.values() for s in op["security"]
                for s in s}
        self.assertEqual(used, set(doc["components"]["securitySchemes"]))

    def test_public_cacheable_and_the_same_as_the_command(self):
        st, hdrs, doc = self.srv.get("/api/schema")  # with or without the slash
        self.assertEqual(st, 200)
        self.assertEqual(hdrs.get("Access-Control-Allow-Origin"), "*")
        etag = hdrs.get("ETag")
        self.assertTrue(etag)
        st, _, _ = self.srv.get("/api/schema/", headers={"If-None-Match": etag})
        self.assertEqual(st, 304)
        # a credential changes nothing, a bad one is not even looked at
        self.assertEqual(self.srv.get("/api/schema/", key=self.key)[2], doc)
        self.assertEqual(self.srv.get("/api/schema/", key="phx_bogus")[0], 200)
        self.assertEqual(doc["servers"], [{"url": "/"}])
        printed = subprocess.run([BIN, "schema", "--compact"], capture_output=True, text=True,
                                 check=True, env=dict(os.environ, KEYWARD_PUBLIC_URL="")).stdout
        self.assertEqual(json.loads(printed), doc)
        printed = subprocess.run([BIN, "schema", "--public-url", "https://keys.example.com/"],
                                 capture_output=True, text=True, check=True).stdout
        self.assertEqual(json.loads(printed)["servers"], [{"url": "https://keys.example.com"}])
        self.assertEqual(subprocess.run([BIN, "schema", "--public-url", "ftp://x"],
                                        capture_output=True).returncode, 2)

    def test_public_url_is_the_server(self):
        srv = kwtest.Server(self.env.db, self.env.dir, ["--public-url", "https://keys.example.com"])
        self.addCleanup(srv.kill)
        self.assertEqual(srv.get("/api/schema/")[2]["servers"], [{"url": "https://keys.example.com"}])

    def test_real_answers_match_the_document(self):
        doc = self.document()
        schemas = doc["components"]["schemas"]
        rows = route_rows()

        def check(method, path, result):
            status, _, body = result
            for rid, m, pattern, _, _ in rows:
                if m == method and re.fullmatch(
                        "/".join("[^/]+" if s.startswith(":") else re.escape(s)
                                 for s in pattern.split("/")) + "/?", path.split("?")[0]):
                    break
            else:
                self.fail("no route for %s %s" % (method, path))
            op = doc["paths"][openapi_path(pattern)][method.lower()]
            resp = op["responses"].get(str(status))
            self.assertIsNotNone(resp, "%s %s answered %d, which the document does not list"
                                 % (method, path, status))
            content = resp.get("content", {}).get("application/json")
            if content and body is not None:
                jsonschema.Draft202012Validator(inline(content["schema"], schemas)).validate(body)
            return body

        k = self.key
        check("GET", "/_health/", self.srv.get("/_health/"))
        check("GET", "/api/users/@me/", self.srv.get("/api/users/@me/", key=k))
        check("GET", "/api/users/@me/", self.srv.get("/api/users/@me/"))
        check("GET", "/api/projects/", self.srv.get("/api/projects/", key=k))
        check("GET", "/api/projects/1/", self.srv.get("/api/projects/1/", key=k))
        check("GET", "/api/projects/999/", self.srv.get("/api/projects/999/", key=k))
        check("GET", "/api/organizations/", self.srv.get("/api/organizations/", key=k))
        made = check("POST", "/api/personal_api_keys/",
                     self.srv.post("/api/personal_api_keys/", {"label": "s", "scopes": ["*"]}, key=k))
        check("GET", "/api/personal_api_keys/", self.srv.get("/api/personal_api_keys/", key=k))
        check("POST", "/api/personal_api_keys/",
              self.srv.post("/api/personal_api_keys/", {"label": "", "scopes": ["nope"]}, key=k))
        psk = check("POST", "/api/projects/1/project_secret_api_keys/",
                    self.srv.post("/api/projects/1/project_secret_api_keys/",
                                  {"label": "s", "scopes": ["feature_flag:read"]}, key=k))
        check("GET", "/api/projects/1/project_secret_api_keys/",
              self.srv.get("/api/projects/1/project_secret_api_keys/", key=k))
        check("POST", "/api/projects/1/feature_flags/",
              self.srv.post("/api/projects/1/feature_flags/",
                            {"key": "s", "filters": {"groups": [{"rollout_percentage": 50}]}}, key=k))
        check("GET", "/api/projects/1/feature_flags/",
              self.srv.get("/api/projects/1/feature_flags/", key=k))
        check("GET", "/flags/definitions",
              self.srv.get("/flags/definitions?token=" + self.env.token, key=psk["value"]))
        check("POST", "/flags/", self.srv.post("/flags/?v=2", {"token": self.env.token,
                                                                "distinct_id": "d"}))
        check("POST", "/batch/", self.srv.post("/batch/", {"api_key": self.env.token,
                                                           "batch": [{"event": "e",
                                                                      "distinct_id": "d"}]}))
        check("POST", "/batch/", self.srv.post("/batch/", {"batch": []}))
        check("GET", "/api/organizations/%s/webhooks/" % self.env.org_a,
              self.srv.get("/api/organizations/%s/webhooks/" % self.env.org_a, key=k))
        check("DELETE", "/api/personal_api_keys/%s/" % made["id"],
              self.srv.delete("/api/personal_api_keys/%s/" % made["id"], key=k))


if __name__ == "__main__":
    kwtest.main()
