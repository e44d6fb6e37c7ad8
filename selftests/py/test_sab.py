# SPDX-License-Identifier: GPL-2.0
"""SharedArrayBuffer: construction, buffer protocol, growth, lifetime, and
the module in an own-GIL subinterpreter."""

import gc
import os
import pickle
import sys
import unittest
import weakref

import pyshm_workers as pw
from pyshm_workers import _core

import support


class TestConstruction(support.LeakCheck):
    def test_new_buffer_is_zero_filled(self):
        sab = pw.SharedArrayBuffer(4096)
        self.assertEqual(sab.byte_length, 4096)
        self.assertEqual(len(sab), 4096)
        self.assertEqual(bytes(memoryview(sab)), bytes(4096))
        self.assertFalse(sab.growable)
        self.assertEqual(sab.max_byte_length, 4096)

    def test_zero_length_buffer(self):
        sab = pw.SharedArrayBuffer(0)
        self.assertEqual(sab.byte_length, 0)
        self.assertEqual(bytes(memoryview(sab)), b"")

    def test_bad_sizes_are_refused(self):
        with self.assertRaises(ValueError):
            pw.SharedArrayBuffer(-1)
        with self.assertRaises(ValueError):
            pw.SharedArrayBuffer(2**70)
        with self.assertRaises(ValueError):
            pw.SharedArrayBuffer(2**62)
        with self.assertRaises(ValueError):
            pw.SharedArrayBuffer(100, max_byte_length=99)
        with self.assertRaises(ValueError):
            pw.SharedArrayBuffer(0, max_byte_length=-5)

    def test_bad_types_are_refused(self):
        for bad in (1.5, "10", None, b"x", [10]):
            with self.subTest(bad=bad), self.assertRaises(TypeError):
                pw.SharedArrayBuffer(bad)
        with self.assertRaises(TypeError):
            pw.SharedArrayBuffer(10, max_byte_length=20.0)
        with self.assertRaises(TypeError):
            pw.SharedArrayBuffer()
        with self.assertRaises(TypeError):
            pw.SharedArrayBuffer(1, 2, 3)

    def test_index_like_sizes_are_accepted(self):
        class Size:
            def __index__(self):
                return 64
        self.assertEqual(pw.SharedArrayBuffer(Size()).byte_length, 64)
        self.assertEqual(pw.SharedArrayBuffer(True).byte_length, 1)

    def test_repr_names_sizes(self):
        self.assertEqual(repr(pw.SharedArrayBuffer(8)), "<SharedArrayBuffer byte_length=8>")
        self.assertEqual(repr(pw.SharedArrayBuffer(8, 16)),
                         "<SharedArrayBuffer byte_length=8 max_byte_length=16 growable>")

    def test_cannot_be_pickled(self):
        with self.assertRaises(TypeError):
            pickle.dumps(pw.SharedArrayBuffer(8))


def backing_limit():
    """RAM + swap in bytes, as /proc/meminfo gives them (sysinfo()'s)."""
    info = {}
    with open("/proc/meminfo") as f:
        for line in f:
            key, value = line.split(":")
            info[key] = int(value.split()[0]) * 1024
    return info["MemTotal"] + info["SwapTotal"]


class TestSizeLimits(support.LeakCheck):
    """What cannot be backed is refused with an exact message: sizes past
    any region (ValueError), past RAM + swap or PYSHM_MAX_REGION_BYTES
    (MemoryError); negative ones are called negative, huge ones never."""

    MAX = 1 << 46       # PYSHM_REGION_SIZE_MAX

    def setUp(self):
        super().setUp()
        old = os.environ.pop("PYSHM_MAX_REGION_BYTES", None)
        if old is not None:
            self.addCleanup(os.environ.__setitem__, "PYSHM_MAX_REGION_BYTES", old)
        self.addCleanup(os.environ.pop, "PYSHM_MAX_REGION_BYTES", None)

    def assertRefused(self, exc, message, fn, *args):
        with self.assertRaises(exc) as cm:
            fn(*args)
        self.assertEqual(str(cm.exception), message)

    def test_huge_sizes_are_too_large_not_negative(self):
        too_large = f"is too large (at most {self.MAX})"
        for n in (2**70, 2**63, 2**64 + 5, self.MAX + 1):
            with self.subTest(n=n):
                self.assertRefused(ValueError, f"byte_length {too_large}",
                                   pw.SharedArrayBuffer, n)
                self.assertRefused(ValueError, f"max_byte_length {too_large}",
                                   pw.SharedArrayBuffer, 8, n)
                self.assertRefused(ValueError, f"new_length {too_large}",
                                   pw.SharedArrayBuffer(8, 16).grow, n)

    def test_negative_sizes_are_negative(self):
        for n in (-1, -2**70):
            with self.subTest(n=n):
                self.assertRefused(ValueError, "byte_length must not be negative",
                                   pw.SharedArrayBuffer, n)
                self.assertRefused(ValueError, "max_byte_length must not be negative",
                                   pw.SharedArrayBuffer, 0, n)
                self.assertRefused(ValueError, "new_length must not be negative",
                                   pw.SharedArrayBuffer(8, 16).grow, n)

    def test_sizes_memory_cannot_back_are_refused(self):
        limit = backing_limit()
        if limit >= self.MAX:
            self.skipTest("RAM + swap is 64 TiB or more")
        why = f"is more than memory can back: RAM + swap is {limit} bytes " \
              "(PYSHM_MAX_REGION_BYTES sets another limit)"
        self.assertRefused(MemoryError, f"byte_length {self.MAX} {why}",
                           pw.SharedArrayBuffer, self.MAX)
        self.assertRefused(MemoryError, f"byte_length {limit + 1} {why}",
                           pw.SharedArrayBuffer, limit + 1)
        self.assertRefused(MemoryError, f"max_byte_length {self.MAX} {why}",
                           pw.SharedArrayBuffer, 8, self.MAX)

    def test_sizes_memory_can_back_are_made(self):
        self.assertEqual(pw.SharedArrayBuffer(1 << 20).byte_length, 1 << 20)
        sab = pw.SharedArrayBuffer(0, max_byte_length=min(backing_limit(), 1 << 30))
        sab.grow(4096)
        self.assertEqual(sab.byte_length, 4096)

    def test_environment_sets_the_limit(self):
        os.environ["PYSHM_MAX_REGION_BYTES"] = "65536"
        self.assertEqual(pw.SharedArrayBuffer(65536).byte_length, 65536)
        why = "is more than PYSHM_MAX_REGION_BYTES (65536)"
        self.assertRefused(MemoryError, f"byte_length 65537 {why}",
                           pw.SharedArrayBuffer, 65537)
        self.assertRefused(MemoryError, f"max_byte_length 131072 {why}",
                           pw.SharedArrayBuffer, 8, 131072)
        os.environ["PYSHM_MAX_REGION_BYTES"] = "131072"
        sab = pw.SharedArrayBuffer(8, 131072)
        os.environ["PYSHM_MAX_REGION_BYTES"] = "65536"
        sab.grow(65536)
        self.assertRefused(MemoryError, f"new_length 65540 {why}", sab.grow, 65540)
        self.assertEqual(sab.byte_length, 65536)
        for bad in ("abc", "-5", "12k", "1e6", " "):
            os.environ["PYSHM_MAX_REGION_BYTES"] = bad
            with self.subTest(bad=bad):
                self.assertRefused(ValueError, "PYSHM_MAX_REGION_BYTES must be a number of "
                                   f"bytes, not {bad!r}", pw.SharedArrayBuffer, 8)

    def test_typed_array_offsets_and_lengths(self):
        sab = pw.SharedArrayBuffer(16)
        self.assertRefused(ValueError, f"byte_offset {2**70} is past the end (16)",
                           pw.Int32Array, sab, 2**70)
        self.assertRefused(ValueError, "byte_offset must be a non-negative multiple of 8",
                           pw.Int64Array, sab, -2**70)
        self.assertRefused(ValueError, f"byte_offset 4 + length {2**70} elements of 4 bytes "
                           "exceeds the buffer (16 bytes)", pw.Int32Array, sab, 4, 2**70)
        self.assertRefused(ValueError, "length must not be negative",
                           pw.Int32Array, sab, 0, -2**70)
        self.assertEqual(len(pw.Int32Array(sab, 4, 3)), 3)
        self.assertEqual(len(pw.Int64Array(sab, length=2)), 2)


class TestBuffer(support.LeakCheck):
    def test_writable_buffer_protocol(self):
        sab = pw.SharedArrayBuffer(16)
        m = memoryview(sab)
        self.assertFalse(m.readonly)
        self.assertEqual(m.format, "B")
        m[3] = 200
        m[8:12] = b"abcd"
        self.assertEqual(bytes(memoryview(sab))[3], 200)
        self.assertEqual(bytes(memoryview(sab)[8:12]), b"abcd")
        m.release()

    def test_views_share_the_memory(self):
        sab = pw.SharedArrayBuffer(8)
        a, b = memoryview(sab), memoryview(sab)
        a[0] = 7
        self.assertEqual(b[0], 7)

    def test_bytes_and_bytearray_copy_out(self):
        sab = pw.SharedArrayBuffer(4)
        memoryview(sab)[:] = b"wxyz"
        self.assertEqual(bytes(sab), b"wxyz")
        self.assertEqual(bytearray(sab), bytearray(b"wxyz"))

    def test_slice_copies_into_a_new_buffer(self):
        sab = pw.SharedArrayBuffer(10)
        memoryview(sab)[:] = b"0123456789"
        s = sab.slice(2, 5)
        self.assertIsInstance(s, pw.SharedArrayBuffer)
        self.assertEqual(bytes(s), b"234")
        memoryview(s)[0] = ord("X")
        self.assertEqual(bytes(sab)[2:3], b"2")
        self.assertEqual(bytes(sab.slice()), b"0123456789")
        self.assertEqual(bytes(sab.slice(-3)), b"789")
        self.assertEqual(bytes(sab.slice(8, 2)), b"")
        with self.assertRaises(TypeError):
            sab.slice("a")

    @unittest.skipIf(support.numpy is None, support.NO_NUMPY)
    def test_numpy_frombuffer_is_writable_and_shared(self):
        np = support.numpy
        sab = pw.SharedArrayBuffer(64)
        arr = np.frombuffer(sab, dtype=np.int32)
        self.assertEqual(arr.shape, (16,))
        self.assertTrue(arr.flags.writeable)
        arr[3] = 123456
        self.assertEqual(pw.Int32Array(sab)[3], 123456)
        pw.Int32Array(sab).store(4, -9)
        self.assertEqual(arr[4], -9)
        del arr


class TestGrow(support.LeakCheck):
    def test_growable_buffer_grows(self):
        sab = pw.SharedArrayBuffer(8, max_byte_length=64)
        self.assertTrue(sab.growable)
        self.assertEqual(sab.max_byte_length, 64)
        sab.grow(8)
        sab.grow(40)
        self.assertEqual(sab.byte_length, 40)
        self.assertEqual(bytes(memoryview(sab)), bytes(40))
        memoryview(sab)[39] = 1
        sab.grow(64)
        self.assertEqual(len(sab), 64)

    def test_views_before_a_grow_keep_their_length(self):
        sab = pw.SharedArrayBuffer(8, max_byte_length=64)
        old = memoryview(sab)
        sab.grow(32)
        self.assertEqual(len(old), 8)
        old[7] = 9
        self.assertEqual(memoryview(sab)[7], 9)
        self.assertEqual(len(memoryview(sab)), 32)

    def test_grow_refuses_to_shrink_or_pass_the_maximum(self):
        sab = pw.SharedArrayBuffer(16, max_byte_length=32)
        with self.assertRaises(ValueError):
            sab.grow(15)
        with self.assertRaises(ValueError):
            sab.grow(33)
        with self.assertRaises(ValueError):
            sab.grow(-1)
        with self.assertRaises(TypeError):
            sab.grow(20.0)
        self.assertEqual(sab.byte_length, 16)

    def test_fixed_buffer_cannot_grow(self):
        sab = pw.SharedArrayBuffer(16)
        with self.assertRaises(TypeError):
            sab.grow(32)

    def test_growth_is_seen_by_another_process(self):
        sab = pw.SharedArrayBuffer(8, max_byte_length=1 << 20)
        r, w = os.pipe()

        def child():
            os.read(r, 1)
            return sab.byte_length == 1 << 20 and memoryview(sab)[-1] == 5

        pid = os.fork()
        if pid == 0:
            os._exit(0 if child() else 1)
        sab.grow(1 << 20)
        memoryview(sab)[-1] = 5
        os.write(w, b"x")
        _, status = os.waitpid(pid, 0)
        os.close(r)
        os.close(w)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0)


class TestLifetime(support.LeakCheck):
    def test_memory_goes_with_the_last_object(self):
        before = _core.stats()["regions"]
        sab = pw.SharedArrayBuffer(1 << 20)
        self.assertEqual(_core.stats()["regions"], before + 1)
        del sab
        self.assertEqual(_core.stats()["regions"], before)

    def test_views_keep_the_memory_alive(self):
        before = _core.stats()["regions"]
        sab = pw.SharedArrayBuffer(16)
        view = memoryview(sab)
        arr = pw.Int32Array(sab)
        del sab
        view[0] = 1
        self.assertEqual(arr[0], 1)
        del view
        self.assertEqual(_core.stats()["regions"], before + 1)
        del arr
        self.assertEqual(_core.stats()["regions"], before)

    def test_cycles_holding_buffers_are_collected(self):
        before = _core.stats()["regions"]
        holder = [pw.SharedArrayBuffer(64), pw.Int64Array(pw.SharedArrayBuffer(64))]
        holder.append(holder)
        del holder
        gc.collect()
        self.assertEqual(_core.stats()["regions"], before)

    def test_weak_references(self):
        sab = pw.SharedArrayBuffer(8)
        ref = weakref.ref(sab)
        self.assertIs(ref(), sab)
        del sab
        self.assertIsNone(ref())

    def test_repeated_use_does_not_leak(self):
        import resource
        for _ in range(200):
            pw.SharedArrayBuffer(4096)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        for _ in range(2000):
            s = pw.SharedArrayBuffer(1 << 16, max_byte_length=1 << 17)
            memoryview(s)[0] = 1
            s.grow(1 << 17)
            pw.Int32Array(s).add(0, 1)
        del s
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss
        self.assertLess(grown, 20 * 1024, f"max RSS grew by {grown} KiB")


class TestSharedWithProcess(support.LeakCheck):
    def test_forked_child_writes_parent_reads(self):
        sab = pw.SharedArrayBuffer(4096)

        def child():
            memoryview(sab)[100:105] = b"hello"

        self.assertEqual(support.fork_and_check(child), 0)
        self.assertEqual(bytes(memoryview(sab)[100:105]), b"hello")


@unittest.skipUnless(support.HAVE_SUBINTERPRETERS, support.NO_SUBINTERPRETERS)
class TestSubinterpreter(unittest.TestCase):
    def test_imports_and_works_in_an_own_gil_interpreter(self):
        mod = support.subinterpreters()
        iid = support.new_isolated_interpreter()
        try:
            support.run_in_interpreter(iid, """if True:
                import pyshm_workers as pw
                from pyshm_workers import _core
                sab = pw.SharedArrayBuffer(64, max_byte_length=128)
                a = pw.Int32Array(sab)
                assert a.add(0, 5) == 0 and a.load(0) == 5
                assert a.wait(0, 4) == "not-equal"
                sab.grow(128)
                assert len(a) == 32
                del a, sab
                assert _core.stats()["regions"] >= 0
            """)
        finally:
            mod.destroy(iid)

    def test_module_state_is_per_interpreter(self):
        mod = support.subinterpreters()
        iid = support.new_isolated_interpreter()
        try:
            support.run_in_interpreter(iid, f"""if True:
                import pyshm_workers as pw
                assert id(pw.SharedArrayBuffer) != {id(pw.SharedArrayBuffer)}
                assert id(pw.DataCloneError) != {id(pw.DataCloneError)}
            """)
        finally:
            mod.destroy(iid)

    def test_interpreters_come_and_go(self):
        mod = support.subinterpreters()
        for _ in range(5):
            iid = support.new_isolated_interpreter()
            support.run_in_interpreter(iid, "import pyshm_workers as pw; pw.SharedArrayBuffer(8)")
            mod.destroy(iid)


if __name__ == "__main__":
    unittest.main()
