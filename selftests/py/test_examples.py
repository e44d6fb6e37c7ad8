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


if __name__ == "__main__":
    unittest.main()
