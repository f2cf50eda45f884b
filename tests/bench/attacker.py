#!/usr/bin/env python3
"""attacker.py: sends one bot's hostile messages at a steady rate for the
attack run of `make bench` (tests/bench/attack.sh).

    attacker.py PORT BOT SECONDS RATE ATTACK[,ATTACK...]

Each message is a fresh shopper's text naming an attack of
tests/bots/hostile (run in turn). Several requests may be in flight: a
message that the server holds (a run at its time budget) does not slow the
rate. Prints one line: sent, answered 200 (the bot's fallback), refused 503
(the bot over its share), other statuses, errors. Standard library only."""

import http.client
import json
import sys
import threading
import time


def send(port, bot, user, text, counts, lock):
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", "/v1/bots/%s/messages" % bot, body=json.dumps({"user": user, "text": text}),
                     headers={"Content-Type": "application/json"})
        status = conn.getresponse().status
        conn.close()
        key = {200: "answered", 503: "refused"}.get(status, "other")
    except OSError:
        key = "errors"
    with lock:
        counts[key] += 1


def main():
    port, bot, seconds, rate, attacks = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), \
        sys.argv[5].split(",")
    counts = {"sent": 0, "answered": 0, "refused": 0, "other": 0, "errors": 0}
    lock = threading.Lock()
    workers = []
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < seconds:
        due = start + n / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        t = threading.Thread(target=send, args=(port, bot, "attacker-%d" % n, attacks[n % len(attacks)], counts, lock))
        t.start()
        workers.append(t)
        n += 1
        counts["sent"] += 1
    for t in workers:
        t.join()
    print("ATTACK sent=%(sent)d answered=%(answered)d refused=%(refused)d other=%(other)d errors=%(errors)d" % counts)


if __name__ == "__main__":
    main()
