#!/usr/bin/env python3
"""test_understand_cli: `parley understand` (docs/understanding.md#testing-understanding).

What it prints for a message of the default bot, and how it checks a
labelled corpus: the exact and per-field shares, each miss as text /
expected / got, a label naming what the bot lacks, the thresholds and the
exit status, TAP, the time per call, and the files it refuses. The corpora
here are small and made for the test; parley's own are checked by
tests/understand/run.sh."""

import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ROOT, run_suite, temp_dir, write_file  # noqa: E402

PARLEY = os.path.join(ROOT, "parley")

# Two messages any parser of the contract gets right, a label that is
# wrong on purpose (a croissant is one) and a label naming a size the
# latte does not have.
SMALL = [
    {"text": "2 lattes", "expect": {"items": [{"sku": "latte", "qty": 2}]}},
    {"text": "yes", "expect": {"yes": True}},
    {"text": "a croissant", "expect": {"items": [{"sku": "croissant", "qty": 3}]}, "note": "wrong on purpose"},
    {"text": "a latte", "expect": {"items": [{"sku": "latte", "qty": 1, "options": {"size": "huge"}}]}},
]


def understand(*args):
    p = subprocess.run([PARLEY, "understand"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    return p.returncode, p.stdout.decode("utf-8"), p.stderr.decode("utf-8")


def corpus_file(name, entries, raw=None):
    path = os.path.join(temp_dir("parley-corpus-"), name)
    write_file(path, raw if raw is not None else json.dumps(entries))
    return path


def main(tap):
    def help_text(run):
        rc, out, _ = understand("--help")
        assert rc == 0 and "--corpus FILE" in out and "--min-exact" in out, out
        p = subprocess.run([PARLEY, "--help"], stdout=subprocess.PIPE, timeout=10)
        assert b"understand [BOT_DIR]" in p.stdout, p.stdout
    tap.case("--help describes the command; parley --help lists it", help_text, runs=1)

    def one_message(run):
        rc, out, err = understand(ROOT, "2", "lattes")
        assert rc == 0, err
        parse = json.loads(out)
        assert parse["text"] == "2 lattes" and parse["locale"] == "en", parse
        assert [(i["sku"], i["qty"]) for i in parse["items"]] == [("latte", 2)], parse
        assert "product" not in parse["items"][0], parse
        rc, out, err = understand(ROOT, "--locale", "ja", "--bench=3", "カフェラテ")
        assert rc == 0, err
        parse = json.loads(out)
        assert parse["locale"] == "ja" and parse["items"][0]["sku"] == "latte", parse
        assert parse["us_per_call"] > 0, parse
    tap.case("a message: the parse as JSON, skus for products, in the locale asked", one_message)

    def no_such_locale(run):
        rc, _, err = understand(ROOT, "--locale", "fr", "latte")
        assert rc == 2 and "the bot has no locale 'fr'" in err, (rc, err)
    tap.case("a locale the bot does not have is a usage error", no_such_locale, runs=1)

    def shares_and_misses(run):
        path = corpus_file("barista.en.json", SMALL)
        rc, out, err = understand(ROOT, "--corpus", path)
        assert rc == 1, (rc, out, err)
        assert "%s (en, 4 utterances): UNDER THE THRESHOLDS" % path in out, out
        assert "exact 50.0% (2/4); intent 100.0% items 50.0% without 100.0% yes 100.0% number 100.0% code 100.0%" in out, out
        assert 'miss 3: "a croissant" (items)\n' in out, out
        assert '    expected: {"items":[{"sku":"croissant","qty":3}]}\n' in out, out
        assert re.search(r'    got: +\{"items":\[\{"sku":"croissant","qty":1\}\]', out), out
        assert 'miss 4: "a latte" (items, label)' in out, out
        assert "latte has no choice 'huge' for option size" in out, out
        assert "miss 1:" not in out and "miss 2:" not in out, out
        assert out.rstrip().splitlines()[-1].startswith("total: exact 50.0% (2/4);"), out
        rc, out, err = understand(ROOT, "--corpus", path, "--min-exact", "0.5", "--min-field", "0.5")
        assert rc == 0, (rc, out, err)
        rc, _, _ = understand(ROOT, "--corpus", path, "--min-exact", "0.5", "--min-field", "0.6")
        assert rc == 1, "items at 50% is under --min-field 0.6"
    tap.case("a corpus: exact and per-field shares, each miss, the thresholds and the exit status", shares_and_misses)

    def tap_lines(run):
        path = corpus_file("barista.en.json", SMALL)
        rc, out, _ = understand(ROOT, "--corpus", path, "--tap", "--min-exact", "0.5", "--min-field", "0.5")
        lines = [l for l in out.splitlines() if not l.startswith("#")]
        assert rc == 0 and lines[0] == "1..5", out
        assert lines[1] == "ok 1 - %s: 2 lattes" % path, out
        assert lines[3] == "ok 3 - %s: a croissant (missed: items; within the file's thresholds)" % path, out
        assert lines[5].startswith("ok 5 - %s: exact 50.0%% (2/4);" % path), out
        assert '# miss 3: "a croissant" (items)' in out, out
        rc, out, _ = understand(ROOT, "--corpus", path, "--tap")
        lines = [l for l in out.splitlines() if not l.startswith("#")]
        assert rc == 1 and [l.split(" - ")[0] for l in lines[1:]] == ["ok 1", "ok 2", "not ok 3", "not ok 4", "not ok 5"], out
    tap.case("--tap: a line per message and per file; misses pass while the file meets its thresholds", tap_lines)

    def bench(run):
        path = corpus_file("barista.en.json", SMALL[:2])
        rc, out, err = understand(ROOT, "--corpus", path, "--bench=3")
        assert rc == 0, (rc, out, err)
        assert re.search(r"exact 100\.0% \(2/2\);.*; [0-9.]+ µs per call \(6 calls\)", out), out
    tap.case("--bench=N: every message N times, the mean time per call", bench, runs=1)

    def refused(run):
        rc, _, err = understand(ROOT, "--corpus", corpus_file("pizza.en.json", SMALL))
        assert rc == 1 and "is a corpus of the bot 'pizza'; this bot is 'barista'" in err, err
        rc, _, err = understand(ROOT, "--corpus", corpus_file("barista.en.json", [{"text": "x", "expect": {"item": []}}]))
        assert rc == 1 and 'utterance 1 expects an unknown field "item"' in err, err
        rc, _, err = understand(ROOT, "--corpus", corpus_file("barista.en.json", [{"text": "x", "expect": {"items": [{"sku": "latte", "qty": 0}]}}]))
        assert rc == 1 and "items[1].qty is not a whole number above 0" in err, err
        rc, _, err = understand(ROOT, "--corpus", corpus_file("barista.en.json", None, raw="[\n{\"text\": }\n]"))
        assert rc == 1 and "barista.en.json:2:" in err, err
        rc, _, err = understand(ROOT, "--corpus", corpus_file("mine.json", SMALL))
        assert rc == 1 and "name it BOT.LOCALE.json, or give --locale" in err, err
        rc, _, err = understand(ROOT, "--corpus", corpus_file("barista.fr.json", SMALL))
        assert rc == 1 and "the bot has no locale 'fr'" in err, err
        rc, _, err = understand(ROOT, "--corpus")
        assert rc == 2 and "--corpus wants one FILE or more" in err, err
        rc, _, err = understand(ROOT, "--tap", "latte")
        assert rc == 2 and "--tap goes with --corpus" in err, err
    tap.case("files it refuses: another bot's, unknown fields, bad JSON, no locale", refused, runs=1)

    def big_catalog(run):
        # a merchant's catalog of 2,000 products (titles in two locales,
        # aliases, options on a third of them): the catalog's words are
        # built in C, so understanding stays within a turn's budget
        bot = temp_dir("parley-big-")
        words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"]
        products = []
        for i in range(2000):
            title = "%s %s %s %d" % (words[i % 10], words[(i // 10) % 10], words[(i // 100) % 10], i)
            p = {"sku": "p%d" % i, "title": {"en": title.title(), "ja": "商品%d" % i}, "price": 100 + i,
                 "tags": ["drink" if i % 2 else "food", "tag%d" % (i % 50)], "aliases": {"en": ["item%d" % i]}}
            if i % 3 == 0:
                p["options"] = {"size": [{"value": "small", "title": {"en": "Small", "ja": "S"}, "price": 0},
                                         {"value": "large", "title": {"en": "Large", "ja": "L"}, "price": 50}]}
            products.append(p)
        write_file(os.path.join(bot, "catalog.json"), json.dumps({"currency": "EUR", "products": products}))
        write_file(os.path.join(bot, "bot.json"), json.dumps(
            {"name": "bigshop", "locales": ["en", "ja"], "start_flow": "main", "catalog": "catalog.json"}))
        write_file(os.path.join(bot, "flows", "main.lua"), "return { start = function(c) c:say 'hi' end }")
        write_file(os.path.join(bot, "scripts", "tone.lua"),
                   "return { templates = { en = { hi = 'Hi', fallback = 'Sorry' }, ja = { hi = 'やあ', fallback = 'すみません' } } }")
        rc, out, err = understand(bot, "two large %s and item3" % products[1575]["title"]["en"].lower())
        assert rc == 0, err
        got = json.loads(out)
        assert [(i["sku"], i["qty"]) for i in got["items"]] == [("p1575", 2), ("p3", 1)], got
        assert got["items"][0]["options"] == {"size": "large"}, got
    tap.case("a catalog of 2,000 products is understood within a turn's budget", big_catalog, runs=1)


if __name__ == "__main__":
    run_suite("parley understand", main)
