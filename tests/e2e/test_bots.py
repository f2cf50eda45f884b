#!/usr/bin/env python3
"""test_bots: several bots in one process. Each is addressed by the name in
its manifest (not its folder), has its own sessions and its own Lua state
(a global set by one bot's script is invisible to another), and messages of
one shopper are handled one at a time, in order, even when they arrive
concurrently.

Served here: the default bot (barista) and the echo fixture bots "alpha"
and "beta" (harness.ECHO_FLOW), kept in folders with other names."""

import json
import os
import re
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (PARLEY, ROOT, Server, check, db_query, echo_bot, make_bot, new_db, new_user,  # noqa: E402
                     run_suite, temp_dir, texts)

TOKEN = "bots-admin"


def concurrently(n, fn):
    """Runs fn(i) for i in range(n) in threads started together; returns the
    results in order of i, raising the first exception."""
    results, errors = [None] * n, []
    gate = threading.Barrier(n)

    def run(i):
        try:
            gate.wait(10)
            results[i] = fn(i)
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    if errors:
        raise errors[0]
    return results


def transcript(db, bot, user):
    """[(direction, body)] of a session in the order stored."""
    return [(d, json.loads(b)) for d, b in db_query(
        db, "SELECT direction, body FROM transcript WHERE bot = ? AND channel = 'rest' AND user = ? ORDER BY id",
        bot, user)]


def main(tap):
    alpha_dir, _ = echo_bot("alpha", folder="folder-of-alpha")
    beta_dir, _ = echo_bot("beta", folder="folder-of-beta")
    srv = tap.watch(Server([ROOT, alpha_dir, beta_dir], env={"PARLEY_ADMIN_TOKEN": TOKEN},
                           name="parley (three bots)").start())

    def health(run):
        bots = srv.health()["bots"]
        check.assertEqual([b["name"] for b in bots], ["barista", "alpha", "beta"])
        for b in bots:
            check.assertIsNone(b["error"], b)
            check.assertIsNotNone(b["loaded_at"], b)
        for name, folder in (("barista", ROOT), ("alpha", alpha_dir), ("beta", beta_dir)):
            srv.wait_log(r"INFO +serving bot '%s' from %s at http://127\.0\.0\.1:%d/v1/bots/%s/messages"
                         % (name, re.escape(os.path.realpath(folder)), srv.port, name))

    tap.case("health lists every bot by manifest name; the log says where each is served", health)

    def addressing(run):
        u = new_user("addr")
        check.assertEqual(srv.say("alpha", u, "hi"), [{"text": "1: hi"}])
        check.assertEqual(srv.say("beta", u, "hi"), [{"text": "1: hi"}])
        check.assertIn("Bea", texts(srv.say("barista", u, "hi")))
        for folder in ("folder-of-alpha", "folder-of-beta", "main"):
            r = srv.post(folder, u, "hi")
            check.assertEqual(r.status, 404, r)

    tap.case("each bot answers at its manifest name; a folder name is not an address (404)", addressing)

    def sessions_apart(run):
        u = new_user("same")
        for n in (1, 2, 3):
            check.assertEqual(srv.say("alpha", u, "a%d" % n), [{"text": "%d: a%d" % (n, n)}])
        check.assertEqual(srv.say("beta", u, "b1"), [{"text": "1: b1"}])
        check.assertEqual(srv.session("alpha", u, TOKEN)["turn"], 3)
        check.assertEqual(srv.session("beta", u, TOKEN)["turn"], 1)
        check.assertIsNone(srv.session("barista", u, TOKEN))

    tap.case("the same user id on two bots has two separate sessions", sessions_apart)

    # A bot's globals live in its Lua state; with turn threads (--threads,
    # PARLEY_THREADS) each thread has a state of its own, and a shopper's
    # turns always run on the same one: so each bot is probed through one
    # shopper, the same in every run.
    alpha_prober, beta_prober = new_user("alpha-prober"), new_user("beta-prober")

    def globals_apart(run):
        value = "secret%d" % run
        replies = srv.say("alpha", alpha_prober, "set-global " + value)
        check.assertEqual(replies[0]["text"], "set alpha:" + value)
        # alpha's state has it (so the probe works) ...
        replies = srv.say("alpha", alpha_prober, "get-global")
        check.assertEqual(replies[0]["text"], "global=alpha:%s string.leaked=alpha:%s" % (value, value))
        # ... beta's does not (it only has what beta set itself in an earlier run)
        replies = srv.say("beta", beta_prober, "get-global")
        own = "nil" if run == 1 else "beta:other%d" % (run - 1)
        check.assertEqual(replies[0]["text"], "global=%s string.leaked=%s" % (own, own))
        # and beta setting its own does not change alpha's
        srv.say("beta", beta_prober, "set-global other%d" % run)
        replies = srv.say("alpha", alpha_prober, "get-global")
        check.assertEqual(replies[0]["text"], "global=alpha:%s string.leaked=alpha:%s" % (value, value))
        check.assertIn("Bea", texts(srv.say("barista", new_user("b"), "hi")), "the default bot is unaffected")

    tap.case("a global (and a change to the string library) set by one bot is invisible to another", globals_apart)

    def ordering_echo(run):
        u = new_user("burst")
        results = concurrently(20, lambda i: srv.post("alpha", u, "m%02d" % i))
        check.assertEqual([r.status for r in results], [200] * 20, results)
        counters = sorted(int(r.json["replies"][-1]["text"].split(":")[0]) for r in results)
        check.assertEqual(counters, list(range(1, 21)), "every message saw the turn before it")
        for i, r in enumerate(results):
            check.assertTrue(r.json["replies"][-1]["text"].endswith(": m%02d" % i), "answer to the right message")
        s = srv.session("alpha", u, TOKEN)
        check.assertEqual((s["turn"], s["profile"]["count"]), (20, 20))
        # the transcript alternates message and its answer, in processing order
        lines = transcript(srv.db, "alpha", u)
        check.assertEqual(len(lines), 40)
        for n in range(20):
            (d_in, m_in), (d_out, m_out) = lines[2 * n], lines[2 * n + 1]
            check.assertEqual((d_in, d_out), ("in", "out"))
            check.assertEqual(m_out[-1]["text"], "%d: %s" % (n + 1, m_in["text"]))  # an "out" line holds the turn's replies

    tap.case("20 concurrent messages of one user: all answered, one at a time (turn = 20)", ordering_echo)

    def ordering_barista(run):
        u = new_user("burst")
        srv.say("barista", u, "hi")
        results = concurrently(20, lambda i: srv.post("barista", u, "help"))
        check.assertEqual([r.status for r in results], [200] * 20, results)
        for r in results:
            check.assertIn("I can take your coffee order", texts(r.json["replies"]))
        s = srv.session("barista", u, TOKEN)
        check.assertEqual(s["turn"], 21)
        check.assertEqual([(f["flow"], f["step"]) for f in s["stack"]][-1], ("drink", "choose"))

    tap.case("the default bot too: 20 concurrent 'help' of one user, turn counter = 1 + 20", ordering_barista)

    def many_users(run):
        def shopper(i):
            bot = ("alpha", "beta")[i % 2]
            u = new_user("shopper%d" % i)
            for n in range(1, 11):
                replies = srv.say(bot, u, "msg%d" % n)
                check.assertEqual(replies, [{"text": "%d: msg%d" % (n, n)}], (bot, u))
            return srv.session(bot, u, TOKEN)["turn"]

        check.assertEqual(concurrently(12, shopper), [10] * 12)

    tap.case("12 shoppers on two bots chatting at once each see only their own conversation", many_users)

    def usage_order(run):
        # parley serve [BOT_DIR ...] [--listen ADDR:PORT] [--db FILE] ...
        with Server([alpha_dir, beta_dir], args=["--log-level", "info"], bots_first=True,
                    name="parley (folders first)") as s:
            check.assertEqual([b["name"] for b in s.health()["bots"]], ["alpha", "beta"])
            check.assertEqual(s.say("beta", new_user("order"), "hi"), [{"text": "1: hi"}])

    tap.case("the usage line's order works: bot folders first, then --listen, --db and the rest",
             usage_order, runs=1)

    def duplicate_names(run):
        twin_dir, _ = echo_bot("alpha", folder="another-alpha")
        db = new_db("dup")
        p = subprocess.run([PARLEY, "serve", alpha_dir, twin_dir, "--listen", "127.0.0.1:0", "--db", db],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
        out = p.stdout.decode()
        check.assertNotEqual(p.returncode, 0, out)
        check.assertIn("already named 'alpha'", out)
        check.assertNotIn("listening on", out)

    tap.case("two bots with the same manifest name: parley refuses to start and says why", duplicate_names, runs=1)

    def missing_folder(run):
        db = new_db("missing")
        nowhere = os.path.join(temp_dir(), "no-such-bot")
        p = subprocess.run([PARLEY, "serve", "--listen", "127.0.0.1:0", "--db", db, alpha_dir, nowhere],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
        out = p.stdout.decode()
        check.assertNotEqual(p.returncode, 0, out)
        check.assertIn(nowhere, out)
        check.assertNotIn("listening on", out)

    tap.case("a bot folder that does not exist: parley refuses to start and names it", missing_folder, runs=1)

    def check_command(run):
        """parley check loads a bot as serve does: every module its
        scripts need, and the manifest's HTTP allow list checked."""
        examples = sorted(os.path.join(ROOT, "examples", d) for d in os.listdir(os.path.join(ROOT, "examples")))
        for bot_dir in [ROOT] + examples:
            p = subprocess.run([PARLEY, "check", bot_dir], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20)
            out = p.stdout.decode()
            check.assertEqual(p.returncode, 0, out)
            check.assertRegex(out, r": every script loads\n$", bot_dir)
        bad_dir, _ = echo_bot("badhttp", manifest={"http": {"allow": ["not a url"]}})
        p = subprocess.run([PARLEY, "check", bad_dir], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20)
        out = p.stdout.decode()
        check.assertEqual(p.returncode, 1, out)
        check.assertIn('bot.json: http.allow[0]: not a URL', out)
        check.assertIn("badhttp: 1 error", out)

    tap.case("parley check: the default bot and every example load; a bad http.allow is named", check_command, runs=1)

    def broken_at_start(run):
        broken_flow = "return {\n  start = function(c)\n    c:say('echo' \n  end,\n}\n"
        broken = make_bot("broken", {
            "flows/main.lua": broken_flow,
            "scripts/tone.lua": "return { templates = { en = { fallback = 'tone fallback' } } }\n",
        }, manifest={"fallback": "The broken bot's static fallback."})
        with Server([broken, alpha_dir], name="parley (broken bot)") as s:
            h = {b["name"]: b for b in s.health()["bots"]}
            check.assertRegex(h["broken"]["error"] or "", r"^flows/main\.lua:\d+: ")
            check.assertIsNone(h["broken"]["loaded_at"])
            check.assertIsNone(h["alpha"]["error"])
            s.wait_log(r"ERROR +\[broken\] flows/main\.lua:\d+: ")
            s.wait_log(r"ERROR +\[broken\] scripts failed to load")
            r = s.post("broken", new_user("b"), "hi")
            check.assertEqual(r.status, 200, r)
            check.assertEqual(r.json["replies"], [{"text": "The broken bot's static fallback."}])
            check.assertEqual(s.say("alpha", new_user("a"), "hi"), [{"text": "1: hi"}])

    tap.case("a bot whose scripts fail at start: health shows file:line, its shoppers get its "
             "static fallback, the other bots serve", broken_at_start)

    def log_clean(run):
        check.assertEqual([line for line in srv.log_since(0) if " ERROR " in line], [])

    tap.case("no ERROR in the log of the three-bot server", log_clean, runs=1)


if __name__ == "__main__":
    run_suite("e2e: several bots in one process", main)
