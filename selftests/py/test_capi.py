# SPDX-License-Identifier: GPL-2.0
"""The C API for extension types (pyshm/capi.h), through the example
extension pyshm_example: a clone shares its payload (never copies it)
between objects, interpreters and processes, and the payload's destroy()
runs exactly once, wherever the last holder lets go."""

import gc
import os
import sys
import threading
import time
import unittest

import pyshm_workers as pw
from pyshm_workers import _core

import support

try:
    import pyshm_example
except ImportError:
    pyshm_example = None

TIMEOUT = 60
NO_EXAMPLE = "pyshm_example not built (make pymod builds it)"
clone = pw.structured_clone


@unittest.skipIf(pyshm_example is None, NO_EXAMPLE)
class TestSameInterpreter(support.LeakCheck):
    def test_capsule_is_exported(self):
        self.assertEqual(type(_core._C_API).__name__, "PyCapsule")
        self.assertIn("pyshm_workers._core._C_API", repr(_core._C_API))

    def test_clone_shares_the_payload(self):
        blob = pyshm_example.SharedBytes(b"shared bytes" * 100)
        got = clone(blob)
        self.assertIs(type(got), pyshm_example.SharedBytes)
        self.assertIsNot(got, blob)
        self.assertEqual(got.payload_id, blob.payload_id)
        self.assertEqual(got.address, blob.address)       # one mapping, not a copy
        self.assertEqual(bytes(got), bytes(blob))
        self.assertEqual(memoryview(got).readonly, True)
        self.assertEqual(blob.holders, 2)
        del got
        self.assertEqual(blob.holders, 1)

    def test_counters_count_together(self):
        c = pyshm_example.SharedCounter(5)
        copies = [clone(c) for _ in range(3)]
        for x in copies:
            x.add(1)
        self.assertEqual(c.value, 8)
        self.assertEqual(c.holders, 4)

    def test_identity_and_containers(self):
        c = pyshm_example.SharedCounter()
        got = clone({"a": c, "b": [c, (c,)]})
        self.assertIs(got["a"], got["b"][0])
        self.assertIs(got["a"], got["b"][1][0])
        self.assertEqual(c.holders, 2)

    def test_destroyed_exactly_once(self):
        before = pyshm_example.destroyed()
        regions = _core.stats()["regions"]
        c = pyshm_example.SharedCounter()
        copies = [clone(c) for _ in range(5)]
        self.assertEqual(_core.stats()["regions"], regions + 1)
        del c
        self.assertEqual(pyshm_example.destroyed(), before)
        copies.pop()
        self.assertEqual(pyshm_example.destroyed(), before)
        del copies
        self.assertEqual(pyshm_example.destroyed(), before + 1)
        self.assertEqual(_core.stats()["regions"], regions)

    def test_failed_clone_takes_no_hold(self):
        c = pyshm_example.SharedCounter()
        before = pyshm_example.destroyed()
        with self.assertRaises(pw.DataCloneError):
            clone([c, threading.Lock()])
        self.assertEqual(c.holders, 1)
        del c
        self.assertEqual(pyshm_example.destroyed(), before + 1)

    def test_failed_decode_gives_the_hold_back(self):
        c = pyshm_example.SharedCounter()
        with self.assertRaises(pw.DataCloneError):
            clone([c, support_fail_on_decode()])
        self.assertEqual(c.holders, 1)

    def test_cycles_with_payloads_are_collected(self):
        before = pyshm_example.destroyed()
        x = [pyshm_example.SharedBytes(b"x")]
        x.append(x)
        y = clone(x)
        self.assertIs(y[1], y)
        del x, y
        gc.collect()
        self.assertEqual(pyshm_example.destroyed(), before + 1)

    def test_encode_to_bytes_is_refused(self):
        with self.assertRaisesRegex(pw.DataCloneError, "SharedCounter"):
            _core._encode(pyshm_example.SharedCounter())

    def test_a_forked_copy_holds_nothing(self):
        c = pyshm_example.SharedCounter(1)

        def child():
            mine = clone(c)             # a real holder in the child
            if mine.holders != 2:
                return False
            inherited_gone = c.holders
            del mine
            return inherited_gone == 2 and c.holders == 1
        self.assertEqual(support.fork_and_check(child), 0)
        self.assertEqual(c.holders, 1)

    def test_repeated_clones_do_not_leak(self):
        before = pyshm_example.destroyed()
        regions = _core.stats()["regions"]
        for i in range(500):
            b = pyshm_example.SharedBytes(b"%d" % i)
            c = clone([b, pyshm_example.SharedCounter(i)])
            assert bytes(c[0]) == b"%d" % i
            del b, c
        self.assertEqual(pyshm_example.destroyed(), before + 1000)
        self.assertEqual(_core.stats()["regions"], regions)


class _FailOnDecode:
    def __reduce__(self):
        return (_raise, ())


def _raise():
    raise ValueError("no")


def support_fail_on_decode():
    return _FailOnDecode()


class WorkerCases(support.Workers):
    mode = None


    def test_worker_shares_the_counter_and_the_last_holder_destroys(self):
        import capi_targets
        before = pyshm_example.destroyed()
        c = pyshm_example.SharedCounter(100)
        w = self.start(capi_targets.add_and_report)
        w.post_message(c)
        got = w.recv(TIMEOUT)
        self.assertTrue(got["type_ok"])
        self.assertEqual(got["payload_id"], c.payload_id)
        self.assertEqual(got["value"], 110)
        self.assertEqual(c.value, 110)              # shared, not copied
        self.assertEqual(got["holders"], 2)
        c.add(1)
        # We let go first: the worker is the last holder.
        del c
        gc.collect()
        w.post_message("drop")
        theirs = w.recv(TIMEOUT)
        w.join(TIMEOUT)
        ours = pyshm_example.destroyed() - before
        if self.mode == "process":
            self.assertEqual((ours, theirs), (0, 1))
        else:
            # One process: the count is shared by both interpreters.
            self.assertEqual(ours, 1)
            self.assertEqual(theirs - before, 1)

    def test_unread_message_gives_its_hold_back(self):
        import capi_targets
        before = pyshm_example.destroyed()
        c = pyshm_example.SharedCounter(1)
        w = self.start(capi_targets.read_one_and_leave)
        w.post_message("first")
        w.post_message([c, c])          # never read
        w.join(TIMEOUT)
        deadline = time.monotonic() + TIMEOUT
        while c.holders != 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertEqual(c.holders, 1)
        self.assertEqual(pyshm_example.destroyed(), before)
        del c
        self.assertEqual(pyshm_example.destroyed(), before + 1)

    def test_bytes_go_there_and_back(self):
        import capi_targets
        before = pyshm_example.destroyed()
        blob = pyshm_example.SharedBytes(b"\x00payload\xff" * 1000)
        w = self.start(capi_targets.bytes_report)
        w.post_message(blob)
        got = w.recv(TIMEOUT)
        back = w.recv(TIMEOUT)
        w.join(TIMEOUT)
        self.assertEqual(got["bytes"], bytes(blob))
        self.assertEqual(got["payload_id"], blob.payload_id)
        if self.mode == "interpreter":
            self.assertEqual(got["address"], blob.address)
        else:
            self.assertNotEqual(got["pid"], os.getpid())
        self.assertIs(type(back), pyshm_example.SharedBytes)
        self.assertEqual(back.payload_id, blob.payload_id)
        self.assertEqual(back.address, blob.address)
        self.assertEqual(blob.holders, 2)
        del blob, back
        gc.collect()
        self.assertEqual(pyshm_example.destroyed(), before + 1)


@unittest.skipIf(pyshm_example is None, NO_EXAMPLE)
@unittest.skipUnless(support.HAVE_SUBINTERPRETERS, support.NO_SUBINTERPRETERS)
class TestInterpreterWorker(WorkerCases, support.LeakCheck):
    mode = "interpreter"


@unittest.skipIf(pyshm_example is None, NO_EXAMPLE)
class TestProcessWorker(WorkerCases, support.LeakCheck):
    mode = "process"


@unittest.skipIf(pyshm_example is None, NO_EXAMPLE)
@unittest.skipUnless(support.HAVE_SUBINTERPRETERS, support.NO_SUBINTERPRETERS)
class TestIsolatedSubinterpreter(unittest.TestCase):
    def test_types_are_per_interpreter(self):
        iid = support.new_isolated_interpreter()
        try:
            support.run_in_interpreter(iid, """
import pyshm_workers as pw, pyshm_example, gc
before = pyshm_example.destroyed()
c = pyshm_example.SharedCounter(3)
d = pw.structured_clone(c)
assert type(d) is pyshm_example.SharedCounter and d.payload_id == c.payload_id
d.add(4)
assert c.value == 7
del c, d
gc.collect()
assert pyshm_example.destroyed() == before + 1
""")
        finally:
            support.subinterpreters().destroy(iid)
        # The main interpreter's types are its own.
        self.assertEqual(pyshm_example.SharedCounter(1).value, 1)


if __name__ == "__main__":
    unittest.main()
