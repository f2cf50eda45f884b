#!/usr/bin/env python3
"""test_channel_instagram: Instagram Direct end to end.

Starts `parley serve` on the default bot with the Instagram secrets in its
environment and PARLEY_INSTAGRAM_API_BASE pointing at a fake Send API. The
fake is Messenger's (test_channel_messenger.py: Instagram messaging is the
same Graph API), judging every call by Instagram's limits (text of at most
1000 bytes) and its token. Webhooks are of object "instagram", signed with
X-Hub-Signature-256 as Meta signs them.

Cases: the whole order with payment over Instagram (quick replies, the
product carousel, the payment link as a URL button, the confirmation after
paying); story replies and mentions reach the flow as msg.channel.story,
while echoes, deletions, reactions and reads make no turn; the handshake,
wrong signatures and malformed bodies (4xx, nothing stored); a redelivery
(one turn); 500 then 200, and 429 with Retry-After (sent once, in order,
after the wait); a handoff with the agent's reply; and the 24-hour window
on parley's test clock (a reminder within it goes, one past it is not sent
but logged and counted, an agent's reply past it goes tagged HUMAN_AGENT
until 7 days)."""

import functools
import hashlib
import hmac
import json
import os
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server, check, db_query, new_user, run_suite, wait_until  # noqa: E402
from channel_helpers import post_signed, stored_for, turns as channel_turns, wait_sent as fake_sent  # noqa: E402
import test_channel_messenger as meta  # noqa: E402  (the fake Send API and its checks)
from commerce_helpers import PayLink, advance, reminders  # noqa: E402

HOOK = "/v1/bots/barista/channels/instagram"
VERIFY = "ig verify e2e"
SECRET = "ig-e2e-app-secret"
TOKEN = "IGAAe2e/token+="
ACCOUNT = "17841400000000001"
PROOF = hmac.new(SECRET.encode(), TOKEN.encode(), hashlib.sha256).hexdigest()
AGENT_TOKEN = "ig-agents-5c1d"


def text_ok(t):
    """Instagram's limit: 1000 bytes of UTF-8."""
    return isinstance(t, str) and 0 < len(t.encode("utf-8")) <= 1000


def request_problems(path, query, content_type, raw):
    return meta.request_problems(path, query, content_type, raw, token=TOKEN, proof=PROOF, text_ok=text_ok)


# --- webhooks -------------------------------------------------------------------------------


def item(user, **event):
    return dict({"sender": {"id": user}, "recipient": {"id": ACCOUNT}, "timestamp": meta.now_ms()}, **event)


def text_item(user, text, payload=None, mid=None, **extra):
    message = dict({"mid": mid or meta.new_mid(), "text": text}, **extra)
    if payload is not None:
        message["quick_reply"] = {"payload": payload}
    return item(user, message=message)


def body_of(*items, obj="instagram"):
    return json.dumps({"object": obj, "entry": [{"id": ACCOUNT, "time": meta.now_ms(), "messaging": list(items)}]}).encode()


def deliver(server, body, sig=True):
    return post_signed(server, HOOK, body, "X-Hub-Signature-256", lambda b: meta.signature(b, SECRET), sig)


def send(server, *items):
    r = deliver(server, body_of(*items))
    check.assertEqual(r.status, 200, r)


turns = functools.partial(channel_turns, channel="instagram")


def infos(server, user):
    """msg.channel of each of the user's turns, as recorded."""
    rows = db_query(server.db, "SELECT body FROM transcript WHERE channel = 'instagram' AND user = ? "
                    "AND direction = 'in' ORDER BY id", user)
    return [json.loads(b).get("info") for (b,) in rows]


def env_for(fake, **more):
    env = {
        "BARISTA_INSTAGRAM_VERIFY_TOKEN": VERIFY,
        "BARISTA_INSTAGRAM_APP_SECRET": SECRET,
        "BARISTA_INSTAGRAM_ACCESS_TOKEN": TOKEN,
        "PARLEY_INSTAGRAM_API_BASE": fake.base,
        "PARLEY_OUTBOX_RETRY_MS": "50",
        "PARLEY_OUTBOX_MAX_ATTEMPTS": "3",
        "PARLEY_AGENT_TOKEN": AGENT_TOKEN,
        "BARISTA_AGENT_TOKEN": None,
        "BARISTA_STRIPE_SECRET_KEY": None,
        "PARLEY_PUBLIC_URL": None,
    }
    env.update(more)
    return env


def main(tap):
    fake = meta.FakeSendAPI(request_problems)
    server = tap.watch(Server(env=env_for(fake), name="parley").start())
    auth = {"Authorization": "Bearer " + AGENT_TOKEN}
    quick, payloads, elements, said = meta.quick, meta.payloads, meta.elements, meta.said

    def no_problems():
        check.assertEqual(fake.take_problems(), [], "requests that do not follow the Send API's documentation")

    def wait_sent(user, since, pred, what):
        return fake_sent(fake, user, since, pred, what)

    def tap_choice(user, payload, title, pred, what):
        n = len(fake.delivered(user))
        send(server, text_item(user, title, payload=payload))
        return wait_sent(user, n, pred, what)

    def act(server_, user, action, body):
        r = server_.request("POST", "/v1/agent/conversations/barista/instagram/%s/%s" % (user, action), body,
                            headers=auth)
        check.assertEqual(r.status, 200, r)

    def whole_order(run):
        user = new_user("igsid")
        send(server, text_item(user, "hi"))
        sent = wait_sent(user, 0, lambda m: "latte" in payloads(m), "the drinks as quick replies")
        sent = tap_choice(user, "latte", "Latte", lambda m: "large" in payloads(m), "the sizes")
        sent = tap_choice(user, "large", "Large", lambda m: elements(m), "the pairing carousel")
        button = elements(sent[-1])[0]["buttons"][0]
        check.assertEqual(button["type"], "postback")
        n = len(fake.delivered(user))
        send(server, item(user, postback={"mid": meta.new_mid(), "title": button["title"], "payload": button["payload"]}))
        wait_sent(user, n, lambda m: "done" in payloads(m), "anything else?")
        sent = tap_choice(user, "done", "That's all", lambda m: "pay" in payloads(m), "how to pay")
        sent = tap_choice(user, "pay", "Pay now", lambda m: "Order #" in said(m), "the payment link")
        template = meta.button_template(sent[-1])
        check.assertIsNotNone(template, "the payment link is a URL button: %r" % sent[-1])
        url = template["buttons"][0]["url"]
        check.assertEqual(template["buttons"][0]["type"], "web_url")
        n = len(fake.delivered(user))
        PayLink(url).pay(server)
        wait_sent(user, n, lambda m: "Payment received" in said(m) or "All paid" in said(m), "the thanks")
        check.assertEqual(turns(server, user), 7, "six messages and the payment")
        check.assertEqual(infos(server, user)[0], {"platform": "instagram", "account_id": ACCOUNT})
        check.assertTrue(all(r["tag"] is None for r in fake.attempts(user)), "replies, not tagged")
        no_problems()

    def stories_and_ignored_events(run):
        user = new_user("igsid")
        send(server, text_item(user, "hi there", reply_to={"story": {"url": "https://cdn.example/s.jpg", "id": "1799"}}))
        wait_sent(user, 0, lambda m: "latte" in payloads(m), "an answer to the story reply")
        n = len(fake.delivered(user))
        send(server, item(user, message={"mid": meta.new_mid(), "attachments": [
            {"type": "story_mention", "payload": {"url": "https://cdn.example/m.mp4"}}]}))
        wait_until(lambda: turns(server, user) == 2, what="the mention's turn")
        stories = [i.get("story") for i in infos(server, user)]
        check.assertEqual(stories, [{"kind": "reply", "url": "https://cdn.example/s.jpg", "id": "1799"},
                                    {"kind": "mention", "url": "https://cdn.example/m.mp4"}])
        mid = meta.new_mid()
        send(server,
             item(ACCOUNT, recipient={"id": user}, message={"mid": mid, "text": "echo", "is_echo": True}),
             item(user, message={"mid": meta.new_mid(), "is_deleted": True}),
             item(user, reaction={"mid": mid, "action": "react", "reaction": "love", "emoji": "\u2764"}),
             item(user, read={"mid": "m_out_1"}),
             text_item(user, "Latte", payload="latte"))  # a barrier: turns run in order
        wait_sent(user, n, lambda m: "large" in payloads(m), "the answer after the ignored events")
        check.assertEqual(turns(server, user), 3, "echo, deletion, reaction and read made no turn")
        statuses = db_query(server.db, "SELECT body FROM transcript WHERE user = ? AND direction = 'status'", user)
        check.assertEqual([json.loads(b)["status"] for (b,) in statuses], ["read"])
        no_problems()

    def refusals(run):
        q = urllib.parse.urlencode({"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "9%d" % run})
        r = server.request("GET", HOOK + "?" + q)
        check.assertEqual((r.status, r.body), (200, b"9%d" % run))
        r = server.request("GET", HOOK + "?" + urllib.parse.urlencode(
            {"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"}))
        check.assertEqual(r.status, 403, r)
        user = new_user("intruder")
        body = body_of(text_item(user, "hi"))
        check.assertEqual(deliver(server, body, sig=meta.signature(body, "not the secret")).status, 403)
        check.assertEqual(deliver(server, body, sig=None).status, 401)
        for bad in (body_of(text_item(user, "hi"), obj="page"), b"{not json",
                    body_of(item(user, message={"mid": "x", "is_deleted": "yes"})),
                    body_of(item(user, message={"mid": "x", "reply_to": {"story": "s"}}))):
            r = deliver(server, bad)
            check.assertEqual(r.status, 400, (bad, r))
        check.assertEqual(stored_for(server, user), {"inbox": 0, "sessions": 0, "transcript": 0, "outbox": 0})
        check.assertEqual(fake.attempts(user), [])

    def redelivery(run):
        user = new_user("igsid")
        body = body_of(text_item(user, "hi"))
        check.assertEqual([deliver(server, body).status for _ in range(2)], [200, 200])
        wait_sent(user, 0, lambda m: "latte" in payloads(m), "the answer")
        check.assertEqual(deliver(server, body).status, 200)
        tap_choice(user, "latte", "Latte", lambda m: "large" in payloads(m), "the sizes")
        check.assertEqual(turns(server, user), 2)
        check.assertEqual(len([m for m in fake.delivered(user) if "latte" in payloads(m)]), 1)
        no_problems()

    def flaky_and_busy(run):
        user = new_user("igsid")
        fake.fail_first[user] = 1
        send(server, text_item(user, "hi"))
        wait_sent(user, 0, lambda m: "latte" in payloads(m), "the answer after a 500")
        statuses = [a["status"] for a in fake.attempts(user)]
        check.assertEqual(statuses, [500] + [200] * (len(statuses) - 1))
        fake.busy_first[user] = 1
        n = len(fake.delivered(user))
        send(server, text_item(user, "Latte", payload="latte"))
        wait_sent(user, n, lambda m: "large" in payloads(m), "the answer after a 429")
        attempts = fake.attempts(user)[len(statuses):]
        check.assertEqual([a["status"] for a in attempts], [429] + [200] * (len(attempts) - 1))
        check.assertEqual(attempts[0]["message"], attempts[1]["message"], "the refused message goes again first")
        check.assertGreaterEqual(attempts[1]["at"] - attempts[0]["at"], 0.9, "after Retry-After: 1")
        delivered = fake.delivered(user)
        check.assertEqual(len(delivered), len({json.dumps(m, sort_keys=True) for m in delivered}), "each once")
        no_problems()

    def handoff(run):
        user = new_user("igsid")
        send(server, text_item(user, "hi"))
        wait_sent(user, 0, lambda m: "latte" in payloads(m), "the greeting")
        n = len(fake.delivered(user))
        send(server, text_item(user, "can I talk to a person?"))
        wait_sent(user, n, lambda m: "getting one of our team" in said(m), "the handoff")
        n = len(fake.delivered(user))
        act(server, user, "claim", {"agent": "Mia"})
        wait_sent(user, n, lambda m: said(m) == "Mia from our team is here to help.", "the claim")
        n = len(fake.delivered(user))
        act(server, user, "reply", {"agent": "Mia", "text": "Hi! Your oat latte is on the counter."})
        wait_sent(user, n, lambda m: said(m) == "Hi! Your oat latte is on the counter.", "the agent's words")
        check.assertIsNone(fake.attempts(user)[-1]["tag"], "within the window: a plain reply")
        act(server, user, "close", {"agent": "Mia"})
        no_problems()

    def messaging_window(run):
        s = tap.watch(Server(env=env_for(fake, PARLEY_TEST_CLOCK="1"), name="parley (test clock)").start())

        def outside():
            r = s.request("GET", "/v1/health")
            check.assertEqual(r.status, 200, r)
            return r.json["node"]["outbox"]["outside_window"]

        def leave_cart(user):
            send_to(user, text_item(user, "hi"), lambda m: "latte" in payloads(m))
            send_to(user, text_item(user, "a small latte"), lambda m: "no" in payloads(m) or "done" in payloads(m))
            send_to(user, text_item(user, "No thanks", payload="no"), lambda m: "done" in payloads(m))

        def send_to(user, it, pred):
            n = len(fake.delivered(user))
            r = deliver(s, body_of(it))
            check.assertEqual(r.status, 200, r)
            return wait_sent(user, n, pred, "an answer")

        check.assertEqual(outside(), 0)
        # a reminder within the window goes out
        early = new_user("igsid")
        leave_cart(early)
        n = len(fake.delivered(early))
        advance(s, 61 * 60)
        wait_sent(early, n, lambda m: "You left 1 item(s) in your cart" in said(m), "the reminder")
        # one that comes past the 24 hours is not sent: logged and counted
        late = new_user("igsid")
        leave_cart(late)
        n = len(fake.delivered(late))
        mark = s.mark()
        advance(s, 25 * 3600)
        s.wait_log(r"instagram/%s: not sent: the shopper last wrote 25 h ago, past instagram's 24-hour messaging window"
                   % late, mark)
        # the line is logged as the turn's replies are rendered, before its commit
        wait_until(lambda: len(reminders(s.db, late, "instagram")) == 1, what="the reminder's turn committed")
        check.assertEqual(outside(), 1)
        check.assertEqual(len(fake.delivered(late)), n, "and nothing was sent")
        # a person's words past the window go tagged HUMAN_AGENT, for 7 days
        user = new_user("igsid")
        send_to(user, text_item(user, "can I talk to a person?"), lambda m: "getting one of our team" in said(m))
        act(s, user, "claim", {"agent": "Leo"})
        wait_sent(user, 0, lambda m: said(m) == "Leo from our team is here to help.", "the claim")
        advance(s, 2 * 24 * 3600)
        n = len(fake.delivered(user))
        act(s, user, "reply", {"agent": "Leo", "text": "Sorry for the wait: your mug ships today."})
        wait_sent(user, n, lambda m: said(m) == "Sorry for the wait: your mug ships today.", "the late reply")
        check.assertEqual(fake.attempts(user)[-1]["tag"], "HUMAN_AGENT")
        advance(s, 6 * 24 * 3600)
        mark = s.mark()
        act(s, user, "reply", {"agent": "Leo", "text": "Still there?"})
        s.wait_log(r"instagram/%s: not sent: .*past the window for a person's replies" % user, mark)
        check.assertEqual(outside(), 2)
        check.assertFalse(any(said(m) == "Still there?" for m in fake.delivered(user)))
        no_problems()

    try:
        tap.case("the whole order with payment over Instagram", whole_order)
        tap.case("story replies and mentions are msg.channel.story; echoes, deletions, reactions and reads "
                 "make no turn", stories_and_ignored_events)
        tap.case("handshake, wrong signatures and malformed bodies: 4xx, nothing stored", refusals)
        tap.case("a redelivery is acknowledged once: one turn", redelivery)
        tap.case("500 then 200, and 429 with Retry-After: sent once, in order, after the wait", flaky_and_busy)
        tap.case("a handoff: the claim and the agent's reply reach the shopper", handoff)
        tap.case("the 24-hour window: a late reminder is not sent (logged, counted); an agent's late reply "
                 "goes tagged HUMAN_AGENT for 7 days", messaging_window)
    finally:
        fake.stop()


if __name__ == "__main__":
    run_suite("channel: instagram", main)
