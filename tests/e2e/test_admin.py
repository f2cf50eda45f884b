#!/usr/bin/env python3
"""test_admin: the admin session API behind PARLEY_ADMIN_TOKEN.
GET /v1/bots/{bot}/sessions/{channel}/{user} shows a session (stack with
flow/step/slots, cart, locale); DELETE erases the session and its
transcript. 403 with a reason while the token is unset, 401 on a wrong one."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import LOG_LINE, Server, check, db_query, new_user, run_suite, texts  # noqa: E402

BOT = "barista"
TOKEN = "e2e-admin-token-5f1c9a"


def path_of(user, bot=BOT, channel="rest"):
    return "/v1/bots/%s/sessions/%s/%s" % (bot, channel, user)


def db_rows(db, user, bot=BOT):
    """(sessions, transcript lines) stored for user, read straight from the
    database (read-only; the server keeps running)."""
    s = db_query(db, "SELECT count(*) FROM sessions WHERE bot = ? AND channel = 'rest' AND user = ?", bot, user)[0][0]
    t = db_query(db, "SELECT count(*) FROM transcript WHERE bot = ? AND channel = 'rest' AND user = ?", bot, user)[0][0]
    return s, t


def main(tap):
    # --- without a token: the admin API is off ------------------------------------
    off = tap.watch(Server(name="parley (no admin token)").start())

    def disabled(run):
        u = new_user("off")
        off.say(BOT, u, "hi")
        for method in ("GET", "DELETE"):
            for headers in ({}, {"Authorization": "Bearer " + TOKEN}, {"Authorization": "Bearer "}):
                r = off.request(method, path_of(u), headers=headers)
                check.assertEqual(r.status, 403, "%s %s: %r" % (method, headers, r))
                check.assertIn("PARLEY_ADMIN_TOKEN", r.json["error"])
        check.assertEqual(db_rows(off.db, u), (1, 2), "a refused DELETE erased nothing (one session; hi and its answer)")
        check.assertIn("Latte", texts(off.say(BOT, u, payload="latte")), "the conversation goes on")

    tap.case("PARLEY_ADMIN_TOKEN unset: GET and DELETE -> 403 with a reason, nothing erased", disabled)
    off.stop()
    tap.unwatch(off)

    def empty_token(run):
        with Server(env={"PARLEY_ADMIN_TOKEN": ""}, name="parley (empty admin token)") as s:
            r = s.request("GET", path_of("x"), headers={"Authorization": "Bearer "})
            check.assertEqual(r.status, 403, r)
            check.assertIn("PARLEY_ADMIN_TOKEN", r.json["error"])

    tap.case("an empty PARLEY_ADMIN_TOKEN counts as unset -> 403 (no empty password)", empty_token, runs=1)

    # --- with a token --------------------------------------------------------------
    srv = tap.watch(Server(env={"PARLEY_ADMIN_TOKEN": TOKEN}, name="parley (admin)").start())
    auth = {"Authorization": "Bearer " + TOKEN}

    def wrong_token(run):
        u = new_user("auth")
        srv.say(BOT, u, "hi")
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer " + TOKEN + "x"},
                        {"Authorization": "Bearer " + TOKEN[:-1]}, {"Authorization": TOKEN},
                        {"Authorization": "Basic " + TOKEN}, {"Authorization": "Bearer  " + TOKEN},
                        {"X-Admin-Token": TOKEN}):
            for method in ("GET", "DELETE"):
                r = srv.request(method, path_of(u), headers=headers)
                check.assertEqual(r.status, 401, "%s with %r: %r" % (method, headers, r))
                check.assertIsInstance(r.json.get("error"), str)
                check.assertEqual(r.headers.get("www-authenticate"), "Bearer")
        # a wrong token learns nothing, not even whether a session exists
        r = srv.request("GET", path_of(new_user("nobody")), headers={"Authorization": "Bearer wrong"})
        check.assertEqual(r.status, 401, r)
        check.assertEqual(db_rows(srv.db, u), (1, 2), "a refused DELETE erased nothing (one session; hi and its answer)")

    tap.case("a missing or wrong token -> 401 for GET and DELETE, nothing erased", wrong_token)

    def get_session(run):
        u = new_user("get")
        srv.say(BOT, u, "hi")
        srv.say(BOT, u, payload="latte")
        r = srv.request("GET", path_of(u), headers=auth)
        check.assertEqual(r.status, 200, r)
        check.assertTrue(r.headers["content-type"].startswith("application/json"))
        s = r.json
        check.assertEqual((s["bot"], s["channel"], s["user"]), (BOT, "rest", u))
        check.assertEqual(s["locale"], "en")
        check.assertEqual(s["turn"], 2)
        check.assertEqual([(f["flow"], f["step"]) for f in s["stack"]], [("main", "start"), ("drink", "size")])
        check.assertEqual(s["stack"][1]["slots"], {"queue": [{"qty": 1, "sku": "latte"}]})
        check.assertEqual(s["cart"]["lines"], [])

        srv.say(BOT, u, payload="medium")
        s = srv.session(BOT, u, TOKEN)
        check.assertEqual(s["turn"], 3)
        check.assertEqual([(f["flow"], f["step"]) for f in s["stack"]], [("main", "offer_pairing")])
        lines = s["cart"]["lines"]
        check.assertEqual(len(lines), 1)
        check.assertEqual((lines[0]["sku"], lines[0]["qty"], lines[0]["options"]), ("latte", 1, {"size": "medium"}))

    tap.case("GET shows the session: stack of flow/step/slots, cart, locale, turn", get_session)

    def get_locale(run):
        u = new_user("ja")
        srv.say(BOT, u, "こんにちは", locale="ja")
        check.assertEqual(srv.session(BOT, u, TOKEN)["locale"], "ja")

    tap.case("GET shows the session's locale", get_locale)

    def not_found(run):
        u = new_user("ghost")
        for p in (path_of(u), path_of(u, channel="whatsapp")):
            r = srv.request("GET", p, headers=auth)
            check.assertEqual(r.status, 404, r)
            check.assertIsInstance(r.json.get("error"), str)
        srv.say(BOT, u, "hi")
        check.assertEqual(srv.request("GET", path_of(u, channel="whatsapp"), headers=auth).status, 404,
                          "sessions are kept per channel")
        r = srv.request("GET", path_of(u, bot="nobot"), headers=auth)
        check.assertEqual(r.status, 404, r)
        r = srv.request("DELETE", path_of(new_user("ghost")), headers=auth)
        check.assertEqual(r.status, 404, r)
        check.assertIsInstance(r.json.get("error"), str)

    tap.case("GET or DELETE of a session that does not exist (user, channel, bot) -> 404", not_found)

    def erase(run):
        u, other = new_user("erase"), new_user("keep")
        for who in (u, other):
            srv.say(BOT, who, "hi")
            srv.say(BOT, who, "small latte")
        stored = db_rows(srv.db, other)
        check.assertEqual(db_rows(srv.db, u), stored)
        check.assertEqual(stored[0], 1)
        check.assertGreaterEqual(stored[1], 4, "2 messages in, at least 2 replies out")
        r = srv.request("DELETE", path_of(u), headers=auth)
        check.assertEqual(r.status, 200, r)
        check.assertEqual(r.json, {"bot": BOT, "channel": "rest", "user": u, "erased": True})
        check.assertEqual(srv.request("GET", path_of(u), headers=auth).status, 404)
        check.assertEqual(db_rows(srv.db, u), (0, 0), "session and transcript are erased")
        check.assertEqual(srv.request("DELETE", path_of(u), headers=auth).status, 404, "a second DELETE finds nothing")
        # the other shopper is untouched
        check.assertEqual(db_rows(srv.db, other), stored)
        check.assertEqual(len(srv.session(BOT, other, TOKEN)["cart"]["lines"]), 1)
        # the erased shopper starts over: greeted, empty cart, turn 1
        replies = srv.say(BOT, u, "hi")
        check.assertNotIn("Welcome back", texts(replies))
        check.assertIn("Bea", texts(replies))
        s = srv.session(BOT, u, TOKEN)
        check.assertEqual((s["turn"], s["cart"]["lines"]), (1, []))

    tap.case("DELETE erases session and transcript; then GET -> 404 and the shopper starts over", erase)

    def odd_user_ids(run):
        from urllib.parse import quote
        for base in ("shopper/with slash", "spaces & ampersand?", "ünïcode-ユーザー", "percent%41", "+33 6 12 34"):
            u = "%s %s" % (base, new_user(""))
            check.assertIn("Bea", texts(srv.say(BOT, u, "hi")))
            p = path_of(quote(u, safe=""))
            r = srv.request("GET", p, headers=auth)
            check.assertEqual(r.status, 200, "GET %s: %r" % (p, r))
            check.assertEqual(r.json["user"], u)
            check.assertEqual(r.json["turn"], 1)
            r = srv.request("DELETE", p, headers=auth)
            check.assertEqual(r.status, 200, "DELETE %s: %r" % (p, r))
            check.assertEqual(db_rows(srv.db, u), (0, 0))

    tap.case("user ids with slashes, spaces, ?, % and non-ASCII: reachable URL-encoded by GET and DELETE",
             odd_user_ids)

    def erase_in_burst(run):
        import threading
        u = new_user("burst")
        srv.say(BOT, u, "hi")
        results = []
        gate = threading.Barrier(11)

        def send(i):
            gate.wait(10)
            if i == 5:
                results.append(("DELETE", srv.request("DELETE", path_of(u), headers=auth).status))
            else:
                results.append(("POST", srv.post(BOT, u, "help").status))

        threads = [threading.Thread(target=send, args=(i,)) for i in range(11)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        check.assertEqual(sorted(results), [("DELETE", 200)] + [("POST", 200)] * 10)
        # whatever the order, the session counts exactly the messages kept
        # in the transcript: those that came after the erasure
        s = srv.session(BOT, u, TOKEN)
        n_in = db_query(srv.db, "SELECT count(*) FROM transcript WHERE bot = ? AND user = ? AND direction = 'in'",
                        BOT, u)[0][0]
        check.assertEqual(s["turn"] if s else 0, n_in)
        check.assertLessEqual(n_in, 10)

    tap.case("a DELETE racing a burst of messages: all answered, session and transcript agree", erase_in_burst)

    def methods(run):
        u = new_user("methods")
        srv.say(BOT, u, "hi")
        for method in ("POST", "PUT", "PATCH"):
            r = srv.request(method, path_of(u), body=b"{}", headers=auth)
            check.assertEqual(r.status, 405, "%s: %r" % (method, r))
            check.assertIn("GET", r.headers.get("allow", ""))
            check.assertIn("DELETE", r.headers.get("allow", ""))
        check.assertEqual(srv.session(BOT, u, TOKEN)["turn"], 1)

    tap.case("other methods on a session -> 405 with Allow: GET, DELETE", methods)

    def log_clean(run):
        for line in srv.log_since(0):
            check.assertRegex(line, LOG_LINE)
        check.assertEqual([line for line in srv.log_since(0) if " ERROR " in line], [])
        check.assertNotIn(TOKEN, srv.log_text(), "the token never reaches the log")

    tap.case("the log has no ERROR and never shows the token", log_clean, runs=1)


if __name__ == "__main__":
    run_suite("e2e: admin session API", main)
