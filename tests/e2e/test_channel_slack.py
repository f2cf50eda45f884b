#!/usr/bin/env python3
"""test_channel_slack: the default bot over Slack, end to end.

Starts `parley serve` on the default bot with the Slack signing secret and
bot token in its environment and PARLEY_SLACK_API_BASE pointing at a fake
Web API that this file runs on a free loopback port. The fake checks every
call against what Slack documents (POST /chat.postMessage, Authorization:
Bearer <bot token>, a JSON body of channel, text and blocks; sections of
mrkdwn with & < > escaped and at most 3000 characters, actions blocks of 1
to 25 buttons, buttons with plain_text of at most 75 characters and a value
of at most 2000 or a URL, image blocks and accessories with alt text, at
most 50 blocks, a notification text of at most 4000), records it and
answers {"ok": true} — or, when a case says so, 500, 429 with Retry-After,
or HTTP 200 with {"ok": false, "error": ...}.

Requests are signed as Slack signs them (X-Slack-Signature: v0= hex
HMAC-SHA256 of "v0:<X-Slack-Request-Timestamp>:<body>"); taps of buttons
arrive as interactivity forms (payload= a block_actions JSON).

Cases: the whole order with payment (the test provider's page is paid and
the thanks reach the shopper), url_verification, wrong signatures and stale
timestamps, malformed bodies, a redelivery (X-Slack-Retry-Num: one turn),
messages from bots, the app and edits (no turn), 500 then 200 and 429 with
Retry-After (sent once, in order), {"ok": false} answers (retried or a
dead letter), a handoff whose agent's reply reaches the shopper, the
abandoned-cart reminder (a proactive message, on a server with the test
clock), and the channel without its secrets (503). Standard library only."""

import functools
import hashlib
import hmac
import json
import os
import re
import sys
import time
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server, check, db_query, run_suite, wait_until  # noqa: E402
from commerce_helpers import REMINDER, THANKS, PayLink, advance  # noqa: E402
from channel_helpers import (PRICES, FakePlatform, Later, euros, stored_for, turns as channel_turns,  # noqa: E402
                             units, wait_sent)

BOT = "barista"
HOOK = "/v1/bots/%s/channels/slack" % BOT
SECRET = "slack-signing-" + uuid.uuid4().hex
TOKEN = "xoxb-17-" + uuid.uuid4().hex
TEAM = "T0SHOP1"
APP = "A0PARLEY"
BOT_USER = "U0BARISTA"
AGENT_TOKEN = "handoff-slack-" + uuid.uuid4().hex[:8]

def new_shopper():
    """(user id, DM channel id) no earlier run has used."""
    x = uuid.uuid4().hex[:9].upper()
    return "U" + x, "D" + x


# --- the fake Web API -------------------------------------------------------------------

ESCAPED = re.compile(r"&(?!amp;|lt;|gt;)|[<>]")


def _text_ok(value, limit):
    return isinstance(value, str) and 0 < units(value) <= limit


def button_problems(b, action_ids):
    p = []
    if not isinstance(b, dict) or b.get("type") != "button":
        return ["element is not a button: %r" % (b,)]
    extra = set(b) - {"type", "text", "action_id", "value", "url", "style"}
    if extra:
        p.append("button has undocumented fields %s" % sorted(extra))
    t = b.get("text")
    if not (isinstance(t, dict) and t.get("type") == "plain_text" and _text_ok(t.get("text"), 75)
            and set(t) <= {"type", "text", "emoji"}):
        p.append("button text is not plain_text of 1..75: %r" % (t,))
    aid = b.get("action_id")
    if not _text_ok(aid, 255) or aid in action_ids:
        p.append("action_id missing, too long or not unique: %r" % aid)
    action_ids.add(aid)
    if ("value" in b) == ("url" in b):
        p.append("a button has a value or a url, exactly one: %r" % b)
    if "value" in b and not (isinstance(b["value"], str) and 0 < len(b["value"].encode()) <= 2000):
        p.append("button value empty or over 2000")
    if "url" in b:
        u = urllib.parse.urlsplit(str(b["url"]))
        if u.scheme not in ("http", "https") or not u.netloc or units(b["url"]) > 3000:
            p.append("button url is not a web address of at most 3000: %r" % b["url"])
    if "style" in b and b["style"] not in ("primary", "danger"):
        p.append("button style %r" % b["style"])
    return p


def image_problems(img, kind):
    p = []
    if set(img) != {"type", "image_url", "alt_text"}:
        p.append("%s fields are %s" % (kind, sorted(img)))
    url = urllib.parse.urlsplit(str(img.get("image_url")))
    if url.scheme not in ("http", "https") or units(str(img.get("image_url"))) > 3000:
        p.append("%s image_url is not a web address: %r" % (kind, img.get("image_url")))
    if not _text_ok(img.get("alt_text"), 2000):
        p.append("%s alt_text missing or over 2000" % kind)
    return p


def block_problems(block, action_ids):
    p = []
    kind = block.get("type") if isinstance(block, dict) else None
    if kind == "section":
        if set(block) - {"type", "text", "accessory"}:
            p.append("section has undocumented fields %s" % sorted(block))
        t = block.get("text")
        if not (isinstance(t, dict) and t.get("type") == "mrkdwn" and _text_ok(t.get("text"), 3000)):
            p.append("section text is not mrkdwn of 1..3000: %r" % (t,))
        elif ESCAPED.search(t["text"]):
            p.append("mrkdwn with & < > not escaped: %r" % t["text"])
        acc = block.get("accessory")
        if acc is not None:
            if isinstance(acc, dict) and acc.get("type") == "image":
                p.extend(image_problems(acc, "image accessory"))
            else:
                p.extend(button_problems(acc, action_ids))
    elif kind == "actions":
        els = block.get("elements")
        if set(block) != {"type", "elements"} or not (isinstance(els, list) and 1 <= len(els) <= 25):
            p.append("actions block needs 1..25 elements: %r" % block)
        for b in els if isinstance(els, list) else []:
            p.extend(button_problems(b, action_ids))
    elif kind == "image":
        p.extend(image_problems(block, "image block"))
    else:
        p.append("block of an unexpected type: %r" % (block,))
    return p


def request_problems(path, headers, raw):
    p = []
    if path != "/chat.postMessage":
        p.append("POST to %s, not /chat.postMessage" % path)
    if headers.get("Authorization") != "Bearer " + TOKEN:
        p.append("Authorization is %r" % headers.get("Authorization"))
    if headers.get("Content-Type") != "application/json; charset=utf-8":
        p.append("Content-Type is %r" % headers.get("Content-Type"))
    try:
        body = json.loads(raw.decode("utf-8"))
    except ValueError:
        return p + ["the body is not JSON"], None
    if set(body) != {"channel", "text", "blocks"}:
        p.append("body fields are %s" % sorted(body))
    if not (isinstance(body.get("channel"), str) and re.match(r"^[DU][0-9A-Z]+$", body["channel"])):
        p.append("channel is %r" % body.get("channel"))
    if not _text_ok(body.get("text"), 4000):
        p.append("text (the notification) empty or over 4000")
    elif ESCAPED.search(body["text"]):
        p.append("text with & < > not escaped: %r" % body["text"])
    blocks = body.get("blocks")
    if not (isinstance(blocks, list) and 1 <= len(blocks) <= 50):
        p.append("blocks must be 1..50")
    action_ids = set()
    for b in blocks if isinstance(blocks, list) else []:
        p.extend(block_problems(b, action_ids))
    return p, body


class FakeSlack(FakePlatform):
    """Slack's Web API on 127.0.0.1: checks and records every call. Records
    are {"user", "channel", "message", "status", "ok", "at"}; fail_first
    lists a user's answers to give first: "500", "429", or an error name
    for ok: false."""

    content_type = "application/json; charset=utf-8"

    def on_post(self, h, raw):
        problems, body = request_problems(urllib.parse.urlsplit(h.path).path, h.headers, raw)
        status, headers, answer = self._decide(body, problems)
        self.answer(h, status, answer, headers.items())

    def _decide(self, body, problems):
        channel = (body or {}).get("channel") or ""
        user = "U" + channel[1:] if channel[:1] in ("D", "U") else channel
        with self.lock:
            self.count += 1
            step = self.failure(user)
            if problems:
                self.problems.extend(problems)
                status, headers, answer = 200, {}, {"ok": False, "error": "invalid_blocks"}
            elif step == "500":
                status, headers, answer = 500, {}, {"ok": False, "error": "internal_error"}
            elif step == "429":
                status, headers, answer = 429, {"Retry-After": "1"}, {"ok": False, "error": "ratelimited"}
            elif step:
                status, headers, answer = 200, {}, {"ok": False, "error": step}
            else:
                status, headers, answer = 200, {}, {"ok": True, "channel": channel, "ts": "%d.%06d" % (time.time(), self.count)}
            self.requests.append({"user": user, "channel": channel, "message": body, "status": status,
                                  "ok": answer["ok"], "at": time.monotonic()})
        return status, headers, answer

    def took(self, r):
        """Slack took it: ok: true."""
        return r["ok"]


# --- what a message shows ---------------------------------------------------------------


def unescape(s):
    return s.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def said(m):
    """The sections' text of a message, unescaped."""
    return "\n".join(unescape(b["text"]["text"]) for b in m["blocks"] if b["type"] == "section")


def buttons(m):
    """Every button of a message: in actions blocks and as accessories."""
    out = []
    for b in m["blocks"]:
        if b["type"] == "actions":
            out.extend(b["elements"])
        elif b["type"] == "section" and (b.get("accessory") or {}).get("type") == "button":
            out.append(b["accessory"])
    return out


def values(m):
    return [b["value"] for b in buttons(m) if "value" in b]


def button(m, value):
    return next(b for b in buttons(m) if b.get("value") == value)


def url_button(m):
    return next((b for b in buttons(m) if "url" in b), None)


def card_sections(m):
    return [b for b in m["blocks"] if b["type"] == "section" and (b.get("accessory") or {}).get("type") == "image"]


# --- requests as Slack sends them -------------------------------------------------------------


def signed_headers(body, secret=SECRET, ts=None, content_type="application/json"):
    ts = str(int(time.time()) if ts is None else ts)
    sig = "v0=" + hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"Content-Type": content_type, "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig}


def callback(event, event_id=None):
    return json.dumps({"token": "legacy", "team_id": TEAM, "api_app_id": APP, "event": event,
                       "type": "event_callback", "event_id": event_id or "Ev" + uuid.uuid4().hex[:10].upper(),
                       "event_time": int(time.time()),
                       "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}]}).encode()


def dm_event(user, dm, text, **extra):
    ev = {"client_msg_id": str(uuid.uuid4()), "type": "message", "text": text, "user": user,
          "ts": "%.6f" % time.time(), "team": TEAM, "channel": dm, "event_ts": "%.6f" % time.time(),
          "channel_type": "im"}
    ev.update(extra)
    return ev


def tap_form(user, dm, b):
    """The interactivity form Slack posts when user taps button b."""
    payload = {"type": "block_actions", "user": {"id": user, "username": "shopper", "team_id": TEAM},
               "api_app_id": APP, "token": "legacy", "team": {"id": TEAM, "domain": "shop"},
               "container": {"type": "message", "message_ts": "1.2", "channel_id": dm, "is_ephemeral": False},
               "trigger_id": "1.2.3", "channel": {"id": dm, "name": "directmessage"},
               "response_url": "https://hooks.slack.com/actions/T/1/x",
               "actions": [dict({"action_id": b["action_id"], "block_id": "blk", "text": b["text"],
                                 "type": "button", "action_ts": "%.6f" % time.time()},
                                **({"value": b["value"]} if "value" in b else {"url": b["url"]}))]}
    return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()


def post(server, body, headers):
    return server.request("POST", HOOK, body=body, headers=headers)


def send(server, body, content_type="application/json", extra=None):
    """POSTs body signed now (parley's now: a server whose test clock was
    moved on is that much ahead)."""
    headers = signed_headers(body, ts=int(time.time()) + getattr(server, "clock_offset", 0), content_type=content_type)
    headers.update(extra or {})
    r = post(server, body, headers)
    check.assertEqual(r.status, 200, r)
    return r


def text(server, user, dm, words):
    return send(server, callback(dm_event(user, dm, words)))


def tap(server, user, dm, b):
    return send(server, tap_form(user, dm, b), "application/x-www-form-urlencoded")


turns = functools.partial(channel_turns, channel="slack")


# --- the cases ---------------------------------------------------------------------------------


def main(tap_):
    fake = FakeSlack()
    env = {
        "BARISTA_SLACK_SIGNING_SECRET": SECRET,
        "BARISTA_SLACK_BOT_TOKEN": TOKEN,
        "PARLEY_SLACK_API_BASE": fake.base,
        "PARLEY_OUTBOX_RETRY_MS": "50",
        "PARLEY_OUTBOX_MAX_ATTEMPTS": "3",
        "PARLEY_AGENT_TOKEN": AGENT_TOKEN,
        "BARISTA_AGENT_TOKEN": None,
        # checkout through the built-in test provider, whose page parley serves itself
        "BARISTA_STRIPE_SECRET_KEY": None,
        "PARLEY_PUBLIC_URL": None,
    }
    server = tap_.watch(Server(env=env, name="parley").start())

    def no_problems():
        check.assertEqual(fake.take_problems(), [], "calls that do not follow Slack's documentation")

    def whole_order(run):
        user, dm = new_shopper()
        text(server, user, dm, "hi")
        sent = wait_sent(fake, user, 0, lambda m: "latte" in values(m), "the drinks as buttons")
        check.assertGreaterEqual(len(sent), 2, "a greeting, then the question")
        check.assertEqual({m["channel"] for m in sent}, {dm}, "replies go to the DM the shopper wrote from")
        n = len(fake.delivered(user))
        tap(server, user, dm, button(sent[-1], "latte"))
        sent = wait_sent(fake, user, n, lambda m: "large" in values(m), "the sizes")
        check.assertIn("Latte", said(sent[-1]))
        n = len(fake.delivered(user))
        tap(server, user, dm, button(sent[-1], "large"))
        sent = wait_sent(fake, user, n, lambda m: card_sections(m), "the pairing cards")
        m = sent[-1]
        check.assertIn("would go nicely with that", "\n".join(said(x) for x in sent))
        check.assertIn("no", values(m), "the choices ride under the cards")
        card = card_sections(m)[0]
        check.assertRegex(card["text"]["text"], r"^\*[^*]+\*\n€\d+\.\d\d")
        card_button = m["blocks"][m["blocks"].index(card) + 1]["elements"][0]
        sku = card_button["value"]
        check.assertIn(sku, PRICES)
        n = len(fake.delivered(user))
        tap(server, user, dm, card_button)
        sent = wait_sent(fake, user, n, lambda m: "done" in values(m), "anything else?")
        total = euros(470 + PRICES[sku])
        check.assertIn("That's 2 item(s) so far, %s" % total, said(sent[-1]))
        n = len(fake.delivered(user))
        tap(server, user, dm, button(sent[-1], "done"))
        sent = wait_sent(fake, user, n, lambda m: "pay" in values(m), "the summary and how to pay")
        everything = "\n".join(said(x) for x in sent)
        check.assertIn("1 × Latte (Large) — €4.70", everything)
        check.assertIn("Total: %s" % total, everything)
        check.assertIsNone(url_button(sent[-1]), "no link before the shopper asks to pay")
        n = len(fake.delivered(user))
        tap(server, user, dm, button(sent[-1], "pay"))
        sent = wait_sent(fake, user, n, lambda m: url_button(m), "the payment link")
        pay = sent[-1]
        link = url_button(pay)
        check.assertEqual(link["text"]["text"], "Pay %s" % total)
        check.assertRegex(said(pay), r"Order #\d+: %s" % re.escape(total))
        check.assertNotIn(link["url"], said(pay), "the URL is the button's, not in the text")
        page = PayLink(link["url"])
        check.assertEqual(page.netloc, "127.0.0.1:%d" % server.port)
        # opening the page reports a tap of the URL button too: no turn for it
        before = turns(server, user)
        tap(server, user, dm, link)
        check.assertEqual(page.get(server).status, 200)
        page.pay(server)
        sent = wait_sent(fake, user, len(fake.delivered(user)), lambda m: THANKS.search(said(m)),
                         "the thanks for the payment")
        check.assertEqual(turns(server, user), before + 1, "the payment's turn, none for the URL button")
        # what the flow saw of the channel (msg.channel)
        row = db_query(server.db, "SELECT body FROM transcript WHERE user = ? AND direction = 'in' ORDER BY id LIMIT 1",
                       user)
        check.assertEqual(json.loads(row[0][0]).get("info"),
                          {"platform": "slack", "team_id": TEAM, "channel_id": dm, "user_id": user})
        no_problems()

    def url_verification(run):
        body = json.dumps({"token": "legacy", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P%d" % run,
                           "type": "url_verification"}).encode()
        r = post(server, body, signed_headers(body))
        check.assertEqual(r.status, 200, r)
        check.assertEqual(r.body, b"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P%d" % run)
        r = post(server, body, signed_headers(body, secret="guess"))
        check.assertEqual(r.status, 403, r)
        check.assertNotIn(b"3eZbrw1a", r.body)

    def bad_signature(run):
        user, dm = new_shopper()
        body = callback(dm_event(user, dm, "hi"))
        now = int(time.time())
        wrong = [
            ({}, 401),                                                       # no headers
            (signed_headers(body, secret="not-the-secret"), 403),
            (signed_headers(body + b" "), 403),                               # signed another body
            (dict(signed_headers(body), **{"X-Slack-Signature": "v0="}), 403),
            (signed_headers(body, ts=now - 360), 401),                        # a replay, 6 minutes old
            (dict(signed_headers(body), **{"X-Slack-Request-Timestamp": str(now + 1)}), 403),
        ]
        mark = server.mark()
        for headers, status in wrong:
            headers.setdefault("Content-Type", "application/json")
            r = post(server, body, headers)
            check.assertEqual(r.status, status, r)
        refused = r"slack webhook refused \((401|403)\)"
        wait_until(lambda: len(server.find_log(refused, mark)) >= len(wrong), what="the refusals logged")
        # a shopper whose request is good is answered meanwhile ...
        other, other_dm = new_shopper()
        text(server, other, other_dm, "hi")
        wait_sent(fake, other, 0, lambda m: "latte" in values(m), "the other shopper's answer")
        # ... and nothing of the refused one was stored, run or sent
        check.assertEqual(stored_for(server, user), {"inbox": 0, "sessions": 0, "transcript": 0, "outbox": 0})
        check.assertEqual(fake.attempts(user), [])

    def malformed(run):
        user, dm = new_shopper()
        mark = server.mark()
        bodies = [
            (b"{\"type\":", "application/json", "not JSON"),
            (json.dumps({"type": "event_callback", "event": dm_event(user, dm, "hi")}).encode(), "application/json",
             "event_id is missing"),
            (callback(dict(dm_event(user, dm, "hi"), user=7)), "application/json", "event.user must be"),
            (b"text=hi&command=%2Fcoffee", "application/x-www-form-urlencoded", "no payload"),
            (b"payload=%7B%22type", "application/x-www-form-urlencoded", "not a JSON object"),
            (urllib.parse.urlencode({"payload": json.dumps({"type": "block_actions", "user": {"id": user},
                                                            "actions": {}})}).encode(),
             "application/x-www-form-urlencoded", "actions must be an array"),
        ]
        for body, content_type, why in bodies:
            r = post(server, body, signed_headers(body, content_type=content_type))
            check.assertEqual(r.status, 400, r)
            check.assertIn(why, r.json["error"], r.json)
        refused = r"slack webhook refused \(400\)"
        wait_until(lambda: len(server.find_log(refused, mark)) >= len(bodies), what="the refusals logged")
        check.assertEqual(stored_for(server, user), {"inbox": 0, "sessions": 0, "transcript": 0, "outbox": 0})

    def redelivery(run):
        user, dm = new_shopper()
        event_id = "Ev" + uuid.uuid4().hex[:10].upper()
        body = callback(dm_event(user, dm, "hi"), event_id)
        first = post(server, body, signed_headers(body))
        # Slack retries with the same event, newly signed, saying which retry it is
        again = post(server, body, dict(signed_headers(body), **{"X-Slack-Retry-Num": "1",
                                                                 "X-Slack-Retry-Reason": "http_timeout"}))
        check.assertEqual((first.status, again.status), (200, 200))
        sent = wait_sent(fake, user, 0, lambda m: "latte" in values(m), "the answer to hi")
        check.assertEqual(post(server, body, dict(signed_headers(body), **{"X-Slack-Retry-Num": "2"})).status, 200)
        # a tap delivered twice is one turn too
        form = tap_form(user, dm, button(sent[-1], "latte"))
        tap_id = "%s:%s" % (json.loads(urllib.parse.parse_qs(form.decode())["payload"][0])["actions"][0]["action_ts"], user)
        n = len(fake.delivered(user))
        check.assertEqual(post(server, form, signed_headers(form, content_type="application/x-www-form-urlencoded")).status, 200)
        check.assertEqual(post(server, form, signed_headers(form, content_type="application/x-www-form-urlencoded")).status, 200)
        wait_sent(fake, user, n, lambda m: "large" in values(m), "the sizes")
        # a later message is a barrier: a second turn for a replay would come before it
        n = len(fake.delivered(user))
        text(server, user, dm, "what is there?")
        wait_until(lambda: turns(server, user) >= 3, what="the third turn")
        wait_until(lambda: db_query(server.db, "SELECT count(*) FROM outbox WHERE user = ? AND state = 'pending'",
                                    user)[0][0] == 0, what="the replies sent")
        check.assertEqual(turns(server, user), 3)
        check.assertEqual(db_query(server.db, "SELECT count(*) FROM inbox WHERE platform_id = ?", event_id)[0][0], 1)
        check.assertEqual(db_query(server.db, "SELECT count(*) FROM inbox WHERE platform_id = ?", tap_id)[0][0], 1)
        check.assertEqual(len([m for m in fake.delivered(user) if "latte" in values(m)]), 1, "the drinks offered once")
        no_problems()

    def ignored(run):
        user, dm = new_shopper()
        text(server, user, dm, "hi")
        wait_sent(fake, user, 0, lambda m: "latte" in values(m), "the answer to hi")
        events = [
            dm_event(BOT_USER, dm, "Which drink?", bot_id="B0BARISTA", app_id=APP),      # the app's own reply
            dm_event(user, dm, "", subtype="bot_message", bot_id="B0OTHER"),              # another bot
            {"type": "message", "subtype": "message_changed", "hidden": True, "channel": dm, "channel_type": "im",
             "message": {"type": "message", "user": user, "text": "a mocha"}, "ts": "1.2"},
            {"type": "message", "subtype": "message_deleted", "hidden": True, "channel": dm, "channel_type": "im",
             "deleted_ts": "1.2", "ts": "1.3"},
            dm_event(user, "C0GENERAL", "hi all", channel_type="channel"),
            {"type": "app_home_opened", "user": user, "channel": dm, "tab": "messages", "event_ts": "1.4"},
        ]
        ids = []
        for ev in events:
            body = callback(ev)
            ids.append(json.loads(body)["event_id"])
            send(server, body)
        for event_id in ids:
            check.assertEqual(db_query(server.db, "SELECT count(*) FROM inbox WHERE platform_id = ?", event_id)[0][0], 0)
        check.assertEqual(turns(server, user), 1)

    def flaky(run):
        user, dm = new_shopper()
        fake.fail_first[user] = ["500"]
        mark = server.mark()
        text(server, user, dm, "hi")
        wait_sent(fake, user, 0, lambda m: "latte" in values(m), "the answer after a 500")
        attempts = fake.attempts(user)
        check.assertEqual([a["status"] for a in attempts], [500] + [200] * (len(attempts) - 1))
        check.assertEqual(attempts[0]["message"], attempts[1]["message"], "the failed message is sent again first")
        delivered = fake.delivered(user)
        check.assertEqual(len(delivered), len({json.dumps(m, sort_keys=True) for m in delivered}), "each once")
        server.wait_log(r"slack/%s: sending message \d+ failed \(HTTP 500.*retry 1 in" % user, mark)
        no_problems()

    def rate_limited(run):
        user, dm = new_shopper()
        fake.fail_first[user] = ["429"]
        mark = server.mark()
        text(server, user, dm, "hi")
        wait_sent(fake, user, 0, lambda m: "latte" in values(m), "the answer after a 429")
        attempts = fake.attempts(user)
        check.assertEqual([a["status"] for a in attempts], [429] + [200] * (len(attempts) - 1))
        check.assertEqual(attempts[0]["message"], attempts[1]["message"], "the limited message is sent again first")
        check.assertGreaterEqual(attempts[1]["at"] - attempts[0]["at"], 0.9, "Retry-After: 1 was honoured")
        check.assertEqual(len(fake.delivered(user)), len(attempts) - 1, "each message once, in order")
        server.wait_log(r"slack/%s: sending message \d+ failed \(HTTP 429.*retry 1 in 1000 ms" % user, mark)
        no_problems()

    def refused(run):
        # ok: false of a passing kind is retried; one that would fail again is a dead letter
        user, dm = new_shopper()
        fake.fail_first[user] = ["internal_error"]
        mark = server.mark()
        text(server, user, dm, "hi")
        wait_sent(fake, user, 0, lambda m: "latte" in values(m), "the answer after ok: false")
        check.assertEqual([a["ok"] for a in fake.attempts(user)][:2], [False, True])
        server.wait_log(r"slack/%s: sending message \d+ failed \(HTTP 200, refused: internal_error\); retry 1" % user, mark)
        other, other_dm = new_shopper()
        fake.fail_first[other] = ["channel_not_found"]
        text(server, other, other_dm, "hi")
        server.wait_log(r"slack/%s: outgoing message \d+ is a dead letter after 1 attempt: HTTP 200, refused: "
                        r"channel_not_found" % other, mark)
        wait_sent(fake, other, 0, lambda m: "latte" in values(m), "the next message still sent")
        wait_until(lambda: db_query(server.db, "SELECT count(*) FROM outbox WHERE user = ? AND state = 'dead'",
                                    other)[0][0] == 1, what="the dead letter recorded")
        no_problems()

    def handoff(run):
        auth = {"Authorization": "Bearer " + AGENT_TOKEN}
        user, dm = new_shopper()

        def act(action, body):
            r = server.request("POST", "/v1/agent/conversations/barista/slack/%s/%s" % (user, action), body,
                               headers=auth)
            check.assertEqual(r.status, 200, r)

        def said_since(n, pattern, what):
            return wait_sent(fake, user, n, lambda m: re.search(pattern, said(m)), what)

        text(server, user, dm, "hi")
        wait_sent(fake, user, 0, lambda m: "latte" in values(m), "the answer to hi")
        n = len(fake.delivered(user))
        text(server, user, dm, "can I talk to a person?")
        said_since(n, r"getting one of our team", "the handoff")
        n = len(fake.delivered(user))
        act("claim", {"agent": "Mia"})
        said_since(n, r"^Mia from our team is here to help\.$", "the claim")
        n = len(fake.delivered(user))
        act("reply", {"agent": "Mia", "text": "Hi! Your oat latte & croissant are on the counter <3"})
        sent = said_since(n, r"^Hi! Your oat latte & croissant are on the counter <3$", "the agent's reply")
        check.assertEqual(sent[-1]["channel"], dm, "an agent's words go to the DM the shopper last wrote in")
        check.assertEqual(sent[-1]["text"], "Hi! Your oat latte &amp; croissant are on the counter &lt;3")
        # while Mia has it the bot keeps quiet
        n = len(fake.delivered(user))
        text(server, user, dm, "thanks! one more thing")
        wait_until(lambda: turns(server, user) >= 3, what="the shopper's message taken")
        wait_until(lambda: db_query(server.db, "SELECT count(*) FROM outbox WHERE user = ? AND state = 'pending'",
                                    user)[0][0] == 0, what="nothing left to send")
        check.assertEqual(len(fake.delivered(user)), n, "the bot said nothing while a person has the chat")
        act("handback", {"agent": "Mia", "flow": "drink", "step": "choose"})
        said_since(n, r"(?i)drink|mood", "the bot back")
        no_problems()

    clocked = Later(tap_, dict(env, PARLEY_TEST_CLOCK="1"), "parley (slack, test clock)", clock_offset=0)

    def reminder(run):
        # a proactive message: the abandoned-cart job fires an hour later and
        # its reminder reaches the shopper's DM with no message of theirs
        s = clocked()
        user, dm = new_shopper()
        text(s, user, dm, "hi")
        wait_sent(fake, user, 0, lambda m: "latte" in values(m), "the drinks")
        n = len(fake.delivered(user))
        text(s, user, dm, "a small latte")
        sent = wait_sent(fake, user, n, lambda m: "no" in values(m), "a pastry offered")
        n = len(fake.delivered(user))
        tap(s, user, dm, button(sent[-1], "no"))
        wait_sent(fake, user, n, lambda m: "That's 1 item(s) so far" in said(m), "anything else?")
        n = len(fake.delivered(user))
        advance(s, 61 * 60)
        s.clock_offset += 61 * 60
        sent = wait_sent(fake, user, n, lambda m: REMINDER in said(m), "the reminder")
        check.assertEqual(len(sent), 1, "the reminder, and nothing else")
        check.assertEqual(sent[-1]["channel"], dm, "the reminder goes to the DM the shopper last wrote in")
        no_problems()

    bare = Later(tap_, dict(env, BARISTA_SLACK_SIGNING_SECRET=None, BARISTA_SLACK_BOT_TOKEN=None),
                 "parley (no slack secrets)")

    def without_secrets(run):
        s = bare()
        user, dm = new_shopper()
        body = callback(dm_event(user, dm, "hi"))
        r = post(s, body, signed_headers(body))
        check.assertEqual(r.status, 503, r)
        check.assertIn(b"BARISTA_SLACK_SIGNING_SECRET", r.body)
        check.assertEqual(stored_for(s, user), {"inbox": 0, "sessions": 0, "transcript": 0, "outbox": 0})

    try:
        tap_.case("the whole order over Slack, paid through the test provider's page", whole_order)
        tap_.case("url_verification: the challenge answered, a wrong signature refused", url_verification)
        tap_.case("wrong signatures and stale timestamps: 401/403, nothing stored or sent", bad_signature)
        tap_.case("malformed bodies and forms: 400 with the reason, nothing stored", malformed)
        tap_.case("redeliveries (X-Slack-Retry-Num) and a tap sent twice: one turn each", redelivery)
        tap_.case("messages from bots and the app, edits, deletions, channels: no turn", ignored)
        tap_.case("chat.postMessage answers 500 then 200: sent once, in order", flaky)
        tap_.case("chat.postMessage answers 429 with Retry-After: the wait honoured, sent once, in order",
                  rate_limited)
        tap_.case("ok: false answers: internal_error retried, channel_not_found a dead letter", refused)
        tap_.case("handoff: the agent's claim and reply reach the shopper over Slack", handoff)
        tap_.case("a proactive message: the abandoned-cart reminder reaches the DM an hour later", reminder)
        tap_.case("without its secrets the channel answers 503", without_secrets)
    finally:
        fake.stop()


if __name__ == "__main__":
    run_suite("channel: slack", main)
