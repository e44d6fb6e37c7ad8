# SPDX-License-Identifier: GPL-2.0
"""A Dask program, run as a main script by test_dask.py: a real
distributed.LocalCluster of two worker processes, each with a WorkerPool
of its own (PyshmPlugin); tasks defined here in __main__ (Dask sends them
by value), numpy arrays in and out, a task that raises, a Dask worker
killed under its task. Prints one JSON line of what it saw.

    python dask_script.py MODE
"""

import json
import logging
import os
import signal
import sys
import time

import dask
import numpy
from distributed import Client, LocalCluster

from pyshm_workers.dask import PyshmPlugin


class TaskError(Exception):
    pass


def where(x):
    from pyshm_workers import _worker
    return x * 2, os.getpid(), _worker._in_worker


def scale(a, k):
    return a * k


def fail(x):
    raise TaskError(f"bad {x}")


def slow(delay):
    time.sleep(delay)
    return os.getpid()


def register(client, plugin):
    if hasattr(client, "register_plugin"):      # distributed 2023.9+
        client.register_plugin(plugin)
    else:
        client.register_worker_plugin(plugin)


def main(mode):
    seen = {}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=logging.CRITICAL) as cluster, \
            Client(cluster) as client:
        register(client, PyshmPlugin(max_workers=1, mode=mode))
        dask_pids = set(client.run(os.getpid).values())
        with dask.annotate(executor="pyshm"):
            results = client.gather(client.map(where, range(6)))
            seen["doubled"] = [r[0] for r in results]
            seen["in_pyshm_workers"] = all(r[2] for r in results)
            seen["pids_are_dask_workers"] = sorted({r[1] in dask_pids for r in results})
            a = client.submit(scale, numpy.arange(5, dtype="int32"), 3).result()
            seen["numpy"] = [type(a).__name__, str(a.dtype), a.tolist()]
            try:
                client.submit(fail, 7).result()
            except Exception as e:
                seen["raised"] = [type(e).__name__, isinstance(e, TaskError), str(e)]
            # A Dask worker killed under its task: Dask runs it elsewhere.
            f = client.submit(slow, 2, pure=False)
            victim = None
            deadline = time.monotonic() + 60
            while victim is None and time.monotonic() < deadline:
                for addr, keys in client.processing().items():
                    if f.key in keys:
                        victim = addr
                time.sleep(0.05)
            time.sleep(0.3)
            os.kill(client.run(os.getpid, workers=[victim])[victim], signal.SIGKILL)
            seen["after_kill"] = isinstance(f.result(timeout=120), int)
        # Without the annotation: Dask's own thread pool.
        seen["default_executor"] = client.submit(where, 1).result()[2]
    print(json.dumps(seen))


if __name__ == "__main__":
    main(sys.argv[1])
