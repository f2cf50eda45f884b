#!/usr/bin/env python3
"""test_agent_scope: one server, two brands (the barista and the pizzeria).
PARLEY_AGENT_TOKEN opens every brand's queue; a brand's own token (the
variable its bot.json "agent_token_env" names) opens only that brand's:
the queue, a conversation, the actions and the live stream."""

import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ROOT, Server, check, new_user, run_suite, wait_until  # noqa: E402

ALL, BARISTA, PIZZA = "agency-7d1e", "barista-staff-51c0", "pizza-staff-a9e2"
ENV = {"PARLEY_AGENT_TOKEN": ALL, "BARISTA_AGENT_TOKEN": BARISTA, "PIZZA_AGENT_TOKEN": PIZZA}


def bearer(token):
    return {"Authorization": "Bearer " + token}


def queue(srv, token):
    r = srv.request("GET", "/v1/agent/conversations", headers=bearer(token))
    check.assertEqual(r.status, 200, r)
    return [(c["bot"], c["user"]) for c in r.json["conversations"]]


def open_stream(srv, token):
    """A raw /v1/agent/events stream; returns the socket."""
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    sock.sendall(("GET /v1/agent/events?access_token=%s HTTP/1.1\r\nHost: x\r\n\r\n" % token).encode())
    return sock


def read_events(sock, until, timeout=5.0):
    """Reads SSE until until(events) is true; returns [(event, data)]."""
    buf, end = b"", time.monotonic() + timeout
    while time.monotonic() < end:
        sock.settimeout(max(0.05, end - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        buf += chunk
        events = []
        for block in buf.decode("utf-8", "replace").split("\n\n"):
            name = data = None
            for line in block.split("\n"):
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
            if name:
                events.append((name, data))
        if until(events):
            return events
    raise AssertionError("the stream did not show what was expected; got %r" % buf[-2000:])


def main(tap):
    srv = tap.watch(Server(bots=[ROOT, os.path.join(ROOT, "examples", "pizza")], env=ENV,
                           name="parley (two brands)").start())
    coffee, pizza = new_user("coffee"), new_user("pizza")
    srv.say("barista", coffee, "hi")
    srv.say("barista", coffee, "talk to a person")
    srv.say("pizza", pizza, "hi")
    srv.say("pizza", pizza, "talk to a person")

    def queues(run):
        check.assertEqual(set(queue(srv, ALL)) >= {("barista", coffee), ("pizza", pizza)}, True)
        check.assertEqual({b for b, _ in queue(srv, BARISTA)}, {"barista"})
        check.assertEqual({b for b, _ in queue(srv, PIZZA)}, {"pizza"})

    tap.case("the agency token sees both brands' queues, a brand's token only its own", queues)

    def other_brand(run):
        for method, path, body in (("GET", "/v1/agent/conversations/pizza/rest/" + pizza, None),
                                   ("POST", "/v1/agent/conversations/pizza/rest/%s/claim" % pizza,
                                    {"agent": "Mia"})):
            r = srv.request(method, path, body=body, headers=bearer(BARISTA))
            check.assertEqual(r.status, 403, r)
            check.assertIn("for bot 'barista' only", r.json["error"])
        r = srv.request("GET", "/v1/agent/conversations/pizza/rest/" + pizza, headers=bearer(PIZZA))
        check.assertEqual(r.status, 200, r)
        check.assertEqual(r.json["handoff"]["state"], "waiting")

    tap.case("a brand's token cannot open or claim another brand's conversation (403)", other_brand)

    def wrong(run):
        for token in ("", "nope", BARISTA + "x"):
            r = srv.request("GET", "/v1/agent/conversations", headers=bearer(token))
            check.assertEqual(r.status, 401, r)

    tap.case("any other token gets 401", wrong, runs=1)

    def streams(run):
        mine = open_stream(srv, BARISTA)
        agency = open_stream(srv, ALL)
        try:
            first = read_events(mine, lambda ev: any(n == "queue" for n, _ in ev))
            bots = {c["bot"] for n, d in first if n == "queue" for c in d["conversations"]}
            check.assertEqual(bots, {"barista"})
            read_events(agency, lambda ev: any(n == "queue" for n, _ in ev))
            srv.say("pizza", pizza, "are you there? (%d)" % run)
            seen = read_events(agency, lambda ev: any(n == "line" and d["bot"] == "pizza" for n, d in ev))
            check.assertTrue(seen)
            srv.say("barista", coffee, "hello? (%d)" % run)
            got = read_events(mine, lambda ev: any(n == "line" and d["bot"] == "barista" for n, d in ev))
            check.assertEqual({d["bot"] for n, d in got if n == "line"}, {"barista"},
                              "the pizzeria's line never reached the barista's staff")
        finally:
            mine.close()
            agency.close()

    tap.case("the live stream of a brand's token carries only that brand's queue and lines", streams)

    def disabled(run):
        with Server(env={"PARLEY_AGENT_TOKEN": None, "BARISTA_AGENT_TOKEN": None}, name="parley (no agents)") as s:
            r = s.request("GET", "/v1/agent/conversations", headers=bearer(ALL))
            check.assertEqual(r.status, 403, r)
            check.assertIn("PARLEY_AGENT_TOKEN", r.json["error"])
        with Server(env={"PARLEY_AGENT_TOKEN": None, "BARISTA_AGENT_TOKEN": BARISTA},
                    name="parley (brand token only)") as s:
            wait_until(lambda: s.request("GET", "/v1/agent/conversations", headers=bearer(BARISTA)).status == 200,
                       what="the brand's token alone enables the console")

    tap.case("no token at all: 403 with how to enable it; a brand's token alone enables the console", disabled,
             runs=1)


if __name__ == "__main__":
    run_suite("agent tokens per brand", main)
