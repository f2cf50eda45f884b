#!/usr/bin/env python3
"""test_channel_whatsapp: the default bot over the WhatsApp Cloud API.

parley serves the default bot with its WhatsApp channel turned on; its API
base points at a fake Graph API that this test runs on a free loopback port.
The fake checks every request parley sends against the documented shape
(POST /v19.0/{phone-number-id}/messages, Authorization: Bearer <token>,
JSON with messaging_product, to, type and the fields and limits of text,
interactive button / list / call-to-action URL and image messages) and
records it; it can be told to fail a shopper's sends (500 once, or always
503).

Webhooks are signed as Meta signs them (X-Hub-Signature-256: sha256= hex
HMAC-SHA256 of the raw body with the app secret). What parley stored is read
straight from its SQLite file (read-only, while it runs).

Standard library only."""

import hashlib
import hmac
import json
import os
import re
import sys
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import db_query, Server, check, run_suite, wait_until  # noqa: E402
from channel_helpers import PRICES, FakePlatform, euros, post_signed, units, wait_sent  # noqa: E402

BOT = "barista"
HOOK = "/v1/bots/%s/channels/whatsapp" % BOT
PHONE_ID = "106540352242922"
VERIFY_TOKEN = "verify-" + uuid.uuid4().hex[:8]
APP_SECRET = "secret-" + uuid.uuid4().hex
ACCESS_TOKEN = "EAA" + uuid.uuid4().hex
VERSION = "/v19.0"

def new_phone():
    """A WhatsApp id (digits) no earlier run has used."""
    return "3161%08d" % (uuid.uuid4().int % 10 ** 8)


# --- the fake Graph API -----------------------------------------------------------


def shape_errors(msg):
    """What breaks the documented shape of a /messages body (empty: none)."""
    errs = []

    def need(cond, what):
        if not cond:
            errs.append(what)

    def text_field(obj, key, limit, required=True):
        v = obj.get(key) if isinstance(obj, dict) else None
        if v is None:
            need(not required, "%s missing" % key)
            return
        need(isinstance(v, str) and 0 < units(v) <= limit, "%s not a string of 1..%d characters: %r" % (key, limit, v))

    need(msg.get("messaging_product") == "whatsapp", "messaging_product")
    need(msg.get("recipient_type") in (None, "individual"), "recipient_type")
    need(isinstance(msg.get("to"), str) and msg["to"].isdigit(), "to")
    kind = msg.get("type")
    content = msg.get(kind) if isinstance(kind, str) else None
    need(isinstance(content, dict), "no %r object" % kind)
    if not isinstance(content, dict):
        return errs
    if kind == "text":
        text_field(content, "body", 4096)
        need(content.get("preview_url") in (None, True, False), "preview_url")
    elif kind == "image":
        need(isinstance(content.get("link"), str) and content["link"].startswith("https://"), "image.link")
        text_field(content, "caption", 1024, required=False)
    elif kind == "interactive":
        text_field(content.get("body"), "text", 1024)
        action = content.get("action") or {}
        if content.get("type") == "button":
            buttons = action.get("buttons") or []
            need(1 <= len(buttons) <= 3, "1..3 buttons")
            for b in buttons:
                need(b.get("type") == "reply", "button type")
                text_field(b.get("reply"), "id", 256)
                text_field(b.get("reply"), "title", 20)
            ids = [b.get("reply", {}).get("id") for b in buttons]
            titles = [b.get("reply", {}).get("title") for b in buttons]
            need(len(set(ids)) == len(ids) and len(set(titles)) == len(titles), "unique button ids and titles")
        elif content.get("type") == "list":
            text_field(action, "button", 20)
            rows = [r for s in action.get("sections") or [] for r in s.get("rows") or []]
            for s in action.get("sections") or []:
                text_field(s, "title", 24)
            need(1 <= len(rows) <= 10, "1..10 rows")
            for r in rows:
                text_field(r, "id", 200)
                text_field(r, "title", 24)
                text_field(r, "description", 72, required=False)
            need(len({r.get("id") for r in rows}) == len(rows), "unique row ids")
        elif content.get("type") == "cta_url":
            # a URL button: body required (checked above), one button of at
            # most 20 characters that opens an http(s) URL
            need(action.get("name") == "cta_url", "action.name %r" % action.get("name"))
            params = action.get("parameters")
            need(isinstance(params, dict) and set(params) == {"display_text", "url"},
                 "action.parameters must be display_text and url: %r" % params)
            params = params if isinstance(params, dict) else {}
            text_field(params, "display_text", 20)
            url = params.get("url")
            need(isinstance(url, str) and urllib.parse.urlsplit(url).scheme in ("http", "https")
                 and urllib.parse.urlsplit(url).netloc, "parameters.url is not a web address: %r" % url)
        else:
            errs.append("interactive type %r" % content.get("type"))
    else:
        errs.append("type %r" % kind)
    return errs


class FakeGraph(FakePlatform):
    """A Graph API that accepts and records /messages calls. Records are
    {"user", "message", "status"}; fail_first[user] lists the statuses to
    answer before any 200, and every send to a user in down is answered
    503. A call that breaks the documented shape is a violation: (user,
    what, request)."""

    protocol_version = "HTTP/1.0"
    down_answer = 503

    def __init__(self):
        super().__init__(VERSION)
        self.violations = []
        self.n = 0

    def on_get(self, h):
        self.answer(h, 405, {"error": {"message": "POST only"}})

    def on_post(self, h, raw):
        problems = []
        if h.path != "%s/%s/messages" % (VERSION, PHONE_ID):
            problems.append("path %s" % h.path)
        if h.headers.get("Authorization") != "Bearer " + ACCESS_TOKEN:
            problems.append("Authorization %r" % h.headers.get("Authorization"))
        if not (h.headers.get("Content-Type") or "").startswith("application/json"):
            problems.append("Content-Type %r" % h.headers.get("Content-Type"))
        try:
            msg = json.loads(raw.decode("utf-8"))
        except ValueError:
            msg = {}
            problems.append("body is not JSON")
        problems += shape_errors(msg)
        user = msg.get("to", "?")
        with self.lock:
            if problems:
                self.violations.append((user, problems, msg))
                status = 400
            else:
                status = self.failure(user) or 200
            if status == 200:
                self.n += 1
                wamid = "wamid.FAKE%06d" % self.n
                msg["_wamid"] = wamid
            self.requests.append({"user": user, "message": msg, "status": status})
        if status == 200:
            self.answer(h, 200, {"messaging_product": "whatsapp", "contacts": [{"input": user, "wa_id": user}],
                                 "messages": [{"id": wamid}]})
        elif status == 400:
            self.answer(h, 400, {"error": {"message": "; ".join(problems), "type": "OAuthException", "code": 100}})
        else:
            self.answer(h, status, {"error": {"message": "Service temporarily unavailable", "code": 2}})

    def messages(self, user):
        """The messages accepted for user, in order (each with its _wamid)."""
        return self.delivered(user)

    def attempts_of(self, user):
        return len(self.attempts(user))

    def violations_of(self, user=None):
        with self.lock:
            return [v for v in self.violations if user is None or v[0] == user]


def env_for(fake, **more):
    """The environment of a server whose barista bot speaks WhatsApp to the
    fake Graph API, with more variables (PARLEY_OUTBOX_RETRY_MS=...)."""
    env = {
        "BARISTA_WHATSAPP_PHONE_NUMBER_ID": PHONE_ID,
        "BARISTA_WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
        "BARISTA_WHATSAPP_APP_SECRET": APP_SECRET,
        "BARISTA_WHATSAPP_ACCESS_TOKEN": ACCESS_TOKEN,
        "PARLEY_WHATSAPP_API_BASE": fake.base,
    }
    env.update(more)
    return env


# --- what a shopper sends ------------------------------------------------------------


def envelope(messages=(), statuses=(), contacts=()):
    return {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{
        "field": "messages",
        "value": {"messaging_product": "whatsapp",
                  "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_ID},
                  "contacts": list(contacts), "messages": list(messages), "statuses": list(statuses)}}]}]}


def contact(user, name="Sheena Nelson"):
    return {"profile": {"name": name}, "wa_id": user}


def message(user, kind, content, msg_id=None):
    m = {"from": user, "id": msg_id or "wamid." + uuid.uuid4().hex, "timestamp": "1749416383", "type": kind}
    m[kind] = content
    return m


def text_message(user, text, msg_id=None):
    return message(user, "text", {"body": text}, msg_id)


def button_reply(user, id_, title):
    return message(user, "interactive", {"type": "button_reply", "button_reply": {"id": id_, "title": title}})


def list_reply(user, id_, title):
    return message(user, "interactive", {"type": "list_reply", "list_reply": {"id": id_, "title": title}})


def sign(raw, secret=APP_SECRET):
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def deliver(srv, body, signature="good"):
    """POSTs a webhook body; signature "good", None (no header) or a value."""
    raw = json.dumps(body).encode() if not isinstance(body, bytes) else body
    return post_signed(srv, HOOK, raw, "X-Hub-Signature-256", sign, True if signature == "good" else signature,
                       headers={"Content-Type": "application/json"})


def say(srv, user, msg, name="Sheena Nelson"):
    r = deliver(srv, envelope([msg], contacts=[contact(user, name)]))
    check.assertEqual(r.status, 200, r)


# --- what parley stored ---------------------------------------------------------------


def stored_counts(db, user):
    inbox = db_query(db, "SELECT count(*) FROM inbox WHERE bot = ? AND user = ?", BOT, user)[0][0]
    lines = db_query(db, "SELECT count(*) FROM transcript WHERE bot = ? AND user = ?", BOT, user)[0][0]
    outbox = db_query(db, "SELECT count(*) FROM outbox WHERE bot = ? AND user = ?", BOT, user)[0][0]
    return inbox, lines, outbox


def transcript(db, user, direction):
    return [json.loads(b) for (b,) in db_query(
        db, "SELECT body FROM transcript WHERE bot = ? AND channel = 'whatsapp' AND user = ? AND direction = ? "
            "ORDER BY id", BOT, user, direction)]


# --- reading what parley sent -----------------------------------------------------------


def interactive_of(m):
    return m.get("interactive") if m.get("type") == "interactive" else None


def options(m):
    """[(id, title)] of an interactive message's buttons or rows."""
    i = interactive_of(m) or {}
    if i.get("type") == "button":
        return [(b["reply"]["id"], b["reply"]["title"]) for b in i["action"]["buttons"]]
    if i.get("type") == "list":
        return [(r["id"], r["title"]) for s in i["action"]["sections"] for r in s["rows"]]
    return []


def cta_of(m):
    """The parameters {display_text, url} of a call-to-action URL button message, or None."""
    i = interactive_of(m) or {}
    return i["action"]["parameters"] if i.get("type") == "cta_url" else None


def body_text(m):
    if m.get("type") == "text":
        return m["text"]["body"]
    if m.get("type") == "interactive":
        return m["interactive"]["body"]["text"]
    if m.get("type") == "image":
        return m["image"].get("caption", "")
    return ""


def wait_for_question(fake, user, since, timeout=5.0):
    """Waits until parley has sent user an interactive message after index
    since; returns (all new messages up to it, that message)."""
    new = wait_sent(fake, user, since, interactive_of, "an interactive message to %s" % user, timeout=timeout)
    return new, new[-1]


def wait_for_text(fake, user, since, pattern, timeout=5.0):
    rx = re.compile(pattern)

    def found():
        new = fake.messages(user)[since:]
        return new if any(rx.search(body_text(m)) for m in new) else None
    return wait_until(found, timeout=timeout, what="a message to %s matching %r" % (user, pattern))


# --- the cases ---------------------------------------------------------------------------


def main(tap):
    fake = FakeGraph()
    env = env_for(fake, PARLEY_OUTBOX_RETRY_MS="50", PARLEY_OUTBOX_MAX_ATTEMPTS="3",
                  # checkout through the built-in test provider, whose page parley serves itself
                  BARISTA_STRIPE_SECRET_KEY=None, PARLEY_PUBLIC_URL=None)
    srv = tap.watch(Server(env=env, name="parley (whatsapp)").start())

    def no_violations(user=None):
        check.assertEqual(fake.violations_of(user), [], "every call follows the documented shape")

    # --- the handshake --------------------------------------------------------------

    def handshake(run):
        challenge = str(uuid.uuid4().int % 10 ** 10)
        r = srv.request("GET", "%s?hub.mode=subscribe&hub.challenge=%s&hub.verify_token=%s" % (HOOK, challenge, VERIFY_TOKEN))
        check.assertEqual(r.status, 200, r)
        check.assertEqual(r.body.decode(), challenge)
        check.assertTrue(r.headers["content-type"].startswith("text/plain"), r.headers)
        for query in ("hub.mode=subscribe&hub.challenge=1&hub.verify_token=wrong",
                      "hub.mode=subscribe&hub.challenge=1",
                      "hub.mode=unsubscribe&hub.challenge=1&hub.verify_token=" + VERIFY_TOKEN,
                      ""):
            r = srv.request("GET", HOOK + ("?" + query if query else ""))
            check.assertEqual(r.status, 403, "%s: %r" % (query, r))
            check.assertNotIn(b"1158", r.body)

    tap.case("GET handshake: the challenge echoed for the right verify token, 403 otherwise", handshake)

    # --- the whole conversation -------------------------------------------------------

    def conversation(run):
        u = new_phone()
        name = "Sheena %d" % run
        say(srv, u, text_message(u, "hi"), name)
        new, ask = wait_for_question(fake, u, 0)
        check.assertIn("Bea", body_text(new[0]), "the greeting comes first, as a text message")
        check.assertEqual(new[0]["type"], "text")
        check.assertEqual(ask["interactive"]["type"], "list", "six drinks are a list")
        drinks = dict(options(ask))
        check.assertEqual(drinks["latte"], "Latte · €3.80")
        check.assertEqual(len(drinks), 6)

        seen = len(fake.messages(u))
        say(srv, u, list_reply(u, "latte", drinks["latte"]), name)
        new, ask = wait_for_question(fake, u, seen)
        check.assertIn("Latte", body_text(ask))
        check.assertEqual(ask["interactive"]["type"], "button", "three sizes are reply buttons")
        check.assertEqual(options(ask), [("small", "Small"), ("medium", "Medium +€0.50"), ("large", "Large +€0.90")])

        seen = len(fake.messages(u))
        say(srv, u, button_reply(u, "large", "Large +€0.90"), name)
        new, ask = wait_for_question(fake, u, seen)
        check.assertIn("Large Latte", " ".join(body_text(m) for m in new))
        images = [m for m in new if m["type"] == "image"]
        check.assertTrue(images, "the pairing cards are images")
        check.assertIn("Butter Croissant", images[0]["image"]["caption"])
        check.assertIn("€2.50", images[0]["image"]["caption"])
        check.assertEqual(images[0]["image"]["link"], "https://images.parley.example/barista/croissant.jpg")
        offered = dict(options(ask))
        check.assertIn("no", offered)
        pastry = "croissant" if "croissant" in offered else next(k for k in offered if k != "no")
        # counted before the tap: the answer may come before the webhook's 200 is read
        seen = len(fake.messages(u))
        if ask["interactive"]["type"] == "button":
            say(srv, u, button_reply(u, pastry, offered[pastry]), name)
        else:
            say(srv, u, list_reply(u, pastry, offered[pastry]), name)

        total = PRICES["latte"] + 90 + PRICES[pastry]
        new, ask = wait_for_question(fake, u, seen)
        check.assertIn("That's 2 item(s) so far, %s" % euros(total), body_text(ask))
        check.assertEqual(options(ask), [("another", "Another drink"), ("done", "That's all")])

        seen = len(fake.messages(u))
        say(srv, u, button_reply(u, "done", "That's all"), name)
        new = wait_for_text(fake, u, seen, r"Total: ")
        summary = "\n".join(body_text(m) for m in new)
        check.assertIn("1 × Latte (Large) — €4.70", summary)
        check.assertIn("Total: %s" % euros(total), summary)
        no_violations(u)

        # every message sent exactly once, and the platform facts reached the turn
        check.assertEqual(fake.attempts_of(u), len(fake.messages(u)))
        ins = transcript(srv.db, u, "in")
        check.assertEqual(len(ins), 5, ins)
        check.assertEqual(ins[0].get("info"), {"platform": "whatsapp", "display_name": name, "phone": u})
        check.assertEqual([i.get("payload") for i in ins], [None, "latte", "large", pastry, "done"])

    tap.case("the whole order over WhatsApp: greet, drink list, size buttons, pairing, that's all, total",
             conversation)

    # --- the payment link -----------------------------------------------------------

    def payment_link(run):
        u = new_phone()
        say(srv, u, text_message(u, "hi"))
        new, ask = wait_for_question(fake, u, 0)
        seen = len(fake.messages(u))
        say(srv, u, list_reply(u, "latte", dict(options(ask))["latte"]))
        new, ask = wait_for_question(fake, u, seen)
        seen = len(fake.messages(u))
        say(srv, u, button_reply(u, "large", "Large +€0.90"))
        new, ask = wait_for_question(fake, u, seen)
        if "done" not in dict(options(ask)):  # a pastry offered first: no, thanks
            offered = dict(options(ask))
            seen = len(fake.messages(u))
            say(srv, u, (button_reply if ask["interactive"]["type"] == "button" else list_reply)(u, "no", offered["no"]))
            new, ask = wait_for_question(fake, u, seen)
        seen = len(fake.messages(u))
        say(srv, u, button_reply(u, "done", "That's all"))
        new, ask = wait_for_question(fake, u, seen)
        check.assertIn("Total: €4.70", "\n".join(body_text(m) for m in new))
        check.assertIn(("pay", "Pay now"), options(ask))
        check.assertIsNone(cta_of(ask), "the question is reply buttons, not a link yet")

        seen = len(fake.messages(u))
        say(srv, u, button_reply(u, "pay", "Pay now"))
        new = wait_for_text(fake, u, seen, r"Order #\d+", timeout=10.0)
        pay = next(m for m in new if re.search(r"Order #\d+", body_text(m)))
        link = cta_of(pay)
        check.assertIsNotNone(link, "the payment link is a call-to-action URL button: %r" % pay)
        check.assertEqual(link["display_text"], "Pay €4.70")
        url = urllib.parse.urlsplit(link["url"])
        m = re.match(r"^/v1/bots/barista/payments/test/(\d+)$", url.path)
        check.assertTrue(m, "the test provider's payment page: %s" % link["url"])
        check.assertEqual((url.scheme, url.netloc), ("http", "127.0.0.1:%d" % srv.port))
        check.assertTrue(urllib.parse.parse_qs(url.query).get("token"), "the page's token is in the link")
        body = body_text(pay)
        check.assertIn("Order #%s: €4.70" % m.group(1), body, "the reply's text rides above the button")
        check.assertNotIn(link["url"], body, "the URL is the button's, not in the text")
        check.assertEqual(pay, fake.messages(u)[-1], "the link's message is the turn's last")
        # the button opens the page of this very order
        r = srv.request("GET", url.path + "?" + url.query)
        check.assertEqual(r.status, 200, r)
        check.assertIn("4.70", r.body.decode("utf-8"))
        no_violations(u)

    tap.case("checkout over WhatsApp: \"Pay now\" sends the test provider's payment page as a URL button",
             payment_link)

    # --- refused deliveries -------------------------------------------------------------

    def bad_signature(run):
        u = new_phone()
        mark = srv.mark()
        body = json.dumps(envelope([text_message(u, "hi")], contacts=[contact(u)])).encode()
        wrong = [None, "", sign(body, "not-the-secret"), sign(body + b" "), sign(body)[7:],
                 "sha256=" + "0" * 64]
        for sig in wrong:
            r = deliver(srv, body, signature=sig)
            check.assertIn(r.status, (401, 403), "%r: %r" % (sig, r))
        # a shopper whose delivery is good is answered meanwhile ...
        other = new_phone()
        say(srv, other, text_message(other, "hi"))
        wait_for_question(fake, other, 0)
        # ... and nothing of the refused one was stored, run or sent
        check.assertEqual(stored_counts(srv.db, u), (0, 0, 0))
        check.assertEqual(fake.attempts_of(u), 0)
        # only the signature's refusals (the handshake case before logs
        # refusals too, which the log reader may not have read at the mark),
        # once the reader has read them all
        refused = r"whatsapp webhook refused \((401|403)\): whatsapp: the (request has no )?X-Hub-Signature-256"
        wait_until(lambda: len(srv.find_log(refused, mark)) >= len(wrong), what="the refusals logged")
        check.assertEqual(len(srv.find_log(refused, mark)), len(wrong))

    tap.case("a missing or wrong X-Hub-Signature-256 -> 401/403, nothing stored, run or sent", bad_signature)

    def wrong_shape(run):
        u = new_phone()
        mark = srv.mark()
        good = envelope([text_message(u, "hi")], contacts=[contact(u)])
        change = good["entry"][0]["changes"][0]
        bodies = [
            dict(good, entry=good["entry"][0]),                                   # entry not an array
            dict(good, entry=[{"changes": [change, {"field": "messages", "value": []}]}]),
            dict(good, entry=[{"changes": [dict(change, value=dict(change["value"], messages=change["value"]["messages"][0]))]}]),
        ]
        places = ["entry must be an array", "entry[0].changes[1].value must be an object",
                  "entry[0].changes[0].value.messages must be an array"]
        for body, place in zip(bodies, places):
            r = deliver(srv, body)
            check.assertEqual(r.status, 400, r)
            check.assertIn(place, r.json["error"], r.json)
        refused = r"whatsapp webhook refused \(400\): whatsapp: the body is not a webhook of the documented shape"
        wait_until(lambda: len(srv.find_log(refused, mark)) >= len(bodies), what="the refusals logged")
        check.assertEqual(len(srv.find_log(refused, mark)), len(bodies))
        # the well-shaped message beside a malformed change was not taken either
        check.assertEqual(stored_counts(srv.db, u), (0, 0, 0))
        check.assertEqual(fake.attempts_of(u), 0)

    tap.case("a signed delivery of the wrong shape -> 400 naming the place, logged, nothing stored", wrong_shape)

    # --- a replayed delivery --------------------------------------------------------------

    def replay(run):
        u = new_phone()
        first = envelope([text_message(u, "hi", msg_id="wamid.REPLAY-" + uuid.uuid4().hex)], contacts=[contact(u)])
        for _ in range(3):
            r = deliver(srv, first)
            check.assertEqual(r.status, 200, r)
        new, ask = wait_for_question(fake, u, 0)
        # a later message is answered after any replay would have been
        seen = len(fake.messages(u))
        say(srv, u, list_reply(u, "espresso", "Espresso · €2.40"))
        wait_for_question(fake, u, seen)
        r = deliver(srv, first)
        check.assertEqual(r.status, 200, "a replay after the turn is acknowledged too")
        seen = len(fake.messages(u))
        say(srv, u, button_reply(u, "double", "Double +€0.80"))
        wait_for_question(fake, u, seen)
        check.assertEqual(len(transcript(srv.db, u, "in")), 3, "one turn per distinct message id")
        check.assertEqual(db_query(srv.db, "SELECT count(*) FROM inbox WHERE user = ?", u)[0][0], 3)
        greetings = [m for m in fake.messages(u) if "Bea" in body_text(m)]
        check.assertEqual(len(greetings), 1, "the greeting was sent once")
        no_violations(u)

    tap.case("a replayed delivery (same message id) -> 200 and ignored: one turn", replay)

    # --- statuses -------------------------------------------------------------------------

    def statuses(run):
        u = new_phone()
        say(srv, u, text_message(u, "hi"))
        new, _ = wait_for_question(fake, u, 0)
        wamid = new[0]["_wamid"]
        sts = [{"id": wamid, "status": s, "timestamp": "17494163%02d" % i, "recipient_id": u}
               for i, s in enumerate(("sent", "delivered", "read"))]
        sts.append({"id": new[1]["_wamid"], "status": "failed", "timestamp": "1749416399", "recipient_id": u,
                    "errors": [{"code": 131047, "title": "Re-engagement message"}]})
        r = deliver(srv, envelope(statuses=sts))
        check.assertEqual(r.status, 200, r)
        lines = wait_until(lambda: len(transcript(srv.db, u, "status")) == 4 and transcript(srv.db, u, "status"),
                           what="four status lines")
        check.assertEqual([(l["id"], l["status"]) for l in lines],
                          [(wamid, "sent"), (wamid, "delivered"), (wamid, "read"), (new[1]["_wamid"], "failed")])
        check.assertEqual(lines[3]["detail"]["code"], 131047)
        check.assertEqual(len(transcript(srv.db, u, "in")), 1, "a status is not a turn")
        check.assertEqual(fake.attempts_of(u), len(new), "and sends nothing")

    tap.case("message statuses (sent/delivered/read/failed) are recorded on the transcript", statuses)

    # --- the platform failing -------------------------------------------------------------

    def platform_500_then_200(run):
        u = new_phone()
        with fake.lock:
            fake.fail_first[u] = [500]
        mark = srv.mark()
        say(srv, u, text_message(u, "hi"))
        new, ask = wait_for_question(fake, u, 0)
        check.assertEqual(len(new), 2)
        check.assertIn("Bea", body_text(new[0]), "the greeting first ...")
        check.assertEqual(ask["interactive"]["type"], "list", "... then the drinks")
        check.assertEqual(fake.attempts_of(u), 3, "the first send was retried once")
        check.assertTrue(srv.find_log(r"whatsapp/%s: sending message \d+ failed \(HTTP 500" % u, mark))
        # the next turn goes out normally
        seen = len(fake.messages(u))
        say(srv, u, list_reply(u, "latte", "Latte · €3.80"))
        wait_for_question(fake, u, seen)
        check.assertEqual(fake.attempts_of(u), len(fake.messages(u)) + 1)
        no_violations(u)

    tap.case("the platform answers 500 then 200: each message delivered once, in order", platform_500_then_200)

    def platform_down(run):
        u = new_phone()
        with fake.lock:
            fake.down.add(u)
        mark = srv.mark()
        say(srv, u, text_message(u, "hi"))
        srv.wait_log(r"whatsapp/%s: outgoing message \d+ is a dead letter after 3 attempts: HTTP 503" % u, mark)
        srv.health()  # answers 200
        # another shopper is served meanwhile
        other = new_phone()
        say(srv, other, text_message(other, "hi"))
        wait_for_question(fake, other, 0)
        # both of the turn's messages end as dead letters, kept in the store
        wait_until(lambda: db_query(srv.db, "SELECT count(*) FROM outbox WHERE user = ? AND state = 'dead'", u)[0][0] == 2,
                   what="two dead letters in the outbox")
        check.assertEqual(fake.attempts_of(u), 6)
        check.assertEqual(fake.messages(u), [])
        with fake.lock:
            fake.down.discard(u)

    tap.case("the platform down past the retry limit: dead letters logged, the server serves others", platform_down)

    no_violations()
    srv.stop()
    tap.unwatch(srv)
    fake.stop()


if __name__ == "__main__":
    run_suite("e2e: WhatsApp Cloud API channel (default bot, fake Graph API)", main)
