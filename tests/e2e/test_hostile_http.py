#!/usr/bin/env python3
"""test_hostile_http: what a bot's script can reach over HTTP, and Alexa's
certificate downloads, against a server that hosts strangers' bots.

parley (hostile) serves, without the operator's switch:
- "hostile", whose allow list names a fake API on 127.0.0.1 (by address,
  as localhost, [::1] and [::ffff:127.0.0.1]), a port that is a string
  prefix of the fake's, and trusted.example. Its scripts try look-alikes
  (a path off the segment boundary, dot segments plain and encoded, a user
  name before the fake's address, a look-alike port and host, file://):
  each is an error at the script's line. The allowed loopback URLs (and
  2130706433, 127.0.0.1 written as a number) answer nil, "refused", with a
  warning in the log naming the bot and the host. The fake API must receive
  no connection at all. A body over 1 MB is an error.
- "badallow", whose allow list has invalid entries: load errors naming
  each entry's position;
- "innocent", an echo bot that must keep answering;
- the default bot with its Alexa channel, whose certificate URLs point (by
  the test-only PARLEY_ALEXA_CERT_URL_PREFIX) at a host that accepts
  connections and never answers. Requests naming different certificate
  paths wait for their downloads without stopping the innocent bot; one
  past the cap on downloads in flight is refused (503); when the host hangs
  up they are refused (401), and the host is then refused whatever the path
  without a new connection. The second run moves parley's test clock past
  the minute the host is refused for.

parley (private allowed) runs with --allow-private-http: "fetcher" reaches
the fake (by address and as localhost), an answer over 1 MB (with and
without Content-Length) is nil, "too-large", one of exactly 1 MB is not,
and a redirect is returned, not followed. A third parley turns the switch
on with PARLEY_ALLOW_PRIVATE_HTTP=1 instead.
"""

import base64
import datetime
import http.server
import os
import socket
import sys
import threading
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ROOT, Server, check, echo_bot, make_bot, new_user, run_suite, texts,  # noqa: E402
                     wait_until)

SKILL = "amzn1.ask.skill.hostile-" + uuid.uuid4().hex[:8]
MB = 1024 * 1024

# flows/main.lua of a probing bot: the message names a probe; the reply
# says how it went: "<name> -> raised: <error>" | "-> status N, B bytes" |
# "-> nil <reason>".
PROBE_FLOW = """\
local http = require "http"
local probes = %(probes)s

local function probe(name)
  local p = probes[name]
  if not p then return "no probe " .. name end
  local req = type(p) == "table" and p or { url = p }
  if req.body_size then req.body = string.rep("x", req.body_size) end
  local ok, res, err = pcall(function()
    local r, e = http.request(req) -- not a tail call: the error names this line
    return r, e
  end)
  if not ok then return "raised: " .. tostring(res) end
  if res then return "status " .. res.status .. ", " .. #res.body .. " bytes" end
  return "nil " .. tostring(err)
end

return {
  start = function(c, msg)
    local name = msg.text or ""
    c:say("out", { text = name .. " -> " .. probe(name) })
    return "wait"
  end,
  wait = { answer = function(c) return "start" end },
}
"""

PROBE_TONE = """\
return {
  persona = { name = "Probe" },
  templates = { en = { out = "{text}", fallback = "probe fallback" } },
}
"""


# flows/main.lua of a bot that waits for I/O again and again, with some
# work between the answers: every slice of its run is short, but the run
# as a whole must meet its budgets all the same.
LOOP_FLOW = """\
local http = require "http"
return {
  start = function(c, msg)
    local calls = 0
    while true do
      http.request { url = "%(url)s" }
      calls = calls + 1
      local x = 0
      for i = 1, 20000 do x = x + i end
    end
  end,
}
"""

LOOP_TONE = """\
return {
  persona = { name = "Looper" },
  templates = { en = { fallback = "looper fallback" } },
}
"""


def lua_table(probes):
    """A Lua table constructor for {name: url | {field: value}}."""
    def value(v):
        if isinstance(v, dict):
            return "{ " + ", ".join("%s = %s" % (k, value(x)) for k, x in v.items()) + " }"
        if isinstance(v, int):
            return str(v)
        return '"%s"' % v.replace("\\", "\\\\").replace('"', '\\"')
    return "{\n" + "".join('  ["%s"] = %s,\n' % (k, value(v)) for k, v in probes.items()) + "}"


def probe_bot(name, probes, allow):
    return make_bot(name, {"flows/main.lua": PROBE_FLOW % {"probes": lua_table(probes)},
                           "scripts/tone.lua": PROBE_TONE}, manifest={"http": {"allow": allow}})


class FakeApi:
    """An HTTP API on 127.0.0.1 that counts every connection and request."""

    def __init__(self):
        self.connections = 0
        self.paths = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.paths.append(self.path)
                if self.path == "/api/redirect":
                    self.send_response(302)
                    self.send_header("Location", "/api/landed")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                size = {"/api/big": 2 * MB, "/api/cap": MB, "/api/big-stream": 2 * MB}.get(self.path, 4)
                self.send_response(200)
                if self.path != "/api/big-stream":  # else: no length, the body ends when the connection does
                    self.send_header("Content-Length", str(size))
                self.end_headers()
                try:
                    self.wfile.write(b"fine" if size == 4 else b"x" * size)
                except OSError:
                    pass  # parley stopped reading: the cap

            do_POST = do_GET

        class CountingServer(http.server.ThreadingHTTPServer):
            def get_request(self):
                conn = super().get_request()
                outer.connections += 1
                return conn

        self.httpd = CountingServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class SilentHost:
    """Accepts connections on 127.0.0.1 and never answers until released;
    counts connections, and those the other side closed first."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.held = []
        self.accepted = 0
        self.closed_by_peer = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.held.append(conn)
                self.accepted += 1
            threading.Thread(target=self._watch, args=(conn,), daemon=True).start()

    def _watch(self, conn):
        try:
            while conn.recv(4096):
                pass
            with self.lock:
                if conn in self.held:
                    self.closed_by_peer += 1
        except OSError:
            pass

    def release(self):
        """Hangs up on every connection held."""
        with self.lock:
            held, self.held = self.held, []
        for conn in held:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def stop(self):
        self.release()
        self.sock.close()


def alexa_launch(user, offset):
    stamp = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=offset))
    return {
        "version": "1.0",
        "session": {"new": True, "sessionId": "amzn1.echo-api.session.h", "application": {"applicationId": SKILL},
                    "user": {"userId": user}},
        "context": {"System": {"application": {"applicationId": SKILL}, "user": {"userId": user}}},
        "request": {"type": "LaunchRequest", "requestId": "amzn1.echo-api.request." + uuid.uuid4().hex,
                    "timestamp": stamp.strftime("%Y-%m-%dT%H:%M:%SZ"), "locale": "en-US"},
    }


def main(tap):
    api = FakeApi()
    silent = SilentHost()
    port = api.port
    loop = "http://127.0.0.1:%d/api" % port
    hostile_dir = probe_bot("hostile", {
        # look-alikes: errors before any connection
        "segment": "http://127.0.0.1:%d/api-admin" % port,
        "dot-segment": "http://127.0.0.1:%d/api/../admin" % port,
        "encoded-dots": "http://127.0.0.1:%d/api/%%2e%%2e/admin" % port,
        "dots-with-params": "http://127.0.0.1:%d/api/..;/admin" % port,
        "user-name": "http://trusted.example@127.0.0.1:%d/api/x" % port,
        "port-prefix": "http://127.0.0.1:%d/admin" % port,
        "host-prefix": "http://trusted.example.evil.test/",
        "file": "file:///etc/passwd",
        "big-body": {"url": loop + "/x", "method": "POST", "body_size": MB + 1},
        # allowed by the list, refused at the address
        "loopback": loop + "/x",
        "localhost": "http://localhost:%d/api/x" % port,
        "ipv6-loopback": "http://[::1]:%d/api/x" % port,
        "mapped": "http://[::ffff:127.0.0.1]:%d/api/x" % port,
        "number": "http://2130706433:%d/api/x" % port,
    }, allow=[loop, "http://localhost:%d/api" % port, "http://[::1]:%d/api" % port,
              "http://[::ffff:127.0.0.1]:%d/api" % port, "http://127.0.0.1:%s" % str(port)[:-1],
              "http://trusted.example"])
    badallow_dir = probe_bot("badallow", {}, allow=["https://ok.example/v1", "https://user@api.example/",
                                                     "https://api.example/v1?key=1", 42, "not a url"])
    innocent_dir, _ = echo_bot("innocent")
    server = tap.watch(Server([ROOT, hostile_dir, badallow_dir, innocent_dir], env={
        "BARISTA_ALEXA_SKILL_ID": SKILL,
        "PARLEY_ALEXA_CERT_URL_PREFIX": "http://127.0.0.1:%d/echo.api/" % silent.port,
        "PARLEY_TEST_CLOCK": "1",
        "PARLEY_ALLOW_PRIVATE_HTTP": None,
    }, name="parley (hostile)").start())
    fetcher_dir = probe_bot("fetcher", {
        "ok": loop + "/ok",
        "localhost-ok": "http://localhost:%d/api/ok" % port,
        "big": loop + "/big",
        "big-stream": loop + "/big-stream",
        "exactly-the-cap": loop + "/cap",
        "redirect": loop + "/redirect",
    }, allow=[loop, "http://localhost:%d/api" % port])
    looper_dir = make_bot("looper", {"flows/main.lua": LOOP_FLOW % {"url": loop + "/ok"},
                                     "scripts/tone.lua": LOOP_TONE}, manifest={"http": {"allow": [loop]}})
    private = tap.watch(Server([fetcher_dir, looper_dir], args=["--allow-private-http"],
                               env={"PARLEY_ALLOW_PRIVATE_HTTP": None},
                               name="parley (private allowed)").start())
    by_env = tap.watch(Server([fetcher_dir], env={"PARLEY_ALLOW_PRIVATE_HTTP": "1"},
                              name="parley (PARLEY_ALLOW_PRIVATE_HTTP=1)").start())
    clock = {"offset": 0}

    def probe(srv, bot, name):
        reply = texts(srv.say(bot, new_user("h"), name))
        check.assertTrue(reply.startswith(name + " -> "), reply)
        return reply[len(name) + 4:]

    def innocent_answers():
        user = new_user("innocent")
        check.assertEqual(texts(server.say("innocent", user, "hello")), "1: hello")

    def look_alikes(run):
        for name, why in (("segment", "is not under any entry"), ("dot-segment", "is not under any entry"),
                          ("encoded-dots", "encoded"), ("dots-with-params", "encoded"),
                          ("user-name", "user name"), ("port-prefix", "is not under any entry"),
                          ("host-prefix", "is not under any entry"), ("file", "only http and https"),
                          ("big-body", "larger than the host allows")):
            said = probe(server, "hostile", name)
            check.assertTrue(said.startswith("raised: ") and why in said, "%s: %s" % (name, said))
            check.assertIn("flows/main.lua:", said, "the error names the script's line")
            innocent_answers()
        check.assertEqual(api.connections, 0, "a look-alike reached the fake API: %r" % api.paths)

    def private_addresses(run):
        for name, host in (("loopback", r"127\.0\.0\.1"), ("localhost", "localhost"), ("ipv6-loopback", r"\[::1\]"),
                           ("mapped", r"\[::ffff:127\.0\.0\.1\]"), ("number", r"127\.0\.0\.1")):
            mark = server.mark()
            check.assertEqual(probe(server, "hostile", name), "nil refused", name)
            server.wait_log(r"WARN +\[hostile\] http: request to %s refused: \S+ is a loopback address" % host, mark)
            innocent_answers()
        check.assertEqual(api.connections, 0, "a refused request reached the fake API: %r" % api.paths)

    def invalid_entries(run):
        error = server.bot_health("badallow")["error"] or ""
        check.assertIn("bot.json: http.allow[1]: a user name or password in the URL is refused", error)
        log = server.log_text()
        for i, why in ((1, "user name"), (2, "no query or fragment"), (3, "must be a URL"), (4, "not a URL")):
            check.assertRegex(log, r"bot\.json: http\.allow\[%d\]: [^\n]*%s" % (i, why))
        check.assertNotIn("http.allow[0]", log, "a valid entry is not reported")
        innocent_answers()

    def private_allowed(run):
        before = len(api.paths)
        check.assertEqual(probe(private, "fetcher", "ok"), "status 200, 4 bytes")
        check.assertEqual(probe(private, "fetcher", "localhost-ok"), "status 200, 4 bytes")
        check.assertEqual(probe(private, "fetcher", "big"), "nil too-large")
        check.assertEqual(probe(private, "fetcher", "big-stream"), "nil too-large")
        check.assertEqual(probe(private, "fetcher", "exactly-the-cap"), "status 200, %d bytes" % MB)
        check.assertEqual(probe(private, "fetcher", "redirect"), "status 302, 0 bytes")
        check.assertEqual(api.paths[before:], ["/api/ok", "/api/ok", "/api/big", "/api/big-stream", "/api/cap",
                                               "/api/redirect"], "the redirect is not followed")

    def io_loop(run):
        before = len(api.paths)
        user = new_user("looper")
        check.assertEqual(texts(private.say("looper", user, "go")), "looper fallback")
        calls = len(api.paths) - before
        check.assertTrue(0 < calls < 200, "the run stopped after %d requests" % calls)
        line = wait_until(lambda: [l for l in private.log_text().splitlines()
                                   if user in l and "turn failed" in l], what="the failed turn in the log")[0]
        check.assertRegex(line, r"flows/main\.lua:\d+: (instruction|time) budget of \d+ (ms )?exceeded")

    def allowed_by_env(run):
        check.assertEqual(probe(by_env, "fetcher", "ok"), "status 200, 4 bytes")
        check.assertEqual(probe(by_env, "fetcher", "big"), "nil too-large", "the caps stay")

    def post_alexa(path, user):
        body = alexa_launch(user, clock["offset"])
        headers = {"SignatureCertChainUrl": "http://127.0.0.1:%d/echo.api/%s" % (silent.port, path),
                   "Signature-256": base64.b64encode(b"not a signature").decode()}
        return server.request("POST", "/v1/bots/barista/channels/alexa", body, headers=headers)

    def certificate_downloads(run):
        if run > 1:  # past the minute run 1's failures keep the host refused, on parley's clock
            r = server.request("POST", "/v1/test/clock", {"advance": 61})
            check.assertEqual(r.status, 200, r)
            clock["offset"] += 61
        accepted = silent.accepted
        results = {}

        def send(i):
            results[i] = post_alexa("run%d-cert-%d.pem" % (run, i), new_user("alexa"))

        threads = [threading.Thread(target=send, args=(i,), daemon=True) for i in range(4)]
        for t in threads:
            t.start()
        wait_until(lambda: silent.accepted >= accepted + 4, timeout=10, what="four certificate downloads to connect")
        r = post_alexa("run%d-one-too-many.pem" % run, new_user("alexa"))
        check.assertEqual(r.status, 503, r)
        check.assertIn("in flight", r.json["error"])
        innocent_answers()
        check.assertEqual(len(results), 0, "an Alexa request was answered before its download ended: %r" % results)
        check.assertEqual(silent.closed_by_peer, 0, "a download gave up while the innocent bot was answering")

        mark = server.mark()
        silent.release()
        for t in threads:
            t.join(timeout=10)
        for i in range(4):
            check.assertEqual(results[i].status, 401, results[i])
            check.assertIn("cannot download", results[i].json["error"])
        server.wait_log(r"\[barista\] alexa webhook refused \(401\): cannot download the certificate chain", mark)

        r = post_alexa("run%d-another-path.pem" % run, new_user("alexa"))
        check.assertEqual(r.status, 401, r)
        check.assertIn("failed less than 60 s ago", r.json["error"])
        check.assertEqual(silent.accepted, accepted + 4, "the refused host was connected to again")
        innocent_answers()

    try:
        tap.case("look-alike URLs are errors at the script's line; the fake API sees nothing", look_alikes)
        tap.case("loopback addresses (also as localhost, ::1, mapped, a number) answer nil, \"refused\", "
                 "with a warning naming the bot and host", private_addresses)
        tap.case("invalid allow entries are load errors with their position", invalid_entries)
        tap.case("with --allow-private-http: the fake answers; over 1 MB is too-large; redirects are not followed",
                 private_allowed)
        tap.case("PARLEY_ALLOW_PRIVATE_HTTP=1 is the same switch", allowed_by_env)
        tap.case("a run that waits for I/O again and again meets its budgets over all its slices", io_loop)
        tap.case("Alexa: certificate downloads that hang stop no one, are capped, and a failed host is refused "
                 "whatever the path", certificate_downloads)
    finally:
        api.stop()
        silent.stop()


if __name__ == "__main__":
    run_suite("hostile http", main)
