# SPDX-License-Identifier: GPL-2.0
"""Int32Array / Int64Array: construction rules, element access, every
atomic operation (including wrap-around), wait/notify between threads and
processes, and the JavaScript-style Atomics namespace."""

import math
import os
import threading
import time
import unittest

import pyshm_workers as pw

import support

I32_MIN, I32_MAX = -2**31, 2**31 - 1
I64_MIN, I64_MAX = -2**63, 2**63 - 1


class TestConstruction(support.LeakCheck):
    def test_views_of_the_whole_buffer(self):
        sab = pw.SharedArrayBuffer(64)
        a, b = pw.Int32Array(sab), pw.Int64Array(sab)
        self.assertEqual((len(a), len(b)), (16, 8))
        self.assertEqual((a.BYTES_PER_ELEMENT, b.BYTES_PER_ELEMENT), (4, 8))
        self.assertIs(a.buffer, sab)
        self.assertEqual((a.byte_offset, a.byte_length, a.length), (0, 64, 16))

    def test_offset_and_length(self):
        sab = pw.SharedArrayBuffer(64)
        a = pw.Int32Array(sab, 8, 4)
        self.assertEqual((len(a), a.byte_offset, a.byte_length), (4, 8, 16))
        a[0] = 11
        self.assertEqual(pw.Int32Array(sab)[2], 11)
        self.assertEqual(len(pw.Int64Array(sab, byte_offset=16)), 6)
        self.assertEqual(len(pw.Int32Array(sab, 64)), 0)
        self.assertEqual(len(pw.Int32Array(sab, length=0)), 0)

    def test_misaligned_offsets_are_refused(self):
        sab = pw.SharedArrayBuffer(64)
        with self.assertRaises(ValueError):
            pw.Int32Array(sab, 2)
        with self.assertRaises(ValueError):
            pw.Int64Array(sab, 4)
        with self.assertRaises(ValueError):
            pw.Int32Array(sab, -4)

    def test_out_of_bounds_views_are_refused(self):
        sab = pw.SharedArrayBuffer(64)
        with self.assertRaises(ValueError):
            pw.Int32Array(sab, 68)
        with self.assertRaises(ValueError):
            pw.Int32Array(sab, 0, 17)
        with self.assertRaises(ValueError):
            pw.Int64Array(sab, 8, 8)
        with self.assertRaises(ValueError):
            pw.Int32Array(sab, 0, -1)
        with self.assertRaises(ValueError):
            pw.Int64Array(pw.SharedArrayBuffer(12))

    def test_only_buffers_or_a_length(self):
        # T(length) makes an ArrayBuffer (DESIGN.md 3b); other things are
        # refused.
        for bad in (bytearray(16), memoryview(bytearray(16)), None, 1.5):
            with self.subTest(bad=bad), self.assertRaises(TypeError):
                pw.Int32Array(bad)
        with self.assertRaises(TypeError):
            pw.Int32Array(pw.SharedArrayBuffer(16), "0")

    def test_view_of_growable_buffer_tracks_its_length(self):
        sab = pw.SharedArrayBuffer(16, max_byte_length=64)
        a = pw.Int32Array(sab)
        fixed = pw.Int32Array(sab, 0, 2)
        self.assertEqual(len(a), 4)
        sab.grow(64)
        self.assertEqual(len(a), 16)
        self.assertEqual(len(fixed), 2)
        a.store(15, 3)
        self.assertEqual(a[-1], 3)


class TestElements(support.LeakCheck):
    def setUp(self):
        super().setUp()
        self.a = pw.Int32Array(pw.SharedArrayBuffer(16))
        self.b = pw.Int64Array(pw.SharedArrayBuffer(32))

    def tearDown(self):
        del self.a, self.b
        super().tearDown()

    def test_get_set_iterate_slice(self):
        a = self.a
        for i in range(4):
            a[i] = i * 10
        self.assertEqual(list(a), [0, 10, 20, 30])
        self.assertEqual(a[-1], 30)
        self.assertEqual(a[1:3], [10, 20])
        self.assertEqual(a[::-2], [30, 10])
        a[-2] = 7
        self.assertEqual(a[2], 7)

    def test_index_errors(self):
        for i in (4, -5, 2**70):
            with self.subTest(i=i), self.assertRaises(IndexError):
                self.a[i]
            with self.subTest(i=i), self.assertRaises(IndexError):
                self.a.load(i)
            with self.subTest(i=i), self.assertRaises(IndexError):
                self.a.add(i, 1)
        with self.assertRaises(IndexError):
            self.a[4] = 1

    def test_type_errors(self):
        for bad in (1.0, "1", None, [1]):
            with self.subTest(bad=bad):
                with self.assertRaises(TypeError):
                    self.a.load(bad)
                with self.assertRaises(TypeError):
                    self.a.store(0, bad)
                with self.assertRaises(TypeError):
                    self.a[0] = bad
                with self.assertRaises(TypeError):
                    self.a.compare_exchange(0, bad, 1)
        with self.assertRaises(TypeError):
            del self.a[0]
        with self.assertRaises(TypeError):
            self.a[0:2] = [1, 2]
        with self.assertRaises(TypeError):
            self.a.add(0)
        with self.assertRaises(TypeError):
            self.a.store(0, 1, 2)

    def test_values_wrap_to_the_element_width(self):
        a, b = self.a, self.b
        self.assertEqual(a.store(0, 2**32 + 5), 2**32 + 5)
        self.assertEqual(a[0], 5)
        a[1] = 2**31
        self.assertEqual(a[1], I32_MIN)
        a[2] = -1
        self.assertEqual(a[2], -1)
        b[0] = 2**64 + 7
        self.assertEqual(b[0], 7)
        b[1] = 2**63
        self.assertEqual(b[1], I64_MIN)
        a[3] = True
        self.assertEqual(a[3], 1)

    def test_buffer_protocol_has_the_element_format(self):
        m = memoryview(self.a)
        self.assertEqual((m.format, m.itemsize, m.shape, m.nbytes), ("i", 4, (4,), 16))
        m[1] = -3
        self.assertEqual(self.a[1], -3)
        m.release()
        m = memoryview(self.b)
        self.assertEqual((m.format, m.itemsize, m.shape), ("q", 8, (4,)))
        m.release()

    @unittest.skipIf(support.numpy is None, support.NO_NUMPY)
    def test_numpy_sees_the_elements(self):
        np = support.numpy
        self.a.store(2, 99)
        arr = np.asarray(self.a)
        self.assertEqual(arr.dtype, np.int32)
        self.assertEqual(arr[2], 99)
        arr[0] = -5
        self.assertEqual(self.a.load(0), -5)


class TestOperations(support.LeakCheck):
    def check_ops(self, a, lo, hi):
        self.assertEqual(a.store(0, 5), 5)
        self.assertEqual(a.load(0), 5)
        self.assertEqual(a.add(0, 3), 5)
        self.assertEqual(a.sub(0, 2), 8)
        self.assertEqual(a.load(0), 6)
        self.assertEqual(a.and_(0, 0b100), 6)
        self.assertEqual(a.or_(0, 0b1001), 4)
        self.assertEqual(a.xor(0, 0b1111), 13)
        self.assertEqual(a.load(0), 2)
        self.assertEqual(a.exchange(0, -7), 2)
        self.assertEqual(a.compare_exchange(0, 1, 100), -7)
        self.assertEqual(a.load(0), -7)
        self.assertEqual(a.compare_exchange(0, -7, 100), -7)
        self.assertEqual(a.load(0), 100)
        # wrap-around both ways
        a.store(1, hi)
        self.assertEqual(a.add(1, 1), hi)
        self.assertEqual(a.load(1), lo)
        self.assertEqual(a.sub(1, 1), lo)
        self.assertEqual(a.load(1), hi)
        # operands wrap too
        a.store(2, 0)
        a.add(2, 2 * (hi + 1) + 3)
        self.assertEqual(a.load(2), 3)
        self.assertEqual(a.compare_exchange(2, 3 + 2 * (hi + 1), 4), 3)
        self.assertEqual(a.load(2), 4)
        self.assertEqual(a.exchange(-1, 1), 0)

    def test_int32_operations(self):
        self.check_ops(pw.Int32Array(pw.SharedArrayBuffer(16)), I32_MIN, I32_MAX)

    def test_int64_operations(self):
        self.check_ops(pw.Int64Array(pw.SharedArrayBuffer(32)), I64_MIN, I64_MAX)

    def test_atomics_namespace_spells_them_like_javascript(self):
        a = pw.Int32Array(pw.SharedArrayBuffer(8))
        A = pw.Atomics
        self.assertEqual(A.store(a, 0, 6), 6)
        self.assertEqual(A.add(a, 0, 1), 6)
        self.assertEqual(A.sub(a, 0, 2), 7)
        self.assertEqual(getattr(A, "and")(a, 0, 4), 5)
        self.assertEqual(getattr(A, "or")(a, 0, 3), 4)
        self.assertEqual(A.xor(a, 0, 1), 7)
        self.assertEqual(A.exchange(a, 0, 9), 6)
        self.assertEqual(A.compareExchange(a, 0, 9, 1), 9)
        self.assertEqual(A.compare_exchange(a, 0, 1, 2), 1)
        self.assertEqual(A.load(a, 0), 2)
        self.assertEqual(A.wait(a, 0, 3), "not-equal")
        self.assertEqual(A.wait(a, 0, 2, 0), "timed-out")
        self.assertEqual(A.notify(a, 0), 0)
        self.assertTrue(A.isLockFree(4))
        self.assertFalse(A.is_lock_free(3))

    def test_atomics_namespace_refuses_anything_but_typed_arrays(self):
        for not_an_array in ([0], pw.SharedArrayBuffer(8), None, memoryview(b"1234")):
            with self.assertRaises(TypeError):
                pw.Atomics.add(not_an_array, 0, 1)
            with self.assertRaises(TypeError):
                pw.Atomics.wait(not_an_array, 0, 0, 0)
            with self.assertRaises(TypeError):
                pw.Atomics.notify(not_an_array, 0)

    def test_keywords_are_named_as_in_the_contract(self):
        sab = pw.SharedArrayBuffer(n=16, max_byte_length=None)
        a = pw.Int32Array(sab=sab, byte_offset=4, length=2)
        self.assertEqual(len(a), 2)
        self.assertEqual(a.wait(i=0, value=1, timeout=0), "not-equal")
        self.assertEqual(a.wait(i=0, value=0, timeout=0), "timed-out")
        self.assertEqual(a.notify(i=0, count=1), 0)

    def test_concurrent_adds_are_not_lost(self):
        a = pw.Int64Array(pw.SharedArrayBuffer(8))

        def work():
            for _ in range(20000):
                a.add(0, 1)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(a[0], 80000)

    def test_concurrent_adds_across_processes(self):
        a = pw.Int32Array(pw.SharedArrayBuffer(8))
        pids = []
        for _ in range(3):
            pid = os.fork()
            if pid == 0:
                for _ in range(20000):
                    a.add(0, 1)
                os._exit(0)
            pids.append(pid)
        for _ in range(20000):
            a.add(0, 1)
        for pid in pids:
            os.waitpid(pid, 0)
        self.assertEqual(a[0], 80000)


class TestWaitNotify(support.LeakCheck):
    def setUp(self):
        super().setUp()
        self.a = pw.Int32Array(pw.SharedArrayBuffer(64))

    def tearDown(self):
        del self.a
        super().tearDown()

    def test_not_equal_returns_at_once(self):
        self.a.store(0, 1)
        self.assertEqual(self.a.wait(0, 0), "not-equal")
        self.assertEqual(self.a.wait(0, 2**32 + 0), "not-equal")

    def test_timeout(self):
        t0 = time.monotonic()
        self.assertEqual(self.a.wait(0, 0, 0.05), "timed-out")
        self.assertGreaterEqual(time.monotonic() - t0, 0.04)
        self.assertEqual(self.a.wait(0, 0, 0), "timed-out")
        self.assertEqual(self.a.wait(0, 0, -1), "timed-out")
        self.assertEqual(self.a.wait(0, 0, timeout=0.001), "timed-out")

    def test_bad_arguments(self):
        with self.assertRaises(ValueError):
            self.a.wait(0, 0, float("nan"))
        with self.assertRaises(TypeError):
            self.a.wait(0, 0, "1")
        with self.assertRaises(IndexError):
            self.a.wait(16, 0)
        with self.assertRaises(IndexError):
            self.a.notify(16)
        with self.assertRaises(TypeError):
            self.a.notify(0, "all")
        with self.assertRaises(TypeError):
            self.a.wait(0)

    def test_infinite_timeout_and_count(self):
        threads, results = self._waiters(2, timeout=math.inf)
        self.assertEqual(self._notify_until(1, math.inf, 2), 2)
        for t in threads:
            t.join(5)
        self.assertEqual(results, ["ok", "ok"])
        threads, results = self._waiters(1, timeout=1e300)
        self.assertEqual(self._notify_until(1, 1.9, 1), 1)     # truncated to 1
        threads[0].join(5)
        self.assertEqual(results, ["ok"])
        self.assertEqual(self.a.notify(1, float("nan")), 0)
        self.assertEqual(self.a.notify(1, -math.inf), 0)

    def test_notify_without_waiters_wakes_nobody(self):
        self.assertEqual(self.a.notify(0), 0)
        self.assertEqual(self.a.notify(0, 0), 0)
        self.assertEqual(self.a.notify(0, -3), 0)

    def _waiters(self, n, index=1, timeout=10):
        results = []
        started = pw.Int32Array(pw.SharedArrayBuffer(4))

        def waiter():
            started.add(0, 1)
            results.append(self.a.wait(index, 0, timeout))

        threads = [threading.Thread(target=waiter) for _ in range(n)]
        for t in threads:
            t.start()
        while started[0] < n:
            time.sleep(0.001)
        return threads, results

    def _notify_until(self, index, count, want):
        """Notify until `want` waiters have woken (they may not sleep yet)."""
        woken = 0
        deadline = time.monotonic() + 10
        while woken < want and time.monotonic() < deadline:
            woken += self.a.notify(index, count)
            time.sleep(0.001)
        return woken

    def test_notify_wakes_a_waiting_thread(self):
        threads, results = self._waiters(1)
        self.assertEqual(self._notify_until(1, None, 1), 1)
        threads[0].join(5)
        self.assertEqual(results, ["ok"])

    def test_notify_count_limits_who_wakes(self):
        threads, results = self._waiters(3)
        time.sleep(0.05)
        self.assertEqual(self._notify_until(1, 1, 1), 1)
        time.sleep(0.05)
        self.assertEqual(results, ["ok"])
        self.assertEqual(self._notify_until(1, None, 2), 2)
        for t in threads:
            t.join(5)
        self.assertEqual(results, ["ok"] * 3)

    def test_wait_releases_the_gil(self):
        threads, results = self._waiters(1, timeout=1.0)
        # The main thread keeps running Python while the waiter sleeps.
        spins = 0
        t0 = time.monotonic()
        while time.monotonic() - t0 < 0.2:
            spins += 1
        self.assertGreater(spins, 1000)
        self._notify_until(1, None, 1)
        threads[0].join(5)

    def test_int64_wait_and_notify(self):
        b = pw.Int64Array(pw.SharedArrayBuffer(16))
        b.store(1, 2**40)
        self.assertEqual(b.wait(1, 0), "not-equal")
        self.assertEqual(b.wait(1, 2**40, 0.01), "timed-out")
        results = []
        t = threading.Thread(target=lambda: results.append(b.wait(1, 2**40, 10)))
        t.start()
        deadline = time.monotonic() + 10
        while not results and time.monotonic() < deadline:
            b.notify(1)
            time.sleep(0.001)
        t.join(5)
        self.assertEqual(results, ["ok"])

    def test_int64_wait_sees_a_change_of_the_high_half(self):
        b = pw.Int64Array(pw.SharedArrayBuffer(16))
        for round in range(50):
            b.store(1, 7)
            done = threading.Event()

            def waiter():
                while b.load(1) == 7:
                    b.wait(1, 7, 30)
                done.set()

            t = threading.Thread(target=waiter)
            t.start()
            # Only the high half changes; one notify, maybe before the
            # waiter sleeps: it must not sleep through it.
            b.store(1, 7 + (round + 1 << 32))
            b.notify(1)
            self.assertTrue(done.wait(10), f"round {round}: the waiter slept on")
            t.join(5)

    def test_wait_and_notify_across_processes(self):
        a = self.a
        pid = os.fork()
        if pid == 0:
            res = a.wait(5, 0, 10)
            os._exit(0 if res == "ok" else 1)
        # notify() counts only a child that is really asleep on a[5].
        woken = 0
        deadline = time.monotonic() + 10
        while not woken and time.monotonic() < deadline:
            woken = a.notify(5)
            time.sleep(0.001)
        _, status = os.waitpid(pid, 0)
        self.assertEqual(woken, 1)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0)


def asleep(tid, pid=None):
    """Is thread tid (of process pid, else ours) asleep in a futex call
    (futex or futex_waitv)? Its current system call, from /proc."""
    where = f"/proc/{pid}/task/{tid}" if pid else f"/proc/self/task/{tid}"
    try:
        with open(f"{where}/syscall") as f:
            return f.read().split()[0] in ("202", "449")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


class TestNotifyCount(support.LeakCheck):
    """notify() returns the number of distinct waiters woken and wakes at
    most count, for Int64Array (whose waiters sleep on both halves of an
    element) as for Int32Array, across threads and processes."""

    def sleepers(self, a, n, timeout=10, index=1):
        """n threads waiting on a[index] == 0, asleep in the kernel."""
        results, tids = [], []
        lock = threading.Lock()

        def waiter():
            with lock:
                tids.append(threading.get_native_id())
            r = a.wait(index, 0, timeout)
            with lock:
                results.append(r)
        threads = [threading.Thread(target=waiter) for _ in range(n)]
        for t in threads:
            t.start()
        self.addCleanup(self.reap, a, index, threads)
        deadline = time.monotonic() + 10
        while not (len(tids) == n and all(asleep(t) for t in tids)):
            self.assertLess(time.monotonic(), deadline, "waiters never slept")
            time.sleep(0.002)
        return threads, results

    def reap(self, a, index, threads):
        while any(t.is_alive() for t in threads):
            a.notify(index)
            time.sleep(0.01)

    def test_one_waiter_counts_once(self):
        for cls in (pw.Int64Array, pw.Int32Array):
            with self.subTest(cls=cls.__name__):
                a = cls(pw.SharedArrayBuffer(16))
                threads, results = self.sleepers(a, 1)
                self.assertEqual(a.notify(1), 1)
                threads[0].join(5)
                self.assertEqual(results, ["ok"])
                self.assertEqual(a.notify(1), 0)

    def test_three_waiters_count_three(self):
        for cls in (pw.Int64Array, pw.Int32Array):
            with self.subTest(cls=cls.__name__):
                a = cls(pw.SharedArrayBuffer(16))
                threads, results = self.sleepers(a, 3)
                self.assertEqual(a.notify(1, None), 3)
                for t in threads:
                    t.join(5)
                self.assertEqual(results, ["ok"] * 3)

    def test_count_one_wakes_exactly_one(self):
        for cls in (pw.Int64Array, pw.Int32Array):
            with self.subTest(cls=cls.__name__):
                a = cls(pw.SharedArrayBuffer(16))
                threads, results = self.sleepers(a, 2, timeout=1.0)
                self.assertEqual(a.notify(1, 1), 1)
                for t in threads:
                    t.join(5)
                self.assertEqual(sorted(results), ["ok", "timed-out"])

    def test_other_elements_are_not_woken(self):
        a = pw.Int64Array(pw.SharedArrayBuffer(32))
        threads, results = self.sleepers(a, 1, timeout=0.5, index=2)
        self.assertEqual(a.notify(1), 0)
        self.assertEqual(a.notify(3), 0)
        threads[0].join(5)
        self.assertEqual(results, ["timed-out"])

    def forked_sleepers(self, a, n, timeout=10):
        """n forked children waiting on a[1] == 0, asleep; each exits 0 on
        "ok", 1 on "timed-out"."""
        pids = []
        for _ in range(n):
            pid = os.fork()
            if pid == 0:
                res = a.wait(1, 0, timeout)
                os._exit({"ok": 0, "timed-out": 1}.get(res, 2))
            pids.append(pid)
        deadline = time.monotonic() + 10
        while not all(asleep(p, p) for p in pids):
            self.assertLess(time.monotonic(), deadline, "children never slept")
            time.sleep(0.002)
        return pids

    def exit_codes(self, pids):
        return sorted(os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in pids)

    def test_counts_across_processes(self):
        a = pw.Int64Array(pw.SharedArrayBuffer(16))
        pids = self.forked_sleepers(a, 1)
        self.assertEqual(a.notify(1), 1)
        self.assertEqual(self.exit_codes(pids), [0])
        pids = self.forked_sleepers(a, 3)
        self.assertEqual(a.notify(1), 3)
        self.assertEqual(self.exit_codes(pids), [0, 0, 0])
        pids = self.forked_sleepers(a, 2, timeout=1.0)
        self.assertEqual(a.notify(1, 1), 1)
        self.assertEqual(self.exit_codes(pids), [0, 1])

    def test_change_of_the_high_half_wakes_across_processes(self):
        a = pw.Int64Array(pw.SharedArrayBuffer(16))
        for round in range(20):
            a.store(1, 7)
            pid = os.fork()
            if pid == 0:
                while a.load(1) == 7:
                    a.wait(1, 7, 30)
                os._exit(0)
            # Maybe before the child sleeps: it must not sleep through it.
            a.store(1, 7 + (round + 1 << 32))
            a.notify(1)
            t0 = time.monotonic()
            self.assertEqual(self.exit_codes([pid]), [0])
            self.assertLess(time.monotonic() - t0, 10, f"round {round}: the child slept on")


if __name__ == "__main__":
    unittest.main()
