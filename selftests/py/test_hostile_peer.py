# SPDX-License-Identifier: GPL-2.0
"""A peer that misbehaves: a process that resizes what it was given, a
receiver that does not read, a worker that dies holding ports. The program
on the other side stays in bounds, responsive and free of leaks."""

import gc
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import unittest

import pyshm_workers as pw
from pyshm_workers import _core

import hostile_targets
import support
from support import TIMEOUT


class TestTruncatedRegion(support.Workers, support.LeakCheck):
    mode = "process"

    @unittest.skipUnless(pw.backend() == "memfd",
                         "kmod region fds refuse ftruncate (a kselftest checks it)")
    def test_accesses_stay_in_bounds_when_a_worker_grows_the_memfd(self):
        sab = pw.SharedArrayBuffer(12345, max_byte_length=4 * 4096)
        mv = memoryview(sab)
        mv[-1] = 7
        mv.release()
        w = self.start(hostile_targets.truncate_sab, 1 << 24)
        w.post_message(sab)
        self.assertEqual(w.recv(TIMEOUT), 1)

        def accesses():
            limit = sab.max_byte_length
            assert limit == 4 * 4096, limit
            assert sab.byte_length <= limit, sab.byte_length
            assert len(sab) <= limit
            with memoryview(sab) as view:
                assert len(view) <= limit, len(view)
                view[-1] = 1
                assert view[12344] == 7
            a = pw.Int32Array(sab)
            assert len(a) <= limit // 4, len(a)
            a.store(len(a) - 1, 5)
            assert a.load(len(a) - 1) == 5
            assert sab.slice().byte_length <= limit
            assert sab.slice(-10).byte_length == 10
            sab.grow(limit)
            try:
                sab.grow(limit + 1)
            except ValueError:
                pass
            else:
                raise AssertionError("grew past max_byte_length")

        # A child does the accesses: before the fix they crashed.
        self.assertEqual(support.fork_and_check(accesses), 0)
        w.post_message(None)
        w.join(TIMEOUT)
        self.assertEqual(w.exit_code, 0)


if __name__ == "__main__":
    unittest.main()


BIG = 128 << 10


class HeavySender:
    """A sender of large messages to a worker that does not read."""

    def test_a_sender_blocked_on_a_full_channel_leaves_other_threads_running(self):
        n = 1000
        w = self.start(hostile_targets.sleep_then_echo_lengths, 3.0, n)
        self.assertEqual(w.recv(TIMEOUT), "started")
        replies, gaps = [], [0.0]
        stop = threading.Event()

        def heartbeat():
            last = time.monotonic()
            while not stop.wait(0.01):
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        def reader():
            for _ in range(n):
                replies.append(w.recv(TIMEOUT))

        threads = [threading.Thread(target=heartbeat), threading.Thread(target=reader)]
        for t in threads:
            t.start()
        try:
            payload = bytes(BIG)
            for _ in range(n):
                w.post_message(payload)
        finally:
            for t in threads[1:]:
                t.join(TIMEOUT)
            stop.set()
            threads[0].join()
        self.assertEqual(replies, [BIG] * n)
        # Posting waited seconds for the worker: the heartbeat went on.
        self.assertLess(max(gaps), 1.0)

    def test_post_message_times_out_when_the_receiver_does_not_read(self):
        w = self.start(hostile_targets.never_read)
        w.recv(TIMEOUT)
        payload = bytes(BIG)
        posted = 0
        with self.assertRaises(TimeoutError):
            while posted < 5000:
                t0 = time.monotonic()
                w.post_message(payload, timeout=1.0)
                posted += 1
        self.assertLess(time.monotonic() - t0, 5.0)
        # The bound in flight stopped it: 64 messages out of line at most.
        self.assertLessEqual(posted, 64)
        self.assertGreater(posted, 0)
        # A timed-out post left nothing half-sent, and the worker ends.
        w.terminate()
        w.join(TIMEOUT)

    def test_bytes_in_flight_are_bounded_per_channel(self):
        w = self.start(hostile_targets.never_read, max_inflight_bytes=4 << 20)
        w.recv(TIMEOUT)
        regions = _core.stats()["regions"]
        payload = bytes((1 << 20) - 1024)      # with its headers, under 1 MiB
        posted = 0
        with self.assertRaises(TimeoutError):
            while posted < 100:
                w.post_message(payload, timeout=0.2)
                posted += 1
        self.assertEqual(posted, 4)
        self.assertLessEqual(_core.stats()["regions"], regions + 4)
        # A message larger than the bound goes when alone in flight.
        w2 = self.start(hostile_targets.never_read, max_inflight_bytes=1 << 20)
        w2.recv(TIMEOUT)
        w2.post_message(bytes(3 << 20), timeout=5)
        with self.assertRaises(TimeoutError):
            w2.post_message(bytes(200 << 10), timeout=0.2)

    def test_bad_max_inflight_bytes_is_refused(self):
        for bad, exc in ((-1, ValueError), (0, ValueError), ("1", TypeError),
                         (1.5, TypeError)):
            with self.subTest(bad=bad), self.assertRaises(exc):
                pw.Worker(hostile_targets.never_read, mode=self.mode,
                          max_inflight_bytes=bad)

    def test_few_fds_are_enough_for_many_large_messages(self):
        # A program under `ulimit -n 256` sending 1,000 messages of 128 KiB
        # to a slow reader: it waits, it does not run out of fds.
        code = textwrap.dedent(f"""
            import resource, sys
            sys.path[:0] = {sys.path!r}
            resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
            import pyshm_workers as pw, hostile_targets
            n = 1000
            w = pw.Worker(hostile_targets.sleep_then_echo_lengths, args=(1.0, n),
                          mode={self.mode!r})
            assert w.recv(60) == "started"
            import threading
            got = []
            t = threading.Thread(target=lambda: got.extend(w.recv(60) for _ in range(n)))
            t.start()
            for _ in range(n):
                w.post_message(bytes({BIG}))
            t.join(120)
            w.join(60)
            assert got == [{BIG}] * n, len(got)
            print("ok")
        """)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                             text=True, timeout=TIMEOUT * 3)
        self.assertEqual(out.stdout.strip(), "ok", out.stderr[-2000:])


@unittest.skipUnless(support.HAVE_SUBINTERPRETERS, support.NO_SUBINTERPRETERS)
class TestHeavySenderInterpreter(HeavySender, support.Workers, support.LeakCheck):
    mode = "interpreter"


class TestHeavySenderProcess(HeavySender, support.Workers, support.LeakCheck):
    mode = "process"


class EndOfStream:
    """The end of a peer reaches the other end of its channels."""

    def test_the_other_end_sees_eof_when_the_holder_is_killed(self):
        for how in ("kill", "terminate"):
            with self.subTest(how=how):
                a, b = pw.MessageChannel()
                w = self.start(hostile_targets.hold_port)
                w.post_message(b, transfer=[b])
                tag, pid = a.recv(TIMEOUT)
                self.assertEqual(tag, "holding")
                a.post_message("unread")
                if how == "kill" and self.mode == "process":
                    os.kill(pid, signal.SIGKILL)
                else:
                    w.terminate()
                with self.assertRaises(EOFError):
                    a.recv(TIMEOUT)
                a.post_message("dropped")      # as to a closed port
                w.join(TIMEOUT)
                a.close()

    def test_the_other_end_sees_eof_when_the_holder_ends(self):
        a, b = pw.MessageChannel()
        w = self.start(hostile_targets.hold_port_then_return)
        w.post_message(b, transfer=[b])
        self.assertEqual(a.recv(TIMEOUT), "holding")
        with self.assertRaises(EOFError):
            a.recv(TIMEOUT)
        w.join(TIMEOUT)

    def test_the_other_end_sees_eof_when_a_worker_dies_before_reading_the_port(self):
        a, b = pw.MessageChannel()
        w = self.start(hostile_targets.never_read)
        w.recv(TIMEOUT)
        w.post_message(b, transfer=[b])
        self.assertTrue(b.closed)
        w.terminate()
        with self.assertRaises(EOFError):
            a.recv(TIMEOUT)
        w.join(TIMEOUT)

    def test_posting_to_an_exited_worker_drops_and_closes_transferred_ports(self):
        w = self.start(hostile_targets.hold_port_then_return)
        a, b = pw.MessageChannel()
        w.post_message(b, transfer=[b])
        self.assertEqual(a.recv(TIMEOUT), "holding")
        w.join(TIMEOUT)
        self.assertEqual(w.exit_code, 0)
        c, d = pw.MessageChannel()
        sab = pw.SharedArrayBuffer(64)
        # Dropped as by a closed port: no error, whatever it carries.
        w.post_message({"sab": sab, "port": d, "big": bytes(BIG)}, transfer=[d])
        self.assertTrue(d.closed)
        with self.assertRaises(EOFError):
            c.recv(TIMEOUT)
        w.post_message(sab)
        w.post_message(bytes(BIG))
        c.close()
        a.close()


@unittest.skipUnless(support.HAVE_SUBINTERPRETERS, support.NO_SUBINTERPRETERS)
class TestEndOfStreamInterpreter(EndOfStream, support.Workers, support.LeakCheck):
    mode = "interpreter"


class TestEndOfStreamProcess(EndOfStream, support.Workers, support.LeakCheck):
    mode = "process"


class TestDoomedPort(support.LeakCheck):
    def test_a_port_posted_through_its_own_peer_is_freed(self):
        fds = support.open_fds()
        for _ in range(300):
            c, d = pw.MessageChannel()
            c.post_message("lost", transfer=[d])
            self.assertTrue(d.closed)
            # The channel is lost (JavaScript calls the port doomed).
            with self.assertRaises(EOFError):
                c.recv(TIMEOUT)
            c.close()
        self.assertLessEqual(support.open_fds(), fds + 1)

    def test_a_doomed_post_still_refuses_what_cannot_be_cloned(self):
        c, d = pw.MessageChannel()
        with self.assertRaises(pw.DataCloneError):
            c.post_message(threading.Lock(), transfer=[d])
        self.assertFalse(d.closed)
        c.close()
        d.close()


class TestNoFreeze(support.LeakCheck):
    def test_closing_a_port_another_thread_receives_on_wakes_it(self):
        a, b = pw.MessageChannel()
        b.post_message("unread")
        b.post_message(pw.SharedArrayBuffer(10))
        got = []

        def receive():
            got.append(a.recv())
            try:
                a.recv(TIMEOUT)
                a.recv(TIMEOUT)
            except Exception as e:      # noqa: BLE001 - reported below
                got.append(e)

        t = threading.Thread(target=receive)
        t.start()
        time.sleep(0.2)
        a.close()
        t.join(TIMEOUT)
        self.assertFalse(t.is_alive(), "recv() slept through close()")
        self.assertEqual(got[0], "unread")
        self.assertIsInstance(got[1], ValueError)
        b.close()


class TestForkChild(support.LeakCheck):
    def test_a_fork_child_dropping_inherited_ports_leaves_the_channel_open(self):
        a, b = pw.MessageChannel()
        ports = list(pw.MessageChannel())
        ports[1].post_message(pw.SharedArrayBuffer(16))

        def child():
            a.close()           # closed, or only dropped: the same
            ports.clear()
            gc.collect()

        self.assertEqual(support.fork_and_check(child), 0)
        a.post_message("still open")
        self.assertEqual(b.recv(TIMEOUT), "still open")
        self.assertEqual(ports[0].recv(TIMEOUT).byte_length, 16)
        for port in (a, b, *ports):
            port.close()
