# SPDX-License-Identifier: MIT
"""WorkerPool: a concurrent.futures.Executor over long-lived workers."""

import os
import queue
import threading
from concurrent.futures import Executor, Future

from ._worker import MODES, Worker


class _RemoteTraceback(Exception):
    """Carries a worker's traceback text as the __cause__ of the exception
    re-raised in the caller (as concurrent.futures does)."""

    def __init__(self, tb):
        super().__init__(tb)
        self.tb = tb

    def __str__(self):
        return self.tb


def _serve():
    """The loop each pool worker runs: (id, fn, args, kwargs) in, (id, ok,
    result-or-error) out, until the pool closes the port."""
    import pyshm_workers as pw
    from ._bootstrap import error_details

    port = pw.parent
    for task_id, fn, args, kwargs in port:
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            reply = (task_id, False, error_details(exc))
        else:
            reply = (task_id, True, result)
        try:
            port.post_message(reply)
        except Exception as exc:
            # The result (or the exception) could not be cloned.
            details = error_details(exc) if reply[1] else dict(reply[2], exception=None)
            port.post_message((task_id, False, details))


def _exception_from(details):
    from . import WorkerError

    exc = details.get("exception")
    tb = details.get("traceback") or ""
    if isinstance(exc, BaseException):
        exc.__cause__ = _RemoteTraceback(tb)
        return exc
    err = WorkerError(f"{details.get('type')}: {details.get('message')}\n\n{tb}")
    err.remote_type = details.get("type")
    err.remote_message = details.get("message")
    err.remote_traceback = tb
    err.exception = None
    return err


_STOP = object()


class WorkerPool(Executor):
    """A concurrent.futures.Executor whose tasks run in pyshm workers.

    Functions and arguments are structured-cloned (functions by reference:
    module-level ones only). Workers start on demand, up to max_workers
    (default: the number of CPUs), and stay warm between tasks; a worker
    that dies fails its task with WorkerError and is replaced.
    """

    def __init__(self, max_workers=None, mode="auto"):
        if max_workers is None:
            max_workers = os.cpu_count() or 1
        if max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self._max_workers = max_workers
        self._mode = mode
        self._queue = queue.SimpleQueue()
        self._threads = []
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._shutdown = False

    def submit(self, fn, /, *args, **kwargs):
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            future = Future()
            self._queue.put((future, fn, args, kwargs))
            # A thread per worker, started when no idle one is waiting.
            if not self._idle.acquire(blocking=False) and \
                    len(self._threads) < self._max_workers:
                t = threading.Thread(target=self._feed, daemon=True,
                                     name=f"WorkerPool-{len(self._threads)}")
                t.start()
                self._threads.append(t)
        return future

    def _new_worker(self):
        return Worker(_serve, mode=self._mode)

    def _feed(self):
        """Own one worker; hand it tasks one at a time."""
        from . import WorkerError

        worker = None
        try:
            while True:
                item = self._queue.get()
                if item is _STOP:
                    return
                future, fn, args, kwargs = item
                if not future.set_running_or_notify_cancel():
                    self._idle.release()
                    continue
                try:
                    if worker is None:
                        worker = self._new_worker()
                    worker.post_message((0, fn, args, kwargs))
                    _, ok, value = worker.recv()
                except (WorkerError, EOFError) as exc:
                    # The worker died under this task: fail it, replace it.
                    if isinstance(exc, EOFError):
                        exc = WorkerError(f"the pool's worker exited while running "
                                          f"the task (exit code {worker.exit_code})")
                    future.set_exception(exc)
                    worker.terminate()
                    worker.join()
                    worker = None
                except BaseException as exc:
                    future.set_exception(exc)
                else:
                    if ok:
                        future.set_result(value)
                    else:
                        future.set_exception(_exception_from(value))
                self._idle.release()
        finally:
            if worker is not None:
                worker._finish(5.0)

    def shutdown(self, wait=True, *, cancel_futures=False):
        with self._lock:
            self._shutdown = True
            if cancel_futures:
                while True:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is not _STOP:
                        item[0].cancel()
            for _ in self._threads:
                self._queue.put(_STOP)
        if wait:
            for t in self._threads:
                t.join()
