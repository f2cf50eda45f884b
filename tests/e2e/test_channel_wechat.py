#!/usr/bin/env python3
"""test_channel_wechat: the WeChat Official Accounts channel end to end.

Starts `parley serve` on the default bot with the WeChat secrets in its
environment and PARLEY_WECHAT_API_BASE pointing at a fake WeChat API that
this file runs on a free loopback port. The fake serves the stable access
token (POST /cgi-bin/stable_token: the JSON body checked) and the
customer-service message API (POST /cgi-bin/message/custom/send: the
access_token checked against the one in force, the body against the
documented text and news shapes, text at most 2048 bytes, one article per
news message, at most 5 messages per message the shopper sent), records
what it took, and answers as WeChat does: HTTP 200 with {"errcode": 0} — or
a case's 500, 429 with Retry-After, 42001 (token expired) or 45015 (the
48-hour window). Pushes are signed here as WeChat signs them (SHA-1 of the
sorted token, timestamp and nonce), and in safe mode encrypted with
AES-256-CBC by the `cryptography` package and signed with msg_signature,
(or the openssl command), so the adapter's cipher is checked against
another implementation.

Cases: the whole barista order answered with numbers, up to the payment
link (an <a href> to the test provider's page) and paying there (the
confirmation reaches the shopper); the verification handshake; a safe-mode
conversation; bad signatures, stale pushes and malformed or hostile XML
(4xx, nothing stored); a signed query replayed with another body (403,
nothing stored); a redelivery (one turn); 500-then-200 and
429-with-Retry-After (sent once, in order); an expired token (fetched
again, the message sent once); WeChat's 45015 (a dead letter naming it);
the 48-hour window on parley's test clock (a reminder within it goes, one
past it is not sent but logged and counted, nor an agent's reply past
it); a handoff with the agent's reply reaching the shopper."""

import base64
import functools
import hashlib
import json
import os
import re
import struct
import subprocess
import sys
import time
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server, check, db_query, new_user, run_suite, wait_until  # noqa: E402
from commerce_helpers import PayLink, advance, event_turns  # noqa: E402
from channel_helpers import (FakePlatform, Later, numbered, stored_for, turns as channel_turns,  # noqa: E402
                             wait_sent)

try:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
except ImportError:  # without the cryptography package: the openssl command
    Cipher = None

BOT = "barista"
HOOK = "/v1/bots/%s/channels/wechat" % BOT
TOKEN = "e2e-wechat-token"
APP_ID = "wxe2e0123456789ab"
SECRET = "e2e-wechat-app-secret"
AES_KEY = "Qk1uYXJpc3RhU2FmZU1vZGVLZXkwMTIzNDU2Nzg5QUJ"  # 43 letters and digits
ACCOUNT = "gh_e2e0barista"
TEXT_MAX = 2048
QUOTA = 5


# --- signing and encrypting as WeChat does ------------------------------------------------


def sha1_sorted(*parts):
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def aes_key():
    key = base64.b64decode(AES_KEY + "=")
    assert len(key) == 32
    return key


def encrypt(xml, app_id=APP_ID):
    msg = xml.encode()
    plain = os.urandom(16) + struct.pack(">I", len(msg)) + msg + app_id.encode()
    pad = 32 - len(plain) % 32
    plain += bytes([pad]) * pad
    key = aes_key()
    if Cipher is not None:
        e = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
        return base64.b64encode(e.update(plain) + e.finalize()).decode()
    out = subprocess.run(["openssl", "enc", "-aes-256-cbc", "-nopad", "-K", key.hex(), "-iv", key[:16].hex()],
                         input=plain, stdout=subprocess.PIPE, check=True).stdout
    return base64.b64encode(out).decode()


def signed_query(timestamp=None, nonce=None, token=TOKEN, **extra):
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or str(uuid.uuid4().int % 10**10)
    q = {"signature": sha1_sorted(token, ts, nonce), "timestamp": ts, "nonce": nonce}
    q.update(extra)
    return q


# --- the fake WeChat API -----------------------------------------------------------------


def text_problems(msg):
    p = []
    if set(msg) != {"touser", "msgtype", "text"}:
        p.append("a text message has fields %s" % sorted(msg))
    content = (msg.get("text") or {}).get("content") if isinstance(msg.get("text"), dict) else None
    if not isinstance(content, str) or not content.strip():
        p.append("text.content missing or empty: %r" % msg.get("text"))
    elif len(content.encode()) > TEXT_MAX:
        p.append("text.content over %d bytes (%d)" % (TEXT_MAX, len(content.encode())))
    elif set(msg["text"]) != {"content"}:
        p.append("text has fields %s" % sorted(msg["text"]))
    return p


def web_url(u):
    parts = urllib.parse.urlsplit(u) if isinstance(u, str) else None
    return bool(parts and parts.scheme in ("http", "https") and parts.netloc)


def news_problems(msg):
    p = []
    if set(msg) != {"touser", "msgtype", "news"}:
        p.append("a news message has fields %s" % sorted(msg))
    articles = (msg.get("news") or {}).get("articles") if isinstance(msg.get("news"), dict) else None
    if not (isinstance(articles, list) and len(articles) == 1):
        return p + ["a customer-service news message holds exactly one article: %r" % msg.get("news")]
    a = articles[0]
    if set(a) - {"title", "description", "url", "picurl"}:
        p.append("article has undocumented fields %s" % sorted(a))
    if not (isinstance(a.get("title"), str) and a["title"].strip()):
        p.append("article title missing: %r" % a)
    for k in ("url", "picurl"):
        if k in a and not web_url(a[k]):
            p.append("article %s is not a web address: %r" % (k, a[k]))
    return p


class FakeWeChat(FakePlatform):
    """The stable_token and customer-service endpoints on 127.0.0.1. Records
    are every attempt: {"user", "msg", "status", "errcode", "at"};
    fail_first lists a user's answers to give in turn: 500, 429, 42001,
    45015."""

    message_key = "msg"

    def __init__(self):
        super().__init__()
        self.token_fetches = 0
        self.token = None        # the token in force
        self.allowance = {}      # user -> messages the shopper's last message still allows

    def on_post(self, h, raw):
        url = urllib.parse.urlsplit(h.path)
        if url.path == "/cgi-bin/stable_token":
            self.answer(h, 200, self.stable_token(raw))
        elif url.path == "/cgi-bin/message/custom/send":
            self.answer(h, *self.custom_send(urllib.parse.parse_qs(url.query), h.headers.get("Content-Type"), raw))
        else:
            self.problem("POST to %s" % url.path)
            self.answer(h, 404, {"errcode": 404, "errmsg": "no such API"})

    def on_get(self, h):
        self.problem("unexpected GET %s (the token is fetched with POST /cgi-bin/stable_token)" % h.path)
        self.answer(h, 405, {})

    def took(self, r):
        return r["status"] == 200 and r["errcode"] == 0

    def stable_token(self, raw):
        try:
            body = json.loads(raw.decode())
        except ValueError:
            self.problem("the stable_token body is not JSON")
            return {"errcode": 47001, "errmsg": "data format error"}
        if set(body) - {"force_refresh"} != {"grant_type", "appid", "secret"}:
            self.problem("stable_token fields %s" % sorted(body))
        if (body.get("grant_type"), body.get("appid"), body.get("secret")) != ("client_credential", APP_ID, SECRET):
            self.problem("stable_token asked with %r" % body)
            return {"errcode": 40013, "errmsg": "invalid appid"}
        with self.lock:
            self.token_fetches += 1
            if not self.token:
                self.token = "ACCESS_%d_%s" % (self.token_fetches, uuid.uuid4().hex)
            return {"access_token": self.token, "expires_in": 7200}

    def allow(self, user, n=QUOTA):
        """The shopper wrote: n customer-service messages are allowed."""
        with self.lock:
            self.allowance[user] = n

    def custom_send(self, query, content_type, raw):
        problems = []
        if not (content_type or "").startswith("application/json"):
            problems.append("Content-Type is %r" % content_type)
        try:
            msg = json.loads(raw.decode())
        except ValueError:
            msg = {}
            problems.append("the body is not JSON")
        user = msg.get("touser")
        if not (isinstance(user, str) and user):
            problems.append("touser is %r" % user)
        kind = msg.get("msgtype")
        if kind == "text":
            problems += text_problems(msg)
        elif kind == "news":
            problems += news_problems(msg)
        else:
            problems.append("msgtype %r" % kind)
        with self.lock:
            token = (query.get("access_token") or [None])[0]
            step = self.failure(user)
            if step == 42001:       # WeChat ends the token early: the one in force changes
                self.token = None
            record = {"user": user, "msg": msg, "at": time.monotonic()}
            self.requests.append(record)
            if problems:
                self.problems.extend(problems)
                record.update(status=200, errcode=40003)
                return 200, {"errcode": 40003, "errmsg": "invalid parameter"}, ()
            if step in (500, 429):
                record.update(status=step, errcode=None)
                return step, {"errcode": -1, "errmsg": "system error"}, (("Retry-After", "1"),) if step == 429 else ()
            if token is None or token != self.token or step == 42001:
                record.update(status=200, errcode=42001 if step == 42001 else 40001)
                return 200, {"errcode": record["errcode"], "errmsg": "access_token expired"}, ()
            if step == 45015:
                record.update(status=200, errcode=45015)
                return 200, {"errcode": 45015, "errmsg": "response out of time limit or subscription is canceled"}, ()
            left = self.allowance.get(user, 0)
            if left <= 0:
                self.problems.append("more customer-service messages to %s than its last message allows" % user)
                record.update(status=200, errcode=45047)
                return 200, {"errcode": 45047, "errmsg": "out of response count limit"}, ()
            self.allowance[user] = left - 1
            record.update(status=200, errcode=0)
            return 200, {"errcode": 0, "errmsg": "ok"}, ()


# --- pushes ------------------------------------------------------------------------------------


def cdata(s):
    return "<![CDATA[%s]]>" % s.replace("]]>", "]]]]><![CDATA[>")


def text_xml(user, text, msg_id=None, created=None):
    return ("<xml><ToUserName>%s</ToUserName><FromUserName>%s</FromUserName><CreateTime>%d</CreateTime>"
            "<MsgType>%s</MsgType><Content>%s</Content><MsgId>%s</MsgId></xml>"
            % (cdata(ACCOUNT), cdata(user), created or int(time.time()), cdata("text"), cdata(text),
               msg_id or str(uuid.uuid4().int % 10**19)))


def event_xml(user, event, key=None, created=None):
    return ("<xml><ToUserName>%s</ToUserName><FromUserName>%s</FromUserName><CreateTime>%d</CreateTime>"
            "<MsgType>%s</MsgType><Event>%s</Event>%s</xml>"
            % (cdata(ACCOUNT), cdata(user), created or int(time.time()), cdata("event"), cdata(event),
               "<EventKey>%s</EventKey>" % cdata(key) if key is not None else ""))


def push(server, xml, query=None):
    q = query if query is not None else signed_query(openid="o")
    return server.request("POST", HOOK + "?" + urllib.parse.urlencode(q), body=xml.encode(),
                          headers={"Content-Type": "text/xml"})


def safe_push(server, xml, app_id=APP_ID, tamper=False):
    enc = encrypt(xml, app_id)
    q = signed_query(encrypt_type="aes")
    q["msg_signature"] = sha1_sorted(TOKEN, q["timestamp"], q["nonce"], enc)
    if tamper:
        q["msg_signature"] = sha1_sorted(TOKEN, q["timestamp"], q["nonce"], enc + "x")
    body = "<xml><ToUserName>%s</ToUserName><Encrypt>%s</Encrypt></xml>" % (cdata(ACCOUNT), cdata(enc))
    return push(server, body, q)


PUSHED = {}  # user -> messages pushed for them (each a turn)


def say(server, fake, user, text, allow=QUOTA):
    fake.allow(user, allow)
    PUSHED[user] = PUSHED.get(user, 0) + 1
    r = push(server, text_xml(user, text))
    check.assertEqual((r.status, r.body), (200, b"success"), r)
    return r


# --- what was sent ------------------------------------------------------------------------------


def said(m):
    if m.get("msgtype") == "text":
        return m["text"]["content"]
    a = m["news"]["articles"][0]
    return "[news] %s | %s" % (a["title"], a.get("description", ""))


def choice_number(msgs, title_re):
    """The number of the offered choice whose title matches."""
    for m in reversed(msgs):
        if m.get("msgtype") == "text":
            for n, title in numbered(m["text"]["content"]).items():
                if re.search(title_re, title):
                    return n
    raise AssertionError("no choice like %r in %r" % (title_re, [said(m) for m in msgs]))


turns = functools.partial(channel_turns, channel="wechat")


def env_for(fake, **extra):
    env = {
        "BARISTA_WECHAT_TOKEN": TOKEN,
        "BARISTA_WECHAT_APP_ID": APP_ID,
        "BARISTA_WECHAT_APP_SECRET": SECRET,
        "BARISTA_WECHAT_AES_KEY": None,
        "PARLEY_WECHAT_API_BASE": fake.base,
        "PARLEY_OUTBOX_RETRY_MS": "50",
        "PARLEY_OUTBOX_MAX_ATTEMPTS": "3",
        "BARISTA_STRIPE_SECRET_KEY": None,
        "PARLEY_PUBLIC_URL": None,
    }
    env.update(extra)
    return env


# --- the cases ----------------------------------------------------------------------------------


def main(tap):
    fake = FakeWeChat()
    env = env_for(fake)
    server = tap.watch(Server(env=env, name="parley").start())

    def no_problems():
        check.assertEqual(fake.take_problems(), [], "requests that do not follow WeChat's documentation")

    def order(user):
        """hi -> latte -> large -> no pastry -> that's all; returns the messages so far."""
        say(server, fake, user, "hi")
        sent = wait_sent(fake, user, 0, lambda m: "Latte" in said(m) and numbered(said(m)), "the drinks")
        n = choice_number(sent, r"^Latte")
        seen = len(fake.delivered(user))
        say(server, fake, user, str(n))
        sent = wait_sent(fake, user, seen, lambda m: re.search(r"(?m)^\d+\) Large", said(m)), "the sizes")
        n = choice_number(sent, r"^Large")
        seen = len(fake.delivered(user))
        say(server, fake, user, str(n))
        sent = wait_sent(fake, user, seen, lambda m: re.search(r"(?m)^\d+\) (No thanks|That's all)", said(m)),
                         "a pastry offer or what next")
        if any(re.search(r"(?m)^\d+\) No thanks", said(m)) for m in sent):
            check.assertTrue(any(m["msgtype"] == "news" for m in sent), "the pairing's cards as news: %r" % sent)
            seen = len(fake.delivered(user))
            say(server, fake, user, str(choice_number(sent, r"^No thanks")))
            sent = wait_sent(fake, user, seen, lambda m: re.search(r"(?m)^\d+\) That's all", said(m)), "anything else?")
        seen = len(fake.delivered(user))
        say(server, fake, user, str(choice_number(sent, r"^That's all")))
        return wait_sent(fake, user, seen, lambda m: "Total: €4.70" in said(m), "the summary")

    def conversation(run):
        user = new_user("oWx")
        fetches = fake.token_fetches
        sent = order(user)
        check.assertIn("Latte (Large)", "\n".join(said(m) for m in sent))
        n = choice_number(sent, r"(?i)pay")
        seen = len(fake.delivered(user))
        say(server, fake, user, str(n))
        sent = wait_sent(fake, user, seen, lambda m: "<a href=" in said(m), "the payment link")
        text = said(sent[-1])
        m = re.search(r'Order #(\d+): €4\.70\..*<a href="([^"]+)">Pay €4\.70</a>', text, re.S)
        check.assertTrue(m, "the payment link as an anchor: %r" % text)
        link = PayLink(m.group(2))
        check.assertEqual(link.order_id, int(m.group(1)))
        check.assertEqual(link.netloc, "127.0.0.1:%d" % server.port)
        seen = len(fake.delivered(user))
        fake.allow(user)
        link.pay(server)
        sent = wait_sent(fake, user, seen, lambda m: re.search(r"(?i)paid|thank", said(m)), "the payment's confirmation")
        # what the flow saw of the channel (msg.channel)
        row = db_query(server.db, "SELECT body FROM transcript WHERE user = ? AND direction = 'in' ORDER BY id LIMIT 1", user)
        info = json.loads(row[0][0]).get("info")
        check.assertEqual(info, {"platform": "wechat", "openid": user, "account": ACCOUNT, "type": "text"})
        check.assertLessEqual(fake.token_fetches - fetches, 1, "the access token is cached")
        check.assertEqual([e["type"] for e, _ in event_turns(server.db, user, "wechat")], ["payment"],
                          "the payment ran one event turn, whose replies went out over WeChat")
        check.assertEqual(turns(server, user), PUSHED[user] + 1)
        no_problems()

    def subscribe_and_ignored_events(run):
        user = new_user("oWx")
        fake.allow(user, 3)
        r = push(server, event_xml(user, "subscribe", "qrscene_42"))
        check.assertEqual((r.status, r.body), (200, b"success"))
        wait_sent(fake, user, 0, lambda m: m["msgtype"] == "text", "a greeting to a new follower")
        check.assertLessEqual(len(fake.attempts(user)), 3, "at most 3 messages after a subscription")
        for event in ("unsubscribe", "VIEW", "LOCATION"):
            r = push(server, event_xml(user, event, "x"))
            check.assertEqual((r.status, r.body), (200, b"success"))
        check.assertEqual(turns(server, user), 1)
        info = json.loads(db_query(server.db, "SELECT body FROM transcript WHERE user = ? AND direction = 'in'", user)[0][0])["info"]
        check.assertEqual((info["event"], info["event_key"]), ("subscribe", "qrscene_42"))
        no_problems()

    def handshake(run):
        q = signed_query(echostr="4375120948345356%d" % run)
        r = server.request("GET", HOOK + "?" + urllib.parse.urlencode(q))
        check.assertEqual((r.status, r.body), (200, b"4375120948345356%d" % run))
        check.assertTrue(r.headers.get("content-type", "").startswith("text/plain"), r.headers)
        q["signature"] = sha1_sorted("guess", q["timestamp"], q["nonce"])
        r = server.request("GET", HOOK + "?" + urllib.parse.urlencode(q))
        check.assertEqual(r.status, 403, r)
        check.assertNotIn(q["echostr"].encode(), r.body)
        r = server.request("GET", HOOK + "?echostr=1")
        check.assertEqual(r.status, 401, r)

    def refused_pushes(run):
        user = new_user("oIntruder")
        mark = server.mark()
        xml = text_xml(user, "hi")
        cases = [
            (signed_query(token="not-the-token"), xml, 403),
            ({k: v for k, v in signed_query().items() if k != "signature"}, xml, 401),
            (signed_query(timestamp=int(time.time()) - 3600), xml, 403),
            (signed_query(), "<xml><FromUserName>", 400),
            (signed_query(), "{\"ToUserName\": \"%s\"}" % ACCOUNT, 400),
            (signed_query(), xml.replace("<MsgType>", "<MsgType>").replace("<CreateTime>", "<CreateTime>x"), 400),
            (signed_query(), "<!DOCTYPE xml [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>" + xml.replace(cdata("hi"), "&x;"), 400),
            (signed_query(), "<!DOCTYPE xml [<!ENTITY a \"lol\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;\">]>"
             + xml.replace(cdata("hi"), "&b;"), 400),
        ]
        for q, body, status in cases:
            r = push(server, body, q)
            check.assertEqual(r.status, status, (q, body[:80], r))
        refused = r"wechat webhook refused \((4\d\d)\)"
        wait_until(lambda: len(server.find_log(refused, mark)) >= len(cases), what="the refusals logged")
        check.assertEqual(stored_for(server, user), {"inbox": 0, "sessions": 0, "transcript": 0, "outbox": 0})
        check.assertEqual(fake.attempts(user), [])
        no_problems()

    def replayed_query(run):
        user, intruder = new_user("oWx"), new_user("oIntruder")
        q = signed_query(openid="o")
        xml = text_xml(user, "hi")
        fake.allow(user)
        check.assertEqual(push(server, xml, q).status, 200)
        wait_sent(fake, user, 0, lambda m: numbered(said(m)), "the answer to hi")
        mark = server.mark()
        r = push(server, text_xml(intruder, "refund my order"), q)  # the query from a proxy's log, another body
        check.assertEqual(r.status, 403, r)
        server.wait_log(r"wechat webhook refused \(403\).*a replay", mark)
        check.assertEqual(push(server, xml, q).status, 200)  # WeChat's own retry of the push
        check.assertEqual(stored_for(server, intruder), {"inbox": 0, "sessions": 0, "transcript": 0, "outbox": 0})
        check.assertEqual(turns(server, user), 1)
        no_problems()

    def redelivery(run):
        user = new_user("oWx")
        xml = text_xml(user, "hi", msg_id=str(uuid.uuid4().int % 10**19))
        fake.allow(user)
        first, again = push(server, xml), push(server, xml)  # WeChat retries after 5 s with the same MsgId
        check.assertEqual((first.status, again.status), (200, 200))
        wait_sent(fake, user, 0, lambda m: numbered(said(m)), "the answer to hi")
        check.assertEqual(push(server, xml).status, 200)  # once more, after the turn
        seen = len(fake.delivered(user))
        say(server, fake, user, "1")  # a later message is a barrier
        wait_sent(fake, user, seen, lambda m: numbered(said(m)), "the next answer")
        check.assertEqual(turns(server, user), 2)
        no_problems()

    def flaky_platform(run):
        user = new_user("oWx")
        fake.fail_first[user] = [500]
        mark = server.mark()
        say(server, fake, user, "hi")
        wait_sent(fake, user, 0, lambda m: numbered(said(m)), "the answer after a 500")
        attempts = fake.attempts(user)
        check.assertEqual([a["status"] for a in attempts], [500] + [200] * (len(attempts) - 1))
        check.assertEqual(attempts[0]["msg"], attempts[1]["msg"], "the failed message is sent again first")
        delivered = fake.delivered(user)
        check.assertEqual(len(delivered), len({json.dumps(m, sort_keys=True) for m in delivered}), "each sent once")
        server.wait_log(r"wechat/%s: sending message \d+ failed \(HTTP 500.*retry 1 in" % user, mark)
        no_problems()

    def rate_limited(run):
        user = new_user("oWx")
        fake.fail_first[user] = [429]
        say(server, fake, user, "hi")
        wait_sent(fake, user, 0, lambda m: numbered(said(m)), "the answer after a 429")
        attempts = fake.attempts(user)
        check.assertEqual([a["status"] for a in attempts][:2], [429, 200])
        check.assertGreaterEqual(attempts[1]["at"] - attempts[0]["at"], 0.9, "Retry-After: 1 honoured")
        check.assertEqual(attempts[0]["msg"], attempts[1]["msg"])
        no_problems()

    def token_expired(run):
        user = new_user("oWx")
        fetches = fake.token_fetches
        fake.fail_first[user] = [42001]
        mark = server.mark()
        say(server, fake, user, "hi")
        wait_sent(fake, user, 0, lambda m: numbered(said(m)), "the answer with a new token")
        attempts = fake.attempts(user)
        check.assertEqual([a["errcode"] for a in attempts][:2], [42001, 0])
        check.assertEqual(attempts[0]["msg"], attempts[1]["msg"])
        check.assertEqual(fake.token_fetches, fetches + 1, "fetched again once")
        server.wait_log(r"wechat/%s: sending message \d+ failed \(HTTP 200, refused: the access token is no longer valid" % user, mark)
        no_problems()

    def window_closed(run):
        user = new_user("oWx")
        fake.fail_first[user] = [45015] * 10
        mark = server.mark()
        say(server, fake, user, "hi")
        dead = r"wechat/%s: outgoing message \d+ is a dead letter after 1 attempt: .*48-hour" % user
        server.wait_log(dead, mark, timeout=8)
        wait_until(lambda: db_query(server.db, "SELECT count(*) FROM outbox WHERE user = ? AND state = 'dead'", user)[0][0] >= 1,
                   what="the outbox row marked dead")
        fake.fail_first[user] = []
        no_problems()

    def messaging_window(run):
        s = tap.watch(Server(env=env_for(fake, PARLEY_TEST_CLOCK="1", PARLEY_AGENT_TOKEN="wechat-agent",
                                         BARISTA_AGENT_TOKEN=None), name="parley (wechat test clock)").start())
        moved = [0]  # how far parley's clock is ahead: pushes are signed at its time

        def move(seconds):
            advance(s, seconds)
            moved[0] += seconds

        def outside():
            r = s.request("GET", "/v1/health")
            check.assertEqual(r.status, 200, r)
            return r.json["node"]["outbox"]["outside_window"]

        def tell(user, text, pred, what):
            fake.allow(user)
            seen = len(fake.delivered(user))
            r = push(s, text_xml(user, text), signed_query(timestamp=int(time.time()) + moved[0], openid="o"))
            check.assertEqual((r.status, r.body), (200, b"success"), r)
            return wait_sent(fake, user, seen, pred, what)

        def leave_cart(user):
            sent = tell(user, "hi", lambda m: "Latte" in said(m) and numbered(said(m)), "the drinks")
            sent = tell(user, str(choice_number(sent, r"^Latte")), lambda m: re.search(r"(?m)^\d+\) Large", said(m)),
                        "the sizes")
            tell(user, str(choice_number(sent, r"^Large")),
                 lambda m: re.search(r"(?m)^\d+\) (No thanks|That's all)", said(m)), "a pastry offer or what next")

        def reminder_turns(user):
            return [r for _, replies in event_turns(s.db, user, "wechat", "job") for r in replies
                    if "in your cart" in (r.get("text") or "")]

        check.assertEqual(outside(), 0)
        # a reminder within the 48 hours goes out
        early = new_user("oWx")
        leave_cart(early)
        n = len(fake.delivered(early))
        fake.allow(early)
        move(61 * 60)
        wait_sent(fake, early, n, lambda m: "You left 1 item(s) in your cart" in said(m), "the reminder")
        # one that comes past them is not sent: logged and counted
        late = new_user("oWx")
        leave_cart(late)
        n = len(fake.attempts(late))
        fake.allow(late)
        mark = s.mark()
        move(49 * 3600)
        s.wait_log(r"wechat/%s: not sent: the shopper last wrote 49 h ago, past wechat's 48-hour messaging window"
                   % late, mark)
        # the line is logged as the turn's replies are rendered, before its commit
        wait_until(lambda: len(reminder_turns(late)) == 1, what="the reminder's turn committed")
        check.assertEqual(outside(), 1)
        check.assertEqual(len(fake.attempts(late)), n, "and nothing was sent to WeChat")
        # a person's words get no longer window
        user = new_user("oWx")
        tell(user, "can I talk to a person?", lambda m: "getting one of our team" in said(m), "the handoff")
        auth = {"Authorization": "Bearer wechat-agent"}
        r = s.request("POST", "/v1/agent/conversations/barista/wechat/%s/claim" % user, {"agent": "Mia"}, headers=auth)
        check.assertEqual(r.status, 200, r)
        wait_sent(fake, user, 0, lambda m: said(m) == "Mia from our team is here to help.", "the claim")
        n = len(fake.attempts(user))
        move(49 * 3600)
        mark = s.mark()
        r = s.request("POST", "/v1/agent/conversations/barista/wechat/%s/reply" % user,
                      {"agent": "Mia", "text": "Still there?"}, headers=auth)
        check.assertEqual(r.status, 200, r)
        s.wait_log(r"wechat/%s: not sent: .*past the window for a person's replies" % user, mark)
        check.assertEqual(outside(), 2)
        check.assertEqual(len(fake.attempts(user)), n)
        no_problems()

    safe = Later(tap, env_for(fake, BARISTA_WECHAT_AES_KEY=AES_KEY), "parley (wechat safe mode)")

    def safe_mode(run):
        s = safe()
        user = new_user("oSafe")
        fake.allow(user)
        r = safe_push(s, text_xml(user, "hi"))
        check.assertEqual((r.status, r.body), (200, b"success"), r)
        sent = wait_sent(fake, user, 0, lambda m: "Latte" in said(m), "the answer to an encrypted hi")
        seen = len(fake.delivered(user))
        fake.allow(user)
        r = safe_push(s, text_xml(user, str(choice_number(sent, r"^Latte"))))
        check.assertEqual(r.status, 200, r)
        wait_sent(fake, user, seen, lambda m: re.search(r"(?m)^\d+\) Large", said(m)), "the sizes")
        # refused: plaintext, a wrong msg_signature, another app's message
        other = new_user("oSafe")
        check.assertEqual(push(s, text_xml(other, "hi")).status, 403)
        check.assertEqual(safe_push(s, text_xml(other, "hi"), tamper=True).status, 403)
        check.assertEqual(safe_push(s, text_xml(other, "hi"), app_id="wxsomeoneelse").status, 403)
        check.assertEqual(stored_for(s, other), {"inbox": 0, "sessions": 0, "transcript": 0, "outbox": 0})
        no_problems()

    agents = Later(tap, env_for(fake, PARLEY_AGENT_TOKEN="wechat-agent", BARISTA_AGENT_TOKEN=None),
                   "parley (wechat handoff)")

    def handoff(run):
        s = agents()
        auth = {"Authorization": "Bearer wechat-agent"}
        user = new_user("oWx")
        say(s, fake, user, "hi")
        wait_sent(fake, user, 0, lambda m: numbered(said(m)), "the greeting")
        seen = len(fake.delivered(user))
        say(s, fake, user, "can I talk to a person?")
        wait_sent(fake, user, seen, lambda m: "getting one of our team" in said(m), "the handoff")

        def act(action, body):
            r = s.request("POST", "/v1/agent/conversations/barista/wechat/%s/%s" % (user, action), body, headers=auth)
            check.assertEqual(r.status, 200, r)

        seen = len(fake.delivered(user))
        act("claim", {"agent": "Mia"})
        wait_sent(fake, user, seen, lambda m: said(m) == "Mia from our team is here to help.", "the claim")
        seen = len(fake.delivered(user))
        act("reply", {"agent": "Mia", "text": "Hi! Your oat latte is on the counter."})
        wait_sent(fake, user, seen, lambda m: said(m) == "Hi! Your oat latte is on the counter.", "the agent's reply")
        act("handback", {"agent": "Mia", "flow": "drink", "step": "choose"})
        no_problems()

    try:
        tap.case("the barista order over WeChat answered with numbers, paid through the test provider's page",
                 conversation)
        tap.case("a subscription greets; other events are acknowledged without a turn", subscribe_and_ignored_events)
        tap.case("server verification answers echostr", handshake)
        tap.case("bad signatures, stale pushes, malformed and hostile XML: 4xx, nothing stored", refused_pushes)
        tap.case("a signed query replayed with another body: 403, nothing stored; WeChat's retry goes",
                 replayed_query)
        tap.case("a redelivered push (same MsgId) is one turn", redelivery)
        tap.case("WeChat answers 500 then 200: sent once, in order", flaky_platform)
        tap.case("WeChat answers 429 with Retry-After: honoured, sent once", rate_limited)
        tap.case("an expired access token (42001): fetched again, the message sent once", token_expired)
        tap.case("outside the 48-hour window (45015): a dead letter naming it", window_closed)
        tap.case("the 48-hour window on parley's clock: a late reminder is not sent (logged, counted), nor an "
                 "agent's late reply", messaging_window)
        tap.case("safe mode: encrypted pushes with msg_signature; plaintext and forgeries refused", safe_mode)
        tap.case("handoff: the agent's claim and reply reach the shopper through the customer-service API", handoff)
    finally:
        fake.stop()


if __name__ == "__main__":
    run_suite("channel: wechat", main)
