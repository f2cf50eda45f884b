#!/usr/bin/env python3
"""test_log_file: `parley serve --log-file FILE` writes its log to FILE, and
SIGHUP opens FILE again by its name: after a rotation renamed the file
(logrotate without copytruncate, deploy/logrotate/parley), the next lines
go to a new file at the name, the old one gets none. A hangup while parley
starts (before it listens for SIGHUP) is ignored, never its end. Without
--log-file a hangup stops parley, as it always did."""

import grp
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (PARLEY, Server, check, echo_bot, new_db, new_user, read_file, run_suite,  # noqa: E402
                     temp_dir, wait_until)

BOT = "rotor"


class FileLogged:
    """One `parley serve --log-file PATH` (its stderr is that file): the port
    read from the file, HTTP through harness.Server's request."""

    def __init__(self, bot_dir, path):
        self.path = path
        db = new_db()
        self.proc = subprocess.Popen(
            [PARLEY, "serve", "--listen", "127.0.0.1:0", "--db", db, "--log-file", path, bot_dir],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            preexec_fn=harness._die_with_parent, cwd=temp_dir())
        m = wait_until(lambda: self._exited() or re.search(r"listening on 127\.0\.0\.1:(\d+)", self._text()),
                       timeout=harness.START_TIMEOUT, what="the port in the log file")
        self.http = Server(bots=[bot_dir], db=db)  # only its request(); never started
        self.http.port = int(m.group(1))

    def _text(self):
        return read_file(self.path) if os.path.exists(self.path) else ""

    def _exited(self):
        if self.proc.poll() is not None:
            raise AssertionError("parley exited (%s): %s" % (self.proc.returncode, self.proc.stderr.read()))
        return None

    def say(self, user, text):
        r = self.http.post(BOT, user, text)
        check.assertEqual(r.status, 200, r)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=harness.STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def main(tap):
    bot_dir, _ = echo_bot(BOT)

    def rotation(run):
        folder = temp_dir("parley-logs-")
        path = os.path.join(folder, "parley.log")
        srv = FileLogged(bot_dir, path)
        try:
            srv.say(new_user(), "hello")
            # logrotate's move: rename, then the signal
            os.rename(path, path + ".1")
            os.kill(srv.proc.pid, signal.SIGHUP)
            wait_until(lambda: os.path.exists(path) and "opened again" in read_file(path),
                       what="the reopened file's first line")
            srv.say(new_user(), "after the rotation")
            check.assertIsNone(srv.proc.poll(), "SIGHUP does not stop the server")
            check.assertEqual(srv.stop(), 0)
        finally:
            srv.stop()
        check.assertEqual(srv.proc.stderr.read(), b"", "nothing on stderr: the log is the file")
        old, new = read_file(path + ".1"), read_file(path)
        check.assertRegex(old, r"listening on 127\.0\.0\.1:\d+")
        check.assertNotIn("opened again", old)
        check.assertNotIn("stopped", old, "no line goes to the renamed file once it was reopened")
        check.assertRegex(new, r"^\S+ INFO +SIGHUP: log file %s opened again\n" % re.escape(path))
        check.assertRegex(new, r"INFO +stopped\n$")
        for line in (old + new).splitlines():
            check.assertRegex(line, harness.LOG_LINE)
        check.assertEqual(oct(os.stat(path).st_mode & 0o777), oct(0o640))

    tap.case("SIGHUP after a rename: the next lines go to a new file at the name", rotation)

    def logrotate_rotates(run):
        # deploy/logrotate/parley run by logrotate itself, with the test's
        # folder for /var/log/parley and the test server's pid for the
        # unit's systemctl kill
        logrotate = shutil.which("logrotate")
        check.assertTrue(logrotate, "logrotate is not installed (Debian package logrotate): tools/deps.sh test")
        folder = temp_dir("parley-logs-")
        path = os.path.join(folder, "parley.log")
        srv = FileLogged(bot_dir, path)
        try:
            shipped = read_file(os.path.join(harness.ROOT, "deploy/logrotate/parley"))
            conf = shipped.replace("/var/log/parley/", folder + "/")
            # the unit's signal, to the test's server; parley's user, the test's
            conf, signals = re.subn(r"(?m)^(\s*)systemctl kill --kill-who=main --signal=HUP parley\.service$",
                                    r"\1kill -HUP %d" % srv.proc.pid, conf)
            conf, checks = re.subn(r"systemctl is-active --quiet parley\.service", "true", conf)
            conf, users = re.subn(r"(?m)^(\s*)su parley parley$", r"\1su %s %s" % (
                pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name), conf)
            check.assertEqual((signals, checks, users), (1, 1, 1), shipped)
            harness.write_file(os.path.join(folder, "logrotate.conf"), conf)
            srv.say(new_user(), "before")
            p = subprocess.run([logrotate, "--force", "--state", os.path.join(folder, "state"),
                                os.path.join(folder, "logrotate.conf")],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
            check.assertEqual(p.returncode, 0, p.stdout.decode())
            wait_until(lambda: "opened again" in read_file(path), what="the reopened file's first line")
            srv.say(new_user(), "after")
            check.assertEqual(srv.stop(), 0)
        finally:
            srv.stop()
        # delaycompress: the first rotation is parley.log.1, as it was
        rotated = read_file(path + ".1")
        check.assertIn("listening on", rotated)
        check.assertNotIn("stopped", rotated)
        check.assertRegex(read_file(path), r"SIGHUP: log file .* opened again\n(.*\n)*.*INFO +stopped\n$")

    tap.case("logrotate with deploy/logrotate/parley: rename, SIGHUP, a new file", logrotate_rotates)

    def without_log_file(run):
        srv = tap.watch(Server(bots=[bot_dir], name="parley (stderr)").start())
        try:
            check.assertRegex(harness.texts(srv.say(BOT, new_user(), "hello")), r"^1: ")
            os.kill(srv.proc.pid, signal.SIGHUP)
            srv.proc.wait(timeout=harness.STOP_TIMEOUT)
            check.assertEqual(srv.proc.returncode, -signal.SIGHUP)
        finally:
            srv.stop()
            tap.unwatch(srv)

    tap.case("without --log-file a hangup stops parley as before", without_log_file)

    def hangup_while_starting(run):
        # a "database server" that takes the connection and never answers:
        # parley waits in its start, after opening the log file and before
        # listening for SIGHUP; then the server goes away and the start fails
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(harness.START_TIMEOUT)
        path = os.path.join(temp_dir("parley-logs-"), "parley.log")
        url = "postgresql://parley@127.0.0.1:%d/parley?connect_timeout=60" % listener.getsockname()[1]
        p = subprocess.Popen([PARLEY, "serve", "--listen", "127.0.0.1:0", "--db", url, "--log-file", path, bot_dir],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             preexec_fn=harness._die_with_parent, cwd=temp_dir())
        try:
            conn, _ = listener.accept()  # parley is in its start now
            p.send_signal(signal.SIGHUP)
            conn.close()
            check.assertEqual(p.wait(timeout=harness.STOP_TIMEOUT), 1, "the start failed on the database, "
                              "not on the hangup (%s)" % p.stderr.read())
        finally:
            listener.close()
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()
            p.stderr.close()
        check.assertIn("127.0.0.1", read_file(path), "the log says why the start failed")

    tap.case("with --log-file a hangup while parley starts is ignored", hangup_while_starting)

    def unwritable(run):
        p = subprocess.run([PARLEY, "serve", "--listen", "127.0.0.1:0", "--db", new_db(), "--log-file",
                            os.path.join(temp_dir(), "no", "such", "folder.log"), bot_dir],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        check.assertEqual(p.returncode, 1)
        check.assertIn(b"parley serve: --log-file ", p.stderr)
        check.assertIn(b"No such file or directory", p.stderr)

    tap.case("a log file that cannot be opened stops the start, saying why", unwritable, runs=1)


if __name__ == "__main__":
    run_suite("parley serve --log-file and SIGHUP", main)
