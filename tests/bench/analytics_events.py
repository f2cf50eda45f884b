#!/usr/bin/env python3
"""tests/bench/analytics_events.py DB N: writes about N analytics events of
the default bot ('barista') into the transcript rows (the events view) of parley's SQLite
database DB (made by parley, so its schema is the real one): a month of
conversations ending now, shaped like the default bot's (greeting with the
drinks shown, a drink added, a recommendation, checkout, payment, now and
then a message not understood, a handoff), several turns each, in time
order. Deterministic (a fixed seed). Prints what it wrote."""

import json
import random
import sqlite3
import sys
import time

DAY_MS = 86400 * 1000
WORDS = ["oat milk", "do you have vegan", "decaf?", "bubble tea", "opening hours", "wifi password", "gluten free"]


def conversation(rng, at):
    """The turns of one conversation: [(at, step, [events])]."""
    turns = []

    def turn(step, *events):
        nonlocal at
        at += rng.randint(5, 90) * 1000
        turns.append((at, step, [{"name": "message"}] + list(events) + [{"name": "reply", "props": {"count": 2}}]))

    turn("drink.choose", {"name": "product_shown", "props": {"skus": ["espresso", "latte", "cappuccino"]}},
         {"name": "step", "props": {"step": "drink.choose"}})
    turns[0][2].insert(0, {"name": "conversation_started"})
    if rng.random() < 0.1:
        turn("drink.choose", {"name": "not_understood", "props": {"text": rng.choice(WORDS)}})
    if rng.random() < 0.7:
        turn("main.offer_pairing", {"name": "cart_add", "props": {"sku": "latte", "qty": 1}},
             {"name": "product_shown", "props": {"skus": ["croissant"], "recommended": True}},
             {"name": "step", "props": {"step": "main.offer_pairing"}})
        if rng.random() < 0.6:
            turn("main.checkout", {"name": "step", "props": {"step": "main.checkout"}})
            if rng.random() < 0.7:
                turn("main.await_payment", {"name": "checkout_started", "props": {"order": 1, "total": 380,
                                                                                  "currency": "EUR"}},
                     {"name": "step", "props": {"step": "main.await_payment"}})
                if rng.random() < 0.8:
                    at += 60000
                    turns.append((at, None, [{"name": "payment_paid", "props": {"order": 1, "total": 380,
                                                                                "currency": "EUR"}}]))
    elif rng.random() < 0.05:
        turn("drink.choose", {"name": "handoff_requested", "props": {"reason": "asked for a person"}})
    return turns


def main():
    path, want = sys.argv[1], int(sys.argv[2])
    rng = random.Random(13)
    now = int(time.time() * 1000)
    start = now - 30 * DAY_MS
    rows, events, shoppers = [], 0, 0
    while events < want:
        shoppers += 1
        at = start + (shoppers * 7919 % 1000003) * (now - start) // 1000003
        channel = "whatsapp" if shoppers % 3 == 0 else "rest"
        locale = "ja" if shoppers % 10 == 0 else "en"
        for t_at, step, evs in conversation(rng, at):
            names = " " + " ".join(e["name"] for e in evs) + " "
            rows.append(("barista", channel, "shopper-%d" % shoppers, 1, t_at, locale, step, names,
                         json.dumps(evs, separators=(",", ":"))))
            events += len(evs)
    rows.sort(key=lambda r: r[4])
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    # a turn's events live in its transcript row (the events view): a row
    # takes two ids, its message's and, + 1, its answer's
    first = (db.execute("SELECT coalesce(max(id), 0) FROM transcript_rows").fetchone()[0] // 2 + 1) * 2 + 1
    with db:
        db.executemany("INSERT INTO transcript_rows (id, bot, channel, user, at, direction, body, reply_at, reply,"
                       " conv, locale, step, names, list) VALUES (?, ?, ?, ?, ?, 'in', ?, ?, '[]', ?, ?, ?, ?, ?)",
                       ((first + 2 * i, bot, channel, user, at, '{"text":"hi"}', at + 5, conv, locale, step, names, lst)
                        for i, (bot, channel, user, conv, at, locale, step, names, lst) in enumerate(rows)))
    db.close()
    print("%d events in %d turns of %d conversations over 30 days" % (events, len(rows), shoppers))


if __name__ == "__main__":
    main()
