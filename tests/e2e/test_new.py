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


def new_bot(name, *args):
    folder = os.path.join(temp_dir(), name)
    rc, out, err = run("new", folder, *args)
    check.assertEqual(rc, 0, out + err)
    check.assertIn("wrote the bot '%s'" % name, out)
    return folder


FILES = ["bot.json", "catalog.csv", "flows/main.lua", "flows/order.lua", "scripts/tone.lua", "scripts/rules.lua",
         "scripts/router.lua", "spec/bot_spec.lua", ".luarc.json"]


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
            check.assertEqual(luarc["runtime.version"], "Lua 5.4")
            for lib in luarc["workspace.library"]:
                check.assertTrue(os.path.isabs(lib) and os.path.isdir(lib), lib)
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


if __name__ == "__main__":
    run_suite("parley new", body)
