#!/usr/bin/env python3
"""test_commerce: the commerce of the default bot end to end, through the
real `parley serve`: the purchase over the HTTP channel with the built-in
test provider (payment link, parley's own payment page, Pay / Decline), the
orders API behind the bot's API token, order updates that tell the shopper
(pushed through the outbox on WhatsApp, waiting for the next answer over
HTTP), exactly-once confirmations across kill -9, durable abandoned-cart
reminders driven by the test-only clock across restarts, refused
confirmations, and live stock across restarts and catalog edits.

The payment provider is "auto" in bot.json: the test provider as long as
BARISTA_STRIPE_SECRET_KEY is unset, which every server here makes sure of.
WhatsApp is faked with test_channel_whatsapp's FakeGraph (signed webhooks
in, a recorded Graph API out). What parley stored is read from its SQLite
file (commerce_helpers). No case sleeps: waits poll, and "nothing more was
sent" is checked after a later event that would have come after it.

Standard library only."""

import datetime
import json
import os
import re
import sys
import threading
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ROOT, Server, StartError, check, choices, copy_default_bot, make_bot, new_db,  # noqa: E402
                     new_user, run_suite, save_atomically, texts, wait_until)
from commerce_helpers import (BOT, DECLINED, REMINDER, THANKS, Api, PayLink, advance, count,  # noqa: E402
                              db_query, event_turns, html, jobs, leave_cart, link_of, reminders, stock_left,
                              tap_pay, to_checkout)
import test_channel_whatsapp as wa  # noqa: E402  (the fake Graph API and signed webhooks)

TOKEN = "api-" + uuid.uuid4().hex
PIZZA = os.path.join(ROOT, "examples", "pizza")
TRACK = "https://track.example/parcel/"

# Every server: the test provider (no Stripe key), the orders API on, no
# test clock unless asked for.
BASE_ENV = {
    "BARISTA_API_TOKEN": TOKEN,
    "BARISTA_STRIPE_SECRET_KEY": None,
    "BARISTA_STRIPE_WEBHOOK_SECRET": None,
    "PARLEY_TEST_CLOCK": None,
}


def wa_env(fake):
    return wa.env_for(fake, PARLEY_OUTBOX_RETRY_MS="50", PARLEY_OUTBOX_MAX_ATTEMPTS="3")


def env_with(*parts):
    env = dict(BASE_ENV)
    for p in parts:
        env.update(p)
    return env


def main(tap):
    fake = wa.FakeGraph()
    WA_ENV = wa_env(fake)
    srv = tap.watch(Server(bots=[ROOT, PIZZA], env=env_with(WA_ENV), name="parley (commerce)").start())
    api = Api(srv, TOKEN)
    tokens_seen = []  # every order token handed out, never to be logged

    def pay_link(replies):
        link = PayLink(link_of(replies)["url"])
        tokens_seen.append(link.token)
        return link

    # --- WhatsApp shoppers ---------------------------------------------------------------

    def wa_step(s, phone, msg):
        """Sends a WhatsApp message and waits for the question it leads to."""
        seen = len(fake.messages(phone))
        wa.say(s, phone, msg)
        return wa.wait_for_question(fake, phone, seen)

    def wa_leave_cart(s, phone):
        wa_step(s, phone, wa.text_message(phone, "hi"))
        wa_step(s, phone, wa.text_message(phone, "a small latte"))
        wa_step(s, phone, wa.button_reply(phone, "no", "No thanks"))

    def wa_to_payment(s, phone):
        """A WhatsApp shopper orders a small latte and taps Pay now; returns
        the order (from the orders API) and the index of the first message
        sent after the tap."""
        wa_leave_cart(s, phone)
        wa_step(s, phone, wa.button_reply(phone, "done", "That's all"))
        seen = len(fake.messages(phone))
        wa.say(s, phone, wa.button_reply(phone, "pay", "Pay now"))

        def order_told():
            # (also among calls the fake refused: a rendering of the link that
            # its shape check does not know yet must not hide the order)
            calls = fake.messages(phone)[seen:] + [m for _, _, m in fake.violations_of(phone)]
            return any("Order #" in json.dumps(m, ensure_ascii=False) for m in calls)
        wait_until(order_told, interval=0.02, what="the order's number sent to %s" % phone)
        orders = Api(s, TOKEN).orders(phone, "whatsapp")
        check.assertEqual(len(orders), 1, orders)
        check.assertEqual((orders[0]["state"], orders[0]["total"], orders[0]["channel"]), ("pending", 380, "whatsapp"))
        return orders[0], seen

    def wa_texts(phone, pattern, since=0):
        rx = re.compile(pattern)
        return [wa.body_text(m) for m in fake.messages(phone)[since:] if rx.search(wa.body_text(m))]

    # =====================================================================================
    # (1) the whole purchase over HTTP
    # =====================================================================================

    def whole_purchase(run):
        u = new_user("buyer")
        to_checkout(srv, u, "a large latte", pastry="croissant")
        replies, _ = tap_pay(srv, u)
        link = pay_link(replies)
        check.assertEqual(link_of(replies)["title"], "Pay €7.20")
        check.assertIn("Order #%d: €7.20" % link.order_id, texts(replies))
        check.assertEqual(link.netloc, "127.0.0.1:%d" % srv.port, "the link points at this server")

        order = api.order(link.order_id)
        check.assertEqual((order["state"], order["subtotal"], order["discount"], order["total"], order["currency"]),
                          ("pending", 720, 0, 720, "EUR"))
        check.assertEqual((order["user"], order["channel"], order["provider"]), (u, "rest", "test"))
        check.assertEqual([(l["sku"], l["qty"], l["total"]) for l in order["lines"]],
                          [("latte", 1, 470), ("croissant", 1, 250)])

        # the page: the lines, the total, Pay and Decline
        page = link.get(srv)
        check.assertEqual(page.status, 200, page)
        h = html(page)
        check.assertIn("Order #%d" % link.order_id, h)
        check.assertRegex(h, r'<td>1 × Latte<div class="options">Large</div></td><td>€4\.70</td>')
        check.assertRegex(h, r"<td>1 × Butter Croissant</td><td>€2\.50</td>")
        check.assertRegex(h, r"<td>Total</td><td>€7\.20</td>")
        check.assertIn('id="pay"', h)
        check.assertIn('id="decline"', h)
        check.assertIn('name="token" value="%s"' % link.token, h)

        mark = srv.mark()
        check.assertIn("Payment received", html(link.pay(srv)))
        order = api.order(link.order_id)
        check.assertEqual(order["state"], "paid")
        check.assertIsInstance(order.get("paid_at"), int)
        check.assertEqual(len(srv.find_log(r"INFO +\[barista\] order %d is paid$" % link.order_id, mark)), 1)
        srv.wait_log(r"\[barista\] scripts/hooks\.lua:\d+: order %d paid: 720 EUR for %s \(2 line\(s\)\)"
                     % (link.order_id, re.escape(u)), mark)
        # the page of a paid order has no form any more
        h = html(link.get(srv))
        check.assertNotIn('id="pay"', h)
        check.assertIn("This order is paid.", h)

        # HTTP cannot push: the thank-you comes first in the next answer, once
        replies = srv.say(BOT, u, "my cart")
        check.assertRegex(replies[0].get("text", ""), THANKS)
        check.assertIn("Order #%d" % link.order_id, replies[0]["text"])
        check.assertEqual(count(THANKS, replies), 1, replies)
        check.assertIn("Your cart is empty", texts(replies), "the paid cart is emptied")
        replies = srv.say(BOT, u, "hi")
        check.assertEqual(count(THANKS, replies), 0, "the thank-you was already given: %r" % replies)
        check.assertNotIn("Welcome back", texts(replies))
        turns = event_turns(srv.db, u, kind="payment")
        check.assertEqual([(ev["status"], ev["order"]["id"]) for ev, _ in turns], [("paid", link.order_id)])
        check.assertEqual(count(THANKS, turns[0][1]), 1)

    tap.case("(1) the whole purchase over HTTP: link, page with lines and total, Pay, paid in the API, "
             "the thank-you once in the next answer, the cart empty", whole_purchase)

    def decline_then_pay(run):
        u = new_user("decliner")
        to_checkout(srv, u, "a medium cappuccino")
        replies, _ = tap_pay(srv, u)
        first = pay_link(replies)
        check.assertIn("Payment declined", html(first.decline(srv)))
        check.assertEqual(api.order(first.order_id)["state"], "failed")
        # back in the chat the shopper taps Pay now again: the news first,
        # the question again, then a new link for a new order
        replies = srv.say(BOT, u, payload="pay")
        check.assertIn(DECLINED, replies[0].get("text", ""))
        check.assertEqual(count(DECLINED, replies), 1)
        second = pay_link(replies)
        check.assertNotEqual(second.order_id, first.order_id)
        check.assertEqual(link_of(replies)["title"], "Pay €4.10", "nothing was lost from the cart")
        # the declined order cannot be paid any more (what its page then
        # says is case (6)'s); the new one can
        h = html(first.get(srv))
        check.assertIn("The payment of this order was declined.", h)
        check.assertNotIn('id="pay"', h)
        check.assertNotIn("Payment received", html(first.pay(srv)))
        check.assertEqual(api.order(first.order_id)["state"], "failed")
        second.pay(srv)
        check.assertEqual([(o["id"], o["state"]) for o in api.orders(u)],
                          [(second.order_id, "paid"), (first.order_id, "failed")])
        replies = srv.say(BOT, u, "my cart")
        check.assertEqual(count(THANKS, replies), 1, replies)
        check.assertIn("Your cart is empty", texts(replies))
        check.assertEqual([ev["status"] for ev, _ in event_turns(srv.db, u, kind="payment")], ["failed", "paid"])

    tap.case("(1) Decline on the page, then pay again: the shopper is told, a new order is paid, "
             "the declined one stays failed", decline_then_pay)

    def discount_on_page(run):
        u = new_user("coder")
        to_checkout(srv, u, "a large latte", pastry="croissant")
        check.assertIn("what's the code", texts(srv.say(BOT, u, payload="code")))
        replies = srv.say(BOT, u, "welcome10")
        check.assertIn("Your new total is €6.48", texts(replies))
        replies, _ = tap_pay(srv, u)
        link = pay_link(replies)
        check.assertEqual(link_of(replies)["title"], "Pay €6.48")
        order = api.order(link.order_id)
        check.assertEqual((order["subtotal"], order["discount"], order["total"], order["discount_code"]),
                          (720, 72, 648, "WELCOME10"))
        h = html(link.get(srv))
        check.assertRegex(h, r"<td>Discount WELCOME10</td><td>[−-]€0\.72</td>")
        check.assertRegex(h, r"<td>Total</td><td>€6\.48</td>")
        link.pay(srv)
        check.assertEqual(api.order(link.order_id)["state"], "paid")
        # once per shopper
        srv.say(BOT, u, "hi")
        srv.say(BOT, u, "a small latte")
        srv.say(BOT, u, payload="croissant")
        srv.say(BOT, u, payload="done")
        srv.say(BOT, u, payload="code")
        check.assertIn("already used that code", texts(srv.say(BOT, u, "WELCOME10")))

    tap.case("(1) a discount code: on the page as a line, in the order, and once per shopper", discount_on_page)

    # =====================================================================================
    # (2) the orders API
    # =====================================================================================

    def api_auth(run):
        # the variable unset: 403 with a reason naming it
        with Server(env=env_with({"BARISTA_API_TOKEN": None}), name="parley (no API token)") as bare:
            for method, path, body in (("GET", "/v1/bots/barista/orders/1", None),
                                       ("GET", "/v1/bots/barista/orders?user=x", None),
                                       ("POST", "/v1/bots/barista/orders/1/status", {"status": "shipped"})):
                for headers in ({}, {"Authorization": "Bearer " + TOKEN}, {"Authorization": "Bearer "}):
                    r = bare.request(method, path, body, headers=headers)
                    check.assertEqual(r.status, 403, "%s %s %r: %r" % (method, path, headers, r))
                    check.assertIn("BARISTA_API_TOKEN", r.json["error"])
        # a bot whose manifest names no api_token_env: 403 too
        r = srv.request("GET", "/v1/bots/pizza/orders?user=x", headers={"Authorization": "Bearer " + TOKEN})
        check.assertEqual(r.status, 403, r)
        check.assertIn("api_token_env", r.json["error"])

        # set: anything but the exact bearer token is 401
        u = new_user("auth")
        to_checkout(srv, u)
        replies, _ = tap_pay(srv, u)
        link = pay_link(replies)
        path = "/v1/bots/barista/orders/%d" % link.order_id
        for auth in (None, "", "Bearer", "Bearer ", "Bearer wrong", "Bearer " + TOKEN + "x", "Bearer " + TOKEN[:-1],
                     "bearer " + TOKEN, "Basic " + TOKEN, TOKEN, "Bearer  " + TOKEN):
            headers = {} if auth is None else {"Authorization": auth}
            for method, p, body in (("GET", path, None), ("GET", "/v1/bots/barista/orders?user=" + u, None),
                                    ("POST", path + "/status", {"status": "shipped", "tracking_url": TRACK + "x"})):
                r = srv.request(method, p, body, headers=headers)
                check.assertEqual(r.status, 401, "%s %s with %r: %r" % (method, p, auth, r))
                check.assertIn("Bearer", r.headers.get("www-authenticate", ""))
                check.assertIn("BARISTA_API_TOKEN", r.json["error"])
                check.assertNotIn(TOKEN, r.body.decode())
        # a refused update changed nothing and told the shopper nothing
        order = api.order(link.order_id)
        check.assertNotIn("fulfilment", [k for k, v in order.items() if v is not None])
        check.assertEqual(event_turns(srv.db, u, kind="order_status"), [])
        check.assertIn("still waiting for your payment", texts(srv.say(BOT, u, "hello?")))

    tap.case("(2) orders API auth: 403 with a reason while the token variable is unset (or not in the manifest), "
             "401 for any wrong or missing bearer token", api_auth)

    def api_reads(run):
        u = new_user("reader") + " a+b&c=d/é?"  # the query string must carry any user id
        to_checkout(srv, u, "a double espresso")
        replies, _ = tap_pay(srv, u)
        first = pay_link(replies)
        first.decline(srv)
        replies = srv.say(BOT, u, payload="pay")
        second = pay_link(replies)

        order = api.order(second.order_id)
        check.assertLessEqual({"id", "bot", "channel", "user", "state", "currency", "subtotal", "discount", "total",
                               "lines", "provider", "created_at", "updated_at"}, set(order), order)
        check.assertEqual((order["id"], order["bot"], order["channel"], order["user"], order["state"], order["total"]),
                          (second.order_id, BOT, "rest", u, "pending", 320))
        listed = api.orders(u)
        check.assertEqual([(o["id"], o["state"]) for o in listed],
                          [(second.order_id, "pending"), (first.order_id, "failed")], "newest first")
        check.assertEqual(listed[0], order)
        check.assertEqual([o["id"] for o in api.orders(u, "rest")], [second.order_id, first.order_id])
        check.assertEqual(api.orders(u, "whatsapp"), [])
        check.assertEqual(api.orders(new_user("nobody")), [])

        # the order's token is in no answer of the API (nor is any field called token)
        def no_token(value, where):
            if isinstance(value, dict):
                check.assertNotIn("token", value, where)
                for v in value.values():
                    no_token(v, where)
            elif isinstance(value, list):
                for v in value:
                    no_token(v, where)
        no_token(api.order(first.order_id), "GET by id")
        no_token(listed, "GET list")
        r = api.update(second.order_id, "baking")
        check.assertEqual(r.status, 409, "a pending order has nothing to fulfil: %r" % r)
        check.assertIn("not paid", r.json["error"])
        check.assertEqual(api.order(second.order_id).get("fulfilment"), None, "the refused update changed nothing")
        second.pay(srv)
        r = api.update(second.order_id, "baking")
        check.assertEqual(r.status, 200, r)
        no_token(r.json, "POST status")

        # 404s, 400s, 405s
        for method, path, status in (("GET", "/999999999", 404), ("GET", "/0", 404), ("GET", "/-1", 404),
                                     ("GET", "/abc", 404), ("GET", "/1x", 404), ("GET", "/%d/extra" % first.order_id, 404),
                                     ("GET", "", 400), ("GET", "?channel=rest", 400),
                                     ("POST", "", 405), ("DELETE", "/%d" % first.order_id, 405),
                                     ("PUT", "/%d" % first.order_id, 405), ("GET", "/%d/status" % first.order_id, 405)):
            r = api.request(method, path, {} if method in ("POST", "PUT") else None)
            check.assertEqual(r.status, status, "%s %s: %r" % (method, path, r))
            check.assertIsInstance(r.json.get("error"), str, r)
        r = api.request("GET", "/999999999")
        check.assertIn("no order 999999999", r.json["error"])
        r = api.update(999999999, "shipped", TRACK)
        check.assertEqual(r.status, 404, r)
        for body in (b"{not json", {"tracking_url": TRACK}, {"status": ""}, {"status": 5}, {"status": "x" * 41},
                     {"status": "shipped", "tracking_url": 5}):
            r = api.request("POST", "/%d/status" % first.order_id, body)
            check.assertEqual(r.status, 400, "%r: %r" % (body, r))
        check.assertIsNone(api.order(first.order_id).get("fulfilment"), "a refused update changed the order")

    tap.case("(2) orders API: GET by id, list by user (newest first, by channel), 404/400/405, "
             "never the order's token", api_reads)

    # =====================================================================================
    # (3) order updates tell the shopper
    # =====================================================================================

    def wa_link_sent(run):
        phone = wa.new_phone()
        order, seen = wa_to_payment(srv, phone)
        url = order["payment_url"]

        def link_went_out():
            calls = fake.messages(phone)[seen:] + [m for _, _, m in fake.violations_of(phone)]
            return any(url in json.dumps(m, ensure_ascii=False) for m in calls)
        try:
            wait_until(link_went_out, timeout=2.0, interval=0.02, what="the payment link sent to the shopper")
        except AssertionError:
            raise AssertionError("the WhatsApp shopper was never sent the payment link %s; what was sent after "
                                 "'Pay now': %r" % (url, [wa.body_text(m) for m in fake.messages(phone)[seen:]]))

    tap.case("(3) a WhatsApp shopper who taps Pay now is sent the payment link (its URL)", wa_link_sent)

    def wa_shipped(run):
        phone = wa.new_phone()
        order, _ = wa_to_payment(srv, phone)
        link = PayLink(order["payment_url"])  # the link the shopper would tap
        tokens_seen.append(link.token)
        seen = len(fake.messages(phone))
        link.pay(srv)
        wa.wait_for_text(fake, phone, seen, THANKS.pattern)
        check.assertEqual(api.order(order["id"])["state"], "paid")

        url = TRACK + uuid.uuid4().hex[:8]
        seen = len(fake.messages(phone))
        r = api.update(order["id"], "shipped", url)
        check.assertEqual(r.status, 200, r)
        check.assertEqual((r.json["id"], r.json["fulfilment"], r.json["tracking_url"], r.json["state"]),
                          (order["id"], "shipped", url, "paid"))
        wa.wait_for_text(fake, phone, seen, r"on its way")
        shipped = wa_texts(phone, r"on its way", seen)
        check.assertEqual(shipped, ["Good news: order #%d is on its way! Track it here: %s" % (order["id"], url)],
                          "worded by the tone, with the tracking URL")
        # the same update again: 200, the order as it is, no second message
        r = api.update(order["id"], "shipped", url)
        check.assertEqual(r.status, 200, r)
        check.assertEqual(r.json["fulfilment"], "shipped")
        # the shopper asks; the answer comes after anything queued before it
        seen2 = len(fake.messages(phone))
        wa.say(srv, phone, wa.text_message(phone, "where is my order?"))
        wa.wait_for_text(fake, phone, seen2, r"^Order #%d \(€3\.80\): on its way\.$" % order["id"])
        check.assertEqual(len(wa_texts(phone, r"Good news: order")), 1, "the shipping message was sent once")
        check.assertEqual(len(wa_texts(phone, THANKS.pattern)), 1, "the thank-you was sent once")
        check.assertEqual(len(event_turns(srv.db, phone, "whatsapp", "order_status")), 1)

    tap.case("(3) POST status shipped with a tracking URL: the WhatsApp shopper gets the tone's shipping "
             "message with the URL once; the same update again sends nothing", wa_shipped)

    def http_shipped(run):
        u = new_user("tracker")
        check.assertIn("You haven't ordered anything yet", texts(srv.say(BOT, u, "where is my order?")))
        to_checkout(srv, u)
        replies, _ = tap_pay(srv, u)
        link = pay_link(replies)
        replies = srv.say(BOT, u, "where is my order?")
        check.assertIn("Order #%d (€3.80): waiting for payment." % link.order_id, texts(replies))
        link.pay(srv)
        replies = srv.say(BOT, u, "where is my order?")
        check.assertEqual(count(THANKS, replies), 1)
        check.assertIn("Order #%d (€3.80): paid and being prepared." % link.order_id, texts(replies))

        url = TRACK + uuid.uuid4().hex[:8]
        check.assertEqual(api.update(link.order_id, "shipped", url).status, 200)
        replies = srv.say(BOT, u, "hi")
        check.assertEqual(replies[0].get("text"),
                          "Good news: order #%d is on its way! Track it here: %s" % (link.order_id, url),
                          "the shipping notice comes first in the next answer")
        check.assertEqual(count(r"Good news", replies), 1)
        check.assertEqual(api.update(link.order_id, "shipped", url).status, 200)
        replies = srv.say(BOT, u, "where is my order?")
        check.assertEqual(count(r"Good news", replies), 0, "the same update twice tells the shopper once")
        check.assertIn("Order #%d (€3.80): on its way." % link.order_id, texts(replies))
        # another status, without a tracking URL
        check.assertEqual(api.update(link.order_id, "ready").status, 200)
        replies = srv.say(BOT, u, "my cart")
        check.assertEqual(replies[0].get("text"), "Order #%d is ready for pickup ☕" % link.order_id)
        check.assertEqual([ev["status"] for ev, _ in event_turns(srv.db, u, kind="order_status")], ["shipped", "ready"])

    tap.case("(3) over HTTP: the shipping notice comes with the next answer, once; \"where is my order?\" "
             "answers from the store at each stage", http_shipped)

    # =====================================================================================
    # (6) confirmations the test page refuses
    # =====================================================================================

    def refused(run):
        u = new_user("refused")
        to_checkout(srv, u)
        replies, _ = tap_pay(srv, u)
        link = pay_link(replies)
        mark = srv.mark()
        other = "/v1/bots/barista/payments/test/"

        def refused_with(r, status, reason=None):
            check.assertEqual(r.status, status, r)
            check.assertIsInstance(r.json, dict, r)
            if reason:
                check.assertRegex(r.json.get("error", ""), reason)

        # an unknown order, with this order's token or none
        for oid in ("999999999", str(link.order_id + 100000)):
            refused_with(link.submit(srv, "pay", path=other + oid), 404, r"no such payment")
            refused_with(link.submit(srv, "pay", token="", path=other + oid), 404)
        refused_with(link.submit(srv, "pay", path=other + "abc"), 404)
        refused_with(link.submit(srv, "pay", path=other + "0"), 404)
        # this order with a wrong, empty, longer or shorter token
        for token in ("0" * len(link.token), "", link.token + "0", link.token[:-1], link.token.upper()):
            refused_with(link.submit(srv, "pay", token=token), 404, r"no such payment")
            refused_with(link.get(srv, token=token or "x"), 404)
        refused_with(srv.request("GET", link.path), 404)
        # this order through another bot's page
        refused_with(link.submit(srv, "pay", path="/v1/bots/pizza/payments/test/%d" % link.order_id), 404)
        # no action, or one the page does not have
        refused_with(link.submit(srv, None), 400, r"pay or decline")
        for action in ("refund", "paid", "PAY", ""):
            refused_with(link.submit(srv, action), 400, r"pay or decline")
        r = srv.request("PUT", "%s?token=%s" % (link.path, link.token), "token=%s&action=pay" % link.token)
        check.assertEqual(r.status, 405, r)
        check.assertIn("POST", r.headers.get("allow", ""))

        # nothing changed, nothing was said, no payment was recorded
        check.assertEqual(api.order(link.order_id)["state"], "pending")
        check.assertEqual(event_turns(srv.db, u), [])
        check.assertEqual(srv.find_log(r"\[barista\] order %d is (paid|failed)$" % link.order_id, mark), [])
        check.assertIn("still waiting for your payment", texts(srv.say(BOT, u, "hello?")))
        # the right form still pays; a decline afterwards changes nothing
        link.pay(srv)
        check.assertIn("already paid", html(link.decline(srv)))
        check.assertEqual(api.order(link.order_id)["state"], "paid")
        check.assertEqual([ev["status"] for ev, _ in event_turns(srv.db, u)], ["paid"])

    tap.case("(6) the test page refuses unknown orders, wrong tokens, other bots and bad actions; "
             "the order stays unchanged and nobody is told", refused)

    def pay_after_decline(run):
        u = new_user("late-payer")
        to_checkout(srv, u)
        replies, _ = tap_pay(srv, u)
        link = pay_link(replies)
        link.decline(srv)
        mark = srv.mark()
        # the shopper goes back to the page they still have open and taps Pay
        h = html(link.pay(srv))
        check.assertEqual(api.order(link.order_id)["state"], "failed")
        check.assertEqual(srv.find_log(r"order %d is paid" % link.order_id, mark), [])
        check.assertEqual([ev["status"] for ev, _ in event_turns(srv.db, u)], ["failed"])
        result = re.search(r'<p id="result"><strong>(.*?)</strong>', h)
        check.assertIsNotNone(result, h)
        check.assertIn("can no longer be paid", result.group(1),
                       "a Pay on a declined order was answered %r, as if this payment had been declined" % result.group(1))

    tap.case("(6) Pay on the page of a declined order: refused, the order stays failed, and the page says it "
             "can no longer be paid", pay_after_decline)

    def main_log_clean(run):
        log = srv.log_text()
        for token in tokens_seen:
            check.assertNotIn(token, log, "an order's token was written to the log")
        errors = [l for l in srv.log_since(0) if " ERROR " in l]
        check.assertEqual(errors, [], "refused requests are the client's fault, not errors of the server")

    tap.case("after cases 1-3 and 6: no order token in the log, and no ERROR line", main_log_clean, runs=1)
    srv.stop()
    tap.unwatch(srv)

    # =====================================================================================
    # (4) kill -9 between the payment link and the confirmation
    # =====================================================================================

    def start(db, name, env=None, port=None):
        """A server on db; on the given port when it is free (so that links
        handed out before a restart still point at it)."""
        e = env or BASE_ENV
        if port:
            try:
                return tap.watch(Server(db=db, env=e, name=name, args=["--listen", "127.0.0.1:%d" % port]).start())
            except StartError:
                pass
        return tap.watch(Server(db=db, env=e, name=name).start())

    def finish(*servers):
        for s in servers:
            if s is not None:
                s.stop()
                tap.unwatch(s)

    def crash_before_confirmation(run):
        db = new_db()
        a = start(db, "parley (before kill -9)")
        b = None
        try:
            u = new_user("crash")
            to_checkout(a, u, "a large latte", pastry="croissant")
            replies, _ = tap_pay(a, u)
            link = PayLink(link_of(replies)["url"])
            port = a.port
            check.assertEqual(a.kill(), -9)
            tap.unwatch(a)

            b = start(db, "parley (after kill -9)", port=port)
            api_b = Api(b, TOKEN)
            check.assertEqual(api_b.order(link.order_id)["state"], "pending")
            page = b.request("GET", link.url[link.url.index("/v1/"):])
            check.assertEqual(page.status, 200, page)
            check.assertIn('id="pay"', html(page))
            mark = b.mark()
            check.assertIn("Payment received", html(link.pay(b)))
            paid = api_b.order(link.order_id)
            check.assertEqual(paid["state"], "paid")
            # the same confirmation again, and a decline: nothing new
            link.pay(b)
            check.assertIn("already paid", html(link.decline(b)))
            again = api_b.order(link.order_id)
            check.assertEqual((again["state"], again["paid_at"]), ("paid", paid["paid_at"]))
            check.assertEqual(len(b.find_log(r"\[barista\] order %d is paid$" % link.order_id, mark)), 1)
            # the merchant's hook runs after the payment's turn: waited for, then counted
            b.wait_log(r"order %d paid: 720 EUR" % link.order_id, mark)
            check.assertEqual(len(b.find_log(r"order %d paid: 720 EUR" % link.order_id, mark)), 1, "on_paid ran once")
            # (the page closed once the order was paid: the later submits never reach a confirmation)
            turns = event_turns(db, u, kind="payment")
            check.assertEqual(len(turns), 1, turns)
            check.assertEqual(count(THANKS, turns[0][1]), 1)
            # the shopper is told once
            replies = b.say(BOT, u, "hi")
            check.assertEqual(count(THANKS, replies), 1, replies)
            check.assertRegex(replies[0].get("text", ""), THANKS)
            check.assertEqual(count(THANKS, b.say(BOT, u, "my cart")), 0)
        finally:
            finish(a, b)

    tap.case("(4) kill -9 between the payment link and the confirmation: after the restart the link pays, "
             "once; the shopper is told once; the confirmation again changes nothing", crash_before_confirmation)

    def concurrent_confirmations(run):
        db = new_db()
        s = start(db, "parley (confirmations at once)")
        try:
            u = new_user("rush")
            to_checkout(s, u)
            replies, _ = tap_pay(s, u)
            link = PayLink(link_of(replies)["url"])
            mark = s.mark()
            results = []

            def submit(action):
                r = link.submit(s, action)
                results.append((action, r.status))
            threads = [threading.Thread(target=submit, args=("pay" if i % 4 else "decline",)) for i in range(12)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(15)
            check.assertEqual(sorted(st for _, st in results), [200] * 12, results)
            state = Api(s, TOKEN).order(link.order_id)["state"]
            check.assertIn(state, ("paid", "failed"))
            check.assertEqual(len(s.find_log(r"\[barista\] order %d is (paid|failed)$" % link.order_id, mark)), 1,
                              "one confirmation applied")
            check.assertEqual(len(event_turns(db, u, kind="payment")), 1)
            replies = s.say(BOT, u, "hello")
            check.assertEqual(count(THANKS, replies) + count(DECLINED, replies), 1, replies)
        finally:
            finish(s)

    tap.case("(4) twelve Pay / Decline submits at once: one applies, the shopper is told once", concurrent_confirmations)

    def crash_after_confirmation(run):
        db = new_db()
        a = start(db, "parley (paid, then kill -9)")
        b = None
        try:
            u = new_user("aftercrash")
            to_checkout(a, u)
            replies, _ = tap_pay(a, u)
            link = PayLink(link_of(replies)["url"])
            check.assertIn("Payment received", html(link.pay(a)))
            check.assertEqual(a.kill(), -9)
            tap.unwatch(a)
            b = start(db, "parley (after kill -9)")
            check.assertEqual(Api(b, TOKEN).order(link.order_id)["state"], "paid")
            replies = b.say(BOT, u, "hi")
            check.assertEqual(count(THANKS, replies), 1, "the committed thank-you survived the crash: %r" % replies)
            check.assertEqual(count(THANKS, b.say(BOT, u, "hi")), 0)
            check.assertEqual(len(event_turns(db, u, kind="payment")), 1)
        finally:
            finish(a, b)

    tap.case("(4) kill -9 right after the page said \"Payment received\": still paid, thank-you given once",
             crash_after_confirmation)

    # =====================================================================================
    # (5) abandoned carts on the test clock
    # =====================================================================================

    CLOCK_ENV = env_with(WA_ENV, {"PARLEY_TEST_CLOCK": "1"})

    def clock_control(run):
        with Server(env=BASE_ENV, name="parley (no test clock)") as plain:
            r = plain.request("POST", "/v1/test/clock", {"advance": 3600})
            check.assertEqual(r.status, 404, "the clock is a test-only control: %r" % r)
        with Server(env=CLOCK_ENV, name="parley (test clock)") as s:
            r = s.request("GET", "/v1/test/clock")
            check.assertEqual(r.status, 405, r)
            for body in ({}, {"advance": -1}, {"advance": "60"}, b"{bad"):
                r = s.request("POST", "/v1/test/clock", body)
                check.assertEqual(r.status, 400, "%r: %r" % (body, r))
            stamps = [advance(s, 0), advance(s, 90 * 60)]
            for stamp in stamps:
                check.assertRegex(stamp, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
            before, after = (datetime.datetime.fromisoformat(t.replace("Z", "+00:00")) for t in stamps)
            check.assertAlmostEqual((after - before).total_seconds(), 90 * 60, delta=30)

    tap.case("(5) the test clock: 404 unless PARLEY_TEST_CLOCK=1; {\"advance\": seconds} moves it forward",
             clock_control, runs=1)

    def wait_reminded(db, user, channel="rest", n=1):
        return wait_until(lambda: len(reminders(db, user, channel)) >= n and reminders(db, user, channel),
                          timeout=5, interval=0.02, what="%d reminder(s) for %s" % (n, user))

    def abandoned_across_restart(how):
        def stop(s):
            if how == "SIGTERM":
                check.assertEqual(s.stop(), 0)
            else:
                check.assertEqual(s.kill(), -9)
            tap.unwatch(s)

        def case(run):
            db = new_db()
            servers = [start(db, "parley (clock, 1)", CLOCK_ENV)]
            try:
                s = servers[-1]
                u, phone = new_user("quiet"), wa.new_phone()
                leave_cart(s, u)
                wa_leave_cart(s, phone)
                check.assertEqual(jobs(db, u), [("abandoned_cart", "pending")])
                check.assertEqual(jobs(db, phone, "whatsapp"), [("abandoned_cart", "pending")])
                for who, channel in ((u, "rest"), (phone, "whatsapp")):
                    (fire_at, created_at), = db_query(
                        db, "SELECT fire_at, created_at FROM jobs WHERE channel = ? AND user = ?", channel, who)
                    check.assertAlmostEqual(fire_at - created_at, 3600 * 1000, delta=5000, msg="due in an hour")
                stop(s)

                servers.append(start(db, "parley (clock, 2)", CLOCK_ENV))
                s = servers[-1]
                seen = len(fake.messages(phone))
                advance(s, 61 * 60)
                said = wait_reminded(db, u)
                check.assertEqual(said, [REMINDER + ". Want me to finish your order?"])
                wa.wait_for_text(fake, phone, seen, re.escape(REMINDER))
                check.assertEqual(jobs(db, u), [("abandoned_cart", "fired")])
                # HTTP: the reminder comes first in the next answer; the code is on the cart
                replies = s.say(BOT, u, payload="done")
                check.assertIn(REMINDER, replies[0].get("text", ""))
                check.assertEqual(count(re.escape(REMINDER), replies), 1)
                check.assertIn("Code COMEBACK: −€1.00", texts(replies))
                check.assertIn("Total: €2.80", texts(replies))
                # a control shopper leaves a cart now; restart; hours pass
                control = new_user("control")
                leave_cart(s, control)
                # (the outbox delivers at least once: a kill -9 before it
                # recorded a call as sent would send it again)
                wait_until(lambda: db_query(db, "SELECT count(*) FROM outbox WHERE user = ? AND state <> 'sent'",
                                            phone)[0][0] == 0, interval=0.02, what="the WhatsApp calls recorded as sent")
                stop(s)

                servers.append(start(db, "parley (clock, 3)", CLOCK_ENV))
                s = servers[-1]
                advance(s, 3 * 3600)
                wait_reminded(db, control)  # due after the others: they had their chance
                check.assertEqual(len(reminders(db, u)), 1, "never twice for the same cart")
                check.assertEqual(len(event_turns(db, u, kind="job")), 1)
                check.assertEqual(len(reminders(db, phone, "whatsapp")), 1)
                check.assertEqual(len(wa_texts(phone, re.escape(REMINDER))), 1, "one reminder on WhatsApp")
                check.assertEqual([st for _, st in jobs(db, u)], ["fired"])
                check.assertNotIn(re.escape(REMINDER), texts(s.say(BOT, u, "my cart")))
            finally:
                finish(*servers)
        return case

    tap.case("(5) an abandoned cart survives SIGTERM and restarts: one reminder after an hour with COMEBACK "
             "(next answer over HTTP, pushed on WhatsApp), none hours later", abandoned_across_restart("SIGTERM"))
    tap.case("(5) an abandoned cart survives kill -9 and restarts: one reminder, never a second",
             abandoned_across_restart("kill -9"))

    clock = {}

    def clock_server():
        if "s" not in clock:
            clock["s"] = start(new_db(), "parley (clock)", CLOCK_ENV)
        return clock["s"]

    def comes_back(run):
        s = clock_server()
        u, control = new_user("back"), new_user("control")
        leave_cart(s, u)
        leave_cart(s, control)
        advance(s, 50 * 60)
        check.assertIn("In your cart", texts(s.say(BOT, u, "my cart")))  # back after 50 minutes
        advance(s, 11 * 60)
        wait_reminded(s.db, control)
        check.assertEqual(reminders(s.db, u), [], "the hour starts again when the shopper comes back")
        check.assertEqual([st for _, st in jobs(s.db, u) if st == "pending"], ["pending"])
        advance(s, 50 * 60)
        wait_reminded(s.db, u)
        check.assertEqual(len(reminders(s.db, u)), 1)

    tap.case("(5) a shopper who comes back after 50 minutes resets the hour", comes_back)

    def pays_or_cancels(run):
        s = clock_server()
        payer, canceller, control = new_user("payer"), new_user("canceller"), new_user("control")
        leave_cart(s, payer)
        s.say(BOT, payer, payload="done")
        replies, _ = tap_pay(s, payer)
        PayLink(link_of(replies)["url"]).pay(s)
        leave_cart(s, canceller)
        check.assertIn("cleared your order", texts(s.say(BOT, canceller, "cancel")))
        leave_cart(s, control)
        advance(s, 2 * 3600)
        wait_reminded(s.db, control)
        for u in (payer, canceller):
            check.assertEqual(event_turns(s.db, u, kind="job"), [], "no reminder job fired for %s" % u)
            states = [st for _, st in jobs(s.db, u)]
            check.assertTrue(states and all(st == "cancelled" for st in states), "%s: jobs %r" % (u, states))
        replies = s.say(BOT, payer, "hi")
        check.assertEqual(count(THANKS, replies), 1)
        check.assertEqual(count(re.escape(REMINDER), replies), 0)

    tap.case("(5) a shopper who pays, or cancels, gets no reminder: the job is cancelled", pays_or_cancels)

    def declined_and_left(run):
        s = clock_server()
        u, control = new_user("declined"), new_user("control")
        to_checkout(s, u)
        replies, _ = tap_pay(s, u)
        PayLink(link_of(replies)["url"]).decline(s)
        leave_cart(s, control)
        advance(s, 61 * 60)
        wait_reminded(s.db, control)
        # its job may run on another turn thread than the control's: wait for
        # its turn too (the wait fails when no reminder comes)
        wait_reminded(s.db, u)
        check.assertEqual(len(reminders(s.db, u)), 1,
                          "a shopper whose payment was declined and who went quiet still has a full cart "
                          "(jobs: %r)" % jobs(s.db, u))

    tap.case("(5) a shopper whose payment was declined and who then goes quiet gets the reminder", declined_and_left)

    def cents_in(text, pattern):
        """The amount of the first "€12.34" after pattern in text."""
        m = re.search(pattern + r".*?€(\d+)\.(\d\d)", text, re.S)
        check.assertIsNotNone(m, "%r followed by an amount in %r" % (pattern, text))
        return int(m.group(1)) * 100 + int(m.group(2))

    def reminder_keeps_better_code(run):
        s = clock_server()
        u = new_user("welcomed")
        s.say(BOT, u, "hi")
        s.say(BOT, u, "a large latte")
        s.say(BOT, u, payload="croissant")
        s.say(BOT, u, payload="another")
        s.say(BOT, u, "large hot chocolate")
        s.say(BOT, u, payload="no")
        s.say(BOT, u, payload="done")
        s.say(BOT, u, payload="code")
        replies = s.say(BOT, u, "WELCOME10")  # 10 % of €11.50: −€1.15, more than COMEBACK's −€1.00
        check.assertIn("Code WELCOME10: −€1.15", texts(replies))
        before = cents_in(texts(replies), r"Total:")
        check.assertEqual(before, 1035)
        advance(s, 61 * 60)
        said = wait_until(lambda: [r for _, rs in event_turns(s.db, u, kind="job") for r in rs],
                          timeout=5, interval=0.02, what="the reminder")
        replies = s.say(BOT, u, payload="pay")  # the shopper comes back and pays
        promised = cents_in(said[0].get("text", ""), r"in your cart \(")
        link = link_of(replies)
        check.assertLessEqual(promised, before,
                              "the reminder's discount made the order dearer: %r" % said[0].get("text"))
        check.assertLessEqual(cents_in(link["title"], "Pay"), before,
                              "after the reminder the shopper pays more than before it: %r" % link["title"])

    tap.case("(5) a reminder never makes the order dearer: a cart with WELCOME10 (−€1.15) is not switched "
             "to COMEBACK (−€1.00)", reminder_keeps_better_code)

    def reminder_code_used(run):
        s = clock_server()
        u = new_user("comeback-twice")
        leave_cart(s, u)
        advance(s, 61 * 60)
        wait_reminded(s.db, u)
        s.say(BOT, u, payload="done")
        replies, _ = tap_pay(s, u)
        link = PayLink(link_of(replies)["url"])
        check.assertEqual(Api(s, TOKEN).order(link.order_id)["discount_code"], "COMEBACK")
        link.pay(s)
        s.say(BOT, u, "hi")  # a new cart, left again
        s.say(BOT, u, "a small latte")
        s.say(BOT, u, payload="no")
        advance(s, 61 * 60)
        said = wait_until(lambda: len(event_turns(s.db, u, kind="job")) >= 2 and event_turns(s.db, u, kind="job")[1][1],
                          timeout=5, interval=0.02, what="the second cart's reminder")
        text = said[0].get("text", "")
        summary = texts(s.say(BOT, u, payload="done"))
        if "COMEBACK" in text:
            check.assertIn("Code COMEBACK", summary,
                           "the reminder promised COMEBACK (%r), a code this shopper already used, and the "
                           "checkout does not apply it: %r" % (text, summary))
        check.assertEqual(cents_in(text, r"in your cart \("), cents_in(summary, r"Total:"),
                          "the total the reminder promises is the checkout's")

    tap.case("(5) a shopper who already used COMEBACK is not promised it again by the next cart's reminder",
             reminder_code_used)

    def in_japanese(run):
        s = clock_server()
        api_s = Api(s, TOKEN)
        buyer, leaver = new_user("ja-buyer"), new_user("ja-leaver")
        for u in (buyer, leaver):
            s.say(BOT, u, "こんにちは", locale="ja")
            s.say(BOT, u, "カフェラテをSサイズで")
            s.say(BOT, u, payload="no")
        s.say(BOT, buyer, payload="done")
        link = PayLink(link_of(s.say(BOT, buyer, payload="pay"))["url"])
        link.pay(s)
        url = TRACK + uuid.uuid4().hex[:8]
        check.assertEqual(api_s.update(link.order_id, "shipped", url).status, 200)
        replies = s.say(BOT, buyer, "注文状況")
        check.assertEqual(replies[0].get("text"), "お支払いありがとうございます！ご注文 #%d を準備しています ☕" % link.order_id)
        check.assertEqual(replies[1].get("text"), "ご注文 #%d を発送しました！追跡はこちら：%s" % (link.order_id, url))
        check.assertIn("ご注文 #%d（€3.80）：発送済み。" % link.order_id, texts(replies))
        advance(s, 61 * 60)
        said = wait_until(lambda: [r for _, rs in event_turns(s.db, leaver, kind="job") for r in rs],
                          timeout=5, interval=0.02, what="the reminder")
        check.assertEqual([r.get("text") for r in said],
                          ["カートに1点残っています（コード COMEBACK で €2.80）。ご注文を完了しますか？"])

    tap.case("(3)(5) in the shopper's language: the thank-you, the shipping notice and the reminder in Japanese",
             in_japanese)

    if "s" in clock:
        finish(clock["s"])

    # =====================================================================================
    # (8) the test payment page in the shopper's language, with each line's options
    # =====================================================================================

    shoes = make_bot("shoes", {
        "catalog.json": json.dumps({"currency": "EUR", "products": [{
            "sku": "runner", "price": 12900,
            "title": {"en": "Runner <Pro> & Co", "es": "Zapatilla <Pro> & Co"},
            "options": {
                "size": [{"value": "42", "title": {"en": "EU 42", "es": "Talla 42"}}],
                "colour": [{"value": "red", "title": {"en": "Red", "es": "Rojo & <Fuego>"}, "price": 500}]}}]}),
        "flows/main.lua": """return {
  start = function(c)
    assert(c.cart:add("runner", { options = { size = "42", colour = "red" } }))
    local order = assert(c:checkout())
    c:say("pay", nil, { link = { title = c:t "pay", url = order.payment_url } })
  end,
}
""",
        "scripts/tone.lua": """return { templates = {
  en = { pay = "Pay", fallback = "Oops." },
  es = { pay = "Pagar", fallback = "Vaya." },
  it = { pay = "Paga", fallback = "Ops." },
} }
"""}, manifest={"locales": ["en", "es", "it"], "catalog": "catalog.json", "payments": {"provider": "test"}})
    shoe_srv = {}

    def payment_page_locale(run):
        s = shoe_srv.get("s") or shoe_srv.setdefault(
            "s", tap.watch(Server(bots=[shoes], env=BASE_ENV, name="parley (shoes)").start()))
        link = PayLink(link_of(s.say("shoes", new_user("es"), "hola", locale="es"))["url"])
        h = html(link.get(s))
        check.assertIn('<html lang="es">', h)
        check.assertIn("<h1>Pedido n.º %d</h1>" % link.order_id, h)
        check.assertIn("Pago de prueba para shoes: no se mueve dinero.", h)
        check.assertIn('<td>1 × Zapatilla &lt;Pro&gt; &amp; Co<div class="options">Rojo &amp; &lt;Fuego&gt;, '
                       'Talla 42</div></td><td>134,00 €</td>', h, "the line, its options (escaped), its price")
        check.assertIn("<td>Total</td><td>134,00 €</td>", h)
        check.assertIn('id="pay">Pagar 134,00 €</button>', h)
        check.assertIn('id="decline">Rechazar</button>', h)
        check.assertNotIn("<Pro>", h)
        check.assertNotIn("<Fuego>", h)
        check.assertIn("Pago recibido. Puedes volver al chat.", html(link.pay(s)))
        check.assertIn("Este pedido ya está pagado.", html(link.decline(s)))
        check.assertIn("Este pedido está pagado.", html(link.get(s)))

        # an English shopper's page of the same product: English words and option titles
        link = PayLink(link_of(s.say("shoes", new_user("en"), "hi", locale="en"))["url"])
        h = html(link.get(s))
        check.assertIn('<html lang="en">', h)
        check.assertIn("<h1>Order #%d</h1>" % link.order_id, h)
        check.assertIn('<div class="options">Red, EU 42</div></td><td>€134.00</td>', h)
        check.assertIn("The payment of this order was declined.", html(link.decline(s)) + html(link.get(s)))

        # an Italian shopper: the page has no Italian words (English then), but the prices are
        # written the Italian way
        link = PayLink(link_of(s.say("shoes", new_user("it"), "ciao", locale="it"))["url"])
        h = html(link.get(s))
        check.assertIn('<html lang="en">', h)
        check.assertIn("<h1>Order #%d</h1>" % link.order_id, h)
        check.assertIn("</div></td><td>134,00 €</td>", h, "the line's price in Italian")
        check.assertIn("<td>Total</td><td>134,00 €</td>", h)
        check.assertIn('id="pay">Pay 134,00 €</button>', h)
        check.assertNotIn("€134.00", h)

    tap.case("(8) the test payment page speaks the shopper's language (es) and lists each line's options, "
             "escaped; English for an English shopper; an Italian shopper's prices in Italian in English words",
             payment_page_locale)
    if "s" in shoe_srv:
        finish(shoe_srv["s"])

    # =====================================================================================
    # (7) stock
    # =====================================================================================

    def stock_rounds(rnd):
        folder = copy_default_bot()
        catalog_path = os.path.join(folder, "catalog.json")
        with open(catalog_path, encoding="utf-8") as f:
            catalog = json.load(f)

        def set_latte_stock(n):
            for p in catalog["products"]:
                if p["sku"] == "latte":
                    p["stock"] = n
            save_atomically(catalog_path, json.dumps(catalog, ensure_ascii=False, indent=1))
        set_latte_stock(2)
        db = new_db()
        st = {"s": tap.watch(Server(bots=[folder], db=db, env=BASE_ENV, name="parley (stock)").start())}
        shoppers = {}

        def buy_latte(s, u):
            """Returns the paid order id, or None when the latte could not be
            bought (not understood, or no link), and the last replies."""
            s.say(BOT, u, "hi")
            replies = s.say(BOT, u, "a small latte")
            if "Small Latte" not in texts(replies):
                return None, replies  # not offered any more
            s.say(BOT, u, payload="no")
            s.say(BOT, u, payload="done")
            replies = s.say(BOT, u, payload="pay")
            if not [r for r in replies if "link" in r]:
                return None, replies
            link = PayLink(link_of(replies)["url"])
            link.pay(s)
            check.assertEqual(Api(s, TOKEN).order(link.order_id)["state"], "paid")
            return link.order_id, replies

        def two_sold(run):
            s = st["s"]
            for i in range(2):
                oid, replies = buy_latte(s, new_user("early%d" % i))
                check.assertIsNotNone(oid, "latte %d of 2 could be bought: %r" % (i + 1, replies))
            check.assertEqual(stock_left(db, "latte"), 0)
            third = shoppers["third"] = new_user("third")
            oid, replies = buy_latte(s, third)
            check.assertIsNone(oid, "a third latte was sold from a stock of 2")
            shoppers["third_replies"] = replies
            check.assertEqual(Api(s, TOKEN).orders(third), [], "no order for what is sold out")

        tap.case("(7) stock 2 (round %d): two shoppers pay for a latte each; the third gets no payment link" % rnd,
                 two_sold, runs=1)

        def not_offered(run):
            replies = st["s"].say(BOT, new_user("browser"), "hi")
            offered = [p for _, p in choices(replies)]
            check.assertIn("espresso", offered)
            check.assertNotIn("latte", offered, "a sold-out latte is still offered: %r" % choices(replies))

        tap.case("(7) the sold-out latte is no longer offered among the drinks (round %d)" % rnd, not_offered, runs=1)

        def told_sold_out(run):
            t = texts(shoppers.get("third_replies") or [])
            check.assertRegex(t, r"(?i)sold out|out of stock|no more|ran out|run out of Latte",
                              "the third shopper should hear that the latte is sold out, not: %r" % t)

        tap.case("(7) the third shopper, asking for the sold-out latte, is told it is sold out (round %d)" % rnd, told_sold_out, runs=1)

        def stays_spent(run):
            check.assertEqual(st["s"].stop(), 0)
            tap.unwatch(st["s"])
            st["s"] = tap.watch(Server(bots=[folder], db=db, env=BASE_ENV, name="parley (stock, restarted)").start())
            check.assertEqual(stock_left(db, "latte"), 0, "sold units stay sold after a restart")
            oid, _ = buy_latte(st["s"], new_user("after-restart"))
            check.assertIsNone(oid, "a latte was sold after the restart")

        tap.case("(7) after a restart the latte stays sold out (round %d)" % rnd, stays_spent, runs=1)

        def restock(run):
            s = st["s"]
            mark = s.mark()
            set_latte_stock(3)
            s.wait_log(r"INFO +\[barista\] reloaded in [\d.]+ ms after a change to catalog\.json$", mark)
            check.assertEqual(stock_left(db, "latte"), 3, "the catalog's new count is what is left")
            oid, replies = buy_latte(s, new_user("restocked"))
            check.assertIsNotNone(oid, "after restocking a latte can be bought: %r" % replies)
            check.assertEqual(stock_left(db, "latte"), 2)
            check.assertIn("latte", [p for _, p in choices(s.say(BOT, new_user("browser"), "hi"))])

        tap.case("(7) editing the catalog's stock restocks, hot-reloaded (round %d)" % rnd, restock, runs=1)
        finish(st["s"])

    for rnd in (1, 2):
        stock_rounds(rnd)

    fake.stop()


if __name__ == "__main__":
    run_suite("e2e: commerce (test provider, orders API, order updates, jobs, stock)", main)
