#!/usr/bin/env python3
"""test_understand_llm: a bot's optional language model end to end
(docs/understanding-llm.md), against fake_llm.FakeLLM on a loopback port.

Served: a copy of tests/bots/llm ("llmshop": a latte with size, milk and
multiple extras, a croissant, a tea; intents order_status and
opening_hours; the code WELCOME10) whose understanding.llm points at the
fake, with its key in LLMSHOP_LLM_KEY, PARLEY_ALLOW_PRIVATE_HTTP=1 (the
fake is on loopback), the test clock (each case starts on a new day, so a
new minute of the rate and a new day of the budget) and the metrics token.
Its flow answers every message with what was understood, as JSON.

Cases: a confident parse asks no model; the request carries the schema
made from the catalog and intents, the redacted text and the bot's key;
unknown skus, options, values and intents are dropped, a quantity held to
99, prices are the catalog's; a timeout, a body that is not JSON, an
answer without a tool call and a 500 leave the parser's result, each
counted by reason; the cache answers the same words again without the
server; the rate (4 a minute) and the token budget (1000 a day) stop calls
and say so in /metrics; without the key, or without the operator's
permission for a loopback address, no request is made; a manifest with a
wrong setting does not load."""

import json
import os
import random
import re
import shutil
import string
import subprocess
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_llm import FakeLLM  # noqa: E402
from harness import PARLEY, ROOT, Server, check, new_user, run_suite, temp_dir, texts, wait_until  # noqa: E402

BOT = "llmshop"
KEY = "llm-key-" + uuid.uuid4().hex
TOKEN = "metrics-" + uuid.uuid4().hex
UNTHROTTLED = ["--bot-share", "100", "--bot-burst-ms", "600000"]
SAMPLE = re.compile(r"^([a-z_]+)(?:\{(.*)\})? (\S+)$")


def bot_copy(fake, **changes):
    """A copy of tests/bots/llm whose model is the fake, with changes to
    its understanding.llm (a value None removes the setting)."""
    dst = os.path.join(temp_dir("parley-llm-"), BOT)
    shutil.copytree(os.path.join(ROOT, "tests", "bots", "llm"), dst, ignore=shutil.ignore_patterns("spec"))
    path = os.path.join(dst, "bot.json")
    with open(path) as f:
        manifest = json.load(f)
    settings = manifest["understanding"]["llm"]
    settings["base_url"] = fake.base_url
    for k, v in changes.items():
        if v is None:
            settings.pop(k, None)
        else:
            settings[k] = v
    with open(path, "w") as f:
        json.dump(manifest, f, indent=2)
    return dst


def nonce():
    """Letters no other message has used (no digits: they could read as a phone number)."""
    return "".join(random.choice(string.ascii_lowercase) for _ in range(10))


def scrape(srv):
    r = srv.request("GET", "/metrics", headers={"Authorization": "Bearer " + TOKEN})
    check.assertEqual(r.status, 200, r)
    samples = {}
    for line in r.body.decode().splitlines():
        m = SAMPLE.match(line)
        if m and m.group(1).startswith("parley_llm_"):
            labels = tuple(sorted(re.findall(r'(\w+)="([^"]*)"', m.group(2) or "")))
            samples[(m.group(1), labels)] = float(m.group(3))
    return samples


def metric(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0)


class Shop:
    def __init__(self, srv, fake):
        self.srv, self.fake = srv, fake

    def shopper(self):
        user = new_user("llm")
        check.assertEqual(texts(self.srv.say(BOT, user, "hi")), "Hello.")
        return user

    def understood(self, user, text):
        replies = self.srv.say(BOT, user, text)
        check.assertEqual(len(replies), 1, replies)
        return json.loads(replies[0]["text"])

    def new_day(self):
        r = self.srv.request("POST", "/v1/test/clock", {"advance": 86400})
        check.assertEqual(r.status, 200, r)

    def results(self, before, after):
        """How many asks ended each way between two scrapes."""
        out = {}
        for (name, labels), v in after.items():
            if name == "parley_llm_requests_total" and dict(labels).get("bot") == BOT:
                d = v - before.get((name, labels), 0)
                if d:
                    out[dict(labels)["result"]] = d
        return out


def main(tap):
    fake = FakeLLM()
    env = {"LLMSHOP_LLM_KEY": KEY, "PARLEY_ALLOW_PRIVATE_HTTP": "1", "PARLEY_TEST_CLOCK": "1",
           "PARLEY_METRICS_TOKEN": TOKEN}
    srv = tap.watch(Server([bot_copy(fake)], env=env, args=UNTHROTTLED, name="parley (llm)").start())
    shop = Shop(srv, fake)

    def confident(run):
        shop.new_day()
        user = shop.shopper()
        before = fake.count()
        r = shop.understood(user, "Latte")
        check.assertEqual(r["source"], "parser", r)
        check.assertEqual([i["sku"] for i in r["items"]], ["latte"])
        check.assertEqual(fake.count(), before, "the model was asked about a confident parse")

    def request_and_validation(run):
        shop.new_day()
        user = shop.shopper()
        word = nonce()
        fake.answer(word, {
            "items": [
                {"sku": "latte", "qty": 2, "price": 1,
                 "options": {"size": "large", "milk": "oat", "extras": ["vanilla", "glitter"], "flavour": "mint"}},
                {"sku": "unicorn", "qty": 1},
                {"sku": "croissant", "qty": 500, "options": {"size": "large"}, "price": 0},
                {"sku": "tea", "qty": 1, "options": {"size": "gigantic"}},
            ],
            "without": ["tea", "dragon"], "code": "welcome10", "price": 0, "total": 1})
        before = scrape(srv)
        sent = "%s the milky ones, text me on +44 7700 900123 or at jo.smith@example.com" % word
        r = shop.understood(user, sent)
        check.assertEqual(r["source"], "llm", r)
        check.assertEqual(r["items"], [
            {"sku": "latte", "qty": 2, "options": {"size": "large", "milk": "oat", "extras": ["vanilla"]},
             "price": 350},
            {"sku": "croissant", "qty": 99, "options": {}, "price": 250},
            {"sku": "tea", "qty": 1, "options": {}, "price": 280}])
        check.assertEqual(r["without"], ["tea"])
        check.assertEqual(r["code"], "WELCOME10")
        after = scrape(srv)
        check.assertEqual(shop.results(before, after), {"ok": 1})
        check.assertEqual(metric(after, "parley_llm_tokens_total", bot=BOT) -
                          metric(before, "parley_llm_tokens_total", bot=BOT), 10)
        check.assertEqual(metric(after, "parley_llm_latency_seconds_count", bot=BOT) -
                          metric(before, "parley_llm_latency_seconds_count", bot=BOT), 1)

        req = fake.requests()[-1]
        check.assertEqual(req["path"], "/v1/chat/completions")
        check.assertEqual(req["headers"].get("authorization"), "Bearer " + KEY)
        body = req["body"]
        check.assertEqual(body["model"], "fixture-model")
        check.assertEqual(body["temperature"], 0)
        user_text = [m["content"] for m in body["messages"] if m["role"] == "user"]
        check.assertEqual(user_text, ["%s the milky ones, text me on [phone] or at [email]" % word])
        system = [m["content"] for m in body["messages"] if m["role"] == "system"][0]
        check.assertIn("latte: Latte", system)
        check.assertIn("order_status", system)
        check.assertNotIn("7700", json.dumps(body))
        check.assertNotIn("jo.smith", json.dumps(body))
        check.assertEqual(body["tool_choice"], {"type": "function", "function": {"name": "understood"}})
        tool = body["tools"][0]["function"]
        check.assertEqual(tool["name"], "understood")
        props = tool["parameters"]["properties"]
        check.assertEqual(props["intent"]["enum"], ["opening_hours", "order_status"])
        item = props["items"]["items"]["properties"]
        check.assertEqual(item["sku"]["enum"], ["latte", "croissant", "tea"])
        check.assertEqual(item["qty"], {"type": "integer", "minimum": 1, "description": item["qty"]["description"]})
        options = item["options"]["properties"]
        check.assertEqual(sorted(options), ["extras", "milk", "size"])
        check.assertEqual(options["size"]["enum"], ["small", "large"])
        check.assertEqual(options["milk"]["enum"], ["whole", "oat"])
        check.assertEqual(options["extras"]["type"], "array")
        check.assertEqual(options["extras"]["items"]["enum"], ["vanilla", "caramel"])
        check.assertEqual(props["yes"]["type"], "boolean")
        check.assertEqual(props["number"]["type"], "integer")
        check.assertEqual(props["code"]["type"], "string")
        check.assertNotIn("price", json.dumps(tool["parameters"]))

    def intents(run):
        shop.new_day()
        user = shop.shopper()
        known, unknown = nonce(), nonce()
        fake.answer(known, {"intent": "order_status", "yes": True, "number": 2})
        fake.answer(unknown, {"intent": "refund", "yes": "maybe", "number": -3, "code": "FREESTUFF",
                              "items": [{"sku": "pizza"}]})
        before = scrape(srv)
        r = shop.understood(user, "wheres my stuff " + known)
        check.assertEqual((r["source"], r.get("intent"), r.get("yes"), r.get("number")), ("llm", "order_status", True, 2))
        r = shop.understood(user, "gimme my money " + unknown)
        check.assertEqual(r, {"source": "parser"})
        check.assertEqual(shop.results(before, scrape(srv)), {"ok": 1, "invalid": 1})

    def failures(run):
        shop.new_day()
        user = shop.shopper()
        words = {"slow": nonce(), "garbage": nonce(), "status": nonce(), "content": nonce()}
        fake.misbehave(words["slow"], {"slow": True})
        fake.misbehave(words["garbage"], {"garbage": True})
        fake.misbehave(words["status"], {"status": 500})
        fake.misbehave(words["content"], {"content": "They want a latte, I think."})
        before, mark = scrape(srv), srv.mark()
        for how, word in sorted(words.items()):
            r = shop.understood(user, "something vague " + word)
            check.assertEqual(r, {"source": "parser"}, how)
        fake.release()
        check.assertEqual(shop.results(before, scrape(srv)), {"timeout": 1, "invalid": 2, "http-error": 1})
        srv.wait_log(r"understanding\.llm: no answer \(timeout\)", mark)
        srv.wait_log(r"understanding\.llm: no answer \(http-error; status 500\)", mark)
        for word in words.values():
            check.assertNotIn(word, srv.log_text(mark), "the shopper's words in the log")

    def cache(run):
        shop.new_day()
        user = shop.shopper()
        word = nonce()
        fake.answer(word, {"items": [{"sku": "tea", "qty": 3, "options": {"size": "small"}}]})
        before, asked = scrape(srv), fake.count()
        first = shop.understood(user, "%s please, call 0044 7700 900123" % word)
        again = shop.understood(user, "  %s   PLEASE, call +44 7700 900999 " % word.upper())
        check.assertEqual(first["source"], "llm")
        check.assertEqual(again, first)
        check.assertEqual(fake.count(), asked + 1, "the cache did not answer")
        after = scrape(srv)
        check.assertEqual(metric(after, "parley_llm_cache_hits_total", bot=BOT) -
                          metric(before, "parley_llm_cache_hits_total", bot=BOT), 1)
        check.assertEqual(shop.results(before, after), {"ok": 1})

    # The rate and the budget are the bot's, not a shopper's nor a thread's
    # (with PARLEY_THREADS=2 the shoppers' turns run on both threads).
    def rate(run):
        shop.new_day()
        users = [shop.shopper() for _ in range(5)]
        user = users[-1]
        word = nonce()
        fake.answer(word, {"items": [{"sku": "croissant"}]})
        before, asked, mark = scrape(srv), fake.count(), srv.mark()
        for i in range(4):
            r = shop.understood(users[i], "%s %s" % (word, nonce()))
            check.assertEqual(r["source"], "llm", i)
        r = shop.understood(user, "%s %s" % (word, nonce()))
        check.assertEqual(r, {"source": "parser"})
        check.assertEqual(fake.count(), asked + 4)
        check.assertEqual(shop.results(before, scrape(srv)), {"ok": 4, "rate": 1})
        srv.wait_log(r"INFO .*understanding\.llm: no answer \(rate\)", mark)
        r = srv.request("POST", "/v1/test/clock", {"advance": 60})  # the next minute
        check.assertEqual(r.status, 200, r)
        check.assertEqual(shop.understood(user, "%s %s" % (word, nonce()))["source"], "llm")

    def budget(run):
        shop.new_day()
        users = [shop.shopper() for _ in range(3)]
        user = users[0]
        word = nonce()
        fake.answer(word, {"items": [{"sku": "latte"}]})
        fake.tokens = 600
        try:
            before, asked = scrape(srv), fake.count()
            sources = [shop.understood(u, "%s %s" % (word, nonce()))["source"] for u in users]
        finally:
            fake.tokens = 10
        check.assertEqual(sources, ["llm", "llm", "parser"])
        check.assertEqual(fake.count(), asked + 2)
        after = scrape(srv)
        check.assertEqual(shop.results(before, after), {"ok": 2, "budget": 1})
        check.assertEqual(metric(after, "parley_llm_tokens_total", bot=BOT) -
                          metric(before, "parley_llm_tokens_total", bot=BOT), 1200)
        shop.new_day()  # a new day, a new budget
        check.assertEqual(shop.understood(user, "%s %s" % (word, nonce()))["source"], "llm")

    tap.case("a confident parse asks no model", confident)
    tap.case("the request: schema from the catalog and intents, redacted text, the bot's key; the answer "
             "validated", request_and_validation)
    tap.case("intents, yes and numbers from the model; unknown ones dropped", intents)
    tap.case("a timeout, garbage, no tool call and a 500 leave the parser's result", failures)
    tap.case("the cache answers the same words without the server", cache)
    tap.case("the rate per minute stops calls", rate)
    tap.case("the token budget per day stops calls", budget)

    def without(env_changes, reason, log_re):
        def case(run):
            e = dict(env)
            e.update(env_changes)
            other = tap.watch(Server([bot_copy(fake)], env=e, args=UNTHROTTLED, name="parley (llm, %s)" % reason).start())
            try:
                s = Shop(other, fake)
                user = s.shopper()
                before, asked = scrape(other), fake.count()
                check.assertEqual(s.understood(user, "something vague " + nonce()), {"source": "parser"})
                check.assertEqual(fake.count(), asked)
                check.assertEqual(s.results(before, scrape(other)), {reason: 1})
                other.wait_log(log_re)
            finally:
                other.stop()
                tap.unwatch(other)
        return case

    tap.case("no key in the bot's environment: no request", without({"LLMSHOP_LLM_KEY": None}, "no-key",
                                                                    r"no answer \(no-key\)"), runs=1)
    tap.case("a loopback model needs --allow-private-http", without(
        {"PARLEY_ALLOW_PRIVATE_HTTP": None}, "refused", r"model's address was refused: .*--allow-private-http"),
        runs=1)

    def bad_manifest(run):
        cases = [({"base_url": "ftp://models.example/v1"}, "\"base_url\""),
                 ({"model": None}, "\"model\" must name the model"),
                 ({"timeout_ms": 60000}, "\"timeout_ms\" must be a whole number from 100 to 10000"),
                 ({"redact": ["phone", "names"]}, "\"redact\"[1] must be \"phone\" or \"email\""),
                 ({"api_key_env": "PARLEY_ADMIN_TOKEN"}, "outside this bot's environment namespace")]
        for changes, want in cases:
            folder = bot_copy(fake, **changes)
            p = subprocess.run([PARLEY, "check", folder], capture_output=True, text=True, timeout=30)
            check.assertNotEqual(p.returncode, 0, changes)
            check.assertIn(want, p.stdout + p.stderr, changes)

    tap.case("a wrong setting is refused when the bot loads", bad_manifest, runs=1)
    fake.stop()


if __name__ == "__main__":
    run_suite("a bot's language model (understanding.llm)", main)
