# SPDX-License-Identifier: GPL-2.0
"""Worker targets for test_typed_arrays.py, test_arraybuffer.py and
test_wait_async.py."""

import asyncio

import pyshm_workers as pw


def typed_mark(arrays):
    """Write 1 to the first and 2 to the last element of each typed array;
    report what each looks like here."""
    out = []
    for a in arrays:
        a[0] = 1
        a[-1] = 2
        out.append((type(a).__name__, type(a.buffer).__name__, a.byte_offset, list(a)))
    pw.parent.post_message(out)


def ab_bounce(transfer_back):
    """For each ArrayBuffer the parent sends (until None): add 1 to its
    first byte, send it back (moved when transfer_back), then whether it is
    detached here."""
    while (ab := pw.parent.recv()) is not None:
        with memoryview(ab) as m:
            m[0] = (m[0] + 1) % 256
        pw.parent.post_message(ab, transfer=[ab] if transfer_back else ())
        pw.parent.post_message(ab.detached)


def ab_receive_views():
    """Receive [ab, view, view]; report sizes, identity and content."""
    ab, v1, v2 = pw.parent.recv()
    pw.parent.post_message((ab.byte_length, v1.buffer is ab, v2.buffer is ab, list(v1),
                            list(v2)))


def wa_wait(a, i, value, timeout):
    """await a.wait_async(i, value, timeout) in an event loop of this
    worker; say "waiting" once the wait has begun, then the result."""
    async def main():
        w = a.wait_async(i, value, timeout)
        pw.parent.post_message("waiting")
        return await w

    pw.parent.post_message(asyncio.run(main()))


def wa_pingpong(a, n):
    """n rounds: wait (asyncio) for a[0] to turn odd, make it even, notify."""
    async def main():
        for k in range(n):
            while (v := a.load(0)) == 2 * k:
                await a.wait_async(0, v)
            a.store(0, 2 * k + 2)
            a.notify(0)

    asyncio.run(main())
    pw.parent.post_message("done")
