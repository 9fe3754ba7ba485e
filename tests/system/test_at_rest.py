"""System test of personal data at rest (issue 11, item 5): registrations made through a real
gateway on its embedded Redis (AOF on) leave no NIK, KK, name, e-mail or phone in clear in Redis'
files (the AOF as written, and an RDB made by BGSAVE without compression, so that a value in
clear would show as its bytes), while a real worker still forwards them in clear to the
downstream (a local HTTP sink), and the applicant's checklist still shows the contacts masked.
"""
import json
import os
import subprocess

import requests

import applicant_tokens
import seal_ref
from conftest import WORKER, Gateway, free_port, wait_for
from test_downstream import Sink, ok
from test_redis import pid_alive, read_pid, unix_command
from test_registration import Api, ROOM, join, nik_for

HANG = 60.0

PEOPLE = [
    {"nik": nik_for("1990-05-12", serial=7341), "kk": "3171010101017341", "name": "Siti Aminah",
     "birth_date": "1990-05-12", "email": "siti.aminah.7341@example.com",
     "phone": "081234567341"},
    {"nik": nik_for("1985-11-03", female=True, serial=9157), "kk": "3171010101019157",
     "name": "Dewi Lestari Wulandari", "birth_date": "1985-11-03",
     "email": "dewi.lestari.9157@example.org", "phone": "085712349157"},
]


def stored_phone(p):
    return "+62" + p[1:]


def files_under(root):
    """(path, bytes) of every regular file under ROOT."""
    out = []
    for d, _dirs, names in os.walk(root):
        for n in names:
            path = os.path.join(d, n)
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    out.append((path, f.read()))
    return out


def test_personal_fields_are_sealed_in_the_aof_and_the_rdb(tmp_path):
    workdir = str(tmp_path)
    rdir = os.path.join(workdir, "r")
    sock = os.path.join(rdir, "redis.sock")
    sink = Sink(lambda key, n: ok(f"REF-{key[:6]}"))
    settings = dict(ROOM)
    settings.update({"redis.dir": rdir, "worker.admin_listen": f"127.0.0.1:{free_port()}",
                     "downstream.url": sink.url, "downstream.timeout_ms": 2000,
                     "queue.register.rate": 0})
    g = Gateway(workdir, None, settings)
    g.write_conf({"room.w.applicant_key_file": applicant_tokens.write_secret(workdir)})
    w = None
    redis_pid = None
    try:
        g.start()
        wait_for(lambda: os.path.exists(os.path.join(rdir, "redis.pid")), timeout=15,
                 what="embedded redis")
        redis_pid = read_pid(os.path.join(rdir, "redis.pid"))
        api = Api(g, join(g))
        ids = {}
        for p in PEOPLE:
            r = api.post(p)
            assert r.status_code == 202, r.text
            rid = r.json()["id"]
            ids[rid] = p
            # A code asked for each contact: its verification record names the destination.
            for channel in ("email", "sms"):
                r = requests.post(g.url(f"/v1/registrations/{rid}/verifications"),
                                  json={"channel": channel}, timeout=HANG,
                                  headers={"Authorization": f"Bearer {api.session}"})
                assert r.status_code == 202, r.text

        # The worker (same config file: the same key file) forwards them in clear.
        wlog = open(os.path.join(workdir, "worker.log"), "ab")
        w = subprocess.Popen([WORKER, "-c", g.conf_path], stdout=wlog, stderr=subprocess.STDOUT,
                             cwd=workdir)
        wlog.close()
        wait_for(lambda: len(sink.entries()) >= len(PEOPLE), timeout=HANG,
                 what="registrations forwarded")
        for e in sink.entries():
            doc = json.loads(e["body"])
            p = ids[doc["id"]]
            assert (doc["nik"], doc["kk"], doc["name"], doc["birth_date"], doc["email"],
                    doc["phone"]) == (p["nik"], p["kk"], p["name"], p["birth_date"], p["email"],
                                      stored_phone(p["phone"])), doc
        # The checklist still reads the contacts (masked).
        for rid, p in ids.items():
            ck = api.status(rid).json()["checks"]
            assert ck["email"]["destination"] == p["email"][0] + "***@" + \
                p["email"].split("@")[1], ck["email"]
            assert ck["phone"]["destination"].endswith(p["phone"][-4:]), ck["phone"]

        # What Redis holds: each personal field sealed, and it opens to the applicant's value.
        secret = g.settings["gateway.secret_file"]
        for rid, p in ids.items():
            raw = unix_command(sock, "HGET", f"antre:{{intake}}:reg:{rid}", "email")
            value = raw.split(b"\r\n")[1].decode()
            assert seal_ref.is_sealed(value), value
            assert seal_ref.open_field(secret, rid, "email", value) == p["email"]

        # An RDB, uncompressed, and the AOF as written.
        assert unix_command(sock, "CONFIG", "SET", "rdbcompression", "no") == b"+OK\r\n"
        assert unix_command(sock, "BGSAVE").startswith(b"+")
        wait_for(lambda: b"rdb_bgsave_in_progress:0" in unix_command(sock, "INFO", "persistence")
                 and os.path.exists(os.path.join(rdir, "dump.rdb")), timeout=HANG,
                 what="BGSAVE done")
        files = files_under(rdir)
        names = [os.path.relpath(f, rdir) for f, _ in files]
        assert "dump.rdb" in names and any(n.endswith(".aof") for n in names), names
        data = b"".join(d for _, d in files)
        # The files do hold the records: the downstream's reference, the verification records.
        assert b"REF-" in data and b"antre:{intake}:ver:" in data
        for p in PEOPLE:
            for f in ("nik", "kk", "name", "birth_date", "email"):
                assert p[f].encode() not in data, (f, [n for n, d in files if p[f].encode() in d])
            for v in (p["phone"], stored_phone(p["phone"])):
                assert v.encode() not in data, ("phone", v)
    finally:
        if w and w.poll() is None:
            w.terminate()
            try:
                w.wait(20)
            except subprocess.TimeoutExpired:
                w.kill()
                w.wait()
        g.stop()
        sink.close()
        if redis_pid and pid_alive(redis_pid):
            with open(f"/proc/{redis_pid}/cmdline", "rb") as f:
                if b"redis-server" in f.read():
                    os.kill(redis_pid, 9)
