# SPDX-License-Identifier: MIT
"""WorkerPool: a concurrent.futures.Executor over long-lived workers."""

import collections
import os
import threading
from concurrent.futures import Executor, Future

from . import _worker
from ._worker import Worker, helper_thread, resolve_mode


class _RemoteTraceback(Exception):
    """Carries a worker's traceback text as the __cause__ of the exception
    re-raised in the caller (as concurrent.futures does)."""

    def __init__(self, tb):
        super().__init__(tb)
        self.tb = tb

    def __str__(self):
        return self.tb


def _serve():
    """The loop each pool worker runs: (fn, args, kwargs) in, (ok,
    result-or-error) out, until the pool closes the port."""
    import pyshm_workers as pw
    from ._bootstrap import error_details

    port = pw.parent
    for fn, args, kwargs in port:
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            reply = (False, error_details(exc))
        else:
            reply = (True, result)
        try:
            port.post_message(reply)
        except Exception as exc:
            # The result (or the exception) could not be cloned.
            details = error_details(exc) if reply[0] else dict(reply[1], exception=None)
            port.post_message((False, details))
        # Nothing of this task stays alive while we wait for the next one.
        fn = args = kwargs = result = reply = None


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


class _Slot:
    """One worker, the task it runs, and the thread collecting its replies."""

    def __init__(self, pool):
        self.worker = pool._new_worker()
        self.task = None
        self.thread = None


class WorkerPool(Executor):
    """A concurrent.futures.Executor whose tasks run in pyshm workers.

    Functions and arguments are structured-cloned (functions by reference:
    module-level ones only). Workers start on demand, up to max_workers
    (default: the number of CPUs), and stay warm between tasks; a worker
    that dies fails its task with WorkerError and is replaced. The
    submitting thread hands a task straight to an idle worker; one thread
    per worker collects its replies.
    """

    def __init__(self, max_workers=None, mode="auto"):
        if max_workers is None:
            max_workers = os.cpu_count() or 1
        if max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        self._max_workers = max_workers
        self._mode = resolve_mode(mode)
        self._lock = threading.Lock()       # guards everything below
        self._slots = []
        self._idle = []
        self._pending = collections.deque()
        self._shutdown = False
        _worker._pools.add(self)

    def _new_worker(self):
        return Worker(_serve, mode=self._mode)

    def _start(self, slot, future, fn, args, kwargs):
        """Give a task to a slot. Caller holds the lock; False when the
        task could not be sent (its future is failed)."""
        if not future.set_running_or_notify_cancel():
            return False
        # Before the post: the reply may be collected before it returns.
        slot.task = future
        try:
            slot.worker.post_message((fn, args, kwargs))
        except BaseException as exc:
            slot.task = None
            future.set_exception(exc)
            return False
        return True

    def _next(self, slot):
        """The slot is free: start the next pending task, or idle. Caller
        holds the lock."""
        slot.task = None
        while self._pending:
            if self._start(slot, *self._pending.popleft()):
                return
        self._idle.append(slot)
        if self._shutdown:
            slot.worker._port._close_send()

    def _idle_slot(self):
        """An idle slot whose worker lives, or None. Caller holds the lock.
        A dead one is left to its collector, which replaces the worker and
        then takes pending work."""
        while self._idle:
            slot = self._idle.pop()
            if slot.worker.is_alive():
                return slot
        return None

    def submit(self, fn, /, *args, **kwargs):
        future = Future()
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            slot = self._idle_slot()
            if slot is not None:
                if not self._start(slot, future, fn, args, kwargs):
                    self._idle.append(slot)
            elif len(self._slots) < self._max_workers:
                slot = _Slot(self)
                self._slots.append(slot)
                if not self._start(slot, future, fn, args, kwargs):
                    self._idle.append(slot)
                slot.thread = helper_thread(self._collect, f"WorkerPool-{slot.worker.name}",
                                            slot)
            else:
                self._pending.append((future, fn, args, kwargs))
        return future

    def _collect(self, slot):
        from . import WorkerError

        while True:
            try:
                ok, value = slot.worker.recv()
            except EOFError:
                with self._lock:
                    if self._shutdown and slot.task is None:
                        return          # closed by shutdown()
                exc = WorkerError(f"the pool's worker exited while running the task "
                                  f"(exit code {slot.worker.exit_code})")
            except WorkerError as err:
                exc = err
            else:
                future = slot.task
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(_exception_from(value))
                # The future owns the result now: this thread must not keep
                # it (or the future) alive while it waits for the next
                # reply, as map()'s iterator lets go of each result.
                del future, value
                with self._lock:
                    self._next(slot)
                continue
            # The worker died under its task: fail it, then replace the worker.
            future = slot.task
            if future is not None:
                future.set_exception(exc)
            slot.worker.terminate()
            slot.worker.join()
            with self._lock:
                # A worker may die idle, too.
                if slot in self._idle:
                    self._idle.remove(slot)
                if self._shutdown and not self._pending:
                    self._slots.remove(slot)
                    return
                try:
                    slot.worker = self._new_worker()
                except BaseException as err:
                    self._slots.remove(slot)
                    while self._pending and not self._slots:
                        self._pending.popleft()[0].set_exception(err)
                    return
                self._next(slot)

    def shutdown(self, wait=True, *, cancel_futures=False):
        with self._lock:
            self._shutdown = True
            if cancel_futures:
                while self._pending:
                    self._pending.popleft()[0].cancel()
            # Idle workers end now; busy ones once their queue is empty.
            for slot in self._idle:
                slot.worker._port._close_send()
            slots = list(self._slots)
        if wait:
            for slot in slots:
                slot.thread.join()
                slot.worker.join()
