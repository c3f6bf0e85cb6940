"""kwschema.py — every answer the integration suite gets is checked against
the OpenAPI document (`keyward schema`, the same text GET /api/schema/
serves), so the document cannot say one thing while the server does
another.

kwtest's request helper calls check(method, path, status, body) after each
request.  The request is matched to an operation the way the server
matches routes (a literal segment before a parameter); a path no route
serves, HEAD and OPTIONS are not checked.  The status must be one the
operation lists, and a JSON body must validate against the schema given
for it.  The document is read once per test process.  KWSCHEMA=0 turns
the check off; KWSCHEMA_STATS=1 prints, at exit, how many operations and
(operation, status) pairs the run exercised.
"""
import atexit
import json
import os
import re
import subprocess
import sys

sys.path.append("/usr/lib/python3/dist-packages")  # Debian's python3-jsonschema

_doc = None
_ops = []           # (specificity, regex, method, path template, operation)
_validators = {}    # (path, method, status) -> validator or None
_seen = set()


def _load(bin_path):
    global _doc
    out = subprocess.run([bin_path, "schema", "--compact"], capture_output=True, text=True,
                         check=True, env=dict(os.environ, KEYWARD_PUBLIC_URL="")).stdout
    _doc = json.loads(out)
    for path, item in _doc["paths"].items():
        segs = path.strip("/").split("/") if path != "/" else []
        rx = "/" + "/".join("[^/]+" if s.startswith("{") else re.escape(s) for s in segs)
        rx = re.compile((rx if segs else "") + "/?$")
        params = sum(1 for s in segs if s.startswith("{"))
        for method, op in item.items():
            # The server's table puts literal segments before parameters.
            _ops.append(((params, -len(segs)), rx, method.upper(), path, op))
    _ops.sort(key=lambda o: o[0])
    if os.environ.get("KWSCHEMA_STATS"):
        atexit.register(_stats)


def _stats():
    ops = {(p, m) for p, m, _ in _seen}
    total = sum(len(i) for i in _doc["paths"].values())
    print("\nkwschema: %d of %d operations and %d (operation, status) pairs checked"
          % (len(ops), total, len(_seen)), file=sys.stderr)


def _inline(node, schemas, depth=0):
    if isinstance(node, dict):
        if "$ref" in node:
            return _inline(schemas[node["$ref"].rsplit("/", 1)[-1]], schemas, depth + 1)
        return {k: _inline(v, schemas, depth) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(v, schemas, depth) for v in node]
    return node


def _validator(path, method, status, response):
    key = (path, method, status)
    if key not in _validators:
        content = response.get("content", {}).get("application/json")
        v = None
        if content:
            import jsonschema
            schema = _inline(content["schema"], _doc["components"]["schemas"])
            v = jsonschema.Draft202012Validator(schema)
        _validators[key] = v
    return _validators[key]


def check(bin_path, method, path, status, body):
    """Raises AssertionError when the answer is not what the document says."""
    if os.environ.get("KWSCHEMA", "1") == "0" or method in ("HEAD", "OPTIONS"):
        return
    if _doc is None:
        _load(bin_path)
    bare = path.split("?", 1)[0]
    for _, rx, m, template, op in _ops:
        if m == method and rx.match(bare):
            break
    else:
        return  # no route: the server's 404/405, not an operation's
    response = op["responses"].get(str(status))
    if response is None:
        raise AssertionError("the OpenAPI document lists no %d for %s %s (answered to %s %s)"
                             % (status, method, template, method, path))
    _seen.add((template, method, status))
    v = _validator(template, method, status, response)
    if v is not None and body is not None:
        errors = sorted(v.iter_errors(body), key=lambda e: list(e.path))
        if errors:
            e = errors[0]
            raise AssertionError("%s %s answered %d with a body the OpenAPI document does not "
                                 "allow: %s at %s" % (method, path, status, e.message,
                                                      "/".join(map(str, e.path)) or "(top)"))
