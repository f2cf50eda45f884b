#!/usr/bin/env python3
"""test_replay: `parley replay` as a regression gate. Conversations recorded
by a real `parley serve` over HTTP (a payment through the test provider's
page, an abandoned-cart reminder fired by the test clock) replay on the
unchanged bot with no difference and exit 0; a changed template in a copy of
the bot shows the turn and the words and exits 1; --accept writes
spec/replays/, which `parley test` then passes, and fails once the bot
changes again; --export and --from FILE|DIR round-trip; a bot whose every
template has many variations replays to the same words (the variation is a
hash of the session and the turn); --bot, --user, --conversation and --limit
pick conversations; a file that is not a replay file is refused with the
reason."""

import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (PARLEY, Server, check, copy_default_bot, db_execute, db_query, is_pg, line_of, make_bot,  # noqa: E402
                     new_db, new_user, read_file, run_suite, temp_dir, texts, wait_until, write_file)
from channel_helpers import FakePlatform  # noqa: E402
from commerce_helpers import BOT, PayLink, advance, leave_cart, link_of, reminders, to_checkout  # noqa: E402

CLOCK_ENV = {"PARLEY_TEST_CLOCK": "1"}


ORDER_SPEC = """\
local testing = require "parley.testing"
describe("an order first", function()
  it("takes a payment link", function()
    local chat = testing.conversation()
    chat:send "hi"
    chat:send "a small latte"
    chat:press "no"
    chat:press "done"
    chat:press "pay"
    assert.equal(1, chat:last_order().id)
  end)
end)
"""


def parley(*args, cwd=None):
    """Runs the parley binary; returns (exit code, stdout + stderr)."""
    p = subprocess.run([PARLEY] + list(args), capture_output=True, text=True, timeout=60, cwd=cwd)
    return p.returncode, p.stdout + p.stderr


def record(tap, db, bot):
    """Two shoppers of bot talk to a real server on db: one pays through
    the test provider's page, one leaves a cart and is reminded an hour
    later (the test clock). Returns their user ids."""
    srv = tap.watch(Server(bots=[bot], db=db, env=CLOCK_ENV, name="parley (recording)").start())
    payer, quiet = new_user("payer"), new_user("quiet")
    try:
        to_checkout(srv, payer)
        replies = srv.say(BOT, payer, payload="pay")
        PayLink(link_of(replies)["url"]).pay(srv)
        srv.say(BOT, payer, "thanks")
        leave_cart(srv, quiet)
        advance(srv, 61 * 60)
        wait_until(lambda: reminders(db, quiet), what="the reminder fired")
        srv.say(BOT, quiet, payload="done")
        # a shopper whose order is the database's second
        late = new_user("late")
        to_checkout(srv, late)
        check.assertIn("Order #2:", texts(srv.say(BOT, late, payload="pay")))
    finally:
        srv.stop()
        tap.unwatch(srv)
    return payer, quiet, late


def main(tap):
    state = {}

    def recorded():
        if "db" not in state:
            state["db"], state["bot"] = new_db(), copy_default_bot()
            state["users"] = record(tap, state["db"], state["bot"])
        return state["db"], state["bot"], state["users"]

    def unchanged(run):
        db, bot, (payer, quiet, late) = recorded()
        code, out = parley("replay", bot, "--from", db)
        check.assertEqual(code, 0, out)
        check.assertRegex(out, r"rest:%s: \d+ turns, no difference" % payer)
        check.assertRegex(out, r"rest:%s: \d+ turns, no difference" % quiet)
        check.assertIn("3 conversations", out)
        # alone, the second order of the database is the replay's first: not a difference
        code, out = parley("replay", bot, "--from", db, "--user", late)
        check.assertEqual(code, 0, out)
        check.assertIn("rest:%s: 5 turns, no difference" % late, out)
        code, out = parley("replay", bot, "--from", db, "--user", payer, "--export", os.path.join(temp_dir(), "p.json"))
        check.assertEqual(code, 0, out)

    tap.case("a transcript recorded by parley serve replays on the unchanged bot with no difference, exit 0",
             unchanged)

    def events_kept(run):
        db, bot, (payer, quiet, late) = recorded()
        out_dir = temp_dir()
        code, out = parley("replay", bot, "--from", db, "--export", out_dir)
        check.assertEqual(code, 0, out)
        files = sorted(os.listdir(out_dir))
        check.assertEqual(files, sorted(["rest-%s.json" % u for u in (payer, quiet, late)]))
        doc = json.loads(read_file(os.path.join(out_dir, "rest-%s.json" % payer)))
        check.assertEqual([doc["parley"], doc["bot"], doc["channel"], doc["user"]], ["replay/1", BOT, "rest", payer])
        check.assertEqual(doc["orders"], [1])
        kinds = [t["send"].get("event", {}).get("type") for t in doc["turns"]]
        check.assertIn("payment", kinds)
        paid = doc["turns"][kinds.index("payment")]
        check.assertEqual(paid["send"]["event"]["status"], "paid")
        check.assertEqual(paid["send"]["event"]["order"], {"id": 1}, "the order's number only, not its link")
        # the link is kept by its title: its URL names one run's order
        links = [r["link"] for t in doc["turns"] for r in t["replies"] if "link" in r]
        check.assertEqual(len(links), 1)
        check.assertEqual(list(links[0]), ["title"])
        check.assertEqual(doc["turns"][0]["step"], "drink.choose")
        check.assertEqual(list(doc["turns"][0]), ["at", "send", "step", "replies"])
        reminded = json.loads(read_file(os.path.join(out_dir, "rest-%s.json" % quiet)))
        check.assertIn("job", [t["send"].get("event", {}).get("type") for t in reminded["turns"]])
        # the files replay as the database did
        code, out = parley("replay", bot, "--from", out_dir)
        check.assertEqual(code, 0, out)
        check.assertIn("3 conversations", out)
        code, out = parley("replay", bot, "--from", os.path.join(out_dir, "rest-%s.json" % quiet))
        check.assertEqual(code, 0, out)
        check.assertIn("rest-%s.json" % quiet, out)

    tap.case("--export writes one readable file per conversation (payment and job turns, steps, link titles);"
             " --from DIR and --from FILE replay them with no difference", events_kept)

    def changed(run):
        db, bot, (payer, _, _) = recorded()
        copy = copy_default_bot()
        tone = os.path.join(copy, "scripts", "tone.lua")
        write_file(tone, read_file(tone).replace("Shall I take the payment?", "Ready to pay?"))
        code, out = parley("replay", copy, "--from", db, "--user", payer)
        check.assertEqual(code, 1, out)
        check.assertRegex(out, r"rest:%s: 1 of \d+ turns differ" % payer)
        check.assertRegex(out, r"turn 4, shopper \[done\]\n +reply 2 text:\n +- \"Shall I take the payment\?\"\n"
                               r" +\+ \"Ready to pay\?\"\n")

    def broken(run):
        db, _, (payer, _, _) = recorded()
        copy = copy_default_bot()
        flows = os.path.join(copy, "flows", "main.lua")
        source = read_file(flows)
        write_file(flows, source.replace('      c:say("how_to_pay", nil, {', '      error("no till today")\n      c:say("how_to_pay", nil, {', 1))
        code, out = parley("replay", copy, "--from", db, "--user", payer)
        check.assertEqual(code, 1, out)
        check.assertRegex(out, r"turn 4, shopper \[done\]\n")
        # the shopper got the bot's fallback; the error is shown with its place
        check.assertRegex(out, r"! .*flows/main\.lua:%d: no till today" % line_of(source, 'c:say("how_to_pay"'))

    tap.case("a turn that now fails: the difference and the script's error with file:line", broken)

    tap.case("a template changed in a copy of the bot: the turn, the old and new words, exit 1", changed)

    def accepted(run):
        db, _, (payer, _, _) = recorded()
        copy = copy_default_bot()
        tone = os.path.join(copy, "scripts", "tone.lua")
        write_file(tone, read_file(tone).replace("Shall I take the payment?", "Ready to pay?"))
        # a spec that makes an order first: the replay's order gets another number
        write_file(os.path.join(copy, "spec", "order_spec.lua"), ORDER_SPEC)
        code, out = parley("replay", copy, "--from", db, "--user", payer, "--accept")
        check.assertEqual(code, 0, out)
        path = os.path.join(copy, "spec", "replays", "rest-%s.json" % payer)
        check.assertIn("accepted: " + path, out)
        check.assertTrue("Ready to pay?" in read_file(path), "the new words are expected")
        code, out = parley("test", copy, "-o", "TAP")
        check.assertEqual(code, 0, out)
        check.assertRegex(out, r"ok 1 - an order first takes a payment link\nok 2 - replay rest-%s.json answers as recorded"
                          % payer)
        # the bot changes again: parley test fails on the replay, saying where
        write_file(tone, read_file(tone).replace("Ready to pay?", "Pay?"))
        code, out = parley("test", copy, "-o", "TAP")
        check.assertEqual(code, 1, out)
        check.assertRegex(out, r"not ok 2 - replay rest-%s.json answers as recorded" % payer)
        check.assertIn('+ "Pay?"', out)
        # accepting from the file itself keeps it where it is
        code, out = parley("replay", copy, "--from", path, "--accept")
        check.assertEqual(code, 0, out)
        code, out = parley("test", copy, "-o", "TAP")
        check.assertEqual(code, 0, out)

    tap.case("--accept writes spec/replays/; parley test passes, and fails once the bot changes again", accepted)

    def variations(run):
        keys = ["greet", "ask", "again", "fallback"]
        tone = "return { templates = { en = {\n%s\n} } }\n" % ",\n".join(
            "%s = { %s }" % (k, ", ".join('"%s %d"' % (k, i) for i in range(12))) for k in keys)
        flow = ('return { start = function(c) c:say("greet") c:say("ask") c:say("again") return "wait" end,\n'
                ' wait = { answer = function(c) return "start" end } }\n')
        bot = make_bot("vary", {"scripts/tone.lua": tone, "flows/main.lua": flow})
        db = new_db()
        srv = tap.watch(Server(bots=[bot], db=db, name="parley (variations)").start())
        users = [new_user("v") for _ in range(3)]
        said = []
        try:
            for u in users:
                for n in range(6):
                    said += texts(srv.say("vary", u, "message %d" % n)).split("\n")
        finally:
            srv.stop()
            tap.unwatch(srv)
        check.assertGreater(len(set(said)), 12, "the variations differ between turns")
        code, out = parley("replay", bot, "--from", db)
        check.assertEqual(code, 0, out)
        check.assertIn("3 conversations, 18 turns: 0 differ", out)
        # the same words at another step: the step is a difference of its own
        write_file(os.path.join(bot, "flows", "main.lua"), flow.replace('"wait"', '"waiting"').replace("wait =", "waiting ="))
        code, out = parley("replay", bot, "--from", db, "--user", users[0])
        check.assertEqual(code, 1, out)
        check.assertIn("1 conversation, 6 turns: 1 differs", out)
        check.assertRegex(out, r"turn 1, shopper \"message 0\"\n +step:\n +- main\.wait\n +\+ main\.waiting\n")

    tap.case("a tone with many variations: the words served replay identically (session and turn pick them)",
             variations)

    def filters(run):
        db, bot, (payer, quiet, late) = recorded()
        code, out = parley("replay", bot, "--from", db, "--limit", "1")
        check.assertEqual(code, 0, out)
        check.assertIn("1 conversation,", out)
        check.assertIn(payer, out)
        code, out = parley("replay", bot, "--from", db, "--conversation", "rest:" + quiet)
        check.assertEqual(code, 0, out)
        check.assertNotIn(payer, out)
        check.assertIn(quiet, out)
        code, out = parley("replay", bot, "--from", db, "--bot", "nobody")
        check.assertEqual(code, 1, out)
        check.assertIn("no recorded conversation of 'nobody'", out)
        code, out = parley("replay", bot, "--from", db, "--limit", "0")
        check.assertEqual(code, 2, out)
        check.assertIn("--limit wants a whole number", out)
        code, out = parley("replay", bot)
        check.assertEqual(code, 2, out)
        check.assertIn("--from DB|FILE|DIR is needed", out)
        bad = os.path.join(temp_dir(), "bad.json")
        write_file(bad, '{"turns": []}')
        code, out = parley("replay", bot, "--from", bad)
        check.assertEqual(code, 1, out)
        check.assertIn("not a replay file", out)

    tap.case("--limit, --conversation and --bot pick conversations; usage errors and a wrong file say why", filters)
    offline_case(tap)
    source_cases(tap, recorded)
    world_cases(tap)


def file_digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def source_cases(tap, recorded):
    def read_only(run):
        db, bot, (payer, _, _) = recorded()
        if is_pg(db):
            # a newer parley's schema is refused, and stays as it was
            db_execute(db, "INSERT INTO schema_migrations (version, applied_at) VALUES (999, 0)")
            try:
                code, out = parley("replay", bot, "--from", db, "--user", payer)
                check.assertEqual(code, 1, out)
                check.assertRegex(out, r"schema is at version 999, newer than this parley's \d+")
                check.assertEqual(db_query(db, "SELECT max(version) FROM schema_migrations")[0][0], 999)
            finally:
                db_execute(db, "DELETE FROM schema_migrations WHERE version = 999")
            return
        copy = os.path.join(temp_dir(), "copy.db")
        shutil.copy2(db, copy)
        before = file_digest(copy)
        code, out = parley("replay", bot, "--from", copy, "--user", payer)
        check.assertEqual(code, 0, out)
        check.assertEqual(file_digest(copy), before, "the database was only read")
        # a newer parley's database is refused, as it is
        with sqlite3.connect(copy) as conn:
            conn.execute("INSERT INTO schema_migrations VALUES (999, 0)")
        conn.close()
        before = file_digest(copy)
        code, out = parley("replay", bot, "--from", copy)
        check.assertEqual(code, 1, out)
        check.assertRegex(out, r"schema is at version 999, newer than this parley's \d+: use the newer parley")
        check.assertEqual(file_digest(copy), before)
        # an older one too (this parley would have to migrate it)
        with sqlite3.connect(copy) as conn:
            conn.execute("DELETE FROM schema_migrations WHERE version >= (SELECT max(version) FROM schema_migrations"
                         " WHERE version < 999)")
        conn.close()
        code, out = parley("replay", bot, "--from", copy)
        check.assertEqual(code, 1, out)
        check.assertRegex(out, r"schema is at version \d+, older than this parley's")
        # an empty file is not a database to replay, and stays empty
        empty = os.path.join(temp_dir(), "empty")
        write_file(empty, "")
        code, out = parley("replay", bot, "--from", empty)
        check.assertEqual(code, 1, out)
        check.assertIn("not a parley database", out)
        check.assertEqual(os.path.getsize(empty), 0)

    tap.case("--from DB reads the database as it is: never written or migrated; another schema or a file that "
             "is not a parley database is refused with the reason", read_only)

    def file_names(run):
        db, bot = new_db(), copy_default_bot()
        srv = tap.watch(Server(bots=[bot], db=db, name="parley (names)").start())
        users = ["slash-%d/b" % run, "slash-%d_b" % run, "long-%d-" % run + "x" * 240]
        try:
            for u in users:
                srv.say(BOT, u, "hi")
        finally:
            srv.stop()
            tap.unwatch(srv)
        out_dir = temp_dir()
        code, out = parley("replay", bot, "--from", db, "--export", out_dir)
        check.assertEqual(code, 0, out)
        files = sorted(os.listdir(out_dir))
        check.assertEqual(len(files), 3, files)
        check.assertIn("rest-slash-%d_b.json" % run, files)
        check.assertTrue(all(len(f) < 128 for f in files), files)
        for f in files:
            doc = json.loads(read_file(os.path.join(out_dir, f)))
            check.assertIn(doc["user"], users)
        check.assertEqual(sorted(json.loads(read_file(os.path.join(out_dir, f)))["user"] for f in files),
                          sorted(users))
        code, out = parley("replay", bot, "--from", out_dir)
        check.assertEqual(code, 0, out)
        check.assertIn("3 conversations", out)

    tap.case("--export: names that would meet or are too long get a short hash; every conversation has its file",
             file_names)


def hand_written(path, doc):
    write_file(path, json.dumps(dict({"parley": "replay/1", "bot": doc.get("bot", "barista")}, **doc), indent=2))


def world_cases(tap):
    def fresh(run):
        # one latte left: each conversation, recorded alone, got it
        bot = copy_default_bot()
        catalog = json.loads(read_file(os.path.join(bot, "catalog.json")))
        for product in catalog["products"]:
            if product["sku"] == "latte":
                product["stock"] = 1
        write_file(os.path.join(bot, "catalog.json"), json.dumps(catalog))
        folder = temp_dir()
        for name in ("a", "b"):
            p = subprocess.run([PARLEY, "chat", bot, "--user", name, "--record", os.path.join(folder, name + ".json")],
                               input="hi\na small latte\n3\n2\n1\n/pay\n", capture_output=True, text=True, timeout=60)
            check.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            check.assertIn("Order #1", p.stdout)
        code, out = parley("replay", bot, "--from", folder)
        check.assertEqual(code, 0, out)
        check.assertIn("2 conversations, 12 turns: 0 differ", out)

    tap.case("each conversation replays on a fresh bot (stock, orders), as parley test runs each file", fresh)

    def event_locale_page(run):
        flow = ('return { start = function(c, msg)\n'
                '  c:say("greet", { page = msg.channel and msg.channel.page_url or "nowhere" })\n'
                '  return "wait" end,\n'
                '  wait = { answer = function(c) return "start" end } }\n')
        tone = ('return { templates = { en = { greet = "Hello from {page}", fallback = "Sorry" },\n'
                ' ja = { greet = "{page} から、こんにちは", fallback = "すみません" } } }\n')
        bot = make_bot("pages", {"flows/main.lua": flow, "scripts/tone.lua": tone},
                       manifest={"name": "pages", "locales": ["en", "ja"], "start_flow": "main",
                                 "webchat": {"origins": ["http://localhost:8000"], "greet_on_open": True}})
        path = os.path.join(temp_dir(), "open.json")
        hand_written(path, {"bot": "pages", "channel": "webchat", "user": "visitor-%d" % run, "orders": [], "turns": [
            {"at": 1796000000000, "send": {"event": {"type": "open"}, "locale": "ja",
                                            "info": {"page_url": "http://localhost:8000/checkout", "page_title": "C"}},
             "replies": [{"text": "http://localhost:8000/checkout から、こんにちは"}]}]})
        code, out = parley("replay", bot, "--from", path)
        check.assertEqual(code, 0, out)
        check.assertIn("open.json: 1 turn, no difference", out)

    tap.case("an event replays with its recorded locale and page (the widget's open on a Japanese page)",
             event_locale_page)

    def links(run):
        flow = ('return { start = function(c)\n'
                '  c:link("Size guide", "https://shop.example/sizes")\n'
                '  return "wait" end,\n'
                '  wait = { answer = function(c) return "start" end } }\n')
        tone = 'return { templates = { en = { fallback = "Sorry" } } }\n'
        bot = make_bot("linky", {"flows/main.lua": flow, "scripts/tone.lua": tone})
        rec = os.path.join(temp_dir(), "linky.json")
        p = subprocess.run([PARLEY, "chat", bot, "--record", rec], input="hello\n", capture_output=True, text=True,
                           timeout=60)
        check.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        doc = json.loads(read_file(rec))
        check.assertEqual(doc["turns"][0]["replies"][0]["link"],
                          {"title": "Size guide", "url": "https://shop.example/sizes"})
        code, out = parley("replay", bot, "--from", rec)
        check.assertEqual(code, 0, out)
        flows = os.path.join(bot, "flows", "main.lua")
        write_file(flows, read_file(flows).replace("/sizes", "/sizing"))
        code, out = parley("replay", bot, "--from", rec)
        check.assertEqual(code, 1, out)
        check.assertIn('reply 1 link:\n      - "Size guide" <https://shop.example/sizes>\n'
                       '      + "Size guide" <https://shop.example/sizing>', out)

    tap.case("a link's URL is kept and compared (a payment link's is not: it names one run's order)", links)

    def failure(run):
        bot = copy_default_bot()
        rec = os.path.join(temp_dir(), "r.json")
        p = subprocess.run([PARLEY, "chat", bot, "--record", rec], input="hi\na small latte\n3\n2\n",
                           capture_output=True, text=True, timeout=60)
        check.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        code, out = parley("replay", bot, "--from", rec, "--accept")
        check.assertEqual(code, 0, out)
        tone = os.path.join(bot, "scripts", "tone.lua")
        write_file(tone, read_file(tone).replace("Shall I take the payment?", "Ready to pay?"))
        # run from the bot's parent folder: the command shown works from there
        parent, name = os.path.split(bot)
        code, out = parley("test", name, cwd=parent)
        check.assertEqual(code, 1, out)
        check.assertRegex(out, r"0 successes / 1 failure / 0 errors")
        m = re.search(r"\(if the change is meant: (parley replay .* --accept)\)", out)
        check.assertIsNotNone(m, out)
        check.assertEqual(m.group(1), "parley replay %s --from %s/spec/replays/r.json --accept" % (name, name))
        code, out = parley(*m.group(1).split()[1:], cwd=parent)
        check.assertEqual(code, 0, out)
        code, out = parley("test", name, cwd=parent)
        check.assertEqual(code, 0, out)

    def recorded_order(run):
        flow = ('local function order(c)\n'
                '  c.cart:add("tea")\n'
                '  local order = assert(c:checkout())\n'
                '  c:say_text("order #" .. order.id, { link = { title = "Pay", url = order.payment_url } })\n'
                'end\n'
                'return { start = function(c) order(c) return "wait" end,\n'
                '  wait = { answer = function(c, msg)\n'
                '    if not msg.payment then return order(c) end\n'
                '    c:say_text("paid #" .. msg.payment.order.id .. ": " .. msg.payment.status)\n'
                '  end } }\n')
        catalog = json.dumps({"currency": "EUR", "products": [
            {"sku": "tea", "title": "Tea", "price": 300, "tags": ["drink"]}]})
        tone = 'return { templates = { en = { fallback = "Sorry", order_paid = "Order #{order} is paid" } } }\n'
        bot = make_bot("teas", {"flows/main.lua": flow, "scripts/tone.lua": tone, "catalog.json": catalog},
                       manifest={"start_flow": "main"})
        db, user = new_db(), new_user("two")
        srv = tap.watch(Server(bots=[bot], db=db, name="parley (two orders)").start())
        try:
            first = link_of(srv.say("teas", user, "one"))
            second = link_of(srv.say("teas", user, "another"))
            check.assertNotEqual(first["url"], second["url"])
            # the first order is paid, after the second was made
            PayLink(first["url"]).pay(srv)
            wait_until(lambda: db_query(db, "SELECT count(*) FROM transcript WHERE body LIKE '%Order #1 is paid%'")[0][0],
                       what="the bot's answer to the payment")
        finally:
            srv.stop()
            tap.unwatch(srv)
        out_dir = temp_dir()
        code, out = parley("replay", bot, "--from", db, "--export", out_dir)
        check.assertEqual(code, 0, out)
        doc = json.loads(read_file(os.path.join(out_dir, "rest-%s.json" % user)))
        paid = [t for t in doc["turns"] if t["send"].get("event", {}).get("type") == "payment"]
        check.assertEqual(len(paid), 1, doc)
        check.assertEqual(paid[0]["send"]["event"]["order"], {"id": 1})
        # (the flow waits for the second order: the first one's payment is told by order_paid)
        check.assertEqual(paid[0]["replies"][0]["text"], "Order #1 is paid")
        code, out = parley("replay", bot, "--from", db)
        check.assertEqual(code, 0, out)
        check.assertIn("1 conversation, %d turns: 0 differ" % len(doc["turns"]), out)

    tap.case("a payment replays for the order it was recorded for (the first of two), not the latest",
             recorded_order)

    tap.case("parley test: a replay that differs is a failure (not an error), and the command it suggests "
             "works from where parley test ran", failure)


class FakeBotApi(FakePlatform):
    """Telegram's Bot API, as much as a reply needs: every request is kept."""

    def __init__(self):
        super().__init__()
        self.requests = []

    def on_post(self, h, raw):
        self.requests.append(h.path)
        self.answer(h, 200, {"ok": True, "result": {"message_id": len(self.requests)}})


def offline_case(tap):
    def case(run):
        fake = FakeBotApi()
        secret = "replay-secret-%d" % run
        env = {"BARISTA_TELEGRAM_BOT_TOKEN": "110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
               "BARISTA_TELEGRAM_SECRET_TOKEN": secret, "PARLEY_TELEGRAM_API_BASE": fake.base}
        bot, db, chat = copy_default_bot(), new_db(), 400000000 + run
        srv = tap.watch(Server(bots=[bot], db=db, env=env, name="parley (telegram)").start())
        try:
            for n, text in enumerate(["hi", "a small latte"]):
                update = {"update_id": 900 + n, "message": {
                    "message_id": 10 + n, "date": 1765100000, "text": text,
                    "from": {"id": chat, "is_bot": False, "first_name": "Ada", "language_code": "en"},
                    "chat": {"id": chat, "type": "private", "first_name": "Ada"}}}
                r = srv.request("POST", "/v1/bots/barista/channels/telegram", update,
                                headers={"X-Telegram-Bot-Api-Secret-Token": secret})
                check.assertEqual(r.status, 200, r)
            # the server's answers went out to the platform
            wait_until(lambda: len(fake.requests) >= 4, what="the answers sent to the Bot API")
        finally:
            srv.stop()
            tap.unwatch(srv)
        sent = len(fake.requests)
        p = subprocess.run([PARLEY, "replay", bot, "--from", db], capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, **env))
        out = p.stdout + p.stderr
        fake.stop()
        check.assertEqual(p.returncode, 0, out)
        check.assertIn("telegram:%d: 2 turns, no difference" % chat, out)
        check.assertEqual(len(fake.requests), sent, "the replay sent nothing to the shopper: %r" % fake.requests)

    tap.case("a conversation recorded on Telegram replays on its channel and sends the shopper nothing, "
             "whatever the environment says", case)


if __name__ == "__main__":
    run_suite("parley replay", main)
