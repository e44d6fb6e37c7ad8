# SPDX-License-Identifier: GPL-2.0
"""Dask: a WorkerPool as the local scheduler's executor
(dask.compute(..., scheduler=pool)), and pyshm_workers.dask.PyshmPlugin on a
real distributed.LocalCluster of two worker processes (dask_script.py)."""

import json
import os
import subprocess
import sys
import unittest

import pyshm_workers as pw

import real_targets
import support

TIMEOUT = 60
HERE = os.path.dirname(os.path.abspath(__file__))

try:
    import dask
except ImportError:
    dask = None
try:
    import distributed
except ImportError:
    distributed = None
NO_DASK = ("dask is not installed for this Python (Debian's python3-dask: "
           "/usr/bin/python3 and the 3.14/3.15 chroot)")
NO_DISTRIBUTED = ("distributed is not installed for this Python (Debian's "
                  "python3-distributed: /usr/bin/python3 and the 3.14/3.15 chroot)")


class LocalSchedulerCases:
    mode = None

    def pool(self):
        p = pw.WorkerPool(2, mode=self.mode)
        self.addCleanup(p.shutdown, cancel_futures=True)
        return p

    def test_compute_runs_the_graph_in_the_pool(self):
        p = self.pool()
        parts = [dask.delayed(real_targets.mul)(i, i) for i in range(6)]
        total = dask.delayed(sum)(parts)
        self.assertEqual(dask.compute(total, scheduler=p), (55,))
        self.assertGreaterEqual(p.stats()["messages_sent"], 7)

    def test_a_task_that_raises(self):
        p = self.pool()
        bad = dask.delayed(real_targets.fail_on)(3, 3)
        with self.assertRaises(ZeroDivisionError):
            dask.compute(bad, scheduler=p)

    def test_lambdas_in_the_graph(self):
        if not support.HAVE_CLOUDPICKLE:
            self.skipTest(support.NO_CLOUDPICKLE)
        p = self.pool()
        k = 5
        x = dask.delayed(lambda a: a + k)(1)
        self.assertEqual(x.compute(scheduler=p), 6)

    @unittest.skipIf(support.numpy is None, support.NO_NUMPY)
    def test_dask_array(self):
        import dask.array as da
        p = self.pool()
        x = da.arange(100, chunks=25)
        self.assertEqual(int((x * 2).sum().compute(scheduler=p)), 9900)


@unittest.skipIf(dask is None, NO_DASK)
@unittest.skipUnless(support.HAVE_SUBINTERPRETERS, support.NO_SUBINTERPRETERS)
class TestLocalSchedulerInterpreter(LocalSchedulerCases, support.LeakCheck):
    mode = "auto"       # dask or numpy may refuse a subinterpreter: it falls back


@unittest.skipIf(dask is None, NO_DASK)
class TestLocalSchedulerProcess(LocalSchedulerCases, support.LeakCheck):
    mode = "process"


@unittest.skipIf(distributed is None, NO_DISTRIBUTED)
@unittest.skipIf(support.numpy is None, support.NO_NUMPY)
class TestDistributed(unittest.TestCase):
    """Each run starts a LocalCluster of two worker processes (seconds)."""

    def run_cluster(self, mode):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [os.path.dirname(os.path.dirname(os.path.abspath(pw.__file__))), HERE])
        try:
            out = subprocess.run([sys.executable, os.path.join(HERE, "dask_script.py"), mode],
                                 capture_output=True, text=True, timeout=300, env=env)
        except subprocess.TimeoutExpired:
            self.fail("hung for 300 s")
        self.assertEqual(out.returncode, 0, out.stderr[-3000:])
        return json.loads(out.stdout.strip().splitlines()[-1])

    def check(self, seen, mode):
        self.assertEqual(seen["doubled"], [0, 2, 4, 6, 8, 10])
        self.assertTrue(seen["in_pyshm_workers"], "the tasks did not run in the pools")
        if mode == "process":
            self.assertEqual(seen["pids_are_dask_workers"], [False])
        self.assertEqual(seen["numpy"], ["ndarray", "int32", [0, 3, 6, 9, 12]])
        self.assertEqual(seen["raised"], ["TaskError", True, "bad 7"])
        self.assertTrue(seen["after_kill"])
        self.assertFalse(seen["default_executor"])

    def test_plugin_default_mode(self):
        self.check(self.run_cluster("auto"), "auto")

    @unittest.skipUnless(support.HAVE_SUBINTERPRETERS, "on 3.11 auto is process mode: "
                         "test_plugin_default_mode ran it")
    def test_plugin_process_mode(self):
        self.check(self.run_cluster("process"), "process")

    def test_plugin_checks_its_arguments(self):
        from pyshm_workers.dask import PyshmPlugin
        self.assertIsInstance(PyshmPlugin(), distributed.WorkerPlugin)
        self.assertEqual(PyshmPlugin().name, "pyshm")
        with self.assertRaises(ValueError):
            PyshmPlugin(max_workers=0)
        with self.assertRaises(ValueError):
            PyshmPlugin(mode="threads")

    def test_plugin_gives_and_takes_back_the_executor(self):
        from pyshm_workers.dask import DaskExecutor, PyshmPlugin

        class FakeWorker:
            executors = {"default": "the thread pool"}
        w = FakeWorker()
        plugin = PyshmPlugin(max_workers=1, mode="process", name="default")
        plugin.setup(w)
        self.assertIsInstance(w.executors["default"], DaskExecutor)
        self.assertEqual(w.executors["default"].submit(real_targets.mul, 6, 7).result(TIMEOUT),
                         42)
        plugin.teardown(w)
        self.assertEqual(w.executors, {"default": "the thread pool"})


if __name__ == "__main__":
    unittest.main()
