"""System tests of the gateway's view of Redis: /readyz while Redis is stopped, paused and back,
the antre_redis_connected gauge, and the embedded redis-server of `[redis] url = embedded`
(started privately on a unix socket with AOF, joined by a worker, stopped with the gateway)."""
import json
import os
import signal
import socket
import subprocess
import time

import pytest

from conftest import (GATEWAY, REDIS_SERVER, WORKER, Gateway, Redis, Resp, free_port,
                      parse_responses, raw_request, wait_for)


def get(port, path, timeout=5.0):
    req = f"GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n".encode()
    out = parse_responses(raw_request(port, req, timeout=timeout))
    assert out, f"no response to GET {path}"
    return out[0]


def status(port, path):
    return get(port, path)[0]


def connected_gauge(g, process="0"):
    return g.metrics().get(f'antre_redis_connected{{process="{process}"}}')


def assert_not_ready(g):
    st, headers, body = get(g.port, "/readyz")
    assert st == 503, body
    assert headers.get("content-type", "").startswith("application/json")
    err = json.loads(body)["error"]
    assert err["code"] == "redis_unavailable"
    retry = int(headers["retry-after"])
    assert retry >= 1
    assert err["retry_after_s"] == retry
    assert "x-request-id" in headers


# --- /readyz follows Redis --------------------------------------------------------------------

def test_readyz_with_redis_up(gateway):
    wait_for(lambda: status(gateway.port, "/readyz") == 200, timeout=10, what="ready")
    st, headers, body = get(gateway.port, "/readyz")
    assert st == 200
    assert json.loads(body)["status"] == "ready"
    assert connected_gauge(gateway) == 1
    st, _, body = get(gateway.port, "/healthz")
    assert (st, json.loads(body)) == (200, {"status": "ok"})


def test_readyz_redis_stopped_and_restarted(workdir, redis, make_gateway):
    g = make_gateway()
    wait_for(lambda: status(g.port, "/readyz") == 200, timeout=10, what="ready")
    port = redis.port

    redis.stop()
    wait_for(lambda: status(g.port, "/readyz") == 503, timeout=10, what="readyz 503")
    assert_not_ready(g)
    # Alive though not ready: liveness must not restart a gateway because Redis is away.
    assert status(g.port, "/healthz") == 200
    wait_for(lambda: connected_gauge(g) == 0, timeout=5, what="gauge 0")
    # It stays unready while Redis is away (several reconnect attempts fail).
    time.sleep(1.0)
    assert_not_ready(g)

    again = Redis(workdir, port=port)
    try:
        again.start()
        wait_for(lambda: status(g.port, "/readyz") == 200, timeout=15,
                 what="readyz 200 after redis is back")
        wait_for(lambda: connected_gauge(g) == 1, timeout=5, what="gauge 1")
        assert status(g.port, "/healthz") == 200
        assert g.proc.poll() is None
        # Counted on the gateway's periodic tick: poll.
        wait_for(lambda: g.metrics()["antre_redis_connects_total"] >= 2, timeout=5,
                 what="reconnect counted")
    finally:
        again.stop()


def test_readyz_redis_paused_times_out(redis, make_gateway):
    """A SIGSTOPped Redis accepts nothing and answers nothing: the gateway must notice through
    its command timeout and report unready, then recover once Redis runs again."""
    g = make_gateway({"redis.timeout_ms": 200})
    wait_for(lambda: status(g.port, "/readyz") == 200, timeout=10, what="ready")
    redis.pause()
    try:
        wait_for(lambda: status(g.port, "/readyz") == 503, timeout=10,
                 what="readyz 503 while redis is paused")
        assert_not_ready(g)
        assert status(g.port, "/healthz") == 200
        wait_for(lambda: connected_gauge(g) == 0, timeout=5, what="gauge 0")
    finally:
        redis.resume()
    wait_for(lambda: status(g.port, "/readyz") == 200, timeout=15,
             what="readyz 200 after resume")
    wait_for(lambda: connected_gauge(g) == 1, timeout=5, what="gauge 1")


def test_gateway_starts_without_redis(workdir, redis, make_gateway):
    """Redis down at start-up: the gateway still starts, is alive but unready, and becomes
    ready when Redis appears."""
    port = redis.port
    redis.stop()
    g = make_gateway()
    assert status(g.port, "/healthz") == 200
    assert_not_ready(g)
    assert connected_gauge(g) == 0
    again = Redis(workdir, port=port)
    try:
        again.start()
        wait_for(lambda: status(g.port, "/readyz") == 200, timeout=15, what="ready")
    finally:
        again.stop()


# --- AUTH: requirepass and ACL users -----------------------------------------------------------

PASSWORD = "Pw-4f9c@q:z/x"          # '@', ':' and '/' must be escaped in a URL
PASSWORD_IN_URL = "Pw-4f9c%40q%3Az%2Fx"


class AuthRedis(Redis):
    """A redis-server started with extra arguments (requirepass, ACL users) whose readiness
    probe logs in first."""

    def __init__(self, workdir, args, auth):
        super().__init__(workdir)
        self.args, self.auth = args, auth

    def start(self):
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, "--daemonize", "no",
             "--logfile", os.path.join(self.dir, "redis.log")] + self.args,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.ping, what=f"redis on port {self.port}")
        return self

    def ping(self):
        try:
            c = Resp(self.port)
        except OSError:
            return False
        try:
            return c("AUTH", *self.auth) == "OK" and c("PING") == "PONG"
        except (OSError, AssertionError):
            return False
        finally:
            c.close()

    def url_with(self, userinfo):
        return f"redis://{userinfo}@127.0.0.1:{self.port}"


@pytest.fixture
def auth_redis(workdir):
    """redis-server with requirepass, and an ACL user `app` (the default user keeps the
    requirepass password)."""
    r = AuthRedis(workdir, ["--requirepass", PASSWORD,
                            "--user", "app", "on", ">app-pw", "~*", "&*", "+@all"], ("default", PASSWORD))
    r.start()
    yield r
    r.stop()


def gateway_on(workdir, url, name):
    return Gateway(workdir, None, {"redis.url": url}, name=name)


def check_ok(g):
    out = subprocess.run([GATEWAY, "-t", "-c", g.conf_path], capture_output=True, text=True)
    return out.returncode, out.stdout + out.stderr


@pytest.mark.parametrize("userinfo", [":" + PASSWORD_IN_URL, "app:app-pw"])
def test_auth_right_credentials(workdir, auth_redis, userinfo):
    """The right password (default user, or an ACL user): ready, and the password never
    appears in the log."""
    g = gateway_on(workdir, auth_redis.url_with(userinfo), "gw-auth-ok")
    assert check_ok(g) == (0, "ok\n")
    try:
        g.start()
        wait_for(lambda: status(g.port, "/readyz") == 200, timeout=10, what="ready")
        assert connected_gauge(g) == 1
        # The connection is really logged in as the URL's user: a key written by the gateway's
        # own traffic is not needed; CLIENT LIST shows the user of every connection.
        c = Resp(auth_redis.port)
        try:
            assert c("AUTH", "default", PASSWORD) == "OK"
            clients = c("CLIENT", "LIST").decode()
        finally:
            c.close()
        want = "user=app" if userinfo.startswith("app") else "user=default"
        assert want in clients, clients
    finally:
        g.stop()
    log = g.read_log()
    assert "redis connected" in log
    for secret in (PASSWORD, PASSWORD_IN_URL, "app-pw"):
        assert secret not in log, log


@pytest.mark.parametrize("userinfo", [":wrong-pw", "app:wrong-pw", "nobody:wrong-pw"])
def test_auth_wrong_credentials(workdir, auth_redis, userinfo):
    """A wrong password: alive but not ready (503), one clear error line naming the URL with
    the password redacted, and the gateway keeps retrying (no crash)."""
    g = gateway_on(workdir, auth_redis.url_with(userinfo), "gw-auth-bad")
    try:
        g.start()
        assert status(g.port, "/healthz") == 200
        wait_for(lambda: "refused the credentials" in g.read_log(), timeout=10,
                 what="AUTH error logged")
        assert_not_ready(g)
        assert connected_gauge(g) == 0
    finally:
        g.stop()
    log = g.read_log()
    line = next(l for l in log.splitlines() if "refused the credentials" in l)
    assert "WRONGPASS" in line, line
    assert f"url=redis://{userinfo.split(':')[0]}:***@127.0.0.1:{auth_redis.port}" in line, line
    assert "wrong-pw" not in log, log
    assert "redis connected" not in log


def test_auth_missing_password(workdir, auth_redis):
    """No credentials against a requirepass server: not ready (PING answers NOAUTH)."""
    g = gateway_on(workdir, f"redis://127.0.0.1:{auth_redis.port}", "gw-auth-none")
    try:
        g.start()
        wait_for(lambda: "NOAUTH" in g.read_log(), timeout=10, what="NOAUTH logged")
        assert_not_ready(g)
    finally:
        g.stop()


@pytest.mark.parametrize("url,ok", [
    ("redis://u:p@h:6379", True),
    ("redis://127.0.0.1", True),
    ("redis://[::1]:6379/2", True),
    ("unix:/x?foo=1", False),
    ("redis://u@h", False),
])
def test_check_agrees_with_client(workdir, url, ok):
    """`-t` uses the client's parser: it accepts what the client accepts, refuses the rest, and
    never prints a password."""
    g = gateway_on(workdir, url, "gw-check")
    rc, out = check_ok(g)
    assert (rc == 0) == ok, out
    if not ok:
        assert "[redis] url:" in out, out
    bad = gateway_on(workdir, "redis://u:topsecret@h:0", "gw-check2")
    rc, out = check_ok(bad)
    assert rc == 1 and "bad port" in out and "topsecret" not in out, out


# --- embedded Redis ---------------------------------------------------------------------------

def resp_complete(data, i=0):
    """The index just past one complete RESP reply starting at DATA[I], or None if incomplete."""
    end = data.find(b"\r\n", i)
    if end < 0:
        return None
    kind, head = data[i:i + 1], data[i + 1:end]
    if kind in (b"+", b"-", b":"):
        return end + 2
    n = int(head)
    if kind == b"$":
        if n < 0:
            return end + 2
        return end + 2 + n + 2 if len(data) >= end + 2 + n + 2 else None
    if kind == b"*":
        j = end + 2
        for _ in range(max(n, 0)):
            j = resp_complete(data, j)
            if j is None:
                return None
        return j
    raise AssertionError(f"not RESP: {data!r}")


def unix_command(path, *args, timeout=2.0):
    """One RESP command over the unix socket PATH; returns the raw reply bytes."""
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(out)
        data = b""
        for _ in range(1000):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
            if resp_complete(data) is not None:
                break
        return data


def unix_ping(path):
    try:
        return unix_command(path, "PING", timeout=0.5).startswith(b"+PONG")
    except OSError:
        return False


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


@pytest.fixture
def embedded(tmp_path):
    """A gateway with url = embedded and its data dir at <tmp>/r. Kills (by pid) a
    redis-server left behind if the test fails midway."""
    workdir = str(tmp_path)
    rdir = os.path.join(workdir, "r")
    # worker.admin_listen: keep the worker off the shipped default port.
    g = Gateway(workdir, None, {"redis.dir": rdir,
                                "worker.admin_listen": f"127.0.0.1:{free_port()}"})
    g.rdir = rdir
    g.sock = os.path.join(rdir, "redis.sock")
    started = []
    g.started_pids = started
    try:
        yield g
    finally:
        g.stop()
        pid = read_pid(os.path.join(rdir, "redis.pid"))
        for p in set(started + ([pid] if pid else [])):
            if pid_alive(p):
                try:
                    with open(f"/proc/{p}/cmdline", "rb") as f:
                        is_redis = b"redis-server" in f.read()
                except OSError:
                    is_redis = False
                if is_redis:
                    os.kill(p, signal.SIGKILL)


def test_embedded_redis_lifecycle(embedded):
    g = embedded
    assert g.settings["redis.url"] == "embedded"
    g.start()
    wait_for(lambda: status(g.port, "/readyz") == 200, timeout=15, what="ready on embedded redis")
    assert connected_gauge(g) == 1

    # A private redis-server on <dir>/redis.sock, with AOF on.
    assert os.path.exists(g.sock)
    assert unix_command(g.sock, "PING").startswith(b"+PONG")
    assert unix_command(g.sock, "CONFIG", "GET", "appendonly") == \
        b"*2\r\n$10\r\nappendonly\r\n$3\r\nyes\r\n"
    assert unix_command(g.sock, "CONFIG", "GET", "appendfsync").endswith(b"everysec\r\n")
    # Listening only on the unix socket: no TCP port.
    assert unix_command(g.sock, "CONFIG", "GET", "port") == b"*2\r\n$4\r\nport\r\n$1\r\n0\r\n"
    redis_pid = read_pid(os.path.join(g.rdir, "redis.pid"))
    assert redis_pid and pid_alive(redis_pid)
    g.started_pids.append(redis_pid)
    assert f"socket={g.sock}" in g.read_log()

    # Data goes to the AOF.
    assert unix_command(g.sock, "SET", "antre:test", "1") == b"+OK\r\n"

    assert g.stop() == 0
    # The gateway stopped its redis-server on the way out.
    wait_for(lambda: not pid_alive(redis_pid), timeout=10, what="embedded redis gone")
    assert not unix_ping(g.sock)
    aof = os.path.join(g.rdir, "appendonlydir")
    assert os.path.isdir(aof), os.listdir(g.rdir)
    assert any(n.endswith(".aof") for n in os.listdir(aof))


def test_embedded_redis_appendfsync_always(embedded):
    g = embedded
    g.write_conf({"redis.appendfsync": "always"})
    g.start()
    wait_for(lambda: status(g.port, "/readyz") == 200, timeout=15, what="ready")
    g.started_pids.append(read_pid(os.path.join(g.rdir, "redis.pid")))
    assert unix_command(g.sock, "CONFIG", "GET", "appendfsync").endswith(b"always\r\n")


def test_embedded_redis_restart_keeps_data(embedded):
    """Stop the gateway (and its Redis), start it again on the same dir: the AOF is replayed."""
    g = embedded
    g.start()
    wait_for(lambda: status(g.port, "/readyz") == 200, timeout=15, what="ready")
    g.started_pids.append(read_pid(os.path.join(g.rdir, "redis.pid")))
    assert unix_command(g.sock, "SET", "antre:keep", "yes") == b"+OK\r\n"
    assert g.stop() == 0
    wait_for(lambda: not unix_ping(g.sock), timeout=10, what="redis stopped")

    g.start()
    wait_for(lambda: status(g.port, "/readyz") == 200, timeout=15, what="ready again")
    g.started_pids.append(read_pid(os.path.join(g.rdir, "redis.pid")))
    assert unix_command(g.sock, "GET", "antre:keep") == b"$3\r\nyes\r\n"


def test_worker_joins_embedded_redis(embedded):
    g = embedded
    g.start()
    wait_for(lambda: status(g.port, "/readyz") == 200, timeout=15, what="ready")
    redis_pid = read_pid(os.path.join(g.rdir, "redis.pid"))
    g.started_pids.append(redis_pid)

    wlog_path = os.path.join(g.workdir, "worker.log")
    with open(wlog_path, "ab") as wlog:
        w = subprocess.Popen([WORKER, "-c", g.conf_path], stdout=wlog, stderr=subprocess.STDOUT,
                             cwd=g.workdir)
    try:
        def wlog_text():
            with open(wlog_path, "rb") as f:
                return f.read().decode(errors="replace")
        wait_for(lambda: w.poll() is not None or "redis connected" in wlog_text(), timeout=15,
                 what="worker connected")
        assert w.poll() is None, wlog_text()
        text = wlog_text()
        assert f"joined running redis-server socket={g.sock}" in text, text
        assert "started redis-server" not in text
        # Still one redis-server: the one the gateway started.
        assert read_pid(os.path.join(g.rdir, "redis.pid")) == redis_pid

        w.send_signal(signal.SIGTERM)
        assert w.wait(15) == 0
        assert "worker: stopped" in wlog_text()
    finally:
        if w.poll() is None:
            w.kill()
            w.wait()
    # The worker did not own the server, so it left it running for the gateway.
    assert pid_alive(redis_pid)
    assert unix_ping(g.sock)
    assert status(g.port, "/readyz") == 200

    assert g.stop() == 0
    wait_for(lambda: not pid_alive(redis_pid), timeout=10, what="embedded redis gone")


def test_embedded_redis_with_two_processes(embedded):
    """Under the supervisor the embedded redis-server is shared by both children and still
    stopped last, after the children drained."""
    g = embedded
    g.write_conf({"gateway.processes": 2})
    g.start()
    wait_for(lambda: g.metrics().get('antre_redis_connected{process="0"}') == 1 and
             g.metrics().get('antre_redis_connected{process="1"}') == 1,
             timeout=15, what="both children connected")
    redis_pid = read_pid(os.path.join(g.rdir, "redis.pid"))
    g.started_pids.append(redis_pid)
    for _ in range(20):
        assert status(g.port, "/readyz") == 200
    assert g.stop() == 0, g.read_log()
    wait_for(lambda: not pid_alive(redis_pid), timeout=10, what="embedded redis gone")
    assert not unix_ping(g.sock)
    log = g.read_log()
    assert "redis_embed: stopped redis-server" in log, log
