# SPDX-License-Identifier: GPL-2.0
"""Dask's local scheduler with scheduler=WorkerPool(2) against its own
threaded and processes schedulers (2 workers each): 8 CPU-bound
pure-Python tasks, one graph, measured side by side in one run. Needs dask
(Debian's python3-dask: /usr/bin/python3).

    python bench/dask_bench.py [--quick]
"""

import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import bench_targets as T                      # noqa: E402
import pyshm_workers as pw                     # noqa: E402
from pybench import fmt_time, python_banner, table_header, table_row  # noqa: E402


def graph(tasks, size):
    import dask
    return [dask.delayed(T.cpu_work)(size + i) for i in range(tasks)]


def run(scheduler, tasks, size, repeats=5, **kwargs):
    """Median seconds for dask.compute() of the graph (a warm-up first)."""
    import dask
    dask.compute(*graph(tasks, 1000), scheduler=scheduler, **kwargs)
    times = []
    for _ in range(repeats):
        g = graph(tasks, size)
        t0 = time.perf_counter()
        dask.compute(*g, scheduler=scheduler, **kwargs)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller tasks")
    args = ap.parse_args()
    size = 200_000 if args.quick else 2_000_000
    print(f"# {python_banner()}, backend {pw.backend()}, {os.cpu_count()} CPUs")
    try:
        import dask  # noqa: F401
    except ImportError:
        print("# dask is not installed for this Python: no Dask figures")
        return
    table_header("E9. Dask local scheduler, 8 CPU-bound pure-Python tasks, 2 workers")
    threaded = run("threads", 8, size, num_workers=2)
    processes = run("processes", 8, size, num_workers=2)
    with pw.WorkerPool(2) as pool:
        ours = run(pool, 8, size)
        mode = pool.stats()["process_workers"] and "process" or "interpreter"
    table_row(f"scheduler=WorkerPool(2) ({mode}) vs threaded (speed-up "
              f"{threaded / ours:.2f}x)", fmt_time(ours), fmt_time(threaded),
              ours / threaded, ">= 1.8x speed-up", threaded / ours >= 1.8)
    table_row("scheduler=WorkerPool(2) vs scheduler=\"processes\"", fmt_time(ours),
              fmt_time(processes), ours / processes, "< 1x", ours < processes)


if __name__ == "__main__":
    main()
