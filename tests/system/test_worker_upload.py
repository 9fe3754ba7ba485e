"""System tests of the worker's upload queue (issue 8, photos): real Redis, real gateway and
worker processes, real photos made at test time.

Pictures are Gaussian noise (sharp everywhere, mean grey 128: no quality warning) drawn by the
vips CLI (Debian libvips-tools) and saved as JPEG or PNG; cwebp (webp) and heif-enc
(libheif-examples) make the WebP and HEIC, exiftool (libimage-exiftool-perl) writes EXIF
Orientation and GPS and checks that none is left. A missing tool fails the test naming its
package; nothing is skipped.

JPEG and PNG go through the gateway's single-shot upload; WebP and HEIC (not yet accepted by the
gateway's door) and the 1,000 jobs of the crash test are written to Redis the way intake.lua
writes them: an upload record, the registration's `ktp_upload`, and an `upload` stream entry.
Time bounds are hang guards only.
"""
import glob
import hashlib
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import time
import uuid
import zlib

import pytest
import requests

from conftest import wait_for
from test_registration import body
from test_upload import put, session, start
from test_worker import make_workers

STREAM = "antre:{intake}:q:upload"
DEAD = "antre:{intake}:dead:upload"
HANG = 60.0
MIB = 1024 * 1024
KTP_W, KTP_H = 952, 600  # a KTP card's side ratio (1.586): no ktp_aspect warning


def need(tool, package):
    assert shutil.which(tool), f"{tool} is missing: apt-get install {package} (or make test-deps)"


def run(*cmd):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, f"{cmd}: {p.stdout}{p.stderr}"
    return p.stdout


def noise(path, w, h, q=90, seed=1):
    """A W x H grey noise picture at PATH (its type from the extension; JPEG quality Q)."""
    need("vips", "libvips-tools")
    d = os.path.dirname(path)
    raw, grey = os.path.join(d, f"n{seed}.v"), os.path.join(d, f"g{seed}.v")
    run("vips", "gaussnoise", raw, str(w), str(h), "--mean", "128", "--sigma", "60",
        "--seed", str(seed))
    run("vips", "cast", raw, grey, "uchar")
    run("vips", "copy", grey, path + (f"[Q={q}]" if path.endswith(".jpg") else ""))
    os.unlink(raw)
    os.unlink(grey)
    return path


def header(path):
    """(width, height) of the image at PATH."""
    out = run("vipsheader", "-f", "width", path), run("vipsheader", "-f", "height", path)
    return int(out[0]), int(out[1])


def stored_files(store):
    return sorted(glob.glob(os.path.join(store, "*", "*.jpg")))


def stored_path(store, sha):
    return os.path.join(store, sha[:2], sha + ".jpg")


def upload_record(rd, uid):
    return rd.hgetall(f"antre:{{intake}}:upl:{uid}")


def pending_count(rd):
    try:
        return rd("XPENDING", STREAM, "workers")[0]
    except AssertionError:  # no group yet
        return 0


def drained(rd):
    return rd("XLEN", STREAM) == 0 and pending_count(rd) == 0


def put_direct(rd, path, kind="ktp", rid=None, ctype="image/jpeg"):
    """An upload of the spool file PATH written the way spool.lua 'commit' writes it: the
    record (state processing), the registration's document pointer, the stream entry."""
    uid, rid = uuid.uuid4().hex, rid or uuid.uuid4().hex
    size = os.path.getsize(path) if os.path.exists(path) else 1000
    rd("HSET", f"antre:{{intake}}:upl:{uid}", "state", "processing", "registration_id", rid,
       "kind", kind, "path", path, "bytes", size, "content_type", ctype,
       "queued_at", int(time.time()))
    rd("HSET", f"antre:{{intake}}:reg:{rid}", f"{kind}_upload", uid)
    rd("XADD", STREAM, "*", "upload_id", uid, "registration_id", rid, "kind", kind)
    return uid


def worker_settings(workdir, **extra):
    s = {"upload.store_dir": os.path.join(workdir, "store"),
         "upload.spool_dir": os.path.join(workdir, "spool"),
         "queue.upload.backoff_base_ms": 20,
         "queue.upload.backoff_max_ms": 200}
    s.update(extra)
    return s


@pytest.fixture
def workers(workdir, redis):
    yield from make_workers(workdir, redis, lambda s: worker_settings(workdir, **(s or {})))


def upload_status(g, tok, uid, lang=None):
    h = {"Authorization": f"Bearer {tok}"}
    if lang:
        h["Accept-Language"] = lang
    r = requests.get(g.url(f"/v1/uploads/{uid}"), headers=h, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def checklist(g, tok, rid, lang=None):
    h = {"Authorization": f"Bearer {tok}"}
    if lang:
        h["Accept-Language"] = lang
    r = requests.get(g.url(f"/v1/registrations/{rid}"), headers=h, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def final(rd, uid):
    return upload_record(rd, uid).get("state") in ("accepted", "rejected")


def test_photos_through_the_gateway(make_gateway, workdir, rd, workers):
    """JPEG and PNG accepted and stored, a truncated JPEG rejected corrupt, EXIF Orientation 6
    stored upright without EXIF or GPS, a 5 MB JPEG shrunk under 2 MiB, the same content stored
    once, spool files gone after the record, and the checklist showing it all."""
    need("exiftool", "libimage-exiftool-perl")
    pics = os.path.join(workdir, "pics")
    os.makedirs(pics)
    store = os.path.join(workdir, "store")
    g = start(make_gateway, workdir, max_bytes="16M", spool_max_bytes="64M")
    w = workers().start()

    jpeg = open(noise(os.path.join(pics, "a.jpg"), KTP_W, KTP_H, seed=1), "rb").read()
    png = open(noise(os.path.join(pics, "b.png"), 800, 800, seed=2), "rb").read()
    rot = noise(os.path.join(pics, "rot.jpg"), 900, 600, seed=3)
    run("exiftool", "-q", "-overwrite_original", "-n", "-Orientation=6", "-GPSLatitude=6.2",
        "-GPSLatitudeRef=S", "-GPSLongitude=106.8", "-GPSLongitudeRef=E", rot)
    assert "GPSLatitude" in run("exiftool", "-s", rot)
    rot = open(rot, "rb").read()
    big = noise(os.path.join(pics, "big.jpg"), 3000, 1900, q=95, seed=4)
    big_w, big_h = header(big)
    big = open(big, "rb").read()
    assert len(big) >= 5 * 1000 * 1000, len(big)

    def send(photo, kind="ktp", ctype="image/jpeg"):
        tok = session(g)
        r = requests.post(g.url("/v1/registrations"), json=body(), timeout=10,
                          headers={"Authorization": f"Bearer {tok}"})
        assert r.status_code == 202, r.text
        rid = r.json()["id"]
        a = put(g, tok, rid, photo, kind=kind, ctype=ctype)
        assert a.status == 202, a
        return tok, rid, a.json()["upload_id"]

    sent = {"jpeg": send(jpeg), "png": send(png, "selfie", "image/png"),
            "corrupt": send(jpeg[:len(jpeg) // 2]), "rot": send(rot, "selfie"),
            "big": send(big, "selfie")}
    # the same content twice: a second registration's KTP
    sent["again"] = send(jpeg)
    ids = [u for _t, _r, u in sent.values()]
    wait_for(lambda: all(final(rd, u) for u in ids), timeout=HANG, what="every verdict")
    wait_for(lambda: drained(rd), timeout=HANG, what="upload stream drained")
    rec = {k: upload_record(rd, u) for k, (_t, _r, u) in sent.items()}

    for k in ("jpeg", "png", "rot", "big", "again"):
        r = rec[k]
        assert r["state"] == "accepted", (k, r)
        assert "reason" not in r, (k, r)
        assert len(r["sha256"]) == 64 and int(r["width"]) > 0 and int(r["height"]) > 0, r
        path = stored_path(store, r["sha256"])
        data = open(path, "rb").read()
        assert data[:3] == b"\xff\xd8\xff", k  # stored as JPEG whatever came in
        assert hashlib.sha256(data).hexdigest() == r["sha256"]
        assert int(r["bytes_stored"]) == len(data)
        assert (int(r["width"]), int(r["height"])) == header(path), k
        assert not os.path.exists(r["path"]), f"spool file of {k} left behind"
        q = json.loads(r["quality"])
        assert q["warnings"] == [] and q["sharpness"] > 50, (k, q)
        assert int(r["processed_at"]) > 0
    assert (int(rec["jpeg"]["width"]), int(rec["jpeg"]["height"])) == (KTP_W, KTP_H)
    assert rec["png"]["width"] == "800"

    # truncated: rejected corrupt, with a hint in both languages, nothing stored
    c = rec["corrupt"]
    assert c["state"] == "rejected" and c["reason"] == "corrupt", c
    assert c["hint_en"] and c["hint_id"] and c["hint_en"] != c["hint_id"], c
    assert "sha256" not in c and not os.path.exists(c["path"])

    # EXIF orientation 6: stored upright (900x600 turned to 600x900), no EXIF or GPS left
    assert (rec["rot"]["width"], rec["rot"]["height"]) == ("600", "900"), rec["rot"]
    tags = json.loads(run("exiftool", "-j", "-a", "-G1", stored_path(store,
                                                                    rec["rot"]["sha256"])))[0]
    left = [t for t in tags if t.split(":")[0] in ("IFD0", "ExifIFD", "GPS", "XMP-exif")
            or "GPS" in t or "Orientation" in t]
    assert left == [], left

    # 5 MB: under 2 MiB, aspect kept, still decoding, and the hint says it was made smaller
    b = rec["big"]
    assert int(b["bytes_stored"]) <= 2 * MIB, b
    bw, bh = int(b["width"]), int(b["height"])
    assert bw < big_w and abs(bw / bh - big_w / big_h) < 0.01, (bw, bh)
    run("vips", "avg", stored_path(store, b["sha256"]))
    assert "smaller" in b["hint_en"] and b["hint_id"], b

    # the same content twice is one file
    assert rec["again"]["sha256"] == rec["jpeg"]["sha256"]
    shas = {r["sha256"] for r in rec.values() if r["state"] == "accepted"}
    assert len(stored_files(store)) == len(shas) == 4

    # the checklist: accepted with quality, the hint in the applicant's language
    tok, rid, _u = sent["big"]
    en, ind = checklist(g, tok, rid, "en")["checks"]["selfie"], checklist(g, tok, rid)["checks"]
    assert en["state"] == "accepted" and en["hint"] == b["hint_en"], en
    assert ind["selfie"]["hint"] == b["hint_id"], ind
    assert en["quality"]["warnings"] == [] and en["quality"]["sharpness"] > 50, en
    assert ind["ktp"]["state"] == "missing"
    tok, rid, _u = sent["corrupt"]
    j = checklist(g, tok, rid, "en")
    assert j["checks"]["ktp"] == {"state": "rejected", "reason": "corrupt",
                                  "hint": c["hint_en"]}, j
    assert c["hint_en"] in j["next_steps"]
    # GET /v1/uploads/{id} says the same, in the applicant's language
    tok, rid, uid = sent["big"]
    for lang, hint in (("en", b["hint_en"]), (None, b["hint_id"])):
        u = upload_status(g, tok, uid, lang)
        assert (u["state"], u["hint"], u["sha256"]) == ("accepted", hint, b["sha256"]), u
        assert u["quality"] == json.loads(b["quality"]), u
        assert "hint_en" not in u and "hint_id" not in u and "path" not in u, u
    tok, rid, uid = sent["corrupt"]
    u = upload_status(g, tok, uid, "en")
    assert (u["state"], u["reason"], u["hint"]) == ("rejected", "corrupt", c["hint_en"]), u

    m = w.metrics()
    dec = 'antre_worker_photo_decisions_total{state="%s",reason="%s"}'
    assert m[dec % ("accepted", "none")] == 5, m
    assert m[dec % ("rejected", "corrupt")] == 1, m
    assert m['antre_worker_photo_warnings_total{warning="blurry"}'] == 0
    p = subprocess.run(["promtool", "check", "metrics"], input=w.metrics_text(), text=True,
                       capture_output=True, timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr
    assert w.stop() == 0


def test_webp_heic_and_edge_cases_on_the_worker_side(workdir, rd, workers):
    """WebP and HEIC stored as JPEG; a redelivered job changes nothing; a superseded upload is
    not recorded; a spool file that is gone is rejected missing_file; a PDF is unsupported."""
    need("cwebp", "webp")
    need("heif-enc", "libheif-examples")
    spool = os.path.join(workdir, "spool")
    os.makedirs(spool)
    store = os.path.join(workdir, "store")
    src = noise(os.path.join(spool, "src.png"), KTP_W, KTP_H, seed=5)
    webp, heic = os.path.join(spool, "w.webp"), os.path.join(spool, "h.heic")
    run("cwebp", "-quiet", "-q", "90", src, "-o", webp)
    run("heif-enc", "-q", "90", "-o", heic, src)
    pdf = os.path.join(spool, "d.pdf")
    open(pdf, "wb").write(b"%PDF-1.4\n" + b"0" * 2000)
    gone = os.path.join(spool, "gone")
    u_webp, u_heic = put_direct(rd, webp), put_direct(rd, heic, "selfie")
    u_pdf, u_gone = put_direct(rd, pdf), put_direct(rd, gone)
    # superseded: the registration's KTP now points at a newer upload
    old_path = shutil.copy(webp, os.path.join(spool, "old.webp"))
    rid = uuid.uuid4().hex
    u_old = put_direct(rd, old_path, rid=rid)
    rd("HSET", f"antre:{{intake}}:reg:{rid}", "ktp_upload", uuid.uuid4().hex)
    w = workers().start()
    wait_for(lambda: drained(rd), timeout=HANG, what="drained")
    for u in (u_webp, u_heic):
        r = upload_record(rd, u)
        assert r["state"] == "accepted", r
        data = open(stored_path(store, r["sha256"]), "rb").read()
        assert data[:3] == b"\xff\xd8\xff"
        assert (int(r["width"]), int(r["height"])) == (KTP_W, KTP_H)
        assert not os.path.exists(r["path"])
    r = upload_record(rd, u_pdf)
    assert (r["state"], r["reason"]) == ("rejected", "unsupported_type"), r
    assert "quality" not in r
    r = upload_record(rd, u_gone)
    assert (r["state"], r["reason"]) == ("rejected", "missing_file"), r
    assert "upload it again" in r["hint_en"], r
    r = upload_record(rd, u_old)
    assert r["state"] == "processing" and "processed_at" not in r, r
    assert not os.path.exists(old_path)  # its job is done: nothing waits for that file
    # a redelivery of a decided upload: the record is not touched, the job is acknowledged
    before = upload_record(rd, u_webp)
    open(before["path"], "wb").write(b"left over")
    rd("XADD", STREAM, "*", "upload_id", u_webp, "registration_id",
       before["registration_id"], "kind", "ktp")
    wait_for(lambda: drained(rd), timeout=HANG, what="redelivery done")
    assert upload_record(rd, u_webp) == before
    assert not os.path.exists(before["path"])
    assert rd("XLEN", DEAD) == 0
    m = w.metrics()
    dec = 'antre_worker_photo_decisions_total{state="%s",reason="%s"}'
    assert m[dec % ("rejected", "missing_file")] == 1
    assert m[dec % ("rejected", "unsupported_type")] == 1
    assert m[dec % ("accepted", "none")] == 2
    assert w.stop() == 0


def small_jpegs(d, n):
    """N distinct small JPEGs (64x48 random colours) in D: PNGs written here, then one
    vipsthumbnail run turns them all into JPEG."""
    def chunk(t, data):
        return struct.pack(">I", len(data)) + t + data + struct.pack(">I", zlib.crc32(t + data))
    os.makedirs(d)
    pngs = []
    for i in range(n):
        r = random.Random(i)
        raw = b"".join(b"\x00" + r.randbytes(64 * 3) for _ in range(48))
        p = os.path.join(d, f"p{i:03d}.png")
        with open(p, "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 64, 48, 8, 2,
                                                                        0, 0, 0))
                    + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
        pngs.append(p)
    need("vipsthumbnail", "libvips-tools")
    run("vipsthumbnail", "-s", "64x48", "-o", "%s.jpg[Q=90]", *pngs)
    return [p[:-4] + ".jpg" for p in pngs]


def test_sigkill_mid_1000_uploads_then_another_worker_finishes(workdir, rd, workers):
    n, distinct = 1000, 50
    spool = os.path.join(workdir, "spool")
    os.makedirs(spool)
    store = os.path.join(workdir, "store")
    srcs = small_jpegs(os.path.join(workdir, "src"), distinct)
    ids = []
    for i in range(n):
        path = os.path.join(spool, f"u{i:04d}")
        shutil.copyfile(srcs[i % distinct], path)
        ids.append(put_direct(rd, path))
    conf = {"upload.min_width": 16, "upload.min_height": 16,
            "queue.upload.concurrency": 32, "queue.upload.visibility_timeout_s": 2,
            "worker.photo_threads": 2}
    a = workers(conf).start()
    wait_for(lambda: rd("XLEN", STREAM) <= n - 150, timeout=HANG, interval=0.005,
             what="work started")
    a.kill()
    left = rd("XLEN", STREAM)
    assert 0 < left < n, left
    b = workers(conf).start()
    wait_for(lambda: drained(rd), timeout=HANG, what="everything done after the kill")
    states = [upload_record(rd, u)["state"] for u in ids]
    assert states == ["accepted"] * n, {s: states.count(s) for s in set(states)}
    assert rd("XLEN", STREAM) == 0 and pending_count(rd) == 0
    assert rd("XLEN", DEAD) == 0
    shas = {upload_record(rd, u)["sha256"] for u in ids}
    assert len(shas) == distinct
    assert len(stored_files(store)) == distinct
    assert os.listdir(spool) == []
    assert not glob.glob(os.path.join(store, "*", ".*")), "temporary files left in the store"
    assert b.stop() == 0


def held_and_queued(workdir, rd):
    """Two uploads that are in hand at a moment the test chooses, with no timing: the first's
    spool file is a FIFO, so its check blocks the single pool thread opening it (held) until the
    test opens the other end (release); the second (a real photo) waits on the pool behind it. Returns the
    FIFO's path, the photo's path and bytes, and both upload ids."""
    spool = os.path.join(workdir, "spool")
    os.makedirs(spool)
    fifo = os.path.join(spool, "held")
    os.mkfifo(fifo)
    path = noise(os.path.join(spool, "queued.jpg"), KTP_W, KTP_H, seed=6)
    return fifo, path, open(path, "rb").read(), put_direct(rd, fifo), put_direct(rd, path)


def held(pid):
    """1 when a thread of process PID sleeps opening a FIFO for reading (waiting for a writer:
    the kernel shows it as wchan wait_for_partner)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/wchan") as f:
                if f.read().strip() == "wait_for_partner":
                    return True
        except OSError:
            pass
    return False


def release(fifo):
    """Let the check held opening FIFO go on: it opens an empty file."""
    os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


def test_sigterm_mid_photo_leaves_the_job_pending_and_the_record_processing(workdir, rd, workers):
    """Drain timeout (1 ms) with one photo being checked and one waiting on the pool: the
    running one finishes on its thread after the timeout, the waiting one never starts, and
    neither verdict is recorded nor acknowledged; the next worker finishes both."""
    fifo, path, photo, u_held, u_queued = held_and_queued(workdir, rd)
    w = workers({"worker.drain_timeout_ms": 1, "worker.photo_threads": 1,
                 "queue.upload.concurrency": 2}).start()
    wait_for(lambda: pending_count(rd) == 2, timeout=HANG, what="both jobs delivered")
    wait_for(lambda: held(w.proc.pid), timeout=HANG, what="the check held on the FIFO")
    w.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: "drain timeout" in w.read_log(), timeout=HANG, what="the drain timed out")
    release(fifo)  # the running check ends now, after the drain gave up
    assert w.proc.wait(HANG) == 0
    assert "worker: stopped" in w.read_log()
    for u in (u_held, u_queued):
        assert upload_record(rd, u)["state"] == "processing"
    assert pending_count(rd) == 2 and rd("XLEN", STREAM) == 2
    assert os.path.exists(path)
    # the next worker takes both over and finishes them (the FIFO now a plain file)
    os.remove(fifo)
    with open(fifo, "wb") as f:
        f.write(photo)
    b = workers({"queue.upload.visibility_timeout_s": 1}).start()
    wait_for(lambda: drained(rd), timeout=HANG, what="the jobs finished by the next worker")
    for u in (u_held, u_queued):
        assert upload_record(rd, u)["state"] == "accepted"
    assert not os.path.exists(path) and not os.path.exists(fifo)
    assert b.stop() == 0


def test_upload_rules_reload_on_sighup(workdir, rd, workers):
    """[upload] rules come from the live configuration: a SIGHUP applies to the next photo."""
    spool = os.path.join(workdir, "spool")
    os.makedirs(spool)
    src = noise(os.path.join(workdir, "src.jpg"), KTP_W, KTP_H, seed=7)
    w = workers({"upload.min_width": 2000}).start()
    first = put_direct(rd, shutil.copy(src, os.path.join(spool, "first")))
    wait_for(lambda: drained(rd), timeout=HANG, what="first photo")
    r = upload_record(rd, first)
    assert (r["state"], r["reason"]) == ("rejected", "too_small"), r
    w.write_conf({"upload.min_width": 600})
    w.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "configuration reloaded" in w.read_log(), timeout=HANG, what="reload")
    second = put_direct(rd, shutil.copy(src, os.path.join(spool, "second")))
    wait_for(lambda: drained(rd), timeout=HANG, what="second photo")
    assert upload_record(rd, second)["state"] == "accepted"
    assert w.stop() == 0


def test_sigterm_mid_photo_with_time_to_drain_finishes_it(workdir, rd, workers):
    """As above, with time to drain: the photo being checked and the one waiting on the pool at
    SIGTERM are both finished, recorded and acknowledged after the signal."""
    fifo, path, photo, u_held, u_queued = held_and_queued(workdir, rd)
    w = workers({"worker.drain_timeout_ms": 30000, "worker.photo_threads": 1,
                 "queue.upload.concurrency": 2}).start()
    wait_for(lambda: pending_count(rd) == 2, timeout=HANG, what="both jobs delivered")
    wait_for(lambda: held(w.proc.pid), timeout=HANG, what="the check held on the FIFO")
    w.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: "received; stopping" in w.read_log(), timeout=HANG, what="the signal taken")
    release(fifo)
    assert w.proc.wait(HANG) == 0
    log = w.read_log()
    assert "drain timeout" not in log
    # the verdicts came after the signal: the jobs were in hand, and they were finished
    assert log.index("received; stopping") < log.index("upload: recorded"), log
    assert upload_record(rd, u_held)["state"] == "rejected"  # an empty file
    assert upload_record(rd, u_queued)["state"] == "accepted"
    assert drained(rd) and not os.path.exists(path)


def test_a_record_naming_a_file_outside_the_spool_is_never_touched(workdir, rd, workers):
    """A damaged or forged record whose path leads out of [upload] spool_dir: the worker neither
    reads nor deletes that file; the job goes to the dead-letter stream at once."""
    spool = os.path.join(workdir, "spool")
    os.makedirs(spool)
    outside = noise(os.path.join(workdir, "precious.jpg"), KTP_W, KTP_H, seed=9)
    before = open(outside, "rb").read()
    sneaky = [outside, os.path.join(spool, "..", "precious.jpg"), spool + "/", spool]
    uids = [put_direct(rd, p) for p in sneaky]
    w = workers({"queue.upload.max_attempts": 5}).start()
    wait_for(lambda: rd("XLEN", DEAD) == len(uids), timeout=HANG, what="dead-lettered")
    assert drained(rd)
    assert open(outside, "rb").read() == before
    for u in uids:
        assert upload_record(rd, u)["state"] == "processing"
    entries = rd("XRANGE", DEAD, "-", "+")
    for _, fv in entries:
        f = dict(zip(fv[::2], fv[1::2]))
        assert f[b"attempts"] == b"1", f
        assert b"outside [upload] spool_dir" in f[b"last_error"], f
    assert "outside [upload] spool_dir" in w.read_log()
    assert w.stop() == 0
