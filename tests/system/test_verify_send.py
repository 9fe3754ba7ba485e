"""System tests of the verify queue's sender (issue 9, the worker's part): real Redis, real
antre-worker processes, a real SMTP server (aiosmtpd, in a thread of the test) and a real HTTP
server standing in for the SMS provider.

Verifications are written to Redis the way the gateway writes them (docs/design.md,
"Verification codes"): the verification record, the registration's C_verification / C_state
fields and a `verify` stream entry. Time bounds are hang guards, except the rate test's.
"""
import base64
import email
import email.policy
import hashlib
import hmac
import http.server
import json
import os
import re
import signal
import subprocess
import threading
import time
import uuid

import dkim
import pytest
from aiosmtpd.controller import Controller

from conftest import ROOT, free_port, wait_for
from test_worker import make_workers

STREAM = "antre:{intake}:q:verify"
DEAD = "antre:{intake}:dead:verify"
HANG = 60.0
FROM = "noreply@daftar.example.test"
SENDER = "Bantuan Pendidikan"


class Handler:
    """aiosmtpd handler: keeps every message; refuses recipients listed in REFUSE with 550."""

    def __init__(self):
        self.messages = []
        self.refuse = set()
        self.lock = threading.Lock()
        self.arrived = threading.Event()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        self.arrived.set()
        return "250 2.0.0 Ok: queued as Q%d" % len(self.messages)


class SmtpSink:
    def __init__(self, port=None):
        self.port = port or free_port()
        self.handler = Handler()
        self.controller = None

    def start(self):
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self):
        if self.controller:
            self.controller.stop()
            self.controller = None

    @property
    def messages(self):
        with self.handler.lock:
            return list(self.handler.messages)


class HttpSink:
    """The SMS provider: records each request; answers STATUS with {"data": {"id": ...}}."""

    def __init__(self, delay=0.0):
        self.requests = []
        self.lock = threading.Lock()
        self.status = 200
        self.delay = delay
        sink = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if sink.delay:
                    time.sleep(sink.delay)
                with sink.lock:
                    sink.requests.append((time.monotonic(), dict(self.headers), body))
                    n = len(sink.requests)
                out = json.dumps({"data": {"id": f"m-{n}"}}).encode()
                self.send_response(sink.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def smtp():
    made = []

    def factory(port=None, start=True):
        s = SmtpSink(port)
        made.append(s)
        return s.start() if start else s
    yield factory
    for s in made:
        s.stop()


@pytest.fixture
def sms_sink():
    s = HttpSink()
    yield s
    s.stop()


@pytest.fixture
def keys(workdir):
    """The key file (with its pepper) and a DKIM key pair made with openssl."""
    pepper = os.urandom(32)
    secret = os.path.join(workdir, "secret")
    with open(secret, "w") as f:
        f.write(f"pepper {pepper.hex()}\nk1 {os.urandom(32).hex()}\n")
    os.chmod(secret, 0o600)
    key = os.path.join(workdir, "dkim.pem")
    subprocess.run(["openssl", "genrsa", "-out", key, "2048"], check=True, capture_output=True)
    der = subprocess.run(["openssl", "rsa", "-in", key, "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    txt = b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)
    headers = os.path.join(workdir, "sms-headers")
    with open(headers, "w") as f:
        f.write("# the provider's key\nX-Api-Key: sekret-123\n")
    return {"pepper": pepper, "secret": secret, "dkim_key": key, "dkim_txt": txt,
            "sms_headers": headers}


def worker_settings(keys, smtp_port=None, sms_port=None, extra=None):
    s = {"gateway.secret_file": keys["secret"],
         "programme.name": "Beasiswa Kota",
         "programme.sender_name": SENDER,
         "smtp.templates_dir": os.path.join(ROOT, "conf", "templates"),
         "smtp.from": FROM,
         "smtp.starttls": "no",
         "smtp.timeout_ms": 5000,
         "smtp.dkim_domain": "daftar.example.test",
         "smtp.dkim_selector": "s2026",
         "smtp.dkim_key_file": keys["dkim_key"],
         "sms.headers_file": keys["sms_headers"],
         "sms.id_field": "data.id",
         "queue.verify.backoff_base_ms": 100,
         "queue.verify.backoff_max_ms": 400,
         "queue.verify.max_attempts": 100}
    if smtp_port:
        s["smtp.url"] = f"smtp://127.0.0.1:{smtp_port}"
    if sms_port:
        s["sms.url"] = f"http://127.0.0.1:{sms_port}/send"
    s.update(extra or {})
    return s


@pytest.fixture
def workers(workdir, redis):
    yield from make_workers(workdir, redis, prefix="vworker")


def now_ms():
    return int(time.time() * 1000)


def put_verification(rd, channel="email", lang="id", ttl_ms=600000, dest=None, rid=None,
                     current=True):
    """A verification as the gateway writes it; returns (registration id, verification id)."""
    rid = rid or uuid.uuid4().hex
    vid = uuid.uuid4().hex
    contact = "email" if channel == "email" else "phone"
    dest = dest or ("siti@example.test" if channel == "email" else "+6281234567890")
    reg = f"antre:{{intake}}:reg:{rid}"
    rd("HSET", reg, "name", "Siti", contact, dest, f"{contact}_state", "sending")
    if current:
        rd("HSET", reg, f"{contact}_verification", vid)
    t = now_ms()
    rd("HSET", f"antre:{{intake}}:ver:{vid}", "registration_id", rid, "channel", channel,
       "purpose", "verify", "destination", dest, "masked", "s***", "lang", lang,
       "created_ms", t, "expires_ms", t + ttl_ms, "attempts", 0, "state", "queued")
    rd("XADD", STREAM, "*", "verification_id", vid, "registration_id", rid, "channel", channel)
    return rid, vid


def ver(rd, vid):
    return rd.hgetall(f"antre:{{intake}}:ver:{vid}")


def reg(rd, rid):
    return rd.hgetall(f"antre:{{intake}}:reg:{rid}")


def code_mac(pepper, vid, code):
    key = hmac.new(pepper, b"antre/verification-code/v1", hashlib.sha256).digest()
    return hmac.new(key, f"{vid}:{code}".encode(), hashlib.sha256).hexdigest()


def pending(rd):
    try:
        return rd("XPENDING", STREAM, "workers")[0]
    except AssertionError:
        return 0


def parts(raw):
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    return msg, text, html


def code_in(text):
    m = re.search(r"^\s+(\d{6})\s*$", text, re.M)
    assert m, text
    return m.group(1)


def test_email_arrives_signed_with_its_headers_in_both_languages(redis, rd, keys, smtp, workers):
    sink = smtp()
    w = workers(worker_settings(keys, smtp_port=sink.port)).start()
    sent = {lang: put_verification(rd, "email", lang, dest=f"{lang}@example.test")
            for lang in ("id", "en")}
    wait_for(lambda: len(sink.messages) == 2, timeout=HANG, what="two emails")
    wait_for(lambda: all(ver(rd, v)["state"] == "sent" for _, v in sent.values()), timeout=HANG,
             what="both marked sent")
    dns = {b"s2026._domainkey.daftar.example.test.": keys["dkim_txt"]}
    by_rcpt = {m[1][0]: m for m in sink.messages}
    for lang, (rid, vid) in sent.items():
        mail_from, rcpts, raw = by_rcpt[f"{lang}@example.test"]
        assert mail_from == FROM
        assert b"\n" not in raw.replace(b"\r\n", b""), "bare LF"
        assert all(len(line) <= 78 for line in raw.split(b"\r\n")), "a line over 78 bytes"
        assert raw.startswith(b"DKIM-Signature: ")
        sig = raw.split(b"\r\n\r\n", 1)[0]
        assert b"a=rsa-sha256" in sig and b"c=relaxed/relaxed" in sig
        assert b"d=daftar.example.test" in sig and b"s=s2026" in sig
        assert dkim.verify(raw, dnsfunc=lambda name, timeout=5: dns.get(name)), "DKIM fails"
        msg, text, html = parts(raw)
        for h in ("Date", "Message-ID", "MIME-Version", "Subject", "To", "From"):
            assert msg[h], h
        assert msg["Message-ID"].endswith("@daftar.example.test>")
        assert msg["Auto-Submitted"] == "auto-generated"
        assert msg.get_content_type() == "multipart/alternative"
        assert SENDER in str(msg["From"]) and FROM in str(msg["From"])
        for p in msg.iter_parts():
            assert p.get_content_charset() == "utf-8"
            assert p["Content-Transfer-Encoding"] == "quoted-printable"
        code = code_in(text)
        assert code in html
        if lang == "id":
            assert "Kode verifikasi" in msg["Subject"] and "berlaku 10 menit" in text
        else:
            assert "verification code" in msg["Subject"] and "valid for 10 minutes" in text
        rec = ver(rd, vid)
        assert rec["code_mac"] == code_mac(keys["pepper"], vid, code)
        assert code not in json.dumps(rec)
        assert rec["provider_id"].startswith("250 ")
        r = reg(rd, rid)
        assert r["email_state"] == "code_sent" and int(r["email_sent_ms"]) > 0
    wait_for(lambda: pending(rd) == 0, timeout=HANG, what="acknowledged")
    log = w.read_log()
    for _, vid in sent.values():
        assert vid not in log
    assert "@example.test" not in log


def test_sms_reaches_the_provider_and_its_id_is_recorded(redis, rd, keys, sms_sink, workers):
    workers(worker_settings(keys, sms_port=sms_sink.port)).start()
    rid, vid = put_verification(rd, "sms", "en")
    wait_for(lambda: ver(rd, vid).get("state") == "sent", timeout=HANG, what="sms sent")
    assert len(sms_sink.requests) == 1
    _, headers, body = sms_sink.requests[0]
    assert headers.get("X-Api-Key") == "sekret-123"
    assert headers.get("Content-Type") == "application/json"
    doc = json.loads(body)
    assert doc["to"] == "+6281234567890" and doc["reference"] == vid
    code = re.match(r"(\d{6}) is your Beasiswa Kota verification code", doc["text"]).group(1)
    rec = ver(rd, vid)
    assert rec["code_mac"] == code_mac(keys["pepper"], vid, code)
    assert rec["provider_id"] == "m-1"
    assert reg(rd, rid)["phone_state"] == "code_sent"


def test_smtp_down_for_a_while_is_retried_and_arrives_once(redis, rd, keys, smtp, workers):
    sink = smtp(start=False)
    workers(worker_settings(keys, smtp_port=sink.port)).start()
    rid, vid = put_verification(rd, "email", "id")
    wait_for(lambda: int(ver(rd, vid).get("send_tries", "0")) >= 3, timeout=HANG,
             what="retries while the server is down")
    assert ver(rd, vid)["state"] == "queued"
    sink.start()
    wait_for(lambda: ver(rd, vid).get("state") == "sent", timeout=HANG, what="sent once back")
    time.sleep(0.5)
    assert len(sink.messages) == 1
    code = code_in(parts(sink.messages[0][2])[1])
    assert ver(rd, vid)["code_mac"] == code_mac(keys["pepper"], vid, code), "the latest code"
    assert reg(rd, rid)["email_state"] == "code_sent"


def test_a_permanent_refusal_is_send_failed_with_the_reason_and_not_retried(redis, rd, keys,
                                                                           smtp, workers):
    sink = smtp()
    sink.handler.refuse.add("nobody@example.test")
    workers(worker_settings(keys, smtp_port=sink.port)).start()
    rid, vid = put_verification(rd, "email", "id", dest="nobody@example.test")
    wait_for(lambda: ver(rd, vid).get("state") == "send_failed", timeout=HANG, what="failed")
    rec = ver(rd, vid)
    assert "550" in rec["send_error"] and "refused" in rec["send_error"]
    assert rec["send_error_code"] == "smtp_550"
    assert "code_mac" not in rec
    r = reg(rd, rid)
    assert r["email_state"] == "send_failed" and "550" in r["email_error"]
    wait_for(lambda: pending(rd) == 0, timeout=HANG, what="acknowledged")
    time.sleep(0.5)
    assert ver(rd, vid)["send_tries"] == "1"
    assert rd("XLEN", DEAD) == 0


def test_expired_and_replaced_verifications_are_not_sent(redis, rd, keys, smtp, workers):
    sink = smtp()
    rid_e, vid_e = put_verification(rd, "email", dest="expired@example.test", ttl_ms=-1)
    rid_r, vid_r = put_verification(rd, "email", dest="old@example.test", current=False)
    rd("HSET", f"antre:{{intake}}:reg:{rid_r}", "email_verification", uuid.uuid4().hex)
    w = workers(worker_settings(keys, smtp_port=sink.port)).start()
    _, vid_ok = put_verification(rd, "email", dest="fresh@example.test")
    wait_for(lambda: ver(rd, vid_ok).get("state") == "sent", timeout=HANG, what="fresh one sent")
    wait_for(lambda: pending(rd) == 0 and rd("XLEN", STREAM) == 0, timeout=HANG,
             what="all three acknowledged")
    assert [m[1] for m in sink.messages] == [["fresh@example.test"]]
    for vid in (vid_e, vid_r):
        rec = ver(rd, vid)
        assert rec["state"] == "queued" and "code_mac" not in rec
    assert reg(rd, rid_r)["email_state"] == "sending"
    m = w.metrics()
    assert m['antre_worker_codes_total{channel="email",outcome="dropped"}'] == 2, m
    assert m['antre_worker_codes_total{channel="email",outcome="sent"}'] == 1, m


def test_sigkill_after_the_send_is_recorded_sends_nothing_again(redis, rd, keys, smtp, workers):
    """The worker is killed as soon as the record says sent, before it acknowledged when the
    timing allows: rounds are repeated until one kill lands in that window (the entry still
    pending), and every round must end with one message."""
    sink = smtp()
    settings = worker_settings(keys, smtp_port=sink.port,
                               extra={"queue.verify.visibility_timeout_s": 1})
    hit = []
    for round_ in range(30):
        a = workers(settings, f"a{round_}").start()
        dest = f"kill{round_}@example.test"
        rid, vid = put_verification(rd, "email", dest=dest)
        deadline = time.monotonic() + HANG
        key = f"antre:{{intake}}:ver:{vid}"
        while rd("HGET", key, "state") != b"sent":
            assert time.monotonic() < deadline, "never sent"
        os.kill(a.proc.pid, signal.SIGKILL)
        a.proc.wait()
        hit.append(pending(rd))
        b = workers(settings, f"b{round_}").start()
        wait_for(lambda: pending(rd) == 0 and rd("XLEN", STREAM) == 0, timeout=HANG,
                 what="the entry acknowledged by the second worker")
        time.sleep(0.3)
        b.kill()
        assert [m[1] for m in sink.messages].count([dest]) == 1, f"round {round_}: {hit}"
        if hit[-1]:
            break
    print(f"entries pending at each kill: {hit}")
    assert hit[-1] == 1, "no kill landed between the send and the acknowledgement"


def test_the_channel_rate_holds_across_workers(redis, rd, keys, sms_sink, workers):
    rate, n = 5.0, 16
    settings = worker_settings(keys, sms_port=sms_sink.port, extra={"sms.rate": rate})
    for i in range(n):
        put_verification(rd, "sms", "id")
    for name in ("r1", "r2"):
        workers(settings, name).start()
    wait_for(lambda: len(sms_sink.requests) == n, timeout=HANG, what="every sms")
    times = sorted(t for t, _, _ in sms_sink.requests)
    span = times[-1] - times[0]
    measured = (n - 1) / span
    print(f"sms rate: {measured:.2f}/s for a limit of {rate}/s over {n} messages")
    assert measured <= rate * 1.1, measured
    assert measured >= rate * 0.7, measured
    wait_for(lambda: pending(rd) == 0, timeout=HANG, what="acknowledged")


def test_a_recovery_code_goes_to_the_contact_on_file(redis, rd, keys, smtp, workers):
    """A `recover` verification is sent even though the registration's own email verification is
    another one (the recovering session is not the registration's owner yet)."""
    sink = smtp()
    rid, vid = put_verification(rd, "email", dest="owner@example.test", current=False)
    rd("HSET", f"antre:{{intake}}:ver:{vid}", "purpose", "recover")
    workers(worker_settings(keys, smtp_port=sink.port)).start()
    wait_for(lambda: ver(rd, vid).get("state") == "sent", timeout=HANG, what="recovery sent")
    assert [m[1] for m in sink.messages] == [["owner@example.test"]]
    assert reg(rd, rid)["email_state"] == "sending", "not the registration's own verification"


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_the_login_of_login_file_is_used_and_a_wrong_one_is_retried(redis, rd, keys, workdir,
                                                                    workers):
    from aiosmtpd.smtp import AuthResult

    seen = []

    def auth(server, session, envelope, mechanism, data):
        seen.append((data.login, data.password))
        return AuthResult(success=data.login == b"mailer" and data.password == b"pa:ss")

    handler = Handler()
    port = free_port()
    ctl = Controller(handler, hostname="127.0.0.1", port=port, authenticator=auth,
                     auth_required=True, auth_require_tls=False)
    ctl.start()
    try:
        login = os.path.join(workdir, "login")
        with open(login, "w") as f:
            f.write("mailer:wrong\n")
        os.chmod(login, 0o600)
        w = workers(worker_settings(keys, smtp_port=port, extra={"smtp.login_file": login}))
        w.start()
        rid, vid = put_verification(rd, "email")
        wait_for(lambda: int(ver(rd, vid).get("send_tries", "0")) >= 2, timeout=HANG,
                 what="retries with the wrong password")
        assert ver(rd, vid)["state"] == "queued" and not handler.messages
        with open(login, "w") as f:
            f.write("mailer:pa:ss\n")
        w.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: ver(rd, vid).get("state") == "sent", timeout=HANG,
                 what="sent with the reloaded login")
        assert (b"mailer", b"pa:ss") in seen and len(handler.messages) == 1
        assert "pa:ss" not in w.read_log() and "wrong" not in w.read_log()
    finally:
        ctl.stop()
