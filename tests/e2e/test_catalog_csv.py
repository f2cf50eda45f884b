#!/usr/bin/env python3
"""test_catalog_csv: a bot whose catalog is a spreadsheet's CSV, served by
the real binary — on a temporary COPY of the csvshop fixture bot
(tests/bots/csvshop), so the repository's files are never touched.

The CSV catalog is copied into the store; a paid order takes its stock
(the product's and its option choice's) and the sold-out product leaves the
flows' lists at once; sold units stay sold across a restart; editing a
count in catalog.csv restocks through hot reload; a broken catalog.csv
keeps the old catalog serving while /v1/health names file:line and the
column, and fixing it clears the error. A catalog whose prices are written
as on a price tag (a price_major column: 3.80, +0.90) sells at the same
minor units, and its mistakes are named like the others."""

import os
import re
import shutil
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ROOT, Server, check, db_query, new_db, new_user, read_file, run_suite,  # noqa: E402
                     save_atomically, temp_dir, texts, wait_until)

BOT = "csvshop"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
RELOADED = r"INFO +\[csvshop\] reloaded in [\d.]+ ms after a change to catalog\.csv$"


def copy_fixture():
    folder = os.path.join(temp_dir(), BOT)
    shutil.copytree(os.path.join(ROOT, "tests", "bots", BOT), folder)
    return folder


def stock_left(db, key):
    rows = db_query(db, "SELECT remaining FROM stock WHERE bot = ? AND key = ?", BOT, key)
    return rows[0][0] if rows else None


def text(srv, user, words):
    return texts(srv.say(BOT, user, words))


def pay(srv, url):
    """Pays on the test provider's page, as the shopper's browser would."""
    parts = urllib.parse.urlsplit(url)
    token = urllib.parse.parse_qs(parts.query)["token"][0]
    r = srv.request("POST", parts.path, body=urllib.parse.urlencode({"token": token, "action": "pay"}), headers=FORM)
    check.assertEqual(r.status, 200, r)


def edit_catalog(folder, old, new):
    path = os.path.join(folder, "catalog.csv")
    csv = read_file(path)
    check.assertIn(old, csv, "the fixture's catalog.csv changed: no %r in it" % old)
    save_atomically(path, csv.replace(old, new, 1))


def body(tap):
    folder = copy_fixture()
    db = new_db()
    st = {"s": tap.watch(Server(bots=[folder], db=db, name="parley (csv)").start())}

    def serves(run):
        s = st["s"]
        user = new_user("browse")
        text(s, user, "hi")
        check.assertIn("all: latte,cafe,brulee,pizza,muffin,scone", text(s, user, "all"))
        rows = db_query(db, "SELECT sku FROM products WHERE bot = ? ORDER BY position", BOT)
        check.assertEqual([r[0] for r in rows], ["latte", "cafe", "brulee", "pizza", "muffin", "scone", "gone"])
        check.assertEqual(stock_left(db, "scone"), 1)
        check.assertEqual(stock_left(db, "pizza/toppings=ham"), 1)
        check.assertEqual(stock_left(db, "latte/milk=oat"), 2)
        check.assertIsNone(stock_left(db, "latte"), "a product without a count is unlimited: no stock row")

    tap.case("the CSV catalog is served and copied into the store with its stock counts", serves)

    def sells_out(run):
        s = st["s"]
        buyer = new_user("buyer")
        text(s, buyer, "hi")
        check.assertIn("added scone x1 @ 200", text(s, buyer, "add scone"))
        check.assertIn("added pizza x1 @ 990", text(s, buyer, "add pizza crust=thin toppings=ham"))
        m = re.search(r"order (\d+) (\S+)", text(s, buyer, "pay"))
        check.assertIsNotNone(m, "no order")
        pay(s, m.group(2))
        wait_until(lambda: stock_left(db, "scone") == 0, what="the scone's stock to be taken")
        check.assertEqual(stock_left(db, "pizza/toppings=ham"), 0)
        other = new_user("other")
        text(s, other, "hi")
        check.assertIn("all: latte,cafe,brulee,pizza,muffin", text(s, other, "all"))
        check.assertRegex(text(s, other, "show scone"), r"^scone Scone stock=0 in=no")
        check.assertIn("ham(Ham 90)=0/no", text(s, other, "show pizza"))
        check.assertIn("out_of_stock scone (Scone) wants 1, 0 left", text(s, other, "add scone"))

    tap.case("a paid order takes the product's and the option's stock; the scone leaves the lists at once",
             sells_out, runs=1)

    def stays_sold(run):
        check.assertEqual(st["s"].stop(), 0)
        tap.unwatch(st["s"])
        st["s"] = tap.watch(Server(bots=[folder], db=db, name="parley (csv, restarted)").start())
        user = new_user("after")
        text(st["s"], user, "hi")
        check.assertRegex(text(st["s"], user, "show scone"), r"^scone Scone stock=0 in=no")
        check.assertEqual(stock_left(db, "scone"), 0)

    tap.case("sold units stay sold after a restart", stays_sold, runs=1)

    def restocks(run):
        s = st["s"]
        mark = s.mark()
        edit_catalog(folder, "scone,Scone,スコーン,,,200,EUR,food | sweet,1,", "scone,Scone,スコーン,,,200,EUR,food | sweet,5,")
        s.wait_log(RELOADED, mark)
        check.assertEqual(stock_left(db, "scone"), 5, "the file's new count is what is left")
        check.assertEqual(stock_left(db, "pizza/toppings=ham"), 0, "an unchanged count stays spent")
        user = new_user("restocked")
        text(s, user, "hi")
        check.assertRegex(text(s, user, "show scone"), r"^scone Scone stock=5 in=yes")

    tap.case("editing a count in catalog.csv restocks, hot-reloaded", restocks, runs=1)

    def broken_then_fixed(run):
        s = st["s"]
        mark = s.mark()
        edit_catalog(folder, "muffin,Muffin,マフィン,,,250,", "muffin,Muffin,マフィン,,,2.50,")
        s.wait_log(r"catalog\.csv:\d+: column F \(price\): price must be", mark)
        health = s.bot_health(BOT)
        check.assertRegex(str(health), r"catalog\.csv:6: column F \(price\): price must be a non-negative integer")
        user = new_user("during")
        text(s, user, "hi")
        check.assertIn("added muffin x1 @ 250", text(s, user, "add muffin"), "the old catalog keeps serving")
        mark = s.mark()
        edit_catalog(folder, "muffin,Muffin,マフィン,,,2.50,", "muffin,Fresh muffin,マフィン,,,260,")
        s.wait_log(RELOADED, mark)
        check.assertNotRegex(str(s.bot_health(BOT)), r"catalog\.csv:6")
        fixed = new_user("fixed")
        text(s, fixed, "hi")
        check.assertIn("added muffin x1 @ 260", text(s, fixed, "add muffin"))
        rows = db_query(db, "SELECT data FROM products WHERE bot = ? AND sku = 'muffin'", BOT)
        check.assertIn('"Fresh muffin"', rows[0][0], "the store holds the new catalog")

    tap.case("a broken catalog.csv keeps the old one serving and names line and column; fixing it clears",
             broken_then_fixed, runs=1)

    # --- prices as on a price tag: a price_major column --------------------------------

    major = {}

    def major_prices(run):
        folder = copy_fixture()
        with open(os.path.join(folder, "catalog.csv"), "w", encoding="utf-8") as f:
            f.write(MAJOR_CSV)
        major["folder"] = folder
        major["s"] = tap.watch(Server(bots=[folder], db=new_db(), name="parley (csv, price_major)").start())
        s = major["s"]
        user = new_user("major")
        text(s, user, "hi")
        check.assertIn("added latte x1 @ 470", text(s, user, "add latte size=large"), "3.80 + 0.90 is 470 cents")
        check.assertIn("added scone x1 @ 200", text(s, user, "add scone"))
        other = new_user("major-yen")  # a cart holds one currency
        text(s, other, "hi")
        check.assertIn("added yuzu x1 @ 450", text(s, other, "add yuzu"), "450 JPY is 450 yen")
        check.assertIsNone(s.bot_health(BOT)["error"])

    tap.case("a catalog with a price_major column sells at the same minor units (3.80 EUR is 380, +0.90 is 90)",
             major_prices, runs=1)

    def major_errors(run):
        s, folder = major["s"], major["folder"]
        mark = s.mark()
        edit_catalog(folder, "scone,Scone,2.00,EUR", "scone,Scone,2.0055,EUR")
        s.wait_log(r"catalog\.csv:3: column C \(price_major\)", mark)
        check.assertEqual(s.bot_health(BOT)["error"],
                          "catalog.csv:3: column C (price_major): '2.0055': a price in EUR has at most 2 decimals, "
                          "as in 129.00")
        user = new_user("major-during")
        text(s, user, "hi")
        check.assertIn("added scone x1 @ 200", text(s, user, "add scone"), "the old catalog keeps serving")
        mark = s.mark()
        edit_catalog(folder, "scone,Scone,2.0055,EUR", "scone,Scone,2.000,EUR")
        s.wait_log(r"catalog\.csv:3: column C \(price_major\): '2\.000' is ambiguous", mark)
        check.assertEqual(s.bot_health(BOT)["error"],
                          "catalog.csv:3: column C (price_major): '2.000' is ambiguous: is '.' a thousands separator "
                          "or a decimal point? Write 2000 (no thousands separator) or 2.00 (EUR has 2 decimals, "
                          "after a decimal point)")
        ambiguous = new_user("major-ambiguous")
        text(s, ambiguous, "hi")
        check.assertIn("added scone x1 @ 200", text(s, ambiguous, "add scone"), "the old catalog, never 2000 read as 2")
        mark = s.mark()
        edit_catalog(folder, "scone,Scone,2.000,EUR", "scone,Scone,2.10,EUR")
        s.wait_log(RELOADED, mark)
        check.assertIsNone(s.bot_health(BOT)["error"])
        fixed = new_user("major-fixed")
        text(s, fixed, "hi")
        check.assertIn("added scone x1 @ 210", text(s, fixed, "add scone"))
        mark = s.mark()
        edit_catalog(folder, "sku,title,price_major,", "sku,title,price,")
        s.wait_log(r"catalog\.csv:2: column C \(price\)", mark)
        check.assertEqual(s.bot_health(BOT)["error"],
                          "catalog.csv:2: column C (price): price must be a non-negative integer in minor units "
                          "(380 for 3.80 EUR); to write 3.80, name the column price_major")
        mark = s.mark()
        edit_catalog(folder, "sku,title,price,", "sku,title,price_major,")
        s.wait_log(RELOADED, mark)
        check.assertIsNone(s.bot_health(BOT)["error"])

    tap.case("price_major mistakes (too many decimals, a thousands separator or decimal point, decimals under a "
             "minor-units header) name line and column; "
             "the old catalog serves meanwhile", major_errors, runs=1)


MAJOR_CSV = """sku,title,price_major,currency,tags,stock,option:size
latte,Latte,3.80,EUR,coffee,,small | medium +0.50 | large +0.90
scone,Scone,2.00,EUR,food,5,
yuzu,Yuzu soda,450,JPY,drink,,
"""


if __name__ == "__main__":
    run_suite("catalog.csv: stock, restarts, reloads", body)
