# SPDX-License-Identifier: GPL-2.0
"""Every typed array type (Int8Array ... Float64Array) as JavaScript has
them: construction over a SharedArrayBuffer, an ArrayBuffer or a length,
element semantics (wrapping, clamping, float32 rounding), Atomics on the
integer types only, wait/notify on Int32Array and Int64Array only, the
buffer protocol, detached buffers, and how they travel (shared over a
SharedArrayBuffer, copied with their ArrayBuffer)."""

import math
import pickle
import struct
import sys
import threading
import unittest

import pyshm_workers as pw

import buffer_targets
import support

# type, element size, struct format, signed, kind ("int", "clamped", "float")
TYPES = [
    (pw.Int8Array, 1, "b", True, "int"),
    (pw.Uint8Array, 1, "B", False, "int"),
    (pw.Uint8ClampedArray, 1, "B", False, "clamped"),
    (pw.Int16Array, 2, "h", True, "int"),
    (pw.Uint16Array, 2, "H", False, "int"),
    (pw.Int32Array, 4, "i", True, "int"),
    (pw.Uint32Array, 4, "I", False, "int"),
    (pw.Int64Array, 8, "q", True, "int"),
    (pw.Uint64Array, 8, "Q", False, "int"),
    (pw.Float32Array, 4, "f", True, "float"),
    (pw.Float64Array, 8, "d", True, "float"),
]
INT_TYPES = [t for t in TYPES if t[4] == "int"]
NO_ATOMICS = [pw.Uint8ClampedArray, pw.Float32Array, pw.Float64Array]
WAITABLE = [pw.Int32Array, pw.Int64Array]
ATOMIC_OPS = [("load", (0,)), ("store", (0, 1)), ("add", (0, 1)), ("sub", (0, 1)),
              ("and_", (0, 1)), ("or_", (0, 1)), ("xor", (0, 1)), ("exchange", (0, 1)),
              ("compare_exchange", (0, 0, 1))]


def limits(size, signed):
    bits = 8 * size
    return (-(1 << bits - 1), (1 << bits - 1) - 1) if signed else (0, (1 << bits) - 1)


class TestConstruction(support.LeakCheck):
    def test_every_type_is_exported_with_its_element_size(self):
        for cls, size, fmt, _, _ in TYPES:
            with self.subTest(cls.__name__):
                self.assertIs(getattr(pw, cls.__name__), cls)
                self.assertIn(cls.__name__, pw.__all__)
                self.assertEqual(cls.BYTES_PER_ELEMENT, size)
                a = cls(pw.SharedArrayBuffer(4 * size))
                self.assertEqual((a.BYTES_PER_ELEMENT, len(a), a.length, a.byte_length),
                                 (size, 4, 4, 4 * size))

    def test_over_a_shared_array_buffer_or_an_array_buffer(self):
        for cls, size, _, _, _ in TYPES:
            for buf in (pw.SharedArrayBuffer(8 * size), pw.ArrayBuffer(8 * size)):
                with self.subTest(cls.__name__, buffer=type(buf).__name__):
                    a = cls(buf)
                    self.assertIs(a.buffer, buf)
                    self.assertEqual((len(a), a.byte_offset), (8, 0))
                    b = cls(buf, 2 * size, 3)
                    self.assertIs(b.buffer, buf)
                    self.assertEqual((len(b), b.byte_offset, b.byte_length), (3, 2 * size,
                                                                              3 * size))
                    b[0] = 5
                    self.assertEqual(a[2], 5)
                    self.assertEqual(len(cls(buf, byte_offset=8 * size)), 0)

    def test_keywords_buffer_and_sab(self):
        sab = pw.SharedArrayBuffer(16)
        self.assertIs(pw.Uint16Array(buffer=sab, byte_offset=2, length=3).buffer, sab)
        self.assertIs(pw.Uint16Array(sab=sab, byte_offset=2, length=3).buffer, sab)
        with self.assertRaises(TypeError):
            pw.Uint16Array(sab, sab=sab)
        with self.assertRaises(TypeError):
            pw.Uint16Array()

    def test_a_length_makes_a_new_array_buffer(self):
        for cls, size, _, _, _ in TYPES:
            with self.subTest(cls.__name__):
                a = cls(5)
                self.assertIsInstance(a.buffer, pw.ArrayBuffer)
                self.assertEqual((len(a), a.buffer.byte_length), (5, 5 * size))
                self.assertEqual(list(a), [0] * 5)
                self.assertEqual(len(cls(0)), 0)
        # A large one lies in a region of its own (moved without a copy).
        self.assertEqual(len(pw.Float64Array(1 << 15)), 1 << 15)

    def test_bad_lengths_and_offsets(self):
        for cls, size, _, _, _ in TYPES:
            with self.subTest(cls.__name__):
                for bad in (-1, 2**70, -2**70):
                    with self.assertRaises(ValueError):
                        cls(bad)
                for bad in ("8", 1.5, None, b"12345678", bytearray(8)):
                    with self.assertRaises(TypeError):
                        cls(bad)
                with self.assertRaises(TypeError):
                    cls(4, 0)           # T(length) takes nothing more
                for buf in (pw.SharedArrayBuffer(8 * size), pw.ArrayBuffer(8 * size)):
                    with self.assertRaises(ValueError):
                        cls(buf, -size)
                    with self.assertRaises(ValueError):
                        cls(buf, 9 * size)
                    with self.assertRaises(ValueError):
                        cls(buf, 0, 9)
                    with self.assertRaises(ValueError):
                        cls(buf, 0, -1)
                    with self.assertRaises(ValueError):
                        cls(buf, 2**70)
                    with self.assertRaises(ValueError):
                        cls(buf, 0, 2**70)
                    with self.assertRaises(TypeError):
                        cls(buf, "0")
                    if size > 1:
                        # misaligned, or not whole elements to the end
                        with self.assertRaises(ValueError):
                            cls(buf, 1)
                        with self.assertRaises(ValueError):
                            cls(type(buf)(8 * size + 1))

    def test_class_attributes_and_repr(self):
        a = pw.Int16Array(pw.ArrayBuffer(8), 2)
        self.assertIn("Int16Array length=3 byte_offset=2", repr(a))
        with self.assertRaises(TypeError):
            pickle.dumps(a)
        with self.assertRaises(TypeError):
            class Sub(pw.Int8Array):        # final, as the SharedArrayBuffer
                pass


class TestElements(support.LeakCheck):
    def test_integers_wrap_modulo_2_to_the_bits(self):
        for cls, size, _, signed, _ in INT_TYPES:
            lo, hi = limits(size, signed)
            span = 1 << 8 * size
            with self.subTest(cls.__name__):
                a = cls(6)
                a[0] = hi + 1
                a[1] = lo - 1
                a[2] = -1
                a[3] = span + 3
                a[4] = True
                self.assertEqual(a.store(5, 7 * span + 5), 7 * span + 5)
                self.assertEqual(a[:], [lo, hi, -1 if signed else hi, 3, 1, 5])
                self.assertEqual(a.load(5), 5)

    def test_integer_arrays_refuse_floats_and_strings(self):
        for cls, _, _, _, _ in INT_TYPES:
            a = cls(2)
            for bad in (1.0, "1", None, [1]):
                with self.subTest(cls.__name__, bad=bad):
                    with self.assertRaises(TypeError):
                        a[0] = bad
                    with self.assertRaises(TypeError):
                        a.store(0, bad)

    def test_uint8_clamped_clamps_and_rounds_half_to_even(self):
        a = pw.Uint8ClampedArray(16)
        values = [0.5, 1.5, 2.5, 3.5, 254.5, 253.5, -0.5, -3, 300, 2**80, -2**80,
                  float("nan"), float("inf"), float("-inf"), 127.4999, True]
        want = [0, 2, 2, 4, 254, 254, 0, 0, 255, 255, 0, 0, 255, 0, 127, 1]
        for i, v in enumerate(values):
            a[i] = v
        self.assertEqual(a[:], want)
        with self.assertRaises(TypeError):
            a[0] = "1"

    def test_float32_rounds_to_the_nearest_binary32(self):
        a = pw.Float32Array(6)
        a[0] = 0.1
        a[1] = 16777217            # 2**24 + 1: not a binary32
        a[2] = 3.4028235677973366e38 * 2
        a[3] = 1e-46               # below the smallest subnormal
        a[4] = float("nan")
        a[5] = -0.0
        self.assertEqual(a[0], struct.unpack("f", struct.pack("f", 0.1))[0])
        self.assertNotEqual(a[0], 0.1)
        self.assertEqual(a[1], 16777216.0)
        self.assertEqual(a[2], math.inf)
        self.assertEqual(a[3], 0.0)
        self.assertTrue(math.isnan(a[4]))
        self.assertEqual(math.copysign(1, a[5]), -1)
        with self.assertRaises(TypeError):
            a[0] = "1"

    def test_float64_keeps_every_double(self):
        a = pw.Float64Array(4)
        for i, v in enumerate((0.1, -1e308, 5e-324, 2**53 + 1)):
            a[i] = v
        self.assertEqual(a[:], [0.1, -1e308, 5e-324, float(2**53 + 1)])
        with self.assertRaises(OverflowError):
            a[0] = 10**400

    def test_index_errors_as_int32array(self):
        for cls, _, _, _, _ in TYPES:
            a = cls(4)
            with self.subTest(cls.__name__):
                for i in (4, -5, 2**70):
                    with self.assertRaises(IndexError):
                        a[i]
                with self.assertRaises(IndexError):
                    a[4] = 1
                with self.assertRaises(TypeError):
                    del a[0]
                with self.assertRaises(TypeError):
                    a[0:2] = [1, 2]
                self.assertEqual(a[-1], 0)

    def test_buffer_protocol_has_each_format(self):
        for cls, size, fmt, _, _ in TYPES:
            for buf in (pw.SharedArrayBuffer(4 * size), pw.ArrayBuffer(4 * size)):
                with self.subTest(cls.__name__, buffer=type(buf).__name__):
                    a = cls(buf)
                    with memoryview(a) as m:
                        self.assertEqual((m.format, m.itemsize, m.shape, m.readonly),
                                         (fmt, size, (4,), False))
                        m[1] = 3
                    self.assertEqual(a[1], 3)

    @unittest.skipIf(support.numpy is None, support.NO_NUMPY)
    def test_numpy_sees_each_dtype(self):
        np = support.numpy
        for cls, size, fmt, _, _ in TYPES:
            with self.subTest(cls.__name__):
                a = cls(3)
                arr = np.asarray(a)
                self.assertEqual(arr.dtype, np.dtype(fmt))
                arr[2] = 1
                self.assertEqual(a[2], 1)
                del arr


class TestAtomics(support.LeakCheck):
    def check_ops(self, a, lo, hi):
        self.assertEqual(a.store(0, 5), 5)
        self.assertEqual(a.add(0, 3), 5)
        self.assertEqual(a.sub(0, 2), 8)
        self.assertEqual(a.and_(0, 0b100), 6)
        self.assertEqual(a.or_(0, 0b1001), 4)
        self.assertEqual(a.xor(0, 0b1111), 13)
        self.assertEqual(a.exchange(0, 9), 2)
        self.assertEqual(a.compare_exchange(0, 1, 100), 9)
        self.assertEqual(a.compare_exchange(0, 9, 100), 9)
        self.assertEqual(a.load(0), 100)
        # both ways around the end, operands wrapped too
        a.store(1, hi)
        self.assertEqual(a.add(1, 1), hi)
        self.assertEqual(a.load(1), lo)
        self.assertEqual(a.sub(1, 1), lo)
        self.assertEqual(a.load(1), hi)
        span = hi - lo + 1
        a.store(2, 0)
        a.add(2, 2 * span + 3)
        self.assertEqual(a.load(2), 3)
        self.assertEqual(a.compare_exchange(2, 3 + span, 4), 3)
        self.assertEqual(a.load(2), 4)
        self.assertEqual(a.exchange(-1, 1), 0)

    def test_every_integer_type_over_both_buffers(self):
        for cls, size, _, signed, _ in INT_TYPES:
            for buf in (pw.SharedArrayBuffer(4 * size), pw.ArrayBuffer(4 * size)):
                with self.subTest(cls.__name__, buffer=type(buf).__name__):
                    self.check_ops(cls(buf), *limits(size, signed))
                    self.assertTrue(cls(buf).is_lock_free(size))

    def test_atomics_namespace_works_on_each_integer_type(self):
        for cls, size, _, signed, _ in INT_TYPES:
            with self.subTest(cls.__name__):
                a = cls(pw.SharedArrayBuffer(2 * size))
                lo, hi = limits(size, signed)
                self.assertEqual(pw.Atomics.store(a, 0, hi), hi)
                self.assertEqual(pw.Atomics.add(a, 0, 1), hi)
                self.assertEqual(pw.Atomics.load(a, 0), lo)
                self.assertEqual(pw.Atomics.compareExchange(a, 0, lo, 7), lo)
                self.assertEqual(getattr(pw.Atomics, "or")(a, 0, 8), 7)
                self.assertEqual(pw.Atomics.load(a, 0), 15)

    def test_no_atomics_on_clamped_and_float_types(self):
        for cls in NO_ATOMICS:
            a = cls(pw.SharedArrayBuffer(16))
            for op, args in ATOMIC_OPS:
                with self.subTest(cls.__name__, op=op):
                    with self.assertRaises(TypeError):
                        getattr(a, op)(*args)
                    with self.assertRaises(TypeError):
                        getattr(pw.Atomics, op)(a, *args)
            self.assertEqual(a[0], 0)

    def test_wait_and_notify_only_on_int32_and_int64(self):
        for cls, _, _, _, _ in TYPES:
            if cls in WAITABLE:
                continue
            a = cls(pw.SharedArrayBuffer(16))
            with self.subTest(cls.__name__):
                with self.assertRaises(TypeError):
                    a.wait(0, 0, 0)
                with self.assertRaises(TypeError):
                    a.notify(0)
                with self.assertRaises(TypeError):
                    a.wait_async(0, 0, 0)
                with self.assertRaises(TypeError):
                    pw.Atomics.wait(a, 0, 0, 0)
                with self.assertRaises(TypeError):
                    pw.Atomics.notify(a, 0)
                with self.assertRaises(TypeError):
                    pw.Atomics.wait_async(a, 0, 0, 0)

    def test_wait_needs_shared_memory_notify_finds_nobody_without(self):
        for cls in WAITABLE:
            a = cls(4)
            with self.subTest(cls.__name__):
                with self.assertRaises(TypeError):
                    a.wait(0, 0, 0)
                with self.assertRaises(TypeError):
                    a.wait_async(0, 0, 0)
                self.assertEqual(a.notify(0), 0)
                with self.assertRaises(IndexError):
                    a.notify(4)

    def test_concurrent_small_adds_are_not_lost(self):
        for cls in (pw.Int8Array, pw.Uint16Array):
            a = cls(pw.SharedArrayBuffer(8))

            def work():
                for _ in range(20000):
                    a.add(1, 1)

            threads = [threading.Thread(target=work) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            with self.subTest(cls.__name__):
                self.assertEqual(a[1], 80000 % (1 << 8 * cls.BYTES_PER_ELEMENT) if
                                 cls is pw.Uint16Array else
                                 (80000 + 128) % 256 - 128)
                self.assertEqual(a[0], 0)
                self.assertEqual(a[2], 0)


class TestDetached(support.LeakCheck):
    def test_a_view_of_a_detached_buffer(self):
        for cls, size, _, _, kind in TYPES:
            with self.subTest(cls.__name__):
                a = cls(4)
                b = cls(a.buffer, size, 2)
                pw.structured_clone(None, transfer=[a.buffer])
                self.assertTrue(a.buffer.detached)
                for v in (a, b):
                    self.assertEqual((len(v), v.length, v.byte_length, v.byte_offset),
                                     (0, 0, 0, 0))
                    with self.assertRaises(TypeError):
                        v[0]
                    with self.assertRaises(TypeError):
                        v[0] = 1
                    with self.assertRaises(TypeError):
                        v[:]
                    with self.assertRaises(TypeError):
                        memoryview(v)
                    if kind == "int":
                        with self.assertRaises(TypeError):
                            v.load(0)
                        with self.assertRaises(TypeError):
                            v.add(0, 1)
                with self.assertRaises(TypeError):
                    cls(a.buffer)


class TestTravel(support.LeakCheck, support.Workers):
    def test_over_shared_memory_they_are_shared(self):
        sab = pw.SharedArrayBuffer(64)
        arrays = [cls(sab, 8, 2) for cls, *_ in TYPES]
        got = pw.structured_clone(arrays)
        for a, b in zip(arrays, got):
            with self.subTest(type(a).__name__):
                self.assertIs(type(b), type(a))
                self.assertEqual((b.byte_offset, len(b)), (8, 2))
                self.assertIs(b.buffer, got[0].buffer)
        got[0][0] = 7                       # Int8Array at byte 8
        self.assertEqual(arrays[1][0], 7)   # the sender's Uint8Array sees it

    def test_over_an_array_buffer_they_are_copied_with_it(self):
        ab = pw.ArrayBuffer(64)
        arrays = [cls(ab, 8, 2) for cls, *_ in TYPES]
        got = pw.structured_clone([ab] + arrays)
        self.assertIsNot(got[0], ab)
        for a, b in zip(arrays, got[1:]):
            with self.subTest(type(a).__name__):
                self.assertIs(type(b), type(a))
                self.assertIs(b.buffer, got[0])
                self.assertEqual((b.byte_offset, len(b)), (8, 2))
        got[1][0] = 7
        self.assertEqual(arrays[0][0], 0)   # a copy: the sender's is unchanged
        self.assertEqual(got[2][0], 7)      # one buffer on the receiving side

    def test_a_length_tracking_view_still_tracks(self):
        sab = pw.SharedArrayBuffer(8, max_byte_length=64)
        a = pw.Uint16Array(sab)
        b = pw.structured_clone(a)
        sab.grow(64)
        self.assertEqual(len(b), 32)

    def check_workers(self, mode):
        sab, ab = pw.SharedArrayBuffer(64), pw.ArrayBuffer(64)
        shared = [cls(sab, 8, 2) for cls, *_ in TYPES]
        own = [cls(ab, 16, 3) for cls, *_ in TYPES]
        w = self.start(buffer_targets.typed_mark, shared + own)
        got = w.recv(support.TIMEOUT)
        w.join(support.TIMEOUT)
        for a, (name, bufname, off, values) in zip(shared + own, got):
            self.assertEqual(name, type(a).__name__)
            self.assertEqual(bufname, type(a.buffer).__name__)
            self.assertEqual(values[0], 1)
        # The last shared array wrote last: it is what the SAB holds now.
        self.assertEqual(shared[-1][:], [1.0, 2.0])
        self.assertEqual(bytes(memoryview(ab)), bytes(64))   # copies only

    @unittest.skipUnless(support.HAVE_SUBINTERPRETERS, support.NO_SUBINTERPRETERS)
    def test_to_an_interpreter_worker(self):
        self.mode = "interpreter"
        self.check_workers("interpreter")

    def test_to_a_process_worker(self):
        self.mode = "process"
        self.check_workers("process")


if __name__ == "__main__":
    unittest.main()
