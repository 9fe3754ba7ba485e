"""System tests of the worker's queue runtime (issue 8, first part): the register queue, with
real Redis and real antre-worker processes.

Registrations are made through the gateway, or (where many are needed quickly) written to Redis
the way intake.lua writes them: a record hash and a `register` stream entry. The tests check the
records, the streams (XLEN, XPENDING, the dead-letter stream) and the worker's /metrics. Time
bounds are hang guards only, except the drain-rate test, which asserts a lower bound.
"""
import os
import shutil
import signal
import subprocess
import time
import urllib.request
import uuid

import pytest

import conftest
from conftest import WORKER, free_port, wait_for
from test_registration import accepted, body, start

STREAM = "antre:{intake}:q:register"
DEAD = "antre:{intake}:dead:register"
DELAYED = "antre:{intake}:delayed:register"
HANG = 60.0


class Worker:
    """antre-worker with a config written for the test (SETTINGS: "section.name" -> value)."""

    def __init__(self, workdir, redis, settings=None, name="worker"):
        self.admin_port = free_port()
        self.conf_path = os.path.join(workdir, f"{name}.conf")
        self.log_path = os.path.join(workdir, f"{name}.log")
        self.workdir = workdir
        s = {"redis.url": redis.url,
             # The gateway's key file (conftest.Gateway): the worker opens the records' sealed
             # personal fields with it, as one shared config file would have it.
             "gateway.secret_file": os.path.join(workdir, "secret"),
             "worker.admin_listen": f"127.0.0.1:{self.admin_port}",
             "worker.drain_timeout_ms": 5000,
             "queue.register.rate": 0,
             "queue.register.backoff_base_ms": 20,
             "queue.register.backoff_max_ms": 200}
        s.update(settings or {})
        self.settings = s
        self.write_conf()
        self.proc = None

    def write_conf(self, settings=None):
        if settings:
            self.settings.update(settings)
        sections = {}
        for key, value in self.settings.items():
            sec, n = key.rsplit(".", 1)
            sections.setdefault(sec, []).append(f"{n} = {value}")
        with open(self.conf_path, "w") as f:
            f.write("".join(f"[{sec}]\n" + "\n".join(v) + "\n" for sec, v in sections.items()))

    def start(self, *args):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([WORKER, "-c", self.conf_path, *args], stdout=self.log,
                                     stderr=subprocess.STDOUT, cwd=self.workdir)
        wait_for(lambda: self.proc.poll() is not None or conftest.can_connect(self.admin_port),
                 what="worker admin listener")
        assert self.proc.poll() is None, self.read_log()
        return self

    def read_log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self, timeout=20):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def cleanup(self):
        """At a test's end: kill it if it still runs, close its log."""
        if self.proc and self.proc.poll() is None:
            self.kill()
        if self.proc:
            self.log.close()

    def metrics_text(self):
        url = f"http://127.0.0.1:{self.admin_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as r:
            assert r.status == 200
            return r.read().decode()

    def metrics(self):
        out = {}
        for line in self.metrics_text().splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out


def make_workers(workdir, redis, settings_of=lambda s: s, prefix="worker"):
    """The body of a `workers` fixture: yields factory(settings=None, name=None) -> Worker, whose
    settings go through SETTINGS_OF first; every worker made is cleaned up at the end."""
    made = []

    def factory(settings=None, name=None):
        w = Worker(workdir, redis, settings_of(settings), name or f"{prefix}{len(made)}")
        made.append(w)
        return w
    yield factory
    for w in made:
        w.cleanup()


@pytest.fixture
def workers(workdir, redis):
    yield from make_workers(workdir, redis)


def put_registrations(rd, n):
    """N registration records and their register entries, as intake.lua writes them."""
    ids = [uuid.uuid4().hex for _ in range(n)]
    for rid in ids:
        rd("HSET", f"antre:{{intake}}:reg:{rid}", "name", "Siti", "email_state", "unverified")
        rd("XADD", STREAM, "*", "registration_id", rid)
    return ids


def states(rd, ids):
    return [(rd("HGET", f"antre:{{intake}}:reg:{rid}", "state") or b"").decode() for rid in ids]


def pending_count(rd):
    try:
        return rd("XPENDING", STREAM, "workers")[0]
    except AssertionError:  # no group yet
        return 0


def drained(rd):
    return rd("XLEN", STREAM) == 0 and pending_count(rd) == 0


def q(name, metric):
    return f'{metric}{{queue="{name}"}}'


def test_registrations_through_the_gateway_end_accepted(make_gateway, redis, workers):
    g, api, rd = start(make_gateway, redis)
    ids = [accepted(api, body()) for _ in range(20)]
    assert rd("XLEN", STREAM) == 20
    assert all(api.status(r).json()["checks"]["registry"]["state"] == "pending" for r in ids)
    w = workers().start()
    wait_for(lambda: drained(rd), timeout=HANG, what="register stream drained")
    for rid in ids:
        j = api.status(rid).json()
        assert j["checks"]["registry"]["state"] == "accepted", j
        rec = rd.hgetall(f"antre:{{intake}}:reg:{rid}")
        assert rec["state"] == "accepted" and rec["accepted_by"] == rid, rec
    m = w.metrics()
    assert m[q("register", "antre_worker_jobs_processed_total")] == 20, m
    assert m[q("register", "antre_worker_jobs_failed_total")] == 0
    assert m[q("register", "antre_worker_jobs_in_flight")] == 0
    assert m[q("register", "antre_worker_queue_pending")] == 0
    assert m[q("register", "antre_worker_queue_lag")] == 0
    assert m["antre_worker_redis_up"] == 1
    # The same job delivered again changes nothing (idempotent by registration id).
    before = rd.hgetall(f"antre:{{intake}}:reg:{ids[0]}")
    rd("XADD", STREAM, "*", "registration_id", ids[0])
    wait_for(lambda: drained(rd), timeout=HANG, what="the repeated job done")
    assert rd.hgetall(f"antre:{{intake}}:reg:{ids[0]}") == before
    assert w.metrics()[q("register", "antre_worker_jobs_processed_total")] == 21
    assert w.stop() == 0
    rd.close()


def test_metrics_pass_promtool(redis, workers):
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: install Debian's prometheus package (make test-deps)"
    rd = conftest.Resp(redis.port)
    put_registrations(rd, 3)
    w = workers().start()
    wait_for(lambda: drained(rd), timeout=HANG, what="drained")
    p = subprocess.run([promtool, "check", "metrics"], input=w.metrics_text(), text=True,
                       capture_output=True, timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr
    assert w.stop() == 0


def dead_letters(rd):
    out = []
    for _id, fv in rd("XRANGE", DEAD, "-", "+"):
        out.append({fv[i].decode(): fv[i + 1].decode() for i in range(0, len(fv), 2)})
    return out


def test_failing_and_malformed_jobs_are_dead_lettered(redis, workers):
    rd = conftest.Resp(redis.port)
    missing = uuid.uuid4().hex
    e_missing = rd("XADD", STREAM, "*", "registration_id", missing).decode()
    e_bad = rd("XADD", STREAM, "*", "colour", "blue").decode()
    ok = put_registrations(rd, 2)
    w = workers({"queue.register.max_attempts": 3}).start()
    wait_for(lambda: rd("XLEN", DEAD) == 2 and drained(rd), timeout=HANG,
             what="two dead letters")
    dl = {d["original_id"]: d for d in dead_letters(rd)}
    assert dl[e_missing]["attempts"] == "3", dl
    assert dl[e_missing]["last_error"] == "registration not found", dl
    assert dl[e_missing]["registration_id"] == missing
    assert int(dl[e_missing]["failed_at"]) > 0
    # malformed: at once, with its fields as they were
    assert dl[e_bad]["attempts"] == "1", dl
    assert dl[e_bad]["last_error"].startswith("malformed entry"), dl
    assert dl[e_bad]["colour"] == "blue"
    assert states(rd, ok) == ["accepted", "accepted"]
    assert rd("ZCARD", DELAYED) == 0
    m = w.metrics()
    assert m[q("register", "antre_worker_jobs_dead_lettered_total")] == 2, m
    assert m[q("register", "antre_worker_jobs_failed_total")] == 4, m  # 3 attempts + 1
    assert m[q("register", "antre_worker_jobs_retried_total")] == 2, m
    assert m[q("register", "antre_worker_jobs_processed_total")] == 2, m
    assert w.stop() == 0


def test_sigkill_mid_work_then_another_worker_finishes_everything(redis, workers):
    rd = conftest.Resp(redis.port)
    ids = put_registrations(rd, 300)
    a = workers({"queue.register.rate": 100, "queue.register.visibility_timeout_s": 1}).start()
    wait_for(lambda: 0 < states(rd, ids).count("accepted"), timeout=HANG, what="work started")
    wait_for(lambda: pending_count(rd) > 0, timeout=HANG, what="entries in hand")
    a.kill()
    assert states(rd, ids).count("accepted") < 300
    b = workers({"queue.register.rate": 0, "queue.register.visibility_timeout_s": 1}).start()
    wait_for(lambda: drained(rd), timeout=HANG, what="everything done after the kill")
    assert states(rd, ids) == ["accepted"] * 300
    assert rd("XLEN", STREAM) == 0 and pending_count(rd) == 0
    assert rd("XLEN", DEAD) == 0
    assert b.stop() == 0


def consumers(rd):
    out = []
    for c in rd("XINFO", "CONSUMERS", STREAM, "workers"):
        h = dict(zip(c[::2], c[1::2]))
        out.append((h[b"name"].decode(), h[b"pending"]))
    return sorted(out)


def test_a_dead_workers_consumer_is_removed_once_its_entries_are_reclaimed(redis, workers):
    rd = conftest.Resp(redis.port)
    rd("XGROUP", "CREATE", STREAM, "workers", "0", "MKSTREAM")
    ids = put_registrations(rd, 5)
    # A worker that read three entries and died before finishing them.
    rd("XREADGROUP", "GROUP", "workers", "deadhost:1", "COUNT", 3, "STREAMS", STREAM, ">")
    assert consumers(rd) == [("deadhost:1", 3)]
    w = workers({"queue.register.visibility_timeout_s": 1}).start()
    wait_for(lambda: states(rd, ids) == ["accepted"] * 5, timeout=HANG, what="all accepted")
    # Reclaimed after 1 s idle; removed after 3 s silent with nothing pending.
    wait_for(lambda: "deadhost:1" not in dict(consumers(rd)), timeout=HANG,
             what="dead consumer removed")
    assert "removed the consumer of a dead worker queue=register consumer=deadhost:1" \
        in w.read_log()
    # The live worker's own consumer stays, and keeps working.
    (name, pending), = consumers(rd)
    assert name.endswith(f":{w.proc.pid}") and pending == 0
    more = put_registrations(rd, 2)
    wait_for(lambda: states(rd, more) == ["accepted"] * 2, timeout=HANG, what="still consuming")
    assert w.stop() == 0


def test_drain_rate_holds_across_processes(redis, workers):
    rd = conftest.Resp(redis.port)
    ids = put_registrations(rd, 100)
    t0 = time.monotonic()
    w = workers({"queue.register.rate": 20}).start("-j", "2")
    wait_for(lambda: drained(rd), timeout=HANG, what="100 jobs at 20/s")
    took = time.monotonic() - t0
    assert took >= 4.5, took  # a lower bound only: a slow machine may take longer
    assert states(rd, ids) == ["accepted"] * 100
    assert w.stop() == 0


def test_sigterm_mid_work_exits_0_and_acknowledges_nothing_unfinished(redis, workers):
    rd = conftest.Resp(redis.port)
    ids = put_registrations(rd, 200)
    w = workers({"queue.register.rate": 50}).start()
    wait_for(lambda: states(rd, ids).count("accepted") > 10, timeout=HANG, what="work started")
    w.proc.send_signal(signal.SIGTERM)
    assert w.proc.wait(HANG) == 0
    assert "worker: stopped" in w.read_log()
    left = {fv[1].decode() for _id, fv in rd("XRANGE", STREAM, "-", "+")}
    st = states(rd, ids)
    assert 0 < len(left) < 200
    for rid, s in zip(ids, st):
        # an entry gone from the stream was acknowledged: its work must be done
        assert rid in left or s == "accepted", rid
    # the rest is finished by the next worker
    b = workers({"queue.register.visibility_timeout_s": 1}).start()
    wait_for(lambda: drained(rd), timeout=HANG, what="the rest done")
    assert states(rd, ids) == ["accepted"] * 200
    assert b.stop() == 0


def test_queue_settings_reload_on_sighup(redis, workers):
    rd = conftest.Resp(redis.port)
    ids = put_registrations(rd, 60)
    w = workers({"queue.register.rate": 2}).start()
    time.sleep(1.0)
    assert states(rd, ids).count("accepted") < 20
    w.write_conf({"queue.register.rate": 0})
    w.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: drained(rd), timeout=HANG, what="drained after the rate was lifted")
    assert "configuration reloaded" in w.read_log()
    assert w.stop() == 0
