# SPDX-License-Identifier: GPL-2.0
"""Node's small helpers: mark_as_uncloneable(obj) (cloning obj or anything
that holds it raises DataCloneError naming it; objects that take no weak
reference too; values without identity refused) and
receive_message_on_port(port) ((message,) or None, never blocking)."""

import gc
import threading
import time
import unittest

import pyshm_workers as pw

import support
import targets


class Thing:
    """Picklable and importable: it clones unless marked."""

    def __init__(self, v=0):
        self.v = v


class TestMarkAsUncloneable(support.LeakCheck, support.Workers):
    def test_a_marked_object_does_not_clone(self):
        obj = Thing(1)
        self.assertEqual(pw.structured_clone(obj).v, 1)
        self.assertIsNone(pw.mark_as_uncloneable(obj))
        with self.assertRaisesRegex(pw.DataCloneError, r"Thing.*mark_as_uncloneable"):
            pw.structured_clone(obj)
        self.assertEqual(pw.structured_clone(Thing(2)).v, 2)    # only that one

    def test_anything_holding_it_does_not_clone_and_the_path_is_named(self):
        obj = Thing()
        pw.mark_as_uncloneable(obj)
        with self.assertRaisesRegex(pw.DataCloneError, r"\[1\]\['k'\]"):
            pw.structured_clone([0, {"k": obj}])
        holder = Thing(obj)
        with self.assertRaisesRegex(pw.DataCloneError, r"\.v"):
            pw.structured_clone(holder)

    def test_objects_without_weak_references(self):
        for obj, other in (({"a": 1}, lambda: {"a": 1}), ([1, 2], lambda: [1, 2]),
                           ((1, [2]), lambda: (1, [2])), (bytes(range(9)), lambda: bytes(range(9))),
                           (bytearray(b"x"), lambda: bytearray(b"x")), ({1, 2}, lambda: {1, 2})):
            with self.subTest(obj=obj):
                pw.mark_as_uncloneable(obj)
                with self.assertRaises(pw.DataCloneError):
                    pw.structured_clone(obj)
                with self.assertRaises(pw.DataCloneError):
                    pw.structured_clone([obj])
                # an equal object is another object
                self.assertEqual(pw.structured_clone(other()), obj)

    def test_buffers_and_transfer_lists(self):
        sab, ab = pw.SharedArrayBuffer(8), pw.ArrayBuffer(8)
        pw.mark_as_uncloneable(sab)
        pw.mark_as_uncloneable(ab)
        with self.assertRaises(pw.DataCloneError):
            pw.structured_clone(sab)
        with self.assertRaises(pw.DataCloneError):
            pw.structured_clone(None, transfer=[ab])
        self.assertFalse(ab.detached)

    def test_values_without_identity_are_refused(self):
        for v in (None, True, 5, 2**100, 1.5, "text"):
            with self.subTest(v=v), self.assertRaises(TypeError):
                pw.mark_as_uncloneable(v)
        self.assertEqual(pw.structured_clone([5, "text"]), [5, "text"])
        with self.assertRaises(TypeError):
            pw.mark_as_uncloneable()

    def test_a_dead_object_leaves_no_mark(self):
        for _ in range(50):
            obj = Thing()
            pw.mark_as_uncloneable(obj)
            del obj
        gc.collect()
        # Objects born at the same addresses clone.
        for _ in range(200):
            self.assertIsInstance(pw.structured_clone(Thing()), Thing)

    def test_post_message_sends_nothing(self):
        port1, port2 = pw.MessageChannel()
        obj = Thing()
        pw.mark_as_uncloneable(obj)
        with self.assertRaises(pw.DataCloneError):
            port1.post_message({"x": obj})
        port1.post_message("after")
        self.assertEqual(port2.recv(support.TIMEOUT), "after")
        port1.close()
        port2.close()

    def test_worker_arguments(self):
        obj = Thing()
        pw.mark_as_uncloneable(obj)
        with self.assertRaises(pw.DataCloneError):
            pw.Worker(targets.echo, args=(obj,), mode="process")


class TestReceiveMessageOnPort(support.LeakCheck, support.Workers):
    def test_a_message_or_none(self):
        port1, port2 = pw.MessageChannel()
        self.assertIsNone(pw.receive_message_on_port(port2))
        port1.post_message({"n": 1})
        port1.post_message(None)
        self.assertEqual(pw.receive_message_on_port(port2), ({"n": 1},))
        self.assertEqual(pw.receive_message_on_port(port2), (None,))
        self.assertIsNone(pw.receive_message_on_port(port2))
        port1.close()
        self.assertIsNone(pw.receive_message_on_port(port2))    # the end: None
        port2.close()
        self.assertIsNone(pw.receive_message_on_port(port2))    # closed: None

    def test_it_never_blocks(self):
        port1, port2 = pw.MessageChannel()
        t0 = time.monotonic()
        for _ in range(100):
            self.assertIsNone(pw.receive_message_on_port(port2))
        self.assertLess(time.monotonic() - t0, 2)
        port1.close()
        port2.close()

    def test_ports_only(self):
        for bad in (None, 1, "port", [], pw.SharedArrayBuffer(4), threading.Lock()):
            with self.subTest(bad=bad), self.assertRaises(TypeError):
                pw.receive_message_on_port(bad)

    def test_broadcast_channel_and_worker(self):
        a, b = pw.BroadcastChannel("rmop"), pw.BroadcastChannel("rmop")
        self.assertIsNone(pw.receive_message_on_port(b))
        a.post_message("hi")
        deadline = time.monotonic() + support.TIMEOUT
        while (got := pw.receive_message_on_port(b)) is None:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.001)
        self.assertEqual(got, ("hi",))
        a.close()
        b.close()
        self.mode = "process"
        w = self.start(targets.echo_n, 1)
        w.post_message("x")
        deadline = time.monotonic() + support.TIMEOUT
        while (got := pw.receive_message_on_port(w)) is None:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.001)
        self.assertEqual(got, ("x",))
        w.join(support.TIMEOUT)


if __name__ == "__main__":
    unittest.main()
