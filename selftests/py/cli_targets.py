# SPDX-License-Identifier: GPL-2.0
"""The program test_cli.py looks at with `python -m pyshm_workers stats`,
and its workers' targets: known regions (two SharedArrayBuffers, a
channel with messages in flight), two process workers holding a buffer
(one named "pw:<name>" by _core._set_worker_name(), as workers name
themselves), and a thread so named, as an interpreter worker's is.

    python -c "import cli_targets; cli_targets.main()"

prints one JSON line of what it made, then holds it all until a line
comes on its stdin.
"""

import json
import os
import sys
import threading

import pyshm_workers as pw

SIZES = (12345, 3 * 4096)
SMALL, LARGE = 1000, 200000


def hold():
    """Keep the buffer the parent sends until its next message."""
    sab = pw.parent.recv()
    pw.parent.post_message(sab.byte_length)
    pw.parent.recv()


def hold_named(name):
    pw._core._set_worker_name(name)
    hold()


def main():
    sabs = [pw.SharedArrayBuffer(SIZES[0]),
            pw.SharedArrayBuffer(SIZES[1], max_byte_length=65536)]
    p1, p2 = pw.MessageChannel()
    p1.post_message(b"x" * SMALL)
    p1.post_message(b"y" * LARGE)
    workers = [pw.Worker("cli_targets:hold", mode="process"),
               pw.Worker("cli_targets:hold_named", args=("named-proc",), mode="process")]
    for w in workers:
        w.post_message(sabs[0])
        if w.recv(timeout=60) != SIZES[0]:
            raise RuntimeError("a worker did not get the buffer")
    named, done = threading.Event(), threading.Event()

    def interp_like():
        pw._core._set_worker_name("named-thread")
        named.set()
        done.wait()

    t = threading.Thread(target=interp_like)
    t.start()
    named.wait()
    print(json.dumps({"pid": os.getpid(), "workers": [w.pid for w in workers],
                      "tid": t.native_id, "backend": pw.backend()}), flush=True)
    sys.stdin.readline()
    done.set()
    t.join()
    for w in workers:
        w.post_message(None)
        w.join(60)
    p1.close()
    p2.close()
