"""bench/lib/benchkit.py: helpers for the loopback comparison benchmarks in bench/.

Process bookkeeping (every process a benchmark starts is stopped by PID, also on error and on
SIGTERM/Ctrl-C), /proc readers, a redis-server, an nginx `return 200` and an antre-gateway on
free loopback ports in a temporary directory, `redis-cli` access, and wrk runs with the CPU time
of the server processes, of wrk and of the rest of the machine around each run.

Standard library only. Import it with sys.dont_write_bytecode set (no __pycache__ in bench/).
"""
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """Something broke: the benchmark cannot go on (exit 1)."""


def log(msg=""):
    print(msg, flush=True)


# ---------------------------------------------------------------------------------------------
# Processes: everything started goes into PROCS and is stopped by PID in cleanup().

PROCS = []          # (name, Popen)
EXTRA_PIDS = []     # pids we did not fork ourselves but know belong to us (nginx worker)


def start(name, argv, logpath, cwd=None, nofile=None):
    """Popen ARGV with its output appended to LOGPATH, remembered as NAME."""
    def limits():
        if nofile:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
    logf = open(logpath, "ab")
    try:
        p = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             cwd=cwd, preexec_fn=limits if nofile else None)
    finally:
        logf.close()
    PROCS.append((name, p))
    return p


def stop(p, timeout=8.0, sig=signal.SIGTERM):
    """Send SIG to P (a Popen) and wait; SIGKILL after TIMEOUT."""
    if p.poll() is None:
        try:
            p.send_signal(sig)
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
        except ProcessLookupError:
            pass


def forget(p):
    for n, q in list(PROCS):
        if q is p:
            PROCS.remove((n, q))


def stop_named(name):
    for n, p in list(PROCS):
        if n == name:
            stop(p)
            PROCS.remove((n, p))


def cleanup():
    for _, p in reversed(PROCS):
        try:
            stop(p)
        except Exception as e:  # keep going: every other process must still be stopped
            log(f"cleanup: pid {p.pid}: {e}")
    PROCS.clear()
    for pid in EXTRA_PIDS:
        try:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    EXTRA_PIDS.clear()


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def on_signal(sig, frame):
    raise KeyboardInterrupt(f"signal {sig}")


def install_signal_handlers():
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)


# ---------------------------------------------------------------------------------------------
# /proc readers

def cpu_ticks(pid):
    """utime + stime of PID in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of stat(5), after pid and comm


def machine_busy_ticks():
    """Busy clock ticks of all CPUs together (everything in /proc/stat's cpu line but idle and
    iowait)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v[:8]) - v[3] - v[4]  # user nice system idle iowait irq softirq steal


def children_cpu_s():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def vmrss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise BenchError(f"no VmRSS for pid {pid}")


def children_of(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                out.append(int(d))
        except OSError:
            continue
    return out


# ---------------------------------------------------------------------------------------------
# small helpers

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise BenchError(f"timed out waiting for {what}")


def tail(path, n=20):
    try:
        with open(path, "rb") as f:
            return "\n".join(f.read().decode(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def raise_nofile(want):
    """Raise our own RLIMIT_NOFILE to WANT if allowed (root may raise the hard limit too)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= want:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
        return want
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return hard


def split_response(data):
    """(status, headers dict with lower-case names, body) of one raw HTTP/1.1 response."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


class HttpClient:
    """A minimal keep-alive HTTP/1.1 client on one loopback connection (Content-Length bodies
    only, which is what nginx `return` and the gateway send)."""

    def __init__(self, port, timeout=5.0):
        self.port = port
        self.timeout = timeout
        self.sock = None
        self.buf = b""

    def close(self):
        if self.sock:
            self.sock.close()
            self.sock = None

    def request(self, method, path, headers=None, body=b""):
        """(status, headers, body, raw response length)."""
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
            self.buf = b""
        h = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
        for k, v in (headers or {}).items():
            h += f"{k}: {v}\r\n"
        if body or method in ("POST", "PUT", "PATCH"):
            h += f"Content-Length: {len(body)}\r\n"
        self.sock.sendall(h.encode() + b"\r\n" + body)
        deadline = time.monotonic() + self.timeout
        while True:
            head, sep, rest = self.buf.partition(b"\r\n\r\n")
            if sep:
                m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
                n = int(m.group(1)) if m else 0
                if len(rest) >= n:
                    raw = head + sep + rest[:n]
                    self.buf = rest[n:]
                    status, hdrs, b = split_response(raw)
                    if hdrs.get("connection", "").lower() == "close":
                        self.close()
                    return status, hdrs, b, len(raw)
            if time.monotonic() > deadline or len(self.buf) > 1 << 20:
                raise BenchError(f"no complete answer to {method} {path} on port {self.port}")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise BenchError(f"connection closed before the answer to {method} {path}")
            self.buf += chunk


# ---------------------------------------------------------------------------------------------
# Servers

def answers_200(port, path):
    """True when GET PATH on 127.0.0.1:PORT answers 200 within a second (start-up probes)."""
    try:
        c = HttpClient(port, timeout=1)
        try:
            return c.request("GET", path)[0] == 200
        finally:
            c.close()
    except (OSError, BenchError):
        return False


class Redis:
    """A private redis-server on a free loopback port. aof=True: appendonly yes with the given
    appendfsync (as in production); otherwise no persistence at all."""

    def __init__(self, tmp, aof=True, appendfsync="everysec", tag="redis"):
        self.dir = os.path.join(tmp, tag)
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--dir", self.dir, "--daemonize", "no",
                "--logfile", os.path.join(self.dir, "redis.log")]
        argv += (["--appendonly", "yes", "--appendfsync", appendfsync] if aof
                 else ["--appendonly", "no"])
        self.proc = start(tag, argv, os.path.join(tmp, f"{tag}.out"))
        self.pid = self.proc.pid
        wait_for(lambda: self.proc.poll() is not None or self.ping(), 10, "redis-server")
        if self.proc.poll() is not None:
            raise BenchError("redis-server exited:\n" + tail(os.path.join(self.dir, "redis.log")))

    def ping(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def cli(self, *args):
        """Output of `redis-cli -p PORT ARGS...` (raises BenchError on failure)."""
        r = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), *args],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0 or r.stdout.startswith("ERR") or "Could not connect" in r.stderr:
            raise BenchError(f"redis-cli {' '.join(args)}: {r.stdout}{r.stderr}")
        return r.stdout

    def info(self, section):
        """INFO SECTION as a dict of name -> value (strings)."""
        out = {}
        for line in self.cli("INFO", section).splitlines():
            if ":" in line and not line.startswith("#"):
                k, _, v = line.strip().partition(":")
                out[k] = v
        return out

    def commandstats(self):
        """{command: calls} from INFO commandstats (calls made inside scripts included: Redis
        counts every redis.call under its own command)."""
        out = {}
        for k, v in self.info("commandstats").items():
            if k.startswith("cmdstat_"):
                m = re.search(r"(?:^|,)calls=(\d+)", v)
                if m:
                    out[k[len("cmdstat_"):]] = int(m.group(1))
        return out

    def stop(self):
        stop(self.proc)
        forget(self.proc)


class Nginx:
    """nginx, one worker, access_log off, `return 200 BODY` (application/json) for every
    location, keep-alive for as long as a benchmark runs."""

    def __init__(self, tmp, body, nofile, tag="nginx"):
        self.prefix = os.path.join(tmp, tag)
        os.makedirs(self.prefix, exist_ok=True)
        self.port = free_port()
        if "'" in body or "\\" in body:
            raise BenchError("nginx body must not contain ' or \\")
        v = subprocess.run(["nginx", "-V"], capture_output=True, text=True).stderr
        temp_paths = ""
        for mod in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            if mod != "client_body" and f"--without-http_{mod}_module" in v:
                continue
            os.makedirs(os.path.join(self.prefix, mod), exist_ok=True)
            temp_paths += f"    {mod}_temp_path {self.prefix}/{mod};\n"
        conf = os.path.join(self.prefix, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""# written by bench/lib/benchkit.py
worker_processes 1;
daemon off;
pid {self.prefix}/nginx.pid;
error_log {self.prefix}/error.log warn;
worker_rlimit_nofile {nofile};
events {{
    worker_connections {max(1024, nofile - 100)};
}}
http {{
    access_log off;
{temp_paths}    keepalive_requests 1000000000;
    keepalive_timeout 3600s;
    server {{
        listen 127.0.0.1:{self.port} backlog=4096;
        location / {{
            default_type application/json;
            return 200 '{body}';
        }}
    }}
}}
""")
        argv = ["nginx", "-p", self.prefix + "/", "-c", conf]
        m = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", v)
        if m and tuple(map(int, m.groups())) >= (1, 19, 5):
            argv += ["-e", os.path.join(self.prefix, "error.log")]
        self.proc = start(tag, argv, os.path.join(self.prefix, "nginx.out"), nofile=nofile)

        wait_for(lambda: self.proc.poll() is not None or answers_200(self.port, "/"), 10,
                 "nginx")
        if self.proc.poll() is not None:
            raise BenchError("nginx exited:\n" + tail(os.path.join(self.prefix, "nginx.out"))
                             + "\n" + tail(os.path.join(self.prefix, "error.log")))
        kids = wait_for(lambda: children_of(self.proc.pid), 5, "nginx worker")
        if len(kids) != 1:
            raise BenchError(f"expected one nginx worker, found {kids}")
        self.worker = kids[0]
        EXTRA_PIDS.append(self.worker)

    def stop(self):
        stop(self.proc)
        forget(self.proc)
        if self.worker in EXTRA_PIDS:
            wait_for(lambda: not pid_alive(self.worker), 5, "nginx worker exit")
            EXTRA_PIDS.remove(self.worker)


class Gateway:
    """antre-gateway, processes = 1, access_log off, against REDIS_PORT; EXTRA is appended to
    the configuration (e.g. [room.NAME] sections)."""

    def __init__(self, tmp, binary, redis_port, nofile, extra="", tag="gateway"):
        self.dir = os.path.join(tmp, tag)
        os.makedirs(self.dir, exist_ok=True)
        self.port, self.admin = free_port(), free_port()
        self.conf = os.path.join(self.dir, "gateway.conf")
        with open(self.conf, "w") as f:
            f.write(f"""# written by bench/lib/benchkit.py
[gateway]
listen = 127.0.0.1:{self.port}
admin_listen = 127.0.0.1:{self.admin}
processes = 1
access_log = off
max_connections = 16384
# every client of a benchmark is 127.0.0.1: the per-IP cap stays on (its cost is measured)
# but above any concurrency it uses
per_ip_max_connections = 65535
idle_timeout_ms = 3600000
drain_timeout_ms = 2000
secret_file = {self.dir}/secret
[log]
level = warn
[redis]
url = redis://127.0.0.1:{redis_port}
{extra}""")
        self.log = os.path.join(self.dir, "gateway.log")
        self.proc = start(tag, [binary, "-c", self.conf], self.log, cwd=self.dir, nofile=nofile)
        self.pid = self.proc.pid

        wait_for(lambda: self.proc.poll() is not None or answers_200(self.port, "/readyz"), 10,
                 "gateway")
        if self.proc.poll() is not None:
            raise BenchError("gateway exited:\n" + tail(self.log))

    def stop(self):
        stop(self.proc)
        forget(self.proc)


# ---------------------------------------------------------------------------------------------
# wrk

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def parse_wrk(out):
    r = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m:
        raise BenchError("cannot read wrk output:\n" + out)
    r["rps"] = float(m.group(1))
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)\b", out)
    r["requests"] = int(m.group(1)) if m else 0
    r["elapsed_s"] = float(m.group(2)) * UNITS[m.group(3)] / 1e3 if m else float("nan")
    m = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s|m)\b", out, re.M)
    r["p99_ms"] = float(m.group(1)) * UNITS[m.group(2)] if m else float("nan")
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    r["errors"] = sum(map(int, m.groups())) if m else 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    r["non2xx"] = int(m.group(1)) if m else 0
    return r


def run_wrk(url, conns, duration, pids, script=None, script_args=(), stop_when=None,
            poll_s=0.2):
    """Run `wrk -t1 -cCONNS -dDURATIONs --latency [-s SCRIPT] URL [-- SCRIPT_ARGS]`.

    PIDS: {label: pid} whose CPU time is measured around the run. STOP_WHEN: a function called
    every POLL_S seconds while wrk runs; when it returns true wrk gets SIGINT (it then stops and
    prints its results), so a run can end on a count instead of on time. Returns wrk's figures
    plus cpu_pct[label], cpu_us_per_req[label], wrk_pct, other_pct and wall_s."""
    argv = ["wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--latency"]
    if script:
        argv += ["-s", script]
    argv.append(url)
    if script_args:
        argv += ["--", *map(str, script_args)]
    c0 = {k: cpu_ticks(p) for k, p in pids.items()}
    t0, m0, w0 = time.monotonic(), machine_busy_ticks(), children_cpu_s()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    PROCS.append(("wrk", p))
    try:
        if stop_when:
            deadline = time.monotonic() + duration + 30
            while p.poll() is None and time.monotonic() < deadline:
                if stop_when():
                    p.send_signal(signal.SIGINT)
                    break
                time.sleep(poll_s)
        out, _ = p.communicate(timeout=duration + 30)
    except subprocess.TimeoutExpired:
        raise BenchError(f"wrk did not finish: {' '.join(argv)}")
    finally:
        stop(p)
        forget(p)
    c1 = {k: cpu_ticks(p_) for k, p_ in pids.items()}
    t1, m1, w1 = time.monotonic(), machine_busy_ticks(), children_cpu_s()
    if p.returncode != 0:
        raise BenchError(f"wrk failed (exit {p.returncode}):\n{out}")
    r = parse_wrk(out)
    r["out"] = out
    r["wall_s"] = t1 - t0
    r["cpu_pct"], r["cpu_us_per_req"] = {}, {}
    servers_s = 0.0
    for k in pids:
        s = (c1[k] - c0[k]) / CLK_TCK
        servers_s += s
        r["cpu_pct"][k] = 100.0 * s / (t1 - t0)
        r["cpu_us_per_req"][k] = s * 1e6 / r["requests"] if r["requests"] else float("nan")
    # wrk is the only child reaped during the run, so the children's rusage delta is its CPU
    r["wrk_pct"] = 100.0 * (w1 - w0) / (t1 - t0)
    other_s = (m1 - m0) / CLK_TCK - servers_s - (w1 - w0)
    r["other_pct"] = max(0.0, 100.0 * other_s / (t1 - t0))
    return r


def check_tools(tools, install_pkgs=None, install=False):
    """Exit 1 with a hint when a program in TOOLS is missing; as root with INSTALL, apt-get
    install INSTALL_PKGS first."""
    missing = [t for t in tools if not shutil.which(t)]
    if missing and install and install_pkgs:
        if os.geteuid() != 0:
            raise BenchError("--install needs root")
        log(f"installing {' '.join(install_pkgs)} with apt-get")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", *install_pkgs], check=True, env=env)
        missing = [t for t in tools if not shutil.which(t)]
    if missing:
        log(f"missing: {' '.join(missing)}; install with: apt-get install "
            f"{' '.join(install_pkgs or missing)}")
        sys.exit(1)


def fmt_int(x):
    return f"{x:,.0f}"
