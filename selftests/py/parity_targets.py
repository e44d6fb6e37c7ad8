# SPDX-License-Identifier: GPL-2.0
"""Worker targets for test_broadcast.py and test_locks.py."""

import os
import time

import pyshm_workers as pw


def bc_echo(name, n):
    """Open a channel of name, say so, and hand its next n messages to the
    parent."""
    bc = pw.BroadcastChannel(name)
    pw.parent.post_message("ready")
    for _ in range(n):
        pw.parent.post_message(bc.recv(60))
    bc.close()


def bc_post(name, values):
    """Post each value on a channel of name once the parent says go."""
    bc = pw.BroadcastChannel(name)
    pw.parent.post_message("ready")
    pw.parent.recv()
    for v in values:
        bc.post_message(v)
    bc.close()


def bc_nested(name, n, mode):
    """A channel here and one in a worker of our own: report both."""
    bc = pw.BroadcastChannel(name)
    inner = pw.Worker(bc_echo, args=(name, n), mode=mode)
    assert inner.recv(60) == "ready"
    pw.parent.post_message("ready")
    for _ in range(n):
        pw.parent.post_message(("outer", bc.recv(60)))
        pw.parent.post_message(("inner", inner.recv(60)))
    inner.join(60)
    bc.close()


def bc_write_sab(name):
    """Take a SharedArrayBuffer off the channel and write to it."""
    bc = pw.BroadcastChannel(name)
    pw.parent.post_message("ready")
    sab = bc.recv(60)
    memoryview(sab)[0] = 42
    pw.parent.post_message("written")


def lock_hold(name, mode):
    """Take the lock, say so with the pid, hold it until told."""
    with pw.locks.request(name, mode) as lock:
        pw.parent.post_message(("held", lock.name, lock.mode, os.getpid()))
        pw.parent.recv()
    pw.parent.post_message("released")


def lock_wait(name, timeout):
    """Wait for the lock and report how it went."""
    pw.parent.post_message("waiting")
    try:
        with pw.locks.request(name, timeout=timeout) as lock:
            pw.parent.post_message(("got", lock.mode))
    except TimeoutError:
        pw.parent.post_message("timed out")


def lock_block_forever(name):
    """Wait on a lock that is held elsewhere, forever."""
    pw.parent.post_message("waiting")
    with pw.locks.request(name):
        time.sleep(600)


def lock_hold_then_exit_hard(name):
    """Take the lock, say so, then end without leaving the with block."""
    with pw.locks.request(name):
        pw.parent.post_message("held")
        pw.parent.recv()
        os._exit(3)
