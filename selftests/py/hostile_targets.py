# SPDX-License-Identifier: GPL-2.0
"""Worker targets that misbehave on purpose, for test_hostile_peer.py."""

import os
import stat
import time

import pyshm_workers as pw


def pyshm_memfds(size):
    """This process's fds of pyshm memfds that are size bytes long."""
    found = []
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
            st = os.fstat(fd)
        except OSError:
            continue
        if link.startswith("/memfd:pyshm") and stat.S_ISREG(st.st_mode) and \
                st.st_size == size:
            found.append(fd)
    return found


def truncate_sab(new_size):
    """Receive a SharedArrayBuffer, then ftruncate() its memfd to new_size
    bytes through this process's fd, as any holder of the fd can."""
    sab = pw.parent.recv()
    fds = pyshm_memfds(sab.byte_length)
    for fd in fds:
        os.ftruncate(fd, new_size)
    pw.parent.post_message(len(fds))
    pw.parent.recv()


def sleep_then_echo_lengths(delay, n):
    """Read nothing for delay seconds, then answer each of n messages with
    its length."""
    pw.parent.post_message("started")
    time.sleep(delay)
    for _ in range(n):
        pw.parent.post_message(len(pw.parent.recv()))


def never_read():
    """Announce the pid, then never read (the sender's messages pile up)."""
    pw.parent.post_message(os.getpid())
    time.sleep(600)


def hold_port():
    """Take a port, say so through it with the pid, then sleep holding it."""
    port = pw.parent.recv()
    port.post_message(("holding", os.getpid()))
    time.sleep(600)


def hold_port_then_return():
    """Take a port, say so through it, then end (the port with it)."""
    port = pw.parent.recv()
    port.post_message("holding")
