"""The tree reads as .clang-format says (docs/style.md): `clang-format --dry-run` stays clean on
every C file of the tree, and the check itself notices a badly formatted file."""
import os
import shutil
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLANG_FORMAT = shutil.which('clang-format') or '/usr/bin/clang-format'


SOURCE_DIRS = ('gateway', 'common', 'worker', 'include', 'bench', 'tests/unit', 'tests/fuzz')


def c_files():
    """Every C source and header of the tree (no git needed: the tree may be a plain copy)."""
    out = []
    for top in SOURCE_DIRS:
        for d, dirs, files in os.walk(os.path.join(ROOT, top)):
            dirs[:] = [x for x in dirs if x not in ('node_modules', 'corpus')]
            out += [os.path.relpath(os.path.join(d, f), ROOT) for f in files
                    if f.endswith(('.c', '.h'))]
    return sorted(out)


def dry_run(paths, cwd=ROOT):
    return subprocess.run([CLANG_FORMAT, '--dry-run', '--Werror', *paths], cwd=cwd,
                          capture_output=True, text=True)


def test_tree_is_formatted():
    files = c_files()
    assert len(files) > 50
    r = dry_run(files)
    # One line per offending place, so the failure names the files to run `clang-format -i` on.
    bad = sorted({l.split(':')[0] for l in r.stderr.splitlines() if ': error:' in l})
    assert r.returncode == 0, 'not formatted (run clang-format -i on them): ' + ' '.join(bad)


def test_check_notices_bad_formatting(tmp_path):
    shutil.copy(os.path.join(ROOT, '.clang-format'), tmp_path / '.clang-format')
    (tmp_path / 'bad.c').write_text('int  f( int x ){return x+1;}\n')
    r = dry_run(['bad.c'], cwd=tmp_path)
    assert r.returncode != 0
