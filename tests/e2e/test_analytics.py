#!/usr/bin/env python3
"""test_analytics: the shop's figures over HTTP (docs/analytics.md).

A mix of conversations with the default bot, through the HTTP API and
Telegram's webhook: two paid orders (one of them a cart the abandoned-cart
reminder brought back), a declined one, a shopper the bot did not
understand, one who only said hello, one who asked for a person. The test
works out what the funnel, revenue, reminders, drop-off, not-understood,
channel split and handoff figures must be, and asks the analytics API.
Then the events export (CSV and NDJSON, paged), the tokens and their scope,
bad ranges, and kill -9 between turns: no event lost or counted twice."""

import csv
import datetime
import io
import json
import os
import random
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Server, check, check_error, copy_default_bot, db_query, new_db, new_user,  # noqa: E402
                     run_suite, texts, wait_until)
from commerce_helpers import BOT, PayLink, advance, leave_cart, tap_pay, to_checkout  # noqa: E402
from channel_helpers import FakePlatform  # noqa: E402

TOKEN = "analytics-" + "%08x" % random.getrandbits(32)
TG_TOKEN = "110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
TG_SECRET = "barista-hook-secret_" + "%08x" % random.getrandbits(32)


class FakeTelegram(FakePlatform):
    """Telegram's Bot API, which takes every call."""

    def on_post(self, h, raw):
        self.answer(h, 200, {"ok": True, "result": {"message_id": 1}})


def env(fake, **more):
    e = {"PARLEY_ANALYTICS_TOKEN": TOKEN, "PARLEY_TEST_CLOCK": "1", "PARLEY_ADMIN_TOKEN": "admin",
         "BARISTA_TELEGRAM_BOT_TOKEN": TG_TOKEN, "BARISTA_TELEGRAM_SECRET_TOKEN": TG_SECRET,
         "PARLEY_TELEGRAM_API_BASE": fake.base}
    e.update(more)
    return e


def get(srv, path, token=TOKEN):
    return srv.request("GET", path, headers={"Authorization": "Bearer " + token} if token else {})


def telegram_hello(srv, chat):
    update = {"update_id": random.getrandbits(30),
              "message": {"message_id": 7, "date": 1700000000, "text": "hi",
                          "from": {"id": chat, "is_bot": False, "first_name": "Ada", "language_code": "en"},
                          "chat": {"id": chat, "type": "private", "first_name": "Ada"}}}
    r = srv.request("POST", "/v1/bots/%s/channels/telegram" % BOT, update,
                    headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET})
    check.assertEqual(r.status, 200, r)


def days_around(now):
    """From the day before to the day after the server's now (an ISO time,
    UTC): the mix may cross midnight while the clock moves."""
    day = datetime.datetime.fromisoformat(now.replace("Z", "+00:00")).date()
    return (day - datetime.timedelta(days=1)).isoformat(), (day + datetime.timedelta(days=1)).isoformat()


def drive_mix(srv):
    """The conversation mix; returns its shoppers."""
    who = {k: new_user(k) for k in ("paid", "declined", "recovered", "lost", "human")}
    # paid: a small latte, no pastry, paid at once (€3.80)
    to_checkout(srv, who["paid"])
    _, link = tap_pay(srv, who["paid"])
    PayLink(link["url"]).pay(srv)
    # declined: the same, declined on the provider's page
    to_checkout(srv, who["declined"])
    _, link = tap_pay(srv, who["declined"])
    PayLink(link["url"]).decline(srv)
    # recovered: leaves a small latte in the cart and goes quiet
    leave_cart(srv, who["recovered"])
    # lost: the bot does not understand what they want
    srv.say(BOT, who["lost"], "hi")
    check.assertIn("didn't catch which drink", texts(srv.say(BOT, who["lost"], "Do you sell KOMBUCHA??")))
    # human: asks for a person
    srv.say(BOT, who["human"], "hi")
    srv.say(BOT, who["human"], "can I talk to a person?")
    # hello: one message on Telegram, then nothing
    telegram_hello(srv, 4242)
    wait_until(lambda: db_query(srv.db, "SELECT count(*) FROM events WHERE channel = 'telegram'")[0][0] == 1,
               what="the Telegram turn committed")
    # an hour later: the reminders went out (recovered, declined); recovered
    # comes back, with the comeback code, and pays €2.80
    advance(srv, 61 * 60)
    for user in (who["recovered"], who["declined"]):
        wait_until(lambda u=user: db_query(srv.db, "SELECT count(*) FROM events WHERE user = ? AND names LIKE "
                                                   "'% reminder_sent %'", u)[0][0] == 1,
                   what="the reminder of %s" % user)
    replies = srv.say(BOT, who["recovered"], payload="done")
    check.assertIn("€2.80", texts(replies))
    _, link = tap_pay(srv, who["recovered"])
    PayLink(link["url"]).pay(srv)
    wait_until(lambda: db_query(srv.db, "SELECT count(*) FROM events WHERE names LIKE '% payment_paid %'")[0][0] == 2,
               what="both payments committed")
    return who


def figures(srv, **params):
    query = "&".join("%s=%s" % kv for kv in params.items())
    r = get(srv, "/v1/bots/%s/analytics?%s" % (BOT, query))
    check.assertEqual(r.status, 200, r)
    return r.json


def main(tap):
    fake = FakeTelegram()

    def the_mix(run):
        with Server(db=new_db(), env=env(fake)) as srv:
            tap.watch(srv)
            now = advance(srv, 0)
            who = drive_mix(srv)
            frm, to = days_around(now)
            f = figures(srv, **{"from": frm, "to": to})
            # six conversations: five on the HTTP API, one on Telegram; every
            # greeting shows the drinks; the Telegram one said only hello
            funnel = {s["step"]: s["count"] for s in f["funnel"]}
            check.assertEqual(funnel, {"conversations": 6, "engaged": 5, "product_shown": 5, "cart": 3,
                                       "checkout": 3, "paid": 2})
            rates = [s["rate"] for s in f["funnel"]]
            check.assertEqual(rates, [1, round(5 / 6, 3), 1, round(3 / 5, 3), 1, round(2 / 3, 3)])
            # €3.80 and €2.80 (the comeback code took €1 off)
            check.assertEqual(f["revenue"], [{"currency": "EUR", "orders": 2, "amount": 660, "average": 330,
                                              "refunds": 0, "refunded": 0}])
            check.assertEqual(f["reminders"], {"sent": 2, "recovered": 1,
                                               "revenue": [{"currency": "EUR", "amount": 280}]})
            # messages: paid 5, declined 5, recovered 3 + 2, lost 2, human 2, hello 1
            nu = f["not_understood"]
            check.assertEqual((nu["turns"], nu["count"], nu["rate"]), (20, 1, 0.05))
            check.assertEqual(nu["top"], [{"text": "do you sell kombucha", "count": 1}])
            check.assertEqual(f["channels"], [{"channel": "rest", "conversations": 5},
                                              {"channel": "telegram", "conversations": 1}])
            # the pairing was recommended to the three who got a drink; none took it
            check.assertEqual(f["recommendations"], {"shown": 3, "taken": 0, "rate": 0})
            check.assertEqual((f["handoff"]["requested"], f["handoff"]["rate"], f["handoff"]["claimed"]),
                              (1, round(1 / 6, 3), 0))
            # gone quiet without paying: lost, human and hello at the drinks,
            # declined where the decline left it
            drops = {d["step"]: d for d in f["drop_off"]}
            check.assertEqual(drops["drink.choose"], {"step": "drink.choose", "dropped": 3, "reached": 6,
                                                      "share": 0.5})
            check.assertEqual(sum(d["dropped"] for d in f["drop_off"]), 4)
            check.assertEqual(f["errors"], {"script_errors": 0, "budget_aborts": 0, "payments_failed": 1})
            # per day: the days of the range, which add up to the totals
            check.assertEqual([d["day"] for d in f["days"]], [frm, (datetime.date.fromisoformat(frm) +
                                                                     datetime.timedelta(days=1)).isoformat(), to])
            check.assertEqual(sum(d["conversations"] for d in f["days"]), 6)
            check.assertEqual(sum(d["orders"] for d in f["days"]), 2)
            check.assertEqual(sum(d["messages"] for d in f["days"]), 20)
            check.assertEqual(sum(r["amount"] for d in f["days"] for r in d["revenue"]), 660)
            # filters: one channel, one locale
            tg = figures(srv, **{"from": frm, "to": to, "channel": "telegram"})
            check.assertEqual([s["count"] for s in tg["funnel"]], [1, 0, 0, 0, 0, 0])
            check.assertEqual(tg["filters"], {"channel": "telegram", "locale": None})
            ja = figures(srv, **{"from": frm, "to": to, "locale": "ja"})
            check.assertEqual(ja["funnel"][0]["count"], 0)
            # a range before any of it: zeros, every day listed
            empty = figures(srv, **{"from": "2020-01-01", "to": "2020-01-03"})
            check.assertEqual([s["count"] for s in empty["funnel"]], [0] * 6)
            check.assertEqual(len(empty["days"]), 3)
            check.assertEqual(who["paid"] != who["lost"], True)

    tap.case("the figures of a conversation mix over HTTP and Telegram are the ones the test works out", the_mix,
             runs=1)

    def export(run):
        with Server(db=new_db(), env=env(fake)) as srv:
            tap.watch(srv)
            user = new_user("csv")
            srv.say(BOT, user, "hi")
            srv.say(BOT, user, '=HYPERLINK("http://evil"), "quoted"')
            srv.say(BOT, user, "a small latte")
            rows = db_query(srv.db, "SELECT count(*) FROM events WHERE user = ?", user)[0][0]
            check.assertEqual(rows, 3)
            r = get(srv, "/v1/bots/%s/analytics/events?format=ndjson" % BOT)
            check.assertEqual(r.status, 200, r)
            check.assertEqual(r.headers.get("content-type"), "application/x-ndjson")
            lines = [json.loads(line) for line in r.body.decode().splitlines()]
            names = [line["event"] for line in lines]
            check.assertEqual(names[:5], ["conversation_started", "message", "product_shown", "step", "reply"])
            nu = [line for line in lines if line["event"] == "not_understood"]
            check.assertEqual(nu[0]["props"]["text"], '=hyperlink http evil quoted')
            check.assertEqual(set(lines[0]), {"at", "day", "channel", "user", "conversation", "locale", "step",
                                              "event", "props"})
            check.assertEqual((lines[0]["user"], lines[0]["channel"], lines[0]["conversation"]), (user, "rest", 1))
            # CSV: RFC 4180, one event a record, a formula kept as text
            r = get(srv, "/v1/bots/%s/analytics/events?format=csv" % BOT)
            check.assertTrue(r.headers.get("content-type").startswith("text/csv"), r.headers)
            records = list(csv.reader(io.StringIO(r.body.decode())))
            check.assertEqual(records[0], ["at", "day", "channel", "user", "conversation", "locale", "step", "event",
                                           "props"])
            check.assertEqual(len(records) - 1, len(lines))
            props = [json.loads(rec[8]) for rec in records[1:] if rec[7] == "not_understood"]
            check.assertEqual(props[0]["text"], '=hyperlink http evil quoted')
            # paged by turns: the cursor of a full page leads to the next
            seen, cursor = [], None
            while True:
                path = "/v1/bots/%s/analytics/events?limit=1" % BOT + ("&cursor=" + cursor if cursor else "")
                r = get(srv, path)
                check.assertEqual(r.status, 200, r)
                seen += [json.loads(line)["event"] for line in r.body.decode().splitlines()]
                cursor = r.headers.get("x-next-cursor")
                if not cursor:
                    break
            check.assertEqual(seen, names)
            check_error(get(srv, "/v1/bots/%s/analytics/events?format=xml" % BOT), 400, "csv or ndjson")
            check_error(get(srv, "/v1/bots/%s/analytics/events?cursor=nope" % BOT), 400, "cursor")
            check_error(get(srv, "/v1/bots/%s/analytics/events?limit=0" % BOT), 400, "limit")

    tap.case("the events stream as NDJSON and as CSV (formulas kept as text), paged by a cursor", export)

    def access(run):
        brand = "brand-" + "%08x" % random.getrandbits(32)
        with Server(db=new_db(), env=env(fake, BARISTA_ANALYTICS_TOKEN=brand)) as srv:
            tap.watch(srv)
            path = "/v1/bots/%s/analytics" % BOT
            check_error(get(srv, path, token=None), 401, "valid token")
            check_error(get(srv, path, token="wrong"), 401, "valid token")
            check.assertEqual(get(srv, path).status, 200)
            check_error(get(srv, "/v1/bots/nobody/analytics"), 404, "no bot named")
            check_error(srv.request("POST", path, {}, headers={"Authorization": "Bearer " + TOKEN}), 405)
            bots = get(srv, "/v1/analytics/bots").json["bots"]
            check.assertEqual([b["name"] for b in bots], [BOT])
            check.assertEqual(bots[0]["time_zone"], "UTC")
            check.assertIn("telegram", bots[0]["channels"])
            # ranges
            check_error(get(srv, path + "?from=2026-02-30&to=2026-03-01"), 400, "from is a date")
            check_error(get(srv, path + "?from=2026-03-02&to=2026-03-01"), 400, "after")
            check_error(get(srv, path + "?from=2020-01-01&to=2026-03-01"), 400, "at most 400 days")
            # no token set anywhere: the API is off
        with Server(db=new_db(), env={"PARLEY_ADMIN_TOKEN": "x"}) as srv:
            tap.watch(srv)
            check_error(get(srv, "/v1/bots/%s/analytics" % BOT), 403, "PARLEY_ANALYTICS_TOKEN")

    tap.case("the analytics API wants its token, answers 404/405/400 with reasons, and is off without one",
             access)

    def crash(run):
        db = new_db()
        users = [new_user("crash%d" % i) for i in range(8)]
        answered = {u: 0 for u in users}
        srv = tap.watch(Server(db=db, env=env(fake), name="parley (before kill -9)").start())
        stop = threading.Event()

        def shopper(u):
            words = ["hi", "a small latte", "no", "help", "cancel"]
            i = 0
            while not stop.is_set():
                try:
                    r = srv.post(BOT, u, words[i % len(words)])
                except OSError:
                    return
                if r.status != 200:
                    return
                answered[u] += 1
                i += 1

        threads = [threading.Thread(target=shopper, args=(u,)) for u in users]
        for t in threads:
            t.start()
        wait_until(lambda: sum(answered.values()) >= 60, timeout=20, what="60 answers")
        srv.kill()
        stop.set()
        for t in threads:
            t.join()
        tap.unwatch(srv)
        after = tap.watch(Server(db=db, env=env(fake), name="parley (after kill -9)").start())
        try:
            for u in users:
                turns = after.session(BOT, u, "admin")["turn"]
                check.assertIn(turns, (answered[u], answered[u] + 1))
                # one "message" event per committed turn, never two
                names = [n for (n,) in db_query(db, "SELECT names FROM events WHERE user = ? ORDER BY id", u)]
                check.assertEqual(sum(n.split().count("message") for n in names), turns,
                                  "%s: %d turns, events %r" % (u, turns, names))
                transcript_in = db_query(db, "SELECT count(*) FROM transcript WHERE user = ? AND direction = 'in'",
                                         u)[0][0]
                check.assertEqual(transcript_in, turns)
        finally:
            after.stop()
            tap.unwatch(after)

    tap.case("kill -9 between turns: every committed turn has its events once, none without its turn", crash,
             runs=1)

    def kept_by_retention(run):
        # the default bot with retention_days 1: its daily job keeps the old
        # days' figures as aggregates before their events go
        bot = copy_default_bot()
        path = os.path.join(bot, "bot.json")
        manifest = json.load(open(path, encoding="utf-8"))
        manifest["retention_days"] = 1
        json.dump(manifest, open(path, "w", encoding="utf-8"))
        with Server(bots=[bot], db=new_db(), env=env(fake)) as srv:
            tap.watch(srv)
            srv.wait_log(r"retention \(1 day\)")  # the first run, at start: nothing to do yet
            now = advance(srv, 0)
            paid, lost = new_user("kept"), new_user("kept")
            to_checkout(srv, paid)
            _, link = tap_pay(srv, paid)
            PayLink(link["url"]).pay(srv)
            srv.say(BOT, lost, "hi")
            srv.say(BOT, lost, "Do you sell KOMBUCHA??")
            wait_until(lambda: db_query(srv.db, "SELECT count(*) FROM events WHERE names LIKE '% payment_paid %'")[0][0]
                       == 1, what="the payment committed")
            frm, _ = days_around(now)
            to = (datetime.date.fromisoformat(frm) + datetime.timedelta(days=5)).isoformat()
            advance(srv, 3600)  # an hour on: "lost" went quiet (drop-off)
            before = figures(srv, **{"from": frm, "to": to})
            check.assertEqual([(d["step"], d["dropped"]) for d in before["drop_off"]], [("drink.choose", 1)])
            check.assertEqual(before["not_understood"]["top"], [{"text": "do you sell kombucha", "count": 1}])
            # two days on: the daily job runs, keeps the days, lets the events go
            mark = srv.mark()
            advance(srv, 2 * 86400)
            m = srv.wait_log(r"retention \(1 day\): removed (\d+) transcript rows.* the analytics of (\d+) turns kept",
                             mark)
            check.assertGreater(int(m.group(2)), 0)
            check.assertEqual(db_query(srv.db, "SELECT count(*) FROM events")[0][0], 0)
            kept = db_query(srv.db, "SELECT channel, locale, figures FROM analytics_days WHERE bot = ?", BOT)
            check.assertEqual([(c, l) for c, l, _ in kept], [("rest", "en")] * len(kept))
            for _, _, text in kept:
                check.assertNotIn(paid, text)
                check.assertNotIn("kombucha", text)
            after = figures(srv, **{"from": frm, "to": to})
            # every count the same; what shoppers wrote is not kept
            for part in ("funnel", "revenue", "reminders", "drop_off", "recommendations", "channels", "errors",
                         "custom", "days"):
                check.assertEqual(after[part], before[part], part)
            for k in ("turns", "count", "rate"):
                check.assertEqual(after["not_understood"][k], before["not_understood"][k], k)
            check.assertEqual(after["not_understood"]["top"], [])

    tap.case("retention keeps the old days' figures (with no shopper in them) before their events go", kept_by_retention,
             runs=1)
    fake.stop()


if __name__ == "__main__":
    run_suite("e2e: analytics", main)
