"""System tests of issue 11, item 2c: a document PUT answered 503 must not leave a job without
its file.

Redis is paused (SIGSTOP) while the enqueue script is in flight, past [redis] timeout_ms: the
applicant hears 503, and Redis runs the script when it resumes (SIGCONT). The spool file must
still be there for that job; the applicant's retry of the same document supersedes it; and the
orphan reaper removes spool files that no live job names once they are older than
[upload] orphan_grace_s. Real redis-server, gateway and worker; time bounds are hang guards.
"""
import os
import time
import uuid

from conftest import wait_for
from test_upload import connect, head, put, read_answer, registration, session, spool_files, start
from test_worker_upload import KTP_W, KTP_H, noise, workers  # noqa: F401 (a fixture)

HANG = 60.0
BYTES = "antre:{intake}:spool:bytes"


def record(rd, uid):
    return rd.hgetall(f"antre:{{intake}}:upl:{uid}")


def spool_total(rd):
    return int(rd("HGET", BYTES, "total") or 0)


def photo(workdir, seed=1):
    pics = os.path.join(workdir, "pics")
    os.makedirs(pics, exist_ok=True)
    with open(noise(os.path.join(pics, f"p{seed}.jpg"), KTP_W, KTP_H, seed=seed), "rb") as f:
        return f.read()


def stalled_put(g, redis, workdir, tok, reg, body):
    """PUT BODY with Redis paused from just before the last bytes until after the answer: the
    enqueue script is sent into the stall and times out. Returns (answer, upload id)."""
    with connect(g) as s:
        s.sendall(head(reg, "ktp", tok, "image/jpeg", len(body)) + body[:len(body) // 2])
        wait_for(lambda: len(spool_files(workdir)) == 1, timeout=HANG, what="spool file")
        uid = spool_files(workdir)[0]
        redis.pause()
        try:
            s.sendall(body[len(body) // 2:])
            a = read_answer(s)
            time.sleep(0.5)  # the timed-out script is still waiting in the stalled Redis
            kept = spool_files(workdir)
        finally:
            redis.resume()
    assert (a.status, a.code) == (503, "redis_unavailable"), a
    assert kept == [uid], "the spool file went while its job could still be queued"
    return a, uid


def test_a_put_whose_enqueue_timed_out_keeps_its_file_for_the_job(make_gateway, workdir, redis,
                                                                   rd, workers):
    """503 to the applicant, the script runs when Redis resumes: the job finds its file and the
    worker accepts the photo (today's code deleted the file: the job ended missing_file)."""
    g = start(make_gateway, workdir, extra={"redis.timeout_ms": 300})
    tok = session(g)
    reg = registration(g, tok)
    body = photo(workdir)
    _a, uid = stalled_put(g, redis, workdir, tok, reg, body)

    wait_for(lambda: record(rd, uid).get("state") == "processing", timeout=HANG,
             what="the stalled enqueue script ran after the stall")
    assert os.path.exists(os.path.join(workdir, "spool", uid))
    assert spool_total(rd) == len(body)

    workers().start()
    wait_for(lambda: record(rd, uid).get("state") in ("accepted", "rejected"), timeout=HANG,
             what="the worker's verdict")
    r = record(rd, uid)
    assert r["state"] == "accepted", r
    wait_for(lambda: spool_files(workdir) == [] and spool_total(rd) == 0, timeout=HANG,
             what="spool file removed and its bytes given back")


def test_the_retry_after_a_timed_out_put_supersedes_it(make_gateway, workdir, redis, rd,
                                                        workers):
    """The applicant sends the photo again after the 503: 202, the stalled upload (queued when
    Redis resumed) is superseded, its file removed and its bytes given back at once; the worker
    accepts the retry and skips the superseded job."""
    g = start(make_gateway, workdir, extra={"redis.timeout_ms": 300})
    tok = session(g)
    reg = registration(g, tok)
    body = photo(workdir)
    _a, first = stalled_put(g, redis, workdir, tok, reg, body)
    wait_for(lambda: record(rd, first).get("state") == "processing", timeout=HANG,
             what="the stalled enqueue script ran after the stall")

    def retry():
        a = put(g, tok, reg, body)
        return a if a.status == 202 else None  # 503 while the gateway reconnects

    a = wait_for(retry, timeout=HANG, interval=0.2, what="the retry accepted")
    second = a.json()["upload_id"]
    assert a.json()["state"] == "processing", a
    assert record(rd, first)["state"] == "superseded"
    assert spool_files(workdir) == [second]
    assert spool_total(rd) == len(body)
    assert rd("HGET", f"antre:{{intake}}:reg:{reg}", "ktp_upload").decode() == second

    workers().start()
    wait_for(lambda: record(rd, second).get("state") == "accepted", timeout=HANG,
             what="the retry accepted by the worker")
    wait_for(lambda: rd("XLEN", "antre:{intake}:q:upload") == 0, timeout=HANG,
             what="both jobs done")
    assert record(rd, first)["state"] == "superseded"  # skipped, not checked
    wait_for(lambda: spool_files(workdir) == [] and spool_total(rd) == 0, timeout=HANG,
             what="spool empty and the count at 0")


def test_the_reaper_removes_orphans_and_keeps_files_with_a_job(make_gateway, workdir, rd):
    """Files older than orphan_grace_s: one no record names (an enqueue that never ran), one
    whose upload is decided, one superseded: removed, their bytes given back. One whose job is
    still to come, a young one, and a file that is no upload's: kept."""
    g = start(make_gateway, workdir, orphan_grace_s=2, spool_max_bytes="1M")
    tok = session(g)
    reg = registration(g, tok)
    spool = os.path.join(workdir, "spool")
    os.makedirs(spool, exist_ok=True)
    old = time.time() - 60

    def stray(state=None, age=old, tus=False):
        uid = uuid.uuid4().hex
        path = os.path.join(spool, "tus-" + uid if tus else uid)
        with open(path, "wb") as f:
            f.write(b"\xff\xd8\xff\xe0" + b"x" * 1000)
        os.utime(path, (age, age))
        if state:
            rd("HSET", f"antre:{{intake}}:upl:{uid}", "state", state, "path", path)
        rd("HSET", BYTES, uid, 1004)
        rd("HINCRBY", BYTES, "total", 1004)
        return os.path.basename(path), uid

    gone = [stray(), stray("accepted"), stray("rejected"), stray("superseded"),
            stray(tus=True)]  # a resumable upload's data file without its .info
    kept = [stray("processing"), stray(age=time.time() + 3600)]
    with open(os.path.join(spool, "notes.txt"), "w") as f:
        f.write("not an upload")
    os.utime(os.path.join(spool, "notes.txt"), (old, old))

    # The sweep runs every min(60, tus_expiry_s / 4, orphan_grace_s) = 2 s.
    wait_for(lambda: not any(os.path.exists(os.path.join(spool, n)) for n, _ in gone),
             timeout=HANG, interval=0.2, what="orphans removed")
    time.sleep(2.5)
    for n, _ in kept:
        assert os.path.exists(os.path.join(spool, n)), n
    assert os.path.exists(os.path.join(spool, "notes.txt"))
    for n, uid in gone:
        assert rd("HGET", BYTES, uid) is None, n
    assert spool_total(rd) == 1004 * len(kept)
    # The gateway still takes uploads meanwhile.
    assert put(g, tok, reg, photo(workdir)).status == 202
