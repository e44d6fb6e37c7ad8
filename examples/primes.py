# SPDX-License-Identifier: MIT
"""Count the primes below N with a segmented sieve, split across workers
that share one SharedArrayBuffer.

Workers claim segments with an atomic counter (work stealing), publish each
sieved segment into the shared buffer, add their counts atomically, and the
main interpreter sleeps in Atomics.wait() until the last one reports. Run
once with 1 worker and once with one per CPU, and print the speed-up.

    python examples/primes.py [N] [--mode auto|interpreter|process]
"""

import argparse
import math
import os
import sys
import time
from typing import Literal, cast

import pyshm_workers as pw

Mode = Literal["auto", "interpreter", "process"]

SEGMENT = 1 << 16
HEADER = 32              # four Int64 control words before the sieve bytes
NEXT, FOUND, DONE = 0, 1, 2


def shared_bytes(sab: pw.SharedArrayBuffer) -> memoryview:
    """The bytes of sab: writable, shared, not a copy."""
    # The cast is for type checkers whose typeshed predates PEP 688 (as
    # Debian 12's mypy): they take only the standard library's buffers.
    return memoryview(cast(bytearray, sab))


def small_primes(limit: int) -> list[int]:
    sieve = bytearray([1]) * (limit + 1)
    sieve[0:2] = b"\0\0"
    for p in range(2, math.isqrt(limit) + 1):
        if sieve[p]:
            sieve[p * p::p] = bytes(len(range(p * p, limit + 1, p)))
    return [p for p in range(limit + 1) if sieve[p]]


def sieve_worker(sab: pw.SharedArrayBuffer, n: int) -> None:
    """Sieve segments until none is left; publish them into sab."""
    ctl = pw.Int64Array(sab, 0, 4)
    flags = shared_bytes(sab)[HEADER:HEADER + n]
    primes = small_primes(math.isqrt(n))
    segments = (n + SEGMENT - 1) // SEGMENT
    while True:
        s = ctl.add(NEXT, 1)                      # claim the next segment
        if s >= segments:
            break
        lo, hi = s * SEGMENT, min(n, (s + 1) * SEGMENT)
        seg = bytearray([1]) * (hi - lo)
        for p in primes:
            start = max(p * p, (lo + p - 1) // p * p)
            if start >= hi:
                continue
            seg[start - lo::p] = bytes(len(range(start, hi, p)))
        if lo == 0:
            seg[0:2] = b"\0\0"
        flags[lo:hi] = seg                        # shared: no copy back
        ctl.add(FOUND, seg.count(1))
    ctl.add(DONE, 1)
    ctl.notify(DONE)


def run(n: int, nworkers: int, mode: Mode) -> tuple[float, int]:
    sab = pw.SharedArrayBuffer(HEADER + n)
    ctl = pw.Int64Array(sab, 0, 4)
    t0 = time.perf_counter()
    workers = [pw.Worker(sieve_worker, args=(sab, n), mode=mode) for _ in range(nworkers)]
    while (done := ctl.load(DONE)) < nworkers:
        ctl.wait(DONE, done)                      # sleeps until a worker notifies
    elapsed = time.perf_counter() - t0
    for w in workers:
        w.join()
        if w.exit_code != 0:
            raise SystemExit(f"worker failed with exit code {w.exit_code}")
    # The sieve itself lives in the shared buffer: spot-check it here.
    flags = shared_bytes(sab)[HEADER:HEADER + n]
    assert flags[97] == 1 and flags[91] == 0
    return elapsed, ctl.load(FOUND)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", nargs="?", type=int, default=20_000_000)
    ap.add_argument("--mode", default="auto", choices=("auto", "interpreter", "process"))
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()

    mode: Mode = args.mode
    if mode == "auto":
        mode = "interpreter" if sys.version_info >= (3, 12) else "process"
    print(f"pyshm demo: primes below {args.n:,} with a segmented sieve, in workers "
          f"sharing one SharedArrayBuffer (mode={mode}, backend={pw.backend()})")
    print(f"{'workers':>8} {'time':>9} {'primes':>10} {'speed-up':>9}")
    base = None
    for k in sorted({1, max(1, args.workers)}):
        elapsed, found = run(args.n, k, mode)
        base = base or elapsed
        print(f"{k:>8} {elapsed:>8.3f}s {found:>10} {base / elapsed:>8.2f}x")


if __name__ == "__main__":
    main()
