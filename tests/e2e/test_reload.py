#!/usr/bin/env python3
"""test_reload: hot reload through inotify, on a temporary COPY of the
default bot (the repository's own files are never touched).

Saving a changed script makes the next message run the new code; open
conversations continue at the step of the same name; a broken script keeps
the old version serving while /v1/health and the log show file:line, and
fixing it clears the error; messages sent without pause during several
reloads all get a 200. An echo fixture bot ("bystander") is served next to
it and must not notice any of this. A save that truncates the file and then
writes it reloads once, after the writes settle (PARLEY_RELOAD_SETTLE_MS),
or at once when a message comes first, never logging the empty file."""

import os
import re
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Server, check, choices, copy_default_bot, echo_bot, make_bot, new_user, read_file,  # noqa: E402
                     run_suite, save_atomically, texts, wait_until, write_file)

BOT = "barista"
TOKEN = "reload-admin"
# The first (en) greet templates: a list closed by a line "},"; the
# strings themselves hold {placeholders}.
GREET_RE = r"greet = \{.*?\n\s*\},"


# The "modular" fixture bot: its flow first stands alone, then requires a
# module from lib/, a folder created while the server runs.
MODULAR_V1 = """\
return {
  start = function(c) c:say("info", { text = "word=none" }); return "wait" end,
  wait = { answer = function(c) return "start" end },
}
"""
MODULAR_V2 = """\
local words = require "lib.words"
return {
  start = function(c) c:say("info", { text = "word=" .. words.word }); return "wait" end,
  wait = { answer = function(c) return "start" end },
}
"""
MODULAR_TONE = 'return { templates = { en = { info = "{text}", fallback = "modular fallback" } } }\n'

# The "twoflows" fixture bot: "side" calls its flow side, which then
# answers every message until that flow's file is deleted; "deep" calls mid,
# which calls side, and "finish" there returns to mid (or, when mid.lua is
# gone, to what is left of the stack).
TWOFLOWS_MAIN = """\
return {
  start = function(c)
    if c.msg.text == "side" then return c:call("side") end
    if c.msg.text == "deep" then return c:call("mid", nil, "back") end
    c:say("info", { text = "main: " .. tostring(c.msg.text) })
    return "wait"
  end,
  back = function(c) c:say("info", { text = "main: back" }); return "wait" end,
  wait = { answer = function(c) return "start" end },
}
"""
TWOFLOWS_MID = """\
return {
  start = function(c) return c:call("side", nil, "after") end,
  after = function(c) c:say("info", { text = "mid: after" }); return c:done() end,
}
"""
TWOFLOWS_SIDE = """\
return {
  start = function(c) c:say("info", { text = "side: started" }); return "wait" end,
  wait = { answer = function(c)
    if c.msg.text == "finish" then return c:done() end
    c:say("info", { text = "side: " .. tostring(c.msg.text) })
    return "wait"
  end },
}
"""


def settle_flow(version):
    """The "settle" fixture bot's flow: it says its version."""
    return ('return {\n  start = function(c) c:say("info", { text = "version=%d" }); return "wait" end,\n'
            '  wait = { answer = function(c) return "start" end },\n}\n' % version)


def replace_once(text, pattern, repl, what):
    """re.sub of the first match; fails clearly when the bot's files no
    longer have what the test edits."""
    new, n = re.subn(pattern, repl, text, count=1, flags=re.S)
    if n != 1:
        raise AssertionError("the default bot changed: cannot find %s (%r) to edit" % (what, pattern))
    return new


def insert_line_before(text, pattern, line):
    """Inserts line before the first line matching pattern; returns the new
    text and the number of the inserted line."""
    lines = text.split("\n")
    for i, existing in enumerate(lines):
        if re.match(pattern, existing):
            return "\n".join(lines[:i] + [line] + lines[i:]), i + 1
    raise AssertionError("the default bot changed: no line matching %r" % pattern)


def main(tap):
    bot = copy_default_bot()
    bystander_dir, _ = echo_bot("bystander")
    shifty_dir, shifty_flow = echo_bot("shifty")
    modular_dir = make_bot("modular", {"flows/main.lua": MODULAR_V1, "scripts/tone.lua": MODULAR_TONE})
    twoflows_dir = make_bot("twoflows", {"flows/main.lua": TWOFLOWS_MAIN, "flows/mid.lua": TWOFLOWS_MID,
                                         "flows/side.lua": TWOFLOWS_SIDE, "scripts/tone.lua": MODULAR_TONE})
    srv = tap.watch(Server([bot, bystander_dir, shifty_dir, modular_dir, twoflows_dir], env={"PARLEY_ADMIN_TOKEN": TOKEN},
                           name="parley (reload)").start())
    originals = {rel: read_file(os.path.join(bot, rel)) for rel in
                 ("scripts/tone.lua", "scripts/router.lua", "scripts/rules.lua", "flows/drink.lua", "flows/main.lua",
                  "catalog.json")}
    bystander_turns = {}

    def bystander_fine():
        u = "steady-%d" % os.getpid()
        n = bystander_turns[u] = bystander_turns.get(u, 0) + 1
        check.assertEqual(srv.say("bystander", u, "still here"), [{"text": "%d: still here" % n}])

    def save(rel, text, atomically=False):
        (save_atomically if atomically else write_file)(os.path.join(bot, rel), text)

    def reloaded_after(mark, rel):
        return srv.wait_log(r"INFO +\[barista\] reloaded in [\d.]+ ms after a change to %s$" % re.escape(rel), mark)

    def restore(rel):
        """Puts the original file back and waits until it is serving."""
        mark = srv.mark()
        save(rel, originals[rel])
        reloaded_after(mark, rel)
        check.assertIsNone(srv.bot_health(BOT)["error"])

    def greeting(user):
        return texts(srv.say(BOT, user, "hi"))

    # --- a change runs on the next message -----------------------------------------

    def next_message(run):
        loaded_before = srv.bot_health(BOT)["loaded_at"]
        mark = srv.mark()
        changed = replace_once(originals["scripts/tone.lua"], GREET_RE,
                               'greet = "Howdy v%d! {persona.name} here, fresh from the reload.",' % run,
                               "the en greet templates")
        try:
            save("scripts/tone.lua", changed)
            # no waiting: the very next message runs the new code
            check.assertIn("Howdy v%d! Bea here" % run, greeting(new_user("next")))
            reloaded_after(mark, "scripts/tone.lua")
            h = srv.bot_health(BOT)
            check.assertIsNone(h["error"])
            check.assertGreaterEqual(h["loaded_at"], loaded_before)
        finally:
            restore("scripts/tone.lua")
        check.assertNotIn("Howdy", greeting(new_user("next")), "the restored file serves again")
        bystander_fine()

    tap.case("a saved change to a script runs on the very next message; the log says 'reloaded'", next_message)

    def atomic_save(run):
        mark = srv.mark()
        changed = replace_once(originals["scripts/tone.lua"], GREET_RE,
                               'greet = "Renamed-into-place greeting %d from {persona.name}",' % run, "the en greet templates")
        try:
            save("scripts/tone.lua", changed, atomically=True)
            check.assertIn("Renamed-into-place greeting %d from Bea" % run, greeting(new_user("atomic")))
            reloaded_after(mark, "scripts/tone.lua")
        finally:
            mark = srv.mark()
            save("scripts/tone.lua", originals["scripts/tone.lua"], atomically=True)
            reloaded_after(mark, "scripts/tone.lua")
        check.assertNotIn("Renamed-into-place", greeting(new_user("atomic")))

    tap.case("a save by rename (write a temp file, rename it over the script) reloads too", atomic_save)

    def catalog_change(run):
        changed = replace_once(originals["catalog.json"], r'("sku": "latte".*?"price": )380', r"\g<1>4%02d" % run,
                               "the latte's price")
        try:
            save("catalog.json", changed)
            offered = [t for t, _ in choices(srv.say(BOT, new_user("price"), "hi"))]
            check.assertIn("Latte · €4.%02d" % run, offered)
        finally:
            restore("catalog.json")
        check.assertIn("Latte · €3.80", [t for t, _ in choices(srv.say(BOT, new_user("price"), "hi"))])

    tap.case("a change to catalog.json shows in the next message", catalog_change)

    def open_conversation(run):
        u = new_user("open")
        srv.say(BOT, u, "hi")
        srv.say(BOT, u, payload="latte")
        before = srv.session(BOT, u, TOKEN)
        check.assertEqual((before["stack"][-1]["flow"], before["stack"][-1]["step"]), ("drink", "size"))
        changed = replace_once(originals["flows/drink.lua"], r"(\n(\s*)c\.slots\.last = p\.sku)",
                               r'\n\2c:say_text("the add step of version %d ran")\1' % run, "drink's add step")
        try:
            mark = srv.mark()
            save("flows/drink.lua", changed)
            reloaded_after(mark, "flows/drink.lua")
            replies = srv.say(BOT, u, payload="large")
            t = texts(replies)
            check.assertIn("Large Latte", t, "the conversation went on at drink.size")
            check.assertIn("the add step of version %d ran" % run, t, "with the new code")
            check.assertNotIn("Bea", t, "not started over")
            after = srv.session(BOT, u, TOKEN)
            check.assertEqual(after["cart"]["lines"][0]["sku"], "latte")
            check.assertEqual(after["stack"][-1]["step"], "offer_pairing")
        finally:
            restore("flows/drink.lua")
        replies = srv.say(BOT, u, payload="no")
        check.assertIn("That's 1 item(s) so far, €4.70", texts(replies))

    tap.case("an open conversation continues at the step of the same name, running the new code", open_conversation)

    def step_gone(run):
        u = new_user("gone")
        check.assertEqual(srv.say("shifty", u, "one"), [{"text": "1: one"}])  # now waiting at main.wait
        flow_path = os.path.join(shifty_dir, "flows", "main.lua")
        renamed = replace_once(shifty_flow, r'return "wait"', 'return "waiting"', "the return of start")
        renamed = replace_once(renamed, r"\n  wait = \{", "\n  waiting = {", "the wait step")
        mark = srv.mark()
        try:
            write_file(flow_path, renamed)
            srv.wait_log(r"INFO +\[shifty\] reloaded in [\d.]+ ms after a change to flows/main\.lua", mark)
            # its step is gone: the flow restarts at 'start', which echoes
            check.assertEqual(srv.say("shifty", u, "two"), [{"text": "2: two"}])
            srv.wait_log(r"WARN +\[shifty\] .*flow 'main' has no step 'wait' any more; it restarts at 'start'", mark)
            check.assertEqual(srv.say("shifty", u, "three"), [{"text": "3: three"}])
        finally:
            mark = srv.mark()
            write_file(flow_path, shifty_flow)
            srv.wait_log(r"INFO +\[shifty\] reloaded", mark)
        check.assertEqual(srv.say("shifty", u, "four"), [{"text": "4: four"}])
        check.assertEqual(srv.find_log(r"ERROR +\[shifty\]"), [])

    tap.case("a conversation whose step was renamed away restarts its flow at 'start' (WARN in the log)", step_gone)

    def flow_gone(run):
        u = new_user("flowgone")
        side = os.path.join(twoflows_dir, "flows", "side.lua")
        check.assertEqual(texts(srv.say("twoflows", u, "side")), "side: started")
        check.assertEqual(texts(srv.say("twoflows", u, "more")), "side: more")  # waiting in side.wait
        mark = srv.mark()
        try:
            os.remove(side)
            srv.wait_log(r"INFO +\[twoflows\] reloaded in [\d.]+ ms after a change to flows/side\.lua", mark)
            # its flow is gone: the conversation starts over in main
            check.assertEqual(texts(srv.say("twoflows", u, "after")), "main: after")
            srv.wait_log(r"WARN +\[twoflows\] .*flow 'side' no longer exists; its conversation starts over", mark)
            check.assertEqual(texts(srv.say("twoflows", u, "again")), "main: again")
        finally:
            mark = srv.mark()
            write_file(side, TWOFLOWS_SIDE)
            srv.wait_log(r"INFO +\[twoflows\] reloaded", mark)
        check.assertEqual(texts(srv.say("twoflows", u, "side")), "side: started")
        check.assertEqual(srv.find_log(r"ERROR +\[twoflows\]"), [])

    tap.case("a conversation whose flow was deleted starts over in the bot's first flow (WARN in the log)", flow_gone)

    def caller_gone(run):
        u = new_user("callergone")
        mid = os.path.join(twoflows_dir, "flows", "mid.lua")
        check.assertEqual(texts(srv.say("twoflows", u, "deep")), "side: started")  # main -> mid -> side
        mark = srv.mark()
        try:
            os.remove(mid)
            srv.wait_log(r"INFO +\[twoflows\] reloaded in [\d.]+ ms after a change to flows/mid\.lua", mark)
            check.assertEqual(texts(srv.say("twoflows", u, "more")), "side: more", "side itself is still there")
            # side is done: the flow that called it is gone, so main goes on
            check.assertEqual(texts(srv.say("twoflows", u, "finish")), "main: finish")
            srv.wait_log(r"WARN +\[twoflows\] .*flow 'mid' no longer exists; its conversation starts over", mark)
        finally:
            mark = srv.mark()
            write_file(mid, TWOFLOWS_MID)
            srv.wait_log(r"INFO +\[twoflows\] reloaded", mark)
        check.assertEqual(texts(srv.say("twoflows", u, "deep")), "side: started")
        check.assertEqual(texts(srv.say("twoflows", u, "finish")), "mid: after\nmain: back")
        check.assertEqual(srv.find_log(r"ERROR +\[twoflows\]"), [])

    tap.case("a flow finished whose caller was deleted returns to what is left of the stack (WARN in the log)",
             caller_gone)

    def lib_module(run):
        lib = os.path.join(modular_dir, "lib")
        words = os.path.join(lib, "words.lua")
        flow_path = os.path.join(modular_dir, "flows", "main.lua")
        u = new_user("mod")

        def word():
            return texts(srv.say("modular", u, "hi"))

        def reloaded(mark, rel):
            return srv.wait_log(r"INFO +\[modular\] reloaded in [\d.]+ ms after a change to %s$" % re.escape(rel), mark)

        check.assertEqual(word(), "word=none")
        try:
            mark = srv.mark()
            os.mkdir(lib)
            reloaded(mark, "lib")  # the new folder is watched from now on
            mark = srv.mark()
            write_file(words, 'return { word = "alpha%d" }\n' % run)
            reloaded(mark, "lib/words.lua")
            write_file(flow_path, MODULAR_V2)
            check.assertEqual(word(), "word=alpha%d" % run)
            write_file(words, 'return { word = "beta%d" }\n' % run)
            check.assertEqual(word(), "word=beta%d" % run, "a save in lib/ is reloaded like any script")
            mark = srv.mark()
            write_file(words, 'return { word = \n')
            srv.wait_log(r"ERROR +\[modular\] reload failed", mark)
            error = srv.bot_health("modular")["error"] or ""
            check.assertRegex(error, r"lib/words\.lua:\d+: ", "the error names the module's file:line")
            check.assertEqual(word(), "word=beta%d" % run, "the old version serves")
            mark = srv.mark()
            write_file(words, 'return { word = "gamma%d" }\n' % run)
            reloaded(mark, "lib/words.lua")
            check.assertIsNone(srv.bot_health("modular")["error"])
            check.assertEqual(word(), "word=gamma%d" % run)
        finally:
            mark = srv.mark()
            write_file(flow_path, MODULAR_V1)
            reloaded(mark, "flows/main.lua")
            if os.path.exists(words):
                mark = srv.mark()
                os.remove(words)
                reloaded(mark, "lib/words.lua")
            if os.path.isdir(lib):
                os.rmdir(lib)
        check.assertEqual(word(), "word=none")

    tap.case("lib/ created while serving: a module required from it reloads on save, its errors name it",
             lib_module)

    # --- broken scripts ----------------------------------------------------------------

    def broken_variants():
        """(file, broken text, regex of the error after 'file:')."""
        drink = originals["flows/drink.lua"]
        syntax, at = insert_line_before(drink, r"^return \{", "this is not lua")
        yield "flows/drink.lua", syntax, r"%d: .*syntax error" % at

        main_flow = originals["flows/main.lua"]
        runtime, at = insert_line_before(main_flow, r"^return \{", 'error("broken on purpose")')
        yield "flows/main.lua", runtime, r"%d: broken on purpose" % at

        shape = replace_once(drink, r"\n(\s*)choose = \{", r"\n\1choose = {\n\1  asks = function(c) end,",
                             "drink's choose step")
        at = shape.split("\n").index(next(line for line in shape.split("\n") if re.match(r"\s*choose = \{", line))) + 1
        yield "flows/drink.lua", shape, r"%d: step 'choose' has an unknown field 'asks'" % at

        router = replace_once(originals["scripts/router.lua"], r"(\n\s*help = \{.*?run = )function",
                              r'\1"not a function", _old = function', "the help intent's run")
        at = next(i for i, line in enumerate(router.split("\n"), 1) if re.match(r"\s*help = \{", line))
        yield "scripts/router.lua", router, r"%d: intent 'help'" % at

    def broken(run):
        failures = []
        for rel, text, error_re in broken_variants():
            try:
                broken_case(rel, text, error_re, run)
            except AssertionError as e:
                failures.append("%s: %s" % (rel, e))
        check.assertEqual(failures, [])

    def broken_case(rel, text, error_re, run):
        u = new_user("during")
        srv.say(BOT, u, "hi")
        loaded_at = srv.bot_health(BOT)["loaded_at"]
        mark = srv.mark()
        try:
            save(rel, text)
            m = srv.wait_log(r"ERROR +\[barista\] (%s:.*)$" % re.escape(rel), mark)
            srv.wait_log(r"ERROR +\[barista\] reload failed; the previous version keeps serving", mark)
            check.assertRegex(m.group(1), "^%s:%s" % (re.escape(rel), error_re), "the log names file:line")
            error = srv.bot_health(BOT)["error"]
            check.assertIsNotNone(error, "health shows the error")
            check.assertRegex(error, "^%s:%s" % (re.escape(rel), error_re), "health names file:line")
            check.assertEqual(srv.bot_health(BOT)["loaded_at"], loaded_at, "loaded_at is the serving version's")
            # the old version keeps serving, old and new conversations alike
            replies = srv.say(BOT, u, payload="espresso")
            check.assertIn("Espresso", texts(replies))
            check.assertIn("double", [p for _, p in choices(replies)])
            check.assertIn("Bea", greeting(new_user("new")))
            check.assertIn("I can take your coffee order", texts(srv.say(BOT, new_user("h"), "help")))
            check.assertIsNone(srv.bot_health("bystander")["error"])
            bystander_fine()
        finally:
            restore(rel)  # fixing it clears the error
        check.assertIsNone(srv.bot_health(BOT)["error"])
        check.assertIn("Double Espresso", texts(srv.say(BOT, u, payload="double")))

    tap.case("a broken script (syntax, load-time error, bad step, bad intent): "
             "old version serves, health and log show file:line, fixing clears it", broken)

    def script_shape_errors(run):
        failures = []
        no_fallback = replace_once(originals["scripts/tone.lua"], r"\n\s*fallback = \{.*?\n\s*\},", "",
                                   "the en fallback templates")
        bad_limit = replace_once(read_file(os.path.join(bot, "scripts/rules.lua")), r"limit = \d+", "limit = 0",
                                 "the rules' limit")
        for rel, text, error_re in (("scripts/tone.lua", no_fallback, r"\d+: .*fallback"),
                                    ("scripts/rules.lua", bad_limit, r"\d+: .*limit")):
            try:
                broken_case(rel, text, error_re, run)
            except AssertionError as e:
                failures.append("%s: %s" % (rel, e))
        check.assertEqual(failures, [])

    tap.case("shape errors of scripts/tone.lua (no fallback template) and scripts/rules.lua (limit = 0) "
             "are reported as file:line like every load error", script_shape_errors)

    def new_and_deleted_file(run):
        path = os.path.join(bot, "flows", "extra.lua")
        mark = srv.mark()
        write_file(path, "return {\n  start = function(c)\n    return c:done()\n  end,\n  oops = 42,\n}\n")
        m = srv.wait_log(r"ERROR +\[barista\] (flows/extra\.lua:\d+: .*)$", mark)
        check.assertRegex(m.group(1), r"^flows/extra\.lua:5: step 'oops'")
        check.assertRegex(srv.bot_health(BOT)["error"], r"^flows/extra\.lua:5: ")
        mark = srv.mark()
        os.remove(path)
        reloaded_after(mark, "flows/extra.lua")
        check.assertIsNone(srv.bot_health(BOT)["error"], "deleting the broken file clears the error")
        check.assertIn("Bea", greeting(new_user("deleted")))

    tap.case("a new broken flow file is reported; deleting it clears the error", new_and_deleted_file)

    # --- messages during reloads ---------------------------------------------------------

    def during_reloads(run):
        tone = originals["scripts/tone.lua"]
        help_re = r'(\n\s*help = )"(?:[^"\\\n]|\\.)*"'
        version_of = re.compile(r"HELP v(\d+)\b")
        stop = threading.Event()
        seen, problems = {}, []

        def shopper(i):
            u = new_user("steady%d" % i)
            bot_name = BOT if i < 4 else "bystander"
            try:
                while not stop.is_set():
                    r = srv.post(bot_name, u, "help")
                    if r.status != 200:
                        problems.append((u, r))
                        continue
                    t = texts(r.json["replies"])
                    if bot_name == "bystander":
                        seen.setdefault(u, []).append(t)
                        continue
                    m = version_of.search(t)
                    if not m and "I can take your coffee order" not in t:
                        problems.append((u, t))
                    seen.setdefault(u, []).append(int(m.group(1)) if m else 0)
            except Exception as e:
                problems.append((u, repr(e)))

        threads = [threading.Thread(target=shopper, args=(i,)) for i in range(5)]
        for t in threads:
            t.start()
        try:
            for v in range(1, 7):
                wait_until(lambda: sum(map(len, seen.values())) >= 10 * v, timeout=10, what="messages flowing")
                mark = srv.mark()
                save("scripts/tone.lua", replace_once(tone, help_re, r'\1"HELP v%d: ask me anything."' % v, "help"))
                reloaded_after(mark, "scripts/tone.lua")
                if v == 3:  # a broken save in between: the old version goes on
                    mark = srv.mark()
                    save("scripts/tone.lua", "return { templates = \n")
                    srv.wait_log(r"ERROR +\[barista\] reload failed", mark)
                    mark = srv.mark()
                    save("scripts/tone.lua", replace_once(tone, help_re, r'\1"HELP v%d: ask me anything."' % v, "help"))
                    reloaded_after(mark, "scripts/tone.lua")
            count = sum(map(len, seen.values()))
            wait_until(lambda: sum(map(len, seen.values())) >= count + 10, timeout=10, what="messages after the last reload")
        finally:
            stop.set()
            for t in threads:
                t.join(15)
            restore("scripts/tone.lua")
        check.assertEqual(problems, [], "every message during the reloads got a 200 with the expected words")
        for u, versions in seen.items():
            if u.startswith("steady4"):
                check.assertEqual(versions, ["%d: help" % n for n in range(1, len(versions) + 1)])
                continue
            check.assertEqual(versions, sorted(versions), "%s saw versions go backwards" % u)
            check.assertEqual(versions[-1], 6, "%s ends on the last version" % u)
        check.assertGreater(len(set(v for vs in seen.values() for v in vs if isinstance(v, int))), 3)

    tap.case("messages sent without pause during six reloads (and a broken save) all get 200", during_reloads)

    # --- other servers ---------------------------------------------------------------------

    def broken_at_start(run):
        other = copy_default_bot()
        drink = os.path.join(other, "flows", "drink.lua")
        write_file(drink, originals["flows/drink.lua"] + "\nthis is not lua\n")
        with Server([other], name="parley (broken at start)") as s:
            h = s.bot_health(BOT)
            check.assertRegex(h["error"] or "", r"^flows/drink\.lua:\d+: ")
            r = s.post(BOT, new_user("early"), "hi")
            check.assertEqual(r.status, 200, r)
            check.assertNotIn("Bea", texts(r.json["replies"]), "no flow runs while the scripts never loaded")
            mark = s.mark()
            write_file(drink, originals["flows/drink.lua"])
            s.wait_log(r"INFO +\[barista\] reloaded in [\d.]+ ms after a change to flows/drink\.lua", mark)
            check.assertIsNone(s.bot_health(BOT)["error"])
            check.assertIsNotNone(s.bot_health(BOT)["loaded_at"])
            check.assertIn("Bea", texts(s.say(BOT, new_user("later"), "hi")))

    tap.case("a bot broken at start serves the moment its script is fixed", broken_at_start)

    def no_watch(run):
        other = copy_default_bot()
        with Server([other], args=["--no-watch"], name="parley (--no-watch)") as s:
            tone_path = os.path.join(other, "scripts", "tone.lua")
            write_file(tone_path, replace_once(originals["scripts/tone.lua"], GREET_RE,
                                               'greet = "Unwatched greeting",', "greet"))
            check.assertNotIn("Unwatched", texts(s.say(BOT, new_user("nw"), "hi")))
            check.assertEqual(s.find_log(r"reload"), [])

    tap.case("--no-watch: a saved change is not loaded", no_watch, runs=1)

    # --- a save in two writes: truncate, then write -----------------------------------------

    def settle_server(settle_ms, version, env=None, args=()):
        """A server of the "settle" fixture bot that waits settle_ms of quiet
        after a change before it reloads."""
        folder = make_bot("settle", {"flows/main.lua": settle_flow(version), "scripts/tone.lua": MODULAR_TONE})
        s = Server([folder], env=dict({"PARLEY_RELOAD_SETTLE_MS": str(settle_ms)}, **(env or {})), args=args,
                   name="parley (settle %d ms)" % settle_ms)
        return folder, s

    def truncate_then_write(path, text):
        """An editor's save in two steps: the file is emptied and closed,
        then opened again and written (two IN_CLOSE_WRITE events)."""
        with open(path, "w", encoding="utf-8"):
            pass
        with open(path, "a", encoding="utf-8") as f:
            f.write(text)

    def reload_lines(s, mark):
        return s.find_log(r"\[settle\] reload", mark)

    def truncated_then_message(run):
        # a settle time no test lasts: only the message can start the reload
        folder, s = settle_server(600000, 1)
        with s:
            u = new_user("settle")
            check.assertEqual(texts(s.say("settle", u, "hi")), "version=1")
            mark = s.mark()
            truncate_then_write(os.path.join(folder, "flows", "main.lua"), settle_flow(2))
            check.assertEqual(texts(s.say("settle", u, "hi")), "version=2", "the next message runs the new code")
            lines = reload_lines(s, mark)
            check.assertEqual(len(lines), 1, "one reload: %r" % [m.string for m in lines])
            check.assertRegex(lines[0].string, r"INFO +\[settle\] reloaded in [\d.]+ ms after a change to flows/main\.lua$")
            check.assertEqual(s.find_log(r"ERROR|WARN|steps", mark), [], "nothing about the empty file")
            check.assertIsNone(s.bot_health("settle")["error"])

    tap.case("truncate then write, then a message: one reload at the message, no error about the empty file",
             truncated_then_message)

    def message_between_truncate_and_write(run):
        # The message comes after the truncate and before the write: it waits for the write
        # (here up to 3 s, PARLEY_RELOAD_WAIT_MS; 20 ms by default, an editor's two writes being
        # a millisecond apart) and runs the finished file, never loading the empty one. The
        # file is written only once parley says the message waits.
        folder, s = settle_server(600000, 1, env={"PARLEY_RELOAD_WAIT_MS": "3000"}, args=["--log-level", "debug"])
        with s:
            u = new_user("between")
            check.assertEqual(texts(s.say("settle", u, "hi")), "version=1")
            path = os.path.join(folder, "flows", "main.lua")
            mark = s.mark()
            with open(path, "w", encoding="utf-8"):
                pass
            answer = {}
            sender = threading.Thread(target=lambda: answer.update(replies=s.say("settle", u, "hi")))
            sender.start()
            s.wait_log(r"DEBUG .*a message waits up to 3000 ms for a change to flows/main\.lua", mark)
            with open(path, "a", encoding="utf-8") as f:
                f.write(settle_flow(2))
            sender.join(30)
            check.assertEqual(texts(answer.get("replies", [])), "version=2", "the message ran the finished file")
            lines = reload_lines(s, mark)
            check.assertEqual(len(lines), 1, "one reload: %r" % [m.string for m in lines])
            check.assertEqual(s.find_log(r"ERROR|WARN|steps", mark), [], "nothing about the empty file")
            check.assertIsNone(s.bot_health("settle")["error"])

    tap.case("a message between an editor's truncate and its write waits for the write: one reload, no error",
             message_between_truncate_and_write, runs=1)

    def truncated_then_quiet(run):
        # the two writes take far less than a second; the reload comes a
        # second after the last of them, with no message to start it
        folder, s = settle_server(1000, 1)
        with s:
            mark = s.mark()
            truncate_then_write(os.path.join(folder, "flows", "main.lua"), settle_flow(3))
            s.wait_log(r"INFO +\[settle\] reloaded in [\d.]+ ms after a change to flows/main\.lua$", mark, timeout=30)
            check.assertEqual(len(reload_lines(s, mark)), 1)
            check.assertEqual(s.find_log(r"ERROR|WARN|steps", mark), [], "nothing about the empty file")
            check.assertEqual(texts(s.say("settle", new_user("quiet"), "hi")), "version=3")

    tap.case("truncate then write with no message: one reload once the folder is quiet, no error",
             truncated_then_quiet)

    def log_summary(run):
        errors = [line for line in srv.log_since(0) if " ERROR " in line]
        check.assertTrue(errors, "the broken saves were logged")
        for line in errors:
            check.assertRegex(line, r"ERROR +\[(barista|modular)\] ", "only the bots given broken scripts reported errors")
        check.assertEqual(srv.find_log(r"turn failed"), [], "no message failed because of a reload")
        check.assertTrue(srv.alive())

    tap.case("the log: errors only from the bots given broken scripts, no turn ever failed", log_summary, runs=1)


if __name__ == "__main__":
    run_suite("e2e: hot reload", main)
