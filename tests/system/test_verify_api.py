"""System tests of verification codes, gateway side (issue 9): POST
/v1/registrations/{id}/verifications, POST /v1/verifications/{id}/confirm and POST
/v1/registrations/recover, with a real redis-server and a real gateway.

No worker runs here: the tests play it as docs/design.md ("Verification codes") says the worker
does, reading the verification record from Redis, making a code, writing only its MAC
(HMAC-SHA256 under a key derived from the key file's pepper, bound to the verification id) and
the state `sent`. Time bounds are hang guards; the timing test prints its figures and asserts
nothing a slow machine could break.
"""
import hashlib
import hmac
import json
import secrets
import statistics
import time

import requests

import conftest
import seal_ref
from test_registration import ROOM, HANG, body, join, nik_for

VERIFY_STREAM = "antre:{intake}:q:verify"


def ver_key(vid):
    return f"antre:{{intake}}:ver:{vid}"


def reg_key(rid):
    return f"antre:{{intake}}:reg:{rid}"


class Resp(conftest.Resp):
    def hash(self, key):
        v = self("HGETALL", key) or []
        return {v[i].decode(): v[i + 1].decode() for i in range(0, len(v), 2)}

    def jobs(self):
        out = []
        for _eid, f in self("XRANGE", VERIFY_STREAM, "-", "+") or []:
            out.append([x.decode() for x in f])
        return out


class Client:
    """One applicant's session on gateway G."""

    def __init__(self, g, en=False):
        self.g = g
        self.s = requests.Session()
        self.s.headers["Authorization"] = f"Bearer {join(g)}"
        if en:
            self.s.headers["Accept-Language"] = "en"

    def post(self, path, doc):
        return self.s.post(self.g.url(path), data=json.dumps(doc),
                           headers={"Content-Type": "application/json"}, timeout=HANG)

    def register(self, **over):
        r = self.post("/v1/registrations", body(**over))
        assert r.status_code == 202, r.text
        return r.json()["id"]

    def ask(self, rid, channel="email"):
        return self.post(f"/v1/registrations/{rid}/verifications", {"channel": channel})

    def confirm(self, vid, code):
        return self.post(f"/v1/verifications/{vid}/confirm", {"code": code})

    def recover(self, nik, channel="email"):
        return self.post("/v1/registrations/recover", {"nik": nik, "channel": channel})

    def status(self, rid):
        return self.s.get(self.g.url(f"/v1/registrations/{rid}"), timeout=HANG)


def code_of(r):
    try:
        return r.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


def pepper(g):
    with open(g.settings["gateway.secret_file"]) as f:
        for line in f:
            p = line.split("#")[0].split()
            if len(p) == 2 and p[0] == "pepper":
                return bytes.fromhex(p[1])
    raise AssertionError("no pepper in the key file")


def mac(g, vid, code):
    key = hmac.new(pepper(g), b"antre/verification-code/v1", hashlib.sha256).digest()
    return hmac.new(key, f"{vid}:{code}".encode(), hashlib.sha256).hexdigest()


def play_worker(g, rd, vid, code=None):
    """Send verification VID as the worker does: a code, its MAC and `sent` in the record, the
    registration's contact `code_sent`. Returns the code."""
    rec = rd.hash(ver_key(vid))
    assert rec["state"] == "queued", rec
    code = code or f"{secrets.randbelow(10**6):06d}"
    now = str(int(time.time() * 1000))
    rd("HSET", ver_key(vid), "code_mac", mac(g, vid, code), "state", "sent", "sent_ms", now,
       "provider_id", "test")
    if rec["registration_id"]:
        contact = "phone" if rec["channel"] == "sms" else "email"
        rd("HSET", reg_key(rec["registration_id"]), f"{contact}_state", "code_sent",
           f"{contact}_sent_ms", now)
    return code


def wrong(code):
    return f"{(int(code) + 1) % 10**6:06d}"


def start(make_gateway, redis, **verify):
    s = dict(ROOM)
    s.update({"programme.sender_name": "Kartu Prakerja"})
    s.update({f"verify.{k}": v for k, v in verify.items()})
    g = make_gateway(s)
    return g, Resp(redis.port)


# --- asking for a code and confirming it -----------------------------------------------------

def test_create_and_confirm(make_gateway, redis):
    g, rd = start(make_gateway, redis)
    a = Client(g, en=True)
    rid = a.register(email="siti.rahma@gmail.com", phone="081234567890")
    r = a.ask(rid, "email")
    assert r.status_code == 202, r.text
    ans = r.json()
    vid = ans["verification_id"]
    assert ans == {"verification_id": vid, "channel": "email", "expires_in_s": 600,
                   "resend_after_s": 60, "destination": "s***@gmail.com"}, ans
    rec = rd.hash(ver_key(vid))
    assert rec["state"] == "queued" and rec["purpose"] == "verify", rec
    assert rec["registration_id"] == rid and rec["channel"] == "email", rec
    assert seal_ref.open_field(g.settings["gateway.secret_file"], vid, "destination",
                               rec["destination"]) == "siti.rahma@gmail.com"  # stored sealed
    assert rec["masked"] == "s***@gmail.com"
    assert rec["lang"] == "en" and rec["attempts"] == "0" and "code_mac" not in rec, rec
    assert int(rec["expires_ms"]) - int(rec["created_ms"]) == 600000, rec
    ttl = rd("PTTL", ver_key(vid))
    assert 600000 + 86400000 - 60000 < ttl <= 600000 + 86400000, ttl
    reg = rd.hash(reg_key(rid))
    assert reg["email_verification"] == vid and reg["email_state"] == "sending", reg
    # The job entry: the contract's three fields, nothing else.
    assert rd.jobs() == [["verification_id", vid, "registration_id", rid, "channel", "email"]]
    ck = a.status(rid).json()["checks"]["email"]
    assert ck["state"] == "sending" and ck["destination"] == "s***@gmail.com", ck

    code = play_worker(g, rd, vid)
    ck = a.status(rid).json()["checks"]["email"]
    assert ck["state"] == "code_sent" and ck["sent_at"].endswith("Z"), ck
    assert "s***@gmail.com" in ck["hint"] and "spam" in ck["hint"], ck
    assert "Kartu Prakerja" in ck["hint"], ck

    r = a.confirm(vid, code)
    assert r.status_code == 200, r.text
    assert r.json() == {"verification_id": vid, "state": "verified", "registration_id": rid}
    rec = rd.hash(ver_key(vid))
    assert rec["state"] == "verified" and "code_mac" not in rec, rec
    st = a.status(rid).json()
    assert st["checks"]["email"]["state"] == "verified", st
    assert st["checks"]["phone"]["state"] == "unverified", st
    # The code is burned: it does not confirm twice.
    r = a.confirm(vid, code)
    assert r.status_code == 409 and code_of(r) == "already_verified", r.text
    # Codes never in the log.
    assert code not in g.read_log()


def test_sms_masks_the_number_and_send_failed_explains(make_gateway, redis):
    g, rd = start(make_gateway, redis)
    a = Client(g)
    rid = a.register(phone="081234567890")
    r = a.ask(rid, "sms")
    assert r.status_code == 202, r.text
    assert r.json()["destination"] == "+62 812 **** 7890", r.text
    vid = r.json()["verification_id"]
    assert rd.hash(reg_key(rid))["phone_state"] == "sending"
    # Not sent yet: confirming says so instead of counting a wrong code.
    r = a.confirm(vid, "123456")
    assert r.status_code == 409 and code_of(r) == "code_not_sent", r.text
    assert rd.hash(ver_key(vid))["attempts"] == "0"
    # The worker gives up: the checklist gives the reason in plain words.
    rd("HSET", ver_key(vid), "state", "send_failed", "send_error", "nomor tidak aktif")
    rd("HSET", reg_key(rid), "phone_state", "send_failed", "phone_error", "nomor tidak aktif")
    ck = a.status(rid).json()["checks"]["phone"]
    assert ck["state"] == "send_failed" and ck["reason"] == "nomor tidak aktif", ck
    assert "nomor tidak aktif" in ck["hint"] and "+62 812 **** 7890" in ck["hint"], ck
    r = a.confirm(vid, "123456")
    assert r.status_code == 409 and code_of(r) == "code_not_sent", r.text
    assert r.json()["error"]["reason"] == "nomor tidak aktif", r.text


def test_bad_requests(make_gateway, redis):
    g, rd = start(make_gateway, redis)
    a = Client(g)
    rid = a.register()
    r = a.ask(rid, "fax")
    assert r.status_code == 422 and r.json()["error"]["field"] == "channel", r.text
    r = a.s.post(g.url(f"/v1/registrations/{rid}/verifications"), data="{", timeout=HANG)
    assert r.status_code == 400 and code_of(r) == "invalid_json", r.text
    r = a.post(f"/v1/verifications/{'0' * 32}/confirm", {"code": 123456})
    assert r.status_code == 422 and r.json()["error"]["field"] == "code", r.text
    r = a.ask("nothex", "email")
    assert r.status_code == 404 and code_of(r) == "unknown_registration", r.text
    assert rd.jobs() == []


def test_wrong_code_until_too_many_attempts(make_gateway, redis):
    g, rd = start(make_gateway, redis, max_attempts=3)
    a = Client(g)
    rid = a.register()
    vid = a.ask(rid).json()["verification_id"]
    code = play_worker(g, rd, vid)
    for left in (2, 1):
        r = a.confirm(vid, wrong(code))
        assert r.status_code == 422 and code_of(r) == "wrong_code", r.text
        assert r.json()["error"]["attempts_left"] == left, r.text
    r = a.confirm(vid, wrong(code))
    assert r.status_code == 429 and code_of(r) == "too_many_attempts", r.text
    assert int(r.headers["Retry-After"]) > 0
    conftest.wait_for(lambda: rd.hash(ver_key(vid))["state"] == "burned", what="burned")
    rec = rd.hash(ver_key(vid))
    assert "code_mac" not in rec and rec["burned_by"] == "attempts", rec
    # Burned: even the right code no longer confirms.
    r = a.confirm(vid, code)
    assert r.status_code == 429 and code_of(r) == "too_many_attempts", r.text
    assert rd.hash(reg_key(rid))["email_state"] != "verified"


def test_expired_code(make_gateway, redis):
    g, rd = start(make_gateway, redis, code_ttl_s=2)
    a = Client(g)
    rid = a.register()
    r = a.ask(rid)
    assert r.json()["expires_in_s"] == 2
    vid = r.json()["verification_id"]
    code = play_worker(g, rd, vid)
    ck = a.status(rid).json()["checks"]["email"]
    assert ck["state"] == "code_sent" and ck["reason"] is None, ck
    time.sleep(2.2)
    r = a.confirm(vid, code)
    assert r.status_code == 410 and code_of(r) == "code_expired", r.text
    assert rd.hash(ver_key(vid))["attempts"] == "0"
    # The checklist says so too, and what to do.
    ck = a.status(rid).json()["checks"]["email"]
    assert ck["state"] == "code_sent" and ck["reason"] == "code_expired", ck
    assert "kedaluwarsa" in ck["hint"], ck


def test_resend_throttles(make_gateway, redis):
    g, rd = start(make_gateway, redis, resend_interval_s=2, max_sends_per_day=3)
    a = Client(g)
    rid = a.register(email="dewi@example.com")
    assert a.ask(rid).status_code == 202
    r = a.ask(rid)
    assert r.status_code == 429 and code_of(r) == "resend_too_soon", r.text
    wait = int(r.headers["Retry-After"])
    assert 1 <= wait <= 2 and r.json()["error"]["retry_after_s"] == wait, r.text
    # The same address from another registration is throttled too (per destination).
    b = Client(g)
    rid_b = b.register(email="dewi@example.com")
    r = b.ask(rid_b)
    assert r.status_code == 429 and code_of(r) == "resend_too_soon", r.text
    # Its phone is another destination, and its registration has sent nothing yet.
    assert b.ask(rid_b, "sms").status_code == 202
    for _ in range(2):
        time.sleep(wait + 0.1)
        r = a.ask(rid)
        assert r.status_code == 202, r.text
    time.sleep(2.1)
    r = a.ask(rid)
    assert r.status_code == 429 and code_of(r) == "send_limit", r.text
    # Three a day: the next one in a third of a day, less the few seconds spent.
    assert 28000 < int(r.headers["Retry-After"]) <= 28800, r.headers
    assert len(rd.jobs()) == 4


def test_a_new_code_replaces_the_old(make_gateway, redis):
    g, rd = start(make_gateway, redis, resend_interval_s=1)
    a = Client(g)
    rid = a.register()
    v1 = a.ask(rid).json()["verification_id"]
    c1 = play_worker(g, rd, v1)
    time.sleep(1.05)
    r = a.ask(rid)
    assert r.status_code == 202, r.text
    v2 = r.json()["verification_id"]
    assert v2 != v1
    rec = rd.hash(ver_key(v1))
    assert rec["state"] == "burned" and rec["burned_by"] == "replaced", rec
    assert "code_mac" not in rec
    assert rd.hash(reg_key(rid))["email_verification"] == v2
    r = a.confirm(v1, c1)
    assert r.status_code == 410 and code_of(r) == "code_replaced", r.text
    c2 = play_worker(g, rd, v2)
    assert a.confirm(v2, c2).status_code == 200
    assert a.status(rid).json()["checks"]["email"]["state"] == "verified"


def test_owner_only(make_gateway, redis):
    g, rd = start(make_gateway, redis)
    a, b = Client(g), Client(g)
    rid = a.register()
    r = b.ask(rid)
    assert r.status_code == 403 and code_of(r) == "not_owner", r.text
    vid = a.ask(rid).json()["verification_id"]
    code = play_worker(g, rd, vid)
    # Someone else's verification answers as an unknown one, and costs its owner nothing.
    r = b.confirm(vid, code)
    assert r.status_code == 404 and code_of(r) == "unknown_verification", r.text
    r = b.confirm(secrets.token_hex(16), code)
    assert r.status_code == 404 and code_of(r) == "unknown_verification", r.text
    assert rd.hash(ver_key(vid))["attempts"] == "0"
    assert a.confirm(vid, code).status_code == 200
    assert len(rd.jobs()) == 1


# --- recovery ----------------------------------------------------------------------------------

def test_recovery_end_to_end(make_gateway, redis):
    g, rd = start(make_gateway, redis, resend_interval_s=1)
    old = Client(g)
    nik = nik_for("1990-05-12")
    rid = old.register(nik=nik, email="budi@example.com")
    old_vid = old.ask(rid).json()["verification_id"]
    old_code = play_worker(g, rd, old_vid)
    # The session is lost; a new one cannot register the same NIK.
    new = Client(g)
    r = new.post("/v1/registrations", body(nik=nik))
    assert r.status_code == 409 and code_of(r) == "duplicate_nik", r.text
    assert new.status(rid).status_code == 403
    r = new.recover(nik, "email")
    assert r.status_code == 202, r.text
    ans = r.json()
    vid = ans["verification_id"]
    assert set(ans) == {"verification_id", "channel", "expires_in_s", "resend_after_s"}, ans
    rec = rd.hash(ver_key(vid))
    assert rec["purpose"] == "recover" and rec["registration_id"] == rid, rec
    assert seal_ref.open_field(g.settings["gateway.secret_file"], vid, "destination",
                               rec["destination"]) == "budi@example.com", rec
    assert rd.jobs()[-1] == ["verification_id", vid, "registration_id", rid, "channel", "email"]
    # It is the contact's current verification now (the worker sends only that one), and the
    # old session's code is replaced.
    reg = rd.hash(reg_key(rid))
    assert reg["email_verification"] == vid and reg["email_state"] == "sending", reg
    assert rd.hash(ver_key(old_vid))["burned_by"] == "replaced"
    code = play_worker(g, rd, vid)
    # The old session cannot confirm the new session's recovery.
    assert old.confirm(vid, code).status_code == 404
    r = new.confirm(vid, code)
    assert r.status_code == 200, r.text
    assert r.json()["registration_id"] == rid, r.text
    r = new.status(rid)
    assert r.status_code == 200 and r.json()["id"] == rid, r.text
    # The code reached the address on file: that address is verified too.
    assert r.json()["checks"]["email"]["state"] == "verified", r.text
    r = old.status(rid)
    assert r.status_code == 403 and code_of(r) == "not_owner", r.text
    # The old session's code no longer confirms; only the new owner asks for codes.
    r = old.confirm(old_vid, old_code)
    assert r.status_code == 410 and code_of(r) == "code_replaced", r.text
    assert old.ask(rid).status_code == 403
    time.sleep(1.05)
    assert new.ask(rid, "sms").status_code == 202


def test_recovery_answers_alike_for_an_unknown_nik(make_gateway, redis):
    g, rd = start(make_gateway, redis)
    owner = Client(g)
    nik = nik_for("1990-05-12")
    owner.register(nik=nik)
    c = Client(g)
    known = c.recover(nik)
    unknown = c.recover(nik_for("1990-05-12"))
    assert known.status_code == unknown.status_code == 202, (known.text, unknown.text)
    k, u = known.json(), unknown.json()
    assert set(k) == set(u) and k["expires_in_s"] == u["expires_in_s"], (k, u)
    assert k["resend_after_s"] == u["resend_after_s"] and k["channel"] == u["channel"], (k, u)
    assert "destination" not in k
    # The decoy is written but never sent: one job, for the real one.
    assert [j[1] for j in rd.jobs()] == [k["verification_id"]]
    decoy = rd.hash(ver_key(u["verification_id"]))
    assert decoy["purpose"] == "recover" and decoy["registration_id"] == "", decoy
    # A guess at either answers the same.
    play_worker(g, rd, k["verification_id"], code="111111")
    for v in (k["verification_id"], u["verification_id"]):
        r = c.confirm(v, "222222")
        assert r.status_code == 422 and code_of(r) == "wrong_code", r.text
    bad = c.recover("123")
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "nik", bad.text


def test_recovery_rate_limits(make_gateway, redis):
    g, rd = start(make_gateway, redis, recover_per_nik_day=2, recover_per_addr_hour=4)
    c = Client(g)
    nik = nik_for("1990-05-12")
    Client(g).register(nik=nik)
    assert c.recover(nik).status_code == 202
    assert c.recover(nik).status_code == 202
    r = c.recover(nik)
    assert r.status_code == 429 and code_of(r) == "send_limit", r.text
    assert 40000 < int(r.headers["Retry-After"]) <= 43200, r.headers
    # An unknown NIK is limited the same way (nothing tells them apart).
    other = nik_for("1990-05-12")
    assert c.recover(other).status_code == 202
    assert c.recover(nik_for("1990-05-12")).status_code == 202
    # Four requests from this address in the hour: the fifth is refused whatever the NIK.
    r = Client(g).recover(nik_for("1990-05-12"))
    assert r.status_code == 429 and code_of(r) == "rate_limited", r.text
    assert 0 < int(r.headers["Retry-After"]) <= 900, r.headers


def test_recovery_limit_counts_an_ipv6_client_by_its_64(make_gateway):
    """Behind a trusted proxy, recoveries from addresses of one IPv6 /64 share one allowance (a
    host owns its whole /64, so walking through it must not ask more often); another /64 has
    its own."""
    g = make_gateway({**ROOM, "verify.recover_per_addr_hour": 3,
                      "gateway.trusted_proxies": "127.0.0.1/32"})
    c = Client(g)

    def recover_from(addr):
        return c.s.post(g.url("/v1/registrations/recover"),
                        data=json.dumps({"nik": nik_for("1991-02-03"), "channel": "email"}),
                        headers={"Content-Type": "application/json",
                                 "X-Forwarded-For": addr}, timeout=HANG)
    for host in (1, 0x2a, 0xbeef):
        r = recover_from(f"2001:db8:1:2::{host:x}")
        assert r.status_code == 202, r.text
    r = recover_from("2001:db8:1:2:ffff:ffff:ffff:fffe")
    assert r.status_code == 429 and code_of(r) == "rate_limited", r.text
    assert recover_from("2001:db8:1:3::1").status_code == 202
    assert recover_from("198.51.100.7").status_code == 202


# --- timing --------------------------------------------------------------------------------

def test_timing_unknown_id_vs_wrong_code(make_gateway, redis):
    """200 confirms of an unknown id and 200 of a wrong code, interleaved; the figures are
    printed (pytest -s), not asserted: the same work is asserted through the answers."""
    g, rd = start(make_gateway, redis, max_attempts=100, resend_interval_s=1)
    a = Client(g)
    vids = []
    for i in range(3):
        rid = a.register(email=f"t{i}@example.com")
        vid = a.ask(rid).json()["verification_id"]
        play_worker(g, rd, vid, code="123456")
        vids.append(vid)
    t_unknown, t_wrong = [], []
    for i in range(200):
        vid = vids[i // 99]
        for kind in ((0, 1) if i % 2 else (1, 0)):
            target = secrets.token_hex(16) if kind == 0 else vid
            t0 = time.perf_counter()
            r = a.confirm(target, "654321")
            dt = time.perf_counter() - t0
            if kind == 0:
                assert r.status_code == 404, r.text
                t_unknown.append(dt)
            else:
                assert r.status_code == 422, r.text
                t_wrong.append(dt)

    def fig(xs):
        xs = sorted(xs)
        return statistics.median(xs) * 1e6, xs[int(len(xs) * 0.9)] * 1e6

    mu, pu = fig(t_unknown)
    mw, pw = fig(t_wrong)
    print(f"\nconfirm timing (us): unknown id median {mu:.0f} p90 {pu:.0f}; "
          f"wrong code median {mw:.0f} p90 {pw:.0f}")
    assert len(t_unknown) == len(t_wrong) == 200
