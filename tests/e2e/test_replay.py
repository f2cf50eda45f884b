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

import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (PARLEY, Server, check, copy_default_bot, line_of, make_bot, new_db, new_user, read_file,  # noqa: E402
                     run_suite, temp_dir, texts, wait_until, write_file)
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
