# SPDX-License-Identifier: GPL-2.0
"""ArrayBuffer: a worker's own memory. Construction, the buffer protocol,
slice() with JavaScript's indexes; copied when posted, moved (no copy,
the sender's detached) when transferred, in-process and to workers of both
modes; the transfer list's errors (duplicates, detached buffers, live
views) leave everything as it was."""

import copy
import os
import pickle
import threading
import unittest

import pyshm_workers as pw
from pyshm_workers import _core

import buffer_targets
import support

SMALL, LARGE = 100, 1 << 20          # on the heap; in a region of its own


def filled(n, start=0):
    ab = pw.ArrayBuffer(n)
    with memoryview(ab) as m:
        m[:] = bytes((start + i) % 251 for i in range(n))
    return ab


class TestArrayBuffer(support.LeakCheck):
    def test_zero_filled_writable_memory(self):
        for n in (0, 1, SMALL, LARGE):
            with self.subTest(n=n):
                ab = pw.ArrayBuffer(n)
                self.assertEqual((ab.byte_length, len(ab), ab.detached), (n, n, False))
                with memoryview(ab) as m:
                    self.assertEqual((m.nbytes, m.readonly, m.format), (n, False, "B"))
                    self.assertEqual(bytes(m), bytes(n))
                    if n:
                        m[-1] = 7
                        self.assertEqual(bytes(ab)[-1], 7)

    def test_bad_sizes(self):
        for bad in (-1, -2**70, 2**70):
            with self.subTest(bad=bad), self.assertRaises(ValueError):
                pw.ArrayBuffer(bad)
        for bad in ("1", 1.0, None, b"x"):
            with self.subTest(bad=bad), self.assertRaises(TypeError):
                pw.ArrayBuffer(bad)
        with self.assertRaises(TypeError):
            pw.ArrayBuffer()
        os.environ["PYSHM_MAX_REGION_BYTES"] = str(1 << 30)
        try:
            with self.assertRaises(MemoryError):
                pw.ArrayBuffer(1 << 40)
        finally:
            del os.environ["PYSHM_MAX_REGION_BYTES"]

    def test_keyword_and_repr(self):
        ab = pw.ArrayBuffer(n=4)
        self.assertEqual(repr(ab), "<ArrayBuffer byte_length=4>")
        with self.assertRaises(TypeError):
            class Sub(pw.ArrayBuffer):
                pass

    def test_slice_counts_as_javascript_does(self):
        ab = filled(10)
        data = bytes(ab)
        cases = [((), data), ((3,), data[3:]), ((-3,), data[7:]), ((2, 5), data[2:5]),
                 ((2, -2), data[2:8]), ((-100, 100), data), ((5, 2), b""),
                 ((None, 4), data[:4]), ((8, None), data[8:]), ((2**70, -2**70), b"")]
        for args, want in cases:
            with self.subTest(args=args):
                s = ab.slice(*args)
                self.assertIsInstance(s, pw.ArrayBuffer)
                self.assertEqual(bytes(s), want)
        self.assertEqual(bytes(ab.slice(start=1, end=3)), data[1:3])
        s = ab.slice()
        with memoryview(s) as m:
            m[0] = 99
        self.assertEqual(bytes(ab), data)       # a copy
        with self.assertRaises(TypeError):
            ab.slice("1")

    def test_pickle_and_copy_give_copies(self):
        ab = filled(SMALL)
        for other in (pickle.loads(pickle.dumps(ab)), copy.copy(ab), copy.deepcopy(ab)):
            self.assertIsInstance(other, pw.ArrayBuffer)
            self.assertIsNot(other, ab)
            self.assertEqual(bytes(other), bytes(ab))


class TestClone(support.LeakCheck):
    def test_without_transfer_it_is_copied(self):
        for n in (SMALL, LARGE):
            with self.subTest(n=n):
                ab = filled(n)
                got = pw.structured_clone([ab, ab])
                self.assertIs(got[0], got[1])
                self.assertIsNot(got[0], ab)
                self.assertEqual(bytes(got[0]), bytes(ab))
                with memoryview(got[0]) as m:
                    m[0] = 200
                self.assertEqual(bytes(ab)[0], 0)
                self.assertFalse(ab.detached)

    def test_transfer_moves_it_and_detaches_the_sender(self):
        for n in (0, SMALL, LARGE):
            with self.subTest(n=n):
                ab = filled(n, 3)
                data = bytes(ab)
                regions = _core.stats()["regions"]
                got = pw.structured_clone({"buf": ab, "again": ab}, transfer=[ab])
                self.assertTrue(ab.detached)
                self.assertEqual(ab.byte_length, 0)
                self.assertEqual(len(ab), 0)
                self.assertEqual(repr(ab), "<ArrayBuffer detached>")
                self.assertIs(got["buf"], got["again"])
                self.assertFalse(got["buf"].detached)
                self.assertEqual(bytes(got["buf"]), data)
                # Moved, not copied: no new region for the large one.
                self.assertEqual(_core.stats()["regions"], regions)
                with self.assertRaises(TypeError):
                    memoryview(ab)
                with self.assertRaises(TypeError):
                    ab.slice()

    def test_a_buffer_in_transfer_only_is_detached_too(self):
        ab = filled(SMALL)
        self.assertEqual(pw.structured_clone("x", transfer=[ab]), "x")
        self.assertTrue(ab.detached)

    def test_transfer_with_typed_views_in_the_message(self):
        ab = filled(LARGE)
        v = pw.Int32Array(ab, 8, 4)
        want = list(v)
        got = pw.structured_clone([v, ab], transfer=[ab])
        self.assertIs(got[0].buffer, got[1])
        self.assertEqual(list(got[0]), want)
        self.assertEqual(len(v), 0)

    def assertUntouched(self, ab, data):
        self.assertFalse(ab.detached)
        self.assertEqual(bytes(ab), data)

    def test_duplicates_and_detached_buffers_are_refused(self):
        ab, other = filled(SMALL), filled(LARGE)
        data = bytes(ab)
        with self.assertRaisesRegex(pw.DataCloneError, "twice"):
            pw.structured_clone(ab, transfer=[other, ab, ab])
        self.assertUntouched(ab, data)
        self.assertFalse(other.detached)
        gone = pw.ArrayBuffer(4)
        pw.structured_clone(None, transfer=[gone])
        with self.assertRaisesRegex(pw.DataCloneError, "detached"):
            pw.structured_clone(ab, transfer=[ab, gone])
        self.assertUntouched(ab, data)
        with self.assertRaises(pw.DataCloneError):
            pw.structured_clone(gone)        # nothing to copy either

    def test_a_live_view_makes_the_transfer_raise_buffer_error(self):
        for n in (SMALL, LARGE):
            with self.subTest(n=n):
                ab = filled(n)
                data = bytes(ab)
                for view in (lambda: memoryview(ab),
                             lambda: memoryview(pw.Uint8Array(ab, 4, 4))):
                    m = view()
                    with self.assertRaises(BufferError):
                        pw.structured_clone(ab, transfer=[ab])
                    self.assertUntouched(ab, data)
                    m.release()
                got = pw.structured_clone(ab, transfer=[ab])
                self.assertEqual(bytes(got), data)

    @unittest.skipIf(support.numpy is None, support.NO_NUMPY)
    def test_a_numpy_array_over_it_is_a_live_view(self):
        ab = filled(SMALL)
        arr = support.numpy.frombuffer(ab, dtype="u1")
        with self.assertRaises(BufferError):
            pw.structured_clone(ab, transfer=[ab])
        del arr
        pw.structured_clone(ab, transfer=[ab])
        self.assertTrue(ab.detached)

    def test_a_failed_clone_leaves_it_attached(self):
        ab, port1, port2 = filled(LARGE), *pw.MessageChannel()
        data = bytes(ab)
        for msg, transfer in (([ab, threading.Lock()], [ab]), (ab, [ab, object()]),
                              (ab, [ab, port1, port1])):
            with self.subTest(transfer=transfer), self.assertRaises(pw.DataCloneError):
                pw.structured_clone(msg, transfer=transfer)
            self.assertUntouched(ab, data)
        port1.close()
        port2.close()

    def test_transfer_list_must_be_iterable(self):
        ab = filled(SMALL)
        with self.assertRaises(pw.DataCloneError):
            pw.structured_clone(ab, transfer=ab)      # an ArrayBuffer is no list
        self.assertFalse(ab.detached)

    def test_through_a_message_channel(self):
        port1, port2 = pw.MessageChannel()
        for n in (SMALL, LARGE):
            ab = filled(n, 9)
            data = bytes(ab)
            port1.post_message(ab, transfer=[ab])
            self.assertTrue(ab.detached)
            got = port2.recv(support.TIMEOUT)
            self.assertEqual(bytes(got), data)
        port1.close()
        port2.close()


class TestWorkers(support.LeakCheck, support.Workers):
    def check_bounce(self, transfer_back):
        w = self.start(buffer_targets.ab_bounce, transfer_back)
        for n in (SMALL, LARGE):
            for transfer in (False, True):
                with self.subTest(n=n, transfer=transfer, back=transfer_back):
                    ab = filled(n, 5)
                    data = bytes(ab)
                    w.post_message(ab, transfer=[ab] if transfer else ())
                    self.assertEqual(ab.detached, transfer)
                    back = w.recv(support.TIMEOUT)
                    self.assertEqual(w.recv(support.TIMEOUT), transfer_back)
                    self.assertEqual(bytes(back), bytes([(data[0] + 1) % 256]) + data[1:])
                    if not transfer:
                        self.assertEqual(bytes(ab), data)   # ours was copied
        w.post_message(None)
        w.join(support.TIMEOUT)

    def check_views(self):
        ab = filled(LARGE)
        v1, v2 = pw.Uint8Array(ab, 1, 3), pw.Float64Array(ab, 8, 2)
        want = (LARGE, True, True, list(v1), list(v2))
        w = self.start(buffer_targets.ab_receive_views)
        w.post_message([ab, v1, v2], transfer=[ab])
        self.assertEqual(w.recv(support.TIMEOUT), want)
        self.assertEqual((len(v1), len(v2)), (0, 0))
        w.join(support.TIMEOUT)

    @unittest.skipUnless(support.HAVE_SUBINTERPRETERS, support.NO_SUBINTERPRETERS)
    def test_interpreter_worker(self):
        self.mode = "interpreter"
        self.check_bounce(False)
        self.check_bounce(True)
        self.check_views()

    def test_process_worker(self):
        self.mode = "process"
        self.check_bounce(False)
        self.check_bounce(True)
        self.check_views()


if __name__ == "__main__":
    unittest.main()
