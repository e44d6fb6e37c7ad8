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


def _scribble(rnd, size_min=0):
    """Write random bytes over the pyshm memfds this process holds (the
    channel's header and rings most of all), or grow them past their
    maximum."""
    import mmap
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            if not os.readlink(f"/proc/self/fd/{fd}").startswith("/memfd:pyshm"):
                continue
            size = os.fstat(fd).st_size
            if size <= size_min:
                continue
            if rnd.random() < 0.2:
                os.ftruncate(fd, size + rnd.randrange(1, 1 << 22))
                continue
            with mmap.mmap(fd, size) as m:
                for _ in range(rnd.randrange(1, 16)):
                    # The first KiB of a region is where headers live.
                    at = rnd.randrange(min(size, 1024) if rnd.random() < 0.5 else size)
                    m[at] = rnd.randrange(256)
        except OSError:
            continue


def _garbage_on_sockets(rnd):
    """Random datagrams, some with fds that are not regions, on every
    socket this process holds."""
    import array
    import socket
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            if not os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                continue
            s = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue
        try:
            s.setblocking(False)
            data = rnd.randbytes(rnd.choice((8, 8, 3, 40)))
            if rnd.random() < 0.5:
                with open("/dev/null", "rb") as f:
                    s.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                        array.array("i", [f.fileno()]))])
            else:
                s.send(data)
        except OSError:
            pass
        finally:
            s.close()


def hostile_peer(seed):
    """Behave part of the time: answer and send, scribble over shared
    memory, grow what was shared past its maximum, put garbage on the
    sockets, and die at a random moment."""
    import random
    import signal
    rnd = random.Random(seed)
    held = []
    for _ in range(rnd.randrange(5, 200)):
        step = rnd.random()
        try:
            if step < 0.15:
                _scribble(rnd)
            elif step < 0.25:
                _garbage_on_sockets(rnd)
            elif step < 0.3:
                if rnd.random() < 0.5:
                    os._exit(rnd.randrange(3))
                os.kill(os.getpid(), signal.SIGKILL)
            elif step < 0.65:
                msg = pw.parent.recv(timeout=0.02)
                held.append(msg)
                if isinstance(msg, pw.MessagePort) and rnd.random() < 0.5:
                    msg.post_message(b"x" * rnd.choice((10, 70000)))
            else:
                sab = pw.SharedArrayBuffer(rnd.randrange(1, 8192),
                                           max_byte_length=1 << 16)
                pw.parent.post_message(
                    rnd.choice([sab, b"y" * rnd.choice((10, 100000)),
                                {"list": list(range(rnd.randrange(50)))}]),
                    timeout=0.05)
        except (TimeoutError, EOFError, ValueError, OSError, pw.DataCloneError):
            pass
