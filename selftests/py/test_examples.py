# SPDX-License-Identifier: GPL-2.0
"""The examples run, small, as they would for a user."""

import os
import subprocess
import sys
import unittest

import pyshm_workers as pw

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples")
TIMEOUT = 120


def run(name, *args):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(os.path.abspath(pw.__file__)))
    return subprocess.run([sys.executable, os.path.join(EXAMPLES, name), *args],
                          capture_output=True, text=True, timeout=TIMEOUT, env=env)


class TestExamples(unittest.TestCase):
    def check(self, out):
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout

    def test_primes_demo(self):
        out = self.check(run("primes.py", "1000000", "--workers", "2"))
        # pi(10**6) = 78498, with 1 worker and with 2
        self.assertEqual(out.count(" 78498 "), 2, out)
        self.assertIn("speed-up", out)

    def test_primes_demo_process_mode(self):
        out = self.check(run("primes.py", "200000", "--workers", "2", "--mode", "process"))
        self.assertEqual(out.count(" 17984 "), 2, out)

    def test_async_server(self):
        out = self.check(run("async_server.py", "--requests", "50"))
        self.assertIn("50 requests served by 2 workers", out)

    def test_pool_map(self):
        out = self.check(run("pool_map.py", "--size", "5000", "--workers", "2"))
        self.assertIn("8 tasks", out)
        self.assertIn("below 5000: 3711 takes 238 steps", out)

    def test_dask_cluster(self):
        # A real distributed.LocalCluster of 2 worker processes, each with
        # a WorkerPool of 2 (auto: process mode where numpy refuses the
        # subinterpreter); the task is a __main__ function (by value).
        missing = [m for m in ("numpy", "distributed", "cloudpickle") if not have(m)]
        if missing:
            self.skipTest(f"{', '.join(missing)} not installed for this Python (Debian's "
                          "python3-numpy, python3-distributed, python3-cloudpickle: "
                          "/usr/bin/python3 and the 3.14/3.15 chroot)")
        out = self.check(run("dask_cluster.py", "--tasks", "4", "--size", "3000"))
        self.assertIn("4 tasks on 2 Dask workers x 2 pyshm workers", out)
        self.assertIn("up to 3000: 2919 takes 217 steps", out)


def have(module):
    import importlib.util
    return importlib.util.find_spec(module) is not None


if __name__ == "__main__":
    unittest.main()
