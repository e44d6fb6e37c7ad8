# SPDX-License-Identifier: GPL-2.0
"""The process template (pymod/worker_template.c): process workers forked
from a Python started once per program, with the environment, cwd and
stdio of the moment they are asked for; a new template for a new
environment, a killed one replaced, a junk request refused; workers with
resource limits, and every worker under PYSHM_PROCESS_START=spawn, started
afresh."""

import errno
import os
import signal
import socket
import struct
import sys
import tempfile
import time
import unittest

import pyshm_workers as pw
from pyshm_workers import _core

import support
import template_targets as T


class TestTemplate(support.Workers, support.LeakCheck):
    mode = "process"

    def setUp(self):
        super().setUp()
        self.env("PYSHM_PROCESS_START", None)

    def env(self, name, value):
        """os.environ[name] = value (None: unset) for this test."""
        old = os.environ.get(name)
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
        self.addCleanup(self.restore, name, old)

    @staticmethod
    def restore(name, old):
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old

    def origin(self, *args, **kw):
        w = self.start(T.origin, *args, **kw)
        o = w.recv(support.TIMEOUT)
        w.join(support.TIMEOUT)
        self.assertEqual(w.exit_code, 0)
        return o

    def test_workers_are_forked_by_this_programs_template(self):
        a, b = self.origin(), self.origin()
        for o in (a, b):
            self.assertTrue(o["from_template"], o)
            self.assertEqual(o["creator"], os.getpid())
            self.assertEqual(o["argv"][0], "-c")
            self.assertEqual(o["stdio"], [True, True, True])
        self.assertEqual(a["ppid"], b["ppid"], "one template for both")
        self.assertGreaterEqual(_core._template_fd(), 0)

    def test_each_gets_the_environment_and_cwd_of_now(self):
        first = self.origin("PYSHM_TEST_TEMPLATE")
        self.assertIsNone(first["env"])
        self.env("PYSHM_TEST_TEMPLATE", "one")
        old_cwd = os.getcwd()
        self.addCleanup(os.chdir, old_cwd)
        with tempfile.TemporaryDirectory() as d:
            os.chdir(d)
            second = self.origin("PYSHM_TEST_TEMPLATE")
            os.chdir(old_cwd)
        self.assertEqual(second["env"], "one")
        self.assertEqual(second["cwd"], os.path.realpath(d))
        self.assertTrue(second["from_template"])
        self.assertNotEqual(second["ppid"], first["ppid"], "a new environment, a new template")
        # The one let go of ends once its workers have (a zombie until
        # the next template is asked for reaps it).
        deadline = time.monotonic() + support.TIMEOUT
        while T.process_state(first["ppid"]) not in (None, "Z"):
            self.assertLess(time.monotonic(), deadline, "the old template lives on")
            time.sleep(0.02)

    def test_each_gets_the_stdio_of_now(self):
        saved = [os.dup(1), os.dup(2)]
        with tempfile.TemporaryFile() as f:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(f.fileno(), 1)
            os.dup2(f.fileno(), 2)
            try:
                w = self.start(T.say, "from the worker")
                self.assertEqual(w.recv(support.TIMEOUT), "said")
                w.join(support.TIMEOUT)
            finally:
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
                for fd in saved:
                    os.close(fd)
            f.seek(0)
            self.assertEqual(f.read().decode().count("from the worker"), 2)

    def test_exit_codes_and_signals_come_through_the_template(self):
        w = self.start(T.wait_then_exit, 7)
        w.post_message("go")
        w.join(support.TIMEOUT)
        self.assertEqual(w.exit_code, 7)
        w = self.start(T.wait_then_exit, 0)
        os.kill(w.pid, signal.SIGKILL)
        w.join(support.TIMEOUT)
        self.assertEqual(w.exit_code, -signal.SIGKILL)
        self.assertEqual(w.resource_usage()["cpu_seconds"] >= 0, True)

    def test_spawn_is_asked_for(self):
        self.env("PYSHM_PROCESS_START", "spawn")
        o = self.origin()
        self.assertFalse(o["from_template"])
        self.assertEqual(o["ppid"], os.getpid())

    def test_a_bad_start_method_is_refused(self):
        self.env("PYSHM_PROCESS_START", "forkserver")
        with self.assertRaisesRegex(ValueError, "PYSHM_PROCESS_START=forkserver"):
            pw.Worker(T.origin, mode="process")

    def test_workers_with_resource_limits_start_afresh(self):
        o = self.origin(resource_limits={"max_cpu_seconds": 60})
        self.assertFalse(o["from_template"])
        self.assertEqual(o["ppid"], os.getpid())

    def test_a_killed_template_is_replaced(self):
        old = self.origin()["ppid"]
        os.kill(old, signal.SIGKILL)
        os.waitpid(old, 0)
        o = self.origin()
        self.assertTrue(o["from_template"])
        self.assertNotEqual(o["ppid"], old)

    def test_a_worker_outlives_its_killed_template(self):
        tpid = self.origin()["ppid"]
        w = self.start(T.wait_then_exit, 3)
        self.assertEqual(T.parent_pid(w.pid), tpid)
        os.kill(tpid, signal.SIGKILL)
        os.waitpid(tpid, 0)
        w.post_message("go")
        w.join(support.TIMEOUT)
        # Its reaper is gone: the code is not known.
        self.assertEqual(w.exit_code, -1)

    def test_ctrl_c_is_not_for_the_template(self):
        first = self.origin()["ppid"]
        os.kill(first, signal.SIGINT)
        time.sleep(0.1)
        self.assertEqual(self.origin()["ppid"], first)

    def test_a_junk_request_is_refused_and_the_template_serves_on(self):
        first = self.origin()["ppid"]
        s = socket.socket(fileno=os.dup(_core._template_fd()))
        try:
            # Too short, then a reserved field set with no fds.
            for junk in (b"x", struct.pack("4I", 0, 0, 0, 1)):
                s.send(junk)
                pid, err = struct.unpack("2i", s.recv(64))
                self.assertEqual((pid, err), (-1, errno.EINVAL))
        finally:
            s.close()
        self.assertEqual(self.origin()["ppid"], first)

    def test_a_fork_child_has_a_template_of_its_own(self):
        parents = self.origin()["ppid"]

        def child():
            w = pw.Worker(T.origin, mode="process")
            o = w.recv(support.TIMEOUT)
            w.join(support.TIMEOUT)
            return (o["from_template"] and o["creator"] == os.getpid() and
                    o["ppid"] != parents and w.exit_code == 0)

        self.assertEqual(support.fork_and_check(child), 0)
        self.assertEqual(self.origin()["ppid"], parents)

    def test_the_template_ends_after_the_program(self):
        r = self.run_script("""
            import pyshm_workers as pw, template_targets as T
            w = pw.Worker(T.origin, mode="process")
            print(w.recv(60)["ppid"], flush=True)
            w.join(60)
        """)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertProcessEnds(int(r.stdout), "the template")


if __name__ == "__main__":
    unittest.main()
