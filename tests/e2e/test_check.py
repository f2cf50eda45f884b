#!/usr/bin/env python3
"""test_check: `parley check`'s static checks (docs/authoring.md).

The fixture tests/check/mistakes/ loads, but holds one mistake of each kind
the static checks find: each must be reported with its exact message at
the line marked "MISTAKE" in the file, and nothing else; tests/check/quiet/
holds what must not be reported. Hostile bots (huge files, symlinks round,
thousands of phrases) are made in a temporary folder. The bots that are
meant to be right (the default bot, examples/*, tests/bots/* but the engine
fixture, whose mistakes are deliberate) must pass with no error; the engine
fixture's two deliberate template mistakes and its sandbox probes are found. A load error still
comes first, as before (the static checks need a bot that loads)."""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ROOT, check, make_bot, read_file, run_suite  # noqa: E402

MISTAKES = os.path.join(ROOT, "tests", "check", "mistakes")


def parley_check(folder, env=None):
    p = subprocess.run([os.path.join(ROOT, "parley"), "check", folder], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30, env=env)
    return p.returncode, p.stdout.decode("utf-8")


def small_bot(name, files, manifest=None):
    """A bot that checks clean, with files added or replaced."""
    base = {
        "flows/main.lua": "return {\n  start = function(c)\n    c:say 'hello'\n    return 'start'\n  end,\n}\n",
        "scripts/tone.lua": "return { templates = { en = { hello = 'hi', fallback = '?' } } }\n",
    }
    base.update(files)
    return make_bot(name, base, manifest)


def marked(rel, marker):
    """'rel:N' for the line of rel (in the fixture) holding marker."""
    for n, line in enumerate(read_file(os.path.join(MISTAKES, rel)).splitlines(), 1):
        if marker in line:
            return "%s:%d" % (rel, n)
    raise ValueError("%r not in %s" % (marker, rel))


EXPECTED_ERRORS = [
    ("flows/main.lua", "{size} not given",
     "c:say: template 'added' (en, es) needs {size}, but this call does not give it"),
    ("flows/main.lua", "no flow 'ordr'", "c:call: no flow 'ordr' (flows/ordr.lua) (did you mean 'order'?)"),
    ("flows/main.lua", "no step 'wrapup'",
     "c:call: flow 'main' has no step 'wrapup' to continue at (did you mean 'wrap_up'?)"),
    ("flows/main.lua", "no template 'thanks_a_lot'", "c:t: no template 'thanks_a_lot' in scripts/tone.lua"),
    ("flows/main.lua", "no step 'sumary'",
     "returned 'sumary', but flow 'main' has no step 'sumary' (did you mean 'summary'?)"),
    ("flows/main.lua", "no 'en' text", "c:say: template 'farewell' has no text in the default locale 'en'"),
    ("flows/more.lua", "no step 'finish'", "returned 'finish', but flow 'more' has no step 'finish'"),
    ("flows/more.lua", "no template 'helpp'", "c:say: no template 'helpp' in scripts/tone.lua (did you mean 'help'?)"),
    ("flows/more.lua", "split across lines",
     "c:say: no template 'welcom' in scripts/tone.lua (did you mean 'welcome'?)"),
    ("flows/more.lua", "{persona} not given",
     "c:say: template 'welcome' (en, es) needs {persona}, but this call does not give it"),
    ("flows/more.lua", "no module 'socket'", "require: no module 'socket' in the sandbox: neither one of the "
     "runtime's nor socket.lua in the bot folder"),
    ("flows/more.lua", "'io' is not in the sandbox",
     "'io' is not in the sandbox (docs/sandbox.md): a turn that reaches this line fails"),
    ("flows/more.lua", "'os.getenv' is not in the sandbox",
     "'os.getenv' is not in the sandbox (docs/sandbox.md): a turn that reaches this line fails"),
    ("flows/order.lua", "no size 'xl'", "cart:add: product 'tee' has no size 'xl' (did you mean 'l'?)"),
    ("flows/order.lua", "no option 'color'", "cart:add: product 'cap' has no option 'color' (did you mean 'colour'?)"),
    ("flows/order.lua", "no colour 'green'", "no product of the catalog has colour 'green'"),
    ("flows/order.lua", "no option 'sizes'", "no product of the catalog has option 'sizes' (did you mean 'size'?)"),
    ("lib/prices.lua", "a syntax error", "expected expression near '=' (a step that requires this module fails)"),
]

EXPECTED_WARNINGS = [
    ("flows/main.lua", "no 'es' text", "c:say: template 'goodbye' has no 'es' text (the 'en' text is used)"),
    ("scripts/router.lua", "only punctuation",
     "phrase '¿?' of intent 'help' never matches: it has no letters or digits (punctuation is not matched)"),
    ("scripts/router.lua", "'help' comes first",
     "phrase 'i need help' of intent 'human' never matches: 'help' of intent 'help' is tried first and is in it"),
]


def body(tap):
    def each_mistake(run):
        rc, out = parley_check(MISTAKES)
        check.assertEqual(rc, 1, out)
        want = ["%s: %s" % (marked(rel, marker), message) for rel, marker, message in EXPECTED_ERRORS]
        want += ["warning: scripts/tone.lua: locale 'es' has no goodbye (the en text is used)"]
        want += ["warning: %s: %s" % (marked(rel, marker), message) for rel, marker, message in EXPECTED_WARNINGS]
        want += ["mistakes: %d errors" % len(EXPECTED_ERRORS)]
        check.assertEqual(out.splitlines(), want)

    tap.case("each kind of mistake is reported at its line with its exact message, and nothing else", each_mistake)

    def valid_bots(run):
        folders = [ROOT] + sorted(os.path.join(ROOT, "examples", d) for d in os.listdir(os.path.join(ROOT, "examples")))
        bots = os.path.join(ROOT, "tests", "bots")
        folders += sorted(os.path.join(bots, d) for d in os.listdir(bots) if d != "engine")
        for folder in folders:
            rc, out = parley_check(folder)
            check.assertEqual(rc, 0, "%s: %s" % (folder, out))
            check.assertRegex(out, r": every script loads\n$", folder)
            check.assertNotIn("warning: flows/", out, folder)
            check.assertNotIn("warning: scripts/router.lua", out, folder)

    tap.case("the default bot, the examples and the valid test bots pass with no false positives", valid_bots, runs=1)

    def quiet(run):
        rc, out = parley_check(os.path.join(ROOT, "tests", "check", "quiet"))
        check.assertEqual((rc, out), (0, "quiet: every script loads\n"))

    tap.case("client:call and log:t are not the conversation's, and files the loader does not read are not checked",
             quiet, runs=1)

    def engine_fixture(run):
        rc, out = parley_check(os.path.join(ROOT, "tests", "bots", "engine"))
        check.assertEqual(rc, 1, out)
        errors = [line for line in out.splitlines() if not line.startswith("warning: ")]
        main = read_file(os.path.join(ROOT, "tests", "bots", "engine", "flows", "main.lua")).splitlines()
        missing_var = next(n for n, line in enumerate(main, 1) if "actions.missing_var" in line)
        unknown = next(n for n, line in enumerate(main, 1) if "actions.unknown_template" in line)

        def line_in(lines, marker):
            return next(n for n, line in enumerate(lines, 1) if marker in line)
        check.assertEqual(errors, [
            "flows/main.lua:%d: c:say: template 'hello_name' (en, de) needs {name}, but this call does not give it"
            % missing_var,
            "flows/main.lua:%d: c:say: no template 'no_such_template' in scripts/tone.lua" % unknown,
            "flows/main.lua:%d: 'os.execute' is not in the sandbox (docs/sandbox.md): a turn that reaches this line "
            "fails" % line_in(main, "os.execute="),
            "flows/main.lua:%d: 'string.dump' is not in the sandbox (docs/sandbox.md): a turn that reaches this line "
            "fails" % line_in(main, "string.dump="),
            "flows/main.lua:%d: load: the sandbox compiles text only, never a binary chunk (mode 't')"
            % line_in(main, '"binary="'),
            "engine: 5 errors",
        ])

    tap.case("the engine fixture's deliberate template mistakes and sandbox probes are found", engine_fixture, runs=1)

    def load_errors_first(run):
        broken = make_bot("broken", {
            "flows/main.lua": "return {\n  start = function(c)\n    return 'nowhere'\n  end,\n  oops = 42,\n}\n",
            "scripts/tone.lua": "return { templates = { en = { fallback = 'x' } } }\n",
        })
        rc, out = parley_check(broken)
        check.assertEqual(rc, 1, out)
        check.assertIn("flows/main.lua:5: step 'oops' must be a function(c, msg) or a table {ask =, answer =}", out)
        check.assertNotIn("nowhere", out, "the static checks wait for a bot that loads")
        check.assertTrue(out.endswith("broken: 1 error\n"), out)

    tap.case("a load error is reported as before, and the static checks wait for a bot that loads",
             load_errors_first, runs=1)

    # --- hostile scripts: the checks' own budgets (each of these took the
    # old check from 20 s to minutes; the 30 s timeout of parley_check fails
    # them if a bound goes) ---

    def too_large(run):
        bot = small_bot("huge", {"lib/huge.lua": "local M = {}\nM.x = '%s'\nreturn M\n" % ("y" * (2 << 20))})
        rc, out = parley_check(bot)
        check.assertEqual(rc, 1, out)
        check.assertEqual(out.splitlines(), [
            "lib/huge.lua:1: the file is 2048 KB; a script file may have at most 1024 KB", "huge: 1 error"])

    tap.case("a lib/ file over the loader's size limit is an error at the file, not parsed", too_large, runs=1)

    def symlinked_folders(run):
        bot = small_bot("links", {"lib/util.lua": "return { hi = function(c) return c:t 'hello' end }\n"})
        for name in "abcdef":
            os.symlink("..", os.path.join(bot, "lib", name))
        rc, out = parley_check(bot)
        check.assertEqual((rc, out), (0, "links: every script loads\n"))

    tap.case("symlinked folders (six links to ..) are not walked round", symlinked_folders, runs=1)

    def long_literal(run):
        bot = small_bot("long", {"lib/say.lua": "return function(c) return c:say('%s') end\n" % ("k" * 20000)})
        rc, out = parley_check(bot)
        check.assertEqual(rc, 1, out)
        check.assertEqual(out.splitlines(), [
            "lib/say.lua:1: c:say: no template '%s...' in scripts/tone.lua" % ("k" * 64), "long: 1 error"])

    tap.case("a 20 KB name is cut at 64 characters in the message and not searched for a near one", long_literal,
             runs=1)

    def many_phrases(run):
        phrases = ", ".join("'w%d x%d'" % (i, i) for i in range(40000))
        router = ("return {\n  a = { match = { en = { 'help' } }, run = function(c) return c:resume() end },\n"
                  "  b = { match = { en = { %s,\n 'i need help' } }, run = function(c) return c:resume() end },\n}\n"
                  % phrases)
        rc, out = parley_check(small_bot("phrases", {"scripts/router.lua": router}))
        check.assertEqual(rc, 0, out)
        check.assertEqual(out.splitlines(), [
            "warning: scripts/router.lua:4: phrase 'i need help' of intent 'b' never matches: "
            "'help' of intent 'a' is tried first and is in it", "phrases: every script loads"])

    tap.case("a router of 40,000 phrases is checked for hidden phrases without comparing each pair",
             many_phrases, runs=1)

    def instruction_budget(run):
        # 3000 templates of 60 letters and calls of 60-letter keys none has:
        # each call's did-you-mean compares its key with every template
        keys = ["%s%04d" % ("t" * 56, i) for i in range(3000)]
        tone = "return { templates = { en = {\n%s\n  hello = 'hi', fallback = '?' } } }\n" % "\n".join(
            "  %s = 'x'," % k for k in keys)
        calls = "\n".join("  c:say('%s%04d')" % ("u" * 56, i) for i in range(40))
        bot = small_bot("budget", {"scripts/tone.lua": tone, "lib/calls.lua": "return function(c)\n%s\nend\n" % calls})
        rc, out = parley_check(bot)
        check.assertEqual(rc, 1, out)
        lines = out.splitlines()
        check.assertEqual(lines[0], "lib/calls.lua:1: not checked to the end: over the check's budget of 400000000 "
                          "instructions a file (split the file)")
        # what was found before the budget ran out is kept; the rest is not
        check.assertLess(len(lines), 40, out)
        check.assertRegex(lines[-1], r"^budget: \d+ errors$")

    tap.case("a file that runs the checks out of their instruction budget is an error at the file",
             instruction_budget, runs=1)

    def no_luacheck(run):
        env = dict(os.environ, PARLEY_LUACHECK_PATH="/nowhere/?.lua")
        rc, out = parley_check(small_bot("bare", {}), env)
        check.assertEqual(rc, 1, out)
        check.assertEqual(out.splitlines(), [
            "the static checks need luacheck's parser, which is not in /nowhere/?.lua: install Debian's lua-check "
            "(apt-get install lua-check), or set PARLEY_LUACHECK_PATH to where luacheck is "
            "(docs/authoring.md#parley-check)", "bare: 1 error"])

    tap.case("without luacheck's parser the message says exactly what to install", no_luacheck, runs=1)

    # --- bots that load and serve pass ---

    def facts_over_a_turn(run):
        rows = ["sku,title,price,currency,option:size"]
        rows += ["p%d,Product %d,100,EUR,s = Small | m = Medium | l = Large" % (i, i) for i in range(2000)]
        bot = small_bot("big_catalog", {"catalog.csv": "\n".join(rows) + "\n"},
                        {"catalog": "catalog.csv", "limits": {"instructions": 50000}})
        rc, out = parley_check(bot)
        check.assertEqual((rc, out), (0, "big_catalog: every script loads\n"))

    tap.case("a catalog whose facts cost more than a turn's budget (loading's applies) passes", facts_over_a_turn,
             runs=1)

    def forty_thousand_products(run):
        rows = ["sku,title,price,currency,option:size"]
        rows += ["p%d,Product %d,100,EUR,s = Small | m = Medium | l = Large" % (i, i) for i in range(40000)]
        bot = small_bot("big_shop", {"catalog.csv": "\n".join(rows) + "\n"}, {"catalog": "catalog.csv"})
        rc, out = parley_check(bot)
        check.assertEqual((rc, out), (0, "big_shop: every script loads\n"))

    tap.case("a CSV catalog of 40,000 products with 3 sizes loads (skus told apart by a hash) and checks",
             forty_thousand_products, runs=1)

    def windows_1252(run):
        bot = small_bot("latin", {})
        with open(os.path.join(bot, "scripts", "tone.lua"), "wb") as f:
            f.write(b"return { templates = { en = {\n  hello = 'caf\xe9',\n  fallback = '?' } } }\n")
        rc, out = parley_check(bot)
        check.assertEqual(rc, 1, out)
        check.assertEqual(out.splitlines(), [
            "scripts/tone.lua:2: this text is not UTF-8 (was the file saved as Windows-1252 or Latin-1?): "
            "save the file as UTF-8", "latin: 1 error"])

    tap.case("a template saved as Windows-1252 is reported at its line", windows_1252, runs=1)


if __name__ == "__main__":
    run_suite("parley check: static checks", body)
