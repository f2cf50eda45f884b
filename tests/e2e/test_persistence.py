#!/usr/bin/env python3
"""test_persistence: stop the server mid-conversation (SIGTERM, or kill -9),
start it again on the same --db, and every conversation continues at the
same step with the same slots, cart and locale. Under load, a message that
was answered 200 is never lost; on SIGTERM every message the server took in
is answered."""

import http.client
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Server, check, choices, new_db, new_user, run_suite, texts,  # noqa: E402
                     wait_until)

BOT = "barista"
TOKEN = "persistence-admin"
ENV = {"PARLEY_ADMIN_TOKEN": TOKEN}


def start(db, name):
    return Server(db=db, env=ENV, name=name).start()


def without_clock(session):
    s = dict(session)
    s.pop("updated_at", None)
    return s


def main(tap):

    def restart_case(how):
        def case(run):
            db = new_db()
            a = tap.watch(start(db, "parley (before %s)" % how))
            en, ja, num = new_user("en"), new_user("ja"), new_user("num")
            try:
                # en: a large latte in the cart, the pairing offered
                a.say(BOT, en, "hi")
                a.say(BOT, en, payload="latte")
                a.say(BOT, en, payload="large")
                # ja: a latte chosen, its size asked
                a.say(BOT, ja, "こんにちは", locale="ja")
                replies = a.say(BOT, ja, payload="latte", locale="ja")
                check.assertIn("カフェラテ", texts(replies))
                # num: the drinks offered, nothing chosen yet
                a.say(BOT, num, "hi")
                before = {u: a.session(BOT, u, TOKEN) for u in (en, ja, num)}
                check.assertEqual(before[en]["stack"][-1]["step"], "offer_pairing")
                check.assertEqual(before[ja]["stack"][-1]["slots"], {"queue": [{"qty": 1, "sku": "latte"}]})
                check.assertEqual(before[ja]["locale"], "ja")
                if how == "SIGTERM":
                    check.assertEqual(a.stop(), 0)
                    a.wait_log(r"INFO +stopped$")
                else:
                    check.assertEqual(a.kill(), -9)
            finally:
                a.stop()
                tap.unwatch(a)

            b = tap.watch(start(db, "parley (after %s)" % how))
            try:
                for u in (en, ja, num):
                    check.assertEqual(without_clock(b.session(BOT, u, TOKEN)), without_clock(before[u]),
                                      "the session after the restart is the one before it")
                # en goes on where it was: the pairing, then the summary
                replies = b.say(BOT, en, payload="croissant")
                check.assertIn("Added Butter Croissant to your order", texts(replies))
                check.assertIn("That's 2 item(s) so far, €7.20", texts(replies))
                replies = b.say(BOT, en, payload="done")
                check.assertIn("1 × Latte (Large) — €4.70", texts(replies))
                check.assertIn("Total: €7.20", texts(replies))
                # ja goes on at the size question, in Japanese. (The locale
                # is sent along: a message without one is covered by
                # test_http's "keeps the session's locale".)
                replies = b.say(BOT, ja, "L", locale="ja")
                check.assertIn("カフェラテ（L）", texts(replies))
                check.assertIn("いいえ、結構です", [t for t, _ in choices(replies)])
                # num types the number of a choice offered before the restart
                replies = b.say(BOT, num, "2")
                check.assertIn("Latte", texts(replies))
                check.assertIn("large", [p for _, p in choices(replies)])
                check.assertEqual([line for line in b.log_since(0) if " ERROR " in line], [])
            finally:
                b.stop()
                tap.unwatch(b)
        return case

    tap.case("SIGTERM mid-conversation, restart on the same db: same step, slots, cart, locale, offered choices",
             restart_case("SIGTERM"))
    tap.case("kill -9 mid-conversation, restart on the same db: same step, slots, cart, locale, offered choices",
             restart_case("kill -9"))

    def under_load(how):
        """Shoppers send messages without pause; the server is stopped
        while they do. Returns {user: (acked, failures)}, the db."""
        def case(run):
            db = new_db()
            srv = tap.watch(start(db, "parley (load, %s)" % how))
            users = [new_user("load%d" % i) for i in range(6)]
            acked = {u: 0 for u in users}
            failed = {u: [] for u in users}
            bad = []
            done = threading.Event()

            def shopper(u):
                while not done.is_set():
                    try:
                        r = srv.post(BOT, u, "hi" if acked[u] == 0 else "help")
                    except (OSError, http.client.HTTPException) as e:
                        failed[u].append(type(e).__name__)
                        return  # the server has gone
                    if r.status == 200 and r.json and r.json.get("replies"):
                        acked[u] += 1
                    else:
                        bad.append(r)
                        return

            threads = [threading.Thread(target=shopper, args=(u,)) for u in users]
            try:
                for t in threads:
                    t.start()
                wait_until(lambda: sum(acked.values()) >= 120, timeout=20, what="120 answered messages")
                if how == "SIGTERM":
                    check.assertEqual(srv.stop(), 0, "SIGTERM under load ends with status 0")
                else:
                    srv.kill()
            finally:
                done.set()
                for t in threads:
                    t.join(15)
                srv.stop()
                tap.unwatch(srv)
            check.assertEqual(bad, [], "every answer that came was a 200 with replies")

            after = tap.watch(start(db, "parley (after load, %s)" % how))
            try:
                for u in users:
                    s = after.session(BOT, u, TOKEN)
                    check.assertIsNotNone(s, "an answered shopper has no session")
                    if how == "SIGTERM":
                        check.assertEqual(s["turn"], acked[u],
                                          "%s: %d answered, %d stored (a message taken in must be answered; failures: %s)"
                                          % (u, acked[u], s["turn"], failed[u]))
                    else:
                        check.assertIn(s["turn"], (acked[u], acked[u] + 1),
                                       "%s: %d answered, %d stored" % (u, acked[u], s["turn"]))
                    # and the conversation goes on from there
                    check.assertIn("I can take your coffee order", texts(after.say(BOT, u, "help")))
                    check.assertEqual(after.session(BOT, u, TOKEN)["turn"], s["turn"] + 1)
            finally:
                after.stop()
                tap.unwatch(after)
        return case

    tap.case("SIGTERM while shoppers send: each message taken in is answered and stored, none lost",
             under_load("SIGTERM"))
    tap.case("kill -9 while shoppers send: every message answered 200 is in the store after restart",
             under_load("kill -9"))


if __name__ == "__main__":
    run_suite("e2e: persistence across restarts", main)
