#!/usr/bin/env python3
"""test_payment_stripe: the Stripe payment provider end to end. parley serves
the default bot with BARISTA_STRIPE_SECRET_KEY set ("auto" picks Stripe) and
PARLEY_STRIPE_API_BASE pointing at a local fake Stripe on a free loopback
port. The fake checks every request against Stripe's documentation
(https://docs.stripe.com/api/checkout/sessions/create: POST
/v1/checkout/sessions, form-encoded, Authorization: Bearer sk_...,
Idempotency-Key, price_data line items) and answers like Stripe: a Session
whose amount_total is the sum of its lines, the same Session for a key it
has seen with the same parameters, a 400 for a key reused with others.

Webhooks are POSTed to /v1/bots/barista/payments/stripe signed the way
Stripe signs them (https://docs.stripe.com/webhooks#verify-events:
Stripe-Signature t=<time>,v1=HMAC-SHA256(secret, "<t>.<body>")).

Cases: the session-creation request field by field (with and without a
discount); parley's return pages; completed -> paid and one thank-you, the
same webhook replayed -> nothing new; two identical webhooks at the same
moment -> paid once, one thank-you; bad, missing, stale and future
signatures refused with the order unchanged; an amount or currency that
differs -> 400, logged, the order pending; an unknown order -> 400;
expired and payment_failed -> the order expired / failed and the flow
offers to pay again; charge.refunded -> refunded; events for other bots,
for sales parley did not make and of other types -> 200, nothing applied;
Stripe answering 500 (twice: parley retries once with the same key) ->
the shopper hears the bot's checkout_failed message."""

import hashlib
import hmac
import http.server
import itertools
import json
import os
import re
import sys
import threading
import time
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server, check, choices, new_user, run_suite, texts, wait_until  # noqa: E402

BOT = "barista"
SECRET_KEY = "sk_test_parley_" + uuid.uuid4().hex[:12]
WEBHOOK_SECRET = "whsec_parley_" + uuid.uuid4().hex
API_TOKEN = "api-token-" + uuid.uuid4().hex[:8]
ADMIN_TOKEN = "admin-token-" + uuid.uuid4().hex[:8]
WEBHOOK = "/v1/bots/%s/payments/stripe" % BOT

THANKS = re.compile(r"Payment received, thank you!|All paid!")
DECLINED = "The payment didn't go through"
CHECKOUT_FAILED = "Sorry, I can't take payments right now"
HOW_TO_PAY = "Shall I take the payment?"


# --- the fake Stripe ------------------------------------------------------------------

LINE_FIELD = re.compile(r"^line_items\[(\d+)\]\[(price_data\]\[currency|price_data\]\[unit_amount|"
                        r"price_data\]\[product_data\]\[name|price_data\]\[product_data\]\[description|quantity)\]$")
TOP_FIELDS = {"mode", "client_reference_id", "success_url", "cancel_url", "expires_at",
              "metadata[order_id]", "metadata[bot]",
              "payment_intent_data[metadata][order_id]", "payment_intent_data[metadata][bot]"}


def session_problems(headers, fields):
    """What is wrong with a Create Checkout Session request, per Stripe's docs."""
    out = []
    if headers.get("authorization") != "Bearer " + SECRET_KEY:
        out.append("Authorization is not Bearer <secret key>: %r" % headers.get("authorization"))
    if not (headers.get("content-type") or "").startswith("application/x-www-form-urlencoded"):
        out.append("the body is not form-encoded: %r" % headers.get("content-type"))
    if not headers.get("idempotency-key") or len(headers["idempotency-key"]) > 255:
        out.append("no Idempotency-Key (or longer than 255)")
    lines = {}
    for name, value in fields.items():
        m = LINE_FIELD.match(name)
        if m:
            lines.setdefault(int(m.group(1)), {})[m.group(2).split("][")[-1]] = value
        elif name not in TOP_FIELDS:
            out.append("unknown field %r" % name)
    if fields.get("mode") != "payment":
        out.append("mode is not payment")
    for url in ("success_url", "cancel_url"):
        if not re.match(r"^https?://", fields.get(url, "")):
            out.append("%s is not a URL: %r" % (url, fields.get(url)))
    if sorted(lines) != list(range(len(lines))) or not lines:
        out.append("line items are not numbered 0..n-1: %r" % sorted(lines))
    for i, line in sorted(lines.items()):
        if not re.match(r"^[a-z]{3}$", line.get("currency", "")):
            out.append("line %d: currency is not a lower-case ISO code: %r" % (i, line.get("currency")))
        if not re.match(r"^\d+$", line.get("unit_amount", "")):
            out.append("line %d: unit_amount is not a non-negative integer: %r" % (i, line.get("unit_amount")))
        if not re.match(r"^[1-9]\d*$", line.get("quantity", "")):
            out.append("line %d: quantity is not a positive integer: %r" % (i, line.get("quantity")))
        if not line.get("name"):
            out.append("line %d: product_data[name] is missing" % i)
    return out, lines


class FakeStripe:
    """A Stripe API on loopback: records each request, answers as told."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []
        self.problems = []
        self.fail_next = []  # statuses to answer with before answering normally
        self.sessions = {}  # Idempotency-Key -> (body, answer)
        self.counter = itertools.count(1)
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, method):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8")
                status, answer = fake.handle(method, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                data = json.dumps(answer).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                self.answer("POST")

            def do_GET(self):
                self.answer("GET")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def handle(self, method, path, headers, body):
        fields = dict(urllib.parse.parse_qsl(body, keep_blank_values=True, strict_parsing=bool(body)))
        with self.lock:
            self.requests.append({"method": method, "path": path, "headers": headers, "body": body, "fields": fields})
            url = urllib.parse.urlsplit(path)
            expire = re.match(r"^/v1/checkout/sessions/([^/]+)/expire$", url.path)
            if method == "GET" and url.path == "/v1/checkout/sessions":
                return self.list_sessions(headers, dict(urllib.parse.parse_qsl(url.query)))
            if method == "POST" and expire:
                return self.expire(headers, expire.group(1))
            if method != "POST" or path != "/v1/checkout/sessions":
                self.problems.append("%s %s is not a Checkout Sessions call parley makes" % (method, path))
                return 404, {"error": {"type": "invalid_request_error", "message": "Unrecognized request URL"}}
            problems, lines = session_problems(headers, fields)
            self.problems.extend(problems)
            if self.fail_next:
                status = self.fail_next.pop(0)
                return status, {"error": {"type": "api_error", "message": "fake Stripe is down (%d)" % status}}
            key = headers.get("idempotency-key")
            if key in self.sessions:
                seen_body, answer = self.sessions[key]
                if seen_body != body:
                    return 400, {"error": {"type": "idempotency_error",
                                           "message": "Keys for idempotent requests can only be used with the same parameters they were first used with."}}
                return 200, answer
            n = next(self.counter)
            total = sum(int(line["unit_amount"]) * int(line["quantity"]) for line in lines.values())
            sid = "cs_test_%s_%d" % (uuid.uuid4().hex[:8], n)
            answer = {"id": sid, "object": "checkout.session", "mode": "payment", "status": "open",
                      "payment_status": "unpaid", "amount_total": total,
                      "currency": lines[0]["currency"] if lines else None,
                      "client_reference_id": fields.get("client_reference_id"),
                      "metadata": {k[9:-1]: v for k, v in fields.items() if k.startswith("metadata[")},
                      "url": "https://checkout.stripe.com/c/pay/%s" % sid}
            self.sessions[key] = (body, answer)
            return 200, answer

    def session(self, sid):
        for _, answer in self.sessions.values():
            if answer["id"] == sid:
                return answer
        return None

    def list_sessions(self, headers, query):
        """GET /v1/checkout/sessions?payment_intent=pi_...: a list (lock held)."""
        if headers.get("authorization") != "Bearer " + SECRET_KEY:
            self.problems.append("a list call without the secret key")
        found = [a for _, a in self.sessions.values() if query.get("payment_intent") and a.get("payment_intent") == query["payment_intent"]]
        return 200, {"object": "list", "url": "/v1/checkout/sessions", "has_more": False, "data": found[:1]}

    def expire(self, headers, sid):
        """POST /v1/checkout/sessions/{id}/expire (lock held)."""
        if headers.get("authorization") != "Bearer " + SECRET_KEY:
            self.problems.append("an expire call without the secret key")
        session = self.session(sid)
        if not session or session["status"] != "open":
            return 400, {"error": {"type": "invalid_request_error", "message": "Only Checkout Sessions with a status in [\"open\"] can be expired."}}
        session["status"] = "expired"
        return 200, session

    def attempt(self, sid):
        """The shopper opened the page and tried to pay: Stripe made a PaymentIntent."""
        with self.lock:
            session = self.session(sid)
            session["payment_intent"] = "pi_" + uuid.uuid4().hex[:14]
            return session["payment_intent"]

    def status_of(self, sid):
        with self.lock:
            return self.session(sid)["status"]

    def mark(self):
        with self.lock:
            return len(self.requests)

    def since(self, mark):
        with self.lock:
            return list(self.requests[mark:])


# --- webhooks ------------------------------------------------------------------------------


def signature(body, t=None, secret=WEBHOOK_SECRET):
    t = int(time.time()) if t is None else t
    mac = hmac.new(secret.encode(), ("%d." % t).encode() + body, hashlib.sha256).hexdigest()
    return "t=%d,v1=%s" % (t, mac)


def event_body(type_, obj):
    return json.dumps({"id": "evt_" + uuid.uuid4().hex[:16], "object": "event", "api_version": "2024-06-20",
                       "created": int(time.time()), "livemode": False, "type": type_,
                       "data": {"object": obj}}).encode("utf-8")


def post_event(srv, body, sig="sign"):
    headers = {"Content-Type": "application/json"}
    if sig == "sign":
        sig = signature(body)
    if sig is not None:
        headers["Stripe-Signature"] = sig
    return srv.request("POST", WEBHOOK, body=body, headers=headers)


def session_object(order, **over):
    obj = {"id": order["provider_ref"], "object": "checkout.session", "client_reference_id": str(order["id"]),
           "metadata": {"order_id": str(order["id"]), "bot": BOT}, "amount_total": order["total"],
           "currency": order["currency"].lower(), "payment_status": "paid", "status": "complete",
           "payment_intent": "pi_" + uuid.uuid4().hex[:14]}
    obj.update(over)
    return obj


def completed(order, **over):
    return event_body("checkout.session.completed", session_object(order, **over))


# --- the shopper -----------------------------------------------------------------------------


def to_payment(srv, user, code=None):
    """hi, latte, large, croissant, done[, a code], pay: returns the replies to pay."""
    srv.say(BOT, user, "hi")
    srv.say(BOT, user, payload="latte")
    srv.say(BOT, user, payload="large")
    srv.say(BOT, user, payload="croissant")
    replies = srv.say(BOT, user, payload="done")
    check.assertIn(HOW_TO_PAY, texts(replies))
    if code:
        srv.say(BOT, user, payload="code")
        replies = srv.say(BOT, user, code)
        check.assertIn("Code applied", texts(replies))
    return srv.say(BOT, user, payload="pay")


def order_id_of(replies):
    m = re.search(r"Order #(\d+)", texts(replies))
    check.assertTrue(m, "no order number in %r" % texts(replies))
    return int(m.group(1))


def links(replies):
    return [r["link"] for r in replies if "link" in r]


def get_order(srv, order_id):
    r = srv.request("GET", "/v1/bots/%s/orders/%d" % (BOT, order_id), headers={"Authorization": "Bearer " + API_TOKEN})
    check.assertEqual(r.status, 200, r)
    return r.json


def ordered(srv, user, code=None):
    """A shopper with a pending order paid through Stripe: (order, replies)."""
    replies = to_payment(srv, user, code)
    order = get_order(srv, order_id_of(replies))
    check.assertEqual(order["state"], "pending", order)
    check.assertEqual(order["provider"], "stripe", order)
    return order, replies


def said(srv, user, text="hi again"):
    """What the shopper hears on the next message (event replies come first)."""
    return srv.say(BOT, user, text)


def thanks_in(replies):
    return sum(1 for r in replies if THANKS.search(r.get("text") or ""))


# --- the cases -------------------------------------------------------------------------------


def body(tap):
    fake = FakeStripe()
    env = {"BARISTA_STRIPE_SECRET_KEY": SECRET_KEY, "BARISTA_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
           "PARLEY_STRIPE_API_BASE": "http://127.0.0.1:%d" % fake.port, "PARLEY_ADMIN_TOKEN": ADMIN_TOKEN,
           "BARISTA_API_TOKEN": API_TOKEN}
    srv = tap.watch(Server(env=env, name="parley").start())
    try:
        cases(tap, srv, fake)
    finally:
        fake.stop()


def cases(tap, srv, fake):
    def session_request(run):
        u = new_user("stripe-link")
        mark = fake.mark()
        order, replies = ordered(srv, u)
        reqs = fake.since(mark)
        check.assertEqual(len(reqs), 1, reqs)
        check.assertEqual(fake.problems, [])
        req = reqs[0]
        check.assertEqual(req["method"], "POST")
        check.assertEqual(req["path"], "/v1/checkout/sessions")
        check.assertEqual(req["headers"]["authorization"], "Bearer " + SECRET_KEY)
        check.assertRegex(req["headers"]["idempotency-key"], r"^parley-barista-order-%d-[0-9a-f]{16}$" % order["id"])
        oid = str(order["id"])
        base = "http://127.0.0.1:%d/v1/bots/barista/payments/stripe/return?order=%s" % (srv.port, oid)
        check.assertEqual(req["fields"], {
            "mode": "payment",
            "client_reference_id": oid,
            "metadata[order_id]": oid,
            "metadata[bot]": BOT,
            "payment_intent_data[metadata][order_id]": oid,
            "payment_intent_data[metadata][bot]": BOT,
            "line_items[0][price_data][currency]": "eur",
            "line_items[0][price_data][unit_amount]": "470",
            "line_items[0][price_data][product_data][name]": "Latte (Large)",
            "line_items[0][quantity]": "1",
            "line_items[1][price_data][currency]": "eur",
            "line_items[1][price_data][unit_amount]": "250",
            "line_items[1][price_data][product_data][name]": "Butter Croissant",
            "line_items[1][quantity]": "1",
            "success_url": base + "&result=success",
            "cancel_url": base + "&result=cancel",
        })
        check.assertEqual(order["total"], 720)
        # the shopper gets Stripe's hosted page; parley keeps the Session id
        session = fake.sessions[req["headers"]["idempotency-key"]][1]
        check.assertEqual(session["amount_total"], 720)
        check.assertEqual([(l["title"], l["url"]) for l in links(replies)], [("Pay €7.20", session["url"])])
        check.assertEqual(order["provider_ref"], session["id"])
        check.assertEqual(order["payment_url"], session["url"])
        # the return pages
        for result, words in (("success", "Thank you — you can go back to the chat"), ("cancel", "Payment cancelled")):
            page = srv.request("GET", urllib.parse.urlsplit(base + "&result=" + result)._replace(scheme="", netloc="").geturl())
            check.assertEqual(page.status, 200, page)
            check.assertTrue(page.headers["content-type"].startswith("text/html"), page.headers)
            check.assertIn(words, page.body.decode("utf-8"))
            check.assertIn("Order #%s" % oid, page.body.decode("utf-8"))
        check.assertEqual(srv.request("GET", "/v1/bots/barista/payments/stripe/return?result=maybe").status, 400)
        check.assertEqual(srv.request("POST", "/v1/bots/barista/payments/stripe/return?result=success", body="").status, 405)

    tap.case("checkout: a Checkout Session request, field by field; the link is Stripe's page; return pages", session_request)

    def discounted(run):
        u = new_user("stripe-code")
        mark = fake.mark()
        order, replies = ordered(srv, u, code="WELCOME10")
        check.assertEqual((order["subtotal"], order["discount"], order["total"]), (720, 72, 648))
        reqs = fake.since(mark)
        check.assertEqual(len(reqs), 1, reqs)
        check.assertEqual(fake.problems, [])
        f = reqs[0]["fields"]
        lines = {k: v for k, v in f.items() if k.startswith("line_items")}
        check.assertEqual(lines, {
            "line_items[0][price_data][currency]": "eur",
            "line_items[0][price_data][unit_amount]": "648",
            "line_items[0][price_data][product_data][name]": "Order #%d" % order["id"],
            "line_items[0][price_data][product_data][description]":
                "1 × Latte (Large), 1 × Butter Croissant; code WELCOME10",
            "line_items[0][quantity]": "1",
        })
        check.assertEqual(f["metadata[order_id]"], str(order["id"]))
        check.assertEqual([l["title"] for l in links(replies)], ["Pay €6.48"])

    tap.case("checkout with a discount: one line for the exact total (Stripe takes no negative lines)", discounted)

    def paid_once(run):
        u = new_user("stripe-paid")
        order, _ = ordered(srv, u)
        mark = srv.mark()
        ev = completed(order)
        r = post_event(srv, ev)
        check.assertEqual(r.status, 200, r)
        check.assertEqual(r.json, {"received": True})
        paid = get_order(srv, order["id"])
        check.assertEqual(paid["state"], "paid", paid)
        check.assertEqual(paid["payment_ref"], json.loads(ev)["data"]["object"]["payment_intent"])
        first = said(srv, u)
        check.assertEqual(thanks_in(first), 1, first)
        # the same event again (Stripe retries): acknowledged, nothing new
        r = post_event(srv, ev)
        check.assertEqual(r.status, 200, r)
        check.assertEqual(get_order(srv, order["id"])["state"], "paid")
        again = said(srv, u, "anything new?")
        check.assertEqual(thanks_in(again), 0, again)
        srv.wait_log(r"order %d: 'paid' confirmation ignored \(the order is paid\)" % order["id"], mark)
        check.assertEqual(len(srv.find_log(r"order %d is paid$" % order["id"], mark)), 1)

    tap.case("checkout.session.completed -> paid, one thank-you; the same webhook replayed -> 200, nothing new", paid_once)

    def simultaneous(run):
        u = new_user("stripe-race")
        order, _ = ordered(srv, u)
        mark = srv.mark()
        ev = completed(order)
        sig = signature(ev)
        statuses = []
        gate = threading.Barrier(3)

        def send():
            gate.wait()
            statuses.append(post_event(srv, ev, sig).status)

        threads = [threading.Thread(target=send) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=10)
        check.assertEqual(statuses, [200, 200, 200])
        check.assertEqual(get_order(srv, order["id"])["state"], "paid")
        replies = said(srv, u)
        check.assertEqual(thanks_in(replies), 1, replies)
        check.assertEqual(thanks_in(said(srv, u, "and now?")), 0)
        check.assertEqual(len(srv.find_log(r"order %d is paid$" % order["id"], mark)), 1)

    tap.case("three identical webhooks at the same moment -> paid once, one thank-you", simultaneous)

    def refused(run):
        u = new_user("stripe-refused")
        order, _ = ordered(srv, u)
        ev = completed(order)
        now = int(time.time())
        bad = [
            ("a wrong signature", signature(ev, secret="whsec_not_ours"), 401, "does not match"),
            ("a signature of another body", signature(ev + b" "), 401, "does not match"),
            ("no Stripe-Signature", None, 400, "no Stripe-Signature"),
            ("a malformed header", "v1=abc", 400, "malformed"),
            ("a stale timestamp", signature(ev, t=now - 301), 401, "old"),
            ("a timestamp from the future", signature(ev, t=now + 400), 401, "ahead"),
        ]
        for what, sig, status, why in bad:
            mark = srv.mark()
            r = post_event(srv, ev, sig)
            check.assertEqual(r.status, status, "%s: %r" % (what, r))
            check.assertIn(why, r.json["error"], what)
            srv.wait_log(r"WARN .*\[barista\] stripe webhook refused \(%d\)" % status, mark)
            check.assertEqual(get_order(srv, order["id"])["state"], "pending", what)
        # a timestamp 200 s old is within Stripe's tolerance
        r = post_event(srv, ev, signature(ev, t=now - 200))
        check.assertEqual(r.status, 200, r)
        check.assertEqual(get_order(srv, order["id"])["state"], "paid")

    tap.case("bad, missing, malformed, stale and future signatures are refused; the order stays pending", refused)

    def mismatched(run):
        u = new_user("stripe-mismatch")
        order, _ = ordered(srv, u)
        for what, over in (("amount", {"amount_total": order["total"] - 1}), ("currency", {"currency": "usd"})):
            mark = srv.mark()
            r = post_event(srv, completed(order, **over))
            check.assertEqual(r.status, 400, r)
            check.assertIn("does not match the order's", r.json["error"])
            srv.wait_log(r"ERROR .*payment: order %d: a 'paid' confirmation for .* does not match the order's 720 EUR; "
                         r"the order stays pending" % order["id"], mark)
            check.assertEqual(get_order(srv, order["id"])["state"], "pending", what)
        replies = said(srv, u)
        check.assertEqual(thanks_in(replies), 0, replies)

    tap.case("an amount or currency that differs from the order's -> 400, logged, the order stays pending", mismatched)

    def unknown_order(run):
        mark = srv.mark()
        ghost = {"id": 9000000 + run, "provider_ref": "cs_ghost", "total": 720, "currency": "EUR"}
        r = post_event(srv, completed(ghost))
        check.assertEqual(r.status, 400, r)
        check.assertIn("unknown order", r.json["error"])
        srv.wait_log(r"ERROR .*payment: a 'paid' confirmation for an unknown order \(%d" % ghost["id"], mark)

    tap.case("a confirmation naming an unknown order -> 400, logged", unknown_order)

    def not_paid(run):
        for type_, state, obj in (
                ("checkout.session.expired", "expired", lambda o: session_object(o, payment_status="unpaid", status="expired",
                                                                                 payment_intent=None)),
                ("payment_intent.payment_failed", "failed", lambda o: {
                    "id": "pi_" + uuid.uuid4().hex[:14], "object": "payment_intent", "amount": o["total"],
                    "currency": "eur", "status": "requires_payment_method",
                    "metadata": {"order_id": str(o["id"]), "bot": BOT},
                    "last_payment_error": {"code": "card_declined", "message": "Your card was declined."}})):
            u = new_user("stripe-" + state)
            order, _ = ordered(srv, u)
            intent = fake.attempt(order["provider_ref"])
            ev = obj(order)
            if state == "failed":
                ev["id"] = intent
            mark = srv.mark()
            r = post_event(srv, event_body(type_, ev))
            check.assertEqual(r.status, 200, "%s: %r" % (type_, r))
            check.assertEqual(get_order(srv, order["id"])["state"], state, type_)
            if state == "failed":
                # Stripe's page of the failed order is closed: a later try there cannot take money
                wait_until(lambda: fake.status_of(order["provider_ref"]) == "expired", what="the Session to be expired")
                srv.wait_log(r"closed the payment page of order %d after its payment failed" % order["id"], mark)
            replies = said(srv, u, "so?")
            check.assertIn(DECLINED, texts(replies), type_)
            check.assertIn(HOW_TO_PAY, texts(replies), type_)
            check.assertIn("pay", [p for _, p in choices(replies)], type_)
            # trying again makes a new order and a new Session
            mark = fake.mark()
            replies = srv.say(BOT, u, payload="pay")
            again = order_id_of(replies)
            check.assertNotEqual(again, order["id"])
            reqs = fake.since(mark)
            check.assertEqual([q["path"] for q in reqs], ["/v1/checkout/sessions"])
            check.assertEqual(reqs[0]["fields"]["metadata[order_id]"], str(again))
            check.assertEqual(fake.problems, [])
            check.assertEqual(len(links(replies)), 1)

    tap.case("expired and payment_failed -> the order expired / failed (Stripe's page closed), the flow offers to pay again", not_paid)

    def refunded(run):
        u = new_user("stripe-refund")
        order, _ = ordered(srv, u)
        ev = completed(order)
        check.assertEqual(post_event(srv, ev).status, 200)
        intent = json.loads(ev)["data"]["object"]["payment_intent"]
        said(srv, u)
        charge = {"id": "ch_" + uuid.uuid4().hex[:14], "object": "charge", "payment_intent": intent, "amount": 720,
                  "amount_refunded": 720, "refunded": True, "currency": "eur",
                  "metadata": {"order_id": str(order["id"]), "bot": BOT}}
        # a partial refund first: the order stays paid
        partial = dict(charge, amount_refunded=100, refunded=False)
        check.assertEqual(post_event(srv, event_body("charge.refunded", partial)).status, 200)
        check.assertEqual(get_order(srv, order["id"])["state"], "paid")
        r = post_event(srv, event_body("charge.refunded", charge))
        check.assertEqual(r.status, 200, r)
        check.assertEqual(get_order(srv, order["id"])["state"], "refunded")
        replies = said(srv, u, "hello?")
        check.assertIn("Order #%d (€7.20) has been refunded." % order["id"], texts(replies))

    tap.case("charge.refunded -> refunded (a partial refund leaves the order paid)", refunded)

    def not_ours(run):
        u = new_user("stripe-other")
        order, _ = ordered(srv, u)
        mark = srv.mark()
        events = [
            ("another bot's session", completed(order, metadata={"order_id": str(order["id"]), "bot": "florist"})),
            ("a sale parley did not make", completed(order, metadata={}, client_reference_id=str(order["id"]))),
            ("another event type", event_body("customer.created", {"id": "cus_1", "object": "customer"})),
            ("completed but not paid yet", completed(order, payment_status="unpaid")),
        ]
        for what, ev in events:
            r = post_event(srv, ev)
            check.assertEqual(r.status, 200, "%s: %r" % (what, r))
            check.assertEqual(get_order(srv, order["id"])["state"], "pending", what)
        # the log is read by another thread: wait for the fourth line rather than race it
        wait_until(lambda: len(srv.find_log(r"INFO .*\[barista\] stripe: event evt_\w+ .* acknowledged, nothing to apply",
                                            mark)) == 4, what="four 'acknowledged' log lines")

    tap.case("events for other bots, sales parley did not make, other types -> 200, nothing applied", not_ours)

    def stripe_down(run):
        u = new_user("stripe-down")
        mark, log_mark = fake.mark(), srv.mark()
        with fake.lock:
            fake.fail_next = [500, 500]
        replies = to_payment(srv, u)
        check.assertIn(CHECKOUT_FAILED, texts(replies))
        check.assertEqual(links(replies), [])
        reqs = fake.since(mark)
        check.assertEqual(len(reqs), 2, "one retry")
        check.assertEqual(reqs[0]["headers"]["idempotency-key"], reqs[1]["headers"]["idempotency-key"])
        check.assertEqual(reqs[0]["body"], reqs[1]["body"])
        oid = int(reqs[0]["fields"]["client_reference_id"])
        check.assertEqual(get_order(srv, oid)["state"], "failed")
        srv.wait_log(r"ERROR .*order %d: no payment link: Stripe answered 500" % oid, log_mark)
        # Stripe back: one 500, then the retry goes through
        with fake.lock:
            fake.fail_next = [500]
        mark = fake.mark()
        replies = srv.say(BOT, u, payload="pay")
        check.assertEqual(len(links(replies)), 1, replies)
        check.assertEqual(len(fake.since(mark)), 2)
        check.assertEqual(fake.problems, [])

    tap.case("Stripe answering 500 (retried once, same key) -> the shopper hears checkout_failed", stripe_down)


if __name__ == "__main__":
    run_suite("stripe payments end to end", body)
