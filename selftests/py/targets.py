# SPDX-License-Identifier: GPL-2.0
"""Worker targets used by the tests. Kept apart from the test modules so
that a worker imports only this (and pyshm_workers)."""

import os
import signal
import sys
import time

import pyshm_workers as pw


def echo():
    """Send back every message until the parent closes its end."""
    for msg in pw.parent:
        pw.parent.post_message(msg)


def echo_n(n):
    for _ in range(n):
        pw.parent.post_message(pw.parent.recv())


def report(*args, **kwargs):
    pw.parent.post_message({
        "args": args,
        "kwargs": kwargs,
        "worker_data": pw.worker_data,
        "in_worker": pw.in_worker(),
        "parent_is_port": isinstance(pw.parent, pw.MessagePort),
        "pid": os.getpid(),
    })


def count_to(n):
    for i in range(n):
        pw.parent.post_message(i)


def send_then_raise(n):
    for i in range(n):
        pw.parent.post_message(i)
    raise ValueError(f"bad value {n}")


def raise_unclonable():
    class Local(Exception):
        pass
    raise Local("cannot be cloned by reference")


def exit_with(code):
    pw.parent.post_message("bye")
    sys.exit(code)


def hard_exit(code):
    pw.parent.post_message("bye")
    os._exit(code)


def segfault():
    pw.parent.post_message("about to crash")
    os.kill(os.getpid(), signal.SIGSEGV)


def sleep_forever():
    pw.parent.post_message("sleeping")
    time.sleep(100)


def recv_forever():
    pw.parent.post_message("receiving")
    pw.parent.recv()


def spin_forever():
    pw.parent.post_message("spinning")
    x = 0
    while True:
        x += 1


def wait_forever_on(a):
    pw.parent.post_message("waiting")
    a.wait(0, 0)


def write_sab(sab, offset, data):
    memoryview(sab)[offset:offset + len(data)] = data
    pw.parent.post_message("written")


def atomics_increment(a, n):
    """Add 1 n times to a[0], then bump a[1] and notify the parent."""
    for _ in range(n):
        a.add(0, 1)
    a.add(1, 1)
    a.notify(1)


def atomics_wait_go(a):
    """Wait until a[0] becomes non-zero, then report a[0]."""
    while a.load(0) == 0:
        a.wait(0, 0, 10)
    pw.parent.post_message(a.load(0))


def sequence_to(port, tag, n):
    for i in range(n):
        port.post_message((tag, i))
    port.close()


def port_echo():
    """Receive a port from the parent, then echo on that port."""
    port = pw.parent.recv()
    pw.parent.post_message("got port")
    for msg in port:
        port.post_message(("echo", msg))


def pass_port_on():
    """Receive a port and send one message on it."""
    port = pw.parent.recv()
    port.post_message(f"hello from {pw.worker_data}")
    port.close()


def slow_reader(delay):
    time.sleep(delay)
    got = 0
    for msg in pw.parent:
        got += 1
    pw.parent.post_message(got)


def nested(depth):
    if depth == 0:
        pw.parent.post_message("leaf")
        return
    w = pw.Worker(nested, args=(depth - 1,), mode=pw.worker_data or "auto",
                  worker_data=pw.worker_data)
    pw.parent.post_message((depth, w.recv()))
    w.join()


def hold_sab_and_sleep(sab):
    memoryview(sab)[0] = 1
    pw.parent.post_message("holding")
    time.sleep(100)


def square(x):
    return x * x


def fail(msg):
    raise KeyError(msg)


def die():
    os._exit(7)


def whoami():
    return os.getpid()


def cpu_work(n):
    s = 0
    for i in range(n):
        s += i * i
    return s


def report_env(name):
    pw.parent.post_message(os.environ.get(name))


def post_forever():
    """Post until the parent's ring is full, and go on posting."""
    pw.parent.post_message("posting")
    block = b"x" * 4096
    while True:
        pw.parent.post_message(block)


def sleep_then_exit(delay, code):
    time.sleep(delay)
    os._exit(code)


def pool_in_worker():
    """A WorkerPool of the worker's own, left for the end of the target
    to shut down."""
    pool = pw.WorkerPool(max_workers=2, mode=pw.worker_data or "auto")
    pw.parent.post_message(list(pool.map(square, range(5))))


def callbacks_in_worker():
    """Event-style messages from a worker of the worker's own."""
    import threading
    got, done = [], threading.Event()
    w = pw.Worker(count_to, args=(3,), mode=pw.worker_data or "auto")

    def on_message(msg):
        got.append(msg)
        if len(got) == 3:
            done.set()

    w.on_message = on_message
    done.wait(60)
    pw.parent.post_message(got)


def nest_then_sleep():
    """Start a worker of our own that sleeps, report its pid, and sleep."""
    w = pw.Worker(sleep_forever, mode=pw.worker_data or "auto")
    assert w.recv(60) == "sleeping"
    pw.parent.post_message(w.pid)
    time.sleep(100)


def block_in_c():
    """Block where terminate() cannot reach an interpreter worker."""
    import threading
    pw.parent.post_message("blocking")
    threading.Event().wait()


def async_echo_once():
    """pw.parent.arecv() under asyncio, inside the worker."""
    import asyncio

    async def main():
        pw.parent.post_message(("async", await pw.parent.arecv()))

    asyncio.run(main())


class Dummy:
    """A result a weak reference can watch (pool tests)."""

    def method(self):
        pass


def make_dummy(_):
    return Dummy()


def wait_for_flag(a):
    """Say so, then wait until a[0] is set."""
    pw.parent.post_message("waiting")
    while a.load(0) == 0:
        a.wait(0, 0, 1)


def flag_then_report_stream(a):
    """Wait until a[0] is set, then set a[1]: 1 if pw.parent is still open
    (recv() times out), 2 if it reached the end of the stream."""
    pw.parent.post_message("waiting")
    while a.load(0) == 0:
        a.wait(0, 0, 1)
    try:
        pw.parent.recv(0.2)
        a.store(1, 3)
    except TimeoutError:
        a.store(1, 1)
    except EOFError:
        a.store(1, 2)
    a.notify(1)


# A token of the interpreter (or process) that imported this module.
TOKEN = os.urandom(8).hex()


def identity():
    return os.getpid(), TOKEN


def exit_in_a_thread(code):
    """os._exit() from a thread of the worker while its target sleeps."""
    import threading

    def run():
        pw.parent.post_message("exiting")
        os._exit(code)

    try:
        threading.Thread(target=run).start()
        time.sleep(100)
    finally:
        pw.parent.post_message("finally ran")


def exit_swallowed(code):
    """os._exit() under a handler that would swallow SystemExit."""
    try:
        os._exit(code)
    except BaseException:
        pw.parent.post_message("swallowed")
    pw.parent.post_message("went on")


def exit_in_finally(code):
    try:
        pw.parent.post_message("raising")
        raise ValueError("never reported")
    finally:
        os._exit(code)


def swallow_forever():
    """A loop that catches everything terminate() raises."""
    pw.parent.post_message("swallowing")
    while True:
        try:
            while True:
                pass
        except BaseException:
            pass


def clean_up_when_terminated():
    pw.parent.post_message("sleeping")
    try:
        time.sleep(100)
    finally:
        pw.parent.post_message("cleaned up")


def exit_with_status(code):
    """A fork child's target (multiprocessing): a normal exit, atexit and
    all, with its own status."""
    sys.exit(code)


def import_modules(names):
    """Import names (stdlib modules), report how many."""
    import importlib
    for name in names:
        importlib.import_module(name)
    pw.parent.post_message(len(names))


def start_interpreter_workers(n):
    """A process worker that starts interpreter workers of its own (and so
    a spare interpreter), then ends."""
    for i in range(n):
        w = pw.Worker(import_modules, args=(["json", "decimal"],), mode="interpreter")
        assert w.recv(60) == 2
        w.join(60)
    pw.parent.post_message("done")


def array_report():
    """For each array received: what it lies over, as the tests check it
    (None ends it)."""
    for a in pw.parent:
        if a is None:
            break
        base = a.base
        pw.parent.post_message({
            "base": type(base).__name__,
            "writable": a.flags.writeable,
            "owndata": a.flags.owndata,
            "address": a.__array_interface__["data"][0],
            "region_address": getattr(base, "address", None),
            "region_nbytes": getattr(base, "nbytes", None),
            "sum": float(a.sum()) if a.dtype.kind in "biuf" else None,
            "shape": a.shape,
            "dtype": a.dtype.str,
            "fortran": a.flags.f_contiguous and not a.flags.c_contiguous,
        })


def array_total(a):
    return float(a.sum())


def recv_error():
    """Receive one message; send back the type and text of the error it
    raised (or 'ok')."""
    try:
        pw.parent.recv()
    except Exception as exc:
        pw.parent.post_message((type(exc).__name__, str(exc),
                                type(exc.__cause__).__name__))
    else:
        pw.parent.post_message(("ok", "", ""))
    pw.parent.post_message(pw.parent.recv())
