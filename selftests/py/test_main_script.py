# SPDX-License-Identifier: GPL-2.0
"""Objects of the main script travel both ways, as with multiprocessing: a
worker loads the script as __mp_main__, and the parent knows its __main__
by that name too. Dataclasses, exceptions and functions defined there come
back from workers and pool tasks; a decode failure never hangs a pool. A
main script whose imports refuse subinterpreters still runs in "auto"."""

import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

import pyshm_workers as pw

import support

TIMEOUT = 120

SCRIPT = """
import dataclasses
import sys
{imports}
import pyshm_workers as pw


@dataclasses.dataclass
class Point:
    x: int
    y: int = 0


class MyError(Exception):
    pass


def make(x):
    return Point(x, -x)


def boom(x):
    raise MyError(f"bad {{x}}")


def bump():
    # Receives a Point, sends back another, and a function of this script.
    p = pw.parent.recv()
    pw.parent.post_message((Point(p.x + 1, p.y), make))


def fail_target():
    raise MyError("from the target")


if __name__ == "__main__":
    mode = sys.argv[1]
    w = pw.Worker(bump, mode=mode)
    w.post_message(Point(1, 2))
    got, fn = w.recv(60)
    w.join(60)
    assert type(got) is Point and got == Point(2, 2), got
    assert fn is make
    w = pw.Worker(fail_target, mode=mode)
    try:
        w.recv(60)
    except pw.WorkerError as e:
        assert type(e.exception) is MyError, repr(e.exception)
    w.join(60)
    with pw.WorkerPool(2, mode=mode) as pool:
        assert pool.submit(make, 3).result(60) == Point(3, -3)
        try:
            pool.submit(boom, 4).result(60)
        except MyError as e:
            caught = str(e)
        assert caught == "bad 4", caught
        assert list(pool.map(make, range(3), chunksize=2)) == [make(i) for i in range(3)]
    print("ok", mode, w.mode)
"""


class TestMainScript(unittest.TestCase):
    def run_main(self, mode, imports=""):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "main_script.py")
            with open(path, "w") as f:
                f.write(textwrap.dedent(SCRIPT).format(imports=imports))
            env = dict(os.environ)
            env["PYTHONPATH"] = os.path.dirname(os.path.dirname(os.path.abspath(pw.__file__)))
            try:
                return subprocess.run([sys.executable, path, mode], capture_output=True,
                                      text=True, timeout=TIMEOUT, env=env)
            except subprocess.TimeoutExpired:
                self.fail(f"hung for {TIMEOUT} s")

    def test_objects_of_the_main_script_travel_both_ways(self):
        for mode in support.MODES + ("auto",):
            with self.subTest(mode=mode):
                out = self.run_main(mode)
                self.assertEqual(out.returncode, 0, out.stderr)
                self.assertIn(f"ok {mode}", out.stdout)
                self.assertEqual(out.stderr, "")

    def test_the_parent_knows_its_main_as_mp_main(self):
        self.assertIs(sys.modules["__mp_main__"], sys.modules["__main__"])

    @unittest.skipUnless(support.HAVE_SUBINTERPRETERS, support.NO_SUBINTERPRETERS)
    def test_auto_runs_a_main_script_whose_imports_refuse_subinterpreters(self):
        out = self.run_main("auto", "import faulthandler")
        self.assertEqual(out.returncode, 0, out.stderr)
        # Its workers were started again as processes.
        self.assertIn("ok auto process", out.stdout)

    @unittest.skipUnless(support.HAVE_SUBINTERPRETERS, support.NO_SUBINTERPRETERS)
    def test_interpreter_mode_says_what_to_do_with_such_a_script(self):
        out = self.run_main("interpreter", "import faulthandler")
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("faulthandler", out.stderr)
        self.assertIn("mode='process'", out.stderr)


if __name__ == "__main__":
    unittest.main()
