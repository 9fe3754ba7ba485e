"""System tests of the admin listeners' bearer token, on the gateway ([gateway]
admin_token_file) and on the worker ([worker] admin_token_file): without the token /metrics is
refused 401 with WWW-Authenticate, with it the metrics come; the token is re-read on SIGHUP, a
bad token file at start is refused, and the token never shows in the logs."""
import os
import signal
import subprocess

import requests

from conftest import WORKER, wait_for
from test_worker import Worker

TOKEN1 = "s3cret-token-0123456789abcdef"
TOKEN2 = "another-token-fedcba9876543210"


def write_token(workdir, name, text):
    path = os.path.join(workdir, name)
    with open(path, "w") as f:
        f.write(text + "\n")
    os.chmod(path, 0o600)
    return path


def status(url, token=None, scheme="Bearer"):
    headers = {"Authorization": f"{scheme} {token}"} if token else {}
    r = requests.get(url, headers=headers, timeout=10)
    return r.status_code, r


def check_guarded(url, token):
    code, r = status(url)
    assert code == 401 and r.headers["WWW-Authenticate"] == "Bearer", (code, r.text)
    assert status(url, token[:-1] + "x")[0] == 401
    assert status(url, token + "x")[0] == 401
    assert status(url, token, scheme="Basic")[0] == 401
    code, r = status(url, token)
    assert code == 200 and "# TYPE" in r.text, code


def test_gateway_metrics_need_the_token_and_it_is_reread_on_sighup(make_gateway, workdir):
    path = write_token(workdir, "gw.token", TOKEN1)
    g = make_gateway({"gateway.admin_token_file": path})
    check_guarded(g.admin_url("/metrics"), TOKEN1)
    write_token(workdir, "gw.token", TOKEN2)
    g.signal(signal.SIGHUP)
    wait_for(lambda: status(g.admin_url("/metrics"), TOKEN2)[0] == 200, what="new token")
    assert status(g.admin_url("/metrics"), TOKEN1)[0] == 401
    assert TOKEN1 not in g.read_log() and TOKEN2 not in g.read_log()
    assert g.stop() == 0


def test_worker_metrics_need_the_token_and_it_is_reread_on_sighup(workdir, redis):
    path = write_token(workdir, "worker.token", TOKEN1)
    w = Worker(workdir, redis, {"worker.admin_token_file": path}).start()
    try:
        url = f"http://127.0.0.1:{w.admin_port}/metrics"
        check_guarded(url, TOKEN1)
        # A token that is too short is refused on reload: the one in use stays.
        write_token(workdir, "worker.token", "short")
        w.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "admin_token_file" in w.read_log(), what="bad token logged")
        assert status(url, TOKEN1)[0] == 200
        write_token(workdir, "worker.token", TOKEN2)
        w.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: status(url, TOKEN2)[0] == 200, what="new token")
        assert status(url, TOKEN1)[0] == 401
        assert TOKEN1 not in w.read_log() and TOKEN2 not in w.read_log()
        assert w.stop() == 0
    finally:
        if w.proc.poll() is None:
            w.kill()


def test_worker_with_an_unreadable_token_file_does_not_start(workdir, redis):
    w = Worker(workdir, redis, {"worker.admin_token_file": os.path.join(workdir, "absent")})
    with open(w.log_path, "ab") as log:
        proc = subprocess.run([WORKER, "-c", w.conf_path], stdout=log, stderr=subprocess.STDOUT,
                              cwd=workdir, timeout=30)
    assert proc.returncode == 1
    assert "admin_token_file: cannot read" in w.read_log()
