"""System tests of applicant tokens (issue 10, item 3): a join binds to an applicant only with a
JWT that the room's `applicant_key_file` verifies, never with a bare identifier.

With a key configured, two clients holding tokens for the same `sub` get the same place (or the
same session, and so the same owner of what it creates), for HS256, RS256 and ES256; a raw
string, a forged, tampered, expired, not-yet-valid or wrong-audience token, `alg: none` and an
HS256 token "signed" with the public key's text are refused 400 `invalid_applicant_token` with
the reason; a token for another `sub` cannot read the first applicant's registration. Without a
key a join naming an applicant is refused (`applicant_binding_off`). The key file is checked by
`antre-gateway -t`, refused at start, and re-read on SIGHUP (a bad new file keeps the running
key). No token or secret reaches a log.

Tokens are minted with Python's hmac and the openssl command line (applicant_tokens.py). Each
test has its own redis-server and gateways (conftest fixtures), all on loopback.
"""
import os
import signal
import subprocess
import time

import requests

import applicant_tokens as at
from conftest import GATEWAY, wait_for
from test_registration import Api, accepted, body, code

HANG = 10.0  # seconds: a hang guard for each request

FREE = {"max_active": 100000, "admit_rate_per_min": 600000, "session_ttl_s": 3600,
        "redeem_window_s": 300}
HOLD = {"max_active": 1, "admit_rate_per_min": 0.01, "session_ttl_s": 600,
        "redeem_window_s": 300}


def room(name, **kw):
    return {f"room.{name}.{k}": v for k, v in kw.items()}


def join(g, token=None, name="w", en=False):
    h = {"Accept-Language": "en"} if en else {}
    kw = {"json": {"applicant": token}} if token is not None else {}
    return requests.post(g.url(f"/v1/rooms/{name}/join"), headers=h, timeout=HANG, **kw)


def session_of(r):
    assert r.status_code == 200 and r.json()["state"] == "admitted", r.text
    return r.json()["session"]


def ticket_of(r):
    assert r.status_code == 202 and r.json()["state"] == "waiting", r.text
    return r.json()["ticket"]


def refused(r, reason, status=400, want="invalid_applicant_token"):
    assert (r.status_code, code(r)) == (status, want), r.text
    err = r.json()["error"]
    assert err.get("field") == "applicant", err
    if reason:
        assert err.get("reason") == reason, err
    assert err["message"].strip()
    return err


def place_of(g, ticket):
    """(place, applicant hash) from a ticket's signed payload T|room|place|issued|applicant."""
    p = at.b64url_decode(ticket.split(".")[2]).decode().split("|")
    assert p[0] == "T" and len(p) == 5, p
    return int(p[2]), p[4]


def fill(g, name="w"):
    """Take the one slot of a HOLD room, so that every later join waits (and gets a place)."""
    wait_for(lambda: not requests.get(g.url(f"/v1/rooms/{name}"), timeout=HANG).json()["stale"],
             what="fresh room cache")
    session_of(join(g, name=name))


# --- binding -------------------------------------------------------------------------------

def test_same_sub_same_place_with_each_algorithm(make_gateway, workdir):
    """HS256, RS256 and ES256: tokens for one sub share a place, another sub gets its own."""
    secret = at.write_secret(workdir)
    rsa_priv, rsa_pub = at.make_keypair(workdir, "rsa")
    ec_priv, ec_pub = at.make_keypair(workdir, "ec")
    signers = {"HS256": at.SECRET, "RS256": rsa_priv, "ES256": ec_priv}
    keys = {"HS256": secret, "RS256": rsa_pub, "ES256": ec_pub}
    # One room per algorithm (one Redis): room hs256 verifies HS256 tokens, and so on.
    g = make_gateway({k: v for alg in keys
                      for k, v in room(alg.lower(), applicant_key_file=keys[alg], **HOLD).items()})
    for alg, signer in signers.items():
        name = alg.lower()
        fill(g, name)
        a1 = ticket_of(join(g, at.mint(at.claims("alice", name), alg, signer), name=name))
        a2 = ticket_of(join(g, at.mint(at.claims("alice", name, exp_in=600), alg, signer),
                            name=name))
        b = ticket_of(join(g, at.mint(at.claims("bob", name), alg, signer), name=name))
        assert place_of(g, a1) == place_of(g, a2), alg
        assert place_of(g, b)[0] != place_of(g, a1)[0], alg
        # the other algorithms' tokens are refused here
        for other, osigner in signers.items():
            if other != alg:
                r = join(g, at.mint(at.claims("alice", name), other, osigner), name=name)
                refused(r, "wrong_alg")


def test_same_sub_same_session_and_registration_owner(make_gateway, redis, workdir):
    """Admitted at once: a second token for the same sub gets the same session, and sees the
    registration the first created; a token for another sub cannot read it."""
    key = at.write_secret(workdir)
    g = make_gateway(room("w", applicant_key_file=key, **FREE))
    s1 = session_of(join(g, at.token("3171019999990011", "w")))
    s2 = session_of(join(g, at.token("3171019999990011", "w")))
    assert s1 == s2
    rid = accepted(Api(g, s1), body())
    r = Api(g, s2).status(rid)
    assert r.status_code == 200, r.text

    other = session_of(join(g, at.token("3171019999990012", "w")))
    assert other != s1
    r = Api(g, other).status(rid)
    assert (r.status_code, code(r)) == (403, "not_owner"), r.text
    anon = session_of(join(g))
    r = Api(g, anon).status(rid)
    assert (r.status_code, code(r)) == (403, "not_owner"), r.text
    # A raw string naming the same applicant gets nothing.
    refused(join(g, "3171019999990011"), "malformed")


# --- refusals ------------------------------------------------------------------------------

def test_raw_strings_and_bad_tokens_are_refused(make_gateway, workdir):
    rsa_priv, rsa_pub = at.make_keypair(workdir, "rsa")
    g = make_gateway(room("w", applicant_key_file=rsa_pub, **FREE))
    ok = at.mint(at.claims("alice", "w"), "RS256", rsa_priv)
    assert join(g, ok).status_code == 200

    # A raw string (what used to work as a password), and values that are not strings.
    msgs = {refused(join(g, "3171234567890123", en=en), "malformed")["message"]
            for en in (False, True)}
    assert len(msgs) == 2, msgs                # Indonesian and English
    assert any("sign in" in m for m in msgs), msgs
    for v in ("", 42, None, ["x"], {"sub": "alice"}):
        r = requests.post(g.url("/v1/rooms/w/join"), json={"applicant": v}, timeout=HANG)
        refused(r, "malformed")

    os.makedirs(os.path.join(workdir, "other"))
    other_priv, _ = at.make_keypair(os.path.join(workdir, "other"), "rsa")
    with open(rsa_pub) as f:
        pem = f.read()
    now = int(time.time())
    header, claims_part, sig = ok.split(".")
    evil = at.mint(at.claims("mallory", "w"), "RS256", rsa_priv).split(".")[1]
    cases = {
        "alg none": (at.mint(at.claims("alice", "w"), "none"), "wrong_alg"),
        "HS256 with the public key as secret": (
            at.mint(at.claims("alice", "w"), "HS256", pem), "wrong_alg"),
        "tampered payload": (f"{header}.{evil}.{sig}", "bad_signature"),
        "other key": (at.mint(at.claims("alice", "w"), "RS256", other_priv), "bad_signature"),
        "expired": (at.mint(at.claims("alice", "w", exp_in=-300), "RS256", rsa_priv), "expired"),
        "not yet valid": (at.mint(at.claims("alice", "w", nbf=now + 600), "RS256", rsa_priv),
                          "not_yet_valid"),
        "wrong audience": (at.mint(at.claims("alice", "other-room"), "RS256", rsa_priv),
                           "wrong_audience"),
        "no sub": (at.mint({"aud": "w", "exp": now + 60}, "RS256", rsa_priv), "bad_claims"),
    }
    for what, (tok, reason) in cases.items():
        r = join(g, tok)
        assert r.status_code == 400, (what, r.text)
        refused(r, reason)

    # Nothing of a token or a key reaches the log.
    log = g.read_log()
    for tok, _ in cases.values():
        for part in tok.split("."):
            if len(part) > 8:
                assert part not in log, part
    assert sig not in log and pem.splitlines()[1] not in log


def test_results_and_reused_signatures_are_counted(make_gateway, workdir):
    """/metrics counts every token by result, and says how many signatures libjwt checked and
    how many were settled by the verdict kept for a token seen before (a phone's retries)."""
    rsa_priv, rsa_pub = at.make_keypair(workdir, "rsa")
    g = make_gateway(room("w", applicant_key_file=rsa_pub, **FREE))
    ok = at.mint(at.claims("alice", "w"), "RS256", rsa_priv)
    for _ in range(3):
        assert join(g, ok).status_code == 200
    header, _, sig = ok.split(".")
    mallory = at.mint(at.claims("mallory", "w"), "RS256", rsa_priv).split(".")[1]
    tampered = f"{header}.{mallory}.{sig}"
    for _ in range(2):
        refused(join(g, tampered), "bad_signature")
    refused(join(g, at.mint(at.claims("bob", "w", exp_in=-300), "RS256", rsa_priv)), "expired")
    m = g.metrics()

    def tokens(result):
        return m[f'antre_room_applicant_tokens_total{{room="w",result="{result}"}}']
    assert (tokens("ok"), tokens("bad_signature"), tokens("expired")) == (3, 2, 1), m
    for other in ("malformed", "wrong_alg", "bad_claims", "not_yet_valid", "wrong_audience"):
        assert tokens(other) == 0, other
    sigs = {by: m[f'antre_room_applicant_token_signatures_total{{room="w",by="{by}"}}']
            for by in ("verified", "reused")}
    assert sigs == {"verified": 3, "reused": 3}, sigs


def test_configured_audience(make_gateway, workdir):
    key = at.write_secret(workdir)
    aud = "https://daftar.example.go.id/antrean"
    g = make_gateway(room("w", applicant_key_file=key, applicant_audience=aud, **FREE))
    refused(join(g, at.token("alice", "w")), "wrong_audience")
    assert join(g, at.token("alice", aud)).status_code == 200
    # aud as an array naming it
    assert join(g, at.mint(at.claims("alice", ["x", aud]))).status_code == 200


def test_without_a_key_binding_is_refused(make_gateway):
    g = make_gateway(room("w", **FREE))
    refused(join(g, at.token("alice", "w")), None, want="applicant_binding_off")
    refused(join(g, "3171234567890123"), None, want="applicant_binding_off")
    assert join(g).status_code == 200          # anonymous joins are unchanged


# --- the key file --------------------------------------------------------------------------

def check(conf_path):
    p = subprocess.run([GATEWAY, "-t", "-c", conf_path], capture_output=True, text=True,
                       timeout=30)
    return p.returncode, p.stdout, p.stderr


def test_bad_key_file_is_reported_by_check_and_refuses_start(make_gateway, workdir):
    priv, pub = at.make_keypair(workdir, "ec")
    g = make_gateway(room("w", applicant_key_file=pub, **FREE), start=False)
    rc, out, err = check(g.conf_path)
    assert (rc, out.strip()) == (0, "ok"), err

    # A private key where the public one belongs; a readable shared secret; a missing file.
    readable = os.path.join(workdir, "shared")
    with open(readable, "w") as f:
        f.write(at.SECRET)
    os.chmod(readable, 0o644)
    missing = os.path.join(workdir, "nope.pem")
    for path, why in ((priv, "holds a private key"), (readable, "chmod 600"),
                      (missing, "cannot open")):
        g.write_conf({"room.w.applicant_key_file": path})
        rc, out, err = check(g.conf_path)
        assert rc == 1 and out.strip() == "", (out, err)
        assert f"{g.conf_path}: [room.w] applicant_key_file: {path}: " in err, err
        assert why in err, err
        assert at.SECRET not in err and "PRIVATE" not in err.replace("private key", "")

    g.start(wait=False)
    wait_for(lambda: g.proc.poll() is not None, timeout=HANG, what="gateway refusing to start")
    assert g.proc.returncode != 0
    assert missing in g.read_log()


def test_key_rotates_on_sighup(make_gateway, workdir):
    key = at.write_secret(workdir)
    g = make_gateway(room("w", applicant_key_file=key, **FREE))
    old = at.token("alice", "w")
    assert join(g, old).status_code == 200

    new_secret = "f" * 8 + at.SECRET[8:]
    at.write_secret(workdir, secret=new_secret)
    g.signal(signal.SIGHUP)
    wait_for(lambda: join(g, at.token("alice", "w", key=new_secret)).status_code == 200,
             timeout=HANG, what="the new key after SIGHUP")
    refused(join(g, at.token("alice", "w")), "bad_signature")

    # A broken file on the next reload: the running key stays, and the log says so.
    with open(key, "w") as f:
        f.write("short\n")
    g.signal(signal.SIGHUP)
    wait_for(lambda: "keeping the running key" in g.read_log(), timeout=HANG,
             what="the refused reload in the log")
    assert join(g, at.token("alice", "w", key=new_secret)).status_code == 200
    assert new_secret not in g.read_log() and at.SECRET not in g.read_log()

    # Dropping the directive turns binding off.
    g.write_conf({"room.w.applicant_key_file": ""})
    g.signal(signal.SIGHUP)
    wait_for(lambda: code(join(g, at.token("alice", "w", key=new_secret)))
             == "applicant_binding_off", timeout=HANG, what="binding off after SIGHUP")
