# SPDX-License-Identifier: GPL-2.0
"""Worker targets of test_capi: what a worker does with the example
extension's shared objects it receives."""

import gc
import os

import pyshm_workers as pw


def add_and_report():
    """Receive a SharedCounter, add to it, report, and hold it until told
    to drop it; then report this process's destroy() calls."""
    import pyshm_example
    counter = pw.parent.recv()
    value = counter.add(10)
    pw.parent.post_message({
        "type_ok": type(counter) is pyshm_example.SharedCounter,
        "payload_id": counter.payload_id,
        "value": value,
        "holders": counter.holders,
        "pid": os.getpid(),
    })
    assert pw.parent.recv() == "drop"
    del counter
    gc.collect()
    pw.parent.post_message(pyshm_example.destroyed())


def bytes_report():
    """Receive a SharedBytes: report what it holds and where, then send it
    back (a clone from this interpreter or process)."""
    blob = pw.parent.recv()
    pw.parent.post_message({"bytes": bytes(blob), "payload_id": blob.payload_id,
                            "address": blob.address, "pid": os.getpid()})
    pw.parent.post_message(blob)
    del blob
    gc.collect()


def read_one_and_leave():
    """Read one message and return: later ones stay unread and are
    discarded with the port."""
    pw.parent.recv()
