#!/usr/bin/env python3
"""Reference implementation of antre's pre-queue draw ("antre-prequeue-v1"), for auditors.

Before a room opens, joiners get pre-queue numbers 0, 1, 2, ... in arrival order. At opening the
count P is frozen and a 32-byte seed is drawn; number i gets place place(seed, P, i) (0 = front).
SHA-256(seed) is published while the pre-queue is open and the seed after the draw, so anyone can
check the seed against that commitment and recompute every place with this file. It needs only
the Python 3 standard library and is written from the specification below, independently of the
C implementation (common/shuffle.c); the C unit tests hold answers produced by this file.

Specification (same text as include/antre/shuffle.h):
  Inputs: seed S (32 bytes), P with 1 <= P <= 2**40, pre-queue number i with 0 <= i < P.
  k = the smallest integer >= 1 with 2**(2k) >= P; mask = 2**k - 1.
  F(r, x) = int.from_bytes(HMAC-SHA256(key=S, msg=M)[:8], "big") & mask, where
      M = b"antre-prequeue-v1" + bytes([r]) + P.to_bytes(8, "big") + x.to_bytes(8, "big")
  E(v): L, R = v >> k, v & mask; for r in 0..7: L, R = R, L ^ F(r, R); return (L << k) | R
  place(i): v = E(i); while v >= P: v = E(v); return v          (cycle walking)
  inverse(j): the same with D, which runs r = 7..0: L, R = R ^ F(r, L), L
  commitment(S) = SHA-256(S).hexdigest() over the 32 raw bytes.

Command line:
  shuffle_ref.py SEED_HEX P [i ...]   the place of each pre-queue number i, one per line
  shuffle_ref.py --all SEED_HEX P     the whole order: line j holds the pre-queue number whose
                                      place is j, for j = 0 .. P-1 (the admission order)
  shuffle_ref.py --commit SEED_HEX    the commitment to the seed, to compare with the one
                                      published before the draw
"""

import argparse
import hashlib
import hmac
import sys

TAG = b"antre-prequeue-v1"
ROUNDS = 8
MAX_P = 1 << 40


def half_bits(P):
    """k: the smallest k >= 1 with 2**(2k) >= P."""
    k = 1
    while (1 << (2 * k)) < P:
        k += 1
    return k


class Draw:
    """The permutation for one seed and one P."""

    def __init__(self, seed, P):
        if not isinstance(seed, (bytes, bytearray)) or len(seed) != 32:
            raise ValueError("seed must be 32 bytes")
        if not 1 <= P <= MAX_P:
            raise ValueError("P must be in [1, 2**40]")
        self.P = P
        self.k = half_bits(P)
        self.mask = (1 << self.k) - 1
        self._mac = hmac.new(bytes(seed), digestmod=hashlib.sha256)
        self._p_bytes = P.to_bytes(8, "big")
        # F(r, x) takes only 8 * 2**k values; remember them when that is at most half a million
        # (P <= 2**32), so a whole draw of a million costs 8192 HMACs. Speed only, same answers.
        self._memo = {} if self.k <= 16 else None

    def f(self, r, x):
        if self._memo is not None and (r, x) in self._memo:
            return self._memo[(r, x)]
        m = self._mac.copy()
        m.update(TAG + bytes([r]) + self._p_bytes + x.to_bytes(8, "big"))
        value = int.from_bytes(m.digest()[:8], "big") & self.mask
        if self._memo is not None:
            self._memo[(r, x)] = value
        return value

    def forward(self, v):
        left, right = v >> self.k, v & self.mask
        for r in range(ROUNDS):
            left, right = right, left ^ self.f(r, right)
        return (left << self.k) | right

    def backward(self, v):
        left, right = v >> self.k, v & self.mask
        for r in reversed(range(ROUNDS)):
            left, right = right ^ self.f(r, left), left
        return (left << self.k) | right

    def _walk(self, v, step):
        if not 0 <= v < self.P:
            raise ValueError("number out of range [0, P)")
        # Bounded: the cycle through v is at most 2**(2k) long and comes back to v < P.
        for _ in range(1 << (2 * self.k)):
            v = step(v)
            if v < self.P:
                return v
        raise AssertionError("cycle walk did not end")  # impossible for a permutation

    def place(self, i):
        return self._walk(i, self.forward)

    def inverse(self, j):
        return self._walk(j, self.backward)


def place(seed: bytes, P: int, i: int) -> int:
    """The place (0-based) of pre-queue number i (0-based) among P under seed."""
    return Draw(seed, P).place(i)


def inverse(seed: bytes, P: int, j: int) -> int:
    """The pre-queue number holding place j."""
    return Draw(seed, P).inverse(j)


def order(seed: bytes, P: int) -> list:
    """The admission order: order[j] is the pre-queue number whose place is j."""
    d = Draw(seed, P)
    out = [0] * P
    for i in range(P):
        out[d.place(i)] = i
    return out


def commitment(seed: bytes) -> str:
    """The published commitment: hex SHA-256 of the 32 seed bytes."""
    if len(seed) != 32:
        raise ValueError("seed must be 32 bytes")
    return hashlib.sha256(bytes(seed)).hexdigest()


def parse_seed(text: str) -> bytes:
    """64 hex digits (either case) -> 32 bytes."""
    if len(text) != 64 or any(c not in "0123456789abcdefABCDEF" for c in text):
        raise ValueError("seed must be 64 hex digits")
    return bytes.fromhex(text)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Recompute antre's pre-queue draw from its seed.")
    ap.add_argument("--all", action="store_true",
                    help="print the whole order: line j is the pre-queue number with place j")
    ap.add_argument("--commit", action="store_true",
                    help="print SHA-256 of the seed (the commitment) and exit")
    ap.add_argument("seed", help="the published seed, 64 hex digits")
    ap.add_argument("P", nargs="?", type=int, help="number of pre-queue tickets")
    ap.add_argument("i", nargs="*", type=int, help="pre-queue numbers (0-based)")
    a = ap.parse_args(argv)
    try:
        seed = parse_seed(a.seed)
        if a.commit:
            print(commitment(seed))
            return 0
        if a.P is None:
            ap.error("P is required")
        d = Draw(seed, a.P)
        if a.all:
            for number in order(seed, a.P):
                print(number)
        else:
            for i in a.i:
                print(d.place(i))
    except ValueError as e:
        print("shuffle_ref: %s" % e, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
