"""Hostile clients (issue 10, items 5 and 7): one address cannot hold every connection, a silent
connection is cut at the header timeout, a trickled body is cut by the minimum body rate while a
steady upload passes, refusals reach the client as a 503 with Retry-After rather than a reset,
and with several processes a client still gets one per-IP rate.

Attackers come from 127.0.0.1 (slowhttptest and a Python slowloris); the normal client binds
127.0.0.2, another address of the loopback network, so per-IP limits tell them apart."""
import os
import signal
import socket
import subprocess
import time


from conftest import parse_responses, read_all, wait_for
from test_processes import children_of

NORMAL_ADDR = "127.0.0.2"


def refusals(g, reason):
    return g.metrics().get(f'antre_refusals_total{{reason="{reason}"}}', 0.0)


def connect(port, source="127.0.0.1", timeout=5.0):
    s = socket.socket()
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def poll_once(port):
    """One GET /healthz on a fresh connection from NORMAL_ADDR: (ok, seconds)."""
    t0 = time.monotonic()
    try:
        with connect(port, NORMAL_ADDR, timeout=3.0) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = read_all(s, timeout=3.0)
        ok = data.startswith(b"HTTP/1.1 200")
    except OSError:
        ok = False
    return ok, time.monotonic() - t0


def slowhttptest(mode, port, path, conns, seconds, extra=()):
    """Start slowhttptest (-H slow headers, -B slow body) against PATH; returns the Popen."""
    cmd = ["slowhttptest", mode, "-c", str(conns), "-r", "400", "-i", "2", "-l", str(seconds),
           "-x", "8", "-p", "3", "-u", f"http://127.0.0.1:{port}{path}", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Slowloris:
    """N slow-header connections from 127.0.0.1 that each send a header line now and then, and
    note how each one ended: held open, answered 503 with Retry-After, or reset."""

    def __init__(self, port, n):
        self.port, self.n = port, n
        self.socks, self.answers, self.resets = [], [], 0

    def open(self):
        for _ in range(self.n):
            try:
                s = connect(self.port, timeout=0.5)
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                self.socks.append(s)
            except ConnectionResetError:
                self.resets += 1
            except OSError:
                pass

    def trickle(self):
        """One more header line on every connection still open, then read what came back. An
        attacker writes before it reads: a refusal that closed with its input unread has sent
        a reset by then, and the write fails."""
        for s in list(self.socks):
            try:
                s.sendall(b"X-a: b\r\n")
                s.setblocking(False)
                try:
                    data = s.recv(4096)
                except BlockingIOError:
                    continue
                s.settimeout(1.0)
                self.answers.append(data + read_all(s, timeout=1.0))
                self._drop(s)
            except (ConnectionResetError, BrokenPipeError):
                self.resets += 1
                self._drop(s)

    def _drop(self, s):
        self.socks.remove(s)
        s.close()

    def close(self):
        for s in self.socks:
            s.close()
        self.socks = []

    def refused_503(self):
        return sum(1 for a in self.answers
                   if a.startswith(b"HTTP/1.1 503") and b"\r\nRetry-After: " in a)


def test_one_address_cannot_starve_another(make_gateway):
    """slowhttptest slow headers and slow bodies plus a Python slowloris, all from 127.0.0.1 and
    together far more than max_connections: a client polling from 127.0.0.2 on fresh
    connections is still served (>= 99 %), and the refused attackers read a 503 with
    Retry-After, not a reset."""
    g = make_gateway({"gateway.max_connections": 200, "gateway.per_ip_max_connections": 50})
    port = g.port
    attackers = [
        slowhttptest("-H", port, "/healthz", 300, 14),
        slowhttptest("-B", port, "/v1/rooms/lobby/join", 300, 14, ["-s", "4000"]),
    ]
    loris = Slowloris(port, 300)
    results = []
    try:
        # Let the attack fill up (before the fix: every slot of the gateway).
        wait_for(lambda: g.metrics().get("antre_connections_open", 0) >= 45, timeout=10,
                 what="attackers connected")
        time.sleep(1.0)
        loris.open()
        deadline = time.monotonic() + 8.0
        n = 0
        while time.monotonic() < deadline:
            results.append(poll_once(port))
            n += 1
            if n % 25 == 0:
                loris.trickle()
            time.sleep(0.01)
        loris.trickle()
        open_during = g.metrics()["antre_connections_open"]
    finally:
        loris.close()
        for a in attackers:
            stop(a)
    ok = sum(1 for r in results if r[0])
    lat = sorted(r[1] for r in results if r[0])
    p50 = lat[len(lat) // 2] if lat else float("nan")
    p99 = lat[int(len(lat) * 0.99) - 1] if lat else float("nan")
    print(f"normal client: {ok}/{len(results)} ok, p50 {p50 * 1000:.1f} ms, "
          f"p99 {p99 * 1000:.1f} ms; slowloris: {loris.refused_503()} answered 503, "
          f"{loris.resets} reset, {len(loris.answers)} answers; open {open_during}")
    assert len(results) >= 200, len(results)
    assert ok >= 0.99 * len(results), f"{ok}/{len(results)} polls served"
    # Generous on a loaded 2-core machine; the figure is printed above.
    assert p99 < 0.5, p99
    # The attacker's own connections are capped; its extra ones were answered, not reset.
    assert open_during <= 50 + 1 + 5, open_during
    assert loris.refused_503() >= 100, loris.refused_503()
    assert loris.resets <= 0.02 * (loris.refused_503() + loris.resets), loris.resets
    assert refusals(g, "per_ip_connections") >= 100


# 20 held + at most 20 / 4 + 256 lingering refusals + the listeners, Redis and the log
FD_BOUND = 20 + 261 + 40


def test_refusal_at_max_connections_is_a_503_not_a_reset(make_gateway):
    """Over max_connections, clients that already sent their request head and keep sending
    read the 503 with Retry-After: the refusal lingers instead of closing with unread input.
    Refusals that linger are bounded: a flood of refused clients that never close does not
    make the gateway hold a descriptor for each."""
    g = make_gateway({"gateway.max_connections": 20, "gateway.per_ip_max_connections": 0})
    held = []
    loris = Slowloris(g.port, 150)
    flood = Slowloris(g.port, 600)
    try:
        for _ in range(20):
            s = connect(g.port)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert s.recv(4096).startswith(b"HTTP/1.1 200")
            held.append(s)
        loris.open()
        for _ in range(4):
            time.sleep(0.1)
            loris.trickle()
        loris.close()
        flood.open()             # these never read nor close while we count
        # A refusal closed at once is closed by libevent's finalizer on the next loop turn, so
        # a burst of accepts briefly holds more descriptors; what must hold is the bound once
        # the loop has turned, with the flood still connected.
        deadline = time.monotonic() + 3
        while True:
            fds = len(os.listdir(f"/proc/{g.proc.pid}/fd"))
            if fds <= FD_BOUND or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    finally:
        loris.close()
        flood.close()
        for s in held:
            s.close()
    print(f"refused: {loris.refused_503()} answered 503, {loris.resets} reset; "
          f"gateway fds during a flood of 600: {fds}")
    assert loris.refused_503() >= 147, (loris.refused_503(), loris.resets)
    assert loris.resets <= 3, loris.resets
    assert refusals(g, "max_connections") >= 150
    assert fds <= FD_BOUND, fds


def test_silent_connection_is_closed_at_header_timeout(make_gateway):
    g = make_gateway({"gateway.header_timeout_ms": 500, "gateway.idle_timeout_ms": 60000})
    before = refusals(g, "header_timeout")
    with connect(g.port) as s:
        t0 = time.monotonic()
        assert read_all(s, timeout=5.0) == b""
        elapsed = time.monotonic() - t0
    assert 0.3 < elapsed < 3.0, elapsed
    assert refusals(g, "header_timeout") == before + 1
    # Between keep-alive requests the idle timeout still applies, not the header timeout.
    with connect(g.port) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
        time.sleep(1.0)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 200")


def post_body(port, chunks, interval, length=None):
    """POST CHUNKS to /v1/rooms/lobby/join, INTERVAL seconds apart; returns (status or None,
    seconds, bytes sent)."""
    body_len = length if length is not None else sum(len(c) for c in chunks)
    t0 = time.monotonic()
    sent = 0
    with connect(port) as s:
        s.sendall(b"POST /v1/rooms/lobby/join HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % body_len)
        for c in chunks:
            try:
                s.sendall(c)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(c)
            s.setblocking(False)
            try:
                if s.recv(1, socket.MSG_PEEK):
                    break                      # answered early: cut
            except BlockingIOError:
                pass
            s.settimeout(5.0)
            time.sleep(interval)
        data = read_all(s, timeout=5.0)
    out = parse_responses(data)
    return (out[0][0] if out else None), time.monotonic() - t0, sent


def test_trickled_body_is_cut_by_min_rate_while_steady_upload_passes(make_gateway):
    g = make_gateway({"gateway.body_total_timeout_ms": 1000, "gateway.body_min_rate": 1000,
                      "gateway.body_timeout_ms": 5000})
    before = refusals(g, "body_min_rate")
    # 1 byte every 0.25 s: each pause is far below body_timeout_ms, but the rate is 4 B/s.
    status, secs, sent = post_body(g.port, [b"{"] * 40, 0.25, length=40)
    assert status == 408, status
    assert 0.9 < secs < 3.0, secs
    assert sent < 20, sent
    assert refusals(g, "body_min_rate") == before + 1
    # A steady 3 KB/s for about 1.3 s (longer than the 1 s grace) arrives whole: the answer is
    # the join's own (no room "lobby"), not a 408.
    body = b'{"applicant":"' + b"a" * 3970 + b'"}'
    chunks = [body[i:i + 300] for i in range(0, len(body), 300)]
    status, secs, sent = post_body(g.port, chunks, 0.1)
    assert sent == len(body)
    assert status not in (None, 408), status
    assert secs > 1.1, secs
    assert refusals(g, "body_min_rate") == before + 1


def test_per_ip_rate_holds_across_processes(make_gateway):
    """processes = 2: many connections from one address, spread over both processes by
    SO_REUSEPORT, share one allowance of per_ip_burst (and per_ip_rate) between them."""
    g = make_gateway({"gateway.processes": 2, "gateway.per_ip_rate": 1,
                      "gateway.per_ip_burst": 20})
    # Both processes listening: probes from another address (its own allowance) have been
    # answered by both. The supervisor logs a process when it forks it, before it listens.
    seen = set()

    def both_answer():
        s = connect(g.port, source=NORMAL_ADDR)
        try:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            (_, headers, _), = parse_responses(_read_one(s))
            seen.add(headers.get("x-request-id", "")[:8])
        finally:
            s.close()
        return len(seen) == 2

    wait_for(both_answer, timeout=10, what="both processes answering")
    socks = [connect(g.port) for _ in range(60)]
    statuses, prefixes = [], set()
    t0 = time.monotonic()
    try:
        for s in socks:
            s.sendall(b"GET /v1/nothing-here HTTP/1.1\r\nHost: x\r\n\r\n")
        for s in socks:
            (status, headers, _), = parse_responses(_read_one(s))
            statuses.append(status)
            prefixes.add(headers.get("x-request-id", "")[:8])
    finally:
        for s in socks:
            s.close()
    elapsed = time.monotonic() - t0
    allowed = sum(1 for st in statuses if st == 404)
    limited = sum(1 for st in statuses if st == 429)
    print(f"allowed {allowed}, limited {limited} in {elapsed:.2f} s; processes seen "
          f"{len(prefixes)}")
    assert len(prefixes) == 2, prefixes            # both processes answered
    assert allowed + limited == 60
    assert allowed <= 20 + int(elapsed) + 1, allowed


def _read_one(s):
    """Read one Content-Length framed response from S."""
    s.settimeout(5.0)
    data = b""
    while b"\r\n\r\n" not in data:
        b = s.recv(4096)
        if not b:
            return data
        data += b
    head, _, rest = data.partition(b"\r\n\r\n")
    n = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            n = int(v)
    while len(rest) < n:
        b = s.recv(4096)
        if not b:
            break
        rest += b
    return head + b"\r\n\r\n" + rest


def test_crashed_process_does_not_leak_its_per_ip_counts(make_gateway):
    """processes = 2, per_ip_max_connections = 10: a process killed while it holds connections
    from one address has its counts cleared when the supervisor restarts it in its slot, so
    the address gets its 10 connections again."""
    g = make_gateway({"gateway.processes": 2, "gateway.per_ip_max_connections": 10})
    wait_for(lambda: len(children_of(g.proc.pid)) == 2, timeout=10, what="two processes")

    def open_ok(n):
        socks, ok = [], 0
        for _ in range(n):
            s = connect(g.port)
            socks.append(s)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                ok += s.recv(4096).startswith(b"HTTP/1.1 200")
            except OSError:
                pass
        return socks, ok

    socks, ok = open_ok(10)
    assert ok == 10, ok
    victim = children_of(g.proc.pid)[0]
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: len(children_of(g.proc.pid)) == 2 and victim not in children_of(g.proc.pid),
             timeout=15, what="the killed process restarted")
    for s in socks:
        s.close()
    # The survivor's connections are released as our sockets close; the dead one's by restart.
    time.sleep(0.5)
    socks, ok = open_ok(10)
    for s in socks:
        s.close()
    assert ok == 10, f"{ok} of 10 connections served after the restart"
