"""sse_client: a Server-Sent Events reader for the end-to-end tests.

Opens GET on a new connection to a parley server, and (when the answer is
200) reads the stream on a background thread, parsing it the way a browser's
EventSource does (https://html.spec.whatwg.org/multipage/server-sent-events.html):
"field: value" lines, data lines joined by newlines, an event dispatched at
a blank line, ":" comment lines. Every event and comment is kept, in order,
so that a test can wait for one and also assert on what came before it.

Shopper is a web chat shopper on top of it: POSTs to the bot's
/webchat/messages and reads its /webchat/events the way the widget does.

Standard library only.
"""

import json
import socket
import threading
import time
import uuid

DEFAULT_TIMEOUT = 5.0


class Event:
    """One dispatched event: id (the last id field seen, or None), event
    (the type; "message" when not given), data (str) and json (data parsed,
    or None)."""

    def __init__(self, id, event, data):
        self.id = id
        self.event = event
        self.data = data
        try:
            self.json = json.loads(data)
        except ValueError:
            self.json = None

    def __repr__(self):
        return "<SSE id=%s event=%s data=%s>" % (self.id, self.event, self.data[:200])


class Stream:
    """GET path on 127.0.0.1:port as an event stream, over a plain socket
    (HTTP/1.1, chunked or read-to-close bodies).

    status / headers (lower-case names) / body (for a non-200 answer, read in
    full) are set when the constructor returns. For a 200 the events arrive
    on a thread: events, comments, retry; ended becomes True when the
    server ends the stream."""

    def __init__(self, port, path, headers=None, timeout=DEFAULT_TIMEOUT, ssl_context=None):
        self.path = path
        self.events = []
        self.comments = []
        self.retry = None
        self.ended = False
        self.error = None
        self._closing = False
        self._cond = threading.Condition()
        self._thread = None
        h = {"Host": "127.0.0.1:%d" % port, "Accept": "text/event-stream"}
        h.update(headers or {})
        head = "GET %s HTTP/1.1\r\n%s\r\n" % (path, "".join("%s: %s\r\n" % kv for kv in h.items()))
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if ssl_context:  # through a TLS proxy (test_proxy.py)
            self._sock = ssl_context.wrap_socket(self._sock, server_hostname="127.0.0.1")
        self._sock.sendall(head.encode("utf-8"))
        self._buf = b""
        status_line = self._line()
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise AssertionError("not an HTTP answer to GET %s: %r" % (path, status_line))
        self.status = int(parts[1])
        self.headers = {}
        while True:
            line = self._line()
            if line == "":
                break
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self._chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        self.body = b""
        if self.status != 200:
            if "content-length" in self.headers:
                self.body = self._exactly(int(self.headers["content-length"]))
            else:
                self.body = b"".join(iter(self._body_piece, b""))
            self._sock.close()
            self.ended = True
            return
        # Reads block for as long as the stream is quiet; close() ends them.
        self._sock.settimeout(None)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    @property
    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except ValueError:
            return None

    # --- the socket -----------------------------------------------------------

    def _fill(self):
        data = self._sock.recv(65536)
        if not data:
            raise EOFError("the server closed the connection")
        self._buf += data

    def _line(self):
        while b"\r\n" not in self._buf:
            self._fill()
        line, _, self._buf = self._buf.partition(b"\r\n")
        return line.decode("latin-1")

    def _exactly(self, n):
        while len(self._buf) < n:
            self._fill()
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def _body_piece(self):
        """The next piece of the body; b"" at its end."""
        if self._chunked:
            size = int(self._line().split(";")[0].strip() or "0", 16)
            if size == 0:
                return b""
            data = self._exactly(size)
            self._exactly(2)  # CRLF after the chunk
            return data
        if self._buf:
            out, self._buf = self._buf, b""
            return out
        try:
            self._fill()
        except EOFError:
            return b""
        out, self._buf = self._buf, b""
        return out

    # --- reading ------------------------------------------------------------

    def _read(self):
        pending = b""
        last_id = None
        event_type, data = "", []
        try:
            while True:
                chunk = self._body_piece()
                if not chunk:
                    break
                pending += chunk
                # lines end with CRLF, LF or CR; a CR at the very end may be half of a CRLF
                while True:
                    cut = -1
                    for i, b in enumerate(pending):
                        if b in (10, 13):
                            cut = i
                            break
                    if cut < 0 or (pending[cut] == 13 and cut == len(pending) - 1):
                        break
                    line = pending[:cut].decode("utf-8", "replace")
                    step = 2 if pending[cut:cut + 2] == b"\r\n" else 1
                    pending = pending[cut + step:]
                    if line == "":
                        if data:
                            self._dispatch(Event(last_id, event_type or "message", "\n".join(data)))
                        event_type, data = "", []
                        continue
                    if line.startswith(":"):
                        with self._cond:
                            self.comments.append(line[1:].lstrip(" "))
                            self._cond.notify_all()
                        continue
                    field, _, value = line.partition(":")
                    if value.startswith(" "):
                        value = value[1:]
                    if field == "event":
                        event_type = value
                    elif field == "data":
                        data.append(value)
                    elif field == "id" and "\0" not in value:
                        last_id = value
                    elif field == "retry" and value.isdigit():
                        self.retry = int(value)
        except Exception as e:  # noqa: BLE001 - a reader thread must not die noisily
            if not self._closing:
                self.error = e
        with self._cond:
            self.ended = True
            self._cond.notify_all()

    def _dispatch(self, ev):
        with self._cond:
            self.events.append(ev)
            self._cond.notify_all()

    # --- waiting --------------------------------------------------------------

    def wait_for(self, predicate, timeout=DEFAULT_TIMEOUT, what="an event", start=0):
        """Waits for the first event from index start on for which predicate(ev)
        is truthy; returns (index, event). Raises AssertionError on timeout
        or when the stream ends first."""
        deadline = time.monotonic() + timeout
        i = start
        with self._cond:
            while True:
                while i < len(self.events):
                    if predicate(self.events[i]):
                        return i, self.events[i]
                    i += 1
                if self.ended:
                    raise AssertionError("the stream %s ended before %s; got %r" % (self.path, what, self.events))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("timed out after %.1fs waiting for %s on %s; got %r" % (
                        timeout, what, self.path, self.events[start:]))
                self._cond.wait(left)

    def wait_count(self, n, timeout=DEFAULT_TIMEOUT, kind=None):
        """Waits until n events (of type kind, when given) have arrived; returns them."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = [e for e in self.events if kind is None or e.event == kind]
                if len(got) >= n:
                    return got
                if self.ended:
                    raise AssertionError("the stream %s ended after %d event(s), %d wanted: %r" % (
                        self.path, len(got), n, got))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("timed out after %.1fs: %d of %d event(s) on %s: %r" % (
                        timeout, len(got), n, self.path, got))
                self._cond.wait(left)

    def wait_comment(self, text, timeout=DEFAULT_TIMEOUT):
        deadline = time.monotonic() + timeout
        with self._cond:
            while text not in self.comments:
                left = deadline - time.monotonic()
                if left <= 0 or self.ended:
                    raise AssertionError("no comment %r on %s: %r" % (text, self.path, self.comments))
                self._cond.wait(left)

    def snapshot(self):
        with self._cond:
            return list(self.events)

    # --- ending ---------------------------------------------------------------

    def close(self):
        """Hangs up (the way a browser tab closes)."""
        self._closing = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        if self._thread:
            self._thread.join(timeout=2)
        self._sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


# --- a web chat shopper ---------------------------------------------------------------


def shopper_id():
    """An id the way the widget makes one: 32 random hex characters."""
    return uuid.uuid4().hex


def lines(events):
    """The transcript lines (data of "line" events), in order."""
    return [e.json for e in events if e.event == "line"]


def reply_texts(line):
    """The texts of an "out" line's replies, joined by newlines."""
    return "\n".join(r.get("text") or "" for r in line["body"])


class Shopper:
    """A shopper of the web chat channel of srv (a harness.Server): POSTs to
    /v1/bots/{bot}/webchat/messages and reads /v1/bots/{bot}/webchat/events
    the way the widget does. headers (e.g. an Origin) go with every request.
    An srv with an ssl_context (a TLS proxy in front) is reached over TLS."""

    def __init__(self, srv, bot="barista", user=None, headers=None):
        self.srv = srv
        self.bot = bot
        self.user = user or shopper_id()
        self.headers = dict(headers or {})
        self.base = "/v1/bots/%s/webchat" % bot
        self.stream = None

    def post(self, body, headers=None):
        """POST body (a dict: "user" is added unless present) as it is; the Response."""
        if isinstance(body, dict) and "user" not in body:
            body = dict(body, user=self.user)
        h = dict(self.headers)
        h.update(headers or {})
        return self.srv.request("POST", self.base + "/messages", body, headers=h)

    def send(self, text=None, payload=None, event=None, locale=None):
        """POSTs a message that must be accepted (202); returns the answer's JSON."""
        body = {}
        for k, v in (("text", text), ("payload", payload), ("event", event), ("locale", locale)):
            if v is not None:
                body[k] = v
        r = self.post(body)
        if r.status != 202:
            raise AssertionError("POST %s/messages %r -> %r" % (self.base, body, r))
        answer = r.json
        if not (isinstance(answer, dict) and answer.get("accepted") is True):
            raise AssertionError("a 202 must say {\"accepted\": true}: %r" % r)
        return answer

    def open(self, after=None, last_event_id=None, headers=None, path=None):
        """A new event stream of this shopper (not kept in self.stream)."""
        q = "?user=" + self.user + ("" if after is None else "&after=%s" % after)
        h = dict(self.headers)
        if last_event_id is not None:
            h["Last-Event-ID"] = str(last_event_id)
        h.update(headers or {})
        return Stream(self.srv.port, path or (self.base + "/events" + q), headers=h,
                      ssl_context=getattr(self.srv, "ssl_context", None))

    def connect(self):
        """Opens self.stream (it must answer 200); returns it."""
        self.stream = self.open()
        if self.stream.status != 200:
            raise AssertionError("GET events for %s -> %d %r" % (self.user, self.stream.status, self.stream.body))
        return self.stream

    def turn(self, text=None, payload=None, event=None, locale=None, timeout=DEFAULT_TIMEOUT):
        """Sends a message on self.stream's conversation and waits for its
        "in" line and the "out" line after it; returns (in_line, out_line)."""
        start = len(self.stream.snapshot())
        self.send(text=text, payload=payload, event=event, locale=locale)
        i, ev = self.stream.wait_for(lambda e: e.event == "line" and e.json["direction"] == "in", timeout=timeout,
                                     what="the 'in' line of %r" % (text or payload or event), start=start)
        _, out = self.stream.wait_for(lambda e: e.event == "line" and e.json["direction"] == "out", timeout=timeout,
                                      what="the 'out' line after %r" % (text or payload or event), start=i + 1)
        return ev.json, out.json

    def close(self):
        if self.stream:
            self.stream.close()
