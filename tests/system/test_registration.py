"""System tests of registrations (issue 4): POST /v1/registrations and GET /v1/registrations/{id}.

Every test starts its own redis-server and gateway (conftest fixtures) with a room `w` whose
capacity is large, so a join is admitted at once and its `session` opens the intake routes. The
tests go through HTTP only, and read Redis directly to check what the gateway wrote (the record
hash, the `register` stream entry, the dedupe and idempotency keys), or to stand in for a worker
(upload records with a verdict). Time bounds are hang guards only, never speed requirements.
"""
import applicant_tokens
import conftest
import seal_ref
import base64
import hashlib
import itertools
import json
import os
import re
import signal
import socket
import threading
import time
from datetime import date, timedelta

import requests

from conftest import parse_responses, read_all

HANG = 10.0  # seconds: the longest any single wait may take before the test fails
REG_STREAM = "antre:{intake}:q:register"

ROOM = {"room.w.max_active": 100000, "room.w.admit_rate_per_min": 600000,
        "room.w.session_ttl_s": 3600, "room.w.redeem_window_s": 300}

FIELDS = ["nik", "kk", "name", "birth_date", "email", "phone"]


# --- helpers ---------------------------------------------------------------------------------

class Resp(conftest.Resp):
    """The shared RESP client, with what these tests read."""

    secret = None  # the gateway's key file, to open the records' sealed fields

    def record(self, rid):
        """Registration RID's record with its personal fields opened (seal_ref.py); each of
        them must be stored sealed."""
        return seal_ref.open_record(self.secret, rid, self.hgetall(f"antre:{{intake}}:reg:{rid}"))

    def registered_ids(self):
        """The registration_id of every entry of the register stream, in order."""
        out = []
        for _eid, fields in self("XRANGE", REG_STREAM, "-", "+"):
            d = {fields[i].decode(): fields[i + 1].decode() for i in range(0, len(fields), 2)}
            out.append(d.get("registration_id"))
        return out

    def all_keys(self):
        """Every key name, by SCAN (bounded)."""
        keys, cursor = set(), b"0"
        for _ in range(100000):
            cursor, batch = self("SCAN", cursor, "COUNT", 1000)
            keys.update(k.decode() for k in batch)
            if cursor == b"0":
                return keys
        raise AssertionError("SCAN did not finish")


_serial = itertools.count(1)


def nik_for(birth, female=False, serial=None, region="3171"):
    """A well-formed NIK whose date digits (DDMMYY, day + 40 for women) match BIRTH (a date or
    "YYYY-MM-DD"); each call gets a fresh serial so every NIK is new unless SERIAL is given."""
    if isinstance(birth, str):
        birth = date.fromisoformat(birth)
    serial = next(_serial) if serial is None else serial
    day = birth.day + (40 if female else 0)
    return f"{region}01{day:02d}{birth.month:02d}{birth.year % 100:02d}{serial % 10000:04d}"


def body(**over):
    """A valid registration (its own fresh NIK), with OVER applied; None values drop a field."""
    b = {"nik": nik_for("1990-05-12"), "kk": "3171010101010001", "name": "Siti Aminah",
         "birth_date": "1990-05-12", "email": "siti@example.com", "phone": "081234567890"}
    b.update(over)
    return {k: v for k, v in b.items() if v is not None}


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def session_sid(tok):
    """The session id inside a session token v1.KID.base64url(S|room|sid|exp[|owner]).MAC."""
    p = b64d(tok.split(".")[2]).decode().split("|")
    assert p[0] == "S", p
    return p[2]


def code(r):
    try:
        return r.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


class Api:
    """HTTP to one gateway, as the applicant holding SESSION."""

    def __init__(self, g, session):
        self.g = g
        self.session = session

    def _headers(self, en, idem, extra):
        h = {"Authorization": f"Bearer {self.session}"}
        if en:
            h["Accept-Language"] = "en"
        if idem is not None:
            h["Idempotency-Key"] = idem
        h.update(extra or {})
        return h

    def post(self, b, en=False, idem=None, raw=None, headers=None):
        h = self._headers(en, idem, headers)
        h.setdefault("Content-Type", "application/json")
        data = raw if raw is not None else json.dumps(b).encode()
        return requests.post(self.g.url("/v1/registrations"), data=data, headers=h,
                             timeout=HANG)

    def status(self, rid, en=False):
        return requests.get(self.g.url(f"/v1/registrations/{rid}"),
                            headers=self._headers(en, None, None), timeout=HANG)


def join(g, applicant=None):
    """Join room w (free capacity): admitted at once; returns the session token. APPLICANT, when
    given, is the `sub` of the applicant token the join carries (start() configures its key)."""
    kw = {"timeout": HANG}
    if applicant is not None:
        kw["json"] = {"applicant": applicant_tokens.token(applicant, "w")}
    r = requests.post(g.url("/v1/rooms/w/join"), **kw)
    assert r.status_code == 200, r.text
    tok = r.json().get("session")
    assert tok, r.text
    return tok


def start(make_gateway, redis, settings=None):
    s = dict(ROOM)
    s.update(settings or {})
    g = make_gateway(s, start=False)
    key = applicant_tokens.write_secret(g.workdir)
    g.write_conf({"room.w.applicant_key_file": key})
    g.start()
    rd = Resp(redis.port)
    rd.secret = g.settings["gateway.secret_file"]
    return g, Api(g, join(g)), rd


def accepted(api, b, **kw):
    r = api.post(b, **kw)
    assert r.status_code == 202, (b, r.status_code, r.text)
    return r.json()["id"]


def refused(api, b, want_code, want_field, status=422):
    """POST B in Indonesian (default) and in English; both must be refused with WANT_CODE on
    WANT_FIELD, messages non-empty and different, and the field listed in `errors` with the same
    code and a message in the answer's language. Returns (Indonesian, English) error objects."""
    out = []
    for en in (False, True):
        r = api.post(b, en=en)
        assert r.status_code == status, (b, en, r.status_code, r.text)
        assert r.headers.get("Content-Type", "").startswith("application/json")
        err = r.json()["error"]
        assert err["code"] == want_code, (b, err)
        assert err.get("field") == want_field, (b, err)
        assert isinstance(err["message"], str) and err["message"].strip(), err
        if status == 422:
            listed = [e for e in err["errors"] if e["field"] == want_field]
            assert len(listed) == 1, err
            assert listed[0]["code"] == want_code, err
            assert listed[0]["message"] == err["message"], err
        out.append(err)
    assert out[0]["message"] != out[1]["message"], out
    return out


# --- no session ------------------------------------------------------------------------------

def test_no_session_is_refused_before_the_body(make_gateway, redis):
    g, _api, rd = start(make_gateway, redis)
    # A large body declared and never sent: the 401 comes from the head alone (before any body
    # byte), and the gateway ends the connection (FIN after the answer). The route's body limit
    # is not what answers: the gate comes first.
    head = (b"POST /v1/registrations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 67108864\r\n\r\n")
    with socket.create_connection(("127.0.0.1", g.port), timeout=HANG) as s:
        s.sendall(head)
        data = read_all(s, HANG)          # returns at the gateway's FIN
        resp = parse_responses(data)
        assert len(resp) == 1, data
        st, hd, bd = resp[0]
        assert st == 401, data
        assert json.loads(bd)["error"]["code"] == "not_admitted"
        assert hd.get("connection", "").lower() == "close", hd
        # The body is never taken as a request: sent now, it gets no answer, and the gateway
        # does not keep the connection for long (it may discard bytes for a short linger,
        # then closes, and sending fails). Throttled so the linger is what ends it.
        chunk = b"x" * 16384
        sent, failed = 0, False
        deadline = time.monotonic() + HANG
        s.settimeout(1.0)
        try:
            while sent < 67108864 and time.monotonic() < deadline:
                sent += s.send(chunk)
                time.sleep(0.005)
        except OSError:
            failed = True
        assert failed, f"the gateway kept the refused connection open ({sent} bytes sent)"
        try:
            extra = s.recv(65536)
        except OSError:
            extra = b""
        assert extra == b"", extra

    # Small bodies, junk tokens, both languages; GET needs a session too.
    msgs = set()
    for auth in [None, "Bearer junk", "Bearer v1.x.y.z", "Basic dXNlcjpwYXNz"]:
        for en in (False, True):
            h = {"Content-Type": "application/json"}
            if auth:
                h["Authorization"] = auth
            if en:
                h["Accept-Language"] = "en"
            r = requests.post(g.url("/v1/registrations"), data=json.dumps(body()), headers=h,
                              timeout=HANG)
            assert (r.status_code, code(r)) == (401, "not_admitted"), (auth, r.text)
            msgs.add((en, r.json()["error"]["message"]))
            r = requests.get(g.url("/v1/registrations/" + "0" * 32), headers=h, timeout=HANG)
            assert (r.status_code, code(r)) == (401, "not_admitted"), (auth, r.text)
    assert {en for en, _ in msgs} == {False, True}
    assert all(m.strip() for _, m in msgs)
    assert len({m for en, m in msgs if en}.intersection({m for en, m in msgs if not en})) == 0
    # Nothing was written.
    assert rd.registered_ids() == []
    assert not [k for k in rd.all_keys() if k.startswith("antre:{intake}:")]
    rd.close()


def test_body_over_the_route_limit(make_gateway, redis):
    g, api, rd = start(make_gateway, redis)
    b = body(name="Siti Aminah", padding="x" * 20000)
    r = api.post(b)
    assert (r.status_code, code(r)) == (413, "body_too_large"), r.text
    assert rd.registered_ids() == []
    rd.close()


# --- validation ------------------------------------------------------------------------------

def test_nik_rules(make_gateway, redis):
    g, api, rd = start(make_gateway, redis)
    cases = [
        ("317101120590001", "nik_wrong_length"),          # 15 digits
        ("31710112059000011", "nik_wrong_length"),        # 17 digits
        ("3171", "nik_wrong_length"),
        ("31710112059000a1", "nik_not_numeric"),
        ("3171 01120590001", "nik_not_numeric"),
        ("3171-0112-0590-01", "nik_not_numeric"),
        ("３１７１０１１２０５９０００１", "nik_not_numeric"),   # fullwidth digits
        ("2071011205900001", "nik_unknown_province"),     # 20 is no province
        ("1071011205900001", "nik_unknown_province"),
        ("3771011205900001", "nik_unknown_province"),
        ("9771011205900001", "nik_unknown_province"),
        ("0071011205900001", "nik_unknown_province"),
        ("3100011205900001", "nik_zero_region"),          # regency 00
        ("3171001205900001", "nik_zero_region"),          # district 00
        ("3171013205900001", "nik_invalid_date"),         # day 32
        ("3171010005900001", "nik_invalid_date"),         # day 00
        ("3171017205900001", "nik_invalid_date"),         # day 72 (a woman's 32)
        ("3171011213900001", "nik_invalid_date"),         # month 13
        ("3171011200900001", "nik_invalid_date"),         # month 00
        ("3171013102900001", "nik_invalid_date"),         # 31 February
        ("3171013104900001", "nik_invalid_date"),         # 31 April
        ("3171012902910001", "nik_invalid_date"),         # 29 February 91
    ]
    for nik, want in cases:
        refused(api, body(nik=nik), want, "nik")
        # The date digits are not compared with a NIK already refused: one error only.
        r = api.post(body(nik=nik))
        assert [e["field"] for e in r.json()["error"]["errors"]] == ["nik"], r.text
    # Every real province code is accepted (the NIK's other digits matching the birth date).
    provinces = (list(range(11, 20)) + [21] + list(range(31, 37)) + list(range(51, 54)) +
                 list(range(61, 66)) + list(range(71, 77)) + [81, 82] + list(range(91, 97)))
    for p in provinces:
        accepted(api, body(nik=nik_for("1990-05-12", region=f"{p:02d}71")))
    # 29 February in a year whose YY is a multiple of 4 is a possible date.
    accepted(api, body(nik=nik_for("1992-02-29"), birth_date="1992-02-29"))
    assert len(rd.registered_ids()) == len(provinces) + 1
    rd.close()


def test_kk_rules(make_gateway, redis):
    g, api, rd = start(make_gateway, redis)
    for kk, want in [("317101010101000", "kk_wrong_length"),
                     ("31710101010100011", "kk_wrong_length"),
                     ("31710101010100O1", "kk_not_numeric"),     # letter O
                     ("3171 010101010001", "kk_not_numeric"),
                     ("2071010101010001", "kk_unknown_province"),
                     ("0071010101010001", "kk_unknown_province")]:
        refused(api, body(kk=kk), want, "kk")
    assert rd.registered_ids() == []
    accepted(api, body(kk="9171010101010001"))
    rd.close()


def test_birth_date_rules(make_gateway, redis):
    g, api, rd = start(make_gateway, redis)
    nik = nik_for("1990-05-12")
    tomorrow = date.today() + timedelta(days=1)
    for bd in ["2001-02-29",     # 2001 is not a leap year
               "1900-02-29",
               "1990-04-31", "1990-13-01", "1990-00-10", "1990-05-00", "0000-05-12",
               "1990/05/12", "90-05-12", "1990-5-12", "19900512", "12 Mei 1990",
               tomorrow.isoformat(),               # in the future
               "2999-01-01"]:
        refused(api, body(nik=nik, birth_date=bd), "invalid_date", "birth_date")
        r = api.post(body(nik=nik, birth_date=bd))
        assert [e["field"] for e in r.json()["error"]["errors"]] == ["birth_date"], r.text
    # A date written DD-MM-YYYY is refused with its YYYY-MM-DD form offered.
    for bd in ["12-05-1990", "12/05/1990", "12.05.1990"]:
        for err in refused(api, body(nik=nik, birth_date=bd), "invalid_date", "birth_date"):
            assert err.get("suggestion") == "1990-05-12", err
            assert err["errors"][0].get("suggestion") == "1990-05-12", err
    assert rd.registered_ids() == []
    # A real leap day is fine.
    accepted(api, body(nik=nik_for("2000-02-29"), birth_date="2000-02-29"))
    rd.close()


def _years_before(d, n):
    """The date N years before D, or None when that day does not exist (29 February)."""
    try:
        return d.replace(year=d.year - n)
    except ValueError:
        return None


def test_working_age_bounds_from_config(make_gateway, redis):
    g, api, rd = start(make_gateway, redis, {"registration.min_age_years": 20,
                                              "registration.max_age_years": 50})
    for attempt in range(2):      # retried once if the day changes under the test
        today = date.today()
        ok, young, old = [], [], []
        b20 = _years_before(today, 20)
        b51 = _years_before(today, 51)
        if b20:
            ok.append(b20)                          # 20 today: just old enough
            young.append(b20 + timedelta(days=1))   # 20 tomorrow
        if b51:
            old.append(b51)                         # 51 today: too old
            ok.append(b51 + timedelta(days=1))      # 50 until tomorrow
        young += [today, today - timedelta(days=365 * 10)]
        old += [date(1950, 1, 1), date(1901, 6, 15)]
        ok.append(today - timedelta(days=365 * 35))
        for bd in young:
            for err in refused(api, body(nik=nik_for(bd), birth_date=bd.isoformat()),
                               "too_young", "birth_date"):
                # The message names the configured bounds.
                assert "20" in err["message"] and "50" in err["message"], err
        for bd in old:
            for err in refused(api, body(nik=nik_for(bd), birth_date=bd.isoformat()),
                               "too_old", "birth_date"):
                assert "20" in err["message"] and "50" in err["message"], err
        for bd in ok:
            accepted(api, body(nik=nik_for(bd), birth_date=bd.isoformat()))
        if date.today() == today:
            break
    assert len(rd.registered_ids()) >= 3
    rd.close()


def test_nik_birth_date_mismatch_and_confirmation(make_gateway, redis):
    g, api, rd = start(make_gateway, redis)
    # The NIK says 12-05-90; each birth date below disagrees in the day, month or year.
    for bd in ["1990-05-13", "1990-06-12", "1991-05-12", "1980-01-01"]:
        nik = nik_for("1990-05-12")
        refused(api, body(nik=nik, birth_date=bd), "nik_birth_date_mismatch", "birth_date")
        r = api.post(body(nik=nik, birth_date=bd))
        assert [(e["field"], e["code"]) for e in r.json()["error"]["errors"]] == \
            [("birth_date", "nik_birth_date_mismatch")], r.text
        # Only a JSON true confirms.
        for not_true in ["true", 1, "yes"]:
            r = api.post(body(nik=nik, birth_date=bd, confirm_mismatch=not_true))
            assert (r.status_code, code(r)) == (422, "nik_birth_date_mismatch"), r.text
        rid = accepted(api, body(nik=nik, birth_date=bd, confirm_mismatch=True))
        rec = rd.record(rid)
        assert rec["birth_date"] == bd and rec["nik"] == nik, rec
        assert rec.get("confirm_mismatch") == "1", rec
    # A woman's NIK carries day + 40: it matches without any confirmation.
    nik_w = nik_for("1990-05-12", female=True)
    assert nik_w[6:8] == "52"
    rid = accepted(api, body(nik=nik_w, birth_date="1990-05-12"))
    assert rd.hgetall(f"antre:{{intake}}:reg:{rid}").get("confirm_mismatch") == "0"
    nik_w = nik_for("1985-11-03", female=True)
    accepted(api, body(nik=nik_w, birth_date="1985-11-03"))
    # ...but a woman's NIK with another day still disagrees.
    refused(api, body(nik=nik_for("1990-05-12", female=True), birth_date="1990-05-22"),
            "nik_birth_date_mismatch", "birth_date")
    # A NIK is judged on its own first: confirm_mismatch does not rescue an invalid one.
    refused(api, body(nik="3171015213900001", birth_date="1990-05-12", confirm_mismatch=True),
            "nik_invalid_date", "nik")
    rd.close()


def test_email_rules(make_gateway, redis):
    g, api, rd = start(make_gateway, redis)
    for email, want in [("siti", "invalid_email"),
                        ("siti@", "invalid_email"),
                        ("@gmail.com", "invalid_email"),
                        ("siti@@gmail.com", "invalid_email"),
                        ("siti@ex@ample.com", "invalid_email"),
                        ("si ti@example.com", "invalid_email"),
                        ("siti@example", "invalid_email"),
                        ("siti@exa_mple.com", "invalid_email"),
                        ("siti@-example.com", "invalid_email"),
                        ("siti@example.c0m", "invalid_email"),
                        (".siti@example.com", "invalid_email"),
                        ("si..ti@example.com", "invalid_email"),
                        ("sítí@example.com", "invalid_email"),
                        ("a" * 65 + "@example.com", "email_too_long"),
                        ("a@" + ".".join(["b" * 63] * 3 + ["b" * 57]) + ".com", "email_too_long")]:
        refused(api, body(email=email), want, "email")
    # Common providers' typos: refused with the provider offered, accepted once confirmed.
    for email, suggestion in [("siti@gmial.com", "gmail.com"),
                              ("siti@gmail.co", "gmail.com"),
                              ("siti@gmai.com", "gmail.com"),
                              ("siti@yaho.co.id", "yahoo.co.id"),
                              ("siti@hotmial.com", "hotmail.com")]:
        for err in refused(api, body(email=email), "email_typo", "email"):
            assert err.get("suggestion") == suggestion, err
            assert err["errors"][0].get("suggestion") == suggestion, err
            assert suggestion in err["message"], err
        r = api.post(body(email=email, confirm_email="true"))
        assert (r.status_code, code(r)) == (422, "email_typo"), r.text
        rid = accepted(api, body(email=email, confirm_email=True))
        assert rd.record(rid)["email"] == email
    assert len(rd.registered_ids()) == 5
    # Well-known domains are no typos; the domain is lowercased, the local part kept.
    for email, stored in [("siti@gmail.com", "siti@gmail.com"),
                          ("siti@mail.com", "siti@mail.com"),
                          ("Siti.Aminah+prakerja@GMAIL.COM", "Siti.Aminah+prakerja@gmail.com"),
                          ("  siti@yahoo.co.id ", "siti@yahoo.co.id")]:
        rid = accepted(api, body(email=email))
        assert rd.record(rid)["email"] == stored
    rd.close()


def test_phone_normalisation_and_rules(make_gateway, redis):
    g, api, rd = start(make_gateway, redis)
    for phone, stored in [("0812-3456-7890", "+6281234567890"),
                          ("081234567890", "+6281234567890"),
                          ("(0812) 3456 7890", "+6281234567890"),
                          ("+62 812 3456 7890", "+6281234567890"),
                          ("+62 0812 3456 7890", "+6281234567890"),
                          ("6281234567890", "+6281234567890"),
                          ("81234567890", "+6281234567890"),
                          ("0812.3456.789", "+628123456789"),
                          ("0811234567", "+62811234567"),            # 10 digits
                          ("0812345678901", "+62812345678901")]:     # 13 digits
        rid = accepted(api, body(phone=phone))
        assert rd.record(rid)["phone"] == stored, phone
    for phone, want in [("0812345abc", "invalid_phone"),
                        ("0812/3456/7890", "invalid_phone"),
                        ("+", "invalid_phone"),
                        ("---", "invalid_phone"),
                        ("+1 415 555 0100", "phone_not_indonesian"),
                        ("+60 12 345 6789", "phone_not_indonesian"),
                        ("021-555-1234", "phone_not_mobile"),
                        ("+62 21 5551234", "phone_not_mobile"),
                        ("08123", "phone_wrong_length"),
                        ("081234567", "phone_wrong_length"),          # 9 digits
                        ("08123456789012", "phone_wrong_length")]:    # 14 digits
        refused(api, body(phone=phone), want, "phone")
    assert len(rd.registered_ids()) == 10
    rd.close()


def test_name_rules(make_gateway, redis):
    g, api, rd = start(make_gateway, redis)
    for name, stored in [("Siti Aminah", "Siti Aminah"),
                         ("  Siti    Aminah  ", "Siti Aminah"),
                         ("Dédé Sofyan", "Dédé Sofyan"),
                         ("Ñoño Ibáñez", "Ñoño Ibáñez"),
                         ("张伟", "张伟"),
                         ("Muḥammad ʿAlī", "Muḥammad ʿAlī"),
                         ("محمد علي", "محمد علي"),
                         ("O'Brien-Putri, S.Kom.", "O'Brien-Putri, S.Kom."),
                         ("A" * 100, "A" * 100)]:
        rid = accepted(api, body(name=name))
        assert rd.record(rid)["name"] == stored, name
    for name, want in [("Siti2", "name_invalid_character"),
                       ("Siti Aminah 3", "name_invalid_character"),
                       ("Siti ١٢", "name_invalid_character"),         # Arabic-Indic digits
                       ("Siti ２", "name_invalid_character"),          # fullwidth digit
                       ("Siti\tAminah", "name_invalid_character"),
                       ("Siti\nAminah", "name_invalid_character"),
                       ("Siti\u200bAminah", "name_invalid_character"),  # zero-width space
                       ("Siti <b>", "name_invalid_character"),
                       ("Siti@Aminah", "name_invalid_character"),
                       ("...", "name_no_letters"),
                       ("- -", "name_no_letters"),
                       ("S", "name_too_short"),
                       ("A" * 101, "name_too_long")]:
        refused(api, body(name=name), want, "name")
    assert len(rd.registered_ids()) == 9
    rd.close()


def test_overlong_values_get_their_fields_length_code(make_gateway, redis):
    """However long a value, the refusal is the field's own length code (validate.h), not a
    generic one: an applicant who pasted too much is told what the limit is."""
    g, api, rd = start(make_gateway, redis)
    wrong = []
    for f, v, want in [("nik", "3" * 100, "nik_wrong_length"),
                       ("kk", "3" * 100, "kk_wrong_length"),
                       ("email", "a@" + ".".join(["b" * 60] * 5) + ".com", "email_too_long"),
                       ("email", "a@" + "b" * 4000 + ".com", "email_too_long"),
                       ("phone", "0812" + "3" * 100, "phone_wrong_length"),
                       ("name", "A" * 500, "name_too_long"),
                       ("birth_date", "1990-05-12" + " " * 100, "invalid_date")]:
        r = api.post(body(**{f: v}))
        assert r.status_code == 422, r.text
        err = r.json()["error"]
        if (err["field"], err["code"]) != (f, want):
            wrong.append((f, len(v), want, err["code"]))
    assert wrong == [], wrong
    assert rd.registered_ids() == []
    rd.close()


def test_required_fields_and_all_errors_listed(make_gateway, redis):
    g, api, rd = start(make_gateway, redis)
    for f in FIELDS:
        refused(api, body(**{f: None}), "required", f)        # missing
        refused(api, body(**{f: ""}), "required", f)          # empty
        refused(api, body(**{f: "   "}), "required", f)       # blank
    # A field of the wrong JSON type is refused on that field too.
    for f in FIELDS:
        for v in [12345, None, True, ["x"], {"x": 1}]:
            b = body()
            b[f] = v
            r = api.post(b)
            assert r.status_code == 422, (f, v, r.text)
            err = r.json()["error"]
            assert err["field"] == f, (f, v, err)
            assert [e["field"] for e in err["errors"]] == [f], err
    # Nothing at all: every field is listed as required, in both languages.
    for en in (False, True):
        r = api.post({}, en=en)
        assert r.status_code == 422, r.text
        err = r.json()["error"]
        assert err["code"] == "required" and err["field"] == "nik", err
        assert sorted(e["field"] for e in err["errors"]) == sorted(FIELDS), err
        assert all(e["code"] == "required" and e["message"].strip() for e in err["errors"])
    # Several wrong fields: the answer lists them all, the first as its own field.
    b = body(nik="12345", name="S1ti", email="siti@gmial.com", phone="021-555-1234")
    msgs = {}
    for en in (False, True):
        r = api.post(b, en=en)
        assert r.status_code == 422, r.text
        err = r.json()["error"]
        assert (err["code"], err["field"]) == ("nik_wrong_length", "nik"), err
        got = {e["field"]: e for e in err["errors"]}
        assert {f: e["code"] for f, e in got.items()} == {
            "nik": "nik_wrong_length", "name": "name_invalid_character",
            "email": "email_typo", "phone": "phone_not_mobile"}, err
        assert got["email"]["suggestion"] == "gmail.com"
        msgs[en] = {f: e["message"] for f, e in got.items()}
    for f in msgs[False]:
        assert msgs[False][f] and msgs[True][f] and msgs[False][f] != msgs[True][f], f
    assert rd.registered_ids() == []
    rd.close()


def test_invalid_json(make_gateway, redis):
    g, api, rd = start(make_gateway, redis)
    for raw in [b"{", b"", b"[]", b"null", b'"nik"', b"42", b"{nik: 1}",
                b'{"nik": "3171011205900001",}', b"\xff\xfe{}",
                json.dumps(body()).encode() + b" trailing"]:
        msgs = []
        for en in (False, True):
            r = api.post(None, raw=raw, en=en)
            assert (r.status_code, code(r)) == (400, "invalid_json"), (raw, r.text)
            msgs.append(r.json()["error"]["message"])
        assert msgs[0].strip() and msgs[1].strip() and msgs[0] != msgs[1], msgs
    assert rd.registered_ids() == []
    rd.close()


# --- durable 202 -----------------------------------------------------------------------------

def test_202_only_after_record_and_stream_entry(make_gateway, redis):
    g, api, rd = start(make_gateway, redis)
    sid = session_sid(api.session)
    seen = []
    for i in range(20):
        b = body(phone="0812-3456-7890", name=" Siti  Aminah ", email="Siti@Example.COM")
        r = api.post(b)
        assert r.status_code == 202, r.text
        assert r.headers.get("Content-Type", "").startswith("application/json")
        j = r.json()
        assert set(j) == {"id", "status_url"}, j
        rid = j["id"]
        assert re.fullmatch(r"[0-9a-f]{32}", rid), rid
        assert j["status_url"] == f"/v1/registrations/{rid}"
        # Right after the answer, with nothing else in between: the record and its job exist.
        rec = rd.record(rid)
        assert rec, f"no record for {rid} at the time of the 202"
        ids = rd.registered_ids()
        assert rid in ids, f"no register stream entry for {rid} at the time of the 202"
        assert ids.count(rid) == 1
        assert {k: rec.get(k) for k in FIELDS} == {
            "nik": b["nik"], "kk": b["kk"], "name": "Siti Aminah", "birth_date": "1990-05-12",
            "email": "Siti@example.com", "phone": "+6281234567890"}, rec
        assert rec["room"] == "w" and rec["owner"] == sid, rec
        assert rec["email_state"] == "unverified" and rec["phone_state"] == "unverified", rec
        assert abs(int(rec["created_at"]) - time.time()) < 3600, rec
        seen.append(rid)
    assert len(set(seen)) == 20
    assert rd.registered_ids() == seen
    rd.close()


# --- one registration per NIK ----------------------------------------------------------------

def test_one_registration_per_nik_and_no_nik_in_key_names(make_gateway, redis):
    g, api, rd = start(make_gateway, redis)
    b = body()
    nik = b["nik"]
    rid = accepted(api, b)

    def dup(a, bb, **kw):
        msgs = []
        for en in (False, True):
            r = a.post(bb, en=en, **kw)
            assert (r.status_code, code(r)) == (409, "duplicate_nik"), r.text
            err = r.json()["error"]
            assert err.get("field") == "nik", err
            assert err["message"].strip()
            assert rid not in r.text, "a duplicate answer must not reveal the existing id"
            msgs.append(err["message"])
        assert msgs[0] != msgs[1], msgs

    # The same session again, even with other details: its own registration, replayed
    # (issue 11: an answer lost to a Redis timeout must not lock the NIK out).
    for bb in (b, body(nik=nik, name="Budi Santoso", email="budi@example.com")):
        r = api.post(bb)
        assert (r.status_code, r.json().get("id")) == (202, rid), r.text
        assert r.headers.get("Idempotent-Replayed") == "true", r.headers
    other = Api(g, join(g))                                     # another applicant's session
    dup(other, body(nik=nik, phone="081398765432"))
    named = Api(g, join(g, applicant="3171019999990001"))       # a session named by applicant
    dup(named, body(nik=nik))
    assert rd.registered_ids() == [rid]

    more = [accepted(other, body()), accepted(named, body())]
    assert rd.registered_ids() == [rid] + more

    # The dedupe keys are HMACs: no key name anywhere holds a NIK (the record's value does).
    keys = rd.all_keys()
    regs = [k for k in keys if k.startswith("antre:{intake}:reg:")]
    assert len(regs) == 3
    niks = [rd.record(k.rsplit(":", 1)[1])["nik"] for k in regs]
    assert nik in niks
    for n in niks:
        assert not [k for k in keys if n in k], (n, keys)
        # Nor any of its obvious unkeyed hashes.
        for h in [hashlib.sha256(n.encode()).hexdigest(), hashlib.sha1(n.encode()).hexdigest(),
                  hashlib.md5(n.encode()).hexdigest(),
                  hashlib.sha256(b"nik\n" + n.encode()).hexdigest()]:
            assert not [k for k in keys if h in k], (n, h)
    dedupe = sorted(k for k in keys if k.startswith("antre:{intake}:nik:"))
    assert len(dedupe) == 3, keys
    for k in dedupe:
        assert re.fullmatch(r"antre:\{intake\}:nik:[0-9a-f]{64}", k), k
    assert sorted(rd("GET", k).decode() for k in dedupe) == sorted([rid] + more)
    rd.close()


def test_one_registration_per_nik_under_concurrency(make_gateway, redis):
    g, api, rd = start(make_gateway, redis)
    apis = [api] + [Api(g, join(g)) for _ in range(5)]
    total = 0
    for round_ in range(10):
        nik = nik_for("1990-05-12")
        out = [None] * len(apis)
        barrier = threading.Barrier(len(apis))

        def one(i):
            try:
                barrier.wait(HANG)
                out[i] = apis[i].post(body(nik=nik))
            except Exception as e:  # reported below
                out[i] = e

        ts = [threading.Thread(target=one, args=(i,)) for i in range(len(apis))]
        for t in ts:
            t.start()
        for t in ts:
            t.join(HANG * 2)
        assert not any(t.is_alive() for t in ts)
        got = sorted((r.status_code, code(r)) for r in out)
        assert got == [(202, None)] + [(409, "duplicate_nik")] * (len(apis) - 1), out
        total += 1
        assert len(rd.registered_ids()) == total
    rd.close()


def test_redis_unavailable(make_gateway, redis):
    g, api, rd = start(make_gateway, redis)
    rid = accepted(api, body())
    rd.close()
    down = 'antre_refusals_total{reason="redis_down"}'
    before = g.metrics().get(down, 0)
    redis.stop()
    for r in [api.post(body()), api.post(body(), idem="down-1"), api.status(rid)]:
        assert (r.status_code, code(r)) == (503, "redis_unavailable"), r.text
        assert int(r.headers["Retry-After"]) > 0, r.headers
        assert r.json()["error"]["retry_after_s"] > 0
    assert g.metrics().get(down, 0) == before + 3  # each answer counted once
    # The session gate asks Redis whether the session has left, so even a wrong field waits
    # for Redis (no request of an ended session gets past the gate while Redis cannot tell).
    r = api.post(body(phone="0812"))
    assert (r.status_code, code(r)) == (503, "redis_unavailable"), r.text
    redis.start()
    b = body()
    deadline = time.monotonic() + HANG
    while True:
        r = api.post(b, idem="down-1")
        if r.status_code != 503 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert r.status_code == 202, r.text
    rd = Resp(redis.port)
    assert rd.registered_ids() == [r.json()["id"]]
    rd.close()


def test_content_type_must_be_json(make_gateway, redis):
    """DESIGN.md's API table: POST /v1/registrations answers 415 to a body that is not JSON."""
    g, api, rd = start(make_gateway, redis)
    for ct in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; b=x",
               "application/xml"]:
        msgs = []
        for en in (False, True):
            r = api.post(body(), en=en, headers={"Content-Type": ct})
            assert r.status_code == 415, (ct, r.status_code, r.text)
            assert r.json()["error"]["message"].strip()
            msgs.append(r.json()["error"]["message"])
        assert msgs[0] != msgs[1]
    assert rd.registered_ids() == []
    for ct in ["application/json", "application/json; charset=utf-8", "Application/JSON"]:
        accepted(api, body(), headers={"Content-Type": ct})
    rd.close()


# --- Idempotency-Key -------------------------------------------------------------------------

def _idem_key(owner, key):
    return f"antre:{{intake}}:idem:{owner}:{hashlib.sha256(key.encode()).hexdigest()}"


def test_idempotency_replay_reuse_and_scope(make_gateway, redis):
    g, api, rd = start(make_gateway, redis)
    b = body()
    raw = json.dumps(b).encode()
    r1 = api.post(None, raw=raw, idem="k-1")
    assert r1.status_code == 202, r1.text
    assert "Idempotent-Replayed" not in r1.headers
    rid = r1.json()["id"]
    # The same key and body: the first answer again, marked as a replay; no second job.
    for en in (False, True):
        r = api.post(None, raw=raw, idem="k-1", en=en)
        assert r.status_code == 202, r.text
        assert r.json() == r1.json()
        assert r.headers.get("Idempotent-Replayed") == "true", r.headers
    assert rd.registered_ids() == [rid]
    # The key is kept 24 h (the default idempotency_ttl_s), under the session's owner.
    ttl = rd("TTL", _idem_key(session_sid(api.session), "k-1"))
    assert 86400 - 120 < ttl <= 86400, ttl
    # The same key with another body: refused, in both languages.
    msgs = []
    for en in (False, True):
        r = api.post(body(), idem="k-1", en=en)
        assert (r.status_code, code(r)) == (422, "idempotency_key_reused"), r.text
        assert r.json()["error"].get("field") == "Idempotency-Key"
        msgs.append(r.json()["error"]["message"])
        # A different body even if it is just the same JSON written differently.
        r = api.post(None, raw=json.dumps(b, indent=1).encode(), idem="k-1", en=en)
        assert (r.status_code, code(r)) == (422, "idempotency_key_reused"), r.text
    assert msgs[0].strip() and msgs[1].strip() and msgs[0] != msgs[1]
    assert rd.registered_ids() == [rid]

    # Keys are scoped per session: another session's same key and same body is its own
    # attempt (same NIK, so a duplicate, not a replay of the first session's answer).
    other = Api(g, join(g))
    r = other.post(None, raw=raw, idem="k-1")
    assert (r.status_code, code(r)) == (409, "duplicate_nik"), r.text
    assert "Idempotent-Replayed" not in r.headers
    # ...and that 409 is what the key now answers for that session.
    r = other.post(None, raw=raw, idem="k-1")
    assert (r.status_code, code(r)) == (409, "duplicate_nik"), r.text
    assert r.headers.get("Idempotent-Replayed") == "true"
    # Another session, the same key, a new NIK: a registration of its own.
    b2 = body()
    r = other.post(b2, idem="k-2")
    r_first = api.post(body(), idem="k-2")
    assert r.status_code == 202 and r_first.status_code == 202, (r.text, r_first.text)
    assert len({rid, r.json()["id"], r_first.json()["id"]}) == 3
    assert "Idempotent-Replayed" not in r.headers and "Idempotent-Replayed" not in r_first.headers
    assert len(rd.registered_ids()) == 3

    # A refusal by validation does not use the key up: fix the body, same key -> 202.
    bad = body(phone="021-555-1234")
    r = api.post(bad, idem="k-3")
    assert (r.status_code, code(r)) == (422, "phone_not_mobile"), r.text
    assert rd("EXISTS", _idem_key(session_sid(api.session), "k-3")) == 0
    r = api.post(bad, idem="k-3")
    assert (r.status_code, code(r)) == (422, "phone_not_mobile"), r.text
    assert "Idempotent-Replayed" not in r.headers
    fixed = dict(bad, phone="081234567890")
    r = api.post(fixed, idem="k-3")
    assert r.status_code == 202, r.text
    assert "Idempotent-Replayed" not in r.headers
    r2 = api.post(fixed, idem="k-3")
    assert r2.status_code == 202 and r2.json() == r.json(), r2.text
    assert r2.headers.get("Idempotent-Replayed") == "true"
    assert len(rd.registered_ids()) == 4

    # Key length: 1-128 characters.
    r = api.post(body(), idem="k" * 129)
    assert (r.status_code, code(r)) == (400, "invalid_idempotency_key"), r.text
    r = api.post(body(), idem="k" * 128)
    assert r.status_code == 202, r.text
    assert len(rd.registered_ids()) == 5
    rd.close()


def test_idempotency_in_flight(make_gateway, redis):
    g, api, rd = start(make_gateway, redis)
    owner = session_sid(api.session)
    b = body()
    raw = json.dumps(b).encode()
    key = _idem_key(owner, "flight")
    # The state a first request leaves while it is being written: a pending claim.
    rd("SET", key, "pending:" + hashlib.sha256(raw).hexdigest(), "EX", 60)
    msgs = []
    for en in (False, True):
        r = api.post(None, raw=raw, idem="flight", en=en)
        assert (r.status_code, code(r)) == (409, "idempotency_in_flight"), r.text
        msgs.append(r.json()["error"]["message"])
    assert msgs[0].strip() and msgs[1].strip() and msgs[0] != msgs[1]
    # Another body under the pending key is a reuse, not a wait.
    r = api.post(body(), idem="flight")
    assert (r.status_code, code(r)) == (422, "idempotency_key_reused"), r.text
    assert rd.registered_ids() == []
    # The claim lapses (or the first request ends without an answer): the retry goes through.
    rd("DEL", key)
    r = api.post(None, raw=raw, idem="flight")
    assert r.status_code == 202, r.text
    assert rd.registered_ids() == [r.json()["id"]]
    assert rd("GET", key).decode().startswith("done:")
    rd.close()


def _send(port, req, out, i, barrier):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=HANG) as s:
            barrier.wait(HANG)
            s.sendall(req)
            out[i] = parse_responses(read_all(s, HANG))
    except Exception as e:  # reported by the caller
        out[i] = e


def test_idempotency_concurrent_retries(make_gateway, redis):
    g, api, rd = start(make_gateway, redis)
    outcomes = set()
    registered = 0
    for round_ in range(25):
        raw = json.dumps(body()).encode()
        req = (b"POST /v1/registrations HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
               b"Authorization: Bearer " + api.session.encode() + b"\r\n"
               b"Content-Type: application/json\r\nIdempotency-Key: race-%d\r\n"
               b"Content-Length: %d\r\n\r\n" % (round_, len(raw)) + raw)
        out = [None, None]
        barrier = threading.Barrier(2)
        ts = [threading.Thread(target=_send, args=(g.port, req, out, i, barrier))
              for i in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(HANG * 2)
        assert not any(t.is_alive() for t in ts)
        answers = []
        for o in out:
            assert isinstance(o, list) and len(o) == 1, o
            st, hd, bd = o[0]
            answers.append((st, hd.get("idempotent-replayed"), json.loads(bd)))
        firsts = [a for a in answers if a[0] == 202 and a[1] is None]
        assert len(firsts) == 1, answers        # exactly one request registered
        rid = firsts[0][2]["id"]
        other = [a for a in answers if a is not firsts[0]][0]
        if other[0] == 202:
            assert other[1] == "true" and other[2]["id"] == rid, answers
            outcomes.add("replay")
        else:
            assert (other[0], other[2]["error"]["code"]) == (409, "idempotency_in_flight"), \
                answers
            outcomes.add("in_flight")
        registered += 1
        assert len(rd.registered_ids()) == registered
    assert outcomes <= {"replay", "in_flight"}
    rd.close()


# --- status checklist ------------------------------------------------------------------------

def test_status_checklist(make_gateway, redis):
    g, api, rd = start(make_gateway, redis, {"upload.max_bytes": "7M"})
    rid = accepted(api, body(email="siti.aminah@gmail.com", phone="0812-3456-7890"))

    views = {}
    for en in (False, True):
        r = api.status(rid, en=en)
        assert r.status_code == 200, r.text
        j = r.json()
        assert j["id"] == rid and j["state"] == "incomplete", j
        checks = j["checks"]
        assert set(checks) == {"email", "phone", "ktp", "selfie", "registry"}, j
        assert checks["registry"]["state"] == "pending" and checks["registry"]["hint"], j
        for k in ("email", "phone"):
            assert checks[k]["state"] == "unverified", checks
        em, ph = checks["email"]["hint"], checks["phone"]["hint"]
        # Masked: enough to recognise, never the whole address or number.
        assert "s***@gmail.com" in em, em
        assert "siti.aminah@" not in em
        assert "+62 812 **** 7890" in ph, ph  # issue 9: the masked form shown everywhere
        assert "+6281234567890" not in ph and "081234567890" not in ph, ph
        for k in ("ktp", "selfie"):
            c = checks[k]
            assert c["state"] == "missing", checks
            assert "JPEG" in c["hint"] and "PNG" in c["hint"] and "7 MB" in c["hint"], c
        assert j["next_steps"] == [checks[k]["hint"] for k in ("email", "phone", "ktp", "selfie")]
        views[en] = j
    for k in ("email", "phone", "ktp", "selfie"):
        assert views[False]["checks"][k]["hint"] != views[True]["checks"][k]["hint"], k
    assert "spam" in views[True]["checks"]["email"]["hint"]

    # As a worker would: the KTP photo rejected with a reason and a hint, the selfie accepted.
    reg = f"antre:{{intake}}:reg:{rid}"
    ktp_hint = "Foto KTP buram; foto ulang di tempat terang dan pastikan tulisan terbaca."
    rd("HSET", reg, "ktp_upload", "u-ktp", "selfie_upload", "u-selfie")
    rd("HSET", "antre:{intake}:upl:u-ktp", "state", "rejected", "reason", "too_blurry",
       "hint", ktp_hint)
    rd("HSET", "antre:{intake}:upl:u-selfie", "state", "accepted",
       "hint", "Swafoto diterima.")
    j = api.status(rid).json()
    assert j["checks"]["ktp"] == {"state": "rejected", "reason": "too_blurry", "hint": ktp_hint}
    assert j["checks"]["selfie"]["state"] == "accepted", j
    assert j["checks"]["selfie"]["hint"] == "Swafoto diterima."
    assert ktp_hint in j["next_steps"]
    assert j["checks"]["selfie"]["hint"] not in j["next_steps"]
    assert len(j["next_steps"]) == 3 and j["state"] == "incomplete"
    # Still being checked.
    rd("HSET", "antre:{intake}:upl:u-ktp", "state", "processing")
    rd("HDEL", "antre:{intake}:upl:u-ktp", "reason", "hint")
    j = api.status(rid).json()
    assert j["checks"]["ktp"]["state"] == "processing" and j["checks"]["ktp"]["hint"], j
    # Everything done.
    rd("HSET", "antre:{intake}:upl:u-ktp", "state", "accepted")
    rd("HSET", reg, "email_state", "verified", "phone_state", "verified")
    rd("HSET", reg, "state", "accepted")  # as the worker's register job does
    j = api.status(rid).json()
    assert j["state"] == "complete" and j["next_steps"] == [], j
    assert all(j["checks"][k]["state"] in ("verified", "accepted") for k in j["checks"]), j
    rd.close()


def test_status_owner_only(make_gateway, redis):
    g, api, rd = start(make_gateway, redis)
    rid = accepted(api, body())
    other = Api(g, join(g))
    named = Api(g, join(g, applicant="3171019999990002"))
    for who in (other, named):
        msgs = []
        for en in (False, True):
            r = who.status(rid, en=en)
            assert (r.status_code, code(r)) == (403, "not_owner"), r.text
            msgs.append(r.json()["error"]["message"])
        assert msgs[0].strip() and msgs[1].strip() and msgs[0] != msgs[1]
    # Made-up ids of the right shape are not the applicant's: 403; malformed ones: 404.
    for made_up in ["0" * 32, "f" * 32, rid[:16] + "0" * 16]:
        r = api.status(made_up)
        assert (r.status_code, code(r)) == (403, "not_owner"), (made_up, r.text)
    for bad in ["xyz", rid[:31], rid + "0", rid.upper(), "g" * 32]:
        r = api.status(bad)
        assert r.status_code == 404, (bad, r.text)
        assert code(r) in ("unknown_registration", "not_found"), r.text
    # The owner's id whose record is gone: 404.
    assert api.status(rid).status_code == 200
    rd("DEL", f"antre:{{intake}}:reg:{rid}")
    r = api.status(rid)
    assert (r.status_code, code(r)) == (404, "unknown_registration"), r.text
    rd.close()


# --- the programme's name from the configuration ----------------------------------------------

def test_checklist_hints_name_the_configured_programme(make_gateway, redis):
    """[programme] name (or sender_name when set) is whom the email hint names, reloadable."""
    g, api, rd = start(make_gateway, redis, {"programme.name": "Program Uji Coba"})
    rid = accepted(api, body(email="siti.aminah@gmail.com", phone="0812-3456-7890"))
    for en in (False, True):
        hint = api.status(rid, en=en).json()["checks"]["email"]["hint"]
        assert "Program Uji Coba" in hint and "Kartu Prakerja" not in hint, hint

    def email_hint():
        return api.status(rid, en=True).json()["checks"]["email"]["hint"]

    g.write_conf({"programme.sender_name": "Tim Verifikasi"})
    g.signal(signal.SIGHUP)
    conftest.wait_for(lambda: "Tim Verifikasi" in email_hint(), timeout=10, what="reload")
    assert "Program Uji Coba" not in email_hint()


def test_no_programme_name_is_written_into_the_c_sources():
    hits = []
    for top in ("gateway", "common", "worker", "include"):
        for dirpath, _, files in os.walk(os.path.join(conftest.ROOT, top)):
            for name in files:
                if name.endswith((".c", ".h")):
                    with open(os.path.join(dirpath, name), encoding="utf-8") as f:
                        if "Prakerja" in f.read():
                            hits.append(os.path.join(dirpath, name))
    assert hits == [], hits
