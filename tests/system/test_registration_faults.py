"""System tests of registrations when Redis stalls past [redis] timeout_ms (issue 11, item 2).

The gateway answers 503 when a script is not answered within timeout_ms, but a stalled Redis
runs the script when it resumes: the write happens after the refusal. These tests make that
happen for real. The request's head goes first, so the session gate's read (at head time) is
answered; then the test's redis-server is stopped with SIGSTOP, the body is sent, the gateway
answers 503 after timeout_ms, and SIGCONT lets Redis read and run the script it was sent. The
retry that follows must settle the outcome within seconds: the same session gets its
registration back (never a locked NIK), and an Idempotency-Key is never stuck in flight.

A last test runs intake.lua's 'claim'/'register' directly on the test's Redis to show the fence:
a claim taken over after its lease leaves the late script nothing to write.
"""
import json
import os
import socket
import time

from conftest import parse_responses, read_all, wait_for
from test_registration import HANG, Api, body, code, join, session_sid, start

TIMEOUT_MS = 300  # [redis] timeout_ms of these tests' gateways
FAST = {"redis.timeout_ms": TIMEOUT_MS}
LUA = os.path.join(os.path.dirname(__file__), "..", "..", "common", "lua", "intake.lua")


def zscores(rd):
    """How many ZSCOREs (the session gate's read) Redis has run."""
    info = rd("INFO", "commandstats").decode()
    for line in info.splitlines():
        if line.startswith("cmdstat_zscore:"):
            return int(line.split("calls=")[1].split(",")[0])
    return 0


def post_across_a_stall(g, redis, rd, session, b, idem=None):
    """POST B as SESSION with Redis stopped between the head (gate answered) and the body;
    Redis is resumed once the gateway has answered. Returns (status, headers, body)."""
    raw = json.dumps(b).encode()
    head = (b"POST /v1/registrations HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Authorization: Bearer " + session.encode() + b"\r\n"
            b"Content-Type: application/json\r\n"
            + (b"Idempotency-Key: " + idem.encode() + b"\r\n" if idem else b"")
            + b"Content-Length: %d\r\n\r\n" % len(raw))
    before = zscores(rd)
    with socket.create_connection(("127.0.0.1", g.port), timeout=HANG) as s:
        s.sendall(head)
        wait_for(lambda: zscores(rd) > before, timeout=HANG, what="the gate's read")
        time.sleep(0.05)  # the gate's answer reaches the gateway
        redis.pause()
        try:
            s.sendall(raw)
            resp = parse_responses(read_all(s, HANG))
            time.sleep(TIMEOUT_MS / 1000)
        finally:
            redis.resume()
    assert len(resp) == 1, resp
    return resp[0]


def retry(fn, until=HANG):
    """Call FN until it answers something else than 503 (the gateway reconnecting)."""
    deadline = time.monotonic() + until
    while True:
        r = fn()
        if r.status_code != 503 or time.monotonic() > deadline:
            return r
        time.sleep(0.05)


def test_same_session_same_nik_after_a_timed_out_write_gets_its_registration(make_gateway,
                                                                              redis):
    g, api, rd = start(make_gateway, redis, FAST)
    first = api.post(body())  # loads the script, so the stalled call is one EVALSHA
    assert first.status_code == 202, first.text
    b = body()
    st, _hd, bd = post_across_a_stall(g, redis, rd, api.session, b)
    assert st == 503, (st, bd)
    # Redis ran the write when it resumed: the registration exists, though the applicant
    # never heard its id.
    wait_for(lambda: len(rd.registered_ids()) == 2, timeout=HANG, what="the late write")
    rid = rd.registered_ids()[-1]
    assert rd.hgetall(f"antre:{{intake}}:reg:{rid}")["owner"] == session_sid(api.session)

    # The same session sends the same NIK again: its registration, as a replay (not 409).
    t0 = time.monotonic()
    r = retry(lambda: api.post(b))
    assert r.status_code == 202, r.text
    assert r.headers.get("Idempotent-Replayed") == "true", r.headers
    assert r.json() == {"id": rid, "status_url": f"/v1/registrations/{rid}"}, r.text
    assert time.monotonic() - t0 < 5
    assert api.status(rid).status_code == 200
    # Again, in English, and with other details: still the same registration, nothing written.
    r = api.post(body(nik=b["nik"], name="Siti Rahma"), en=True)
    assert (r.status_code, r.json()["id"]) == (202, rid), r.text
    assert rd.registered_ids().count(rid) == 1 and len(rd.registered_ids()) == 2

    # Another session never learns the id: 409 duplicate_nik, as before.
    other = Api(g, join(g))
    for en in (False, True):
        r = other.post(b, en=en)
        assert (r.status_code, code(r)) == (409, "duplicate_nik"), r.text
        assert rid not in r.text and "Idempotent-Replayed" not in r.headers
    assert len(rd.registered_ids()) == 2
    rd.close()


def test_idempotency_claim_of_a_timed_out_request_is_settled_within_seconds(make_gateway,
                                                                          redis):
    g, api, rd = start(make_gateway, redis, FAST)
    first = api.post(body(), idem="warm")
    assert first.status_code == 202, first.text
    b = body()
    st, _hd, bd = post_across_a_stall(g, redis, rd, api.session, b, idem="k-stall")
    assert st == 503, (st, bd)
    raw = json.dumps(b).encode()

    # The retry with the same key and body: a registration within seconds, never a minute of
    # 409 idempotency_in_flight.
    t0 = time.monotonic()
    deadline = t0 + 5
    while True:
        r = api.post(None, raw=raw, idem="k-stall")
        if r.status_code == 202 or time.monotonic() > deadline:
            break
        assert r.status_code in (409, 503), r.text
        time.sleep(0.1)
    assert r.status_code == 202, (r.status_code, r.text, time.monotonic() - t0)
    rid = r.json()["id"]
    assert rd.registered_ids()[-1] == rid and len(rd.registered_ids()) == 2
    # From now on the key replays that answer.
    again = api.post(None, raw=raw, idem="k-stall")
    assert again.status_code == 202 and again.json() == r.json(), again.text
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert len(rd.registered_ids()) == 2
    rd.close()


def test_a_late_register_after_a_takeover_writes_nothing(redis, rd):
    """intake.lua on its own: request A claims, stalls; B finds A's claim within the lease
    (in flight), then after it (takes over), registers; A's late 'register' is fenced."""
    with open(LUA) as f:
        src = f.read()
    idem, nik, stream = "antre:{intake}:idem:o:k", "antre:{intake}:nik:x", "antre:{intake}:q:r"
    a, b_ = "a" * 32, "b" * 32

    def claim(token, now):
        return rd("EVAL", src, 1, idem, "claim", "ab12", 3600, token, now, 1200)

    def register(token):
        rec = f"antre:{{intake}}:reg:{token}"
        return rd("EVAL", src, 4, idem, nik, rec, stream, "register", "ab12", 3600, token,
                  f'{{"id":"{token}"}}', "dup", 2, "registration_id", token, "owner", "o")

    assert claim(a, 1_000_000) == [b"claimed"]
    assert claim(b_, 1_000_500) == [b"inflight"]           # within A's lease
    assert claim(b_, 1_001_300) == [b"claimed", b"over"]   # past it: B's now
    assert register(a) == [b"fenced"]                      # A's late script
    assert rd("EXISTS", nik, f"antre:{{intake}}:reg:{a}", stream) == 0
    assert register(b_) == [b"created"]
    assert rd("GET", nik) == b_.encode()
    assert rd("GET", idem).decode() == f'done:ab12:202:{{"id":"{b_}"}}'
    assert register(a) == [b"fenced"]
    assert claim(a, 1_009_000) == [b"replay", b"202", f'{{"id":"{b_}"}}'.encode()]
    # A release only drops the releasing request's own pending claim.
    rd("SET", idem, f"pending:ab12:{b_}:5", "EX", 60)
    rd("EVAL", src, 1, idem, "release", a)
    assert rd("EXISTS", idem) == 1
    rd("EVAL", src, 1, idem, "release", b_)
    assert rd("EXISTS", idem) == 0
