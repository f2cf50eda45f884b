#!/usr/bin/env python3
"""test_handoff_whatsapp: human handoff on a push channel. A WhatsApp shopper
asks for a person; the agents' queue shows them with the name WhatsApp gave;
the agent's claim, reply and hand back reach the shopper through the outbox,
checked on a fake Graph API."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ROOT, Server, check, run_suite, wait_until  # noqa: E402
import test_channel_whatsapp as wa  # noqa: E402  (the fake Graph API and signed webhooks)

TOKEN = "handoff-wa-6b21"


def main(tap):
    fake = wa.FakeGraph()
    env = wa.env_for(fake, PARLEY_AGENT_TOKEN=TOKEN, BARISTA_AGENT_TOKEN=None)
    srv = tap.watch(Server(bots=[ROOT], env=env, name="parley (whatsapp handoff)").start())
    auth = {"Authorization": "Bearer " + TOKEN}

    def act(phone, action, body):
        r = srv.request("POST", "/v1/agent/conversations/barista/whatsapp/%s/%s" % (phone, action), body,
                        headers=auth)
        check.assertEqual(r.status, 200, r)

    def row(phone):
        r = srv.request("GET", "/v1/agent/conversations", headers=auth)
        check.assertEqual(r.status, 200, r)
        return next((c for c in r.json["conversations"] if c["user"] == phone), None)

    def handoff(run):
        phone = wa.new_phone()
        wa.say(srv, phone, wa.text_message(phone, "hi"))
        seen = len(fake.messages(phone))
        wa.say(srv, phone, wa.text_message(phone, "can I talk to a person?"))
        wa.wait_for_text(fake, phone, seen, r"getting one of our team")
        c = row(phone)
        check.assertEqual((c["channel"], c["state"], c["reason"], c["display_name"]),
                          ("whatsapp", "waiting", "asked for a person", "Sheena Nelson"), c)

        seen = len(fake.messages(phone))
        act(phone, "claim", {"agent": "Mia"})
        wa.wait_for_text(fake, phone, seen, r"^Mia from our team is here to help\.$")
        seen = len(fake.messages(phone))
        act(phone, "reply", {"agent": "Mia", "text": "Hi! Your oat latte is on the counter."})
        wa.wait_for_text(fake, phone, seen, r"^Hi! Your oat latte is on the counter\.$")
        # while Mia has it the bot keeps quiet
        seen = len(fake.messages(phone))
        wa.say(srv, phone, wa.text_message(phone, "thanks! one more thing"))
        def transcript():
            r = srv.request("GET", "/v1/agent/conversations/barista/whatsapp/" + phone, headers=auth)
            check.assertEqual(r.status, 200, r)
            return r.json["transcript"]
        wait_until(lambda: any(line["direction"] == "in" and line["body"].get("text") == "thanks! one more thing"
                               for line in transcript()), what="the shopper's message in the transcript")
        lines = transcript()
        check.assertEqual((lines[-1]["direction"], lines[-1]["body"]), ("out", []),
                          "the bot said nothing while a person has the chat")
        check.assertEqual(len(fake.messages(phone)), seen, "and nothing was sent")

        act(phone, "handback", {"agent": "Mia", "flow": "drink", "step": "choose"})
        wa.wait_for_text(fake, phone, seen, r"(?i)drink|mood")
        check.assertIsNone(row(phone), "handed back: out of the queue")

    tap.case("WhatsApp: ask for a person -> queued with the shopper's name; claim, reply and hand back "
             "reach the shopper through the outbox", handoff)


if __name__ == "__main__":
    run_suite("human handoff on WhatsApp", main)
