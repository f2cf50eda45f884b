#!/usr/bin/env python3
"""test_http: the HTTP contract of `parley serve` with the default bot (the
barista at the repository root): messages, replies with choices and cards,
locales, router intents, /v1/health, and every kind of bad input (400, 404,
405, 413), after each of which the server must still answer normally."""

import datetime
import email.utils
import json
import urllib.parse
import os
import re
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (LOG_LINE, Server, check, choices, cards, db_query, new_user, run_suite, texts)  # noqa: E402

BOT = "barista"
MESSAGES = "/v1/bots/barista/messages"
DRINKS = ["espresso", "latte", "cappuccino", "flat_white", "matcha_latte", "hot_chocolate"]
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def check_reply_shapes(replies):
    """Replies carry text, choices, cards, an image or a (payment) link only,
    and only when not empty."""
    for r in replies:
        check.assertLessEqual(set(r), {"text", "choices", "cards", "image", "link"}, r)
        if "link" in r:
            check.assertEqual(set(r["link"]), {"title", "url"}, r)
        if "text" in r:
            check.assertIsInstance(r["text"], str)
            check.assertNotEqual(r["text"], "", r)
        for c in r.get("choices", []):
            check.assertEqual(set(c), {"title", "payload"}, c)
            check.assertIsInstance(c["title"], str)
            check.assertIsInstance(c["payload"], str)
        if "choices" in r:
            check.assertNotEqual(r["choices"], [], "an empty choices list must be left out: %r" % r)
        if "cards" in r:
            check.assertNotEqual(r["cards"], [], "an empty cards list must be left out: %r" % r)
        for c in r.get("cards", []):
            check.assertEqual(set(c), {"sku", "title", "subtitle", "image", "price", "payload"}, c)
            check.assertEqual(set(c["price"]), {"amount", "currency"}, c)
            check.assertIsInstance(c["price"]["amount"], int)


def main(tap):
    srv = tap.watch(Server(name="parley (default bot)").start())

    def still_serving():
        """A normal message still gets a normal answer."""
        check.assertIsNone(srv.proc.poll(), "parley exited")
        replies = srv.say(BOT, new_user("alive"), "hi")
        check.assertIn("Bea", texts(replies))

    def bad(method, path, body, status, reason_re=None, headers=None):
        r = srv.request(method, path, body, headers=headers)
        check.assertEqual(r.status, status, "%s %s %r -> %r" % (method, path, body if body is None else body[:80], r))
        if status != 413:
            err = r.json
            check.assertIsInstance(err, dict, "the body of a %d must be JSON: %r" % (status, r))
            check.assertIsInstance(err.get("error"), str, r)
            check.assertNotEqual(err["error"], "")
            if reason_re:
                check.assertRegex(err["error"], reason_re)
            check.assertTrue(r.headers.get("content-type", "").startswith("application/json"), r.headers)
        still_serving()
        return r

    # --- health --------------------------------------------------------------

    def health(run):
        r = srv.request("GET", "/v1/health")
        check.assertEqual(r.status, 200, r)
        check.assertTrue(r.headers["content-type"].startswith("application/json"), r.headers)
        body = r.json
        check.assertEqual(list(body), ["status", "node", "bots"], body)
        check.assertEqual(body["status"], "serving")
        check.assertEqual(set(body["node"]), {"name", "pid", "started_at", "outbox"}, body)
        check.assertEqual(set(body["node"]["outbox"]), {"sent", "retried", "dead", "outside_window", "pending"}, body)
        check.assertEqual(len(body["bots"]), 1, body)
        b = body["bots"][0]
        check.assertEqual(set(b), {"name", "version", "loaded_at", "loads", "error", "usage", "limits"}, b)
        check.assertRegex(b["version"], r"^[0-9a-f]{16}$")
        check.assertEqual(b["loads"], 1)
        check.assertEqual(b["name"], BOT)
        check.assertRegex(b["loaded_at"], RFC3339)
        check.assertIsNone(b["error"])
        check.assertEqual(b["limits"], {"memory_mb": 64, "instructions": 1000000, "time_ms": 100}, b)
        check.assertEqual(set(b["usage"]), {"script_ms", "runs", "aborts", "refused", "delayed", "throttled"}, b)
        check.assertEqual(b["usage"]["aborts"], {"instructions": 0, "time": 0, "memory": 0}, b)
        check.assertGreater(b["usage"]["runs"], 0, "loading the scripts ran them")
        check.assertIs(b["usage"]["throttled"], False, b)
        srv.wait_log(r"INFO +\[barista\] loaded in [\d.]+ ms")
        srv.wait_log(r"INFO +listening on 127\.0\.0\.1:%d$" % srv.port)

    tap.case("GET /v1/health lists the bot by its manifest name, loaded, without error", health)

    def date_and_length(run):
        # parley writes Date (made once a second) and Content-Length itself
        for r in (srv.request("GET", "/v1/health"), srv.post(BOT, new_user("headers"), "hello"),
                  srv.request("GET", "/v1/no-such-thing"), srv.request("DELETE", "/v1/health")):
            check.assertEqual(int(r.headers["content-length"]), len(r.body), r.headers)
            date = r.headers["date"]
            check.assertRegex(date, r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct"
                                    r"|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT$")
            sent = email.utils.parsedate_to_datetime(date)
            now = datetime.datetime.now(datetime.timezone.utc)
            check.assertLess(abs((now - sent).total_seconds()), 5, "Date %s is now (%s)" % (date, now))
        # once each (evhttp adds its own only where they are missing)
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as conn:
            conn.sendall(b"GET /v1/health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            raw = b""
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                raw += chunk
        head = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower().split("\r\n")
        check.assertEqual(len([h for h in head if h.startswith("date:")]), 1, head)
        check.assertEqual(len([h for h in head if h.startswith("content-length:")]), 1, head)

    tap.case("answers carry one Date (IMF-fixdate, now) and a Content-Length that is the body's", date_and_length)

    # --- conversations -----------------------------------------------------------

    def whole_order(run):
        u = new_user("order")
        r = srv.post(BOT, u, "hello")
        check.assertEqual(r.status, 200, r)
        check.assertTrue(r.headers["content-type"].startswith("application/json"), r.headers)
        check.assertEqual(set(r.json), {"user", "replies"}, r.json)
        replies = r.json["replies"]
        check_reply_shapes(replies)
        check.assertIn("Bea", replies[0]["text"])
        check.assertNotIn("choices", replies[0], "the greeting has no choices")
        check.assertNotIn("cards", replies[0])
        offered = choices(replies)
        check.assertEqual([p for _, p in offered], DRINKS)
        check.assertEqual(offered[0][0], "Espresso · €2.40")
        check.assertEqual(offered[1][0], "Latte · €3.80")

        replies = srv.say(BOT, u, payload="latte")
        check_reply_shapes(replies)
        check.assertRegex(texts(replies), r"size .*Latte|Latte.* size|your Latte")
        check.assertEqual(choices(replies), [("Small", "small"), ("Medium +€0.50", "medium"), ("Large +€0.90", "large")])

        replies = srv.say(BOT, u, payload="large")
        check_reply_shapes(replies)
        check.assertIn("Large Latte", texts(replies))
        check.assertIn("a classic with coffee", texts(replies))
        cs = cards(replies)
        check.assertEqual(cs[0], {
            "sku": "croissant", "title": "Butter Croissant", "subtitle": "a classic with coffee.",
            "image": "https://images.parley.example/barista/croissant.jpg",
            "price": {"amount": 250, "currency": "EUR"}, "payload": "croissant"})
        check.assertNotIn("cinnamon_roll", [c["sku"] for c in cs], "sold out products are never offered")
        check.assertIn(("Add Butter Croissant", "croissant"), choices(replies))
        check.assertIn(("No thanks", "no"), choices(replies))

        replies = srv.say(BOT, u, payload="croissant")
        check_reply_shapes(replies)
        check.assertIn("Added Butter Croissant to your order", texts(replies))
        check.assertIn("That's 2 item(s) so far, €7.20", texts(replies))
        check.assertEqual(choices(replies), [("Another drink", "another"), ("That's all", "done")])

        replies = srv.say(BOT, u, payload="done")
        check_reply_shapes(replies)
        t = texts(replies)
        check.assertIn("1 × Latte (Large) — €4.70", t)
        check.assertIn("1 × Butter Croissant — €2.50", t)
        check.assertIn("Total: €7.20", t)
        check.assertEqual(choices(replies), [("Pay now", "pay"), ("I have a code", "code"), ("Another drink", "another")])

        # paying: a link to parley's own test payment page (the test provider)
        replies = srv.say(BOT, u, payload="pay")
        check_reply_shapes(replies)
        links = [r["link"] for r in replies if "link" in r]
        check.assertEqual(len(links), 1, replies)
        check.assertEqual(links[0]["title"], "Pay €7.20")
        url = urllib.parse.urlsplit(links[0]["url"])
        check.assertEqual(url.netloc, "127.0.0.1:%d" % srv.port, "links point at this server")
        page = srv.request("GET", url.path + "?" + url.query)
        check.assertEqual(page.status, 200, page)
        check.assertIn(b"\xe2\x82\xac7.20", page.body)  # €7.20
        token = urllib.parse.parse_qs(url.query)["token"][0]
        paid = srv.request("POST", url.path, body="token=%s&action=pay" % token,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
        check.assertEqual(paid.status, 200, paid)
        check.assertIn(b"Payment received", paid.body)
        # a wrong token pays nothing
        wrong = srv.request("POST", url.path, body="token=%s&action=pay" % ("0" * 32),
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
        check.assertEqual(wrong.status, 404, wrong)

        # the HTTP API cannot push: the thank-you waits in the session and
        # comes with the next answer; the paid cart is gone
        replies = srv.say(BOT, u, "hi again")
        check.assertRegex(texts(replies), r"Payment received|All paid")
        check.assertNotIn("Welcome back", texts(replies))

    tap.case("a whole order: greet, drink, size, pairing card, more, summary with total, paid", whole_order)

    def one_sentence(run):
        u = new_user("sentence")
        srv.say(BOT, u, "hi")
        replies = srv.say(BOT, u, "Could I have a LARGE café latte please?")
        check.assertIn("Large Latte", texts(replies))
        check.assertEqual(cards(replies)[0]["sku"], "croissant")
        replies = srv.say(BOT, u, "No thanks")  # a typed choice title counts as a tap
        check.assertRegex(texts(replies), r"No problem!|Sure thing\.")
        check.assertIn("That's 1 item(s) so far, €4.70", texts(replies))

    tap.case("a drink and a size typed in one sentence; a typed choice title taps it", one_sentence)

    def typed_number(run):
        u = new_user("number")
        srv.say(BOT, u, "hi")
        replies = srv.say(BOT, u, "3")
        check.assertIn("Cappuccino", texts(replies))
        check.assertIn("small", [p for _, p in choices(replies)])

    tap.case("a typed number taps the offered choice with that number", typed_number)

    def not_understood(run):
        u = new_user("unicorn")
        srv.say(BOT, u, "hi")
        replies = srv.say(BOT, u, "a unicorn frappuccino")
        check.assertIn("didn't catch which drink", texts(replies))
        replies = srv.say(BOT, u, payload="espresso")
        check.assertIn("Espresso", texts(replies))

    tap.case("an answer it does not understand asks the same question again", not_understood)

    def intents(run):
        u = new_user("intents")
        srv.say(BOT, u, "hi")
        srv.say(BOT, u, payload="flat_white")
        replies = srv.say(BOT, u, "help")
        check.assertIn("I can take your coffee order", texts(replies))
        check.assertIn("Flat White", texts(replies), "help asks the interrupted question again")
        check.assertIn("small", [p for _, p in choices(replies)])
        replies = srv.say(BOT, u, payload="small")
        check.assertIn("Small Flat White", texts(replies))
        replies = srv.say(BOT, u, "what's in my cart?")
        check.assertIn("1 × Flat White (Small) — €3.90", texts(replies))
        check.assertIn("Total so far: €3.90", texts(replies))
        replies = srv.say(BOT, u, "cancel")
        check.assertIn("cleared your order", texts(replies))
        check.assertEqual([p for _, p in choices(replies)], DRINKS, "cancel starts over at the drinks")
        replies = srv.say(BOT, u, "my cart")
        check.assertIn("Your cart is empty", texts(replies))

    tap.case("router intents at any step: help resumes, my cart lists, cancel clears and restarts", intents)

    def japanese(run):
        u = new_user("ja")
        replies = srv.say(BOT, u, "こんにちは", locale="ja")
        t = texts(replies)
        check.assertTrue("バリスタ" in t or "お飲み物" in t, t)
        check.assertIn("カフェラテ", choices(replies)[1][0])
        replies = srv.say(BOT, u, "カフェラテをLサイズで", locale="ja")
        check.assertIn("カフェラテ（L）", texts(replies))
        check.assertEqual(cards(replies)[0]["title"], "バタークロワッサン")
        replies = srv.say(BOT, u, "いいえ、結構です", locale="ja")
        check.assertIn("かしこまりました", texts(replies))
        replies = srv.say(BOT, u, payload="done", locale="ja")
        check.assertIn("合計：€4.70", texts(replies))

    tap.case("locale ja: Japanese words, product names and cards", japanese)

    def locale_kept(run):
        u = new_user("ja-kept")
        srv.say(BOT, u, "こんにちは", locale="ja")
        # "locale" is optional: without it the session keeps the one it has
        replies = srv.say(BOT, u, payload="latte")
        check.assertIn("カフェラテのサイズ", texts(replies),
                       "a message without \"locale\" switched the session back to the default locale")
        replies = srv.say(BOT, u, "L")
        check.assertIn("カフェラテ（L）", texts(replies))

    tap.case("a message without \"locale\" keeps the session's locale (ja)", locale_kept)

    def locale_tags(run):
        replies = srv.say(BOT, new_user("ja-jp"), "hi", locale="ja-JP")
        check.assertIn("カフェラテ", choices(replies)[1][0], "ja-JP falls back to ja")
        replies = srv.say(BOT, new_user("fr"), "bonjour", locale="fr")
        check.assertIn("Latte · €3.80", [t for t, _ in choices(replies)], "an unknown locale is the default, en")

    tap.case("a locale tag is matched by its language; an unknown one gets the default", locale_tags)

    def users_apart(run):
        a, b = new_user("alice"), new_user("bob")
        srv.say(BOT, a, "hi")
        srv.say(BOT, b, "hi")
        srv.say(BOT, a, "small latte")
        check.assertIn("Your cart is empty", texts(srv.say(BOT, b, "my cart")))
        check.assertIn("1 × Latte (Small)", texts(srv.say(BOT, a, "my cart")))

    tap.case("two users' conversations and carts are separate", users_apart)

    def after_commit(run):
        u = new_user("commit")
        for i, text in enumerate(["hi", "latte", "medium"], 1):
            srv.say(BOT, u, text)
            # the answer came: the turn must already be in the database
            rows = db_query(srv.db, "SELECT state FROM sessions WHERE bot = ? AND channel = 'rest' AND user = ?", BOT, u)
            n_in = db_query(srv.db, "SELECT count(*) FROM transcript WHERE bot = ? AND user = ? AND direction = 'in'",
                            BOT, u)[0][0]
            check.assertTrue(rows, "no session stored when the answer came")
            row = rows[0]
            check.assertEqual(json.loads(row[0])["turn"], i)
            check.assertEqual(n_in, i)

    tap.case("a message is answered only after its turn is committed to the database", after_commit)

    def keep_alive(run):
        import http.client
        u = new_user("keepalive")
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        try:
            for text, want in [("hi", "Bea"), ("espresso", "Espresso"), ("double", "Double Espresso")]:
                conn.request("POST", MESSAGES, body=json.dumps({"user": u, "text": text}),
                             headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                body = json.loads(r.read())
                check.assertEqual(r.status, 200)
                check.assertIn(want, texts(body["replies"]))
        finally:
            conn.close()

    tap.case("several messages on one keep-alive connection", keep_alive)

    # --- bad input -------------------------------------------------------------------

    def malformed_json(run):
        bad("POST", MESSAGES, b'{"user": "x", "text": ', 400, r"JSON")
        bad("POST", MESSAGES, b"{bad json}", 400, r"JSON")
        bad("POST", MESSAGES, b'{"user": "x", "text": "\xff\xfe"}', 400)

    tap.case("malformed JSON or invalid UTF-8 -> 400 with a reason", malformed_json)

    def not_an_object(run):
        bad("POST", MESSAGES, b"", 400)
        bad("POST", MESSAGES, b"[1, 2]", 400, r"object")
        for body in (b'"hi"', b"42", b"null", b"true"):
            bad("POST", MESSAGES, body, 400, r"object|JSON")

    tap.case("an empty body or a body that is not a JSON object -> 400", not_an_object)

    def bad_user(run):
        for body in ({"text": "hi"}, {"user": 42, "text": "hi"}, {"user": None, "text": "hi"},
                     {"user": "", "text": "hi"}, {"user": ["a"], "text": "hi"}, {"user": {"id": "a"}, "text": "hi"},
                     {"user": True, "text": "hi"}):
            bad("POST", MESSAGES, json.dumps(body).encode(), 400, r"user")

    tap.case("missing, empty or non-string user -> 400 naming user", bad_user)

    def bad_fields(run):
        u = new_user("fields")
        bad("POST", MESSAGES, json.dumps({"user": u, "text": 5}).encode(), 400, r"text")
        bad("POST", MESSAGES, json.dumps({"user": u, "text": ["hi"]}).encode(), 400, r"text")
        bad("POST", MESSAGES, json.dumps({"user": u, "payload": 1}).encode(), 400, r"payload")
        bad("POST", MESSAGES, json.dumps({"user": u}).encode(), 400, r"text.*payload|payload.*text")
        bad("POST", MESSAGES, json.dumps({"user": u, "text": "hi", "locale": 5}).encode(), 400, r"locale")

    tap.case("text, payload or locale of the wrong type, or neither text nor payload -> 400", bad_fields)

    def text_limit(run):
        u = new_user("long")
        bad("POST", MESSAGES, json.dumps({"user": u, "text": "a" * 4097}).encode(), 400, r"text")
        # bytes, not characters: 2049 × "é" is 4098 bytes of UTF-8
        bad("POST", MESSAGES, json.dumps({"user": u, "text": "é" * 2049}, ensure_ascii=False).encode(), 400, r"text")
        r = srv.post(BOT, u, "a" * 4096)
        check.assertEqual(r.status, 200, "4096 bytes of text are allowed: %r" % r)
        r = srv.post(BOT, new_user("long"), "é" * 2048)
        check.assertEqual(r.status, 200, "2048 × é = 4096 bytes are allowed: %r" % r)

    tap.case("text over 4096 bytes -> 400; exactly 4096 bytes (also multi-byte) -> 200", text_limit)

    def body_limit(run):
        base = json.dumps({"user": new_user("big"), "text": "hi"}).encode()
        r = srv.request("POST", MESSAGES, base + b" " * (65536 - len(base)))
        check.assertEqual(r.status, 200, "a body of exactly 64 KiB is allowed: %r" % r)
        bad("POST", MESSAGES, base + b" " * (65537 - len(base)), 413)
        bad("POST", MESSAGES, json.dumps({"user": "x", "text": "a" * 70000}).encode(), 413)
        # 1 MiB: the body is sent from a thread, since the server may
        # answer (and close) before it has read all of it
        import http.client
        import threading
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)

        def send_all():
            try:
                s.sendall(b"POST " + MESSAGES.encode() + b" HTTP/1.1\r\nHost: t\r\n"
                          b"Content-Type: application/json\r\nContent-Length: 1048576\r\n\r\n")
                s.sendall(b" " * 1048576)
            except OSError:
                pass

        sender = threading.Thread(target=send_all)
        sender.start()
        try:
            r = http.client.HTTPResponse(s)
            r.begin()
            check.assertEqual(r.status, 413)
        finally:
            try:
                s.shutdown(socket.SHUT_RDWR)  # unblocks the sender
            except OSError:
                pass
            sender.join(10)
            s.close()
        still_serving()

    tap.case("body over 64 KiB -> 413; exactly 64 KiB is read", body_limit)

    def body_limit_chunked(run):
        base = json.dumps({"user": new_user("chunked"), "text": "hi"}).encode()
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        try:
            s.sendall(b"POST " + MESSAGES.encode() + b" HTTP/1.1\r\nHost: test\r\n"
                      b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
            s.sendall(b"%x\r\n%s\r\n" % (len(base), base))
            pad = b" " * 8192
            try:
                for _ in range(9):
                    s.sendall(b"%x\r\n%s\r\n" % (len(pad), pad))
                s.sendall(b"0\r\n\r\n")
            except OSError:
                pass  # the server may answer and close before the end
            head = s.recv(200)
        finally:
            s.close()
        check.assertRegex(head, rb"^HTTP/1\.[01] 413 ")
        still_serving()

    tap.case("a chunked body over 64 KiB -> 413", body_limit_chunked)

    def body_limit_json_reason(run):
        r = srv.request("POST", MESSAGES, json.dumps({"user": "x", "text": "a" * 70000}).encode())
        check.assertEqual(r.status, 413)
        check.assertIsInstance(r.json, dict, "the 413 body is not JSON: %r" % r.body[:200])
        check.assertIsInstance(r.json.get("error"), str)

    tap.case("the 413 carries a JSON {\"error\"} reason like every other bad input", body_limit_json_reason)

    def odd_json(run):
        deep = b'{"user": "x", "text": "hi", "deep": ' + b"[" * 30000 + b"]" * 30000 + b"}"
        r = srv.request("POST", MESSAGES, deep)
        check.assertIn(r.status, (200, 400), r)
        still_serving()
        u = new_user("extra")
        r = srv.post(BOT, u, "hi", channel="sms", extra={"a": [1, 2, {"b": None}]})
        check.assertEqual(r.status, 200, "unknown fields are ignored: %r" % r)
        r = srv.request("POST", MESSAGES, b'{"user": "%s", "user": "%s", "text": "hi"}' % (u.encode(), u.encode()))
        check.assertIn(r.status, (200, 400), r)
        still_serving()

    tap.case("deeply nested JSON, unknown fields, duplicate keys: an answer, never a crash", odd_json)

    def garbage(run):
        junk = [
            b"GARBAGE\r\n\r\n",
            b"\x00\x01\x02\xff\r\n\r\n",
            b"POST /v1/bots/barista/messages HTTP/1.1\r\nHost: t\r\nContent-Length: -5\r\n\r\n",
            b"POST /v1/bots/barista/messages HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n",
            b"POST /v1/bots/barista/messages HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n",
            b"GET /v1/bots/%ZZ/messages HTTP/1.1\r\nHost: t\r\n\r\n",
            b"GET /v1/bots/%00/messages HTTP/1.1\r\nHost: t\r\n\r\n",
            b"GET " + b"/a" * 5000 + b" HTTP/1.1\r\nHost: t\r\n\r\n",
            b"GET /v1/health HTTP/9.9\r\n\r\n",
        ]
        for data in junk:
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            try:
                s.sendall(data)
                head = s.recv(100)
            except OSError:
                head = b""
            finally:
                s.close()
            if head:
                check.assertRegex(head, rb"^HTTP/1\.[01] [45]\d\d ", data[:60])
            still_serving()

    tap.case("garbage on the socket (bad request line, lengths, huge header, bad escapes): never a crash", garbage)

    def unknown_bot(run):
        bad("POST", "/v1/bots/nobody/messages", json.dumps({"user": "x", "text": "hi"}).encode(), 404, r"nobody")
        bad("POST", "/v1/bots/Barista/messages", json.dumps({"user": "x", "text": "hi"}).encode(), 404)
        bad("POST", "/v1/bots/main/messages", json.dumps({"user": "x", "text": "hi"}).encode(), 404)

    tap.case("unknown bot -> 404 naming it (bots are addressed by manifest name only)", unknown_bot)

    def wrong_method(run):
        for method in ("GET", "PUT", "DELETE", "PATCH"):
            body = b'{"user":"x","text":"hi"}' if method in ("PUT", "PATCH") else None
            r = bad(method, MESSAGES, body, 405)
            check.assertEqual(r.headers.get("allow"), "POST", r.headers)
        for method in ("POST", "DELETE", "PUT"):
            r = bad(method, "/v1/health", b"{}" if method != "DELETE" else None, 405)
            check.assertIn("GET", r.headers.get("allow", ""), r.headers)

    tap.case("wrong method -> 405 with an Allow header", wrong_method)

    def unknown_paths(run):
        for path in ("/", "/v1", "/v1/bots", "/v1/bots/barista", "/v1/bots/barista/message",
                     "/v1/bots/barista/messages/extra", "/v2/health", "/v1/health/x"):
            bad("GET", path, None, 404)

    tap.case("unknown paths -> 404 with a JSON reason", unknown_paths)

    def not_utf8(run):
        # a reason that quotes a decoded path segment holds its bytes as
        # they came; once these bytes took the whole server down
        for path in ("/v1/bots/%ff/messages", "/v1/bots/%C3/messages", "/v1/bots/barista/channels/%ED%A0%80"):
            r = bad("GET", path, None, 404)
            check.assertIn("\ufffd", r.json["error"], r.json)

    tap.case("a path that is not UTF-8 -> a JSON 404 whose reason is UTF-8", not_utf8)

    def path_segments(run):
        # segments are %-decoded (not '+'), empty ones are skipped, and more
        # than eight make the path malformed
        body = json.dumps({"user": new_user("path"), "text": "hi"}).encode()
        for path in ("/v1//bots/barista///messages/", "/v1/bots/b%61rista/%6Dessages", "/v1/%62ots/barista/messages?x=1"):
            r = srv.request("POST", path, body)
            check.assertEqual(r.status, 200, "%s -> %r" % (path, r))
        bad("POST", "/v1/bots/no%2Fsuch/messages", body, 404, r"'no/such'")
        bad("POST", "/v1/bots/no+such%4/messages", body, 404, r"'no\+such%4'")
        bad("GET", "/a/b/c/d/e/f/g/h", None, 404, r"no such endpoint")
        bad("GET", "/a/b/c/d/e/f/g/h/i", None, 400, r"path is malformed")

    tap.case("a path's segments: decoded, empty ones skipped, at most eight", path_segments)

    def client_gone(run):
        body = json.dumps({"user": new_user("gone"), "text": "hi"}).encode()
        for _ in range(5):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            s.sendall(b"POST " + MESSAGES.encode() + b" HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            s.close()
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        s.sendall(b"POST " + MESSAGES.encode() + b" HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{\"user\"")
        s.close()  # half a body, then gone
        still_serving()

    tap.case("clients that hang up before their answer (or mid-body) do not hurt the server", client_gone)

    def log_clean(run):
        still_serving()
        for line in srv.log_since(0):
            check.assertRegex(line, LOG_LINE, "a log line is not 'TIME LEVEL message'")
        errors = [line for line in srv.log_since(0) if " ERROR " in line]
        check.assertEqual(errors, [], "bad requests are the client's fault, not errors of the server")

    tap.case("after all of this: the log is 'TIME LEVEL message' lines with no ERROR", log_clean, runs=1)

    def sigterm(run):
        code = srv.stop()
        check.assertEqual(code, 0, "exit status after SIGTERM")
        srv.wait_log(r"INFO +signal 15: finishing the messages in flight")
        srv.wait_log(r"INFO +stopped$")

    tap.case("SIGTERM stops the server with status 0 and says so in the log", sigterm, runs=1)


if __name__ == "__main__":
    run_suite("e2e: HTTP contract (default bot)", main)
