"""Real photo files for the door's type tests (test_upload.py, test_tus.py), made at test time by
the encoders phones' formats come from: cwebp (Debian `webp`) for WebP, heif-enc (Debian
`libheif-examples`: x265 for HEIC, aom for AVIF) for HEIC and AVIF, from a PNG drawn here. A
missing tool fails the test with the package to install: nothing is skipped.

`photo_files` (a pytest fixture; import it into the test module) gives, by name:
  png, webp, heic    the real files
  heif               the HEIC with its major brand rewritten to mif1 (compatible brands still
                     mif1 heic miaf): what sniff.c calls HEIF, as a camera app that labels its
                     files generically writes them
  avif               a real AVIF (refused by the door)
  pdf                a one-page PDF (refused)
  noise              random bytes that begin like no known type (refused)
"""
import os
import random
import shutil
import struct
import subprocess
import zlib

import pytest


def drawn_png(width=64, height=48):
    """An RGB PNG of WIDTH x HEIGHT with a gradient, so that encoders have something to code."""
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    rows = b"".join(b"\x00" + b"".join(bytes((x * 4 % 256, y * 5 % 256, (x + y) % 256))
                                       for x in range(width)) for y in range(height))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def need(tool, package):
    if not shutil.which(tool):
        pytest.fail(f"{tool} not found: install the Debian package {package}")


def run(*argv):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"{argv}: {r.stdout}\n{r.stderr}"


PDF = (b"%PDF-1.4\n1 0 obj <</Type /Catalog /Pages 2 0 R>> endobj\n"
       b"2 0 obj <</Type /Pages /Kids [3 0 R] /Count 1>> endobj\n"
       b"3 0 obj <</Type /Page /Parent 2 0 R /MediaBox [0 0 243 153]>> endobj\n"
       b"trailer <</Root 1 0 R>>\n%%EOF\n")


@pytest.fixture(scope="session")
def photo_files(tmp_path_factory):
    need("cwebp", "webp")
    need("heif-enc", "libheif-examples")
    d = tmp_path_factory.mktemp("photos")
    png = os.path.join(d, "card.png")
    with open(png, "wb") as f:
        f.write(drawn_png())
    run("cwebp", "-quiet", "-q", "80", png, "-o", os.path.join(d, "card.webp"))
    run("heif-enc", "-q", "50", "-o", os.path.join(d, "card.heic"), png)
    run("heif-enc", "-A", "-q", "50", "-o", os.path.join(d, "card.avif"), png)
    out = {}
    for name in ("png", "webp", "heic", "avif"):
        with open(os.path.join(d, f"card.{name}"), "rb") as f:
            out[name] = f.read()
    assert out["heic"][4:12] == b"ftypheic", out["heic"][:32]
    assert out["avif"][4:12] == b"ftypavif", out["avif"][:32]
    out["heif"] = out["heic"][:8] + b"mif1" + out["heic"][12:]
    out["pdf"] = PDF
    rng = random.Random(8)
    out["noise"] = b"\x01" + bytes(rng.getrandbits(8) for _ in range(20_000))
    return out
