# SPDX-License-Identifier: GPL-2.0
"""Atomics.wait_async() / a.wait_async(): results, errors raised at the
call, the wait beginning at the call, notify() counting async waiters,
cancellation, timeouts, Int64Array's halves, and waits across threads, an
interpreter worker and a process worker; on both paths (io_uring futex
waits, and the shared waiter thread), chosen with PYSHM_WAIT_ASYNC."""

import asyncio
import math
import os
import threading
import time
import unittest

import pyshm_workers as pw
from pyshm_workers import _core, _wait_async

import buffer_targets
import support


def uring_available():
    old = os.environ.pop("PYSHM_WAIT_ASYNC", None)
    try:
        return _core._wait_async_path() == "uring"
    finally:
        if old is not None:
            os.environ["PYSHM_WAIT_ASYNC"] = old


def threads_now():
    return len(os.listdir("/proc/self/task"))


def notify_until(a, i, want, count=None, within=10):
    """notify(i, count) until want waiters have been woken in all."""
    woken, deadline = 0, time.monotonic() + within
    while woken < want and time.monotonic() < deadline:
        woken += a.notify(i, count)
        time.sleep(0.001)
    return woken


class Cases(support.Workers):
    """The tests, run for the path of the subclass."""

    path = None

    def setUp(self):
        super().setUp()
        old = os.environ.get("PYSHM_WAIT_ASYNC")
        os.environ["PYSHM_WAIT_ASYNC"] = self.path
        self.addCleanup(self.restore_env, old)
        self.a = pw.Int32Array(pw.SharedArrayBuffer(1024))

    def tearDown(self):
        del self.a
        super().tearDown()

    def restore_env(self, old):
        if old is None:
            os.environ.pop("PYSHM_WAIT_ASYNC", None)
        else:
            os.environ["PYSHM_WAIT_ASYNC"] = old

    def run_async(self, fn, *args):
        return asyncio.run(asyncio.wait_for(fn(*args), support.TIMEOUT))

    def queue(self):
        return _wait_async._queue(asyncio.get_running_loop())

    def test_the_path_is_the_one_asked_for(self):
        async def main():
            return self.queue().q.path
        self.assertEqual(self.run_async(main), self.path)

    def test_not_equal_and_timed_out(self):
        a = self.a

        async def main():
            a.store(0, 1)
            self.assertEqual(await a.wait_async(0, 0), "not-equal")
            self.assertEqual(await a.wait_async(0, 2**32), "not-equal")   # wrapped: 0
            self.assertEqual(await a.wait_async(0, 1, 0), "timed-out")
            self.assertEqual(await a.wait_async(0, 1, -1), "timed-out")
            t0 = time.monotonic()
            self.assertEqual(await a.wait_async(0, 1, 0.05), "timed-out")
            self.assertGreaterEqual(time.monotonic() - t0, 0.04)
            self.assertEqual(self.queue().q.pending, 0)
        self.run_async(main)

    def test_a_notify_from_a_thread_ends_it_ok(self):
        a = self.a

        async def main():
            w = a.wait_async(3, 0, math.inf)
            t = asyncio.get_running_loop().run_in_executor(None, notify_until, a, 3, 1)
            self.assertEqual(await w, "ok")
            self.assertEqual(await t, 1)
        self.run_async(main)

    def test_atomics_namespace_and_keywords(self):
        a = self.a

        async def main():
            self.assertEqual(await pw.Atomics.wait_async(a, 0, 0, 0.001), "timed-out")
            self.assertEqual(await pw.Atomics.waitAsync(a, 0, 5), "not-equal")
            self.assertEqual(await a.wait_async(i=0, value=0, timeout=0.001), "timed-out")
            self.assertEqual(await pw.Atomics.wait_async(a, 0, 0, timeout=0.001),
                             "timed-out")
        self.run_async(main)

    def test_bad_arguments_raise_at_the_call(self):
        a = self.a
        for call, exc in ((lambda: a.wait_async(256, 0), IndexError),
                          (lambda: a.wait_async(0, "0"), TypeError),
                          (lambda: a.wait_async(0, 0, float("nan")), ValueError),
                          (lambda: a.wait_async(0, 0, "1"), TypeError),
                          (lambda: a.wait_async(0), TypeError),
                          (lambda: pw.Atomics.wait_async([0], 0, 0), TypeError),
                          (lambda: pw.Int32Array(4).wait_async(0, 0), TypeError),
                          (lambda: pw.Float64Array(pw.SharedArrayBuffer(8)).wait_async(0, 0),
                           TypeError)):
            with self.assertRaises(exc):
                call()                      # no loop running: still at once

    def test_without_a_running_loop_it_begins_when_run(self):
        self.assertEqual(asyncio.run(self.a.wait_async(0, 1)), "not-equal")
        self.assertEqual(asyncio.run(self.a.wait_async(0, 0, 0.001)), "timed-out")

    def test_the_wait_begins_at_the_call(self):
        a = self.a

        async def main():
            w = a.wait_async(7, 0)              # not awaited yet
            if self.path == "uring":
                self.assertEqual(a.notify(7), 1)    # the kernel has it already
            else:
                self.assertEqual(notify_until(a, 7, 1), 1)
            self.assertEqual(await w, "ok")
        self.run_async(main)

    def test_cancelling_the_task_removes_the_waiter(self):
        a = self.a

        async def main():
            t = asyncio.ensure_future(a.wait_async(9, 0))
            await asyncio.sleep(0)              # the wait has begun
            t.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await t
            if self.path == "uring":
                self.assertEqual(a.notify(9), 0)
            for _ in range(100):                # its completion is reaped
                if not self.queue().q.pending:
                    break
                await asyncio.sleep(0.01)
            self.assertEqual(self.queue().q.pending, 0)
            self.assertEqual(self.queue().futures, {})
            # The element is free for the next waiter.
            w = a.wait_async(9, 0, 5)
            self.assertEqual(await asyncio.gather(
                w, asyncio.to_thread(notify_until, a, 9, 1)), ["ok", 1])
        self.run_async(main)

    def test_timeouts_leave_nothing_behind(self):
        a = self.a

        async def main():
            got = await asyncio.gather(*(a.wait_async(i % 200, 0, 0.01) for i in range(300)))
            self.assertEqual(got, ["timed-out"] * 300)
            self.assertEqual(self.queue().q.pending, 0)
            self.assertEqual(self.queue().futures, {})
        self.run_async(main)

    def test_many_elements_no_thread_per_waiter(self):
        a = self.a
        before = threads_now()

        async def main():
            ws = [asyncio.ensure_future(a.wait_async(i, 0, 30)) for i in range(200)]
            await asyncio.sleep(0)
            # uring: no thread at all; thread: 200 words, two threads.
            self.assertLessEqual(threads_now() - before, 0 if self.path == "uring" else 2)
            woken = 0
            for i in range(200):
                a.store(i, 1)
                woken += a.notify(i)
            self.assertEqual(await asyncio.gather(*ws), ["ok"] * 200)
            return woken
        woken = self.run_async(main)
        if self.path == "uring":
            self.assertEqual(woken, 200)

    def test_int64_waits_on_both_halves(self):
        b = pw.Int64Array(pw.SharedArrayBuffer(32))

        async def main():
            b.store(1, 7)
            self.assertEqual(await b.wait_async(1, 7 + (1 << 32)), "not-equal")
            self.assertEqual(await b.wait_async(1, 7, 0.01), "timed-out")
            w = b.wait_async(1, 7, 30)
            self.assertEqual(await asyncio.to_thread(notify_until, b, 1, 1), 1)
            self.assertEqual(await w, "ok")
            for round in range(20):
                b.store(1, 7)

                async def waiter():
                    while b.load(1) == 7:
                        await b.wait_async(1, 7, 30)

                t = asyncio.ensure_future(waiter())
                await asyncio.sleep(0)
                # Only the high half changes; one notify: it must not sleep on.
                b.store(1, 7 + (round + 1 << 32))
                b.notify(1)
                await asyncio.wait_for(t, 10)
        self.run_async(main)

    def run_worker_wait(self):
        a = self.a
        w = self.start(buffer_targets.wa_wait, a, 11, 0, 30)
        self.assertEqual(w.recv(support.TIMEOUT), "waiting")
        self.assertEqual(notify_until(a, 11, 1), 1)
        self.assertEqual(w.recv(support.TIMEOUT), "ok")
        w.join(support.TIMEOUT)

    def run_pingpong(self, rounds=50):
        a = pw.Int32Array(pw.SharedArrayBuffer(8))
        w = self.start(buffer_targets.wa_pingpong, a, rounds)

        async def main():
            for k in range(rounds):
                a.store(0, 2 * k + 1)
                a.notify(0)
                while (v := a.load(0)) == 2 * k + 1:
                    await a.wait_async(0, v, 30)
            return a.load(0)
        self.assertEqual(self.run_async(main), 2 * rounds)
        self.assertEqual(w.recv(support.TIMEOUT), "done")
        w.join(support.TIMEOUT)

    def test_each_loop_has_its_own_queue(self):
        a = self.a
        one, two = asyncio.new_event_loop(), asyncio.new_event_loop()
        self.addCleanup(two.close)
        self.addCleanup(one.close)

        async def queue_of_a_wait():
            w = asyncio.ensure_future(a.wait_async(5, 0, 0.01))
            q = self.queue()
            self.assertEqual(q.q.pending, 1)
            self.assertEqual(await w, "timed-out")
            return q

        q1 = one.run_until_complete(queue_of_a_wait())
        q2 = two.run_until_complete(queue_of_a_wait())
        self.assertIsNot(q1, q2)
        self.assertIs(one.run_until_complete(queue_of_a_wait()), q1)

    def test_a_loop_carried_across_fork_gets_a_queue_of_its_own(self):
        a = self.a
        loop = asyncio.new_event_loop()
        self.addCleanup(loop.close)
        self.assertEqual(loop.run_until_complete(a.wait_async(6, 0, 0.01)), "timed-out")

        async def child():
            w = a.wait_async(6, 0, support.TIMEOUT)
            a.store(7, 1)
            a.notify(7)
            return await w

        pid = os.fork()
        if pid == 0:
            code = 2
            try:
                code = 0 if loop.run_until_complete(child()) == "ok" else 1
            finally:
                os._exit(code)
        deadline = time.monotonic() + support.TIMEOUT
        while a.load(7) == 0 and time.monotonic() < deadline:
            a.wait(7, 0, 0.1)
        # Notified until it is done (on the thread path, its waiter may
        # see the store first and end "ok" without counting as woken).
        a.store(6, 1)
        while True:
            a.notify(6)
            done, status = os.waitpid(pid, os.WNOHANG)
            if done or time.monotonic() > deadline:
                break
            time.sleep(0.001)
        if not done:
            os.kill(pid, 9)
            _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0)

    @unittest.skipUnless(support.HAVE_SUBINTERPRETERS, support.NO_SUBINTERPRETERS)
    @unittest.skipUnless(support.HAVE_ASYNCIO_IN_INTERPRETERS, support.NO_ASYNCIO_IN_INTERPRETERS)
    def test_interpreter_worker(self):
        self.mode = "interpreter"
        self.run_worker_wait()
        self.run_pingpong()

    def test_process_worker(self):
        self.mode = "process"
        self.run_worker_wait()
        self.run_pingpong()


@unittest.skipUnless(uring_available(), "no io_uring futex waits here (Linux 6.7+)")
class TestUring(Cases, support.LeakCheck):
    path = "uring"

    def test_only_a_notify_ends_it(self):
        # A store alone, while the wait polls (PYSHM_SPIN_NS) and after it
        # parked, does not end it; the notify() that follows does. (On
        # the thread path, a wait whose element changed may end "ok" when
        # the thread looks again: a spurious wakeup.)
        a = self.a

        async def main():
            w = asyncio.ensure_future(a.wait_async(8, 0, 0.2))
            a.store(8, 1)
            self.assertEqual(await w, "timed-out")
            w = asyncio.ensure_future(a.wait_async(9, 0))
            await asyncio.sleep(0)
            a.store(9, 1)
            for _ in range(20):
                await asyncio.sleep(0)
            self.assertFalse(w.done())
            self.assertEqual(notify_until(a, 9, 1), 1)
            self.assertEqual(await w, "ok")
        self.run_async(main)

    def test_notify_counts_each_async_waiter(self):
        a = self.a

        async def main():
            ws = [asyncio.ensure_future(a.wait_async(1, 0, 30)) for _ in range(3)]
            await asyncio.sleep(0)
            self.assertEqual(a.notify(1), 3)
            self.assertEqual(await asyncio.gather(*ws), ["ok"] * 3)
            ws = [asyncio.ensure_future(a.wait_async(1, 0, 1.0)) for _ in range(2)]
            await asyncio.sleep(0)
            self.assertEqual(a.notify(1, 1), 1)
            self.assertEqual(sorted(await asyncio.gather(*ws)), ["ok", "timed-out"])
        self.run_async(main)

    def test_async_and_sync_waiters_count_together(self):
        a = self.a
        results = []
        t = threading.Thread(target=lambda: results.append(a.wait(2, 0, 30)))
        t.start()

        async def main():
            w = a.wait_async(2, 0, 30)
            self.assertEqual(await asyncio.to_thread(notify_until, a, 2, 2), 2)
            return await w
        self.assertEqual(self.run_async(main), "ok")
        t.join(10)
        self.assertEqual(results, ["ok"])


class TestThread(Cases, support.LeakCheck):
    path = "thread"

    def test_a_process_counts_once_per_element(self):
        """On this path notify() wakes the waiter thread of a process once
        per element: its async waiters there count as one, all woken."""
        a = self.a

        async def main():
            ws = [asyncio.ensure_future(a.wait_async(1, 0, 30)) for _ in range(3)]
            await asyncio.sleep(0)
            woken = await asyncio.to_thread(notify_until, a, 1, 1, 1)
            self.assertEqual(await asyncio.gather(*ws), ["ok"] * 3)
            return woken
        self.assertEqual(self.run_async(main), 1)

    def test_a_bad_path_is_refused(self):
        os.environ["PYSHM_WAIT_ASYNC"] = "carrier-pigeon"

        async def main():
            with self.assertRaises(ValueError):
                self.a.wait_async(0, 0, 0.01)
        asyncio.run(main())


if __name__ == "__main__":
    unittest.main()
