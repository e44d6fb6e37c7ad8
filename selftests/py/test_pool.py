# SPDX-License-Identifier: GPL-2.0
"""WorkerPool: the concurrent.futures.Executor contract, remote exceptions,
asyncio, and replacing workers that die."""

import asyncio
import concurrent.futures as cf
import gc
import subprocess
import sys
import textwrap
import threading
import time
import unittest
import weakref

import pyshm_workers as pw

import support
import targets

TIMEOUT = 60


class PoolCases:
    mode = None

    def pool(self, n=2):
        p = pw.WorkerPool(max_workers=n, mode=self.mode)
        self.addCleanup(p.shutdown, wait=True, cancel_futures=True)
        return p

    def test_is_an_executor(self):
        self.assertTrue(issubclass(pw.WorkerPool, cf.Executor))

    def test_submit_and_result(self):
        p = self.pool()
        f = p.submit(targets.square, 7)
        self.assertIsInstance(f, cf.Future)
        self.assertEqual(f.result(TIMEOUT), 49)

    def test_map_keeps_order(self):
        p = self.pool()
        self.assertEqual(list(p.map(targets.square, range(20), timeout=TIMEOUT)),
                         [x * x for x in range(20)])

    def test_map_lets_go_of_each_result(self):
        # CPython's test_concurrent_futures test_free_reference (bpo-14406):
        # once yielded, a result is the caller's alone. One worker, so that
        # its collector has no later reply that would replace the last one.
        p = self.pool(1)
        for obj in p.map(targets.make_dummy, range(10), timeout=TIMEOUT):
            wr = weakref.ref(obj)
            del obj
            gc.collect()
            self.assertIsNone(wr())

    def test_a_future_keeps_its_result_until_dropped(self):
        p = self.pool(1)
        f = p.submit(targets.make_dummy, 0)
        wr = weakref.ref(f.result(TIMEOUT))
        gc.collect()
        self.assertIsNotNone(wr())      # the future holds it
        del f
        gc.collect()
        self.assertIsNone(wr())

    def test_workers_are_reused(self):
        p = self.pool(1)
        pids = {p.submit(targets.whoami).result(TIMEOUT) for _ in range(5)}
        self.assertEqual(len(pids), 1)

    def test_exception_reraised_with_remote_traceback(self):
        p = self.pool()
        f = p.submit(targets.fail, "missing")
        with self.assertRaises(KeyError) as cm:
            f.result(TIMEOUT)
        self.assertEqual(cm.exception.args, ("missing",))
        cause = cm.exception.__cause__
        self.assertIsNotNone(cause)
        self.assertIn("fail", str(cause))
        self.assertIn("Traceback", str(cause))

    def test_unclonable_arguments_fail_the_future(self):
        p = self.pool()
        f = p.submit(targets.square, threading.Lock())
        with self.assertRaises(pw.DataCloneError):
            f.result(TIMEOUT)
        self.assertEqual(p.submit(targets.square, 3).result(TIMEOUT), 9)

    def test_lambda_cannot_be_sent(self):
        p = self.pool()
        with self.assertRaises(pw.DataCloneError):
            p.submit(lambda: 1).result(TIMEOUT)

    def test_dead_worker_fails_its_future_and_is_replaced(self):
        # os._exit() ends the worker (not the program) in interpreter mode too.
        p = self.pool(1)
        first = p.submit(targets.identity).result(TIMEOUT)
        f = p.submit(targets.die)
        with self.assertRaises(pw.WorkerError) as cm:
            f.result(TIMEOUT)
        self.assertIn("code 7", str(cm.exception))
        self.assertEqual(p.submit(targets.square, 4).result(TIMEOUT), 16)
        self.assertNotEqual(p.submit(targets.identity).result(TIMEOUT), first)

    def test_a_worker_that_dies_idle_is_replaced_once(self):
        p = self.pool(1)
        self.assertEqual(p.submit(targets.square, 2).result(TIMEOUT), 4)
        dead = p._slots[0].worker
        dead.terminate()                    # dies while idle
        dead.join(TIMEOUT)
        fs = [p.submit(targets.square, i) for i in range(6)]
        self.assertEqual([f.result(TIMEOUT) for f in fs], [i * i for i in range(6)])
        self.assertEqual(len(p._slots), 1)
        self.assertLessEqual(len(p._idle), 1)

    def test_a_pool_left_running_ends_at_exit(self):
        script = textwrap.dedent(f"""
            import sys
            sys.path[:0] = {sys.path!r}
            import pyshm_workers as pw, targets
            pool = pw.WorkerPool(2, mode={self.mode!r})
            assert pool.submit(targets.square, 3).result(60) == 9
        """)
        out = subprocess.run([sys.executable, "-c", script], capture_output=True,
                             text=True, timeout=TIMEOUT)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stderr, "")

    def test_shutdown_refuses_new_work(self):
        p = self.pool()
        p.submit(targets.square, 1).result(TIMEOUT)
        p.shutdown()
        with self.assertRaises(RuntimeError):
            p.submit(targets.square, 2)

    def test_shutdown_cancel_futures(self):
        p = pw.WorkerPool(max_workers=1, mode=self.mode)
        first = p.submit(targets.cpu_work, 300000)
        rest = [p.submit(targets.square, i) for i in range(20)]
        p.shutdown(wait=True, cancel_futures=True)
        self.assertEqual(first.result(TIMEOUT), sum(i * i for i in range(300000)))
        self.assertTrue(any(f.cancelled() for f in rest))
        for f in rest:
            self.assertTrue(f.done())

    def test_context_manager_waits(self):
        with pw.WorkerPool(max_workers=2, mode=self.mode) as p:
            fs = [p.submit(targets.square, i) for i in range(6)]
        self.assertTrue(all(f.done() for f in fs))
        self.assertEqual([f.result() for f in fs], [i * i for i in range(6)])

    def test_asyncio_run_in_executor(self):
        p = self.pool()

        async def main():
            loop = asyncio.get_running_loop()
            return await asyncio.gather(
                *(loop.run_in_executor(p, targets.square, i) for i in range(5)))

        self.assertEqual(asyncio.run(main()), [0, 1, 4, 9, 16])

    def test_tasks_run_in_parallel(self):
        p = self.pool(2)
        t0 = time.monotonic()
        fs = [p.submit(targets.cpu_work, 10) for _ in range(4)]
        cf.wait(fs, TIMEOUT)
        self.assertTrue(all(f.result() == sum(i * i for i in range(10)) for f in fs))
        self.assertLess(time.monotonic() - t0, TIMEOUT)

    def test_bad_arguments(self):
        with self.assertRaises(ValueError):
            pw.WorkerPool(max_workers=0)
        with self.assertRaises(ValueError):
            pw.WorkerPool(mode="fibers")

    @unittest.skipIf(support.HAVE_SUBINTERPRETERS, "3.11 only")
    def test_interpreter_mode_needs_3_12(self):
        with self.assertRaises(ValueError):
            pw.WorkerPool(mode="interpreter")


@unittest.skipUnless(support.HAVE_SUBINTERPRETERS, support.NO_SUBINTERPRETERS)
class TestInterpreterPool(PoolCases, support.LeakCheck):
    mode = "interpreter"


class TestProcessPool(PoolCases, support.LeakCheck):
    mode = "process"


if __name__ == "__main__":
    unittest.main()
