"""The chaos test (issue 11): registrations and document uploads flow from several client threads
(tests/system/chaos_client.py) while a fault thread kills and pauses Redis, kills gateway
processes and kills and pauses worker processes at random; then, with every process running
and the worker drained, what was acknowledged is checked.

The parts are real: a redis-server started here with AOF on (a SIGKILLed one is started again
by the fault thread on the same directory and port, so acknowledged writes survive), a gateway
with `processes = 2` (its supervisor restarts a killed child), a worker with `-j 2` (the same),
and a downstream (the Sink of test_downstream.py) that answers every registration 201 with a
reference made from its Idempotency-Key and records every delivery.

Invariants checked after the run (each failure names its invariant; all are reported at once):
  registration_lost      every registration id a client was told is in Redis, and was
                         delivered downstream with the NIK the client sent;
  registration_not_final every such registration ended accepted (the sink accepts all);
  nik_locked_out         (issue 11 item 2a/2b) for every NIK a client tried, a last retry by
                         the same session with the same body (and Idempotency-Key, if it had
                         one) gets 202 or a replay, with the id the client was told before;
  upload_lost            every upload acknowledged (PUT 202, tus complete) has a record with a
                         final verdict, its stored file when accepted, and was not rejected
                         `missing_file` (the gateway lost a file it had acknowledged);
  upload_dangling        (item 2c / 4) no upload record is left `processing` (or a tus
                         upload `receiving`) with its spool file gone;
  processed_twice        docs/operations.md, "The downstream", allows a registration to be sent
                         again with the same Idempotency-Key, so a redelivery is counted, not a
                         failure; processed twice means two different bodies for one key, a
                         record whose downstream_ref is not the sink's answer, or two
                         registration ids of one NIK delivered (two accepted records);
  dead_letter            no job ended in a dead-letter stream;
  odd_answer             no answer the client's rules do not expect (a 500, a 422 ...);
  process_crashed        no gateway or worker process died but by the test's SIGKILL, and no
                         sanitizer report is in their logs.

The seed (ANTRE_CHAOS_SEED, printed) fixes every random choice of the clients and the fault
thread; timing still varies, so what is asserted never depends on it. ANTRE_CHAOS_SECONDS sets
the length of the faulty phase (default 40). A summary line is printed: operations by kind and
outcome, faults by kind, lost = N.
"""
import json
import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter, defaultdict

import requests

import conftest
from chaos_client import Applicant
from conftest import Gateway, Resp, wait_for
from photos import drawn_png
from test_downstream import Sink
from test_processes import children_of
from test_worker import Worker

SEED = int(os.environ.get("ANTRE_CHAOS_SEED", "1107"))
SECONDS = float(os.environ.get("ANTRE_CHAOS_SECONDS", "40"))
CLIENTS = 4
TIMEOUT_MS = 300  # [redis] timeout_ms of the gateway and the worker: pauses last longer
DRAIN_S = 120.0   # hang guard of the drain, not a speed requirement
QUEUES = ("register", "upload")
ROOM = {"room.w.max_active": 100000, "room.w.admit_rate_per_min": 600000,
        "room.w.session_ttl_s": 3600, "room.w.redeem_window_s": 300}


def key(kind, ident):
    return f"antre:{{intake}}:{kind}:{ident}"


class AofRedis(conftest.Redis):
    """The test's redis-server with AOF on: a SIGKILLed one started again on the same directory
    keeps every write it acknowledged (with `always` the AOF is written and fsynced before the
    reply is sent; `everysec` may postpone the write behind a slow fsync)."""

    def start(self):
        self.proc = subprocess.Popen(
            [conftest.REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "yes", "--appendfsync", "always",
             "--dir", self.dir, "--daemonize", "no",
             "--logfile", os.path.join(self.dir, "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.ping, timeout=20, what=f"redis on port {self.port}")
        return self


class Faults(threading.Thread):
    """Every 0.3-1.5 s one fault, chosen by weight, done and undone before the next: Redis killed
    (and started again after 0.1-1 s) or paused past timeout_ms; a gateway child killed; a
    worker child killed or paused (up to 5 s: past visibility_timeout_s, so that its jobs are
    taken over while it still holds them). Whatever it paused it resumes, also when stopped
    early."""

    KINDS = {"redis_kill": 2, "redis_pause": 4, "gateway_kill": 2, "worker_kill": 1,
             "worker_pause": 1}

    def __init__(self, redis, gateway, worker, t0):
        super().__init__(daemon=True)
        self.t0, self.log = t0, []
        self.redis, self.gateway, self.worker = redis, gateway, worker
        self.rng = random.Random(f"{SEED}:faults")
        self.stop = threading.Event()
        self.count = Counter()
        self.problems = []

    def run(self):
        kinds, weights = zip(*self.KINDS.items())
        while not self.stop.wait(self.rng.uniform(0.3, 1.5)):
            kind = self.rng.choices(kinds, weights)[0]
            t = time.monotonic() - self.t0
            try:
                getattr(self, kind)()
                self.count[kind] += 1
                self.log.append(f"{kind}@{t:.1f}-{time.monotonic() - self.t0:.1f}")
            except Exception as e:  # noqa: BLE001 (reported by the test)
                self.problems.append(f"{kind}: {e!r}")

    def pause(self, pid, seconds):
        os.kill(pid, signal.SIGSTOP)
        try:
            self.stop.wait(seconds)
        finally:
            os.kill(pid, signal.SIGCONT)

    def redis_kill(self):
        self.redis.proc.kill()
        self.redis.proc.wait()
        time.sleep(self.rng.uniform(0.1, 1.0))
        self.redis.start()

    def redis_pause(self):
        self.pause(self.redis.proc.pid, TIMEOUT_MS / 1000 * self.rng.uniform(1.5, 4.0))

    def kill_child(self, parent, n):
        kids = children_of(parent.proc.pid)
        if len(kids) != n:
            raise AssertionError(f"{len(kids)} children of {parent.proc.pid}, want {n}")
        victim = self.rng.choice(kids)
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: victim not in children_of(parent.proc.pid)
                 and len(children_of(parent.proc.pid)) == n,
                 timeout=20, what=f"child {victim} replaced")

    def gateway_kill(self):
        self.kill_child(self.gateway, 2)

    def worker_kill(self):
        self.kill_child(self.worker, 2)

    def worker_pause(self):
        kids = children_of(self.worker.proc.pid)
        self.pause(self.rng.choice(kids), self.rng.uniform(0.5, 5.0))


def pending(rd, q):
    try:
        return rd("XPENDING", key("q", q), "workers")[0]
    except AssertionError:  # no group yet
        return 0


def scan(rd, pattern):
    keys, cursor = [], b"0"
    while True:
        cursor, batch = rd("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
        keys += [k.decode() for k in batch]
        if cursor == b"0":
            return keys


def drained(rd, rids, uids):
    """The queues are empty, nothing pending or delayed, every registration and acknowledged
    upload final (a missing record is not waited for: the checks report it as lost)."""
    for q in QUEUES:
        if rd("XLEN", key("q", q)) or pending(rd, q) or rd("ZCARD", key("delayed", q)):
            return False
    for r in rids:
        st = rd("HGET", key("reg", r), "state")
        if st not in (b"accepted", b"rejected") and rd("EXISTS", key("reg", r)):
            return False
    return all(rd("HGET", key("upl", u), "state") != b"processing" for u in uids)


class Findings:
    """Invariant failures, grouped by invariant; a few examples of each are shown."""

    def __init__(self):
        self.by = defaultdict(list)

    def add(self, invariant, what):
        self.by[invariant].append(what)

    def report(self):
        lines = []
        for inv, items in sorted(self.by.items()):
            lines.append(f"{inv}: {len(items)}")
            lines += [f"    {x}" for x in items[:8]]
        return "\n".join(lines)


def runs(trail):
    """A trail of (answer, seconds) with repeats folded: "503:redis_unavailable@12.3x3 202:@15.1"
    (the time of the first of a run)."""
    out = []
    for x, t in trail:
        if out and out[-1][0] == x:
            out[-1][2] += 1
        else:
            out.append([x, t, 1])
    return " ".join(f"{x}@{t:.1f}" + (f"x{n}" if n > 1 else "") for x, t, n in out)


def check_registrations(rd, clients, finals, sink, f):
    """Every id told is in Redis, accepted, delivered with its NIK; no NIK locked out; nothing
    processed twice. Returns (ids told, lost)."""
    told, lost = {}, 0
    for c in clients:
        for nik, st in c.niks.items():
            ids = set(st["ids"])
            for rid in ids:
                told[rid] = nik
            if len(ids) > 1:
                f.add("nik_locked_out[one NIK, several ids told]", f"{nik}: {sorted(ids)}")
            final = finals.get(c.idx, {}).get(nik)
            if final in ("202", "replayed"):
                continue
            how = "with Idempotency-Key: item 2b" if st["key"] else "no key: item 2a"
            if st["ids"]:
                f.add(f"nik_locked_out[registered NIK resent, {how}]",
                      f"{nik}: final retry {final}, told {st['ids'][0]} before")
            else:
                f.add(f"nik_locked_out[never told an id, {how}]",
                      f"{nik}: final retry {final}, answers {runs(st['trail'])}")
    entries = sink.entries()
    by_key = defaultdict(list)
    for e in entries:
        by_key[e["key"]].append(e)
    for rid, nik in told.items():
        rec = rd.hgetall(key("reg", rid))
        if not rec:
            lost += 1
            f.add("registration_lost", f"{rid} (NIK {nik}) has no record")
            continue
        if rec.get("state") != "accepted":
            f.add("registration_not_final", f"{rid} state={rec.get('state')}")
        bodies = {e["body"] for e in by_key[rid] if e["status"] == 201}
        if not bodies:
            f.add("registration_lost", f"{rid} (NIK {nik}) never delivered downstream")
        elif any(json.loads(b)["nik"] != nik for b in bodies):
            f.add("registration_lost", f"{rid} delivered with another NIK than {nik}")
        if rec.get("state") == "accepted" and rec.get("downstream_ref") != ref_of(rid):
            f.add("processed_twice", f"{rid} downstream_ref={rec.get('downstream_ref')}")
    keys_of_nik = defaultdict(set)
    for k, es in by_key.items():
        if len({e["body"] for e in es}) > 1:
            f.add("processed_twice", f"{k}: different bodies delivered")
        for e in es:
            if e["status"] == 201:
                keys_of_nik[json.loads(e["body"])["nik"]].add(k)
    for nik, ks in keys_of_nik.items():
        if len(ks) > 1:
            f.add("processed_twice", f"NIK {nik}: {len(ks)} registrations delivered {sorted(ks)}")
    return told, lost


def check_uploads(rd, clients, store, f):
    """Acknowledged uploads have a final verdict and their file; no record dangles. Returns the
    number of acknowledged uploads lost."""
    lost = 0
    acked = {u for c in clients for u in c.uploads}
    for c in clients:
        for uid, (rid, kind, how) in c.uploads.items():
            rec = rd.hgetall(key("upl", uid))
            if not rec:
                lost += 1
                f.add("upload_lost", f"{how} {uid} ({rid}/{kind}) has no record")
            elif rec.get("state") not in ("accepted", "rejected"):
                f.add("upload_lost", f"{how} {uid} left {rec.get('state')}")
            elif rec["state"] == "rejected" and rec.get("reason") == "missing_file":
                lost += 1
                f.add("upload_lost", f"{how} {uid} rejected missing_file: its file is gone")
            elif rec["state"] == "accepted":
                sha = rec.get("sha256", "")
                if not os.path.exists(os.path.join(store, sha[:2], sha + ".jpg")):
                    lost += 1
                    f.add("upload_lost", f"{how} {uid} accepted, stored file {sha} missing")
    for k in scan(rd, key("upl", "*")):
        rec = rd.hgetall(k)
        if rec.get("state") in ("processing", "receiving") and \
                not os.path.exists(rec.get("path", "")):
            ptr = rd("HGET", key("reg", rec.get("registration_id", "")),
                     f"{rec.get('kind')}_upload")
            current = ptr is not None and ptr.decode() == k.rsplit(":", 1)[1]
            f.add("upload_dangling", f"{k} {rec.get('state')} without its file "
                  f"({'current' if current else 'superseded'} upload of its registration; "
                  f"acknowledged: {k.rsplit(':', 1)[1] in acked}) {rec}")
    return lost


def ready(g):
    try:
        return requests.get(g.url("/readyz"), timeout=5).status_code == 200
    except requests.RequestException:
        return False


def ref_of(rid):
    return f"ref-{rid[:16]}"


def test_chaos(workdir, capsys):
    with capsys.disabled():
        print(f"\nchaos: seed={SEED} (ANTRE_CHAOS_SEED) seconds={SECONDS:g}", flush=True)
    spool, store = os.path.join(workdir, "spool"), os.path.join(workdir, "store")
    redis = AofRedis(workdir).start()
    sink = Sink(lambda k, n: (201, {"Content-Type": "application/json"},
                              json.dumps({"reference": ref_of(k)}).encode()))
    g = Gateway(workdir, redis, {**ROOM, "gateway.processes": 2,
                                 "redis.timeout_ms": TIMEOUT_MS, "upload.spool_dir": spool})
    w = Worker(workdir, redis, {
        "redis.timeout_ms": TIMEOUT_MS, "worker.drain_timeout_ms": 2000,
        "worker.photo_threads": 1,
        "downstream.url": sink.url, "downstream.timeout_ms": 1000,
        "downstream.connect_timeout_ms": 500,
        **{f"queue.{q}.{k}": v for q in QUEUES for k, v in
           (("visibility_timeout_s", 3), ("max_attempts", 50), ("backoff_base_ms", 20),
            ("backoff_max_ms", 200), ("rate", 0))},
        "upload.spool_dir": spool, "upload.store_dir": store,
        "upload.min_width": 16, "upload.min_height": 16})
    faults = None
    try:
        g.start()
        w.start("-j", "2")
        wait_for(lambda: len(children_of(g.proc.pid)) == 2 and len(children_of(w.proc.pid)) == 2,
                 timeout=20, what="two gateway and two worker processes")
        wait_for(lambda: not requests.get(g.url("/v1/rooms/w"), timeout=5).json()["stale"],
                 timeout=20, what="fresh room cache")
        t0 = time.monotonic()
        clients = [Applicant(i, SEED, g.url, drawn_png(40 + i, 30 + i), t0)
                   for i in range(CLIENTS)]
        for c in clients:
            c.join(time.monotonic() + 20)

        faults = Faults(redis, g, w, t0)
        stop_at = time.monotonic() + SECONDS
        threads = [threading.Thread(target=c.run, args=(stop_at,), daemon=True)
                   for c in clients]
        faults.start()
        for t in threads:
            t.start()
        faults.stop.wait(max(0.0, stop_at - time.monotonic()))
        faults.stop.set()
        faults.join(60)
        assert not faults.is_alive(), "the fault thread did not stop"
        for t in threads:
            t.join(60)
            assert not t.is_alive(), "a client did not finish its last operation"

        # Everything runs again: Redis, two gateway children, two worker children.
        assert redis.ping()
        wait_for(lambda: len(children_of(g.proc.pid)) == 2 and len(children_of(w.proc.pid)) == 2,
                 timeout=20, what="every process back")
        wait_for(lambda: ready(g), timeout=20, what="gateway ready")

        finals = {}
        fin = [threading.Thread(target=lambda c=c: finals.__setitem__(c.idx, c.final_retries()))
               for c in clients]
        for t in fin:
            t.start()
        for t in fin:
            t.join(120)

        rd = Resp(redis.port)
        rids = {r for c in clients for st in c.niks.values() for r in st["ids"]}
        uids = {u for c in clients for u in c.uploads}
        f = Findings()
        try:
            wait_for(lambda: drained(rd, rids, uids), timeout=DRAIN_S, interval=0.2,
                     what="queues drained and registrations final")
        except AssertionError as e:
            f.add("drain", str(e))
        told, lost = check_registrations(rd, clients, finals, sink, f)
        lost += check_uploads(rd, clients, store, f)
        for q in QUEUES:
            for _id, fv in rd("XRANGE", key("dead", q), "-", "+"):
                d = {fv[i].decode(): fv[i + 1].decode() for i in range(0, len(fv), 2)}
                f.add("dead_letter", f"{q}: {d.get('last_error')} {d}")
        for c in clients:
            for o in c.oddities:
                f.add("odd_answer", o)
        for p in faults.problems:
            f.add("fault_thread", p)
        for p in (g, w):
            for line in p.read_log().splitlines():
                # Only the test kills (SIGKILL): any other death, or a sanitizer's report, is a
                # crash the supervisor would otherwise hide by restarting the process.
                if (" died " in line and "signal=Killed" not in line) or \
                        "Sanitizer" in line or "runtime error:" in line:
                    f.add("process_crashed", line[:300])

        ops, replies = Counter(), Counter()
        for c in clients:
            ops.update(c.ops)
            replies.update(c.replies)
        deliveries = Counter(e["key"] for e in sink.entries() if e["status"] == 201)
        left = len(os.listdir(spool)) if os.path.isdir(spool) else 0
        summary = (
            "chaos: seed=%d ops: %s | replies: %s | faults: %s | registrations told=%d "
            "uploads acked=%d redelivered=%d spool files left=%d | lost = %d" % (
                SEED, ", ".join(f"{k}:{o}={n}" for (k, o), n in sorted(ops.items())),
                ", ".join(f"{k}:{s}={n}" for (k, s), n in sorted(replies.items(), key=str)),
                ", ".join(f"{k}={n}" for k, n in sorted(faults.count.items())),
                len(told), len(uids), sum(1 for n in deliveries.values() if n > 1), left, lost))
        with capsys.disabled():
            print(summary, flush=True)
        rd.close()
        assert not f.by, (f"seed {SEED}: invariants failed\n{f.report()}\n{summary}\n"
                          f"faults (kind@start-end s): {' '.join(faults.log)}")
    finally:
        if faults is not None:
            faults.stop.set()
            faults.join(30)
        for p in (w, g):
            if p.proc and p.proc.poll() is None:
                p.proc.terminate()
                try:
                    p.proc.wait(20)
                except subprocess.TimeoutExpired:
                    p.proc.kill()
                    p.proc.wait()
        for p in (w, g):
            if p.proc:
                p.log.close()
        sink.close()
        redis.stop()
