# SPDX-License-Identifier: GPL-2.0
"""Worker: messaging, errors, exit codes, termination, lifecycle, sharing
memory, leaks — each in interpreter mode (3.12+) and process mode."""

import asyncio
import gc
import os
import signal
import sys
import textwrap
import threading
import time
import unittest

import pyshm_workers as pw
from pyshm_workers import _core

import support
import targets

TIMEOUT = 60


class WorkerCases(support.Workers):
    mode = None


    # -- construction --------------------------------------------------------

    def test_mode_and_name(self):
        w = self.start(targets.count_to, 0, name="counter")
        self.assertEqual(w.mode, self.mode)
        self.assertEqual(w.name, "counter")
        w.join(TIMEOUT)
        self.assertIn("counter", repr(w))
        w2 = self.start(targets.count_to, 0)
        self.assertTrue(w2.name.startswith("Worker-"))

    def test_arguments_and_worker_data_arrive(self):
        w = self.start(targets.report, 1, [2, 3], kwargs={"key": {"a": (4,)}},
                       worker_data={"cfg": 5})
        got = w.recv(TIMEOUT)
        self.assertEqual(got["args"], (1, [2, 3]))
        self.assertEqual(got["kwargs"], {"key": {"a": (4,)}})
        self.assertEqual(got["worker_data"], {"cfg": 5})
        self.assertTrue(got["in_worker"])
        self.assertTrue(got["parent_is_port"])
        if self.mode == "process":
            self.assertNotEqual(got["pid"], os.getpid())
        else:
            self.assertEqual(got["pid"], os.getpid())

    def test_target_by_name(self):
        w = self.start("targets:count_to", 3)
        self.assertEqual(list(w), [0, 1, 2])

    def test_worker_sees_the_environment_of_its_start(self):
        self.start(targets.count_to, 0).join(TIMEOUT)   # may leave a spare
        os.environ["PYSHM_TEST_ENV"] = "fresh"
        self.addCleanup(os.environ.pop, "PYSHM_TEST_ENV", None)
        w = self.start(targets.report_env, "PYSHM_TEST_ENV")
        self.assertEqual(w.recv(TIMEOUT), "fresh")

    def test_main_interpreter_is_not_a_worker(self):
        self.assertFalse(pw.in_worker())
        self.assertIsNone(pw.parent)
        self.assertIsNone(pw.worker_data)

    def test_bad_targets_are_refused(self):
        # Without cloudpickle, a function the worker cannot import by name
        # cannot be cloned across; it is a bad value too: TargetError.
        def local():
            pass
        with support.without_cloudpickle():
            for target in (lambda: None, local):
                with self.assertRaises(pw.TargetError) as cm:
                    pw.Worker(target, mode=self.mode)
                self.assertIsInstance(cm.exception, pw.DataCloneError)
                self.assertIsInstance(cm.exception, ValueError)
                self.assertIn("install cloudpickle", str(cm.exception))
        with self.assertRaises(TypeError):
            pw.Worker(42, mode=self.mode)
        with self.assertRaises(ValueError):
            pw.Worker("no_colon", mode=self.mode)
        with self.assertRaises(ValueError):
            pw.Worker(":f", mode=self.mode)

    def test_bad_arguments_are_refused(self):
        with self.assertRaises(ValueError):
            pw.Worker(targets.echo, mode="thread")
        with self.assertRaises(TypeError):
            pw.Worker(targets.echo, kwargs=[1], mode=self.mode)

    def test_unclonable_argument_raises_before_anything_starts(self):
        before = _core.stats()["regions"]
        with self.assertRaises(pw.DataCloneError) as cm:
            pw.Worker(targets.report, args=(threading.Lock(),), mode=self.mode)
        self.assertIn("lock", str(cm.exception))
        # Where it sat is said in the caller's terms, not pyshm's message.
        self.assertTrue(str(cm.exception).endswith(" at args[0]"), str(cm.exception))
        with self.assertRaisesRegex(pw.DataCloneError, r" at kwargs\['x'\]$"):
            pw.Worker(targets.report, kwargs={"x": threading.Lock()}, mode=self.mode)
        with self.assertRaisesRegex(pw.DataCloneError, r" at worker_data\[0\]$"):
            pw.Worker(targets.report, worker_data=[threading.RLock()], mode=self.mode)
        gc.collect()
        self.assertEqual(_core.stats()["regions"], before)

    # -- messages ------------------------------------------------------------

    def test_echo_keeps_order(self):
        w = self.start(targets.echo)
        for i in range(200):
            w.post_message({"i": i, "payload": [i] * (i % 7)})
        for i in range(200):
            self.assertEqual(w.recv(TIMEOUT), {"i": i, "payload": [i] * (i % 7)})

    def test_large_messages_go_out_of_line(self):
        w = self.start(targets.echo)
        big = bytes(range(256)) * 4096 * 4     # 4 MiB
        w.post_message(big)
        self.assertEqual(w.recv(TIMEOUT), big)

    def test_recv_timeout(self):
        w = self.start(targets.echo)
        t0 = time.monotonic()
        with self.assertRaises(TimeoutError):
            w.recv(timeout=0.1)
        self.assertGreaterEqual(time.monotonic() - t0, 0.09)
        with self.assertRaises(TimeoutError):
            w.recv(0)

    def test_iteration_ends_when_the_worker_exits(self):
        w = self.start(targets.count_to, 50)
        self.assertEqual(list(w), list(range(50)))
        w.join(TIMEOUT)
        with self.assertRaises(EOFError):
            w.recv(TIMEOUT)

    def test_messages_before_exit_then_eof(self):
        w = self.start(targets.count_to, 5)
        w.join(TIMEOUT)
        self.assertEqual(w.exit_code, 0)
        self.assertEqual([w.recv(TIMEOUT) for _ in range(5)], list(range(5)))
        with self.assertRaises(EOFError):
            w.recv(TIMEOUT)
        with self.assertRaises(EOFError):
            w.recv(TIMEOUT)

    def test_many_threads_posting_keep_their_order(self):
        w = self.start(targets.echo)
        n, per = 4, 300

        def post(k):
            for i in range(per):
                w.post_message((k, i))

        threads = [threading.Thread(target=post, args=(k,)) for k in range(n)]
        for t in threads:
            t.start()
        seen = [[] for _ in range(n)]
        for _ in range(n * per):
            k, i = w.recv(TIMEOUT)
            seen[k].append(i)
        for t in threads:
            t.join()
        self.assertEqual(seen, [list(range(per))] * n)

    def test_many_workers_each_in_order(self):
        ws = [self.start(targets.count_to, 500) for _ in range(4)]
        for w in ws:
            self.assertEqual(list(w), list(range(500)))

    def test_full_channel_blocks_the_sender_and_loses_nothing(self):
        w = self.start(targets.slow_reader, 0.5)
        msg = b"x" * 30000
        t0 = time.monotonic()
        blocked = False
        for i in range(200):
            before = time.monotonic()
            w.post_message(msg, timeout=TIMEOUT)
            blocked |= time.monotonic() - before > 0.05
        self.assertTrue(blocked, "the channel never filled")
        w._port._close_send()
        self.assertEqual(w.recv(TIMEOUT), 200)
        self.assertLess(time.monotonic() - t0, TIMEOUT)

    def test_post_timeout_when_nobody_reads(self):
        w = self.start(targets.sleep_forever)
        self.assertEqual(w.recv(TIMEOUT), "sleeping")
        with self.assertRaises(TimeoutError):
            for _ in range(1000):
                w.post_message(b"y" * 30000, timeout=0.2)

    def test_asyncio_arecv(self):
        w = self.start(targets.echo)

        async def main():
            w.post_message("a")
            first = await asyncio.wait_for(w.arecv(), TIMEOUT)
            w.post_message("b")
            second = await asyncio.wait_for(w.arecv(), TIMEOUT)
            return first, second

        self.assertEqual(asyncio.run(main()), ("a", "b"))

    def test_asyncio_arecv_waits_without_blocking_the_loop(self):
        w = self.start(targets.echo)

        async def main():
            ticks = 0
            task = asyncio.ensure_future(w.arecv())
            while not task.done() and ticks < 5:
                await asyncio.sleep(0.01)
                ticks += 1
            w.post_message("late")
            return ticks, await asyncio.wait_for(task, TIMEOUT)

        ticks, got = asyncio.run(main())
        self.assertEqual(ticks, 5)
        self.assertEqual(got, "late")

    def test_asyncio_arecv_end_of_stream(self):
        w = self.start(targets.count_to, 1)

        async def main():
            first = await w.arecv()
            with self.assertRaises(EOFError):
                await asyncio.wait_for(w.arecv(), TIMEOUT)
            return first

        self.assertEqual(asyncio.run(main()), 0)

    def test_asyncio_inside_the_worker(self):
        # In a process of its own: CPython 3.12 aborts at exit after
        # asyncio ran in a subinterpreter, unless the worker works around it.
        out = self.run_script(f"""
            import pyshm_workers as pw, targets
            w = pw.Worker(targets.async_echo_once, mode={self.mode!r})
            w.post_message({{"q": 1}})
            assert w.recv(60) == ("async", {{"q": 1}})
            w.join(60)
            assert w.exit_code == 0, w.exit_code
            print("ok")
        """)
        self.assertEqual((out.returncode, out.stdout), (0, "ok\n"), out.stderr)
        self.assertEqual(out.stderr, "")    # nothing "ignored" at its end

    def test_on_message_callback(self):
        got = []
        done = threading.Event()
        w = self.start(targets.count_to, 10)

        def on_message(msg):
            got.append(msg)
            if len(got) == 10:
                done.set()

        w.on_message = on_message
        self.assertTrue(done.wait(TIMEOUT))
        self.assertEqual(got, list(range(10)))
        with self.assertRaises(TypeError):
            w.on_message = 5

    def test_events_wait_for_their_callback(self):
        got, errors = [], []
        done = threading.Event()
        w = self.start(targets.send_then_raise, 3)
        # Only on_error: the messages that come meanwhile are kept...
        w.on_error = lambda e: (errors.append(e), done.set())
        w.join(TIMEOUT)
        self.assertEqual(errors, [])
        # ...and delivered in order, the error after them.
        w.on_message = got.append
        self.assertTrue(done.wait(TIMEOUT))
        self.assertEqual(got, [0, 1, 2])
        self.assertEqual(errors[0].remote_message, "bad value 3")

    def test_a_raising_callback_is_reported_and_dispatching_goes_on(self):
        got, reported = [], []
        done = threading.Event()
        w = self.start(targets.count_to, 3)
        hook = sys.unraisablehook
        sys.unraisablehook = reported.append
        self.addCleanup(setattr, sys, "unraisablehook", hook)

        def on_message(msg):
            got.append(msg)
            if msg == 2:
                done.set()
            if msg == 0:
                raise RuntimeError("callback failed")

        w.on_message = on_message
        self.assertTrue(done.wait(TIMEOUT))
        self.assertEqual(got, [0, 1, 2])
        self.assertEqual(len(reported), 1)
        self.assertIsInstance(reported[0].exc_value, RuntimeError)
        self.assertIn("on_message", reported[0].err_msg)

    def test_callbacks_in_a_worker_of_a_worker(self):
        w = self.start(targets.callbacks_in_worker, worker_data=self.mode)
        self.assertEqual(w.recv(TIMEOUT), [0, 1, 2])
        w.join(TIMEOUT)
        self.assertEqual(w.exit_code, 0)

    def test_on_error_callback(self):
        errors = []
        done = threading.Event()
        w = self.start(targets.send_then_raise, 0)
        w.on_error = lambda e: (errors.append(e), done.set())
        w.on_message = lambda m: None
        self.assertTrue(done.wait(TIMEOUT))
        self.assertIsInstance(errors[0], pw.WorkerError)

    # -- errors and exit codes ----------------------------------------------

    def test_target_exception_becomes_worker_error(self):
        w = self.start(targets.send_then_raise, 3)
        self.assertEqual([w.recv(TIMEOUT) for _ in range(3)], [0, 1, 2])
        with self.assertRaises(pw.WorkerError) as cm:
            w.recv(TIMEOUT)
        err = cm.exception
        self.assertEqual(err.remote_type, "ValueError")
        self.assertEqual(err.remote_message, "bad value 3")
        self.assertIn("send_then_raise", err.remote_traceback)
        self.assertIn("Traceback", str(err))
        self.assertIsInstance(err.__cause__, ValueError)
        self.assertEqual(err.__cause__.args, ("bad value 3",))
        with self.assertRaises(EOFError):
            w.recv(TIMEOUT)
        w.join(TIMEOUT)
        self.assertEqual(w.exit_code, 1)

    def test_unclonable_exception_is_still_reported(self):
        w = self.start(targets.raise_unclonable)
        with self.assertRaises(pw.WorkerError) as cm:
            w.recv(TIMEOUT)
        self.assertIn("Local", cm.exception.remote_type)
        self.assertIn("cannot be cloned by reference", str(cm.exception))

    def test_end_of_stream_comes_with_the_exit_code(self):
        w = self.start(targets.count_to, 3)
        self.assertEqual(list(w), [0, 1, 2])
        # No join(): EOF means the worker has exited.
        self.assertEqual(w.exit_code, 0)
        self.assertFalse(w.is_alive())
        w = self.start(targets.send_then_raise, 0)
        with self.assertRaises(pw.WorkerError):
            w.recv(TIMEOUT)
        with self.assertRaises(EOFError):
            w.recv(TIMEOUT)
        self.assertEqual(w.exit_code, 1)

    def test_iteration_raises_worker_error(self):
        w = self.start(targets.send_then_raise, 2)
        got = []
        with self.assertRaises(pw.WorkerError):
            for msg in w:
                got.append(msg)
        self.assertEqual(got, [0, 1])

    def test_sys_exit_code(self):
        w = self.start(targets.exit_with, 3)
        self.assertEqual(w.recv(TIMEOUT), "bye")
        w.join(TIMEOUT)
        self.assertEqual(w.exit_code, 3)
        self.assertFalse(w.is_alive())

    def test_hard_exit_is_a_worker_error(self):
        # In a program of its own: os._exit() in an interpreter worker
        # used to end the whole process.
        out = self.run_script(f"""
            import pyshm_workers as pw, targets
            w = pw.Worker(targets.hard_exit, args=(3,), mode={self.mode!r})
            assert w.recv(60) == "bye"
            try:
                w.recv(60)
            except pw.WorkerError as err:
                assert "code 3" in str(err), str(err)
                # Nothing was raised over there to describe.
                assert err.remote_type is None and err.remote_traceback is None
            else:
                raise AssertionError("no WorkerError")
            try:
                w.recv(60)
            except EOFError:
                pass
            assert w.exit_code == 3, w.exit_code
            print("ok")
        """)
        self.assertEqual((out.returncode, out.stdout, out.stderr), (0, "ok\n", ""))

    def test_hard_exit_zero_is_a_plain_end(self):
        w = self.start(targets.hard_exit, 0)
        self.assertEqual(w.recv(TIMEOUT), "bye")
        with self.assertRaises(EOFError):
            w.recv(TIMEOUT)
        self.assertEqual(w.exit_code, 0)

    def test_hard_exit_from_a_thread_ends_the_worker_at_once(self):
        w = self.start(targets.exit_in_a_thread, 5)
        self.assertEqual(w.recv(TIMEOUT), "exiting")
        w.join(TIMEOUT)
        self.assertEqual(w.exit_code, 5)
        # As in a process: no finally block of the target ran.
        with self.assertRaises(pw.WorkerError):
            w.recv(TIMEOUT)

    def test_hard_exit_cannot_be_swallowed(self):
        w = self.start(targets.exit_swallowed, 6)
        with self.assertRaises(pw.WorkerError) as cm:
            w.recv(TIMEOUT)     # neither "swallowed" nor "went on"
        self.assertIn("code 6", str(cm.exception))
        self.assertEqual(w.exit_code, 6)

    def test_hard_exit_in_a_finally_block(self):
        w = self.start(targets.exit_in_finally, 4)
        self.assertEqual(w.recv(TIMEOUT), "raising")
        with self.assertRaises(pw.WorkerError) as cm:
            w.recv(TIMEOUT)
        self.assertIsNone(cm.exception.remote_type)    # the ValueError is not reported
        self.assertEqual(w.exit_code, 4)

    def test_join_timeout_and_is_alive(self):
        w = self.start(targets.sleep_forever)
        self.assertEqual(w.recv(TIMEOUT), "sleeping")
        t0 = time.monotonic()
        w.join(0.1)
        self.assertGreaterEqual(time.monotonic() - t0, 0.09)
        self.assertTrue(w.is_alive())
        self.assertIsNone(w.exit_code)

    # -- terminate -----------------------------------------------------------

    def check_terminate(self, target, first, *args):
        w = self.start(target, *args)
        self.assertEqual(w.recv(TIMEOUT), first)
        t0 = time.monotonic()
        w.terminate()
        w.join(TIMEOUT)
        self.assertFalse(w.is_alive())
        self.assertLess(time.monotonic() - t0, 10)
        self.assertLess(w.exit_code, 0)
        w.terminate()   # again: harmless
        return w

    def test_terminate_during_sleep(self):
        self.check_terminate(targets.sleep_forever, "sleeping")

    def test_terminate_during_recv(self):
        self.check_terminate(targets.recv_forever, "receiving")

    def test_terminate_busy_python_code(self):
        self.check_terminate(targets.spin_forever, "spinning")

    def test_terminate_during_atomics_wait(self):
        a = pw.Int32Array(pw.SharedArrayBuffer(8))
        self.check_terminate(targets.wait_forever_on, "waiting", a)

    def test_terminate_stops_code_that_swallows_system_exit(self):
        self.check_terminate(targets.swallow_forever, "swallowing")

    def test_exit_with_a_worker_swallowing_system_exit_ends_it(self):
        out = self.run_script(f"""
            import pyshm_workers as pw, targets
            w = pw.Worker(targets.swallow_forever, mode={self.mode!r})
            assert w.recv(60) == "swallowing"
        """)
        self.assertEqual((out.returncode, out.stderr), (0, ""))

    def test_terminate_during_a_send_to_a_full_ring(self):
        w = self.start(targets.post_forever)
        self.assertEqual(w.recv(TIMEOUT), "posting")
        time.sleep(0.3)     # its sends to us fill the ring
        t0 = time.monotonic()
        w.terminate()
        w.join(TIMEOUT)
        self.assertFalse(w.is_alive())
        self.assertLess(time.monotonic() - t0, 10)

    def test_a_send_to_a_full_ring_is_interrupted_by_a_signal(self):
        w = self.start(targets.sleep_forever)
        self.assertEqual(w.recv(TIMEOUT), "sleeping")

        def interrupt(signum, frame):
            raise KeyboardInterrupt
        old = signal.signal(signal.SIGALRM, interrupt)
        self.addCleanup(signal.signal, signal.SIGALRM, old)
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        t0 = time.monotonic()
        with self.assertRaises(KeyboardInterrupt):
            while True:
                w.post_message(b"x" * 4096)
        self.assertLess(time.monotonic() - t0, 10)

    def test_a_pool_in_a_worker_ends_with_it(self):
        w = self.start(targets.pool_in_worker, worker_data=self.mode)
        self.assertEqual(w.recv(TIMEOUT), [0, 1, 4, 9, 16])
        w.join(TIMEOUT)
        self.assertEqual(w.exit_code, 0)

    def test_terminate_then_recv_drains_then_eof(self):
        w = self.check_terminate(targets.recv_forever, "receiving")
        with self.assertRaises(EOFError):
            w.recv(TIMEOUT)

    # -- context manager -----------------------------------------------------

    def test_context_manager_joins(self):
        with pw.Worker(targets.echo, mode=self.mode) as w:
            w.post_message(1)
            self.assertEqual(w.recv(TIMEOUT), 1)
        self.assertFalse(w.is_alive())
        self.assertEqual(w.exit_code, 0)

    def test_context_manager_terminates_on_error(self):
        with self.assertRaises(KeyError):
            with pw.Worker(targets.sleep_forever, mode=self.mode) as w:
                self.assertEqual(w.recv(TIMEOUT), "sleeping")
                raise KeyError("boom")
        self.assertFalse(w.is_alive())
        self.assertLess(w.exit_code, 0)

    # -- shared memory ---------------------------------------------------------

    def test_sab_is_shared_not_copied(self):
        sab = pw.SharedArrayBuffer(1 << 20)
        w = self.start(targets.write_sab, sab, 1000, b"from the worker")
        self.assertEqual(w.recv(TIMEOUT), "written")
        self.assertEqual(bytes(memoryview(sab)[1000:1015]), b"from the worker")

    def test_sab_posted_after_start(self):
        w = self.start(targets.echo)
        sab = pw.SharedArrayBuffer(64)
        w.post_message(sab)
        back = w.recv(TIMEOUT)
        memoryview(back)[3] = 9
        self.assertEqual(memoryview(sab)[3], 9)

    def test_atomics_coordinate_parent_and_workers(self):
        a = pw.Int32Array(pw.SharedArrayBuffer(8))
        ws = [self.start(targets.atomics_increment, a, 5000) for _ in range(3)]
        deadline = time.monotonic() + TIMEOUT
        while a.load(1) < 3 and time.monotonic() < deadline:
            a.wait(1, a.load(1), 1)
        self.assertEqual(a.load(1), 3)
        self.assertEqual(a.load(0), 15000)
        for w in ws:
            w.join(TIMEOUT)

    def test_parent_notifies_waiting_workers(self):
        a = pw.Int32Array(pw.SharedArrayBuffer(8))
        ws = [self.start(targets.atomics_wait_go, a) for _ in range(2)]
        time.sleep(0.1)
        a.store(0, 42)
        a.notify(0)
        for w in ws:
            self.assertEqual(w.recv(TIMEOUT), 42)

    def test_big_sab_hand_off(self):
        sab = pw.SharedArrayBuffer(64 << 20)
        memoryview(sab)[-1] = 7
        w = self.start(targets.echo)
        w.post_message(sab)
        back = w.recv(TIMEOUT)
        self.assertEqual(back.byte_length, 64 << 20)
        self.assertEqual(memoryview(back)[-1], 7)

    # -- nesting, leaks --------------------------------------------------------

    def test_nested_workers(self):
        w = self.start(targets.nested, 2, worker_data=self.mode)
        self.assertEqual(w.recv(TIMEOUT), (2, (1, "leaf")))
        w.join(TIMEOUT)
        self.assertEqual(w.exit_code, 0)

    def test_terminate_ends_the_workers_of_the_worker(self):
        # A process grandchild, so that its end can be seen from here.
        w = self.start(targets.nest_then_sleep, worker_data="process")
        pid = w.recv(TIMEOUT)
        w.terminate()
        w.join(TIMEOUT)
        self.assertProcessEnds(pid, "the worker's own worker")

    def test_exit_with_a_worker_blocked_in_c_neither_hangs_nor_aborts(self):
        out = self.run_script(f"""
            import pyshm_workers as pw, targets
            w = pw.Worker(targets.block_in_c, mode={self.mode!r})
            assert w.recv(60) == "blocking"
        """)
        if self.mode == "process":
            self.assertEqual(out.returncode, 0, out.stderr)    # SIGTERM reaches it
        else:
            self.assertEqual(out.returncode, 1, out.stderr)
            self.assertIn("did not stop after terminate()", out.stderr)
            # What holds it, truthfully: its thread waits in C, in Event.wait().
            self.assertRegex(out.stderr, r"Worker-1: its thread is blocked in a C call "
                                         r"\(at threading\.py:\d+ in wait\)")

    def test_a_dropped_worker_releases_its_channel_when_it_ends(self):
        self.start(targets.count_to, 0).join(TIMEOUT)    # the spare, if any
        gc.collect()
        regions, fds = _core.stats()["regions"], support.open_fds()
        a = pw.Int32Array(pw.SharedArrayBuffer(4))
        w = pw.Worker(targets.wait_for_flag, args=(a,), mode=self.mode)
        self.assertEqual(w.recv(TIMEOUT), "waiting")
        handle = w._handle
        del w                           # while it runs
        gc.collect()
        self.assertTrue(handle.alive)
        a.store(0, 1)
        a.notify(0)
        self.assertTrue(handle.join(TIMEOUT))
        del a
        # No new Worker() and no exit: the end of the worker frees it all.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            gc.collect()
            now = (_core.stats()["regions"], support.open_fds())
            if now[0] <= regions and now[1] <= fds + 1:
                break
            time.sleep(0.02)
        self.assertEqual(_core.stats()["regions"], regions, "the channel's regions stayed")
        self.assertLessEqual(support.open_fds(), fds + 1, "the channel's fds stayed")

    def test_a_dropped_worker_runs_on_with_its_stream_open(self):
        a = pw.Int32Array(pw.SharedArrayBuffer(8))
        w = pw.Worker(targets.flag_then_report_stream, args=(a,), mode=self.mode)
        handle = w._handle
        self.addCleanup(handle.join, TIMEOUT)
        self.addCleanup(handle.terminate)
        self.assertEqual(w.recv(TIMEOUT), "waiting")
        del w
        gc.collect()
        a.store(0, 1)
        a.notify(0)
        # Its pw.parent did not see the end of the stream (recv() timed
        # out): the worker says so through the shared memory.
        deadline = time.monotonic() + TIMEOUT
        while a.load(1) == 0 and time.monotonic() < deadline:
            a.wait(1, 0, 1)
        self.assertEqual(a.load(1), 1)
        self.assertTrue(handle.join(TIMEOUT))
        self.assertEqual(handle.exit_code, 0)

    def test_a_dropped_worker_is_ended_at_exit(self):
        out = self.run_script(f"""
            import pyshm_workers as pw, targets
            w = pw.Worker(targets.echo, mode={self.mode!r})
            w.post_message("hi")
            assert w.recv(60) == "hi"
            print(w.pid, flush=True)
            del w
        """)
        self.assertEqual((out.returncode, out.stderr), (0, ""))
        if self.mode == "process":
            self.assertProcessEnds(int(out.stdout), "a dropped worker")

    def test_workers_at_exit_share_one_grace_period(self):
        out = self.run_script(f"""
            import time
            import pyshm_workers as pw, targets
            ws = [pw.Worker(targets.sleep_forever, mode={self.mode!r}) for _ in range(6)]
            for w in ws:
                assert w.recv(60) == "sleeping"
            print(time.monotonic(), flush=True)
        """)
        ended = time.monotonic()
        self.assertEqual((out.returncode, out.stderr), (0, ""))
        # 2 s of grace in all, then terminate(): it took 2 s per worker.
        self.assertLess(ended - float(out.stdout), 6)

    def test_exit_grace_lets_workers_finish_and_terminates_the_rest(self):
        from pyshm_workers import _worker
        done = [self.start(targets.echo) for _ in range(2)]
        asleep = [self.start(targets.sleep_forever) for _ in range(2)]
        for w in asleep:
            self.assertEqual(w.recv(TIMEOUT), "sleeping")
        self.assertEqual(_worker.shutdown_all(grace=0.5), [])
        self.assertEqual([w.exit_code for w in done], [0, 0])
        for w in asleep:
            self.assertLess(w.exit_code, 0)

    def run_fork_script(self, body):
        """Run body (after a worker w of self.mode answered) in a program
        of its own; its stdout, which ends with "ok"."""
        out = self.run_script(textwrap.dedent(f"""
            import multiprocessing, os
            import pyshm_workers as pw, targets
            w = pw.Worker(targets.echo, mode={self.mode!r})
            w.post_message("hi")
            assert w.recv(60) == "hi"
        """) + textwrap.dedent(body) + "print('ok', flush=True)\n",
            flags=("-W", "ignore::DeprecationWarning"))
        self.assertEqual((out.returncode, out.stderr), (0, ""))
        self.assertTrue(out.stdout.endswith("ok\n"), out.stdout)
        return out.stdout

    def test_a_fork_child_exits_with_its_own_status_and_leaves_the_workers_alone(self):
        # While a process worker runs, or once an interpreter worker ended.
        self.run_fork_script(f"""
            if {self.mode!r} == "interpreter":
                w._port._close_send()
                w.join(60)
            pid = os.fork()
            if pid == 0:
                print("child", flush=True)
                sys.exit(5)         # a normal exit: atexit runs there too
            assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 5
            if {self.mode!r} == "process":
                w.post_message("still")
                assert w.recv(60) == "still"
            ctx = multiprocessing.get_context("fork")
            p = ctx.Process(target=targets.exit_with_status, args=(6,))
            p.start()
            p.join(60)
            assert p.exitcode == 6, p.exitcode
            if {self.mode!r} == "process":
                w.post_message("again")
                assert w.recv(60) == "again"
        """)

    def test_no_regions_leak_after_workers(self):
        gc.collect()
        before = _core.stats()["regions"]
        for target, args in ((targets.echo_n, (1,)), (targets.send_then_raise, (1,)),
                             (targets.sleep_forever, ())):
            w = pw.Worker(target, args=args, mode=self.mode)
            w.post_message(pw.SharedArrayBuffer(4096))
            if target is targets.sleep_forever:
                w.recv(TIMEOUT)
                w.terminate()
            else:
                try:
                    while True:
                        w.recv(TIMEOUT)
                except (EOFError, pw.WorkerError):
                    pass
            w.join(TIMEOUT)
            del w
        gc.collect()
        self.assertEqual(_core.stats()["regions"], before)


@unittest.skipUnless(support.HAVE_SUBINTERPRETERS, support.NO_SUBINTERPRETERS)
class TestInterpreterWorker(WorkerCases, support.LeakCheck):
    mode = "interpreter"

    def test_terminate_lets_finally_blocks_run_within_the_grace(self):
        w = self.start(targets.clean_up_when_terminated)
        self.assertEqual(w.recv(TIMEOUT), "sleeping")
        w.terminate()
        self.assertEqual(w.recv(TIMEOUT), "cleaned up")
        w.join(TIMEOUT)
        self.assertEqual(w.exit_code, -15)

    def test_fork_is_refused_while_an_interpreter_worker_runs(self):
        # CPython's child would abort (3.13) or hang (3.12) clearing the
        # worker's interpreter: refused before anything is forked.
        self.run_fork_script("""
            for fork in (os.fork, lambda: multiprocessing.get_context("fork").Process(
                    target=targets.exit_with_status, args=(0,)).start()):
                try:
                    pid = fork()
                except RuntimeError as err:
                    assert "interpreter-mode worker" in str(err), err
                else:
                    if pid == 0:
                        os._exit(0)
                    if pid is not None:     # a child CPython left hanging
                        os.kill(pid, 9)
                        os.waitpid(pid, 0)
                    raise AssertionError("forked")
        """)

    def test_worker_calls_from_two_threads_do_not_deadlock(self):
        # A thread woken from its wait for the spare interpreter took the GIL
        # back holding the spare's lock, which a thread holding the GIL then
        # waited for (Worker() from two threads, now and then). _spare_stop()
        # (what a fork does first) waited the same way; a long switch interval
        # keeps the GIL here while the spare ends and wakes the other thread.
        out = self.run_script("""
            import threading, time
            import pyshm_workers as pw, targets
            from pyshm_workers import _core
            w = pw.Worker(targets.count_to, args=(0,), mode="interpreter")
            t = threading.Thread(target=_core._spare_stop, args=(False,))
            t.start()
            time.sleep(0.001)
            sys.setswitchinterval(5)
            t0 = time.monotonic()
            while time.monotonic() - t0 < 0.5:
                pass
            _core._spare_stop(False)
            sys.setswitchinterval(0.005)
            t.join()
            w.join()
            print("ok")
        """, timeout=30)
        self.assertEqual((out.returncode, out.stdout, out.stderr), (0, "ok\n", ""))

    def test_workers_importing_modules_in_a_loop_exit_cleanly(self):
        # The reproducer of an abort at exit (3.13: "free(): invalid
        # pointer", about one run in 20): workers started from several
        # threads import modules while the main interpreter imports too, and
        # the last ones are left running at exit. Several runs.
        for run in range(3):
            out = self.run_script(f"""
                import importlib, threading
                import pyshm_workers as pw, targets
                mods = ["json", "decimal", "asyncio", "datetime", "fractions", "re",
                        "statistics", "enum", "dataclasses", "typing", "pathlib",
                        "logging", "uuid", "ipaddress", "email.message", "csv",
                        "xml.etree.ElementTree", "heapq", "random", "hashlib", "ssl"]
                left = []

                def loop(k):
                    for i in range(3):
                        names = [mods[(k * 7 + i * 3 + j) % len(mods)] for j in range(4)]
                        w = pw.Worker(targets.import_modules, args=(names,),
                                      mode="interpreter")
                        if i == 2:
                            left.append(w)      # still running at exit
                        else:
                            assert w.recv(60) == 4
                            w.join(60)
                        importlib.import_module(mods[(k + i + {run}) % len(mods)])

                threads = [threading.Thread(target=loop, args=(k,)) for k in range(3)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                print("ok")
            """)
            self.assertEqual((out.returncode, out.stdout, out.stderr), (0, "ok\n", ""),
                             f"run {run}")

    def test_a_process_worker_with_interpreter_workers_exits_cleanly(self):
        # Its spare interpreter outlived its exit: CPython 3.12 aborted
        # ("remaining subinterpreters"), 3.13 ended it from the main thread
        # and corrupted memory ("No dict watcher set for ID 0" on stderr).
        out = self.run_script("""
            import pyshm_workers as pw, targets
            for run in range(3):
                w = pw.Worker(targets.start_interpreter_workers, args=(2,), mode="process")
                assert w.recv(60) == "done"
                w.join(60)
                assert w.exit_code == 0, w.exit_code
            print("ok")
        """)
        self.assertEqual((out.returncode, out.stdout, out.stderr), (0, "ok\n", ""))

    def test_hard_exit_ends_only_its_own_interpreter(self):
        other = self.start(targets.echo)
        w = self.start(targets.hard_exit, 3)
        w.join(TIMEOUT)
        other.post_message("still here")
        self.assertEqual(other.recv(TIMEOUT), "still here")
        self.assertEqual(w.exit_code, 3)


class TestProcessWorker(WorkerCases, support.LeakCheck):
    mode = "process"

    def test_crash_is_a_worker_error(self):
        w = self.start(targets.segfault)
        self.assertEqual(w.recv(TIMEOUT), "about to crash")
        with self.assertRaises(pw.WorkerError) as cm:
            w.recv(TIMEOUT)
        self.assertIn("signal 11", str(cm.exception))
        self.assertEqual(w.exit_code, -signal.SIGSEGV)

    def test_terminate_sends_sigterm(self):
        w = self.check_terminate(targets.sleep_forever, "sleeping")
        self.assertEqual(w.exit_code, -signal.SIGTERM)
        self.assertIsInstance(w.pid, int)

    def test_a_send_to_a_worker_that_dies_returns(self):
        w = self.start(targets.sleep_then_exit, 0.5, 5)
        t0 = time.monotonic()
        # The worker never reads: these fill the ring, then wait until it
        # dies, and are dropped, as posts to a closed port are.
        for _ in range(1000):
            w.post_message(b"x" * 4096, timeout=TIMEOUT)
        self.assertLess(time.monotonic() - t0, 10)
        w.join(TIMEOUT)
        self.assertEqual(w.exit_code, 5)

    def test_killed_worker_holding_sabs_leaks_nothing(self):
        gc.collect()
        before = _core.stats()["regions"]
        sab = pw.SharedArrayBuffer(1 << 20)
        w = pw.Worker(targets.hold_sab_and_sleep, args=(sab,), mode=self.mode)
        self.assertEqual(w.recv(TIMEOUT), "holding")
        os.kill(w.pid, signal.SIGKILL)
        w.join(TIMEOUT)
        self.assertEqual(w.exit_code, -signal.SIGKILL)
        with self.assertRaises(pw.WorkerError):
            w.recv(TIMEOUT)
        self.assertEqual(memoryview(sab)[0], 1)
        del sab, w
        gc.collect()
        self.assertEqual(_core.stats()["regions"], before)

    def test_parent_death_leaves_no_orphans(self):
        out = self.run_script("""
            import os
            import pyshm_workers as pw, targets
            w = pw.Worker(targets.sleep_forever, mode="process")
            assert w.recv(60) == "sleeping"
            print(w.pid, flush=True)
            os._exit(0)
        """)
        self.assertEqual(out.returncode, 0, out.stderr)
        pid = int(out.stdout.split()[0])
        self.assertProcessEnds(pid, "a worker of a dead parent")


class TestAutoMode(unittest.TestCase):
    def test_auto_picks_interpreters_where_supported(self):
        w = pw.Worker(targets.count_to, args=(1,))
        self.assertEqual(w.mode, "interpreter" if support.HAVE_SUBINTERPRETERS else "process")
        self.assertEqual(list(w), [0])
        w.join(TIMEOUT)

    @unittest.skipIf(support.HAVE_SUBINTERPRETERS, "3.11 only")
    def test_interpreter_mode_needs_3_12(self):
        with self.assertRaises(ValueError):
            pw.Worker(targets.echo, mode="interpreter")


if __name__ == "__main__":
    unittest.main()
