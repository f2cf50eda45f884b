#!/usr/bin/env python3
"""tests/bench/cost_client.py PORT PREFIX SHOPPERS [CONNECTIONS]

The client of tests/bench/cost.sh: SHOPPERS distinct shoppers each hold the
default bot's whole conversation (hi, latte, large, croissant, done, as in
conversation.lua) over POST /v1/bots/barista/messages, CONNECTIONS of them
at a time, each on its own kept-alive connection; a shopper's next message
is sent after the answer to the previous one. Every answer is checked for
what that step should say. Prints "messages N unexpected M" and exits 1
when M > 0. User ids are PREFIX-N, so runs never share a session.
"""
import http.client
import json
import sys
import threading

STEPS = [
    ("text", "hi", '"payload":"latte"'),
    ("payload", "latte", '"payload":"large"'),
    ("payload", "large", "Large Latte"),
    ("payload", "croissant", "€7.20"),
    ("payload", "done", "Total: €7.20"),
]


def main():
    port, prefix, shoppers = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    connections = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    lock = threading.Lock()
    state = {"next": 0, "messages": 0, "unexpected": 0}

    def shopper_loop():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        while True:
            with lock:
                if state["next"] >= shoppers:
                    return
                user = "%s-%d" % (prefix, state["next"])
                state["next"] += 1
            for field, value, expect in STEPS:
                body = json.dumps({"user": user, field: value})
                conn.request("POST", "/v1/bots/barista/messages", body,
                             {"Content-Type": "application/json"})
                answer = conn.getresponse()
                text = answer.read().decode("utf-8", "replace")
                with lock:
                    state["messages"] += 1
                    if answer.status != 200 or expect not in text:
                        state["unexpected"] += 1
                        if state["unexpected"] <= 3:
                            print("unexpected answer %d: %s" % (answer.status, text[:200]), file=sys.stderr)

    threads = [threading.Thread(target=shopper_loop) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("messages %d unexpected %d" % (state["messages"], state["unexpected"]))
    return 1 if state["unexpected"] else 0


if __name__ == "__main__":
    sys.exit(main())
