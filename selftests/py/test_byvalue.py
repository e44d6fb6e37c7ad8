# SPDX-License-Identifier: GPL-2.0
"""Functions by value: lambdas, closures, nested and dynamically made
functions, and functions of a main script workers cannot load, travel
through cloudpickle (when it is importable) as worker targets, in messages
and as pool tasks, in both modes; without it the DataCloneError says what
to install. "module:function" targets are checked at Worker()."""

import functools
import textwrap
import unittest

import pyshm_workers as pw

import real_targets
import support
from real_targets import Job

TIMEOUT = 60


def make_adder(k):
    def add(x):
        return x + k
    return add


def dynamic_function():
    ns = {}
    exec("def triple(x):\n    return 3 * x\n", ns)
    return ns["triple"]


class ByValueCases(support.Workers):
    def recv(self, w):
        return w.recv(TIMEOUT)

    def test_lambda_target(self):
        w = self.start(lambda x: pw.parent.post_message(x + 1), 41)
        self.assertEqual(self.recv(w), 42)

    def test_closure_target(self):
        k = 10
        w = self.start(lambda: pw.parent.post_message(make_adder(k)(5)))
        self.assertEqual(self.recv(w), 15)

    def test_nested_function_target(self):
        def nested(a, b=0):
            pw.parent.post_message(a * b)
        w = self.start(nested, 6, kwargs={"b": 7})
        self.assertEqual(self.recv(w), 42)

    def test_dynamically_made_function_as_an_argument(self):
        w = self.start(real_targets.send_back, dynamic_function())
        self.assertEqual(self.recv(w)(5), 15)

    def test_functions_in_messages_with_their_containers(self):
        w = self.start(real_targets.call_callbacks)
        k = 100
        jobs = [Job(abs, -5), Job(lambda x: x + k, 1), Job(make_adder(2), 3),
                Job(dynamic_function(), 4)]
        w.post_message({"jobs": jobs})
        self.assertEqual(self.recv(w), [5, 101, 5, 12])

    def test_functions_come_back_from_the_worker(self):
        w = self.start(real_targets.send_a_closure, 3)
        got = self.recv(w)
        self.assertEqual(got["add"](4), 7)
        self.assertEqual(got["double"](4), 8)

    def test_one_function_twice_arrives_as_one(self):
        f = make_adder(1)
        w = self.start(real_targets.send_back, [f, f])
        got = self.recv(w)
        self.assertIs(got[0], got[1])

    def test_module_level_functions_still_go_by_name(self):
        msg = pw._encode(real_targets.mul)
        self.assertIn(b"real_targets", msg)
        self.assertNotIn(b"cloudpickle", msg)

    def test_pool_tasks(self):
        k = 7
        with pw.WorkerPool(2, mode=self.mode) as pool:
            self.assertEqual(pool.submit(lambda x: x * k, 6).result(TIMEOUT), 42)
            self.assertEqual(pool.submit(make_adder(1), 1).result(TIMEOUT), 2)
            self.assertEqual(list(pool.map(lambda x: -x, range(5), chunksize=2)),
                             [0, -1, -2, -3, -4])
            self.assertEqual(pool.submit(real_targets.call, lambda: "inner").result(TIMEOUT),
                             "inner")
            self.assertEqual(pool.submit(functools.partial(make_adder(2), 3)).result(TIMEOUT),
                             5)


class WithoutCloudpickleCases(support.Workers):
    """What users without cloudpickle see: TargetError or DataCloneError,
    with where, and what to install."""

    def test_lambda_target_says_what_to_install(self):
        with support.without_cloudpickle(), self.assertRaises(pw.TargetError) as cm:
            pw.Worker(lambda: None, mode=self.mode)
        self.assertIsInstance(cm.exception, pw.DataCloneError)
        self.assertIn("pip install cloudpickle", str(cm.exception))

    def test_lambda_in_a_message_says_where_and_what_to_install(self):
        w = self.start(real_targets.call_callbacks)
        jobs = [Job(abs, 1), Job(abs, 2), Job(abs, 3), Job(lambda x: x, 4)]
        with support.without_cloudpickle(), self.assertRaises(pw.DataCloneError) as cm:
            w.post_message({"jobs": jobs})
        self.assertIn("obj['jobs'][3].callback", str(cm.exception))
        self.assertIn("install cloudpickle", str(cm.exception))

    def test_pool_task_says_what_to_install(self):
        with pw.WorkerPool(1, mode=self.mode) as pool:
            with support.without_cloudpickle():
                f = pool.submit(make_adder(1), 1)
            with self.assertRaisesRegex(pw.DataCloneError, "install cloudpickle"):
                f.result(TIMEOUT)
            # The pool goes on.
            self.assertEqual(pool.submit(real_targets.mul, 2, 3).result(TIMEOUT), 6)

    def test_module_level_function_needs_no_cloudpickle(self):
        with support.without_cloudpickle():
            w = self.start(real_targets.send_back, real_targets.mul)
        self.assertIs(w.recv(TIMEOUT), real_targets.mul)


class TargetCheckCases(support.Workers):
    def test_unknown_module_raises_at_worker(self):
        with self.assertRaises(pw.TargetError) as cm:
            pw.Worker("no_such_module_here:f", mode=self.mode)
        self.assertIsInstance(cm.exception, ImportError)
        self.assertIn("does not resolve", str(cm.exception))

    def test_unknown_function_raises_at_worker(self):
        with self.assertRaises(pw.TargetError) as cm:
            pw.Worker("real_targets:no_such_function", mode=self.mode)
        self.assertIsInstance(cm.exception, AttributeError)

    def test_not_a_callable_raises_at_worker(self):
        with self.assertRaises(TypeError):
            pw.Worker("real_targets:INIT_STATUS", mode=self.mode)

    def test_a_string_that_resolves_runs(self):
        w = self.start("real_targets:send_back", "hi")
        self.assertEqual(w.recv(TIMEOUT), "hi")


class TestMainWithoutFile(support.Workers, unittest.TestCase):
    """python -c: its functions and classes cannot be imported by name in
    a worker; they go by value, as targets, in messages and as tasks."""

    SCRIPT = """
        import dataclasses, pyshm_workers as pw
        @dataclasses.dataclass
        class P:
            x: int
        def task(x):
            return P(x * 2)
        def target(x):
            pw.parent.post_message(task(x))
        w = pw.Worker(target, args=(4,), mode=MODE)
        got = w.recv(60)
        w.join(60)
        w2 = pw.Worker("__main__:target", args=(5,), mode=MODE)
        got2 = w2.recv(60)
        w2.join(60)
        with pw.WorkerPool(2, mode=MODE) as pool:
            got3 = pool.submit(task, 6).result(60)
        print(type(got).__name__, got.x, got2.x, got3.x, isinstance(got3, P))
    """

    def run_c(self, mode, prelude=""):
        return self.run_script(prelude + textwrap.dedent(self.SCRIPT).replace("MODE", repr(mode)))

    @unittest.skipUnless(support.HAVE_CLOUDPICKLE, support.NO_CLOUDPICKLE)
    def test_python_c_functions_and_classes_travel_by_value(self):
        for mode in support.MODES:
            with self.subTest(mode=mode):
                out = self.run_c(mode)
                self.assertEqual(out.returncode, 0, out.stderr)
                self.assertEqual(out.stdout.split(), ["P", "8", "10", "12", "True"])

    def test_python_c_without_cloudpickle_says_what_to_install(self):
        out = self.run_c("process", "import sys\nsys.modules['cloudpickle'] = None\n")
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("TargetError", out.stderr)
        self.assertIn("install cloudpickle", out.stderr)

    def test_python_c_instance_without_cloudpickle_says_what_and_where(self):
        out = self.run_script(textwrap.dedent("""
            import sys
            sys.modules['cloudpickle'] = None
            import pyshm_workers as pw
            class P:
                pass
            try:
                pw.structured_clone({"jobs": [0, P()]})
            except pw.DataCloneError as e:
                print(e)
        """))
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertRegex(out.stdout, r"^cannot clone 'P' object: its class is not importable "
                                     r"\(.*install cloudpickle.*\) at obj\['jobs'\]\[1\]$")


@unittest.skipUnless(support.HAVE_CLOUDPICKLE, support.NO_CLOUDPICKLE)
@unittest.skipUnless(support.HAVE_SUBINTERPRETERS, support.NO_SUBINTERPRETERS)
class TestInterpreterByValue(ByValueCases, support.LeakCheck):
    mode = "interpreter"


@unittest.skipUnless(support.HAVE_CLOUDPICKLE, support.NO_CLOUDPICKLE)
class TestProcessByValue(ByValueCases, support.LeakCheck):
    mode = "process"


@unittest.skipUnless(support.HAVE_SUBINTERPRETERS, support.NO_SUBINTERPRETERS)
class TestInterpreterWithoutCloudpickle(WithoutCloudpickleCases, support.LeakCheck):
    mode = "interpreter"


class TestProcessWithoutCloudpickle(WithoutCloudpickleCases, support.LeakCheck):
    mode = "process"


@unittest.skipUnless(support.HAVE_SUBINTERPRETERS, support.NO_SUBINTERPRETERS)
class TestInterpreterTargetCheck(TargetCheckCases, support.LeakCheck):
    mode = "interpreter"


class TestProcessTargetCheck(TargetCheckCases, support.LeakCheck):
    mode = "process"


if __name__ == "__main__":
    unittest.main()
