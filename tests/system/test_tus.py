"""Resumable uploads, tus 1.0.0 at /v1/uploads: the protocol with raw HTTP, and interop with the
reference client, tus-js-client (npm), uploading through a proxy that cuts the connection once
in the middle of a chunk.

The client is driven by tests/system/tus/upload.js (installed there with `npm ci` when
node_modules is missing). A missing Node.js fails the test with the command that installs it:
nothing here is skipped.

Expiry is tested in real time with the smallest [upload] tus_expiry_s the config allows (60 s):
one test waits about 75 s. No clock is faked and no file is touched behind the gateway's back.
"""
import base64
import hashlib
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from email.utils import parsedate_to_datetime

import pytest
import requests

from conftest import parse_responses, read_all, wait_for
from photos import photo_files  # noqa: F401 (a fixture)

TUS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tus")
PNG_SIG = b"\x89PNG\r\n\x1a\n"
STREAM = "antre:{intake}:q:upload"
TAKEN = ["image/jpeg", "image/png", "image/webp", "image/heic", "image/heif"]

ROOM = {
    "room.w.admit_rate_per_min": 6000,
    "room.w.max_active": 1000,
    "room.w.session_ttl_s": 600,
    "room.w.redeem_window_s": 120,
}


# ---- helpers --------------------------------------------------------------------------------

def png_bytes(n, seed=1):
    """N bytes that start like a PNG (the gateway checks the signature; the worker decodes)."""
    body = hashlib.sha256(b"seed%d" % seed).digest()
    out = bytearray(PNG_SIG)
    block = body
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:n])


def resp_parse(data, i=0):
    """Parse one RESP value from DATA at I; returns (value, next index)."""
    t = data[i:i + 1]
    end = data.index(b"\r\n", i)
    line = data[i + 1:end]
    i = end + 2
    if t in (b"+", b"-"):
        return line.decode(), i
    if t == b":":
        return int(line), i
    if t == b"$":
        n = int(line)
        if n < 0:
            return None, i
        return data[i:i + n], i + n + 2
    if t == b"*":
        n = int(line)
        if n < 0:
            return None, i
        out = []
        for _ in range(n):
            v, i = resp_parse(data, i)
            out.append(v)
        return out, i
    raise ValueError(f"RESP: {data[i - 1:i + 20]!r}")


def redis_cmd(redis, *args):
    """One command; the parsed reply (reads until the whole reply is in)."""
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    with socket.create_connection(("127.0.0.1", redis.port), timeout=5) as s:
        s.sendall(out)
        buf = b""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            buf += s.recv(1 << 20)
            try:
                return resp_parse(buf)[0]
            except (ValueError, IndexError):
                continue
    raise AssertionError(f"no full reply to {args}")


def hgetall(redis, key):
    flat = redis_cmd(redis, "HGETALL", key) or []
    return {flat[i].decode(): flat[i + 1].decode() for i in range(0, len(flat), 2)}


def stream_jobs(redis):
    """Entries of the upload stream as dicts."""
    out = []
    for _, fields in redis_cmd(redis, "XRANGE", STREAM, "-", "+") or []:
        out.append({fields[i].decode(): fields[i + 1].decode() for i in range(0, len(fields), 2)})
    return out


def b64(s):
    return base64.b64encode(s.encode()).decode()


def metadata(reg, kind="ktp", filetype="image/png", **more):
    pairs = {"registration_id": reg, "kind": kind}
    if filetype:
        pairs["filetype"] = filetype
    pairs.update(more)
    return ",".join(f"{k} {b64(v)}" for k, v in pairs.items())


class Tus:
    """A gateway with a room to get sessions from, and the intake routes."""

    def __init__(self, gw, redis, workdir):
        self.gw, self.redis, self.workdir = gw, redis, workdir
        self.spool = os.path.join(workdir, "spool")
        self.nik_seq = 0

    def url(self, path=""):
        return self.gw.url(path)

    def session(self):
        r = requests.post(self.url("/v1/rooms/w/join"), timeout=10)
        assert r.status_code == 200, r.text
        return r.json()["session"]

    def registration(self, session):
        """A registration made through POST /v1/registrations; its id."""
        self.nik_seq += 1
        body = {"nik": "317101120590%04d" % self.nik_seq, "kk": "3171010101010001",
                "name": "Siti Aminah", "birth_date": "1990-05-12",
                "email": "siti@example.com", "phone": "081234567890"}
        r = requests.post(self.url("/v1/registrations"), json=body, timeout=10,
                          headers={"Authorization": f"Bearer {session}"})
        assert r.status_code == 202, f"POST /v1/registrations: {r.status_code} {r.text}"
        return r.json()["id"]

    def applicant(self):
        s = self.session()
        return s, self.registration(s)

    def headers(self, session, **more):
        h = {"Authorization": f"Bearer {session}", "Tus-Resumable": "1.0.0"}
        h.update(more)
        return h

    def create(self, session, reg, length, kind="ktp", filetype="image/png", **hdr):
        h = self.headers(session, **{"Upload-Length": str(length),
                                     "Upload-Metadata": metadata(reg, kind, filetype)})
        h.update(hdr)
        return requests.post(self.url("/v1/uploads"), headers=h, timeout=10)

    def new_upload(self, session, reg, length, **kw):
        r = self.create(session, reg, length, **kw)
        assert r.status_code == 201, r.text
        return r.headers["Location"]

    def head(self, session, loc, **hdr):
        return requests.head(self.url(loc), headers=self.headers(session, **hdr), timeout=10)

    def patch(self, session, loc, offset, data, **hdr):
        h = self.headers(session, **{"Upload-Offset": str(offset),
                                     "Content-Type": "application/offset+octet-stream"})
        h.update(hdr)
        return requests.patch(self.url(loc), headers=h, data=data, timeout=30)

    def delete(self, session, loc):
        return requests.delete(self.url(loc), headers=self.headers(session), timeout=10)

    def files(self, loc):
        """The spool files of the upload at LOC: (data path, info path)."""
        uid = loc.rsplit("/", 1)[1]
        return (os.path.join(self.spool, f"tus-{uid}"),
                os.path.join(self.spool, f"tus-{uid}.info"))

    def record(self, loc):
        return hgetall(self.redis, f"antre:{{intake}}:upl:{loc.rsplit('/', 1)[1]}")


@pytest.fixture
def make_tus(make_gateway, redis, workdir):
    def factory(**settings):
        s = dict(ROOM)
        s["upload.spool_dir"] = os.path.join(workdir, "spool")
        s.update(settings)
        return Tus(make_gateway(s), redis, workdir)
    return factory


@pytest.fixture
def tus(make_tus):
    return make_tus()


def raw(port, data, timeout=10):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        return parse_responses(read_all(s, timeout))


# ---- OPTIONS, version, session ----------------------------------------------------------------

def test_options_needs_no_session_and_lists_the_server_features(tus):
    r = requests.options(tus.url("/v1/uploads"), timeout=10)
    assert r.status_code == 204
    assert r.headers["Tus-Version"] == "1.0.0"
    assert r.headers["Tus-Resumable"] == "1.0.0"
    ext = r.headers["Tus-Extension"].split(",")
    for e in ("creation", "expiration", "checksum", "termination"):
        assert e in ext
    assert int(r.headers["Tus-Max-Size"]) == 10 * 1024 * 1024
    assert "sha1" in r.headers["Tus-Checksum-Algorithm"].split(",")


def test_every_other_request_needs_tus_resumable_1_0_0(tus):
    s, reg = tus.applicant()
    loc = tus.new_upload(s, reg, 100)
    for version in (None, "0.2.2", "2.0.0"):
        h = {"Authorization": f"Bearer {s}"}
        if version:
            h["Tus-Resumable"] = version
        for method, path, extra in (
                ("POST", "/v1/uploads", {"Upload-Length": "100",
                                         "Upload-Metadata": metadata(reg)}),
                ("HEAD", loc, {}),
                ("PATCH", loc, {"Upload-Offset": "0",
                                "Content-Type": "application/offset+octet-stream"}),
                ("DELETE", loc, {})):
            r = requests.request(method, tus.url(path), headers={**h, **extra},
                                 data=PNG_SIG if method == "PATCH" else None, timeout=10)
            assert r.status_code == 412, (method, version, r.status_code)
            assert r.headers["Tus-Version"] == "1.0.0"
    # Nothing was written by the refused PATCHes.
    assert tus.head(s, loc).headers["Upload-Offset"] == "0"


def test_no_session_is_refused_before_anything_else(tus):
    for method, path in (("POST", "/v1/uploads"), ("HEAD", "/v1/uploads/" + "a" * 32),
                         ("PATCH", "/v1/uploads/" + "a" * 32),
                         ("DELETE", "/v1/uploads/" + "a" * 32)):
        r = requests.request(method, tus.url(path), headers={"Tus-Resumable": "1.0.0"},
                             timeout=10)
        assert r.status_code == 401, (method, r.status_code)
        assert r.headers["Tus-Resumable"] == "1.0.0", method


# ---- creation ------------------------------------------------------------------------------

def test_creation_answers_201_with_location_expiry_and_a_receiving_record(tus):
    s, reg = tus.applicant()
    t0 = time.time()
    r = tus.create(s, reg, 5000, kind="selfie", filetype="image/jpeg")
    assert r.status_code == 201, r.text
    loc = r.headers["Location"]
    uid = loc.rsplit("/", 1)[1]
    assert loc == f"/v1/uploads/{uid}" and len(uid) == 32
    assert r.headers["Tus-Resumable"] == "1.0.0"
    expires = parsedate_to_datetime(r.headers["Upload-Expires"]).timestamp()
    assert t0 + 86400 - 5 <= expires <= time.time() + 86400 + 5
    assert r.json()["upload_id"] == uid
    rec = tus.record(loc)
    assert rec["state"] == "receiving"
    assert rec["protocol"] == "tus"
    assert rec["length"] == "5000"
    assert rec["registration_id"] == reg
    assert rec["kind"] == "selfie"
    assert rec["content_type"] == "image/jpeg"
    data, info = tus.files(loc)
    assert os.path.getsize(data) == 0 and os.path.exists(info)

    h = tus.head(s, loc)
    assert h.status_code == 200
    assert h.headers["Upload-Offset"] == "0"
    assert h.headers["Upload-Length"] == "5000"
    assert h.headers["Cache-Control"] == "no-store"
    assert h.headers["Upload-Expires"] == r.headers["Upload-Expires"]
    assert h.headers["Upload-Metadata"] == metadata(reg, "selfie", "image/jpeg")


def test_creation_refusals(tus):
    s, reg = tus.applicant()
    other_s, other_reg = tus.applicant()

    r = requests.post(tus.url("/v1/uploads"), timeout=10,
                      headers=tus.headers(s, **{"Upload-Metadata": metadata(reg)}))
    assert r.status_code == 400 and r.json()["error"]["code"] == "upload_length_required"

    r = tus.create(s, reg, 10 * 1024 * 1024 + 1)
    assert r.status_code == 413
    err = r.json()["error"]
    assert err["code"] == "file_too_large" and err["max_bytes"] == 10 * 1024 * 1024
    assert err["message"] == "Foto lebih dari 10 MB; kecilkan lalu unggah lagi."
    r = tus.create(s, reg, 10 * 1024 * 1024 + 1, **{"Accept-Language": "en"})
    assert r.json()["error"]["message"] == \
        "The photo is over 10 MB; make it smaller and upload again."

    r = tus.create(s, reg, 0)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_upload_length"
    r = tus.create(s, reg, 100, **{"Upload-Defer-Length": "1"})
    assert r.status_code == 400

    r = tus.create(s, reg, 100, filetype="image/gif")
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"

    r = tus.create(s, reg, 100, kind="passport")
    assert r.status_code == 400 and r.json()["error"]["field"] == "kind"

    h = tus.headers(s, **{"Upload-Length": "100", "Upload-Metadata": f"kind {b64('ktp')}"})
    r = requests.post(tus.url("/v1/uploads"), headers=h, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["field"] == "registration_id"

    h["Upload-Metadata"] = f"registration_id !!!,kind {b64('ktp')}"
    r = requests.post(tus.url("/v1/uploads"), headers=h, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_metadata"

    # Another applicant's registration, and a made-up one.
    r = tus.create(s, other_reg, 100)
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_owner"
    r = tus.create(s, "0123456789abcdef" * 2, 100)
    assert r.status_code == 403

    # A body with the creation request is not accepted (creation-with-upload is not offered).
    r = requests.post(
        tus.url("/v1/uploads"), data=PNG_SIG, timeout=10,
        headers=tus.headers(s, **{"Upload-Length": "100", "Upload-Metadata": metadata(reg),
                                  "Content-Type": "application/offset+octet-stream"}))
    assert r.status_code == 400

    # None of that left a file behind.
    assert not os.path.isdir(tus.spool) or os.listdir(tus.spool) == []


# ---- PATCH ---------------------------------------------------------------------------------

def test_patches_append_and_the_last_one_queues_the_job(tus):
    s, reg = tus.applicant()
    data = png_bytes(300_000)
    loc = tus.new_upload(s, reg, len(data))
    uid = loc.rsplit("/", 1)[1]

    r = tus.patch(s, loc, 0, data[:100_000])
    assert r.status_code == 204, r.text
    assert r.headers["Upload-Offset"] == "100000"
    assert r.headers["Tus-Resumable"] == "1.0.0"
    assert "Upload-Expires" in r.headers
    assert tus.head(s, loc).headers["Upload-Offset"] == "100000"
    # Not complete: no job yet.
    assert not any(j["upload_id"] == uid for j in stream_jobs(tus.redis))

    # Offset mismatch: 409, nothing written.
    for wrong in (0, 99_999, 100_001):
        r = tus.patch(s, loc, wrong, data[wrong:wrong + 10])
        assert r.status_code == 409, wrong
        assert r.json()["error"]["code"] == "offset_mismatch"
        assert r.json()["error"]["offset"] == 100_000
    # Wrong Content-Type: 415.
    r = tus.patch(s, loc, 100_000, data[100_000:100_010], **{"Content-Type": "image/png"})
    assert r.status_code == 415
    # More than the upload's length: 413 before the body.
    r = tus.patch(s, loc, 100_000, data[100_000:] + b"extra")
    assert r.status_code == 413 and r.json()["error"]["code"] == "upload_length_exceeded"
    assert tus.head(s, loc).headers["Upload-Offset"] == "100000"

    r = tus.patch(s, loc, 100_000, data[100_000:])
    assert r.status_code == 204, r.text
    assert r.headers["Upload-Offset"] == str(len(data))

    jobs = [j for j in stream_jobs(tus.redis) if j["upload_id"] == uid]
    assert jobs == [{"upload_id": uid, "registration_id": reg, "kind": "ktp"}]
    rec = tus.record(loc)
    assert rec["state"] == "processing"
    assert rec["content_type"] == "image/png"
    assert rec["bytes"] == str(len(data))
    path, info = tus.files(loc)
    assert rec["path"].endswith(f"tus-{uid}")
    with open(path, "rb") as f:
        assert f.read() == data
    assert not os.path.exists(info)
    reg_rec = hgetall(tus.redis, f"antre:{{intake}}:reg:{reg}")
    assert reg_rec["ktp_upload"] == uid

    # Complete: HEAD says so; more PATCHes and termination are refused.
    h = tus.head(s, loc)
    assert h.status_code == 200
    assert h.headers["Upload-Offset"] == h.headers["Upload-Length"] == str(len(data))
    r = tus.patch(s, loc, len(data), b"")
    assert r.status_code == 409 and r.json()["error"]["code"] == "upload_complete"
    assert tus.delete(s, loc).status_code == 409
    assert len([j for j in stream_jobs(tus.redis) if j["upload_id"] == uid]) == 1


def test_head_of_a_queued_upload_whose_info_file_outlived_its_data(tus):
    """The process that queued an upload died before removing its info file, and a worker has
    since taken the data file: HEAD asks the record and says complete (found by the chaos
    test: it answered 404 unknown_upload to a client whose last PATCH answer was lost)."""
    s, reg = tus.applicant()
    data = png_bytes(50_000)
    loc = tus.new_upload(s, reg, len(data))
    path, info = tus.files(loc)
    with open(info, "rb") as f:
        saved_info = f.read()
    assert tus.patch(s, loc, 0, data).status_code == 204
    assert not os.path.exists(info)
    with open(info, "wb") as f:
        f.write(saved_info)
    os.unlink(path)
    h = tus.head(s, loc)
    assert h.status_code == 200, h.text
    assert h.headers["Upload-Offset"] == h.headers["Upload-Length"] == str(len(data))


def test_status_route_shows_receiving_with_the_offset_then_processing(tus):
    """GET /v1/uploads/{id} (gateway/upload.c) learns a tus upload's progress from tus_offset;
    HEAD on the same path stays tus' (registered first)."""
    s, reg = tus.applicant()
    data = png_bytes(30_000)
    loc = tus.new_upload(s, reg, len(data))
    auth = {"Authorization": f"Bearer {s}"}

    def status():
        r = requests.get(tus.url(loc), headers=auth, timeout=10)
        assert r.status_code == 200, r.text
        return r.json()
    st = status()
    assert st["state"] == "receiving" and st["offset"] == 0 and st["kind"] == "ktp"
    assert tus.patch(s, loc, 0, data[:12_345]).status_code == 204
    assert status()["offset"] == 12_345
    assert tus.head(s, loc).headers["Upload-Offset"] == "12345"
    assert tus.patch(s, loc, 12_345, data[12_345:]).status_code == 204
    st = status()
    assert st["state"] == "processing" and st["upload_id"] == loc.rsplit("/", 1)[1]


def test_offset_mismatch_is_refused_from_the_head_without_reading_the_body(tus):
    s, reg = tus.applicant()
    loc = tus.new_upload(s, reg, 5_000_000)
    head = (f"PATCH {loc} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {s}\r\n"
            "Tus-Resumable: 1.0.0\r\nUpload-Offset: 1000\r\n"
            "Content-Type: application/offset+octet-stream\r\nContent-Length: 4000000\r\n\r\n")
    (status, headers, body), = raw(tus.gw.port, head.encode())
    assert status == 409
    assert headers.get("connection") == "close"
    assert json.loads(body)["error"]["code"] == "offset_mismatch"


def test_checksum_match_mismatch_and_unknown_algorithm(tus):
    s, reg = tus.applicant()
    data = png_bytes(60_000)
    loc = tus.new_upload(s, reg, len(data))

    def digest(algo, chunk):
        return f"{algo} " + base64.b64encode(hashlib.new(algo, chunk).digest()).decode()

    r = tus.patch(s, loc, 0, data[:20_000], **{"Upload-Checksum": digest("sha1", data[:20_000])})
    assert r.status_code == 204 and r.headers["Upload-Offset"] == "20000"

    # A wrong checksum: 460, the chunk discarded, the offset unchanged.
    r = tus.patch(s, loc, 20_000, data[20_000:40_000],
                  **{"Upload-Checksum": digest("sha1", b"something else")})
    assert r.status_code == 460, r.text
    assert r.json()["error"]["code"] == "checksum_mismatch"
    assert tus.head(s, loc).headers["Upload-Offset"] == "20000"
    assert os.path.getsize(tus.files(loc)[0]) == 20_000

    r = tus.patch(s, loc, 20_000, data[20_000:40_000],
                  **{"Upload-Checksum": digest("sha1", data[20_000:40_000]).replace("sha1",
                                                                                     "crc32")})
    assert r.status_code == 400 and r.json()["error"]["code"] == "checksum_algorithm_unsupported"
    r = tus.patch(s, loc, 20_000, data[20_000:40_000], **{"Upload-Checksum": "sha1 notbase64"})
    assert r.status_code == 400
    assert tus.head(s, loc).headers["Upload-Offset"] == "20000"

    r = tus.patch(s, loc, 20_000, data[20_000:40_000],
                  **{"Upload-Checksum": digest("md5", data[20_000:40_000])})
    assert r.status_code == 204 and r.headers["Upload-Offset"] == "40000"
    r = tus.patch(s, loc, 40_000, data[40_000:],
                  **{"Upload-Checksum": digest("sha256", data[40_000:])})
    assert r.status_code == 204 and r.headers["Upload-Offset"] == str(len(data))
    with open(tus.files(loc)[0], "rb") as f:
        assert f.read() == data


def send_partial_patch(tus, session, loc, offset, total, sent, checksum=None):
    """Open a PATCH announcing TOTAL body bytes, send only SENT; returns the open socket."""
    data = png_bytes(offset + total)[offset:]
    head = (f"PATCH {loc} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {session}\r\n"
            f"Tus-Resumable: 1.0.0\r\nUpload-Offset: {offset}\r\n"
            "Content-Type: application/offset+octet-stream\r\n"
            f"Content-Length: {total}\r\n")
    if checksum:
        head += f"Upload-Checksum: {checksum}\r\n"
    s = socket.create_connection(("127.0.0.1", tus.gw.port), timeout=10)
    s.sendall(head.encode() + b"\r\n" + data[:sent])
    return s


def test_bytes_before_a_dropped_connection_are_kept_unless_the_chunk_had_a_checksum(tus):
    s, reg = tus.applicant()
    loc = tus.new_upload(s, reg, 200_000)
    sock = send_partial_patch(tus, s, loc, 0, 150_000, 40_000)
    wait_for(lambda: os.path.getsize(tus.files(loc)[0]) == 40_000, timeout=10,
             what="the first 40,000 bytes on disk")
    sock.close()
    wait_for(lambda: tus.head(s, loc).headers["Upload-Offset"] == "40000", timeout=10,
             what="HEAD offset 40000 after the drop")

    # The same with a checksum: the partial chunk cannot be verified, so it is discarded.
    sock = send_partial_patch(tus, s, loc, 40_000, 100_000, 30_000, checksum="sha1 " +
                              base64.b64encode(b"\0" * 20).decode())
    wait_for(lambda: os.path.getsize(tus.files(loc)[0]) == 70_000, timeout=10,
             what="the partial chunk on disk")
    sock.close()
    wait_for(lambda: os.path.getsize(tus.files(loc)[0]) == 40_000, timeout=10,
             what="the partial chunk with a checksum discarded")
    assert tus.head(s, loc).headers["Upload-Offset"] == "40000"

    # The client resumes from the offset HEAD gave and completes.
    data = png_bytes(200_000)
    r = tus.patch(s, loc, 40_000, data[40_000:])
    assert r.status_code == 204 and r.headers["Upload-Offset"] == "200000"
    with open(tus.files(loc)[0], "rb") as f:
        assert f.read() == data


def test_a_new_patch_takes_over_from_a_stalled_one(tus):
    """A phone's dead connection (no FIN) would hold the upload until the body timeout; the
    client's retry takes it over at once, and the stalled request is closed."""
    s, reg = tus.applicant()
    data = png_bytes(100_000)
    loc = tus.new_upload(s, reg, len(data))
    stalled = send_partial_patch(tus, s, loc, 0, 100_000, 30_000)
    try:
        wait_for(lambda: tus.head(s, loc).headers["Upload-Offset"] == "30000", timeout=10,
                 what="30,000 bytes received")
        r = tus.patch(s, loc, 30_000, data[30_000:])
        assert r.status_code == 204, r.text
        assert r.headers["Upload-Offset"] == "100000"
        stalled.settimeout(10)
        assert stalled.recv(65536) == b""  # closed by the gateway, without an answer
    finally:
        stalled.close()
    with open(tus.files(loc)[0], "rb") as f:
        assert f.read() == data


def test_a_file_that_is_not_a_jpeg_or_png_is_refused_and_removed(tus):
    s, reg = tus.applicant()
    loc = tus.new_upload(s, reg, 50_000)
    r = tus.patch(s, loc, 0, b"%PDF-1.4\n" + b"x" * 20_000)
    assert r.status_code == 415, r.text
    assert r.json()["error"]["code"] == "unsupported_media_type"
    assert "JPEG" in r.json()["error"]["message"]
    assert tus.head(s, loc).status_code == 404
    assert not any(os.path.exists(p) for p in tus.files(loc))
    assert tus.record(loc) == {}


# ---- the photo types phones save (issue 8) -----------------------------------------------------

def jobs_of(tus, loc):
    uid = loc.rsplit("/", 1)[1]
    return [j for j in stream_jobs(tus.redis) if j["upload_id"] == uid]


# The bytes decide, as for PUT (test_upload.py): filetype may name another type of the family,
# say nothing (application/octet-stream), be empty (a browser that does not know HEIC) or be
# absent. The record's content_type becomes what the file is.
@pytest.mark.parametrize("name,filetype,detected", [
    ("webp", "image/webp", "image/webp"),
    ("heic", "image/heic", "image/heic"),
    ("heif", "image/heif", "image/heif"),
    ("heif", "image/heic", "image/heif"),
    ("heic", "IMAGE/HEIF", "image/heic"),
    ("heic", "application/octet-stream", "image/heic"),
    ("heic", "", "image/heic"),
    ("webp", None, "image/webp"),
])
def test_phone_photos_are_taken_as_their_bytes_say(tus, photo_files, name, filetype, detected):
    s, reg = tus.applicant()
    data = photo_files[name]
    meta = metadata(reg, "ktp", None) + ("" if filetype is None else f",filetype {b64(filetype)}")
    r = tus.create(s, reg, len(data), **{"Upload-Metadata": meta})
    assert r.status_code == 201, r.text
    loc = r.headers["Location"]
    declared = (filetype or "").lower()
    assert tus.record(loc)["content_type"] == declared
    r = tus.patch(s, loc, 0, data)
    assert r.status_code == 204, r.text
    assert r.headers["Upload-Offset"] == str(len(data))
    rec = tus.record(loc)
    assert (rec["state"], rec["content_type"]) == ("processing", detected), rec
    assert len(jobs_of(tus, loc)) == 1
    with open(tus.files(loc)[0], "rb") as f:
        assert f.read() == data


@pytest.mark.parametrize("name,detected", [("heic", "image/heic"), ("heif", "image/heif")])
def test_a_first_patch_of_a_few_bytes_is_not_refused_early(tus, photo_files, name, detected):
    """The brands that tell HEIC from HEIF and AVIF begin at byte 8: a first PATCH of 6 bytes,
    then one that ends inside the ftyp box, cannot be judged yet and must not be refused."""
    s, reg = tus.applicant()
    data = photo_files[name]
    loc = tus.new_upload(s, reg, len(data), filetype="image/heic")
    for start, end in ((0, 6), (6, 20), (20, len(data))):
        r = tus.patch(s, loc, start, data[start:end])
        assert r.status_code == 204, (start, r.text)
        assert r.headers["Upload-Offset"] == str(end)
    assert tus.record(loc)["content_type"] == detected
    assert len(jobs_of(tus, loc)) == 1


def assert_refused(tus, s, r, loc, detected):
    assert r.status_code == 415, r.text
    assert r.headers["Tus-Resumable"] == "1.0.0"
    err = r.json()["error"]
    assert (err["code"], err["accepted"], err["detected"]) == \
        ("unsupported_media_type", TAKEN, detected), err
    assert "JPEG, PNG, WebP, HEIC atau HEIF" in err["message"], err
    assert "kamera ponsel" in err["message"], err
    # The upload is gone: no files, no record, no job.
    assert tus.head(s, loc).status_code == 404
    assert not any(os.path.exists(p) for p in tus.files(loc))
    assert tus.record(loc) == {}
    assert jobs_of(tus, loc) == []


def test_avif_pdf_and_noise_are_refused_with_a_hint(tus, photo_files):
    s, reg = tus.applicant()
    # Declared as what they are: refused at creation, naming the five types.
    for filetype in ("application/pdf", "image/avif", "image/gif"):
        r = tus.create(s, reg, 1000, filetype=filetype, **{"Accept-Language": "en"})
        assert r.status_code == 415, (filetype, r.text)
        err = r.json()["error"]
        assert err["accepted"] == TAKEN and "field" not in err, err
        assert "JPEG, PNG, WebP, HEIC or HEIF" in err["message"], err
        assert "phone's camera" in err["message"], err

    # An AVIF declared image/heic: its first 10 bytes could still be a HEIC (204); the next
    # PATCH brings the major brand, and the upload is refused there, before its end.
    avif = photo_files["avif"]
    loc = tus.new_upload(s, reg, len(avif), filetype="image/heic")
    assert tus.patch(s, loc, 0, avif[:10]).status_code == 204
    r = tus.patch(s, loc, 10, avif[10:40])
    assert_refused(tus, s, r, loc, "image/avif")

    # Random bytes declared image/heic: refused at the first bytes.
    noise = photo_files["noise"]
    loc = tus.new_upload(s, reg, len(noise), filetype="image/heic")
    assert_refused(tus, s, tus.patch(s, loc, 0, noise), loc, None)

    # A PDF sent without a filetype: the first PATCH names it.
    pdf = photo_files["pdf"]
    loc = tus.new_upload(s, reg, len(pdf), filetype=None)
    r = tus.patch(s, loc, 0, pdf)
    assert_refused(tus, s, r, loc, "application/pdf")
    assert "Berkas ini PDF" in r.json()["error"]["message"]

    # A foreign major brand whose compatible brands say AVIF: refused once its box is in.
    box = b"\x00\x00\x00\x18ftypisom\x00\x00\x00\x00mif1avif" + avif[28:]
    loc = tus.new_upload(s, reg, len(box), filetype="image/heif")
    assert_refused(tus, s, tus.patch(s, loc, 0, box), loc, "image/avif")

    # The first 12 bytes of a HEIC and nothing more: they could begin a HEIC, so the early
    # check lets them in, and the check at completion refuses the file.
    loc = tus.new_upload(s, reg, 12, filetype="image/heic")
    assert_refused(tus, s, tus.patch(s, loc, 0, photo_files["heic"][:12]), loc, None)
    assert not os.path.isdir(tus.spool) or os.listdir(tus.spool) == []


def test_someone_elses_upload_is_refused(tus):
    s, reg = tus.applicant()
    other = tus.session()
    loc = tus.new_upload(s, reg, 1000)
    assert tus.head(other, loc).status_code == 403
    assert tus.patch(other, loc, 0, PNG_SIG).status_code == 403
    assert tus.delete(other, loc).status_code == 403
    assert tus.head(s, "/v1/uploads/" + "f" * 32).status_code == 403
    assert tus.head(s, "/v1/uploads/not-an-id").status_code == 404
    assert tus.head(s, loc).headers["Upload-Offset"] == "0"


def test_method_override_on_post(tus):
    s, reg = tus.applicant()
    data = png_bytes(1000)
    loc = tus.new_upload(s, reg, len(data))
    r = requests.post(tus.url(loc), data=data, timeout=10, headers=tus.headers(
        s, **{"X-HTTP-Method-Override": "PATCH", "Upload-Offset": "0",
              "Content-Type": "application/offset+octet-stream"}))
    assert r.status_code == 204 and r.headers["Upload-Offset"] == "1000"
    loc2 = tus.new_upload(s, reg, len(data))
    r = requests.post(tus.url(loc2), timeout=10,
                      headers=tus.headers(s, **{"X-HTTP-Method-Override": "DELETE"}))
    assert r.status_code == 204
    r = requests.post(tus.url(loc2), timeout=10, headers=tus.headers(s))
    assert r.status_code == 405


def test_an_upload_whose_job_could_not_be_queued_is_queued_by_the_next_head(make_tus):
    """Redis stalls when the last byte arrives: the PATCH gets 503 (the client must not hear
    "complete" while no job is in Redis), the bytes stay, and the client's next HEAD queues the
    job, once, before it answers that the upload is complete."""
    tus = make_tus(**{"redis.timeout_ms": 300})
    s, reg = tus.applicant()
    data = png_bytes(50_000)
    loc = tus.new_upload(s, reg, len(data))
    uid = loc.rsplit("/", 1)[1]
    assert tus.patch(s, loc, 0, data[:20_000]).status_code == 204
    down = 'antre_refusals_total{reason="redis_down"}'
    before = tus.gw.metrics().get(down, 0)
    # The session gate asks Redis before the body: the PATCH's head goes first (100 Continue
    # says it passed), then Redis stalls and the bytes follow.
    rest = data[20_000:]
    h = tus.headers(s, **{"Upload-Offset": "20000", "Content-Length": str(len(rest)),
                          "Content-Type": "application/offset+octet-stream",
                          "Expect": "100-continue", "Connection": "close"})
    head = f"PATCH {loc} HTTP/1.1\r\nHost: antre.test\r\n" + \
        "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
    with socket.create_connection(("127.0.0.1", tus.gw.port), timeout=10) as sock:
        sock.sendall(head.encode())
        got = b""
        while b"\r\n\r\n" not in got:
            b = sock.recv(4096)
            assert b, got
            got += b
        assert got.startswith(b"HTTP/1.1 100"), got
        tus.redis.pause()
        try:
            sock.sendall(rest)
            (status, headers, body), = parse_responses(read_all(sock, 10))
            assert (status, json.loads(body)["error"]["code"]) == (503, "redis_unavailable"), body
            assert int(headers["retry-after"]) > 0
            assert tus.gw.metrics().get(down, 0) == before + 1  # counted, once
        finally:
            tus.redis.resume()
    assert os.path.getsize(tus.files(loc)[0]) == len(data)
    assert os.path.exists(tus.files(loc)[1])

    def head_complete():
        h = tus.head(s, loc)
        return h.status_code == 200 and h
    h = wait_for(head_complete, timeout=15, interval=0.2, what="HEAD 200 once Redis is back")
    assert h.headers["Upload-Offset"] == h.headers["Upload-Length"] == str(len(data))
    assert "Upload-Expires" not in h.headers
    assert [j["upload_id"] for j in stream_jobs(tus.redis)].count(uid) == 1
    assert tus.record(loc)["state"] == "processing"
    assert not os.path.exists(tus.files(loc)[1])
    # Asking again changes nothing.
    assert tus.head(s, loc).headers["Upload-Offset"] == str(len(data))
    assert [j["upload_id"] for j in stream_jobs(tus.redis)].count(uid) == 1


def test_creation_for_a_registration_that_does_not_exist(tus):
    s, reg = tus.applicant()
    redis_cmd(tus.redis, "DEL", f"antre:{{intake}}:reg:{reg}")
    r = tus.create(s, reg, 1000)
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_registration"
    assert not os.path.isdir(tus.spool) or os.listdir(tus.spool) == []


# ---- termination, budget ---------------------------------------------------------------------

def test_termination_removes_files_and_record_and_gives_back_the_budget(make_tus):
    tus = make_tus(**{"upload.spool_max_bytes": "1M"})
    s, reg = tus.applicant()
    loc = tus.new_upload(s, reg, 1_000_000)
    assert tus.patch(s, loc, 0, png_bytes(10_000)).status_code == 204
    # The spool bytes are held by the unfinished upload (issue 11: not a slot: see
    # test_tus_idle.py).
    r = tus.create(s, reg, 100_000, kind="selfie")
    assert r.status_code == 503 and int(r.headers["Retry-After"]) > 0
    assert r.json()["error"]["code"] == "upload_budget"

    r = tus.delete(s, loc)
    assert r.status_code == 204 and r.headers["Tus-Resumable"] == "1.0.0"
    assert not any(os.path.exists(p) for p in tus.files(loc))
    assert tus.record(loc) == {}
    assert tus.head(s, loc).status_code == 404
    assert tus.patch(s, loc, 10_000, b"x").status_code == 404
    assert tus.delete(s, loc).status_code == 404
    assert tus.create(s, reg, 100_000, kind="selfie").status_code == 201


def test_spool_bytes_budget_counts_the_whole_upload_length(make_tus):
    tus = make_tus(**{"upload.spool_max_bytes": "1M"})
    s, reg = tus.applicant()
    assert tus.create(s, reg, 700_000).status_code == 201
    r = tus.create(s, reg, 700_000, kind="selfie")
    assert r.status_code == 503
    assert tus.create(s, reg, 300_000, kind="selfie").status_code == 201


# ---- expiry --------------------------------------------------------------------------------

def test_unfinished_uploads_expire_and_are_swept(make_tus):
    """tus_expiry_s = 60 (the smallest allowed): the upload answers until then, 410/404 after,
    and the sweep (every 15 s at this expiry) removes its files and record and gives its budget
    back without any request touching it. Takes about 75 s."""
    tus = make_tus(**{"upload.tus_expiry_s": 60})
    s, reg = tus.applicant()
    t0 = time.time()
    touched = tus.new_upload(s, reg, 100_000)        # asked about after expiry
    left = tus.new_upload(s, reg, 100_000, kind="selfie")  # only the sweep sees it expire
    assert tus.patch(s, touched, 0, png_bytes(30_000)).status_code == 204
    assert tus.patch(s, left, 0, png_bytes(20_000)).status_code == 204
    expires = parsedate_to_datetime(tus.head(s, left).headers["Upload-Expires"]).timestamp()
    assert t0 + 55 <= expires <= t0 + 65

    time.sleep(max(0.0, expires - 10 - time.time()))
    h = tus.head(s, touched)
    assert h.status_code == 200 and h.headers["Upload-Offset"] == "30000"

    time.sleep(max(0.0, expires + 1 - time.time()))
    h = tus.head(s, touched)
    assert h.status_code in (404, 410), h.status_code
    r = tus.patch(s, touched, 30_000, b"x" * 10)
    assert r.status_code in (404, 410)
    assert not any(os.path.exists(p) for p in tus.files(touched))

    # The sweep runs every min(60, 60 / 4) = 15 s.
    wait_for(lambda: not any(os.path.exists(p) for p in tus.files(left)), timeout=30,
             interval=0.5, what="the sweep removing the untouched expired upload")
    wait_for(lambda: tus.record(left) == {} and tus.record(touched) == {}, timeout=10,
             what="records removed")
    assert tus.create(s, reg, 1000).status_code == 201  # budget given back
    assert tus.head(s, left).status_code in (404, 410)


# ---- interop: tus-js-client through a connection cut ------------------------------------------

def node_ready():
    """Fail (never skip) unless Node.js and tus-js-client are there."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.fail("Node.js and npm not found: the tus interop test drives tus-js-client; "
                    "install them with `make test-deps` (as root) or `apt-get install nodejs "
                    "npm`")
    if not os.path.isfile(os.path.join(TUS_DIR, "node_modules", "tus-js-client",
                                       "package.json")):
        r = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=TUS_DIR,
                           capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            pytest.fail(f"`npm ci` in {TUS_DIR} failed (exit {r.returncode}):\n"
                        f"{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return node


class CuttingProxy:
    """A TCP proxy on 127.0.0.1 to the gateway that follows the requests client -> server
    (Content-Length framing), records each PATCH's Upload-Offset and Content-Length, and once
    cuts both connections in the middle of the body of the CUT_PATCH-th PATCH (0-based), after
    CUT_AFTER of its body bytes went through."""

    def __init__(self, upstream_port, cut_patch, cut_after):
        self.upstream_port = upstream_port
        self.cut_patch, self.cut_after = cut_patch, cut_after
        self.patches = []
        self.cuts = 0
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()
        self.socks = []

    def _accept(self):
        while not self.stop_flag.is_set():
            try:
                client, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=30)
            with self.lock:
                self.socks += [client, upstream]
            for t in (threading.Thread(target=self._c2s, args=(client, upstream), daemon=True),
                      threading.Thread(target=self._s2c, args=(upstream, client), daemon=True)):
                self.threads.append(t)
                t.start()

    @staticmethod
    def _close(*socks):
        for s in socks:
            try:
                s.close()
            except OSError:
                pass

    def _s2c(self, upstream, client):
        try:
            while True:
                b = upstream.recv(65536)
                if not b:
                    break
                client.sendall(b)
        except OSError:
            pass
        self._close(client, upstream)

    def _c2s(self, client, upstream):
        buf, remaining, cut_here, sent_body = b"", 0, False, 0
        client.settimeout(30)
        try:
            while not self.stop_flag.is_set():
                b = client.recv(65536)
                if not b:
                    upstream.shutdown(socket.SHUT_WR)
                    return
                buf += b
                while buf:
                    if remaining == 0:  # a request head
                        end = buf.find(b"\r\n\r\n")
                        if end < 0:
                            break
                        head, buf = buf[:end + 4], buf[end + 4:]
                        lines = head.decode("latin-1").split("\r\n")
                        hdr = {k.strip().lower(): v.strip() for k, _, v in
                               (ln.partition(":") for ln in lines[1:] if ln)}
                        assert "transfer-encoding" not in hdr
                        remaining = int(hdr.get("content-length", "0"))
                        cut_here, sent_body = False, 0
                        if lines[0].startswith("PATCH "):
                            with self.lock:
                                cut_here = (len(self.patches) == self.cut_patch and
                                            self.cuts == 0)
                                self.patches.append((int(hdr["upload-offset"]), remaining))
                        upstream.sendall(head)
                        continue
                    n = min(remaining, len(buf))
                    if cut_here and sent_body + n >= self.cut_after:
                        upstream.sendall(buf[:self.cut_after - sent_body])
                        with self.lock:
                            self.cuts += 1
                        # FIN to the gateway after the bytes (it keeps them); the client's
                        # unread bytes make its side a reset.
                        upstream.shutdown(socket.SHUT_WR)
                        self._close(client, upstream)
                        return
                    upstream.sendall(buf[:n])
                    buf, remaining, sent_body = buf[n:], remaining - n, sent_body + n
        except OSError:
            pass
        self._close(client, upstream)

    def close(self):
        self.stop_flag.set()
        self._close(self.listener)
        with self.lock:
            self._close(*self.socks)
        for t in self.threads:
            t.join(5)


@pytest.mark.parametrize("processes", [1, 2])
def test_tus_js_client_resumes_after_a_cut_in_the_middle_of_a_chunk(make_tus, workdir,
                                                                    processes):
    """With processes = 2 the client's requests land on either process (SO_REUSEPORT)."""
    node = node_ready()
    tus = make_tus(**{"gateway.processes": processes})
    s, reg = tus.applicant()
    data = png_bytes(3_000_000, seed=7)
    path = os.path.join(workdir, "photo.png")
    with open(path, "wb") as f:
        f.write(data)
    chunk = 256 * 1024
    proxy = CuttingProxy(tus.gw.port, cut_patch=3, cut_after=100_000)
    try:
        r = subprocess.run(
            [node, "upload.js", "--endpoint", f"http://127.0.0.1:{proxy.port}/v1/uploads",
             "--file", path, "--session", s, "--registration", reg, "--kind", "ktp",
             "--chunk-size", str(chunk), "--retry-delays", "0,200,500,1000,2000"],
            cwd=TUS_DIR, capture_output=True, text=True, timeout=120)
    finally:
        proxy.close()
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["ok"], out
    assert proxy.cuts == 1
    assert len(out["retries"]) >= 1  # the client saw the cut and retried

    # The chunk at 3 * 256 KiB was cut after 100,000 bytes; those bytes were kept, so the
    # client resumed exactly there (from the offset HEAD gave), not at a chunk boundary.
    offsets = [o for o, _ in proxy.patches]
    cut_at = 3 * chunk
    assert offsets[:4] == [0, chunk, 2 * chunk, cut_at]
    assert offsets[4] == cut_at + 100_000, offsets
    assert sorted(offsets) == offsets
    assert offsets[-1] + proxy.patches[-1][1] == len(data)

    loc = "/v1/uploads/" + out["url"].rsplit("/", 1)[1]
    uid = loc.rsplit("/", 1)[1]
    h = tus.head(s, loc)
    assert h.headers["Upload-Offset"] == h.headers["Upload-Length"] == str(len(data))
    jobs = [j for j in stream_jobs(tus.redis) if j["upload_id"] == uid]
    assert jobs == [{"upload_id": uid, "registration_id": reg, "kind": "ktp"}]
    assert tus.record(loc)["state"] == "processing"
    with open(tus.files(loc)[0], "rb") as f:
        assert f.read() == data


def test_tus_js_client_sends_a_heic_in_small_chunks(make_tus, workdir, photo_files):
    """The reference client as a web page would use it for an iPhone photo: filetype image/heic,
    and chunks of 100 bytes, so that the first PATCH ends before SNIFF_MAX and the early type
    check is carried on by the second."""
    node = node_ready()
    tus = make_tus()
    s, reg = tus.applicant()
    data = photo_files["heic"]
    path = os.path.join(workdir, "IMG_0001.HEIC")
    with open(path, "wb") as f:
        f.write(data)
    r = subprocess.run(
        [node, "upload.js", "--endpoint", tus.url("/v1/uploads"), "--file", path, "--session", s,
         "--registration", reg, "--kind", "selfie", "--chunk-size", "100", "--filetype",
         "image/heic"],
        cwd=TUS_DIR, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["ok"] and out["retries"] == [], out
    loc = "/v1/uploads/" + out["url"].rsplit("/", 1)[1]
    rec = tus.record(loc)
    assert (rec["state"], rec["kind"], rec["content_type"]) == \
        ("processing", "selfie", "image/heic"), rec
    assert len(jobs_of(tus, loc)) == 1
    with open(tus.files(loc)[0], "rb") as f:
        assert f.read() == data
