#!/usr/bin/env python3
"""test_sandbox: a bot's scripts cannot take the server down. A runaway
loop or an exhausted memory budget aborts that one message of that one
session: the shopper gets the bot's fallback reply (the tone's "fallback"
template), the log names file:line, and other sessions and other bots go
on untouched. pcall (or a coroutine) cannot swallow the abort, and the
sandbox is an allow list.

Served here: the echo fixture bots (harness.ECHO_FLOW) "sandbox" (memory
budget 16 MB), "neighbour" and "stylish" (whose tone's style hook can loop),
and a copy of the default bot whose drink.choose step loops on "spin
forever"."""

import os
import re
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Server, check, choices, copy_default_bot, echo_bot, echo_fallback, line_of,  # noqa: E402
                     new_user, read_file, run_suite, texts, write_file)

TOKEN = "sandbox-admin"
STYLE_HOOK = """\
  style = function(text, info)
    if text:find("loop in style", 1, true) then
      while true do end -- MARK:style-loop
    end
    return text
  end,
"""
MEMORY_MB = 16
UNTHROTTLED = ["--bot-share", "100", "--bot-burst-ms", "600000"]
INSTRUCTIONS = 1000000


def main(tap):
    sandbox_dir, flow = echo_bot("sandbox", manifest={"limits": {"memory_mb": MEMORY_MB, "instructions": INSTRUCTIONS}})
    neighbour_dir, _ = echo_bot("neighbour")
    stylish_dir, _ = echo_bot("stylish")
    tone_path = os.path.join(stylish_dir, "scripts", "tone.lua")
    stylish_tone = read_file(tone_path).replace("  templates = {", STYLE_HOOK + "  templates = {", 1)
    write_file(tone_path, stylish_tone)
    style_line = line_of(stylish_tone, "MARK:style-loop")
    barista_dir = copy_default_bot()
    drink_path = os.path.join(barista_dir, "flows", "drink.lua")
    drink = read_file(drink_path)
    hook = '      if msg.text == "spin forever" then while true do end end -- MARK:barista-loop'
    patched, n = re.subn(r"(\n  choose = \{.*?\n    answer = function\(c, msg\)\n)", lambda m: m.group(1) + hook + "\n",
                         drink, count=1, flags=re.S)
    if n != 1:
        raise AssertionError("the default bot changed: no choose.answer in flows/drink.lua to patch")
    write_file(drink_path, patched)
    barista_loop_line = line_of(patched, "MARK:barista-loop")
    fallbacks = [re.findall(r'"((?:[^"\\]|\\.)*)"', v) for v in
                 re.findall(r'\n\s*fallback = (\{.*?\}|"(?:[^"\\]|\\.)*")', read_file(
                     os.path.join(barista_dir, "scripts", "tone.lua")), flags=re.S)]
    # the cases abort runs on purpose, many in a row: the bots' share of the
    # loop (which would hold them back) is tested in test_hostile.py
    srv = tap.watch(Server([sandbox_dir, neighbour_dir, stylish_dir, barista_dir], env={"PARLEY_ADMIN_TOKEN": TOKEN},
                           args=UNTHROTTLED, name="parley (sandbox)").start())
    fallback = [{"text": echo_fallback("sandbox")}]

    def line(marker):
        return line_of(flow, "MARK:" + marker)

    def log_barrier():
        """Returns once every line parley logged so far has been read: the
        fixture logs a fresh token, and the log is one ordered pipe."""
        token = new_user("barrier")
        srv.say("neighbour", token, "log " + token)
        srv.wait_log(re.escape(token) + "$")

    def echo(bot, user, text, n):
        """Sends text; the bot must echo it as turn n."""
        replies = srv.say(bot, user, text)
        check.assertEqual(replies[-1], {"text": "%d: %s" % (n, text)}, "%s/%s" % (bot, user))
        return replies

    def others_fine(n):
        """Another session of the same bot, another fixture bot and the
        default bot all answer normally; n distinguishes the calls."""
        u = new_user("other")
        echo("sandbox", u, "first %d" % n, 1)
        echo("sandbox", u, "second %d" % n, 2)
        echo("neighbour", new_user("n"), "hello %d" % n, 1)
        check.assertIn("Bea", texts(srv.say("barista", new_user("b"), "hi")))

    def failed_turn(user, text, where_re, reason_re):
        """Sends text, which must fail: fallback reply, ERROR log line with
        file:line, and the session as it was before."""
        before = srv.session("sandbox", user, TOKEN)
        mark = srv.mark()
        replies = srv.say("sandbox", user, text)
        check.assertEqual(replies, fallback, "the shopper gets the tone's fallback template")
        m = srv.wait_log(r"ERROR +\[sandbox\] rest/%s: turn failed: (.*)$" % re.escape(user), mark)
        check.assertRegex(m.group(1), r"^flows/main\.lua:(%s): %s" % (where_re, reason_re))
        check.assertEqual(srv.session("sandbox", user, TOKEN), before, "a failed turn leaves the session as it was")
        return m.group(1)

    def runaway(run):
        u = new_user("loop")
        echo("sandbox", u, "hi", 1)
        failed_turn(u, "loop", line("loop"), r"instruction budget of %d exceeded" % INSTRUCTIONS)
        echo("sandbox", u, "after the loop", 2)
        others_fine(run)

    tap.case("while true do end: aborted, fallback reply, log names file:line, all else goes on", runaway)

    def pcall_loop(run):
        u = new_user("pcall")
        echo("sandbox", u, "hi", 1)
        failed_turn(u, "pcall-loop", "%d|%d" % (line("pcall-inner"), line("pcall-after")),
                    r"instruction budget of %d exceeded" % INSTRUCTIONS)
        check.assertNotIn("swallowed", srv.log_text())
        echo("sandbox", u, "after", 2)
        others_fine(run)

    tap.case("pcall around the runaway loop cannot swallow the abort", pcall_loop)

    def pcall_forever(run):
        u = new_user("pcall-forever")
        failed_turn(u, "pcall-forever", r"\d+", r"instruction budget of %d exceeded" % INSTRUCTIONS)
        echo("sandbox", u, "after", 1)
        others_fine(run)

    tap.case("a loop of pcall(runaway) is aborted too", pcall_forever)

    def wrapped_loops(run):
        failures = []
        for cmd in ("coroutine-loop", "wrap-loop", "xpcall-loop"):
            u = new_user(cmd)
            echo("sandbox", u, "hi", 1)
            mark = srv.mark()
            replies = srv.say("sandbox", u, cmd)
            if replies != fallback:
                failures.append("%s: the turn went on and answered %r" % (cmd, texts(replies)))
            else:
                try:  # the line may still be on its way through the pipe
                    srv.wait_log(r"ERROR +\[sandbox\] rest/%s: turn failed: flows/main\.lua:\d+: instruction budget"
                                 % re.escape(u), mark)
                except AssertionError:
                    failures.append("%s: no ERROR line with file:line" % cmd)
            echo("sandbox", u, "after", 2)
        check.assertEqual(failures, [], "a runaway loop escaped its abort")

    tap.case("coroutine.resume, coroutine.wrap + pcall, xpcall around the loop cannot swallow the abort",
             wrapped_loops)

    def barista_fallback(run):
        check.assertEqual(len(fallbacks), 2, "en and ja fallback templates in scripts/tone.lua: %r" % fallbacks)
        for locale, words in (("en", fallbacks[0]), ("ja", fallbacks[1])):
            u = new_user("bea-" + locale)
            srv.say("barista", u, "hi", locale=locale)
            before = srv.session("barista", u, TOKEN)
            mark = srv.mark()
            replies = srv.say("barista", u, "spin forever")
            check.assertEqual(len(replies), 1, replies)
            check.assertIn(replies[0].get("text"), words, "%s: the tone's %s fallback template" % (locale, locale))
            m = srv.wait_log(r"ERROR +\[barista\] rest/%s: turn failed: (.*)$" % re.escape(u), mark)
            check.assertRegex(m.group(1), r"^flows/drink\.lua:%d: instruction budget" % barista_loop_line)
            check.assertEqual(srv.session("barista", u, TOKEN), before)
            # the question is still open: a drink can be chosen
            replies = srv.say("barista", u, payload="latte")
            check.assertIn("large", [p for _, p in choices(replies)])

    tap.case("the default bot's own fallback, in the shopper's locale (en, ja), after a runaway step",
             barista_fallback)

    def budget_per_turn(run):
        u = new_user("spin")
        for i in range(1, 6):  # each turn uses about half of the budget
            echo("sandbox", u, "spin 150000", i)

    tap.case("the instruction budget is per message: heavy but finite turns in a row all succeed", budget_per_turn)

    def memory(run):
        u = new_user("memory")
        echo("sandbox", u, "hi", 1)
        failed_turn(u, "memory", line("memory"), r"memory budget of %d MB exceeded" % MEMORY_MB)
        echo("sandbox", u, "after", 2)
        others_fine(run)

    tap.case("a string doubling without end: memory budget, fallback, file:line, all else goes on", memory)

    def memory_fill(run):
        u = new_user("fill")
        echo("sandbox", u, "hi", 1)
        mark = srv.mark()
        failed_turn(u, "memory-fill", r"\d+", r"memory budget of %d MB exceeded" % MEMORY_MB)
        log_barrier()
        check.assertEqual(srv.find_log(r"fallback reply failed", mark), [])
        echo("sandbox", u, "after", 2)
        others_fine(run)

    tap.case("memory filled to the brim in small pieces: still the tone's fallback, memory comes back", memory_fill)

    def lua_error(run):
        u = new_user("error")
        failed_turn(u, "error", line("error"), r"deliberate failure")
        echo("sandbox", u, "after", 1)

    tap.case("a Lua error in a step: fallback reply and file:line in the log", lua_error)

    def unstorable(run):
        u = new_user("unstorable")
        echo("sandbox", u, "hi", 1)
        failed_turn(u, "bad-profile", line("bad-profile"), r".*profile 'callback'.*function")
        echo("sandbox", u, "after", 2)

    tap.case("storing a function in the session: fallback, and the error names the key and file:line", unstorable)

    def style_loop(run):
        u = new_user("style")
        check.assertEqual(srv.say("stylish", u, "calm words"), [{"text": "1: calm words"}])
        mark = srv.mark()
        replies = srv.say("stylish", u, "please loop in style")
        check.assertEqual(replies, [{"text": echo_fallback("stylish")}],
                          "the fallback is sent without the (looping) style hook")
        m = srv.wait_log(r"ERROR +\[stylish\] rest/%s: turn failed: (.*)$" % re.escape(u), mark)
        check.assertRegex(m.group(1), r"^scripts/tone\.lua:%d: instruction budget" % style_line)
        check.assertEqual(srv.say("stylish", u, "calm again"), [{"text": "2: calm again"}])

    tap.case("a runaway loop in the tone's style hook: the fallback still goes out", style_loop)

    def allow_list(run):
        replies = srv.say("sandbox", new_user("probe"), "probe-sandbox")
        check.assertEqual(
            replies[0]["text"],
            "forbidden present: [] allowed: [string,table,math,utf8,coroutine,os.time,os.clock,os.date,load text]",
            "something outside the allow list is reachable from a bot script")

    tap.case("the sandbox is an allow list: no io, os.execute (not even via require 'os'), debug, ...", allow_list)

    def concurrent(run):
        """Runaway turns of some shoppers while others chat at the same time."""
        results, errors = {}, []

        def chatter(i):
            u = new_user("chat%d" % i)
            try:
                for n in range(1, 11):
                    r = srv.post("sandbox" if i % 2 else "neighbour", u, "msg %d" % n)
                    results.setdefault(u, []).append((r.status, r.json))
            except Exception as e:  # reported below
                errors.append(repr(e))

        def looper(i):
            u = new_user("looper%d" % i)
            try:
                for _ in range(4):
                    r = srv.post("sandbox", u, "loop" if i % 2 else "memory")
                    results.setdefault(u, []).append((r.status, r.json))
            except Exception as e:
                errors.append(repr(e))

        threads = [threading.Thread(target=chatter, args=(i,)) for i in range(4)]
        threads += [threading.Thread(target=looper, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        check.assertEqual(errors, [])
        for u, got in results.items():
            for n, (status, body) in enumerate(got, 1):
                check.assertEqual(status, 200, (u, body))
                if u.startswith("looper"):
                    check.assertEqual(body["replies"], fallback)
                else:
                    check.assertEqual(body["replies"][-1]["text"], "%d: msg %d" % (n, n))
        check.assertEqual(len(results), 6)

    tap.case("runaway and memory-hungry turns while other shoppers chat concurrently", concurrent)

    def neighbour_log(run):
        log_barrier()
        check.assertEqual(srv.find_log(r"ERROR +\[neighbour\]"), [], "the bot never made to fail logged no error")
        for line in srv.log_since(0):
            if " ERROR " in line:
                check.assertRegex(line, r"ERROR +\[(sandbox|stylish|barista)\] rest/\S+: turn failed: ",
                                  "every error is one failed turn")
        check.assertTrue(srv.alive())
        health = {b["name"]: b["error"] for b in srv.health()["bots"]}
        check.assertEqual(health, {"sandbox": None, "neighbour": None, "stylish": None, "barista": None},
                          "a failed turn is not a broken script")

    tap.case("afterwards: no errors logged for the other bots, health clean, server alive", neighbour_log, runs=1)


if __name__ == "__main__":
    run_suite("e2e: sandbox (budgets, fallback, isolation)", main)
