#!/usr/bin/env python3
"""test_hostile: a brand whose scripts and bot.json attack the host, served
beside an innocent brand. Every attack of tests/bots/hostile (loops that hide
in message handlers, finalizers and __close, work inside C functions, memory)
fails that one message with the hostile bot's fallback and a file:line in
the log, while the innocent bot — asked at the same time — keeps answering
and /v1/health answers. A bot that keeps burning the loop is held back on
its own messages only. A bot.json cannot read another brand's secrets. A
lock held on the database by another process does not stop the loop.

A hang is caught by the harness's generous request timeout; latency itself
is measured by `make bench` (its attack run), never asserted here."""

import os
import re
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (PARLEY, ROOT, Server, check, check_error, echo_bot, hold_sqlite_lock, make_bot,  # noqa: E402
                     new_user, read_file, run_suite, save_atomically, temp_dir, wait_until)

HOSTILE = os.path.join(ROOT, "tests", "bots", "hostile")
FLOW = read_file(os.path.join(HOSTILE, "flows", "main.lua"))
FALLBACK = [{"text": "Something broke."}]
BIG_LINE = next(i for i, l in enumerate(FLOW.splitlines(), 1) if l.startswith("local function big()"))
READY = [{"text": "Ready."}]

# attack -> what the log must say the turn failed of
ATTACKS = {
    "loop": "instruction budget",
    "xpcall_loop": "instruction budget",
    "error_handler_loop": "instruction budget",
    "pcall_loop": "instruction budget",
    "coroutine_loop": "instruction budget",
    "close_loop": "instruction budget",
    "gc_loop": r"setmetatable: __gc is not available",
    "rep_empty": "instruction budget",
    "move": "instruction budget",
    "insert_len": "instruction budget",
    "load_many": "instruction budget",
    "load_huge": r"load: the chunk is \d+ KB, over the 256 KB",
    "big_find": "(instruction|time) budget",
    "big_concat": "(instruction|time) budget",
    "big_compare": "time budget of 300 ms",
    "memory": "memory budget of 128 MB",
    "log_flood": "instruction budget",
    "json_memory": "(memory|time|instruction) budget",
    "json_values": "(memory|time|instruction) budget",
    "pattern": "instruction budget",
    "pattern_gsub": "instruction budget",
    "pattern_gmatch": "instruction budget",
    "plain_find_worst": "instruction budget",
    "phrase": "instruction budget",
    "fold": "instruction budget",
}


def attack_line(name):
    """The line of flows/main.lua where attack `name` is defined and the
    line its body ends on: the error must name one inside."""
    lines = FLOW.splitlines()
    start = next(i for i, l in enumerate(lines, 1) if l.startswith("function attacks.%s(" % name))
    end = next(i for i, l in enumerate(lines[start - 1:], start) if l == "end")
    return start, end


def main(tap):
    innocent_dir, _ = echo_bot("innocent")
    # the attacks abort runs on purpose, many in a row: the share of the loop
    # that would hold the hostile bot back is tested below, on its own
    srv = tap.watch(Server([HOSTILE, innocent_dir], args=["--bot-share", "100", "--bot-burst-ms", "600000"],
                           name="parley (hostile)").start())

    def innocent_answers(user, n, text="hello"):
        check.assertEqual(srv.say("innocent", user, text)[-1], {"text": "%d: %s" % (n, text)})

    def attack_case(name, reason):
        def case(run):
            u = new_user(name)
            check.assertEqual(srv.say("hostile", u, "hello"), READY)
            mark = srv.mark()
            # the innocent shopper writes while the attack runs
            done = {}

            def attack():
                done["replies"] = srv.say("hostile", u, name)
            t = threading.Thread(target=attack)
            t.start()
            innocent = new_user("innocent")
            innocent_answers(innocent, 1)
            t.join()
            check.assertEqual(done.get("replies"), FALLBACK, "the attack fails with the hostile bot's fallback")
            m = srv.wait_log(r"ERROR +\[hostile\] rest/%s: turn failed: flows/main\.lua:(\d+): (.*)$" % re.escape(u),
                             mark)
            first, last = attack_line(name)
            at = int(m.group(1))
            check.assertTrue(first <= at <= last or at == BIG_LINE, "the error names a line of attacks.%s (or of "
                             "big(), which it calls): %s" % (name, m.group(0)))
            check.assertRegex(m.group(2), reason)
            # everyone goes on: the same shopper, the innocent bot, health
            check.assertEqual(srv.say("hostile", u, "hello"), READY)
            innocent_answers(innocent, 2)
            check.assertIsNone(srv.bot_health("innocent")["error"])
        return case

    for name, reason in ATTACKS.items():
        tap.case("%s: that message fails with file:line, the innocent bot answers meanwhile" % name,
                 attack_case(name, reason))

    def gc_late(run):
        # a __gc added to a metatable after setmetatable is never called
        u = new_user("gc")
        check.assertEqual(srv.say("hostile", u, "gc_late"), READY)
        check.assertEqual(srv.say("hostile", u, "hello"), READY)
        innocent_answers(new_user("innocent"), 1)

    tap.case("a __gc added after setmetatable never runs: the collection completes", gc_late)

    def usage_counted(run):
        usage = srv.bot_health("hostile")["usage"]
        check.assertGreater(usage["aborts"]["instructions"], 0, usage)
        check.assertGreater(usage["aborts"]["time"], 0, usage)
        check.assertGreater(usage["aborts"]["memory"], 0, usage)
        check.assertEqual(srv.bot_health("innocent")["usage"]["aborts"], {"instructions": 0, "time": 0, "memory": 0})
        check.assertEqual(srv.bot_health("hostile")["limits"], {"memory_mb": 128, "instructions": 1000000,
                                                                "time_ms": 300})

    tap.case("/v1/health counts each bot's budget aborts, and only the hostile bot has any", usage_counted)

    def host_caps(run):
        with Server([HOSTILE], args=["--max-time-ms", "200", "--max-memory-mb", "100"], name="parley (caps)") as capped:
            capped.wait_log(r"WARN +\[hostile\] bot\.json: limits\.time_ms of 300 is over this host's cap of 200; "
                            r"the cap applies")
            capped.wait_log(r"WARN +\[hostile\] bot\.json: limits\.memory_mb of 128 is over this host's cap of 100")
            check.assertEqual(capped.bot_health("hostile")["limits"],
                              {"memory_mb": 100, "instructions": 1000000, "time_ms": 200})
            u = new_user("capped")
            check.assertEqual(capped.say("hostile", u, "big_compare"), FALLBACK)
            capped.wait_log(r"ERROR +\[hostile\] rest/%s: turn failed: .*time budget of 200 ms" % re.escape(u))

    tap.case("the operator's caps win over a bot.json that asks for more, with a warning", host_caps, runs=1)

    # --- fairness: a greedy bot is held back on its own messages ---------------

    greedy_dir, _ = echo_bot("greedy")
    calm_dir, _ = echo_bot("calm")
    fair = tap.watch(Server([greedy_dir, calm_dir], args=["--bot-share", "10", "--bot-burst-ms", "30"],
                            name="parley (fairness)").start())

    def fairness(run):
        # both bots have shoppers: the greedy one's runs keep running out
        refused = None
        u = new_user("calm")
        for n in range(1, 201):
            r = fair.post("greedy", new_user("greedy"), "loop")
            check.assertEqual(fair.say("calm", u, "hi")[-1], {"text": "%d: hi" % n}, "the other bot never waits")
            if r.status == 503:
                refused = r
                break
            check.assertEqual(r.status, 200, r)
        check.assertIsNotNone(refused, "a bot that keeps running out of budget is held back")
        check_error(refused, 503, r"over its share")
        check.assertGreaterEqual(int(refused.headers["retry-after"]), 1, refused.headers)
        usage = fair.bot_health("greedy")["usage"]
        check.assertGreater(usage["refused"], 0, usage)
        for n in range(n + 1, n + 21):
            check.assertEqual(fair.say("calm", u, "hi")[-1], {"text": "%d: hi" % n})
        calm = fair.bot_health("calm")["usage"]
        check.assertEqual((calm["refused"], calm["delayed"], calm["throttled"]), (0, 0, False), calm)
        fair.wait_log(r"ERROR +\[greedy\] rest/\S+: turn failed: flows/main\.lua:\d+: instruction budget")

    tap.case("a bot over its share gets 503 with Retry-After for its own messages; the other bot never waits",
             fairness, runs=1)

    # --- secrets stay in their brand ---------------------------------------------

    def manifest_outside_namespace(run):
        spy = make_bot("spy", {}, manifest={"api_token_env": "PARLEY_ADMIN_TOKEN"})
        out = subprocess.run([PARLEY, "serve", "--listen", "127.0.0.1:0", "--db", ":memory:", spy],
                             capture_output=True, text=True, timeout=20, env=dict(os.environ, PARLEY_ADMIN_TOKEN="x"))
        check.assertNotEqual(out.returncode, 0, out)
        check.assertIn("api_token_env: PARLEY_ADMIN_TOKEN is outside this bot's environment namespace", out.stderr)
        check.assertIn("SPY_", out.stderr)
        check_out = subprocess.run([PARLEY, "check", spy], capture_output=True, text=True, timeout=20)
        check.assertEqual(check_out.returncode, 1, check_out)
        check.assertIn("PARLEY_ADMIN_TOKEN is outside", check_out.stdout)

    tap.case("a bot.json naming the admin token's variable does not start (and parley check says why)",
             manifest_outside_namespace, runs=1)

    def reload_outside_namespace(run):
        thief_dir, _ = echo_bot("thief")
        env = {"THIEF_OWN_TOKEN": "mine", "INNOCENT_API_TOKEN": "theirs"}
        with Server([thief_dir], env=env, name="parley (thief)") as thief:
            u = new_user("t")
            check.assertEqual(thief.say("thief", u, "hi")[-1], {"text": "1: hi"})
            manifest = read_file(os.path.join(thief_dir, "bot.json"))
            mark = thief.mark()
            save_atomically(os.path.join(thief_dir, "bot.json"),
                            manifest.replace('"name"', '"api_token_env": "INNOCENT_API_TOKEN",\n  "name"', 1))
            thief.wait_log(r"ERROR +\[thief\] bot\.json: api_token_env: INNOCENT_API_TOKEN is outside", mark)
            check.assertIn("INNOCENT_API_TOKEN", thief.bot_health("thief")["error"])
            # the previous version keeps serving, and the orders API stays shut
            check.assertEqual(thief.say("thief", u, "again")[-1], {"text": "2: again"})
            r = thief.request("GET", "/v1/bots/thief/orders", headers={"Authorization": "Bearer theirs"})
            check.assertEqual(r.status, 403, r)

    tap.case("a reload naming another brand's variable fails; the old version serves and reads nothing",
             reload_outside_namespace, runs=1)

    # --- a lock held on the database elsewhere -------------------------------------

    def held_lock(run):
        with hold_sqlite_lock(srv.db):
            r = srv.post("innocent", new_user("locked"), "hello")
            check_error(r, 503, "could not be stored")
            check.assertEqual(r.headers.get("retry-after"), "1", r.headers)
            check.assertEqual(srv.request("GET", "/v1/health").status, 200)
        innocent_answers(new_user("after-lock"), 1)

    # SQLite only: BEGIN EXCLUSIVE is SQLite's lock on the whole file, which
    # a writer meets at once (SQLITE_BUSY). PostgreSQL has no such lock: its
    # locks are on rows and tables, and a writer waits for them.
    tap.sqlite_only("another process holding the database: 503 with Retry-After at once, health answers, "
                    "then all is well", held_lock)

    def rss_mb(pid):
        with open("/proc/%d/status" % pid) as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")) // 1024

    def json_no_leak(run):
        u = new_user("json")
        for attack in ("json_values", "json_memory"):
            check.assertEqual(srv.say("hostile", u, attack), FALLBACK)
        first = rss_mb(srv.proc.pid)
        for _ in range(3):
            for attack in ("json_values", "json_memory"):
                check.assertEqual(srv.say("hostile", u, attack), FALLBACK)
        grown = rss_mb(srv.proc.pid) - first
        check.assertLess(grown, 100, "RSS grew %d MB over 6 aborted JSON decodes (each leaked ~200 MB before)" % grown)

    tap.case("JSON decodes that run out of budget leave nothing behind (RSS does not grow)", json_no_leak)

    def log_flood(run):
        mark = srv.mark()
        u = new_user("flood")
        check.assertEqual(srv.say("hostile", u, "log_flood"), FALLBACK)
        srv.wait_log(r"ERROR +\[hostile\] rest/%s: turn failed" % re.escape(u), mark)
        lines = [l for l in srv.log_since(mark) if "INFO  [hostile] flows/main.lua" in l]
        check.assertEqual(len(lines), 100, "a run logs at most 100 lines")
        check.assertTrue(all(len(l) < 2200 and re.search(r"\.\.\. \(98\d\d\d more bytes\)$", l) for l in lines), lines[0][-80:])
        check.assertEqual(len(srv.find_log(r"WARN +\[hostile\] flows/main\.lua:\d+: more than 100 log lines", mark)), 1)

    tap.case("a script cannot flood the log: 100 lines a run, each cut at 2,000 bytes", log_flood)

    def after_all(run):
        check.assertTrue(srv.alive())
        errors = [m.group(0) for m in srv.find_log(r"ERROR +\[innocent\].*")]
        check.assertEqual(errors, [], "nothing went wrong for the innocent bot")

    tap.case("afterwards: the server is alive and the innocent bot logged no error", after_all, runs=1)


if __name__ == "__main__":
    run_suite("hostile brand beside an innocent one", main)
