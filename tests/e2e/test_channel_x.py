#!/usr/bin/env python3
"""test_channel_x: the X direct-message channel end to end.

Starts `parley serve` on the default bot with the X credentials in its
environment and PARLEY_X_API_BASE pointing at a fake X API that this file
runs on a free loopback port. The fake checks every request against X's
documentation — POST /1.1/direct_messages/events/new.json, an OAuth 1.0a
Authorization header whose HMAC-SHA1 signature it recomputes (and whose
nonce it has not seen before), the message_create event with its text,
quick-reply options and URL buttons within their limits — records it, and
answers 200, or 500 / 429 when a case tells it to. Webhooks are signed with
x-twitter-webhooks-signature the way X signs them.

Cases: the Challenge-Response Check; the whole barista conversation over X
(options, cards as lines and options, read receipts, the account's own
messages ignored); checkout with the payment link as a URL button, paid on
the test provider's page, and the payment's thanks pushed as a DM; wrong
signatures and malformed bodies (4xx, nothing stored); a redelivery (one
turn); 500 then 200, 429 with Retry-After and 429 with x-rate-limit-reset
(sent once, in order, after the wait asked for); a handoff whose agent's
reply reaches the shopper."""

import base64
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
from commerce_helpers import PayLink  # noqa: E402
from channel_helpers import (PRICES, FakePlatform, euros, post_signed, stored_for,  # noqa: E402
                             turns as channel_turns, units, wait_sent)

BOT = "barista"
HOOK = "/v1/bots/%s/channels/x" % BOT
DM_PATH = "/1.1/direct_messages/events/new.json"
ACCOUNT = "3805104374"
CONSUMER_KEY = "ck-" + uuid.uuid4().hex[:12]
CONSUMER_SECRET = "cs/" + uuid.uuid4().hex
ACCESS_TOKEN = ACCOUNT + "-" + uuid.uuid4().hex[:20]
TOKEN_SECRET = "ts+" + uuid.uuid4().hex
AGENT_TOKEN = "x-agent-" + uuid.uuid4().hex[:8]

def new_user():
    """An X user id (digits) no earlier run has used."""
    return "7%011d" % (uuid.uuid4().int % 10 ** 11)


def enc(s):
    """Percent-encoding as OAuth 1.0a (RFC 3986) wants it."""
    return urllib.parse.quote(s, safe="-._~")


# --- the fake X API ---------------------------------------------------------------------


def oauth_problems(url, auth, nonces):
    """What is wrong with the Authorization header of a POST to url."""
    if not (auth or "").startswith("OAuth "):
        return ["no OAuth Authorization header: %r" % auth]
    pairs = re.findall(r'([a-z_]+)="([^"]*)"', auth[6:])
    got = {k: urllib.parse.unquote(v) for k, v in pairs}
    want = {"oauth_consumer_key", "oauth_nonce", "oauth_signature", "oauth_signature_method",
            "oauth_timestamp", "oauth_token", "oauth_version"}
    if set(got) != want or len(pairs) != len(want):
        return ["OAuth parameters are %s" % sorted(k for k, _ in pairs)]
    p = []
    if got["oauth_consumer_key"] != CONSUMER_KEY or got["oauth_token"] != ACCESS_TOKEN:
        p.append("wrong consumer key or token")
    if (got["oauth_signature_method"], got["oauth_version"]) != ("HMAC-SHA1", "1.0"):
        p.append("method/version %r" % ((got["oauth_signature_method"], got["oauth_version"]),))
    if not got["oauth_timestamp"].isdigit() or abs(int(got["oauth_timestamp"]) - time.time()) > 300:
        p.append("oauth_timestamp %r is not now" % got["oauth_timestamp"])
    if not re.match(r"^[A-Za-z0-9]{16,}$", got["oauth_nonce"]) or got["oauth_nonce"] in nonces:
        p.append("oauth_nonce %r is not a fresh random word" % got["oauth_nonce"])
    nonces.add(got["oauth_nonce"])
    signed = dict(got)
    signature = signed.pop("oauth_signature")
    params = "&".join("%s=%s" % kv for kv in sorted((enc(k), enc(v)) for k, v in signed.items()))
    text = "POST&%s&%s" % (enc(url), enc(params))
    key = "%s&%s" % (enc(CONSUMER_SECRET), enc(TOKEN_SECRET))
    expected = base64.b64encode(hmac.new(key.encode(), text.encode(), hashlib.sha1).digest()).decode()
    if signature != expected:
        p.append("oauth_signature %r is not the HMAC-SHA1 of the request (%r)" % (signature, expected))
    return p


def message_data_problems(md):
    p = []
    if not isinstance(md, dict):
        return ["message_data is not an object"]
    extra = set(md) - {"text", "quick_reply", "ctas", "attachment"}
    if extra:
        p.append("message_data has undocumented fields %s" % sorted(extra))
    text = md.get("text")
    if not (isinstance(text, str) and 0 < units(text) <= 10000 and text.strip()):
        p.append("text missing, blank or over 10,000 characters: %r" % (text if not isinstance(text, str) else text[:80]))
    if "quick_reply" in md:
        qr = md["quick_reply"]
        options = qr.get("options") if isinstance(qr, dict) else None
        if not isinstance(qr, dict) or qr.get("type") != "options" or set(qr) != {"type", "options"}:
            p.append("quick_reply is not an options quick reply: %r" % qr)
        if not (isinstance(options, list) and 1 <= len(options) <= 20):
            p.append("options must be 1..20")
        described = set()
        for o in options if isinstance(options, list) else []:
            if not isinstance(o, dict) or set(o) - {"label", "description", "metadata"}:
                p.append("option has undocumented fields: %r" % o)
                continue
            described.add("description" in o)
            label = o.get("label")
            if not (isinstance(label, str) and 0 < units(label) <= 36 and label.strip()):
                p.append("option label missing or over 36: %r" % label)
            elif re.search(r"https?://|www\.", label):
                p.append("option label has a URL: %r" % label)
            if "description" in o and not (isinstance(o["description"], str) and units(o["description"]) <= 72):
                p.append("option description over 72")
            if "metadata" in o and not (isinstance(o["metadata"], str) and 0 < units(o["metadata"]) <= 1000):
                p.append("option metadata empty or over 1,000")
        if len(described) > 1:
            p.append("a description on some options but not all")
    if "ctas" in md:
        ctas = md["ctas"]
        if not (isinstance(ctas, list) and 1 <= len(ctas) <= 3):
            p.append("ctas must be 1..3")
        for c in ctas if isinstance(ctas, list) else []:
            if not isinstance(c, dict) or set(c) != {"type", "label", "url"} or c.get("type") != "web_url":
                p.append("cta is not a web_url button: %r" % c)
                continue
            if not (isinstance(c["label"], str) and 0 < units(c["label"]) <= 36):
                p.append("cta label missing or over 36: %r" % c["label"])
            u = urllib.parse.urlsplit(c["url"]) if isinstance(c["url"], str) else None
            if not (u and u.scheme in ("http", "https") and u.netloc):
                p.append("cta url is not a web address: %r" % c["url"])
    return p


def request_problems(path, query, content_type, raw):
    p = []
    if path != DM_PATH or query:
        p.append("POST to %s?%s, not %s" % (path, query, DM_PATH))
    if not (content_type or "").startswith("application/json"):
        p.append("Content-Type is %r" % content_type)
    try:
        body = json.loads(raw.decode("utf-8"))
    except ValueError:
        return p + ["the body is not JSON"], None
    event = body.get("event") if isinstance(body, dict) else None
    if not isinstance(body, dict) or set(body) != {"event"} or not isinstance(event, dict):
        return p + ["the body is not {\"event\": {...}}: %r" % body], None
    if set(event) != {"type", "message_create"} or event.get("type") != "message_create":
        p.append("event is %r" % sorted(event))
    mc = event.get("message_create")
    if not isinstance(mc, dict) or set(mc) != {"target", "message_data"}:
        return p + ["message_create is %r" % mc], None
    target = mc.get("target")
    if not (isinstance(target, dict) and set(target) == {"recipient_id"}
            and isinstance(target["recipient_id"], str) and target["recipient_id"].isdigit()):
        p.append("target is %r" % target)
    p.extend(message_data_problems(mc.get("message_data")))
    return p, body


class FakeX(FakePlatform):
    """The X API on 127.0.0.1: checks and records every request. Records
    are {"user", "data", "status", "at"}; besides fail_first, limit_first
    maps a user to ("retry-after" | "reset", seconds): one 429 first."""

    message_key = "data"

    def __init__(self):
        super().__init__()
        self.nonces = set()
        self.limit_first = {}

    def on_post(self, h, raw):
        url = urllib.parse.urlsplit(h.path)
        problems, body = request_problems(url.path, url.query, h.headers.get("Content-Type"), raw)
        with self.lock:
            problems += oauth_problems("http://127.0.0.1:%d%s" % (self.port, url.path),
                                       h.headers.get("Authorization"), self.nonces)
        self.answer(h, *self._decide(body, problems))

    def _decide(self, body, problems):
        mc = ((body or {}).get("event") or {}).get("message_create") or {}
        user = (mc.get("target") or {}).get("recipient_id")
        headers = []
        with self.lock:
            self.count += 1
            limit = self.limit_first.pop(user, None) if not problems else None
            if problems:
                self.problems.extend(problems)
                status = 400
            elif limit:
                status = 429
                kind, seconds = limit
                if kind == "retry-after":
                    headers.append(("Retry-After", str(seconds)))
                headers.append(("x-rate-limit-reset", str(int(time.time()) + seconds)))
                headers.append(("x-rate-limit-remaining", "0"))
            else:
                status = self.failure(user) or 200
            self.requests.append({"user": user, "data": mc.get("message_data"), "status": status,
                                  "at": time.monotonic()})
            n = self.count
        if status == 200:
            return 200, {"event": {"type": "message_create", "id": "1%017d" % n,
                                   "created_timestamp": str(int(time.time() * 1000)), "message_create": mc}}
        if status == 429:
            return 429, {"errors": [{"code": 88, "message": "Rate limit exceeded"}]}, headers
        if status == 400:
            return 400, {"errors": [{"code": 214, "message": "event.message_create is invalid."}]}
        return 500, {"errors": [{"code": 131, "message": "Internal error"}]}


# --- webhooks -------------------------------------------------------------------------------


def new_id():
    return str(uuid.uuid4().int % 10 ** 18)


def dm_event(user, text, metadata=None, eid=None, sender=None):
    data = {"text": text, "entities": {"hashtags": [], "symbols": [], "urls": [], "user_mentions": []}}
    if metadata is not None:
        data["quick_reply_response"] = {"type": "options", "metadata": metadata}
    sender = sender or user
    return {"type": "message_create", "id": eid or new_id(), "created_timestamp": str(int(time.time() * 1000)),
            "message_create": {"target": {"recipient_id": ACCOUNT if sender == user else user},
                               "sender_id": sender, "source_app_id": "268278", "message_data": data}}


def activity(user, events, kind="direct_message_events"):
    """The webhook body as X sends it (non-ASCII escaped as \\uXXXX)."""
    users = {user: {"id": user, "created_timestamp": "1422556069340", "name": "Ada Lovelace",
                    "screen_name": "ada_" + user[-4:], "protected": False, "verified": False,
                    "followers_count": 1, "friends_count": 2, "statuses_count": 3},
             ACCOUNT: {"id": ACCOUNT, "name": "Barista", "screen_name": "barista"}}
    return json.dumps({"for_user_id": ACCOUNT, kind: events, "users": users}).encode()


def signature(body, secret=CONSUMER_SECRET):
    return "sha256=" + base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def deliver(server, body, sig=True):
    """POSTs a webhook body; sig True signs it, a string is sent as the header, None sends none."""
    return post_signed(server, HOOK, body, "x-twitter-webhooks-signature", signature, sig)


def send(server, user, text, metadata=None, eid=None):
    r = deliver(server, activity(user, [dm_event(user, text, metadata, eid)]))
    check.assertEqual(r.status, 200, r)
    return r


# --- looking at the store and at what was sent -------------------------------------------------


turns = functools.partial(channel_turns, channel="x")


def options(m):
    return ((m or {}).get("quick_reply") or {}).get("options") or []


def metadata(m):
    return [o["metadata"] for o in options(m)]


def option(m, meta):
    return [o for o in options(m) if o["metadata"] == meta][0]


def cta(m):
    ctas = (m or {}).get("ctas") or []
    return ctas[0] if ctas else None


def order_up_to_pay(server, fake, user):
    """hi -> latte -> large -> (no pastry) -> that's all; returns the messages
    of the last turn (the summary and the question how to pay)."""
    send(server, user, "hi")
    sent = wait_sent(fake, user, 0, lambda m: "latte" in metadata(m), "the drinks as options")
    n = len(fake.delivered(user))
    send(server, user, option(sent[-1], "latte")["label"], "latte")
    wait_sent(fake, user, n, lambda m: "large" in metadata(m), "the sizes")
    n = len(fake.delivered(user))
    send(server, user, "Large +€0.90", "large")
    sent = wait_sent(fake, user, n, lambda m: "done" in metadata(m) or "no" in metadata(m), "what next")
    if "done" not in metadata(sent[-1]):  # a pastry offered first: no, thanks
        n = len(fake.delivered(user))
        send(server, user, "No thanks", "no")
        wait_sent(fake, user, n, lambda m: "done" in metadata(m), "anything else?")
    n = len(fake.delivered(user))
    send(server, user, "That's all", "done")
    return wait_sent(fake, user, n, lambda m: "pay" in metadata(m), "how to pay")


# --- the cases ---------------------------------------------------------------------------------


def main(tap):
    fake = FakeX()
    env = {
        "BARISTA_X_CONSUMER_KEY": CONSUMER_KEY,
        "BARISTA_X_CONSUMER_SECRET": CONSUMER_SECRET,
        "BARISTA_X_ACCESS_TOKEN": ACCESS_TOKEN,
        "BARISTA_X_ACCESS_TOKEN_SECRET": TOKEN_SECRET,
        "BARISTA_X_USER_ID": ACCOUNT,
        "PARLEY_X_API_BASE": fake.base,
        "PARLEY_OUTBOX_RETRY_MS": "50",
        "PARLEY_OUTBOX_MAX_ATTEMPTS": "4",
        "PARLEY_AGENT_TOKEN": AGENT_TOKEN,
        "BARISTA_AGENT_TOKEN": None,
        # checkout through the built-in test provider, whose page parley serves itself
        "BARISTA_STRIPE_SECRET_KEY": None,
        "PARLEY_PUBLIC_URL": None,
    }
    server = tap.watch(Server(env=env, name="parley").start())

    def no_problems():
        check.assertEqual(fake.take_problems(), [], "requests that do not follow X's documentation")

    def crc(run):
        token = "crc-%s-%d" % (uuid.uuid4(), run)
        r = server.request("GET", HOOK + "?" + urllib.parse.urlencode({"crc_token": token, "nonce": "x"}))
        check.assertEqual(r.status, 200, r)
        check.assertTrue(r.headers.get("content-type", "").startswith("application/json"), r.headers)
        mac = base64.b64encode(hmac.new(CONSUMER_SECRET.encode(), token.encode(), hashlib.sha256).digest()).decode()
        check.assertEqual(r.json, {"response_token": "sha256=" + mac})
        r = server.request("GET", HOOK)
        check.assertEqual(r.status, 400, r)
        # the check's HMAC is the one that signs deliveries: asked to sign a
        # whole body, it refuses, so no forged delivery can be had from it
        user = new_user()
        body = activity(user, [dm_event(user, "hi")])
        r = server.request("GET", HOOK + "?" + urllib.parse.urlencode({"crc_token": body.decode()}))
        check.assertEqual(r.status, 400, r)
        check.assertNotIn(b"response_token", r.body)
        check.assertEqual(stored_for(server, user), {"inbox": 0, "sessions": 0, "transcript": 0, "outbox": 0})

    def conversation(run):
        user = new_user()
        send(server, user, "hi")
        sent = wait_sent(fake, user, 0, lambda m: "latte" in metadata(m), "the drinks as options")
        check.assertGreaterEqual(len(sent), 2, "a greeting, then the question")
        latte = option(sent[-1], "latte")
        check.assertTrue(latte["label"].startswith("Latte"), latte)
        # tap the latte (X sends the label as the text, the metadata as the response)
        n = len(fake.delivered(user))
        send(server, user, latte["label"], "latte")
        sent = wait_sent(fake, user, n, lambda m: "large" in metadata(m), "the sizes as options")
        check.assertIn("Latte", sent[-1]["text"])
        # large -> added, and a pairing: the cards as lines, the pastries as options
        n = len(fake.delivered(user))
        send(server, user, option(sent[-1], "large")["label"], "large")
        sent = wait_sent(fake, user, n, lambda m: "no" in metadata(m), "the pairing")
        pairing = sent[-1]
        check.assertIn("would go nicely with that", "\n".join(m["text"] for m in sent), sent)
        skus = [meta for meta in metadata(pairing) if meta in PRICES]
        check.assertTrue(skus, "the cards are options too: %r" % options(pairing))
        sku = skus[0]
        check.assertRegex(pairing["text"], r"• [^\n]+ — €\d+\.\d\d", "the cards are lines of text")
        # tap a card's option -> added, anything else?
        n = len(fake.delivered(user))
        send(server, user, option(pairing, sku)["label"], sku)
        sent = wait_sent(fake, user, n, lambda m: "done" in metadata(m), "anything else?")
        total = euros(470 + PRICES[sku])
        check.assertIn("That's 2 item(s) so far, %s" % total, sent[-1]["text"])
        # that's all -> the summary with the total
        n = len(fake.delivered(user))
        send(server, user, "That's all", "done")
        sent = wait_sent(fake, user, n, lambda m: "Total:" in m["text"], "the summary")
        summary = [m["text"] for m in sent if "Total:" in m["text"]][0]
        check.assertIn("1 × Latte (Large) — €4.70", summary)
        check.assertIn("Total: %s" % total, summary)
        check.assertEqual(turns(server, user), 5)
        # what the flow saw of the channel (msg.channel) is in the transcript
        row = db_query(server.db, "SELECT body FROM transcript WHERE user = ? AND direction = 'in' ORDER BY id LIMIT 1", user)
        info = json.loads(row[0][0]).get("info")
        check.assertEqual(info, {"platform": "x", "for_user_id": ACCOUNT, "screen_name": "ada_" + user[-4:],
                                 "display_name": "Ada Lovelace"})
        # a read receipt becomes a status line; the account's own receipt does not
        read = [{"created_timestamp": "1", "sender_id": user, "last_read_event_id": "1000",
                 "target": {"recipient_id": ACCOUNT}},
                {"created_timestamp": "2", "sender_id": ACCOUNT, "last_read_event_id": "999",
                 "target": {"recipient_id": user}}]
        check.assertEqual(deliver(server, activity(user, read, "direct_message_mark_read_events")).status, 200)
        statuses = db_query(server.db, "SELECT body FROM transcript WHERE user = ? AND direction = 'status' ORDER BY id", user)
        check.assertEqual([json.loads(b)["status"] for (b,) in statuses], ["read"])
        # the account's own DM comes back as an event: not a turn; typing is ignored
        own = new_id()
        check.assertEqual(deliver(server, activity(user, [dm_event(user, summary, eid=own, sender=ACCOUNT)])).status, 200)
        typing = [{"created_timestamp": "3", "sender_id": user, "target": {"recipient_id": ACCOUNT}}]
        check.assertEqual(deliver(server, activity(user, typing, "direct_message_indicate_typing_events")).status, 200)
        check.assertEqual(db_query(server.db, "SELECT count(*) FROM inbox WHERE platform_id = ?", own)[0][0], 0)
        check.assertEqual(turns(server, user), 5)
        no_problems()

    def checkout(run):
        user = new_user()
        sent = order_up_to_pay(server, fake, user)
        check.assertIn("Total: €4.70", "\n".join(m["text"] for m in sent))
        check.assertIsNone(cta(sent[-1]), "no link before the shopper asks to pay")
        n = len(fake.delivered(user))
        send(server, user, "Pay now", "pay")
        sent = wait_sent(fake, user, n, lambda m: cta(m) is not None, "the payment link")
        pay = sent[-1]
        button = cta(pay)
        check.assertEqual((button["type"], button["label"]), ("web_url", "Pay €4.70"))
        m = re.search(r"Order #(\d+): €4\.70", pay["text"])
        check.assertTrue(m, "the reply's text rides above the button: %r" % pay["text"])
        url = urllib.parse.urlsplit(button["url"])
        check.assertEqual(url.path, "/v1/bots/barista/payments/test/%s" % m.group(1))
        check.assertEqual((url.scheme, url.netloc), ("http", "127.0.0.1:%d" % server.port))
        check.assertNotIn(button["url"], pay["text"], "the URL is the button's, not in the text")
        check.assertEqual(pay, fake.delivered(user)[-1], "the link's message is the turn's last")
        # pay on the test provider's page: the thanks is pushed as a DM
        n = len(fake.delivered(user))
        link = PayLink(button["url"])
        link.pay(server)
        thanks = wait_sent(fake, user, n, lambda m: "#%d" % link.order_id in m["text"], "the payment's thanks")
        check.assertRegex(thanks[-1]["text"], r"(?i)paid|payment received")
        no_problems()

    def bad_signature(run):
        user = new_user()
        mark = server.mark()
        body = activity(user, [dm_event(user, "hi")])
        wrong = [(signature(body, "not-the-consumer-secret"), 403), (None, 401), ("", 401),
                 (signature(activity(user, [dm_event(user, "something else")])), 403), ("sha256=", 403),
                 (signature(body)[7:], 401), (signature(body).replace("sha256=", "sha1="), 401)]
        for sig, status in wrong:
            r = deliver(server, body, sig=sig)
            check.assertEqual(r.status, status, "%r: %r" % (sig, r))
        refused = r"x webhook refused \((40[13])\): (?:no )?x-twitter-webhooks-signature"
        wait_until(lambda: len(server.find_log(refused, mark)) >= len(wrong), what="the refusals logged")
        check.assertEqual(stored_for(server, user), {"inbox": 0, "sessions": 0, "transcript": 0, "outbox": 0})
        # a good message from someone else goes through; still nothing for the intruder
        other = new_user()
        send(server, other, "hi")
        wait_sent(fake, other, 0, lambda m: "latte" in metadata(m), "the other shopper's answer")
        check.assertEqual(fake.attempts(user), [])
        check.assertEqual(stored_for(server, user), {"inbox": 0, "sessions": 0, "transcript": 0, "outbox": 0})
        no_problems()

    def malformed(run):
        user = new_user()
        mark = server.mark()
        no_id = dict(dm_event(user, "hi"), id="")
        bodies = [b"not json", b"[]", json.dumps({"for_user_id": ACCOUNT, "direct_message_events": {}}).encode(),
                  json.dumps({"for_user_id": ACCOUNT, "direct_message_events": [no_id]}).encode(),
                  json.dumps({"direct_message_events": [dm_event(user, "hi")]}).encode()]
        bad_sender = dm_event(user, "hi")
        bad_sender["message_create"]["sender_id"] = int(user)
        bodies.append(json.dumps({"for_user_id": ACCOUNT, "direct_message_events": [bad_sender]}).encode())
        for body in bodies:
            r = deliver(server, body)
            check.assertEqual(r.status, 400, "%r: %r" % (body[:60], r))
        wait_until(lambda: len(server.find_log(r"x webhook refused \(400\)", mark)) >= len(bodies),
                   what="the refusals logged")
        check.assertEqual(stored_for(server, user), {"inbox": 0, "sessions": 0, "transcript": 0, "outbox": 0})
        check.assertEqual(fake.attempts(user), [])

    def redelivery(run):
        user = new_user()
        eid = new_id()
        body = activity(user, [dm_event(user, "hi", eid=eid)])
        first, again = deliver(server, body), deliver(server, body)  # X retries with the same event
        check.assertEqual((first.status, again.status), (200, 200))
        wait_sent(fake, user, 0, lambda m: "latte" in metadata(m), "the answer to hi")
        check.assertEqual(deliver(server, body).status, 200)  # once more, after the turn
        # a later message is a barrier: a second turn for the replay would come before it
        n = len(fake.delivered(user))
        send(server, user, "Latte", "latte")
        wait_sent(fake, user, n, lambda m: "large" in metadata(m), "the sizes")
        check.assertEqual(turns(server, user), 2)
        check.assertEqual(db_query(server.db, "SELECT count(*) FROM inbox WHERE platform_id = ?", eid)[0][0], 1)
        check.assertEqual(len([m for m in fake.delivered(user) if "latte" in metadata(m)]), 1, "asked once")
        no_problems()

    def sent_once_in_order(user):
        attempts = fake.attempts(user)
        delivered = fake.delivered(user)
        check.assertEqual(attempts[0]["data"], attempts[1]["data"], "the failed message is sent again first")
        check.assertEqual(len(delivered), len({json.dumps(m, sort_keys=True) for m in delivered}),
                          "each message delivered once")
        check.assertNotIn("quick_reply", delivered[0], "the greeting first")
        check.assertIn("latte", metadata(delivered[-1]), "the question last")
        wait_until(lambda: db_query(server.db, "SELECT count(*) FROM outbox WHERE user = ? AND state <> 'sent'",
                                    user)[0][0] == 0, what="the outbox rows marked sent")
        return attempts

    def flaky_platform(run):
        user = new_user()
        fake.fail_first[user] = 1
        mark = server.mark()
        send(server, user, "hi")
        wait_sent(fake, user, 0, lambda m: "latte" in metadata(m), "the answer after a 500")
        attempts = sent_once_in_order(user)
        check.assertEqual([a["status"] for a in attempts], [500] + [200] * (len(attempts) - 1))
        server.wait_log(r"x/%s: sending message \d+ failed \(HTTP 500.*retry 1 in" % user, mark)
        no_problems()

    def rate_limited(kind):
        def case(run):
            user = new_user()
            fake.limit_first[user] = (kind, 1 if kind == "retry-after" else 2)
            mark = server.mark()
            send(server, user, "hi")
            wait_sent(fake, user, 0, lambda m: "latte" in metadata(m), "the answer after a 429")
            attempts = sent_once_in_order(user)
            check.assertEqual([a["status"] for a in attempts], [429] + [200] * (len(attempts) - 1))
            # the wait X asked for, not the 50 ms backoff (the log says how long)
            m = server.wait_log(r"x/%s: sending message \d+ failed \(HTTP 429.*retry 1 in (\d+) ms" % user, mark)
            check.assertGreaterEqual(int(m.group(1)), 1000)
            check.assertGreaterEqual(attempts[1]["at"] - attempts[0]["at"], 0.9)
            no_problems()
        return case

    def handoff(run):
        user = new_user()
        auth = {"Authorization": "Bearer " + AGENT_TOKEN}

        def act(action, body):
            r = server.request("POST", "/v1/agent/conversations/barista/x/%s/%s" % (user, action), body, headers=auth)
            check.assertEqual(r.status, 200, r)

        def row():
            r = server.request("GET", "/v1/agent/conversations", headers=auth)
            check.assertEqual(r.status, 200, r)
            return next((c for c in r.json["conversations"] if c["user"] == user), None)

        send(server, user, "hi")
        wait_sent(fake, user, 0, lambda m: "latte" in metadata(m), "the drinks")
        n = len(fake.delivered(user))
        send(server, user, "can I talk to a person?")
        wait_sent(fake, user, n, lambda m: "getting one of our team" in m["text"], "the handoff")
        c = row()
        check.assertEqual((c["channel"], c["state"], c["display_name"]), ("x", "waiting", "Ada Lovelace"), c)
        n = len(fake.delivered(user))
        act("claim", {"agent": "Mia"})
        wait_sent(fake, user, n, lambda m: m["text"] == "Mia from our team is here to help.", "the claim")
        n = len(fake.delivered(user))
        act("reply", {"agent": "Mia", "text": "Hi! Your oat latte is on the counter."})
        sent = wait_sent(fake, user, n, lambda m: "oat latte" in m["text"], "the agent's reply")
        check.assertEqual(sent[-1], {"text": "Hi! Your oat latte is on the counter."})
        n = len(fake.delivered(user))
        act("handback", {"agent": "Mia", "flow": "drink", "step": "choose"})
        wait_sent(fake, user, n, lambda m: re.search(r"(?i)drink|mood", m["text"]), "the bot again")
        check.assertIsNone(row(), "handed back: out of the queue")
        no_problems()

    try:
        tap.case("the Challenge-Response Check answers the response_token", crc)
        tap.case("the barista conversation over X: options, cards, read receipts, own messages ignored",
                 conversation)
        tap.case("checkout over X: the payment link is a URL button; paid on the page, the thanks is a DM",
                 checkout)
        tap.case("bad or missing signature: 401/403, nothing stored, nothing sent", bad_signature)
        tap.case("malformed bodies: 400, nothing stored", malformed)
        tap.case("a redelivered event is acknowledged and ignored", redelivery)
        tap.case("X answers 500 then 200: sent once, in order", flaky_platform)
        tap.case("X answers 429 with Retry-After: retried after it, sent once, in order",
                 rate_limited("retry-after"))
        tap.case("X answers 429 with x-rate-limit-reset only: retried after the reset, sent once, in order",
                 rate_limited("reset"))
        tap.case("handoff: the agent's claim, reply and hand back reach the shopper as DMs", handoff)
    finally:
        fake.stop()


if __name__ == "__main__":
    run_suite("channel: x", main)
