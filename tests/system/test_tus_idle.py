"""System tests of issue 11, item 3: resumable uploads that send no data cannot block uploads.

An upload slot ([upload] max_concurrent) is held only while bytes flow (a PATCH or a
single-shot PUT in progress). Created-but-idle uploads are limited: one per registration and
document kind (a new creation replaces the older, whose record says `superseded`) and
[upload] tus_per_session per session (409 too_many_uploads beyond); and an idle upload gives its
reserved bytes back after [upload] tus_idle_s (it may still resume when there is room). Real
redis-server and gateway; time bounds are hang guards.
"""
import socket
import time

from conftest import wait_for
from test_tus import Tus, make_tus, png_bytes  # noqa: F401 (make_tus is a fixture)
from test_upload import jpeg_bytes, put, read_answer

HANG = 30.0


def test_fifty_idle_creations_do_not_block_another_applicant(make_tus):
    """One session creates 50 resumable uploads and sends nothing (today they took every
    max_concurrent slot until tus_expiry_s, and everyone else got 503). Another applicant's
    single-shot PUT and tus upload then succeed."""
    tus = make_tus(**{"upload.max_concurrent": 50})
    s, reg = tus.applicant()
    created = []
    for i in range(50):
        r = tus.create(s, reg, 5_000_000, kind="ktp" if i % 2 else "selfie")
        assert r.status_code == 201, (i, r.status_code, r.text)
        created.append(r.headers["Location"])
    other, oreg = tus.applicant()
    a = put(tus.gw, other, oreg, jpeg_bytes(200_000))
    assert a.status == 202, a
    data = png_bytes(50_000)
    loc = tus.new_upload(other, oreg, len(data), kind="selfie")
    r = tus.patch(other, loc, 0, data)
    assert r.status_code == 204, r.text
    assert tus.record(loc)["state"] == "processing"
    # One idle upload per registration and kind: each creation replaced the older one.
    live = [u for u in created if tus.record(u).get("state") == "receiving"]
    assert len(live) == 2, live
    assert tus.record(created[0])["state"] == "superseded"
    r = tus.patch(s, created[0], 0, png_bytes(1000))
    assert r.status_code == 404, r.text  # replaced: nothing left to resume


def test_a_session_holds_at_most_tus_per_session_unfinished_uploads(make_tus):
    tus = make_tus(**{"upload.tus_per_session": 3})
    s = tus.session()
    regs = [tus.registration(s) for _ in range(2)]
    for reg in regs:
        for kind in ("ktp", "selfie"):
            r = tus.create(s, reg, 10_000, kind=kind)
            if (reg, kind) != (regs[1], "selfie"):
                assert r.status_code == 201, r.text
    assert r.status_code == 409, r.text
    err = r.json()["error"]
    assert err["code"] == "too_many_uploads" and err["max_unfinished"] == 3, err
    assert r.headers["Tus-Resumable"] == "1.0.0"
    r = tus.create(s, regs[1], 10_000, kind="selfie", **{"Accept-Language": "id"})
    assert "belum selesai" in r.json()["error"]["message"], r.text
    # A replacement is not one more: the same registration and kind may start again.
    assert tus.create(s, regs[0], 10_000, kind="ktp").status_code == 201
    # Another session is not limited by this one.
    o, oreg = tus.applicant()
    assert tus.create(o, oreg, 10_000).status_code == 201


def test_a_slot_is_held_only_while_a_patch_streams(make_tus):
    """max_concurrent = 1: two idle uploads hold nothing; a PATCH streaming its body holds the
    slot (another PATCH meanwhile: 503 upload_budget), and gives it back when answered."""
    tus = make_tus(**{"upload.max_concurrent": 1})
    s, reg = tus.applicant()
    data = png_bytes(200_000)
    a = tus.new_upload(s, reg, len(data))
    b = tus.new_upload(s, reg, len(data), kind="selfie")
    with socket.create_connection(("127.0.0.1", tus.gw.port), timeout=HANG) as c:
        c.sendall((f"PATCH {a} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {s}\r\n"
                   "Tus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\n"
                   f"Upload-Offset: 0\r\nContent-Length: {len(data)}\r\n\r\n").encode()
                  + data[:1000])
        wait_for(lambda: tus.head(s, a).headers.get("Upload-Offset") not in (None, "0"),
                 timeout=HANG, what="the first PATCH streaming")
        r = tus.patch(s, b, 0, data)
        assert r.status_code == 503 and r.json()["error"]["code"] == "upload_budget", r.text
        c.sendall(data[1000:])
        ans = read_answer(c)
        assert ans.status == 204, ans
    assert tus.patch(s, b, 0, data).status_code == 204


def test_an_idle_upload_gives_its_bytes_back_after_tus_idle_s(make_tus):
    """spool_max_bytes 1 MiB, tus_idle_s 2: an idle 900 kB upload keeps another applicant's
    500 kB PUT out only until its lease lapses. It can still resume once there is room."""
    tus = make_tus(**{"upload.spool_max_bytes": "1M", "upload.tus_idle_s": 2})
    s, reg = tus.applicant()
    data = png_bytes(900_000)
    loc = tus.new_upload(s, reg, len(data))
    assert tus.patch(s, loc, 0, data[:100_000]).status_code == 204
    other, oreg = tus.applicant()
    a = put(tus.gw, other, oreg, jpeg_bytes(500_000))
    assert (a.status, a.json()["error"]["code"]) == (503, "upload_budget"), a
    time.sleep(2.5)
    a = put(tus.gw, other, oreg, jpeg_bytes(500_000))
    assert a.status == 202, a
    # No room now for the rest of the idle upload: refused from the PATCH's head, kept.
    r = tus.patch(s, loc, 100_000, data[100_000:])
    assert r.status_code == 503 and r.json()["error"]["code"] == "upload_budget", r.text
    assert tus.head(s, loc).headers["Upload-Offset"] == "100000"
    assert isinstance(tus, Tus)
