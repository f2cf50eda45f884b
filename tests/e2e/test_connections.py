#!/usr/bin/env python3
"""test_connections: what `parley serve` does with its connections (conn.c,
docs/http-limits.md): more connections than --max-connections wait in the
kernel's queue and an innocent request behind them is answered once they
close; accept() running out of descriptors pauses accepting (one log line
per episode, no busy loop) until descriptors free up; a request trickled a
byte at a time, or never sent, is closed at --header-timeout; an idle
kept-alive connection is closed at --idle-timeout while an event stream is
not; and what libevent refuses by itself (a malformed request line, a head
over 16 KiB, a body over the hard cap, an unknown method) is answered with
the right status and a JSON {"error": ...} body like every other refusal.

Every wait is for an event (a log line, an answer, the server closing a
socket); no duration is asserted."""

import http.client
import json
import os
import resource
import select
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import LOG_LINE, Server, check, new_user, run_suite, wait_until  # noqa: E402
from sse_client import Shopper  # noqa: E402

BOT = "barista"
MESSAGES = "/v1/bots/barista/messages"
CAP = 4
DESCRIPTORS = 64  # RLIMIT_NOFILE of the server that runs out of them
WAIT = 15.0       # bounds every wait for the server; never asserted


def raw_request(body):
    return (b"POST " + MESSAGES.encode() + b" HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body) + body)


def clients_of(srv):
    """How many client connections srv holds: its sockets that are TCP
    connections on its port (the listener and outbound sockets are not)."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % srv.proc.pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (srv.proc.pid, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    n = 0
    with open("/proc/%d/net/tcp" % srv.proc.pid) as f:
        for row in f.readlines()[1:]:
            cols = row.split()
            port, state, inode = int(cols[1].split(":")[1], 16), cols[3], cols[9]
            n += port == srv.port and state != "0A" and inode in inodes  # 0A: LISTEN
    return n


def no_clients(srv):
    """Waits until srv has closed every client connection (of a previous run)."""
    wait_until(lambda: clients_of(srv) == 0, timeout=WAIT, what="the server to hold no client connection")


def cpu_seconds(pid):
    """utime + stime of the process, from /proc/PID/stat."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_closed(sock, timeout=WAIT):
    """Reads until the server closes sock; returns what it sent before."""
    sock.settimeout(timeout)
    got = b""
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return got
            got += data
    except ConnectionResetError:
        return got


def answer_of(sock, timeout=WAIT):
    """The HTTP answer read from sock (a Response-like tuple)."""
    sock.settimeout(timeout)
    r = http.client.HTTPResponse(sock)
    r.begin()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()


def main(tap):
    # --- a cap of CAP connections ---------------------------------------------

    capped = tap.watch(Server(args=["--max-connections", str(CAP), "--header-timeout", "60", "--log-level", "debug"],
                              name="parley (cap %d)" % CAP).start())

    def cap_logged(run):
        capped.wait_log(r"INFO +connections: at most %d open \(descriptor limit \d+\); 60 s to send a request, "
                        r"30 s idle between requests" % CAP)

    tap.case("the cap and the timeouts are logged at start", cap_logged, runs=1)

    def over_the_cap(run):
        no_clients(capped)
        mark = capped.mark()
        hogs = [socket.create_connection(("127.0.0.1", capped.port), timeout=WAIT) for _ in range(CAP + 3)]
        innocent = None
        try:
            capped.wait_log(r"DEBUG +listener off: %d connections open, the cap" % CAP, mark)
            # the kernel completes the handshake; the request waits in its queue
            innocent = socket.create_connection(("127.0.0.1", capped.port), timeout=WAIT)
            body = ('{"user": "%s", "text": "hi"}' % new_user("innocent")).encode()
            innocent.sendall(raw_request(body))
            check.assertEqual(clients_of(capped), CAP, "the server holds the cap, the rest wait in the kernel's queue")
            check.assertEqual(capped.find_log(r"listener on", mark), [])
        finally:
            for h in hogs:
                h.close()
        try:
            status, headers, data = answer_of(innocent)
        finally:
            innocent.close()
        check.assertEqual(status, 200, data)
        check.assertIn("Bea", data.decode())
        capped.wait_log(r"DEBUG +listener on: ", mark)

    tap.case("more connections than --max-connections wait in the kernel's queue; an innocent request behind "
             "them is answered once they close", over_the_cap)

    capped.stop()
    tap.unwatch(capped)

    # --- accept() runs out of descriptors --------------------------------------

    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (DESCRIPTORS, DESCRIPTORS))

    starved = tap.watch(Server(args=["--max-connections", "1000", "--header-timeout", "2"], preexec=low_limit,
                               name="parley (%d descriptors)" % DESCRIPTORS).start())

    def clamped(run):
        starved.wait_log(r"WARN +--max-connections 1000 is more than the %d descriptors this process may open"
                         % DESCRIPTORS)
        starved.wait_log(r"INFO +connections: at most %d open \(descriptor limit %d\)" % (DESCRIPTORS, DESCRIPTORS))

    tap.case("--max-connections above the descriptor limit is clamped, with a warning", clamped, runs=1)

    def out_of_descriptors(run):
        no_clients(starved)
        mark = starved.mark()
        free = DESCRIPTORS - len(os.listdir("/proc/%d/fd" % starved.proc.pid))
        hogs = [socket.create_connection(("127.0.0.1", starved.port), timeout=WAIT) for _ in range(free + 20)]
        try:
            starved.wait_log(r"WARN +cannot accept connections: Too many open files", mark)
            cpu0, wall0 = cpu_seconds(starved.proc.pid), time.monotonic()
            # the episode lasts until the hogs the server took reach their
            # header deadline and it closes them: wait for that close
            ready, _, _ = select.select(hogs, [], [], WAIT)
            check.assertTrue(ready, "the server closed none of the silent connections")
            cpu1, wall1 = cpu_seconds(starved.proc.pid), time.monotonic()
        finally:
            for h in hogs:
                h.close()
        r = starved.request("GET", "/v1/health")
        check.assertEqual(r.status, 200, r)
        check.assertTrue(starved.say(BOT, new_user("after"), "hi"))
        starved.wait_log(r"INFO +accepting connections again after [\d.]+ s \(accept\(\) failed \d+ times", mark)
        lines = starved.log_since(mark)
        check.assertEqual(len(starved.find_log(r"cannot accept connections", mark)), 1, lines)
        check.assertEqual(len(starved.find_log(r"accepting connections again", mark)), 1, lines)
        check.assertLess(len(lines), 20, "no flood of log lines: %r" % lines[:30])
        # a sanity bound, not a measure: a loop spinning on accept() burns
        # the whole episode's wall time in CPU
        check.assertLess(cpu1 - cpu0, 0.5 * (wall1 - wall0) + 0.05,
                         "CPU %.2f s over %.2f s of running out of descriptors" % (cpu1 - cpu0, wall1 - wall0))

    tap.case("accept() out of descriptors: one log line per episode, no busy loop, serving again after", out_of_descriptors)

    starved.stop()
    tap.unwatch(starved)

    # --- deadlines --------------------------------------------------------------

    quick = tap.watch(Server(args=["--header-timeout", "1", "--idle-timeout", "1"], name="parley (1 s timeouts)").start())

    def slowloris(run):
        s = socket.create_connection(("127.0.0.1", quick.port), timeout=WAIT)
        s.sendall(b"POST " + MESSAGES.encode() + b" HTTP/1.1\r\nHost: t\r\nX-Slow: ")
        stop = threading.Event()
        sent = [0]

        def trickle():
            while not stop.is_set():
                try:
                    s.send(b"a")
                except OSError:
                    return
                sent[0] += 1
                stop.wait(0.05)  # the attacker's pace: each byte would restart a per-read timeout

        t = threading.Thread(target=trickle, daemon=True)
        t.start()
        try:
            got = wait_closed(s)
        finally:
            stop.set()
            t.join(WAIT)
            s.close()
        check.assertEqual(got, b"", "closed without an answer")
        check.assertGreater(sent[0], 1, "it was still trickling when closed")
        silent = socket.create_connection(("127.0.0.1", quick.port), timeout=WAIT)
        try:
            check.assertEqual(wait_closed(silent), b"", "a connection that sends nothing is closed too")
        finally:
            silent.close()
        check.assertTrue(quick.say(BOT, new_user("after"), "hi"))

    tap.case("a head trickled a byte at a time, or never sent, is closed at --header-timeout", slowloris)

    def slow_body(run):
        s = socket.create_connection(("127.0.0.1", quick.port), timeout=WAIT)
        try:
            s.sendall(b"POST " + MESSAGES.encode() + b" HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{\"user\"")
            check.assertEqual(wait_closed(s), b"", "a body that never ends is closed without an answer")
        finally:
            s.close()

    tap.case("a body that stops halfway is closed at the same deadline", slow_body)

    def idle_and_stream(run):
        shopper = Shopper(quick)
        shopper.connect()
        try:
            kept = http.client.HTTPConnection("127.0.0.1", quick.port, timeout=WAIT)
            for _ in range(2):  # keep-alive works: both on one connection
                kept.request("GET", "/v1/health")
                r = kept.getresponse()
                check.assertEqual(r.status, 200)
                r.read()
            sock = kept.sock
            check.assertIsNotNone(sock, "the connection was kept alive")
            check.assertEqual(wait_closed(sock), b"", "the idle connection is closed without a word")
            kept.close()
            # the stream, open longer than both timeouts, still carries lines
            check.assertFalse(shopper.stream.ended, "the event stream was closed with the idle connection")
            _, out = shopper.turn(text="hi")
            check.assertIn("Bea", "\n".join(r.get("text") or "" for r in out["body"]))
        finally:
            shopper.close()

    tap.case("an idle kept-alive connection is closed at --idle-timeout; an event stream open as long is not",
             idle_and_stream)

    # --- what libevent refuses by itself, in JSON ---------------------------------

    refusals = [
        ("a malformed request line", b"GARBAGE\r\n\r\n", 400, r"malformed"),
        ("an HTTP version from the future", b"GET /v1/health HTTP/9.9\r\nHost: t\r\n\r\n", 400, r"malformed"),
        ("a Content-Length that is not a number",
         b"POST " + MESSAGES.encode() + b" HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n", 400, r"malformed"),
        ("a header over 16 KiB", b"GET /v1/health HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n",
         431, r"16 KiB"),
        ("headers over 16 KiB in all", b"GET /v1/health HTTP/1.1\r\nHost: t\r\n" +
         b"".join(b"X-H%d: %s\r\n" % (i, b"b" * 200) for i in range(100)) + b"\r\n", 431, r"16 KiB"),
        ("a request line over 16 KiB", b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 431, r"16 KiB"),
        ("a body over the hard cap",
         b"POST " + MESSAGES.encode() + b" HTTP/1.1\r\nHost: t\r\nContent-Length: 300000\r\n\r\n", 413, r"64 KiB"),
        ("an unknown method", b"BREW /v1/health HTTP/1.1\r\nHost: t\r\n\r\n", 501, r"method"),
        ("a method parley does not take at all", b"TRACE /v1/health HTTP/1.1\r\nHost: t\r\n\r\n", 501, r"method"),
        ("an Expect other than 100-continue",
         b"POST " + MESSAGES.encode() + b" HTTP/1.1\r\nHost: t\r\nExpect: tea\r\nContent-Length: 2\r\n\r\n{}",
         417, r"100-continue"),
    ]

    def refused_in_json(run):
        for what, data, status, reason in refusals:
            s = socket.create_connection(("127.0.0.1", quick.port), timeout=WAIT)
            try:
                s.sendall(data)
                got, headers, body = answer_of(s)
                rest = wait_closed(s)
            finally:
                s.close()
            check.assertEqual(got, status, "%s: %r" % (what, body))
            check.assertTrue(headers.get("content-type", "").startswith("application/json"), (what, headers))
            check.assertEqual(headers.get("connection"), "close", (what, headers))
            err = json.loads(body.decode())
            check.assertIsInstance(err, dict, what)
            check.assertEqual(list(err), ["error"], (what, err))
            check.assertRegex(err["error"], reason, what)
            check.assertEqual(rest, b"", "%s: nothing after the answer, then the close" % what)
        check.assertTrue(quick.say(BOT, new_user("after"), "hi"))

    tap.case("a malformed request line (400), a head over 16 KiB (431), a body over the hard cap (413), an unknown "
             "method (501): JSON {\"error\"} and the connection closed", refused_in_json)

    def log_clean(run):
        for line in quick.log_since(0):
            check.assertRegex(line, LOG_LINE, "a log line is not 'TIME LEVEL message'")
        check.assertEqual([line for line in quick.log_since(0) if " ERROR " in line], [])

    tap.case("after all of this: the log is 'TIME LEVEL message' lines with no ERROR", log_clean, runs=1)


if __name__ == "__main__":
    run_suite("e2e: connections (cap, descriptors, deadlines, libevent's refusals)", main)
