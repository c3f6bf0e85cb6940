"""kwtest.py — shared helpers for keyward's HTTP integration tests.

Every test talks to a real `keyward serve` on loopback, over a temporary
database made by `keyward init`: a SQLite file, or — when
KEYWARD_TEST_BACKEND=postgresql and KEYWARD_TEST_PG_URL points at a test
cluster (scripts/pg-test-cluster) — a fresh PostgreSQL database per test.
Extra users, organizations, projects and memberships (for which no HTTP
endpoint exists yet) are written straight into the database; in PostgreSQL
mode through psql, behind the same small connection interface.

The binary is $KEYWARD_BIN (set by ctest); when unset, the usual build
directories next to the source tree are tried.
"""
import base64
import hashlib
import http.client
import json
import os
import re
import secrets
import select
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest
import uuid
import zlib

import kwschema

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
KEY_RE = re.compile(r"^phx_[0-9A-Za-z]{54}$")
LOGIN_HASH_CLIENT_BURST = 20  # KW_LOGIN_HASH_CLIENT_BURST: password hashes per address at once
MAX_BODY = 1024 * 1024

BACKEND = os.environ.get("KEYWARD_TEST_BACKEND", "sqlite")
PG_ADMIN_URL = os.environ.get("KEYWARD_TEST_PG_URL", "")
# ctest reads this exit code as "skipped" (SKIP_RETURN_CODE).
SKIP_EXIT = 77

MSG_NOT_PROVIDED = "Authentication credentials were not provided."
MSG_INVALID_HEADER = "Personal API key found in request Authorization header is invalid."
MSG_INVALID_QUERY = "Personal API key found in request query string is invalid."
MSG_INVALID_BODY = "Personal API key found in request body is invalid."
MSG_PERSONAL_UNSUPPORTED = "This action does not support Personal API Key access"
MSG_SECRET_UNSUPPORTED = "This action does not support project secret API key access"
MSG_LEVEL = "You don't have sufficient permissions in the project."
MSG_LIMIT = ("You can only have 10 personal API keys. Remove an existing key before "
             "creating a new one.")


def find_binary():
    env = os.environ.get("KEYWARD_BIN")
    if env:
        return env
    for d in ("build-it", "build"):
        p = os.path.join(ROOT, d, "keyward")
        if os.path.exists(p):
            return p
    raise RuntimeError("set KEYWARD_BIN to the keyward binary")


BIN = find_binary()


# --------------------------------------------------------------------------
# Keys

def checksum(prefix, random_part):
    v = zlib.crc32((prefix + random_part).encode()) & 0xFFFFFFFF
    out = ""
    for _ in range(6):
        out = BASE62[v % 62] + out
        v //= 62
    return out


def checksum_ok(key):
    prefix, body = key[:4], key[4:]
    return len(body) == 54 and checksum(prefix, body[:48]) == body[48:]


def make_key(prefix="phx_"):
    """A well-formed keyward key (valid checksum) that no database holds."""
    rnd = "".join(secrets.choice(BASE62) for _ in range(48))
    return prefix + rnd + checksum(prefix, rnd)


def bad_checksum(key):
    """Same key with the checksum's last digit changed (still base62)."""
    last = key[-1]
    return key[:-1] + ("0" if last != "0" else "1")


def legacy_key(body_len=45):
    return "phx_" + "".join(secrets.choice(BASE62) for _ in range(body_len))


def sha256_secure(key):
    return "sha256$" + hashlib.sha256(key.encode()).hexdigest()


def pbkdf2_secure(key, iterations):
    salt = "posthog_personal_api_key"
    dk = hashlib.pbkdf2_hmac("sha256", key.encode(), salt.encode(), iterations)
    return "pbkdf2_sha256$%d$%s$%s" % (iterations, salt, base64.b64encode(dk).decode())


def mask(key):
    return key[:4] + "..." + key[-4:]


def now_us():
    return int(time.time() * 1_000_000)


# --------------------------------------------------------------------------
# CLI

def run_cli(*args, check=False, timeout=30, env=None):
    proc = subprocess.run([BIN] + [str(a) for a in args], capture_output=True, text=True,
                          timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError("keyward %s failed (%d): %s%s" % (
            " ".join(map(str, args)), proc.returncode, proc.stdout, proc.stderr))
    return proc


def parse_phx(text):
    m = re.findall(r"phx_[0-9A-Za-z]+", text)
    if not m:
        raise AssertionError("no phx_ key in output: %r" % text)
    return m[-1]


def parse_phc(text):
    m = re.findall(r"phc_[0-9A-Za-z]+", text)
    if not m:
        raise AssertionError("no phc_ token in output: %r" % text)
    return m[-1]


# --------------------------------------------------------------------------
# Database

# --------------------------------------------------------------------------
# PostgreSQL mode: a sqlite3-like connection over psql

_PG_DB_COUNTER = [0]


def _pg_literal(v):
    if v is None:
        return "NULL"
    # Untyped quoted literals: PostgreSQL coerces them to the column's type,
    # so the tests' 0/1 for booleans and ints for bigints work unchanged.
    return "'" + str(v).replace("'", "''") + "'"


def _pg_url_for(dbname):
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return base + "/" + dbname


def _psql(url, sql):
    proc = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-F", "\x1f", "-P", "null=\\N",
                           "-v", "ON_ERROR_STOP=1",
                           "-d", url, "-c", sql], capture_output=True, timeout=30)
    if proc.returncode != 0:
        raise RuntimeError("psql failed: %s\n%s" % (sql, proc.stderr.decode(errors="replace")))
    return proc.stdout.decode()


def _pg_value(text):
    """psql's text back to what sqlite3 would return: ints, 0/1 for
    booleans, None for NULL (printed as \\N)."""
    if text == "\\N":
        return None
    if text in ("t", "f"):
        return 1 if text == "t" else 0
    return int(text) if re.fullmatch(r"-?\d+", text) else text


class _PgCursor:
    def __init__(self, rows, lastrowid):
        self.rows = rows
        self.lastrowid = lastrowid

    def fetchall(self):
        return self.rows

    def fetchone(self):
        return self.rows[0] if self.rows else None


class _PgConn:
    """Just enough of sqlite3.Connection for these tests: execute() with ?
    placeholders, fetchone/fetchall, lastrowid for tables with integer ids."""

    def __init__(self, url):
        self.url = url

    def execute(self, query, args=()):
        parts = query.split("?")
        if len(parts) - 1 != len(args):
            raise ValueError("placeholder count mismatch in %r" % query)
        sql = parts[0] + "".join(_pg_literal(a) + p for a, p in zip(args, parts[1:]))
        sql = re.sub(r"\b(is_active|active|deleted)\s*=\s*([01])\b", r"\1 = '\2'", sql)
        if query.startswith("PRAGMA"):
            return _PgCursor([], None)
        returning = bool(re.match(r"\s*INSERT INTO (users|projects|feature_flags)\b", sql)) \
            and "RETURNING" not in sql
        if returning:
            sql += " RETURNING id"
        rows = []
        if re.match(r"\s*SELECT\b", sql, re.I):
            # Through row_to_json, so each value keeps its SQL type (text
            # stays text even when it looks like a number, as with sqlite3).
            wrapped = "SELECT row_to_json(kw_row) FROM (%s) kw_row" % sql
            for line in _psql(self.url, wrapped).splitlines():
                if line and line != "\\N":
                    pairs = json.loads(line, object_pairs_hook=list)
                    rows.append(tuple(int(v) if isinstance(v, bool) else v for _, v in pairs))
            return _PgCursor(rows, None)
        for line in _psql(self.url, sql).splitlines():
            if line == "":
                continue
            rows.append(tuple(_pg_value(v) for v in line.split("\x1f")))
        lastrowid = rows[0][0] if returning and rows else None
        return _PgCursor([] if returning else rows, lastrowid)

    def close(self):
        pass


def pg_available():
    return BACKEND == "postgresql" and bool(PG_ADMIN_URL)


class Env:
    """A temporary directory with a keyward database made by `keyward init`.

    After init: user A (id 1, a@x.io) owns org A, which holds project 1."""

    def __init__(self, email="a@x.io", org="Acme", project="Web"):
        self.tmp = tempfile.TemporaryDirectory(prefix="kwtest-")
        self.dir = self.tmp.name
        self.pg_dbname = None
        if BACKEND == "postgresql":
            _PG_DB_COUNTER[0] += 1
            self.pg_dbname = "kwt_%d_%d" % (os.getpid(), _PG_DB_COUNTER[0])
            _psql(PG_ADMIN_URL, "CREATE DATABASE %s" % self.pg_dbname)
            self.db = _pg_url_for(self.pg_dbname)
        else:
            self.db = os.path.join(self.dir, "kw.db")
        proc = run_cli("init", "--email", email, "--org", org, "--project", project,
                       "--db", self.db, check=True)
        self.init_output = proc.stdout
        self.key = parse_phx(proc.stdout)
        self.token = parse_phc(proc.stdout)
        self.email = email
        with self.connect() as c:
            self.org_a = c.execute("SELECT id FROM organizations").fetchone()[0]
            self.user_a = c.execute("SELECT id FROM users WHERE email=?", (email,)).fetchone()[0]

    def cleanup(self):
        self.tmp.cleanup()
        if self.pg_dbname:
            _psql(PG_ADMIN_URL, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.pg_dbname)

    def connect(self):
        if self.pg_dbname:
            return _Closing(_PgConn(self.db))
        c = sqlite3.connect(self.db, timeout=10, isolation_level=None)
        c.execute("PRAGMA busy_timeout=10000")
        return _Closing(c)

    def sql(self, query, args=()):
        with self.connect() as c:
            return c.execute(query, args).fetchall()

    def add_user(self, email, is_active=1):
        with self.connect() as c:
            cur = c.execute(
                "INSERT INTO users(uuid, email, first_name, password_hash, is_active, created_at) "
                "VALUES (?,?,?,?,?,?)", (str(uuid.uuid4()), email, email.split("@")[0], None,
                                         is_active, now_us()))
            return cur.lastrowid

    def add_org(self, name):
        oid = str(uuid.uuid4())
        with self.connect() as c:
            c.execute("INSERT INTO organizations(id, name, created_at) VALUES (?,?,?)",
                      (oid, name, now_us()))
        return oid

    def add_membership(self, user_id, org_id, level):
        with self.connect() as c:
            c.execute("INSERT INTO memberships(user_id, org_id, level, created_at) VALUES (?,?,?,?)",
                      (user_id, org_id, level, now_us()))

    def add_project(self, org_id, name):
        with self.connect() as c:
            cur = c.execute(
                "INSERT INTO projects(uuid, org_id, name, api_token, created_at) VALUES (?,?,?,?,?)",
                (str(uuid.uuid4()), org_id, name, make_key("phc_"), now_us()))
            return cur.lastrowid

    def cli_key_create(self, email, label, scopes="*", teams=None):
        args = ["key", "create", "--email", email, "--label", label, "--scopes", scopes,
                "--db", self.db]
        if teams:
            args += ["--teams", teams]
        proc = run_cli(*args, check=True)
        return parse_phx(proc.stdout)

    def add_legacy_key(self, user_id, key, secure_value, scopes='["*"]', label="imported"):
        kid = str(uuid.uuid4())
        with self.connect() as c:
            c.execute(
                "INSERT INTO personal_api_keys(id, user_id, label, secure_value, mask_value, "
                "created_at, last_used_at, last_rolled_at, scopes, scoped_teams, "
                "scoped_organizations) VALUES (?,?,?,?,?,?,NULL,NULL,?,NULL,NULL)",
                (kid, user_id, label, secure_value, mask(key), now_us(), scopes))
        return kid

    def tenants(self):
        """Adds user B (owner of org B with project 2), user C (member of
        org A) and returns their keys with scope '*'.  Call before serving."""
        self.org_b = self.add_org("Beta")
        self.user_b = self.add_user("b@y.io")
        self.add_membership(self.user_b, self.org_b, 15)
        self.project_b = self.add_project(self.org_b, "Beta web")
        self.user_c = self.add_user("c@x.io")
        self.add_membership(self.user_c, self.org_a, 1)
        self.key_b = self.cli_key_create("b@y.io", "b key")
        self.key_c = self.cli_key_create("c@x.io", "c key")

    def db_bytes(self):
        if self.pg_dbname:
            return subprocess.run(["pg_dump", "-d", self.db], capture_output=True,
                                  check=True, timeout=60).stdout
        out = b""
        for suffix in ("", "-wal", "-shm", "-journal"):
            p = self.db + suffix
            if os.path.exists(p):
                with open(p, "rb") as f:
                    out += f.read()
        return out


class _Closing:
    def __init__(self, c):
        self.c = c

    def __enter__(self):
        return self.c

    def __exit__(self, *exc):
        self.c.close()
        return False


# --------------------------------------------------------------------------
# Server

LISTEN_RE = re.compile(r"^keyward \S+ listening on http://127\.0\.0\.1:(\d+) \((sqlite|postgresql) store\)$")


class Server:
    def __init__(self, db, workdir, extra_args=(), env=None):
        """Serves db on a free loopback port; db=None passes neither --db nor
        --listen (settings from env, a configuration file or extra_args)."""
        self.stderr_path = os.path.join(workdir, "serve-%d.stderr" % id(self))
        self._stderr = open(self.stderr_path, "wb")
        base = ["--listen", "127.0.0.1:0", "--db", db] if db is not None else []
        self.proc = subprocess.Popen(
            [BIN, "serve"] + base + list(extra_args), env=env,
            stdout=subprocess.PIPE, stderr=self._stderr, stdin=subprocess.DEVNULL)
        self._stdout_buf = b""
        self.listen_line = self._read_line(10.0)
        m = LISTEN_RE.match(self.listen_line)
        if not m:
            self.kill()
            raise AssertionError("unexpected listening line %r; stderr: %s" %
                                 (self.listen_line, self.stderr()))
        self.port = int(m.group(1))
        self.stopped = False

    def _read_line(self, timeout):
        deadline = time.monotonic() + timeout
        buf = self._stdout_buf
        fd = self.proc.stdout.fileno()
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise AssertionError("server did not print its listening line in %ss" % timeout)
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = os.read(fd, 4096)
                if not chunk:
                    self.kill()
                    raise AssertionError("server exited before listening: %s" % self.stderr())
                buf += chunk
        line, self._stdout_buf = buf.split(b"\n", 1)
        return line.decode()

    def next_line(self, timeout=10.0):
        """The next line the server printed on stdout after its listening line."""
        return self._read_line(timeout)

    def stderr(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self._close()

    def _close(self):
        if self.proc.stdout:
            self.proc.stdout.close()
        self._stderr.close()

    def stop(self, sig=signal.SIGTERM, timeout=5.0):
        """Sends `sig` and returns the exit code (None if it did not exit)."""
        if self.stopped:
            return self.proc.returncode
        self.stopped = True
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        self._close()
        return rc

    # HTTP -----------------------------------------------------------------

    def request(self, method, path, key=None, body=None, raw=None, headers=None, timeout=10,
                source=None):
        """Returns (status, headers, json-or-None).  `body` is JSON-encoded;
        `raw` (bytes/str) is sent as is.  The raw text is in self.last_text.
        `source`: another loopback address to connect from (e.g. 127.0.0.2),
        for rules keyed on the client's address."""
        h = {}
        if key is not None:
            h["Authorization"] = "Bearer " + key
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        elif raw is not None:
            data = raw.encode() if isinstance(raw, str) else raw
            h["Content-Type"] = "application/json"
        if headers:
            h.update(headers)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout,
                                          source_address=(source, 0) if source else None)
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            for k, v in h.items():
                conn.putheader(k, v)
            if data is not None:
                conn.putheader("Content-Length", str(len(data)))
            conn.endheaders()
            if data is not None:
                try:
                    conn.send(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the server may answer (413) before reading the body
            resp = conn.getresponse()
            text = resp.read().decode("utf-8", errors="replace")
            status, hdrs = resp.status, resp.headers
        finally:
            conn.close()
        self.last_text = text
        parsed = None
        if text:
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
        kwschema.check(BIN, method, path, status, parsed)
        return status, hdrs, parsed

    def get(self, path, key=None, **kw):
        return self.request("GET", path, key=key, **kw)

    def post(self, path, body=None, key=None, **kw):
        return self.request("POST", path, key=key, body=body, **kw)

    def patch(self, path, body=None, key=None, **kw):
        return self.request("PATCH", path, key=key, body=body, **kw)

    def delete(self, path, key=None, **kw):
        return self.request("DELETE", path, key=key, **kw)


# --------------------------------------------------------------------------
# Test base

class KWTestCase(unittest.TestCase):
    """Each test gets a fresh database (user A, org A, project 1) and, unless
    `serve_in_setup` is False, a running server in self.srv.  setup_db() runs
    between init and serve, for direct database writes."""

    serve_in_setup = True

    def setUp(self):
        self.env = Env()
        self.addCleanup(self.env.cleanup)
        self.key = self.env.key
        self.token = self.env.token
        self.setup_db()
        self.srv = None
        if self.serve_in_setup:
            self.start_server()

    def setup_db(self):
        pass

    def start_server(self):
        self.srv = Server(self.env.db, self.env.dir)
        self.addCleanup(self._stop_server, self.srv)
        return self.srv

    def _stop_server(self, srv):
        if srv.stopped:
            return
        rc = srv.stop(signal.SIGTERM, 5.0)
        self.assertEqual(rc, 0, "server did not exit cleanly on SIGTERM within 5 s (rc=%r); "
                                "stderr:\n%s" % (rc, srv.stderr()))

    # assertions -----------------------------------------------------------

    def assertProblem(self, result, status, code, detail=None, attr="__any__",
                      type_=None):
        st, hdrs, body = result
        ctx = "body=%r" % (body,)
        self.assertEqual(st, status, ctx)
        self.assertIsInstance(body, dict, ctx)
        self.assertEqual(list(body.keys()), ["type", "code", "detail", "attr"], ctx)
        expected_type = type_ or {
            400: "validation_error", 401: "authentication_error", 403: "authentication_error",
            404: "invalid_request", 405: "invalid_request", 413: "invalid_request",
            429: "throttled_error", 500: "server_error"}.get(status)
        if expected_type:
            self.assertEqual(body["type"], expected_type, ctx)
        if code is not None:
            self.assertEqual(body["code"], code, ctx)
        if detail is not None:
            self.assertEqual(body["detail"], detail, ctx)
        if attr != "__any__":
            self.assertEqual(body["attr"], attr, ctx)
        self.assertTrue(hdrs.get("Content-Type", "").startswith("application/json"), ctx)
        return body

    def uuid_of(self, user_id):
        return self.env.sql("SELECT uuid FROM users WHERE id=?", (user_id,))[0][0]

    def assertStatus(self, result, status):
        st, _, body = result
        self.assertEqual(st, status, "body=%r" % (body,))
        return body

    # A change made outside this server process (another instance,
    # the CLI, a direct database write) is seen within 1 s.  Changes made
    # through this server's own API are checked without any wait.
    OUTSIDE_CHANGE_BOUND = 1.5

    def eventually(self, request, status):
        """Repeats `request()` (bounded by OUTSIDE_CHANGE_BOUND) until it
        answers `status`; returns the last (status, headers, body)."""
        last = []

        def attempt():
            last[:] = [request()]
            return last[0][0] == status
        self.poll(attempt, timeout=self.OUTSIDE_CHANGE_BOUND, interval=0.05)
        return last[0]

    def poll(self, fn, timeout=5.0, interval=0.02):
        """Calls fn until it returns a truthy value or timeout; returns the
        last value.  Bounded polling only."""
        deadline = time.monotonic() + timeout
        while True:
            v = fn()
            if v or time.monotonic() >= deadline:
                return v
            time.sleep(interval)


def main():
    if BACKEND == "postgresql" and not PG_ADMIN_URL:
        print("SKIPPED: KEYWARD_TEST_BACKEND=postgresql needs KEYWARD_TEST_PG_URL "
              "(start one with scripts/pg-test-cluster start)")
        sys.exit(SKIP_EXIT)
    unittest.main(verbosity=2)
