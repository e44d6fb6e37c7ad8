# SPDX-License-Identifier: GPL-2.0
"""numpy arrays as clone types of their own (wire-format.rst, "numpy
arrays"): every dtype family, byte order, shape and order round-trips equal
and independent; object arrays go element by element with identity and
cycles; arrays over a SharedArrayBuffer arrive as views of the same memory;
a large array's receiver gets it over the region its message came in, no
copy, given back when it dies; an interpreter worker refuses arrays
cleanly; hostile array messages are refused, never read past. Without
numpy nothing imports it."""

import array
import gc
import random
import struct
import unittest
import warnings

import pyshm_workers as pw
from pyshm_workers import _core

import support
import targets
import test_clone_hostile as hostile

np = support.numpy
clone = pw.structured_clone
TIMEOUT = support.TIMEOUT
NDARRAY, NDARRAY_OBJECT, NDARRAY_VIEW = 0x24, 0x25, 0x26


def tag(msg):
    return msg[32] & 0x3F


def zigzag(v):
    return ((v << 1) ^ (v >> 63)) & (2**64 - 1)


if np is not None:
    class ArraySub(np.ndarray):
        """A subclass: not an ndarray of the wire, pickled as before."""


@unittest.skipIf(np is None, support.NO_NUMPY)
class TestClone(unittest.TestCase):
    def assertCloned(self, a):
        b = clone(a)
        self.assertIs(type(b), np.ndarray)
        self.assertEqual(b.dtype, a.dtype)
        self.assertEqual(b.dtype.str, a.dtype.str)
        self.assertEqual(b.shape, a.shape)
        self.assertEqual(a.tobytes(), b.tobytes())
        self.assertTrue(b.flags.writeable)
        self.assertTrue(b.flags.owndata or b.base is not None)
        self.assertFalse(np.shares_memory(a, b))
        msg = _core._encode(a)
        self.assertEqual(tag(msg), NDARRAY, a.dtype)
        _core._verify(msg)
        return b

    def test_every_plain_dtype_family_round_trips(self):
        for dt in ["?", "i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8", "f2", "f4", "f8",
                   np.longdouble, "c8", "c16", np.clongdouble, "M8[ns]", "M8[D]", "M8",
                   "m8[s]", "m8[25us]", "S7", "U5", "V12"]:
            a = np.zeros(6, dtype=dt)
            a.view("u1")[:] = np.arange(a.nbytes, dtype="u1") * 7
            self.assertCloned(a)

    def test_byte_order_is_kept(self):
        for dt in [">i4", "<i4", ">f8", ">c16", ">M8[ms]", ">U3", ">f2"]:
            a = np.arange(5).astype(dt)
            b = self.assertCloned(a)
            self.assertEqual(b.dtype.byteorder, a.dtype.byteorder)
            self.assertTrue((a == b).all())

    def test_longdouble_keeps_its_extra_precision(self):
        a = np.array([1, 3, 7], dtype=np.longdouble) / np.longdouble(3)
        b = self.assertCloned(a)
        self.assertTrue((a == b).all())

    def test_structured_and_subarray_dtypes(self):
        inner = np.dtype([("c", ">f8", (2, 3)), ("d", "U3")])
        dts = [
            np.dtype([("a", "<i4"), ("b", inner)]),
            np.dtype([("x", "u1"), ("y", "<f8")], align=True),
            np.dtype({"names": ["p", "q"], "formats": ["<i2", "<i2"], "offsets": [0, 8],
                      "itemsize": 16}),
            np.dtype({"names": ["t"], "formats": ["<f4"], "titles": ["Title"]}),
            np.dtype([("s", "S3", (2,)), ("when", "<M8[us]")]),
        ]
        for dt in dts:
            a = np.zeros(4, dtype=dt)
            a.view("u1")[:] = np.arange(a.nbytes, dtype="u1")
            b = self.assertCloned(a)
            self.assertEqual(b.dtype.fields, a.dtype.fields)
            self.assertEqual(b.dtype.isalignedstruct, a.dtype.isalignedstruct)

    def test_shapes_zero_d_and_empty(self):
        for a in [np.full((), 2.5), np.zeros((0,)), np.zeros((3, 0, 2), "i2"),
                  np.arange(2 * 3 * 4 * 5 * 2).reshape(2, 3, 4, 5, 2),
                  np.ones((1,) * 32, "u1"), np.zeros((), "U4")]:
            self.assertCloned(a)

    def test_c_and_fortran_order_are_kept(self):
        c = np.arange(24.0).reshape(4, 6)
        f = np.asfortranarray(c)
        self.assertTrue(self.assertCloned(c).flags.c_contiguous)
        b = self.assertCloned(f)
        self.assertTrue(b.flags.f_contiguous)
        self.assertFalse(b.flags.c_contiguous)
        self.assertTrue((b == f).all())

    def test_non_contiguous_arrays_arrive_contiguous(self):
        base = np.arange(200, dtype=">i4").reshape(10, 20)
        for a in [base[::2, 1::3], base.T[::-1], base[:, 5], np.broadcast_to(base[0], (3, 20))]:
            b = clone(a)
            self.assertTrue((a == b).all())
            self.assertEqual(a.dtype, b.dtype)
            self.assertTrue(b.flags.c_contiguous)
            self.assertTrue(b.flags.writeable)

    def test_the_clone_is_independent(self):
        a = np.arange(10)
        b = clone(a)
        b[0] = 99
        self.assertEqual(a[0], 0)

    def test_two_references_to_one_array_arrive_as_one(self):
        a = np.arange(5.0)
        got = clone([a, {"k": a}, (a,)])
        self.assertIs(got[0], got[1]["k"])
        self.assertIs(got[0], got[2][0])
        view = a[1:]
        got = clone([a, view])
        self.assertIsNot(got[0], got[1])

    def test_object_arrays_go_element_by_element(self):
        shared = [1, 2]
        a = np.empty((2, 3), dtype=object)
        a[0] = ["x", shared, 3.5]
        a[1] = [shared, None, {"d": (1,)}]
        msg = _core._encode(a)
        self.assertEqual(tag(msg), NDARRAY_OBJECT)
        _core._verify(msg)
        b = clone(a)
        self.assertEqual(b.dtype, object)
        self.assertEqual(b.shape, (2, 3))
        self.assertEqual(b.tolist(), a.tolist())
        self.assertIs(b[0, 1], b[1, 0])
        f = np.asfortranarray(a)
        bf = clone(f)
        self.assertTrue(bf.flags.f_contiguous)
        self.assertEqual(bf.tolist(), a.tolist())
        self.assertEqual(clone(a[:, ::2]).tolist(), a[:, ::2].tolist())

    def test_object_arrays_keep_cycles(self):
        a = np.empty(3, dtype=object)
        a[0] = a
        a[1] = [a]
        a[2] = (a, 1)
        b = clone(a)
        self.assertIs(b[0], b)
        self.assertIs(b[1][0], b)
        self.assertIs(b[2][0], b)

    def test_other_items_still_travel_through_pickle(self):
        a = np.zeros(2, dtype=[("o", object), ("f", "f8")])
        a[0] = ("x", 1.5)
        b = clone(a)
        self.assertEqual(b.tolist(), a.tolist())
        sub = np.arange(3).view(ArraySub)
        self.assertEqual(tag(_core._encode(sub)) & 0x3F, 0x1D)      # REDUCE
        got = clone(sub)
        self.assertIs(type(got), ArraySub)
        self.assertEqual(got.tolist(), [0, 1, 2])

    def test_arrays_inside_other_values(self):
        a = np.arange(6).reshape(2, 3)
        got = clone({"a": a, "list": [a.T, 1], "t": (np.float32(1.5), a)})
        self.assertIs(got["a"], got["t"][1])
        self.assertTrue((got["list"][0] == a.T).all())


@unittest.skipIf(np is None, support.NO_NUMPY)
class TestNoLeaks(support.LeakCheck):
    def test_cloning_and_decoding_leaks_nothing(self):
        import tracemalloc
        sab = pw.SharedArrayBuffer(4096)
        obj = np.empty(3, dtype=object)         # no cycle: ndarrays are not
        obj[:] = [1, "x", [2.5]]                # tracked by the cyclic GC
        values = [np.arange(1000.0), np.zeros((3, 4), ">i2", order="F"),
                  np.zeros(5, dtype=[("a", "<i4"), ("b", "U3", (2,))]), obj,
                  np.arange(20)[::3], np.full((), 1.5)]
        bad = [ndarray((3,), 8, bytes(16), s("<f8")), ndarray((1,), 8, bytes(8), s("|O"))]

        def run():
            for v in values:
                clone(v)
                _core._decode(_core._encode(v))
            clone([np.frombuffer(sab, "<i4")[1:].reshape(-1, 3)[::2], sab])
            for m in bad:
                try:
                    _core._decode(m)
                except pw.DataCloneError:
                    pass

        for _ in range(200):
            run()
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(600):
                run()
            gc.collect()
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        # Caches and free lists settle at some 100 KiB (numpy 2); one small
        # object lost per value and run would be 600 KiB, an array's data
        # several MiB.
        self.assertLess(grown, 256 << 10)


@unittest.skipIf(np is None, support.NO_NUMPY)
class TestSharedArrayBufferViews(unittest.TestCase):
    def test_a_view_arrives_over_the_same_memory(self):
        sab = pw.SharedArrayBuffer(4096)
        views = [
            np.frombuffer(sab, dtype="<i4"),
            np.frombuffer(sab, dtype="<f8", offset=8, count=100).reshape(10, 10),
            np.frombuffer(sab, dtype="u1")[16:].reshape(40, 102)[::3, 1::7],
            np.frombuffer(sab, dtype=">i2")[::-1],
            np.frombuffer(sab, dtype="<i4", count=64).reshape(8, 8).T,
        ]
        def offset(arr, buf):
            return (arr.__array_interface__["data"][0] -
                    np.frombuffer(buf, "u1").__array_interface__["data"][0])

        for v in views:
            b = clone(v)
            self.assertIs(type(b.base), pw.SharedArrayBuffer, v.strides)
            self.assertEqual((b.dtype, b.shape, b.strides), (v.dtype, v.shape, v.strides))
            self.assertEqual(offset(b, b.base), offset(v, sab))
            b.flat[0] = 7
            self.assertEqual(v.flat[0], 7)

    def test_the_view_keeps_the_buffer_alive(self):
        sab = pw.SharedArrayBuffer(64)
        b = clone(np.frombuffer(sab, dtype="u1")[8:16])
        del sab
        gc.collect()
        b[:] = 5
        self.assertEqual(bytes(b.base)[8:16], b"\x05" * 8)

    def test_views_of_one_buffer_share_its_clone(self):
        sab = pw.SharedArrayBuffer(64)
        x = np.frombuffer(sab, "u1")[:8]
        y = np.frombuffer(sab, "u1")[8:]
        got = clone([x, y, sab])
        self.assertIs(got[0].base, got[2])
        self.assertIs(got[1].base, got[2])

    def test_read_only_views_stay_read_only(self):
        sab = pw.SharedArrayBuffer(64)
        v = np.frombuffer(sab, "u1")
        v.flags.writeable = False
        self.assertFalse(clone(v).flags.writeable)

    def test_a_view_is_not_encoded_without_a_transfer(self):
        sab = pw.SharedArrayBuffer(64)
        with self.assertRaises(pw.DataCloneError):
            _core._encode(np.frombuffer(sab, "u1"))

    def test_arrays_over_other_buffers_are_copied(self):
        ba = bytearray(64)
        b = clone(np.frombuffer(ba, "u1"))
        b[0] = 1
        self.assertEqual(ba[0], 0)


@unittest.skipIf(np is None, support.NO_NUMPY)
class TestProcessWorker(support.Workers, support.LeakCheck):
    mode = "process"

    def test_a_large_array_arrives_over_its_region(self):
        w = self.start(targets.array_report)
        for a in [np.arange(1 << 20, dtype="f8"), np.ones((512, 1024), order="F"),
                  np.arange(1 << 19, dtype="i4")[::2], np.arange(100.0)]:
            w.post_message(a)
            got = w.recv(TIMEOUT)
            self.assertEqual(got["sum"], float(a.sum()))
            self.assertEqual(got["shape"], a.shape)
            self.assertEqual(got["fortran"], a.flags.f_contiguous and not a.flags.c_contiguous)
            self.assertTrue(got["writable"])
            if a.nbytes >= 256 << 10:
                self.assertEqual(got["base"], "_RegionMemory")
                self.assertFalse(got["owndata"])
                # The data lies in the region, 64-byte aligned.
                self.assertEqual(got["address"], got["region_address"])
                self.assertEqual(got["region_nbytes"], a.nbytes)
                self.assertEqual(got["address"] % 64, 0)
            else:
                self.assertTrue(got["owndata"])
        w.post_message(None)

    def test_an_echoed_array_comes_back_over_its_region(self):
        w = self.start(targets.echo)
        a = np.random.default_rng(1).random(1 << 18)
        for _ in range(3):
            w.post_message(a)
            b = w.recv(TIMEOUT)
            self.assertIs(type(b.base), _core._RegionMemory)
            self.assertTrue((a == b).all())
            b[:] = 0                    # writable, and ours alone
            self.assertNotEqual(a[0], 0)

    def test_regions_come_back_when_arrays_die(self):
        w = self.start(targets.echo)
        a = np.ones(1 << 20)
        w.post_message(a)
        kept = w.recv(TIMEOUT)
        created = _core.stats()["created"]
        for i in range(6):
            a[0] = i
            w.post_message(a)
            b = w.recv(TIMEOUT)
            self.assertEqual(b[0], i)
            del b
        # Kept memory is left alone; given back, it is reused: a region
        # for each direction at most, however many messages.
        self.assertEqual(kept[0], 1)
        self.assertLessEqual(_core.stats()["created"] - created, 2)

    def test_pool_tasks_take_large_arrays(self):
        a = np.arange(1 << 20, dtype="f8")
        with pw.WorkerPool(1, mode=self.mode) as pool:
            for _ in range(3):
                self.assertEqual(pool.submit(targets.array_total, a).result(TIMEOUT),
                                 float(a.sum()))
            back = pool.submit(targets.square, a[:4]).result(TIMEOUT)
            self.assertTrue((back == a[:4] ** 2).all())

    def test_a_shared_view_reaches_the_worker(self):
        sab = pw.SharedArrayBuffer(1 << 16)
        w = self.start(targets.echo)
        v = np.frombuffer(sab, "<i8")[8:].reshape(-1, 8)[:, ::2]
        w.post_message(v)
        b = w.recv(TIMEOUT)
        self.assertEqual((b.shape, b.strides), (v.shape, v.strides))
        b[1, 1] = 42
        self.assertEqual(v[1, 1], 42)


@unittest.skipIf(np is None, support.NO_NUMPY)
@unittest.skipUnless(support.HAVE_SUBINTERPRETERS, support.NO_SUBINTERPRETERS)
class TestInterpreterWorker(support.Workers, support.LeakCheck):
    mode = "interpreter"

    def test_an_array_is_refused_cleanly(self):
        w = self.start(targets.recv_error)
        w.post_message(np.arange(3))
        name, text, cause = w.recv(TIMEOUT)
        if name == "ok":
            self.skipTest("this numpy loads in subinterpreters")
        self.assertEqual(name, "DataCloneError")
        self.assertIn("numpy", text)
        self.assertIn('mode="process"', text)
        self.assertEqual(cause, "ImportError")
        # The worker goes on.
        w.post_message("after")
        self.assertEqual(w.recv(TIMEOUT), "after")


def nd_head(flags, shape, itemsize=None, extra=b""):
    out = bytes([flags]) + hostile.varint(len(shape))
    for d in shape:
        out += hostile.varint(d)
    return out + extra + (hostile.varint(itemsize) if itemsize is not None else b"")


def s(text):
    b = text.encode()
    return b"\x08" + hostile.varint(len(b)) + b


def ndarray(shape, itemsize, data, dtype="<f8", pad=0, flags=0):
    body = (bytes([0x80 | NDARRAY]) + nd_head(flags, shape, itemsize) + bytes([pad]) +
            bytes(pad) + hostile.varint(len(data)) + data + dtype)
    return hostile.message(body, 1)


@unittest.skipIf(np is None, support.NO_NUMPY)
class TestHostile(unittest.TestCase):
    def assertRefused(self, msg, pattern=None):
        with self.assertRaises(pw.DataCloneError) as cm:
            _core._decode(msg)
        if pattern:
            self.assertRegex(str(cm.exception), pattern)
        return cm.exception

    def test_well_formed_by_hand(self):
        got = _core._decode(ndarray((2,), 8, struct.pack("<2d", 1.5, 2.5), s("<f8")))
        self.assertEqual(got.tolist(), [1.5, 2.5])

    def test_data_must_match_shape_and_item_size(self):
        for shape, itemsize, data in [((3,), 8, bytes(16)), ((2, 2), 8, bytes(40)),
                                      ((2,), 4, bytes(8))]:
            self.assertRefused(ndarray(shape, itemsize, data, s("<f8")))

    def test_huge_shapes_and_counts_are_refused(self):
        self.assertRefused(ndarray((1 << 62, 1 << 62), 8, b"", s("<f8")))
        self.assertRefused(ndarray((1 << 47,), 0, b"", s("|V0")))
        self.assertRefused(ndarray((2,) * 65, 1, bytes(0), s("|u1")))
        body = bytes([NDARRAY_OBJECT]) + nd_head(0, (1 << 40,)) + b"\x01"
        self.assertRefused(hostile.message(body), "malformed")

    def test_padding_is_bounded(self):
        self.assertRefused(ndarray((1,), 8, bytes(8), s("<f8"), pad=64))

    def test_dtypes_with_pointers_or_other_shapes_are_refused(self):
        for desc in [s("|O"), s("|O8"), s("|T16"), s("<f8 "), s("f8"), s("<M8[n s]"),
                     b"\x0c\x01" + s("<f8"),                  # a list
                     b"\x04\x02",                              # an int
                     b"\x0d\x02" + s("<f8") + b"\x04\x02",      # shape not a tuple
                     b"\x0e\x01" + s("names") + b"\x0c\x00"]:   # a dict missing keys
            self.assertRefused(ndarray((1,), 8, bytes(8), desc), "malformed|dtype")

    def test_structured_dtype_specs_are_checked(self):
        good = (b"\x0e\x04" + s("names") + b"\x0c\x01" + s("a") + s("formats") + b"\x0c\x01" +
                s("<i4") + s("offsets") + b"\x0c\x01\x04\x00" + s("itemsize") + b"\x04\x08")
        got = _core._decode(ndarray((1,), 4, bytes(4), good))
        self.assertEqual(got.dtype.names, ("a",))
        # Item size of the wire, not of the dtype; an object field; offsets
        # past the item.
        self.assertRefused(ndarray((1,), 8, bytes(8), good), "item size")
        bad = good.replace(s("<i4"), s("|O"))
        self.assertRefused(ndarray((1,), 4, bytes(4), bad))
        bad = good.replace(b"\x0c\x01\x04\x00", b"\x0c\x01\x04\x10")
        self.assertRefused(ndarray((1,), 4, bytes(4), bad))

    def test_object_arrays_need_their_elements(self):
        body = bytes([NDARRAY_OBJECT]) + nd_head(0, (3,)) + b"\x04\x02\x04\x04"
        self.assertRefused(hostile.message(body))
        body = bytes([0x80 | NDARRAY_OBJECT]) + nd_head(0, (2,)) + b"\x04\x02\x11\x00"
        got = _core._decode(hostile.message(body, 1))
        self.assertIs(got[1], got)

    def test_a_view_must_lie_inside_its_buffer(self):
        sab = pw.SharedArrayBuffer(64)
        v = np.frombuffer(sab, "<i4", count=4, offset=16)
        self.assertIs(clone(v).base.__class__, pw.SharedArrayBuffer)

        def view(shape, strides, itemsize, offset, child=b"\x1e\x00"):
            head = nd_head(0, shape)
            for st in strides:
                head += hostile.varint(zigzag(st))
            body = (bytes([NDARRAY_VIEW]) + head + hostile.varint(itemsize) +
                    hostile.varint(offset) + s("<i4") + child)
            return hostile.message(body, 0, regions=[hostile.region_entry()] if
                                   child[0] == 0x1E else [])

        for shape, strides, itemsize, offset in [
                ((4,), (4,), 4, 1 << 50), ((4,), (-4,), 4, 8), ((1 << 47,), (4,), 4, 0),
                ((3,), (1 << 60,), 4, 0), ((2, 2), (1 << 46, 1 << 46), 4, 0)]:
            msg = view(shape, strides, itemsize, offset)
            with self.assertRaisesRegex(pw.DataCloneError, "malformed"):
                _core._verify(msg)
            self.assertRefused(msg, "forged|malformed")
        # Well formed, but no buffer: a forged region, refused as such.
        self.assertRefused(view((4,), (4,), 4, 0), "forged|malformed")
        # A view over something that is no SharedArrayBuffer.
        self.assertRefused(view((4,), (4,), 4, 0, child=b"\x0a\x00"), "forged|malformed")

    def test_walker_and_decoder_agree_on_random_corruption(self):
        rng = random.Random(14)
        sab = pw.SharedArrayBuffer(256)
        values = [np.arange(12, dtype=">i2").reshape(3, 4, order="F"),
                  np.zeros(3, dtype=[("a", "<i4"), ("b", "S3", (2,))]),
                  np.array([1, "x", None], dtype=object), np.zeros(()),
                  np.array(["2020-01-01"], dtype="M8[D]")]
        msgs = [_core._encode(v) for v in values]
        for _ in range(3000):
            m = bytearray(rng.choice(msgs))
            for _ in range(rng.randint(1, 4)):
                i = rng.randrange(32, len(m))
                m[i] = rng.randrange(256) if rng.random() < 0.7 else m[i] ^ 0x80
            try:
                _core._decode(bytes(m), restricted=True)
            except pw.DataCloneError:
                pass
            except (MemoryError, RecursionError):
                pass
        self.assertIsNotNone(sab)


class TestWithoutNumpy(support.Workers, unittest.TestCase):
    def test_cloning_never_imports_numpy(self):
        r = self.run_script("""
            import sys
            sys.modules["numpy"] = None         # any import of it fails
            import array, datetime, decimal
            import pyshm_workers as pw
            values = [1, [2.5, "x"], {"k": b"v"}, array.array("d", [1.0]),
                      memoryview(b"ab"), datetime.date(2024, 1, 1), decimal.Decimal(1)]
            assert pw.structured_clone(values) == values
            print("ok")
        """)
        self.assertEqual(r.stdout.strip(), "ok", r.stderr)

    def test_an_array_message_without_numpy_is_refused_naming_numpy(self):
        msg = ndarray((2,), 8, bytes(16), s("<f8"))
        _core._verify(msg)
        r = self.run_script(f"""
            import sys
            sys.modules["numpy"] = None
            import pyshm_workers as pw
            try:
                pw._core._decode({msg!r})
            except pw.DataCloneError as e:
                print(type(e.__cause__).__name__, e)
        """)
        self.assertRegex(r.stdout, "^(ModuleNotFound|Import)Error", r.stderr)
        self.assertIn("numpy", r.stdout)


class TestArrayTypecodes(unittest.TestCase):
    def test_every_typecode_of_this_python_round_trips(self):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)    # 'u'
            for code in array.typecodes:
                self.check_typecode(code)

    def check_typecode(self, code):
        if code in ("u", "w"):
            a = array.array(code, "abcd")
        else:
            a = array.array(code, b"\x01\x00" * 16)[:4]
        if True:
            b = clone(a)
            self.assertEqual(b.typecode, code)
            self.assertEqual(b.tobytes(), a.tobytes())
            _core._verify(_core._encode(a))

    def test_typecodes_this_python_lacks_are_refused_cleanly(self):
        for code, wire, size in [("e", b"e", 2), ("Zf", b"F", 8), ("Zd", b"D", 16)]:
            body = b"\x1a" + wire + bytes([size]) + bytes(size)
            msg = hostile.message(body)
            _core._verify(msg)
            if code in array.typecodes:
                self.assertEqual(len(_core._decode(msg)), 1)
                continue
            with self.assertRaisesRegex(pw.DataCloneError,
                                        f"cannot receive an array.array of typecode '{code}'"):
                _core._decode(msg)

    def test_unknown_typecodes_are_malformed(self):
        for body in [b"\x1aZ\x08" + bytes(8), b"\x1ax\x01\x00", b"\x1aD\x08" + bytes(8)]:
            with self.assertRaisesRegex(pw.DataCloneError, "malformed"):
                _core._decode(hostile.message(body))


class TestLargeMessages(support.Workers, support.LeakCheck):
    """bytes, bytearray, memoryview and array.array of 256 KiB and up leave
    by reference and are copied once, where the message goes."""

    mode = "process"

    def test_large_buffers_arrive_equal(self):
        w = self.start(targets.echo)
        data = bytes(range(256)) * 4096                 # 1 MiB
        values = [data, bytearray(data), memoryview(data).cast("i"),
                  memoryview(bytearray(data))[::2], array.array("d", data),
                  [data, data], {"a": bytearray(data), "b": 1}]
        for v in values:
            w.post_message(v)
            got = w.recv(TIMEOUT)
            self.assertEqual(type(got), type(v))
            if isinstance(v, memoryview):
                self.assertEqual(got.tobytes(), v.tobytes())
                self.assertEqual((got.format, got.shape, got.readonly),
                                 (v.format, v.shape, v.readonly))
                # No copy on receipt: over the region it came in.
                self.assertIs(type(got.obj), _core._RegionMemory)
            elif isinstance(v, array.array):            # NaNs among them
                self.assertEqual((got.typecode, got.tobytes()), (v.typecode, v.tobytes()))
            else:
                self.assertEqual(got, v)

    def test_a_large_memoryview_is_received_without_a_copy(self):
        w = self.start(targets.echo)
        data = bytearray(range(256)) * 4096
        w.post_message(memoryview(data).cast("I"))
        got = w.recv(TIMEOUT)
        self.assertIs(type(got.obj), _core._RegionMemory)
        self.assertEqual((got.format, got.readonly, got.tobytes()), ("I", False, bytes(data)))
        got[0] = 7                                      # writable, and ours alone
        self.assertEqual(data[0], 0)
        w.post_message(memoryview(bytes(data)))
        got = w.recv(TIMEOUT)
        self.assertTrue(got.readonly)
        self.assertIs(type(got.obj), _core._RegionMemory)
        created = _core.stats()["created"]
        for _ in range(4):                              # given back when it dies
            del got
            w.post_message(memoryview(data))
            got = w.recv(TIMEOUT)
        self.assertLessEqual(_core.stats()["created"] - created, 2)
        # Small ones are copies.
        w.post_message(memoryview(b"small"))
        self.assertIs(type(w.recv(TIMEOUT).obj), bytes)

    def test_changes_after_the_post_do_not_travel(self):
        w = self.start(targets.echo)
        buf = bytearray(1 << 20)
        w.post_message(buf)
        buf[0] = 1
        buf.extend(b"more")                              # not exported any more
        self.assertEqual(w.recv(TIMEOUT), bytearray(1 << 20))

    def test_large_structured_clone_round_trips(self):
        data = bytes(range(256)) * (1 << 14)             # 4 MiB
        for v in [data, bytearray(data), memoryview(data), array.array("b", data)]:
            got = clone(v)
            self.assertEqual(bytes(got), bytes(v))


class TestInterpreterLargeMessages(TestLargeMessages):
    mode = "interpreter"

    def setUp(self):
        if not support.HAVE_SUBINTERPRETERS:
            self.skipTest(support.NO_SUBINTERPRETERS)
        super().setUp()


if __name__ == "__main__":
    unittest.main()
