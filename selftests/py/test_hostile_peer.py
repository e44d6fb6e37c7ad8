# SPDX-License-Identifier: GPL-2.0
"""A peer that misbehaves: a process that resizes what it was given, a
receiver that does not read, a worker that dies holding ports. The program
on the other side stays in bounds, responsive and free of leaks."""

import os
import unittest

import pyshm_workers as pw

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
