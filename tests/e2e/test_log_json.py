#!/usr/bin/env python3
"""test_log_json: parley serve --log-format json (docs/configuration.md).
Every line the server writes, from its start to its stop, is one JSON
object with "time" (RFC 3339 UTC, milliseconds), "level" and "message";
a line about a bot's turn names "bot" and "channel", a script's error adds
"file" and "line" (its file:line), and no line holds a token, a secret
query value or a card number, whatever a script logged.

Served: the echo fixture bot "cafe" (harness.ECHO_FLOW, an instruction
budget of 1,000,000), whose "error" command raises, "loop" runs out of
instructions and "log" logs its words."""

import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server, check, echo_bot, line_of, new_user, run_suite, wait_until, write_file  # noqa: E402

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
LEVELS = ("debug", "info", "warn", "error")
FIELDS = {"time": str, "level": str, "message": str, "bot": str, "channel": str, "file": str, "line": int}
FALLBACK = "Sorry from cafe's fallback template: please say that again."
UNTHROTTLED = ["--bot-share", "100", "--bot-burst-ms", "600000"]


def parsed(lines):
    """Each line as its JSON object, checked: nothing but the known fields,
    of their types, a time and a level as they must be."""
    out = []
    for line in lines:
        try:
            obj = json.loads(line)
        except ValueError:
            raise AssertionError("not a JSON line: %r" % line)
        check.assertIsInstance(obj, dict, line)
        for key in ("time", "level", "message"):
            check.assertIn(key, obj, line)
        for key, v in obj.items():
            check.assertIn(key, FIELDS, line)
            check.assertIsInstance(v, FIELDS[key], line)
        check.assertRegex(obj["time"], TIME)
        check.assertIn(obj["level"], LEVELS)
        out.append(obj)
    return out


def main(tap):
    cafe_dir, flow = echo_bot("cafe", manifest={"limits": {"instructions": 1000000}})
    srv = tap.watch(Server([cafe_dir], args=["--log-format", "json"] + UNTHROTTLED, name="parley (json log)").start())

    def lines_since(mark):
        return parsed(srv.log_since(mark))

    def wait_line(pattern, mark):
        """Waits for the first line after mark whose message matches
        pattern; returns it parsed."""
        rx = re.compile(pattern)

        def found():
            return next((o for o in lines_since(mark) if rx.search(o["message"])), None)
        return wait_until(found, what="a JSON line whose message matches %r" % pattern)

    def every_line(run):
        objs = parsed(srv.log_since(0))
        messages = [o["message"] for o in objs]
        check.assertTrue(any(m.startswith("listening on 127.0.0.1:") for m in messages), messages)
        loaded = [o for o in objs if re.match(r"\[cafe\] loaded in", o["message"])]
        check.assertEqual(len(loaded), 1)
        check.assertEqual(loaded[0].get("bot"), "cafe")
        check.assertEqual(loaded[0]["level"], "info")

    def script_error(run):
        user = new_user("error")
        mark = srv.mark()
        check.assertEqual(srv.say("cafe", user, "error")[-1], {"text": FALLBACK})
        obj = wait_line(r"turn failed: flows/main\.lua:\d+: deliberate failure", mark)
        check.assertEqual(obj["level"], "error")
        check.assertEqual(obj["bot"], "cafe")
        check.assertEqual(obj["channel"], "rest")
        check.assertEqual(obj["file"], "flows/main.lua")
        check.assertEqual(obj["line"], line_of(flow, "MARK:error"))
        check.assertIn("rest/%s: turn failed: flows/main.lua:%d: deliberate failure" % (user, obj["line"]),
                       obj["message"])
        # the traceback stays in the message: one line of JSON all the same
        check.assertIn("stack traceback:", obj["message"])
        lines_since(mark)

    def budget_abort(run):
        user = new_user("loop")
        mark = srv.mark()
        check.assertEqual(srv.say("cafe", user, "loop")[-1], {"text": FALLBACK})
        obj = wait_line(r"turn failed: flows/main\.lua:\d+: instruction budget", mark)
        check.assertEqual((obj["level"], obj["bot"], obj["channel"]), ("error", "cafe", "rest"))
        check.assertEqual((obj["file"], obj["line"]), ("flows/main.lua", line_of(flow, "MARK:loop")))

    def failed_reload(run):
        path = os.path.join(cafe_dir, "flows", "main.lua")
        mark = srv.mark()
        write_file(path, "return {\n  start = function(c)\n    c:say(\"echo\", {})\n")
        obj = wait_line(r"^\[cafe\] flows/main\.lua:\d+: ", mark)
        srv.wait_log(r"\[cafe\] reload failed", mark)
        check.assertEqual((obj["level"], obj["bot"], obj["file"]), ("error", "cafe", "flows/main.lua"))
        check.assertIn("flows/main.lua:%d:" % obj["line"], obj["message"])
        check.assertNotIn("channel", obj)
        mark = srv.mark()
        write_file(path, flow)
        srv.wait_log(r"\[cafe\] reloaded in", mark)
        lines_since(mark)

    def nothing_secret(run):
        user = new_user("secrets")
        token = "sk_live_%s" % new_user("t").replace("-", "")
        words = ("Authorization: Bearer %s card 4242 4242 4242 4242 and 5555555555554444 "
                 "https://example.com/hook?hub.verify_token=hush%d&page=2 api_key=apikey%dvalue" % (token, run, run))
        mark = srv.mark()
        srv.say("cafe", user, "log " + words)
        obj = wait_line(r"^\[cafe\] flows/main\.lua:\d+: Authorization: Bearer ", mark)
        check.assertEqual((obj["level"], obj["bot"], obj["channel"]), ("info", "cafe", "rest"))
        check.assertIn("Authorization: Bearer [redacted] card [redacted] and [redacted] "
                       "https://example.com/hook?hub.verify_token=[redacted]&page=2 api_key=[redacted]", obj["message"])
        everything = "\n".join(srv.log_since(0))
        # (secrets long enough not to turn up by chance, in a temporary folder's name, say)
        for secret in (token, "4242 4242 4242 4242", "5555555555554444", "hush%d" % run, "apikey%dvalue" % run):
            check.assertNotIn(secret, everything)

    def until_the_stop(run):
        check.assertEqual(srv.stop(), 0)
        objs = parsed(srv.log_since(0))
        check.assertEqual(objs[-1]["message"], "stopped")

    tap.case("every line is one JSON object: time, level, message", every_line)
    tap.case("a script's error: bot, channel, file and line", script_error)
    tap.case("a budget's abort: bot, channel, file and line", budget_abort)
    tap.case("a failed reload: bot, file and line", failed_reload)
    tap.case("no token, secret query value or card number in any line", nothing_secret)
    tap.case("JSON to the last line of a clean stop", until_the_stop, runs=1)


if __name__ == "__main__":
    run_suite("--log-format json", main)
