"""System tests: a recovery (POST /v1/registrations/recover, then confirm) moves a registration
to a new session, and the document uploads follow the registration record's `owner`, not the
id's mark: the new session uploads its KTP (PUT and tus), the old one is refused 403 not_owner
from the head, before a body byte is read; a recovery between a PUT's head and its end is
refused at enqueue (no job, no file). Also the gateway's asynchronous head decision (the PUT
head waits for Redis): Expect: 100-continue is answered only after it, and a client that goes
away while it is pending leaves nothing behind.

Real redis-server, real gateway; the worker's part of the recovery (sending the code) is played
as test_verify_api.py does.
"""
import socket
import struct
import time

import requests

from test_tus import metadata, png_bytes
from test_upload import (HANG, STREAM, chunked_body, closed_by_server, connect, head,
                         jpeg_bytes, put, read_answer, settings, spool_files)
from test_verify_api import Client, Resp, code_of, play_worker, reg_key
from test_registration import nik_for


def start(make_gateway, redis, workdir, **upload):
    s = settings(workdir, **upload)
    s["programme.sender_name"] = "Kartu Prakerja"
    s["verify.resend_interval_s"] = 1
    g = make_gateway(s)
    return g, Resp(redis.port)


def token(client):
    return client.s.headers["Authorization"].split(" ", 1)[1]


def recover(g, rd, new, nik):
    """NEW takes over the registration of NIK through a recovery code."""
    r = new.recover(nik, "email")
    assert r.status_code == 202, r.text
    vid = r.json()["verification_id"]
    code = play_worker(g, rd, vid)
    r = new.confirm(vid, code)
    assert r.status_code == 200, r.text
    return r.json()["registration_id"]


def applicant(g):
    """A session with a registration: (client, registration id, its NIK)."""
    c = Client(g)
    nik = nik_for("1990-05-12")
    rid = c.register(nik=nik, email="budi@example.com")
    return c, rid, nik


def refused_from_the_head(g, tok, rid):
    """A PUT by TOK with Expect: 100-continue: 403 not_owner, no 100 Continue, and the
    connection closed with the declared body unread."""
    with connect(g) as s:
        s.sendall(head(rid, "ktp", tok, "image/jpeg", 5_000_000, expect=True))
        a = read_answer(s, skip_100=False)
        assert (a.status, a.code) == (403, "not_owner"), a
        assert a.headers.get("connection") == "close", a
        assert closed_by_server(s), "connection left open with an unread body"


def test_put_follows_the_record_owner_after_recovery(make_gateway, redis, workdir):
    g, rd = start(make_gateway, redis, workdir, max_bytes="1M")
    old, rid, nik = applicant(g)
    new = Client(g)
    # Before the recovery the registration is the old session's.
    refused_from_the_head(g, token(new), rid)
    assert put(g, token(old), rid, jpeg_bytes(2000)).status == 202
    assert recover(g, rd, new, nik) == rid
    assert rd.hash(reg_key(rid))["owner"]
    # Now the new session uploads (it holds no mark on the id) and the old one is refused.
    a = put(g, token(new), rid, jpeg_bytes(3000), kind="selfie")
    assert a.status == 202, a
    a = put(g, token(new), rid, jpeg_bytes(3000))
    assert a.status == 202, a
    refused_from_the_head(g, token(old), rid)
    assert rd("XLEN", STREAM) == 3
    # The registration's status shows the new session's documents.
    r = new.status(rid)
    assert r.status_code == 200, r.text


def test_a_record_without_owner_falls_back_on_the_mark(make_gateway, redis, workdir):
    g, rd = start(make_gateway, redis, workdir, max_bytes="1M")
    old, rid, _nik = applicant(g)
    other = Client(g)
    rd("HDEL", reg_key(rid), "owner")  # a record written before owners were recorded
    assert put(g, token(old), rid, jpeg_bytes(2000)).status == 202
    refused_from_the_head(g, token(other), rid)


def test_tus_creation_follows_the_record_owner(make_gateway, redis, workdir):
    g, rd = start(make_gateway, redis, workdir, max_bytes="1M")
    old, rid, nik = applicant(g)
    new = Client(g)

    def create(c):
        h = {"Authorization": f"Bearer {token(c)}", "Tus-Resumable": "1.0.0",
             "Upload-Length": "1000", "Upload-Metadata": metadata(rid)}
        return requests.post(g.url("/v1/uploads"), headers=h, timeout=HANG)

    r = create(new)
    assert r.status_code == 403 and code_of(r) == "not_owner", r.text
    assert create(old).status_code == 201
    recover(g, rd, new, nik)
    r = create(old)
    assert r.status_code == 403 and code_of(r) == "not_owner", r.text
    r = create(new)
    assert r.status_code == 201, r.text
    # The new session's upload completes and is queued.
    loc = r.headers["Location"]
    h = {"Authorization": f"Bearer {token(new)}", "Tus-Resumable": "1.0.0",
         "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
    r = requests.patch(g.url(loc), headers=h, data=png_bytes(1000), timeout=HANG)
    assert r.status_code == 204, r.text
    assert rd("XLEN", STREAM) == 1


def test_recovery_between_head_and_end_is_refused_at_enqueue(make_gateway, redis, workdir):
    """The old session's PUT passed its head; a recovery comes before the body ends: the
    enqueue script refuses (403 not_owner), no job is queued and the spool file goes."""
    g, rd = start(make_gateway, redis, workdir, max_bytes="1M")
    old, rid, nik = applicant(g)
    new = Client(g)
    body = chunked_body(jpeg_bytes(200_000))
    with connect(g) as s:
        s.sendall(head(rid, "ktp", token(old), "image/jpeg", chunked=True, expect=True))
        s.settimeout(HANG)
        assert s.recv(25).startswith(b"HTTP/1.1 100 Continue"), "no 100 Continue"
        s.sendall(body[:100_000])
        deadline = time.monotonic() + HANG
        while not spool_files(workdir) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert spool_files(workdir), "no spool file"
        recover(g, rd, new, nik)
        s.sendall(body[100_000:])
        a = read_answer(s)
        assert (a.status, a.code) == (403, "not_owner"), a
    assert spool_files(workdir) == []
    assert rd("XLEN", STREAM) == 0
    assert "ktp_upload" not in rd.hash(reg_key(rid))
    # The same check written straight into Redis: the owner changes mid-body.
    with connect(g) as s:
        s.sendall(head(rid, "selfie", token(new), "image/jpeg", chunked=True) + body[:100_000])
        deadline = time.monotonic() + HANG
        while not spool_files(workdir) and time.monotonic() < deadline:
            time.sleep(0.02)
        rd("HSET", reg_key(rid), "owner", "f" * 32)
        s.sendall(body[100_000:])
        a = read_answer(s)
        assert (a.status, a.code) == (403, "not_owner"), a
    assert spool_files(workdir) == [] and rd("XLEN", STREAM) == 0


def test_tus_completion_after_recovery_is_refused(make_gateway, redis, workdir):
    g, rd = start(make_gateway, redis, workdir, max_bytes="1M")
    old, rid, nik = applicant(g)
    new = Client(g)
    data = png_bytes(4000)
    h = {"Authorization": f"Bearer {token(old)}", "Tus-Resumable": "1.0.0"}
    r = requests.post(g.url("/v1/uploads"), timeout=HANG,
                      headers=dict(h, **{"Upload-Length": str(len(data)),
                                         "Upload-Metadata": metadata(rid)}))
    assert r.status_code == 201, r.text
    loc = r.headers["Location"]
    ph = dict(h, **{"Content-Type": "application/offset+octet-stream"})
    r = requests.patch(g.url(loc), headers=dict(ph, **{"Upload-Offset": "0"}), data=data[:2000],
                       timeout=HANG)
    assert r.status_code == 204, r.text
    recover(g, rd, new, nik)
    r = requests.patch(g.url(loc), headers=dict(ph, **{"Upload-Offset": "2000"}),
                       data=data[2000:], timeout=HANG)
    assert r.status_code == 403 and code_of(r) == "not_owner", r.text
    assert rd("XLEN", STREAM) == 0
    uid = loc.rsplit("/", 1)[1]
    assert not [f for f in spool_files(workdir) if uid in f], spool_files(workdir)


def pause_redis(rd, ms):
    """Stall every Redis client but RD for MS milliseconds (what a slow Redis looks like)."""
    assert rd("CLIENT", "PAUSE", str(ms), "ALL") in ("OK", b"OK")


def test_expect_100_comes_only_after_the_owner_is_read(make_gateway, redis, workdir):
    g, rd = start(make_gateway, redis, workdir, max_bytes="1M")
    old, rid, _nik = applicant(g)
    body = jpeg_bytes(5000)
    with connect(g) as s:
        pause_redis(rd, 600)
        t0 = time.monotonic()
        s.sendall(head(rid, "ktp", token(old), "image/jpeg", len(body), expect=True))
        s.settimeout(0.3)
        try:
            early = s.recv(100)
        except TimeoutError:
            early = b""
        assert early == b"", f"answered while Redis was stalled: {early!r}"
        s.settimeout(HANG)
        assert s.recv(25).startswith(b"HTTP/1.1 100 Continue"), "no 100 Continue"
        assert time.monotonic() - t0 >= 0.4
        s.sendall(body)
        a = read_answer(s)
        assert a.status == 202, a
    # Keep-alive: a refused head without a body leaves the connection usable.
    with connect(g) as s:
        s.sendall(head("0" * 32, "ktp", token(old), None, None))
        a = read_answer(s)
        assert (a.status, a.code) == (403, "not_owner"), a
        s.sendall(head(rid, "ktp", token(old), "image/jpeg", len(body)) + body)
        assert read_answer(s).status == 202


def test_client_gone_while_the_head_is_pending(make_gateway, redis, workdir):
    """Clients that reset while the owner is being read free their connection at once (the late
    Redis reply finds it gone); those that only close are answered or cut once it comes.
    Nothing is left behind and the budget is whole."""
    g, rd = start(make_gateway, redis, workdir, max_bytes="1M", max_concurrent=1)
    old, rid, _nik = applicant(g)
    body = jpeg_bytes(5000)
    pause_redis(rd, 500)
    socks = []
    for i in range(20):
        s = connect(g)
        s.sendall(head(rid, "ktp", token(old), "image/jpeg", len(body), expect=(i % 2 == 0))
                  + (b"" if i % 2 == 0 else body[:1000]))
        socks.append(s)
    time.sleep(0.1)
    for i, s in enumerate(socks):
        if i % 3 == 0:  # a reset: the connection is freed at once, the reply finds it gone
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    time.sleep(0.6)  # the pause ends, the replies come for connections that are gone
    assert g.proc.poll() is None, "gateway died"
    assert spool_files(workdir) == []
    # max_concurrent = 1: still free.
    assert put(g, token(old), rid, body).status == 202
    assert rd("XLEN", STREAM) == 1


def test_a_stalled_redis_does_not_hold_the_head_forever(make_gateway, redis, workdir):
    g, rd = start(make_gateway, redis, workdir, max_bytes="1M")
    old, rid, _nik = applicant(g)
    pause_redis(rd, 4000)
    try:
        with connect(g) as s:
            s.sendall(head(rid, "ktp", token(old), "image/jpeg", 5000, expect=True))
            a = read_answer(s, skip_100=False)
            assert a.status in (408, 503), a
    finally:
        rd("CLIENT", "UNPAUSE")
