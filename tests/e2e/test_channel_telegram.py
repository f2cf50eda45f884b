#!/usr/bin/env python3
"""test_channel_telegram: the Telegram channel end to end. parley serves the
default bot and a fixture bot ("longpay", whose choices carry payloads
longer than Telegram's 64-byte callback_data) with the Telegram channel on;
a local fake Bot API on a free loopback port (PARLEY_TELEGRAM_API_BASE)
checks every request parley makes against the Bot API documentation
(https://core.telegram.org/bots/api: POST /bot<token>/<method>, JSON
bodies, sendMessage text 1-4096, sendPhoto caption 0-1024, callback_data
1-64 bytes) and records it. Updates are POSTed to
/v1/bots/{bot}/channels/telegram with X-Telegram-Bot-Api-Secret-Token.

Cases: the whole barista conversation by tapping inline buttons (each tap
answered with answerCallbackQuery); a long payload round-tripping through
the payload map, and msg.channel facts reaching Lua; a missing or wrong
secret (401/403, nothing stored, nothing sent); a replayed update (200, one
turn); the platform answering 500 then 200 (delivered once, in order); the
platform down past the retry limit (dead letter logged, server fine)."""

import itertools
import json
import os
import random
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ROOT, Server, check, db_contents, db_query, make_bot, run_suite, wait_until  # noqa: E402
from channel_helpers import FakePlatform, units  # noqa: E402

BARISTA_TOKEN = "110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
BARISTA_SECRET = "barista-hook-secret_" + "%08x" % random.getrandbits(32)
LONGPAY_TOKEN = "220301654:BBIerUdwDI2wHXKygTfpgTBt1L6QBMEtbx"
LONGPAY_SECRET = "longpay-hook-secret_" + "%08x" % random.getrandbits(32)
TOKENS = {BARISTA_TOKEN: "barista", LONGPAY_TOKEN: "longpay"}
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"

LONG_A = "order:" + "a-very-long-option-name-" * 4 + "A"
LONG_B = "order:" + "a-very-long-option-name-" * 4 + "B"

LONGPAY_FLOW = """\
-- flows/main.lua of the fixture bot 'longpay' (tests/e2e/test_channel_telegram.py):
-- says what reached it, then offers choices whose payloads do not fit in
-- Telegram's callback_data.
local LONG_A = %(a)s
local LONG_B = %(b)s

return {
  start = function(c, msg)
    local ch = msg.channel or {}
    c:say("info", { text = string.format("name=%%s platform=%%s type=%%s display_name=%%s username=%%s phone=%%s locale=%%s payload=%%s text=%%s",
      tostring(ch.name), tostring(ch.platform), tostring(ch.type), tostring(ch.display_name), tostring(ch.username), tostring(ch.phone),
      tostring(msg.locale), tostring(msg.payload), tostring(msg.text)) })
    c:choices({
      { title = "Long A", payload = LONG_A },
      { title = "Long B", payload = LONG_B },
      { title = "Short", payload = "short" },
      { title = "Tilde", payload = "~not-a-key" },
    })
    return "wait"
  end,

  wait = { answer = function(c) return "start" end },
}
""" % {"a": json.dumps(LONG_A), "b": json.dumps(LONG_B)}

LONGPAY_TONE = """\
return {
  persona = { name = "Lon" },
  templates = { en = { info = "{text}", fallback = "longpay fallback" } },
}
"""


# The default bot's tone words some replies in one of several ways
# (scripts/tone.lua); a variation is chosen per session and turn.
ASK_DRINK = ("Which drink would you like?", "What are you in the mood for?")


def ask_size(drink):
    return ("What size for your %s?" % drink, "Which size would you like your %s in?" % drink)


def added_drink(size, drink):
    return ("One %s %s, coming up!" % (size, drink), "Great choice: a %s %s ✨" % (size, drink))


# --- the fake Bot API ------------------------------------------------------------

METHOD_FIELDS = {
    "sendMessage": {"chat_id", "text", "reply_markup", "parse_mode", "link_preview_options"},
    "sendPhoto": {"chat_id", "photo", "caption", "reply_markup", "parse_mode"},
    "answerCallbackQuery": {"callback_query_id", "text", "show_alert", "url", "cache_time"},
}


def markup_problems(markup):
    """What is wrong with an InlineKeyboardMarkup, per the Bot API docs."""
    if not isinstance(markup, dict) or not isinstance(markup.get("inline_keyboard"), list):
        return ["reply_markup is not an InlineKeyboardMarkup: %r" % (markup,)]
    out = []
    for row in markup["inline_keyboard"]:
        if not isinstance(row, list) or not row:
            out.append("a keyboard row is not a non-empty list: %r" % (row,))
            continue
        for b in row:
            if not isinstance(b, dict) or not isinstance(b.get("text"), str) or not b["text"]:
                out.append("a button without text: %r" % (b,))
                continue
            kinds = [k for k in ("callback_data", "url") if k in b]
            if len(kinds) != 1 or set(b) - {"text", "callback_data", "url"}:
                out.append("a button must have exactly one of callback_data, url: %r" % (b,))
            data = b.get("callback_data")
            if data is not None and not (isinstance(data, str) and 1 <= len(data.encode("utf-8")) <= 64):
                out.append("callback_data is not 1-64 bytes: %r (%d bytes)" % (data, len(str(data).encode("utf-8"))))
    return out


def request_problems(method, body):
    """What is wrong with a Bot API request body."""
    if method not in METHOD_FIELDS:
        return ["unknown method %r" % method]
    if not isinstance(body, dict):
        return ["the body is not a JSON object"]
    out = ["unknown field %r" % k for k in set(body) - METHOD_FIELDS[method]]
    if method in ("sendMessage", "sendPhoto") and not isinstance(body.get("chat_id"), int):
        out.append("chat_id is not an integer: %r" % (body.get("chat_id"),))
    if method == "sendMessage":
        text = body.get("text")
        if not isinstance(text, str) or not 1 <= units(text) <= 4096:
            out.append("text is not 1-4096 characters: %r" % (text,))
    if method == "sendPhoto":
        if not isinstance(body.get("photo"), str) or not body["photo"].startswith("https://"):
            out.append("photo is not an HTTP URL: %r" % (body.get("photo"),))
        caption = body.get("caption", "")
        if not isinstance(caption, str) or units(caption) > 1024:
            out.append("caption is not 0-1024 characters: %r" % (caption,))
    if method == "answerCallbackQuery" and not isinstance(body.get("callback_query_id"), str):
        out.append("callback_query_id is not a string")
    if "reply_markup" in body:
        out.extend(markup_problems(body["reply_markup"]))
    return out


class FakeTelegram(FakePlatform):
    """A Bot API on 127.0.0.1 that records every request ({"bot", "method",
    "body", "chat", "outcome"}). Per chat, fail_first[chat] lists what the
    next attempts get ("500", "drop": the connection closes without an
    answer); chats in down always get "drop"."""

    protocol_version = "HTTP/1.0"
    user_key = "chat"
    message_key = None
    down_answer = "drop"

    def __init__(self):
        super().__init__()
        self.message_ids = itertools.count(1000)

    def on_get(self, h):
        self.problem("GET %s: the Bot API is called with POST here" % h.path)
        self.answer(h, 405, {"ok": False, "error_code": 405, "description": "POST only"})

    def took(self, r):
        return r["outcome"] == "200"

    def on_post(self, h, raw):
        m = re.fullmatch(r"/bot([^/]+)/([A-Za-z]+)", h.path)
        if not m or m.group(1) not in TOKENS:
            self.problem("%s: not /bot<a known token>/<method>" % h.path)
            self.answer(h, 404, {"ok": False, "error_code": 404, "description": "Not Found"})
            return
        bot, method = TOKENS[m.group(1)], m.group(2)
        if (h.headers.get("Content-Type") or "").split(";")[0].strip() != "application/json":
            self.problem("%s: Content-Type %r" % (method, h.headers.get("Content-Type")))
        try:
            body = json.loads(raw.decode("utf-8"))
        except ValueError:
            body = None
        for p in request_problems(method, body):
            self.problem("%s %s: %s" % (bot, method, p))
        chat = body.get("chat_id") if isinstance(body, dict) else None
        if method == "answerCallbackQuery" and isinstance(body, dict):
            chat = self.chat_of_query(body.get("callback_query_id"))
        with self.lock:
            outcome = self.failure(chat) or "200"
            self.requests.append({"bot": bot, "method": method, "body": body, "chat": chat, "outcome": outcome})
        if outcome == "drop":
            h.close_connection = True
            return
        if outcome == "500":
            self.answer(h, 500, {"ok": False, "error_code": 500, "description": "Internal Server Error"})
            return
        result = True
        if method != "answerCallbackQuery":
            result = {"message_id": next(self.message_ids), "date": int(time.time()),
                      "chat": {"id": chat, "type": "private"}}
        self.answer(h, 200, {"ok": True, "result": result})

    # Tap ids are "<chat>-<n>" (made by TelegramClient.tap), so an answer
    # can be told apart per chat.
    @staticmethod
    def chat_of_query(query_id):
        try:
            return int(str(query_id).rsplit("-", 1)[0])
        except ValueError:
            return None


# --- the Telegram side of parley ---------------------------------------------------

_update_ids = itertools.count(random.randint(10 ** 6, 10 ** 8))
_chat_ids = set()


def new_chat():
    """A private chat id no earlier case used."""
    while True:
        c = random.randint(10 ** 8, 2 * 10 ** 9)
        if c not in _chat_ids:
            _chat_ids.add(c)
            return c


class TelegramClient:
    """Sends Updates to parley as Telegram would, and reads what the fake
    Bot API received, step by step (a cursor per chat)."""

    def __init__(self, srv, fake, bot, secret):
        self.srv, self.fake, self.bot, self.secret = srv, fake, bot, secret
        self.cursor = {}
        self.taps = itertools.count(1)

    def post(self, update, secret="default"):
        secret = self.secret if secret == "default" else secret
        headers = {SECRET_HEADER: secret} if secret is not None else {}
        return self.srv.request("POST", "/v1/bots/%s/channels/telegram" % self.bot, update, headers=headers)

    def sender(self, chat, first="Ada", last="Lovelace", username="ada", lang="en"):
        u = {"id": chat, "is_bot": False, "first_name": first}
        if last:
            u["last_name"] = last
        if username:
            u["username"] = username
        if lang:
            u["language_code"] = lang
        return u

    def message_update(self, chat, text=None, contact=None, **who):
        msg = {"message_id": next(_update_ids) % 100000, "date": int(time.time()),
               "from": self.sender(chat, **who), "chat": {"id": chat, "type": "private", "first_name": "Ada"}}
        if text is not None:
            msg["text"] = text
        if contact is not None:
            msg["contact"] = contact
        return {"update_id": next(_update_ids), "message": msg}

    def say(self, chat, text, **who):
        update = self.message_update(chat, text, **who)
        r = self.post(update)
        check.assertEqual(r.status, 200, r)
        return update

    def tap_update(self, chat, data, **who):
        query_id = "%d-%d" % (chat, next(self.taps))
        return {"update_id": next(_update_ids), "callback_query": {
            "id": query_id, "from": self.sender(chat, **who), "chat_instance": "-%d" % chat, "data": data,
            "message": {"message_id": 1, "date": int(time.time()), "chat": {"id": chat, "type": "private"}}}}

    def tap(self, chat, button, **who):
        """Taps a button (a dict from a recorded keyboard); returns the query id."""
        update = self.tap_update(chat, button["callback_data"], **who)
        r = self.post(update)
        check.assertEqual(r.status, 200, r)
        return update["callback_query"]["id"]

    def take(self, chat, n, timeout=5.0):
        """The next n requests the fake answered 200 for this chat."""
        start = self.cursor.get(chat, 0)
        got = wait_until(lambda: len(self.fake.delivered(chat)) >= start + n and self.fake.delivered(chat),
                         timeout=timeout, what="%d more Bot API calls for chat %d (had %d)" % (
                             n, chat, len(self.fake.delivered(chat)) - start))
        self.cursor[chat] = start + n
        return got[start:start + n]

    def quiet(self, chat):
        """Nothing beyond what was taken is sent to chat: once parley's outbox
        holds nothing pending for it, every call it made is in the fake."""
        wait_until(lambda: self.srv.pending_sends("telegram", str(chat)) == 0,
                   what="the outbox to have nothing pending for chat %d" % chat)
        extra = self.fake.delivered(chat)[self.cursor.get(chat, 0):]
        check.assertEqual(extra, [], "unexpected Bot API calls for chat %d" % chat)


def buttons(request):
    """Every button of a recorded request's inline keyboard."""
    markup = (request["body"] or {}).get("reply_markup") or {}
    return [b for row in markup.get("inline_keyboard", []) for b in row]


def button(request, title):
    for b in buttons(request):
        if b["text"] == title:
            return b
    raise AssertionError("no button %r in %r" % (title, [b["text"] for b in buttons(request)]))


def methods(requests):
    return [r["method"] for r in requests]


def text_of(request):
    return request["body"].get("text") if request["method"] == "sendMessage" else request["body"].get("caption")


# --- the store ----------------------------------------------------------------------


class Store:
    def __init__(self, path):
        self.path = path

    def rows(self, sql, *args):
        return db_query(self.path, sql, *args)

    def count(self, table, bot, user):
        return self.rows("SELECT count(*) FROM %s WHERE bot = ? AND channel = 'telegram' AND user = ?" % table,
                         bot, str(user))[0][0]

    def outbox_states(self, bot, user):
        return [r[0] for r in self.rows(
            "SELECT state FROM outbox WHERE bot = ? AND channel = 'telegram' AND user = ? ORDER BY id", bot, str(user))]


# --- cases ----------------------------------------------------------------------------


def main(tap):
    fake = FakeTelegram()
    longpay_dir = make_bot("longpay", {"flows/main.lua": LONGPAY_FLOW, "scripts/tone.lua": LONGPAY_TONE}, manifest={
        "channels": {"telegram": {"bot_token_env": "LONGPAY_TELEGRAM_BOT_TOKEN",
                                  "secret_token_env": "LONGPAY_TELEGRAM_SECRET_TOKEN"}}})
    env = {
        "BARISTA_TELEGRAM_BOT_TOKEN": BARISTA_TOKEN,
        "BARISTA_TELEGRAM_SECRET_TOKEN": BARISTA_SECRET,
        "LONGPAY_TELEGRAM_BOT_TOKEN": LONGPAY_TOKEN,
        "LONGPAY_TELEGRAM_SECRET_TOKEN": LONGPAY_SECRET,
        "PARLEY_TELEGRAM_API_BASE": "http://127.0.0.1:%d" % fake.port,
        "PARLEY_OUTBOX_RETRY_MS": "50",
        "PARLEY_OUTBOX_MAX_ATTEMPTS": "3",
    }
    srv = tap.watch(Server([ROOT, longpay_dir], env=env, name="parley (telegram)").start())
    store = Store(srv.db)
    barista = TelegramClient(srv, fake, "barista", BARISTA_SECRET)
    longpay = TelegramClient(srv, fake, "longpay", LONGPAY_SECRET)

    def no_problems():
        """No request so far broke the Bot API's rules (each is reported once)."""
        check.assertEqual(fake.take_problems(), [], "requests that break the Bot API's rules")

    def expect_ack(request, query_id):
        check.assertEqual(request["method"], "answerCallbackQuery")
        check.assertEqual(request["body"], {"callback_query_id": query_id})

    def whole_conversation(run):
        chat = new_chat()
        barista.say(chat, "hi")
        greet, ask = barista.take(chat, 2)
        check.assertEqual(methods([greet, ask]), ["sendMessage", "sendMessage"])
        check.assertEqual(greet["body"]["chat_id"], chat)
        check.assertIn("Bea", greet["body"]["text"])
        check.assertIn(ask["body"]["text"], ASK_DRINK)
        check.assertEqual(len(buttons(ask)), 6)
        # the message's facts are in the store with the turn
        inbound = [json.loads(r[0]) for r in store.rows(
            "SELECT body FROM transcript WHERE bot = 'barista' AND channel = 'telegram' AND user = ? "
            "AND direction = 'in' ORDER BY id", str(chat))]
        check.assertEqual(inbound[0].get("text"), "hi")
        check.assertEqual(inbound[0].get("locale"), "en")
        check.assertEqual(inbound[0].get("info"), {"platform": "telegram", "display_name": "Ada Lovelace",
                                                   "username": "ada", "chat_type": "private", "type": "text"})

        q = barista.tap(chat, button(ask, "Latte · €3.80"))
        ack, size = barista.take(chat, 2)
        expect_ack(ack, q)
        check.assertIn(size["body"]["text"], ask_size("Latte"))
        check.assertEqual([b["callback_data"] for b in buttons(size)], ["small", "medium", "large"])

        q = barista.tap(chat, button(size, "Large +€0.90"))
        ack, added, pairing, photo1, photo2 = barista.take(chat, 5)
        expect_ack(ack, q)
        check.assertIn(added["body"]["text"], added_drink("Large", "Latte"))
        check.assertIn("Butter Croissant would go nicely", pairing["body"]["text"])
        check.assertEqual([b["text"] for b in buttons(pairing)],
                          ["Add Butter Croissant", "Add Pain au Chocolat", "No thanks"])
        check.assertEqual(methods([photo1, photo2]), ["sendPhoto", "sendPhoto"])
        check.assertTrue(photo1["body"]["photo"].endswith("/croissant.jpg"), photo1)
        check.assertEqual(photo1["body"]["caption"], "Butter Croissant — €2.50\na classic with coffee.")
        check.assertTrue(photo2["body"]["caption"].startswith("Pain au Chocolat — €2.80"), photo2)

        # tap the button under the croissant's picture
        q = barista.tap(chat, button(photo1, "Butter Croissant"))
        ack, added, more = barista.take(chat, 3)
        expect_ack(ack, q)
        check.assertEqual(added["body"]["text"], "Added Butter Croissant to your order 🥐")
        check.assertEqual(more["body"]["text"], "That's 2 item(s) so far, €7.20. Anything else?")

        q = barista.tap(chat, button(more, "That's all"))
        ack, summary, pay = barista.take(chat, 3)
        expect_ack(ack, q)
        check.assertIn("1 × Latte (Large) — €4.70", summary["body"]["text"])
        check.assertIn("Total: €7.20", summary["body"]["text"])
        check.assertEqual(pay["body"]["text"], "Shall I take the payment?")
        check.assertEqual([b["text"] for b in buttons(pay)], ["Pay now", "I have a code", "Another drink"])
        barista.quiet(chat)
        wait_until(lambda: store.outbox_states("barista", chat) == ["sent"] * 15, what="all 15 calls marked sent")
        no_problems()

    def long_payloads(run):
        chat = new_chat()
        contact = {"phone_number": "+15550100%03d" % run, "first_name": "Grace", "user_id": chat}
        update = longpay.message_update(chat, contact=contact, first="Grace", last="Hopper", username="grace",
                                        lang="en")
        check.assertEqual(longpay.post(update).status, 200)
        (info,) = longpay.take(chat, 1)
        check.assertEqual(info["bot"], "longpay")
        check.assertEqual(info["body"]["text"],
                          "name=telegram platform=telegram type=contact display_name=Grace Hopper username=grace "
                          "phone=+15550100%03d locale=en payload=nil text=nil" % run)
        data = {b["text"]: b["callback_data"] for b in buttons(info)}
        check.assertEqual(data["Short"], "short")
        for title in ("Long A", "Long B", "Tilde"):
            check.assertTrue(data[title].startswith("~") and len(data[title].encode()) <= 64, data)
        check.assertNotEqual(data["Long A"], data["Long B"])
        for title, payload in (("Long A", LONG_A), ("Long B", LONG_B), ("Tilde", "~not-a-key"), ("Short", "short")):
            q = longpay.tap(chat, button(info, title), first="Grace", last="Hopper", username="grace")
            ack, said = longpay.take(chat, 2)
            expect_ack(ack, q)
            check.assertIn(" payload=%s text=nil" % payload, said["body"]["text"])
            check.assertIn(" type=callback_query ", said["body"]["text"])
            check.assertIn("display_name=Grace Hopper", said["body"]["text"])
        # a sticker arrives without text, named by msg.channel.type
        sticker = longpay.message_update(chat, first="Grace", last=None, username=None, lang=None)
        sticker["message"]["sticker"] = {"file_id": "CAACAgIAAxkBAAE", "file_unique_id": "AgAD", "type": "regular",
                                         "width": 512, "height": 512, "is_animated": False, "is_video": False}
        check.assertEqual(longpay.post(sticker).status, 200)
        (said,) = longpay.take(chat, 1)
        check.assertEqual(said["body"]["text"], "name=telegram platform=telegram type=sticker display_name=Grace "
                          "username=nil phone=nil locale=nil payload=nil text=nil")
        mapped = dict(store.rows("SELECT key, payload FROM payload_map WHERE bot = 'longpay'"))
        check.assertEqual(mapped.get(data["Long A"]), LONG_A)
        check.assertEqual(mapped.get(data["Tilde"]), "~not-a-key")
        longpay.quiet(chat)
        no_problems()

    def bad_secret(run):
        chat = new_chat()
        mark = srv.mark()
        cases = [(None, 401), ("", 401), ("wrong-" + BARISTA_SECRET, 403), (BARISTA_SECRET[:-1], 403),
                 (LONGPAY_SECRET, 403)]
        for secret, status in cases:
            update = barista.message_update(chat, "hi")
            r = barista.post(update, secret=secret)
            check.assertEqual(r.status, status, "secret %r: %r" % (secret, r))
            check.assertIn("error", r.json or {}, r)
        tap_update = barista.tap_update(chat, "latte")
        check.assertEqual(barista.post(tap_update, secret="nope").status, 403)
        # the other bot's secret does not open this one, and vice versa
        check.assertEqual(longpay.post(longpay.message_update(chat, "hi"), secret=BARISTA_SECRET).status, 403)
        srv.wait_log(r"\[barista\] telegram webhook refused \(401\)", mark)
        srv.wait_log(r"\[barista\] telegram webhook refused \(403\)", mark)
        # a barrier: a good update of another chat goes all the way through
        other = new_chat()
        barista.say(other, "hi")
        barista.take(other, 2)
        for bot in ("barista", "longpay"):
            for table in ("inbox", "transcript", "outbox", "sessions"):
                check.assertEqual(store.count(table, bot, chat), 0, "%s rows of %s for chat %d" % (table, bot, chat))
        check.assertEqual(fake.attempts(chat), [])
        check.assertTrue(srv.alive())
        no_problems()

    def replayed_update(run):
        chat = new_chat()
        update = barista.message_update(chat, "hi")
        # twice at once, then again once the turn is done: one turn
        results = []
        threads = [threading.Thread(target=lambda: results.append(barista.post(update).status)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        check.assertEqual(results, [200, 200])
        greet, ask = barista.take(chat, 2)
        check.assertEqual(barista.post(update).status, 200)
        tap_update = barista.tap_update(chat, button(ask, "Espresso · €2.40")["callback_data"])
        check.assertEqual(barista.post(tap_update).status, 200)
        check.assertEqual(barista.post(tap_update).status, 200)
        ack, size = barista.take(chat, 2)
        expect_ack(ack, tap_update["callback_query"]["id"])
        check.assertIn(size["body"]["text"], ask_size("Espresso"))
        check.assertEqual(barista.post(tap_update).status, 200)
        barista.quiet(chat)
        check.assertEqual(store.count("inbox", "barista", chat), 2)
        check.assertEqual(len(store.rows("SELECT 1 FROM transcript WHERE bot = 'barista' AND channel = 'telegram' "
                                         "AND user = ? AND direction = 'in'", str(chat))), 2)
        no_problems()

    def platform_500_then_200(run):
        chat = new_chat()
        fake.fail_first[chat] = ["500"]
        mark = srv.mark()
        barista.say(chat, "hi")
        greet, ask = barista.take(chat, 2)
        check.assertIn("Bea", greet["body"]["text"])
        check.assertIn(ask["body"]["text"], ASK_DRINK)
        attempts = fake.attempts(chat)
        check.assertEqual([a["outcome"] for a in attempts], ["500", "200", "200"])
        check.assertEqual(attempts[0]["body"], attempts[1]["body"])
        srv.wait_log(r"telegram/%d: sending message \d+ failed \(HTTP 500" % chat, mark)
        # a tap after the retry goes on normally, in order
        fake.fail_first[chat] = ["500", "500"]
        q = barista.tap(chat, button(ask, "Latte · €3.80"))
        ack, size = barista.take(chat, 2)
        expect_ack(ack, q)
        check.assertIn(size["body"]["text"], ask_size("Latte"))
        barista.quiet(chat)
        wait_until(lambda: store.outbox_states("barista", chat) == ["sent"] * 4, what="4 calls marked sent")
        no_problems()

    def platform_down(run):
        chat = new_chat()
        fake.down.add(chat)
        mark = srv.mark()
        barista.say(chat, "hi")
        pattern = r"\[barista\] telegram/%d: outgoing message \d+ is a dead letter after 3 attempts" % chat
        srv.wait_log(pattern, mark)
        wait_until(lambda: len(srv.find_log(pattern, mark)) == 2, what="both replies dead-lettered")
        check.assertEqual(len(fake.attempts(chat)), 6)
        check.assertIn([a["body"]["text"] for a in fake.attempts(chat)][-1], ASK_DRINK)
        wait_until(lambda: store.outbox_states("barista", chat) == ["dead", "dead"], what="2 dead letters stored")
        # the server goes on: health, and another shopper's conversation
        check.assertEqual(srv.request("GET", "/v1/health").status, 200)
        other = new_chat()
        barista.say(other, "hi")
        barista.take(other, 2)
        # and the chat itself, once Telegram is back
        fake.down.discard(chat)
        barista.say(chat, "latte")
        replies = barista.take(chat, 1)
        check.assertIn(replies[0]["body"]["text"], ask_size("Latte"))
        check.assertTrue(srv.alive())
        no_problems()

    def case(name, fn, runs=2):
        """A case whose Bot API rule checks start afresh."""
        def run_case(run):
            fake.take_problems()
            fn(run)
        tap.case(name, run_case, runs=runs)

    try:
        case("the whole barista conversation by tapping inline buttons", whole_conversation)
        case("payloads over 64 bytes round-trip through the map; msg.channel facts", long_payloads)
        case("a missing or wrong secret: 401/403, nothing stored, nothing sent", bad_secret)
        case("a replayed update: 200, one turn", replayed_update)
        case("the platform answers 500, then 200: delivered once, in order", platform_500_then_200)
        case("the platform down past the retry limit: dead letters, server fine", platform_down)

        def secrets_kept(run):
            check.assertNotIn(BARISTA_TOKEN, srv.log_text())
            check.assertNotIn(BARISTA_SECRET, srv.log_text())
            raw = db_contents(srv.db)  # SQLite's file and -wal, or PostgreSQL's rows
            check.assertGreater(len(raw), 0, srv.db)
            for secret in (BARISTA_TOKEN, LONGPAY_TOKEN, BARISTA_SECRET, LONGPAY_SECRET):
                check.assertNotIn(secret.encode(), raw, "a secret in %s" % srv.db)
            check.assertEqual(srv.stop(), 0)
            no_problems()

        case("no token or secret in the log or the database; clean stop", secrets_kept, runs=1)
    finally:
        fake.stop()


if __name__ == "__main__":
    run_suite("telegram channel", main)
