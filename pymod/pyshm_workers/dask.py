# SPDX-License-Identifier: MIT
"""Dask: pyshm parallelises inside a host, Dask schedules across hosts.

Two ways in (Documentation/python-api.rst, "Dask"):

- Dask's local scheduler takes any Executor: ``dask.compute(x,
  scheduler=pool)`` with a WorkerPool runs the graph's tasks in its workers
  (nothing from this module is needed).
- On a ``distributed`` cluster, PyshmPlugin gives each Dask worker a
  WorkerPool of its own as one of its executors, shut down with the Dask
  worker. Tasks opt in with ``dask.annotate(executor="pyshm")``; with
  ``name="default"`` the pool is every task's executor::

      client.register_plugin(PyshmPlugin())       # distributed 2023.9+
      client.register_worker_plugin(PyshmPlugin())  # older distributed
      with dask.annotate(executor="pyshm"):
          futures = client.map(work, inputs)

Dask hands an executor a wrapper around each task
(distributed.worker.apply_function_simple, _run_task_simple since 2024),
which records timings and the task's exception for the scheduler. The
pool's workers get the task itself, so that they never import distributed,
and the wrapper's record is made here in the Dask worker: a task's own
exception (type and all) is what the Dask future raises.
"""

import threading
import time
from concurrent.futures import Executor, Future

from distributed import WorkerPlugin

from ._pool import WorkerPool
from ._worker import resolve_mode

__all__ = ["DaskExecutor", "PyshmPlugin"]


class PyshmPlugin(WorkerPlugin):
    """A distributed WorkerPlugin: each Dask worker gets a
    WorkerPool(max_workers, mode) as its executor called name, for tasks
    run under dask.annotate(executor=name). name="default" makes it the
    executor of every task (the worker's own thread pool comes back when the
    plugin is removed). The pool shuts down with the Dask worker."""

    def __init__(self, max_workers=None, mode="auto", name="pyshm"):
        if max_workers is not None and max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        resolve_mode(mode)              # ValueError for a bad mode, here
        if not isinstance(name, str) or not name:
            raise TypeError("name must be a non-empty str")
        self.max_workers = max_workers
        self.mode = mode
        # Also the plugin's name for distributed: registering another
        # PyshmPlugin of the same name replaces this one.
        self.name = name

    def setup(self, worker):
        executor = DaskExecutor(WorkerPool(self.max_workers, self.mode))
        self._previous = worker.executors.get(self.name)
        worker.executors[self.name] = executor

    def teardown(self, worker):
        executor = worker.executors.get(self.name)
        if isinstance(executor, DaskExecutor):
            previous = getattr(self, "_previous", None)
            if previous is not None:
                worker.executors[self.name] = previous
            else:
                del worker.executors[self.name]
            executor.shutdown(wait=True, cancel_futures=True)

    def __repr__(self):
        return (f"PyshmPlugin(max_workers={self.max_workers!r}, mode={self.mode!r}, "
                f"name={self.name!r})")


class DaskExecutor(Executor):
    """A WorkerPool as a Dask worker's executor (what PyshmPlugin
    registers): Dask's task wrappers run here, their tasks in the pool;
    anything else is submitted to the pool as it is."""

    def __init__(self, pool):
        self.pool = pool

    def submit(self, fn, /, *args, **kwargs):
        if getattr(fn, "__module__", None) == "distributed.worker":
            name = getattr(fn, "__qualname__", None)
            if name == "apply_function_simple":         # distributed < 2024.12
                function, fargs, fkwargs, delay = args
                return self._run(delay, function, *fargs, **fkwargs)
            if name == "_run_task_simple":              # distributed 2024.12+
                task, data, delay = args
                return self._run(delay, task, data)
        return self.pool.submit(fn, *args, **kwargs)

    def _run(self, delay, fn, *args, **kwargs):
        """fn(*args, **kwargs) in the pool; a future of the record Dask's
        wrapper would have made."""
        outer = Future()
        outer.set_running_or_notify_cancel()
        start = time.time()
        inner = self.pool.submit(fn, *args, **kwargs)

        def done(f):
            stop = time.time()
            try:
                result = f.result()
            except BaseException as exc:
                msg = _failure(exc)
            else:
                from dask.sizeof import sizeof
                msg = {"op": "task-finished", "status": "OK", "result": result,
                       "nbytes": sizeof(result),
                       "type": type(result) if result is not None else None}
            msg.update(start=start + delay, stop=stop + delay, thread=threading.get_ident())
            outer.set_result(msg)

        inner.add_done_callback(done)
        return outer

    def map(self, fn, *iterables, **kwargs):
        return self.pool.map(fn, *iterables, **kwargs)

    def shutdown(self, wait=True, *, cancel_futures=False):
        # Dask ends its executors with shutdown(wait): what waits is dropped.
        self.pool.shutdown(wait=wait, cancel_futures=True)

    def __repr__(self):
        return f"<DaskExecutor {self.pool!r}>"


def _failure(exc):
    """Dask's record of a task that raised exc (error_message() wants it
    being handled, for its traceback)."""
    from distributed.core import error_message
    try:
        raise exc
    except BaseException as e:
        msg = error_message(e)
    msg["op"] = "task-erred"
    # The key's spelling changed with distributed 2024.12.
    msg["actual-exception"] = msg["actual_exception"] = exc
    return msg
