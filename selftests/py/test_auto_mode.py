# SPDX-License-Identifier: GPL-2.0
"""mode="auto" and extensions that refuse subinterpreters (faulthandler
here, numpy in test_numpy_workers.py): a worker whose target's module, arguments'
classes or initializer refuse to import before the target runs is started
again in process mode, transparently; a pool remembers it per callable.
mode="interpreter" says what to do instead; a failure after the target
started is reported, never retried."""

import concurrent.futures as cf
import unittest

import pyshm_workers as pw

import real_targets
import refusing_targets
import support
import targets

TIMEOUT = 60


@unittest.skipUnless(support.HAVE_SUBINTERPRETERS, support.NO_SUBINTERPRETERS)
class TestAutoWorker(support.Workers, support.LeakCheck):
    mode = "auto"

    def test_falls_back_when_the_target_module_refuses(self):
        w = self.start(refusing_targets.echo_all)
        # Posted before the worker has said anything: they reach the
        # process worker, in order.
        for i in range(5):
            w.post_message(i)
        self.assertEqual([w.recv(TIMEOUT) for _ in range(5)], list(range(5)))
        self.assertEqual(w.mode, "process")
        self.assertIsNotNone(w.pid)

    def test_stays_an_interpreter_when_nothing_refuses(self):
        w = self.start(targets.echo)
        w.post_message("x")
        self.assertEqual(w.recv(TIMEOUT), "x")
        self.assertEqual(w.mode, "interpreter")
        self.assertIsNone(w.pid)

    def test_falls_back_when_an_argument_class_refuses(self):
        w = self.start(real_targets.send_back, refusing_targets.Thing(3))
        got = w.recv(TIMEOUT)
        self.assertIsInstance(got, refusing_targets.Thing)
        self.assertEqual(got.v, 3)
        self.assertEqual(w.mode, "process")

    def test_a_string_target_falls_back_too(self):
        w = self.start("refusing_targets:where_here")
        w.join(TIMEOUT)
        self.assertEqual(w.exit_code, 0)
        self.assertEqual(w.mode, "process")

    def test_a_refusal_after_the_target_started_is_reported_not_retried(self):
        w = self.start(targets.import_modules, ["faulthandler"])
        with self.assertRaises(pw.WorkerError) as cm:
            w.recv(TIMEOUT)
        self.assertIn("mode='process'", str(cm.exception))
        self.assertIsInstance(cm.exception.exception, ImportError)
        w.join(TIMEOUT)
        self.assertEqual(w.mode, "interpreter")
        self.assertEqual(w.exit_code, 1)

    def test_the_fallback_is_logged(self):
        with self.assertLogs("pyshm_workers", "INFO") as cm:
            w = self.start(refusing_targets.where_here)
            w.join(TIMEOUT)
        self.assertTrue(any("process mode" in line for line in cm.output), cm.output)

    def test_join_and_exit_code_follow_the_process_worker(self):
        w = self.start(refusing_targets.where_here)
        w.join(TIMEOUT)
        self.assertFalse(w.is_alive())
        self.assertEqual(w.exit_code, 0)


@unittest.skipUnless(support.HAVE_SUBINTERPRETERS, support.NO_SUBINTERPRETERS)
class TestInterpreterModeRefusal(support.Workers, support.LeakCheck):
    mode = "interpreter"

    def test_the_error_names_the_module_and_the_fix(self):
        w = self.start(refusing_targets.echo_all)
        with self.assertRaises(pw.WorkerError) as cm:
            w.recv(TIMEOUT)
        text = str(cm.exception)
        self.assertIn("faulthandler", text)
        self.assertIn("mode='process'", text)
        self.assertIsInstance(cm.exception.exception, ImportError)
        self.assertEqual(w.mode, "interpreter")

    def test_pool_task_fails_with_the_fix(self):
        with pw.WorkerPool(1, mode="interpreter") as pool:
            with self.assertRaisesRegex(ImportError, r"faulthandler.*mode='process'"):
                pool.submit(refusing_targets.where_here).result(TIMEOUT)
            # Nothing was remembered: the pool stays interpreters only.
            self.assertEqual(pool.submit(real_targets.where).result(TIMEOUT)[0],
                             "interpreter")
            self.assertEqual(pool.stats()["process_workers"], 0)


@unittest.skipUnless(support.HAVE_SUBINTERPRETERS, support.NO_SUBINTERPRETERS)
class TestAutoPool(support.LeakCheck):
    def pool(self, n=2, **kw):
        p = pw.WorkerPool(n, mode="auto", **kw)
        self.addCleanup(p.shutdown, wait=True, cancel_futures=True)
        return p

    def test_a_refusing_task_runs_in_a_process_worker(self):
        p = self.pool()
        self.assertEqual(p.submit(refusing_targets.where_here).result(TIMEOUT)[0], "process")

    def test_the_pool_remembers_the_callable(self):
        p = self.pool(2)
        p.submit(refusing_targets.where_here).result(TIMEOUT)
        sent = p.stats()["messages_sent"]
        # Later tasks of it go to a process worker at once: one message each.
        for _ in range(3):
            self.assertEqual(p.submit(refusing_targets.where_here).result(TIMEOUT)[0],
                             "process")
        self.assertEqual(p.stats()["messages_sent"], sent + 3)
        # Other callables still run in interpreter workers: both modes.
        self.assertEqual(p.submit(real_targets.where).result(TIMEOUT)[0], "interpreter")
        stats = p.stats()
        self.assertEqual(stats["process_workers"], 1)
        self.assertEqual(stats["workers"], 2)

    def test_a_refusing_argument_class(self):
        p = self.pool(1)
        got = p.submit(real_targets.send_back_value, refusing_targets.Thing(2)).result(TIMEOUT)
        self.assertEqual(got[0].v, 2)
        self.assertEqual(got[1], "process")

    def test_a_full_pool_of_interpreters_makes_room(self):
        p = self.pool(1)
        self.assertEqual(p.submit(real_targets.where).result(TIMEOUT)[0], "interpreter")
        fs = [p.submit(refusing_targets.where_here) for _ in range(3)]
        fs += [p.submit(real_targets.where) for _ in range(3)]
        kinds = [f.result(TIMEOUT)[0] for f in fs]
        self.assertEqual(kinds[:3], ["process"] * 3)
        self.assertEqual(p.stats()["workers"], 1)

    def test_a_map_with_chunks_falls_back(self):
        p = self.pool(2)
        got = list(p.map(refusing_targets.Thing, range(6), chunksize=3))
        self.assertEqual([t.v for t in got], list(range(6)))

    def test_a_refusal_inside_a_task_is_reported_not_retried(self):
        p = self.pool(1)
        with self.assertRaisesRegex(ImportError, r"mode='process'"):
            p.submit(real_targets.import_names, ["faulthandler"]).result(TIMEOUT)
        self.assertEqual(p.stats()["process_workers"], 0)

    def test_an_initializer_that_refuses_makes_process_workers(self):
        p = self.pool(2, initializer=refusing_targets.init)
        self.assertEqual([f.result(TIMEOUT)[0] for f in
                          [p.submit(real_targets.where) for _ in range(3)]],
                         ["process"] * 3)

    def test_the_fallback_is_logged(self):
        p = self.pool(1)
        with self.assertLogs("pyshm_workers", "INFO") as cm:
            p.submit(refusing_targets.where_here).result(TIMEOUT)
        self.assertTrue(any("process workers" in line for line in cm.output), cm.output)


class TestAutoOn311(unittest.TestCase):
    @unittest.skipIf(support.HAVE_SUBINTERPRETERS, "3.11 only: there auto is process mode")
    def test_auto_is_process_mode(self):
        with pw.WorkerPool(1) as p:
            self.assertEqual(p.submit(refusing_targets.where_here).result(TIMEOUT)[0],
                             "process")
        w = pw.Worker(refusing_targets.where_here)
        self.assertEqual(w.mode, "process")
        w.join(TIMEOUT)

    def test_broken_executor_is_exported(self):
        self.assertTrue(issubclass(pw.BrokenWorkerPool, cf.BrokenExecutor))


if __name__ == "__main__":
    unittest.main()
