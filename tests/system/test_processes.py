"""System tests of the gateway's processes: `processes = N` under a supervisor (SO_REUSEPORT,
restart of a killed child, summed metrics, SIGHUP and SIGTERM passed on), the SIGTERM drain of
one process, and the access log flushed on the way out; and the worker under the same
supervisor (-j N, restart, SIGHUP, SIGTERM) with its log level from [log]."""
import os
import re
import signal
import socket
import subprocess
import time

import pytest

from conftest import (GATEWAY, WORKER, can_connect, parse_responses, raw_request, read_all,
                      wait_for)


def get(port, path, headers="", timeout=5.0):
    req = f"GET {path} HTTP/1.1\r\nHost: test\r\n{headers}Connection: close\r\n\r\n".encode()
    out = parse_responses(raw_request(port, req, timeout=timeout))
    assert out, f"no response to GET {path}"
    return out[0]


def proc_state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return fields[0], int(fields[1])  # state, ppid
    except OSError:
        return None, None


def children_of(pid):
    """Live (non-zombie) children of PID, from /proc/*/stat."""
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            state, ppid = proc_state(int(entry))
            if ppid == pid and state not in (None, "Z"):
                kids.append(int(entry))
    return sorted(kids)


def alive(pid):
    return proc_state(pid)[0] not in (None, "Z")


def socket_inodes(pid):
    out = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                out.add(int(link[8:-1]))
    except OSError:
        pass
    return out


def established_inodes(port):
    """Inodes of the ESTABLISHED server-side sockets whose local port is PORT (IPv4)."""
    out = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            cols = line.split()
            local, state, inode = cols[1], cols[3], int(cols[9])
            if int(local.split(":")[1], 16) == port and state == "01" and inode:
                out.add(inode)
    return out


def keepalive_conns(port, n):
    """N keep-alive connections that each got one answer (so a process has accepted them)."""
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        socks.append(s)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        data = b""
        while b'{"status":"ok"}' not in data:
            chunk = s.recv(4096)
            assert chunk, "connection closed before the answer"
            data += chunk
        assert data.startswith(b"HTTP/1.1 200 ")
    return socks


def serving_children(parent, port, nconns=40):
    """Which children of PARENT hold accepted connections on PORT, after NCONNS connections."""
    socks = keepalive_conns(port, nconns)
    try:
        est = established_inodes(port)
        held = {pid: len(socket_inodes(pid) & est) for pid in children_of(parent)}
        assert sum(held.values()) == nconns, held
        return {pid for pid, n in held.items() if n > 0}
    finally:
        for s in socks:
            s.close()


def redis_gauges(g):
    m = g.metrics()
    return {k: v for k, v in m.items() if k.startswith("antre_redis_connected{")}


# --- processes = 2 ----------------------------------------------------------------------------

def test_two_processes_share_the_port(make_gateway):
    g = make_gateway({"gateway.processes": 2})
    kids = wait_for(lambda: len(children_of(g.proc.pid)) == 2 and children_of(g.proc.pid),
                    timeout=10, what="two children")
    wait_for(lambda: redis_gauges(g) == {'antre_redis_connected{process="0"}': 1,
                                        'antre_redis_connected{process="1"}': 1},
             timeout=10, what="both children connected to redis")
    # Many connections succeed, and both children answer some of them.
    for _ in range(100):
        assert get(g.port, "/healthz")[0] == 200
    assert set(kids) == serving_children(g.proc.pid, g.port)
    # Metrics are summed over both processes.
    m = g.metrics()
    assert m['antre_http_requests_total{route="healthz",status="200"}'] == 140


def test_killed_child_is_restarted(make_gateway):
    g = make_gateway({"gateway.processes": 2})
    kids = wait_for(lambda: len(children_of(g.proc.pid)) == 2 and children_of(g.proc.pid),
                    timeout=10, what="two children")
    victim, survivor = kids
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: victim not in children_of(g.proc.pid), timeout=5, what="victim gone")
    # The port keeps answering while the supervisor restarts the victim.
    for _ in range(50):
        assert get(g.port, "/healthz")[0] == 200
    new = wait_for(lambda: [p for p in children_of(g.proc.pid) if p not in kids] or None,
                   timeout=15, what="a new child")
    assert len(new) == 1
    assert children_of(g.proc.pid) == sorted([survivor, new[0]])
    assert alive(survivor)
    assert re.search(rf"pid={victim} died signal=Killed", g.read_log()), g.read_log()
    # Both serve again, and both are connected to Redis.
    wait_for(lambda: redis_gauges(g) == {'antre_redis_connected{process="0"}': 1,
                                        'antre_redis_connected{process="1"}': 1},
             timeout=10, what="both children connected to redis")
    assert serving_children(g.proc.pid, g.port) == {survivor, new[0]}
    assert g.stop() == 0


def test_sigterm_stops_all_processes(make_gateway):
    g = make_gateway({"gateway.processes": 2, "gateway.drain_timeout_ms": 3000})
    kids = wait_for(lambda: len(children_of(g.proc.pid)) == 2 and children_of(g.proc.pid),
                    timeout=10, what="two children")
    assert get(g.port, "/healthz")[0] == 200
    g.signal(signal.SIGTERM)
    # Hang guard only: drain_timeout_ms plus the supervisor's margin, generously.
    rc = g.proc.wait(20)
    assert rc == 0, g.read_log()
    for k in kids:
        assert not alive(k)
    assert not can_connect(g.port)
    log = g.read_log()
    assert log.count("server: stopped process=") == 2, log


def test_sighup_reaches_every_child(make_gateway):
    g = make_gateway({"gateway.processes": 2, "gateway.max_url_bytes": 4096})
    wait_for(lambda: len(children_of(g.proc.pid)) == 2, timeout=10, what="two children")
    path = "/healthz?pad=" + "a" * 200
    assert get(g.port, path)[0] == 200
    g.write_conf({"gateway.max_url_bytes": 100})
    g.signal(signal.SIGHUP)
    wait_for(lambda: g.metrics()['antre_config_reloads_total{result="ok"}'] == 2, timeout=10,
             what="both children reloaded")
    # Every connection, whichever child takes it, sees the new limit.
    for _ in range(40):
        assert get(g.port, path)[0] == 414
    assert g.proc.poll() is None


# --- drain of one process ---------------------------------------------------------------------

def test_sigterm_closes_idle_keepalive_and_exits(make_gateway):
    """An idle keep-alive connection does not hold the drain: it is closed at once and the
    gateway exits with 0 long before drain_timeout_ms."""
    g = make_gateway({"gateway.drain_timeout_ms": 60000})
    s = keepalive_conns(g.port, 1)[0]
    try:
        t0 = time.monotonic()
        g.signal(signal.SIGTERM)
        assert read_all(s, timeout=10) == b""  # closed by the server, nothing more sent
        rc = g.proc.wait(20)
        assert rc == 0
        assert time.monotonic() - t0 < 20  # far below the 60 s drain timeout
        assert "drain timeout" not in g.read_log()
    finally:
        s.close()


def test_sigterm_lets_inflight_request_finish(make_gateway):
    """A request whose head is half sent when SIGTERM arrives is still answered (with
    Connection: close); new connections are refused meanwhile; then the gateway exits 0."""
    g = make_gateway({"gateway.drain_timeout_ms": 20000})
    s = socket.create_connection(("127.0.0.1", g.port), timeout=5)
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n")
        time.sleep(0.3)  # let the gateway read the first part
        g.signal(signal.SIGTERM)
        wait_for(lambda: not can_connect(g.port), timeout=5, what="listener closed")
        time.sleep(0.3)
        assert g.proc.poll() is None, "exited with a request in flight"
        s.sendall(b"\r\n")
        data = read_all(s, timeout=10)
        (status, headers, body), = parse_responses(data)
        assert status == 200
        assert headers.get("connection", "").lower() == "close"
        assert g.proc.wait(15) == 0
    finally:
        s.close()


def test_drain_timeout_cuts_stuck_request(make_gateway):
    g = make_gateway({"gateway.drain_timeout_ms": 500, "gateway.header_timeout_ms": 60000})
    s = socket.create_connection(("127.0.0.1", g.port), timeout=5)
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n")
        time.sleep(0.3)
        g.signal(signal.SIGTERM)
        assert g.proc.wait(15) == 0
        assert "drain timeout" in g.read_log()
    finally:
        s.close()


# --- access log -------------------------------------------------------------------------------

ACCESS_LINE = re.compile(r'^(?P<peer>\S+) (?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) '
                         r'"(?P<method>[A-Z]+|-) (?P<path>\S*)" (?P<status>\d{3}) '
                         r'(?P<secs>\d+\.\d+) (?P<reqid>\S+)$')


def read_access_log(path):
    with open(path) as f:
        lines = f.read().splitlines()
    out = []
    for line in lines:
        m = ACCESS_LINE.match(line)
        assert m, f"bad access log line: {line!r}"
        out.append(m.groupdict())
    return out


def test_access_log_one_line_per_request(make_gateway, workdir):
    log_path = os.path.join(workdir, "access.log")
    g = make_gateway({"gateway.access_log": log_path})
    sent = []
    for path, want_path, extra in [
        ("/healthz", "/healthz", ""),
        ("/healthz?token=secret&x=1", "/healthz", ""),
        ("/readyz", "/readyz", ""),
        ("/no/such/page?q=1", "/no/such/page", ""),
        ("/healthz", "/healthz", "X-Request-Id: client-chosen-id.1\r\n"),
    ]:
        status, headers, _ = get(g.port, path, headers=extra)
        sent.append(("GET", want_path, status, headers["x-request-id"]))
    # A POST to a GET-only route (405), on a keep-alive connection with a second request.
    with socket.create_connection(("127.0.0.1", g.port), timeout=5) as s:
        s.sendall(b"POST /healthz?a=b HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"
                  b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        for status, headers, _ in parse_responses(read_all(s, timeout=5)):
            sent.append(("POST" if status == 405 else "GET", "/healthz", status,
                         headers["x-request-id"]))
    assert [x[2] for x in sent] == [200, 200, 200, 404, 200, 405, 200]
    assert sent[4][3] == "client-chosen-id.1"
    assert len({x[3] for x in sent}) == len(sent)

    assert g.stop() == 0  # SIGTERM flushes the buffer
    lines = read_access_log(log_path)
    got = [(d["method"], d["path"], int(d["status"]), d["reqid"]) for d in lines]
    assert got == sent
    for d in lines:
        assert d["peer"].startswith("127.0.0.1")
    with open(log_path) as f:
        assert "secret" not in f.read()


def test_access_log_reopened_on_sighup(make_gateway, workdir):
    """Log rotation: rename the file, SIGHUP, and later lines go to a new file of the same
    name while the renamed one keeps the earlier lines."""
    log_path = os.path.join(workdir, "access.log")
    g = make_gateway({"gateway.access_log": log_path})
    first = get(g.port, "/healthz?a=1")[1]["x-request-id"]
    os.rename(log_path, log_path + ".1")
    ok0 = g.metrics()['antre_config_reloads_total{result="ok"}']
    g.signal(signal.SIGHUP)
    wait_for(lambda: g.metrics()['antre_config_reloads_total{result="ok"}'] == ok0 + 1,
             timeout=10, what="reload")
    second = get(g.port, "/readyz")[1]["x-request-id"]
    assert g.stop() == 0
    old = [d for d in read_access_log(log_path + ".1") if d["path"] != "/metrics"]
    new = [d for d in read_access_log(log_path) if d["path"] != "/metrics"]
    assert [(d["path"], d["reqid"]) for d in old] == [("/healthz", first)]
    assert [(d["path"], d["reqid"]) for d in new] == [("/readyz", second)]


# --- the worker under the same supervisor ------------------------------------------------------

def write_worker_conf(path, redis, extra=""):
    with open(path, "w") as f:
        f.write(f"[redis]\nurl = {redis.url}\n[worker]\ndrain_timeout_ms = 2000\n{extra}")


def start_worker(workdir, conf, *args):
    log_path = os.path.join(workdir, "worker.log")
    log = open(log_path, "ab")
    proc = subprocess.Popen([WORKER, "-c", conf, *args], stdout=log, stderr=subprocess.STDOUT,
                            cwd=workdir)
    log.close()

    def read_log():
        with open(log_path, "rb") as f:
            return f.read().decode(errors="replace")
    return proc, read_log


def test_worker_processes_restart_reload_and_stop(workdir, redis):
    conf = os.path.join(workdir, "worker.conf")
    write_worker_conf(conf, redis, "processes = 1\n")
    proc, read_log = start_worker(workdir, conf, "-j", "2")  # -j overrides [worker] processes
    try:
        kids = wait_for(lambda: len(children_of(proc.pid)) == 2 and children_of(proc.pid),
                        timeout=10, what="two worker processes")
        wait_for(lambda: read_log().count("worker: redis connected") == 2, timeout=10,
                 what="both connected")
        assert "supervisor: started worker process=1" in read_log()

        os.kill(kids[0], signal.SIGKILL)
        wait_for(lambda: re.search(r"supervisor: worker process=\d pid=%d died signal=Killed"
                                   % kids[0], read_log()), timeout=10, what="the death reported")
        # A child that dies young is restarted after a delay: wait until the new one is up
        # (its own Redis connection), so that the SIGHUP below has two children to reach.
        wait_for(lambda: len(children_of(proc.pid)) == 2 and kids[0] not in children_of(proc.pid)
                 and read_log().count("worker: redis connected") == 3,
                 timeout=10, what="the killed worker restarted")

        # SIGHUP reaches every child; a restart-only change is reported, not applied.
        write_worker_conf(conf, redis, "processes = 5\n")
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: read_log().count("worker: configuration reloaded") == 2, timeout=10,
                 what="both workers reloaded")
        assert read_log().count("[worker] processes: changed in the file") == 2, read_log()
        assert len(children_of(proc.pid)) == 2

        kids = children_of(proc.pid)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, read_log()
        for k in kids:
            assert not alive(k)
        assert read_log().count("worker: stopped process=") == 2, read_log()
    finally:
        stop_tree(proc)


def stop_tree(proc):
    """Kill PROC (a supervisor we started) and then any child of it still running."""
    kids = children_of(proc.pid)
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    for k in kids:
        if alive(k):
            os.kill(k, signal.SIGKILL)


def test_killed_supervisor_takes_its_workers_with_it(workdir, redis):
    conf = os.path.join(workdir, "worker.conf")
    write_worker_conf(conf, redis)
    proc, read_log = start_worker(workdir, conf, "-j", "2")
    kids = []
    try:
        kids = wait_for(lambda: len(children_of(proc.pid)) == 2 and children_of(proc.pid),
                        timeout=10, what="two worker processes")
        wait_for(lambda: read_log().count("worker: redis connected") == 2, timeout=10,
                 what="both connected")
        proc.kill()  # no chance to pass anything on: the kernel tells the children
        proc.wait()
        wait_for(lambda: not any(alive(k) for k in kids), timeout=10,
                 what="orphaned workers gone")
        assert read_log().count("worker: stopped process=") == 2, read_log()
    finally:
        for k in kids:
            if alive(k):
                os.kill(k, signal.SIGKILL)


def test_worker_log_level_comes_from_the_log_section(workdir, redis):
    conf = os.path.join(workdir, "worker.conf")
    write_worker_conf(conf, redis, "[log]\nlevel = warn\n")
    proc, read_log = start_worker(workdir, conf)
    try:
        # one CLIENT LIST line per client, each with one laddr= field: ours and the worker's
        wait_for(lambda: redis.command("CLIENT", "LIST").count(b" laddr=") >= 2, timeout=10,
                 what="worker connected to redis")
        assert children_of(proc.pid) == [], "one process: no supervisor"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        assert read_log() == "", read_log()  # info lines (started, connected, stopped) dropped
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("jobs", ["0", "65", "two", ""])
def test_worker_refuses_a_bad_process_count(workdir, jobs):
    p = subprocess.run([WORKER, "-t", "-j", jobs], capture_output=True, text=True, timeout=30,
                       cwd=workdir)
    assert p.returncode == 2
    assert f"antre-worker: -j {jobs}: not a number from 1 to 64" in p.stderr
    assert "usage: antre-worker [-c FILE] [-t] [-j N]" in p.stderr


def test_gateway_offers_no_process_count_option(workdir):
    p = subprocess.run([GATEWAY, "-h"], capture_output=True, text=True, timeout=30, cwd=workdir)
    assert p.returncode == 0
    assert p.stdout.startswith("usage: antre-gateway [-c FILE] [-t]\n"), p.stdout
    assert "-j" not in p.stdout
