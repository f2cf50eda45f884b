#!/usr/bin/env python3
"""test_channel_email: the email channel end to end.

Mail comes in as Mailgun's routes post it (forward() to the webhook: a
form, or multipart/form-data when the mail has attachments, signed with
timestamp, token and signature = hex HMAC-SHA256 of timestamp + token keyed
with the webhook signing key); replies go out by SMTP to a small SMTP sink
that this file runs on a free loopback port (PARLEY_EMAIL_API_BASE points
parley at it). The sink speaks EHLO, AUTH PLAIN, MAIL, RCPT, DATA, RSET,
NOOP and QUIT, requires the login the bot is configured with, checks every
mail against RFC 5322 / MIME (CRLF lines of at most 998 bytes, From, To,
Subject, Date, Message-ID, a multipart/alternative of UTF-8 text/plain and
text/html, threading headers) and records it; it answers 250 after DATA, or
the 4xx/5xx a case plans for a recipient.

Served: the default bot (barista) and a fixture bot "mailfix" (echo,
choices across replies, msg.channel facts, a loop guard of 3 mails)."""

import base64
import email
import email.policy
import hashlib
import hmac
import json
import os
import re
import socket
import socketserver
import sys
import threading
import time
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ROOT, Server, check, db_query, make_bot, run_suite, wait_until  # noqa: E402
from channel_helpers import FIXTURE_TONE, Recorder  # noqa: E402

KEY = "key-" + uuid.uuid4().hex
FROM = "Bea's Coffee <orders@mg.parley.test>"
FROM_ADDR = "orders@mg.parley.test"
SMTP_USER = "postmaster@mg.parley.test"
SMTP_PASSWORD = "smtp-" + uuid.uuid4().hex
PATH = "/v1/bots/%s/channels/email"
AGENT_TOKEN = "agent-" + uuid.uuid4().hex


# --- the SMTP sink ---------------------------------------------------------------------


class SmtpSink(Recorder):
    """A minimal SMTP server (RFC 5321) on loopback. Records each mail that
    reached the end of DATA: {"from", "rcpt", "raw", "msg", "code"};
    fail_next(to, codes) plans the reply codes to give a recipient's next
    mails after DATA (then 250)."""

    message_key = None

    def __init__(self, user=SMTP_USER, password=SMTP_PASSWORD):
        super().__init__()
        self.connections = 0
        self.login = "\0%s\0%s" % (user, password)
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line):
                self.wfile.write((line + "\r\n").encode())
                self.wfile.flush()

            def handle(self):
                with sink.lock:
                    sink.connections += 1
                self.reply("220 sink.parley.test ESMTP")
                authed, sender, rcpt = False, None, []
                while True:
                    raw = self.rfile.readline(4096)
                    if not raw:
                        return
                    line = raw.decode("utf-8", "replace").rstrip("\r\n")
                    verb = line.split(" ", 1)[0].upper()
                    if verb in ("EHLO", "HELO"):
                        self.reply("250-sink.parley.test")
                        self.reply("250-8BITMIME")
                        self.reply("250 AUTH PLAIN")
                    elif verb == "AUTH":
                        parts = line.split(" ")
                        if len(parts) < 2 or parts[1].upper() != "PLAIN":
                            self.reply("504 5.5.4 only PLAIN")
                            continue
                        if len(parts) == 2:
                            self.reply("334 ")
                            parts.append(self.rfile.readline().decode().strip())
                        try:
                            given = base64.b64decode(parts[2]).decode()
                        except ValueError:
                            given = None
                        authed = given == sink.login
                        self.reply("235 2.7.0 ok" if authed else "535 5.7.8 bad login")
                    elif verb == "MAIL":
                        if not authed:
                            sink.problem("MAIL before AUTH")
                            self.reply("530 5.7.0 authentication required")
                            continue
                        m = re.match(r"MAIL FROM:<([^>]*)>", line, re.I)
                        sender, rcpt = (m.group(1) if m else None), []
                        self.reply("250 2.1.0 ok")
                    elif verb == "RCPT":
                        m = re.match(r"RCPT TO:<([^>]+)>", line, re.I)
                        if m:
                            rcpt.append(m.group(1))
                        self.reply("250 2.1.5 ok")
                    elif verb == "DATA":
                        if sender is None or not rcpt:
                            self.reply("503 5.5.1 no envelope")
                            continue
                        self.reply("354 go ahead")
                        data = bytearray()
                        while True:
                            chunk = self.rfile.readline(100000)
                            if not chunk or chunk == b".\r\n":
                                break
                            data += chunk[1:] if chunk.startswith(b"..") else chunk
                        code = sink.take(sender, rcpt, bytes(data))
                        self.reply("%d %s" % (code, "2.0.0 queued" if code == 250 else "4.3.0 try later"
                                              if code < 500 else "5.1.1 no such mailbox"))
                        sender, rcpt = None, []
                    elif verb == "RSET":
                        sender, rcpt = None, []
                        self.reply("250 ok")
                    elif verb == "NOOP":
                        self.reply("250 ok")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("502 5.5.2 not implemented")

        class TCPServer(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = TCPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def take(self, sender, rcpt, raw):
        for what in mail_problems(sender, rcpt, raw):
            self.problem(what)
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        with self.lock:
            code = self.failure(rcpt[0]) or 250
            self.requests.append({"from": sender, "rcpt": rcpt, "raw": raw, "msg": msg, "code": code})
        return code

    def attempts(self, to):
        with self.lock:
            return [m for m in self.requests if to in m["rcpt"]]

    def took(self, m):
        return m["code"] == 250

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def mail_problems(sender, rcpt, raw):
    """What a mail gets wrong against RFC 5322 / 2045-2047 and our promises."""
    p = []
    if sender != FROM_ADDR:
        p.append("MAIL FROM %r" % sender)
    if len(rcpt) != 1:
        p.append("RCPT TO %r" % rcpt)
    if re.search(rb"(?<!\r)\n", raw) or re.search(rb"\r(?!\n)", raw):
        p.append("a line does not end in CRLF")
    for line in raw.split(b"\r\n"):
        if len(line) > 998:
            p.append("a line of %d bytes" % len(line))
    head = raw.split(b"\r\n\r\n", 1)[0]
    if re.search(rb"[\x80-\xff]", head):
        p.append("8-bit bytes in the headers (RFC 2047 words expected)")
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    for name in ("From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "References", "Auto-Submitted"):
        if len(msg.get_all(name) or []) != 1:
            p.append("%s given %d times" % (name, len(msg.get_all(name) or [])))
    if msg["From"] and msg["From"].addresses[0].addr_spec != FROM_ADDR:
        p.append("From %r" % msg["From"])
    if msg["To"] and [a.addr_spec for a in msg["To"].addresses] != rcpt:
        p.append("To %r, envelope %r" % (msg["To"], rcpt))
    if not re.match(r"^<[^<>@\s]+@mg\.parley\.test>$", msg["Message-ID"] or ""):
        p.append("Message-ID %r" % msg["Message-ID"])
    if msg.get_content_type() != "multipart/alternative":
        p.append("Content-Type %s" % msg.get_content_type())
    else:
        parts = list(msg.iter_parts())
        if [x.get_content_type() for x in parts] != ["text/plain", "text/html"]:
            p.append("parts %r" % [x.get_content_type() for x in parts])
        for x in parts:
            if x.get_content_charset() != "utf-8" or x["Content-Transfer-Encoding"] != "quoted-printable":
                p.append("part %s: %s, %s" % (x.get_content_type(), x.get_content_charset(), x["Content-Transfer-Encoding"]))
    return p


def plain(mail):
    return mail["msg"].get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")


def html(mail):
    return mail["msg"].get_body(preferencelist=("html",)).get_content().replace("\r\n", "\n")


def numbered(text):
    """{title: n} of the "n) title" lines."""
    return {m.group(2): int(m.group(1)) for m in re.finditer(r"^(\d+)\) (.*)$", text, re.M)}


# --- Mailgun's posts -----------------------------------------------------------------------


def new_address():
    return "Shopper.%s@Example.org" % uuid.uuid4().hex[:10]


def new_shopper():
    """A new address, and the shopper's id parley makes of it (lower case)."""
    address = new_address()
    return address, address.lower()


def new_message_id():
    return "<%s@mail.example.org>" % uuid.uuid4().hex


def signed(fields, key=KEY, timestamp=None, token=None):
    ts = str(int(time.time()) if timestamp is None else timestamp)
    token = token or (uuid.uuid4().hex + uuid.uuid4().hex)[:50]
    sig = hmac.new(key.encode(), (ts + token).encode(), hashlib.sha256).hexdigest()
    return dict(fields, timestamp=ts, token=token, signature=sig)


# What Mailgun adds to the headers of a mail whose sender checks out (the
# domain's spam filter set to mark spam with MIME headers), before the mail's own.
PASSING = (("X-Mailgun-Sflag", "No"), ("X-Mailgun-Sscore", "0.1"), ("X-Mailgun-Spf", "Pass"),
           ("X-Mailgun-Dkim-Check-Result", "Pass"))


def mail(address, text, subject="Coffee", message_id=None, headers=(), name="Ada Shopper", quoted=True,
         verdicts=PASSING):
    """The fields of a route's parsed-message post."""
    message_id = message_id or new_message_id()
    hdrs = [*[list(h) for h in verdicts], ["Received", "by mx.example.org"], ["From", "%s <%s>" % (name, address)],
            ["To", "orders@mg.parley.test"], ["Subject", subject], ["Message-Id", message_id],
            ["Mime-Version", "1.0"], *[list(h) for h in headers]]
    body = text + ("\n\nOn Monday, Bea's Coffee wrote:\n> an earlier mail\n" if quoted else "")
    return {"recipient": "orders@mg.parley.test", "sender": address, "from": "%s <%s>" % (name, address),
            "subject": subject, "body-plain": body, "stripped-text": text, "stripped-signature": "",
            "message-headers": json.dumps(hdrs), "Message-Id": message_id}


def post_form(server, bot, fields):
    return server.request("POST", PATH % bot, body=urllib.parse.urlencode(fields),
                          headers={"Content-Type": "application/x-www-form-urlencoded"})


def post_multipart(server, bot, fields, files):
    boundary = "----parley" + uuid.uuid4().hex
    out = []
    for k, v in fields.items():
        out.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n" % (boundary, k)).encode()
                   + v.encode() + b"\r\n")
    for i, (filename, data) in enumerate(files, 1):
        out.append(("--%s\r\nContent-Disposition: form-data; name=\"attachment-%d\"; filename=\"%s\"\r\n"
                    "Content-Type: application/octet-stream\r\n\r\n" % (boundary, i, filename)).encode() + data + b"\r\n")
    out.append(("--%s--\r\n" % boundary).encode())
    return server.request("POST", PATH % bot, body=b"".join(out),
                          headers={"Content-Type": "multipart/form-data; boundary=%s" % boundary})


def head_only(server, path, length, method="POST"):
    """(status, body) of a request head announcing a body of length bytes, none sent."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                      "Content-Length: %d\r\n\r\n" % (method, path, length)).encode())
        return answer_of(sock)


def answer_of(sock, data=b""):
    """(status, body) of the next answer on sock (the close may come later: lingering)."""
    while True:
        head, sep, body = data.partition(b"\r\n\r\n")
        length = re.search(rb"(?im)^content-length: *(\d+)", head) if sep else None
        if length and len(body) >= int(length.group(1)):
            break
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return int(head.split(b" ", 2)[1]), body.decode("utf-8", "replace")


def send(server, bot, fields):
    r = post_form(server, bot, signed(fields))
    check.assertEqual(r.status, 200, r)
    return r


# --- the fixture bot ---------------------------------------------------------------------

FIXTURE_FLOW = """\
return {
  start = function(c, msg)
    local words = msg.text or ""
    if msg.payload then
      c:say_text("you picked " .. msg.payload)
    elseif words == "multi" then
      c:say_text("First question?", { choices = { { title = "Red", payload = "red" }, { title = "Blue", payload = "blue" } } })
      c:say_text("Or a size?", { choices = { { title = "Small", payload = "small" }, { title = "Large", payload = "large" } } })
    elseif words == "whoami" then
      local ch = msg.channel
      c:say_text(string.format("channel=%s platform=%s email=%s name=%s subject=%s files=%s", ch.name,
        tostring(ch.platform), tostring(ch.email), tostring(ch.display_name), tostring(ch.subject),
        ch.attachments and table.concat(ch.attachments, ",") or "none"))
    else
      c:say_text("echo: " .. words)
    end
    return "wait"
  end,
  wait = { answer = function(c) return "start" end },
}
"""

def email_settings(prefix, **extra):
    s = {"signing_key_env": prefix + "_MAILGUN_SIGNING_KEY", "from_env": prefix + "_EMAIL_FROM",
         "smtp_url_env": prefix + "_SMTP_URL", "smtp_user_env": prefix + "_SMTP_USER",
         "smtp_password_env": prefix + "_SMTP_PASSWORD"}
    s.update(extra)
    return s


def email_env(prefix):
    return {prefix + "_MAILGUN_SIGNING_KEY": KEY, prefix + "_EMAIL_FROM": FROM,
            prefix + "_SMTP_URL": "smtps://smtp.invalid:465", prefix + "_SMTP_USER": SMTP_USER,
            prefix + "_SMTP_PASSWORD": SMTP_PASSWORD}


# --- cases --------------------------------------------------------------------------------


def main(tap):
    sink = SmtpSink()
    fixture = make_bot("mailfix", {"flows/main.lua": FIXTURE_FLOW, "scripts/tone.lua": FIXTURE_TONE},
                       manifest={"fallback": "fixture fallback",
                                 "channels": {"email": email_settings("MAILFIX", loop_limit=3, subject="Fixture")}})
    env = {"PARLEY_EMAIL_API_BASE": "smtp://127.0.0.1:%d" % sink.port, "PARLEY_EMAIL_MAX_BODY": str(4 << 20), "PARLEY_OUTBOX_RETRY_MS": "50",
           "PARLEY_OUTBOX_MAX_ATTEMPTS": "3", "PARLEY_AGENT_TOKEN": AGENT_TOKEN, "BARISTA_AGENT_TOKEN": None,
           "BARISTA_STRIPE_SECRET_KEY": None, "PARLEY_PUBLIC_URL": None}
    env.update(email_env("BARISTA"))
    env.update(email_env("MAILFIX"))
    server = tap.watch(Server(bots=[ROOT, fixture], env=env, name="parley"))
    server.start()
    db = server.db

    def no_problems():
        check.assertEqual(sink.take_problems(), [], "mails that break RFC 5322 / MIME or the envelope")

    def stored_for(address):
        user = address.lower()
        return {
            "inbox": db_query(db, "SELECT count(*) FROM inbox WHERE user = ?", user)[0][0],
            "sessions": db_query(db, "SELECT count(*) FROM sessions WHERE user = ?", user)[0][0],
            "outbox": db_query(db, "SELECT count(*) FROM outbox WHERE user = ?", user)[0][0],
        }

    def taken(cases, bot="mailfix"):
        """Posts each (what, fields) signed: each is taken (200)."""
        for what, fields in cases:
            r = send(server, bot, fields)
            check.assertEqual(r.status, 200, "%s: %r" % (what, r))

    def barrier(bot="mailfix"):
        """A mail from another shopper, answered: what came before it was handled."""
        other = new_address()
        send(server, bot, mail(other, "barrier"))
        sink.wait_delivered(other.lower(), 1)

    def conversation(run):
        shopper, to = new_shopper()
        first_id = new_message_id()
        send(server, "barista", mail(shopper, "hi", subject="Coffee ☕ order", message_id=first_id))
        m = sink.wait_delivered(to, 1)[0]
        msg = m["msg"]
        check.assertEqual(msg["Subject"], "Re: Coffee ☕ order")
        check.assertEqual(msg["In-Reply-To"], first_id)
        refs = msg["References"].split()
        check.assertEqual(refs[-1], first_id)
        root = refs[0]
        check.assertRegex(root, r"^<thread\.[A-Za-z0-9_-]+@mg\.parley\.test>$")
        check.assertEqual(msg["Auto-Submitted"], "auto-replied")
        check.assertEqual(msg["To"].addresses[0].display_name, "Ada Shopper")
        drinks = numbered(plain(m))
        check.assertGreaterEqual(len(drinks), 2, plain(m))
        check.assertIn("<strong>1)</strong>", html(m))
        said = 1

        parent = first_id

        def answer(text, subject="Re: Re: Coffee ☕ order"):
            nonlocal said, m, parent
            parent = new_message_id()
            send(server, "barista", mail(shopper, text, subject=subject, message_id=parent,
                                         headers=[["References", "%s %s" % (first_id, m["msg"]["Message-ID"])]]))
            said += 1
            m = sink.wait_delivered(to, said, timeout=10.0)[said - 1]
            check.assertEqual(m["msg"]["Subject"], "Re: Coffee ☕ order", "one subject along the thread")
            check.assertEqual(m["msg"]["In-Reply-To"], parent)
            refs = m["msg"]["References"].split()
            check.assertEqual((refs[0], refs[-1]), (root, parent))
            return plain(m)

        text = answer(str(drinks[sorted(drinks, key=drinks.get)[1]]))  # the second drink
        sizes = numbered(text)
        text = answer(str(sizes[sorted(sizes, key=sizes.get)[-1]]))  # the largest size
        offers = numbered(text)
        if "That's all" not in offers:
            no = next(n for t, n in offers.items() if t.startswith("No"))
            text = answer(str(no))
            offers = numbered(text)
        text = answer(str(offers["That's all"]))
        check.assertIn("Here's your order", text)
        total = re.search(r"Total: €(\d+\.\d\d)", text).group(1)
        text = answer(str(numbered(text)["Pay now"]))
        order = re.search(r"Order #(\d+)", text)
        check.assertIsNotNone(order, text)
        # the payment link: a URL in the text part, a button in the HTML part
        url = re.search(r"(http://127\.0\.0\.1:%d/v1/bots/barista/payments/test/\d+\?token=[0-9a-f]+)" % server.port, text)
        check.assertIsNotNone(url, text)
        button = re.search(r'<a href="([^"]+)" style="display:inline-block[^"]*">([^<]+)</a>', html(m))
        check.assertIsNotNone(button, html(m))
        check.assertEqual(button.group(1).replace("&amp;", "&"), url.group(1))
        # pay on the test provider's page: the result comes by mail, in the thread
        parts = urllib.parse.urlsplit(url.group(1))
        page = server.request("GET", parts.path + "?" + parts.query)
        check.assertEqual(page.status, 200, page)
        check.assertIn(total, page.body.decode())
        token = urllib.parse.parse_qs(parts.query)["token"][0]
        r = server.request("POST", parts.path, body=urllib.parse.urlencode({"token": token, "action": "pay"}),
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
        check.assertEqual(r.status, 200, r)
        paid = sink.wait_delivered(to, said + 1, timeout=10.0)[said]
        check.assertRegex(plain(paid), r"Payment received, thank you!|All paid!")
        check.assertEqual(paid["msg"]["References"].split()[0], root, "a mail that answers nothing joins the thread")
        check.assertEqual(paid["msg"]["Subject"], "Re: Coffee ☕ order", "under the thread's subject")
        check.assertEqual(paid["msg"]["In-Reply-To"], parent, "after the shopper's last mail")
        check.assertEqual(paid["msg"]["Auto-Submitted"], "auto-generated")
        check.assertEqual(len(sink.attempts(to)), said + 1, "one mail per turn, each sent once")
        no_problems()

    tap.case("the barista order by mail, answering with numbers, threaded; paid through the payment link's button",
             conversation)

    def choices_and_facts(run):
        shopper, to = new_shopper()
        send(server, "mailfix", mail(shopper, "multi"))
        m = sink.wait_delivered(to, 1)[0]
        check.assertEqual(plain(m), "First question?\n1) Red\n2) Blue\n\nOr a size?\n3) Small\n4) Large\n")
        send(server, "mailfix", mail(shopper, "3"))
        check.assertEqual(plain(sink.wait_delivered(to, 2)[1]), "you picked small\n")
        r = post_multipart(server, "mailfix", signed(mail(shopper, "whoami", subject="Ünïcode subject",
                                                          name="Zoë Q")),
                           [("menu.pdf", b"%PDF-1.4\x00\x01\x02"), ("photo.jpg", b"\xff\xd8\xff")])
        check.assertEqual(r.status, 200, r)
        check.assertEqual(plain(sink.wait_delivered(to, 3)[2]),
                          "channel=email platform=email email=%s name=Zoë Q subject=Ünïcode subject "
                          "files=menu.pdf,photo.jpg\n" % to)
        check.assertEqual(sink.wait_delivered(to, 3)[2]["msg"]["Subject"], "Re: Ünïcode subject")
        no_problems()

    tap.case("choices numbered across a turn's replies, \"3\" taps the third; msg.channel facts; "
             "multipart/form-data with attachments (names only)", choices_and_facts)

    def large_attachment(run):
        shopper, to = new_shopper()
        photo = os.urandom(3 * 1024 * 1024)  # a phone photo: far past the API's 64 KiB (and the 256 KiB hard cap)
        r = post_multipart(server, "mailfix", signed(mail(shopper, "whoami")), [("IMG_0042.jpg", photo)])
        check.assertEqual(r.status, 200, r)
        check.assertIn("files=IMG_0042.jpg\n", plain(sink.wait_delivered(to, 1)[0]))
        # over the email route's own limit (PARLEY_EMAIL_MAX_BODY, 4 MiB here): refused as soon as the head is
        # in, and said in the log
        mark = server.mark()
        status, text = head_only(server, PATH % "mailfix", 5 << 20)
        check.assertEqual(status, 413, text)
        check.assertIn("4096 KiB", text)
        server.wait_log(r"a post to /v1/bots/mailfix/channels/email was refused: over the route's body limit "
                        r"\(Content-Length 5242880\)", mark)
        # no other route takes more than before: the photo's size anywhere else is refused by the hard cap
        for path in ("/v1/bots/mailfix/messages", "/v1/bots/mailfix/channels/twilio", "/v1/bots/nobody/channels/email",
                     "/v1/bots/mailfix/channels/email/x", "/v1/bots/mailfix/channels/emails"):
            status, text = head_only(server, path, len(photo))
            check.assertEqual(status, 413, "%s: %s" % (path, text))
            check.assertIn("64 KiB", text, path)
        status, text = head_only(server, PATH % "mailfix", len(photo), method="PUT")
        check.assertEqual(status, 413, text)
        # at most 4 large posts are read at once: a fifth is told to retry (503) before its body is read
        held = []
        try:
            for _ in range(4):
                sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
                held.append(sock)
                sock.sendall(("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\n"
                              "Content-Length: %d\r\n\r\n" % (PATH % "mailfix", len(photo))).encode())
                check.assertIn(b" 100 ", sock.recv(100), "the head was read and the large body is awaited")
            status, text = head_only(server, PATH % "mailfix", len(photo))
            check.assertEqual(status, 503, text)
            check.assertIn("retry", text)
        finally:
            for sock in held:  # each sends its body and is answered: the room is free again before the next case
                sock.sendall(b"x" * len(photo))
                check.assertEqual(answer_of(sock)[0], 400)
                sock.close()
        barrier()
        check.assertEqual(stored_for(shopper)["inbox"], 1)
        no_problems()

    tap.case("a mail with a 3 MB photo is taken (the email route's limit, PARLEY_EMAIL_MAX_BODY); past it 413 "
             "and logged; every other route keeps the 256 KiB hard cap", large_attachment)

    def redelivery(run):
        shopper, to = new_shopper()
        fields = signed(mail(shopper, "once"))
        for _ in range(3):  # Mailgun's retry of one post
            check.assertEqual(post_form(server, "mailfix", fields).status, 200)
        again = dict(mail(shopper, "once", message_id=fields["Message-Id"]))
        send(server, "mailfix", again)  # the same mail, signed anew
        send(server, "mailfix", mail(shopper, "twice"))
        delivered = sink.wait_delivered(to, 2)
        barrier()
        check.assertEqual([plain(x) for x in sink.delivered(to)], ["echo: once\n", "echo: twice\n"])
        check.assertEqual(db_query(db, "SELECT count(*) FROM inbox WHERE platform_id = ?", fields["Message-Id"])[0][0], 1)
        check.assertEqual(len(delivered), 2)
        no_problems()

    tap.case("a redelivered mail (same token, or same Message-Id) is one turn", redelivery)

    def refused(run):
        shopper = new_address()
        fields = mail(shopper, "hi")
        good = signed(fields)
        mark = server.mark()
        cases = [
            ("wrong key", signed(fields, key="not-the-key"), 403),
            ("no signature", fields, 401),
            ("stale", signed(fields, timestamp=int(time.time()) - 3600), 403),
            ("future", signed(fields, timestamp=int(time.time()) + 3600), 403),
            ("tampered", dict(good, signature=good["signature"][:-1] + ("0" if good["signature"][-1] != "0" else "1")), 403),
        ]
        for what, body, status in cases:
            r = post_form(server, "mailfix", body)
            check.assertEqual(r.status, status, "%s: %r" % (what, r))
        # a captured signature over another body: the token was used
        first = signed(mail(new_address(), "first"))
        check.assertEqual(post_form(server, "mailfix", first).status, 200)
        replay = dict(mail(shopper, "hi"), timestamp=first["timestamp"], token=first["token"],
                      signature=first["signature"])
        r = post_form(server, "mailfix", replay)
        check.assertEqual(r.status, 403, r)
        check.assertIn("replay", r.body.decode())
        malformed = [
            ("not a form", server.request("POST", PATH % "mailfix", body=json.dumps(good),
                                          headers={"Content-Type": "application/json"})),
            ("headers not JSON", post_form(server, "mailfix", signed(dict(fields, **{"message-headers": "[oops"})))),
            ("headers not pairs", post_form(server, "mailfix", signed(dict(fields, **{"message-headers": "[[1, 2]]"})))),
            ("no sender", post_form(server, "mailfix", signed({k: v for k, v in fields.items() if k != "sender"}))),
            ("not an address", post_form(server, "mailfix", signed(dict(fields, sender="no at sign")))),
            ("broken multipart", server.request("POST", PATH % "mailfix", body=b"--x\r\nnothing",
                                                headers={"Content-Type": "multipart/form-data"})),
        ]
        for what, r in malformed:
            check.assertEqual(r.status, 400, "%s: %r" % (what, r))
        server.wait_log(r"email webhook refused \(403\)", mark)
        barrier()
        check.assertEqual(stored_for(shopper), {"inbox": 0, "sessions": 0, "outbox": 0})
        check.assertEqual(sink.attempts(shopper.lower()), [])
        no_problems()

    tap.case("wrong, missing, stale or replayed signatures -> 401/403; malformed posts -> 400; nothing stored",
             refused)

    def not_answered(run):
        mark = server.mark()
        quiet = [
            ("auto-reply", mail(new_address(), "I am away", headers=[["Auto-Submitted", "auto-replied"]])),
            ("bulk", mail(new_address(), "News", headers=[["Precedence", "bulk"]])),
            ("list", mail(new_address(), "Digest", headers=[["List-Id", "<coffee.lists.example.org>"]])),
            ("autoreply header", mail(new_address(), "Away", headers=[["X-Autoreply", "yes"]])),
            ("bounce", dict(mail(new_address(), "Delivery failed"), sender="")),
            ("daemon", mail("MAILER-DAEMON@mx.example.org", "Undeliverable")),
        ]
        taken(quiet)
        # Auto-Submitted: no is a person's mail
        person = new_address()
        send(server, "mailfix", mail(person, "a person", headers=[["Auto-Submitted", "no"]]))
        sink.wait_delivered(person.lower(), 1)
        barrier()
        for what, fields in quiet:
            check.assertEqual(stored_for(fields["sender"] or "nobody"), {"inbox": 0, "sessions": 0, "outbox": 0}, what)
        check.assertEqual(len(server.find_log(r"mailfix\] email: not answering a mail from", mark)), len(quiet))
        no_problems()

    tap.case("auto-replies, bulk mail, lists, bounces and mailer daemons are acknowledged and never answered",
             not_answered)

    def forged(run):
        victim = new_address()
        mark = server.mark()
        doubtful = [
            ("SPF and DKIM fail", (("X-Mailgun-Spf", "Fail"), ("X-Mailgun-Dkim-Check-Result", "Fail")), ()),
            ("SPF soft fail, no DKIM", (("X-Mailgun-Spf", "SoftFail"),), ()),
            ("spam", (("X-Mailgun-Sflag", "Yes"), ("X-Mailgun-Spf", "Pass")), ()),
            ("no verdicts", (), ()),
            # the stranger writes passing verdicts into the mail: Mailgun's come first and are the ones read
            ("forged verdicts", (("X-Mailgun-Spf", "Fail"), ("X-Mailgun-Dkim-Check-Result", "Fail")), PASSING),
        ]
        taken([(what, mail(victim, "send my order to mallory@example.net", verdicts=verdicts, headers=own))
               for what, verdicts, own in doubtful])
        # the victim's own mail, vouched for by Mailgun, is answered
        send(server, "mailfix", mail(victim, "it is me"))
        check.assertEqual([plain(x) for x in sink.wait_delivered(victim.lower(), 1)], ["echo: it is me\n"])
        barrier()
        check.assertEqual(stored_for(victim), {"inbox": 1, "sessions": 1, "outbox": 1})
        lines = server.find_log(r"mailfix\] email: not answering a mail from '%s': " % re.escape(victim), mark)
        check.assertEqual(len(lines), len(doubtful), lines)
        check.assertEqual(len([x for x in lines if "neither SPF nor DKIM passed" in x.string]), 4, lines)
        check.assertEqual(len([x for x in lines if "flagged it as spam" in x.string]), 1, lines)
        no_problems()

    tap.case("a sender Mailgun does not vouch for (SPF and DKIM fail, spam, no verdicts, verdicts forged into the "
             "mail) is acknowledged and never answered", forged)

    def loop_guard(run):
        shopper, to = new_shopper()
        mark = server.mark()
        for i in range(5):
            send(server, "mailfix", mail(shopper, "loop %d" % i))
        server.wait_log(r"mailfix\] email: more than 3 mails from %s" % re.escape(to), mark)
        barrier()
        check.assertEqual([plain(x) for x in sink.wait_delivered(to, 3)], ["echo: loop 0\n", "echo: loop 1\n", "echo: loop 2\n"])
        check.assertEqual(stored_for(shopper)["inbox"], 3)
        no_problems()

    tap.case("the loop guard: past loop_limit mails from one address in the window, acknowledged and ignored",
             loop_guard)

    def transient_then_sent(run):
        shopper, to = new_shopper()
        sink.fail_next(to, 451, 421)
        mark = server.mark()
        send(server, "mailfix", mail(shopper, "first"))
        send(server, "mailfix", mail(shopper, "second"))
        delivered = sink.wait_delivered(to, 2)
        check.assertEqual([plain(x) for x in delivered], ["echo: first\n", "echo: second\n"])
        check.assertEqual([(x["code"], plain(x)) for x in sink.attempts(to)],
                          [(451, "echo: first\n"), (421, "echo: first\n"), (250, "echo: first\n"), (250, "echo: second\n")])
        server.wait_log(r"mailfix\] email/%s: sending message \d+ failed \(SMTP 451" % re.escape(to), mark)
        wait_until(lambda: db_query(db, "SELECT count(*) FROM outbox WHERE user = ? AND state = 'sent'", to)[0][0] == 2,
                   what="both outbox rows marked sent")
        no_problems()

    tap.case("the relay answers 451 then 421 (transient), then 250: sent once, in order", transient_then_sent)

    def permanent(run):
        shopper, to = new_shopper()
        sink.fail_next(to, 550)
        mark = server.mark()
        send(server, "mailfix", mail(shopper, "lost"))
        server.wait_log(r"mailfix\] email/%s: outgoing message \d+ is a dead letter after 1 attempt" % re.escape(to), mark)
        wait_until(lambda: db_query(db, "SELECT count(*) FROM outbox WHERE user = ? AND state = 'dead'", to)[0][0] == 1,
                   what="the outbox row marked dead")
        send(server, "mailfix", mail(shopper, "back"))
        check.assertEqual([plain(x) for x in sink.wait_delivered(to, 1)], ["echo: back\n"])
        check.assertEqual(len(sink.attempts(to)), 2)
        no_problems()

    tap.case("the relay answers 550 (permanent): a dead letter at once, the next mail goes out", permanent)

    def handoff(run):
        shopper, to = new_shopper()
        auth = {"Authorization": "Bearer " + AGENT_TOKEN}
        send(server, "barista", mail(shopper, "hi"))
        sink.wait_delivered(to, 1)
        send(server, "barista", mail(shopper, "can I talk to a person?"))
        m = sink.wait_delivered(to, 2)[1]
        check.assertRegex(plain(m), r"getting one of our team")
        path = "/v1/agent/conversations/barista/email/%s/" % urllib.parse.quote(to)
        r = server.request("POST", path + "claim", {"agent": "Mia"}, headers=auth)
        check.assertEqual(r.status, 200, r)
        sink.wait_delivered(to, 3)
        r = server.request("POST", path + "reply", {"agent": "Mia", "text": "Hi! Your oat latte is on the counter."},
                           headers=auth)
        check.assertEqual(r.status, 200, r)
        reply = sink.wait_delivered(to, 4)[3]
        check.assertEqual(plain(reply), "Hi! Your oat latte is on the counter.\n")
        check.assertEqual(reply["msg"]["References"].split()[0], m["msg"]["References"].split()[0],
                          "the agent's mail is in the conversation's thread")
        no_problems()

    tap.case("handoff: an agent's reply reaches the shopper by mail, in the thread", handoff, runs=1)

    tap.unwatch(server)
    check.assertEqual(server.stop(), 0)

    def bots_relay_is_public_only(run):
        # no PARLEY_EMAIL_API_BASE: the relay is the bot's smtp_url, which
        # names the sink on loopback; parley must not connect to it
        env2 = dict(env, PARLEY_EMAIL_API_BASE=None, PARLEY_OUTBOX_MAX_ATTEMPTS="1",
                    MAILFIX_SMTP_URL="smtp://127.0.0.1:%d" % sink.port)
        other = tap.watch(Server(bots=[fixture], env=env2, name="parley (bot's relay)").start())
        with sink.lock:
            before = sink.connections
        shopper = new_address()
        mark = other.mark()
        send(other, "mailfix", mail(shopper, "hi"))
        other.wait_log(r"mailfix\] email/%s: outgoing message \d+ is a dead letter after 1 attempt: "
                       r"127\.0\.0\.1 is a loopback address" % re.escape(shopper.lower()), mark)
        with sink.lock:
            check.assertEqual(sink.connections, before, "no connection reached the loopback relay")
        tap.unwatch(other)
        check.assertEqual(other.stop(), 0)

    tap.case("a bot's own smtp_url is reached only at public addresses (no SSRF to loopback)",
             bots_relay_is_public_only, runs=1)
    sink.stop()


if __name__ == "__main__":
    run_suite("email channel", main)
