#!/usr/bin/env python3
"""test_agent: human handoff and the agent API end to end
(build/webchat-contract.md, runtime/http/agent.c). parley serves the default bot
(the barista) with PARLEY_AGENT_TOKEN set; shoppers talk through the web
chat channel (their answers come down /webchat/events) or the REST channel
(their answers come with their next POST); agents use /v1/agent/... and
watch /v1/agent/events.

Cases: the API disabled without a token (403) and the token checks (401,
Bearer, ?access_token=); the console page; a shopper asking for a person
lands in the queue (waiting, with the reason) and on the agents' stream;
the conversation's detail (transcript, flows, cart and totals); claim
(first wins, 409 "claimed by"), reply (409 before the claim or for another
agent; the holder's words reach the shopper's stream with agent.name);
the bot keeps quiet during handoff; hand back (400 for an unknown flow or
step; drink/choose asks again and goes on); close ("closed", out of the
queue); the queue's order; "line" events only for queued conversations; a
REST shopper gets the agent's words with their next answer; 404/405/400."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import check_error, Server, check, new_user, run_suite, texts  # noqa: E402
from sse_client import Shopper, Stream, lines, reply_texts  # noqa: E402

BOT = "barista"
TOKEN = "agent-token-" + os.urandom(6).hex()
AUTH = {"Authorization": "Bearer " + TOKEN}
ROW_KEYS = {"bot", "channel", "user", "state", "reason", "agent", "since", "last_at"}
DRINKS = ["espresso", "latte", "cappuccino", "flat_white", "matcha_latte", "hot_chocolate"]

# scripts/tone.lua (en)
HANDOFF = "Of course! I'm getting one of our team for you. They'll be with you shortly."
CLOSED = "Thanks for chatting with us! Say hi anytime ☕"
ASK_DRINK = ("Which drink would you like?", "What are you in the mood for?")


def joined(agent):
    return "%s from our team is here to help." % agent


def ask_size(drink):
    return ("What size for your %s?" % drink, "Which size would you like your %s in?" % drink)


def is_line(e):
    return e.event == "line"


def main(tap):
    # --- the API without a token -------------------------------------------------------------------

    off = tap.watch(Server(env={"PARLEY_AGENT_TOKEN": None, "BARISTA_AGENT_TOKEN": None},
                           name="parley (no agent token)").start())

    def disabled(run):
        for method, path, body in (("GET", "/v1/agent/conversations", None),
                                   ("GET", "/v1/agent/conversations/barista/webchat/" + "a" * 32, None),
                                   ("POST", "/v1/agent/conversations/barista/webchat/%s/claim" % ("a" * 32),
                                    {"agent": "Alex"})):
            for headers in ({}, {"Authorization": "Bearer anything"}, {"Authorization": "Bearer "}):
                check_error(off.request(method, path, body, headers=headers), 403, r"PARLEY_AGENT_TOKEN")
        s = Stream(off.port, "/v1/agent/events?access_token=anything")
        check_error(s, 403, r"PARLEY_AGENT_TOKEN")
        r = off.request("GET", "/agent")
        check.assertEqual(r.status, 200, "the console page itself asks for the token: %r" % r)

    tap.case("PARLEY_AGENT_TOKEN unset: the agent API answers 403 with how to enable it", disabled)
    off.stop()
    tap.unwatch(off)

    srv = tap.watch(Server(env={"PARLEY_AGENT_TOKEN": TOKEN, "BARISTA_AGENT_TOKEN": None},
                           name="parley (agents)").start())
    agents = []  # open /v1/agent/events streams, closed at the end of each case

    def agent_stream():
        s = Stream(srv.port, "/v1/agent/events?access_token=" + TOKEN)
        check.assertEqual(s.status, 200, s.body)
        agents.append(s)
        return s

    def close_agent_streams():
        while agents:
            agents.pop().close()

    def case(name, fn, runs=2):
        def run_closing(run):
            try:
                fn(run)
            finally:
                close_agent_streams()
        tap.case(name, run_closing, runs=runs)

    def conv_path(user, channel="webchat", action=None):
        return "/v1/agent/conversations/%s/%s/%s%s" % (BOT, channel, user, "/" + action if action else "")

    def act(user, action, body, channel="webchat"):
        return srv.request("POST", conv_path(user, channel, action), body, headers=AUTH)

    def queue():
        r = srv.request("GET", "/v1/agent/conversations", headers=AUTH)
        check.assertEqual(r.status, 200, r)
        check.assertEqual(set(r.json), {"conversations"}, r.json)
        return r.json["conversations"]

    def row(user, channel="webchat", rows=None):
        """The queue's row of the conversation, or None."""
        for c in queue() if rows is None else rows:
            if c["user"] == user and c["channel"] == channel and c["bot"] == BOT:
                return c
        return None

    def detail(user, channel="webchat"):
        r = srv.request("GET", conv_path(user, channel), headers=AUTH)
        check.assertEqual(r.status, 200, r)
        return r.json

    def handed_over(order=False):
        """A web chat shopper (stream open) who asked for a person."""
        u = Shopper(srv)
        u.connect()
        u.turn(text="hi")
        if order:
            u.turn(payload="latte")
            u.turn(payload="large")
        _, out = u.turn(text="talk to a person")
        check.assertEqual(out["body"], [{"text": HANDOFF}], "the shopper is told a person is coming")
        return u

    def queue_event_with(stream, user, state, start=0):
        return stream.wait_for(
            lambda e: e.event == "queue" and any(c["user"] == user and c["state"] == state
                                                 for c in e.json["conversations"]),
            what="a queue event with %s %s" % (user, state), start=start)

    def claimed(order=False):
        u = handed_over(order)
        r = act(u.user, "claim", {"agent": "Alex"})
        check.assertEqual(r.status, 200, r)
        _, ev = u.stream.wait_for(lambda e: is_line(e) and e.json["direction"] == "out"
                                  and reply_texts(e.json) == joined("Alex"), what="the agent joining")
        return u

    # --- auth and the console ---------------------------------------------------------------------------

    def auth(run):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer " + TOKEN + "x"},
                        {"Authorization": "Bearer " + TOKEN[:-1]}, {"Authorization": "Basic " + TOKEN},
                        {"Authorization": TOKEN}):
            r = srv.request("GET", "/v1/agent/conversations", headers=headers)
            check_error(r, 401, r"token")
            check.assertEqual(r.headers.get("www-authenticate"), "Bearer", r.headers)
        check_error(srv.request("GET", "/v1/agent/conversations?access_token=wrong"), 401)
        check_error(srv.request("POST", conv_path("a" * 32, action="claim"), {"agent": "Mallory"},
                                headers={"Authorization": "Bearer wrong"}), 401)
        r = srv.request("GET", "/v1/agent/conversations", headers=AUTH)
        check.assertEqual(r.status, 200, r)
        check.assertIsInstance(r.json["conversations"], list)
        r = srv.request("GET", "/v1/agent/conversations?access_token=" + TOKEN)
        check.assertEqual(r.status, 200, r)
        check_error(Stream(srv.port, "/v1/agent/events?access_token=wrong"), 401)
        check_error(Stream(srv.port, "/v1/agent/events"), 401)
        s = Stream(srv.port, "/v1/agent/events", headers=AUTH)
        check.assertEqual(s.status, 200, s.body)
        s.close()
        s = agent_stream()
        check.assertTrue(s.headers.get("content-type", "").startswith("text/event-stream"), s.headers)
        _, ev = s.wait_for(lambda e: True, what="the first event")
        check.assertEqual(ev.event, "queue", "a queue event on connect")
        check.assertEqual(set(ev.json), {"conversations"}, ev.json)

    case("wrong or missing token -> 401 (WWW-Authenticate: Bearer); Bearer and ?access_token= work", auth)

    def console(run):
        r = srv.request("GET", "/agent")
        check.assertEqual(r.status, 200, r)
        check.assertTrue(r.headers.get("content-type", "").startswith("text/html"), r.headers)
        check.assertIn(b"<html", r.body[:2000].lower())
        check.assertIn(b"/v1/agent/", r.body, "the console talks to the agent API")
        check.assertNotIn(TOKEN.encode(), r.body)

    case("GET /agent: the console page, text/html", console)

    # --- into the queue ------------------------------------------------------------------------------------

    def into_queue(run):
        ag = agent_stream()
        ag.wait_for(lambda e: e.event == "queue", what="the queue on connect")
        t0 = int(time.time() * 1000)
        u = handed_over()
        i, ev = queue_event_with(ag, u.user, "waiting")
        rows = ev.json["conversations"]
        mine = row(u.user, rows=rows)
        for c in (mine, row(u.user)):
            check.assertIsNotNone(c, "the conversation is in the queue")
            check.assertLessEqual(ROW_KEYS, set(c), c)
            check.assertEqual((c["bot"], c["channel"], c["state"], c["reason"], c["agent"]),
                              (BOT, "webchat", "waiting", "asked for a person", None), c)
            check.assertIsInstance(c["since"], int, c)
            check.assertLess(abs(c["since"] - t0), 60000, "since is ms since the epoch: %r" % c)
            check.assertGreaterEqual(c["last_at"], c["since"], c)
            check.assertIn("display_name", c)
            check.assertIsNone(c["display_name"], "the web chat does not know the shopper's name: %r" % c)
        u.close()

    case("a web chat shopper says 'talk to a person' -> waiting in the queue with the reason; a queue event",
         into_queue)

    def conversation_detail(run):
        u = handed_over(order=True)
        d = detail(u.user)
        check.assertLessEqual({"bot", "channel", "user", "handoff", "session", "cart", "totals", "transcript",
                               "flows"}, set(d), d)
        check.assertEqual((d["bot"], d["channel"], d["user"]), (BOT, "webchat", u.user))
        check.assertEqual((d["handoff"]["state"], d["handoff"]["reason"], d["handoff"]["agent"]),
                          ("waiting", "asked for a person", None), d["handoff"])
        check.assertEqual(d["session"]["locale"], "en")
        check.assertIsInstance(d["session"]["stack"], list)
        check.assertEqual(d["session"]["stack"][-1]["step"], "offer_pairing", "the flow stays where it was")
        cart_lines = d["cart"]["lines"]
        check.assertEqual(len(cart_lines), 1, d["cart"])
        check.assertEqual((cart_lines[0]["title"], cart_lines[0]["option_titles"], cart_lines[0]["total"]),
                          ("Latte", ["Large"], 470), "the cart as a person reads it")
        check.assertEqual((cart_lines[0]["sku"], cart_lines[0]["qty"], cart_lines[0]["options"]),
                          ("latte", 1, {"size": "large"}), cart_lines[0])
        check.assertEqual(d["cart"].get("currency"), "EUR")
        check.assertEqual(d["totals"], {"subtotal": 470, "discount": 0, "total": 470, "currency": "EUR"})
        check.assertEqual(d["transcript"], lines(u.stream.snapshot()),
                          "the whole conversation, the bot's part included, as the shopper's stream has it")
        check.assertEqual([line["direction"] for line in d["transcript"]], ["in", "out"] * 4)
        check.assertLessEqual({"start", "offer_pairing", "more", "summary", "checkout"}, set(d["flows"]["main"]))
        check.assertLessEqual({"start", "choose", "size", "add"}, set(d["flows"]["drink"]))
        u.close()

    case("GET a conversation: handoff, session, cart and totals, the whole transcript, flows and steps",
         conversation_detail)

    # --- claim and reply -------------------------------------------------------------------------------

    def claim(run):
        ag = agent_stream()
        u = handed_over()
        r = act(u.user, "reply", {"agent": "Alex", "text": "too early"})
        check_error(r, 409, r"claim")
        start = len(u.stream.snapshot())
        r = act(u.user, "claim", {"agent": "Alex"})
        check.assertEqual(r.status, 200, r)
        check.assertEqual((r.json["handoff"]["state"], r.json["handoff"]["agent"]), ("active", "Alex"), r.json)
        _, out = u.stream.wait_for(lambda e: is_line(e) and e.json["direction"] == "out" and e.json["body"],
                                   start=start, what="the agent joining")
        check.assertEqual(reply_texts(out.json), joined("Alex"))
        queue_event_with(ag, u.user, "active")
        c = row(u.user)
        check.assertEqual((c["state"], c["agent"]), ("active", "Alex"), c)
        for action, body in (("claim", {"agent": "Sam"}), ("reply", {"agent": "Sam", "text": "me too"}),
                             ("handback", {"agent": "Sam", "flow": "drink", "step": "choose"}),
                             ("close", {"agent": "Sam"})):
            check_error(act(u.user, action, body), 409, r"^claimed by Alex$")
        c = row(u.user)
        check.assertEqual((c["state"], c["agent"]), ("active", "Alex"), "Sam changed nothing: %r" % c)
        transcript = detail(u.user)["transcript"]
        check.assertNotIn("me too", json.dumps(transcript), "a refused reply is not recorded")
        u.close()

    case("claim: 200 and the shopper hears who joined; a second agent gets 409 'claimed by Alex' (every action); "
         "reply before the claim 409", claim)

    def reply(run):
        u = claimed()
        ag = agent_stream()
        ag.wait_for(lambda e: e.event == "queue", what="the queue on connect")
        words = "Hi, I'm Alex from the shop. How can I help? (%d)" % run
        r = act(u.user, "reply", {"agent": "Alex", "text": words})
        check.assertEqual(r.status, 200, r)
        _, out = u.stream.wait_for(lambda e: is_line(e) and e.json["direction"] == "out"
                                   and "Alex from the shop" in reply_texts(e.json), what="the agent's words")
        check.assertEqual(out.json["body"], [{"text": words, "agent": {"name": "Alex"}}],
                          "a person's words go out as written, with agent.name")
        _, ev = ag.wait_for(lambda e: is_line(e) and e.json["id"] == out.json["id"],
                            what="the line on the agents' stream")
        check.assertEqual(ev.json, dict(out.json, bot=BOT, channel="webchat", user=u.user))
        # a shopper whose page was closed gets the agent's words when the widget reconnects
        u.stream.close()
        r = act(u.user, "reply", {"agent": "Alex", "text": "While you were away: it's ready."})
        check.assertEqual(r.status, 200, r)
        back = u.open(last_event_id=out.json["id"])
        _, again = back.wait_for(lambda e: is_line(e) and e.json["direction"] == "out", what="the missed reply")
        check.assertEqual(again.json["body"], [{"text": "While you were away: it's ready.", "agent": {"name": "Alex"}}])
        back.close()
        for body, reason in (({"agent": "Alex", "text": ""}, r"text"), ({"agent": "Alex"}, r"text"),
                             ({"agent": "Alex", "text": "x" * 4097}, r"text"), ({"text": "hi"}, r"agent"),
                             ({"agent": "", "text": "hi"}, r"agent"), ({"agent": "A" * 65, "text": "hi"}, r"agent"),
                             (b"{oops", r"JSON")):
            check_error(act(u.user, "reply", body), 400, reason)
        u.close()

    case("reply by the holder: the shopper's stream gets it with agent.name (live, or on reconnect), so does the "
         "agents' stream; 400s",
         reply)

    def bot_quiet(run):
        u = claimed()
        ag = agent_stream()
        ag.wait_for(lambda e: e.event == "queue", what="the queue on connect")
        start = len(u.stream.snapshot())
        u.send(text="can I get oat milk in a latte?")
        i, mine = u.stream.wait_for(lambda e: is_line(e) and e.json["direction"] == "in", start=start,
                                    what="the shopper's line")
        check.assertEqual(mine.json["body"], {"text": "can I get oat milk in a latte?"})
        ag.wait_for(lambda e: is_line(e) and e.json["id"] == mine.json["id"] and e.json["user"] == u.user,
                    what="the shopper's line on the agents' stream")
        # "latte" would make the bot ask for a size; "help" would answer with help: neither may
        u.send(text="help")
        r = act(u.user, "reply", {"agent": "Alex", "text": "Yes, oat milk is fine."})
        check.assertEqual(r.status, 200, r)
        j, _ = u.stream.wait_for(lambda e: is_line(e) and e.json["direction"] == "out"
                                 and reply_texts(e.json) == "Yes, oat milk is fine.", start=i, what="the reply")
        between = [e.json for e in u.stream.snapshot()[i:j]]
        # (the agent's actions are "in" lines too, with an {"event": {"type": "agent", ...}} body)
        said = [line["body"] for line in between if line["direction"] == "in" and "event" not in line["body"]]
        check.assertEqual(said, [{"text": "can I get oat milk in a latte?"}, {"text": "help"}])
        check.assertEqual([line for line in between if line["direction"] == "out" and line["body"]], [],
                          "the bot does not answer while a person has the conversation")
        transcript = detail(u.user)["transcript"]
        check.assertIn({"text": "help"}, [line["body"] for line in transcript], "the shopper's words are recorded")
        u.close()

    case("during handoff the shopper's messages are recorded (and streamed to agents); the bot keeps quiet",
         bot_quiet)

    # --- hand back and close ----------------------------------------------------------------------------

    def handback(run):
        u = claimed()
        ag = agent_stream()
        ag.wait_for(lambda e: e.event == "queue", what="the queue on connect")
        for body, reason in (({"agent": "Alex", "flow": "drink", "step": "nope"}, r"nope"),
                             ({"agent": "Alex", "flow": "nope", "step": "choose"}, r"nope"),
                             ({"agent": "Alex", "flow": "drink", "step": "offer_pairing"}, r"offer_pairing")):
            check_error(act(u.user, "handback", body), 400, reason)
        c = row(u.user)
        check.assertEqual((c["state"], c["agent"]), ("active", "Alex"), "a refused handback changes nothing")
        start = len(u.stream.snapshot())
        r = act(u.user, "handback", {"agent": "Alex", "flow": "drink", "step": "choose"})
        check.assertEqual(r.status, 200, r)
        _, out = u.stream.wait_for(lambda e: is_line(e) and e.json["direction"] == "out" and e.json["body"],
                                   start=start, what="the bot asking again")
        check.assertIn(reply_texts(out.json).strip(), ASK_DRINK)
        check.assertEqual([c["payload"] for r in out.json["body"] for c in r.get("choices", [])], DRINKS)
        ag.wait_for(lambda e: e.event == "line" and e.json["user"] == u.user and e.json["direction"] == "out"
                    and e.json["body"], what="the bot's question again, on the agents' stream too")
        ag.wait_for(lambda e: e.event == "queue" and not any(c["user"] == u.user for c in e.json["conversations"]),
                    what="a queue event without the conversation")
        check.assertIsNone(row(u.user), "handed back: out of the queue")
        _, out = u.turn(text="latte")
        check.assertIn(reply_texts(out).strip(), ask_size("Latte"), "the bot answers again")
        check.assertEqual(detail(u.user)["handoff"], None)
        u.close()

    case("hand back: unknown flow/step -> 400; drink/choose -> the bot asks again and answers the next message",
         handback)

    def close(run):
        ag = agent_stream()
        ag.wait_for(lambda e: e.event == "queue", what="the queue on connect")
        u = claimed() if run == 1 else handed_over()  # run 2: closed without a claim
        start = len(u.stream.snapshot())
        r = act(u.user, "close", {"agent": "Alex"})
        check.assertEqual(r.status, 200, r)
        _, out = u.stream.wait_for(lambda e: is_line(e) and e.json["direction"] == "out" and e.json["body"],
                                   start=start, what="the closing words")
        check.assertEqual(out.json["body"], [{"text": CLOSED}])
        ag.wait_for(lambda e: e.event == "queue" and not any(c["user"] == u.user for c in e.json["conversations"]),
                    what="a queue event without the conversation")
        check.assertIsNone(row(u.user), "closed: out of the queue")
        for action, body in (("claim", {"agent": "Alex"}), ("reply", {"agent": "Alex", "text": "still there?"}),
                             ("close", {"agent": "Alex"})):
            check_error(act(u.user, action, body), 404, r"not waiting")
        _, out = u.turn(text="hi")
        check.assertIn("Bea", reply_texts(out), "the next message starts a new conversation with the bot")
        u.close()

    case("close: the shopper hears the 'closed' template, the conversation leaves the queue; then 404", close)

    # --- the queue and the agents' stream ---------------------------------------------------------------

    def order(run):
        first = handed_over()
        second = handed_over()
        check.assertEqual(act(first.user, "claim", {"agent": "Alex"}).status, 200)
        rows = queue()
        states = [c["state"] for c in rows]
        check.assertEqual(states, sorted(states, key=lambda s: s != "waiting"), "waiting first: %r" % states)
        for state in ("waiting", "active"):
            since = [c["since"] for c in rows if c["state"] == state]
            check.assertEqual(since, sorted(since), "oldest first among the %s" % state)
        users = [c["user"] for c in rows]
        check.assertLess(users.index(second.user), users.index(first.user))
        first.close()
        second.close()

    case("the queue lists waiting conversations first, oldest first, then the active ones", order)

    def lines_only_for_queue(run):
        ag = agent_stream()
        _, hello = ag.wait_for(lambda e: e.event == "queue", what="the queue on connect")
        check.assertEqual({c["user"] for c in hello.json["conversations"]}, {c["user"] for c in queue()},
                          "the queue event on connect is the queue")
        outsider = Shopper(srv)
        outsider.connect()
        waiting = handed_over()
        outsider.turn(text="hi")
        _, out = outsider.turn(payload="latte")
        waiting.send(text="hello? anyone?")
        _, ev = ag.wait_for(lambda e: is_line(e) and e.json["user"] == waiting.user
                            and e.json["body"] == {"text": "hello? anyone?"}, what="the waiting shopper's line")
        check.assertLessEqual({"bot", "channel", "user", "id", "at", "direction", "body"}, set(ev.json), ev.json)
        check.assertEqual((ev.json["bot"], ev.json["channel"], ev.json["direction"]), (BOT, "webchat", "in"))
        ours = [e for e in ag.snapshot() if is_line(e) and e.json["user"] == outsider.user]
        check.assertEqual(ours, [], "lines of conversations outside the queue are not streamed to agents")
        check.assertIsNone(row(outsider.user))
        outsider.close()
        waiting.close()

    case("/v1/agent/events: 'queue' on connect; 'line' events only for conversations in the queue",
         lines_only_for_queue)

    # --- the REST channel ------------------------------------------------------------------------------

    def rest(run):
        user = new_user("rest")
        srv.say(BOT, user, "hi")
        replies = srv.say(BOT, user, "talk to a person")
        check.assertEqual(texts(replies), HANDOFF)
        c = row(user, channel="rest")
        check.assertEqual((c["channel"], c["state"], c["reason"]), ("rest", "waiting", "asked for a person"), c)
        ag = agent_stream()
        ag.wait_for(lambda e: e.event == "queue", what="the queue on connect")
        check.assertEqual(act(user, "claim", {"agent": "Alex"}, channel="rest").status, 200)
        words = "Hello from Alex at the counter (%d)" % run
        r = act(user, "reply", {"agent": "Alex", "text": words}, channel="rest")
        check.assertEqual(r.status, 200, r)
        ag.wait_for(lambda e: is_line(e) and e.json["channel"] == "rest" and e.json["user"] == user
                    and e.json["direction"] == "out" and e.json["body"] == [{"text": words, "agent": {"name": "Alex"}}],
                    what="the agent's words on the agents' stream")
        replies = srv.say(BOT, user, "my order is late")
        check.assertEqual(replies, [{"text": joined("Alex")}, {"text": words, "agent": {"name": "Alex"}}],
                          "what the agent said comes with the next answer; the bot itself says nothing")
        check.assertEqual(srv.say(BOT, user, "still there?"), [], "said once; the bot keeps quiet")
        check.assertEqual(act(user, "close", {"agent": "Alex"}, channel="rest").status, 200)
        replies = srv.say(BOT, user, "bye")
        check.assertEqual(replies[0], {"text": CLOSED}, replies)
        check.assertIsNone(row(user, channel="rest"))

    case("a REST shopper in handoff gets the agent's words (with agent.name) with their next answer", rest)

    # --- what is not there --------------------------------------------------------------------------------

    def not_found(run):
        talking = Shopper(srv)
        talking.connect()
        talking.turn(text="hi")
        check_error(act(talking.user, "claim", {"agent": "Alex"}), 404, r"not waiting")
        check_error(srv.request("GET", conv_path("nobody-" + "0" * 12), headers=AUTH), 404)
        check_error(srv.request("GET", "/v1/agent/conversations/nobot/webchat/" + talking.user, headers=AUTH), 404,
                    r"nobot")
        check_error(act(talking.user, "poke", {"agent": "Alex"}), 404)
        check_error(srv.request("GET", "/v1/agent/nope", headers=AUTH), 404)
        r = srv.request("GET", conv_path(talking.user, action="claim"), headers=AUTH)
        check_error(r, 405)
        check.assertEqual(r.headers.get("allow"), "POST", r.headers)
        r = srv.request("POST", conv_path(talking.user), {}, headers=AUTH)
        check_error(r, 405)
        check.assertEqual(r.headers.get("allow"), "GET", r.headers)
        check_error(srv.request("POST", "/v1/agent/conversations", {}, headers=AUTH), 405)
        check_error(srv.request("POST", "/v1/agent/events", {}, headers=AUTH), 405)
        talking.close()

    case("a conversation not waiting -> 404; unknown bot, user, action -> 404; wrong method -> 405", not_found)

    def log_clean(run):
        errors = [line for line in srv.log_since(0) if " ERROR " in line]
        check.assertEqual(errors, [], "nothing above was an error of the server")

    case("after all of this: no ERROR in the log", log_clean, runs=1)


if __name__ == "__main__":
    run_suite("e2e: human handoff and the agent API", main)
