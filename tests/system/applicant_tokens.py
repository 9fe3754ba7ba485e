"""Applicant tokens for the system tests, minted as a programme's login system would (docs/api.md,
"Applicant tokens"): HS256 with Python's hmac, RS256 and ES256 with the openssl command line
(ES256's ASN.1 DER signature converted to the raw r || s that JWS wants). Nothing here uses
libjwt or the gateway's code.
"""
import base64
import hashlib
import hmac
import json
import os
import subprocess
import time

# A shared HS256 secret: the key file's bytes as they are (64 characters, not hex-decoded).
SECRET = "6b1f0c2e9a4d7b3e5f8a1c0d2e4f6a8b9c7d5e3f1a2b4c6d8e0f1a3b5c7d9e1f"


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def write_secret(directory, name="applicant-secret", secret=SECRET):
    """Write the HS256 secret file (mode 0600, with a trailing newline as `openssl rand -hex 32
    > file` leaves); returns its path."""
    path = os.path.join(directory, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    os.chmod(path, 0o600)
    return path


def make_keypair(directory, kind):
    """A fresh key pair in DIRECTORY: KIND "rsa" (2048 bits) or "ec" (P-256). Returns
    (private key path, public key path)."""
    priv = os.path.join(directory, f"{kind}-private.pem")
    pub = os.path.join(directory, f"{kind}-public.pem")
    opts = (["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"] if kind == "rsa"
            else ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"])
    subprocess.run(["openssl", "genpkey", *opts, "-out", priv], check=True,
                   capture_output=True, timeout=60)
    subprocess.run(["openssl", "pkey", "-in", priv, "-pubout", "-out", pub], check=True,
                   capture_output=True, timeout=60)
    return priv, pub


def der_to_raw(der, size=32):
    """An ECDSA signature as ASN.1 DER (SEQUENCE of INTEGER r, INTEGER s) -> r || s."""
    assert der[0] == 0x30, der
    i = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)
    out = b""
    for _ in range(2):
        assert der[i] == 0x02, der
        n = der[i + 1]
        out += der[i + 2:i + 2 + n].lstrip(b"\0").rjust(size, b"\0")
        i += 2 + n
    return out


def claims(sub, aud, exp_in=300, **more):
    """The claims for SUB and AUD, expiring EXP_IN seconds from now, issued now."""
    now = int(time.time())
    c = {"sub": sub, "aud": aud, "exp": now + exp_in, "iat": now}
    c.update(more)
    return c


def mint(payload, alg="HS256", key=SECRET, header=None):
    """A compact JWS of PAYLOAD (a dict): for HS256 KEY is the secret (str or bytes), for
    RS256/ES256 the path of the private key PEM; alg "none" gives an empty signature."""
    h = header if header is not None else {"alg": alg, "typ": "JWT"}
    signing_input = (b64url(json.dumps(h).encode()) + "." +
                     b64url(json.dumps(payload).encode())).encode()
    if alg == "none":
        sig = b""
    elif alg == "HS256":
        k = key.encode() if isinstance(key, str) else key
        sig = hmac.new(k, signing_input, hashlib.sha256).digest()
    else:
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signing_input,
                             capture_output=True, check=True, timeout=60).stdout
        if alg == "ES256":
            sig = der_to_raw(sig)
    return signing_input.decode() + "." + b64url(sig)


def token(sub, aud, **kw):
    """An HS256 token with SECRET for SUB and AUD, valid for five minutes."""
    return mint(claims(sub, aud), **kw)
