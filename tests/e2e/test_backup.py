#!/usr/bin/env python3
"""test_backup: `parley backup` copies the SQLite store while `parley serve`
takes messages: the copy passes SQLite's integrity check, a fresh server
serves it, and every turn acknowledged before the backup began is in it.
DEST is written whole or not at all, readable by its owner only (0600
under umask 022), and a backup stopped by SIGTERM or Ctrl-C leaves no
DEST.partial behind; a PostgreSQL database is pointed to pg_dump
(docs/deployment.md#backups)."""

import os
import re
import signal
import stat
import sqlite3
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (PARLEY, Server, check, db_query, echo_bot, new_db, new_user, run_suite,  # noqa: E402
                     temp_dir, texts)

BOT = "keeper"


def backup(*args, timeout=60):
    """Runs `parley backup ARGS`; returns (exit status, stdout, stderr)."""
    p = subprocess.run([PARLEY, "backup", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       stdin=subprocess.DEVNULL, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def integrity(path):
    con = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        return con.execute("PRAGMA integrity_check").fetchall()
    finally:
        con.close()


class Load:
    """Threads that send messages to srv until stopped; each acknowledged
    (200) message is kept with the monotonic time its answer arrived."""

    def __init__(self, srv, threads=3):
        self.srv = srv
        self.stop_flag = threading.Event()
        self.acked = []  # (answered_at, user, text)
        self.failures = []
        self.lock = threading.Condition()  # notified at each acknowledged message
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def _run(self, i):
        users = [new_user("load%d" % i) for _ in range(5)]
        n = 0
        while not self.stop_flag.is_set():
            user = users[n % len(users)]
            text = "message %d of %s %s" % (n, user, "x" * 200)  # rows big enough for many pages
            n += 1
            try:
                r = self.srv.post(BOT, user, text)
            except OSError as e:
                with self.lock:
                    self.failures.append(repr(e))
                continue
            if r.status == 200:
                with self.lock:
                    self.acked.append((time.monotonic(), user, text))
                    self.lock.notify_all()
            else:
                with self.lock:
                    self.failures.append(repr(r))

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def count(self):
        with self.lock:
            return len(self.acked)

    def wait_for(self, n, timeout):
        """Waits until n messages were acknowledged (or timeout seconds
        went by); returns how many were."""
        with self.lock:
            self.lock.wait_for(lambda: len(self.acked) >= n, timeout)
            return len(self.acked)

    def stop(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(timeout=30)


def main(tap):
    bot_dir, _ = echo_bot(BOT)

    def under_load(run):
        db = new_db()
        srv = tap.watch(Server(bots=[bot_dir], db=db, name="parley (serving)").start())
        load = Load(srv).start()
        try:
            # enough turns that the copy takes many steps of 8 pages
            load.wait_for(300, 30)
            check.assertGreaterEqual(load.count(), 300, "the load did not get going: %r" % load.failures[:3])
            dest = os.path.join(temp_dir("parley-backup-"), "copy.db")
            began, at_start = time.monotonic(), load.count()
            # small steps with pauses: the server commits turns between them
            status, out, err = backup("--db", db, "--step", "8", "--pause", "20", dest)
            after_backup = load.count()
            # the server went on taking messages meanwhile: a few more after
            target = after_backup + 20
            load.wait_for(target, 60)
        finally:
            load.stop()
        check.assertEqual(status, 0, "parley backup failed: %s%s" % (out, err))
        check.assertEqual(load.failures, [], "the server failed messages during the backup")
        check.assertGreater(after_backup, at_start, "the server committed turns while the backup ran")
        check.assertRegex(out, r"backed up .* to .*copy\.db: (\d+) pages of \d+ bytes .*schema version \d+, "
                               r"integrity check ok \((\d+) steps?, (\d+) waits? for a lock\)")
        pages, steps, waits = (int(x) for x in re.search(r": (\d+) pages.*\((\d+) steps?, (\d+) wait", out).groups())
        # the commits meanwhile never restarted the copy: it read one snapshot
        check.assertEqual(steps - waits, (pages + 7) // 8, out)
        check.assertIn("copied ", out, "progress lines for a copy of many steps")
        check.assertFalse([f for f in os.listdir(os.path.dirname(dest)) if f != "copy.db"],
                          "nothing but the copy is left beside it: %r" % os.listdir(os.path.dirname(dest)))
        check.assertEqual(integrity(dest), [("ok",)])
        before = [(u, t) for at, u, t in load.acked if at < began]
        check.assertGreaterEqual(len(before), 300)
        srv.stop()
        tap.unwatch(srv)

        # a fresh server serves the copy: every turn acknowledged before the
        # backup began is there, and the conversations go on from it
        fresh = tap.watch(Server(bots=[bot_dir], db=dest, name="parley (the backup)").start())
        try:
            kept = set(r[0] for r in (
                db_query(dest, "SELECT body FROM transcript WHERE direction = 'in'")))
            missing = [t for u, t in before if not any(t in body for body in kept)]
            check.assertEqual(missing, [], "turns acknowledged before the backup began are missing from it")
            user = before[-1][0]
            sent_before = sum(1 for u, _ in before if u == user)
            replies = fresh.say(BOT, user, "after the restore")
            count = int(texts(replies).split(":")[0])
            check.assertGreater(count, sent_before, "the session's turn count goes on from the backup's")
        finally:
            fresh.stop()
            tap.unwatch(fresh)

    # SQLite only: parley copies SQLite files; a PostgreSQL database is
    # dumped with pg_dump, which parley does not run (the last cases)
    tap.sqlite_only("a backup taken under load holds every turn acknowledged before it began", under_load)

    def dest_whole_or_untouched(run):
        db = new_db()
        with Server(bots=[bot_dir], db=db, name="parley (small)") as srv:
            srv.say(BOT, new_user(), "hello")
            folder = temp_dir("parley-backup-")
            dest = os.path.join(folder, "copy.db")
            status, out, err = backup("--db", db, "--quiet", dest)
            check.assertEqual((status, out, err), (0, "", ""))
            first = os.stat(dest)
            # DEST exists: refused, untouched
            status, out, err = backup("--db", db, dest)
            check.assertEqual(status, 1)
            check.assertIn("exists: give a new name, or --replace", err)
            check.assertEqual(os.stat(dest).st_ino, first.st_ino)
            # --replace: a new whole file in its place
            srv.say(BOT, new_user(), "hello again")
            status, out, err = backup("--db", db, "--replace", dest)
            check.assertEqual(status, 0, err)
            check.assertNotEqual(os.stat(dest).st_ino, first.st_ino)
            check.assertEqual(integrity(dest), [("ok",)])
            # a source that is no parley database: an error, DEST as it was
            stranger = os.path.join(folder, "stranger.db")
            con = sqlite3.connect(stranger)
            con.execute("CREATE TABLE t (x)")
            con.commit()
            con.close()
            replaced = os.stat(dest)
            status, out, err = backup("--db", stranger, "--replace", dest)
            check.assertEqual(status, 1)
            check.assertIn("not a parley database", err)
            check.assertEqual(os.stat(dest).st_ino, replaced.st_ino)
            check.assertEqual(sorted(os.listdir(folder)), ["copy.db", "stranger.db"])
            # a folder as DEST, a missing database
            status, _, err = backup("--db", db, folder)
            check.assertEqual(status, 1)
            check.assertIn("is a folder", err)
            status, _, err = backup("--db", os.path.join(folder, "none.db"), os.path.join(folder, "x.db"))
            check.assertEqual(status, 1)
            check.assertIn("No such file", err)

    tap.sqlite_only("DEST is a whole checked copy or as it was", dest_whole_or_untouched)

    def private_and_stopped_cleanly(run):
        db = new_db()
        with Server(bots=[bot_dir], db=db, name="parley (private)") as srv:
            srv.say(BOT, new_user(), "hello")
            folder = temp_dir("parley-backup-")
            dest = os.path.join(folder, "copy.db")
            before = os.umask(0o022)  # what a shell usually has: 0644 for what asks for 0666
            try:
                status, _, err = backup("--db", db, "--quiet", dest)
            finally:
                os.umask(before)
            check.assertEqual(status, 0, err)
            check.assertEqual(stat.S_IMODE(os.stat(dest).st_mode), 0o600, "shoppers' data: the owner's only")
            # a slow copy (a page at a time, resting between), stopped once it has begun
            sig = signal.SIGTERM if run % 2 else signal.SIGINT
            # (a run started in the background has SIGINT ignored, and parley backup leaves an
            # ignored signal ignored, as nohup wants: the copy gets the default back)
            p = subprocess.Popen([PARLEY, "backup", "--db", db, "--step", "1", "--pause", "200", "--replace", dest],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                 preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
            try:
                line = p.stdout.readline().decode()
                check.assertIn("copied", line, "the copy is under way")
                partial = dest + ".partial"
                check.assertEqual(stat.S_IMODE(os.stat(partial).st_mode), 0o600)
                p.send_signal(sig)
                check.assertEqual(p.wait(timeout=30), -sig, "the signal still ends it")
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
                p.stdout.close()
                p.stderr.close()
            check.assertEqual(os.listdir(folder), ["copy.db"], "no partial copy left")
            check.assertEqual(integrity(dest), [("ok",)], "DEST as it was")

    tap.sqlite_only("DEST is 0600; a backup stopped by SIGTERM or SIGINT leaves no partial copy",
                    private_and_stopped_cleanly)

    def postgres_points_to_pg_dump(run):
        status, out, err = backup("--db", "postgresql://localhost/parley", os.path.join(temp_dir(), "x.db"))
        check.assertEqual(status, 2)
        check.assertIn("pg_dump", err)
        # the environment's database too, as parley serve reads it
        env = dict(os.environ, PARLEY_DATABASE_URL="postgres://db.example/parley")
        p = subprocess.run([PARLEY, "backup", "x.db"], env=env, cwd=temp_dir(), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        check.assertEqual(p.returncode, 2)
        check.assertIn(b"pg_dump", p.stderr)

    tap.case("a PostgreSQL database is pointed to pg_dump", postgres_points_to_pg_dump, runs=1)

    def usage(run):
        status, _, err = backup()
        check.assertEqual(status, 2)
        check.assertIn("give the file to write the backup to", err)
        status, out, _ = backup("--help")
        check.assertEqual(status, 0)
        check.assertIn("usage: parley backup", out)

    tap.case("usage errors", usage, runs=1)


if __name__ == "__main__":
    run_suite("parley backup", main)
