"""channel_helpers: what the messaging channels' suites
(tests/e2e/test_channel_*.py) share beyond the harness.

- Recorder: the record a fake platform keeps — every request it took
  ({"user", ..., "status"} in arrival order, under one lock), the problems
  it found with them (what breaks the platform's documentation), and the
  per-user switches that make it fail: fail_first (a number of 500s, or
  the answers to give in turn), busy_first (429s with Retry-After: 1) and
  down (every request fails). attempts(user) and delivered(user) read it.
- FakePlatform: a Recorder that is also an HTTP server on a free loopback
  port (a ThreadingHTTPServer in a thread). A platform's fake subclasses it
  and answers on_post (and, if it must, on_get) with its own shape checks
  and answers; answer() writes a JSON answer.
- wait_sent: waits until a message after index N of what a user was
  delivered satisfies a predicate (an event, never a sleep).
- stored_for, turns: what parley keeps about a user, read from its store.
- post_signed: POSTs a webhook with a signature header (good, given, none).
- Later: a second server a case starts the first time it runs.
- PRICES, euros, units, numbered, FIXTURE_TONE: small things several
  suites need alike.

Standard library only."""

import http.server
import json
import os
import re
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ROOT, Server, db_query, wait_until  # noqa: E402
from commerce_helpers import euros  # noqa: E402,F401  (shared here too)

with open(os.path.join(ROOT, "catalog.json"), encoding="utf-8") as _f:
    _catalog = json.load(_f)
PRICES = {p["sku"]: p["price"] for p in (_catalog["products"] if isinstance(_catalog, dict) else _catalog)}

# The tone of the suites' small fixture bots.
FIXTURE_TONE = """\
return { persona = { name = "Fix" }, templates = { en = { fallback = "fixture fallback" } } }
"""


def units(s):
    """Length in UTF-16 code units (never fewer than the characters a platform counts)."""
    return len(s.encode("utf-16-le")) // 2


def numbered(text):
    """{n: title} of the "n) title" lines of a text."""
    return {int(m.group(1)): m.group(2) for m in re.finditer(r"^(\d+)\) (.*)$", text, re.M)}


# --- the fake platform -----------------------------------------------------------------


class Recorder:
    """What a fake platform took and what it found wrong, under self.lock.

    Each request is a dict in self.requests whose user_key names whom it
    was for; took(r) says whether the platform accepted it, and delivered
    gives r[message_key] (the whole record if message_key is None) of those.
    The switches, per user: fail_first[user] is how many requests to answer
    500 first, or a list of the answers to give in turn (what an answer
    means is the platform's); busy_first[user] how many to answer 429 with
    Retry-After: 1 first; down holds users whose every request fails
    (down_answer)."""

    user_key = "user"
    message_key = "message"
    down_answer = 500

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []
        self.problems = []
        self.fail_first = {}
        self.busy_first = {}
        self.down = set()
        self.count = 0

    def problem(self, what):
        with self.lock:
            self.problems.append(what)

    def take_problems(self):
        """The problems found so far, each reported once."""
        with self.lock:
            problems, self.problems[:] = list(self.problems), []
        return problems

    def failure(self, user):
        """Called under self.lock: the answer the switches give user's
        request (down_answer, 500, a planned answer, 429), or None."""
        if user in self.down:
            return self.down_answer
        first = self.fail_first.get(user)
        if isinstance(first, list):
            if first:
                return first.pop(0)
        elif first:
            self.fail_first[user] = first - 1
            return 500
        if self.busy_first.get(user, 0) > 0:
            self.busy_first[user] -= 1
            return 429
        return None

    def fail_next(self, user, *answers):
        """Answers user's next requests with answers, in turn."""
        with self.lock:
            self.fail_first[user] = list(answers)

    def took(self, r):
        return r["status"] == 200

    def attempts(self, user):
        with self.lock:
            return [dict(r) for r in self.requests if r[self.user_key] == user]

    def delivered(self, user):
        """What the platform took for user, in order."""
        return [r if self.message_key is None else r[self.message_key]
                for r in self.attempts(user) if self.took(r)]

    def wait_delivered(self, user, n, timeout=5.0):
        """Waits until at least n were delivered to user; returns them all."""
        return wait_until(lambda: (lambda d: d if len(d) >= n else None)(self.delivered(user)), timeout=timeout,
                          what="%d delivered to %s (got %d)" % (n, user, len(self.delivered(user))))


class FakePlatform(Recorder):
    """A platform's API on 127.0.0.1: a Recorder that answers HTTP. A
    subclass answers on_post(handler, raw body), checking the request
    against the platform's documentation; an unexpected GET is a problem
    (405) unless it overrides on_get. base is the URL to give parley
    (path appended)."""

    protocol_version = "HTTP/1.1"
    content_type = "application/json"

    def __init__(self, path=""):
        super().__init__()
        self.path = path
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = fake.protocol_version

            def log_message(self, *args):
                pass

            def do_POST(self):
                fake.on_post(self, self.rfile.read(int(self.headers.get("Content-Length") or 0)))

            def do_GET(self):
                fake.on_get(self)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def base(self):
        return "http://127.0.0.1:%d%s" % (self.port, self.path)

    def answer(self, h, status, obj, headers=()):
        """Answers handler h with obj as JSON and the (name, value) headers."""
        data = json.dumps(obj).encode()
        h.send_response(status)
        h.send_header("Content-Type", self.content_type)
        h.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    def on_post(self, h, raw):
        raise NotImplementedError

    def on_get(self, h):
        self.problem("unexpected GET %s" % h.path)
        self.answer(h, 405, {})

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


# --- waiting for what was sent -------------------------------------------------------------


def wait_sent(fake, user, since, pred, what, timeout=8):
    """Waits until a message after index `since` of user's delivered ones
    satisfies pred; returns the new messages up to and including it."""
    def found():
        new = fake.delivered(user)[since:]
        for i, m in enumerate(new):
            if pred(m):
                return new[:i + 1]
        return None
    return wait_until(found, timeout=timeout, what=what)


# --- looking at the store ------------------------------------------------------------------


def stored_for(server, user):
    """Rows anything keeps about user: inbox, sessions, transcript, outbox."""
    return {t: db_query(server.db, "SELECT count(*) FROM %s WHERE user = ?" % t, user)[0][0]
            for t in ("inbox", "sessions", "transcript", "outbox")}


def turns(server, user, channel):
    """How many turns user had over channel (the transcript's "in" lines)."""
    return db_query(server.db, "SELECT count(*) FROM transcript WHERE channel = ? AND user = ? "
                               "AND direction = 'in'", channel, user)[0][0]


# --- webhooks and servers -----------------------------------------------------------------


def post_signed(server, path, body, header, sign, sig=True, headers=None):
    """POSTs a webhook body to path; sig True sends sign(body) as header, a
    string is sent as the header, None sends none."""
    headers = dict(headers or {})
    if sig is True:
        headers[header] = sign(body)
    elif sig is not None:
        headers[header] = sig
    return server.request("POST", path, body=body, headers=headers)


class Later:
    """A second server that a case starts the first time it runs, and its
    later runs reuse (watched by tap, stopped with the suite); attrs are
    set on it once started."""

    def __init__(self, tap, env, name, **attrs):
        self.tap, self.env, self.name, self.attrs = tap, env, name, attrs
        self.server = None

    def __call__(self):
        if self.server is None:
            self.server = self.tap.watch(Server(env=self.env, name=self.name).start())
            for k, v in self.attrs.items():
                setattr(self.server, k, v)
        return self.server
