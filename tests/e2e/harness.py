"""harness: the shared machinery of parley's end-to-end tests.

Starts the real `parley serve` binary on 127.0.0.1 with port 0 and a
temporary database, reads the port from its log, waits for /v1/health,
talks HTTP to it, keeps every log line for assertions, and stops it by PID
(SIGTERM, then SIGKILL after a timeout). Test::Nginx is the model: each case
asserts on the responses *and* on the log, and runs twice with fresh users
so that state leaking from one run into the next shows up.

Nothing here may leave a server behind: every server is stopped by
Server.stop / the context manager, by an atexit hook, by a per-server
watchdog timer, and (should Python itself be killed) by PR_SET_PDEATHSIG.

Bot folders that a test edits are temporary COPIES (copy_default_bot); the
repository's own bot files are never written.

The store: SQLite by default (a new file per server); with
PARLEY_TEST_DB=postgresql, a new database per server on the PostgreSQL
server PARLEY_TEST_PG names (tests/run.sh starts one), created and read
through psql. new_db, db_query, db_execute and db_contents work on either;
Tap.sqlite_only marks the few cases about SQLite itself, skipped there.

Standard library only.
"""

import atexit
import ctypes
import glob
import http.client
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import unittest
import urllib.parse
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
PARLEY = os.environ.get("PARLEY_BIN", os.path.join(ROOT, "parley"))

# A log line: "2026-11-23T15:47:55.300Z INFO  message".
LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z) (DEBUG|INFO|WARN|ERROR) +(.*)$")

# Generous limits: they only bound how long a broken server can hang a run.
START_TIMEOUT = 10.0
REQUEST_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
SERVER_LIFETIME = float(os.environ.get("E2E_SERVER_LIFETIME", "90"))
SUITE_TIMEOUT = float(os.environ.get("E2E_SUITE_TIMEOUT", "120"))

# --- assertions ----------------------------------------------------------------


class _Check(unittest.TestCase):
    """unittest's assert methods (with their diffs) outside a TestCase."""

    maxDiff = None

    def runTest(self):  # pragma: no cover - never run
        pass


check = _Check()


def new_user(prefix="u"):
    """A user id no earlier run has used."""
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


def texts(replies):
    """All reply texts of a response joined by newlines."""
    return "\n".join(r.get("text") or "" for r in replies)


def choices(replies):
    """[(title, payload)] of every choice in the replies."""
    return [(c["title"], c["payload"]) for r in replies for c in r.get("choices", [])]


def cards(replies):
    return [c for r in replies for c in r.get("cards", [])]


def check_error(r, status, reason_re=None):
    """r is status with a JSON {"error": "..."} body (whose text matches reason_re)."""
    check.assertEqual(r.status, status, r)
    check.assertTrue(r.headers.get("content-type", "").startswith("application/json"), (r, r.headers))
    err = r.json
    check.assertIsInstance(err, dict, "the body of a %d must be JSON: %r" % (status, r))
    check.assertIsInstance(err.get("error"), str, r)
    check.assertNotEqual(err["error"], "", r)
    if reason_re:
        check.assertRegex(err["error"], reason_re)


# --- the database: SQLite (a file) or PostgreSQL (a database of the test server) -

# PARLEY_TEST_DB=postgresql: every Server gets a fresh database of its own on
# the PostgreSQL server that PARLEY_TEST_PG names (a libpq conninfo such as
# "host=/tmp/parley-pg.XXXX port=5432 user=parley dbname=postgres", from
# tests/pg/cluster.sh), and srv.db is its postgresql:// URL. Otherwise (the
# default, "sqlite") srv.db is a new SQLite file. The functions below take
# either: a URL is PostgreSQL's, anything else SQLite's file.
DB_MODE = os.environ.get("PARLEY_TEST_DB", "sqlite") or "sqlite"
if DB_MODE not in ("sqlite", "postgresql"):
    raise SystemExit("PARLEY_TEST_DB=%r: it is sqlite (the default) or postgresql" % DB_MODE)
POSTGRESQL = DB_MODE == "postgresql"
SQLITE_ONLY = "sqlite only"  # the reason of the skips of PostgreSQL mode (Tap.sqlite_only)

_pg_databases = []  # the databases this process created, dropped when it ends


def is_pg(db):
    """db is a PostgreSQL URL (not a SQLite file)."""
    return db.startswith(("postgres://", "postgresql://"))


def _pg_conninfo():
    """PARLEY_TEST_PG parsed: {keyword: value} (libpq's key=value form,
    values quoted with '...' when they hold spaces)."""
    text = os.environ.get("PARLEY_TEST_PG", "").strip()
    if not text:
        raise RuntimeError("PARLEY_TEST_DB=postgresql, but PARLEY_TEST_PG names no PostgreSQL server "
                           "(tests/pg/cluster.sh start DIR prints one)")
    out = {}
    for m in re.finditer(r"(\w+)\s*=\s*('(?:[^'\\]|\\.)*'|\S*)", text):
        v = m.group(2)
        if v.startswith("'"):
            v = re.sub(r"\\(.)", r"\1", v[1:-1])
        out[m.group(1)] = v
    return out


def _pg_url(dbname):
    """The postgresql:// URL of dbname on PARLEY_TEST_PG's server (host is
    the socket folder, given as a parameter)."""
    info = _pg_conninfo()
    params = [(k, info[k]) for k in ("host", "port", "user", "password", "sslmode") if info.get(k)]
    q = "&".join("%s=%s" % (k, urllib.parse.quote(v, safe="/")) for k, v in params)
    return "postgresql:///%s%s" % (urllib.parse.quote(dbname, safe=""), "?" + q if q else "")


_psql_found = []


def _psql_bin():
    """The newest Debian psql (/usr/lib/postgresql/NN/bin/psql), else PATH's."""
    if not _psql_found:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"),
                       key=lambda p: [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", p)])
        found = found[-1:] or [shutil.which("psql")]
        if not found[0]:
            raise RuntimeError("no psql here (/usr/lib/postgresql/*/bin/psql): tools/deps.sh test installs it")
        _psql_found.append(found[0])
    return _psql_found[0]


def _psql(target, script, timeout=30):
    """Runs script (SQL, statements one after another) with psql on target
    (a URL or a conninfo string); returns its output (unaligned, tuples
    only). Raises on any SQL error."""
    env = dict(os.environ, PGCLIENTENCODING="UTF8", PGCONNECT_TIMEOUT="10")
    for k in ("PGDATABASE", "PGHOST", "PGPORT", "PGUSER", "PGSERVICE", "PGOPTIONS"):
        env.pop(k, None)
    # (the literals of pg_sql take backslashes as they are)
    script = "SET standard_conforming_strings = on;\n" + script
    p = subprocess.run([_psql_bin(), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", target, "-f", "-"],
                       input=script.encode("utf-8"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=env, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError("psql on %s failed (%d): %s\nSQL: %s" % (
            target, p.returncode, p.stderr.decode("utf-8", "replace").strip(), script[:2000]))
    return p.stdout.decode("utf-8")


def _pg_admin_target():
    return " ".join("%s='%s'" % (k, v.replace("\\", "\\\\").replace("'", "\\'"))
                    for k, v in _pg_conninfo().items())


def _pg_create(name):
    """A new, empty database on PARLEY_TEST_PG's server; returns its URL."""
    dbname = "e2e_%s_%d_%s" % (re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:20] or "db",
                               os.getpid(), uuid.uuid4().hex[:8])
    _psql(_pg_admin_target(), 'CREATE DATABASE "%s";\n' % dbname)
    _pg_databases.append(dbname)
    return _pg_url(dbname)


def _pg_drop_all():
    """Drops the databases this process created (their servers have stopped;
    E2E_KEEP_DB=1 keeps them, to look at after a failure)."""
    if not _pg_databases or os.environ.get("E2E_KEEP_DB"):
        return
    names, _pg_databases[:] = list(_pg_databases), []
    try:
        _psql(_pg_admin_target(), "".join('DROP DATABASE IF EXISTS "%s" WITH (FORCE);\n' % n for n in names))
    except Exception as e:  # the run goes on: the cluster is thrown away with it
        sys.stdout.write("# could not drop the test databases: %s\n" % str(e).splitlines()[0])


def new_db(name="parley"):
    """A fresh database for a server (or several in turn, across restarts):
    a new SQLite file in a temporary folder, or in PostgreSQL mode the URL
    of a new database."""
    if POSTGRESQL:
        return _pg_create(name)
    return os.path.join(temp_dir("parley-db-"), "%s.db" % name)


def _sql_literal(v):
    """v as an SQL literal of PostgreSQL (a quoted string takes the type its
    place needs, as SQLite's parameters do)."""
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, (bytes, bytearray)):
        return "'\\x%s'::bytea" % bytes(v).hex()
    if isinstance(v, (int, float)):
        v = repr(v)
    if not isinstance(v, str):
        raise TypeError("no SQL literal for %r" % (v,))
    if "\0" in v:
        raise ValueError("PostgreSQL text cannot hold a NUL character: %r" % v)
    return "'%s'" % v.replace("'", "''")


# Outside quoted strings and identifiers: a ? parameter, or the bare column
# name user (a reserved word of PostgreSQL, quoted by parley's schema).
_SQL_TOKEN = re.compile(r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|\?|(?<![\w$])user(?![\w$])""", re.I)


def pg_sql(sql, args=()):
    """SQLite-style sql (? parameters, a bare user column) in PostgreSQL's
    dialect, with args substituted as quoted literals."""
    args = list(args)
    used = [0]

    def sub(m):
        t = m.group(0)
        if t == "?":
            if used[0] >= len(args):
                raise ValueError("more ? than arguments in %r" % sql)
            used[0] += 1
            return _sql_literal(args[used[0] - 1])
        if t.lower() == "user":
            return '"user"'
        return t
    out = _SQL_TOKEN.sub(sub, sql)
    if used[0] != len(args):
        raise ValueError("%d arguments for %d ? in %r" % (len(args), used[0], sql))
    return out


class _Pairs(list):
    """A JSON object read with its keys in order (duplicates kept)."""


def _from_json(v):
    if isinstance(v, _Pairs):
        return {k: _from_json(x) for k, x in v}
    if isinstance(v, list):
        return [_from_json(x) for x in v]
    return v


def _pg_rows(db, sql, args):
    body = pg_sql(sql, args).strip().rstrip(";")
    script = ("SET default_transaction_read_only = on;\n"
              "SELECT coalesce(json_agg(row_to_json(q)), '[]') FROM (\n%s\n) q;\n" % body)
    rows = json.loads(_psql(db, script), object_pairs_hook=_Pairs)
    return [tuple(_from_json(v) for _, v in row) for row in rows]


def db_query(db, sql, *args):
    """Rows of a read-only query on parley's database (the server keeps
    running): a list of tuples in column order, as sqlite3 gives them.
    sql is SQLite's: ? parameters, the column user unquoted."""
    if is_pg(db):
        return _pg_rows(db, sql, args)
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def db_execute(db, sql, *args):
    """Runs one writing statement on parley's database and commits it."""
    db_executemany(db, sql, [args])


def db_executemany(db, sql, rows):
    """Runs sql once for each tuple of arguments in rows, all in one
    transaction."""
    if is_pg(db):
        _psql(db, "BEGIN;\n%sCOMMIT;\n" % "".join(pg_sql(sql, r).rstrip().rstrip(";") + ";\n" for r in rows))
        return
    con = sqlite3.connect(db, timeout=10)
    try:
        with con:
            con.executemany(sql, rows)
    finally:
        con.close()


def db_contents(db):
    """Everything the database holds as bytes, to look for what must never be
    stored: SQLite's file and its -wal; PostgreSQL's tables as text (every
    row of every table in the public schema)."""
    if is_pg(db):
        tables = _psql(db, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1;\n").split()
        if not tables:
            return b""
        return _psql(db, "".join('SELECT row_to_json(t) FROM "%s" t;\n' % t for t in tables)).encode("utf-8")
    out = b""
    for suffix in ("", "-wal"):
        if os.path.exists(db + suffix):
            with open(db + suffix, "rb") as f:
                out += f.read()
    return out


class hold_sqlite_lock:
    """with hold_sqlite_lock(db): another process's connection holds SQLite's
    write lock on the file (BEGIN EXCLUSIVE) for the block."""

    def __init__(self, db):
        self.db = db

    def __enter__(self):
        self.con = sqlite3.connect(self.db, timeout=5, isolation_level=None)
        self.con.execute("BEGIN EXCLUSIVE")
        return self

    def __exit__(self, *exc):
        try:
            self.con.execute("COMMIT")
        finally:
            self.con.close()
        return False


def wait_until(predicate, timeout=5.0, interval=0.01, what="condition"):
    """Polls predicate() until it returns something truthy; returns that."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


# --- temporary files and bot folders -------------------------------------------

_temp_dirs = []


def temp_dir(prefix="parley-e2e-"):
    """A new temporary folder, removed when the test file ends."""
    d = tempfile.mkdtemp(prefix=prefix)
    _temp_dirs.append(d)
    return d


def write_file(path, text):
    """Writes text (creating folders) the way an editor's plain save does:
    open, truncate, write, close (inotify: IN_CLOSE_WRITE)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def save_atomically(path, text):
    """Writes a hidden temp file next to path and renames it over path, the
    way many editors save (inotify: IN_MOVED_TO)."""
    tmp = os.path.join(os.path.dirname(path), ".%s.%s.tmp" % (os.path.basename(path), uuid.uuid4().hex[:6]))
    write_file(tmp, text)
    os.rename(tmp, path)


def read_file(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def copy_default_bot(name_of_folder="barista"):
    """A temporary copy of the default bot (the repository root): bot.json,
    catalog.json, flows/ and scripts/. Returns the folder."""
    dst = os.path.join(temp_dir("parley-bot-"), name_of_folder)
    os.makedirs(dst)
    for f in ("bot.json", "catalog.json"):
        shutil.copy2(os.path.join(ROOT, f), os.path.join(dst, f))
    for d in ("flows", "scripts"):
        shutil.copytree(os.path.join(ROOT, d), os.path.join(dst, d))
    return dst


def make_bot(name, files, manifest=None, folder=None):
    """A fixture bot in a temporary folder. files maps relative paths
    ("flows/main.lua") to their text; manifest entries extend
    {"name": name, "locales": ["en"]}. Returns the folder."""
    dst = os.path.join(temp_dir("parley-fixture-"), folder or name)
    m = {"name": name, "locales": ["en"]}
    m.update(manifest or {})
    write_file(os.path.join(dst, "bot.json"), json.dumps(m, indent=2))
    for rel, text in files.items():
        write_file(os.path.join(dst, rel), text)
    return dst


def line_of(text, marker):
    """The 1-based number of the line of text that contains marker."""
    for n, line in enumerate(text.splitlines(), 1):
        if marker in line:
            return n
    raise ValueError("marker %r not in text" % marker)


# --- the fixture bot ------------------------------------------------------------

# flows/main.lua of the "echo" fixture bot. Every message is echoed as
# "<count>: <text>", where count (in the session's profile) counts the
# turns that succeeded; a message whose first word names a command runs it
# first. "-- MARK:x" comments let tests compute the line an error must name.
ECHO_FLOW = """\
-- flows/main.lua of the fixture bot '%(name)s' (written by tests/e2e/harness.py)
local commands = {}

commands["loop"] = function(c)
  while true do end -- MARK:loop
end

commands["pcall-loop"] = function(c)
  local ok, err = pcall(function()
    while true do end -- MARK:pcall-inner
  end)
  c:say("info", { text = "pcall swallowed the abort: " .. tostring(err) }) -- MARK:pcall-after
end

commands["pcall-forever"] = function(c)
  while true do -- MARK:pcall-forever
    pcall(function() while true do end end)
  end
end

commands["coroutine-loop"] = function(c)
  local co = coroutine.create(function() while true do end end)
  local ok, err = coroutine.resume(co)
  c:say("info", { text = "coroutine.resume swallowed the abort: " .. tostring(err) }) -- MARK:coroutine-after
end

commands["wrap-loop"] = function(c)
  local f = coroutine.wrap(function() while true do end end)
  local ok, err = pcall(f)
  c:say("info", { text = "coroutine.wrap + pcall swallowed the abort: " .. tostring(err) })
end

commands["xpcall-loop"] = function(c)
  local ok, err = xpcall(function() while true do end end, function(e) return e end)
  c:say("info", { text = "xpcall swallowed the abort: " .. tostring(err) })
end

commands["memory"] = function(c)
  local s = "x"
  while true do s = s .. s end -- MARK:memory
end

commands["memory-fill"] = function(c)
  local t, piece = {}, string.rep("y", 4000)
  while true do t[#t + 1] = piece .. #t end -- MARK:memory-fill
end

commands["error"] = function(c)
  error("deliberate failure") -- MARK:error
end

commands["bad-profile"] = function(c)
  c.profile.callback = print -- MARK:bad-profile
end

commands["log"] = function(c, arg)
  require("log").info(arg)
end

commands["spin"] = function(c, arg)
  local n = math.tointeger(tonumber(arg)) or 0
  local x = 0
  for i = 1, n do x = x + i end
end

commands["probe-sandbox"] = function(c)
  local found = {}
  local function probe(name, present) if present then found[#found + 1] = name end end
  probe("io", io ~= nil)
  probe("debug", debug ~= nil)
  probe("dofile", dofile ~= nil)
  probe("loadfile", loadfile ~= nil)
  probe("os.execute", os.execute ~= nil)
  probe("os.getenv", os.getenv ~= nil)
  probe("os.exit", os.exit ~= nil)
  probe("os.remove", os.remove ~= nil)
  probe("string.dump", string.dump ~= nil)
  probe("package.loadlib", package.loadlib ~= nil)
  probe("require io", (pcall(require, "io")))
  probe("require os", (pcall(require, "os")) and require("os").execute ~= nil)
  probe("package.loaded.os", package.loaded.os ~= nil and package.loaded.os.execute ~= nil)
  probe("binary chunk", (load(string.char(27) .. "LuaT\\0") ~= nil))
  probe("collectgarbage stop", (pcall(collectgarbage, "stop")))
  local allowed = {}
  local function allow(name, present) if present then allowed[#allowed + 1] = name end end
  allow("string", string and string.format ~= nil)
  allow("table", table and table.concat ~= nil)
  allow("math", math and math.floor ~= nil)
  allow("utf8", utf8 and utf8.char ~= nil)
  allow("coroutine", coroutine and coroutine.wrap ~= nil)
  allow("os.time", os.time ~= nil)
  allow("os.clock", os.clock ~= nil)
  allow("os.date", os.date ~= nil)
  allow("load text", load("return 1") ~= nil)
  c:say("info", { text = "forbidden present: [" .. table.concat(found, ",") .. "] allowed: [" .. table.concat(allowed, ",") .. "]" })
end

commands["set-global"] = function(c, arg)
  LEAKED_GLOBAL = "%(name)s:" .. arg
  string.leaked = "%(name)s:" .. arg
  c:say("info", { text = "set " .. LEAKED_GLOBAL })
end

commands["get-global"] = function(c)
  c:say("info", { text = "global=" .. tostring(rawget(_G, "LEAKED_GLOBAL")) .. " string.leaked=" .. tostring(string.leaked) })
end

return {
  start = function(c, msg)
    local words = msg.text or msg.payload or ""
    local cmd, arg = words:match("^(%%S+)%%s*(.*)$")
    c.profile.count = (c.profile.count or 0) + 1
    local run = commands[cmd or ""]
    if run then run(c, arg) end
    c:say("echo", { n = c.profile.count, text = words })
    return "wait"
  end,

  wait = { answer = function(c) return "start" end },
}
"""

ECHO_TONE = """\
-- scripts/tone.lua of the fixture bot '%(name)s'
return {
  persona = { name = "%(persona)s" },
  templates = {
    en = {
      echo = "{n}: {text}",
      info = "{text}",
      fallback = "%(fallback)s",
    },
  },
}
"""


def echo_fallback(name):
    """The tone's fallback text of the echo fixture bot called name."""
    return "Sorry from %s's fallback template: please say that again." % name


def echo_bot(name, manifest=None, folder=None):
    """The echo fixture bot; returns (folder, source of flows/main.lua)."""
    flow = ECHO_FLOW % {"name": name}
    tone = ECHO_TONE % {"name": name, "persona": name.capitalize(), "fallback": echo_fallback(name)}
    m = {"fallback": "static fallback of %s (bot.json)" % name}
    m.update(manifest or {})
    d = make_bot(name, {"flows/main.lua": flow, "scripts/tone.lua": tone}, manifest=m, folder=folder)
    return d, flow


# --- HTTP -----------------------------------------------------------------------


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body

    @property
    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except ValueError:
            return None

    def __repr__(self):
        return "<HTTP %d %s>" % (self.status, self.body[:300])


# --- the server ------------------------------------------------------------------

_live_servers = set()
_live_lock = threading.Lock()


def _die_with_parent():
    """In the child before exec: get SIGKILL when the test process dies."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def ensure_binary():
    if not os.access(PARLEY, os.X_OK):
        subprocess.run(["make", "parley"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


class StartError(Exception):
    pass


class Server:
    """One `parley serve` process.

    bots: bot folders (default: the repository root, the default bot).
    db: the database, a SQLite file or a postgresql:// URL (default: new_db(),
    a new one of the mode's kind).
    env: extra environment (e.g. {"PARLEY_ADMIN_TOKEN": "..."}); variables
    given as None are removed from the environment.
    preexec: a function run in the child before parley starts (e.g. to lower
    its resource limits with resource.setrlimit).
    """

    def __init__(self, bots=None, db=None, env=None, args=(), lifetime=SERVER_LIFETIME, name="parley",
                 bots_first=False, preexec=None):
        ensure_binary()
        self.bots = list(bots) if bots else [ROOT]
        self.db = db or new_db()
        # parley runs in the SQLite file's folder, or a folder of its own
        self.cwd = temp_dir("parley-cwd-") if is_pg(self.db) else os.path.dirname(self.db)
        self.env = dict(os.environ)
        self.env.pop("PARLEY_ADMIN_TOKEN", None)
        for k, v in (env or {}).items():
            if v is None:
                self.env.pop(k, None)
            else:
                self.env[k] = v
        self.args = list(args)
        self.bots_first = bots_first
        self.preexec = preexec
        self.lifetime = lifetime
        self.name = name
        self.proc = None
        self.port = None
        self.lines = []
        self._lines_lock = threading.Lock()
        self._reader = None
        self._watchdog = None
        self.killed_by_watchdog = False

    # lifecycle

    def start(self):
        # Options before the folders: test_bots checks the other order (the
        # usage line's) on its own, so that a parsing bug fails one case
        # there instead of every case everywhere.
        cmd = [PARLEY, "serve", "--listen", "127.0.0.1:0", "--db", self.db, *self.args, *self.bots]
        if self.bots_first:
            cmd = [PARLEY, "serve", *self.bots, "--listen", "127.0.0.1:0", "--db", self.db, *self.args]
        preexec = self.preexec

        def in_child():
            _die_with_parent()
            if preexec:
                preexec()

        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env=self.env, preexec_fn=in_child, cwd=self.cwd)
        with _live_lock:
            _live_servers.add(self)
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()
        self._watchdog = threading.Timer(self.lifetime, self._on_watchdog)
        self._watchdog.daemon = True
        self._watchdog.start()
        try:
            m = self.wait_log(r"listening on 127\.0\.0\.1:(\d+)", timeout=START_TIMEOUT)
        except AssertionError:
            self.kill()
            raise StartError("parley did not report its port; log:\n" + self.log_text())
        self.port = int(m.group(1))
        wait_until(self._health_answers, timeout=START_TIMEOUT, what="/v1/health to answer")
        return self

    def _health_answers(self):
        if self.proc.poll() is not None:
            raise StartError("parley exited with %s; log:\n%s" % (self.proc.returncode, self.log_text()))
        try:
            return self.request("GET", "/v1/health", timeout=1).status == 200
        except OSError:
            return False

    def _read_log(self):
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._lines_lock:
                self.lines.append(line)
        self.proc.stdout.close()

    def _on_watchdog(self):
        if self.alive():
            self.killed_by_watchdog = True
            sys.stdout.write("# watchdog: killing %s (pid %d) after %.0fs\n" % (self.name, self.proc.pid, self.lifetime))
            sys.stdout.flush()
            self.kill()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def _finished(self):
        if self._watchdog:
            self._watchdog.cancel()
        if self._reader:
            self._reader.join(timeout=2)
        with _live_lock:
            was_live = self in _live_servers
            _live_servers.discard(self)
        if was_live and os.environ.get("E2E_LOG_DIR"):
            self._keep_log(os.environ["E2E_LOG_DIR"])

    def _keep_log(self, folder):
        """E2E_LOG_DIR=folder: every server's whole log is kept there when it
        stops (passing cases too), to read or grep after a run."""
        try:
            os.makedirs(folder, exist_ok=True)
            suite = os.path.splitext(os.path.basename(sys.argv[0]))[0] or "e2e"
            name = re.sub(r"[^\w.-]+", "_", self.name).strip("_")
            with open(os.path.join(folder, "%s.%d.%s.log" % (suite, self.proc.pid, name)), "w", encoding="utf-8") as f:
                f.write("# %s --db %s\n" % (self.name, self.db))
                f.write(self.log_text() + "\n")
        except OSError as e:
            sys.stdout.write("# could not keep the log of %s: %s\n" % (self.name, e))

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM, then SIGKILL after timeout; returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                sys.stdout.write("# %s did not stop on SIGTERM within %.0fs: SIGKILL\n" % (self.name, timeout))
                self.proc.kill()
                self.proc.wait()
        self._finished()
        return self.proc.returncode

    def kill(self):
        """SIGKILL (kill -9) and wait; returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._finished()
        return self.proc.returncode

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    # log

    def mark(self):
        """A position in the log; wait_log/log_since look after it."""
        with self._lines_lock:
            return len(self.lines)

    def log_since(self, mark=0):
        with self._lines_lock:
            return list(self.lines[mark:])

    def log_text(self, mark=0):
        return "\n".join(self.log_since(mark))

    def find_log(self, pattern, mark=0):
        """Every match of pattern (a regex) in the log lines after mark."""
        rx = re.compile(pattern)
        return [m for m in (rx.search(line) for line in self.log_since(mark)) if m]

    def wait_log(self, pattern, mark=0, timeout=5.0):
        """Waits for a log line after mark matching pattern; returns the match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = mark
        while True:
            lines = self.log_since(seen)
            for line in lines:
                m = rx.search(line)
                if m:
                    return m
            seen += len(lines)
            if time.monotonic() > deadline:
                raise AssertionError("no log line matching %r within %.1fs" % (pattern, timeout))
            if self.proc.poll() is not None and not self._reader.is_alive():
                raise AssertionError("parley exited (%s) before logging %r" % (self.proc.returncode, pattern))
            time.sleep(0.005)

    # HTTP

    def request(self, method, path, body=None, headers=None, timeout=REQUEST_TIMEOUT):
        """One request on a new connection; returns a Response. body may be
        bytes, str, or anything JSON-serialisable."""
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode("utf-8")
        h = {"Content-Type": "application/json"} if body is not None else {}
        h.update(headers or {})
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            return Response(r.status, r.getheaders(), r.read())
        finally:
            conn.close()

    def post(self, bot, user, text=None, payload=None, locale=None, **extra):
        """POST /v1/bots/{bot}/messages; returns the Response."""
        body = {"user": user}
        if text is not None:
            body["text"] = text
        if payload is not None:
            body["payload"] = payload
        if locale is not None:
            body["locale"] = locale
        body.update(extra)
        return self.request("POST", "/v1/bots/%s/messages" % bot, body)

    def say(self, bot, user, text=None, payload=None, locale=None):
        """POSTs a message that must succeed; returns its replies."""
        r = self.post(bot, user, text=text, payload=payload, locale=locale)
        check.assertEqual(r.status, 200, "POST %r/%r: %r" % (text, payload, r))
        body = r.json
        check.assertIsInstance(body, dict, r)
        check.assertEqual(body.get("user"), user, r)
        check.assertIsInstance(body.get("replies"), list, r)
        return body["replies"]

    def health(self):
        r = self.request("GET", "/v1/health")
        check.assertEqual(r.status, 200, r)
        return r.json

    def bot_health(self, bot):
        for b in self.health()["bots"]:
            if b["name"] == bot:
                return b
        raise AssertionError("bot %r not in /v1/health" % bot)

    def pending_sends(self, channel, user):
        """Outbox rows still waiting to go to user on channel."""
        return db_query(self.db, "SELECT count(*) FROM outbox WHERE channel = ? AND user = ? AND state = 'pending'",
                        channel, user)[0][0]

    def session(self, bot, user, token, channel="rest"):
        """The admin view of a session (None when it does not exist)."""
        r = self.request("GET", "/v1/bots/%s/sessions/%s/%s" % (bot, channel, user),
                         headers={"Authorization": "Bearer " + token})
        if r.status == 404:
            return None
        check.assertEqual(r.status, 200, r)
        return r.json


def stop_all_servers():
    with _live_lock:
        servers = list(_live_servers)
    for s in servers:
        try:
            s.stop(timeout=3)
        except Exception:
            s.kill()


def _cleanup():
    stop_all_servers()
    _pg_drop_all()
    for d in _temp_dirs:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup)


def _on_signal(signum, frame):
    # Turn SIGTERM/SIGHUP into a normal exit so that atexit stops the servers.
    raise SystemExit(128 + signum)


signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGHUP, _on_signal)


# --- TAP ---------------------------------------------------------------------------


class Tap:
    """Runs cases and prints TAP. A case is fn(run) with run = 1, 2, ...;
    it fails by raising. On failure the traceback and the tail of the logs
    of the servers given to watch() are printed as TAP comments."""

    def __init__(self, title):
        self.title = title
        self.n = 0
        self.failed = 0
        self.skipped = 0
        self.watched = []
        self.t0 = time.monotonic()
        print("# %s" % title)
        sys.stdout.flush()
        self._timer = threading.Timer(SUITE_TIMEOUT, self._on_timeout)
        self._timer.daemon = True
        self._timer.start()

    def _on_timeout(self):
        sys.stdout.write("not ok %d - watchdog: %s took longer than %.0fs\n" % (self.n + 1, self.title, SUITE_TIMEOUT))
        sys.stdout.write("1..%d\n" % (self.n + 1))
        sys.stdout.flush()
        stop_all_servers()
        os._exit(1)

    def watch(self, server):
        """Shows server's log when a case fails; returns server."""
        self.watched.append(server)
        return server

    def unwatch(self, server):
        if server in self.watched:
            self.watched.remove(server)

    def case(self, name, fn, runs=2):
        for run in range(1, runs + 1):
            label = name if runs == 1 else "%s (run %d)" % (name, run)
            marks = [(s, s.mark()) for s in self.watched]
            self.n += 1
            t = time.monotonic()
            try:
                fn(run)
            except Exception as e:  # includes AssertionError
                self.failed += 1
                print("not ok %d - %s" % (self.n, label))
                for line in traceback.format_exception(type(e), e, e.__traceback__):
                    for sub in line.rstrip("\n").split("\n"):
                        print("#   " + sub)
                for s, m in marks:
                    tail = s.log_since(m)[-25:]
                    if tail:
                        print("#   --- log of %s since the case began ---" % s.name)
                        for line in tail:
                            print("#   | " + line)
            else:
                print("ok %d - %s" % (self.n, label))
                took = time.monotonic() - t
                if took > 1.0:
                    print("# (%s took %.1f s)" % (label, took))
            sys.stdout.flush()

    def skip(self, name, why, runs=1):
        """Reports the case as skipped (TAP: ok N - name # SKIP why), once
        per run it would have had."""
        for run in range(1, runs + 1):
            self.n += 1
            self.skipped += 1
            label = name if runs == 1 else "%s (run %d)" % (name, run)
            print("ok %d - %s # SKIP %s" % (self.n, label, why))
        sys.stdout.flush()

    def sqlite_only(self, name, fn, runs=2):
        """A case about SQLite itself (its files, its locks): run with SQLite,
        a skip in PostgreSQL mode. The caller says in a comment why the case
        has no PostgreSQL counterpart."""
        if POSTGRESQL:
            self.skip(name, SQLITE_ONLY, runs)
        else:
            self.case(name, fn, runs)

    def done(self):
        """Prints the plan and exits: status 1 when any case failed."""
        self._timer.cancel()
        print("1..%d" % self.n)
        print("# %s: %d passed, %d failed%s, %.1f s" % (
            self.title, self.n - self.failed - self.skipped, self.failed,
            ", %d skipped" % self.skipped if self.skipped else "", time.monotonic() - self.t0))
        sys.stdout.flush()
        stop_all_servers()
        sys.exit(1 if self.failed else 0)


def run_suite(title, body):
    """Runs body(tap) and ends the file: servers stop even if body raises."""
    if POSTGRESQL:
        title += " (on PostgreSQL)"
    tap = Tap(title)
    try:
        if POSTGRESQL:
            _pg_conninfo()  # fails the suite at once, saying why, without PARLEY_TEST_PG
        body(tap)
    except Exception as e:
        tap.n += 1
        tap.failed += 1
        print("not ok %d - %s: the suite itself failed" % (tap.n, title))
        for line in traceback.format_exception(type(e), e, e.__traceback__):
            for sub in line.rstrip("\n").split("\n"):
                print("#   " + sub)
    finally:
        stop_all_servers()
    tap.done()
