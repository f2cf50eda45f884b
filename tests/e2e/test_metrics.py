#!/usr/bin/env python3
"""test_metrics: GET /metrics end to end (docs/metrics.md). Every scrape is
parsed by the Prometheus text-format parser of Debian's
python3-prometheus-client, and the counts are checked exactly, as the
difference between a scrape before and one after what a case does.

Served: two echo fixture bots (harness.ECHO_FLOW), "cafe" (HTTP API only,
an instruction budget of 1,000,000) and "shop" (the HTTP API and Telegram,
whose Bot API is test_channel_telegram's fake on a loopback port), and
"timer", whose flow schedules a job, with PARLEY_METRICS_TOKEN set, the
test clock on and --metrics-listen 127.0.0.1:0; a second server without
the token.

Cases: messages through the HTTP API and a Telegram webhook (with a
duplicate delivery, a wrong and a missing secret) counted by bot, channel,
route and status, the turn histogram's count equal to the turns, the
commit batches' sizes adding up to the items committed, the store's
figures; a script error and a budget abort by bot; a job pending, then
fired; reloads and a failed reload by bot; the token (401 wrong or missing, 403 unset) and the
address of its own, which wants none."""

import http.client
import os
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Server, check, echo_bot, make_bot, new_user, read_file, run_suite, wait_until,  # noqa: E402
                     write_file)
from test_channel_telegram import BARISTA_TOKEN, FakeTelegram, TelegramClient, new_chat  # noqa: E402

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:  # a Python that is not Debian's: the package is Debian's
    sys.path.append("/usr/lib/python3/dist-packages")
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        print("not ok 1 - the Prometheus text parser is missing: tools/deps.sh test installs python3-prometheus-client")
        print("1..1")
        sys.exit(1)

TOKEN = "metrics-" + uuid.uuid4().hex
SECRET = "shop-hook-secret_" + uuid.uuid4().hex[:8]
UNTHROTTLED = ["--bot-share", "100", "--bot-burst-ms", "600000"]
# "timer": "remind me" schedules a job in ten minutes, which says "nudged".
TIMER_FLOW = """\
return {
  start = function(c, msg)
    if msg.text == "remind me" then c:schedule("nudge", { after = 600 }, { n = 1 }) end
    c:say("info", { text = "ok" })
    return "wait"
  end,
  wait = { answer = function(c) return "start" end },
}
"""
TIMER_JOBS = """\
return { nudge = function(c, data) c:say("info", { text = "nudged " .. data.n }) end }
"""
TIMER_TONE = """\
return { persona = { name = "Tim" }, templates = { en = { info = "{text}", fallback = "timer fallback" } } }
"""
HISTOGRAMS = ("parley_turn_duration_seconds", "parley_commit_duration_seconds", "parley_commit_batch_size")


def get(port, path, headers=None, method="GET"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode("utf-8")
    finally:
        conn.close()


def parse(text):
    """{sample name: [(labels, value)]} of a scrape, checked on the way:
    every family has its # HELP and # TYPE, a name appears once, every
    histogram's buckets rise to its count."""
    samples, names = {}, set()
    for family in text_string_to_metric_families(text):
        check.assertNotIn(family.name, names, "a family twice")
        names.add(family.name)
        check.assertTrue(family.name.startswith("parley_"), family.name)
        check.assertIn(family.type, ("counter", "gauge", "histogram"), family.name)
        check.assertNotEqual(family.documentation, "", family.name)
        for s in family.samples:
            samples.setdefault(s.name, []).append((dict(s.labels), s.value))
        if family.type == "histogram":
            series = {}
            for s in family.samples:
                key = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
                series.setdefault(key, {"buckets": []})
                if s.name.endswith("_bucket"):
                    series[key]["buckets"].append((float(s.labels["le"]), s.value))
                else:
                    series[key][s.name[len(family.name):]] = s.value
            for key, h in series.items():
                counts = [c for _, c in sorted(h["buckets"])]
                check.assertEqual(counts, sorted(counts), (family.name, key))
                check.assertEqual(counts[-1], h["_count"], (family.name, key))
                check.assertEqual(sorted(h["buckets"])[-1][0], float("inf"))
    return samples


def value(samples, name, **labels):
    """The value of the sample of that name with exactly these labels (0 when absent)."""
    found = [v for l, v in samples.get(name, []) if l == labels]
    check.assertLessEqual(len(found), 1, (name, labels))
    return found[0] if found else 0


def total(samples, name):
    return sum(v for _, v in samples.get(name, []))


def main(tap):
    fake = FakeTelegram()
    cafe_dir, cafe_flow = echo_bot("cafe", manifest={"limits": {"instructions": 1000000}})
    shop_dir, _ = echo_bot("shop", manifest={"channels": {"telegram": {
        "bot_token_env": "SHOP_TELEGRAM_BOT_TOKEN", "secret_token_env": "SHOP_TELEGRAM_SECRET_TOKEN"}}})
    timer_dir = make_bot("timer", {"flows/main.lua": TIMER_FLOW, "scripts/jobs.lua": TIMER_JOBS,
                                   "scripts/tone.lua": TIMER_TONE})
    env = {"PARLEY_METRICS_TOKEN": TOKEN, "PARLEY_TEST_CLOCK": "1", "SHOP_TELEGRAM_BOT_TOKEN": BARISTA_TOKEN,
           "SHOP_TELEGRAM_SECRET_TOKEN": SECRET, "PARLEY_TELEGRAM_API_BASE": "http://127.0.0.1:%d" % fake.port,
           "PARLEY_OUTBOX_RETRY_MS": "50"}
    srv = tap.watch(Server([cafe_dir, shop_dir, timer_dir], env=env, args=UNTHROTTLED + ["--metrics-listen", "127.0.0.1:0"],
                           name="parley (metrics)").start())
    metrics_port = int(srv.wait_log(r"metrics: GET http://127\.0\.0\.1:(\d+)/metrics answers without a token").group(1))
    tokenless = tap.watch(Server([cafe_dir], env={"PARLEY_METRICS_TOKEN": None}, name="parley (no token)").start())
    telegram = TelegramClient(srv, fake, "shop", SECRET)

    def scrape():
        status, headers, body = get(srv.port, "/metrics", {"Authorization": "Bearer " + TOKEN})
        check.assertEqual(status, 200, body[:300])
        check.assertEqual(headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8")
        return parse(body)

    def delta(before, after, name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    def counted(run):
        before = scrape()
        cafe_user, shop_user = new_user("cafe"), new_user("shop")
        for i in range(3):
            srv.say("cafe", cafe_user, "hello %d" % i)
        for i in range(2):
            srv.say("shop", shop_user, "hi %d" % i)
        check.assertEqual(srv.request("POST", "/v1/bots/cafe/messages", b"{not json").status, 400)
        check.assertEqual(srv.post("nobody", cafe_user, "hi").status, 404)
        check.assertEqual(srv.request("GET", "/v1/health").status, 200)
        check.assertEqual(srv.request("GET", "/no/such/%s/path" % uuid.uuid4().hex).status, 404)
        chat = new_chat()
        update = telegram.message_update(chat, "hello from telegram")
        check.assertEqual(telegram.post(update).status, 200)
        fake.wait_delivered(chat, 1)
        check.assertEqual(telegram.post(update).status, 200)  # a redelivery: recognised, not handled again
        check.assertEqual(telegram.post(update, secret="wrong-" + SECRET).status, 403)
        check.assertEqual(telegram.post(update, secret=None).status, 401)
        wait_until(lambda: srv.pending_sends("telegram", str(chat)) == 0, what="the outbox to send everything")
        after = scrape()

        check.assertEqual(delta(before, after, "parley_messages_total", bot="cafe", channel="rest"), 3)
        check.assertEqual(delta(before, after, "parley_messages_total", bot="shop", channel="rest"), 2)
        check.assertEqual(delta(before, after, "parley_messages_total", bot="shop", channel="telegram"), 1)
        check.assertEqual(total(after, "parley_messages_total") - total(before, "parley_messages_total"), 6)
        check.assertEqual(delta(before, after, "parley_turn_duration_seconds_count", bot="cafe"), 3)
        check.assertEqual(delta(before, after, "parley_turn_duration_seconds_count", bot="shop"), 3)

        answers = {("message", "200"): 5, ("message", "400"): 1, ("message", "404"): 1, ("health", "200"): 1,
                   ("other", "404"): 1, ("webhook", "200"): 2, ("webhook", "403"): 1, ("webhook", "401"): 1,
                   ("metrics", "200"): 1}  # the first scrape, counted once it was answered
        for (route, status), n in answers.items():
            check.assertEqual(delta(before, after, "parley_http_requests_total", route=route, status=status), n,
                              (route, status))
        check.assertEqual(total(after, "parley_http_requests_total") - total(before, "parley_http_requests_total"),
                          sum(answers.values()))
        for labels in after["parley_http_requests_total"]:
            check.assertIn(labels[0]["route"], ("message", "webhook", "webchat", "agent", "admin", "pay",
                                                "analytics", "health", "metrics", "other"))

        check.assertEqual(delta(before, after, "parley_webhook_verification_failures_total", bot="shop",
                                channel="telegram"), 2)
        check.assertEqual(delta(before, after, "parley_inbox_duplicates_total", bot="shop", channel="telegram"), 1)
        sent = len(fake.delivered(chat))
        check.assertGreaterEqual(sent, 1)
        check.assertEqual(delta(before, after, "parley_outbox_sent_total", bot="shop", channel="telegram"), sent)
        check.assertEqual(delta(before, after, "parley_outbox_retries_total", bot="shop", channel="telegram"), 0)
        check.assertEqual(delta(before, after, "parley_outbox_dead_letters_total", bot="shop", channel="telegram"), 0)
        check.assertEqual(value(after, "parley_outbox_depth", bot="shop", channel="telegram"), 0)

        # six turns and two webhook records committed, in however many batches
        check.assertEqual(delta(before, after, "parley_commit_batch_size_sum"), 8)
        batches = delta(before, after, "parley_commit_batch_size_count")
        check.assertGreaterEqual(batches, 1)
        check.assertLessEqual(batches, 8)
        check.assertEqual(delta(before, after, "parley_commit_duration_seconds_count"), batches)

        check.assertEqual(delta(before, after, "parley_sessions"), 3)
        check.assertEqual(value(after, "parley_jobs_pending"), 0)
        check.assertGreater(value(after, "parley_database_size_bytes"), 0)
        check.assertEqual(value(after, "parley_open_streams"), 0)
        for name in HISTOGRAMS:
            check.assertIn(name + "_count", after)
        fake.take_problems()

    def errors_by_bot(run):
        user = new_user("errors")
        before = scrape()
        fallback = "Sorry from cafe's fallback template: please say that again."
        check.assertEqual(srv.say("cafe", user, "error")[-1], {"text": fallback})
        check.assertEqual(srv.say("cafe", user, "loop")[-1], {"text": fallback})
        srv.say("shop", user, "fine")
        after = scrape()
        check.assertEqual(delta(before, after, "parley_script_errors_total", bot="cafe"), 1)
        check.assertEqual(delta(before, after, "parley_script_errors_total", bot="shop"), 0)
        check.assertEqual(delta(before, after, "parley_budget_aborts_total", bot="cafe", budget="instructions"), 1)
        check.assertEqual(delta(before, after, "parley_budget_aborts_total", bot="cafe", budget="memory"), 0)
        check.assertEqual(delta(before, after, "parley_budget_aborts_total", bot="shop", budget="instructions"), 0)
        # the failed turns ran: they are messages, in the histogram too
        check.assertEqual(delta(before, after, "parley_messages_total", bot="cafe", channel="rest"), 2)
        check.assertEqual(delta(before, after, "parley_turn_duration_seconds_count", bot="cafe"), 2)
        check.assertGreater(value(after, "parley_script_seconds_total", bot="cafe"), 0)

    def jobs(run):
        user = new_user("timer")
        before = scrape()
        check.assertEqual(srv.say("timer", user, "remind me"), [{"text": "ok"}])
        scheduled = scrape()
        check.assertEqual(delta(before, scheduled, "parley_jobs_pending"), 1)
        check.assertEqual(delta(before, scheduled, "parley_jobs_fired_total", bot="timer"), 0)
        r = srv.request("POST", "/v1/test/clock", {"advance": 601})
        check.assertEqual(r.status, 200, r)
        # the job's turn is a message too: counted once it has run
        after = wait_until(lambda: (lambda s: s if delta(before, s, "parley_messages_total", bot="timer",
                                                         channel="rest") == 2 else None)(scrape()),
                           what="the job's turn")
        check.assertEqual(delta(before, after, "parley_jobs_fired_total", bot="timer"), 1)
        check.assertEqual(delta(before, after, "parley_jobs_pending"), 0)
        check.assertEqual(delta(before, after, "parley_http_requests_total", route="other", status="200"), 1)

    def reloads_by_bot(run):
        path = os.path.join(cafe_dir, "flows", "main.lua")
        before = scrape()
        mark = srv.mark()
        write_file(path, cafe_flow + "-- saved again (run %d)\n" % run)
        srv.wait_log(r"\[cafe\] reloaded in [\d.]+ ms after a change to flows/main\.lua", mark)
        mark = srv.mark()
        write_file(path, "return {\n")
        srv.wait_log(r"\[cafe\] reload failed", mark)
        mark = srv.mark()
        write_file(path, cafe_flow)
        srv.wait_log(r"\[cafe\] reloaded in [\d.]+ ms after a change to flows/main\.lua", mark)
        after = scrape()
        check.assertEqual(delta(before, after, "parley_reloads_total", bot="cafe"), 3)
        check.assertEqual(delta(before, after, "parley_reload_failures_total", bot="cafe"), 1)
        check.assertEqual(delta(before, after, "parley_reloads_total", bot="shop"), 0)
        check.assertEqual(read_file(path), cafe_flow)

    def token(run):
        status, headers, body = get(srv.port, "/metrics")
        check.assertEqual(status, 401, body)
        check.assertEqual(headers.get("www-authenticate"), "Bearer")
        check.assertIn("PARLEY_METRICS_TOKEN", body)
        status, _, body = get(srv.port, "/metrics", {"Authorization": "Bearer wrong-" + TOKEN})
        check.assertEqual(status, 401, body)
        status, _, body = get(srv.port, "/metrics", {"Authorization": "Bearer " + TOKEN}, method="POST")
        check.assertEqual(status, 405, body)
        # unset, the endpoint is off on the API's address, and says how to turn it on
        status, _, body = get(tokenless.port, "/metrics", {"Authorization": "Bearer " + TOKEN})
        check.assertEqual(status, 403, body)
        check.assertRegex(body, r"set PARLEY_METRICS_TOKEN")
        after = scrape()
        check.assertGreaterEqual(value(after, "parley_http_requests_total", route="metrics", status="401"), 2 * run)

    def own_address(run):
        status, headers, body = get(metrics_port, "/metrics")
        check.assertEqual(status, 200, body[:300])
        check.assertEqual(headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8")
        samples = parse(body)
        check.assertGreater(value(samples, "parley_messages_total", bot="cafe", channel="rest"), 0)
        # the same registry as the API's address, and nothing else is served there
        check.assertEqual(get(metrics_port, "/v1/health")[0], 404)
        check.assertEqual(get(metrics_port, "/v1/bots/cafe/messages", method="POST")[0], 404)
        check.assertEqual(get(metrics_port, "/metrics", method="POST")[0], 405)
        check.assertEqual(srv.request("GET", "/v1/health").status, 200)

    try:
        tap.case("messages, answers, webhook failures and duplicates counted exactly", counted)
        tap.case("script errors and budget aborts by bot; failed turns are messages", errors_by_bot)
        tap.case("a job: pending, then fired, and its turn a message", jobs)
        tap.case("reloads and failed reloads by bot", reloads_by_bot)
        tap.case("the token: 401 missing or wrong, 403 unset", token)
        tap.case("--metrics-listen: /metrics without a token, and nothing else", own_address)
    finally:
        fake.stop()


if __name__ == "__main__":
    run_suite("metrics", main)
