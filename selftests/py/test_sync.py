# SPDX-License-Identifier: GPL-2.0
"""The shared synchronisation objects: Lock, RLock, Semaphore,
BoundedSemaphore, Event, Condition and Barrier behave as threading's
(between threads), are shared (never copied) with interpreter and process
workers, nested workers and pool tasks, honour timeouts and terminate(),
release the GIL while they wait, and are robust: a lock whose holder
process dies passes to the next acquire(), which raises OwnerDiedError
once; a dead waiter takes no notification with it; a party that dies in a
Barrier breaks it."""

import gc
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
import unittest
import weakref

import pyshm_workers as pw
from pyshm_workers import _core

import support
import sync_targets as T
from support import TIMEOUT

TYPES = (pw.Lock, pw.RLock, pw.Semaphore, pw.BoundedSemaphore, pw.Event,
         pw.Condition, pw.Barrier)


def start_thread(fn, *args):
    t = threading.Thread(target=fn, args=args, daemon=True)
    t.start()
    return t


def wait_until(pred, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.005)


class TestLock(support.LeakCheck):
    def test_acquire_release_and_locked(self):
        lock = pw.Lock()
        self.assertFalse(lock.locked())
        self.assertTrue(lock.acquire())
        self.assertTrue(lock.locked())
        self.assertFalse(lock.acquire(False))
        self.assertFalse(lock.acquire(timeout=0.01))
        lock.release()
        self.assertFalse(lock.locked())
        self.assertTrue(lock.acquire(blocking=False))
        lock.release()

    def test_release_of_an_unlocked_lock_is_a_runtime_error(self):
        lock = pw.Lock()
        with self.assertRaises(RuntimeError):
            lock.release()
        lock.acquire()
        lock.release()
        with self.assertRaises(RuntimeError):
            lock.release()

    def test_another_thread_may_release_it(self):
        lock = pw.Lock()
        lock.acquire()
        start_thread(lock.release).join(TIMEOUT)
        self.assertFalse(lock.locked())

    def test_with_releases_on_exception(self):
        lock = pw.Lock()
        with self.assertRaises(KeyError):
            with lock as got:
                self.assertIs(got, True)
                self.assertTrue(lock.locked())
                raise KeyError
        self.assertFalse(lock.locked())

    def test_contended_acquire_waits_for_release(self):
        lock = pw.Lock()
        lock.acquire()
        got = []
        t = start_thread(lambda: got.append(lock.acquire(timeout=TIMEOUT)))
        time.sleep(0.05)
        self.assertEqual(got, [])
        lock.release()
        t.join(TIMEOUT)
        self.assertEqual(got, [True])
        self.assertTrue(lock.locked())

    def test_timeout_is_honoured(self):
        lock = pw.Lock()
        lock.acquire()
        t0 = time.monotonic()
        self.assertFalse(lock.acquire(timeout=0.2))
        self.assertGreaterEqual(time.monotonic() - t0, 0.18)

    def test_mutual_exclusion_between_threads(self):
        lock = pw.Lock()
        counter = pw.Int32Array(pw.SharedArrayBuffer(4))
        ts = [start_thread(T.count_under_lock, lock, counter, 300) for _ in range(4)]
        for t in ts:
            t.join(TIMEOUT)
        self.assertEqual(counter[0], 1200)

    def test_a_clone_is_the_same_lock(self):
        lock = pw.Lock()
        other = pw.structured_clone(lock)
        self.assertIsNot(other, lock)
        self.assertIs(type(other), pw.Lock)
        other.acquire()
        self.assertTrue(lock.locked())
        lock.release()
        self.assertFalse(other.locked())

    def test_repr_says_locked_or_unlocked(self):
        lock = pw.Lock()
        self.assertRegex(repr(lock), r"^<unlocked pyshm_workers\.Lock object at 0x")
        lock.acquire()
        self.assertRegex(repr(lock), rf"^<locked pyshm_workers\.Lock object pid={os.getpid()} ")

    def test_weak_references(self):
        lock = pw.Lock()
        ref = weakref.ref(lock)
        self.assertIs(ref(), lock)
        del lock
        gc.collect()
        self.assertIsNone(ref())

    def test_at_fork_reinit_gives_a_fresh_lock(self):
        lock = pw.Lock()
        shared = pw.structured_clone(lock)
        lock.acquire()
        lock._at_fork_reinit()
        self.assertFalse(lock.locked())
        self.assertTrue(shared.locked())
        shared.release()


class TestRLock(support.LeakCheck):
    def test_reentrant_and_counted(self):
        r = pw.RLock()
        self.assertEqual(r._recursion_count(), 0)
        for _ in range(3):
            self.assertTrue(r.acquire())
        self.assertEqual(r._recursion_count(), 3)
        self.assertTrue(r._is_owned())
        r.release()
        r.release()
        self.assertTrue(r.locked())
        r.release()
        self.assertFalse(r.locked())
        self.assertFalse(r._is_owned())

    def test_release_by_a_thread_that_does_not_own_it(self):
        r = pw.RLock()
        with self.assertRaises(RuntimeError):
            r.release()
        r.acquire()
        errors = []

        def other():
            try:
                r.release()
            except RuntimeError as e:
                errors.append(e)
            errors.append(r._is_owned())
            errors.append(r.acquire(False))
        start_thread(other).join(TIMEOUT)
        self.assertIsInstance(errors[0], RuntimeError)
        self.assertEqual(errors[1:], [False, False])
        r.release()

    def test_release_save_and_acquire_restore(self):
        r = pw.RLock()
        with self.assertRaises(RuntimeError):
            r._release_save()
        r.acquire()
        r.acquire()
        state = r._release_save()
        self.assertFalse(r.locked())
        r._acquire_restore(state)
        self.assertEqual(r._recursion_count(), 2)
        r.release()
        r.release()

    def test_repr(self):
        r = pw.RLock()
        self.assertRegex(repr(r), r"^<unlocked pyshm_workers\.RLock object owner=0 count=0 at ")
        r.acquire()
        r.acquire()
        self.assertRegex(repr(r), r"^<locked pyshm_workers\.RLock object owner=\d+ count=2 at ")
        r.release()
        r.release()


class TestSemaphore(support.LeakCheck):
    def test_counts(self):
        s = pw.Semaphore(2)
        self.assertTrue(s.acquire())
        self.assertTrue(s.acquire(False))
        self.assertFalse(s.acquire(False))
        self.assertFalse(s.acquire(timeout=0.01))
        s.release(2)
        self.assertEqual(s._value, 2)
        self.assertEqual(pw.Semaphore()._value, 1)

    def test_release_n_wakes_exactly_n(self):
        s = pw.Semaphore(0)
        got = []
        ts = [start_thread(lambda: got.append(s.acquire(timeout=TIMEOUT))) for _ in range(3)]
        time.sleep(0.05)
        s.release(2)
        wait_until(lambda: len(got) == 2)
        time.sleep(0.1)
        self.assertEqual(len(got), 2)
        s.release()
        for t in ts:
            t.join(TIMEOUT)
        self.assertEqual(got, [True] * 3)

    def test_bounded_refuses_to_go_past_its_value(self):
        b = pw.BoundedSemaphore(2)
        self.assertIsInstance(b, pw.Semaphore)
        with self.assertRaises(ValueError):
            b.release()
        b.acquire()
        b.acquire()
        with self.assertRaises(ValueError):
            b.release(3)
        b.release(2)
        self.assertEqual(b._value, 2)
        s = pw.Semaphore(1)
        s.release(5)            # unbounded: fine
        self.assertEqual(s._value, 6)

    def test_with(self):
        s = pw.Semaphore(1)
        with s:
            self.assertFalse(s.acquire(False))
        self.assertTrue(s.acquire(False))

    def test_timeout_is_honoured(self):
        s = pw.Semaphore(0)
        t0 = time.monotonic()
        self.assertFalse(s.acquire(timeout=0.2))
        self.assertGreaterEqual(time.monotonic() - t0, 0.18)
        self.assertFalse(s.acquire(timeout=-1))

    def test_reprs(self):
        self.assertRegex(repr(pw.Semaphore(3)), r"^<pyshm_workers\.Semaphore at 0x\w+: value=3>$")
        self.assertRegex(repr(pw.BoundedSemaphore(3)),
                         r"^<pyshm_workers\.BoundedSemaphore at 0x\w+: value=3/3>$")

    def test_a_clone_shares_the_count(self):
        s = pw.BoundedSemaphore(1)
        other = pw.structured_clone(s)
        self.assertIs(type(other), pw.BoundedSemaphore)
        other.acquire()
        self.assertFalse(s.acquire(False))
        s.release()
        with self.assertRaises(ValueError):
            other.release()


class TestEvent(support.LeakCheck):
    def test_set_clear_and_wait(self):
        e = pw.Event()
        self.assertFalse(e.is_set())
        self.assertFalse(e.wait(0))
        self.assertFalse(e.wait(0.01))
        e.set()
        self.assertTrue(e.is_set())
        self.assertTrue(e.wait())
        e.clear()
        self.assertFalse(e.is_set())
        self.assertRegex(repr(e), r"^<pyshm_workers\.Event at 0x\w+: unset>$")

    def test_set_wakes_every_waiter(self):
        e = pw.Event()
        got = []
        ts = [start_thread(lambda: got.append(e.wait(TIMEOUT))) for _ in range(4)]
        time.sleep(0.05)
        e.set()
        for t in ts:
            t.join(TIMEOUT)
        self.assertEqual(got, [True] * 4)

    def test_wait_is_true_when_cleared_right_after_set(self):
        e = pw.Event()
        got = []
        ts = [start_thread(lambda: got.append(e.wait(TIMEOUT))) for _ in range(3)]
        wait_until(lambda: e._sleepers == 3)      # all inside wait()
        e.set()
        e.clear()
        for t in ts:
            t.join(TIMEOUT)
        self.assertEqual(got, [True] * 3)

    def test_timeout_is_honoured(self):
        e = pw.Event()
        t0 = time.monotonic()
        self.assertFalse(e.wait(0.2))
        self.assertGreaterEqual(time.monotonic() - t0, 0.18)


class TestCondition(support.LeakCheck):
    def test_default_lock_is_an_rlock(self):
        c = pw.Condition()
        self.assertIsInstance(c._lock, pw.RLock)
        with c:
            with c:
                self.assertTrue(c._lock._is_owned())

    def test_wait_and_notify_without_the_lock(self):
        for lock in (None, pw.Lock(), pw.RLock()):
            c = pw.Condition(lock)
            with self.assertRaises(RuntimeError):
                c.wait()
            with self.assertRaises(RuntimeError):
                c.notify()
            with self.assertRaises(RuntimeError):
                c.notify_all()

    def test_notify_n_wakes_exactly_n(self):
        c = pw.Condition(pw.Lock())
        woke = []

        def waiter():
            with c:
                woke.append(c.wait(TIMEOUT))
        ts = [start_thread(waiter) for _ in range(5)]
        wait_until(lambda: c._core._waiting == 5)
        with c:
            c.notify(2)
        wait_until(lambda: len(woke) == 2)
        time.sleep(0.1)
        self.assertEqual(len(woke), 2)
        with c:
            c.notify(1)
        wait_until(lambda: len(woke) == 3)
        with c:
            c.notify_all()
        for t in ts:
            t.join(TIMEOUT)
        self.assertEqual(woke, [True] * 5)

    def test_wait_times_out(self):
        c = pw.Condition()
        with c:
            t0 = time.monotonic()
            self.assertFalse(c.wait(0.2))
            self.assertGreaterEqual(time.monotonic() - t0, 0.18)
            self.assertTrue(c._lock._is_owned())
            self.assertFalse(c.wait(0))
        self.assertEqual(c._core._waiting, 0)

    def test_wait_releases_every_level_of_an_rlock(self):
        c = pw.Condition(pw.RLock())
        ready = threading.Event()
        got = []

        def notifier():
            ready.wait(TIMEOUT)
            with c:                     # only possible if wait() let go
                got.append("in")
                c.notify()
        t = start_thread(notifier)
        with c:
            with c:
                ready.set()
                self.assertTrue(c.wait(TIMEOUT))
                self.assertEqual(c._lock._recursion_count(), 2)
        t.join(TIMEOUT)
        self.assertEqual(got, ["in"])

    def test_wait_for(self):
        c = pw.Condition()
        state = []

        def bump():
            for _ in range(3):
                time.sleep(0.01)
                with c:
                    state.append(1)
                    c.notify()
        t = start_thread(bump)
        with c:
            self.assertTrue(c.wait_for(lambda: len(state) == 3, TIMEOUT))
            t0 = time.monotonic()
            self.assertFalse(c.wait_for(lambda: False, 0.1))
            self.assertGreaterEqual(time.monotonic() - t0, 0.09)
        t.join(TIMEOUT)

    def test_a_threading_lock_works_here_and_cannot_be_shared(self):
        lock = threading.Lock()
        c = pw.Condition(lock)
        with c:
            self.assertFalse(lock.acquire(False))
        self.assertTrue(lock.acquire(False))
        lock.release()
        with self.assertRaises(pw.DataCloneError):
            pw.structured_clone(c)

    def test_a_clone_shares_lock_and_waiters(self):
        c = pw.Condition(pw.Lock())
        other = pw.structured_clone(c)
        self.assertIs(type(other), pw.Condition)
        got = []

        def waiter():
            with other:
                got.append(other.wait(TIMEOUT))
        t = start_thread(waiter)
        wait_until(lambda: c._core._waiting == 1)
        with c:
            c.notify()
        t.join(TIMEOUT)
        self.assertEqual(got, [True])
        self.assertRegex(repr(c), r"^<Condition\(<unlocked pyshm_workers\.Lock object .*>, 0\)>$")


class TestBarrier(support.LeakCheck):
    def run_parties(self, barrier, n, fn=None):
        out, errors = [], []

        def party():
            try:
                out.append(fn() if fn else barrier.wait(TIMEOUT))
            except Exception as e:
                errors.append(e)
        ts = [start_thread(party) for _ in range(n)]
        for t in ts:
            t.join(TIMEOUT)
        return out, errors

    def test_parties_pass_together_with_distinct_indexes(self):
        b = pw.Barrier(4)
        self.assertEqual(b.parties, 4)
        out, errors = self.run_parties(b, 4)
        self.assertEqual(errors, [])
        self.assertEqual(sorted(out), [0, 1, 2, 3])
        self.assertEqual(b.n_waiting, 0)
        self.assertFalse(b.broken)

    def test_many_cycles(self):
        b = pw.Barrier(3)

        def cycles():
            return [b.wait(TIMEOUT) for _ in range(20)]
        out, errors = self.run_parties(b, 3, cycles)
        self.assertEqual(errors, [])
        for i in range(20):
            self.assertEqual(sorted(o[i] for o in out), [0, 1, 2])

    def test_action_runs_once_per_cycle(self):
        runs = []
        b = pw.Barrier(3, action=lambda: runs.append(1))
        out, errors = self.run_parties(b, 3)
        self.assertEqual((errors, runs), ([], [1]))

    def test_a_failing_action_breaks_it(self):
        def action():
            raise KeyError
        b = pw.Barrier(2, action=action)
        out, errors = self.run_parties(b, 2)
        self.assertEqual(sorted(type(e).__name__ for e in errors),
                         ["BrokenBarrierError", "KeyError"])
        self.assertTrue(b.broken)

    def test_timeout_breaks_it(self):
        b = pw.Barrier(2, timeout=0.1)
        with self.assertRaises(threading.BrokenBarrierError):
            b.wait()
        self.assertTrue(b.broken)
        with self.assertRaises(threading.BrokenBarrierError):
            b.wait()
        b.reset()
        self.assertFalse(b.broken)
        with self.assertRaises(threading.BrokenBarrierError):
            b.wait(0)

    def test_abort_and_reset(self):
        b = pw.Barrier(3)
        got = []

        def party():
            try:
                b.wait(TIMEOUT)
            except threading.BrokenBarrierError:
                got.append("broken")
        ts = [start_thread(party) for _ in range(2)]
        wait_until(lambda: b.n_waiting == 2)
        self.assertRegex(repr(b), r"^<pyshm_workers\.Barrier at 0x\w+: waiters=2/3>$")
        b.abort()
        for t in ts:
            t.join(TIMEOUT)
        self.assertEqual(got, ["broken"] * 2)
        self.assertTrue(b.broken)
        self.assertRegex(repr(b), r"^<pyshm_workers\.Barrier at 0x\w+: broken>$")
        b.reset()
        out, errors = self.run_parties(b, 3)
        self.assertEqual((sorted(out), errors), ([0, 1, 2], []))

    def test_reset_frees_the_waiters(self):
        b = pw.Barrier(3)
        got = []

        def party():
            try:
                b.wait(TIMEOUT)
            except threading.BrokenBarrierError:
                got.append("reset")
        ts = [start_thread(party) for _ in range(2)]
        wait_until(lambda: b.n_waiting == 2)
        b.reset()
        for t in ts:
            t.join(TIMEOUT)
        self.assertEqual(got, ["reset"] * 2)
        self.assertFalse(b.broken)

    def test_single_party(self):
        b = pw.Barrier(1)
        self.assertEqual(b.wait(), 0)
        self.assertEqual(b.wait(), 0)


class TestGilIsReleased(support.LeakCheck):
    """While the main thread waits, a pure Python thread runs: it is the
    one that ends the wait, after running bytecode (which needs the GIL)."""

    def check(self, block, unblock):
        done = []

        def spin():
            time.sleep(0.05)            # the main thread starts waiting
            n = 0
            for _ in range(200_000):
                n += 1
            done.append(n)
            unblock()
        t = start_thread(spin)
        block()
        self.assertEqual(done, [200_000])
        t.join(TIMEOUT)

    def test_lock(self):
        lock = pw.Lock()
        lock.acquire()
        self.check(lambda: self.assertTrue(lock.acquire(timeout=TIMEOUT)), lock.release)

    def test_rlock(self):
        r, gate = pw.RLock(), threading.Event()

        def holder():
            with r:
                gate.wait(TIMEOUT)
        hold = start_thread(holder)
        wait_until(r.locked)
        self.check(lambda: self.assertTrue(r.acquire(timeout=TIMEOUT)), gate.set)
        r.release()
        hold.join(TIMEOUT)

    def test_semaphore(self):
        s = pw.Semaphore(0)
        self.check(lambda: self.assertTrue(s.acquire(timeout=TIMEOUT)), s.release)

    def test_event(self):
        e = pw.Event()
        self.check(lambda: self.assertTrue(e.wait(TIMEOUT)), e.set)

    def test_condition(self):
        c = pw.Condition()

        def block():
            with c:
                self.assertTrue(c.wait(TIMEOUT))

        def unblock():
            wait_until(lambda: c._core._waiting == 1)
            with c:
                c.notify()
        self.check(block, unblock)

    def test_barrier(self):
        b = pw.Barrier(2)
        self.check(lambda: b.wait(TIMEOUT), lambda: b.wait(TIMEOUT))


class TestBadInput(support.LeakCheck):
    def test_wrong_types(self):
        for bad in ("1", 1.5, None, [1]):
            with self.subTest(bad=bad):
                with self.assertRaises(TypeError):
                    pw.Semaphore(bad)
                with self.assertRaises(TypeError):
                    pw.BoundedSemaphore(bad)
        for cls in (pw.Lock, pw.RLock, pw.Event):
            with self.subTest(cls=cls), self.assertRaises(TypeError):
                cls(1)
        with self.assertRaises(TypeError):
            pw.Lock().acquire(timeout="1")
        with self.assertRaises(TypeError):
            pw.Event().wait("1")
        with self.assertRaises(TypeError):
            pw.Semaphore().release("1")
        with self.assertRaises(TypeError):
            pw.Barrier("3")

    def test_negative_and_zero_counts(self):
        for v in (-1, -2**70):
            with self.subTest(v=v):
                with self.assertRaises(ValueError):
                    pw.Semaphore(v)
                with self.assertRaises(ValueError):
                    pw.BoundedSemaphore(v)
        for n in (0, -1, -2**70):
            with self.subTest(n=n), self.assertRaises(ValueError):
                pw.Semaphore().release(n)
        for parties in (0, -1):
            with self.subTest(parties=parties), self.assertRaises(ValueError):
                pw.Barrier(parties)

    def test_timeouts_as_threading(self):
        for cls in (pw.Lock, pw.RLock):
            with self.subTest(cls=cls):
                lock = cls()
                with self.assertRaises(ValueError):
                    lock.acquire(False, 1)
                with self.assertRaises(ValueError):
                    lock.acquire(timeout=-100)
                with self.assertRaises(ValueError):
                    lock.acquire(timeout=float("nan"))
                with self.assertRaises(OverflowError):
                    lock.acquire(timeout=1e100)
                with self.assertRaises(OverflowError):
                    lock.acquire(timeout=threading.TIMEOUT_MAX + 1)
                self.assertTrue(lock.acquire(timeout=threading.TIMEOUT_MAX))
                lock.release()
                self.assertTrue(lock.acquire(True, -1))
                lock.release()
        with self.assertRaises(ValueError):
            pw.Semaphore().acquire(False, timeout=1)
        with self.assertRaises(OverflowError):
            pw.Event().wait(1e100)
        with self.assertRaises(ValueError):
            pw.Event().wait(float("nan"))

    def test_unknown_arguments(self):
        with self.assertRaises(TypeError):
            pw.Lock().acquire(block=False)
        with self.assertRaises(TypeError):
            pw.Lock().acquire(True, 1, 2)
        with self.assertRaises(TypeError):
            pw.Lock().acquire(True, blocking=True)

    def test_pickle_is_refused_but_clone_shares(self):
        for cls in TYPES:
            obj = cls(2) if cls is pw.Barrier else cls()
            with self.subTest(cls=cls.__name__):
                with self.assertRaises(TypeError):
                    pickle.dumps(obj)
                self.assertIs(type(pw.structured_clone(obj)), cls)

    def test_subclasses_travel_whole_or_not_at_all(self):
        # Condition and Barrier: the subclass and its own attributes.
        for obj in (CondWithTag(), BarrierWithTag(2)):
            with self.subTest(cls=type(obj).__name__):
                obj.tag = ["x"]
                other = pw.structured_clone(obj)
                self.assertIs(type(other), type(obj))
                self.assertEqual(other.tag, ["x"])
                self.assertIs(other._core.__class__, obj._core.__class__)
        c = CondWithTag()
        other = pw.structured_clone(c)
        with other:
            self.assertTrue(c._lock.locked())       # the same lock
        # The C types: refused (their instance's attributes could not go
        # along), never a half copy.
        for base in (pw.RLock, pw.Semaphore, pw.Event):
            sub = type("Sub" + base.__name__, (base,), {})
            with self.subTest(cls=sub.__name__), self.assertRaises(pw.DataCloneError):
                pw.structured_clone(sub())

    def test_owner_died_error_is_a_runtime_error(self):
        self.assertTrue(issubclass(pw.OwnerDiedError, RuntimeError))
        self.assertEqual(pw.OwnerDiedError.__module__, "pyshm_workers")


class CondWithTag(pw.Condition):
    tag = None


class BarrierWithTag(pw.Barrier):
    tag = None


def proc_state(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


class TestLiveness(unittest.TestCase):
    """Owner-death detection: by pid and start time, so a pid used again
    does not pass for the process that died."""

    def test_identities(self):
        me = _core._sync_ident()
        self.assertEqual(me & 0x3fffffff, os.getpid())
        self.assertEqual(_core._sync_ident(os.getpid()), me)
        self.assertTrue(_core._sync_alive(me))
        # Our pid with another start time: an earlier process, gone.
        self.assertFalse(_core._sync_alive(me ^ (1 << 32)))

    def test_another_process_alive_then_dead(self):
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        try:
            ident = _core._sync_ident(child.pid)
            self.assertTrue(_core._sync_alive(ident))
            # The same pid started at another time: not the one we saw.
            self.assertFalse(_core._sync_alive(ident ^ (1 << 32)))
            child.kill()
            # A zombie (not yet reaped) is dead.
            wait_until(lambda: proc_state(child.pid) == "Z")
            self.assertFalse(_core._sync_alive(ident))
        finally:
            child.kill()
            child.wait()
        self.assertFalse(_core._sync_alive(ident))


class AcrossWorkers:
    def test_contended_hand_off_keeps_mutual_exclusion(self):
        lock = pw.Lock()
        counter = pw.Int32Array(pw.SharedArrayBuffer(4))
        ws = [self.start(T.count_under_lock, lock, counter, 300) for _ in range(3)]
        T.count_under_lock(lock, counter, 300)
        for w in ws:
            w.join(TIMEOUT)
            self.assertEqual(w.exit_code, 0)
        self.assertEqual(counter[0], 1200)

    def test_rlock_hand_off(self):
        lock = pw.RLock()
        counter = pw.Int32Array(pw.SharedArrayBuffer(4))
        ws = [self.start(T.count_under_lock, lock, counter, 200) for _ in range(2)]
        for w in ws:
            w.join(TIMEOUT)
        self.assertEqual(counter[0], 400)
        self.assertFalse(lock.locked())

    def test_event_set_in_a_worker_wakes_the_parent(self):
        e = pw.Event()
        w = self.start(T.set_event, e, 0.1)
        t0 = time.monotonic()
        self.assertTrue(e.wait(TIMEOUT))
        self.assertLess(time.monotonic() - t0, TIMEOUT)
        w.join(TIMEOUT)

    def test_event_set_here_wakes_a_worker(self):
        e = pw.Event()
        w = self.start(T.wait_event, e, TIMEOUT)
        self.assertEqual(w.recv(TIMEOUT), "waiting")
        time.sleep(0.05)
        e.set()
        self.assertIs(w.recv(TIMEOUT), True)
        w.join(TIMEOUT)

    def test_barrier_with_parties_in_three_workers(self):
        action = T.Partial(T.barrier_action_count, None)
        pw.mark_as_uncloneable(action)
        b = pw.Barrier(3, action=action)
        with self.assertRaises(pw.DataCloneError):      # the action travels
            self.start(T.barrier_party, b, "x")
        b = pw.Barrier(3, timeout=TIMEOUT)
        ws = [self.start(T.barrier_party, b, i) for i in range(3)]
        got = sorted(w.recv(TIMEOUT) for w in ws)
        self.assertEqual(sorted(i for _, i in got), [0, 1, 2])
        self.assertEqual(sorted(tag for tag, _ in got), [0, 1, 2])
        self.assertFalse(b.broken)

    def test_barrier_action_runs_once_in_some_worker(self):
        runs = pw.Int32Array(pw.SharedArrayBuffer(4))
        action = T.Partial(T.barrier_action_count, runs)
        b = pw.Barrier(3, action=action, timeout=TIMEOUT)
        ws = [self.start(T.barrier_party, b, i) for i in range(2)]
        self.assertIn(b.wait(), (0, 1, 2))
        for w in ws:
            w.recv(TIMEOUT)
        self.assertEqual(runs[0], 1)

    def test_condition_notify_across(self):
        cond = pw.Condition()
        state = pw.Int32Array(pw.SharedArrayBuffer(8))
        w = self.start(T.wait_condition, cond, state)
        self.assertEqual(w.recv(TIMEOUT), "waiting")
        with cond:
            state.store(0, 1)
            cond.notify()
            self.assertTrue(cond.wait_for(lambda: state.load(1) == 2, TIMEOUT))
        self.assertIs(w.recv(TIMEOUT), True)
        w.join(TIMEOUT)

    def test_notify_n_wakes_exactly_n_in_another_worker(self):
        cond = pw.Condition(pw.Lock())
        w = self.start(T.threads_in_worker, cond, 3)
        wait_until(lambda: cond._core._waiting == 3)
        with cond:
            cond.notify(2)
        self.assertEqual([w.recv(TIMEOUT), w.recv(TIMEOUT)], ["woke", "woke"])
        with self.assertRaises(TimeoutError):
            w.recv(0.2)
        with cond:
            cond.notify_all()
        self.assertEqual(w.recv(TIMEOUT), "woke")
        w.join(TIMEOUT)

    def test_semaphore_across(self):
        s = pw.Semaphore(2)
        acquired, release = pw.Event(), pw.Event()
        w = self.start(T.semaphore_holder, s, acquired, release)
        self.assertTrue(acquired.wait(TIMEOUT))
        self.assertFalse(s.acquire(timeout=0.05))
        release.set()
        self.assertTrue(s.acquire(timeout=TIMEOUT))
        w.join(TIMEOUT)
        self.assertEqual(s._value, 1)

    def test_timeout_in_a_worker(self):
        lock = pw.Lock()
        lock.acquire()
        w = self.start(T.try_acquire, lock, 0.2)
        got, took = w.recv(TIMEOUT)
        self.assertFalse(got)
        self.assertGreaterEqual(took, 0.18)
        lock.release()

    def test_rlock_release_by_another_worker_is_a_runtime_error(self):
        r = pw.RLock()
        r.acquire()
        w = self.start(T.release_rlock, r)
        self.assertEqual(w.recv(TIMEOUT), "RuntimeError: cannot release un-acquired lock")
        self.assertTrue(r._is_owned())
        r.release()

    def test_posted_and_back_is_the_same_object(self):
        for obj in (pw.Lock(), pw.RLock(), pw.Semaphore(1), pw.Event(),
                    pw.Condition(pw.Lock()), pw.Barrier(2)):
            with self.subTest(type=type(obj).__name__):
                w = self.start(T.echo_back, obj)
                back = w.recv(TIMEOUT)
                self.assertIs(type(back), type(obj))
                if isinstance(obj, pw.Event):
                    back.set()
                    self.assertTrue(obj.is_set())
                elif isinstance(obj, pw.Semaphore):
                    back.acquire()
                    self.assertFalse(obj.acquire(False))
                elif isinstance(obj, pw.Barrier):
                    back.abort()
                    self.assertTrue(obj.broken)
                else:
                    back.acquire()
                    other = []      # another thread: an RLock is reentrant
                    start_thread(lambda: other.append(obj.acquire(False))).join(TIMEOUT)
                    self.assertEqual(other, [False])
                    back.release()
                w.post_message("done")
                w.join(TIMEOUT)

    def test_nested_workers_share_it(self):
        e = pw.Event()
        w = self.start(T.nested_set, e, self.mode)
        self.assertTrue(e.wait(TIMEOUT))
        self.assertEqual(w.recv(TIMEOUT), 0)
        w.join(TIMEOUT)

    def test_worker_data_and_kwargs_share_it(self):
        e, lock = pw.Event(), pw.Lock()
        w = self.start(T.set_worker_data_event, worker_data={"event": e, "lock": lock})
        self.assertTrue(e.wait(TIMEOUT))
        self.assertIs(w.recv(TIMEOUT), True)
        self.assertFalse(lock.acquire(False))       # the worker holds it
        w.post_message("go")
        w.join(TIMEOUT)
        self.assertFalse(lock.locked())
        e2 = pw.Event()
        w = self.start(T.set_event, kwargs={"event": e2, "delay": 0})
        self.assertTrue(e2.wait(TIMEOUT))
        w.join(TIMEOUT)

    def test_pool_tasks_share_it(self):
        lock = pw.Lock()
        counter = pw.Int32Array(pw.SharedArrayBuffer(4))
        with pw.WorkerPool(2, mode=self.mode) as pool:
            futs = [pool.submit(T.pool_task, lock, counter, 100) for _ in range(4)]
            for f in futs:
                f.result(TIMEOUT)
            back = pool.submit(T.echo, lock).result(TIMEOUT)
        self.assertEqual(counter[0], 400)
        back.acquire()
        self.assertTrue(lock.locked())
        lock.release()

    def test_terminate_ends_a_wait(self):
        for kind in ("lock", "semaphore", "event", "condition", "barrier"):
            with self.subTest(kind=kind):
                lock = pw.Lock()
                objs = {"lock": lock, "semaphore": pw.Semaphore(0), "event": pw.Event(),
                        "condition": pw.Condition(), "barrier": pw.Barrier(2)}
                lock.acquire()
                flag = pw.Event()
                w = self.start(T.block_on, kind, objs[kind], flag)
                self.assertTrue(flag.wait(TIMEOUT))
                time.sleep(0.1)
                self.assertTrue(w.is_alive())
                w.terminate()
                w.join(TIMEOUT)             # the wait had no end of its own
                self.assertFalse(w.is_alive())
                with self.assertRaises((EOFError, pw.WorkerError)):
                    w.recv(0)
                lock.release()
                if kind == "condition":
                    self.assertFalse(objs[kind]._lock.locked())
                if self.mode == "interpreter" and kind == "condition":
                    # It left the queue (a process leaves it by dying).
                    self.assertEqual(objs[kind]._core._waiting, 0)
                if kind == "barrier":
                    # Left, or (process mode) counted out as dead: either
                    # way the next party does not pass alone.
                    self.assertEqual(objs[kind].n_waiting, int(self.mode == "process"))
                    with self.assertRaises(threading.BrokenBarrierError):
                        objs[kind].wait(0.1)


@unittest.skipUnless(support.HAVE_SUBINTERPRETERS, support.NO_SUBINTERPRETERS)
class TestInterpreterWorkers(AcrossWorkers, support.Workers, support.LeakCheck):
    mode = "interpreter"


class TestProcessWorkers(AcrossWorkers, support.Workers, support.LeakCheck):
    mode = "process"


class TestOwnerDied(support.Workers, unittest.TestCase):
    """A process worker killed (SIGKILL) while it holds a lock."""

    mode = "process"

    def kill_holding(self, target, obj, ready=lambda: True):
        flag = pw.Event()
        w = self.start(target, obj, flag)
        self.assertTrue(flag.wait(TIMEOUT))
        wait_until(ready)
        os.kill(w.pid, signal.SIGKILL)
        w.join(TIMEOUT)
        return w

    def check_taken_over(self, lock):
        with self.assertRaises(pw.OwnerDiedError) as cm:
            lock.acquire(timeout=TIMEOUT)
        self.assertIn("died", str(cm.exception))
        self.assertTrue(lock.locked())          # ours now
        if isinstance(lock, pw.RLock):
            self.assertTrue(lock._is_owned())
            self.assertEqual(lock._recursion_count(), 1)
        else:
            self.assertFalse(lock.acquire(False))   # once: now a plain held lock
        lock.release()
        self.assertFalse(lock.locked())
        self.assertTrue(lock.acquire(timeout=1))    # and no error again
        lock.release()

    def test_lock(self):
        lock = pw.Lock()
        self.kill_holding(T.hold_and_report, lock)
        self.check_taken_over(lock)

    def test_rlock(self):
        lock = pw.RLock()
        self.kill_holding(T.hold_and_report, lock)
        self.check_taken_over(lock)

    def test_non_blocking_acquire_takes_over_too(self):
        lock = pw.Lock()
        self.kill_holding(T.hold_and_report, lock)
        with self.assertRaises(pw.OwnerDiedError):
            lock.acquire(False)
        self.assertTrue(lock.locked())
        lock.release()

    def test_a_waiter_takes_over_when_the_holder_dies(self):
        lock = pw.Lock()
        flag = pw.Event()
        w = self.start(T.hold_and_report, lock, flag)
        self.assertTrue(flag.wait(TIMEOUT))
        got = []

        def waiter():
            try:
                lock.acquire(timeout=TIMEOUT)
                got.append("acquired")
            except pw.OwnerDiedError:
                got.append("owner died")
        t = start_thread(waiter)
        time.sleep(0.3)                 # asleep, checking now and then
        self.assertEqual(got, [])
        os.kill(w.pid, signal.SIGKILL)
        t.join(TIMEOUT)
        self.assertEqual(got, ["owner died"])
        lock.release()

    def test_condition_lock(self):
        for lock in (pw.Lock(), pw.RLock()):
            with self.subTest(lock=type(lock).__name__):
                cond = pw.Condition(lock)
                self.kill_holding(T.hold_condition, cond)
                with self.assertRaises(pw.OwnerDiedError):
                    with cond:
                        pass
                # __enter__ raised: the with body did not run, we hold it.
                self.assertTrue(lock.locked())
                cond.notify_all()
                cond.release()

    def test_a_dead_waiter_takes_no_notification_with_it(self):
        cond = pw.Condition(pw.Lock())
        self.kill_holding(T.condition_waiter_that_dies, cond,
                          lambda: cond._core._waiting == 1 and not cond._lock.locked())
        self.assertEqual(cond._core._waiting, 1)      # its slot, still there
        got = []

        def waiter():
            with cond:
                got.append(cond.wait(TIMEOUT))
        t = start_thread(waiter)
        wait_until(lambda: cond._core._waiting == 2)
        with cond:
            cond.notify(1)          # the oldest: the dead one
        t.join(TIMEOUT)
        self.assertEqual(got, [True])
        self.assertEqual(cond._core._waiting, 0)

    def test_a_party_that_dies_breaks_the_barrier(self):
        b = pw.Barrier(3)
        self.kill_holding(T.barrier_wait_forever, b, lambda: b.n_waiting == 1)
        t0 = time.monotonic()
        with self.assertRaises(threading.BrokenBarrierError):
            b.wait(TIMEOUT)
        # Broken by the death, not by the timeout (a bound on liveness, far
        # above the half second it takes, not on speed).
        self.assertLess(time.monotonic() - t0, TIMEOUT / 2)
        self.assertTrue(b.broken)
        b.reset()
        out = []
        ts = [start_thread(lambda: out.append(b.wait(TIMEOUT))) for _ in range(3)]
        for t in ts:
            t.join(TIMEOUT)
        self.assertEqual(sorted(out), [0, 1, 2])


if __name__ == "__main__":
    unittest.main()
