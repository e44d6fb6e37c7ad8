# SPDX-License-Identifier: GPL-2.0
"""Worker targets for test_sync.py (the shared synchronisation objects)."""

import os
import threading
import time

import pyshm_workers as pw


def count_under_lock(lock, counter, n):
    """n increments of counter[0] that are not atomic (a load, a pause, a
    store): right only under the lock."""
    for _ in range(n):
        with lock:
            v = counter.load(0)
            if v % 7 == 0:
                time.sleep(0)
            counter.store(0, v + 1)


def set_event(event, delay):
    time.sleep(delay)
    event.set()


def set_worker_data_event():
    """Set the Event that came in worker_data; take and keep its Lock."""
    pw.worker_data["lock"].acquire()
    pw.worker_data["event"].set()
    pw.parent.post_message(pw.worker_data["lock"].locked())
    pw.parent.recv(60)
    pw.worker_data["lock"].release()


def wait_event(event, timeout):
    pw.parent.post_message("waiting")
    pw.parent.post_message(event.wait(timeout))


def hold_and_report(lock, flag):
    """Take lock, say so, sleep: the parent kills us meanwhile."""
    lock.acquire()
    flag.set()
    time.sleep(600)


def hold_condition(cond, flag):
    with cond:
        flag.set()
        time.sleep(600)


def release_rlock(rlock):
    """Release an RLock some other process holds: RuntimeError."""
    try:
        rlock.release()
    except RuntimeError as e:
        pw.parent.post_message(f"RuntimeError: {e}")
    else:
        pw.parent.post_message("released")


def try_acquire(lock, timeout):
    t0 = time.monotonic()
    got = lock.acquire(timeout=timeout)
    pw.parent.post_message((got, time.monotonic() - t0))


def barrier_party(barrier, tag):
    """One party: the index wait() gave, and the actions run by then."""
    i = barrier.wait()
    pw.parent.post_message((tag, i))


def barrier_action_count(counter):
    counter.add(0, 1)


def barrier_wait_forever(barrier, flag):
    flag.set()
    barrier.wait()


def wait_condition(cond, state):
    """Wait until the parent sets state[0] to 1 and notifies; report."""
    with cond:
        pw.parent.post_message("waiting")
        ok = cond.wait_for(lambda: state.load(0) == 1, 60)
        state.store(1, 2)
        cond.notify_all()
    pw.parent.post_message(ok)


def condition_waiter_that_dies(cond, flag):
    with cond:
        flag.set()
        cond.wait()


def block_on(kind, obj, flag):
    """Block on obj until terminate() ends us."""
    flag.set()
    if kind == "lock":
        obj.acquire()
    elif kind == "semaphore":
        obj.acquire()
    elif kind == "event":
        obj.wait()
    elif kind == "condition":
        with obj:
            obj.wait()
    elif kind == "barrier":
        obj.wait()
    pw.parent.post_message("not blocked")


def semaphore_holder(sem, acquired, release):
    for _ in range(2):
        sem.acquire()
    acquired.set()
    release.wait(60)
    sem.release(2)


def nested_set(event, mode):
    """Pass event on to a worker of our own, which sets it."""
    inner = pw.Worker(set_event, args=(event, 0.05), mode=mode)
    inner.join(60)
    pw.parent.post_message(inner.exit_code)


def pool_task(lock, counter, n):
    count_under_lock(lock, counter, n)
    return os.getpid()


def echo(obj):
    """A pool task: obj back."""
    return obj


def echo_back(obj):
    """Send obj back, then wait for a word (the parent checks it is the
    same shared object)."""
    pw.parent.post_message(obj)
    pw.parent.recv(60)


def threads_in_worker(cond, n):
    """n threads here wait on cond; each says when it woke."""
    def waiter():
        with cond:
            cond.wait(60)
        pw.parent.post_message("woke")

    ts = [threading.Thread(target=waiter) for _ in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)


class Partial:
    """An importable callable with its argument: a Barrier action that
    travels with the barrier."""

    def __init__(self, fn, arg):
        self.fn, self.arg = fn, arg

    def __call__(self):
        self.fn(self.arg)
