"""Accept backoff: a gateway out of file descriptors pauses accepting instead of spinning, counts
it, and serves again once descriptors are free."""
import os
import socket
import subprocess
import time

from conftest import GATEWAY, Gateway, can_connect, wait_for


def test_emfile_pauses_accepts_and_recovers(workdir, redis):
    g = Gateway(workdir, redis, {"gateway.max_connections": 1000})
    # Start under a small descriptor limit so that accept(2) fails with EMFILE.
    g.log = open(g.log_path, "ab")
    g.proc = subprocess.Popen(["prlimit", "--nofile=48:48", GATEWAY, "-c", g.conf_path],
                              stdout=g.log, stderr=subprocess.STDOUT, cwd=workdir)
    try:
        wait_for(lambda: can_connect(g.port), what="gateway listening")
        socks = []
        for _ in range(80):  # more than the limit allows
            s = socket.create_connection(("127.0.0.1", g.port), timeout=2)
            socks.append(s)
        # (Even /metrics cannot be reached now: the admin listener is out of descriptors too.)
        wait_for(lambda: "pausing accepts" in g.read_log(), timeout=10, what="accepts paused")
        cpu_before = _cpu_ticks(g.proc.pid)
        time.sleep(1.0)
        cpu_used = _cpu_ticks(g.proc.pid) - cpu_before
        # A spinning accept loop would burn ~100 ticks a second; backing off costs a few.
        assert cpu_used < 50, f"gateway used {cpu_used} ticks in 1 s while out of descriptors"
        for s in socks:
            s.close()
        # Descriptors free again: new connections are served.
        def served():
            try:
                with socket.create_connection(("127.0.0.1", g.port), timeout=2) as s:
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                    return s.recv(64).startswith(b"HTTP/1.1 200")
            except OSError:
                return False
        wait_for(served, timeout=10, what="served again after descriptors were freed")
        assert g.metrics().get('antre_refusals_total{reason="accept_backoff"}', 0) >= 1
    finally:
        g.stop()


def _cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime
