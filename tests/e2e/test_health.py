#!/usr/bin/env python3
"""test_health: what a load balancer and an operator ask a node.

/v1/health names the node (--node, else PARLEY_NODE, else the host name),
its pid and start, whether it serves or drains, and for each bot the
version of its files: two nodes serving copies of the same folder say the
same version, a hot reload of a changed file says a new one, a broken
change keeps the old version (with its error). /v1/health/live and
/v1/health/ready answer 200; after SIGTERM with --drain-grace the node says
it is not ready at once, keeps answering messages for the grace, then
finishes and exits 0 by itself."""

import os
import re
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Server, check, copy_default_bot, new_user, read_file, run_suite,  # noqa: E402
                     save_atomically, texts, wait_until)

BOT = "barista"
VERSION = re.compile(r"^[0-9a-f]{16}$")
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def main(tap):
    folder = copy_default_bot()
    twin = copy_default_bot()
    a = tap.watch(Server(bots=[folder], args=["--node", "node-a"], name="node-a").start())
    b = tap.watch(Server(bots=[twin], env={"PARLEY_NODE": "node-b"}, name="node-b").start())

    def node_and_versions(run):
        h = a.health()
        check.assertEqual(h["status"], "serving")
        check.assertEqual(h["node"]["name"], "node-a")
        check.assertEqual(h["node"]["pid"], a.proc.pid)
        check.assertRegex(h["node"]["started_at"], STAMP)
        bot = a.bot_health(BOT)
        check.assertRegex(bot["version"], VERSION)
        check.assertEqual(bot["loads"], 1)
        check.assertIsNone(bot["error"])
        hb = b.health()
        check.assertEqual(hb["node"]["name"], "node-b", "PARLEY_NODE names the node without --node")
        check.assertEqual(b.bot_health(BOT)["version"], bot["version"],
                          "two nodes serving the same files say the same version")

    tap.case("/v1/health names the node, its pid and start; each bot's version is the same on two nodes "
             "serving the same files", node_and_versions)

    def probes(run):
        for node in (a, b):
            r = node.request("GET", "/v1/health/live")
            check.assertEqual((r.status, r.json), (200, {"live": True}))
            r = node.request("GET", "/v1/health/ready")
            check.assertEqual((r.status, r.json), (200, {"ready": True}))
        for path in ("/v1/health/live", "/v1/health/ready"):
            r = a.request("POST", path, b"{}")
            check.assertEqual(r.status, 405)
            check.assertIn("GET", r.headers.get("allow", ""))
        for path in ("/v1/health/x", "/v1/health/ready/x", "/v1/health/livex"):
            check.assertEqual(a.request("GET", path).status, 404, path)

    tap.case("/v1/health/live and /v1/health/ready answer 200; other methods 405, other paths 404", probes)

    def reload_versions(run):
        before = a.bot_health(BOT)
        tone = os.path.join(folder, "scripts", "tone.lua")
        text = read_file(os.path.join(twin, "scripts", "tone.lua"))  # the original, as the twin serves it
        changed = text.replace("Bea never shouts.", "Bea never shouts (run %d)." % run)
        check.assertNotEqual(changed, text)
        save_atomically(tone, changed)
        after = wait_until(lambda: (lambda h: h if h["loads"] == before["loads"] + 1 else None)(a.bot_health(BOT)),
                           what="the reload of tone.lua")
        check.assertRegex(after["version"], VERSION)
        check.assertNotEqual(after["version"], before["version"], "a changed file gives a new version")
        check.assertNotEqual(after["version"], b.bot_health(BOT)["version"])
        # a broken change: the old code serves on, and so does its version
        save_atomically(tone, changed + "\nthis is not Lua\n")
        broken = wait_until(lambda: (lambda h: h if h["error"] else None)(a.bot_health(BOT)),
                            what="the failed reload's error")
        check.assertEqual((broken["version"], broken["loads"]), (after["version"], after["loads"]))
        check.assertIn("tone.lua", broken["error"])
        check.assertIn("Bea", texts(a.say(BOT, new_user("h"), "hi")))
        # the original text again: the same version as the twin's
        save_atomically(tone, text)
        fixed = wait_until(lambda: (lambda h: h if not h["error"] else None)(a.bot_health(BOT)),
                           what="the fixed reload")
        check.assertEqual(fixed["version"], b.bot_health(BOT)["version"],
                          "the same files give the same version again")

    tap.case("a hot reload gives the bot a new version; a broken change keeps the old one with its error; "
             "the original files give the original version", reload_versions)

    def drain_grace(run):
        # the grace is what the case's steps must fit in; they take milliseconds
        c = tap.watch(Server(args=["--node", "node-c", "--drain-grace", "15"], name="node-c").start())
        user = new_user("drain")
        check.assertEqual(c.post(BOT, user, "hi").status, 200)
        mark = c.mark()
        c.proc.send_signal(signal.SIGTERM)
        c.wait_log(r"INFO +signal 15: /v1/health/ready now answers 503; serving 15 s more", mark)
        r = c.request("GET", "/v1/health/ready")
        check.assertEqual((r.status, r.json["ready"]), (503, False))
        check.assertIn("draining", r.json["reason"])
        check.assertEqual(c.health()["status"], "draining")
        check.assertEqual(c.request("GET", "/v1/health/live").status, 200, "a draining node is alive")
        r = c.post(BOT, user, "latte")
        check.assertEqual(r.status, 200, "messages are still answered during the grace")
        check.assertTrue(r.json["replies"])
        check.assertEqual(c.proc.wait(timeout=30), 0, "exit status once the grace is over")
        c.wait_log(r"INFO +drain grace over: finishing the messages in flight", mark)
        c.wait_log(r"INFO +stopped$", mark)
        tap.unwatch(c)
        c.stop()

    tap.case("SIGTERM with --drain-grace: not ready at once, messages answered during the grace, then the "
             "node stops by itself with status 0", drain_grace, runs=1)

    def bad_options(run):
        import subprocess
        from harness import PARLEY
        for args, reason in ((["--drain-grace", "-1"], "--drain-grace wants seconds"),
                             (["--drain-grace", "soon"], "--drain-grace wants seconds"),
                             (["--node", ""], "--node (or PARLEY_NODE) wants a name")):
            p = subprocess.run([PARLEY, "serve", "--listen", "127.0.0.1:0", *args], capture_output=True, text=True,
                               timeout=20)
            check.assertEqual(p.returncode, 2, p.stderr)
            check.assertIn(reason, p.stderr)

    tap.case("--drain-grace and --node refuse bad values with a usage error", bad_options, runs=1)


if __name__ == "__main__":
    run_suite("e2e: health, readiness and draining", main)
