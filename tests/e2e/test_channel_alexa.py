#!/usr/bin/env python3
"""test_channel_alexa: the Alexa custom skill channel, end to end.

`parley serve` runs the default bot with its alexa channel turned on
(BARISTA_ALEXA_SKILL_ID). Amazon cannot be reached from a test, so the test
makes its own root CA and a signing certificate with the SAN
echo-api.amazon.com (openssl command line), serves the chain from a local
HTTP server, and points parley at both with the test-only
PARLEY_ALEXA_CERT_URL_PREFIX and PARLEY_ALEXA_CA_FILE. Every request is
signed like Alexa signs it (Signature-256: RSA over SHA-256 of the body).

Cases: the whole order by voice (launch, "a large latte", "no thanks",
"that's all" -> the summary with the total, the session closed); a wrong
skill id (403), a stale timestamp (400), a bad or missing signature (401),
each with nothing in the SQLite file; SessionEndedRequest acknowledged
without a turn; the help and stop intents; the fallback intent; "go home";
a Japanese session. Each case runs twice with fresh users.
"""

import base64
import datetime
import functools
import http.server
import json
import os
import subprocess
import sys
import threading
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server, check, db_query, new_user, run_suite, temp_dir  # noqa: E402

BOT = "barista"
SKILL = "amzn1.ask.skill.e2e-" + uuid.uuid4().hex[:8]
TOKEN = "alexa-e2e-admin"
WEBHOOK = "/v1/bots/%s/channels/alexa" % BOT

PKI_CONF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = x
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[leaf_ext]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
subjectAltName = DNS:echo-api.amazon.com
"""


def make_pki():
    """A root CA, a signing certificate under it, and a rogue key; returns the folder."""
    d = temp_dir("parley-alexa-pki-")
    os.makedirs(os.path.join(d, "echo.api"))
    with open(os.path.join(d, "pki.cnf"), "w") as f:
        f.write(PKI_CONF)
    for cmd in (
        "openssl req -x509 -new -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 30 "
        "-subj /CN=E2E-Root -config pki.cnf -extensions ca_ext",
        "openssl req -new -newkey rsa:2048 -nodes -keyout sign.key -out sign.csr -subj /CN=echo-api -config pki.cnf",
        "openssl x509 -req -in sign.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out sign.pem -days 2 "
        "-extfile pki.cnf -extensions leaf_ext",
        "openssl genrsa -out rogue.key 2048",
        "cp sign.pem echo.api/chain.pem",
    ):
        subprocess.run(cmd, shell=True, cwd=d, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return d


class ChainServer:
    """Serves the PKI folder on 127.0.0.1 and counts the downloads."""

    def __init__(self, folder):
        self.fetched = []
        outer = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.fetched.append(self.path)
                super().do_GET()

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=folder))
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, name):
        return "http://127.0.0.1:%d/echo.api/%s" % (self.port, name)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def stamp(offset=0):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=offset)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def envelope(user, request, session_id="amzn1.echo-api.session.e2e", new=False, skill=SKILL,
             locale="en-US", offset=0):
    """An Alexa request body (a dict), as the request and response reference shows it."""
    request = dict(request)
    request.update({"requestId": "amzn1.echo-api.request." + uuid.uuid4().hex, "timestamp": stamp(offset),
                    "locale": locale})
    return {
        "version": "1.0",
        "session": {"new": new, "sessionId": session_id, "application": {"applicationId": skill},
                    "attributes": {}, "user": {"userId": user}},
        "context": {"System": {"application": {"applicationId": skill}, "user": {"userId": user},
                               "device": {"deviceId": "amzn1.ask.device.e2e", "supportedInterfaces": {}},
                               "apiEndpoint": "https://api.amazonalexa.com"}},
        "request": request,
    }


def launch():
    return {"type": "LaunchRequest"}


def intent(name, **slots):
    return {"type": "IntentRequest", "dialogState": "COMPLETED",
            "intent": {"name": name, "confirmationStatus": "NONE",
                       "slots": {k: {"name": k, "value": v, "confirmationStatus": "NONE"} for k, v in slots.items()}}}


def utterance(words):
    return intent("CatchAllIntent", utterance=words)


def sign(key, body):
    out = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key, "-binary"], input=body,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True).stdout
    return base64.b64encode(out).decode("ascii")


class Alexa:
    """Plays Alexa's part: signed POSTs to the skill's endpoint."""

    def __init__(self, server, pki, chains):
        self.server, self.pki, self.chains = server, pki, chains

    def post(self, body, key="sign.key", cert_url=None, headers=None, raw=None):
        data = raw if raw is not None else json.dumps(body).encode("utf-8")
        h = {"Content-Type": "application/json; charset=utf-8"}
        if key:
            h["SignatureCertChainUrl"] = cert_url or self.chains.url("chain.pem")
            h["Signature-256"] = sign(os.path.join(self.pki, key), data)
        h.update(headers or {})
        return self.server.request("POST", WEBHOOK, data, headers=h)

    def ask(self, user, request, **kw):
        """A signed request that must be answered; returns the response object."""
        r = self.post(envelope(user, request, **kw))
        check.assertEqual(r.status, 200, r)
        check.assertIn("application/json", r.headers.get("content-type", ""))
        body = r.json
        check.assertEqual(body.get("version"), "1.0", r)
        return body["response"]


def ssml(response):
    speech = response["outputSpeech"]
    check.assertEqual(speech["type"], "SSML")
    check.assertTrue(speech["ssml"].startswith("<speak>") and speech["ssml"].endswith("</speak>"), speech)
    return speech["ssml"]


def rows_for(db, user):
    """Rows of any table that mention this Alexa user (sessions, transcript, inbox, outbox)."""
    return sum(db_query(db, "SELECT count(*) FROM %s WHERE channel = 'alexa' AND user = ?" % t, user)[0][0]
               for t in ("sessions", "transcript", "inbox", "outbox"))


def alexa_user():
    return "amzn1.ask.account." + new_user("e2e")


def main(tap):
    pki = make_pki()
    chains = ChainServer(pki)
    server = tap.watch(Server(env={
        "BARISTA_ALEXA_SKILL_ID": SKILL,
        "PARLEY_ALEXA_CERT_URL_PREFIX": chains.url(""),
        "PARLEY_ALEXA_CA_FILE": os.path.join(pki, "ca.pem"),
        "PARLEY_ADMIN_TOKEN": TOKEN,
    }, name="parley (alexa)").start())
    alexa = Alexa(server, pki, chains)

    def order_by_voice(run):
        user = alexa_user()
        said = alexa.ask(user, launch(), new=True)
        speech = ssml(said)
        check.assertIn("Bea", speech)
        check.assertIn("You can say: Espresso, Latte, Cappuccino", speech)
        check.assertNotIn("€3.80", speech, "product choices are read without their price")
        check.assertNotIn("☕", speech)
        check.assertFalse(said["shouldEndSession"])
        check.assertIn("You can say:", ssml(said["reprompt"]))

        said = alexa.ask(user, utterance("a large latte"))
        speech = ssml(said)
        check.assertIn("Large Latte", speech)
        check.assertIn("Butter Croissant, 2 euros 50.", speech, "the card is read out")
        check.assertIn(" or No thanks.</speak>", speech)
        check.assertFalse(said["shouldEndSession"])

        said = alexa.ask(user, utterance("no thanks"))
        speech = ssml(said)
        check.assertIn("Anything else?", speech)
        check.assertIn("You can say: Another drink or That&apos;s all.", speech)

        said = alexa.ask(user, utterance("that's all"))
        speech = ssml(said)
        check.assertIn("1 × Latte (Large) — €4.70", speech)
        check.assertIn("Total: €4.70", speech)
        # next the bot asks about paying: the session stays open for the answer
        check.assertIn("You can say: Pay now, I have a code or Another drink.", speech)
        check.assertFalse(said["shouldEndSession"], "the flow waits for the answer about paying")
        check.assertIn("Pay now", ssml(said["reprompt"]))

        session = server.session(BOT, user, TOKEN, channel="alexa")
        check.assertEqual([(l["sku"], l["options"]["size"]) for l in session["cart"]["lines"]], [("latte", "large")])
        check.assertEqual(session["locale"], "en")
        check.assertEqual(len(chains.fetched), 1, "the chain is downloaded once, then cached: %r" % chains.fetched)

    def refused(status, what, make, log_status=None):
        def case(run):
            user = alexa_user()
            mark = server.mark()
            r = make(user)
            check.assertEqual(r.status, status, "%s: %r" % (what, r))
            check.assertIn("error", r.json or {}, r)
            server.wait_log(r"\[barista\] alexa webhook refused \(%d\)" % (log_status or status), mark)
            check.assertEqual(rows_for(server.db, user), 0, "nothing stored for a refused request")
            check.assertIsNone(server.session(BOT, user, TOKEN, channel="alexa"))
        return case

    def tampered(user):
        body = json.dumps(envelope(user, launch())).encode()
        return alexa.post(None, raw=body, headers={
            "Signature-256": sign(os.path.join(pki, "sign.key"), body.replace(b"LaunchRequest", b"IntentRequest"))})

    def help_and_stop(run):
        user = alexa_user()
        alexa.ask(user, launch(), new=True)
        said = alexa.ask(user, intent("AMAZON.HelpIntent"))
        speech = ssml(said)
        check.assertIn("I can take your coffee order", speech)
        check.assertIn("Say &quot;cancel&quot; to start over", speech, "quotes are escaped in SSML")
        check.assertIn("You can say: Espresso", speech, "the interrupted question is asked again")
        check.assertFalse(said["shouldEndSession"])
        alexa.ask(user, utterance("a large latte"))
        check.assertEqual(len(server.session(BOT, user, TOKEN, channel="alexa")["cart"]["lines"]), 1)
        said = alexa.ask(user, intent("AMAZON.StopIntent"))
        check.assertEqual(ssml(said), "<speak>No worries, I&apos;ve cleared your order.</speak>")
        check.assertTrue(said["shouldEndSession"])
        check.assertNotIn("reprompt", said)
        check.assertEqual(server.session(BOT, user, TOKEN, channel="alexa")["cart"]["lines"], [])

    def fallback(run):
        user = alexa_user()
        alexa.ask(user, launch(), new=True)
        said = alexa.ask(user, intent("AMAZON.FallbackIntent"))
        check.assertIn("Sorry, I didn&apos;t catch which drink.", ssml(said))
        check.assertFalse(said["shouldEndSession"])

    def session_ended(run):
        user = alexa_user()
        r = alexa.post(envelope(user, {"type": "SessionEndedRequest", "reason": "USER_INITIATED"}))
        check.assertEqual(r.status, 200, r)
        check.assertEqual(r.json, {"version": "1.0", "response": {}})
        check.assertEqual(rows_for(server.db, user), 0, "no turn for a SessionEndedRequest")
        alexa.ask(user, launch(), new=True)
        before = rows_for(server.db, user)
        r = alexa.post(envelope(user, {"type": "SessionEndedRequest", "reason": "EXCEEDED_MAX_REPROMPTS"}))
        check.assertEqual(r.json, {"version": "1.0", "response": {}})
        check.assertEqual(rows_for(server.db, user), before)

    def go_home(run):
        user = alexa_user()
        r = alexa.post(envelope(user, intent("AMAZON.NavigateHomeIntent")))
        check.assertEqual(r.status, 200, r)
        check.assertEqual(r.json, {"version": "1.0", "response": {"shouldEndSession": True}})
        check.assertEqual(rows_for(server.db, user), 0)

    def japanese(run):
        user = alexa_user()
        said = alexa.ask(user, launch(), new=True, locale="ja-JP")
        speech = ssml(said)
        check.assertIn("次のように言えます：エスプレッソ、カフェラテ", speech)
        said = alexa.ask(user, intent("AMAZON.HelpIntent"), locale="ja-JP")
        check.assertIn("コーヒーのご注文を承ります", ssml(said), "help works in any language (payload intent:help)")
        said = alexa.ask(user, utterance("カフェラテ"), locale="ja-JP")
        check.assertIn("カフェラテのサイズ", ssml(said))
        check.assertEqual(server.session(BOT, user, TOKEN, channel="alexa")["locale"], "ja")

    try:
        tap.case("the whole order by voice: launch, a large latte, no thanks, that's all", order_by_voice)
        tap.case("a wrong skill id is refused (403), nothing stored",
                 refused(403, "wrong skill", lambda u: alexa.post(envelope(u, launch(), skill="amzn1.ask.skill.other"))))
        tap.case("a stale timestamp is refused (400), nothing stored",
                 refused(400, "stale", lambda u: alexa.post(envelope(u, launch(), offset=-200))))
        tap.case("a signature by another key is refused (401), nothing stored",
                 refused(401, "rogue key", lambda u: alexa.post(envelope(u, launch()), key="rogue.key")))
        tap.case("a body that is not the one signed is refused (401), nothing stored",
                 refused(401, "tampered", tampered))
        tap.case("an unsigned request is refused (401), nothing stored",
                 refused(401, "unsigned", lambda u: alexa.post(envelope(u, launch()), key=None)))
        tap.case("a certificate URL outside the allowed ones is refused (401), nothing stored",
                 refused(401, "bad URL", lambda u: alexa.post(envelope(u, launch()),
                                                              cert_url="http://127.0.0.1:1/echo.api/chain.pem")))
        tap.case("SessionEndedRequest is acknowledged without a turn", session_ended)
        tap.case("help repeats the question; stop clears the order and ends the session", help_and_stop)
        tap.case("the fallback intent takes the not-understood path", fallback)
        tap.case("go home leaves the skill without a turn", go_home)
        tap.case("a Japanese session is spoken in Japanese", japanese)
    finally:
        chains.stop()


if __name__ == "__main__":
    run_suite("alexa channel", main)
