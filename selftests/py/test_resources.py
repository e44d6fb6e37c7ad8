# SPDX-License-Identifier: GPL-2.0
"""Worker.ref()/unref(), resource_limits and resource_usage(), in
interpreter mode (3.12+) and process mode."""

import math
import os
import signal
import sys
import tempfile
import time
import unittest

import pyshm_workers as pw
from pyshm_workers import _worker

import resource_targets
import support
import targets

TIMEOUT = 60
MB = 1 << 20

# A program that starts one worker of a mode, running
# resource_targets.block_then_mark, and exits while it blocks; the exit
# grace is made long (30 s) so that a worker waited for is told apart from
# one ended at once without timing anything fine.
EXIT_SCRIPT = """
    import pyshm_workers as pw, resource_targets
    from pyshm_workers import _worker
    _worker.shutdown_all.__defaults__ = (30.0,)
    w = pw.Worker(resource_targets.block_then_mark, args=({path!r},), mode={mode!r})
    assert w.recv(60) == "blocking"
    {calls}
    print(w.pid, flush=True)
"""


class ResourceCases(support.Workers):
    mode = None

    # -- ref() and unref() --------------------------------------------------

    def test_ref_and_unref_are_idempotent_and_show_in_the_repr(self):
        w = self.start(targets.echo)
        self.assertNotIn("unref", repr(w))
        self.assertIsNone(w.unref())
        w.unref()
        self.assertIn("unref'd", repr(w))
        self.assertIsNone(w.ref())
        w.ref()
        self.assertNotIn("unref", repr(w))
        w.unref()
        w.post_message("still works")
        self.assertEqual(w.recv(TIMEOUT), "still works")

    def run_exit_script(self, calls):
        """Run EXIT_SCRIPT with calls (Python after the worker blocks);
        (pid of the worker or None, whether it finished its target)."""
        path = os.path.join(tempfile.mkdtemp(), "mark")
        self.addCleanup(os.rmdir, os.path.dirname(path))
        self.addCleanup(lambda: os.path.exists(path) and os.unlink(path))
        t0 = time.monotonic()
        out = self.run_script(EXIT_SCRIPT.format(path=path, mode=self.mode, calls=calls),
                              timeout=TIMEOUT)
        took = time.monotonic() - t0
        self.assertEqual((out.returncode, out.stderr), (0, ""))
        pid = int(out.stdout) if out.stdout.strip() != "None" else None
        return pid, os.path.exists(path), took

    def test_an_unrefd_worker_does_not_keep_the_program_alive(self):
        pid, finished, took = self.run_exit_script("w.unref()")
        # Ended at once, not given the (30 s) grace to finish.
        self.assertFalse(finished)
        self.assertLess(took, 25)
        if pid is not None:
            self.assertProcessEnds(pid, "an unref'd worker")

    def test_a_dropped_unrefd_worker_is_ended_at_exit(self):
        pid, finished, took = self.run_exit_script("w.unref(); pid = w.pid; del w; "
                                                   "import gc; gc.collect(); "
                                                   "w = type('W', (), {'pid': pid})")
        self.assertFalse(finished)
        self.assertLess(took, 25)
        if pid is not None:
            self.assertProcessEnds(pid, "a dropped unref'd worker")

    def test_a_refd_worker_is_waited_for_at_exit(self):
        # unref() then ref(): as if neither was called. The worker gets the
        # end of its stream and finishes its target within the grace.
        pid, finished, _ = self.run_exit_script("w.unref(); w.ref()")
        self.assertTrue(finished)

    # -- resource_usage() ---------------------------------------------------

    def test_resource_usage_has_the_documented_shape(self):
        w = self.start(resource_targets.work_when_asked)
        usage = w.resource_usage()
        self.assertEqual(set(usage), {"cpu_seconds", "max_rss_bytes"})
        self.assertIsInstance(usage["cpu_seconds"], float)
        self.assertGreaterEqual(usage["cpu_seconds"], 0.0)
        if self.mode == "process":
            self.assertIsInstance(usage["max_rss_bytes"], int)
            self.assertGreater(usage["max_rss_bytes"], 0)
        else:
            self.assertIsNone(usage["max_rss_bytes"])

    def test_resource_usage_grows_with_work_and_stays_after_exit(self):
        w = self.start(resource_targets.work_when_asked)
        w.post_message(0.0)
        self.assertEqual(w.recv(TIMEOUT), "done")
        before = w.resource_usage()["cpu_seconds"]
        w.post_message(0.3)
        self.assertEqual(w.recv(TIMEOUT), "done")
        during = w.resource_usage()["cpu_seconds"]
        self.assertGreaterEqual(during - before, 0.25)
        w._port._close_send()
        w.join(TIMEOUT)
        after = w.resource_usage()
        self.assertGreaterEqual(after["cpu_seconds"], during - 0.02)
        self.assertEqual(after, w.resource_usage())     # final

    def test_resource_usage_is_the_workers_own(self):
        # The parent's CPU time is not the worker's: it waits meanwhile.
        w = self.start(resource_targets.work_when_asked)
        w.post_message(0.0)
        self.assertEqual(w.recv(TIMEOUT), "done")
        before = w.resource_usage()["cpu_seconds"]
        end = time.thread_time() + 0.5
        while time.thread_time() < end:
            pass
        self.assertLess(w.resource_usage()["cpu_seconds"] - before, 0.25)

    # -- bad input ----------------------------------------------------------

    def test_bad_resource_limits_are_refused_before_anything_starts(self):
        live = len(_worker._live)
        mode = "process"
        cases = [
            (TypeError, [("max_memory_bytes", 100 * MB)]),
            (TypeError, "max_memory_bytes"),
            (TypeError, {"max_memory_bytes": "100"}),
            (TypeError, {"max_memory_bytes": 1.5e8}),
            (TypeError, {"max_memory_bytes": True}),
            (TypeError, {"max_cpu_seconds": "1"}),
            (TypeError, {"max_cpu_seconds": False}),
            (ValueError, {"max_memory_bytes": 0}),
            (ValueError, {"max_memory_bytes": -1}),
            (ValueError, {"max_cpu_seconds": 0}),
            (ValueError, {"max_cpu_seconds": -0.5}),
            (ValueError, {"max_cpu_seconds": math.nan}),
            (ValueError, {"max_cpu_seconds": math.inf}),
            (ValueError, {"max_memory_bytes": 1 << 64}),
            (ValueError, {"max_heap": 1}),
            (ValueError, {"max_memory_bytes": 100 * MB, "maxOldGenerationSizeMb": 1}),
        ]
        for exc, limits in cases:
            with self.subTest(limits=limits), self.assertRaises(exc):
                pw.Worker(targets.echo, mode=mode, resource_limits=limits)
        self.assertEqual(len(_worker._live), live)


@unittest.skipUnless(support.HAVE_SUBINTERPRETERS, support.NO_SUBINTERPRETERS)
class TestInterpreterResources(ResourceCases, support.LeakCheck):
    mode = "interpreter"

    def test_interpreter_mode_refuses_resource_limits(self):
        live = len(_worker._live)
        for limits in ({"max_memory_bytes": 200 * MB}, {"max_cpu_seconds": 1}, {}):
            with self.subTest(limits=limits), self.assertRaises(ValueError) as cm:
                pw.Worker(targets.echo, mode="interpreter", resource_limits=limits)
            self.assertIn("process", str(cm.exception))
        self.assertEqual(len(_worker._live), live)
        # A bad type is still a TypeError.
        with self.assertRaises(TypeError):
            pw.Worker(targets.echo, mode="interpreter", resource_limits=[1])


class TestProcessResources(ResourceCases, support.LeakCheck):
    mode = "process"

    def test_cpu_limit_ends_the_worker_with_a_worker_error(self):
        w = self.start(resource_targets.spin, resource_limits={"max_cpu_seconds": 1})
        self.assertEqual(w.recv(TIMEOUT), "spinning")
        with self.assertRaises(pw.WorkerError) as cm:
            w.recv(TIMEOUT)
        self.assertIn("max_cpu_seconds", str(cm.exception))
        with self.assertRaises(pw.WorkerError) as cm:
            w.join(TIMEOUT)
        self.assertIn("max_cpu_seconds", str(cm.exception))
        self.assertEqual(w.exit_code, -signal.SIGXCPU)
        self.assertNotIn("max_memory_bytes", str(cm.exception))
        self.assertGreater(w.resource_usage()["cpu_seconds"], 0.5)
        with self.assertRaises(EOFError):
            w.recv(TIMEOUT)

    def test_a_fractional_cpu_limit_is_rounded_up_to_a_second(self):
        w = self.start(resource_targets.spin, resource_limits={"max_cpu_seconds": 0.25})
        self.assertEqual(w.recv(TIMEOUT), "spinning")
        with self.assertRaisesRegex(pw.WorkerError, r"max_cpu_seconds'\] = 0\.25"):
            w.join(TIMEOUT)

    @unittest.skipIf(support.UNDER_ASAN, support.NO_MEMORY_LIMIT_UNDER_ASAN)
    def test_memory_limit_ends_the_worker_with_a_worker_error(self):
        w = self.start(resource_targets.allocate, 400 * MB, MB,
                       resource_limits={"max_memory_bytes": 200 * MB})
        self.assertEqual(w.recv(TIMEOUT), "allocating")
        with self.assertRaises(pw.WorkerError) as cm:
            w.recv(TIMEOUT)
        self.assertIn("max_memory_bytes", str(cm.exception))
        self.assertEqual(cm.exception.remote_type, "MemoryError")
        with self.assertRaisesRegex(pw.WorkerError, "max_memory_bytes"):
            w.join(TIMEOUT)
        self.assertEqual(w.exit_code, 1)
        # It got near the limit, not past it.
        self.assertLess(w.resource_usage()["max_rss_bytes"], 200 * MB)

    @unittest.skipIf(support.UNDER_ASAN, support.NO_MEMORY_LIMIT_UNDER_ASAN)
    def test_join_alone_names_the_memory_limit(self):
        w = self.start(resource_targets.allocate, 400 * MB, 8 * MB,
                       resource_limits={"max_memory_bytes": 200 * MB})
        with self.assertRaisesRegex(pw.WorkerError, "max_memory_bytes"):
            w.join(TIMEOUT)

    @unittest.skipIf(support.UNDER_ASAN, support.NO_MEMORY_LIMIT_UNDER_ASAN)
    def test_a_worker_within_its_limits_ends_as_usual(self):
        w = self.start(resource_targets.allocate, 50 * MB, MB,
                       resource_limits={"max_memory_bytes": 400 * MB,
                                        "max_cpu_seconds": 30})
        self.assertEqual(w.recv(TIMEOUT), "allocating")
        self.assertEqual(w.recv(TIMEOUT), "held")
        self.assertGreaterEqual(w.resource_usage()["max_rss_bytes"], 50 * MB)
        w.post_message("release")
        with self.assertRaises(EOFError):
            w.recv(TIMEOUT)
        w.join(TIMEOUT)
        self.assertEqual(w.exit_code, 0)
        self.assertGreaterEqual(w.resource_usage()["max_rss_bytes"], 50 * MB)

    def test_peak_rss_after_exit_is_the_workers_not_its_parents(self):
        # posix_spawn() runs the child on the parent's memory until its
        # exec(), and Linux keeps the parent's peak as the child's rusage.
        big = bytearray(256 * MB)
        big[::4096] = b"x" * len(range(0, len(big), 4096))
        w = self.start(targets.count_to, 1)
        self.assertEqual(list(w), [0])
        w.join(TIMEOUT)
        del big
        rss = w.resource_usage()["max_rss_bytes"]
        self.assertGreater(rss, 0)
        self.assertLess(rss, 200 * MB)
        # And for a worker killed by a signal (no report of its own).
        w = self.start(targets.sleep_forever)
        self.assertEqual(w.recv(TIMEOUT), "sleeping")
        seen = w.resource_usage()["max_rss_bytes"]
        os.kill(w.pid, signal.SIGKILL)
        with self.assertRaises(pw.WorkerError):
            w.recv(TIMEOUT)
        self.assertEqual(w.resource_usage()["max_rss_bytes"], seen)

    @unittest.skipIf(support.UNDER_ASAN, support.NO_MEMORY_LIMIT_UNDER_ASAN)
    def test_other_failures_of_a_limited_worker_are_not_blamed_on_a_limit(self):
        w = self.start(targets.send_then_raise, 0,
                       resource_limits={"max_memory_bytes": 400 * MB, "max_cpu_seconds": 30})
        with self.assertRaises(pw.WorkerError) as cm:
            w.recv(TIMEOUT)
        self.assertNotIn("resource_limits", str(cm.exception))
        w.join(TIMEOUT)
        # A MemoryError without a memory limit.
        w = self.start(resource_targets.allocate, 1 << 62, 1 << 61,
                       resource_limits={"max_cpu_seconds": 30})
        self.assertEqual(w.recv(TIMEOUT), "allocating")
        with self.assertRaises(pw.WorkerError) as cm:
            w.recv(TIMEOUT)
        self.assertEqual(cm.exception.remote_type, "MemoryError")
        self.assertNotIn("resource_limits", str(cm.exception))
        w.join(TIMEOUT)
        w = self.start(resource_targets.spin, resource_limits={"max_cpu_seconds": 30})
        self.assertEqual(w.recv(TIMEOUT), "spinning")
        w.terminate()
        w.join(TIMEOUT)       # no WorkerError: it was terminated
        self.assertEqual(w.exit_code, -signal.SIGTERM)

    @unittest.skipIf(support.UNDER_ASAN, support.NO_MEMORY_LIMIT_UNDER_ASAN)
    def test_limits_above_the_programs_own_are_capped_not_refused(self):
        # Raising a hard limit needs privilege: a worker gets at most what
        # its parent has.
        out = self.run_script(f"""
            import resource
            import pyshm_workers as pw, targets
            gib = 1 << 30
            resource.setrlimit(resource.RLIMIT_DATA, (gib, gib))
            resource.setrlimit(resource.RLIMIT_CPU, (600, 600))
            w = pw.Worker(targets.count_to, args=(1,), mode="process",
                          resource_limits={{"max_memory_bytes": 4 * gib,
                                            "max_cpu_seconds": 3600}})
            assert list(w) == [0]
            w.join(60)
            print(w.exit_code)
        """)
        self.assertEqual((out.returncode, out.stdout, out.stderr), (0, "0\n", ""))

    def test_auto_mode_with_resource_limits_is_process_mode(self):
        w = pw.Worker(targets.count_to, args=(1,), resource_limits={"max_cpu_seconds": 30})
        self.addCleanup(self.reap, w)
        self.assertEqual(w.mode, "process")
        self.assertEqual(list(w), [0])

    def test_empty_resource_limits_limit_nothing(self):
        w = self.start(targets.count_to, 2, resource_limits={})
        self.assertEqual(list(w), [0, 1])
        w.join(TIMEOUT)
        self.assertEqual(w.exit_code, 0)


if __name__ == "__main__":
    unittest.main()
