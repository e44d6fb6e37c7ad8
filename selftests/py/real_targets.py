# SPDX-License-Identifier: GPL-2.0
"""Worker and pool targets for the tests of real programs (functions by
value, pool options, main-script objects): nothing here refuses a
subinterpreter."""

import os
import sys
import time
import types

import pyshm_workers as pw
from pyshm_workers import _worker

INIT_STATUS = "uninitialized"


def where():
    """Which kind of worker runs this, and its pid."""
    return ("interpreter" if _worker._in_subinterpreter else "process", os.getpid())


# Made when this module is imported: each interpreter or process that
# imports it has its own (an id() may be reused by the next interpreter,
# as a thread id is).
_TOKEN = os.urandom(8).hex()


def where_and_id():
    """where(), and something unique to this interpreter: a fresh one after
    a replacement, in either mode."""
    return where() + (_TOKEN,)


def init(status):
    global INIT_STATUS
    INIT_STATUS = status


def get_init_status():
    return INIT_STATUS


def init_fail():
    time.sleep(0.1)     # let some tasks be scheduled
    raise ValueError("error in initializer")


def mul(x, y):
    return x * y


def fail_on(x, bad):
    if x == bad:
        raise ZeroDivisionError(f"bad {x}")
    return x


def sleep_and_return(delay, value):
    time.sleep(delay)
    return value


def call(fn, *args):
    """fn(*args): a function that came as an argument."""
    return fn(*args)


def call_callbacks():
    """Call what each job of each message holds; post the results."""
    for msg in pw.parent:
        pw.parent.post_message([job.callback(job.arg) for job in msg["jobs"]])


def send_back(obj):
    pw.parent.post_message(obj)


def send_a_closure(k):
    """Send back a closure and a lambda made here."""
    def add(x):
        return x + k
    pw.parent.post_message({"add": add, "double": lambda x: 2 * x})


class Job:
    def __init__(self, callback, arg=None):
        self.callback = callback
        self.arg = arg


def make_worker_only():
    """An object whose class only this worker can import (its module
    exists in this worker's sys.modules alone)."""
    mod = types.ModuleType("pyshm_worker_only")

    class WorkerOnly:
        pass
    WorkerOnly.__module__ = mod.__name__
    WorkerOnly.__qualname__ = "WorkerOnly"
    mod.WorkerOnly = WorkerOnly
    sys.modules[mod.__name__] = mod
    return WorkerOnly()


def count_messages():
    """Reply with how many messages came before the end of the stream."""
    n = 0
    for _ in pw.parent:
        n += 1
    pw.parent.post_message(n)


def send_back_value(v):
    """v itself, and the kind of worker it came to."""
    return v, where()[0]


def import_names(names):
    """A task importing modules as it runs; how many."""
    import importlib
    for name in names:
        importlib.import_module(name)
    return len(names)


def my_comm():
    """The name (comm) of the thread running this, from /proc."""
    import threading
    with open(f"/proc/self/task/{threading.get_native_id()}/comm", "rb") as f:
        pw.parent.post_message(f.read().rstrip(b"\n").decode("utf-8", "replace"))


def import_modules_report(names):
    """Post "ok", or what importing names raised."""
    import importlib
    try:
        for name in names:
            importlib.import_module(name)
    except ImportError as e:
        pw.parent.post_message(f"{type(e).__name__}: {e}")
    else:
        pw.parent.post_message("ok")
