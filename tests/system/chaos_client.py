"""The applicants of the chaos test (tests/system/test_chaos.py): each one a thread holding one
session, registering NIKs and uploading documents the way a real client does while processes
die under it.

A client's rules, from docs/api.md: on 503 or 429 it waits what `Retry-After` says (at most 5 s)
and sends the same request again; on a timeout or a cut connection it sends the same request
again (the same Idempotency-Key when it used one, else the same NIK); on
`409 idempotency_in_flight` it waits a second and asks again. Every other answer ends the
operation. A tus upload that is cut asks `HEAD` where it stands and goes on from there. What each
client was told (registration ids per NIK, upload ids acknowledged) is kept for the checks that
follow the run; every answer is counted by kind and status.
"""
import base64
import json
import random
import time
from collections import Counter

import requests

BIRTH = "1990-05-12"
OP_BUDGET_S = 15.0  # one operation (with its retries) gives up after this
RETRY_CAP_S = 5.0


def error_code(r):
    try:
        return r.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


def retry_after(r):
    try:
        return min(RETRY_CAP_S, max(0.1, float(r.headers.get("Retry-After", "1"))))
    except ValueError:
        return 1.0


def b64(s):
    return base64.b64encode(s.encode()).decode()


class Applicant:
    """One session's client. URL(path) gives the gateway's URL of a path; PHOTO is the PNG this
    applicant uploads (for both kinds)."""

    def __init__(self, idx, seed, url, photo, t0, timeout=5.0):
        self.idx = idx
        self.t0 = t0  # monotonic time the trails count from
        self.seed = seed
        self.url = url
        self.photo = photo
        self.timeout = timeout
        self.rng = random.Random(f"{seed}:client:{idx}")
        self.session = None
        self.serial = 0
        self.niks = {}  # nik -> {"key", "body", "ids": [ids told], "answers": [outcomes],
        #                        "trail": [(every answer, "timeout" or "reset", at)]}
        self.uploads = {}     # upload id -> (registration id, kind, "put" | "tus")
        self.tried = set()    # (registration id, kind) already uploaded or given up
        self.created = None   # the Location of the tus upload under way
        self.ops = Counter()  # (operation, outcome)
        self.replies = Counter()  # (request kind, status or "timeout" / "reset")
        self.oddities = []    # answers no rule above expects, and exceptions in the thread

    # --- HTTP ---------------------------------------------------------------------------------

    def send(self, kind, method, path, data=None, headers=None):
        """One request; (response, None) or (None, "timeout" | "reset")."""
        h = {"Authorization": f"Bearer {self.session}"} if self.session else {}
        h.update(headers or {})
        try:
            r = requests.request(method, self.url(path), data=data, headers=h,
                                 timeout=self.timeout, allow_redirects=False)
        except requests.Timeout:
            self.replies[(kind, "timeout")] += 1
            return None, "timeout"
        except requests.ConnectionError:
            self.replies[(kind, "reset")] += 1
            return None, "reset"
        self.replies[(kind, r.status_code)] += 1
        return r, None

    def wait_or_give_up(self, seconds, deadline):
        if time.monotonic() + seconds > deadline:
            return False
        time.sleep(seconds)
        return True

    def join(self, deadline):
        while True:
            r, _ = self.send("join", "POST", "/v1/rooms/w/join")
            if r is not None and r.status_code == 200 and r.json().get("session"):
                self.session = r.json()["session"]
                return
            wait = retry_after(r) if r is not None else 0.2
            if not self.wait_or_give_up(wait, deadline):
                raise AssertionError(f"client {self.idx} could not join: "
                                     f"{r.status_code if r is not None else 'no answer'}")

    # --- registrations ------------------------------------------------------------------------

    def new_nik(self):
        self.serial += 1
        nik = f"3171{10 + self.idx:02d}120590{self.serial:04d}"
        key = f"chaos-{self.seed}-{self.idx}-{self.serial}" if self.rng.random() < 0.5 else None
        body = json.dumps({"nik": nik, "kk": "3171010101010001", "name": "Siti Aminah",
                           "birth_date": BIRTH, "email": f"s{self.idx}.{self.serial}@example.com",
                           "phone": "081234567890"}).encode()
        self.niks[nik] = {"key": key, "body": body, "ids": [], "answers": [], "trail": []}
        return nik

    def post_registration(self, nik, deadline):
        """Send NIK's registration until an answer ends it; returns the outcome."""
        st = self.niks[nik]
        headers = {"Content-Type": "application/json"}
        if st["key"]:
            headers["Idempotency-Key"] = st["key"]
        while True:
            r, exc = self.send("register", "POST", "/v1/registrations", st["body"], headers)
            wait = 0.2
            st["trail"].append((exc or f"{r.status_code}:{error_code(r) or ''}",
                                time.monotonic() - self.t0))
            if r is not None:
                code = error_code(r)
                if r.status_code == 202:
                    st["ids"].append(r.json()["id"])
                    out = "replayed" if r.headers.get("Idempotent-Replayed") else "202"
                    st["answers"].append(out)
                    return out
                if r.status_code in (503, 429):
                    wait = retry_after(r)
                elif code == "idempotency_in_flight":
                    wait = 1.0
                else:
                    out = f"{r.status_code} {code}"
                    st["answers"].append(out)
                    if code != "duplicate_nik":
                        self.oddities.append(f"register {nik}: {r.status_code} {r.text[:200]}")
                    return out
            if not self.wait_or_give_up(wait, deadline):
                st["answers"].append("gave_up")
                return "gave_up"

    def register(self):
        nik = self.new_nik()
        out = self.post_registration(nik, time.monotonic() + OP_BUDGET_S)
        self.ops[("register+key" if self.niks[nik]["key"] else "register", out)] += 1

    def registered(self):
        """Registration ids this client was told, in the order it made them."""
        return [st["ids"][0] for st in self.niks.values() if st["ids"]]

    # --- uploads ------------------------------------------------------------------------------

    def put(self, rid, kind, deadline):
        path = f"/v1/registrations/{rid}/documents/{kind}"
        while True:
            r, _ = self.send("put", "PUT", path, self.photo, {"Content-Type": "image/png"})
            wait = 0.2
            if r is not None:
                if r.status_code == 202:
                    self.uploads[r.json()["upload_id"]] = (rid, kind, "put")
                    return "202"
                if r.status_code in (503, 429):
                    wait = retry_after(r)
                else:
                    self.oddities.append(f"put {rid}/{kind}: {r.status_code} {r.text[:200]}")
                    return f"{r.status_code} {error_code(r)}"
            if not self.wait_or_give_up(wait, deadline):
                return "gave_up"

    def tus(self, rid, kind, deadline):
        """A resumable upload; an unfinished one it gives up is terminated (DELETE), as a client
        that starts over does, so that it holds no unfinished upload of the session."""
        self.created = None
        out = self.tus_upload(rid, kind, deadline)
        if out != "complete" and self.created:
            self.terminate(self.created)
        return out

    def terminate(self, loc):
        for _ in range(5):
            r, _ = self.send("tus_delete", "DELETE", loc, None, {"Tus-Resumable": "1.0.0"})
            if r is not None and r.status_code not in (503, 429):
                return
            time.sleep(retry_after(r) if r is not None else 0.2)

    def tus_upload(self, rid, kind, deadline):
        data = self.photo
        t = {"Tus-Resumable": "1.0.0"}
        meta = f"registration_id {b64(rid)},kind {b64(kind)},filetype {b64('image/png')}"
        loc = None
        while loc is None:
            r, _ = self.send("tus_create", "POST", "/v1/uploads", None,
                             {**t, "Upload-Length": str(len(data)), "Upload-Metadata": meta})
            wait = 0.2
            if r is not None:
                if r.status_code == 201:
                    loc = self.created = r.headers["Location"]
                    break
                if r.status_code in (503, 429):
                    wait = retry_after(r)
                else:
                    # too_many_uploads (409, a per-session limit of unfinished uploads) may come
                    # from uploads this client never heard of (creations answered 503 that
                    # were made after all): an outcome, not an oddity.
                    if error_code(r) != "too_many_uploads":
                        self.oddities.append(f"tus create {rid}/{kind}: {r.status_code} "
                                             f"{r.text[:200]}")
                    return f"create {r.status_code} {error_code(r)}"
            if not self.wait_or_give_up(wait, deadline):
                return "gave_up"
        uid = loc.rsplit("/", 1)[1]
        offset, ask = 0, False
        half = max(200, len(data) // 2)
        while True:
            wait = 0
            if ask:
                r, _ = self.send("tus_head", "HEAD", loc, None, t)
                if r is None:
                    wait = 0.2
                elif r.status_code == 200:
                    offset, ask = int(r.headers["Upload-Offset"]), False
                    if offset == len(data):
                        self.uploads[uid] = (rid, kind, "tus")
                        return "complete"
                elif r.status_code in (503, 429):
                    wait = retry_after(r)
                else:
                    self.oddities.append(f"tus HEAD {uid}: {r.status_code}")
                    return f"head {r.status_code}"
            else:
                chunk = data[offset:offset + half]
                r, _ = self.send("tus_patch", "PATCH", loc, chunk,
                                 {**t, "Upload-Offset": str(offset),
                                  "Content-Type": "application/offset+octet-stream"})
                code = error_code(r) if r is not None else None
                if r is None:
                    ask, wait = True, 0.2
                elif r.status_code == 204:
                    offset = int(r.headers["Upload-Offset"])
                    if offset == len(data):
                        self.uploads[uid] = (rid, kind, "tus")
                        return "complete"
                elif code == "offset_mismatch":
                    offset = int(r.headers["Upload-Offset"])
                elif code == "upload_complete":
                    self.uploads[uid] = (rid, kind, "tus")
                    return "complete"
                elif r.status_code in (503, 429) or code == "upload_locked":
                    ask, wait = True, retry_after(r)
                else:
                    self.oddities.append(f"tus PATCH {uid}: {r.status_code} {r.text[:200]}")
                    return f"patch {r.status_code} {code}"
            if wait and not self.wait_or_give_up(wait, deadline):
                return "gave_up"

    def upload(self, rid, kind):
        self.tried.add((rid, kind))
        deadline = time.monotonic() + OP_BUDGET_S
        if self.rng.random() < 0.6:
            self.ops[("put", self.put(rid, kind, deadline))] += 1
        else:
            self.ops[("tus", self.tus(rid, kind, deadline))] += 1

    # --- the run ------------------------------------------------------------------------------

    def run(self, stop_at):
        """Registrations and uploads until STOP_AT (monotonic); the operation under way then
        finishes (within OP_BUDGET_S)."""
        try:
            while time.monotonic() < stop_at:
                todo = [(rid, kind) for rid in self.registered() for kind in ("ktp", "selfie")
                        if (rid, kind) not in self.tried]
                if todo and self.rng.random() < 0.5:
                    self.upload(*self.rng.choice(todo))
                else:
                    self.register()
        except Exception as e:  # noqa: BLE001 (reported by the test, not lost with the thread)
            self.oddities.append(f"client {self.idx} died: {e!r}")

    def final_retries(self, per_nik_s=10.0, budget_s=30.0):
        """Send every NIK this client tried once more (same session, body and key), as an
        applicant who comes back to check does; one answered 503 or in flight is asked again for
        up to PER_NIK_S, while BUDGET_S lasts (then once). Returns {nik: final outcome}."""
        deadline = time.monotonic() + budget_s
        out = {}
        try:
            for nik in self.niks:
                out[nik] = self.post_registration(
                    nik, min(deadline, time.monotonic() + per_nik_s))
        except Exception as e:  # noqa: BLE001
            self.oddities.append(f"client {self.idx} died in the final retries: {e!r}")
        for v in out.values():
            self.ops[("final_retry", v)] += 1
        return out
