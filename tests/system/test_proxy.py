"""System tests of the gateway behind a real load balancer: Debian's nginx in front of it.

Case A: nginx as an HTTP proxy (proxy_pass) adding X-Forwarded-For and X-Forwarded-Proto, with
trusted_proxies = 127.0.0.1/32 (nginx connects from 127.0.0.1): the per-IP rate limit applies
to each real client (clients bind 127.0.0.2 and 127.0.0.3), a forged X-Forwarded-For from an
untrusted peer changes nothing, and cookies are Secure only when a trusted proxy says https.

Case B: nginx as a TCP proxy (the stream module) sending the PROXY protocol header, with
proxy_protocol = on: per-IP limits apply per real client, a connection without the header is
closed (and counted), and a v2 header works too.

nginx runs in the foreground from a config written into the test's temporary directory (logs,
pid and temp files there), on free ports, and is stopped by its PID.
"""
import http.client
import os
import signal
import socket
import struct
import subprocess
import time

import pytest

from conftest import can_connect, free_port, wait_for

NGINX = "/usr/sbin/nginx"
STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"

pytestmark = pytest.mark.skipif(not os.access(NGINX, os.X_OK), reason="nginx is not installed")

RATE = {"gateway.per_ip_rate": 0.5, "gateway.per_ip_burst": 3}


class Nginx:
    def __init__(self, workdir, body):
        self.dir = os.path.join(workdir, "nginx")
        os.makedirs(self.dir, exist_ok=True)
        user = "user root;\n" if os.geteuid() == 0 else ""
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(body.replace("@USER@", user).replace("@DIR@", self.dir))
        self.proc = subprocess.Popen(
            [NGINX, "-p", self.dir, "-c", conf, "-e", os.path.join(self.dir, "error.log"),
             "-g", f"daemon off; pid {self.dir}/nginx.pid;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait(self, port):
        wait_for(lambda: self.proc.poll() is not None or can_connect(port), what="nginx")
        assert self.proc.poll() is None, self.log()

    def log(self):
        try:
            with open(os.path.join(self.dir, "error.log")) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: the master ends its workers
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def start_nginx(workdir):
    made = []

    def factory(body, port):
        n = Nginx(workdir, body)
        made.append(n)
        n.wait(port)
        return n

    yield factory
    for n in made:
        n.stop()


HTTP_CONF = """@USER@worker_processes 1;
events { worker_connections 256; }
http {
    access_log @DIR@/access.log;
    client_body_temp_path @DIR@/body;
    proxy_temp_path @DIR@/proxy;
    fastcgi_temp_path @DIR@/fastcgi;
    uwsgi_temp_path @DIR@/uwsgi;
    scgi_temp_path @DIR@/scgi;
    server {
        listen 127.0.0.1:%(plain)d;
        location / {
            proxy_pass http://127.0.0.1:%(gw)d;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
        }
    }
    # Stands for a TLS-terminating proxy: says https, and appends to the client's own header.
    server {
        listen 127.0.0.1:%(tls)d;
        location / {
            proxy_pass http://127.0.0.1:%(gw)d;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto https;
        }
    }
}
"""

STREAM_CONF = """load_module %(module)s;
@USER@worker_processes 1;
events { worker_connections 256; }
stream {
    server {
        listen 127.0.0.1:%(front)d;
        proxy_pass 127.0.0.1:%(gw)d;
        proxy_protocol on;
    }
}
"""


def get(port, source, path="/nope", headers=None, method="GET"):
    """One request on a new connection from SOURCE (a loopback address); (status, headers)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5, source_address=(source, 0))
    try:
        c.request(method, path, headers=headers or {})
        r = c.getresponse()
        r.read()
        h = {k.lower(): v for k, v in r.getheaders()}
        h["set-cookie"] = r.msg.get_all("set-cookie") or []
        return r.status, h
    finally:
        c.close()


def statuses(port, source, n, headers_for=None):
    return [get(port, source, headers=headers_for(i) if headers_for else None)[0]
            for i in range(n)]


def rate_limited(g):
    return g.metrics().get('antre_refusals_total{reason="rate_limited"}', 0)


def test_xff_from_trusted_nginx_limits_each_client_separately(make_gateway, start_nginx):
    g = make_gateway({**RATE, "gateway.trusted_proxies": "127.0.0.1/32"})
    plain, tls = free_port(), free_port()
    start_nginx(HTTP_CONF % {"plain": plain, "tls": tls, "gw": g.port}, plain)
    # A uses up its burst and more: refused; B, through the same nginx, is not.
    a = statuses(plain, "127.0.0.2", 6)
    assert a[:3] == [404] * 3 and 429 in a[3:], a
    b = statuses(plain, "127.0.0.3", 3)
    assert b == [404] * 3, b
    # Through the appending proxy, a client forging its own X-Forwarded-For (a new address each
    # time) is still the address nginx saw: the walk takes the rightmost untrusted hop.
    c = statuses(tls, "127.0.0.4", 6,
                 headers_for=lambda i: {"X-Forwarded-For": f"198.51.100.{i + 1}"})
    assert c[:3] == [404] * 3 and 429 in c[3:], c


def test_access_log_names_the_client_behind_nginx(make_gateway, start_nginx, workdir):
    log = os.path.join(workdir, "access.log")
    g = make_gateway({"gateway.trusted_proxies": "127.0.0.1/32", "gateway.access_log": log})
    plain, tls = free_port(), free_port()
    start_nginx(HTTP_CONF % {"plain": plain, "tls": tls, "gw": g.port}, plain)
    assert get(plain, "127.0.0.2", "/seen-through-nginx")[0] == 404
    g.stop()  # flushes the access log
    lines = [ln for ln in open(log) if "/seen-through-nginx" in ln]
    assert lines and lines[0].startswith("127.0.0.2 "), lines


def test_forged_xff_from_an_untrusted_peer_changes_nothing(make_gateway):
    # Only 127.0.0.9 is trusted: a direct client at 127.0.0.2 claiming other addresses is
    # limited by its own.
    g = make_gateway({**RATE, "gateway.trusted_proxies": "127.0.0.9/32"})
    got = statuses(g.port, "127.0.0.2", 6,
                   headers_for=lambda i: {"X-Forwarded-For": f"198.51.100.{i + 1}"})
    assert got[:3] == [404] * 3 and 429 in got[3:], got
    # and another address is still free
    assert statuses(g.port, "127.0.0.3", 1) == [404]


def cookies(port, source, headers=None):
    """The Set-Cookie lines of an admitted join (the session cookie, the ticket's removal)."""
    status, h = get(port, source, "/v1/rooms/w/join", headers=headers, method="POST")
    assert status == 200, (status, h)
    got = h["set-cookie"]
    assert any(c.startswith("antre_session=") for c in got), got
    return got


def test_secure_cookies_only_when_a_trusted_proxy_says_https(make_gateway, start_nginx):
    g = make_gateway({"gateway.trusted_proxies": "127.0.0.1/32",
                      "room.w.max_active": 1000})
    plain, tls = free_port(), free_port()
    start_nginx(HTTP_CONF % {"plain": plain, "tls": tls, "gw": g.port}, plain)
    assert all(c.endswith("; Secure") for c in cookies(tls, "127.0.0.2"))
    assert not any("Secure" in c for c in cookies(plain, "127.0.0.2"))
    # Straight to the gateway from an untrusted address: the header is not believed.
    forged = cookies(g.port, "127.0.0.2", {"X-Forwarded-Proto": "https"})
    assert not any("Secure" in c for c in forged), forged


def raw_exchange(port, data, source="127.0.0.1"):
    """Send DATA on a new connection; return everything read until the gateway closes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
    try:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
            if b"\r\n\r\n" in out and b"Connection: close" not in out:
                break
        return out
    finally:
        s.close()


def proxy_refusals(g):
    return g.metrics().get('antre_refusals_total{reason="proxy_header"}', 0)


def test_proxy_protocol_from_nginx_stream_limits_each_client(make_gateway, start_nginx):
    g = make_gateway({**RATE, "gateway.proxy_protocol": "on",
                      "gateway.trusted_proxies": "127.0.0.1/32"})
    front = free_port()
    start_nginx(STREAM_CONF % {"module": STREAM_MODULE, "front": front, "gw": g.port}, front)
    a = statuses(front, "127.0.0.2", 6)
    assert a[:3] == [404] * 3 and 429 in a[3:], a
    b = statuses(front, "127.0.0.3", 3)
    assert b == [404] * 3, b
    assert proxy_refusals(g) == 0


def test_proxy_protocol_refuses_a_connection_without_the_header(make_gateway):
    g = make_gateway({"gateway.proxy_protocol": "on",
                      "gateway.trusted_proxies": "127.0.0.1/32"})
    got = raw_exchange(g.port, b"GET /nope HTTP/1.1\r\nHost: a\r\n\r\n")
    assert got == b"", got
    wait_for(lambda: proxy_refusals(g) >= 1, what="the refusal counted")
    # A valid header from a peer that is not trusted is refused too.
    got = raw_exchange(g.port, b"PROXY TCP4 192.0.2.1 127.0.0.1 1000 80\r\n"
                               b"GET /nope HTTP/1.1\r\nHost: a\r\n\r\n", source="127.0.0.2")
    assert got == b"", got
    wait_for(lambda: proxy_refusals(g) >= 2, what="the second refusal counted")
    # Logged at warn once, not per connection (a scanner must not flood the log).
    warned = [ln for ln in g.read_log().splitlines() if "PROXY header refused" in ln]
    assert len(warned) == 1 and "WARN" in warned[0], warned
    # The admin listener never expects one.
    assert g.metrics()


def test_proxy_protocol_v2_and_local(make_gateway, workdir):
    log = os.path.join(workdir, "access.log")
    g = make_gateway({"gateway.proxy_protocol": "on", "gateway.access_log": log})
    sig = b"\r\n\r\n\x00\r\nQUIT\n"
    addrs = socket.inet_aton("203.0.113.77") + socket.inet_aton("127.0.0.1")
    v2 = sig + bytes([0x21, 0x11]) + struct.pack(">H", 12) + addrs + struct.pack(">HH", 4242, 80)
    got = raw_exchange(g.port, v2 + b"GET /via-v2 HTTP/1.1\r\nHost: a\r\n\r\n")
    assert got.startswith(b"HTTP/1.1 404"), got
    local = sig + bytes([0x20, 0x00, 0, 0])
    got = raw_exchange(g.port, local + b"GET /via-local HTTP/1.1\r\nHost: a\r\n\r\n")
    assert got.startswith(b"HTTP/1.1 404"), got
    # sent in pieces, with a pause: the header is awaited
    s = socket.create_connection(("127.0.0.1", g.port), timeout=5)
    try:
        s.sendall(v2[:7])
        time.sleep(0.2)
        s.sendall(v2[7:] + b"GET /via-v2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 404")
    finally:
        s.close()
    g.stop()
    text = open(log).read()
    assert "203.0.113.77 " in text and "/via-v2" in text, text
    assert any(ln.startswith("127.0.0.1 ") and "/via-local" in ln for ln in text.splitlines()), text


def test_proxy_protocol_header_timeout(make_gateway):
    g = make_gateway({"gateway.proxy_protocol": "on", "gateway.header_timeout_ms": 300})
    s = socket.create_connection(("127.0.0.1", g.port), timeout=5)
    try:
        s.sendall(b"PROXY TCP4 192.0.2.1")
        t0 = time.monotonic()
        try:
            assert s.recv(100) == b""
        except ConnectionResetError:
            pass
        assert time.monotonic() - t0 < 3
    finally:
        s.close()


def held_connections(port, n, first=b"", source="127.0.0.1"):
    """Open N connections from SOURCE, each sending FIRST; return the sockets (still open)."""
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
        if first:
            s.sendall(first)
        socks.append(s)
    return socks


def test_per_ip_connections_count_the_proxy_header_source(make_gateway):
    """Behind the PROXY protocol the connection cap applies to the client the header names,
    not to the balancer: two clients behind one balancer each get their own allowance."""
    g = make_gateway({"gateway.proxy_protocol": "on", "gateway.trusted_proxies": "127.0.0.1/32",
                      "gateway.per_ip_max_connections": 2})
    held = held_connections(g.port, 2, b"PROXY TCP4 192.0.2.1 127.0.0.1 1000 80\r\n")
    try:
        time.sleep(0.3)  # the headers are read and charged
        third = raw_exchange(g.port, b"PROXY TCP4 192.0.2.1 127.0.0.1 1001 80\r\n"
                                     b"GET /nope HTTP/1.1\r\nHost: a\r\n\r\n")
        assert third.startswith(b"HTTP/1.1 503") and b"too_many_connections_per_ip" in third, third
        assert b"Retry-After:" in third, third
        other = raw_exchange(g.port, b"PROXY TCP4 192.0.2.2 127.0.0.1 1002 80\r\n"
                                     b"GET /nope HTTP/1.1\r\nHost: a\r\n\r\n")
        assert other.startswith(b"HTTP/1.1 404"), other
    finally:
        for s in held:
            s.close()


def test_a_trusted_proxy_is_not_capped_per_ip(make_gateway):
    """A trusted proxy's own connections carry many clients: the per-IP connection cap does not
    count them (each request is still rate-limited by its X-Forwarded-For client)."""
    g = make_gateway({"gateway.trusted_proxies": "127.0.0.1/32",
                      "gateway.per_ip_max_connections": 2})
    held = held_connections(g.port, 4, b"GET /nope HTTP/1.1\r\nHost: a\r\n")
    try:
        time.sleep(0.2)
        assert get(g.port, "127.0.0.1")[0] == 404
        # An untrusted address is capped as before.
        held2 = held_connections(g.port, 2, b"GET /nope HTTP/1.1\r\nHost: a\r\n", "127.0.0.2")
        try:
            time.sleep(0.2)
            assert get(g.port, "127.0.0.2")[0] == 503
        finally:
            for s in held2:
                s.close()
    finally:
        for s in held:
            s.close()
