#!/usr/bin/env python3
"""test_webchat: the web chat channel end to end (build/webchat-contract.md,
runtime/http/webchat.c, runtime/http/sse.c). parley serves the default bot (the
barista, whose bot.json allows the widget on http://localhost:8000) and
three fixture bots: "shop" (every webchat setting, one origin), "anyone"
(origins ["*"], the avatar at the top of its manifest) and "plain" (no
webchat section at all).

Cases: the widget's configuration and script; a conversation over POST
/webchat/messages (202) and GET /webchat/events (SSE "line" events, "in"
then "out"); replay with ?after= and Last-Event-ID; live delivery to every
open tab and to nobody else; CORS (allowed, same-origin, refused, preflight,
"*"); bad input (400, 405, 404) and 413; the per-shopper rate limit (429 +
Retry-After; a fast human never meets the default; a bot's own
webchat.rate_limit) and the cap on open streams; page events (a proactive
greeting for a fresh shopper only); the greeting on open (the start once per
conversation, the stream's "ready"); unknown bots; SIGTERM with streams open."""

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (check_error, PARLEY, POSTGRESQL, ROOT, Server, check, copy_default_bot, db_executemany,  # noqa: E402
                     db_query, echo_bot, make_bot, read_file, run_suite, wait_until)
from sse_client import Shopper, lines, reply_texts, shopper_id  # noqa: E402

BOT = "barista"
ALLOWED = "http://localhost:8000"  # in the barista's bot.json "webchat": {"origins": [...]}
SHOP_ORIGIN = "https://shop.example"
DRINKS = ["espresso", "latte", "cappuccino", "flat_white", "matcha_latte", "hot_chocolate"]
CONFIG_KEYS = {"bot", "title", "avatar", "locales", "default_locale", "greet", "accent"}
REPLY_KEYS = {"text", "choices", "cards", "link", "image", "agent"}

# scripts/tone.lua words some replies in one of several ways.
PROACTIVE = ("Hi! I'm Bea ☕ Can I help you pick something?", "Hello! Need a hand choosing a coffee? ☕")


def ask_size(drink):
    return ("What size for your %s?" % drink, "Which size would you like your %s in?" % drink)


def header_constant(name):
    """A number #defined in runtime/http/webchat.h (the rate limit's settings)."""
    m = re.search(r"#define %s ([\d.]+)" % name, read_file(os.path.join(ROOT, "runtime", "http", "webchat.h")))
    check.assertIsNotNone(m, "%s is not defined in runtime/http/webchat.h" % name)
    return float(m.group(1))


BURST = int(header_constant("PL_WEBCHAT_BURST"))
REFILL_S = header_constant("PL_WEBCHAT_REFILL_S")
STREAMS_PER_SHOPPER = int(header_constant("PL_WEBCHAT_STREAMS_PER_SHOPPER"))

_noted = set()


def note(text):
    """A TAP comment, once per file: a contract gap that does not fail a case."""
    if text not in _noted:
        _noted.add(text)
        print("# NOTE: " + text)


def no_cors(r):
    cors = [k for k in r.headers if k.startswith("access-control-")]
    check.assertEqual(cors, [], "a refused origin gets no CORS headers: %r" % r.headers)


def check_line(ev, now_ms):
    """One SSE "line" event: id: equals data.id; data {id, at, direction, body}."""
    check.assertEqual(ev.event, "line", ev)
    line = ev.json
    check.assertIsInstance(line, dict, ev)
    check.assertEqual(set(line), {"id", "at", "direction", "body"}, line)
    check.assertIsInstance(line["id"], int, line)
    check.assertEqual(ev.id, str(line["id"]), "the SSE id: is the transcript id")
    check.assertIsInstance(line["at"], int, line)
    check.assertLess(abs(line["at"] - now_ms), 120000, "at is milliseconds since the epoch: %r" % line)
    check.assertIn(line["direction"], ("in", "out"), line)
    if line["direction"] == "in":
        check.assertIsInstance(line["body"], dict, line)
        check.assertLessEqual(set(line["body"]), {"text", "payload", "event", "locale"}, line)
    else:
        check.assertIsInstance(line["body"], list, "an out line's body is a LIST of replies: %r" % line)
        for reply in line["body"]:
            check.assertLessEqual(set(reply), REPLY_KEYS, reply)
            for c in reply.get("choices", []):
                check.assertEqual(set(c), {"title", "payload"}, c)
            for c in reply.get("cards", []):
                check.assertEqual(set(c), {"sku", "title", "subtitle", "image", "price", "payload"}, c)
                check.assertEqual(set(c["price"]), {"amount", "currency"}, c)
                check.assertIsInstance(c["price"]["amount"], int, c)


def choice_payloads(line):
    return [c["payload"] for r in line["body"] for c in r.get("choices", [])]


def main(tap):
    shop, _ = echo_bot("shop", manifest={
        "title": "Echo Shop", "locales": ["en", "fr"], "avatar": "https://cdn.shop.example/not-this-one.png",
        "webchat": {"origins": [SHOP_ORIGIN], "avatar": "https://cdn.shop.example/bea.png", "accent": "#0a7d5c",
                    "greet_after_seconds": 5, "greet_pages": ["/cart", "/checkout"]}})
    anyone, _ = echo_bot("anyone", manifest={"avatar": "https://cdn.example/anyone.png", "webchat": {"origins": ["*"]}})
    plain, _ = echo_bot("plain")
    tiny, _ = echo_bot("tiny", manifest={"webchat": {"origins": ["*"], "greet_on_open": False,
                                                      "rate_limit": {"burst": 3, "refill_seconds": 30}}})
    srv = tap.watch(Server(bots=[ROOT, shop, anyone, plain, tiny], env={"PARLEY_TEST_CLOCK": "1"},
                           name="parley (barista + fixtures)").start())
    base = "/v1/bots/%s/webchat" % BOT
    own_origin = "http://127.0.0.1:%d" % srv.port

    def still_serving():
        check.assertIsNone(srv.proc.poll(), "parley exited")
        r = srv.request("GET", base + "/config")
        check.assertEqual(r.status, 200, r)

    def barrier(u, text="barrier"):
        """Sends a message on u's stream and returns (in, out) of it: every
        line that came before it has been delivered."""
        return u.turn(text=text)

    # --- the widget's configuration and script ------------------------------------

    def config(run):
        m = json.loads(read_file(os.path.join(ROOT, "bot.json")))
        w = m.get("webchat") or {}
        r = srv.request("GET", base + "/config")
        check.assertEqual(r.status, 200, r)
        check.assertTrue(r.headers["content-type"].startswith("application/json"), r.headers)
        check.assertEqual(set(r.json), CONFIG_KEYS, r.json)
        check.assertEqual(r.json, {
            "bot": "barista", "title": m.get("title", m["name"]), "avatar": w.get("avatar", m.get("avatar")),
            "locales": m["locales"], "default_locale": m["locales"][0],
            "greet": {"after_seconds": w.get("greet_after_seconds"), "pages": w.get("greet_pages", []),
                      "on_open": w.get("greet_on_open", True)},
            "accent": w.get("accent")})
        check.assertTrue(r.json["greet"]["on_open"], "the default bot greets on open")
        check.assertEqual(r.json["title"], "Bea's Coffee")
        check.assertEqual(r.json["locales"], ["en", "ja"])

        r = srv.request("GET", "/v1/bots/shop/webchat/config", headers={"Origin": SHOP_ORIGIN})
        check.assertEqual(r.status, 200, r)
        check.assertEqual(r.headers.get("access-control-allow-origin"), SHOP_ORIGIN, r.headers)
        check.assertEqual(r.json, {
            "bot": "shop", "title": "Echo Shop", "avatar": "https://cdn.shop.example/bea.png",
            "locales": ["en", "fr"], "default_locale": "en",
            "greet": {"after_seconds": 5, "pages": ["/cart", "/checkout"], "on_open": True}, "accent": "#0a7d5c"})

        r = srv.request("GET", "/v1/bots/anyone/webchat/config")
        check.assertEqual(r.json, {
            "bot": "anyone", "title": "anyone", "avatar": "https://cdn.example/anyone.png", "locales": ["en"],
            "default_locale": "en", "greet": {"after_seconds": None, "pages": [], "on_open": True}, "accent": None},
            "no title: the name; the manifest's own avatar when webchat has none")
        r = srv.request("GET", "/v1/bots/plain/webchat/config")
        check.assertEqual(r.json, {
            "bot": "plain", "title": "plain", "avatar": None, "locales": ["en"], "default_locale": "en",
            "greet": {"after_seconds": None, "pages": [], "on_open": True}, "accent": None},
            "no webchat section: nulls and [], greeting on open")

    tap.case("GET webchat/config: bot, title, avatar, locales, default_locale, greet, accent (from bot.json)", config)

    def widget(run):
        r = srv.request("GET", "/v1/bots/barista/widget.js")
        if not os.path.exists(os.path.join(ROOT, "runtime", "web", "widget.js")):
            note("runtime/web/widget.js does not exist (yet): widget.js answers a JSON 404")
            check_error(r, 404, r"widget")
            return
        check.assertEqual(r.status, 200, r)
        check.assertRegex(r.headers.get("content-type", ""), r"^(application|text)/javascript\b", r.headers)
        check.assertGreater(len(r.body), 1000, "the widget script")
        check.assertIn(b"webchat", r.body, "the widget talks to the webchat endpoints")
        check.assertEqual(r.headers.get("access-control-allow-origin"), "*", "any shop page may load the script")
        # the same script for every bot: it finds its bot from its own URL
        r2 = srv.request("GET", "/v1/bots/shop/widget.js")
        check.assertEqual(r2.status, 200, r2)
        check.assertEqual(r2.body, r.body)
        r = srv.request("POST", "/v1/bots/barista/widget.js", {})
        check_error(r, 405)
        check.assertEqual(r.headers.get("allow"), "GET", r.headers)

    tap.case("GET widget.js: the widget script with a JavaScript content type", widget)

    # --- a conversation over the stream ---------------------------------------------

    def conversation(run):
        u = Shopper(srv)
        st = u.connect()
        check.assertTrue(st.headers.get("content-type", "").startswith("text/event-stream"), st.headers)
        check.assertEqual(st.headers.get("cache-control"), "no-cache", st.headers)
        # as the widget does: the first message once the stream has said what there was
        # (on PostgreSQL the stream's first read is a round trip that a quick POST can overtake)
        st.wait_for(lambda e: e.event == "ready", what="ready")
        now_ms = int(time.time() * 1000)
        answer = u.send(text="hi")
        _, ev = st.wait_for(lambda e: e.event == "line", what="the first line")
        check.assertEqual(ev.json["direction"], "in", "a fresh shopper has nothing to replay: %r" % ev)
        check.assertEqual(ev.json["body"], {"text": "hi"})
        check.assertEqual(answer, {"accepted": True}, "the line's id comes with the line on the stream")
        _, out = st.wait_for(lambda e: e.event == "line" and e.json["direction"] == "out", what="the answer")
        out = out.json
        check.assertGreater(out["id"], ev.json["id"])
        check.assertIn("Bea", out["body"][0]["text"])
        check.assertEqual(choice_payloads(out), DRINKS)

        _, out = u.turn(payload="latte")
        check.assertIn(reply_texts(out).strip(), ask_size("Latte"))
        check.assertEqual(choice_payloads(out), ["small", "medium", "large"])
        in_line, out = u.turn(payload="large")
        check.assertEqual(in_line["body"], {"payload": "large"})
        check.assertIn("Large Latte", reply_texts(out))
        cards = [c for r in out["body"] for c in r.get("cards", [])]
        check.assertEqual(cards[0], {
            "sku": "croissant", "title": "Butter Croissant", "subtitle": "a classic with coffee.",
            "image": "https://images.parley.example/barista/croissant.jpg",
            "price": {"amount": 250, "currency": "EUR"}, "payload": "croissant"})

        events = st.snapshot()
        check.assertEqual(events[0].event, "ready", "an empty conversation: ready at once")
        events = events[1:]
        check.assertEqual(len(events), 6, events)
        for e in events:
            check_line(e, now_ms)
        check.assertEqual([e.json["direction"] for e in events], ["in", "out"] * 3)
        ids = [e.json["id"] for e in events]
        check.assertEqual(ids, sorted(set(ids)), "ids increase")
        check.assertIn("parley", st.comments)
        check.assertIsInstance(st.retry, int, "the stream tells the browser its reconnection delay")
        u.close()

    tap.case("POST webchat/messages -> 202; the stream gets an 'in' line then an 'out' line of replies", conversation)

    def locale(run):
        u = Shopper(srv)
        u.connect()
        in_line, out = u.turn(text="こんにちは", locale="ja")
        check.assertEqual(in_line["body"].get("text"), "こんにちは")
        t = reply_texts(out)
        check.assertTrue("バリスタ" in t or "お飲み物" in t, t)
        u.close()

    tap.case("\"locale\": \"ja\" -> the answer on the stream is in Japanese", locale)

    # --- replay and live delivery -------------------------------------------------------

    def replay(run):
        u = Shopper(srv)
        u.connect()
        u.turn(text="hi")
        u.turn(payload="latte")
        old = lines(u.stream.snapshot())
        check.assertEqual(len(old), 4, old)
        ids = [line["id"] for line in old]
        streams = {
            "everything": (u.open(), old),
            "?after=2nd": (u.open(after=ids[1]), old[2:]),
            "Last-Event-ID: 3rd": (u.open(last_event_id=ids[2]), old[3:]),
            "?after=1st + Last-Event-ID: 3rd (a browser reconnecting)": (u.open(after=ids[0], last_event_id=ids[2]),
                                                                         old[3:]),
            "?after=last": (u.open(after=ids[3]), []),
        }
        for name, (s, _) in streams.items():
            check.assertEqual(s.status, 200, "%s: %r" % (name, s.body))
        new = list(barrier(u, "my cart"))
        for name, (s, want) in streams.items():
            s.wait_for(lambda e: e.event == "line" and e.json["id"] == new[1]["id"], what="the new out line")
            check.assertEqual(lines(s.snapshot()), want + new, "%s: the replay, then the new lines live, once" % name)
            s.close()
        u.close()

    tap.case("replay: everything, ?after=N, Last-Event-ID (wins over ?after): only later lines, then live", replay)

    def long_replay(run):
        u = Shopper(srv)
        u.connect()
        u.turn(text="hi")
        u.close()
        db_executemany(srv.db, "INSERT INTO transcript (bot, channel, user, at, direction, body) "
                               "VALUES ('barista', 'webchat', ?, ?, 'out', ?)",
                       [(u.user, 1, json.dumps([{"text": "line %d" % i}])) for i in range(1234)])
        s = u.open()
        s.wait_count(1236, kind="line", timeout=15)
        got = lines(s.snapshot())
        check.assertEqual(len(got), 1236, "the whole conversation, however long")
        check.assertEqual(got[-1]["body"], [{"text": "line 1233"}], "down to its last line")
        s.close()

    tap.case("a long conversation (1,236 lines) replays whole, to its last line", long_replay, runs=1)

    def live(run):
        u = Shopper(srv)
        tab1 = u.connect()
        tab2 = u.open()
        other = Shopper(srv)
        other.connect()
        twin = Shopper(srv, bot="shop", user=u.user)  # the same id on another bot: another conversation
        twin.connect()
        in_line, out = u.turn(text="hi")
        _, ev = tab2.wait_for(lambda e: e.event == "line" and e.json["id"] == out["id"], what="the answer in tab 2")
        _, twin_out = twin.turn(text="only for the shop")
        check.assertEqual(reply_texts(twin_out), "1: only for the shop")
        _, other_out = other.turn(text="hi")
        check.assertIn("Bea", reply_texts(other_out))
        last = list(barrier(u))
        tab2.wait_for(lambda e: e.event == "line" and e.json["id"] == last[1]["id"], what="the barrier in tab 2")
        mine = [in_line, out] + last
        check.assertEqual(lines(tab1.snapshot()), mine, "tab 1 gets this conversation's lines only")
        check.assertEqual(lines(tab2.snapshot()), mine, "tab 2 gets the same lines")
        check.assertEqual(len(lines(other.stream.snapshot())), 2, "another shopper gets only their own")
        check.assertEqual([line["body"] for line in lines(twin.stream.snapshot())],
                          [{"text": "only for the shop"}, [{"text": "1: only for the shop"}]])
        for s in (tab2, u, other, twin):
            s.close()

    tap.case("live: every open tab of the shopper gets new lines; other shoppers and bots do not", live)

    # --- CORS -------------------------------------------------------------------------------------

    def cors(run):
        for origin in (ALLOWED, own_origin):
            u = Shopper(srv, headers={"Origin": origin})
            r = srv.request("GET", base + "/config", headers={"Origin": origin})
            check.assertEqual(r.status, 200, r)
            check.assertEqual(r.headers.get("access-control-allow-origin"), origin, r.headers)
            check.assertIn("Origin", r.headers.get("vary", ""), r.headers)
            check.assertIn("Retry-After", r.headers.get("access-control-expose-headers", ""),
                           "the widget on the shop's page can read Retry-After: %r" % r.headers)
            s = u.connect()
            check.assertEqual(s.headers.get("access-control-allow-origin"), origin, s.headers)
            r = u.post({"text": "hi"})
            check.assertEqual(r.status, 202, r)
            check.assertEqual(r.headers.get("access-control-allow-origin"), origin, r.headers)
            s.wait_for(lambda e: e.event == "line" and e.json["direction"] == "out", what="the answer")
            for what in ("messages", "events"):
                r = srv.request("OPTIONS", base + "/" + what, headers={
                    "Origin": origin, "Access-Control-Request-Method": "POST" if what == "messages" else "GET",
                    "Access-Control-Request-Headers": "content-type" if what == "messages" else "last-event-id"})
                check.assertIn(r.status, (200, 204), r)
                check.assertEqual(r.headers.get("access-control-allow-origin"), origin, r.headers)
                methods = [m.strip() for m in r.headers.get("access-control-allow-methods", "").split(",")]
                check.assertIn("POST", methods, r.headers)
                check.assertIn("GET", methods, r.headers)
                allowed_headers = r.headers.get("access-control-allow-headers", "").lower()
                check.assertIn("content-type", allowed_headers, r.headers)
                check.assertIn("last-event-id", allowed_headers, r.headers)
            u.close()

        refused = ["https://evil.example", "http://localhost:8001", "http://localhost:8000.evil.example",
                   "https://localhost:8000", "null", SHOP_ORIGIN]
        victim = Shopper(srv)
        for origin in refused:
            for method, path, body in (("POST", base + "/messages", {"user": victim.user, "text": "from " + origin}),
                                       ("GET", base + "/config", None),
                                       ("OPTIONS", base + "/messages", None)):
                r = srv.request(method, path, body, headers={"Origin": origin, "Access-Control-Request-Method": "POST"})
                check_error(r, 403, r"origin")
                no_cors(r)
            s = victim.open(headers={"Origin": origin})
            check.assertEqual(s.status, 403, "events from %s: %r" % (origin, s.body))
            check.assertEqual([k for k in s.headers if k.startswith("access-control-")], [], s.headers)
        # nothing of the refused messages was recorded
        victim.connect()
        in_line, _ = victim.turn(text="the first words that count")
        check.assertEqual(lines(victim.stream.snapshot())[0], in_line)
        check.assertEqual(in_line["body"], {"text": "the first words that count"})
        victim.close()

        # another bot's list: the shop's origin there, not the barista's
        r = srv.request("POST", "/v1/bots/shop/webchat/messages", {"user": shopper_id(), "text": "hi"},
                        headers={"Origin": SHOP_ORIGIN})
        check.assertEqual(r.status, 202, r)
        check.assertEqual(r.headers.get("access-control-allow-origin"), SHOP_ORIGIN)
        r = srv.request("POST", "/v1/bots/shop/webchat/messages", {"user": shopper_id(), "text": "hi"},
                        headers={"Origin": ALLOWED})
        check_error(r, 403)
        no_cors(r)
        # "*": any page
        r = srv.request("POST", "/v1/bots/anyone/webchat/messages", {"user": shopper_id(), "text": "hi"},
                        headers={"Origin": "https://somewhere.example"})
        check.assertEqual(r.status, 202, r)
        check.assertEqual(r.headers.get("access-control-allow-origin"), "https://somewhere.example", r.headers)
        r = srv.request("POST", "/v1/bots/plain/webchat/messages", {"user": shopper_id(), "text": "hi"},
                        headers={"Origin": "https://somewhere.example"})
        check_error(r, 403)
        r = srv.request("POST", "/v1/bots/plain/webchat/messages", {"user": shopper_id(), "text": "hi"},
                        headers={"Origin": own_origin})
        check.assertEqual(r.status, 202, "same-origin is always allowed: %r" % r)

    tap.case("CORS: allowed and same origins echoed (+ preflight); others 403 without CORS headers, nothing stored",
             cors)

    # --- bad input ---------------------------------------------------------------------------------

    def bad_input(run):
        u = Shopper(srv)
        ok = u.user
        bodies = [
            (b"{not json", r"JSON"),
            (b"", r"empty"),
            (b"[]", r"object"),
            ({"text": "hi"}, r"user"),
            ({"user": 12345678901, "text": "hi"}, r"user"),
            ({"user": "short", "text": "hi"}, r"user"),
            ({"user": "has a space in it", "text": "hi"}, r"user"),
            ({"user": "../../../etc/passwd", "text": "hi"}, r"user"),
            ({"user": "x" * 129, "text": "hi"}, r"user"),
            ({"user": ok}, r"text.*payload.*event"),
            ({"user": ok, "text": 5}, None),
            ({"user": ok, "text": "x" * 4097}, r"text"),
            ({"user": ok, "payload": "x" * 1025}, r"payload"),
            ({"user": ok, "text": "hi", "locale": "x" * 36}, r"locale"),
            ({"user": ok, "event": "page"}, r"event"),
            ({"user": ok, "event": {"type": "click", "url": "http://localhost:8000/"}}, r"event"),
            ({"user": ok, "event": {"type": "page"}}, r"url"),
            ({"user": ok, "event": {"type": "page", "url": "http://localhost:8000/" + "a" * 2048}}, r"url"),
            ({"user": ok, "event": {"type": "page", "url": "http://localhost:8000/", "title": "t" * 301}}, r"title"),
            ({"user": ok, "event": {"type": "page", "url": "javascript:alert(1)"}}, r"absolute http"),
            ({"user": ok, "event": {"type": "page", "url": "/checkout"}}, r"absolute http"),
            ({"user": ok, "text": "hi", "event": {"type": "page", "url": "http://localhost:8000/"}}, r"alone"),
            ({"user": ok, "payload": "latte", "event": {"type": "page", "url": "http://localhost:8000/"}}, r"alone"),
        ]
        for body, reason in bodies:
            if isinstance(body, dict):
                body = json.dumps(body).encode()
            r = srv.request("POST", base + "/messages", body)
            try:
                check_error(r, 400, reason)
            except AssertionError as e:
                raise AssertionError("POST %r: %s" % (body[:120], e))
        for query in ("", "?user=", "?user=short", "?user=" + urllib.parse.quote("has a space"), "?after=3"):
            s = u.open(path=base + "/events" + query)
            check_error(s, 400, r"user")
        for method, path, allow in (("GET", base + "/messages", "POST"), ("PUT", base + "/messages", "POST"),
                                    ("POST", base + "/events", "GET"), ("POST", base + "/config", "GET"),
                                    ("DELETE", "/v1/bots/barista/widget.js", "GET")):
            r = srv.request(method, path, b"{}" if method in ("POST", "PUT") else None)
            check_error(r, 405)
            check.assertEqual(r.headers.get("allow"), allow, "%s %s: %r" % (method, path, r.headers))
        for path in (base, base + "/nope", base + "/events/extra", "/v1/bots/barista/widget.css"):
            check_error(srv.request("GET", path), 404)
        # none of it reached the conversation of the valid id
        u.connect()
        in_line, _ = u.turn(text="now properly")
        check.assertEqual(lines(u.stream.snapshot())[0], in_line)
        u.close()
        still_serving()

    tap.case("bad input -> 400 with a reason (JSON, user, lengths, events, oversized url); 405; 404", bad_input)

    def too_large(run):
        u = Shopper(srv)
        r = u.post({"text": "a" * 70000})
        check_error(r, 413, r"64 KiB")
        r = srv.request("POST", base + "/messages", json.dumps({"user": u.user, "text": "b" * 200000}))
        check_error(r, 413)
        still_serving()

    tap.case("a body over 64 KiB -> 413 with a JSON reason", too_large)

    # --- rate limits --------------------------------------------------------------------------------

    def rate_limit(run):
        u = Shopper(srv)
        u.connect()  # opening a stream may count against the same allowance
        accepted, r = 0, None
        for i in range(BURST + 5):
            r = u.post({"text": "message %d" % i})
            if r.status != 202:
                break
            accepted += 1
        check_error(r, 429, r"wait")
        check.assertGreaterEqual(accepted, BURST - 1, "a burst of %d is allowed" % BURST)
        check.assertLessEqual(accepted, BURST)
        retry = r.headers.get("retry-after")
        check.assertRegex(retry or "", r"^\d+$", r.headers)
        check.assertGreaterEqual(int(retry), 1)
        check.assertLessEqual(int(retry), int(REFILL_S) + 1)
        check.assertEqual(u.post({"text": "still too soon"}).status, 429)
        # other shoppers are not affected
        other = Shopper(srv)
        check.assertEqual(other.post({"text": "hi"}).status, 202)
        check.assertEqual(Shopper(srv, user=u.user, bot="shop").post({"text": "hi"}).status, 202,
                          "the same id on another bot has its own allowance")
        u.stream.wait_count(2 * accepted, kind="line", timeout=10)
        srv.request("POST", "/v1/test/clock", {"advance": int(retry)})  # the wait, on parley's clock
        in_line, _ = u.turn(text="after the wait")
        got = [line["body"].get("text") for line in lines(u.stream.snapshot()) if line["direction"] == "in"]
        check.assertEqual(got, ["message %d" % i for i in range(accepted)] + ["after the wait"],
                          "refused messages were never recorded")
        u.close()

    tap.case("rate limit: a burst, then 429 with Retry-After; other shoppers unaffected; fine after the wait",
             rate_limit)

    def fast_human(run):
        u = Shopper(srv)
        u.connect()
        u.send(event={"type": "open"})
        # a whole checkout tapped as fast as a person taps: five taps in two seconds, four
        # times over (the two seconds on parley's clock; real time only adds to the allowance)
        for burst in range(4):
            for tap_ in range(5):
                r = u.post({"payload": "tap %d.%d" % (burst, tap_)})
                check.assertEqual(r.status, 202, "tap %d of burst %d: %r" % (tap_ + 1, burst + 1, r))
            srv.request("POST", "/v1/test/clock", {"advance": 2})
        u.close()

    tap.case("the default limit: a stream, the greeting on open and 20 taps at five taps in two seconds -> "
             "never 429", fast_human)

    def bot_limit(run):
        u = Shopper(srv, bot="tiny")
        got = [u.post({"text": "m%d" % i}).status for i in range(4)]
        check.assertEqual(got, [202, 202, 202, 429], "webchat.rate_limit burst 3")
        r = u.post({"text": "again"})
        check_error(r, 429, r"wait")
        check.assertIn(int(r.headers.get("retry-after")), (30, 31), "one more every 30 s: %r" % r.headers)
        srv.request("POST", "/v1/test/clock", {"advance": 31})
        check.assertEqual(u.post({"text": "after the wait"}).status, 202)
        check.assertEqual(u.post({"text": "too soon"}).status, 429)

    tap.case("a bot's own webchat.rate_limit {burst: 3, refill_seconds: 30}: 3, then 429 with Retry-After 30",
             bot_limit)

    def bad_settings(run):
        for webchat, reason in (({"rate_limit": {"burst": 0, "refill_seconds": 1}}, r'"rate_limit": "burst" must be'),
                                ({"rate_limit": {"burst": 5}}, r'"rate_limit" must be'),
                                # the server's cap: a bot may not switch off the abuse protection of a shared server
                                ({"rate_limit": {"burst": 10, "refill_seconds": 0.001}},
                                 r'"rate_limit": "refill_seconds" must be 0\.05-3600: this server lets a shopper '
                                 r'send at most 20 messages a second'),
                                ({"rate_limit": {"burst": 1000, "refill_seconds": 1}},
                                 r'"rate_limit": "burst" must be 1-100 messages: this server lets a shopper send at '
                                 r'most 100 at once'),
                                ({"greet_on_open": "yes"}, r'"greet_on_open" must be true or false')):
            folder = copy_default_bot()
            path = os.path.join(folder, "bot.json")
            m = json.loads(read_file(path))
            m["webchat"].update(webchat)
            with open(path, "w", encoding="utf-8") as f:
                json.dump(m, f)
            done = subprocess.run([PARLEY, "check", folder], capture_output=True, text=True, timeout=30)
            check.assertNotEqual(done.returncode, 0, done)
            check.assertRegex(done.stdout + done.stderr, r"bot\.json:1: \"webchat\": " + reason)

    tap.case("parley check refuses a bad webchat.rate_limit (past the server's cap too) or greet_on_open with the "
             "reason", bad_settings, runs=1)

    def stream_cap(run):
        u = Shopper(srv)
        tabs = [u.open() for _ in range(STREAMS_PER_SHOPPER)]
        check.assertEqual([s.status for s in tabs], [200] * STREAMS_PER_SHOPPER)
        extra = u.open()
        check_error(extra, 429)
        check.assertRegex(extra.headers.get("retry-after", ""), r"^\d+$", extra.headers)
        other = Shopper(srv).open()
        check.assertEqual(other.status, 200, "another shopper may still connect")
        other.close()
        tabs[0].close()
        again = wait_until(lambda: (lambda s: s if s.status == 200 else None)(u.open()), timeout=5,
                           what="a place after closing a tab")
        again.close()
        for s in tabs[1:]:
            s.close()

    tap.case("a shopper's streams are capped (429 + Retry-After); closing one frees a place", stream_cap)

    # --- page events: proactive engagement ----------------------------------------------------------

    def page_fresh(run):
        u = Shopper(srv)
        u.connect()
        page = {"type": "page", "url": ALLOWED + "/checkout", "title": "Checkout · Bea's Coffee",
                "trigger": "page" if run == 1 else "time"}
        in_line, out = u.turn(event=page)
        check.assertEqual(in_line["body"], {"event": page})
        check.assertEqual(len(out["body"]), 1, out)
        check.assertIn(out["body"][0].get("text"), PROACTIVE, "a fresh shopper gets the proactive greeting")
        _, out = u.turn(text="hi")
        check.assertIn("Bea", reply_texts(out))
        check.assertEqual(choice_payloads(out), DRINKS, "the conversation then starts as usual")
        u.close()

    tap.case("page event, fresh shopper -> the proactive greeting arrives on the stream", page_fresh)

    def page_mid(run):
        u = Shopper(srv)
        u.connect()
        u.turn(text="hi")
        start = len(u.stream.snapshot())
        u.send(event={"type": "page", "url": ALLOWED + "/checkout", "title": "Checkout", "trigger": "page"})
        i, _ = u.stream.wait_for(lambda e: e.event == "line" and "event" in e.json["body"], start=start,
                                 what="the page event's line")
        in_line, out = u.turn(payload="latte")
        after_page = [e.json for e in u.stream.snapshot()[i:] if e.json["id"] < in_line["id"]]
        said = [line for line in after_page if line["direction"] == "out" and line["body"]]
        check.assertEqual(said, [], "no greeting in the middle of a conversation")
        check.assertIn(reply_texts(out).strip(), ask_size("Latte"), "the conversation goes on at the same step")
        u.close()

    tap.case("page event mid-conversation -> no greeting; the conversation goes on where it was", page_mid)

    def page_shape(run):
        u = Shopper(srv)
        u.connect()
        in_line, _ = u.turn(event={"type": "page", "url": ALLOWED + "/menu", "secret": "not kept",
                                   "extra": {"a": 1}})
        check.assertEqual(in_line["body"], {"event": {"type": "page", "url": ALLOWED + "/menu", "title": "",
                                                      "trigger": "page"}}, "only type, url, title, trigger")
        in_line, _ = u.turn(event={"type": "page", "url": ALLOWED + "/", "title": "Home", "trigger": "x" * 40})
        check.assertEqual(in_line["body"]["event"]["trigger"], "page", "an unknown long trigger is not kept")
        u.close()

    tap.case("a page event is stored bounded: type, url, title, trigger only", page_shape)

    def sent_twice(run):
        u = Shopper(srv)
        u.connect()
        start = len(u.stream.snapshot())
        # a page left while this POST was in flight: the next page sends it again, with its id
        body = {"text": "one espresso please", "id": "m-" + shopper_id()[:20]}
        for _ in range(2):
            r = u.post(body)
            check.assertEqual(r.status, 202, r)
        # the barrier's own lines (the first "in" line after start may be the espresso's:
        # on PostgreSQL the lines come after the POSTs' answers)
        u.send(text="barrier")
        i, _ = u.stream.wait_for(lambda e: e.event == "line" and e.json["direction"] == "in"
                                 and e.json["body"] == {"text": "barrier"}, what="the barrier's line", start=start)
        u.stream.wait_for(lambda e: e.event == "line" and e.json["direction"] == "out", what="its answer", start=i + 1)
        ins = [e.json["body"] for e in u.stream.snapshot()[start:] if e.event == "line" and e.json["direction"] == "in"]
        check.assertEqual(ins, [{"text": "one espresso please"}, {"text": "barrier"}], "recorded and answered once")
        outs = [e for e in u.stream.snapshot()[start:] if e.event == "line" and e.json["direction"] == "out"]
        check.assertEqual(len(outs), 2, "one answer for it, one for the barrier")
        check_error(u.post({"text": "x", "id": "no spaces here"}), 400, r'"id"')
        check_error(u.post({"text": "x", "id": 12345678}), 400, r'"id"')
        u.close()

    tap.case("a message posted twice with the widget's id for it -> one line, one answer; a bad id -> 400",
             sent_twice)

    # --- the greeting on open --------------------------------------------------------------------

    def ready_after_replay(run):
        u = Shopper(srv)
        s = u.open()
        _, first = s.wait_for(lambda e: e.event == "ready", what="ready on an empty conversation")
        check.assertEqual(first.json, {"last_id": 0})
        check.assertIsNone(first.id, "ready has no id (Last-Event-ID stays the last line's)")
        s.close()
        u.connect()
        _, out = u.turn(text="hi")
        u.close()
        s = u.open()
        i, ready = s.wait_for(lambda e: e.event == "ready", what="ready after the replay")
        check.assertEqual([e.event for e in s.snapshot()[:i]], ["line", "line"], "the replay, then ready")
        check.assertEqual(ready.json, {"last_id": out["id"]})
        s.close()

    tap.case("the stream says \"ready\" {last_id} once it has replayed the conversation", ready_after_replay)

    def ignored_open_then(u, **message):
        """Sends an open event the bot ignores, then message: the message's
        lines come next, with nothing of the opening before them (no "in"
        line, no empty answer: it leaves no trace). Returns (in, out) of message."""
        start = len(u.stream.snapshot())
        u.send(event={"type": "open", "ignored": "x"})
        in_line, out = u.turn(**message)
        seen = [e.json for e in u.stream.snapshot()[start:] if e.event == "line"]
        check.assertEqual(seen[0], in_line, "the opening stored no line: %r" % seen)
        return in_line, out

    def open_greets(run):
        u = Shopper(srv)
        u.connect()
        in_line, out = u.turn(event={"type": "open"})
        check.assertEqual(in_line["body"], {"event": {"type": "open"}})
        check.assertIn("Bea", reply_texts(out), "the bot's greeting")
        check.assertEqual(choice_payloads(out), DRINKS, "and its choices")
        # a second opening (a reload, another tab) says nothing and stores nothing
        _, out = ignored_open_then(u, payload="latte")
        check.assertIn(reply_texts(out).strip(), ask_size("Latte"), "the greeting's choices answer as usual")
        u.close()

    tap.case("open event, fresh shopper -> the start flow's greeting and choices, once; the choices work",
             open_greets)

    def open_after_talking(run):
        u = Shopper(srv)
        u.connect()
        u.turn(text="hi")
        # a shopper who talked sees their conversation, not a greeting
        ignored_open_then(u, text="barrier")
        u.close()
        # nor while a person has the conversation (its writing still goes to the person)
        v = Shopper(srv)
        v.connect()
        v.turn(text="hi")
        v.turn(text="talk to a person")
        ignored_open_then(v, text="still there?")
        v.close()

    tap.case("open event after the shopper talked (or during a handoff) -> nothing, and nothing stored",
             open_after_talking)

    def open_refused(run):
        check_error(Shopper(srv, bot="tiny").post({"event": {"type": "open"}}), 400, r"greet_on_open")
        check_error(Shopper(srv).post({"event": {"type": "opened"}}), 400, r'"open"')

    tap.case("open event to a bot with greet_on_open false -> 400 with the reason", open_refused)

    def open_failed(run):
        # a start step written for typed messages: msg.text is nil on open
        strict = make_bot("strict", {
            "flows/main.lua": "return {\n  start = function(c, msg)\n    c:say_text('you said ' .. msg.text:lower())\n"
                              "  end,\n}\n",
            "scripts/tone.lua": "return { templates = { en = { fallback = 'Something broke.' } } }\n"},
            manifest={"webchat": {"origins": ["*"]}})
        own = Server(bots=[strict], name="parley (a start that reads msg.text)").start()
        try:
            u = Shopper(own, bot="strict")
            u.connect()
            mark = own.mark()
            _, out = u.turn(event={"type": "open"})
            check.assertEqual(out["body"], [], "the shopper, who wrote nothing, is not told something broke")
            own.wait_log(r"ERROR .*flows/main\.lua:3: attempt to index a nil value \(field 'text'\)", mark)
            _, out = u.turn(text="HELLO")
            check.assertEqual(reply_texts(out), "you said hello", "the conversation goes on")
            u.close()
        finally:
            own.stop()

    tap.case("a start step that fails on the open event (msg.text nil): no fallback to the shopper, file:line "
             "in the log", open_failed, runs=1)

    def history_unreadable(run):
        # The transcript view is dropped under the running server (SQLite), so that reading
        # the conversation fails: the stream must end (the browser then reconnects), not hang
        # without "ready" with no read to come.
        own = Server(bots=[ROOT], name="parley (a conversation that cannot be read)").start()
        try:
            u = Shopper(own)
            u.connect()
            _, out = u.turn(text="hi")
            u.close()
            view = db_query(own.db, "SELECT sql FROM sqlite_master WHERE type = 'view' AND name = 'transcript'")
            check.assertEqual(len(view), 1, "the store reads lines through its transcript view")
            con = sqlite3.connect(own.db, timeout=10)
            mark = own.mark()
            con.execute("DROP VIEW transcript")
            con.commit()
            s = u.open()
            check.assertEqual(s.status, 200, s)
            wait_until(lambda: s.ended, timeout=5, what="parley ending the stream it could not fill")
            check.assertEqual([e.event for e in s.snapshot()], [], "no line and no ready")
            own.wait_log(r"ERROR .*reading the conversation failed, its stream is ended for the browser to "
                         r"reconnect", mark)
            con.execute(view[0][0])
            con.commit()
            con.close()
            again = u.open(last_event_id=0)  # the browser's reconnection
            _, ready = again.wait_for(lambda e: e.event == "ready", what="ready once the conversation reads")
            check.assertEqual(ready.json, {"last_id": out["id"]})
            check.assertEqual([e.event for e in again.snapshot()], ["line", "line", "ready"])
            again.close()
        finally:
            own.stop()

    if not POSTGRESQL:  # (the failure is made by dropping SQLite's view)
        tap.case("reading a returning shopper's conversation fails -> the stream ends (the browser reconnects); "
                 "once it reads, the replay and ready", history_unreadable, runs=1)

    # --- bots ------------------------------------------------------------------------------------------

    def unknown_bot(run):
        for bot in ("nobody", "Barista"):
            check_error(srv.request("GET", "/v1/bots/%s/webchat/config" % bot), 404, bot)
            check_error(srv.request("POST", "/v1/bots/%s/webchat/messages" % bot,
                                    {"user": shopper_id(), "text": "hi"}), 404, bot)
            check_error(srv.request("GET", "/v1/bots/%s/widget.js" % bot), 404, bot)
            s = Shopper(srv, bot=bot).open()
            check_error(s, 404, bot)

    tap.case("unknown bot -> 404 naming it (config, messages, events, widget.js)", unknown_bot)

    def log_clean(run):
        still_serving()
        errors = [line for line in srv.log_since(0) if " ERROR " in line]
        check.assertEqual(errors, [], "bad requests are the client's fault, not errors of the server")

    tap.case("after all of this: no ERROR in the log", log_clean, runs=1)

    def sigterm(run):
        u = Shopper(srv)
        u.connect()
        u.turn(text="hi")
        code = srv.stop()
        check.assertEqual(code, 0, "exit status after SIGTERM")
        wait_until(lambda: u.stream.ended, timeout=5, what="the stream to end")
        u.close()

    tap.case("SIGTERM with a shopper's stream open: the stream ends, parley exits 0", sigterm, runs=1)


if __name__ == "__main__":
    run_suite("e2e: web chat channel (widget, messages, event stream)", main)
