#!/usr/bin/env python3
"""webhook_report: the table and the checks of the webhook run of `make bench`
(tests/bench/webhooks.sh), from what wa_load and fake_graph recorded.

  webhook_report.py --graph GRAPH --phases PHASES [--replay REPLAY]
                    [--sends N] [--summary FILE] [--platform whatsapp|instagram]

GRAPH: fake_graph's record, one line per send parley made to the Graph API:
  <to> <type> <arrival µs>
PHASES: one line per phase, written by webhooks.sh:
  <phase> <offered per s> <wa_load output file> <parley CPU µs per webhook>
  <parley share of a core> <fake Graph API share of a core>
wa_load output files and REPLAY: one line per delivery:
  <wa_id> <message id> <due µs> <sent µs> <acknowledged µs> <status>
(all times CLOCK_REALTIME µs, on one machine). N: the sends one "hi" makes
(the default bot's greeting and its drink list: 2). PLATFORM names what
the deliveries were and what the drink list is sent as (WhatsApp: an
"interactive" message; Instagram: a text with "quick_replies").

Per phase: webhooks acknowledged 200 per second, acknowledgement latency
(from when the delivery was due, so a load generator that fell behind does
not hide the wait), and the end-to-end delay from the delivery being due to
parley's first (and last) Graph API call for that shopper, matched by wa_id.
Checks: every shopper got exactly N sends (none lost, none duplicated), the
greeting text before the list, no send to a shopper nobody wrote as, every
delivery answered 200, and the replayed deliveries (same message ids)
answered 200 and followed by no send at all. Exit status 1 when a check
fails. Standard library only."""

import argparse
import math
import sys
from collections import defaultdict


def pct(sorted_values, p):
    if not sorted_values:
        return float("nan")
    k = max(1, min(len(sorted_values), math.ceil(p / 100.0 * len(sorted_values))))
    return sorted_values[k - 1]


def ms(us):
    return "-" if us != us else "%.1f" % (us / 1000.0)


def read_load(path):
    rows = []
    with open(path, encoding="ascii") as f:
        for line in f:
            wa_id, msg_id, due, sent, ack, status = line.split()
            rows.append((wa_id, msg_id, int(due), int(sent), int(ack), int(status)))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--graph", required=True)
    ap.add_argument("--phases", required=True)
    ap.add_argument("--replay")
    ap.add_argument("--sends", type=int, default=2)
    ap.add_argument("--summary")
    ap.add_argument("--platform", default="whatsapp", choices=("whatsapp", "instagram"))
    args = ap.parse_args()
    title = {"whatsapp": "WhatsApp", "instagram": "Instagram"}[args.platform]
    listed = {"whatsapp": "interactive", "instagram": "quick_replies"}[args.platform]

    sends = defaultdict(list)  # wa_id -> [(arrival µs, type)] in arrival order
    with open(args.graph, encoding="ascii") as f:
        for line in f:
            to, kind, at = line.split()
            sends[to].append((int(at), kind))

    phases = []
    with open(args.phases, encoding="ascii") as f:
        for line in f:
            k, rate, path, cpu_us, share, fake_share = line.split()
            phases.append((int(k), float(rate), read_load(path), cpu_us, share, fake_share))

    problems = []
    summary = []
    shoppers = {}  # wa_id -> phase
    header = ("offered/s", "webhooks", "acked/s", "non-200", "ack p50", "ack p99", "1st send p50", "1st send p99",
              "1st max", "all sent p99", "drain s", "parley us/wh", "parley CPU", "fake CPU")
    widths = (9, 8, 8, 7, 7, 8, 12, 12, 8, 12, 7, 12, 10, 8)
    fmt = "  ".join("%%%ds" % w for w in widths)
    print("=== webhooks: %s deliveries at a steady rate -> parley -> fake Graph API ===" % title)
    print("(ms unless noted; ack: delivery due -> parley's 200; 1st send / all sent: delivery due -> parley's")
    print(" first / last Graph API call for that shopper; drain: last delivery due -> last send)")
    print(fmt % header)
    for k, rate, rows, cpu_us, share, fake_share in phases:
        ok = [r for r in rows if r[5] == 200]
        non200 = [r for r in rows if r[5] not in (200, 0, -1)]
        failed = [r for r in rows if r[5] in (0, -1)]
        first_sent = min((r[3] for r in rows if r[3] > 0), default=0)
        last_ack = max((r[4] for r in ok), default=0)
        acked_rate = len(ok) / ((last_ack - first_sent) / 1e6) if ok and last_ack > first_sent else 0.0
        acks = sorted(r[4] - r[2] for r in ok)
        first, last = [], []
        for r in rows:
            shoppers[r[0]] = k
            got = sends.get(r[0], [])
            if got:
                first.append(got[0][0] - r[2])
                last.append(got[-1][0] - r[2])
        first.sort()
        last.sort()
        last_due = max(r[2] for r in rows)
        last_send = max((sends[r[0]][-1][0] for r in rows if sends.get(r[0])), default=last_due)
        drain = (last_send - last_due) / 1e6
        print(fmt % ("%.0f" % rate, len(rows), "%.0f" % acked_rate, len(non200) + len(failed), ms(pct(acks, 50)),
                     ms(pct(acks, 99)), ms(pct(first, 50)), ms(pct(first, 99)), ms(first[-1] if first else float("nan")),
                     ms(pct(last, 99)), "%.2f" % drain, cpu_us, share, fake_share))
        summary.append("webhooks at %.0f/s offered: %.0f acked 200/s, ack p50/p99 %s/%s ms, first send p50/p99 %s/%s ms"
                       % (rate, acked_rate, ms(pct(acks, 50)), ms(pct(acks, 99)), ms(pct(first, 50)), ms(pct(first, 99))))
        if non200:
            statuses = sorted({r[5] for r in non200})
            problems.append("phase %d (%.0f/s): %d deliveries answered %s" % (k, rate, len(non200), statuses))
        if failed:
            problems.append("phase %d (%.0f/s): %d deliveries got no HTTP answer" % (k, rate, len(failed)))

    # exactly N sends per shopper, greeting first
    lost = [w for w in shoppers if len(sends.get(w, [])) < args.sends]
    dup = [w for w in shoppers if len(sends.get(w, [])) > args.sends]
    none = [w for w in shoppers if not sends.get(w)]
    misordered = [w for w in shoppers if len(sends.get(w, [])) == args.sends
                  and [t for _, t in sends[w]] != ["text"] + [listed] * (args.sends - 1)]
    strangers = [w for w in sends if w not in shoppers]
    total_sends = sum(len(v) for v in sends.values())
    print()
    print("  %d shoppers (one delivery each), %d Graph API sends recorded (%d expected: %d per shopper)"
          % (len(shoppers), total_sends, args.sends * len(shoppers), args.sends))
    exact = not lost and not dup and not strangers
    print("  every shopper got exactly %d sends: %s (fewer: %d, of which none at all: %d; more: %d; sends to "
          "unknown recipients: %d)" % (args.sends, "yes" if exact else "NO", len(lost), len(none), len(dup),
                                      len(strangers)))
    print("  greeting text before the drink list for every shopper: %s (%d out of order)"
          % ("yes" if not misordered else "NO", len(misordered)))
    if lost:
        problems.append("%d shoppers got fewer than %d sends (lost), e.g. %s: %s"
                        % (len(lost), args.sends, lost[0], sends.get(lost[0], [])))
    if dup:
        problems.append("%d shoppers got more than %d sends (duplicated), e.g. %s: %s"
                        % (len(dup), args.sends, dup[0], sends[dup[0]]))
    if strangers:
        problems.append("%d sends went to recipients no delivery came from, e.g. %s" % (len(strangers), strangers[0]))
    if misordered:
        problems.append("%d shoppers got their sends out of order, e.g. %s: %s"
                        % (len(misordered), misordered[0], sends[misordered[0]]))
    summary.append("webhooks: %d shoppers, each got exactly %d sends: %s; non-200 acks: %d"
                   % (len(shoppers), args.sends, "yes" if exact else "NO",
                      sum(1 for p in phases for r in p[2] if r[5] != 200)))

    if args.replay:
        rows = read_load(args.replay)
        ok = sum(1 for r in rows if r[5] == 200)
        start = min((r[3] for r in rows if r[3] > 0), default=0)
        new = sum(1 for r in rows for at, _ in sends.get(r[0], []) if at >= start)
        unknown = sum(1 for r in rows if r[0] not in shoppers)
        print("  replayed %d deliveries (byte-identical, the same message ids): %d answered 200, %d sends after "
              "the replay started (0 expected): de-duplicated: %s"
              % (len(rows), ok, new, "yes" if new == 0 and ok == len(rows) and not unknown else "NO"))
        if ok != len(rows):
            problems.append("replay: %d of %d replayed deliveries were not answered 200" % (len(rows) - ok, len(rows)))
        if new:
            problems.append("replay: %d sends followed replayed deliveries (duplicates)" % new)
        summary.append("webhooks: %d replayed deliveries -> %d answered 200, %d new sends" % (len(rows), ok, new))

    if args.summary:
        with open(args.summary, "w", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in summary))
    for p in problems:
        print("  PROBLEM: " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
