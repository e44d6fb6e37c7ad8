# SPDX-License-Identifier: GPL-2.0
"""numpy in real programs, on every Python that has it (Debian's
/usr/bin/python3, 3.14 and 3.15 in the chroot): numpy refuses
subinterpreters, so the default WorkerPool (mode="auto") runs numpy tasks
in process workers; a main script that imports numpy gets its dataclasses
and exceptions back, and lambdas, initializer, max_tasks_per_child and
chunksize work there, in each mode."""

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

import pyshm_workers as pw

import real_targets
import support

if support.numpy is not None:
    import numpy
    import numpy_targets

TIMEOUT = 60


def numpy_refuses_subinterpreters():
    """Whether numpy refuses to import in an interpreter worker here."""
    w = pw.Worker(real_targets.import_modules_report, args=(["numpy"],), mode="interpreter")
    try:
        return w.recv(TIMEOUT) != "ok"
    finally:
        w.join(TIMEOUT)


@unittest.skipIf(support.numpy is None, support.NO_NUMPY)
class TestNumpyPool(support.LeakCheck):
    def test_a_numpy_task_in_a_default_pool(self):
        with pw.WorkerPool() as pool:
            self.assertEqual(pool.submit(numpy_targets.total, numpy.arange(10)).result(TIMEOUT),
                             45)
            a, (kind, _) = pool.submit(numpy_targets.scaled, numpy.arange(4.0), 2).result(TIMEOUT)
            self.assertIsInstance(a, numpy.ndarray)
            self.assertEqual(a.tolist(), [0.0, 2.0, 4.0, 6.0])
            if support.HAVE_SUBINTERPRETERS and numpy_refuses_subinterpreters():
                self.assertEqual(kind, "process")
                self.assertGreaterEqual(pool.stats()["process_workers"], 1)

    def test_numpy_arrays_through_map_chunks(self):
        with pw.WorkerPool(2) as pool:
            got = list(pool.map(numpy_targets.ones, range(1, 7), chunksize=3))
        self.assertEqual([a.sum() for a in got], [1, 2, 3, 4, 5, 6])

    def test_a_numpy_worker_in_auto_mode(self):
        w = pw.Worker(real_targets.send_back, args=(numpy.arange(3),))
        self.assertEqual(w.recv(TIMEOUT).tolist(), [0, 1, 2])
        w.join(TIMEOUT)
        if support.HAVE_SUBINTERPRETERS and numpy_refuses_subinterpreters():
            self.assertEqual(w.mode, "process")

    @unittest.skipUnless(support.HAVE_SUBINTERPRETERS, support.NO_SUBINTERPRETERS)
    def test_interpreter_mode_says_to_use_process_mode(self):
        if not numpy_refuses_subinterpreters():
            self.skipTest("this numpy loads in subinterpreters")
        with pw.WorkerPool(1, mode="interpreter") as pool:
            with self.assertRaisesRegex(ImportError, r"numpy.*mode='process'"):
                pool.submit(numpy_targets.total, [1, 2]).result(TIMEOUT)


MAIN = """
import dataclasses, json, os, sys
import numpy
import pyshm_workers as pw
import real_targets


@dataclasses.dataclass
class Stats:
    mean: float
    n: int


class TooSmall(Exception):
    pass


def describe(a):
    if len(a) < 2:
        raise TooSmall(f"{{len(a)}} values")
    return Stats(float(numpy.mean(a)), len(a))


if __name__ == "__main__":
    mode = sys.argv[1]
    seen = {{}}
    with pw.WorkerPool(2, mode=mode) as pool:
        s = pool.submit(describe, numpy.arange(5.0)).result(60)
        seen["dataclass"] = [type(s).__name__, type(s) is Stats, s.mean, s.n]
        try:
            pool.submit(describe, numpy.zeros(1)).result(60)
        except TooSmall as e:
            seen["exception"] = [type(e).__name__, str(e)]
        k = 3
        seen["lambda"] = pool.submit(lambda a: (a * k).tolist(), numpy.arange(3)).result(60)
        before = pool.stats()["messages_sent"]
        seen["chunks"] = [int(x) for x in pool.map(numpy.square, range(40), chunksize=10)][-1]
        seen["chunk_messages"] = pool.stats()["messages_sent"] - before
        seen["pool_workers"] = pool.stats()
    with pw.WorkerPool(1, mode=mode, initializer=real_targets.init,
                       initargs=("ready",)) as pool:
        seen["initializer"] = pool.submit(real_targets.get_init_status).result(60)
    with pw.WorkerPool(1, mode=mode, max_tasks_per_child=2) as pool:
        seen["ids"] = [pool.submit(real_targets.where_and_id).result(60) for _ in range(4)]
        seen["np_after_replace"] = float(pool.submit(numpy.sum, numpy.ones(3)).result(60))
    print(json.dumps(seen))
"""


@unittest.skipIf(support.numpy is None, support.NO_NUMPY)
class TestNumpyMainScript(unittest.TestCase):
    def run_main(self, mode):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "numpy_main.py")
            with open(path, "w") as f:
                f.write(textwrap.dedent(MAIN.format()))
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(
                [os.path.dirname(os.path.dirname(os.path.abspath(pw.__file__))),
                 os.path.dirname(os.path.abspath(__file__))])
            try:
                out = subprocess.run([sys.executable, path, mode], capture_output=True,
                                     text=True, timeout=180, env=env)
            except subprocess.TimeoutExpired:
                self.fail("hung for 180 s")
        self.assertEqual(out.returncode, 0, out.stderr[-3000:])
        return json.loads(out.stdout.strip().splitlines()[-1])

    def check(self, seen, mode):
        self.assertEqual(seen["dataclass"], ["Stats", True, 2.0, 5])
        self.assertEqual(seen["exception"], ["TooSmall", "1 values"])
        self.assertEqual(seen["lambda"], [0, 3, 6])
        self.assertEqual(seen["chunks"], 39 * 39)
        self.assertEqual(seen["chunk_messages"], 4)          # 40 calls, 4 messages
        self.assertEqual(seen["initializer"], "ready")
        ids = seen["ids"]
        self.assertEqual(ids[0], ids[1])
        self.assertNotEqual(ids[2], ids[1])
        self.assertEqual(ids[2], ids[3])
        kinds = {i[0] for i in ids}
        if mode == "process" or not support.HAVE_SUBINTERPRETERS:
            self.assertEqual(kinds, {"process"})
            self.assertNotEqual(ids[2][1], ids[1][1], "the worker's pid did not change")
        self.assertEqual(seen["np_after_replace"], 3.0)

    def test_process_mode(self):
        self.check(self.run_main("process"), "process")

    @unittest.skipUnless(support.HAVE_SUBINTERPRETERS, "on 3.11 auto is process mode: "
                         "test_process_mode ran it")
    def test_auto_mode_falls_back(self):
        seen = self.run_main("auto")
        self.check(seen, "auto")
        # numpy at the top of the main script: the tasks of its functions
        # went to process workers.
        self.assertGreaterEqual(seen["pool_workers"]["process_workers"], 1)


if __name__ == "__main__":
    unittest.main()
