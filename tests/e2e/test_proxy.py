#!/usr/bin/env python3
"""test_proxy: deploy/nginx/parley.conf, then deploy/caddy/Caddyfile, in
front of a real `parley serve`.

Each proxy runs unprivileged (as nobody when the test runs as root) on free
loopback ports, with a self-signed certificate the test makes with openssl,
and the shipped file as it is but for its ports, certificate and upstream
(and, for Caddy, a global block that keeps it off the network: no admin
endpoint, no ACME). Over TLS, with the certificate verified: a message and
its answer, HTTP/2 (ALPN, and a request over it with curl), the web chat's
event stream carrying the answer of a message as it is committed, readiness,
parley's own 413 reaching the client; for nginx also the HTTP port's
redirect and an error log without errors, for Caddy that a stop with a
stream open ends within the shipped grace_period."""

import http.client
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import ROOT, Response, Server, check, new_user, read_file, run_suite, temp_dir, texts, wait_until  # noqa: E402
from sse_client import Shopper  # noqa: E402

BOT = "barista"
NEEDS = "tools/deps.sh test installs it"


def free_ports(n):
    """n different free loopback ports (held together while chosen)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def make_certificate(folder):
    """A self-signed certificate for 127.0.0.1 (and localhost): (cert, key)."""
    cert, key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
    p = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                        "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", key, "-out", cert],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    check.assertEqual(p.returncode, 0, p.stdout.decode())
    return cert, key


def render_site(shipped, https_port, http_port, upstream_port, cert, key, webroot):
    """The shipped server blocks with the test's ports, certificate and
    upstream; every replacement must find its line."""
    out = shipped
    for pattern, repl in ((r"(?m)^\s*listen \[::\]:.*\n", ""),
                          (r"(?m)^(\s*)listen 80;", r"\1listen 127.0.0.1:%d;" % http_port),
                          (r"(?m)^(\s*)listen 443 ssl http2;", r"\1listen 127.0.0.1:%d ssl http2;" % https_port),
                          (r"server 127\.0\.0\.1:8080;", "server 127.0.0.1:%d;" % upstream_port),
                          (r"(?m)^(\s*ssl_certificate) .*;", r"\1 %s;" % cert),
                          (r"(?m)^(\s*ssl_certificate_key) .*;", r"\1 %s;" % key),
                          (r"root /var/www/letsencrypt;", "root %s;" % webroot)):
        out, n = re.subn(pattern, repl, out)
        check.assertGreater(n, 0, "deploy/nginx/parley.conf has no line for %r" % pattern)
    return out


def drop_to_nobody(folder):
    """When the test runs as root: folder given to nobody, and the function
    that makes a child nobody before it runs (None otherwise)."""
    if os.getuid() != 0:
        return None
    uid = 65534
    for dirpath, _, files in os.walk(folder):
        os.chown(dirpath, uid, uid)
        for name in files:
            os.chown(os.path.join(dirpath, name), uid, uid)

    def become():
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    return become


def start_unprivileged(cmd, folder, env=None):
    become = drop_to_nobody(folder)

    def in_child():
        harness._die_with_parent()
        if become:
            become()
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            preexec_fn=in_child, env=env, cwd=folder)


def wait_listening(proc, port, what, log=lambda: ""):
    def listening():
        if proc.poll() is not None:
            raise AssertionError("%s exited (%s): %s%s" % (what, proc.returncode, proc.stdout.read().decode(), log()))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False
    wait_until(listening, timeout=15, what="%s to listen on %d" % (what, port))


def stop_process(proc, sig):
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Nginx:
    """nginx -p FOLDER with a main file of the test's around the site."""

    def __init__(self, folder, site):
        binary = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
        if not binary:
            raise AssertionError("nginx is not installed (Debian package nginx-light): " + NEEDS)
        self.folder = folder
        for sub in ("logs", "tmp", "www"):
            os.makedirs(os.path.join(folder, sub), exist_ok=True)
        harness.write_file(os.path.join(folder, "site.conf"), site)
        temps = "".join("    %s_temp_path %s/tmp/%s;\n" % (k, folder, k)
                        for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        harness.write_file(os.path.join(folder, "nginx.conf"), (
            "daemon off;\nworker_processes 1;\nworker_shutdown_timeout 10s;\npid %(f)s/nginx.pid;\n"
            "error_log %(f)s/logs/error.log info;\n"
            "events { worker_connections 256; }\n"
            "http {\n    access_log %(f)s/logs/access.log;\n%(temps)s    include %(f)s/site.conf;\n}\n")
            % {"f": folder, "temps": temps})
        self.proc = start_unprivileged([binary, "-p", folder, "-c", os.path.join(folder, "nginx.conf"),
                                        "-e", os.path.join(folder, "logs", "error.log")], folder)

    def error_log(self):
        path = os.path.join(self.folder, "logs", "error.log")
        return read_file(path) if os.path.exists(path) else ""

    def wait_port(self, port):
        wait_listening(self.proc, port, "nginx", self.error_log)

    def stop(self):
        stop_process(self.proc, signal.SIGQUIT)  # graceful: finishes what it serves


def render_caddyfile(shipped, https_port, upstream_port, cert, key, folder):
    """The shipped Caddyfile for the test: its site on https_port with the
    test's certificate, parley's port, and a global block first."""
    out, n = re.subn(r"(?m)^shop\.example\.com \{$", "https://127.0.0.1:%d {\n\ttls %s %s" % (https_port, cert, key),
                     shipped)
    check.assertEqual(n, 1, "deploy/caddy/Caddyfile has no site shop.example.com")
    out, n = re.subn(r"reverse_proxy 127\.0\.0\.1:8080", "reverse_proxy 127.0.0.1:%d" % upstream_port, out)
    check.assertEqual(n, 1, "deploy/caddy/Caddyfile has no reverse_proxy 127.0.0.1:8080")
    # the shipped global options, and the test's: no admin endpoint, no
    # ACME, no trust store, state in the test's folder, no port 80
    out, n = re.subn(r"\A((?:#.*\n|\s*\n)*)\{\n", r"\1{\n\tadmin off\n\tauto_https disable_redirects\n"
                     r"\tskip_install_trust\n\tstorage file_system %s/data\n\thttp_port %d\n" % (folder, free_ports(1)[0]),
                     out)
    check.assertEqual(n, 1, "deploy/caddy/Caddyfile starts with its global options")
    return out


class Caddy:
    """caddy run with the rendered Caddyfile, its state in folder."""

    def __init__(self, folder, caddyfile):
        binary = shutil.which("caddy")
        if not binary:
            raise AssertionError("caddy is not installed (Debian package caddy): " + NEEDS)
        path = os.path.join(folder, "Caddyfile")
        harness.write_file(path, caddyfile)
        env = dict(os.environ, HOME=folder, XDG_DATA_HOME=os.path.join(folder, "data"),
                   XDG_CONFIG_HOME=os.path.join(folder, "config"))
        self.proc = start_unprivileged([binary, "run", "--adapter", "caddyfile", "--config", path], folder, env)

    def wait_port(self, port):
        wait_listening(self.proc, port, "caddy")

    def stop(self):
        stop_process(self.proc, signal.SIGTERM)


class Front:
    """parley as shoppers reach it: HTTPS on nginx's port, the certificate
    verified. request() as harness.Server's; Shopper streams through it too."""

    def __init__(self, port, cert):
        self.port = port
        self.ssl_context = ssl.create_default_context(cafile=cert)

    def request(self, method, path, body=None, headers=None, timeout=harness.REQUEST_TIMEOUT):
        if body is not None and not isinstance(body, (bytes, str)):
            body = harness.json.dumps(body)
        if isinstance(body, str):
            body = body.encode("utf-8")
        h = {"Content-Type": "application/json"} if body is not None else {}
        h.update(headers or {})
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout, context=self.ssl_context)
        try:
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            return Response(r.status, r.getheaders(), r.read())
        finally:
            conn.close()


def main(tap):
    srv = tap.watch(Server(name="parley (behind a proxy)").start())
    try:
        behind_nginx(tap, srv)
        behind_caddy(tap, srv)
    finally:
        srv.stop()


def behind_nginx(tap, srv):
    folder = temp_dir("parley-nginx-")
    cert, key = make_certificate(folder)
    https_port, http_port = free_ports(2)
    site = render_site(read_file(os.path.join(ROOT, "deploy/nginx/parley.conf")), https_port, http_port, srv.port,
                       cert, key, os.path.join(folder, "www"))
    nginx = Nginx(folder, site)
    try:
        nginx.wait_port(https_port)
        nginx.wait_port(http_port)
        front = Front(https_port, cert)
        common_cases(tap, "nginx", front, cert)
        nginx_cases(tap, front, nginx, http_port)
    finally:
        nginx.stop()


def behind_caddy(tap, srv):
    folder = temp_dir("parley-caddy-")
    cert, key = make_certificate(folder)
    (https_port,) = free_ports(1)
    caddy = Caddy(folder, render_caddyfile(read_file(os.path.join(ROOT, "deploy/caddy/Caddyfile")), https_port,
                                           srv.port, cert, key, folder))
    try:
        caddy.wait_port(https_port)
        front = Front(https_port, cert)
        common_cases(tap, "caddy", front, cert)

        def stop_with_a_stream_open(run):
            # a widget's stream never ends by itself: the shipped
            # grace_period bounds how long a stop (or a reload) waits for it
            grace = int(re.search(r"(?m)^\s*grace_period (\d+)s$", read_file(
                os.path.join(ROOT, "deploy/caddy/Caddyfile"))).group(1))
            shopper = Shopper(front, bot=BOT)
            stream = shopper.connect()
            shopper.turn(text="hi")
            began = time.monotonic()
            caddy.proc.send_signal(signal.SIGTERM)
            caddy.proc.wait(timeout=grace + 20)
            took = time.monotonic() - began
            check.assertLess(took, grace + 5, "caddy waited %.1f s for the open stream" % took)
            wait_until(lambda: stream.ended, timeout=5, what="the stream to end")
            shopper.close()

        tap.case("caddy: a stop with a web chat stream open ends within grace_period", stop_with_a_stream_open,
                 runs=1)
    finally:
        caddy.stop()


def common_cases(tap, proxy, front, cert):
    def message(run):
        r = front.request("POST", "/v1/bots/%s/messages" % BOT, {"user": new_user(), "text": "hi"})
        check.assertEqual(r.status, 200, r)
        check.assertIn("Bea", texts(r.json["replies"]))  # the barista greets

    tap.case("%s: a message and its answer over TLS, the certificate verified" % proxy, message)

    def http2(run):
        with socket.create_connection(("127.0.0.1", front.port), timeout=5) as raw:
            ctx = ssl.create_default_context(cafile=cert)
            ctx.set_alpn_protocols(["h2", "http/1.1"])
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                check.assertEqual(tls.selected_alpn_protocol(), "h2")
        curl = shutil.which("curl")
        if not curl:
            return  # ALPN above already says the proxy speaks HTTP/2
        p = subprocess.run([curl, "--silent", "--show-error", "--http2", "--cacert", cert, "-o", "/dev/null",
                            "-w", "%{http_version} %{http_code}", "https://127.0.0.1:%d/v1/health/ready" % front.port],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        check.assertEqual(p.stdout.decode().strip(), "2 200", p.stdout)

    tap.case("%s: HTTP/2 offered (ALPN) and spoken" % proxy, http2)

    def webchat_stream(run):
        shopper = Shopper(front, bot=BOT)
        try:
            stream = shopper.connect()
            check.assertEqual(stream.headers.get("content-type", "").split(";")[0], "text/event-stream")
            started = time.monotonic()
            _, out = shopper.turn(text="hi")
            check.assertIn("Bea", " ".join(r.get("text") or "" for r in out["body"]))
            check.assertLess(time.monotonic() - started, 5.0)
            # the stream stays open after the answer: nothing ended it
            check.assertFalse(stream.ended, stream.error)
            _, out = shopper.turn(payload="latte")
            check.assertTrue(out["body"], out)
        finally:
            shopper.close()

    tap.case("%s: the web chat's event stream carries each answer as it is committed" % proxy, webchat_stream)

    def health_and_limits(run):
        r = front.request("GET", "/v1/health/ready")
        check.assertEqual(r.status, 200, r)
        # parley's own limit and reason, not the proxy's page
        r = front.request("POST", "/v1/bots/%s/messages" % BOT, b'{"user": "%s", "text": "%s"}' % (
            new_user().encode(), b"x" * (100 * 1024)))
        harness.check_error(r, 413)

    tap.case("%s: readiness, and parley's own 413" % proxy, health_and_limits)


def nginx_cases(tap, front, nginx, http_port):
    def redirect_and_logs(run):
        # plain HTTP: a redirect to the same path over HTTPS
        conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=5)
        try:
            conn.request("GET", "/v1/health", headers={"Host": "shop.example.com"})
            r = conn.getresponse()
            r.read()
            check.assertEqual((r.status, r.getheader("Location")), (301, "https://shop.example.com/v1/health"))
        finally:
            conn.close()
        log = read_file(os.path.join(nginx.folder, "logs", "access.log"))
        check.assertRegex(log, r'127\.0\.0\.1 .*"POST /v1/bots/%s/messages HTTP/1\.1" 200' % BOT)
        # nothing in front was refused or broken by the cases above
        check.assertNotRegex(nginx.error_log(), r"\[(error|crit|alert|emerg)\]", nginx.error_log()[-2000:])

    tap.case("nginx: the redirect from HTTP, the access log, no error logged", redirect_and_logs, runs=1)


if __name__ == "__main__":
    run_suite("nginx and Caddy with TLS in front of parley (deploy/)", main)
