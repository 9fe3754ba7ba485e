"""System tests of the gateway's HTTP/1.1 core: keep-alive, pipelining, bodies, Expect, limits,
smuggling defences, timeouts, max connections, the per-IP rate limit, languages and metrics.

Every test starts its own redis-server and gateway (conftest fixtures) with small limits, and
talks raw HTTP over loopback sockets so that framing, ordering and closes are observable. Time
bounds are hang guards only, never speed requirements.
"""
import json
import select
import socket
import time

import pytest

from conftest import parse_responses, wait_for

HANG = 5.0  # seconds: the longest any single read may wait before the test fails


# --- a small raw HTTP/1.1 client -------------------------------------------------------------

class Response:
    def __init__(self, status, reason, header_list, body, raw):
        self.status = status
        self.reason = reason
        self.header_list = header_list            # [(lower-case name, value)] in order
        self.headers = {k: v for k, v in header_list}
        self.body = body
        self.raw = raw

    def header_values(self, name):
        return [v for k, v in self.header_list if k == name]

    def json(self):
        return json.loads(self.body)

    @property
    def error_code(self):
        return self.json()["error"]["code"]

    @property
    def closes(self):
        return "close" in self.headers.get("connection", "").lower()

    def __repr__(self):
        return f"<Response {self.status} {self.headers} {self.body[:200]!r}>"


class Conn:
    """One client connection with its own read buffer, so responses can be read one by one."""

    def __init__(self, port, nodelay=True):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=HANG)
        if nodelay:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def request(self, method, path, headers=None, body=b"", version="HTTP/1.1"):
        self.send(build(method, path, headers, body, version))

    def _fill(self, deadline):
        """Read more bytes into the buffer; False at EOF. Fails the test at DEADLINE."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no complete response within {HANG}s; have {self.buf[:300]!r}")
        self.sock.settimeout(left)
        try:
            b = self.sock.recv(65536)
        except socket.timeout:
            raise AssertionError(f"no complete response within {HANG}s; have {self.buf[:300]!r}")
        except ConnectionResetError:
            return False
        if not b:
            return False
        self.buf += b
        return True

    def read_response(self, head=False, timeout=HANG):
        """Read exactly one response (Content-Length framed; no body for HEAD or 1xx)."""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            if not self._fill(deadline):
                raise AssertionError(f"connection closed before a response head; "
                                     f"have {self.buf!r}")
        head_bytes, _, rest = self.buf.partition(b"\r\n\r\n")
        lines = head_bytes.decode("latin-1").split("\r\n")
        version, status, reason = (lines[0].split(" ", 2) + [""])[:3]
        assert version == "HTTP/1.1", lines[0]
        status = int(status)
        header_list = []
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            assert sep, f"bad header line {line!r}"
            header_list.append((name.strip().lower(), value.strip()))
        hdrs = dict(header_list)
        n = 0 if head or 100 <= status < 200 or status in (204, 304) else \
            int(hdrs.get("content-length", "0"))
        self.buf = rest
        while len(self.buf) < n:
            if not self._fill(deadline):
                raise AssertionError(f"connection closed inside a body; have {self.buf!r}")
        body, self.buf = self.buf[:n], self.buf[n:]
        return Response(status, reason, header_list, body, head_bytes + b"\r\n\r\n" + body)

    def wait_closed(self, timeout=HANG):
        """Wait for the server to close; return the unread bytes that were buffered or arrived
        before the close (normally none). Fails the test if still open after TIMEOUT."""
        deadline = time.monotonic() + timeout
        data, self.buf = self.buf, b""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"connection still open after {timeout}s")
            self.sock.settimeout(left)
            try:
                b = self.sock.recv(65536)
            except socket.timeout:
                raise AssertionError(f"connection still open after {timeout}s")
            except ConnectionResetError:
                return data
            if not b:
                return data
            data += b

    def is_open(self, wait=0.2):
        """True if nothing (no data, no close) arrives within WAIT seconds."""
        r, _, _ = select.select([self.sock], [], [], wait)
        return not r


def build(method, path, headers=None, body=b"", version="HTTP/1.1"):
    head = f"{method} {path} {version}\r\nHost: 127.0.0.1\r\n"
    for k, v in (headers or {}).items() if isinstance(headers, dict) else (headers or []):
        head += f"{k}: {v}\r\n"
    return head.encode("latin-1") + b"\r\n" + body


def refusals(g, reason):
    return g.metrics().get(f'antre_refusals_total{{reason="{reason}"}}', 0.0)


def assert_error(resp, status, code):
    assert resp.status == status, resp
    assert resp.headers.get("content-type", "").startswith("application/json"), resp
    err = resp.json()["error"]
    assert err["code"] == code, resp
    assert isinstance(err["message"], str) and err["message"], resp
    assert resp.headers.get("x-request-id"), resp
    return err


def assert_refused_and_closed(conn, status, code):
    """The next response is STATUS/CODE with Connection: close, and the server then closes."""
    resp = conn.read_response()
    err = assert_error(resp, status, code)
    assert resp.closes, resp
    assert conn.wait_closed() == b"", "bytes after a closing answer"
    return resp, err


# --- 1. keep-alive, HTTP/1.0, HEAD, 404, 405, X-Request-Id -----------------------------------

def test_keep_alive_serves_several_requests_on_one_connection(gateway):
    with Conn(gateway.port) as c:
        for path, want in [("/healthz", {"status": "ok"}), ("/readyz", None),
                           ("/healthz", {"status": "ok"}), ("/healthz", {"status": "ok"})]:
            c.request("GET", path)
            r = c.read_response()
            assert r.status == 200, r
            assert not r.closes, r
            assert r.headers["content-type"].startswith("application/json")
            if want:
                assert r.json() == want
            else:
                assert r.json()["status"] == "ready"
        assert c.is_open(), "a keep-alive connection closed after its answers"


def test_http10_without_keep_alive_is_closed(gateway):
    with Conn(gateway.port) as c:
        c.send(b"GET /healthz HTTP/1.0\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.json() == {"status": "ok"}, r
        assert r.closes, r
        assert c.wait_closed() == b""


def test_http10_with_keep_alive_stays_open(gateway):
    with Conn(gateway.port) as c:
        for _ in range(2):
            c.send(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            r = c.read_response()
            assert r.status == 200, r
            assert r.headers.get("connection", "").lower() == "keep-alive", r
        assert c.is_open()


def test_http11_connection_close_is_honoured(gateway):
    with Conn(gateway.port) as c:
        c.request("GET", "/healthz", {"Connection": "close"})
        r = c.read_response()
        assert r.status == 200 and r.closes, r
        assert c.wait_closed() == b""


def test_head_has_content_length_but_no_body(gateway):
    with Conn(gateway.port) as c:
        c.request("GET", "/healthz")
        get = c.read_response()
        c.request("HEAD", "/healthz")
        head = c.read_response(head=True)
        assert head.status == 200, head
        assert head.headers["content-length"] == get.headers["content-length"] == str(len(get.body))
        assert int(head.headers["content-length"]) > 0
        # No body bytes follow the HEAD answer: the next answer starts right after its head.
        c.request("GET", "/healthz")
        nxt = c.read_response()
        assert nxt.status == 200 and nxt.body == get.body, nxt
        assert c.buf == b""
        # HEAD of an error answer has no body either.
        c.request("HEAD", "/nope")
        h404 = c.read_response(head=True)
        assert h404.status == 404 and int(h404.headers["content-length"]) > 0, h404
        c.request("GET", "/healthz")
        assert c.read_response().status == 200
        assert c.buf == b""


def test_unknown_path_is_json_404_and_connection_stays(gateway):
    with Conn(gateway.port) as c:
        c.request("GET", "/no/such/thing?x=1")
        r = c.read_response()
        assert_error(r, 404, "not_found")
        assert not r.closes, r
        c.request("GET", "/healthz")
        assert c.read_response().status == 200


def test_post_healthz_is_405_with_allow_and_keeps_the_connection(gateway):
    with Conn(gateway.port) as c:
        c.request("POST", "/healthz")                       # no body at all
        r = c.read_response()
        assert_error(r, 405, "method_not_allowed")
        assert r.headers.get("allow") == "GET, HEAD", r
        assert not r.closes, r
        c.request("POST", "/readyz", {"Content-Length": "0"})
        r = c.read_response()
        assert_error(r, 405, "method_not_allowed")
        assert r.headers.get("allow") == "GET, HEAD", r
        assert not r.closes, r
        c.request("GET", "/healthz")
        assert c.read_response().status == 200


def test_request_id_generated_echoed_or_replaced(gateway):
    with Conn(gateway.port) as c:
        ids = []
        for path in ["/healthz", "/healthz", "/nope"]:
            c.request("GET", path)
            r = c.read_response()
            assert len(r.header_values("x-request-id")) == 1, r
            ids.append(r.headers["x-request-id"])
        assert all(ids) and len(set(ids)) == 3, ids

        sane = "client-Req_42.a"
        c.request("GET", "/healthz", {"X-Request-Id": sane})
        r = c.read_response()
        assert r.header_values("x-request-id") == [sane], r
        c.request("GET", "/nope", {"X-Request-Id": sane})
        assert c.read_response().header_values("x-request-id") == [sane]

        for insane in ["has space inside", "x" * 200, "semi;colon", "quote\"d"]:
            c.request("GET", "/healthz", {"X-Request-Id": insane})
            r = c.read_response()
            assert r.status == 200, r
            got = r.header_values("x-request-id")
            assert len(got) == 1 and got[0] and got[0] != insane.strip(), (insane, got)
            assert all(ch.isalnum() or ch in "-_." for ch in got[0]), got
            assert len(got[0]) <= 64, got


# --- 2. pipelining ---------------------------------------------------------------------------

PIPE_PATHS = ["/healthz", "/readyz", "/nope", "/healthz", "/nope", "/readyz", "/readyz",
              "/healthz", "/nope", "/nope", "/healthz", "/readyz", "/healthz", "/nope",
              "/readyz", "/healthz", "/healthz", "/nope", "/readyz", "/healthz"]


def expected(path):
    return {"/healthz": (200, {"status": "ok"}), "/readyz": (200, "ready"),
            "/nope": (404, "not_found")}[path]


def check_pipeline_answers(c, paths):
    for i, path in enumerate(paths):
        r = c.read_response()
        status, want = expected(path)
        assert r.status == status, (i, path, r)
        assert r.headers["x-request-id"] == f"pipe-{i}", (i, path, r)
        if path == "/healthz":
            assert r.json() == want
        elif path == "/readyz":
            assert r.json()["status"] == want
        else:
            assert r.error_code == want
        assert not r.closes, r


def test_twenty_pipelined_requests_in_one_write_answered_in_order(gateway):
    assert len(PIPE_PATHS) == 20
    data = b"".join(build("GET", p, {"X-Request-Id": f"pipe-{i}"})
                    for i, p in enumerate(PIPE_PATHS))
    with Conn(gateway.port) as c:
        c.send(data)
        check_pipeline_answers(c, PIPE_PATHS)
        assert c.is_open(0.2) and c.buf == b""
        c.request("GET", "/healthz")
        assert c.read_response().status == 200


@pytest.mark.parametrize("sizes", [[1], [3, 7, 1, 13], [29, 2, 61, 5]], ids=["1", "3-7-1-13", "odd"])
def test_pipelined_requests_split_at_odd_boundaries(gateway, sizes):
    data = b"".join(build("GET", p, {"X-Request-Id": f"pipe-{i}"})
                    for i, p in enumerate(PIPE_PATHS))
    with Conn(gateway.port) as c:
        pos, k = 0, 0
        while pos < len(data):           # bounded by len(data) pieces
            n = sizes[k % len(sizes)]
            c.send(data[pos:pos + n])
            pos += n
            k += 1
            if k % 64 == 0:
                time.sleep(0.002)        # let some pieces arrive as separate reads
        check_pipeline_answers(c, PIPE_PATHS)
        assert c.is_open(0.2) and c.buf == b""


def test_pipelined_head_and_errors_keep_framing(gateway):
    reqs = [("GET", "/healthz"), ("HEAD", "/healthz"), ("POST", "/healthz"), ("HEAD", "/nope"),
            ("GET", "/readyz")]
    with Conn(gateway.port) as c:
        c.send(b"".join(build(m, p) for m, p in reqs))
        got = [c.read_response(head=(m == "HEAD")) for m, _ in reqs]
        assert [r.status for r in got] == [200, 200, 405, 404, 200], got
        assert got[1].body == b"" and got[3].body == b""
        assert c.is_open(0.2) and c.buf == b""


# --- 3. bodies: chunked, Content-Length over the limit ---------------------------------------

BODY_LIMIT = {"gateway.max_body_bytes": 1024}


def test_chunked_post_to_healthz_is_405_then_closed(make_gateway):
    g = make_gateway(BODY_LIMIT)
    with Conn(g.port) as c:
        c.send(build("POST", "/healthz", {"Transfer-Encoding": "chunked"},
                     b"5\r\nhello\r\n0\r\n\r\n"))
        r, _ = assert_refused_and_closed(c, 405, "method_not_allowed")
        assert r.headers.get("allow") == "GET, HEAD"


def test_chunked_body_within_limit_is_read_and_connection_kept(make_gateway):
    g = make_gateway(BODY_LIMIT)
    with Conn(g.port) as c:
        body = b"5\r\nhello\r\n1a;ext=1\r\n" + b"a" * 26 + b"\r\n0\r\nTrailer: x\r\n\r\n"
        c.send(build("GET", "/healthz", {"Transfer-Encoding": "chunked"}, body))
        r = c.read_response()
        assert r.status == 200 and not r.closes, r
        # The chunked body was consumed exactly: the next request parses cleanly.
        c.request("GET", "/readyz")
        assert c.read_response().status == 200
        # Chunks sent in pieces with pauses.
        c.send(build("GET", "/healthz", {"Transfer-Encoding": "chunked"}))
        for piece in [b"3\r\n", b"abc", b"\r\n", b"2\r\nde\r\n", b"0\r\n", b"\r\n"]:
            time.sleep(0.02)
            c.send(piece)
        assert c.read_response().status == 200
        assert c.is_open(0.2) and c.buf == b""


def test_chunked_body_over_limit_is_413_and_closed(make_gateway):
    g = make_gateway(BODY_LIMIT)
    before = refusals(g, "body_too_large")
    with Conn(g.port) as c:
        chunk = b"x" * 2000
        c.send(build("GET", "/healthz", {"Transfer-Encoding": "chunked"},
                     b"%x\r\n" % len(chunk) + chunk + b"\r\n0\r\n\r\n"))
        assert_refused_and_closed(c, 413, "body_too_large")
    assert refusals(g, "body_too_large") == before + 1


def test_content_length_over_limit_refused_before_the_body(make_gateway):
    g = make_gateway(BODY_LIMIT)
    before = refusals(g, "body_too_large")
    with Conn(g.port) as c:
        c.send(build("GET", "/healthz", {"Content-Length": "2048"}))   # head only, no body
        assert_refused_and_closed(c, 413, "body_too_large")
    assert refusals(g, "body_too_large") == before + 1


def test_content_length_at_limit_is_accepted(make_gateway):
    g = make_gateway(BODY_LIMIT)
    with Conn(g.port) as c:
        c.send(build("GET", "/healthz", {"Content-Length": "1024"}, b"y" * 1024))
        r = c.read_response()
        assert r.status == 200 and not r.closes, r
        c.request("GET", "/healthz")
        assert c.read_response().status == 200


# --- 4. Expect -------------------------------------------------------------------------------

def test_expect_continue_to_post_healthz_gets_405_without_100(make_gateway):
    g = make_gateway(BODY_LIMIT)
    with Conn(g.port) as c:
        c.send(build("POST", "/healthz", {"Content-Length": "10", "Expect": "100-continue"}))
        r = c.read_response()
        assert r.status == 405, r          # not 100 Continue first
        assert_error(r, 405, "method_not_allowed")
        assert r.closes, r
        assert c.wait_closed() == b""


def test_expect_continue_within_limit_gets_100_then_the_answer(make_gateway):
    g = make_gateway(BODY_LIMIT)
    with Conn(g.port) as c:
        c.send(build("GET", "/healthz", {"Content-Length": "5", "Expect": "100-continue"}))
        r = c.read_response()
        assert r.status == 100, r
        c.send(b"hello")
        r = c.read_response()
        assert r.status == 200 and r.json() == {"status": "ok"}, r
        assert not r.closes
        c.request("GET", "/healthz")
        assert c.read_response().status == 200


def test_expect_continue_over_limit_gets_413_without_100(make_gateway):
    g = make_gateway(BODY_LIMIT)
    before = refusals(g, "body_too_large")
    with Conn(g.port) as c:
        c.send(build("GET", "/healthz", {"Content-Length": "4096", "Expect": "100-continue"}))
        r = c.read_response()
        assert r.status == 413, r
        assert_error(r, 413, "body_too_large")
        assert r.closes
        assert c.wait_closed() == b""
    assert refusals(g, "body_too_large") == before + 1


def test_unknown_expect_is_417(gateway):
    with Conn(gateway.port) as c:
        c.send(build("GET", "/healthz", {"Expect": "teapot"}))
        assert_refused_and_closed(c, 417, "expectation_failed")


# --- 5. 414 and 431 --------------------------------------------------------------------------

LIMITS = {"gateway.max_url_bytes": 64, "gateway.max_header_bytes": 1024,
          "gateway.max_headers": 8}


def test_url_too_long_is_414_and_closed(make_gateway):
    g = make_gateway(LIMITS)
    before = refusals(g, "uri_too_long")
    with Conn(g.port) as c:
        c.request("GET", "/" + "a" * 63)               # exactly 64 bytes: not refused
        r = c.read_response()
        assert_error(r, 404, "not_found")
        c.request("GET", "/" + "a" * 64)               # 65 bytes
        assert_refused_and_closed(c, 414, "uri_too_long")
    with Conn(g.port) as c:
        c.request("GET", "/healthz?" + "q=1&" * 200)
        assert_refused_and_closed(c, 414, "uri_too_long")
    assert refusals(g, "uri_too_long") == before + 2


def test_header_bytes_over_limit_is_431_and_closed(make_gateway):
    g = make_gateway(LIMITS)
    before = refusals(g, "headers_too_large")
    with Conn(g.port) as c:
        c.request("GET", "/healthz", {"X-Big": "b" * 2000})
        assert_refused_and_closed(c, 431, "headers_too_large")
    with Conn(g.port) as c:   # many small headers under the count limit, over the byte limit
        c.request("GET", "/healthz", [(f"X-{i}", "v" * 200) for i in range(6)])
        assert_refused_and_closed(c, 431, "headers_too_large")
    assert refusals(g, "headers_too_large") == before + 2


def test_too_many_headers_is_431_and_closed(make_gateway):
    g = make_gateway(LIMITS)
    before = refusals(g, "headers_too_large")
    with Conn(g.port) as c:
        # build() adds Host: 8 headers in all is within the limit.
        c.request("GET", "/healthz", [(f"X-{i}", "v") for i in range(7)])
        r = c.read_response()
        assert r.status == 200, r
        c.request("GET", "/healthz", [(f"X-{i}", "v") for i in range(8)])   # 9 headers
        assert_refused_and_closed(c, 431, "too_many_headers")
    assert refusals(g, "headers_too_large") == before + 1


# --- 6. malformed requests -------------------------------------------------------------------

@pytest.mark.parametrize("data", [
    b"GARBAGE\r\n\r\n",
    b"GET healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET ?x=1 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /healthz HTTP/1.1 extra\r\nHost: x\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nNo colon here\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nBad Name: x\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 32,
], ids=["garbage", "no-slash", "query-only", "extra-token", "no-colon", "space-in-name", "tls"])
def test_malformed_request_is_400_and_closed(gateway, data):
    before = refusals(gateway, "bad_request")
    with Conn(gateway.port) as c:
        c.send(data)
        assert_refused_and_closed(c, 400, "bad_request")
    assert refusals(gateway, "bad_request") == before + 1


@pytest.mark.parametrize("version", ["HTTP/9.9", "HTTP/2.0", "HTTP/0.9"])
def test_unsupported_http_version_is_refused_and_closed(gateway, version):
    # Only HTTP/1.0 and HTTP/1.1 are spoken here: 400 (or 505) and a close, never an answer.
    with Conn(gateway.port) as c:
        c.send(f"GET /healthz {version}\r\nHost: x\r\n\r\n".encode())
        r = c.read_response()
        assert r.status in (400, 505), r
        assert r.closes, r
        assert c.wait_closed() == b""


def test_malformed_second_request_after_a_good_one(gateway):
    with Conn(gateway.port) as c:
        c.send(build("GET", "/healthz") + b"BLAH BLAH\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and not r.closes, r
        assert_refused_and_closed(c, 400, "bad_request")


# --- 7. smuggling ----------------------------------------------------------------------------

SMUGGLED = build("GET", "/nope")   # what a smuggler would hide behind the first request


@pytest.mark.parametrize("headers,codes", [
    ([("Content-Length", "5"), ("Transfer-Encoding", "chunked")], {"conflicting_length"}),
    ([("Transfer-Encoding", "chunked"), ("Content-Length", "5")], {"conflicting_length"}),
    ([("Content-Length", "5"), ("Content-Length", "6")], {"conflicting_content_length"}),
    ([("Transfer-Encoding", "gzip, chunked")], {"unsupported_transfer_encoding"}),
    ([("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "chunked")],
     {"unsupported_transfer_encoding"}),
], ids=["cl-then-te", "te-then-cl", "two-cl", "gzip-chunked", "te-twice"])
def test_smuggling_is_400_and_closed(gateway, headers, codes):
    before = refusals(gateway, "smuggling")
    with Conn(gateway.port) as c:
        c.send(build("GET", "/healthz", headers, b"0\r\n\r\n") + SMUGGLED)
        r = c.read_response()
        assert r.status == 400, r
        assert r.error_code in codes, r
        assert r.closes, r
        assert c.wait_closed() == b"", "the smuggled request was answered"
    assert refusals(gateway, "smuggling") == before + 1


@pytest.mark.parametrize("name", ["Transfer-Encoding ", "Transfer-Encoding\t"],
                         ids=["space-before-colon", "tab-before-colon"])
def test_transfer_encoding_with_whitespace_in_name_is_400_and_closed(gateway, name):
    # RFC 9112 5.1: whitespace between a field name and the colon must be refused with 400; a
    # proxy in front that reads such a header as chunked would otherwise desync from us.
    with Conn(gateway.port) as c:
        c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + name.encode() +
               b": chunked\r\n\r\n0\r\n\r\n" + SMUGGLED)
        r = c.read_response()
        assert r.status == 400, r
        assert r.closes, r
        assert c.wait_closed() == b"", "more than one answer"


def test_bad_content_length_is_400_and_closed(gateway):
    for value in ["abc", "-1", "1 2", "99999999999999999999999"]:
        with Conn(gateway.port) as c:
            c.send(build("GET", "/healthz", {"Content-Length": value}))
            r = c.read_response()
            assert r.status == 400, (value, r)
            assert r.error_code in ("bad_content_length", "bad_request"), (value, r)
            assert r.closes, (value, r)
            assert c.wait_closed() == b""


# --- 7b. strict parsing (what a lenient parser reads differently from a proxy) ---------------

H = b"Host: x\r\n"
CHUNKED = b"GET /healthz HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize("data,code,reason", [
    # chunk data must end with CRLF: "2\r\n{}XX0\r\n\r\n" was a 200
    (CHUNKED + b"2\r\n{}XX0\r\n\r\n", "invalid_chunk", "smuggling"),
    (CHUNKED + b"2\r\n{}\n0\r\n\r\n", "invalid_chunk", "smuggling"),
    (CHUNKED + b"10000000000000005\r\nhello\r\n0\r\n\r\n", "invalid_chunk", "smuggling"),
    (CHUNKED + b"5 \r\nhello\r\n0\r\n\r\n", "invalid_chunk", "smuggling"),
    (CHUNKED + b"5\r\nhello\r\n0\r\nX: 1\n\r\n", "invalid_chunk", "smuggling"),
    # a CR followed by anything but LF ended the head
    (b"GET /healthz HTTP/1.1\r\n" + H + b"\rX", "bad_request", "bad_request"),
    (b"GET /healthz HTTP/1.1\r\nHost: x\rX-A: b\r\n\r\n", "bad_request", "bad_request"),
    # bare LF as a line end
    (b"GET /healthz HTTP/1.1\nHost: x\n\n", "bad_request", "bad_request"),
    (b"GET /healthz HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n", "bad_request", "bad_request"),
    # obs-fold, and a folded Transfer-Encoding (which was honoured)
    (b"GET /healthz HTTP/1.1\r\n" + H + b"X-A: a\r\n b\r\n\r\n", "bad_request", "bad_request"),
    (b"GET /healthz HTTP/1.1\r\n" + H + b"Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
     "bad_request", "bad_request"),
    # Host: missing, twice, not a host
    (b"GET /healthz HTTP/1.1\r\n\r\n", "missing_host", "bad_request"),
    (b"GET /healthz HTTP/1.1\r\n" + H + H + b"\r\n", "duplicate_header", "smuggling"),
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\nhost: y\r\n\r\n", "duplicate_header", "smuggling"),
    (b"GET /healthz HTTP/1.1\r\nHost: a b\r\n\r\n", "invalid_host", "bad_request"),
    (b"GET /healthz HTTP/1.1\r\nHost: x/y\r\n\r\n", "invalid_host", "bad_request"),
    (b"GET /healthz HTTP/1.1\r\nHost: u@x\r\n\r\n", "invalid_host", "bad_request"),
    (b"GET /healthz HTTP/1.1\r\nHost:\r\n\r\n", "invalid_host", "bad_request"),
    # two Authorization headers: the first one was used
    (b"GET /healthz HTTP/1.1\r\n" + H + b"Authorization: Bearer a\r\nAuthorization: Bearer b\r\n\r\n",
     "duplicate_header", "smuggling"),
    (b"GET /healthz HTTP/1.1\r\n" + H + b"Cookie: a=1\r\nCookie: a=2\r\n\r\n",
     "duplicate_header", "smuggling"),
    # Transfer-Encoding in HTTP/1.0 is faulty framing (RFC 9112 6.1)
    (b"GET /healthz HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
     "unsupported_transfer_encoding", "smuggling"),
    # request line bytes: version letters, a fragment, a byte outside ASCII
    (b"GET /healthz XTTP/1.1\r\n" + H + b"\r\n", "bad_request", "bad_request"),
    (b"GET /healthz#x HTTP/1.1\r\n" + H + b"\r\n", "bad_request", "bad_request"),
    (b"GET /healthz\xff HTTP/1.1\r\n" + H + b"\r\n", "bad_request", "bad_request"),
    # a control character in a value
    (b"GET /healthz HTTP/1.1\r\n" + H + b"X-A: a\x0bb\r\n\r\n", "bad_request", "bad_request"),
], ids=["chunk-no-crlf", "chunk-bare-lf", "chunk-size-overflow", "chunk-size-space",
        "trailer-bare-lf", "cr-ends-head", "cr-in-line", "bare-lf", "bare-lf-in-field",
        "obs-fold", "folded-te", "missing-host", "two-hosts", "two-hosts-case", "host-space",
        "host-slash", "host-userinfo", "host-empty", "two-authorizations", "two-cookies",
        "te-in-http10", "version-letters", "fragment", "high-byte-target", "ctl-in-value"])
def test_lenient_framing_is_400_and_closed(gateway, data, code, reason):
    # What http-parser accepted is refused with 400 and a close: nothing sent after it (here a
    # request a smuggler would hide behind it) is ever answered. (cr-in-line, version-letters
    # and ctl-in-value were refused before too: they guard the new parser.)
    before = refusals(gateway, reason)
    with Conn(gateway.port) as c:
        c.send(data + SMUGGLED)
        assert_refused_and_closed(c, 400, code)
    assert refusals(gateway, reason) == before + 1


def test_absolute_form_target_is_served(gateway):
    # RFC 9112 3.2.2: a server must accept the absolute form; the path is what follows the
    # authority (it used to be refused as a path not starting with '/').
    with Conn(gateway.port) as c:
        c.send(b"GET http://antre.test/healthz HTTP/1.1\r\nHost: other\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.json() == {"status": "ok"}, r
        c.send(b"GET ftp://antre.test/healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert_refused_and_closed(c, 400, "bad_request")


def test_http10_without_host_and_leading_empty_line_are_served(gateway):
    with Conn(gateway.port) as c:
        c.send(b"\r\nGET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and not r.closes, r
        # a 404 answered from the head, then the next request on the same connection
        c.send(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.read_response().status == 404
        assert c.read_response().status == 200


# --- 8. slowloris, idle timeout --------------------------------------------------------------

def test_slowloris_is_cut_while_others_are_served(make_gateway):
    g = make_gateway({"gateway.header_timeout_ms": 500})
    before = refusals(g, "header_timeout")
    slow = Conn(g.port)
    fast = Conn(g.port)
    try:
        trickle = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 200
        t0 = time.monotonic()
        cut_at = None
        served = 0
        for i in range(len(trickle)):               # at most ~200 rounds of ~0.1 s
            try:
                slow.send(trickle[i:i + 1])
            except (BrokenPipeError, ConnectionResetError):
                cut_at = time.monotonic()
                break
            fast.request("GET", "/healthz")
            r = fast.read_response()
            assert r.status == 200 and not r.closes, r
            served += 1
            if not slow.is_open(0.1):
                cut_at = time.monotonic()
                break
            assert time.monotonic() - t0 < HANG, "slowloris client not cut"
        assert cut_at is not None, "slowloris client not cut"
        elapsed = cut_at - t0
        assert 0.4 < elapsed < HANG, elapsed
        assert served >= 3, served
        rest = slow.wait_closed()
        if rest:                                     # a 408 is optional, a close is not
            answers = parse_responses(rest)
            assert len(answers) == 1, rest
            status, hdrs, body = answers[0]
            assert status == 408, rest
            assert json.loads(body)["error"]["code"] == "request_timeout", rest
            assert hdrs.get("connection") == "close", rest
        # The normal client is still served after the cut.
        fast.request("GET", "/healthz")
        assert fast.read_response().status == 200
    finally:
        slow.close()
        fast.close()
    assert refusals(g, "header_timeout") == before + 1


def test_header_timeout_sends_408_with_request_id(make_gateway):
    g = make_gateway({"gateway.header_timeout_ms": 300})
    with Conn(g.port) as c:
        c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")   # head never finishes
        t0 = time.monotonic()
        r = c.read_response()
        assert time.monotonic() - t0 > 0.2
        assert_error(r, 408, "request_timeout")        # includes a non-empty X-Request-Id
        assert r.closes
        assert c.wait_closed() == b""


def test_idle_keep_alive_connection_is_closed_after_idle_timeout(make_gateway):
    g = make_gateway({"gateway.idle_timeout_ms": 300, "gateway.header_timeout_ms": 300})
    with Conn(g.port) as c:
        # Requests spaced below the idle timeout keep the connection.
        for _ in range(4):
            c.request("GET", "/healthz")
            assert c.read_response().status == 200
            time.sleep(0.15)
        t0 = time.monotonic()
        assert c.wait_closed() == b""                  # closed quietly, no bytes
        elapsed = time.monotonic() - t0
        assert 0.1 < elapsed < HANG, elapsed
    with Conn(g.port) as c:              # one that never sends anything: at header_timeout_ms
        t0 = time.monotonic()
        assert c.wait_closed() == b""
        assert 0.2 < time.monotonic() - t0 < HANG


# --- 9. max_connections ----------------------------------------------------------------------

def test_max_connections_refuses_with_short_503_then_recovers(make_gateway):
    g = make_gateway({"gateway.max_connections": 20})
    only_admin_connection_open(g)
    before = refusals(g, "max_connections")
    conns = []
    try:
        for _ in range(20):
            c = Conn(g.port)
            conns.append(c)
            c.request("GET", "/healthz")                # proves it was accepted
            assert c.read_response().status == 200
        extra = Conn(g.port)
        conns.append(extra)
        r = extra.read_response()
        assert r.status == 503, r
        assert r.json()["error"]["code"] == "too_many_connections", r
        assert int(r.headers["retry-after"]) >= 1, r
        assert r.json()["error"]["retry_after_s"] >= 1, r
        assert r.closes, r
        assert extra.wait_closed() == b""
        assert refusals(g, "max_connections") == before + 1
        # The 20 held connections still work.
        conns[0].request("GET", "/healthz")
        assert conns[0].read_response().status == 200

        for c in conns[:5]:
            c.close()
        del conns[:5]

        def fresh_works():
            c = Conn(g.port)
            conns.append(c)
            c.request("GET", "/healthz")
            try:
                return c.read_response().status == 200
            except AssertionError:
                return False
        wait_for(fresh_works, timeout=HANG, interval=0.05, what="a new connection served")
    finally:
        for c in conns:
            c.close()


def only_admin_connection_open(g):
    """Wait until the gateway holds no client connection (the fixture's start-up probes are
    gone): the /metrics request itself is the one open connection."""
    wait_for(lambda: g.metrics()["antre_connections_open"] == 1, timeout=HANG,
             what="no client connection open")


def test_max_connections_refusal_has_request_id(make_gateway):
    g = make_gateway({"gateway.max_connections": 1})
    only_admin_connection_open(g)
    with Conn(g.port) as held:
        held.request("GET", "/healthz")
        assert held.read_response().status == 200
        with Conn(g.port) as extra:
            r = extra.read_response()
            assert r.status == 503, r
            assert r.headers.get("x-request-id"), r


# --- 10. per-IP rate limit -------------------------------------------------------------------

def test_per_ip_rate_limit_answers_429_and_exempts_health(make_gateway):
    g = make_gateway({"gateway.per_ip_rate": 5, "gateway.per_ip_burst": 3})
    before = refusals(g, "rate_limited")
    seq = ["/v1/x", "/v1/x", "/v1/x", "/v1/x", "/healthz", "/readyz", "/v1/x"]
    with Conn(g.port) as c:
        # Pipelined in one write: all are decided within the same instant.
        c.send(b"".join(build("GET", p) for p in seq))
        got = [c.read_response() for _ in seq]
        assert [r.status for r in got] == [404, 404, 404, 429, 200, 200, 429], got
        for r in (got[3], got[6]):
            err = assert_error(r, 429, "rate_limited")
            assert int(r.headers["retry-after"]) >= 1, r
            assert err["retry_after_s"] >= 1 and err["retry_after_s"] == int(r.headers["retry-after"])
            assert not r.closes, r                     # no body to skip: the connection stays
        assert c.is_open(0.1)
    assert refusals(g, "rate_limited") == before + 2


def test_per_ip_rate_limit_lets_the_client_back_after_retry_after(make_gateway):
    g = make_gateway({"gateway.per_ip_rate": 5, "gateway.per_ip_burst": 1})
    with Conn(g.port) as c:
        c.send(build("GET", "/v1/x") + build("GET", "/v1/x"))
        a, b = c.read_response(), c.read_response()
        assert (a.status, b.status) == (404, 429), (a, b)
        time.sleep(int(b.headers["retry-after"]) + 0.05)
        c.request("GET", "/v1/x")
        assert c.read_response().status == 404


# --- 11. language ----------------------------------------------------------------------------

def test_error_messages_follow_accept_language(gateway):
    def message(lang):
        with Conn(gateway.port) as c:
            c.request("GET", "/nope", {"Accept-Language": lang} if lang is not None else None)
            r = c.read_response()
            return assert_error(r, 404, "not_found")["message"]

    none, ind, en = message(None), message("id"), message("en")
    assert ind == none, "Indonesian is the default"
    assert en != ind
    assert message("en-US,en;q=0.9,id;q=0.5") == en
    assert message("id-ID,id;q=0.9,en;q=0.8") == ind
    assert message("en;q=0.3, id;q=0.7") == ind
    assert message("fr") == ind
    assert message("EN-gb") == en


# --- 12. metrics -----------------------------------------------------------------------------

def test_metrics_count_requests_latency_and_connections(gateway):
    m0 = gateway.metrics()
    key = 'antre_http_requests_total{route="healthz",status="200"}'
    key404 = 'antre_http_requests_total{route="none",status="404"}'
    count0 = m0["antre_http_request_duration_seconds_count"]
    sum0 = m0["antre_http_request_duration_seconds_sum"]
    slow = 0.3
    with Conn(gateway.port) as c:
        for _ in range(5):
            c.request("GET", "/healthz")
            assert c.read_response().status == 200
        for _ in range(2):
            c.request("GET", "/nope")
            assert c.read_response().status == 404
        # One request slow on purpose: its body comes SLOW seconds after its head, and a
        # request is timed from its head to its answer.
        c.send(build("GET", "/healthz", {"Content-Length": "4"}))
        time.sleep(slow)
        c.send(b"body")
        assert c.read_response().status == 200
    m1 = gateway.metrics()
    assert m1.get(key, 0) - m0.get(key, 0) == 6
    assert m1.get(key404, 0) - m0.get(key404, 0) == 2
    counted = m1["antre_http_request_duration_seconds_count"] - count0
    assert counted >= 8
    buckets = [(k, v) for k, v in m1.items()
               if k.startswith("antre_http_request_duration_seconds_bucket")]
    values = [v for _, v in buckets]
    assert values == sorted(values), "histogram buckets not cumulative"
    assert buckets[-1][0].endswith('le="+Inf"}')
    assert values[-1] == m1["antre_http_request_duration_seconds_count"]
    # The sum grew by the slow request's latency at least, and not by much more: the others
    # are fast (HANG seconds each is far more than any of them takes).
    grown = m1["antre_http_request_duration_seconds_sum"] - sum0
    assert slow <= grown < slow + counted * HANG, grown
    # ...and the slow request sits above every bucket below SLOW.
    b0 = {k: v for k, v in m0.items() if k.startswith("antre_http_request_duration_seconds_bucket")}
    below = [k for k, _ in buckets
             if not k.endswith('le="+Inf"}') and float(k.split('le="')[1].rstrip('"}')) < slow]
    assert below, "no bucket below %s s" % slow
    for k in below:
        assert m1[k] - b0.get(k, 0) <= counted - 1, k

    held = [Conn(gateway.port) for _ in range(3)]
    try:
        for c in held:
            c.request("GET", "/healthz")
            assert c.read_response().status == 200
        # The admin connection that reads /metrics is open too while it is answered.
        wait_for(lambda: gateway.metrics()["antre_connections_open"] == 4, timeout=HANG,
                 what="antre_connections_open == 3 clients + 1 admin")
    finally:
        for c in held:
            c.close()
    wait_for(lambda: gateway.metrics()["antre_connections_open"] == 1, timeout=HANG,
             what="antre_connections_open back to the admin connection alone")
