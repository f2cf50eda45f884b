#!/usr/bin/env python3
"""test_channel_messenger: the Messenger channel end to end.

Starts `parley serve` on the default bot with the Messenger secrets in its
environment and PARLEY_MESSENGER_API_BASE pointing at a fake Send API that
this file runs on a free loopback port. The fake checks every request
against the Send API's documented shape (path, access_token and
appsecret_proof, recipient, messaging_type, text and quick-reply,
generic-template and button-template limits), records it, and answers 200 —
or 500 when a case tells it to. Webhooks are signed with X-Hub-Signature-256 the way Messenger
signs them.

Cases: the whole barista conversation over Messenger, checkout up to the
payment link (a button template whose URL button opens the test provider's
page), the verification handshake, bad and missing signatures (nothing stored, nothing sent), a
replayed delivery (one turn), the platform answering 500 then 200 (sent
once, in order), the platform down past the retry limit (dead letters, the
server goes on), and the channel without its secrets (503)."""

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
from harness import Server, check, db_query, new_user, run_suite, wait_until  # noqa: E402
from channel_helpers import (PRICES, FakePlatform, Later, euros, post_signed, stored_for,  # noqa: E402
                             turns as channel_turns, units, wait_sent)

BOT = "barista"
HOOK = "/v1/bots/%s/channels/messenger" % BOT
VERIFY = "verify-e2e token"
SECRET = "e2e-app-secret"
PAGE_TOKEN = "EAAGe2e/page+token"
PAGE_ID = "1029384756"
PROOF = hmac.new(SECRET.encode(), PAGE_TOKEN.encode(), hashlib.sha256).hexdigest()



# --- the fake Send API ----------------------------------------------------------------


def _text_ok(value, limit):
    return isinstance(value, str) and 0 < units(value) <= limit


def element_problems(el):
    p = []
    extra = set(el) - {"title", "subtitle", "image_url", "buttons", "default_action"}
    if extra:
        p.append("element has undocumented fields %s" % sorted(extra))
    if not _text_ok(el.get("title"), 80):
        p.append("element title missing or over 80: %r" % el.get("title"))
    if "subtitle" in el and not _text_ok(el["subtitle"], 80):
        p.append("element subtitle over 80 or empty: %r" % el["subtitle"])
    if "image_url" in el and not str(el["image_url"]).startswith(("https://", "http://")):
        p.append("image_url is not a URL: %r" % el["image_url"])
    if len(set(el) - {"title"}) == 0:
        p.append("an element needs one property besides its title")
    buttons = el.get("buttons", [])
    if "buttons" in el and not (isinstance(buttons, list) and 1 <= len(buttons) <= 3):
        p.append("buttons must be 1..3")
    for b in buttons if isinstance(buttons, list) else []:
        if b.get("type") != "postback" or set(b) != {"type", "title", "payload"}:
            p.append("button is not a postback button: %r" % b)
        if not _text_ok(b.get("title"), 20):
            p.append("button title missing or over 20: %r" % b.get("title"))
        if not _text_ok(b.get("payload"), 1000):
            p.append("button payload missing or over 1000")
    return p


def url_button_problems(b):
    """A URL button: type web_url, an http(s) url, a title of at most 20."""
    p = []
    extra = set(b) - {"type", "url", "title", "webview_height_ratio", "messenger_extensions", "fallback_url"}
    if extra:
        p.append("URL button has undocumented fields %s" % sorted(extra))
    url = b.get("url")
    if not (isinstance(url, str) and urllib.parse.urlsplit(url).scheme in ("http", "https")
            and urllib.parse.urlsplit(url).netloc):
        p.append("URL button url is not a web address: %r" % url)
    if not _text_ok(b.get("title"), 20):
        p.append("URL button title missing or over 20: %r" % b.get("title"))
    return p


def button_template_problems(payload):
    """A button template: text of 1..640 characters above 1..3 buttons."""
    p = []
    extra = set(payload) - {"template_type", "text", "buttons"}
    if extra:
        p.append("button template has undocumented fields %s" % sorted(extra))
    if not _text_ok(payload.get("text"), 640):
        p.append("button template text empty or over 640 characters: %r" % payload.get("text"))
    buttons = payload.get("buttons")
    if not (isinstance(buttons, list) and 1 <= len(buttons) <= 3):
        p.append("button template buttons must be 1..3")
    for b in buttons if isinstance(buttons, list) else []:
        if not isinstance(b, dict) or b.get("type") not in ("web_url", "postback"):
            p.append("button is neither a URL nor a postback button: %r" % b)
        elif b["type"] == "web_url":
            p.extend(url_button_problems(b))
        elif set(b) != {"type", "title", "payload"} or not _text_ok(b.get("title"), 20) \
                or not _text_ok(b.get("payload"), 1000):
            p.append("postback button breaks its limits: %r" % b)
    return p


def image_problems(att):
    """An image attachment: {"type": "image", "payload": {"url", "is_reusable"?}}."""
    payload = att.get("payload")
    if set(att) != {"type", "payload"} or not isinstance(payload, dict) or set(payload) - {"url", "is_reusable"}:
        return ["image attachment of undocumented shape: %r" % att]
    if not str(payload.get("url", "")).startswith(("http://", "https://")):
        return ["image attachment without a web address: %r" % att]
    return []


def message_problems(msg, text_ok=lambda t: _text_ok(t, 2000)):
    """A Send API message; text_ok judges a text's length (Messenger: 2000
    characters; Instagram passes its own 1000-byte limit)."""
    p = []
    if not isinstance(msg, dict):
        return ["message is not an object"]
    extra = set(msg) - {"text", "attachment", "quick_replies"}
    if extra:
        p.append("message has undocumented fields %s" % sorted(extra))
    if ("text" in msg) == ("attachment" in msg):
        p.append("a message has text or attachment, exactly one")
    if "text" in msg and not text_ok(msg["text"]):
        p.append("text empty or over the platform's limit (%d characters)" % units(str(msg["text"])))
    if "quick_replies" in msg:
        qr = msg["quick_replies"]
        if not (isinstance(qr, list) and 1 <= len(qr) <= 13):
            p.append("quick_replies must be 1..13")
        for q in qr if isinstance(qr, list) else []:
            if set(q) != {"content_type", "title", "payload"} or q.get("content_type") != "text":
                p.append("quick reply is not a text quick reply: %r" % q)
            if not _text_ok(q.get("title"), 20):
                p.append("quick reply title missing or over 20: %r" % q.get("title"))
            if not _text_ok(q.get("payload"), 1000):
                p.append("quick reply payload missing or over 1000")
    if "attachment" in msg:
        att = msg["attachment"]
        payload = att.get("payload", {}) if isinstance(att, dict) else {}
        if isinstance(att, dict) and att.get("type") == "image":
            return p + image_problems(att)
        if not isinstance(att, dict) or att.get("type") != "template" or set(att) != {"type", "payload"}:
            p.append("attachment is not a template: %r" % att)
        if payload.get("template_type") == "button":
            p.extend(button_template_problems(payload))
        elif payload.get("template_type") != "generic":
            p.append("template is neither generic nor button: %r" % payload.get("template_type"))
        else:
            els = payload.get("elements")
            if not (isinstance(els, list) and 1 <= len(els) <= 10):
                p.append("elements must be 1..10")
            for el in els if isinstance(els, list) else []:
                p.extend(element_problems(el))
    return p


def request_problems(path, query, content_type, raw, token=PAGE_TOKEN, proof=PROOF,
                     text_ok=lambda t: _text_ok(t, 2000)):
    """A Send API call: the token and its proof in the query, a JSON body
    of a recipient, a messaging_type (RESPONSE, or MESSAGE_TAG with the
    HUMAN_AGENT tag) and a message."""
    p = []
    if path != "/me/messages":
        p.append("POST to %s, not /me/messages" % path)
    if query.get("access_token") != [token]:
        p.append("access_token is %r" % query.get("access_token"))
    if query.get("appsecret_proof") != [proof]:
        p.append("appsecret_proof is %r" % query.get("appsecret_proof"))
    if not (content_type or "").startswith("application/json"):
        p.append("Content-Type is %r" % content_type)
    try:
        body = json.loads(raw.decode("utf-8"))
    except ValueError:
        return p + ["the body is not JSON"], None
    tagged = body.get("messaging_type") == "MESSAGE_TAG"
    if set(body) != {"recipient", "messaging_type", "message"} | ({"tag"} if tagged else set()):
        p.append("body fields are %s" % sorted(body))
    if tagged and body.get("tag") != "HUMAN_AGENT":
        p.append("tag is %r" % body.get("tag"))
    if not (isinstance(body.get("recipient"), dict) and set(body["recipient"]) == {"id"}
            and isinstance(body["recipient"]["id"], str) and body["recipient"]["id"]):
        p.append("recipient is %r" % body.get("recipient"))
    if body.get("messaging_type") not in ("RESPONSE", "MESSAGE_TAG"):
        p.append("messaging_type is %r" % body.get("messaging_type"))
    p.extend(message_problems(body.get("message"), text_ok))
    return p, body


class FakeSendAPI(FakePlatform):
    """A Send API on 127.0.0.1: checks and records every request. check
    judges a request (path, query, content type, raw body) -> (problems,
    body); Messenger's request_problems unless given. Records are {"user",
    "message", "status", "tag", "at"}."""

    def __init__(self, check_request=request_problems):
        super().__init__()
        self.check_request = check_request

    def on_post(self, h, raw):
        url = urllib.parse.urlsplit(h.path)
        problems, body = self.check_request(url.path, urllib.parse.parse_qs(url.query),
                                            h.headers.get("Content-Type"), raw)
        status, answer = self._decide(body, problems)
        self.answer(h, status, answer, [("Retry-After", "1")] if status == 429 else ())

    def _decide(self, body, problems):
        user = ((body or {}).get("recipient") or {}).get("id")
        with self.lock:
            self.count += 1
            if problems:
                self.problems.extend(problems)
                status = 400
            else:
                status = self.failure(user) or 200
            self.requests.append({"user": user, "message": (body or {}).get("message"), "status": status,
                                  "tag": (body or {}).get("tag"), "at": time.monotonic()})
        if status == 200:
            return 200, {"recipient_id": user, "message_id": "m_out_%d" % self.count}
        if status == 400:
            return 400, {"error": {"message": "(#100) Invalid parameter", "type": "OAuthException", "code": 100}}
        if status == 429:
            return 429, {"error": {"message": "(#613) Calls to this api have exceeded the rate limit.",
                                   "type": "OAuthException", "code": 613}}
        return 500, {"error": {"message": "An unexpected error has occurred.", "type": "OAuthException",
                               "code": 2, "is_transient": True}}


# --- webhooks -----------------------------------------------------------------------------


def now_ms():
    return int(time.time() * 1000)


def new_mid():
    return "m_" + uuid.uuid4().hex


def text_item(user, text, payload=None, mid=None):
    message = {"mid": mid or new_mid(), "text": text}
    if payload is not None:
        message["quick_reply"] = {"payload": payload}
    return {"sender": {"id": user}, "recipient": {"id": PAGE_ID}, "timestamp": now_ms(), "message": message}


def postback_item(user, title, payload):
    return {"sender": {"id": user}, "recipient": {"id": PAGE_ID}, "timestamp": now_ms(),
            "postback": {"mid": new_mid(), "title": title, "payload": payload}}


def page_body(*items):
    """The webhook body as Messenger sends it (non-ASCII escaped as \\uXXXX)."""
    return json.dumps({"object": "page", "entry": [{"id": PAGE_ID, "time": now_ms(), "messaging": list(items)}]}).encode()


def signature(body, secret=SECRET):
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def deliver(server, body, sig=True):
    """POSTs a webhook body; sig True signs it, a string is sent as the header, None sends none."""
    return post_signed(server, HOOK, body, "X-Hub-Signature-256", signature, sig)


def send(server, *items):
    r = deliver(server, page_body(*items))
    check.assertEqual(r.status, 200, r)
    return r


# --- looking at the store and at what was sent -------------------------------------------------

turns = functools.partial(channel_turns, channel="messenger")


def quick(m):
    return m.get("quick_replies") or []


def payloads(m):
    return [q["payload"] for q in quick(m)]


def elements(m):
    return ((m.get("attachment") or {}).get("payload") or {}).get("elements") or []


def button_template(m):
    """The payload of a button-template message, or None."""
    payload = (m.get("attachment") or {}).get("payload") or {}
    return payload if payload.get("template_type") == "button" else None


def said(m):
    """What a message says: its text, or its button template's text."""
    return m.get("text") or (button_template(m) or {}).get("text") or ""


# --- the cases ---------------------------------------------------------------------------------


def main(tap):
    fake = FakeSendAPI()
    env = {
        "BARISTA_MESSENGER_VERIFY_TOKEN": VERIFY,
        "BARISTA_MESSENGER_APP_SECRET": SECRET,
        "BARISTA_MESSENGER_PAGE_TOKEN": PAGE_TOKEN,
        "PARLEY_MESSENGER_API_BASE": fake.base,
        "PARLEY_OUTBOX_RETRY_MS": "50",
        "PARLEY_OUTBOX_MAX_ATTEMPTS": "3",
        # checkout through the built-in test provider, whose page parley serves itself
        "BARISTA_STRIPE_SECRET_KEY": None,
        "PARLEY_PUBLIC_URL": None,
    }
    server = tap.watch(Server(env=env, name="parley").start())

    def no_problems():
        check.assertEqual(fake.take_problems(), [], "requests that do not follow the Send API's documentation")

    def conversation(run):
        user = new_user("psid")
        # greet -> the drinks as quick replies
        send(server, text_item(user, "hi"))
        sent = wait_sent(fake, user, 0, lambda m: "latte" in payloads(m), "the drinks as quick replies")
        check.assertGreaterEqual(len(sent), 2, "a greeting, then the question")
        check.assertIn("text", sent[0])
        drinks = quick(sent[-1])
        latte = [q for q in drinks if q["payload"] == "latte"][0]
        check.assertTrue(latte["title"].startswith("Latte"), latte)
        # tap the latte -> the sizes
        n = len(fake.delivered(user))
        send(server, text_item(user, latte["title"], payload="latte"))
        sent = wait_sent(fake, user, n, lambda m: "large" in payloads(m), "the sizes as quick replies")
        check.assertIn("Latte", sent[-1]["text"])
        large = [q for q in quick(sent[-1]) if q["payload"] == "large"][0]
        # tap large -> added, and a pairing: text first, then the carousel with quick replies
        n = len(fake.delivered(user))
        send(server, text_item(user, large["title"], payload="large"))
        sent = wait_sent(fake, user, n, lambda m: elements(m), "the pairing carousel")
        check.assertIn("would go nicely with that", sent[-2].get("text", ""), sent)
        carousel = sent[-1]
        check.assertTrue(quick(carousel), "the choices ride on the carousel, the last message")
        check.assertIn("no", payloads(carousel))
        first = elements(carousel)[0]
        check.assertTrue(first["subtitle"].startswith("€"), first)
        button = first["buttons"][0]
        sku = button["payload"]
        check.assertIn(sku, PRICES)
        # tap the card's postback button -> added, anything else?
        n = len(fake.delivered(user))
        send(server, postback_item(user, button["title"], sku))
        sent = wait_sent(fake, user, n, lambda m: "done" in payloads(m), "anything else?")
        total = euros(470 + PRICES[sku])
        check.assertIn("That's 2 item(s) so far, %s" % total, sent[-1]["text"])
        # that's all -> the summary with the total
        done = [q for q in quick(sent[-1]) if q["payload"] == "done"][0]
        n = len(fake.delivered(user))
        send(server, text_item(user, done["title"], payload="done"))
        sent = wait_sent(fake, user, n, lambda m: "Total:" in m.get("text", ""), "the summary")
        summary = sent[-1]["text"]
        check.assertIn("1 × Latte (Large) — €4.70", summary)
        check.assertIn("Total: %s" % total, summary)
        check.assertEqual(turns(server, user), 5)
        # what the flow saw of the channel (msg.channel) is in the transcript
        row = db_query(server.db, "SELECT body FROM transcript WHERE user = ? AND direction = 'in' ORDER BY id LIMIT 1", user)
        info = json.loads(row[0][0]).get("info")
        check.assertEqual(info, {"platform": "messenger", "page_id": PAGE_ID})
        # delivery and read receipts become status lines
        send(server, {"sender": {"id": user}, "recipient": {"id": PAGE_ID},
                      "delivery": {"mids": ["m_out_1", "m_out_2"], "watermark": now_ms()}},
             {"sender": {"id": user}, "recipient": {"id": PAGE_ID}, "timestamp": now_ms(),
              "read": {"watermark": now_ms()}})
        statuses = db_query(server.db, "SELECT body FROM transcript WHERE user = ? AND direction = 'status' ORDER BY id", user)
        check.assertEqual([json.loads(b)["status"] for (b,) in statuses], ["delivered", "delivered", "read"])
        # an echo of the page's own message is not a turn
        echo_mid = new_mid()
        echo = {"sender": {"id": PAGE_ID}, "recipient": {"id": user}, "timestamp": now_ms(),
                "message": {"is_echo": True, "app_id": 1517776481860111, "mid": echo_mid, "text": summary}}
        send(server, echo)  # answered after recording, so the inbox already shows what was taken in
        check.assertEqual(db_query(server.db, "SELECT count(*) FROM inbox WHERE platform_id = ?", echo_mid)[0][0], 0)
        check.assertEqual(turns(server, user), 5)
        no_problems()

    def payment_link(run):
        user = new_user("psid")
        send(server, text_item(user, "hi"))
        sent = wait_sent(fake, user, 0, lambda m: "latte" in payloads(m), "the drinks")
        latte = [q for q in quick(sent[-1]) if q["payload"] == "latte"][0]
        n = len(fake.delivered(user))
        send(server, text_item(user, latte["title"], payload="latte"))
        wait_sent(fake, user, n, lambda m: "large" in payloads(m), "the sizes")
        n = len(fake.delivered(user))
        send(server, text_item(user, "Large +€0.90", payload="large"))
        sent = wait_sent(fake, user, n, lambda m: "done" in payloads(m) or "no" in payloads(m), "what next")
        if "done" not in payloads(sent[-1]):  # a pastry offered first: no, thanks
            n = len(fake.delivered(user))
            send(server, text_item(user, "No thanks", payload="no"))
            wait_sent(fake, user, n, lambda m: "done" in payloads(m), "anything else?")
        n = len(fake.delivered(user))
        send(server, text_item(user, "That's all", payload="done"))
        sent = wait_sent(fake, user, n, lambda m: "pay" in payloads(m), "how to pay")
        check.assertIn("Total: €4.70", "\n".join(said(m) for m in sent))
        check.assertIsNone(button_template(sent[-1]), "no link before the shopper asks to pay")
        n = len(fake.delivered(user))
        send(server, text_item(user, "Pay now", payload="pay"))
        sent = wait_sent(fake, user, n, lambda m: "Order #" in said(m), "the payment link")
        pay = sent[-1]
        template = button_template(pay)
        check.assertIsNotNone(template, "the payment link is a button template: %r" % pay)
        m = re.match(r"^Order #(\d+): €4\.70\. ", template["text"])
        check.assertTrue(m, "the reply's text rides above the button: %r" % template["text"])
        button = template["buttons"][0]
        check.assertEqual((button["type"], button["title"]), ("web_url", "Pay €4.70"))
        url = urllib.parse.urlsplit(button["url"])
        check.assertEqual(url.path, "/v1/bots/barista/payments/test/%s" % m.group(1),
                          "the test provider's payment page of this order: %s" % button["url"])
        check.assertEqual((url.scheme, url.netloc), ("http", "127.0.0.1:%d" % server.port))
        check.assertTrue(urllib.parse.parse_qs(url.query).get("token"), "the page's token is in the link")
        check.assertNotIn(button["url"], template["text"], "the URL is the button's, not in the text")
        check.assertEqual(pay, fake.delivered(user)[-1], "the link's message is the turn's last")
        r = server.request("GET", url.path + "?" + url.query)
        check.assertEqual(r.status, 200, r)
        check.assertIn("4.70", r.body.decode("utf-8"))
        no_problems()

    def handshake(run):
        q = urllib.parse.urlencode({"hub.mode": "subscribe", "hub.verify_token": VERIFY,
                                    "hub.challenge": "1158201444%d" % run})
        r = server.request("GET", HOOK + "?" + q)
        check.assertEqual(r.status, 200, r)
        check.assertEqual(r.body, b"1158201444%d" % run)
        q = urllib.parse.urlencode({"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "77665544"})
        r = server.request("GET", HOOK + "?" + q)
        check.assertEqual(r.status, 403, r)
        check.assertNotIn(b"77665544", r.body)
        r = server.request("GET", HOOK)
        check.assertEqual(r.status, 400, r)

    def bad_signature(run):
        user = new_user("intruder")
        mark = server.mark()
        body = page_body(text_item(user, "hi"))
        r = deliver(server, body, sig=signature(body, "not-the-app-secret"))
        check.assertEqual(r.status, 403, r)
        r = deliver(server, body, sig=None)
        check.assertEqual(r.status, 401, r)
        r = deliver(server, body, sig=signature(page_body(text_item(user, "something else"))))
        check.assertEqual(r.status, 403, r)
        r = deliver(server, body, sig="sha256=")
        check.assertEqual(r.status, 403, r)
        # only the signature's refusals: the handshake case before this one
        # logs refusals too, which the reader may not have read at the mark
        refused = r"messenger webhook refused \((40[13])\): (?:no )?X-Hub-Signature-256"
        wait_until(lambda: len(server.find_log(refused, mark)) >= 4, what="4 refusals logged")
        check.assertEqual([m.group(1) for m in server.find_log(refused, mark)], ["403", "401", "403", "403"])
        check.assertEqual(stored_for(server, user), {"inbox": 0, "sessions": 0, "transcript": 0, "outbox": 0})
        # a good message from someone else goes through; still nothing for the intruder
        other = new_user("psid")
        send(server, text_item(other, "hi"))
        wait_sent(fake, other, 0, lambda m: "latte" in payloads(m), "the other shopper's answer")
        check.assertEqual(fake.attempts(user), [])
        check.assertEqual(stored_for(server, user), {"inbox": 0, "sessions": 0, "transcript": 0, "outbox": 0})
        no_problems()

    def replayed_delivery(run):
        user = new_user("psid")
        mid = new_mid()
        body = page_body(text_item(user, "hi", mid=mid))
        first = deliver(server, body)
        again = deliver(server, body)  # Messenger retries with the same body and mid
        check.assertEqual((first.status, again.status), (200, 200))
        wait_sent(fake, user, 0, lambda m: "latte" in payloads(m), "the answer to hi")
        check.assertEqual(deliver(server, body).status, 200)  # once more, after the turn
        # a later message is a barrier: a second turn for the replay would come before it
        n = len(fake.delivered(user))
        send(server, text_item(user, "Latte", payload="latte"))
        wait_sent(fake, user, n, lambda m: "large" in payloads(m), "the sizes")
        check.assertEqual(turns(server, user), 2)
        check.assertEqual(db_query(server.db, "SELECT count(*) FROM inbox WHERE platform_id = ?", mid)[0][0], 1)
        asked = [m for m in fake.delivered(user) if "latte" in payloads(m)]
        check.assertEqual(len(asked), 1, "the drinks were offered once")
        no_problems()

    def flaky_platform(run):
        user = new_user("psid")
        fake.fail_first[user] = 1
        mark = server.mark()
        send(server, text_item(user, "hi"))
        wait_sent(fake, user, 0, lambda m: "latte" in payloads(m), "the answer after a 500")
        attempts = fake.attempts(user)
        check.assertEqual([a["status"] for a in attempts], [500] + [200] * (len(attempts) - 1))
        check.assertEqual(attempts[0]["message"], attempts[1]["message"], "the failed message is sent again first")
        delivered = fake.delivered(user)
        check.assertEqual(len(delivered), len({json.dumps(m, sort_keys=True) for m in delivered}),
                          "each message delivered once")
        check.assertIn("text", delivered[0])
        check.assertIn("latte", payloads(delivered[-1]))
        server.wait_log(r"messenger/%s: sending message \d+ failed \(HTTP 500.*retry 1 in" % user, mark)
        wait_until(lambda: db_query(server.db, "SELECT count(*) FROM outbox WHERE user = ? AND state <> 'sent'", user)[0][0] == 0,
                   what="the outbox rows marked sent")
        no_problems()

    def platform_down(run):
        user = new_user("psid")
        fake.down.add(user)
        mark = server.mark()
        send(server, text_item(user, "hi"))
        calls = wait_until(lambda: db_query(server.db, "SELECT count(*) FROM outbox WHERE user = ?", user)[0][0],
                           what="the replies in the outbox")
        dead = r"messenger/%s: outgoing message \d+ is a dead letter after 3 attempts: HTTP 500" % user
        wait_until(lambda: len(server.find_log(dead, mark)) == calls, timeout=8, what="%d dead letters" % calls)
        check.assertEqual(len(fake.attempts(user)), 3 * calls)
        check.assertEqual(fake.delivered(user), [])
        wait_until(lambda: db_query(server.db, "SELECT count(*) FROM outbox WHERE user = ? AND state = 'dead'", user)[0][0] == calls,
                   what="the outbox rows marked dead")
        # the server is fine, and so is the shopper's queue once the platform is back
        check.assertTrue(server.alive())
        check.assertEqual(server.request("GET", "/v1/health").status, 200)
        fake.down.discard(user)
        send(server, text_item(user, "Latte", payload="latte"))
        wait_sent(fake, user, 0, lambda m: "large" in payloads(m), "the answer once the platform is back")
        no_problems()

    bare = Later(tap, dict(env, BARISTA_MESSENGER_VERIFY_TOKEN=None, BARISTA_MESSENGER_APP_SECRET=None),
                 "parley (no messenger secrets)")

    def without_secrets(run):
        s = bare()
        user = new_user("psid")
        body = page_body(text_item(user, "hi"))
        r = deliver(s, body)
        check.assertEqual(r.status, 503, r)
        check.assertIn(b"BARISTA_MESSENGER_APP_SECRET", r.body)
        q = urllib.parse.urlencode({"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "1"})
        r = s.request("GET", HOOK + "?" + q)
        check.assertEqual(r.status, 503, r)
        check.assertEqual(stored_for(s, user), {"inbox": 0, "sessions": 0, "transcript": 0, "outbox": 0})

    try:
        tap.case("the barista conversation over Messenger", conversation)
        tap.case("checkout over Messenger: \"Pay now\" sends the test provider's payment page as a URL button",
                 payment_link)
        tap.case("verification handshake", handshake)
        tap.case("bad or missing signature: 401/403, nothing stored, nothing sent", bad_signature)
        tap.case("a replayed delivery is acknowledged and ignored", replayed_delivery)
        tap.case("the platform answers 500 then 200: sent once, in order", flaky_platform)
        tap.case("the platform down past the retry limit: dead letters, server fine", platform_down)
        tap.case("without its secrets the channel answers 503", without_secrets)
    finally:
        fake.stop()


if __name__ == "__main__":
    run_suite("channel: messenger", main)
