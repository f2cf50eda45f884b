#!/usr/bin/env python3
"""test_privacy: a shopper's data through the real `parley serve`
(docs/privacy.md): the export behind the admin token
(GET /v1/bots/{bot}/shoppers/{channel}/{user}: session, transcript, orders,
events, jobs, handoff, inbox, outbox, discount uses — that shopper's and
nobody else's), the erasure (everything gone but the orders and the
discount uses, kept under one pseudonym per shopper, an HMAC-SHA256 with
the database's own key, without token or payment link), and retention_days
(a durable daily job of parley's own that purges old transcripts, events,
handled inbound messages and sent calls, reschedules itself, survives a
restart, and never reaches the bot's scripts).

Shoppers buy over HTTP with the built-in test provider and talk over
WhatsApp to test_channel_whatsapp's fake Graph API (inbound messages,
outgoing calls). Time moves with the test clock (PARLEY_TEST_CLOCK=1); no
case sleeps: waits poll the log or the database.

Standard library only."""

import datetime
import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (LOG_LINE, PARLEY, ROOT, Server, check, copy_default_bot, db_query, new_user,  # noqa: E402
                     run_suite, save_atomically, temp_dir, texts, wait_until)
from commerce_helpers import BOT, THANKS, Api, PayLink, advance, count, link_of, tap_pay, to_checkout  # noqa: E402
import test_channel_whatsapp as wa  # noqa: E402  (the fake Graph API and signed webhooks)

ADMIN = "e2e-admin-" + uuid.uuid4().hex[:12]
API = "api-" + uuid.uuid4().hex[:12]
PIZZA = os.path.join(ROOT, "examples", "pizza")
DAY = 24 * 3600
DAY_MS = DAY * 1000
PSEUDONYM = re.compile(r"^erased-[0-9a-f]{16}$")
PARTS = {"bot", "channel", "user", "exported_at", "session", "transcript", "orders", "events", "jobs", "handoff",
         "inbox", "outbox", "discount_uses", "omitted"}
# What a shopper's rows are, table by table, for counting them in the database.
OF_SHOPPER = "bot = ? AND channel = ? AND user = ?"
ERASED_TABLES = ("sessions", "transcript_rows", "events", "jobs", "inbox", "outbox", "handoffs")

BASE_ENV = {
    "PARLEY_ADMIN_TOKEN": ADMIN,
    "BARISTA_API_TOKEN": API,
    "BARISTA_STRIPE_SECRET_KEY": None,
    "BARISTA_STRIPE_WEBHOOK_SECRET": None,
    "PARLEY_TEST_CLOCK": None,
    "PARLEY_OUTBOX_RETRY_MS": "50",
}


def env_with(fake, **more):
    env = dict(BASE_ENV)
    env.update(wa.env_for(fake))
    env.update(more)
    return env


def shopper_path(user, channel="rest", bot=BOT):
    return "/v1/bots/%s/shoppers/%s/%s" % (bot, urllib.parse.quote(channel, safe=""), urllib.parse.quote(user, safe=""))


def admin(token=ADMIN):
    return {"Authorization": "Bearer " + token}


def export(srv, user, channel="rest", bot=BOT):
    """The export of a shopper that must exist."""
    r = srv.request("GET", shopper_path(user, channel, bot), headers=admin())
    check.assertEqual(r.status, 200, r)
    check.assertTrue(r.headers["content-type"].startswith("application/json"), r.headers)
    doc = r.json
    check.assertEqual(set(doc), PARTS, "the document's parts")
    check.assertEqual((doc["bot"], doc["channel"], doc["user"]), (bot, channel, user))
    return doc


def rows_of(db, table, user, channel="rest", bot=BOT):
    return db_query(db, "SELECT count(*) FROM %s WHERE %s" % (table, OF_SHOPPER), bot, channel, user)[0][0]


def stored(db, user, channel="rest", bot=BOT):
    """{table: rows of the shopper} for every table the erasure empties."""
    return {t: rows_of(db, t, user, channel, bot) for t in ERASED_TABLES}


def expected_pseudonym(db, user, channel="rest", bot=BOT):
    """"erased-" and 16 hex digits of HMAC-SHA256(the database's key, bot \\x1f channel \\x1f user)."""
    (key,), = db_query(db, "SELECT value FROM settings WHERE name = 'pseudonym_key'")
    check.assertRegex(key, r"^[0-9a-f]{64}$")
    mac = hmac.new(bytes.fromhex(key), ("%s\x1f%s\x1f%s" % (bot, channel, user)).encode(), hashlib.sha256)
    return "erased-" + mac.hexdigest()[:16]


def buy(srv, user, drink="a large latte", pastry="croissant", code=None, pay=True):
    """A purchase over HTTP with the test provider; returns its PayLink."""
    to_checkout(srv, user, drink, pastry=pastry)
    if code:
        srv.say(BOT, user, payload="code")
        check.assertIn("Your new total", texts(srv.say(BOT, user, code)))
    replies, _ = tap_pay(srv, user)
    link = PayLink(link_of(replies)["url"])
    if pay:
        link.pay(srv)
        # HTTP cannot push: the thank-you comes with the next answer
        check.assertEqual(count(THANKS, srv.say(BOT, user, "my cart")), 1)
    return link


def wa_talk(srv, fake, phone, text):
    """A WhatsApp message; returns once its answer was sent (and marked sent)."""
    seen = len(fake.messages(phone))
    wa.say(srv, phone, wa.text_message(phone, text))
    wa.wait_for_question(fake, phone, seen)
    wait_until(lambda: srv.pending_sends("whatsapp", phone) == 0, what="the calls to %s marked sent" % phone)


def main(tap):
    fake = wa.FakeGraph()
    srv = tap.watch(Server(bots=[ROOT, PIZZA], env=env_with(fake), name="parley (privacy)").start())
    api = Api(srv, API)

    # =====================================================================================
    # the admin token
    # =====================================================================================

    def needs_the_token(run):
        u = new_user("auth")
        srv.say(BOT, u, "hi")
        for headers in ({}, admin("wrong"), admin(ADMIN + "x"), {"Authorization": ADMIN}, {"X-Admin-Token": ADMIN}):
            for method in ("GET", "DELETE"):
                r = srv.request(method, shopper_path(u), headers=headers)
                check.assertEqual(r.status, 401, "%s with %r: %r" % (method, headers, r))
                check.assertEqual(r.headers.get("www-authenticate"), "Bearer")
        # a wrong token learns nothing, not even whether the shopper exists
        check.assertEqual(srv.request("GET", shopper_path(new_user("nobody")), headers=admin("wrong")).status, 401)
        check.assertEqual(stored(srv.db, u)["sessions"], 1, "a refused DELETE erased nothing")
        r = srv.request("POST", shopper_path(u), body=b"{}", headers=admin())
        check.assertEqual(r.status, 405, r)
        check.assertEqual(r.headers.get("allow"), "GET, DELETE")

    tap.case("the export and the erasure need the admin token: 401 without or with a wrong one, 405 for POST",
             needs_the_token)

    def off_without_a_token(run):
        with Server(env={"PARLEY_ADMIN_TOKEN": None}, name="parley (no admin token)") as off:
            u = new_user("off")
            off.say(BOT, u, "hi")
            for method in ("GET", "DELETE"):
                r = off.request(method, shopper_path(u), headers=admin())
                check.assertEqual(r.status, 403, r)
                check.assertIn("PARLEY_ADMIN_TOKEN", r.json["error"])

    tap.case("PARLEY_ADMIN_TOKEN unset: the export and the erasure answer 403 with a reason", off_without_a_token,
             runs=1)

    def not_found(run):
        for path in (shopper_path(new_user("ghost")), shopper_path(new_user("ghost"), channel="whatsapp")):
            r = srv.request("GET", path, headers=admin())
            check.assertEqual(r.status, 404, r)
            check.assertRegex(r.json["error"], "nothing is stored")
        r = srv.request("GET", shopper_path("x", bot="nobot"), headers=admin())
        check.assertEqual(r.status, 404, r)
        for method in ("GET", "DELETE"):
            r = srv.request(method, shopper_path("_retention", channel="_parley"), headers=admin())
            check.assertEqual(r.status, 400, r)
            check.assertIn("parley's own", r.json["error"])

    tap.case("nothing stored -> 404; a channel of parley's own (_parley) is never exported or erased -> 400",
             not_found)

    # =====================================================================================
    # the export
    # =====================================================================================

    def export_after_a_purchase(run):
        u, other = new_user("buyer"), new_user("other")
        before = int(time.time() * 1000)
        link = buy(srv, u, code="WELCOME10")
        srv.say(BOT, other, "hi")
        srv.say("pizza", u, "hi")  # the same id at another bot: another shopper
        doc = export(srv, u)
        after = int(time.time() * 1000)
        check.assertTrue(before <= doc["exported_at"] <= after + 1000, doc["exported_at"])
        # the session as the admin API shows it
        session = srv.session(BOT, u, ADMIN)
        for k in ("bot", "channel", "user"):
            session.pop(k)
        check.assertEqual(doc["session"], session)
        # every transcript line, as stored
        lines = db_query(srv.db, "SELECT id, at, direction, body FROM transcript WHERE " + OF_SHOPPER + " ORDER BY id",
                         BOT, "rest", u)
        check.assertEqual([(l["id"], l["at"], l["direction"], l["body"]) for l in doc["transcript"]],
                          [(i, at, d, json.loads(b)) for i, at, d, b in lines])
        check.assertEqual(doc["transcript"][0]["body"]["text"], "hi")
        # the order, as the orders API shows it (no token)
        check.assertEqual(doc["orders"], [api.order(link.order_id)])
        order = doc["orders"][0]
        check.assertNotIn("token", order)
        check.assertEqual((order["state"], order["total"], order["discount_code"], order["user"]),
                          ("paid", 648, "WELCOME10", u))
        check.assertEqual([(l["sku"], l["qty"]) for l in order["lines"]], [("latte", 1), ("croissant", 1)])
        check.assertEqual([(d["code"], d["order_id"]) for d in doc["discount_uses"]], [("WELCOME10", link.order_id)])
        # the analytics events, parsed, one row per turn
        check.assertEqual(len(doc["events"]), rows_of(srv.db, "events", u))
        check.assertGreater(len(doc["events"]), 0)
        names = {e["name"] for row in doc["events"] for e in row["events"]}
        check.assertIn("message", names)
        check.assertTrue(all(isinstance(row["at"], int) and isinstance(row["events"], list) for row in doc["events"]))
        # jobs (the cart's reminder, cancelled once paid) and the inbox (the payment's event)
        check.assertEqual([(j["name"], j["state"]) for j in doc["jobs"]],
                          db_query(srv.db, "SELECT name, state FROM jobs WHERE " + OF_SHOPPER + " ORDER BY id",
                                   BOT, "rest", u))
        check.assertIn("abandoned_cart", [j["name"] for j in doc["jobs"]])
        check.assertEqual([m["platform_id"] for m in doc["inbox"]],
                          [p for (p,) in db_query(srv.db, "SELECT platform_id FROM inbox WHERE " + OF_SHOPPER +
                                                  " ORDER BY id", BOT, "rest", u)])
        check.assertTrue(any(str(link.order_id) in m["platform_id"] for m in doc["inbox"]), doc["inbox"])
        check.assertEqual((doc["handoff"], doc["outbox"]), (None, []))
        check.assertEqual(doc["omitted"], {"transcript": 0, "events": 0, "jobs": 0, "inbox": 0, "outbox": 0})
        # nobody else's: not the other shopper, not the same id at the pizza bot
        text = json.dumps(doc, ensure_ascii=False)
        check.assertNotIn(other, text)
        check.assertNotIn("Luigi", text)
        pizza = export(srv, u, bot="pizza")
        check.assertEqual(len(pizza["transcript"]), rows_of(srv.db, "transcript", u, bot="pizza"))
        check.assertEqual(pizza["orders"], [])
        pizza_text = json.dumps(pizza, ensure_ascii=False)
        check.assertNotIn("Croissant", pizza_text)
        check.assertNotIn("WELCOME10", pizza_text)

    tap.case("the export after a purchase with a code: session, every transcript line, the order, the code's "
             "use, events parsed, jobs, the payment in the inbox; nobody else's", export_after_a_purchase)

    def export_whatsapp(run):
        phone = wa.new_phone()
        for text in ("hi", "a small latte"):
            wa_talk(srv, fake, phone, text)
        doc = export(srv, phone, channel="whatsapp")
        check.assertEqual([m["message"]["text"] for m in doc["inbox"]], ["hi", "a small latte"])
        check.assertTrue(all(m["platform_id"].startswith("wamid.") and m["done_at"] for m in doc["inbox"]))
        sent = doc["outbox"]
        check.assertEqual(len(sent), rows_of(srv.db, "outbox", phone, "whatsapp"))
        check.assertTrue(sent and all(c["state"] == "sent" and c["call"] for c in sent), sent)
        check.assertIn(phone, json.dumps(sent[0]["call"]))
        check.assertNotIn(wa.ACCESS_TOKEN, json.dumps(doc), "the platform's credentials are never stored")
        check.assertEqual(len(doc["transcript"]), rows_of(srv.db, "transcript", phone, "whatsapp"))
        check.assertEqual(doc["session"]["turn"], 2)

    tap.case("the export of a WhatsApp shopper: the messages the platform delivered, the calls sent to them",
             export_whatsapp)

    # =====================================================================================
    # the erasure
    # =====================================================================================

    def erasure(run):
        u, keeper = new_user("eraser"), new_user("keeper")
        paid = buy(srv, u, code="WELCOME10")
        pending = buy(srv, u, drink="a double espresso", pastry="no", pay=False)
        kept = buy(srv, keeper)
        keeper_before = export(srv, keeper)
        orders_before = {o["id"]: o for o in export(srv, u)["orders"]}
        check.assertEqual(set(orders_before), {paid.order_id, pending.order_id})

        r = srv.request("DELETE", shopper_path(u), headers=admin())
        check.assertEqual(r.status, 200, r)
        check.assertEqual(r.json, {"bot": BOT, "channel": "rest", "user": u, "erased": True})
        check.assertEqual(srv.request("GET", shopper_path(u), headers=admin()).status, 404, "nothing left to export")
        check.assertEqual(srv.request("DELETE", shopper_path(u), headers=admin()).status, 404, "nor to erase")
        check.assertEqual(stored(srv.db, u), {t: 0 for t in ERASED_TABLES})

        # the orders stay for the accounts, under one pseudonym, without token or link
        rows = db_query(srv.db, "SELECT id, user, channel, token, payment_url, state, lines, total FROM orders "
                        "WHERE id IN (?, ?) ORDER BY id", paid.order_id, pending.order_id)
        pseudonym = rows[0][1]
        check.assertRegex(pseudonym, PSEUDONYM)
        check.assertEqual(pseudonym, expected_pseudonym(srv.db, u))
        for oid, user, channel, token, url, state, lines, total in rows:
            check.assertEqual((user, channel, token, url), (pseudonym, "rest", "", None), "order %d" % oid)
            check.assertEqual((state, json.loads(lines), total),
                              (orders_before[oid]["state"], orders_before[oid]["lines"], orders_before[oid]["total"]))
        check.assertEqual(sorted(o["id"] for o in api.orders(pseudonym)), [paid.order_id, pending.order_id])
        check.assertEqual(api.orders(u), [])
        check.assertEqual(db_query(srv.db, "SELECT user FROM discount_uses WHERE order_id = ?", paid.order_id),
                          [(pseudonym,)])
        check.assertNotIn(u, json.dumps(api.orders(pseudonym)))
        # the pending order's payment page went with its token
        check.assertEqual(pending.get(srv).status, 404)
        check.assertEqual(pending.submit(srv, "pay").status, 404)
        check.assertEqual(api.order(pending.order_id)["state"], "pending")

        # the other shopper is untouched
        check.assertEqual(export(srv, keeper)["transcript"], keeper_before["transcript"])
        (user, token), = db_query(srv.db, "SELECT user, token FROM orders WHERE id = ?", kept.order_id)
        check.assertEqual(user, keeper)
        check.assertRegex(token, r"^[0-9a-f]{16,}$")
        check.assertEqual(kept.get(srv).status, 200)

        # the shopper who comes back starts over, and the once-per-shopper code stays used
        check.assertNotIn("Welcome back", texts(srv.say(BOT, u, "hi")))
        srv.say(BOT, u, "a large latte")
        srv.say(BOT, u, payload="croissant")
        srv.say(BOT, u, payload="done")
        srv.say(BOT, u, payload="code")
        check.assertIn("already used that code", texts(srv.say(BOT, u, "WELCOME10")))

    tap.case("the erasure: session, transcript, events, jobs, inbox gone; both orders kept under one pseudonym "
             "(HMAC of the database's key) without token or link; another shopper untouched; the code stays used",
             erasure)

    def erasure_whatsapp(run):
        phone, other = wa.new_phone(), wa.new_phone()
        for who in (phone, other):
            wa_talk(srv, fake, who, "hi")
            wa_talk(srv, fake, who, "a small latte")
        other_before = stored(srv.db, other, "whatsapp")
        check.assertTrue(all(other_before[t] for t in ("sessions", "inbox", "outbox", "jobs", "events")), other_before)
        r = srv.request("DELETE", shopper_path(phone, channel="whatsapp"), headers=admin())
        check.assertEqual(r.status, 200, r)
        check.assertEqual(stored(srv.db, phone, "whatsapp"), {t: 0 for t in ERASED_TABLES})
        check.assertEqual(stored(srv.db, other, "whatsapp"), other_before)
        # the reminder the cart had scheduled went with it: nothing is sent later
        check.assertEqual(rows_of(srv.db, "jobs", phone, "whatsapp"), 0)

    tap.case("the erasure of a WhatsApp shopper: inbound messages, calls and the cart's reminder gone; "
             "another shopper's kept", erasure_whatsapp)

    def log_clean(run):
        for line in srv.log_since(0):
            check.assertRegex(line, LOG_LINE)
        check.assertEqual([line for line in srv.log_since(0) if " ERROR " in line], [])
        check.assertNotIn(ADMIN, srv.log_text())

    tap.case("the log has no ERROR and never shows the admin token", log_clean, runs=1)
    srv.stop()
    tap.unwatch(srv)

    # =====================================================================================
    # retention_days
    # =====================================================================================

    def bot_copy(src, name, retention=None):
        """A copy of a bot folder, its bot.json with retention_days set (or not)."""
        if src == ROOT:
            d = copy_default_bot(name)
        else:
            d = os.path.join(temp_dir("parley-bot-"), name)
            shutil.copytree(src, d)
        set_retention(d, retention)
        return d

    def set_retention(d, days):
        path = os.path.join(d, "bot.json")
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
        manifest.pop("retention_days", None)
        if days is not None:
            manifest["retention_days"] = days
        save_atomically(path, json.dumps(manifest, indent=2, ensure_ascii=False))

    def validated(run):
        d = bot_copy(ROOT, "barista")
        for bad in (0, -3, "7", 1.5, True, 36501):
            set_retention(d, bad)
            p = subprocess.run([PARLEY, "check", d], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20)
            out = p.stdout.decode()
            check.assertEqual(p.returncode, 1, "%r: %s" % (bad, out))
            check.assertIn('bot.json:1: "retention_days" must be a whole number of days from 1 to 36500', out)
        for good in (1, 30, 36500):
            set_retention(d, good)
            p = subprocess.run([PARLEY, "check", d], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20)
            check.assertEqual(p.returncode, 0, p.stdout.decode())

    tap.case("retention_days is a whole number of days from 1 to 36500: parley check names anything else",
             validated, runs=1)

    barista = bot_copy(ROOT, "barista", retention=1)
    pizza = bot_copy(PIZZA, "pizza")
    ret_env = env_with(fake, PARLEY_TEST_CLOCK="1")
    ret = tap.watch(Server(bots=[barista, pizza], env=ret_env, name="parley (retention)").start())
    RUN_LINE = (r"\[%s\] retention \((\d+) days?\): removed (\d+) transcript rows, (\d+) inbox messages, "
                r"(\d+) sent calls; the analytics of (\d+) turns kept as day aggregates")

    def retention_jobs(db, bot=BOT):
        return db_query(db, "SELECT state, fire_at, fired_at, user, name FROM jobs WHERE bot = ? AND channel = "
                        "'_parley' ORDER BY id", bot)

    def server_ms(stamp):
        """The server's time of a /v1/test/clock answer, in ms."""
        t = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
        return int(t.timestamp() * 1000)

    def utc_day(ms):
        return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).date()

    def rolled_days(db, cutoff, bot=BOT):
        """The days (UTC: the bot's time zone) the roll-up before cutoff
        keeps as aggregates: every day with events before it, whole."""
        return {utc_day(at) for (at,) in db_query(db, "SELECT at FROM events WHERE bot = ? AND at < ?", bot, cutoff)}

    def rolled(db, cutoff, bot=BOT, user=None, channel="rest"):
        """The turns whose events those days hold (of one shopper when given)."""
        days = rolled_days(db, cutoff, bot)
        sql, args = "SELECT at FROM events WHERE bot = ?", [bot]
        if user:
            sql, args = sql + " AND channel = ? AND user = ?", args + [channel, user]
        return sum(1 for (at,) in db_query(db, sql, *args) if utc_day(at) in days)

    def older_than(db, cutoff, bot=BOT):
        """What a purge before cutoff removes of bot: (transcript rows,
        handled inbox rows, sent or dead calls, turns whose events are kept
        as day aggregates)."""
        q = lambda sql: db_query(db, sql, bot, cutoff)[0][0]  # noqa: E731
        return (q("SELECT count(*) FROM transcript_rows WHERE bot = ? AND at < ?"),
                q("SELECT count(*) FROM inbox WHERE bot = ? AND received_at < ? AND done_at IS NOT NULL"),
                q("SELECT count(*) FROM outbox WHERE bot = ? AND created_at < ? AND state <> 'pending'"),
                rolled(db, cutoff, bot))

    def counts(db, who):
        """{table: rows} of shoppers [(user, channel, bot)]."""
        out = {}
        for user, channel, bot in who:
            for t in ("transcript_rows", "events", "inbox", "outbox", "sessions"):
                out[(user, t)] = rows_of(db, t, user, channel, bot)
        return out

    def daily_purge(run):
        if run == 1:
            # the first run is due as soon as the bot has retention_days
            m = ret.wait_log(RUN_LINE % "barista")
            check.assertEqual(m.groups(), ("1", "0", "0", "0", "0"))
        jobs = retention_jobs(ret.db)
        check.assertEqual([j[0] for j in jobs][-1], "pending")
        check.assertEqual([(j[3], j[4]) for j in jobs], [("_retention", "retention")] * len(jobs))
        check.assertEqual(retention_jobs(ret.db, "pizza"), [], "a bot without retention_days has no such job")
        fired_before = [j for j in jobs if j[0] == "fired"]
        # the old: an HTTP shopper, a WhatsApp shopper, a shopper of the bot without retention
        old_rest, old_wa, pizza_user = new_user("old"), wa.new_phone(), new_user("pizza")
        ret.say(BOT, old_rest, "hi")
        ret.say(BOT, old_rest, "help")
        wa_talk(ret, fake, old_wa, "hi")
        ret.say("pizza", pizza_user, "hi")
        old = [(old_rest, "rest", BOT), (old_wa, "whatsapp", BOT)]
        old_counts = counts(ret.db, old)
        check.assertTrue(all(old_counts[(u, t)] for u, _, _ in old for t in ("transcript_rows", "events", "sessions")))
        check.assertTrue(old_counts[(old_wa, "inbox")] and old_counts[(old_wa, "outbox")], old_counts)
        pizza_counts = counts(ret.db, [(pizza_user, "rest", "pizza")])
        # a day later, less an hour: the recent ones
        now = server_ms(advance(ret, DAY - 3600))
        # what the run an hour past the day removes: everything from before
        # this advance (the recent ones come after it)
        expected = older_than(ret.db, now - 3600 * 1000)
        of_old = (sum(old_counts[(u, "transcript_rows")] for u, _, _ in old), old_counts[(old_wa, "inbox")],
                  old_counts[(old_wa, "outbox")], sum(old_counts[(u, "events")] for u, _, _ in old))
        check.assertTrue(all(e >= o > 0 for e, o in zip(expected, of_old)), (expected, of_old))
        new_rest, new_wa = new_user("new"), wa.new_phone()
        ret.say(BOT, new_rest, "hi")
        wa_talk(ret, fake, new_wa, "hi")
        recent = [(new_rest, "rest", BOT), (new_wa, "whatsapp", BOT)]
        recent_counts = counts(ret.db, recent)
        # a recent turn on a day the roll-up keeps whole (the old ones' day,
        # when the run is within a day of its start) gives its events to
        # the day's aggregates too, and keeps its transcript
        expected = expected[:3] + (rolled(ret.db, now - 3600 * 1000),)
        for u, ch, _ in recent:
            recent_counts[(u, "events")] -= rolled(ret.db, now - 3600 * 1000, user=u, channel=ch)
        # two hours on: the daily job is due
        mark = ret.mark()
        advance(ret, 2 * 3600)
        m = ret.wait_log(RUN_LINE % "barista", mark)
        removed = tuple(int(x) for x in m.groups()[1:])
        check.assertEqual(removed, expected, "what the log says it removed")
        check.assertEqual(older_than(ret.db, now - 3600 * 1000), (0, 0, 0, 0))
        after = counts(ret.db, old)
        for u, _, _ in old:
            check.assertEqual((after[(u, "transcript_rows")], after[(u, "events")], after[(u, "inbox")],
                               after[(u, "outbox")]), (0, 0, 0, 0), u)
            check.assertEqual(after[(u, "sessions")], 1, "sessions are not purged")
        check.assertEqual(counts(ret.db, recent), recent_counts, "the recent ones stay")
        check.assertEqual(counts(ret.db, [(pizza_user, "rest", "pizza")]), pizza_counts, "another bot's stay")
        # rescheduled once: one more fired, one pending a day after it fired
        jobs = retention_jobs(ret.db)
        fired = [j for j in jobs if j[0] == "fired"]
        pending = [j for j in jobs if j[0] == "pending"]
        check.assertEqual(len(fired), len(fired_before) + 1)
        check.assertEqual(len(pending), 1)
        check.assertEqual(pending[0][1], fired[-1][2] + DAY_MS)
        check.assertEqual(len(ret.find_log(RUN_LINE % "barista", mark)), 1, "one run")
        # parley's job never reached the bot's scripts as a shopper's event
        for t in ("sessions", "transcript_rows", "inbox", "events", "outbox"):
            check.assertEqual(db_query(ret.db, "SELECT count(*) FROM %s WHERE channel = '_parley'" % t)[0][0], 0, t)
        for method in ("GET", "DELETE"):
            check.assertEqual(ret.request(method, shopper_path("_retention", "_parley"), headers=admin()).status, 400)
        check.assertEqual(retention_jobs(ret.db), jobs)

    tap.case("retention_days 1: a day on, the daily job purges the old transcripts, events, inbound messages and "
             "sent calls, keeps the recent ones and another bot's, logs what it removed, and is rescheduled once",
             daily_purge)

    def survives_a_restart(run):
        nonlocal ret
        before = retention_jobs(ret.db)
        check.assertEqual([j[0] for j in before].count("pending"), 1)
        ret.stop()
        tap.unwatch(ret)
        ret = tap.watch(Server(bots=[barista, pizza], db=ret.db, env=ret_env, name="parley (retention, again)").start())
        # started again: the pending job is kept, none is added
        check.assertEqual(retention_jobs(ret.db), before)
        # (the test clock starts again from the real time): days past the
        # time the job is due
        due = [j[1] for j in before if j[0] == "pending"][0]
        mark = ret.mark()
        advance(ret, max(0, due - int(time.time() * 1000)) / 1000 + 3 * DAY)
        ret.wait_log(RUN_LINE % "barista", mark)
        jobs = retention_jobs(ret.db)
        check.assertEqual([j[0] for j in jobs].count("pending"), 1)
        check.assertEqual(len(jobs), len(before) + 1, "fired once, however many days passed")
        check.assertEqual(len(ret.find_log(RUN_LINE % "barista", mark)), 1)

    tap.case("the daily job survives a restart: kept, not doubled, fired once when due", survives_a_restart)

    def turned_on_and_off_by_reload(run):
        mark = ret.mark()
        set_retention(pizza, 30)
        ret.wait_log(r"\[pizza\] reloaded", mark)
        m = ret.wait_log(RUN_LINE % "pizza", mark)
        check.assertEqual(m.group(1), "30")
        check.assertEqual([j[0] for j in retention_jobs(ret.db, "pizza")].count("pending"), 1)
        mark = ret.mark()
        set_retention(pizza, None)
        ret.wait_log(r"\[pizza\] reloaded", mark)
        wait_until(lambda: [j[0] for j in retention_jobs(ret.db, "pizza")].count("pending") == 0,
                   what="pizza's daily job cancelled")

    tap.case("adding retention_days to a served bot's bot.json starts its daily job at once; taking it out "
             "cancels it", turned_on_and_off_by_reload)

    def retention_log_clean(run):
        check.assertEqual([line for line in ret.log_since(0) if " ERROR " in line], [])

    tap.case("the retention server's log has no ERROR", retention_log_clean, runs=1)


if __name__ == "__main__":
    run_suite("e2e: privacy (export, erasure, retention)", main)
