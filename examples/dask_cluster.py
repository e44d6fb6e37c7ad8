# SPDX-License-Identifier: MIT
# distributed is typed in part: its untyped calls are taken as they are,
# and dask re-exports annotate() without saying so.
# mypy: allow-untyped-calls
"""Dask across machines, pyshm inside each: a distributed cluster whose
workers each run their tasks in a WorkerPool of their own.

    python examples/dask_cluster.py [--dask-workers N] [--pool-workers K]
                                    [--tasks T] [--size S] [--mode MODE]

Dask schedules the tasks across its workers (here a LocalCluster of worker
processes on this machine; on a real cluster, one per host).
pyshm_workers.dask.PyshmPlugin gives each Dask worker a WorkerPool, and the
tasks run under dask.annotate(executor="pyshm") go to it. The task function
is defined here, in __main__: Dask sends it to its workers by value, and
so does pyshm (cloudpickle). A numpy array goes in with each task and comes
back out.

Needs Dask's distributed and numpy (Debian: python3-distributed,
python3-numpy).
"""

import argparse
import logging
import os
import time

import dask
import numpy
import numpy.typing
from distributed import Client, LocalCluster

from pyshm_workers.dask import PyshmPlugin


def collatz_lengths(
        starts: numpy.typing.NDArray[numpy.int64]) -> numpy.typing.NDArray[numpy.int64]:
    """The Collatz chain length of each start (a numpy array in, one out)."""
    out = numpy.empty(len(starts), dtype=numpy.int64)
    for i, n in enumerate(starts.tolist()):
        steps = 1
        while n != 1:
            n = n // 2 if n % 2 == 0 else 3 * n + 1
            steps += 1
        out[i] = steps
    return out


def register(client: Client, plugin: PyshmPlugin) -> None:
    if hasattr(client, "register_plugin"):      # distributed 2023.9+
        client.register_plugin(plugin)
    else:
        client.register_worker_plugin(plugin)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dask-workers", type=int, default=2)
    ap.add_argument("--pool-workers", type=int, default=2)
    ap.add_argument("--tasks", type=int, default=8)
    ap.add_argument("--size", type=int, default=20000)
    ap.add_argument("--mode", default="auto")
    args = ap.parse_args()

    chunks = numpy.array_split(numpy.arange(1, args.size + 1), args.tasks)
    t0 = time.perf_counter()
    with LocalCluster(n_workers=args.dask_workers, threads_per_worker=args.pool_workers,
                      processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        register(client, PyshmPlugin(max_workers=args.pool_workers, mode=args.mode))
        with dask.annotate(executor="pyshm"):  # type: ignore[attr-defined]
            futures = client.map(collatz_lengths, chunks)
        lengths = numpy.concatenate(client.gather(futures))
        hosts = len(client.scheduler_info()["workers"])
    took = time.perf_counter() - t0
    best = int(lengths.argmax())
    print(f"{args.tasks} tasks on {hosts} Dask workers x {args.pool_workers} pyshm workers "
          f"in {took:.2f} s (pid {os.getpid()})")
    print(f"up to {args.size}: {best + 1} takes {int(lengths[best])} steps")


if __name__ == "__main__":
    main()
