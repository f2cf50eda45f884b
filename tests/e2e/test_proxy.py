#!/usr/bin/env python3
"""test_proxy: deploy/nginx/parley.conf in front of a real `parley serve`.

nginx runs unprivileged (as nobody when the test runs as root) on free
loopback ports, with a self-signed certificate the test makes with openssl,
and the shipped server blocks as they are but for their ports, certificate
paths and upstream. Over TLS, with the certificate verified: a message and
its answer, HTTP/2 (ALPN, and a request over it with curl), the web chat's
event stream carrying the answer of a message as it is committed, readiness,
parley's own 413 reaching the client, the HTTP port's redirect, and an
error log without errors."""

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
            "daemon off;\nworker_processes 1;\npid %(f)s/nginx.pid;\nerror_log %(f)s/logs/error.log info;\n"
            "events { worker_connections 256; }\n"
            "http {\n    access_log %(f)s/logs/access.log;\n%(temps)s    include %(f)s/site.conf;\n}\n")
            % {"f": folder, "temps": temps})
        uid = None
        if os.getuid() == 0:  # unprivileged: nobody, on ports above 1024
            uid = 65534
            for dirpath, _, files in os.walk(folder):
                os.chown(dirpath, uid, uid)
                for name in files:
                    os.chown(os.path.join(dirpath, name), uid, uid)

        def in_child():
            harness._die_with_parent()
            if uid is not None:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)

        self.proc = subprocess.Popen([binary, "-p", folder, "-c", os.path.join(folder, "nginx.conf"),
                                      "-e", os.path.join(folder, "logs", "error.log")],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     preexec_fn=in_child)

    def error_log(self):
        path = os.path.join(self.folder, "logs", "error.log")
        return read_file(path) if os.path.exists(path) else ""

    def wait_port(self, port):
        def listening():
            if self.proc.poll() is not None:
                raise AssertionError("nginx exited (%s): %s%s" % (self.proc.returncode, self.proc.stdout.read().decode(),
                                                                   self.error_log()))
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return True
            except OSError:
                return False
        wait_until(listening, timeout=10, what="nginx to listen on %d" % port)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: finishes what it serves
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


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
    folder = temp_dir("parley-nginx-")
    cert, key = make_certificate(folder)
    https_port, http_port = free_ports(2)
    public = "https://127.0.0.1:%d" % https_port
    srv = tap.watch(Server(args=["--public-url", public], name="parley (behind nginx)").start())
    site = render_site(read_file(os.path.join(ROOT, "deploy/nginx/parley.conf")), https_port, http_port, srv.port,
                       cert, key, os.path.join(folder, "www"))
    nginx = Nginx(folder, site)
    try:
        nginx.wait_port(https_port)
        nginx.wait_port(http_port)
        front = Front(https_port, cert)
        body_cases(tap, srv, front, nginx, cert, https_port, http_port)
    finally:
        nginx.stop()
        srv.stop()


def body_cases(tap, srv, front, nginx, cert, https_port, http_port):
    def message(run):
        user = new_user()
        r = front.request("POST", "/v1/bots/%s/messages" % BOT, {"user": user, "text": "hi"})
        check.assertEqual(r.status, 200, r)
        check.assertIn("Bea", texts(r.json["replies"]))  # the barista greets
        log = read_file(os.path.join(nginx.folder, "logs", "access.log"))
        check.assertRegex(log, r'127\.0\.0\.1 .*"POST /v1/bots/%s/messages HTTP/1\.1" 200' % BOT)

    tap.case("a message and its answer over TLS, the certificate verified", message)

    def http2(run):
        with socket.create_connection(("127.0.0.1", https_port), timeout=5) as raw:
            ctx = ssl.create_default_context(cafile=cert)
            ctx.set_alpn_protocols(["h2", "http/1.1"])
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                check.assertEqual(tls.selected_alpn_protocol(), "h2")
        curl = shutil.which("curl")
        if not curl:
            return  # ALPN above already says nginx speaks HTTP/2
        p = subprocess.run([curl, "--silent", "--show-error", "--http2", "--cacert", cert, "-o", "/dev/null",
                            "-w", "%{http_version} %{http_code}", "https://127.0.0.1:%d/v1/health/ready" % https_port],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        check.assertEqual(p.stdout.decode().strip(), "2 200", p.stdout)

    tap.case("HTTP/2 offered (ALPN) and spoken", http2)

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

    tap.case("the web chat's event stream through nginx carries each answer as it is committed", webchat_stream)

    def health_and_limits(run):
        r = front.request("GET", "/v1/health/ready")
        check.assertEqual(r.status, 200, r)
        r = front.request("GET", "/v1/health")
        check.assertEqual(r.status, 200, r)
        # parley's own limit and reason, not nginx's page
        r = front.request("POST", "/v1/bots/%s/messages" % BOT, b'{"user": "%s", "text": "%s"}' % (
            new_user().encode(), b"x" * (100 * 1024)))
        harness.check_error(r, 413)
        # plain HTTP: a redirect to the same path over HTTPS
        conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=5)
        try:
            conn.request("GET", "/v1/health", headers={"Host": "shop.example.com"})
            r = conn.getresponse()
            r.read()
            check.assertEqual((r.status, r.getheader("Location")), (301, "https://shop.example.com/v1/health"))
        finally:
            conn.close()

    tap.case("readiness, parley's 413 and the redirect from HTTP", health_and_limits)

    def no_errors(run):
        # nothing in front was refused or broken by the cases above
        check.assertNotRegex(nginx.error_log(), r"\[(error|crit|alert|emerg)\]", nginx.error_log()[-2000:])

    tap.case("nginx logged no error", no_errors, runs=1)


if __name__ == "__main__":
    run_suite("nginx with TLS in front of parley (deploy/nginx/parley.conf)", main)
