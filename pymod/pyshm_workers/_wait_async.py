# SPDX-License-Identifier: MIT
"""Atomics.wait_async(): a.wait_async(i, value, timeout=None) for asyncio.

Each event loop gets one _core._WaitQueue, whose file descriptor the loop
watches (add_reader): an io_uring of its own with a futex wait per waiter in
the kernel, or, where the kernel has no io_uring futex waits, the eventfd a
waiter thread shared by the whole process completes waits into
(pymod/wait_async.c). No thread per waiter, no polling.

As JavaScript's Atomics.waitAsync(), the wait begins at the call: a notify()
from then on counts it, whether or not the result is awaited yet.
"""

import asyncio
import os
import weakref
from time import monotonic_ns as _monotonic_ns

from . import _core

# loop -> _Queue; a loop that goes takes its queue (and its fd) along.
_queues = weakref.WeakKeyDictionary()
# The loop that asked last and its queue, found without the dictionary
# (one loop per thread is the common case).
_last = None
# os.getpid() is a system call: kept here, refreshed in a child of fork().
_pid = os.getpid()


def _forked():
    global _pid, _last
    _pid = os.getpid()
    _last = None


os.register_at_fork(after_in_child=_forked)


class _Queue:
    __slots__ = ("q", "futures", "pid", "__weakref__")

    def __init__(self, loop):
        self.q = _core._WaitQueue()
        self.futures = {}
        self.pid = _pid
        loop.add_reader(self.q.fileno(), self._ready)

    def _ready(self):
        self._complete(self.q.reap())

    def _complete(self, done):
        futures = self.futures
        for wid, res in done:
            fut = futures.pop(wid, None)
            if fut is None or fut.done():
                continue
            if isinstance(res, BaseException):
                fut.set_exception(res)
            else:
                fut.set_result(res)


def _queue(loop):
    global _last
    last = _last
    if last is not None and last[0]() is loop:
        return last[1]
    qq = _queues.get(loop)
    if qq is None or qq.pid != _pid:
        # New, or inherited across fork(): the parent's ring is not ours.
        if qq is not None:
            loop.remove_reader(qq.q.fileno())
        qq = _queues[loop] = _Queue(loop)
    _last = (weakref.ref(loop), qq)
    return qq


async def _now(result):
    return result


async def _wait(qq, wid, fut, timer, a, i, seen):
    try:
        # As a receiver does (PYSHM_SPIN_NS), poll before parking, yielding
        # to the loop between polls: a notify() that comes soon is taken
        # without the loop sleeping in the kernel and being woken there.
        # Only the notify() ends the wait: a[i] no longer what it was says
        # one is on its way, and poll() has the kernel post it.
        spin = _core._spin_ns()
        if spin > 0 and not fut.done():
            deadline = _monotonic_ns() + spin
            while True:
                if a.load(i) != seen:
                    qq._complete(qq.q.poll())
                if fut.done() or _monotonic_ns() >= deadline:
                    break
                await asyncio.sleep(0)
        return await fut
    finally:
        if timer is not None:
            timer.cancel()
        if not fut.done() or fut.cancelled():
            # The task was cancelled: the waiter goes at once (a notify()
            # no longer counts it).
            qq.futures.pop(wid, None)
            qq.q.cancel(wid)


def _begin(loop, a, i, value, timeout):
    qq = _queue(loop)
    r = qq.q.submit(a, i, value, timeout)
    if r.__class__ is str:
        return _now(r)
    wid, delay = r
    fut = loop.create_future()
    qq.futures[wid] = fut
    # On expiry the kernel's waiter is cancelled; its completion says
    # "timed-out" (or "ok" when a notify() came first).
    timer = None if delay is None else loop.call_later(delay, qq.q.cancel, wid)
    return _wait(qq, wid, fut, timer, a, i, a.load(i))


async def _later(a, i, value, timeout):
    return await _begin(asyncio.get_running_loop(), a, i, value, timeout)


def start(a, i, value, timeout):
    """The coroutine of a.wait_async(i, value, timeout), its arguments
    checked by the caller. With a running loop the wait begins now; without
    one (asyncio.run(a.wait_async(...))) when the coroutine first runs."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return _later(a, i, value, timeout)
    return _begin(loop, a, i, value, timeout)
