#!/usr/bin/env python3
"""test_channel_twilio: the Twilio Messaging (SMS) channel end to end.

A fake Twilio API (a local HTTP server on a free loopback port, started
here) receives what parley sends through the outbox and checks every
request: the path names the account SID, basic auth is AccountSid:AuthToken,
the body is form-encoded with To, From and Body (at most 1,600 characters).
Webhooks are signed here the way Twilio signs them (HMAC-SHA1 with the auth
token over the public URL followed by the sorted parameters, base64).

Served: the default bot (barista) and a fixture bot "smsfix" (echo, long
text, choices across replies, msg.channel facts), both with the Twilio
channel on; and "smsnotoken", whose auth token variable is not set."""

import base64
import hashlib
import hmac
import json
import os
import re
import sys
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ROOT, Server, check, db_query, make_bot, run_suite, wait_until  # noqa: E402
from channel_helpers import FIXTURE_TONE, FakePlatform, numbered  # noqa: E402

SID = "AC" + uuid.uuid4().hex
TOKEN = "tw-" + uuid.uuid4().hex
FROM = "+15550001111"
PUBLIC = "https://parley.example/v1/bots/%s/channels/twilio"
PATH = "/v1/bots/%s/channels/twilio"
ALLOWED_FIELDS = {"To", "From", "MessagingServiceSid", "Body", "MediaUrl", "StatusCallback"}

# --- the fake Twilio API --------------------------------------------------------------


class FakeTwilio(FakePlatform):
    """Records every request to the Messages API and checks it: {"to",
    "body", "status", "fields"}. fail_next(to, statuses) plans what a
    recipient's next requests get (then 201)."""

    protocol_version = "HTTP/1.0"
    user_key = "to"
    message_key = "body"

    def on_post(self, h, raw):
        status, answer = self.handle(h.path, h.headers, raw.decode("utf-8"))
        self.answer(h, status, answer)

    def took(self, r):
        return r["status"] == 201

    def handle(self, path, headers, raw):
        want_path = "/2010-04-01/Accounts/%s/Messages.json" % SID
        if path != want_path:
            self.problem("path %r, want %r" % (path, want_path))
            return 404, {"code": 20404, "message": "not found"}
        want_auth = "Basic " + base64.b64encode(("%s:%s" % (SID, TOKEN)).encode()).decode()
        if headers.get("Authorization") != want_auth:
            self.problem("Authorization %r" % headers.get("Authorization"))
            return 401, {"code": 20003, "message": "Authenticate"}
        if not (headers.get("Content-Type") or "").startswith("application/x-www-form-urlencoded"):
            self.problem("Content-Type %r" % headers.get("Content-Type"))
        try:
            fields = urllib.parse.parse_qs(raw, keep_blank_values=True, strict_parsing=True)
        except ValueError as e:
            self.problem("body is not a form: %s (%r)" % (e, raw[:200]))
            return 400, {"code": 21602}
        for name, values in fields.items():
            if name not in ALLOWED_FIELDS:
                self.problem("unexpected field %s" % name)
            if name != "MediaUrl" and len(values) != 1:
                self.problem("field %s given %d times" % (name, len(values)))
        to, sender, body = (fields.get(k, [None])[0] for k in ("To", "From", "Body"))
        if not to or sender != FROM:
            self.problem("To %r From %r" % (to, sender))
        if body is None or not (0 < len(body) <= 1600):
            self.problem("Body of %s characters" % (None if body is None else len(body)))
        with self.lock:
            status = self.failure(to) or 201
            self.requests.append({"to": to, "body": body, "status": status, "fields": fields})
        if status != 201:
            return status, {"code": 20500, "message": "fake failure"}
        return 201, {"sid": "SM" + uuid.uuid4().hex, "status": "queued", "to": to, "body": body}


# --- signing and posting webhooks ---------------------------------------------------------


def sign(url, params, token=TOKEN):
    data = url + "".join(k + v for k, v in sorted(params.items()))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def new_phone():
    return "+1555%07d" % (uuid.uuid4().int % 10 ** 7)


def new_sid():
    return "SM" + uuid.uuid4().hex


def inbound(phone, text, sid=None, **extra):
    """The parameters of Twilio's incoming-message webhook."""
    p = {"MessageSid": sid or new_sid(), "SmsSid": sid or "", "AccountSid": SID, "From": phone, "To": FROM,
         "Body": text, "NumMedia": "0", "NumSegments": "1", "SmsStatus": "received", "ApiVersion": "2010-04-01",
         "FromCountry": "US"}
    p["SmsSid"] = p["MessageSid"]
    p.update(extra)
    return p


def post(server, bot, params, signature=None, token=TOKEN, signed_url=None):
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if signature is not False:
        headers["X-Twilio-Signature"] = signature or sign(signed_url or PUBLIC % bot, params, token)
    return server.request("POST", PATH % bot, body=urllib.parse.urlencode(params), headers=headers)


def say(server, bot, phone, text, sid=None, **extra):
    """Posts a signed incoming message that must be acknowledged with TwiML."""
    r = post(server, bot, inbound(phone, text, sid, **extra))
    check.assertEqual(r.status, 200, r)
    check.assertTrue(r.headers.get("content-type", "").startswith("text/xml"), r.headers)
    check.assertIn(b"<Response></Response>", r.body)
    return r


def money(text):
    return int(round(float(text.replace(",", "")) * 100))


# --- the fixture bot ---------------------------------------------------------------------


def long_text():
    paras = []
    for p in range(1, 7):
        words = ["Paragraph %d begins here." % p]
        s = 1
        while len(" ".join(words)) < 600:
            words.append("Sentence %d of paragraph %d says a little more about coffee." % (s, p))
            s += 1
        paras.append(" ".join(words))
    return "\n\n".join(paras)


LONG = long_text()

FIXTURE_FLOW = """\
local LONG = [==[
%s]==]
return {
  start = function(c, msg)
    local words = msg.text or ""
    if msg.payload then
      c:say_text("you picked " .. msg.payload)
    elseif words == "long" then
      c:say_text(LONG)
    elseif words == "multi" then
      c:say_text("First question?", { choices = { { title = "Red", payload = "red" }, { title = "Blue", payload = "blue" } } })
      c:say_text("Or a size?", { choices = { { title = "Small", payload = "small" }, { title = "Large", payload = "large" } } })
    elseif words == "whoami" then
      local ch = msg.channel
      c:say_text(string.format("channel=%%s platform=%%s phone=%%s name=%%s to=%%s", ch.name, tostring(ch.platform),
        tostring(ch.phone), tostring(ch.display_name), tostring(ch.to)))
    else
      c:say_text("echo: " .. words)
    end
    return "wait"
  end,
  wait = { answer = function(c) return "start" end },
}
""" % LONG

def twilio_settings(prefix):
    return {"account_sid_env": prefix + "_ACCOUNT_SID", "auth_token_env": prefix + "_AUTH_TOKEN",
            "from_env": prefix + "_FROM", "public_url_env": prefix + "_PUBLIC_URL"}


def twilio_env(prefix, bot):
    return {prefix + "_ACCOUNT_SID": SID, prefix + "_AUTH_TOKEN": TOKEN, prefix + "_FROM": FROM,
            prefix + "_PUBLIC_URL": PUBLIC % bot}


# --- cases --------------------------------------------------------------------------------


def main(tap):
    fake = FakeTwilio()
    fixture = make_bot("smsfix", {"flows/main.lua": FIXTURE_FLOW, "scripts/tone.lua": FIXTURE_TONE},
                       manifest={"fallback": "fixture fallback", "channels": {"twilio": twilio_settings("SMSFIX_TWILIO")}})
    notoken = make_bot("smsnotoken", {"flows/main.lua": FIXTURE_FLOW, "scripts/tone.lua": FIXTURE_TONE},
                       manifest={"channels": {"twilio": twilio_settings("SMSNOTOKEN_TWILIO")}})
    env = {"PARLEY_TWILIO_API_BASE": "http://127.0.0.1:%d" % fake.port, "PARLEY_OUTBOX_RETRY_MS": "50",
           "PARLEY_OUTBOX_MAX_ATTEMPTS": "3", "SMSNOTOKEN_TWILIO_AUTH_TOKEN": None}
    env.update(twilio_env("BARISTA_TWILIO", "barista"))
    env.update(twilio_env("SMSFIX_TWILIO", "smsfix"))
    server = tap.watch(Server(bots=[ROOT, fixture, notoken], env=env, name="parley"))
    server.start()
    db = server.db

    def no_problems():
        check.assertEqual(fake.problems, [], "the fake Twilio API saw bad requests")

    def conversation(run):
        phone = new_phone()
        say(server, "barista", phone, "hi")
        body = fake.wait_delivered(phone, 1)[0]
        drinks = numbered(body)
        check.assertGreaterEqual(len(drinks), 2, body)
        check.assertEqual(sorted(drinks), list(range(1, len(drinks) + 1)), body)
        drink, drink_price = re.match(r"(.*) · €(\d+\.\d\d)$", drinks[2]).groups()

        say(server, "barista", phone, "2")  # taps the second drink
        body = fake.wait_delivered(phone, 2)[1]
        check.assertIn(drink, body)
        sizes = numbered(body)
        size, extra = re.match(r"(\S+)(?: \+€(\d+\.\d\d))?$", sizes[2]).groups()

        say(server, "barista", phone, "2")  # the second size
        body = fake.wait_delivered(phone, 3)[2]
        check.assertIn("%s %s" % (size, drink), body)
        total = money(drink_price) + money(extra or "0")
        offers = numbered(body)
        say(server, "barista", phone, "2")  # the second offer: a pastry, or "No thanks"
        food = offers[2][4:] if offers[2].startswith("Add ") else None
        if food:
            m = re.search(r"^- %s, €(\d+\.\d\d)" % re.escape(food), body, re.M)
            check.assertIsNotNone(m, "no card line for %s in %r" % (food, body))
            total += money(m.group(1))
        body = fake.wait_delivered(phone, 4)[3]
        check.assertIn("Added %s" % food if food else "", body)
        n = 4
        more = numbered(body)
        check.assertEqual(more.get(2), "That's all", body)
        say(server, "barista", phone, "2")  # that's all
        summary = fake.wait_delivered(phone, n + 1)[n]
        check.assertIn("Here's your order", summary)
        check.assertIn("%s (%s)" % (drink, size), summary)
        if food:
            check.assertIn(food, summary)
        check.assertIn("Total: €%d.%02d" % (total // 100, total % 100), summary)
        for r in fake.attempts(phone):
            check.assertEqual(r["fields"].get("StatusCallback"), [PUBLIC % "barista"])
        check.assertEqual(len(fake.attempts(phone)), n + 1, "one SMS per turn, each sent once")
        no_problems()

    tap.case("the barista conversation over SMS, answering with numbers", conversation)

    def choices_across_replies(run):
        phone = new_phone()
        say(server, "smsfix", phone, "multi")
        body = fake.wait_delivered(phone, 1)[0]
        check.assertEqual(body, "First question?\n1) Red\n2) Blue\n\nOr a size?\n3) Small\n4) Large")
        say(server, "smsfix", phone, "3")
        check.assertEqual(fake.wait_delivered(phone, 2)[1], "you picked small")
        no_problems()

    tap.case("choices are numbered across the replies of a turn; \"3\" taps the third", choices_across_replies)

    def channel_facts(run):
        phone = new_phone()
        say(server, "smsfix", phone, "whoami", ProfileName="Ada %d" % run)
        check.assertEqual(fake.wait_delivered(phone, 1)[0],
                          "channel=twilio platform=sms phone=%s name=Ada %d to=%s" % (phone, run, FROM))
        no_problems()

    tap.case("platform, phone and display name reach Lua as msg.channel", channel_facts)

    def barrier(bot="smsfix"):
        """A message from another shopper, delivered: what came before it was handled."""
        phone = new_phone()
        say(server, bot, phone, "barrier")
        fake.wait_delivered(phone, 1)

    def stored_for(phone, sid):
        return {
            "inbox": db_query(db, "SELECT count(*) FROM inbox WHERE platform_id = ? OR user = ?", sid, phone)[0][0],
            "sessions": db_query(db, "SELECT count(*) FROM sessions WHERE user = ?", phone)[0][0],
            "transcript": db_query(db, "SELECT count(*) FROM transcript WHERE user = ?", phone)[0][0],
            "outbox": db_query(db, "SELECT count(*) FROM outbox WHERE user = ?", phone)[0][0],
        }

    def bad_signature(run):
        phone, sid = new_phone(), new_sid()
        params = inbound(phone, "hi", sid)
        mark = server.mark()
        cases = [
            ("wrong token", post(server, "smsfix", params, token="not-the-token")),
            ("no header", post(server, "smsfix", params, signature=False)),
            ("other URL", post(server, "smsfix", params, signed_url="https://evil.example/v1/bots/smsfix/channels/twilio")),
            ("tampered body", post(server, "smsfix", params, signature=sign(PUBLIC % "smsfix", dict(params, Body="bye")))),
            ("garbage", post(server, "smsfix", params, signature="not base64 at all")),
        ]
        for what, r in cases:
            check.assertIn(r.status, (401, 403), "%s: %r" % (what, r))
        server.wait_log(r"twilio webhook refused \(403\)", mark)
        barrier()
        check.assertEqual(stored_for(phone, sid), {"inbox": 0, "sessions": 0, "transcript": 0, "outbox": 0})
        check.assertEqual(fake.attempts(phone), [])
        no_problems()

    tap.case("a bad or missing signature is refused: nothing stored, nothing sent", bad_signature)

    def missing_token(run):
        phone, sid = new_phone(), new_sid()
        r = post(server, "smsnotoken", inbound(phone, "hi", sid), token="anything")
        check.assertEqual(r.status, 503, r)
        check.assertIn("SMSNOTOKEN_TWILIO_AUTH_TOKEN", r.body.decode())
        check.assertEqual(stored_for(phone, sid), {"inbox": 0, "sessions": 0, "transcript": 0, "outbox": 0})

    tap.case("no auth token configured: 503 naming the variable, nothing stored", missing_token)

    def replay(run):
        phone, sid = new_phone(), new_sid()
        for _ in range(3):
            say(server, "smsfix", phone, "once", sid=sid)
        fake.wait_delivered(phone, 1)
        say(server, "smsfix", phone, "twice")  # a new MessageSid after the replays
        check.assertEqual(fake.wait_delivered(phone, 2), ["echo: once", "echo: twice"])
        check.assertEqual(db_query(db, "SELECT count(*) FROM inbox WHERE platform_id = ?", sid)[0][0], 1)
        check.assertEqual(db_query(db, "SELECT count(*) FROM transcript WHERE user = ? AND direction = 'in'", phone)[0][0], 2)
        check.assertEqual(len(fake.attempts(phone)), 2)
        no_problems()

    tap.case("a replayed delivery (same MessageSid) is acknowledged and ignored", replay)

    def long_reply(run):
        phone = new_phone()
        say(server, "smsfix", phone, "long")
        parts = wait_until(lambda: (lambda d: d if "\n\n".join(d) == LONG else None)(fake.delivered(phone)),
                           what="the long reply in parts")
        check.assertGreaterEqual(len(parts), 3)
        for p in parts:
            check.assertLessEqual(len(p), 1600)
            check.assertTrue(p.startswith("Paragraph "), p[:40])  # cut between paragraphs
            check.assertTrue(p.endswith("."), p[-40:])
        no_problems()

    tap.case("a reply over 1,600 characters goes out in parts cut between paragraphs, in order", long_reply)

    def retried(run):
        phone = new_phone()
        fake.fail_next(phone, 500)
        mark = server.mark()
        say(server, "smsfix", phone, "first")
        say(server, "smsfix", phone, "second")
        check.assertEqual(fake.wait_delivered(phone, 2), ["echo: first", "echo: second"])
        check.assertEqual([(r["status"], r["body"]) for r in fake.attempts(phone)],
                          [(500, "echo: first"), (201, "echo: first"), (201, "echo: second")])
        server.wait_log(r"smsfix\] twilio/%s: sending message \d+ failed \(HTTP 500" % re.escape(phone), mark)
        wait_until(lambda: db_query(db, "SELECT count(*) FROM outbox WHERE user = ? AND state = 'sent'", phone)[0][0] == 2,
                   what="both outbox rows marked sent")
        no_problems()

    tap.case("the platform answers 500, then 200: delivered once, in order", retried)

    def down(run):
        phone = new_phone()
        fake.fail_next(phone, 503, 503, 503)
        mark = server.mark()
        say(server, "smsfix", phone, "lost")
        server.wait_log(r"smsfix\] twilio/%s: outgoing message \d+ is a dead letter after 3 attempts: HTTP 503"
                            % re.escape(phone), mark)
        check.assertEqual([r["status"] for r in fake.attempts(phone)], [503, 503, 503])
        wait_until(lambda: db_query(db, "SELECT count(*) FROM outbox WHERE user = ? AND state = 'dead'", phone)[0][0] == 1,
                   what="the outbox row marked dead")
        check.assertEqual(server.request("GET", "/v1/health").status, 200)
        check.assertTrue(server.alive())
        # the shopper's next message still goes out
        say(server, "smsfix", phone, "back")
        check.assertEqual(fake.wait_delivered(phone, 1), ["echo: back"])
        no_problems()

    tap.case("the platform down past the retry limit: a dead letter logged, the server goes on", down)

    def status_callback(run):
        phone = new_phone()
        say(server, "smsfix", phone, "hello")
        fake.wait_delivered(phone, 1)
        sid = new_sid()
        for status in ("sent", "delivered", "queued"):
            params = {"AccountSid": SID, "ApiVersion": "2010-04-01", "From": FROM, "To": phone, "MessageSid": sid,
                      "SmsSid": sid, "MessageStatus": status, "SmsStatus": status}
            r = post(server, "smsfix", params)
            check.assertEqual(r.status, 200, r)
        rows = wait_until(lambda: (lambda rows: rows if len(rows) >= 2 else None)(db_query(
            db, "SELECT body FROM transcript WHERE user = ? AND direction = 'status' ORDER BY id", phone)),
            what="status lines in the transcript")
        check.assertEqual([json.loads(b)["status"] for (b,) in rows], ["sent", "delivered"])
        check.assertEqual({json.loads(b)["id"] for (b,) in rows}, {sid})
        params["MessageStatus"] = "failed"
        check.assertEqual(post(server, "smsfix", params, token="wrong").status, 403)

    tap.case("status callbacks are recorded as delivery statuses", status_callback)

    tap.unwatch(server)
    check.assertEqual(server.stop(), 0)
    fake.stop()


if __name__ == "__main__":
    run_suite("twilio channel", main)
