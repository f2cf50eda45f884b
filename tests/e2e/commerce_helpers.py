"""commerce_helpers: what tests/e2e/test_commerce.py needs beyond the
harness: taking a shopper of the default bot to the payment link, the
test provider's payment page (GET it, POST its Pay / Decline form), the
orders API with its bearer token, the test-only clock, and reading what
parley stored (orders, jobs, stock, transcript lines) straight from its
SQLite file, read-only, while it runs.

The transcript holds one "in" line per turn (a shopper's message, or an
event: {"event": {"type": "payment" | "order_status" | "job", ...}}) and one
"out" line with the turn's replies. On the HTTP channel, which cannot push,
what an event turn says is recorded on its "out" line and then waits in the
session to come first in the next answer (whose "out" line repeats it), so
"told once" is counted on the event turns' lines and in the answers.

Standard library only."""

import json
import os
import re
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import db_query, check, texts  # noqa: E402

BOT = "barista"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
THANKS = re.compile(r"Payment received, thank you!|All paid!")
DECLINED = "The payment didn't go through"
REMINDER = "You left 1 item(s) in your cart (€2.80 with code COMEBACK)"


def count(pattern, replies):
    """How many replies' texts match pattern (a regex or compiled)."""
    rx = re.compile(pattern) if isinstance(pattern, str) else pattern
    return sum(1 for r in replies if rx.search(r.get("text") or ""))


def euros(cents):
    return "€%d.%02d" % (cents // 100, cents % 100)


# --- a shopper of the default bot over HTTP -----------------------------------------


def to_checkout(srv, user, drink="a small latte", pastry=None):
    """hi, a drink named in one sentence, a pastry or no thanks, that's all:
    the shopper is at "Shall I take the payment?"; returns those replies."""
    srv.say(BOT, user, "hi")
    replies = srv.say(BOT, user, drink)
    check.assertRegex(texts(replies), r"\b(Small|Medium|Large|Single|Double) [A-Z]", "the drink was understood")
    srv.say(BOT, user, payload=pastry or "no")
    replies = srv.say(BOT, user, payload="done")
    check.assertIn("Shall I take the payment?", texts(replies))
    return replies


def leave_cart(srv, user):
    """A shopper who puts a small latte (€3.80) in the cart, says no to the
    pastry and goes quiet at "Anything else?"."""
    srv.say(BOT, user, "hi")
    srv.say(BOT, user, "a small latte")
    replies = srv.say(BOT, user, payload="no")
    check.assertIn("That's 1 item(s) so far, €3.80", texts(replies))


def link_of(replies):
    """The one payment link among the replies: {"title", "url"}."""
    links = [r["link"] for r in replies if "link" in r]
    check.assertEqual(len(links), 1, "one payment link: %r" % replies)
    return links[0]


def tap_pay(srv, user):
    """Taps "Pay now"; returns (replies, link)."""
    replies = srv.say(BOT, user, payload="pay")
    return replies, link_of(replies)


class PayLink:
    """A test provider's payment link:
    {base}/v1/bots/{bot}/payments/test/{id}?token={token}."""

    def __init__(self, url):
        self.url = url
        parts = urllib.parse.urlsplit(url)
        m = re.match(r"^/v1/bots/([a-z0-9_-]+)/payments/test/(\d+)$", parts.path)
        check.assertIsNotNone(m, "a test provider's link: %r" % url)
        self.netloc = parts.netloc
        self.path = parts.path
        self.bot = m.group(1)
        self.order_id = int(m.group(2))
        self.token = urllib.parse.parse_qs(parts.query)["token"][0]
        check.assertRegex(self.token, r"^[0-9a-f]{16,}$")

    def get(self, srv, token=None):
        return srv.request("GET", "%s?token=%s" % (self.path, urllib.parse.quote(token or self.token)))

    def submit(self, srv, action, token=None, path=None):
        """POSTs the page's form (token=...&action=pay|decline)."""
        fields = {"token": self.token if token is None else token}
        if action is not None:
            fields["action"] = action
        return srv.request("POST", path or self.path, body=urllib.parse.urlencode(fields), headers=FORM)

    def pay(self, srv):
        r = self.submit(srv, "pay")
        check.assertEqual(r.status, 200, r)
        return r

    def decline(self, srv):
        r = self.submit(srv, "decline")
        check.assertEqual(r.status, 200, r)
        return r


def html(r):
    check.assertTrue(r.headers.get("content-type", "").startswith("text/html"), r.headers)
    return r.body.decode("utf-8")


# --- the orders API and the clock -----------------------------------------------------


class Api:
    """The orders API of one bot behind its bearer token."""

    def __init__(self, srv, token, bot=BOT):
        self.srv, self.token, self.bot = srv, token, bot

    def request(self, method, path, body=None, token=None):
        headers = {"Authorization": "Bearer " + (self.token if token is None else token)}
        return self.srv.request(method, "/v1/bots/%s/orders%s" % (self.bot, path), body, headers=headers)

    def order(self, order_id):
        r = self.request("GET", "/%d" % order_id)
        check.assertEqual(r.status, 200, r)
        return r.json

    def orders(self, user, channel=None):
        q = "?user=" + urllib.parse.quote(user)
        if channel:
            q += "&channel=" + urllib.parse.quote(channel)
        r = self.request("GET", q)
        check.assertEqual(r.status, 200, r)
        check.assertEqual(list(r.json), ["orders"], r.json)
        return r.json["orders"]

    def update(self, order_id, status, tracking_url=None):
        body = {"status": status}
        if tracking_url is not None:
            body["tracking_url"] = tracking_url
        return self.request("POST", "/%d/status" % order_id, body)


def advance(srv, seconds):
    """Moves parley's clock (PARLEY_TEST_CLOCK=1) forward."""
    r = srv.request("POST", "/v1/test/clock", {"advance": seconds})
    check.assertEqual(r.status, 200, r)
    return r.json["now"]


# --- what parley stored -------------------------------------------------------------------


def transcript(db, user, channel="rest"):
    """[(direction, body)] of the user's transcript lines, in order."""
    return [(d, json.loads(b)) for d, b in db_query(
        db, "SELECT direction, body FROM transcript WHERE bot = ? AND channel = ? AND user = ? ORDER BY id",
        BOT, channel, user)]


def event_turns(db, user, channel="rest", kind=None):
    """[(event, replies)] of the turns that events (not the shopper) ran:
    payments, order updates, jobs; kind narrows to one event type."""
    out, lines = [], transcript(db, user, channel)
    for i, (direction, body) in enumerate(lines):
        if direction != "in" or not isinstance(body, dict) or "event" not in body:
            continue
        if kind and body["event"].get("type") != kind:
            continue
        replies = []
        if i + 1 < len(lines) and lines[i + 1][0] == "out":
            replies = lines[i + 1][1]
        out.append((body["event"], replies))
    return out


def reminders(db, user, channel="rest"):
    """The abandoned-cart reminders said to the user (event turns' texts)."""
    return [r.get("text") for ev, replies in event_turns(db, user, channel, "job")
            for r in replies if REMINDER in (r.get("text") or "")]


def jobs(db, user, channel="rest"):
    """[(name, state)] of the user's jobs, oldest first."""
    return db_query(db, "SELECT name, state FROM jobs WHERE bot = ? AND channel = ? AND user = ? ORDER BY id",
                    BOT, channel, user)


def stock_left(db, key, bot=BOT):
    rows = db_query(db, "SELECT remaining FROM stock WHERE bot = ? AND key = ?", bot, key)
    return rows[0][0] if rows else None
