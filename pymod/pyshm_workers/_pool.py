# SPDX-License-Identifier: MIT
"""WorkerPool: a concurrent.futures.Executor over long-lived workers.

One collector thread per worker reads its replies; the submitting thread
hands a task straight to an idle worker. Everything a collector changes
about its worker (a replacement after a death, after max_tasks_per_child
tasks, or in another mode) happens on that collector's thread.
"""

import collections
import itertools
import os
import threading
import time
import weakref
from concurrent.futures import BrokenExecutor, Executor, Future

from . import _worker
from ._worker import DEBUG, INFO, Worker, helper_thread, log, resolve_mode

# Pool -> worker: (kind, fn, args, kwargs). CALL runs fn(*args, **kwargs);
# CHUNK runs fn(*a) for each tuple a of the list args (a map() chunk: one
# message each way for all of them). The initializer, when there is one,
# comes first as (fn, args).
CALL, CHUNK = 0, 1
# Worker -> pool: (status, value).
OK = 0              # value: the result (a list for a CHUNK)
ERROR = 1           # value: error details (_bootstrap.error_details())
REFUSED = 2         # "auto": an import refused the subinterpreter before
                    # the task ran; value: details. Run it in a process.
INIT_REFUSED = 3    # the same, for the initializer; the worker ends
INIT_FAILED = 4     # the initializer raised; the worker ends


class BrokenWorkerPool(BrokenExecutor):
    """The pool's initializer raised: pending and later tasks fail with
    this (as ProcessPoolExecutor's BrokenProcessPool)."""


BrokenWorkerPool.__module__ = "pyshm_workers"


class _BufferSizeTypeError(TypeError, ValueError):
    """map()'s buffersize is not an int: TypeError as in Python 3.14's
    Executor.map, and a ValueError (a bad value) too."""


class _RemoteTraceback(Exception):
    """Carries a worker's traceback text as the __cause__ of the exception
    re-raised in the caller (as concurrent.futures does)."""

    def __init__(self, tb):
        super().__init__(tb)
        self.tb = tb

    def __str__(self):
        return self.tb


# ---- inside the worker --------------------------------------------------------

def _failure(exc, auto, refused, initializing=False):
    """The reply for an exception a task (or the initializer) raised, or
    for a message that did not decode: REFUSED for "auto" when an import
    refused the subinterpreter before the task ran (refused: that module
    name), else an error whose text says what to do."""
    from ._bootstrap import error_details
    if refused is not None and auto:
        return (INIT_REFUSED if initializing else REFUSED), error_details(exc)
    if refused is not None:
        exc = _worker.explain_refusal(exc, refused)
    return (INIT_FAILED if initializing else ERROR), error_details(exc)


def _refused(exc, interpreter):
    return _worker.refused_module(exc) if interpreter else None


def _serve(auto, initializer):
    """The loop each pool worker runs until the pool closes its port: the
    initializer first (when initializer is True), then tasks."""
    import pyshm_workers as pw

    port = pw.parent
    interpreter = _worker._in_subinterpreter
    if initializer:
        try:
            fn, args = port.recv()
            fn(*args)
        except BaseException as exc:
            port.post_message(_failure(exc, auto, _refused(exc, interpreter), True))
            return
    while True:
        try:
            kind, fn, args, kwargs = port.recv()
        except EOFError:
            return
        except Exception as exc:
            # The task did not decode here (a class that does not import,
            # an extension that refuses this interpreter...): nothing ran.
            reply = _failure(exc, auto, _refused(exc, interpreter))
        else:
            try:
                if kind == CHUNK:
                    result = [fn(*a) for a in args]
                else:
                    result = fn(*args, **kwargs)
            except BaseException as exc:
                # It ran: reported, never retried.
                reply = _failure(exc, False, _refused(exc, interpreter))
            else:
                reply = (OK, result)
        _post_reply(port, reply)
        # Nothing of this task stays alive while we wait for the next one.
        fn = args = kwargs = result = reply = None


def _post_reply(port, reply):
    from ._bootstrap import error_details
    try:
        port.post_message(reply)
    except Exception as exc:
        # The result (or the exception) could not be cloned.
        status, value = reply
        if status == OK:
            details = error_details(exc)
        else:
            details = dict(value, exception=None)
        port.post_message((ERROR if status in (OK, REFUSED) else status, details))


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


# ---- the pool -----------------------------------------------------------------

class _Task:
    """A submitted call or map() chunk, until its future is done."""

    __slots__ = ("future", "kind", "fn", "args", "kwargs", "process", "running")

    def __init__(self, kind, fn, args, kwargs, process):
        self.future = Future()
        self.kind, self.fn, self.args, self.kwargs = kind, fn, args, kwargs
        self.process = process      # must run in a process worker
        self.running = False        # its future was set running

    def fits(self, slot):
        return slot.mode == "process" or not self.process


class _Slot:
    """One worker, the task it runs, and the thread collecting its replies.
    [P]: guarded by the pool's lock."""

    def __init__(self, worker, mode):
        self.worker = worker        # replaced by the collector only
        self.mode = mode
        self.task = None            # [P] the task it runs
        self.done = 0               # [P] tasks it ran (max_tasks_per_child)
        self.switch = None          # [P] a mode to restart in once it ends
        self.thread = None


class WorkerPool(Executor):
    """A concurrent.futures.Executor whose tasks run in pyshm workers.

    Functions and arguments are structured-cloned: module-level functions
    by name, lambdas, closures and functions of a main script workers
    cannot load by value (cloudpickle). Workers start on demand, up to
    max_workers (default: the number of CPUs), and stay warm between tasks;
    a worker that dies fails its task with WorkerError and is replaced.

    mode="auto" runs tasks in interpreter workers where the Python has
    them; a task whose function, arguments or the main script's imports
    refuse to load in a subinterpreter (numpy, faulthandler...) before it
    runs is run again in a process worker, and later tasks of that function
    go to process workers at once. initializer(*initargs) runs first in
    each worker (if it raises, the pool is broken: BrokenWorkerPool).
    max_tasks_per_child replaces a worker (a fresh interpreter or process)
    after that many tasks; a map() chunk is one task.
    """

    def __init__(self, max_workers=None, mode="auto", *, initializer=None, initargs=(),
                 max_tasks_per_child=None):
        if max_workers is None:
            max_workers = os.cpu_count() or 1
        elif max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        if max_tasks_per_child is not None:
            if not isinstance(max_tasks_per_child, int):
                raise TypeError("max_tasks_per_child must be an integer")
            if max_tasks_per_child <= 0:
                raise ValueError("max_tasks_per_child must be >= 1")
        self._max_workers = max_workers
        self._mode_arg = mode
        self._mode = resolve_mode(mode)     # of new workers
        self._auto = mode == "auto" and self._mode == "interpreter"
        self._initializer = initializer
        self._initargs = tuple(initargs)
        self._max_tasks = max_tasks_per_child
        self._lock = threading.Lock()       # guards everything below
        self._slots = []
        self._idle = []
        self._pending = collections.deque()
        self._shutdown = False
        self._broken = None                 # why, once the initializer failed
        # Callables whose tasks go to process workers ("auto").
        self._to_process = weakref.WeakSet()
        self._to_process_names = set()      # those without weak references
        self._counts = collections.Counter()
        self._count_lock = threading.Lock()     # for workers_started
        _worker._pools.add(self)

    # -- workers --------------------------------------------------------------

    def _new_worker(self, mode):
        """A started worker with the initializer sent (no lock held)."""
        w = Worker(_serve, args=(self._auto, self._initializer is not None), mode=mode)
        if self._initializer is not None:
            try:
                w.post_message((self._initializer, self._initargs))
            except BaseException as exc:
                w.terminate()
                raise _worker.name_the_path(exc, ("initializer", "initargs"))
        with self._count_lock:
            self._counts["workers_started"] += 1
        return w

    def _add_slot(self, mode):
        """A new slot and its collector. Caller holds the lock."""
        slot = _Slot(self._new_worker(mode), mode)
        self._slots.append(slot)
        slot.thread = helper_thread(self._collect, f"WorkerPool-{slot.worker.name}", slot)
        return slot

    def _needs_process(self, fn):
        if not self._auto:
            return False
        try:
            return fn in self._to_process
        except TypeError:
            return _name_of(fn) in self._to_process_names

    def _remember(self, fn):
        try:
            self._to_process.add(fn)
        except TypeError:
            self._to_process_names.add(_name_of(fn))

    # -- handing out tasks ----------------------------------------------------

    def _start(self, slot, task):
        """Give a task to a slot. Caller holds the lock; False when the
        task could not be sent (its future is failed) or was cancelled."""
        if not task.running:
            if not task.future.set_running_or_notify_cancel():
                return False
            task.running = True
        # Before the post: the reply may be collected before it returns.
        slot.task = task
        try:
            slot.worker.post_message((task.kind, task.fn, task.args, task.kwargs))
        except BaseException as exc:
            slot.task = None
            task.future.set_exception(_worker.name_the_path(
                exc, (None, "fn", "args" if task.kind == CALL else "chunk", "kwargs")))
            return False
        self._counts["messages_sent"] += 1
        return True

    def _dispatch(self, task):
        """Run task on an idle worker that fits, a new one, or later.
        Caller holds the lock."""
        # A worker of the task's own kind first: interpreter workers for
        # what runs anywhere, keeping process workers for what needs them.
        want = "process" if task.process else self._mode
        for exact in (True, False):
            for i in range(len(self._idle) - 1, -1, -1):
                slot = self._idle[i]
                if (slot.mode == want if exact else task.fits(slot)) and slot.worker.is_alive():
                    del self._idle[i]
                    if not self._start(slot, task):
                        self._idle.append(slot)
                    return
        if len(self._slots) < self._max_workers:
            slot = self._add_slot("process" if task.process else self._mode)
            if not self._start(slot, task):
                self._idle.append(slot)
            return
        self._pending.append(task)
        if task.process:
            # A full pool of interpreter workers: one that is idle ends and
            # comes back as a process worker (its collector does it).
            for slot in self._idle:
                if slot.mode != "process":
                    self._idle.remove(slot)
                    self._restart(slot, "process")
                    break

    def _restart(self, slot, mode):
        """End the slot's worker (it reads the end of its input); its
        collector starts a new one in mode. Caller holds the lock."""
        slot.switch = mode
        slot.worker._port._close_send()

    def _next(self, slot):
        """The slot is free: start the next pending task that fits it, or
        idle. Caller holds the lock."""
        slot.task = None
        if self._max_tasks is not None and slot.done >= self._max_tasks:
            self._restart(slot, slot.mode)      # a fresh worker
            return
        while True:
            for i, task in enumerate(self._pending):
                if task.fits(slot):
                    del self._pending[i]
                    break
            else:
                task = None
            if task is not None:
                if self._start(slot, task):
                    return
                continue
            if self._pending:
                # Only tasks for process workers wait: start one for them.
                if len(self._slots) < self._max_workers:
                    self._dispatch(self._pending.popleft())
                    continue
                self._restart(slot, "process")
                return
            break
        self._idle.append(slot)
        if self._shutdown:
            slot.worker._port._close_send()

    def submit(self, fn, /, *args, **kwargs):
        return self._submit(CALL, fn, args, kwargs)

    def _submit(self, kind, fn, args, kwargs):
        with self._lock:
            if self._broken is not None:
                raise BrokenWorkerPool(self._broken)
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            task = _Task(kind, fn, args, kwargs, self._needs_process(fn))
            self._dispatch(task)
        return task.future

    # -- replies --------------------------------------------------------------

    def _collect(self, slot):
        from . import WorkerError

        while True:
            try:
                status, value = slot.worker.recv()
            except EOFError:
                if not self._worker_ended(slot, None):
                    return
                continue
            except WorkerError as err:
                if not self._worker_ended(slot, err):
                    return
                continue
            except Exception as err:
                # The reply did not decode here: the task fails with why.
                status, value = None, err
            self._reply(slot, status, value)
            # The future owns the result now: this thread must not keep it
            # (or the future) alive while it waits for the next reply, as
            # map()'s iterator lets go of each result.
            del value

    def _reply(self, slot, status, value):
        with self._lock:
            self._counts["messages_received"] += 1
            task = slot.task
        if status in (REFUSED, INIT_REFUSED):
            with self._lock:
                if status == REFUSED and task is not None:
                    self._remember(task.fn)
                    log(INFO, "WorkerPool: %s does not import in an interpreter worker; "
                        "its tasks run in process workers", _name_of(task.fn))
                else:
                    self._mode = "process"
                    slot.switch = "process"     # this worker ends now
                    log(INFO, "WorkerPool: the initializer does not import in an "
                        "interpreter worker; workers start in process mode")
                if task is not None:
                    task.process = True
                    self._pending.appendleft(task)
                    slot.task = None
                if status == REFUSED:
                    self._next(slot)
            return
        if status == INIT_FAILED:
            exc = _exception_from(value)
            log(INFO, "WorkerPool: the initializer raised %r", exc)
            with self._lock:
                self._break(f"the initializer raised {exc!r}", exc)
            return
        if task is None:
            return
        if status == OK:
            task.future.set_result(value)
        elif status == ERROR:
            task.future.set_exception(_exception_from(value))
        else:
            task.future.set_exception(value)
        with self._lock:
            slot.done += 1
            self._next(slot)

    def _break(self, why, cause):
        """The initializer failed: every task fails, now and later. Caller
        holds the lock."""
        if self._broken is not None:
            return
        self._broken = why
        tasks = list(self._pending)
        self._pending.clear()
        tasks += [s.task for s in self._slots if s.task is not None]
        for slot in self._slots:
            slot.task = None
            slot.worker._port._close_send()
        self._idle.clear()
        for task in tasks:
            exc = BrokenWorkerPool(f"the pool is broken: {why}")
            exc.__cause__ = cause
            if not task.running:
                if not task.future.set_running_or_notify_cancel():
                    continue
            task.future.set_exception(exc)

    def _worker_ended(self, slot, err):
        """The slot's worker has ended (err: the WorkerError of one that
        failed): fail its task if it had one, and start a new worker unless
        the pool is done. True when the collector goes on with it."""
        from . import WorkerError

        old = slot.worker
        with self._lock:
            task, slot.task = slot.task, None
            mode, slot.switch = slot.switch, None
            if slot in self._idle:
                self._idle.remove(slot)         # it may die idle, too
            done = self._broken is not None or (self._shutdown and not self._pending)
            if done:
                self._slots.remove(slot)
        if task is not None:
            if err is None:
                err = WorkerError("the pool's worker exited while running the task "
                                  f"(exit code {old.exit_code})")
            task.future.set_exception(err)
        if err is not None or task is not None:
            old.terminate()
        old.join()
        if done:
            return False
        if mode is None:
            log(INFO, "WorkerPool: worker %r ended (exit code %s); replacing it",
                old.name, old.exit_code)
        else:
            log(DEBUG, "WorkerPool: worker %r replaced by a %s worker", old.name, mode)
        mode = mode or slot.mode
        try:
            new = self._new_worker(mode)
        except BaseException as exc:
            with self._lock:
                self._slots.remove(slot)
                if not self._slots:
                    while self._pending:
                        task = self._pending.popleft()
                        if task.running or task.future.set_running_or_notify_cancel():
                            task.future.set_exception(exc)
            return False
        with self._lock:
            slot.worker, slot.mode, slot.done = new, mode, 0
            self._counts["workers_replaced"] += 1
            self._next(slot)
        return True

    # -- map, shutdown ----------------------------------------------------------

    def map(self, fn, *iterables, timeout=None, chunksize=1, buffersize=None):
        """map(fn, *iterables) with the calls in the workers; results in
        order. chunksize > 1 sends that many calls as one task (one message
        each way, one worker); buffersize bounds the tasks (chunks) submitted
        but not yet yielded, as Python 3.14's Executor.map. TimeoutError if
        the results are not all in within timeout seconds."""
        if buffersize is not None and not isinstance(buffersize, int):
            raise _BufferSizeTypeError("buffersize must be an integer or None")
        if buffersize is not None and buffersize < 1:
            raise ValueError("buffersize must be None or > 0")
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        deadline = None if timeout is None else time.monotonic() + timeout
        calls = zip(*iterables)
        if chunksize == 1:
            items, kind = calls, CALL
        else:
            items, kind = iter(lambda: list(itertools.islice(calls, chunksize)), []), CHUNK
        pool = weakref.ref(self)

        def submit(item):
            if kind == CALL:
                return pool()._submit(CALL, fn, item, {})
            return pool()._submit(CHUNK, fn, item, None)

        if buffersize:
            futures = collections.deque(submit(i) for i in itertools.islice(items, buffersize))
            more = items
        else:
            futures = collections.deque(submit(i) for i in items)
            more = None
        return _map_results(futures, more, submit, pool, deadline, kind == CHUNK)

    def shutdown(self, wait=True, *, cancel_futures=False):
        with self._lock:
            self._shutdown = True
            if cancel_futures:
                while self._pending:
                    task = self._pending.popleft()
                    if not task.running:
                        task.future.cancel()
                    else:
                        task.future.set_exception(RuntimeError("the pool shut down"))
            # Idle workers end now; busy ones once their queue is empty.
            for slot in self._idle:
                slot.worker._port._close_send()
            slots = list(self._slots)
        if wait:
            for slot in slots:
                slot.thread.join()
                slot.worker.join()

    # -- looking at it ---------------------------------------------------------

    def stats(self):
        """What the pool holds and has done: workers (and process_workers
        among them), idle, pending (tasks waiting for a worker), running,
        messages_sent (task messages: one per task or map() chunk),
        messages_received (replies), workers_started, workers_replaced."""
        with self._lock:
            return {
                "workers": len(self._slots),
                "process_workers": sum(s.mode == "process" for s in self._slots),
                "idle": len(self._idle),
                "pending": len(self._pending),
                "running": sum(s.task is not None for s in self._slots),
                "messages_sent": self._counts["messages_sent"],
                "messages_received": self._counts["messages_received"],
                "workers_started": self._counts["workers_started"],
                "workers_replaced": self._counts["workers_replaced"],
            }

    def __repr__(self):
        with self._lock:
            state = ("broken" if self._broken is not None else
                     "shutdown" if self._shutdown else "running")
            return (f"<WorkerPool max_workers={self._max_workers} mode={self._mode_arg!r} "
                    f"workers={len(self._slots)} pending={len(self._pending)} {state}>")


def _name_of(fn):
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return f"{module}.{qualname}" if module else qualname


def _map_results(futures, more, submit, pool, deadline, chunks):
    """map()'s iterator: results in order; with a buffer (more: the items
    not submitted yet), one more item is submitted as each is taken. What is
    left is cancelled when the iterator is closed or fails."""
    try:
        while futures:
            if more is not None and pool() is not None:
                item = next(more, None)
                if item is not None:
                    futures.append(submit(item))
            left = None if deadline is None else deadline - time.monotonic()
            if not chunks:
                # Held by nobody here once yielded (no local name).
                yield _result_or_cancel(futures.popleft(), left)
                continue
            results = _result_or_cancel(futures.popleft(), left)
            results.reverse()
            while results:
                yield results.pop()
    finally:
        for future in futures:
            future.cancel()


def _result_or_cancel(future, timeout):
    try:
        return future.result(timeout)
    finally:
        future.cancel()
        del future      # no cycle through its exception's traceback
