#!/usr/bin/env python3
"""test_nodes: several parley nodes serving the same bots on one PostgreSQL
database, requests spread over them without affinity (issue 11).

Each case starts its nodes (`parley serve --node nK`, one database URL) and
talks to them as a load balancer would: round-robin, and on a connection
the stopped node refused, the next node. What each case checks comes from
the database as well as from the answers:

- one shopper's messages alternating between nodes are handled one at a
  time, in order, each answered once (the session's turn count, seq, is the
  number of turns);
- messages of one shopper sent to three nodes at once: each answered once,
  each answer right after its message in the transcript;
- a payment confirmation submitted to two nodes at once pays once;
- a job (an abandoned-cart reminder) a killed node scheduled fires on the
  node that is left, once;
- the replies of consecutive turns run on two nodes reach the shopper in
  turn order, though the first node's sends are retried;
- kill -9 of a node under webhook load: every delivery acknowledged 200 is
  handled, and the calls the dead node had not sent (the fake Graph API was
  refusing them) go out from another node once its lease lapsed;
- a rolling restart (SIGTERM, then a new process) of every node under load:
  no request fails but those the stopping node refused to connect, which
  the test sends to the next node; nothing is lost or answered twice;
- a line committed on one node reaches a web chat stream open on another.

Several nodes need PostgreSQL: with SQLite (the default mode) the suite
reports its cases skipped. Standard library only."""

import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_channel_whatsapp as wa  # noqa: E402
from commerce_helpers import (PayLink, advance, event_turns, leave_cart, link_of, reminders,  # noqa: E402
                              tap_pay, to_checkout)
from harness import (POSTGRESQL, ROOT, Server, check, db_query, echo_bot, new_db, new_user,  # noqa: E402
                     run_suite, wait_until)
from sse_client import Shopper  # noqa: E402

ORDER_BOT = os.path.join(ROOT, "tests", "bench", "order")
# The order bot's conversation (tests/bench/order.lua): what each message
# sends and a piece of its answer.
STEPS = [
    ("text", "hi", "What's your name?"),
    ("text", "Ana", '"payload":"latte"'),
    ("payload", "latte", '"payload":"large"'),
    ("payload", "large", "Large Latte: €4.20"),
    ("payload", "yes", "Order placed, Ana: Large Latte, total €4.20"),
]
LEASE_MS = "1500"
WEB_BOT = "barista"  # the default bot has the web chat on


class Nodes:
    """n nodes on one database; nodes[i] wraps around."""

    def __init__(self, tap, n, bots=None, env=None, name="node"):
        self.tap = tap
        self.db = new_db("nodes")
        self.bots, self.env, self.name = bots, dict(env or {}), name
        self.env.setdefault("PARLEY_LEASE_MS", LEASE_MS)
        self.servers = [self.start(i) for i in range(n)]

    def start(self, i):
        return self.tap.watch(Server(bots=self.bots, db=self.db, env=self.env, args=["--node", "n%d" % i],
                                     name="%s n%d" % (self.name, i)).start())

    def __getitem__(self, i):
        return self.servers[i % len(self.servers)]

    def __len__(self):
        return len(self.servers)

    def stop(self):
        for s in self.servers:
            s.stop()
            self.tap.unwatch(s)


def session_seq(db, bot, user, channel="rest"):
    rows = db_query(db, "SELECT seq FROM sessions WHERE bot = ? AND channel = ? AND user = ?", bot, channel, user)
    return rows[0][0] if rows else 0


def lines(db, bot, user, channel="rest"):
    """[(direction, body)] of the session's transcript, in order."""
    return [(d, json.loads(b)) for d, b in db_query(
        db, "SELECT direction, body FROM transcript WHERE bot = ? AND channel = ? AND user = ? ORDER BY id",
        bot, channel, user)]


def run_threads(fns, timeout=60):
    """Runs each fn in a thread; returns the exceptions they raised."""
    errors = []

    def wrap(fn):
        try:
            fn()
        except BaseException as e:  # noqa: B036 - reported by the case
            errors.append(e)
    threads = [threading.Thread(target=wrap, args=(fn,)) for fn in fns]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    check.assertFalse(any(t.is_alive() for t in threads), "every thread finished")
    return errors


def conversation(nodes, user, first):
    """The order bot's whole conversation, message k to node first + k."""
    for k, (field, value, expect) in enumerate(STEPS):
        r = nodes[first + k].post("order", user, **{field: value})
        check.assertEqual(r.status, 200, "%s: %r to node %d: %r" % (user, value, (first + k) % len(nodes), r))
        check.assertIn(expect, r.body.decode("utf-8"), "%s: the answer to %r" % (user, value))


def main(tap):
    if not POSTGRESQL:
        why = "several nodes share a PostgreSQL database (PARLEY_TEST_DB=postgresql)"
        for name in ("alternating nodes", "one shopper at three nodes at once", "a payment confirmed on two nodes",
                     "a job taken over", "replies in turn order", "kill -9 under load", "rolling restart under load",
                     "streams across nodes"):
            tap.skip(name, why)
        return

    # --- ordering ---------------------------------------------------------------------

    echo, _ = echo_bot("echo")
    nodes = Nodes(tap, 3, bots=[ROOT, ORDER_BOT, echo], name="order")

    def alternating(run):
        users = [new_user("alt") for _ in range(6)]
        errors = run_threads([lambda u=u, k=k: conversation(nodes, u, k) for k, u in enumerate(users)])
        check.assertEqual(errors, [], "every shopper's conversation went as on one node")
        for u in users:
            got = lines(nodes.db, "order", u)
            check.assertEqual([d for d, _ in got], ["in", "out"] * len(STEPS), u)
            check.assertEqual([b.get("text") or b.get("payload") for d, b in got if d == "in"],
                              [value for _, value, _ in STEPS], "in the order sent")
            check.assertEqual(session_seq(nodes.db, "order", u), len(STEPS), "one committed turn a message")

    tap.case("alternating nodes: six shoppers at once, each message to the next of three nodes — ordered, "
             "each answered once, as on one node", alternating)

    def one_shopper_everywhere(run):
        # the echo bot counts its turns in the session and says the count:
        # turns run one at a time on the latest session say 1..12, each once
        u = new_user("burst")
        answers = []
        lock = threading.Lock()

        def send(k):
            r = nodes[k].post("echo", u, text="m%02d" % k)
            with lock:
                answers.append((k, r.status, r.json["replies"][0]["text"] if r.status == 200 else r.body))
        errors = run_threads([lambda k=k: send(k) for k in range(12)])
        check.assertEqual(errors, [])
        check.assertEqual(sorted(a[:2] for a in answers), [(k, 200) for k in range(12)], answers)
        counts = sorted(int(text.split(":")[0]) for _, _, text in answers)
        check.assertEqual(counts, list(range(1, 13)), "each turn saw the one before it: %r" % answers)
        got = lines(nodes.db, "echo", u)
        check.assertEqual([d for d, _ in got], ["in", "out"] * 12)
        said = [b[0]["text"] for d, b in got if d == "out"]
        check.assertEqual([int(t.split(":")[0]) for t in said], list(range(1, 13)), "committed in turn order")
        check.assertEqual(session_seq(nodes.db, "echo", u), 12, "one committed turn a message")

    tap.case("one shopper at three nodes at once: twelve messages, each answered once, one turn at a time",
             one_shopper_everywhere)

    # --- streams --------------------------------------------------------------------------

    def streams(run):
        # the stream on node 1, the message to node 2
        watcher = Shopper(nodes[1], bot=WEB_BOT)
        sender = Shopper(nodes[2], bot=WEB_BOT, user=watcher.user)
        watcher.connect()
        try:
            sender.send(text="hi")
            watcher.stream.wait_for(lambda e: e.event == "line" and (e.json or {}).get("direction") == "out",
                                    timeout=10, what="the answer committed on n2")
        finally:
            watcher.stream.close()

    tap.case("streams across nodes: a web chat stream open on one node gets a line committed on another", streams,
             runs=1)
    nodes.stop()

    # --- payments ---------------------------------------------------------------------------

    shop = Nodes(tap, 2, env={"BARISTA_STRIPE_SECRET_KEY": None, "BARISTA_STRIPE_WEBHOOK_SECRET": None,
                              "PARLEY_TEST_CLOCK": None}, name="shop")

    def double_confirmation(run):
        u = new_user("pay")
        to_checkout(shop[0], u)
        replies, _ = tap_pay(shop[1], u)
        link = PayLink(link_of(replies)["url"])
        results = []
        lock = threading.Lock()

        def submit(k):
            r = link.submit(shop[k], "pay")
            with lock:
                results.append(r.status)
        errors = run_threads([lambda k=k: submit(k) for k in range(6)])
        check.assertEqual(errors, [])
        check.assertEqual(results, [200] * 6, results)
        state = db_query(shop.db, "SELECT state, count(*) FROM orders WHERE id = ? GROUP BY state", link.order_id)
        check.assertEqual(state, [("paid", 1)])
        wait_until(lambda: event_turns(shop.db, u, kind="payment"), what="the payment's turn")
        check.assertEqual(len(event_turns(shop.db, u, kind="payment")), 1, "one confirmation applied")
        paid_logs = sum(len(s.find_log(r"\[barista\] order %d is paid$" % link.order_id)) for s in shop.servers)
        check.assertEqual(paid_logs, 1, "one node applied it")

    tap.case("a payment confirmed on two nodes at once (six submits): paid once, one payment turn",
             double_confirmation)
    shop.stop()

    # --- jobs -----------------------------------------------------------------------------

    def job_taken_over(run):
        clock = {"BARISTA_STRIPE_SECRET_KEY": None, "BARISTA_STRIPE_WEBHOOK_SECRET": None, "PARLEY_TEST_CLOCK": "1"}
        pair = Nodes(tap, 2, env=clock, name="jobs")
        try:
            u = new_user("quiet")
            leave_cart(pair[0], u)  # node 0 schedules the abandoned-cart reminder, in an hour
            check.assertEqual(db_query(pair.db, "SELECT name, state FROM jobs WHERE user = ?", u),
                              [("abandoned_cart", "pending")])
            check.assertEqual(pair[0].kill(), -9)
            pair.tap.unwatch(pair[0])
            advance(pair[1], 61 * 60)  # node 1's clock: the job is due there
            said = wait_until(lambda: reminders(pair.db, u), timeout=10, interval=0.05,
                              what="the reminder, fired by the node that is left")
            check.assertEqual(len(said), 1, said)
            check.assertEqual(db_query(pair.db, "SELECT state FROM jobs WHERE user = ?", u), [("fired",)])
            check.assertEqual(len(event_turns(pair.db, u, kind="job")), 1, "fired once")
        finally:
            for s in pair.servers[1:]:
                s.stop()
                tap.unwatch(s)

    tap.case("a job a killed node scheduled fires on another node, once", job_taken_over, runs=1)

    # --- kill -9 under load ------------------------------------------------------------------

    fake = wa.FakeGraph()
    wa_env = wa.env_for(fake, PARLEY_OUTBOX_RETRY_MS="50", PARLEY_OUTBOX_RETRY_MAX_MS="200",
                        PARLEY_OUTBOX_MAX_ATTEMPTS="1000")

    def replies_in_turn_order(run):
        pair = Nodes(tap, 2, env=wa_env, name="order of sends")
        try:
            phone = wa.new_phone()
            with fake.lock:
                fake.fail_first[phone] = [500, 500, 500]  # node 0's answers wait for retries
            r = wa.deliver(pair[0], wa.envelope([wa.text_message(phone, "hi")], contacts=[wa.contact(phone)]))
            check.assertEqual(r.status, 200, r)
            wait_until(lambda: fake.attempts_of(phone) > 0, what="node 0 trying to send the greeting")
            r = wa.deliver(pair[1], wa.envelope([wa.list_reply(phone, "latte", "Latte · €3.80")],
                                                contacts=[wa.contact(phone)]))
            check.assertEqual(r.status, 200, r)

            # the greeting, the drink list, then the size question
            sent = wait_until(lambda: len(fake.messages(phone)) >= 3 and fake.messages(phone), timeout=10,
                              interval=0.02, what="both turns' answers sent")
            # (the tone words the size question several ways: "What size for your Latte?", "Which size ...")
            def kind(m):
                said = json.dumps(m, ensure_ascii=False).lower()
                return "size" if "size" in said and "latte" in said else "greeting"
            kinds = [kind(m) for m in sent]
            check.assertIn("size", kinds, sent)
            check.assertEqual(kinds, sorted(kinds, key=lambda k: k == "size"),
                              "the first turn's answers (node 0, retried) before the second's (node 1)")
        finally:
            pair.stop()

    tap.case("replies of consecutive turns on two nodes reach the shopper in turn order, though the first "
             "node's sends are retried", replies_in_turn_order)

    def kill_under_load(run):
        wan = Nodes(tap, 3, env=wa_env, name="whatsapp")
        try:
            phones = [wa.new_phone() for _ in range(30)]
            held = phones[:10]  # their sends fail until node n1 is dead
            with fake.lock:
                fake.down.update(held)
            acked = []

            def deliver(k, phone):
                body = wa.envelope([wa.text_message(phone, "hi", msg_id="wamid.%s" % uuid.uuid4().hex)],
                                   contacts=[wa.contact(phone)])
                for attempt in range(len(wan)):
                    node = wan[k + attempt]
                    try:
                        r = wa.deliver(node, body)
                    except OSError:
                        continue  # refused: the next node, as a load balancer does
                    if r.status == 200:
                        acked.append(phone)
                        return
                raise AssertionError("no node acknowledged %s" % phone)
            # the held shoppers on n1, which holds their calls when it dies
            errors = run_threads([lambda p=p: deliver(1, p) for p in held])
            check.assertEqual(errors, [])
            wait_until(lambda: all(fake.attempts_of(p) > 0 for p in held), timeout=10,
                       what="n1 trying to send to the held shoppers")
            check.assertEqual(wan[1].kill(), -9)
            tap.unwatch(wan[1])
            with fake.lock:
                fake.down.difference_update(held)
            rest = phones[10:]
            errors = run_threads([lambda k=k, p=p: deliver(k, p) for k, p in enumerate(rest)])
            check.assertEqual(errors, [])
            check.assertEqual(sorted(acked), sorted(phones), "every delivery acknowledged")

            def all_answered():
                return all(fake.messages(p) for p in phones)
            wait_until(all_answered, timeout=20, interval=0.05, what="an answer sent to every shopper")
            inbox = db_query(wan.db, "SELECT count(*), count(done_at) FROM inbox WHERE channel = 'whatsapp'")
            check.assertEqual(inbox, [(len(phones), len(phones))], "every acknowledged message handled")
            taken = sum(len(s.find_log(r"outbox: took over \d+ outgoing")) for s in (wan[0], wan[2]))
            check.assertGreaterEqual(taken, 1, "a survivor took over the dead node's calls")
            for p in phones:
                turns = [d for d, _ in lines(wan.db, "barista", p, "whatsapp") if d == "in"]
                check.assertEqual(len(turns), 1, "%s: one turn" % p)
        finally:
            wan.stop()

    tap.case("kill -9 of one of three nodes under webhook load: every acknowledged message handled once, "
             "the dead node's unsent calls sent by another after its lease", kill_under_load, runs=1)

    # --- rolling restart ----------------------------------------------------------------------

    def rolling_restart(run):
        ring = Nodes(tap, 3, bots=[ORDER_BOT], name="rolling", env={})
        stop = threading.Event()
        done, failures, lock = [], [], threading.Lock()

        def shopper(k):
            n = 0
            while not stop.is_set():
                u = "roll-%d-%d-%s" % (k, n, uuid.uuid4().hex[:6])
                n += 1
                for step, (field, value, expect) in enumerate(STEPS):
                    for attempt in range(6):
                        node = ring[k + step + attempt]
                        try:
                            r = node.post("order", u, **{field: value})
                        except OSError:
                            continue  # the stopping node refused: the next one
                        break
                    else:
                        with lock:
                            failures.append((u, value, "no node took it"))
                        return
                    if r.status != 200 or expect not in r.body.decode("utf-8"):
                        with lock:
                            failures.append((u, value, r.status, r.body[:200]))
                        return
                with lock:
                    done.append(u)
        threads = [threading.Thread(target=shopper, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        try:
            for i in range(len(ring)):
                wait_until(lambda: len(done) >= 4 * (i + 1), timeout=20, what="conversations finishing")
                old = ring.servers[i]
                old.proc.send_signal(signal.SIGTERM)
                check.assertEqual(old.proc.wait(20), 0, "n%d stopped cleanly" % i)
                tap.unwatch(old)
                ring.servers[i] = ring.start(i)
            wait_until(lambda: len(done) >= 4 * (len(ring) + 1), timeout=20, what="conversations after the restart")
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        check.assertEqual(failures, [], "no request failed")
        for u in done:
            got = lines(ring.db, "order", u)
            check.assertEqual([d for d, _ in got], ["in", "out"] * len(STEPS), "%s: nothing lost or repeated" % u)
        ring.stop()

    tap.case("rolling restart of three nodes under load: no failed request (a refused connection goes to the "
             "next node), nothing lost or repeated", rolling_restart, runs=1)
    fake.stop()


if __name__ == "__main__":
    run_suite("e2e: several nodes on one PostgreSQL database", main)
