# SPDX-License-Identifier: GPL-2.0
"""MessageChannel and MessagePort: messaging in one interpreter, transfer
rules, ports moving to workers (both modes) and between workers."""

import asyncio
import gc
import threading
import unittest

import pyshm_workers as pw
from pyshm_workers import _core

import support
import targets

TIMEOUT = 60


class TestLocalChannel(support.LeakCheck):
    def test_ports_are_entangled(self):
        p1, p2 = pw.MessageChannel()
        self.assertIsInstance(p1, pw.MessagePort)
        p1.post_message({"x": [1, 2]})
        p2.post_message("back")
        self.assertEqual(p2.recv(TIMEOUT), {"x": [1, 2]})
        self.assertEqual(p1.recv(TIMEOUT), "back")

    def test_recv_timeout_and_order(self):
        p1, p2 = pw.MessageChannel()
        with self.assertRaises(TimeoutError):
            p2.recv(0.05)
        for i in range(1000):
            p1.post_message(i)
        self.assertEqual([p2.recv(TIMEOUT) for _ in range(1000)], list(range(1000)))

    def test_close_ends_the_stream(self):
        p1, p2 = pw.MessageChannel()
        p1.post_message(1)
        p1.post_message(2)
        p1.close()
        self.assertTrue(p1.closed)
        self.assertEqual(list(p2), [1, 2])
        with self.assertRaises(EOFError):
            p2.recv(TIMEOUT)
        with self.assertRaises(ValueError):
            p1.post_message(3)
        with self.assertRaises(ValueError):
            p1.recv(0)
        # Posting to a closed peer drops the message, as in JavaScript.
        p2.post_message("into the void")

    def test_dropping_a_port_closes_it(self):
        p1, p2 = pw.MessageChannel()
        del p1
        gc.collect()
        with self.assertRaises(EOFError):
            p2.recv(TIMEOUT)

    def test_ports_cannot_be_made_or_pickled(self):
        import pickle
        with self.assertRaises(TypeError):
            pw.MessagePort()
        p1, p2 = pw.MessageChannel()
        with self.assertRaises(TypeError):
            pickle.dumps(p1)

    def test_blocked_receiver_wakes_from_another_thread(self):
        p1, p2 = pw.MessageChannel()
        got = []
        t = threading.Thread(target=lambda: got.append(p2.recv(TIMEOUT)))
        t.start()
        threading.Event().wait(0.05)
        p1.post_message("wake")
        t.join(TIMEOUT)
        self.assertEqual(got, ["wake"])

    def test_arecv(self):
        p1, p2 = pw.MessageChannel()

        async def main():
            task = asyncio.ensure_future(p2.arecv())
            await asyncio.sleep(0.02)
            p1.post_message("async")
            return await asyncio.wait_for(task, TIMEOUT)

        self.assertEqual(asyncio.run(main()), "async")

    def test_concurrent_arecv_on_one_port(self):
        p1, p2 = pw.MessageChannel()

        async def main():
            tasks = [asyncio.ensure_future(p2.arecv()) for _ in range(3)]
            await asyncio.sleep(0.02)
            for i in range(3):
                p1.post_message(i)
            return sorted(await asyncio.wait_for(asyncio.gather(*tasks), TIMEOUT))

        self.assertEqual(asyncio.run(main()), [0, 1, 2])

    def test_sab_through_a_channel_is_shared(self):
        p1, p2 = pw.MessageChannel()
        sab = pw.SharedArrayBuffer(16)
        p1.post_message({"buf": sab})
        got = p2.recv(TIMEOUT)["buf"]
        memoryview(got)[0] = 99
        self.assertEqual(memoryview(sab)[0], 99)

    def test_unread_messages_release_their_buffers(self):
        before = _core.stats()["regions"]
        p1, p2 = pw.MessageChannel()
        for _ in range(3):
            p1.post_message(pw.SharedArrayBuffer(4096))
        p1.post_message(b"z" * (1 << 20))      # out of line
        del p1, p2
        gc.collect()
        self.assertEqual(_core.stats()["regions"], before)


class TestTransferRules(support.LeakCheck):
    def test_transfer_moves_the_port(self):
        a1, a2 = pw.MessageChannel()
        b1, b2 = pw.MessageChannel()
        a1.post_message({"port": b2}, transfer=[b2])
        self.assertTrue(b2.closed)
        with self.assertRaises(ValueError):
            b2.post_message("detached")
        moved = a2.recv(TIMEOUT)["port"]
        b1.post_message("through the moved port")
        self.assertEqual(moved.recv(TIMEOUT), "through the moved port")

    def test_transferring_twice_or_detached_fails(self):
        a1, a2 = pw.MessageChannel()
        b1, b2 = pw.MessageChannel()
        with self.assertRaises(pw.DataCloneError):
            a1.post_message(b2, transfer=[b2, b2])
        self.assertFalse(b2.closed)
        a1.post_message(b2, transfer=[b2])
        with self.assertRaises(pw.DataCloneError):
            a1.post_message(b2, transfer=[b2])
        a2.recv(TIMEOUT)

    def test_port_in_message_must_be_transferred(self):
        a1, a2 = pw.MessageChannel()
        b1, b2 = pw.MessageChannel()
        with self.assertRaises(pw.DataCloneError):
            a1.post_message([b2])
        self.assertFalse(b2.closed)

    def test_only_ports_in_transfer(self):
        a1, a2 = pw.MessageChannel()
        with self.assertRaises(pw.DataCloneError):
            a1.post_message(1, transfer=[pw.SharedArrayBuffer(8)])
        with self.assertRaises((pw.DataCloneError, TypeError)):
            a1.post_message(1, transfer=[object()])

    def test_port_cannot_travel_through_itself(self):
        a1, a2 = pw.MessageChannel()
        with self.assertRaises(pw.DataCloneError):
            a1.post_message(a1, transfer=[a1])
        self.assertFalse(a1.closed)

    def test_failed_clone_detaches_nothing(self):
        a1, a2 = pw.MessageChannel()
        b1, b2 = pw.MessageChannel()
        with self.assertRaises(pw.DataCloneError):
            a1.post_message([b2, threading.Lock()], transfer=[b2])
        self.assertFalse(b2.closed)
        with self.assertRaises(TimeoutError):
            a2.recv(0)

    def test_structured_clone_transfers_ports(self):
        b1, b2 = pw.MessageChannel()
        moved = pw.structured_clone(b2, transfer=[b2])
        self.assertTrue(b2.closed)
        b1.post_message(5)
        self.assertEqual(moved.recv(TIMEOUT), 5)


class PortWorkerCases(support.Workers):
    mode = None


    def test_port_moves_to_a_worker(self):
        w = self.start(targets.port_echo)
        mine, theirs = pw.MessageChannel()
        w.post_message(theirs, transfer=[theirs])
        self.assertEqual(w.recv(TIMEOUT), "got port")
        for i in range(20):
            mine.post_message(i)
            self.assertEqual(mine.recv(TIMEOUT), ("echo", i))
        sab = pw.SharedArrayBuffer(8)
        mine.post_message(sab)
        back = mine.recv(TIMEOUT)[1]
        memoryview(back)[0] = 3
        self.assertEqual(memoryview(sab)[0], 3)
        mine.close()
        w.join(TIMEOUT)
        self.assertEqual(w.exit_code, 0)

    def test_ports_connect_two_workers(self):
        a = self.start(targets.port_echo)
        b = self.start(targets.pass_port_on, worker_data="b")
        pa, pb = pw.MessageChannel()
        a.post_message(pa, transfer=[pa])
        self.assertEqual(a.recv(TIMEOUT), "got port")
        b.post_message(pb, transfer=[pb])
        b.join(TIMEOUT)
        self.assertEqual(b.exit_code, 0)
        # a echoed b's message back to b's port, which b closed: a ends.
        a.join(TIMEOUT)
        self.assertEqual(a.exit_code, 0)

    def test_worker_link_cannot_be_transferred(self):
        w = self.start(targets.echo)
        with self.assertRaises(pw.DataCloneError):
            w._port.post_message(w._port, transfer=[w._port])
        mine, theirs = pw.MessageChannel()
        with self.assertRaises(pw.DataCloneError):
            mine.post_message(w._port, transfer=[w._port])


@unittest.skipUnless(support.HAVE_SUBINTERPRETERS, support.NO_SUBINTERPRETERS)
class TestPortsWithInterpreters(PortWorkerCases, support.LeakCheck):
    mode = "interpreter"


class TestPortsWithProcesses(PortWorkerCases, support.LeakCheck):
    mode = "process"


if __name__ == "__main__":
    unittest.main()
