"""antre-bench end to end (issue 12): the tiny profile (conf/bench/tiny.ini) against a real
gateway, worker and Redis, with the bench's own sinks as the SMS provider, the mail server and
the downstream. The report's totals must agree with what Redis itself holds (registration
records, stream entries ever added, verified codes), nothing may be lost, and the chart must be
an SVG document.
"""
import json
import os
import subprocess
import xml.etree.ElementTree as ET

from conftest import BUILD, ROOT, Resp, free_port
from test_worker import Worker

BENCH = os.path.join(BUILD, "antre-bench")
ROOM = {"room.gelombang.max_active": 100000, "room.gelombang.admit_rate_per_min": 6000,
        "room.gelombang.session_ttl_s": 3600, "gateway.per_ip_max_connections": 65535}


def stream_added(rd, name):
    """Entries ever added to the intake stream NAME (XINFO STREAM entries-added), 0 if none."""
    key = f"antre:{{intake}}:q:{name}"
    if rd("EXISTS", key) == 0:
        return 0
    v = rd("XINFO", "STREAM", key)
    info = {v[i].decode(): v[i + 1] for i in range(0, len(v), 2)}
    return info["entries-added"]


def keys(rd, pattern):
    out, cursor = [], b"0"
    while True:
        cursor, batch = rd("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
        out += batch
        if cursor == b"0":
            return out


def test_tiny_profile_totals_match_redis(make_gateway, redis, workdir):
    sink_port, smtp_port = free_port(), free_port()
    g = make_gateway(ROOM)
    w = Worker(workdir, redis, {
        "sms.url": f"http://127.0.0.1:{sink_port}/sms",
        "downstream.url": f"http://127.0.0.1:{sink_port}/downstream",
        "smtp.url": f"smtp://127.0.0.1:{smtp_port}",
        "smtp.starttls": "no",
        "smtp.from": "noreply@bench.example.test",
        "smtp.templates_dir": os.path.join(ROOT, "conf", "templates"),
        "queue.verify.backoff_base_ms": 50,
        "queue.verify.backoff_max_ms": 500,
        "queue.register.backoff_base_ms": 50,
        "queue.register.backoff_max_ms": 500}, name="bench-worker")
    out = os.path.join(workdir, "report")
    w.start()
    try:
        r = subprocess.run(
            [BENCH, "-c", os.path.join(ROOT, "conf", "bench", "tiny.ini"),
             "--target", g.url(), "--admin", g.admin_url(),
             "--worker-admin", f"http://127.0.0.1:{w.admin_port}",
             "--sink-http", f"127.0.0.1:{sink_port}", "--sink-smtp", f"127.0.0.1:{smtp_port}",
             "--out", out, "--seed", "7", "--grace", "90", "--admit-rate", "6000",
             "--max-active", "100000"],
            capture_output=True, text=True, timeout=240, cwd=ROOT)
    finally:
        w.stop()
    assert r.returncode == 0, r.stderr[-3000:] + r.stdout[-3000:]
    with open(os.path.join(out, "report.json")) as f:
        rep = json.load(f)
    svg = ET.parse(os.path.join(out, "report.svg")).getroot()  # well-formed XML
    assert svg.tag.endswith("svg"), svg.tag
    assert "verdict" in r.stdout and "register" in r.stdout, r.stdout

    apps, jobs, codes = rep["applicants"], rep["jobs"], rep["codes"]
    assert apps["arrived"] >= 10, apps
    assert apps["admitted"] == apps["arrived"], apps  # nobody waits at 6000 a minute
    # Every applicant walks the whole flow: tiny abandons nobody, and the deployment is healthy.
    assert apps["completed"] == apps["arrived"], (apps, r.stdout[-4000:])
    assert rep["errors"]["unexpected"] == 0, rep["endpoints"]
    # tiny's p_leave is 1: every applicant ends its session, and the room's gauges say so.
    leave = rep["endpoints"]["leave"]
    assert leave["requests"] == leave["status"]["204"] == apps["arrived"], leave
    assert rep["admission"]["room_active"] == 0, rep["admission"]
    assert rep["admission"]["max_active"] == 100000, rep["admission"]
    assert rep["verdict"]["bottleneck"] != "room", rep["verdict"]

    rd = Resp(redis.port)
    try:
        regs = keys(rd, "antre:{intake}:reg:*")
        assert jobs["register"]["accepted"] == len(regs) == apps["arrived"], (jobs, len(regs))
        assert jobs["register"]["accepted"] == stream_added(rd, "register")
        assert jobs["upload"]["accepted"] == stream_added(rd, "upload"), jobs
        assert jobs["upload"]["accepted"] >= 2 * apps["arrived"], jobs
        assert jobs["verify"]["accepted"] == stream_added(rd, "verify"), jobs
        verified = [k for k in keys(rd, "antre:{intake}:ver:*")
                    if rd("HGET", k, "state") == b"verified"]
        assert codes["confirmed"] == len(verified) == apps["arrived"], (codes, len(verified))
    finally:
        rd.close()
    for q in ("upload", "verify", "register"):
        assert jobs[q]["lost"] == 0, jobs
        assert jobs[q]["processed"] == jobs[q]["accepted"], jobs
    # The deployment's own counters agree with the bench's.
    assert not [m for m in rep["metrics"] if m["differs"]], rep["metrics"]
