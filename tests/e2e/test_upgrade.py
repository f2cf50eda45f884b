#!/usr/bin/env python3
"""test_upgrade: the store's migrations across versions of parley
(docs/deployment.md#upgrading). A database whose schema is newer than the
binary knows (a newer parley migrated it) is refused at start, with a clear
message and exit status 1, and left as it was; the same database with the
versions this binary knows is served again."""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (PARLEY, Server, check, db_execute, db_query, echo_bot, new_db, new_user,  # noqa: E402
                     run_suite, temp_dir, texts)

BOT = "upgrader"


def serve_once(db, bot_dir, timeout=20):
    """Starts `parley serve` on db and waits for it to exit (a refusal);
    returns (status, its output)."""
    p = subprocess.run([PARLEY, "serve", "--listen", "127.0.0.1:0", "--db", db, bot_dir],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       cwd=temp_dir(), timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def main(tap):
    bot_dir, _ = echo_bot(BOT)

    def newer_schema_refused(run):
        db = new_db()
        user = new_user()
        with Server(bots=[bot_dir], db=db, name="parley (this version)") as srv:
            srv.say(BOT, user, "before the newer parley")
        known = db_query(db, "SELECT max(version) FROM schema_migrations")[0][0]
        newer = known + 1 + run  # what a later parley would have recorded
        db_execute(db, "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", newer, 0)

        status, out = serve_once(db, bot_dir)
        check.assertEqual(status, 1, out)
        check.assertIn("the database's schema is at version %d, newer than this parley's %d" % (newer, known), out)
        check.assertIn("run the newer parley", out)
        check.assertNotIn("listening on", out)
        # nothing was written: the versions are as the newer parley left them
        check.assertEqual([r[0] for r in db_query(db, "SELECT version FROM schema_migrations ORDER BY version")],
                          list(range(1, known + 1)) + [newer])

        # the newer parley's record gone (as if a backup from before the
        # upgrade were restored): served again, the conversation goes on
        db_execute(db, "DELETE FROM schema_migrations WHERE version = ?", newer)
        with Server(bots=[bot_dir], db=db, name="parley (again)") as srv:
            check.assertRegex(texts(srv.say(BOT, user, "after")), r"^2: ")

    tap.case("a database migrated by a newer parley is refused with a clear message", newer_schema_refused)


if __name__ == "__main__":
    run_suite("upgrading across migrations", main)
