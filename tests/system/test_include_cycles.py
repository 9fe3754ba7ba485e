"""The include graph of gateway/ keeps at most one circle, connection <-> reply
(tests/include_cycles.py): the connection must not include its way into the application."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, 'tests', 'include_cycles.py')


def run(*args, cwd=ROOT):
    return subprocess.run([sys.executable, SCRIPT, *args], cwd=cwd, capture_output=True,
                          text=True)


def test_gateway_has_no_circle_but_conn_reply():
    r = run('gateway')
    assert r.returncode == 0, r.stdout + r.stderr
    assert 'CIRCLE' not in r.stdout


def test_the_script_finds_a_circle(tmp_path):
    # A connection that includes the application, which includes the connection: caught.
    (tmp_path / 'conn.c').write_text('#include "conn.h"\n#include "wroom.h"\n')
    (tmp_path / 'conn.h').write_text('#include "reply.h"\n')
    (tmp_path / 'reply.c').write_text('#include "conn.h"\n')
    (tmp_path / 'wroom.c').write_text('#include "conn.h"\n#include <stdio.h>\n')
    (tmp_path / 'wroom.h').write_text('')
    r = run(str(tmp_path))
    assert r.returncode == 1
    assert 'CIRCLE: conn <-> reply <-> wroom' in r.stdout
    os.remove(tmp_path / 'wroom.c')
    r = run(str(tmp_path))
    assert r.returncode == 0 and 'allowed: conn <-> reply' in r.stdout
