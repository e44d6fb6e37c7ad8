# SPDX-License-Identifier: GPL-2.0
"""The "pyshm_workers" logger (stdlib logging): workers starting and
ending with their exit codes, pool replacements and mode fallbacks (those
in test_auto_mode.py), at DEBUG and INFO; silent unless configured. And
the names workers' threads and processes carry (comm "pw:<name>"), which
python -m pyshm_workers stats and ps show."""

import logging
import os
import unittest

import pyshm_workers as pw

import real_targets
import support
import targets

TIMEOUT = 60


def comm_of(pid, tid=None):
    path = f"/proc/{pid}/comm" if tid is None else f"/proc/{pid}/task/{tid}/comm"
    with open(path) as f:
        return f.read().rstrip("\n")


class LoggingCases(support.Workers):
    def test_start_and_end_are_logged(self):
        with self.assertLogs("pyshm_workers", "DEBUG") as cm:
            w = self.start(targets.square, 3, name="logged")
            w.join(TIMEOUT)
        text = "\n".join(cm.output)
        self.assertRegex(text, r"DEBUG:pyshm_workers:worker 'logged' started \(\w+ mode")
        self.assertIn("worker 'logged' ended, exit code 0", text)

    def test_a_failed_worker_is_logged_at_info(self):
        with self.assertLogs("pyshm_workers", "INFO") as cm:
            w = self.start(targets.exit_with_status, 3, name="fails")
            w.join(TIMEOUT)
        self.assertIn("INFO:pyshm_workers:worker 'fails' ended, exit code 3", cm.output)

    def test_nothing_at_info_for_a_clean_worker(self):
        with self.assertNoLogs("pyshm_workers", "INFO"):
            w = self.start(targets.square, 3)
            w.join(TIMEOUT)

    def test_pool_replacements_are_logged(self):
        p = pw.WorkerPool(1, mode=self.mode)
        self.addCleanup(p.shutdown, cancel_futures=True)
        p.submit(targets.square, 1).result(TIMEOUT)
        with self.assertLogs("pyshm_workers", "INFO") as cm:
            with self.assertRaises(pw.WorkerError):
                p.submit(targets.die).result(TIMEOUT)
            p.submit(targets.square, 1).result(TIMEOUT)
        self.assertTrue(any("replacing it" in line for line in cm.output), cm.output)
        with self.assertLogs("pyshm_workers", "DEBUG") as cm:
            q = pw.WorkerPool(1, mode=self.mode, max_tasks_per_child=1)
            q.submit(targets.square, 1).result(TIMEOUT)
            q.submit(targets.square, 1).result(TIMEOUT)
            q.shutdown()
        self.assertTrue(any("replaced by a" in line for line in cm.output), cm.output)


class NameCases(support.Workers):
    def test_the_worker_thread_is_named_after_the_worker(self):
        w = self.start(real_targets.my_comm, name="alpha")
        self.assertEqual(w.recv(TIMEOUT), "pw:alpha")

    def test_long_names_are_cut_to_15_bytes(self):
        w = self.start(real_targets.my_comm, name="a-very-long-worker-name")
        self.assertEqual(w.recv(TIMEOUT), "pw:a-very-long-")

    def test_a_cut_never_splits_a_character(self):
        w = self.start(real_targets.my_comm, name="abcdefghijkλμ")
        got = w.recv(TIMEOUT)
        self.assertEqual(got, "pw:abcdefghijk")    # λ would end at byte 16

    def test_the_parent_keeps_its_own_name(self):
        before = comm_of(os.getpid())
        w = self.start(real_targets.my_comm, name="beta")
        w.recv(TIMEOUT)
        self.assertEqual(comm_of(os.getpid()), before)
        self.assertFalse(before.startswith("pw:"))


class TestProcessNames(NameCases, LoggingCases, support.LeakCheck):
    mode = "process"

    def test_ps_sees_the_process_worker_by_name(self):
        w = self.start(targets.echo, name="gamma")
        w.post_message(1)
        w.recv(TIMEOUT)             # it has started
        self.assertEqual(comm_of(w.pid), "pw:gamma")


@unittest.skipUnless(support.HAVE_SUBINTERPRETERS, support.NO_SUBINTERPRETERS)
class TestInterpreterNames(NameCases, LoggingCases, support.LeakCheck):
    mode = "interpreter"

    def test_the_thread_is_seen_from_the_parent(self):
        w = self.start(targets.echo, name="delta")
        w.post_message(1)
        w.recv(TIMEOUT)
        names = [comm_of(os.getpid(), tid) for tid in os.listdir("/proc/self/task")]
        self.assertIn("pw:delta", names)


class TestSilentByDefault(support.Workers, unittest.TestCase):
    def test_the_logger_has_a_null_handler(self):
        w = pw.Worker(targets.square, args=(1,), mode="process")
        w.join(TIMEOUT)
        logger = logging.getLogger("pyshm_workers")
        self.assertTrue(any(isinstance(h, logging.NullHandler) for h in logger.handlers))

    def test_an_unconfigured_program_prints_nothing(self):
        out = self.run_script("""
            import logging, pyshm_workers as pw, targets
            logging.getLogger().setLevel(logging.DEBUG)   # no handler set
            w = pw.Worker(targets.exit_with_status, args=(2,), mode="process")
            w.join(60)
            print(w.exit_code)
        """)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.strip(), "2")
        self.assertEqual(out.stderr, "")


if __name__ == "__main__":
    unittest.main()
