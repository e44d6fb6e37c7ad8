# SPDX-License-Identifier: GPL-2.0
"""Worker targets for test_resources.py."""

import time

import pyshm_workers as pw


def spin():
    """Say so, then burn CPU until ended."""
    pw.parent.post_message("spinning")
    while True:
        pass


def work_when_asked():
    """Burn about n seconds of CPU time for each n received, then say
    "done"; until the end of the stream."""
    for n in pw.parent:
        end = time.thread_time() + n
        while time.thread_time() < end:
            pass
        pw.parent.post_message("done")


def allocate(n, step):
    """Say so, then hold n bytes more, step bytes at a time (a MemoryError
    past a limit ends the worker)."""
    pw.parent.post_message("allocating")
    held = []
    while sum(map(len, held)) < n:
        held.append(bytearray(step))
    pw.parent.post_message("held")
    pw.parent.recv()


def block_then_mark(path):
    """Say so, then wait for the end of the stream; then write path (the
    worker was waited for at exit)."""
    pw.parent.post_message("blocking")
    for _ in pw.parent:
        pass
    time.sleep(0.5)
    with open(path, "w") as f:
        f.write("finished")
