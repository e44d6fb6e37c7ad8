# SPDX-License-Identifier: GPL-2.0
"""Helpers for the Python benchmarks of `make bench`: timing with
calibration and medians, and the one table format every part prints
(bench/bench.h: case, pyshm, peer, ratio, goal, met/MISSED), so results
read side by side.

    from pybench import measure, table_header, table_row, fmt_time

Ratios are pyshm/peer for times (below 1: pyshm is faster).
"""

import gc
import os
import statistics
import sys
import time

REPEATS = 5


def pin_cpu(n=0):
    """Pin this process to its n-th usable CPU (modulo), if it has several."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return
    if len(cpus) > 1:
        os.sched_setaffinity(0, {cpus[n % len(cpus)]})


def measure(fn, target=0.1, repeats=REPEATS, setup=None):
    """Median seconds per call of fn(), over `repeats` runs of a number of
    calls calibrated to take about `target` seconds each. The GC is off
    while timing (collected between runs), as timeit does."""
    if setup:
        setup()
    number = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        took = time.perf_counter() - t0
        if took >= target / 4 or number >= 1 << 24:
            break
        number *= 4 if took < target / 40 else 2
    number = max(1, int(number * target / max(took, 1e-9)))
    times = []
    enabled = gc.isenabled()
    try:
        for _ in range(repeats):
            gc.collect()
            gc.disable()
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            times.append((time.perf_counter() - t0) / number)
            if enabled:
                gc.enable()
    finally:
        if enabled:
            gc.enable()
    return statistics.median(times)


def measure_loop(body, iterations, repeats=REPEATS):
    """Median seconds per iteration of body(iterations), a function that
    runs its own loop (to time a Python statement in a loop)."""
    return measure(lambda: body(iterations), target=0.05, repeats=repeats) / iterations


def fmt_time(seconds):
    ns = seconds * 1e9
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} us"
    return f"{ns:.0f} ns"


def table_header(title):
    print(f"\n{title}\n{'case':<58} {'pyshm':>14} {'peer':>14} {'ratio':>9}  goal",
          flush=True)


def table_row(name, ours, peer, ratio, goal, met):
    """One row: `ratio` is pyshm/peer for times, so below 1 is always
    "pyshm is faster"; `goal` says what the issue asks. met None: a ratio
    shown for information, nothing judged."""
    verdict = "" if met is None else f"  [{'met' if met else 'MISSED'}]"
    print(f"{name:<58} {ours:>14} {peer:>14} {ratio:8.3f}x  {goal}{verdict}", flush=True)


def python_banner():
    return f"Python {sys.version.split()[0]} ({sys.executable})"
