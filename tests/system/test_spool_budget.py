"""System tests of issue 11, item 4: [upload] spool_max_bytes counts every byte in the spool,
files waiting for a worker included, in one count in Redis that every gateway process shares;
the worker gives the bytes back; a newer upload of a document supersedes the older.

Real redis-server, gateways and worker. The count is the field `total` of
antre:{intake}:spool:bytes (common/lua/spool.lua). Time bounds are hang guards.
"""
import os
import signal
import time

import requests

from conftest import wait_for
from test_registration import body as registration_body
from test_upload import MIB, connect, head, jpeg_bytes, put, read_answer, session, spool_files, start
from test_worker_upload import workers  # noqa: F401 (a fixture)

HANG = 60.0
BYTES = "antre:{intake}:spool:bytes"
LEASES = "antre:{intake}:spool:leases"
STREAM = "antre:{intake}:q:upload"


def total(rd):
    return int(rd("HGET", BYTES, "total") or 0)


def spool_size(workdir):
    d = os.path.join(workdir, "spool")
    return sum(os.path.getsize(os.path.join(d, f)) for f in spool_files(workdir))


def another_registration(g, tok):
    r = requests.post(g.url("/v1/registrations"), json=registration_body(), timeout=HANG,
                      headers={"Authorization": f"Bearer {tok}"})
    assert r.status_code == 202, r.text
    return r.json()["id"]


def test_files_waiting_for_a_worker_count_across_processes(make_gateway, workdir, rd, workers):
    """Two gateways (two processes, one Redis), spool_max_bytes 4 MiB, no worker yet: three
    1 MiB photos of three documents are taken; a 1.5 MiB one is refused 503 upload_budget with
    Retry-After from its head by the other gateway (today each process counted only its bodies
    in flight, so it was taken). The count is the bytes on disk. Once the worker has processed
    every job the count is 0, the spool empty, and the refused photo is taken."""
    g1 = start(make_gateway, workdir, spool_max_bytes="4M", max_bytes="3M")
    g2 = start(make_gateway, workdir, spool_max_bytes="4M", max_bytes="3M")
    tok = session(g1)
    reg1 = another_registration(g1, tok)
    reg2 = another_registration(g1, tok)
    photo = jpeg_bytes(MIB)
    for g, reg, kind in ((g1, reg1, "ktp"), (g2, reg1, "selfie"), (g1, reg2, "ktp")):
        a = put(g, tok, reg, photo, kind)
        assert a.status == 202, a

    big = jpeg_bytes(3 * MIB // 2)
    for g in (g1, g2):
        with connect(g) as s:  # the head alone: refused before a body byte is sent
            s.sendall(head(reg2, "selfie", tok, "image/jpeg", len(big)))
            a = read_answer(s)
        assert (a.status, a.code) == (503, "upload_budget"), a
        assert a.headers["retry-after"] == "5", a
    assert total(rd) == 3 * len(photo) == spool_size(workdir)
    assert rd("ZCARD", LEASES) == 0  # queued files hold no lease: the worker releases them

    workers().start()
    wait_for(lambda: rd("XLEN", STREAM) == 0, timeout=HANG, what="the worker drained the queue")
    wait_for(lambda: total(rd) == 0, timeout=HANG, what="the count back to 0")
    assert spool_files(workdir) == []
    assert put(g2, tok, reg2, big, "selfie").status == 202


def test_a_newer_upload_of_a_document_supersedes_the_older(make_gateway, workdir, rd, workers):
    """Twelve 1 MiB PUTs of one registration's KTP with spool_max_bytes 4 MiB and no worker:
    all taken (today: every file stayed and the count ignored them), each superseding the one
    before: one file is left, counted once; the superseded records say so and their jobs are
    skipped by the worker, which gives the last one's bytes back."""
    g = start(make_gateway, workdir, spool_max_bytes="4M", max_bytes="3M")
    tok = session(g)
    reg = another_registration(g, tok)
    ids = []
    photo = jpeg_bytes(MIB)
    for i in range(12):
        a = put(g, tok, reg, photo)
        assert a.status == 202, (i, a)
        ids.append(a.json()["upload_id"])
    assert spool_files(workdir) == [ids[-1]]
    assert total(rd) == len(photo)
    for uid in ids[:-1]:
        assert rd.hgetall(f"antre:{{intake}}:upl:{uid}")["state"] == "superseded"
        assert rd("HGET", BYTES, uid) is None
    assert rd("HGET", f"antre:{{intake}}:reg:{reg}", "ktp_upload").decode() == ids[-1]

    workers().start()
    wait_for(lambda: rd("XLEN", STREAM) == 0, timeout=HANG, what="the worker drained the queue")
    wait_for(lambda: total(rd) == 0, timeout=HANG, what="the count back to 0")
    assert spool_files(workdir) == []
    for uid in ids[:-1]:  # skipped: no verdict written over "superseded"
        assert rd.hgetall(f"antre:{{intake}}:upl:{uid}")["state"] == "superseded"


def test_a_gateway_killed_mid_upload_leaks_no_bytes(make_gateway, workdir, rd):
    """SIGKILL while a body streams: its reservation is a lease that lapses (here after about
    body_total_timeout_ms + timeout_ms + 10 s), then the room is there again."""
    short = {"gateway.body_total_timeout_ms": 2000, "gateway.body_min_rate": 0}
    g = start(make_gateway, workdir, spool_max_bytes="1M", extra=short)
    tok = session(g)
    reg = another_registration(g, tok)
    photo = jpeg_bytes(900_000)
    s = connect(g)
    try:
        s.sendall(head(reg, "ktp", tok, "image/jpeg", len(photo)) + photo[:100_000])
        wait_for(lambda: len(spool_files(workdir)) == 1, timeout=HANG, what="spool file")
        g.proc.send_signal(signal.SIGKILL)
        g.proc.wait(HANG)
    finally:
        s.close()
    g.stop()
    g2 = start(make_gateway, workdir, spool_max_bytes="1M", extra=short)
    tok = session(g2)
    reg = another_registration(g2, tok)
    small = jpeg_bytes(500_000)
    a = put(g2, tok, reg, small)
    assert (a.status, a.code) == (503, "upload_budget"), a  # still reserved
    assert total(rd) == len(photo) and rd("ZCARD", LEASES) == 1
    t0 = time.monotonic()
    wait_for(lambda: put(g2, tok, reg, small).status == 202, timeout=30, interval=0.5,
             what="the lapsed lease pruned")
    print(f"\nroom back {time.monotonic() - t0:.1f} s after the restart")
    assert total(rd) == len(small)
    assert rd("ZCARD", LEASES) == 0
