#!/usr/bin/env python3
"""tests/bench/cost_client.py PORT PREFIX SHOPPERS [CONNECTIONS [BOT]]

The client of tests/bench/cost.sh: SHOPPERS distinct shoppers each hold a
whole conversation over POST /v1/bots/BOT/messages: BOT barista (the
default bot: hi, latte, large, croissant, done, as in conversation.lua) or
order (the bench's order bot: hi, a name, latte, large, yes, as in
order.lua), CONNECTIONS of them
at a time, each on its own kept-alive connection; a shopper's next message
is sent after the answer to the previous one. Every answer is checked for
what that step should say. Prints "messages N unexpected M" and exits 1
when M > 0. User ids are PREFIX-N, so runs never share a session.
"""
import http.client
import json
import sys
import threading

CONVERSATIONS = {
    "barista": [
        ("text", "hi", '"payload":"latte"'),
        ("payload", "latte", '"payload":"large"'),
        ("payload", "large", "Large Latte"),
        ("payload", "croissant", "€7.20"),
        ("payload", "done", "Total: €7.20"),
    ],
    "order": [
        ("text", "hi", "name"),
        ("text", "Ana", '"payload":"latte"'),
        ("payload", "latte", '"payload":"large"'),
        ("payload", "large", "Large Latte"),
        ("payload", "yes", "Order placed, Ana"),
    ],
}


def main():
    port, prefix, shoppers = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    connections = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    bot = sys.argv[5] if len(sys.argv) > 5 else "barista"
    steps = CONVERSATIONS[bot]
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
            for field, value, expect in steps:
                body = json.dumps({"user": user, field: value})
                conn.request("POST", "/v1/bots/%s/messages" % bot, body,
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
