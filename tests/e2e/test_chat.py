#!/usr/bin/env python3
"""test_chat: `parley chat` driven through its standard input (it reads
lines from a pipe as from a terminal, one at a time, each after the answer
to the one before). The payment link is a line; /pay pays it through the
test provider and the bot goes on as after a real payment (the thanks shown
once, the order paid in the store); links and images are lines; /help lists
/pay; the scripts' log lines show on stderr, the runtime's own lines do
not; --record writes a replay file that `parley replay` replays with no
difference, and with a difference once the bot changes."""

import json
import os
import re
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import PARLEY, check, copy_default_bot, make_bot, read_file, run_suite, temp_dir, write_file  # noqa: E402

# hi, a small latte, no pastry (3), that's all (2), pay now (1): the link
TO_LINK = ["hi", "a small latte", "3", "2", "1"]
THANKS = "Payment received, thank you! Order #1 is being prepared"


def chat(lines, *args, bot=None):
    """Runs parley chat with lines on its standard input; returns
    (exit code, stdout, stderr)."""
    argv = [PARLEY, "chat"] + ([bot] if bot else []) + list(args)
    p = subprocess.run(argv, input="".join(line + "\n" for line in lines), capture_output=True, text=True,
                       timeout=60, cwd=bot or None)
    return p.returncode, p.stdout, p.stderr


def parley(*args):
    p = subprocess.run([PARLEY] + list(args), capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


def main(tap):

    def pays(run):
        bot = copy_default_bot()
        db = os.path.join(temp_dir(), "chat.db")
        code, out, err = chat(TO_LINK + ["/pay", "thanks"], "--db", db, bot=bot)
        check.assertEqual(code, 0, out + err)
        m = re.search(r"\n {6}\[link\] Pay €3\.80: (http\S+/v1/bots/barista/payments/test/1\?token=[0-9a-f]+)\n", out)
        check.assertIsNotNone(m, "the payment link is a line: %s" % out)
        check.assertIn("(paid through the test provider)\nbarista: " + THANKS, out)
        check.assertEqual(out.count(THANKS), 1, "the thanks is shown once, not again with the next answer: %s" % out)
        after = out.split(THANKS, 1)[1]
        check.assertIn("Which drink would you like?", after, "the conversation goes on")
        with sqlite3.connect(db) as conn:
            check.assertEqual(conn.execute("SELECT state FROM orders WHERE id = 1").fetchone(), ("paid",))
        # the order is paid: a second /pay says so and pays nothing
        code, out, err = chat(TO_LINK + ["/pay", "/pay"], bot=bot)
        check.assertIn("(order #1 is paid: nothing to pay)", out)
        code, out, err = chat(["hi", "/pay", "/help"], bot=bot)
        check.assertIn("(no payment link yet: /pay pays the last one the bot sent)", out)
        check.assertRegex(out, r"\n  /pay +pay the last payment link through the test provider\n")

    tap.case("the payment link is a line; /pay pays it through the test provider; the bot goes on; /help lists /pay",
             pays)

    def links_images_logs(run):
        flow = ('local log = require "log"\n'
                'return { start = function(c, msg)\n'
                '  log.info("heard", msg.text)\n'
                '  c:say("look", nil, { image = "https://img.example/shoe.jpg" })\n'
                '  c:link("Size guide", "https://shop.example/sizes")\n'
                '  return "wait" end,\n'
                '  wait = { answer = function(c) log.warn("asked again") return "start" end } }\n')
        tone = 'return { templates = { en = { look = "Have a look", fallback = "Sorry" } } }\n'
        bot = make_bot("shoes", {"flows/main.lua": flow, "scripts/tone.lua": tone})
        code, out, err = chat(["hello", "/pay", "again"], bot=bot)
        check.assertEqual(code, 0, out + err)
        check.assertIn("shoes: Have a look\n      [link] Size guide: https://shop.example/sizes\n"
                       "      [image] https://img.example/shoe.jpg\n", out)
        check.assertIn("(the last link is not the test provider's: open it in a browser to pay)", out)
        check.assertIn("log: [shoes] flows/main.lua:3: heard hello", err)
        # a warning of a script is in the conversation, as every warning
        check.assertIn("! [shoes] flows/main.lua:7: asked again", out)
        check.assertNotIn("listening", err)
        check.assertEqual([line for line in err.splitlines() if line and not line.startswith("log: ")], [],
                          "only the scripts' lines on stderr: %r" % err)

    tap.case("links and images are lines; /pay refuses a link that is not the test provider's;"
             " log.info shows on stderr marked log:, nothing else of the log there", links_images_logs)

    def recorded(run):
        bot = copy_default_bot()
        rec = os.path.join(temp_dir(), "chat.json")
        code, out, err = chat(TO_LINK + ["/pay", "thanks"], "--record", rec, bot=bot)
        check.assertEqual(code, 0, out + err)
        doc = json.loads(read_file(rec))
        check.assertEqual([doc["parley"], doc["channel"], doc["user"]], ["replay/1", "console", "console"])
        sent = [t["send"] for t in doc["turns"]]
        check.assertEqual(sent[:3], [{"text": "hi"}, {"text": "a small latte"}, {"payload": "no"}])
        check.assertEqual(sent[5]["event"]["type"], "payment")
        check.assertEqual(doc["turns"][5]["replies"][0]["text"][:len(THANKS)], THANKS)
        code, out = parley("replay", bot, "--from", rec)
        check.assertEqual(code, 0, out)
        check.assertIn("chat.json: 7 turns, no difference", out)
        tone = os.path.join(bot, "scripts", "tone.lua")
        write_file(tone, read_file(tone).replace("Shall I take the payment?", "Ready to pay?"))
        code, out = parley("replay", bot, "--from", rec)
        check.assertEqual(code, 1, out)
        check.assertIn('+ "Ready to pay?"', out)

    tap.case("--record writes a replay file that replays with no difference, and shows a changed template", recorded)

    def from_files(run):
        bot = copy_default_bot()
        lines = os.path.join(temp_dir(), "lines.txt")
        # the last line has no newline: it is a line all the same
        write_file(lines, "hi\na small latte\n3\n2")
        with open(lines) as f:
            p = subprocess.run([PARLEY, "chat", bot], stdin=f, capture_output=True, text=True, timeout=30)
        check.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        check.assertIn("Shall I take the payment?", p.stdout, "every line, the last one too, was answered")
        check.assertNotIn("Epoll", p.stderr)
        # answers come in order, each after its line
        check.assertLess(p.stdout.index("Which drink would you like?"), p.stdout.index("Small Latte"))
        with open(os.devnull) as f:
            p = subprocess.run([PARLEY, "chat", bot], stdin=f, capture_output=True, text=True, timeout=30)
        check.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        check.assertIn("parley chat with 'barista'", p.stdout)
        # through a pipe, a last line without a newline too
        p = subprocess.run([PARLEY, "chat", bot], input="hi\na small latte", capture_output=True, text=True,
                           timeout=30)
        check.assertIn("Small Latte", p.stdout)

    tap.case("input from a file or /dev/null: every line is answered in turn and the end of input ends the chat",
             from_files)

    def reset_recorded(run):
        bot = copy_default_bot()
        rec = os.path.join(temp_dir(), "chat.json")
        code, out, err = chat(["hi", "a small latte", "/reset", "/quit"], "--record", rec, bot=bot)
        check.assertEqual(code, 0, out + err)
        check.assertEqual(json.loads(read_file(rec))["turns"], [], "the erased conversation is not in the file")
        code, out, err = chat(["hi", "a small latte", "/reset", "hello", "/quit"], "--record", rec, bot=bot)
        check.assertEqual([t["send"] for t in json.loads(read_file(rec))["turns"]], [{"text": "hello"}])

    tap.case("--record after /reset holds the conversation from the reset on, also when nothing followed",
             reset_recorded)

    def prices(run):
        catalog = json.dumps({"currency": "KWD", "products": [
            {"sku": "dates", "title": "Dates", "price": 1250, "tags": ["food"]}]})
        flow = ('return { start = function(c) c:cards(c.catalog:by_tag "food") return "wait" end,\n'
                '  wait = { answer = function(c) return "start" end } }\n')
        tone = 'return { templates = { en = { fallback = "Sorry" } } }\n'
        bot = make_bot("souk", {"flows/main.lua": flow, "scripts/tone.lua": tone, "catalog.json": catalog})
        code, out, err = chat(["hi"], bot=bot)
        check.assertEqual(code, 0, out + err)
        check.assertIn("[dates] Dates — 1.250 KWD", out)

    tap.case("a card's price has its currency's own minor-unit digits (KWD: three)", prices)


if __name__ == "__main__":
    run_suite("parley chat", main)
