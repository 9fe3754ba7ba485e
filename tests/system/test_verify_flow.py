"""End-to-end system tests of verification codes (issue 9): the real gateway takes the request,
the real worker makes the code and sends it through a real SMTP server (aiosmtpd) or a real HTTP
server standing in for the SMS provider, the test reads the code out of what arrived, and the
gateway confirms it. The gateway's and the worker's own halves are tested in depth in
test_verify_api.py and test_verify_send.py; this file checks that they agree.
"""
import json
import os
import re
import subprocess

import pytest

from conftest import ROOT, wait_for
from test_registration import body
from test_verify_api import Client, code_of, reg_key, ver_key
from test_verify_api import start as start_gateway
from test_verify_send import HttpSink, SmtpSink, parts
from test_worker import Worker

HANG = 60.0


@pytest.fixture
def deployment(make_gateway, redis, workdir):
    """A gateway, an SMTP sink, an SMS sink and a worker that sends through both."""
    g, rd = start_gateway(make_gateway, redis)
    smtp = SmtpSink().start()
    sms = HttpSink()
    w = Worker(workdir, redis, {
        "gateway.secret_file": g.settings["gateway.secret_file"],  # the same pepper
        "programme.sender_name": "Kartu Prakerja",
        "smtp.url": f"smtp://127.0.0.1:{smtp.port}",
        "smtp.starttls": "no",
        "smtp.from": "noreply@prakerja.example.test",
        "smtp.templates_dir": os.path.join(ROOT, "conf", "templates"),
        "sms.url": f"http://127.0.0.1:{sms.port}/send",
        "sms.id_field": "data.id",
        "queue.verify.backoff_base_ms": 50,
        "queue.verify.backoff_max_ms": 200}, name="flow-worker").start()
    try:
        yield g, rd, smtp, sms, w
    finally:
        w.cleanup()
        smtp.stop()
        sms.stop()


def mailed_code(smtp, to, n):
    """The code of the Nth message (1-based) that reached TO."""
    wait_for(lambda: len([m for m in smtp.messages if to in m[1]]) >= n, timeout=HANG,
             what=f"message {n} to {to}")
    raw = [m for m in smtp.messages if to in m[1]][n - 1][2]
    _msg, text, _html = parts(raw)
    m = re.search(r"^\s+(\d{6})\s*$", text, re.M)
    assert m, text
    return m.group(1)


def texted_code(sms, n):
    wait_for(lambda: len(sms.requests) >= n, timeout=HANG, what=f"SMS {n}")
    doc = json.loads(sms.requests[n - 1][2])
    m = re.search(r"\b(\d{6})\b", json.dumps(doc))
    assert m, doc
    return m.group(1)


def test_email_and_sms_codes_confirm_through_the_gateway(deployment):
    g, rd, smtp, sms, w = deployment
    a = Client(g, en=True)
    rid = a.register(email="siti.rahma@example.test", phone="081234567890")

    r = a.ask(rid, "email")
    assert r.status_code == 202, r.text
    vid = r.json()["verification_id"]
    code = mailed_code(smtp, "siti.rahma@example.test", 1)
    wait_for(lambda: a.status(rid).json()["checks"]["email"]["state"] == "code_sent",
             timeout=HANG, what="code_sent in the checklist")
    r = a.confirm(vid, code)
    assert r.status_code == 200, r.text
    assert a.status(rid).json()["checks"]["email"]["state"] == "verified"

    r = a.ask(rid, "sms")
    assert r.status_code == 202, r.text
    vid = r.json()["verification_id"]
    code = texted_code(sms, 1)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    r = a.confirm(vid, wrong)
    assert r.status_code == 422 and code_of(r) == "wrong_code", r.text
    r = a.confirm(vid, code)
    assert r.status_code == 200, r.text
    checks = a.status(rid).json()["checks"]
    assert checks["phone"]["state"] == "verified", checks
    assert rd.hash(ver_key(vid))["provider_id"] == "m-1"
    # Neither code is anywhere in the logs, nor in clear in Redis.
    for text in (g.read_log(), w.read_log()):
        assert code not in text
    assert "code_mac" not in rd.hash(ver_key(vid))
    m = w.metrics()
    for ch in ("email", "sms"):
        assert m[f'antre_worker_codes_total{{channel="{ch}",outcome="sent"}}'] == 1, m
        assert m[f'antre_worker_codes_total{{channel="{ch}",outcome="failed"}}'] == 0, m
    p = subprocess.run(["promtool", "check", "metrics"], input=w.metrics_text(), text=True,
                       capture_output=True, timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr
    assert w.stop() == 0


def test_a_resent_code_replaces_the_first_one(deployment):
    g, rd, smtp, sms, w = deployment
    a = Client(g)
    rid = a.register(email="budi@example.test")
    first = a.ask(rid, "email").json()["verification_id"]
    old = mailed_code(smtp, "budi@example.test", 1)
    # The resend interval is 60 s by default: let it pass in Redis rather than in time, by
    # dropping the throttle keys this registration and address hold.
    for k in rd("KEYS", "antre:{intake}:vthr:*"):
        rd("DEL", k)
    r = a.ask(rid, "email")
    assert r.status_code == 202, r.text
    second = r.json()["verification_id"]
    new = mailed_code(smtp, "budi@example.test", 2)
    r = a.confirm(first, old)
    assert r.status_code == 410 and code_of(r) == "code_replaced", r.text
    r = a.confirm(second, new)
    assert r.status_code == 200, r.text


def test_a_locked_out_nik_comes_back_by_email(deployment):
    g, rd, smtp, sms, w = deployment
    first = Client(g)
    doc = body(email="lost@example.test")
    rid = first.register(**doc)
    # The session is lost; from a new one the NIK is taken.
    again = Client(g, en=True)
    r = again.post("/v1/registrations", doc)
    assert r.status_code == 409 and code_of(r) == "duplicate_nik", r.text
    r = again.recover(doc["nik"], "email")
    assert r.status_code == 202, r.text
    vid = r.json()["verification_id"]
    code = mailed_code(smtp, "lost@example.test", 1)
    r = again.confirm(vid, code)
    assert r.status_code == 200, r.text
    assert r.json()["registration_id"] == rid
    assert again.status(rid).status_code == 200
    assert first.status(rid).status_code != 200
    assert rd.hash(reg_key(rid))["email_state"] == "verified"
