# SPDX-License-Identifier: GPL-2.0
"""WorkerPool: the concurrent.futures.Executor contract (with CPython's own
executor tests where they apply), remote exceptions, asyncio, replacing
workers that die, initializer, max_tasks_per_child, map() chunks and
buffers, and what does not decode on either side."""

import asyncio
import concurrent.futures as cf
import gc
import subprocess
import sys
import textwrap
import itertools
import threading
import time
import types
import unittest
import weakref

import pyshm_workers as pw

import real_targets
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
        # Where it sat is said in the caller's terms.
        with self.assertRaisesRegex(pw.DataCloneError, r" at args\[0\]$"):
            f.result(TIMEOUT)
        f = p.submit(targets.square, x=[threading.Lock()])
        with self.assertRaisesRegex(pw.DataCloneError, r" at kwargs\['x'\]\[0\]$"):
            f.result(TIMEOUT)
        results = p.map(targets.square, [1, threading.Lock()], chunksize=2)
        with self.assertRaisesRegex(pw.DataCloneError, r" at chunk\[1\]\[0\]$"):
            list(results)
        self.assertEqual(p.submit(targets.square, 3).result(TIMEOUT), 9)

    def test_unclonable_initargs_are_named(self):
        with self.assertRaisesRegex(pw.DataCloneError, r" at initargs\[0\]$"):
            with pw.WorkerPool(1, mode=self.mode, initializer=targets.square,
                               initargs=(threading.Lock(),)) as p:
                p.submit(targets.square, 3).result(TIMEOUT)

    def test_lambda_cannot_be_sent_without_cloudpickle(self):
        p = self.pool()
        with support.without_cloudpickle():
            f = p.submit(lambda: 1)
        with self.assertRaisesRegex(pw.DataCloneError, r"install cloudpickle.* at fn$"):
            f.result(TIMEOUT)

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
            pw.WorkerPool(max_workers=-1)
        with self.assertRaises(ValueError):
            pw.WorkerPool(mode="fibers")
        with self.assertRaisesRegex(TypeError, "initializer must be a callable"):
            pw.WorkerPool(initializer=42)
        for bad in (0, -1):
            with self.assertRaisesRegex(ValueError, "max_tasks_per_child must be >= 1"):
                pw.WorkerPool(max_tasks_per_child=bad)
        with self.assertRaisesRegex(TypeError, "max_tasks_per_child must be an integer"):
            pw.WorkerPool(max_tasks_per_child=1.5)

    # -- what a task cannot decode ---------------------------------------------

    def test_a_result_that_does_not_decode_fails_its_future_only(self):
        # The worker returns an object whose class only it can import: the
        # collector fails that future with why, and goes on.
        p = self.pool(1)
        first = p.submit(real_targets.where_and_id).result(TIMEOUT)
        f = p.submit(real_targets.make_worker_only)
        with self.assertRaisesRegex(pw.DataCloneError, r"pyshm_worker_only"):
            f.result(TIMEOUT)
        self.assertEqual(p.submit(targets.square, 5).result(TIMEOUT), 25)
        self.assertEqual(p.submit(real_targets.where_and_id).result(TIMEOUT), first)
        p.shutdown(wait=True)       # returns: the collector is not stuck

    def test_a_task_that_does_not_decode_in_the_worker_fails_its_future_only(self):
        p = self.pool(1)
        first = p.submit(real_targets.where_and_id).result(TIMEOUT)
        mod = types.ModuleType("pyshm_parent_only")

        class ParentOnly:
            pass
        ParentOnly.__module__ = mod.__name__
        ParentOnly.__qualname__ = "ParentOnly"
        mod.ParentOnly = ParentOnly
        sys.modules[mod.__name__] = mod
        self.addCleanup(sys.modules.pop, mod.__name__)
        f = p.submit(real_targets.send_back, ParentOnly())
        with self.assertRaisesRegex(pw.DataCloneError, r"pyshm_parent_only"):
            f.result(TIMEOUT)
        # The same worker, still serving.
        self.assertEqual(p.submit(real_targets.where_and_id).result(TIMEOUT), first)

    # -- initializer -----------------------------------------------------------

    def test_initializer_runs_first_in_each_worker(self):
        # CPython's test_concurrent_futures.test_init InitializerMixin.
        p = pw.WorkerPool(2, mode=self.mode, initializer=real_targets.init,
                          initargs=("initialized",))
        self.addCleanup(p.shutdown, cancel_futures=True)
        fs = [p.submit(real_targets.get_init_status) for _ in range(4)]
        self.assertEqual([f.result(TIMEOUT) for f in fs], ["initialized"] * 4)

    def test_without_initializer_nothing_runs_first(self):
        p = self.pool(1)
        self.assertEqual(p.submit(real_targets.get_init_status).result(TIMEOUT),
                         "uninitialized")

    def test_failing_initializer_breaks_the_pool(self):
        # CPython's FailingInitializerMixin: the futures fail with a
        # BrokenExecutor, and from then on submit() does.
        p = pw.WorkerPool(2, mode=self.mode, initializer=real_targets.init_fail)
        self.addCleanup(p.shutdown, cancel_futures=True)
        try:
            f = p.submit(real_targets.get_init_status)
        except cf.BrokenExecutor:
            pass
        else:
            with self.assertRaises(cf.BrokenExecutor) as cm:
                f.result(TIMEOUT)
            self.assertIsInstance(cm.exception, pw.BrokenWorkerPool)
            self.assertIn("error in initializer", str(cm.exception))
        deadline = time.monotonic() + TIMEOUT
        while not p._broken and time.monotonic() < deadline:
            time.sleep(0.01)
        with self.assertRaises(cf.BrokenExecutor):
            p.submit(real_targets.get_init_status)
        self.assertIn("broken", repr(p))

    # -- max_tasks_per_child -----------------------------------------------------

    def test_max_tasks_per_child_replaces_the_worker(self):
        # CPython's test_max_tasks_per_child: the same worker for 3 tasks,
        # then a fresh one (another process in process mode).
        p = pw.WorkerPool(1, mode=self.mode, max_tasks_per_child=3)
        self.addCleanup(p.shutdown, cancel_futures=True)
        ids = [p.submit(real_targets.where_and_id).result(TIMEOUT) for _ in range(4)]
        self.assertEqual(ids[0], ids[1])
        self.assertEqual(ids[0], ids[2])
        self.assertNotEqual(ids[3], ids[0])
        if self.mode == "process":
            self.assertNotEqual(ids[3][1], ids[0][1], "the pid did not change")
        self.assertEqual(p.stats()["workers"], 1)
        self.assertEqual(p.stats()["workers_replaced"], 1)

    def test_without_max_tasks_per_child_the_worker_stays(self):
        p = self.pool(1)
        ids = {p.submit(real_targets.where_and_id).result(TIMEOUT) for _ in range(6)}
        self.assertEqual(len(ids), 1)

    def test_max_tasks_per_child_counts_chunks(self):
        p = pw.WorkerPool(1, mode=self.mode, max_tasks_per_child=2)
        self.addCleanup(p.shutdown, cancel_futures=True)
        # Two chunks of 5: one worker; the next task gets a fresh one.
        got = list(p.map(real_targets.mul, range(10), range(10), chunksize=5))
        self.assertEqual(got, [i * i for i in range(10)])
        self.assertEqual(p.stats()["workers_replaced"], 0)
        p.submit(targets.square, 1).result(TIMEOUT)
        self.assertEqual(p.stats()["workers_replaced"], 1)

    def test_max_tasks_early_shutdown(self):
        # CPython's test_max_tasks_early_shutdown.
        p = pw.WorkerPool(3, mode=self.mode, max_tasks_per_child=1)
        fs = [p.submit(real_targets.mul, i, i) for i in range(6)]
        p.shutdown()
        self.assertEqual([f.result(TIMEOUT) for f in fs], [i * i for i in range(6)])

    # -- map: chunksize, buffersize, timeout --------------------------------------

    def test_map_chunksize_sends_a_chunk_as_one_message(self):
        p = self.pool(2)
        got = list(p.map(real_targets.mul, range(100), range(100), chunksize=10,
                         timeout=TIMEOUT))
        self.assertEqual(got, [i * i for i in range(100)])
        stats = p.stats()
        self.assertEqual(stats["messages_sent"], 10)
        self.assertEqual(stats["messages_received"], 10)

    def test_map_without_chunksize_sends_a_message_per_call(self):
        p = self.pool(2)
        self.assertEqual(list(p.map(targets.square, range(20), timeout=TIMEOUT)),
                         [i * i for i in range(20)])
        self.assertEqual(p.stats()["messages_sent"], 20)

    def test_map_chunks_end_short(self):
        p = self.pool(2)
        self.assertEqual(list(p.map(targets.square, range(7), chunksize=3)),
                         [i * i for i in range(7)])
        self.assertEqual(p.stats()["messages_sent"], 3)

    def test_map_exception(self):
        # CPython's test_map_exception, with and without chunks: the results
        # before the failing call come, then its exception.
        p = self.pool(2)
        for chunksize in (1, 2):
            with self.subTest(chunksize=chunksize):
                it = p.map(real_targets.fail_on, range(5), [2] * 5, chunksize=chunksize)
                self.assertEqual(next(it), 0)
                self.assertEqual(next(it), 1)
                with self.assertRaises(ZeroDivisionError):
                    next(it)

    def test_map_timeout(self):
        # CPython's test_map_timeout.
        p = self.pool(2)
        results = []
        with self.assertRaises(cf.TimeoutError):
            for r in p.map(real_targets.sleep_and_return, [0, 0, 6], ["a", "b", "c"],
                           timeout=1):
                results.append(r)
        self.assertEqual(results, ["a", "b"])

    def test_map_bad_chunksize(self):
        p = self.pool(1)
        for bad in (0, -1):
            with self.assertRaisesRegex(ValueError, r"chunksize must be >= 1"):
                p.map(targets.square, range(3), chunksize=bad)

    def test_map_buffersize_validation(self):
        # Python 3.14's test_map_buffersize_type_validation and
        # _value_validation (not an int: TypeError, which is a ValueError too).
        p = self.pool(1)
        for bad in ("foo", 2.0):
            with self.assertRaisesRegex(TypeError, "buffersize must be an integer or None"):
                p.map(str, range(4), buffersize=bad)
            with self.assertRaises(ValueError):
                p.map(str, range(4), buffersize=bad)
        for bad in (0, -1):
            with self.assertRaisesRegex(ValueError, r"buffersize must be None or > 0"):
                p.map(str, range(4), buffersize=bad)

    def test_map_buffersize_bounds_what_is_submitted(self):
        p = self.pool(2)
        for chunksize in (1, 3):
            with self.subTest(chunksize=chunksize):
                pulled = []

                def inputs():
                    for i in itertools.count():
                        pulled.append(i)
                        yield i
                it = p.map(targets.square, inputs(), buffersize=2, chunksize=chunksize)
                self.assertEqual([next(it) for _ in range(5)], [i * i for i in range(5)])
                # At most buffersize chunks beyond what was taken.
                taken_chunks = -(-5 // chunksize)
                self.assertLessEqual(len(pulled), (taken_chunks + 2) * chunksize)
                it.close()

    def test_map_without_buffersize_takes_all_inputs_at_once(self):
        p = self.pool(2)
        pulled = []

        def inputs():
            for i in range(30):
                pulled.append(i)
                yield i
        it = p.map(targets.square, inputs())
        self.assertEqual(len(pulled), 30)
        self.assertEqual(list(it), [i * i for i in range(30)])

    def test_map_buffersize_on_an_empty_iterable(self):
        # Python 3.14's test_map_buffersize_on_empty_iterable.
        p = self.pool(1)
        self.assertEqual(list(p.map(str, [], buffersize=2)), [])

    # -- repr, stats ---------------------------------------------------------------

    def test_repr_says_the_state(self):
        p = pw.WorkerPool(2, mode=self.mode)
        self.assertEqual(repr(p), f"<WorkerPool max_workers=2 mode={self.mode!r} "
                                  "workers=0 pending=0 running>")
        p.submit(targets.square, 2).result(TIMEOUT)
        self.assertIn("workers=1 ", repr(p))
        p.shutdown()
        self.assertTrue(repr(p).endswith(" shutdown>"), repr(p))

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
