#!/usr/bin/env python3
"""test_new: `parley new DIR [--locales ...]` (docs/authoring.md).

What it writes, with the default locale and with --locales en,es, passes
`parley check` with no error or warning and `parley test` with every spec,
and serves: a short conversation over HTTP greets, asks a T-shirt's size
and puts it in the cart, in the shopper's language. It refuses a folder
that is not empty and locale codes it does not know, and writes nothing
then."""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ROOT, Server, check, choices, new_user, read_file, run_suite, temp_dir, texts  # noqa: E402

PARLEY = os.path.join(ROOT, "parley")


def run(*args):
    p = subprocess.run([PARLEY] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def temp_dir_of(out):
    """The folder `parley new` says it wrote into."""
    first = out.splitlines()[0]
    return first[first.index(" in ") + 4:first.rindex(" (locales")]


def new_bot(name, *args):
    folder = os.path.join(temp_dir(), name)
    rc, out, err = run("new", folder, *args)
    check.assertEqual(rc, 0, out + err)
    check.assertIn("wrote the bot '%s'" % name, out)
    return folder


FILES = ["bot.json", "catalog.csv", "flows/main.lua", "flows/order.lua", "scripts/tone.lua", "scripts/rules.lua",
         "scripts/router.lua", "spec/bot_spec.lua", ".luarc.json"]


# the line above what each file returns that LuaLS needs (docs/editor.md)
ANNOTATIONS = [("flows/main.lua", "\n---@type parley.Flow\nreturn {\n"),
               ("flows/order.lua", "\n---@type parley.Flow\nreturn {\n"),
               ("scripts/tone.lua", "\n---@type parley.Tone\nreturn {\n"),
               ("scripts/rules.lua", "\n---@type parley.Rules\nreturn {\n"),
               ("scripts/router.lua", "\n---@type parley.Router\nreturn {\n"),
               ("spec/bot_spec.lua", "\n---@return parley.testing.Chat\nlocal function greeted()\n")]


def body(tap):
    for label, args, locales in (("the default locale", (), ["en"]), ("--locales en,es", ("--locales", "en,es"),
                                                                       ["en", "es"])):
        def passes(run_no, args=args, locales=locales):
            folder = new_bot("shop", *args)
            for rel in FILES:
                check.assertTrue(os.path.isfile(os.path.join(folder, rel)), rel)
            manifest = json.loads(read_file(os.path.join(folder, "bot.json")))
            check.assertEqual(manifest["locales"], locales)
            tone = read_file(os.path.join(folder, "scripts", "tone.lua"))
            for locale in locales:
                check.assertIn("    %s = {\n" % locale, tone)
            luarc = json.loads(read_file(os.path.join(folder, ".luarc.json")))
            pizza = json.loads(read_file(os.path.join(ROOT, "examples", "pizza", ".luarc.json")))
            check.assertEqual(luarc["runtime"], pizza["runtime"])
            check.assertEqual(luarc["diagnostics"], pizza["diagnostics"], "busted's globals for the spec")
            check.assertEqual(luarc["workspace"]["checkThirdParty"], False)
            check.assertEqual(len(luarc["workspace"]["library"]), 1)
            for lib in luarc["workspace"]["library"]:
                check.assertTrue(os.path.isabs(lib) and os.path.isfile(os.path.join(lib, "scripts.lua")), lib)
            for rel, annotation in ANNOTATIONS:
                check.assertIn(annotation, read_file(os.path.join(folder, rel)), rel)
            rc, out, err = run("check", folder)
            check.assertEqual(rc, 0, out + err)
            check.assertEqual(out, "shop: every script loads\n", "no error and no warning")
            rc, out, err = run("test", folder, "-o", "TAP")
            check.assertEqual(rc, 0, out + err)
            check.assertIn("1..5", out)
            check.assertNotIn("not ok", out)

        tap.case("parley new with %s: parley check and parley test pass as written" % label, passes)

    def serves(run_no):
        folder = new_bot("shop", "--locales", "en,es")
        with Server([folder], name="parley (a new bot)") as s:
            user = new_user("en")
            replies = s.say("shop", user, "hello")
            check.assertIn("What would you like today?", texts(replies))
            check.assertEqual(choices(replies), [("T-shirt · €19.00", "tee"), ("Socks · €6.00", "socks"), ("Tote bag · €12.00", "tote")])
            replies = s.say("shop", user, "1")
            check.assertIn("Which size for your T-shirt?", texts(replies))
            check.assertEqual(choices(replies), [("Small", "s"), ("Medium", "m"), ("Large", "l")])
            replies = s.say("shop", user, "Medium")
            said = texts(replies)
            check.assertIn("Added T-shirt to your cart.", said)
            check.assertIn("Socks goes well with it", said)
            check.assertIn("That's 1 item(s) for €19.00. Anything else?", said)
            replies = s.say("shop", user, "help")
            check.assertIn("I can help you choose and order.", texts(replies))
            check.assertIn("Anything else?", texts(replies), "help asks the step again")
            es = new_user("es")
            replies = s.say("shop", es, "hola", locale="es")
            check.assertIn("¿Qué te apetece hoy?", texts(replies))
            check.assertEqual(choices(replies)[0], ("Camiseta · 19,00 €", "tee"))
            replies = s.say("shop", es, "camiseta", locale="es")
            check.assertIn("¿Qué talla para tu Camiseta?", texts(replies))
            check.assertEqual(choices(replies), [("Pequeña", "s"), ("Mediana", "m"), ("Grande", "l")])

    tap.case("a new bot serves: greets, asks the size, fills the cart, in the shopper's language", serves)

    def refuses(run_no):
        folder = new_bot("taken")
        before = sorted(os.listdir(folder))
        rc, out, err = run("new", folder)
        check.assertEqual(rc, 1, out + err)
        check.assertIn("is not an empty folder", err)
        check.assertEqual(sorted(os.listdir(folder)), before)
        nowhere = os.path.join(temp_dir(), "fresh")
        for bad, reason in (("en,EN", "'EN' is not a locale code"), ("en,en", "'en' is given twice"),
                            ("english", "'english' is not a locale code"), ("", "wants a list")):
            rc, out, err = run("new", nowhere, "--locales", bad)
            check.assertEqual(rc, 2, err)
            check.assertIn(reason, err)
            check.assertFalse(os.path.exists(nowhere), "nothing is written")
        rc, out, err = run("new", nowhere, "--locales", "de,ja")
        check.assertEqual(rc, 0, err)
        tone = read_file(os.path.join(nowhere, "scripts", "tone.lua"))
        check.assertIn("Was darf es heute sein?", tone)
        check.assertIn("-- (ja: the English words, to translate)", tone)
        rc, out, err = run("check", nowhere)
        check.assertEqual(rc, 0, out + err)

    tap.case("parley new refuses a folder that is not empty and bad locale codes, writing nothing", refuses,
             runs=1)

    def says_why(run_no):
        base = temp_dir()
        a_file = os.path.join(base, "notes.txt")
        with open(a_file, "w") as f:
            f.write("x")
        for target, reason in ((a_file, " is a file, not a folder"),
                               (os.path.join(a_file, "shop"), ": Not a directory"),
                               (os.path.join(base, "x" * 300), ": File name too long")):
            rc, out, err = run("new", target)
            check.assertEqual(rc, 1, out + err)
            check.assertEqual(err, "parley new: %s%s%s\n" % (
                target, reason, ": parley new writes into a new or empty folder" if "a file," in reason else ""))
        fresh = os.path.join(base, "fresh")
        for args, reason in ((("--locales",), "--locales needs a value, such as --locales en,es"),
                             (("--locales", "en,,es"), "--locales: 'en,,es' has an empty item"),
                             (("--locales", "en,"), "--locales: 'en,' has an empty item")):
            rc, out, err = run("new", fresh, *args)
            check.assertEqual(rc, 2, out + err)
            check.assertIn(reason, err)
            check.assertNotIn("unknown option", err)
            check.assertFalse(os.path.exists(fresh), "nothing is written")

    tap.case("parley new says why it cannot write: a file, a path through a file, a name too long, a --locales "
             "without a value or with an empty item", says_why, runs=1)

    def odd_names(run_no):
        folder = os.path.join(temp_dir(), "My Shop!")
        rc, out, err = run("new", folder)
        check.assertEqual(rc, 0, out + err)
        manifest = json.loads(read_file(os.path.join(folder, "bot.json")))
        check.assertEqual((manifest["name"], manifest["title"]), ("my-shop", "My Shop!"))
        quoted = "'%s'" % folder
        check.assertIn("next: parley check %s && parley test %s && parley chat %s\n" % (quoted, quoted, quoted), out)
        rc, out, err = run("check", folder)
        check.assertEqual((rc, out), (0, "my-shop: every script loads\n"), err)
        rc, out, err = run("new", os.path.join(temp_dir(), "corner_shop--2"))
        check.assertEqual(rc, 0, out + err)
        manifest = json.loads(read_file(os.path.join(temp_dir_of(out), "bot.json")))
        check.assertEqual((manifest["name"], manifest["title"]), ("corner_shop-2", "Corner shop 2"))

    tap.case("a folder named 'My Shop!' makes the bot my-shop titled 'My Shop!', and the next line quotes its path",
             odd_names, runs=1)


if __name__ == "__main__":
    run_suite("parley new", body)
