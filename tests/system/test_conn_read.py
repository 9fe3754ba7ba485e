"""System tests of how a connection reads its socket (gateway/conn.c read_cb).

The gateway reads a body in pieces of up to 256 KB, anything else in up to 16 KB, and stops
reading while 256 KB of input waits unparsed. These tests put request boundaries inside and
right after such pieces: a large body followed by a pipelined request in the same write
(Content-Length and chunked), and a pipelined flood larger than the pause threshold, which must
be answered whole and in order (reading resumes once parsing made room). Every byte of an upload
must reach its spool file. Time bounds are hang guards only, never speed requirements.
"""
import hashlib
import os
import threading
import time

from test_upload import (HANG, MIB, connect, head, jpeg_bytes, registration, session,
                         spool_files, start)


def spool_digest(workdir, name):
    with open(os.path.join(workdir, "spool", name), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class Reader:
    """Answers read one by one off a socket (Content-Length framed), keeping what follows."""

    def __init__(self, sock):
        self.sock, self.buf = sock, b""

    def answer(self):
        """(status, headers with lower-case names, body) of the next answer."""
        deadline = time.monotonic() + HANG
        while True:
            h, sep, rest = self.buf.partition(b"\r\n\r\n")
            if sep:
                lines = h.decode("latin-1").split("\r\n")
                headers = {k.strip().lower(): v.strip()
                           for k, _, v in (line.partition(":") for line in lines[1:])}
                n = int(headers.get("content-length", "0"))
                if len(rest) >= n:
                    self.buf = rest[n:]
                    return int(lines[0].split(" ")[1]), headers, rest[:n]
            assert time.monotonic() < deadline, f"no complete answer: {self.buf[:300]!r}"
            b = self.sock.recv(65536)
            assert b, f"closed before a complete answer: {self.buf[:300]!r}"
            self.buf += b


def send_in_background(sock, data):
    """sendall DATA on a thread (the gateway answers while it reads: the caller must read too)."""
    t = threading.Thread(target=sock.sendall, args=(data,), daemon=True)
    t.start()
    return t


def test_large_body_then_a_pipelined_request_in_one_write(make_gateway, workdir):
    g = start(make_gateway, workdir)
    tok = session(g)
    reg = registration(g, tok)
    body = jpeg_bytes(3 * MIB + 12345)  # several 256 KB pieces and a ragged tail
    with connect(g) as s:
        t = send_in_background(s, head(reg, "ktp", tok, "image/jpeg", len(body)) + body
                               + b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        r = Reader(s)
        status, _, text = r.answer()
        assert status == 202, text
        status, _, text = r.answer()
        assert status == 200 and b'"ok"' in text, text
        t.join(HANG)
    names = spool_files(workdir)
    assert len(names) == 1, names
    assert spool_digest(workdir, names[0]) == hashlib.sha256(body).hexdigest()


def test_chunked_body_in_large_chunks_then_a_pipelined_request(make_gateway, workdir):
    g = start(make_gateway, workdir)
    tok = session(g)
    reg = registration(g, tok)
    body = jpeg_bytes(2 * MIB + 777)
    sizes = [300 * 1024, 1, 256 * 1024, 70000]
    chunks, at = b"", 0
    while at < len(body):
        n = sizes[len(chunks) % len(sizes)]
        piece = body[at:at + n]
        chunks += b"%x\r\n" % len(piece) + piece + b"\r\n"
        at += n
    with connect(g) as s:
        t = send_in_background(s, head(reg, "selfie", tok, "image/jpeg", chunked=True) + chunks
                               + b"0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        r = Reader(s)
        status, _, text = r.answer()
        assert status == 202, text
        status, _, text = r.answer()
        assert status == 200, text
        t.join(HANG)
    names = spool_files(workdir)
    assert len(names) == 1, names
    assert spool_digest(workdir, names[0]) == hashlib.sha256(body).hexdigest()


def test_pipelined_flood_behind_a_waiting_request_is_answered_in_order(make_gateway, workdir,
                                                                      redis):
    """A join waits on Redis (paused) while 600 KB of requests arrive behind it: the gateway
    stops reading at 256 KB unparsed, and must read on once the join is answered."""
    g = start(make_gateway, workdir)
    n = 12000
    flood = b"".join(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Request-Id: f%d\r\n\r\n" % i
                     for i in range(n))
    assert len(flood) > 2 * 256 * 1024
    with connect(g) as s:
        redis.pause()
        try:
            t = send_in_background(s, b"POST /v1/rooms/w/join HTTP/1.1\r\nHost: t\r\n"
                                   b"Content-Length: 0\r\n\r\n" + flood)
            time.sleep(0.5)  # the join waits; the flood fills the gateway's input and pauses
        finally:
            redis.resume()
        r = Reader(s)
        status, _, text = r.answer()
        assert status in (200, 503), text  # admitted, or Redis timed out: either way answered
        for i in range(n):
            status, headers, text = r.answer()
            assert status == 200 and headers.get("x-request-id") == f"f{i}", (i, headers, text)
        t.join(HANG)
        assert not t.is_alive()
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        assert r.answer()[0] == 200
        assert r.buf == b""
