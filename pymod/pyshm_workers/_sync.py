# SPDX-License-Identifier: MIT
"""Condition and Barrier: threading's, over the shared objects of the C
core (pymod/sync*.c). The lock is a pw.Lock or pw.RLock, and the waiters
queue in a _CondCore: both live in shared memory, so a Condition or Barrier
posted to a worker (or passed to one, either mode) is the same object
there, never a copy."""

import time as _time_mod
from math import ceil as _ceil

from ._core import Lock, OwnerDiedError, RLock, _CondCore

_time = _time_mod.monotonic

# Barrier states, in its _CondCore's word 0 (as threading's _state).
_FILLING, _DRAINING, _RESETTING, _BROKEN = 0, 1, -1, -2
# How often a Barrier's waiters look for parties whose process died.
_REAP_SLICE = 0.5


# What __reduce__ rebuilds; any other instance attribute is a subclass's.
_COND_FIELDS = frozenset(("_lock", "_core", "_release_save", "_acquire_restore", "_is_owned"))
_BARRIER_FIELDS = frozenset(("_parties", "_action", "_timeout", "_lock", "_core"))


def _broken_barrier():
    from threading import BrokenBarrierError
    return BrokenBarrierError()


class Condition:
    """threading.Condition in shared memory: wait() until notify() or
    notify_all() of any thread, in any worker the Condition was posted to.

    The lock is a new RLock unless one is given; a pw.Lock or pw.RLock is
    shared with the Condition (another lock works, in this process only).
    wait() raises OwnerDiedError (holding the lock again) when the lock's
    holder process died while this thread waited.
    """

    def __init__(self, lock=None):
        if lock is None:
            lock = RLock()
        self._lock = lock
        self._core = _CondCore()
        self._hooks()

    def _hooks(self):
        # As threading: the lock's own versions, where it has them.
        lock = self._lock
        if hasattr(lock, "_release_save"):
            self._release_save = lock._release_save
        if hasattr(lock, "_acquire_restore"):
            self._acquire_restore = lock._acquire_restore
        if hasattr(lock, "_is_owned"):
            self._is_owned = lock._is_owned
        elif isinstance(lock, Lock):
            self._is_owned = lock.locked

    def __reduce__(self):
        # A subclass's own attributes travel too (cloned, not shared).
        extra = {k: v for k, v in self.__dict__.items() if k not in _COND_FIELDS}
        return _rebuild_condition, (type(self), self._lock, self._core), extra or None

    def __enter__(self):
        return self._lock.__enter__()

    def __exit__(self, *args):
        return self._lock.__exit__(*args)

    def __repr__(self):
        return f"<Condition({self._lock!r}, {self._core._waiting})>"

    def acquire(self, blocking=True, timeout=-1):
        """Acquire the underlying lock: lock.acquire(blocking, timeout)."""
        return self._lock.acquire(blocking, timeout)

    def release(self):
        """Release the underlying lock: lock.release()."""
        self._lock.release()

    def _release_save(self):
        self._lock.release()

    def _acquire_restore(self, state):
        self._lock.acquire()

    def _is_owned(self):
        if self._lock.acquire(False):
            self._lock.release()
            return False
        return True

    def wait(self, timeout=None):
        """Release the lock, sleep until notified or timeout seconds pass,
        then take the lock again; True unless it timed out. The GIL is
        released while it sleeps."""
        if not self._is_owned():
            raise RuntimeError("cannot wait on un-acquired lock")
        core = self._core
        slot = core._enqueue()
        try:
            saved = self._release_save()
        except BaseException:
            core._cancel(slot)
            raise
        notified = False
        try:
            notified = core._sleep(slot, timeout)
            return notified
        finally:
            self._acquire_restore(saved)

    def wait_for(self, predicate, timeout=None):
        """wait() until predicate() is true or timeout seconds pass; the
        last value of predicate()."""
        end = None
        left = timeout
        result = predicate()
        while not result:
            if left is not None:
                if end is None:
                    end = _time() + left
                else:
                    left = end - _time()
                    if left <= 0:
                        break
            self.wait(left)
            result = predicate()
        return result

    def notify(self, n=1):
        """Wake up to n of the threads waiting (the longest waiting first),
        in every process."""
        if not self._is_owned():
            raise RuntimeError("cannot notify on un-acquired lock")
        if n > 0:
            # As threading's loop: a fraction counts as one more.
            self._core._notify(n if isinstance(n, int) else _ceil(n))

    def notify_all(self):
        """Wake every thread waiting, in every process."""
        if not self._is_owned():
            raise RuntimeError("cannot notify on un-acquired lock")
        self._core._notify(-1)

    def notifyAll(self):
        """Deprecated: notify_all()."""
        import warnings
        warnings.warn("notifyAll() is deprecated, use notify_all() instead",
                      DeprecationWarning, stacklevel=2)
        self.notify_all()


def _rebuild_condition(cls, lock, core):
    cond = cls.__new__(cls)
    cond._lock = lock
    cond._core = core
    cond._hooks()
    return cond


class Barrier:
    """threading.Barrier in shared memory: parties threads (in any
    workers) wait() until all have come; then action (if any) runs in one
    of them and all go on. BrokenBarrierError is threading's.

    A party whose process dies inside wait() breaks the barrier: the others
    get BrokenBarrierError (within about half a second), as after abort();
    reset() makes it usable again.
    """

    def __init__(self, parties, action=None, timeout=None):
        if parties < 1:
            raise ValueError("parties must be > 0")
        self._parties = parties
        self._action = action
        self._timeout = timeout
        self._lock = Lock()
        # word 0: the state; _join/_leave/_count: the parties inside.
        self._core = _CondCore()

    def __reduce__(self):
        extra = {k: v for k, v in self.__dict__.items() if k not in _BARRIER_FIELDS}
        return _rebuild_barrier, (type(self), self._parties, self._action, self._timeout,
                                  self._lock, self._core), extra or None

    def __repr__(self):
        cls = self.__class__
        if self.broken:
            return f"<{cls.__module__}.{cls.__qualname__} at {id(self):#x}: broken>"
        return (f"<{cls.__module__}.{cls.__qualname__} at {id(self):#x}:"
                f" waiters={self.n_waiting}/{self.parties}>")

    # -- the lock, robust: a holder that died leaves the barrier broken.

    def _acquire(self):
        try:
            self._lock.acquire()
        except OwnerDiedError:
            self._repair()

    def _acquire_restore(self):
        try:
            self._lock._acquire_restore(None)
        except OwnerDiedError:
            self._repair()

    def _repair(self):
        # A party died holding the lock, its update maybe half done.
        self._core._reap_members()
        self._state = _BROKEN
        self._core._notify(-1)

    @property
    def _state(self):
        return self._core._get(0)

    @_state.setter
    def _state(self, value):
        self._core._set(0, value)

    def _sleep(self, end):
        """One wait on the core (the lock released meanwhile) of at most
        _REAP_SLICE seconds, or until end; then count out the parties of
        dead processes."""
        core = self._core
        left = _REAP_SLICE if end is None else min(_REAP_SLICE, end - _time())
        slot = core._enqueue()
        self._lock.release()
        notified = False
        try:
            notified = core._sleep(slot, left)
        finally:
            self._acquire_restore()
        if not notified:
            self._reap()

    def _reap(self):
        if not self._core._reap_members():
            return
        state = self._state
        if state == _FILLING:
            self._break()
        elif state in (_DRAINING, _RESETTING) and self._core._count() == 0:
            self._state = _FILLING
            self._core._notify(-1)

    # -- threading's logic.

    def wait(self, timeout=None):
        """Wait until parties threads have called wait(); their index in
        arrival order, 0 to parties - 1. BrokenBarrierError when the
        barrier is or gets broken, reset, or timeout seconds pass (the
        barrier's default timeout when None)."""
        if timeout is None:
            timeout = self._timeout
        end = None if timeout is None else _time() + timeout
        core = self._core
        self._acquire()
        try:
            self._enter()
            index = core._count()
            core._join()
            try:
                if index + 1 == self._parties:
                    self._release()
                else:
                    self._wait(end)
                return index
            finally:
                core._leave()
                self._exit()
        finally:
            self._lock.release()

    def _enter(self):
        while self._state in (_DRAINING, _RESETTING):
            self._sleep(None)
        if self._state < 0:
            raise _broken_barrier()

    def _release(self):
        # A party that died in wait() breaks the barrier rather than pass
        # for one that arrived.
        if self._core._reap_members(True):
            self._break()
            raise _broken_barrier()
        try:
            if self._action:
                self._action()
            self._state = _DRAINING
            self._core._notify(-1)
        except BaseException:
            self._break()
            raise

    def _wait(self, end):
        while self._state == _FILLING:
            if end is not None and _time() >= end:
                self._break()
                raise _broken_barrier()
            self._sleep(end)
        if self._state < 0:
            raise _broken_barrier()

    def _exit(self):
        if self._core._count() == 0 and self._state in (_DRAINING, _RESETTING):
            self._state = _FILLING
            self._core._notify(-1)

    def reset(self):
        """Back to the initial state; threads waiting get
        BrokenBarrierError."""
        self._acquire()
        try:
            if self._core._count() > 0:
                if self._state in (_FILLING, _BROKEN):
                    self._state = _RESETTING
            else:
                self._state = _FILLING
            self._core._notify(-1)
        finally:
            self._lock.release()

    def abort(self):
        """Break the barrier: waiting and later wait() calls raise
        BrokenBarrierError until reset()."""
        self._acquire()
        try:
            self._break()
        finally:
            self._lock.release()

    def _break(self):
        self._state = _BROKEN
        self._core._notify(-1)

    @property
    def parties(self):
        """The number of threads needed to pass the barrier."""
        return self._parties

    @property
    def n_waiting(self):
        """The number of threads waiting now."""
        if self._state == _FILLING:
            return self._core._count()
        return 0

    @property
    def broken(self):
        """True while the barrier is broken."""
        return self._state == _BROKEN


def _rebuild_barrier(cls, parties, action, timeout, lock, core):
    barrier = cls.__new__(cls)
    barrier._parties = parties
    barrier._action = action
    barrier._timeout = timeout
    barrier._lock = lock
    barrier._core = core
    return barrier


for _cls in (Condition, Barrier):
    _cls.__module__ = "pyshm_workers"
del _cls
