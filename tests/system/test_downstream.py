"""System tests of registrations forwarded downstream (issue 8, "Registrations"): a real local
HTTP server stands for the civil registry, with real Redis, real antre-worker processes and,
where the applicant's checklist matters, a real gateway.

The downstream (Sink) is Python's ThreadingHTTPServer in a thread of the test. It records every
request it receives (arrival time, Idempotency-Key, headers, body, the status it answered) and
answers through a function the test sets, given the key and how many requests for that key came
before. So what the tests assert is what the downstream saw: which keys, how often each got a
2xx, how fast requests arrived, and whether the signature verifies. Time bounds are hang guards,
except where a test asserts a delay the worker must respect (Retry-After) or a rate it must not
exceed.
"""
import hashlib
import hmac
import http.server
import json
import os
import threading
import time
from email.utils import formatdate

import pytest

import conftest
from conftest import wait_for
from test_registration import accepted, body, start
from test_worker import DEAD, drained, put_registrations, q, states, workers  # noqa: F401

HANG = 60.0
KEY = bytes(range(32))


class Sink:
    """The downstream: answer(key, n) -> (status, headers dict, body bytes) or None to hang
    (never answer; the connection is dropped once release_hung() is called)."""

    def __init__(self, answer):
        self.answer = answer
        self.lock = threading.Lock()
        self.log = []  # dicts: t, key, status, headers, body
        self.hung = threading.Event()
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                t = time.monotonic()
                n = int(self.headers.get("Content-Length", "0"))
                data = self.rfile.read(n)
                key = self.headers.get("Idempotency-Key", "")
                with sink.lock:
                    before = sum(1 for e in sink.log if e["key"] == key)
                    entry = {"t": t, "wall": time.time(), "key": key, "status": None,
                             "headers": dict(self.headers), "body": data}
                    sink.log.append(entry)
                out = sink.answer(key, before)
                if out is None:
                    sink.hung.wait(HANG)
                    self.close_connection = True
                    return
                status, headers, payload = out
                entry["status"] = status
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}/registrations"

    def release_hung(self):
        self.hung.set()

    def close(self):
        self.hung.set()
        self.server.shutdown()
        self.server.server_close()

    def entries(self, key=None):
        with self.lock:
            return [dict(e) for e in self.log if key is None or e["key"] == key]

    def ok_count(self, key):
        return sum(1 for e in self.entries(key) if e["status"] and 200 <= e["status"] < 300)


@pytest.fixture
def sinks():
    made = []

    def factory(answer):
        s = Sink(answer)
        made.append(s)
        return s
    yield factory
    for s in made:
        s.close()


def ok(reference=None):
    payload = json.dumps({"reference": reference} if reference else {}).encode()
    return 201, {"Content-Type": "application/json"}, payload


def keyfile(workdir):
    path = os.path.join(workdir, "downstream.key")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"# shared with the downstream\nreg1 {KEY.hex()}\n")
    return path


def verify(entry, key=KEY, tolerance_s=300):
    """Check the X-Antre-Signature of ENTRY the way a downstream would (docs/operations.md)."""
    sig = entry["headers"].get("X-Antre-Signature", "")
    parts = dict(p.split("=", 1) for p in sig.split(","))
    assert set(parts) == {"t", "v1"}, sig
    t = parts["t"]
    assert t.isdigit() and abs(int(t) - entry["wall"]) <= tolerance_s, (t, entry["wall"])
    want = hmac.new(key, t.encode() + b"." + entry["body"], hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, parts["v1"])


def reg_key(rid):
    return f"antre:{{intake}}:reg:{rid}"


def downstream(sink, **more):
    s = {"downstream.url": sink.url, "downstream.timeout_ms": 2000,
         "downstream.connect_timeout_ms": 1000, "queue.register.max_attempts": 100}
    s.update(more)
    return s


def test_delivered_signed_with_idempotency_key(make_gateway, redis, workdir, workers, sinks):
    g, api, rd = start(make_gateway, redis)
    ids = [accepted(api, body()) for _ in range(5)]
    sink = sinks(lambda key, n: ok(f"DUK-{key[:8]}"))
    w = workers(downstream(sink, **{"downstream.signing_key_file": keyfile(workdir)})).start()
    wait_for(lambda: drained(rd), timeout=HANG, what="5 registrations delivered")
    assert sorted(e["key"] for e in sink.entries()) == sorted(ids)
    for rid in ids:
        (e,) = sink.entries(rid)
        assert e["headers"]["Content-Type"] == "application/json"
        assert verify(e), e["headers"]
        doc = json.loads(e["body"])
        rec = rd.record(rid)  # personal fields opened: they are stored sealed
        assert doc["id"] == rid
        for f in ("nik", "kk", "name", "birth_date", "email", "phone"):
            assert doc[f] == rec[f], (f, doc, rec)
        assert doc["created_at"] == int(rec["created_at"])
        assert doc["birth_date_mismatch_confirmed"] is False
        # bookkeeping stays home
        assert not {"owner", "room", "state", "email_state", "phone_state"} & set(doc), doc
        # a tampered body or another key does not verify
        assert not verify(dict(e, body=e["body"].replace(b'"id"', b'"Id"')))
        assert not verify(e, key=bytes(32))
        assert rec["state"] == "accepted" and rec["accepted_by"] == rid, rec
        assert rec["downstream_ref"] == f"DUK-{rid[:8]}", rec
        assert api.status(rid).json()["checks"]["registry"]["state"] == "accepted"
    log = w.read_log()
    assert KEY.hex() not in log and sink.url not in log
    assert w.stop() == 0


def max_in_window(times, window=1.0):
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


def test_outage_503_then_every_registration_once_at_the_rate(redis, workers, sinks):
    rd = conftest.Resp(redis.port)
    n, rate = 100, 20
    ids = put_registrations(rd, n)
    recover_at = [None]

    def answer(key, before):
        if time.monotonic() < recover_at[0]:
            return 503, {"Content-Type": "application/json"}, b'{"error":"maintenance"}'
        return ok()
    recover_at[0] = time.monotonic() + 10.0
    sink = sinks(answer)
    w = workers(downstream(sink, **{"queue.register.rate": rate,
                                    "queue.register.backoff_base_ms": 100,
                                    "queue.register.backoff_max_ms": 2000})).start()
    wait_for(lambda: drained(rd), timeout=HANG, what="every registration delivered")
    es = sink.entries()
    assert any(e["status"] == 503 for e in es), "the outage was seen"
    for rid in ids:
        assert sink.ok_count(rid) == 1, (rid, [e["status"] for e in sink.entries(rid)])
        assert all(e["t"] >= recover_at[0] or e["status"] == 503 for e in sink.entries(rid))
    assert states(rd, ids) == ["accepted"] * n
    assert rd("XLEN", DEAD) == 0
    # The GCRA allows a burst of 1 + rate/20 on top of the rate; two more for the jitter
    # between a job's start and its request reaching the sink on a busy machine.
    peak = max_in_window([e["t"] for e in es])
    assert peak <= rate + 2 + 2, (peak, len(es))
    # and over the whole recovery, on average, the rate itself (5 % for the clocks)
    oks = sorted(e["t"] for e in es if e["status"] == 201)
    assert (len(oks) - 1) / (oks[-1] - oks[0]) <= rate * 1.05, (len(oks), oks[-1] - oks[0])
    m = w.metrics()
    assert m[q("register", "antre_worker_jobs_processed_total")] == n
    assert m[q("register", "antre_worker_jobs_retried_total")] >= 1
    assert w.stop() == 0


def test_429_retry_after_is_honoured(redis, workers, sinks):
    rd = conftest.Resp(redis.port)
    secs, date = put_registrations(rd, 2)

    def answer(key, before):
        if before == 0 and key == secs:
            return 429, {"Retry-After": "2"}, b""
        if before == 0 and key == date:
            return 503, {"Retry-After": formatdate(time.time() + 3, usegmt=True)}, b""
        return ok()
    sink = sinks(answer)
    w = workers(downstream(sink)).start()
    wait_for(lambda: drained(rd), timeout=HANG, what="both delivered")
    a = sink.entries(secs)
    assert [e["status"] for e in a] == [429, 201], a
    assert a[1]["t"] - a[0]["t"] >= 2.0, a[1]["t"] - a[0]["t"]
    b = sink.entries(date)
    assert [e["status"] for e in b] == [503, 201], b
    # an HTTP date has whole seconds: 3 s ahead is at least 2 s ahead
    assert b[1]["t"] - b[0]["t"] >= 2.0, b[1]["t"] - b[0]["t"]
    assert states(rd, [secs, date]) == ["accepted", "accepted"]
    assert w.stop() == 0


def test_4xx_rejects_with_the_downstreams_reason_in_the_checklist(make_gateway, redis, workers,
                                                                   sinks):
    g, api, rd = start(make_gateway, redis)
    with_reason, bare, nested = (accepted(api, body()) for _ in range(3))
    reason = "NIK tidak terdaftar / NIK not found"

    def answer(key, before):
        if key == with_reason:
            return 422, {"Content-Type": "application/json"}, json.dumps(
                {"reason": reason + "\n\x1b[31m" + "x" * 500}).encode()
        if key == nested:
            return 409, {"Content-Type": "application/json"}, b'{"error":{"message":"duplicate"}}'
        return 400, {"Content-Type": "text/plain"}, b"bad"
    sink = sinks(answer)
    w = workers(downstream(sink)).start()
    wait_for(lambda: drained(rd), timeout=HANG, what="three rejected")
    for rid in (with_reason, bare, nested):
        assert len(sink.entries(rid)) == 1, "a rejection is not retried"
        assert rd.hgetall(reg_key(rid))["state"] == "rejected"
    rec = rd.hgetall(reg_key(with_reason))
    got = rec["reject_reason"]
    assert got.startswith(reason + " [31m") and len(got.encode()) <= 200, got
    assert "\n" not in got and "\x1b" not in got
    assert rec["reject_status"] == "422"
    assert rd.hgetall(reg_key(bare))["reject_reason"] == "refused by the registry (HTTP 400)"
    assert rd.hgetall(reg_key(nested))["reject_reason"] == "duplicate"
    for en in (False, True):
        j = api.status(with_reason, en=en).json()
        c = j["checks"]["registry"]
        assert c["state"] == "rejected" and c["reason"] == got, c
        assert got in c["hint"] and with_reason in c["hint"], c
        assert c["hint"] in j["next_steps"]
        assert ("did not accept" in c["hint"]) == en, c
    m = w.metrics()
    assert m[q("register", "antre_worker_jobs_processed_total")] == 3
    assert m[q("register", "antre_worker_jobs_failed_total")] == 0
    assert w.stop() == 0


def test_a_downstream_that_never_answers_times_out_and_is_retried(redis, workers, sinks):
    rd = conftest.Resp(redis.port)
    ids = put_registrations(rd, 3)
    answering = threading.Event()
    sink = sinks(lambda key, n: ok() if answering.is_set() else None)
    w = workers(downstream(sink, **{"downstream.timeout_ms": 300,
                                    "queue.register.backoff_base_ms": 100,
                                    "queue.register.backoff_max_ms": 400})).start()
    wait_for(lambda: all(len(sink.entries(r)) >= 2 for r in ids), timeout=HANG,
             what="every job retried after a timeout")
    assert states(rd, ids) == ["", "", ""]
    assert "downstream: timeout" in w.read_log()
    answering.set()
    sink.release_hung()
    wait_for(lambda: drained(rd), timeout=HANG, what="delivered once it answers")
    assert states(rd, ids) == ["accepted"] * 3
    for rid in ids:
        assert sink.ok_count(rid) == 1
    assert w.metrics()[q("register", "antre_worker_jobs_retried_total")] >= 6
    assert w.stop() == 0


def test_an_unreachable_downstream_is_retried_then_dead_lettered(redis, workers, sinks):
    rd = conftest.Resp(redis.port)
    (rid,) = put_registrations(rd, 1)
    port = conftest.free_port()
    w = workers({"downstream.url": f"http://127.0.0.1:{port}/x",
                 "queue.register.max_attempts": 3}).start()
    wait_for(lambda: rd("XLEN", DEAD) == 1, timeout=HANG, what="dead-lettered")
    (_id, fv), = rd("XRANGE", DEAD, "-", "+")
    d = {fv[i].decode(): fv[i + 1].decode() for i in range(0, len(fv), 2)}
    assert d["last_error"].startswith("downstream: connect failed"), d
    assert d["attempts"] == "3"
    assert states(rd, [rid]) == [""]
    assert w.stop() == 0
