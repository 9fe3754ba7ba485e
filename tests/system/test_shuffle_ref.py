"""Tests of the Python reference of the pre-queue draw (tests/system/shuffle_ref.py).

The reference is what an auditor runs to recompute the draw from the published seed; the C unit
tests (tests/unit/test_shuffle.c) hold the same known answers, which ties the two implementations
together. No server is involved."""

import hashlib
import os
import subprocess
import sys

import pytest

import shuffle_ref

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "shuffle_ref.py")

ZERO = bytes(32)
COUNT = bytes(range(32))
TAG = hashlib.sha256(b"antre test seed").digest()
SEEDS = {"zero": ZERO, "count": COUNT, "tag": TAG}

# (seed, P, i, place): the same numbers as KATS in tests/unit/test_shuffle.c.
KATS = [
    ("zero", 1, 0, 0),
    ("zero", 2, 0, 0),
    ("zero", 2, 1, 1),
    ("count", 5, 0, 3),
    ("count", 5, 4, 2),
    ("tag", 1000, 0, 882),
    ("tag", 1000, 1, 685),
    ("tag", 1000, 499, 771),
    ("tag", 1000, 999, 278),
    ("zero", 4096, 0, 697),
    ("zero", 4096, 4095, 3991),
    ("count", 4097, 0, 1126),
    ("count", 4097, 4096, 438),
    ("tag", 1000000, 0, 370984),
    ("tag", 1000000, 123456, 348250),
    ("tag", 1000000, 999999, 898291),
    ("count", 1 << 40, 0, 404408859439),
    ("count", 1 << 40, (1 << 40) - 1, 1060578158632),
    ("tag", (1 << 40) - 1, 12345678901, 208354128372),
]

COUNT10 = [2, 1, 6, 7, 9, 3, 5, 4, 8, 0]
TAG17 = [13, 1, 14, 9, 2, 10, 12, 15, 8, 0, 7, 3, 5, 16, 4, 11, 6]


def places(seed, P):
    d = shuffle_ref.Draw(seed, P)
    return [d.place(i) for i in range(P)]


def spearman(perm):
    """Spearman's rho between i and perm[i]; both are permutations of 0..P-1 (no ties)."""
    n = len(perm)
    d2 = sum((i - p) ** 2 for i, p in enumerate(perm))
    return 1.0 - 6.0 * d2 / (n * (n * n - 1))


def run_cli(*args):
    return subprocess.run([sys.executable, SCRIPT, *map(str, args)], capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("P", list(range(1, 130)) + [1000, 4096, 4097])
def test_bijection_and_inverse(P):
    d = shuffle_ref.Draw(TAG, P)
    got = [d.place(i) for i in range(P)]
    assert sorted(got) == list(range(P))
    assert [d.inverse(p) for p in got] == list(range(P))


def test_order_is_inverse_of_places():
    perm = places(COUNT, 500)
    order = shuffle_ref.order(COUNT, 500)
    assert all(order[perm[i]] == i for i in range(500))


def test_known_answers():
    for name, P, i, want in KATS:
        assert shuffle_ref.place(SEEDS[name], P, i) == want, (name, P, i)
        assert shuffle_ref.inverse(SEEDS[name], P, want) == i, (name, P, i)


def test_known_full_orders():
    assert places(COUNT, 10) == COUNT10
    assert places(TAG, 17) == TAG17


def test_one_ticket_gets_place_zero():
    for seed in SEEDS.values():
        assert shuffle_ref.place(seed, 1, 0) == 0


def test_bad_input():
    for P, i in [(0, 0), (10, 10), (10, -1), ((1 << 40) + 1, 0)]:
        with pytest.raises(ValueError):
            shuffle_ref.place(TAG, P, i)
    with pytest.raises(ValueError):
        shuffle_ref.place(bytes(31), 10, 0)
    for text in ["", "00" * 31, "00" * 33, "0g" + "00" * 31, " 0" + "00" * 31]:
        with pytest.raises(ValueError):
            shuffle_ref.parse_seed(text)


def test_seed_changes_the_order():
    a = places(TAG, 1000)
    flipped = TAG[:31] + bytes([TAG[31] ^ 1])
    for other in (flipped, COUNT):
        b = places(other, 1000)
        # Two independent permutations agree on about one position.
        assert sum(x == y for x, y in zip(a, b)) < 20


def test_P_changes_the_order():
    # P is part of every round's input, so growing the pre-queue by one reshuffles everyone.
    a = places(TAG, 1000)
    b = places(TAG, 1001)[:1000]
    assert sum(x == y for x, y in zip(a, b)) < 20


def test_no_rank_correlation_fixed_seed():
    rho = spearman(places(TAG, 1000))
    assert abs(rho) < 0.1, rho


def test_no_rank_correlation_many_seeds():
    # sd of rho for a random permutation of 1000 is 1/sqrt(999): |rho| >= 0.1 is ~3.2 sigma.
    rhos = [spearman(places(hashlib.sha256(b"rho seed %d" % n).digest(), 1000))
            for n in range(20)]
    assert sum(abs(r) < 0.1 for r in rhos) >= 19, rhos


def test_commitment():
    assert shuffle_ref.commitment(ZERO) == \
        "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925"
    assert shuffle_ref.commitment(COUNT) == \
        "630dcd2966c4336691125448bbb25b4ff412a49c732db2c8abc1b8581bd710dd"
    assert shuffle_ref.commitment(TAG) == \
        "81f55c99f285ff63ba93eceb3f8f2a75ecb80f123c069585189823489af85a4a"
    assert shuffle_ref.commitment(TAG) == hashlib.sha256(TAG).hexdigest()


def test_cli_places():
    r = run_cli(TAG.hex(), 1000, 0, 1, 499, 999)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["882", "685", "771", "278"]
    r = run_cli(TAG.hex().upper(), 1000000, 123456)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["348250"]


def test_cli_all_prints_the_admission_order():
    r = run_cli("--all", COUNT.hex(), 10)
    assert r.returncode == 0, r.stderr
    order = [int(x) for x in r.stdout.split()]
    assert len(order) == 10
    assert all(COUNT10[order[j]] == j for j in range(10))


def test_cli_commit():
    r = run_cli("--commit", TAG.hex())
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == hashlib.sha256(TAG).hexdigest()


def test_cli_refuses_bad_input():
    bad = [("zz" * 32, 10, 0), (TAG.hex(), 0, 0), (TAG.hex(), 10, 10), (TAG.hex()[:-2], 10, 0)]
    for args in bad:
        r = run_cli(*args)
        assert r.returncode != 0, args
        assert r.stdout == "", args
