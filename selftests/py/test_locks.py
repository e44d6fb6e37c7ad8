# SPDX-License-Identifier: GPL-2.0
"""pw.locks (Web Locks): exclusive and shared locks by name, program-wide,
across threads, interpreter and process workers; if_available, steal,
timeout, query(), async with; a holder that dies releases its locks."""

import asyncio
import os
import signal
import threading
import time
import unittest

import pyshm_workers as pw

import parity_targets as T
import support
from support import TIMEOUT


def held():
    return pw.locks.query()["held"]


class TestInProcess(unittest.TestCase):
    def tearDown(self):
        self.assertEqual(pw.locks.query(), {"held": [], "pending": []})

    def test_exclusive_excludes_and_hands_over_in_order(self):
        order, gate = [], threading.Event()

        def take(i):
            with pw.locks.request("ex"):
                order.append(i)

        with pw.locks.request("ex") as lock:
            self.assertEqual((lock.name, lock.mode), ("ex", "exclusive"))
            threads = []
            for i in range(3):
                t = threading.Thread(target=take, args=(i,))
                t.start()
                threads.append(t)
                deadline = time.monotonic() + TIMEOUT
                while len(pw.locks.query()["pending"]) < i + 1 and \
                        time.monotonic() < deadline:
                    time.sleep(0.01)
            self.assertEqual(order, [])
            self.assertEqual(len(pw.locks.query()["pending"]), 3)
        for t in threads:
            t.join(TIMEOUT)
        self.assertEqual(order, [0, 1, 2])
        gate.set()

    def test_shared_holders_together_exclusive_after(self):
        with pw.locks.request("sh", "shared") as a, pw.locks.request("sh", "shared") as b:
            self.assertEqual((a.mode, b.mode), ("shared", "shared"))
            self.assertEqual(len(held()), 2)
            with pw.locks.request("sh", if_available=True) as c:
                self.assertIsNone(c)
        with pw.locks.request("sh", if_available=True) as c:
            self.assertEqual(c.mode, "exclusive")

    def test_a_waiting_exclusive_request_holds_back_later_shared_ones(self):
        with pw.locks.request("q", "shared"):
            t = threading.Thread(target=lambda: pw.locks.request("q").__enter__() and None)
            got = []

            def excl():
                with pw.locks.request("q"):
                    got.append("exclusive")

            t = threading.Thread(target=excl)
            t.start()
            while not pw.locks.query()["pending"]:
                time.sleep(0.01)
            with pw.locks.request("q", "shared", if_available=True) as s:
                self.assertIsNone(s)
        t.join(TIMEOUT)
        self.assertEqual(got, ["exclusive"])

    def test_if_available_gives_none_when_held(self):
        with pw.locks.request("ia"):
            with pw.locks.request("ia", if_available=True) as lock:
                self.assertIsNone(lock)
            self.assertEqual(pw.locks.query()["pending"], [])

    def test_timeout_raises_and_leaves_nothing_behind(self):
        with pw.locks.request("to"):
            t0 = time.monotonic()
            with self.assertRaises(TimeoutError):
                with pw.locks.request("to", timeout=0.2):
                    self.fail("granted")
            self.assertGreaterEqual(time.monotonic() - t0, 0.15)
            self.assertEqual(pw.locks.query()["pending"], [])
            with self.assertRaises(TimeoutError):
                with pw.locks.request("to", timeout=0):
                    pass

    def test_steal_takes_it_at_once(self):
        holder = pw.locks.request("st")
        holder.__enter__()
        with pw.locks.request("st", steal=True) as lock:
            self.assertEqual(lock.mode, "exclusive")
            self.assertEqual(held(), [{"name": "st", "mode": "exclusive"}])
        holder.__exit__(None, None, None)       # releasing a stolen lock is harmless
        self.assertEqual(held(), [])

    def test_async_with(self):
        async def main():
            async with pw.locks.request("aio") as lock:
                self.assertEqual(lock.name, "aio")
                async with pw.locks.request("aio", if_available=True) as none:
                    self.assertIsNone(none)
                with self.assertRaises(TimeoutError):
                    async with pw.locks.request("aio", timeout=0.1):
                        pass
            return held()

        self.assertEqual(asyncio.run(main()), [])

    def test_bad_requests(self):
        for kw, exc in ((dict(name=1), TypeError), (dict(name=None), TypeError),
                        (dict(name="n", mode="other"), ValueError),
                        (dict(name="n", steal=True, if_available=True), ValueError),
                        (dict(name="n", mode="shared", steal=True), ValueError),
                        (dict(name="n", timeout=-1), ValueError)):
            with self.subTest(**{k: repr(v) for k, v in kw.items()}), self.assertRaises(exc):
                pw.locks.request(**kw)


class AcrossWorkers:
    def test_a_worker_holds_it_program_wide(self):
        w = self.start(T.lock_hold, "pw", "exclusive")
        tag, name, mode, _ = w.recv(TIMEOUT)
        self.assertEqual((tag, name, mode), ("held", "pw", "exclusive"))
        self.assertEqual(held(), [{"name": "pw", "mode": "exclusive"}])
        with pw.locks.request("pw", if_available=True) as lock:
            self.assertIsNone(lock)
        w.post_message("release")
        self.assertEqual(w.recv(TIMEOUT), "released")
        with pw.locks.request("pw", timeout=TIMEOUT) as lock:
            self.assertEqual(lock.name, "pw")

    def test_a_worker_waits_for_us(self):
        with pw.locks.request("wait"):
            w = self.start(T.lock_wait, "wait", TIMEOUT)
            self.assertEqual(w.recv(TIMEOUT), "waiting")
            deadline = time.monotonic() + TIMEOUT
            while not pw.locks.query()["pending"] and time.monotonic() < deadline:
                time.sleep(0.01)
            self.assertEqual(pw.locks.query()["pending"],
                             [{"name": "wait", "mode": "exclusive"}])
        self.assertEqual(w.recv(TIMEOUT), ("got", "exclusive"))

    def test_a_worker_times_out(self):
        with pw.locks.request("wto"):
            w = self.start(T.lock_wait, "wto", 0.2)
            self.assertEqual(w.recv(TIMEOUT), "waiting")
            self.assertEqual(w.recv(TIMEOUT), "timed out")

    def test_terminate_ends_a_worker_waiting_for_a_lock(self):
        with pw.locks.request("term"):
            w = self.start(T.lock_block_forever, "term")
            self.assertEqual(w.recv(TIMEOUT), "waiting")
            w.terminate()
            w.join(TIMEOUT)
            self.assertFalse(w.is_alive())
        # The manager learns of the end from the worker's link: until
        # then its request may still be pending, or granted to it on the
        # release above; either goes when the link closes.
        empty = {"held": [], "pending": []}
        deadline = time.monotonic() + TIMEOUT
        while pw.locks.query() != empty and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertEqual(pw.locks.query(), empty)


    def test_a_worker_that_ends_without_leaving_the_block_releases(self):
        w = self.start(T.lock_hold_then_exit_hard, "hard")
        self.assertEqual(w.recv(TIMEOUT), "held")
        w.post_message("exit")
        w.join(TIMEOUT)
        self.assertEqual(w.exit_code, 3)
        with pw.locks.request("hard", timeout=TIMEOUT) as lock:
            self.assertEqual(lock.name, "hard")


@unittest.skipUnless(support.HAVE_SUBINTERPRETERS, support.NO_SUBINTERPRETERS)
class TestInterpreterWorkers(AcrossWorkers, support.Workers, support.LeakCheck):
    mode = "interpreter"


class TestProcessWorkers(AcrossWorkers, support.Workers, support.LeakCheck):
    mode = "process"

    def test_a_holder_that_dies_releases_its_locks(self):
        w = self.start(T.lock_hold, "dies", "exclusive")
        _, _, _, pid = w.recv(TIMEOUT)
        os.kill(pid, signal.SIGKILL)
        with pw.locks.request("dies", timeout=TIMEOUT) as lock:
            self.assertEqual(lock.name, "dies")
        w.join(TIMEOUT)


if __name__ == "__main__":
    unittest.main()
