# SPDX-License-Identifier: MIT
"""WorkerPool as a drop-in concurrent.futures executor: map a CPU-bound
function over inputs on warm workers.

    python examples/pool_map.py [--workers K]
"""

import argparse
import time

import pyshm_workers as pw


def collatz_longest(limit: int) -> tuple[int, int]:
    """The start below limit with the longest Collatz chain, and its length."""
    best, best_len = 1, 1
    for start in range(1, limit):
        n, steps = start, 1
        while n != 1:
            n = n // 2 if n % 2 == 0 else 3 * n + 1
            steps += 1
        if steps > best_len:
            best, best_len = start, steps
    return best, best_len


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--size", type=int, default=60000)
    args = ap.parse_args()
    limits = [args.size + 1000 * i for i in range(8)]
    t0 = time.perf_counter()
    with pw.WorkerPool(max_workers=args.workers) as pool:
        results = list(pool.map(collatz_longest, limits))
    print(f"{len(limits)} tasks in {time.perf_counter() - t0:.2f} s")
    for limit, (start, length) in zip(limits, results):
        print(f"  below {limit}: {start} takes {length} steps")
