#!/usr/bin/env python3
"""tests/spec_runtime/run.py: what `parley test` prints about specs, in TAP.

The fixture bots here are not run as specs that must pass (tests/run.sh runs
this file instead): failing/ has specs that fail on purpose, to check the
exact message busted prints for a turn that failed (the spec's line, then
the turn's own file:line), and coverage/ has a step and templates no spec
reaches, to check `parley test --coverage` and its JSON.
"""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PARLEY = os.path.abspath(os.environ.get("PARLEY", os.path.join(ROOT, "parley")))

results = []


def check(ok, name, detail=""):
    results.append(ok)
    print("%s %d - %s" % ("ok" if ok else "not ok", len(results), name))
    if not ok and detail:
        for line in detail.rstrip().splitlines()[:40]:
            print("# " + line)


def parley_test(bot, *options):
    """Runs parley test on a fixture bot; returns (exit status, stdout, stderr)."""
    run = subprocess.run([PARLEY, "test", os.path.join(HERE, bot), *options],
                         capture_output=True, text=True, timeout=120)
    return run.returncode, run.stdout, run.stderr


def lines(text):
    return text.splitlines()


# --- a turn that failed, as busted prints it ---------------------------------

status, out, err = parley_test("failing", "-o", "TAP")
check(status != 0, "specs with failed turns make parley test exit non-zero", out + err)
expected = [
    ("not ok 1 - a failed turn raises from chat:send",
     "# Failure message: spec/failing_spec.lua:10: the turn failed: "
     "flows/main.lua:18: attempt to index a nil value (local 'order')"),
    ("not ok 2 - a failed turn raises from chat:tap",
     "# Failure message: spec/failing_spec.lua:18: the turn failed: "
     "flows/main.lua:24: attempt to call a nil value (method 'bad_method')"),
    ("not ok 3 - a failed turn raises for a budget",
     "# Failure message: spec/failing_spec.lua:24: the turn failed: "
     "flows/main.lua:20: instruction budget of 200000 exceeded (a loop that never ends?)"),
    ("not ok 4 - a failed turn expected by chat:fails, but the turn answered",
     "# Failure message: spec/failing_spec.lua:30: the turn was expected to fail, but it answered: Fine."),
]
got = lines(out)
for title, message in expected:
    at = got.index(title) if title in got else -1
    check(at >= 0 and message in got[at + 1:at + 3],
          "TAP: %s, at the spec's line with the turn's file:line" % title[len("not ok N - "):],
          "expected %r then %r in:\n%s" % (title, message, out))
check("ok 5 - a turn meant to fail passes with chat:fails and gives its error" in got,
      "chat:fails passes for a turn that fails and gives its error", out)
title = "not ok 6 - testing.share() is refused inside an it"
at = got.index(title) if title in got else -1
check(at >= 0 and "# Failure message: spec/failing_spec.lua:49: testing.share() belongs in a describe block "
      "or at the top of a spec file, not in an it" in got[at + 1:at + 3],
      "testing.share() inside an it is refused at its line", out)

title = "not ok 7 - the panel's opening raises from chat:open when its turn failed"
at = got.index(title) if title in got else -1
check(at >= 0 and "# Failure message: spec/failing_spec.lua:56: the turn failed: "
      "flows/main.lua:8: attempt to index a nil value (local 'page')" in got[at + 1:at + 3],
      "chat:open raises at the spec's line when the opening's turn failed", out)
check("ok 8 - the panel's opening passes with chat:fails{open = true} and gives its error" in got,
      "chat:fails{open = true} passes for an opening whose turn fails", out)

status, out, err = parley_test("failing")
check(status != 0 and "spec/failing_spec.lua:10: the turn failed: flows/main.lua:18: "
      "attempt to index a nil value (local 'order')" in lines(out),
      "busted's own output shows the same message on a line of its own", out + err)

# --- coverage -----------------------------------------------------------------

REPORT = """coverage: steps reached 3/6, templates reached 4/14
steps no spec reached:
  checkout.start  flows/checkout.lua:3
  main.gift_note  flows/main.lua:19
  main.resume  flows/main.lua:23
templates no spec reached (locale key):
  en ask_note
  en bye
  en fallback
  en noted
  es ask_note
  es bye
  es echo
  es fallback
  es noted
  es you_said
"""

status, out, err = parley_test("coverage", "-o", "TAP", "--coverage")
check(status == 0 and "ok 2 - greets in Spanish" in lines(out) and "1..3" in lines(out),
      "--coverage is parley's: the specs run and pass as without it", out + err)
check(out.endswith("1..3\n" + REPORT), "--coverage prints the summary and what no spec reached", out + err)

EXPECTED_JSON = {
    "steps": {"reached": 3, "total": 6, "unreached": [
        {"step": "checkout.start", "at": "flows/checkout.lua:3"},
        {"step": "main.gift_note", "at": "flows/main.lua:19"},
        {"step": "main.resume", "at": "flows/main.lua:23"}]},
    "templates": {"reached": 4, "total": 14, "unreached": [
        {"locale": "en", "key": "ask_note"}, {"locale": "en", "key": "bye"},
        {"locale": "en", "key": "fallback"}, {"locale": "en", "key": "noted"},
        {"locale": "es", "key": "ask_note"}, {"locale": "es", "key": "bye"},
        {"locale": "es", "key": "echo"}, {"locale": "es", "key": "fallback"},
        {"locale": "es", "key": "noted"}, {"locale": "es", "key": "you_said"}]},
}

with tempfile.TemporaryDirectory() as tmp:
    # a relative FILE is the caller's, though busted works in the bot's folder
    run = subprocess.run([PARLEY, "test", os.path.join(HERE, "coverage"), "--coverage=report.json"],
                         capture_output=True, text=True, timeout=120, cwd=tmp)
    path = os.path.join(tmp, "report.json")
    report = json.load(open(path)) if os.path.exists(path) else None
    check(run.returncode == 0 and report == EXPECTED_JSON,
          "--coverage=FILE writes the report as JSON, relative to where parley ran",
          "%s\n%s%s" % (json.dumps(report), run.stdout, run.stderr))
    check(run.stdout.endswith(REPORT), "--coverage=FILE prints the report too", run.stdout)

status, out, err = parley_test("coverage", "-o", "TAP", "--coverage=-")
json_start = out.find("\n{")
report = json.loads(out[json_start:]) if json_start >= 0 else None
check(status == 0 and report == EXPECTED_JSON and "coverage:" not in out,
      "--coverage=- puts only the JSON on stdout, after the specs' output", out + err)

status, out, err = parley_test("coverage", "-o", "TAP", "--coverage=-", "--filter", "Spanish")
report = json.loads(out[out.find("\n{"):]) if "\n{" in out else {}
unreached = report.get("templates", {}).get("unreached", [])
check(status == 0 and {"locale": "en", "key": "hello"} in unreached
      and {"locale": "es", "key": "hello"} not in unreached and "ok 1 - greets in Spanish" in lines(out),
      "busted's options still reach busted beside --coverage (--filter)", out + err)

with tempfile.TemporaryDirectory() as tmp:
    # a bot whose scripts do not load: coverage says why instead of "0/0"
    import shutil
    broken = os.path.join(tmp, "broken")
    shutil.copytree(os.path.join(HERE, "coverage"), broken)
    with open(os.path.join(broken, "scripts", "tone.lua"), "w") as f:
        f.write("return {\n")
    run = subprocess.run([PARLEY, "test", broken, "--coverage"], capture_output=True, text=True, timeout=120)
    check(run.returncode != 0 and "coverage: nothing counted: the bot's scripts did not load: "
          "scripts/tone.lua:2: unexpected symbol near <eof>" in lines(run.stdout) and "0/0" not in run.stdout,
          "--coverage on a bot that does not load prints the load error, not 0/0", run.stdout + run.stderr)
    run = subprocess.run([PARLEY, "test", broken, "--coverage=-"], capture_output=True, text=True, timeout=120)
    start = run.stdout.find("\n{")
    report = json.loads(run.stdout[start:]) if start >= 0 else {}
    check(report.get("load_error") == "scripts/tone.lua:2: unexpected symbol near <eof>",
          "--coverage=- has the load error as load_error", run.stdout + run.stderr)

status, out, err = parley_test("coverage", "--coverage=/no/such/folder/report.json")
check(status != 0 and "cannot write the coverage report to /no/such/folder/report.json" in err,
      "a coverage file that cannot be written fails the run and says so", out + err)

print("1..%d" % len(results))
sys.exit(0 if all(results) else 1)
