# SPDX-License-Identifier: GPL-2.0
"""py_peer.py SECONDS [SEED]: pyshm_workers against a hostile process
worker (selftests/py/hostile_targets.py: hostile_peer) that scribbles over
the channel and everything shared with it, grows shared memfds past their
maximum, puts garbage on the sockets, and dies at random. The parent posts
and receives with timeouts. It must not crash, hang or leak regions; the
only errors it may see are the documented ones (a timeout, the end of the
stream, a malformed message, a corrupted channel). Prints TAP."""

import errno
import os
import random
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "py"))

import pyshm_workers as pw            # noqa: E402
from pyshm_workers import _core       # noqa: E402

import hostile_targets                # noqa: E402

# A corrupted channel is reported as OSError with one of these.
CHANNEL_ERRNOS = {errno.EBADMSG, errno.EPROTO, errno.EPIPE}


def expected(exc):
    if isinstance(exc, (TimeoutError, EOFError, pw.DataCloneError, pw.WorkerError)):
        return True
    if isinstance(exc, ValueError) and "closed" in str(exc):
        return True
    return isinstance(exc, OSError) and exc.errno in CHANNEL_ERRNOS


def one_worker(rnd, tally):
    w = pw.Worker(hostile_targets.hostile_peer, args=(rnd.randrange(1 << 30),),
                  mode="process")
    ports = []
    try:
        for _ in range(rnd.randrange(10, 100)):
            try:
                if rnd.random() < 0.5:
                    tally["received"] += w.recv(timeout=0.02) is not None
                    continue
                what = rnd.random()
                if what < 0.3:
                    a, b = pw.MessageChannel()
                    ports.append(a)
                    w.post_message(b, transfer=[b], timeout=0.1)
                elif what < 0.5:
                    w.post_message(pw.SharedArrayBuffer(4096, max_byte_length=1 << 16),
                                   timeout=0.1)
                else:
                    w.post_message(bytes(rnd.choice((16, 200000))), timeout=0.1)
                tally["posted"] += 1
            except Exception as e:      # noqa: BLE001 - judged here
                if not expected(e):
                    raise
                tally[type(e).__name__] = tally.get(type(e).__name__, 0) + 1
                # The end, or a channel the peer corrupted.
                if isinstance(e, (EOFError, pw.WorkerError)) or \
                        (isinstance(e, OSError) and e.errno in CHANNEL_ERRNOS):
                    break
        for a in ports:
            try:
                a.recv(timeout=0.01)
            except Exception as e:      # noqa: BLE001
                if not expected(e):
                    raise
    finally:
        w.terminate()
        w.join(30)
        for a in ports:
            a.close()
    if w.is_alive():
        raise AssertionError("a hostile worker did not end after terminate()")
    tally["workers"] += 1


def main():
    secs = float(sys.argv[1])
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else random.randrange(1 << 32)
    rnd = random.Random(seed)
    print(f"1..1\n# seed {seed}", flush=True)
    regions = _core.stats()["regions"]
    tally = {"workers": 0, "posted": 0, "received": 0}
    end = time.monotonic() + secs
    try:
        while time.monotonic() < end:
            one_worker(rnd, tally)
        deadline = time.monotonic() + 5
        while _core.stats()["regions"] != regions and time.monotonic() < deadline:
            time.sleep(0.05)
        left = _core.stats()["regions"] - regions
        if left:
            raise AssertionError(f"{left} regions leaked")
    except Exception as e:              # noqa: BLE001 - reported as TAP
        print(f"not ok 1 py_peer: {type(e).__name__}: {e}")
        import traceback
        for line in traceback.format_exc().splitlines():
            print("#   " + line)
        print("# Totals: pass:0 fail:1 xfail:0 xpass:0 skip:0 error:0")
        return 1
    print(f"ok 1 py_peer: {tally}")
    print("# Totals: pass:1 fail:0 xfail:0 xpass:0 skip:0 error:0")
    return 0


if __name__ == "__main__":
    sys.exit(main())
