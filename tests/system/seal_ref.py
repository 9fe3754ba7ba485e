"""An independent reading of sealed personal fields (include/antre/seal.h), for tests that look
at registration records in Redis: `s1.<kid>.<base64url(nonce | ciphertext | tag)>`, AES-256-GCM
under HKDF-SHA256(key line, salt "antre-seal", info "antre seal v1 aes-256-gcm"), with the
additional data b"s1\\0" + kid + b"\\0" + record id + b"\\0" + field name."""
import base64

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def keys_of(secret_path):
    """{kid: sealing key} of every key line of the key file SECRET_PATH."""
    out = {}
    with open(secret_path) as f:
        for line in f:
            parts = line.split("#", 1)[0].split()
            if len(parts) == 2 and parts[0] != "pepper":
                ikm = bytes.fromhex(parts[1])
                out[parts[0]] = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"antre-seal",
                                     info=b"antre seal v1 aes-256-gcm").derive(ikm)
    return out


def is_sealed(value):
    return value.startswith("s1.")


def open_field(secret_path, record_id, field, value):
    """The clear text of VALUE, field FIELD of record RECORD_ID (raises when it does not open)."""
    assert is_sealed(value), f"{field} of {record_id} is not sealed"
    _, kid, b64 = value.split(".", 2)
    raw = base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))
    aad = b"s1\0" + kid.encode() + b"\0" + record_id.encode() + b"\0" + field.encode()
    key = keys_of(secret_path)[kid]
    return AESGCM(key).decrypt(raw[:12], raw[12:], aad).decode()


def open_record(secret_path, record_id, rec, fields=("nik", "kk", "name", "birth_date", "email",
                                                      "phone")):
    """REC (a dict of the record's fields) with FIELDS opened."""
    out = dict(rec)
    for f in fields:
        if f in rec:
            out[f] = open_field(secret_path, record_id, f, rec[f])
    return out
