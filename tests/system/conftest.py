"""Fixtures for antre's system tests: a real redis-server and the real binaries.

Every test gets its own temporary directory, its own redis-server on a free port (started by
the fixture, stopped by PID at teardown even when the test fails) and gateways started from a
config file written for it. Nothing here talks to anything but loopback.
"""
import os
import signal
import socket
import subprocess
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.join(ROOT, os.environ.get("ANTRE_BUILD", "build"))
GATEWAY = os.path.join(BUILD, "antre-gateway")
WORKER = os.path.join(BUILD, "antre-worker")
REDIS_SERVER = os.environ.get("REDIS_SERVER", "redis-server")


_handed_out = set()


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now, and that this test run has
    not handed out before (the kernel may offer the same free port twice in a row, e.g. for a
    gateway's listen and admin_listen)."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("no fresh free port")


def wait_for(pred, timeout=10.0, interval=0.02, what="condition"):
    """Poll PRED until it returns a truthy value; fail the test after TIMEOUT seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def can_connect(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class Redis:
    """A redis-server of our own, on a free port, with its data in a temporary directory."""

    def __init__(self, workdir, port=None):
        self.dir = os.path.join(workdir, "redis")
        os.makedirs(self.dir, exist_ok=True)
        self.port = port or free_port()
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, "--daemonize", "no",
             "--logfile", os.path.join(self.dir, "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: self.ping(), what=f"redis on port {self.port}")
        return self

    def ping(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def command(self, *args):
        """Send one command with RESP framing; return the raw reply bytes."""
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            s.sendall(out)
            return s.recv(65536)

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def pause(self):
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.proc.pid, signal.SIGCONT)


class Gateway:
    """antre-gateway started from a config file written for the test.

    SETTINGS maps "section.name" to a value, e.g. {"gateway.max_headers": 8}; listen ports and
    the Redis URL are filled in unless given.
    """

    def __init__(self, workdir, redis, settings=None, name="gateway"):
        self.workdir = workdir
        self.port = free_port()
        self.admin_port = free_port()
        self.conf_path = os.path.join(workdir, f"{name}.conf")
        self.log_path = os.path.join(workdir, f"{name}.log")
        s = {
            "gateway.listen": f"127.0.0.1:{self.port}",
            "gateway.admin_listen": f"127.0.0.1:{self.admin_port}",
            "gateway.secret_file": os.path.join(workdir, "secret"),
            "gateway.drain_timeout_ms": 3000,
            "redis.url": redis.url if redis else "embedded",
            "redis.dir": os.path.join(workdir, "embedded-redis"),
        }
        s.update(settings or {})
        self.settings = s
        self.proc = None
        self.write_conf()

    def write_conf(self, settings=None, raw=None):
        """(Re)write the config file from SETTINGS (merged), or RAW text when given."""
        if settings:
            self.settings.update(settings)
        if raw is None:
            sections = {}
            for key, value in self.settings.items():
                sec, name = key.rsplit(".", 1)
                sections.setdefault(sec, []).append(f"{name} = {value}")
            raw = "".join(f"[{sec}]\n" + "\n".join(lines) + "\n" for sec, lines in sections.items())
        with open(self.conf_path, "w") as f:
            f.write(raw)

    def start(self, wait=True):
        self.log = open(self.log_path, "ab")
        log_start = self.log.tell()
        self.proc = subprocess.Popen([GATEWAY, "-c", self.conf_path], stdout=self.log,
                                     stderr=subprocess.STDOUT, cwd=self.workdir)
        if wait:
            wait_for(lambda: self.proc.poll() is not None or can_connect(self.port),
                     what="gateway listening")
            assert self.proc.poll() is None, self.read_log()
            wait_for(lambda: can_connect(self.admin_port), what="admin listener")
            # Give it a moment to reach Redis (slow under sanitizers): tests that start a
            # gateway without a reachable Redis simply go on after this bounded wait. Read from
            # the log, not /readyz, so that no request of ours shows in access logs or metrics.
            deadline = time.monotonic() + 5
            while (time.monotonic() < deadline
                   and "redis connected" not in self.read_log()[log_start:]):
                time.sleep(0.02)
        return self

    def read_log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def signal(self, sig):
        os.kill(self.proc.pid, sig)

    def stop(self, timeout=15):
        """SIGTERM and wait; returns the exit code (SIGKILL after TIMEOUT)."""
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        self.proc = None
        self.log.close()
        return rc

    def url(self, path=""):
        return f"http://127.0.0.1:{self.port}{path}"

    def admin_url(self, path=""):
        return f"http://127.0.0.1:{self.admin_port}{path}"

    def metrics(self):
        """The /metrics text parsed into {"name{labels}": float}."""
        import urllib.request
        with urllib.request.urlopen(self.admin_url("/metrics"), timeout=5) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out


@pytest.fixture
def workdir(tmp_path):
    return str(tmp_path)


@pytest.fixture
def redis(workdir):
    r = Redis(workdir).start()
    yield r
    r.stop()


@pytest.fixture
def rd(redis):
    """A plain RESP client of the test's Redis."""
    c = Resp(redis.port)
    yield c
    c.close()


@pytest.fixture
def make_gateway(workdir, redis):
    """Factory: make_gateway(settings=None, start=True) -> Gateway; all stopped at teardown."""
    made = []

    def factory(settings=None, start=True, name=None):
        g = Gateway(workdir, redis, settings, name=name or f"gateway{len(made)}")
        made.append(g)
        if start:
            g.start()
        return g

    yield factory
    for g in made:
        g.stop()


@pytest.fixture
def gateway(make_gateway):
    return make_gateway()


def raw_request(port, data, timeout=5.0, read_until_close=True):
    """Send DATA on a fresh connection and return everything read until the server closes
    (or TIMEOUT)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        return read_all(s, timeout) if read_until_close else s.recv(65536)


def read_all(sock, timeout=5.0):
    """Read until the peer closes or TIMEOUT passes; returns bytes."""
    sock.settimeout(timeout)
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            b = sock.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            break
        if not b:
            break
        chunks.append(b)
    return b"".join(chunks)


def parse_responses(data):
    """Split a byte stream of HTTP/1.1 responses (Content-Length framed) into a list of
    (status, headers dict with lower-case names, body bytes)."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        if status == 100:
            n = 0
        out.append((status, headers, rest[:n]))
        data = rest[n:]
    return out


class Resp:
    """A minimal RESP2 client for inspecting a test's Redis (commands and their replies)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.f = self.sock.makefile("rb")

    def close(self):
        self.f.close()
        self.sock.close()

    def __call__(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.sock.sendall(out)
        return self._read()

    def _read(self):
        line = self.f.readline()
        assert line.endswith(b"\r\n"), f"short RESP reply {line!r}"
        t, rest = line[:1], line[1:-2]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            raise AssertionError(f"redis error: {rest.decode()}")
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self.f.read(n + 2)[:-2]
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise AssertionError(f"unexpected RESP reply {line!r}")

    def hgetall(self, key):
        v = self("HGETALL", key)
        return {v[i].decode(): v[i + 1].decode() for i in range(0, len(v), 2)}
