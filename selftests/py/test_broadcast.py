# SPDX-License-Identifier: GPL-2.0
"""BroadcastChannel: every other open channel of a name in the program
gets each message, in order per poster, across interpreter and process
workers, nested ones too; the poster's own channel, channels of other
names and channels opened after the post do not."""

import asyncio
import threading
import time
import unittest

import pyshm_workers as pw

import parity_targets as T
import support
from support import TIMEOUT


class TestInProcess(support.LeakCheck):
    def channels(self, *names):
        chans = [pw.BroadcastChannel(n) for n in names]
        for c in chans:
            self.addCleanup(c.close)
        return chans

    def assertNothing(self, chan):
        with self.assertRaises(TimeoutError):
            chan.recv(0.1)

    def test_every_other_channel_of_the_name_gets_it(self):
        a, b, c, other = self.channels("x", "x", "x", "y")
        a.post_message({"k": [1, 2]})
        self.assertEqual(b.recv(TIMEOUT), {"k": [1, 2]})
        self.assertEqual(c.recv(TIMEOUT), {"k": [1, 2]})
        self.assertNothing(a)
        self.assertNothing(other)

    def test_channels_opened_after_a_post_do_not_get_it(self):
        a, b = self.channels("x", "x")
        a.post_message("before")
        (late,) = self.channels("x")
        a.post_message("after")
        self.assertEqual(b.recv(TIMEOUT), "before")
        self.assertEqual(b.recv(TIMEOUT), "after")
        self.assertEqual(late.recv(TIMEOUT), "after")
        self.assertNothing(late)

    def test_messages_of_one_poster_keep_their_order(self):
        a, b = self.channels("order", "order")
        for i in range(500):
            a.post_message(i)
        self.assertEqual([b.recv(TIMEOUT) for _ in range(500)], list(range(500)))

    def test_a_closed_channel_gets_nothing_and_refuses_to_post(self):
        a, b = self.channels("x", "x")
        b.close()
        b.close()           # twice is fine
        self.assertTrue(b.closed)
        a.post_message("lost")
        with self.assertRaises(ValueError):
            b.post_message("x")
        with self.assertRaises(ValueError):
            b.recv(0)
        self.assertEqual(list(b), [])

    def test_recv_times_out(self):
        (a,) = self.channels("x")
        t0 = time.monotonic()
        with self.assertRaises(TimeoutError):
            a.recv(0.2)
        self.assertGreaterEqual(time.monotonic() - t0, 0.15)

    def test_name_and_state(self):
        (a,) = self.channels("name")
        self.assertEqual(a.name, "name")
        self.assertIn("'name' open", repr(a))
        for bad in (1, None, b"x", ["x"]):
            with self.subTest(bad=bad), self.assertRaises(TypeError):
                pw.BroadcastChannel(bad)

    def test_what_cannot_be_cloned_is_refused_and_nothing_is_sent(self):
        a, b = self.channels("x", "x")
        with self.assertRaises(pw.DataCloneError):
            a.post_message([1, threading.Lock()])  # (a lambda goes by value)
        with self.assertRaises(pw.DataCloneError):
            a.post_message(b)       # a channel is not a message
        self.assertNothing(b)

    def test_shared_memory_is_shared(self):
        a, b = self.channels("x", "x")
        sab = pw.SharedArrayBuffer(16)
        a.post_message(sab)
        got = b.recv(TIMEOUT)
        memoryview(got)[3] = 9
        self.assertEqual(memoryview(sab)[3], 9)

    def test_on_message_runs_without_pumping(self):
        a, b = self.channels("ev", "ev")
        got, done = [], threading.Event()

        def on_message(msg):
            got.append(msg)
            if len(got) == 3:
                done.set()

        a.post_message(0)                   # held until on_message is set
        b.on_message = on_message
        self.assertIs(b.on_message, on_message)
        a.post_message(1)
        a.post_message(2)
        self.assertTrue(done.wait(TIMEOUT))
        self.assertEqual(got, [0, 1, 2])
        with self.assertRaises(TypeError):
            b.on_message = 5

    def test_arecv(self):
        a, b = self.channels("aio", "aio")

        async def main():
            task = asyncio.ensure_future(b.arecv())
            await asyncio.sleep(0.05)
            a.post_message("async")
            return await asyncio.wait_for(task, TIMEOUT)

        self.assertEqual(asyncio.run(main()), "async")

    def test_channels_in_many_threads(self):
        chans = self.channels(*["t"] * 4)
        results = {}

        def listen(i):
            results[i] = [chans[i].recv(TIMEOUT) for _ in range(3)]

        threads = [threading.Thread(target=listen, args=(i,)) for i in range(1, 4)]
        for t in threads:
            t.start()
        for v in range(3):
            chans[0].post_message(v)
        for t in threads:
            t.join(TIMEOUT)
        self.assertEqual(results, {i: [0, 1, 2] for i in range(1, 4)})


class AcrossWorkers:
    def test_a_worker_gets_what_the_main_interpreter_posts(self):
        (main,) = [pw.BroadcastChannel("w")]
        self.addCleanup(main.close)
        w = self.start(T.bc_echo, "w", 3)
        self.assertEqual(w.recv(TIMEOUT), "ready")
        for v in ("a", [1], {"b": 2}):
            main.post_message(v)
        self.assertEqual([w.recv(TIMEOUT) for _ in range(3)], ["a", [1], {"b": 2}])
        w.join(TIMEOUT)
        with self.assertRaises(TimeoutError):
            main.recv(0.1)

    def test_the_main_interpreter_gets_what_a_worker_posts(self):
        main = pw.BroadcastChannel("from-worker")
        self.addCleanup(main.close)
        w = self.start(T.bc_post, "from-worker", list(range(50)))
        self.assertEqual(w.recv(TIMEOUT), "ready")
        w.post_message("go")
        self.assertEqual([main.recv(TIMEOUT) for _ in range(50)], list(range(50)))
        w.join(TIMEOUT)

    def test_workers_get_what_another_worker_posts(self):
        listeners = [self.start(T.bc_echo, "peer", 2) for _ in range(2)]
        for w in listeners:
            self.assertEqual(w.recv(TIMEOUT), "ready")
        poster = self.start(T.bc_post, "peer", ["x", "y"])
        self.assertEqual(poster.recv(TIMEOUT), "ready")
        poster.post_message("go")
        for w in listeners:
            self.assertEqual([w.recv(TIMEOUT), w.recv(TIMEOUT)], ["x", "y"])

    def test_nested_workers_get_it(self):
        main = pw.BroadcastChannel("nest")
        self.addCleanup(main.close)
        w = self.start(T.bc_nested, "nest", 2, self.mode)
        self.assertEqual(w.recv(TIMEOUT), "ready")
        main.post_message(1)
        main.post_message(2)
        got = sorted(w.recv(TIMEOUT) for _ in range(4))
        self.assertEqual(got, [("inner", 1), ("inner", 2), ("outer", 1), ("outer", 2)])
        w.join(TIMEOUT)

    def test_shared_memory_reaches_a_worker(self):
        main = pw.BroadcastChannel("sab")
        self.addCleanup(main.close)
        w = self.start(T.bc_write_sab, "sab")
        self.assertEqual(w.recv(TIMEOUT), "ready")
        sab = pw.SharedArrayBuffer(8)
        main.post_message(sab)
        self.assertEqual(w.recv(TIMEOUT), "written")
        self.assertEqual(memoryview(sab)[0], 42)


@unittest.skipUnless(support.HAVE_SUBINTERPRETERS, support.NO_SUBINTERPRETERS)
class TestInterpreterWorkers(AcrossWorkers, support.Workers, support.LeakCheck):
    mode = "interpreter"


class TestProcessWorkers(AcrossWorkers, support.Workers, support.LeakCheck):
    mode = "process"


if __name__ == "__main__":
    unittest.main()


class TestWithoutFutexWaitv(support.Workers, support.LeakCheck):
    """Where a seccomp filter refuses futex_waitv(), the hub thread looks at
    its links every millisecond instead of sleeping on them: broadcasts
    still arrive, and an idle program does not spin."""

    SCRIPT = """
        import ctypes, resource, struct, time
        libc = ctypes.CDLL(None, use_errno=True)

        class Prog(ctypes.Structure):
            _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

        # nr == futex_waitv (449) ? ERRNO(EPERM) : ALLOW
        code = b"".join(struct.pack("HBBI", *ins) for ins in (
            (0x20, 0, 0, 0), (0x15, 0, 1, 449),
            (0x06, 0, 0, 0x00050000 | 1), (0x06, 0, 0, 0x7fff0000)))
        buf = ctypes.create_string_buffer(code, len(code))
        prog = Prog(4, ctypes.addressof(buf))
        if libc.prctl(38, 1, 0, 0, 0) or libc.prctl(22, 2, ctypes.byref(prog), 0, 0):
            sys.exit(77)        # no seccomp here
        assert libc.syscall(449, 0, 0, 0, 0, 0) == -1 and ctypes.get_errno() == 1

        import pyshm_workers as pw
        import parity_targets as T
        main = pw.BroadcastChannel("refused")
        w = pw.Worker(T.bc_echo, args=("refused", 3), mode="process")
        assert w.recv(60) == "ready"
        for i in range(3):
            main.post_message(i)
        print("got", [w.recv(60) for _ in range(3)])
        w.join(60)
        t0 = resource.getrusage(resource.RUSAGE_SELF)
        time.sleep(1)
        t1 = resource.getrusage(resource.RUSAGE_SELF)
        print("idle cpu", t1.ru_utime + t1.ru_stime - t0.ru_utime - t0.ru_stime)
    """

    def test_broadcasts_arrive_and_the_hub_does_not_spin(self):
        out = self.run_script(self.SCRIPT)
        if out.returncode == 77:
            self.skipTest("seccomp filters are refused here")
        self.assertEqual(out.returncode, 0, out.stderr)
        lines = out.stdout.splitlines()
        self.assertIn("got [0, 1, 2]", lines)
        idle = float(lines[-1].split()[-1])
        self.assertLess(idle, 0.3, "the hub thread spins without futex_waitv()")
