#!/usr/bin/env python3
"""test_deploy: what deploy/ ships, as `make install` installs it. The
systemd unit lands where systemd finds it for the PREFIX, with the binary's
and the data's paths filled in, and passes `systemd-analyze verify` (no
warning) with a low exposure in `systemd-analyze security`; the Caddyfile
passes `caddy adapt --validate`; the logrotate file parses and rotates by
rename (no copytruncate), signalling parley with SIGHUP. (nginx's file is run
for real by test_proxy.py, the rotation by test_log_file.py.)"""

import grp
import os
import pwd
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ROOT, check, read_file, run_suite, temp_dir, write_file  # noqa: E402

NEEDS = "tools/deps.sh test installs it"


def tool(name, package):
    path = shutil.which(name)
    if not path:
        raise AssertionError("%s is not installed (Debian package %s): %s" % (name, package, NEEDS))
    return path


def make_install(**variables):
    args = ["make", "--no-print-directory", "-C", ROOT, "install"] + ["%s=%s" % kv for kv in variables.items()]
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    check.assertEqual(p.returncode, 0, p.stdout.decode("utf-8", "replace"))


def run(*args, **kw):
    return subprocess.run(list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60, **kw)


def parley_files_limit():
    """PL_FILES_MAX_BODY of runtime/http/rest.h: the email webhook's default limit in bytes."""
    m = re.search(r"#define PL_FILES_MAX_BODY \((\d+) \* 1024 \* 1024\)", read_file(os.path.join(ROOT, "runtime/http/rest.h")))
    return int(m.group(1)) * 1024 * 1024


def main(tap):
    staged = temp_dir("parley-destdir-")
    make_install(DESTDIR=staged, PREFIX="/usr/local")

    def installed_with_paths(run_):
        unit = os.path.join(staged, "usr/local/lib/systemd/system/parley.service")
        text = read_file(unit)
        check.assertEqual(oct(os.stat(unit).st_mode & 0o777), oct(0o644))
        check.assertNotRegex(text, r"@[A-Z]+@", "every @PLACEHOLDER@ is filled in")
        check.assertRegex(text, r"(?m)^ExecStart=/usr/local/bin/parley serve ")
        check.assertRegex(text, r"(?m)^Documentation=file:/usr/local/share/parley/deploy/README\.md$")
        for f in ("parley.env", "README.md", "nginx/parley.conf", "caddy/Caddyfile", "logrotate/parley"):
            check.assertTrue(os.path.isfile(os.path.join(staged, "usr/local/share/parley/deploy", f)), f)
        check.assertTrue(os.access(os.path.join(staged, "usr/local/bin/parley"), os.X_OK))
        # what the unit promises: its own user, its state folder, the
        # secrets' file, restarts, the drain on SIGTERM and room for it
        for line in ("User=parley", "StateDirectory=parley", "WorkingDirectory=/var/lib/parley",
                     "EnvironmentFile=-/etc/parley/parley.env", "Restart=on-failure", "RestartForceExitStatus=SIGHUP",
                     "KillSignal=SIGTERM",
                     "ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes",
                     "Environment=PARLEY_DATABASE_URL=/var/lib/parley/parley.db"):
            check.assertRegex(text, r"(?m)^%s$" % re.escape(line))
        grace = int(re.search(r"(?m)^Environment=PARLEY_DRAIN_GRACE=(\d+)$", text).group(1))
        stop = int(re.search(r"(?m)^TimeoutStopSec=(\d+)$", text).group(1))
        check.assertGreater(stop, grace + 10, "systemd waits for the drain before SIGKILL")
        check.assertIn("--drain-grace ${PARLEY_DRAIN_GRACE}", text)

    tap.case("make install DESTDIR=... PREFIX=/usr/local: the unit and deploy/ with their paths", installed_with_paths,
             runs=1)

    def unit_verifies(run_):
        analyze = tool("systemd-analyze", "systemd")
        # installed for real under a PREFIX of the test's, so that the
        # unit's ExecStart names a binary that is there
        prefix = temp_dir("parley-prefix-")
        make_install(PREFIX=prefix)
        unit = os.path.join(prefix, "lib/systemd/system/parley.service")
        p = run(analyze, "verify", unit, cwd=prefix)
        check.assertEqual((p.returncode, p.stderr.decode()), (0, ""), "systemd-analyze verify says nothing")
        p = run(analyze, "security", "--offline=yes", unit, cwd=prefix)
        m = re.search(r"Overall exposure level for parley\.service: (\d+\.\d+)", p.stdout.decode())
        check.assertTrue(m, p.stdout.decode()[-500:] + p.stderr.decode())
        check.assertLessEqual(float(m.group(1)), 2.0, "hardened: systemd rates the exposure 'OK' or better")

    tap.case("the unit passes systemd-analyze verify and security", unit_verifies, runs=1)

    def caddyfile_valid(run_):
        caddy = tool("caddy", "caddy")
        p = run(caddy, "adapt", "--validate", "--adapter", "caddyfile", "--config",
                os.path.join(ROOT, "deploy/caddy/Caddyfile"), cwd=temp_dir(),
                env=dict(os.environ, HOME=temp_dir(), XDG_DATA_HOME=temp_dir(), XDG_CONFIG_HOME=temp_dir()))
        check.assertEqual(p.returncode, 0, p.stderr.decode())
        adapted = p.stdout.decode()
        check.assertIn('"flush_interval":-1', adapted, "streams are flushed as they come")
        check.assertIn('"dial":"127.0.0.1:8080"', adapted)
        check.assertIn('"uri":"/v1/health/ready"', adapted)
        check.assertIn('"max_size":%d' % parley_files_limit(), adapted, "a body parley takes, Caddy lets through")

    tap.case("the Caddyfile passes caddy adapt --validate", caddyfile_valid, runs=1)

    def logrotate_parses(run_):
        logrotate = tool("logrotate", "logrotate")
        text = read_file(os.path.join(ROOT, "deploy/logrotate/parley"))
        check.assertNotRegex(text, r"(?m)^\s*copytruncate", "rename and signal, never copytruncate")
        check.assertRegex(text, r"(?m)^\s*systemctl kill --kill-who=main --signal=HUP parley\.service$",
                          "--kill-who: systemd before 252 knows no --kill-whom; no error hidden")
        check.assertRegex(text, r"(?m)^\s*su parley parley$", "rotated as parley, whose folder it is")
        folder = temp_dir("parley-logrotate-")
        # the parley user is the installer's; here the test's own stands in
        conf = re.sub(r"(?m)^(\s*)su parley parley$", r"\1su %s %s" % (
            pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name), text)
        write_file(os.path.join(folder, "parley"), conf)
        p = run(logrotate, "--debug", "--state", os.path.join(folder, "state"), os.path.join(folder, "parley"))
        out = (p.stdout + p.stderr).decode()
        check.assertEqual(p.returncode, 0, out)
        check.assertNotRegex(out, r"(?i)error|unknown", out)
        check.assertIn("/var/log/parley/*.log", out)

    tap.case("the logrotate file parses", logrotate_parses, runs=1)

    def nginx_headers_and_limits(run_):
        text = read_file(os.path.join(ROOT, "deploy/nginx/parley.conf"))
        forwarded = re.findall(r"(?m)^\s*proxy_set_header X-Forwarded-For (\S+);", text)
        check.assertEqual(forwarded, ["$remote_addr"], "never an X-Forwarded-For the client wrote")
        email = re.search(r"(?s)location ~ \^/v1/bots/\[\^/\]\+/channels/email\$ \{(.*?)\}", text).group(1)
        mib = int(re.search(r"client_max_body_size (\d+)m;", email).group(1))
        check.assertGreater(mib * 1024 * 1024, parley_files_limit(), "parley answers 413 first, with its reason")

    tap.case("nginx: the client's own address, and room for parley's 413 on the email webhook",
             nginx_headers_and_limits, runs=1)


if __name__ == "__main__":
    run_suite("deploy/: the unit, the proxies' and logrotate's files", main)
