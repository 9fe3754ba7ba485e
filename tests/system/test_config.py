"""System tests of the configuration: `-t` checks, start-up refusal and SIGHUP reload.

Every bad file is checked for the exact `FILE:LINE: [section] name: reason` line that names it,
so a message pointing at the wrong line fails the test.
"""
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import (GATEWAY, ROOT, WORKER, can_connect, free_port, parse_responses,
                      raw_request, wait_for)

SHIPPED_CONF = os.path.join(ROOT, "conf", "antre.conf")
ERROR_LINE = re.compile(r"^(?P<file>.+?):(?P<line>\d+): \[(?P<section>[^\]]*)\] (?P<name>[^:]+): "
                        r"(?P<reason>.+)$")


def get(port, path, timeout=5.0):
    """One GET on a fresh connection; returns (status, headers, body)."""
    req = f"GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n".encode()
    out = parse_responses(raw_request(port, req, timeout=timeout))
    assert out, f"no response to GET {path[:60]}"
    return out[0]


def check(binary, path):
    """Run BINARY -t -c PATH; returns (exit code, stdout, stderr)."""
    p = subprocess.run([binary, "-t", "-c", path], capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


def errors_of(text):
    """The `file:line: [section] name: reason` lines of TEXT as a list of dicts."""
    out = []
    for line in text.splitlines():
        m = ERROR_LINE.match(line)
        if m:
            d = m.groupdict()
            d["line"] = int(d["line"])
            out.append(d)
    return out


def write(tmp_path, text, name="test.conf"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


# --- antre-gateway -t / antre-worker -t -----------------------------------------------------

@pytest.mark.parametrize("binary", [GATEWAY, WORKER], ids=["gateway", "worker"])
def test_check_shipped_file_ok(binary):
    rc, out, err = check(binary, SHIPPED_CONF)
    assert rc == 0, err
    assert out.strip() == "ok"
    assert errors_of(err) == []


@pytest.mark.parametrize("binary", [GATEWAY, WORKER], ids=["gateway", "worker"])
def test_check_empty_file_ok(binary, tmp_path):
    """Every directive has a default: an empty file (or comments only) is valid."""
    path = write(tmp_path, "# nothing here\n; nor here\n")
    rc, out, err = check(binary, path)
    assert (rc, out.strip()) == (0, "ok"), err


# Each case: the file text, the 1-based line of the error, its section and name, and a regex
# the reason must match.
BAD_FILES = {
    "unknown_directive": (
        "[gateway]\nmax_headers = 32\nno_such_thing = 1\n", 3, "gateway", "no_such_thing",
        r"unknown directive"),
    "unknown_section": (
        "[gateway]\nmax_headers = 32\n\n[nosuch]\nfoo = 1\n", 5, "nosuch", "foo",
        r"unknown section"),
    "bad_integer": (
        "[gateway]\nlisten = 127.0.0.1:8080\nmax_headers = lots\n", 3, "gateway", "max_headers",
        r"'lots' is not an integer"),
    "integer_with_trailing_junk": (
        "[gateway]\nmax_connections = 12x\n", 2, "gateway", "max_connections",
        r"not an integer"),
    "out_of_bounds_low": (
        "[gateway]\nmax_connections = 100\nheader_timeout_ms = 50\n", 3, "gateway",
        "header_timeout_ms", r"50 is out of bounds \[100, \d+\]"),
    "out_of_bounds_high": (
        "[gateway]\nprocesses = 65\n", 2, "gateway", "processes",
        r"65 is out of bounds \[1, 64\]"),
    "bad_address": (
        "[gateway]\nmax_headers = 32\nlisten = nowhere:80\n", 3, "gateway", "listen",
        r"nowhere"),
    "bad_port": (
        "[gateway]\nadmin_listen = 127.0.0.1:99999\n", 2, "gateway", "admin_listen",
        r"port"),
    "address_without_port": (
        "[gateway]\nlisten = 127.0.0.1\n", 2, "gateway", "listen", r"host:port"),
    "bad_enum": (
        "[gateway]\nmax_headers = 32\n[redis]\nappendfsync = sometimes\n", 4, "redis",
        "appendfsync", r"'sometimes'.*everysec.*always"),
    "bad_log_level": (
        "[log]\nlevel = loud\n", 2, "log", "level", r"'loud'"),
    "bad_redis_url_scheme": (
        "[redis]\nurl = http://127.0.0.1:6379\n", 2, "redis", "url",
        r"embedded.*redis://.*unix:"),
    "bad_redis_url_port": (
        "[redis]\ntimeout_ms = 500\nurl = redis://127.0.0.1:notaport\n", 3, "redis", "url",
        r"port"),
    "bad_redis_url_relative_unix": (
        "[redis]\nurl = unix:relative.sock\n", 2, "redis", "url", r"absolute"),
    "set_twice": (
        "[gateway]\nmax_headers = 32\nmax_url_bytes = 1000\nmax_headers = 16\n", 4, "gateway",
        "max_headers", r"set twice \(first at line 2\)"),
    "set_twice_across_sections": (
        "[redis]\ntimeout_ms = 300\n[gateway]\nmax_headers = 8\n[redis]\ntimeout_ms = 400\n", 6,
        "redis", "timeout_ms", r"set twice \(first at line 2\)"),
    "bad_size": (
        "[gateway]\nmax_body_bytes = 12Q\n", 2, "gateway", "max_body_bytes", r"not a size"),
}


@pytest.mark.parametrize("binary", [GATEWAY, WORKER], ids=["gateway", "worker"])
@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_check_bad_file(binary, case, tmp_path):
    text, line, section, name, reason = BAD_FILES[case]
    path = write(tmp_path, text)
    rc, out, err = check(binary, path)
    assert rc == 1, (out, err)
    assert "ok" not in out.split()
    errs = errors_of(err)
    assert len(errs) == 1, err
    e = errs[0]
    assert (e["file"], e["line"], e["section"], e["name"]) == (path, line, section, name), err
    assert re.search(reason, e["reason"]), err


def test_check_sizes_with_suffix_ok(tmp_path):
    path = write(tmp_path, "[gateway]\nmax_body_bytes = 64k\n")
    assert check(GATEWAY, path)[:2] == (0, "ok\n")
    path = write(tmp_path, "[gateway]\nmax_body_bytes = 2M\n", name="b.conf")
    assert check(GATEWAY, path)[:2] == (0, "ok\n")


def test_check_every_error_reported(tmp_path):
    """Several errors in one file are all reported, each with its own line, in file order."""
    text = ("# a file with many mistakes\n"          # 1
            "[gateway]\n"                             # 2
            "listen = nowhere:80\n"                   # 3
            "max_headers = ten\n"                     # 4
            "max_connections = 0\n"                   # 5
            "frobnicate = yes\n"                      # 6
            "max_url_bytes = 1000\n"                  # 7 (fine)
            "[redis]\n"                               # 8
            "appendfsync = sometimes\n"               # 9
            "url = ftp://x\n"                         # 10
            "[mystery]\n"                             # 11
            "a = b\n"                                 # 12
            "[gateway]\n"                             # 13
            "max_url_bytes = 2000\n")                 # 14
    path = write(tmp_path, text)
    rc, out, err = check(GATEWAY, path)
    assert rc == 1
    assert "ok" not in out.split()
    got = [(e["file"], e["line"], e["section"], e["name"]) for e in errors_of(err)]
    assert got == [
        (path, 3, "gateway", "listen"),
        (path, 4, "gateway", "max_headers"),
        (path, 5, "gateway", "max_connections"),
        (path, 6, "gateway", "frobnicate"),
        (path, 9, "redis", "appendfsync"),
        (path, 10, "redis", "url"),
        (path, 12, "mystery", "a"),
        (path, 14, "gateway", "max_url_bytes"),
    ], err
    # The worker shares the file and the checker.
    rc, out, err2 = check(WORKER, path)
    assert rc == 1
    assert [(e["line"], e["name"]) for e in errors_of(err2)] == [(l, n) for _, l, _, n in got]


def test_check_missing_file(tmp_path):
    path = str(tmp_path / "absent.conf")
    rc, out, err = check(GATEWAY, path)
    assert rc == 1
    assert "ok" not in out.split()
    assert path in err


def test_check_syntax_error_names_line(tmp_path):
    path = write(tmp_path, "[gateway]\nmax_headers = 32\nthis line has no equals sign\n")
    rc, out, err = check(GATEWAY, path)
    assert rc == 1
    assert f"{path}:3:" in err, err


# --- start-up refuses a bad file --------------------------------------------------------------

@pytest.mark.parametrize("bad", [
    {"gateway.max_headers": "many"},
    {"gateway.no_such_directive": 1},
    {"redis.appendfsync": "sometimes"},
])
def test_startup_refuses_bad_file(make_gateway, bad):
    g = make_gateway(bad, start=False)
    g.start(wait=False)
    rc = g.proc.wait(15)
    assert rc == 1
    assert not can_connect(g.port)
    assert not can_connect(g.admin_port)
    # The error names the file and the line where the bad directive sits.
    lines = open(g.conf_path).read().splitlines()
    name = next(iter(bad)).split(".")[1]
    lineno = next(i for i, l in enumerate(lines, 1) if l.startswith(f"{name} ="))
    log = g.read_log()
    assert re.search(rf"^{re.escape(g.conf_path)}:{lineno}: \[\w+\] {name}: ", log, re.M), log


def test_startup_refuses_listen_nowhere(make_gateway):
    g = make_gateway({"gateway.listen": "nowhere:80"}, start=False)
    g.start(wait=False)
    assert g.proc.wait(15) == 1
    assert not can_connect(g.admin_port)
    assert re.search(rf"{re.escape(g.conf_path)}:\d+: \[gateway\] listen: ", g.read_log())


def test_worker_startup_refuses_bad_file(tmp_path):
    path = write(tmp_path, "[worker]\nprocesses = 0\n")
    p = subprocess.run([WORKER, "-c", path], capture_output=True, text=True, timeout=30,
                       cwd=str(tmp_path))
    assert p.returncode == 1
    assert re.search(rf"^{re.escape(path)}:2: \[worker\] processes: 0 is out of bounds",
                     p.stderr, re.M), p.stderr


# --- SIGHUP reload ----------------------------------------------------------------------------

def reloads(g, result):
    return g.metrics().get(f'antre_config_reloads_total{{result="{result}"}}', 0.0)


def long_path(n):
    """A request target of exactly N bytes that routes to /healthz."""
    base = "/healthz?pad="
    return base + "a" * (n - len(base))


def test_reload_applies_reloadable_value(make_gateway):
    g = make_gateway({"gateway.max_url_bytes": 4096})
    assert get(g.port, long_path(200))[0] == 200
    ok0, failed0 = reloads(g, "ok"), reloads(g, "failed")

    g.write_conf({"gateway.max_url_bytes": 100})
    g.signal(signal.SIGHUP)
    wait_for(lambda: get(g.port, long_path(200))[0] == 414, timeout=10,
             what="max_url_bytes = 100 in effect")
    status, headers, body = get(g.port, long_path(200))
    assert status == 414
    assert b"uri_too_long" in body
    assert get(g.port, long_path(90))[0] == 200
    wait_for(lambda: reloads(g, "ok") == ok0 + 1, timeout=5, what="reloads ok counted")
    assert reloads(g, "failed") == failed0
    assert "configuration reloaded" in g.read_log()

    # And back up again: reloads are not one-way.
    g.write_conf({"gateway.max_url_bytes": 4096})
    g.signal(signal.SIGHUP)
    wait_for(lambda: get(g.port, long_path(200))[0] == 200, timeout=10,
             what="max_url_bytes = 4096 in effect again")
    wait_for(lambda: reloads(g, "ok") == ok0 + 2, timeout=5, what="second reload counted")


def test_reload_bad_file_keeps_running_config(make_gateway):
    g = make_gateway({"gateway.max_url_bytes": 100})
    assert get(g.port, long_path(200))[0] == 414
    ok0, failed0 = reloads(g, "ok"), reloads(g, "failed")

    # A file that would raise the limit, but also has an error: nothing of it may apply.
    good = open(g.conf_path).read().replace("max_url_bytes = 100", "max_url_bytes = 4096")
    assert good != open(g.conf_path).read()
    lines = good.splitlines()
    gw_at = lines.index("[gateway]")
    lines.insert(gw_at + 1, "max_headers = plenty")
    bad_line = gw_at + 2
    g.write_conf(raw="\n".join(lines) + "\n")
    g.signal(signal.SIGHUP)

    wait_for(lambda: reloads(g, "failed") == failed0 + 1, timeout=10, what="failed reload counted")
    assert reloads(g, "ok") == ok0
    assert g.proc.poll() is None
    log = g.read_log()
    assert re.search(rf"{re.escape(g.conf_path)}:{bad_line}: \[gateway\] max_headers: "
                     r"'plenty' is not an integer", log), log
    # The old values still hold, and the gateway still answers.
    assert get(g.port, long_path(200))[0] == 414
    assert get(g.port, "/healthz")[0] == 200


def test_reload_restart_only_directive_reported(make_gateway):
    g = make_gateway({"gateway.max_url_bytes": 4096})
    old_port, new_port = g.port, free_port()
    ok0 = reloads(g, "ok")
    g.write_conf({"gateway.listen": f"127.0.0.1:{new_port}", "gateway.processes": 2,
                  "gateway.max_url_bytes": 100})
    g.signal(signal.SIGHUP)
    # The reloadable part of the same file applies ...
    wait_for(lambda: get(old_port, long_path(200))[0] == 414, timeout=10,
             what="reloadable value applied")
    wait_for(lambda: reloads(g, "ok") == ok0 + 1, timeout=5, what="reload counted")
    # ... while the restart-only ones are reported and keep their running value.
    log = g.read_log()
    assert re.search(r"\[gateway\] listen: .*restart", log), log
    assert re.search(r"\[gateway\] processes: .*restart", log), log
    assert get(old_port, "/healthz")[0] == 200
    assert not can_connect(new_port)
    # Still one process: no supervisor children appeared.
    time.sleep(0.3)
    assert children_of(g.proc.pid) == []
    assert g.metrics().get('antre_redis_connected{process="1"}') is None


def children_of(pid):
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            kids.append(int(entry))
    return kids


def test_sighup_burst_keeps_serving(make_gateway):
    """A burst of SIGHUPs leaves the gateway up and every reload counted."""
    g = make_gateway()
    ok0 = reloads(g, "ok")
    for _ in range(5):
        g.signal(signal.SIGHUP)
        time.sleep(0.05)
    wait_for(lambda: reloads(g, "ok") >= ok0 + 1, timeout=5, what="reloads counted")
    assert g.proc.poll() is None
    assert get(g.port, "/healthz")[0] == 200
    assert g.stop() == 0


# --- an admin listener open to the network needs a token (issue 11, item 6) ----------------

ADMIN_OPEN = {
    "gateway_any_v4": ("[gateway]\nlisten = 127.0.0.1:8080\nadmin_listen = 0.0.0.0:8081\n", 3,
                       "gateway", "0.0.0.0:8081"),
    "gateway_any_v6": ("[gateway]\nadmin_listen = [::]:8081\n", 2, "gateway", "[::]:8081"),
    "gateway_star": ("[log]\nlevel = info\n[gateway]\nadmin_listen = *:8081\n", 4, "gateway",
                     "*:8081"),
    "gateway_public": ("[gateway]\nadmin_listen = 203.0.113.7:8081\n", 2, "gateway",
                       "203.0.113.7:8081"),
    "worker_any_v4": ("[worker]\nprocesses = 1\nadmin_listen = 0.0.0.0:8082\n", 3, "worker",
                      "0.0.0.0:8082"),
}


@pytest.mark.parametrize("binary", [GATEWAY, WORKER], ids=["gateway", "worker"])
@pytest.mark.parametrize("case", sorted(ADMIN_OPEN))
def test_check_refuses_open_admin_listener_without_token(binary, case, tmp_path):
    text, line, section, addr = ADMIN_OPEN[case]
    path = write(tmp_path, text)
    rc, out, err = check(binary, path)
    assert rc == 1, (out, err)
    assert "ok" not in out.split()
    errs = errors_of(err)
    assert len(errs) == 1, err
    e = errs[0]
    assert (e["file"], e["line"], e["section"], e["name"]) == (path, line, section,
                                                               "admin_listen"), err
    assert e["reason"].startswith(f"{addr} is not a loopback address and admin_token_file is "
                                  "not set"), err

    # With a token file the same listener is accepted.
    token = tmp_path / "admin-token"
    token.write_text("0123456789abcdef0123456789abcdef\n")
    token.chmod(0o600)
    path = write(tmp_path, text + f"admin_token_file = {token}\n", name="with-token.conf")
    rc, out, err = check(binary, path)
    assert (rc, out.strip()) == (0, "ok"), err


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "[::1]",
                                  "[::ffff:127.0.0.1]"])
def test_check_accepts_loopback_admin_listener_without_token(host, tmp_path):
    path = write(tmp_path, f"[gateway]\nadmin_listen = {host}:8081\n"
                           f"[worker]\nadmin_listen = {host}:8082\n")
    rc, out, err = check(GATEWAY, path)
    assert (rc, out.strip()) == (0, "ok"), err


def test_startup_refuses_open_admin_listener_without_token(make_gateway):
    g = make_gateway({"gateway.admin_listen": f"0.0.0.0:{free_port()}"}, start=False)
    g.start(wait=False)
    assert g.proc.wait(15) == 1
    assert not can_connect(g.port)
    lines = open(g.conf_path).read().splitlines()
    lineno = next(i for i, l in enumerate(lines, 1) if l.startswith("admin_listen ="))
    log = g.read_log()
    assert re.search(rf"^{re.escape(g.conf_path)}:{lineno}: \[gateway\] admin_listen: "
                     r"0\.0\.0\.0:\d+ is not a loopback address", log, re.M), log
