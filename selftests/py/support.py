# SPDX-License-Identifier: GPL-2.0
"""Helpers shared by the pyshm_workers tests."""

import contextlib
import gc
import importlib.util
import os
import signal
import subprocess
import sys
import textwrap
import time
import unittest

import pyshm_workers as pw
from pyshm_workers import _core

HAVE_SUBINTERPRETERS = sys.version_info >= (3, 12)
NO_SUBINTERPRETERS = "own-GIL subinterpreters need Python 3.12+ (3.11 runs process mode only)"
# CPython 3.12 (3.12.1 measured) crashes at exit ("free(): invalid pointer")
# when an own-GIL interpreter ran an asyncio event loop while another
# interpreter ran one too, with or without pyshm (Documentation/python-api.rst,
# Limits); 3.13 does not.
HAVE_ASYNCIO_IN_INTERPRETERS = sys.version_info >= (3, 13)
NO_ASYNCIO_IN_INTERPRETERS = ("CPython 3.12 crashes when two interpreters run asyncio "
                              "event loops at once (fixed in 3.13)")
MODES = ("interpreter", "process") if HAVE_SUBINTERPRETERS else ("process",)
TIMEOUT = 60
# check-py-asan preloads ASan's runtime, which its child processes inherit:
# its allocator and shadow memory do not fit under a data-size limit.
UNDER_ASAN = "libasan" in os.environ.get("LD_PRELOAD", "")
NO_MEMORY_LIMIT_UNDER_ASAN = "ASan's runtime needs more than a worker's max_memory_bytes"

try:
    import numpy
except ImportError:
    numpy = None
NO_NUMPY = ("numpy is not installed for this Python (Debian's python3-numpy: "
            "/usr/bin/python3 and the 3.14/3.15 chroot)")

HAVE_CLOUDPICKLE = importlib.util.find_spec("cloudpickle") is not None
NO_CLOUDPICKLE = ("cloudpickle is not installed for this Python (Debian's "
                  "python3-cloudpickle: /usr/bin/python3 and the 3.14/3.15 chroot)")
WITH_CLOUDPICKLE = "cloudpickle is installed for this Python: functions go by value"


@contextlib.contextmanager
def without_cloudpickle():
    """This interpreter acts as if cloudpickle were not installed, for the
    encoder running here (import cloudpickle raises ImportError)."""
    saved = sys.modules.get("cloudpickle", _MISSING)
    sys.modules["cloudpickle"] = None
    try:
        yield
    finally:
        if saved is _MISSING:
            del sys.modules["cloudpickle"]
        else:
            sys.modules["cloudpickle"] = saved


_MISSING = object()


def subinterpreters():
    """The low-level subinterpreter module of this Python (3.12 or 3.13)."""
    try:
        import _interpreters as mod
    except ImportError:
        import _xxsubinterpreters as mod
    return mod


def new_isolated_interpreter():
    """An own-GIL subinterpreter that refuses single-phase extensions."""
    mod = subinterpreters()
    if sys.version_info >= (3, 13):
        return mod.create("isolated")
    return mod.create(isolated=True)


def run_in_interpreter(iid, code):
    """Run code in a subinterpreter; raise if it raised."""
    mod = subinterpreters()
    if sys.version_info >= (3, 13):
        exc = mod.exec(iid, code)
        if exc is not None:
            raise RuntimeError(f"subinterpreter raised: {exc.formatted}")
    else:
        mod.run_string(iid, code)


def open_fds():
    return len(os.listdir("/proc/self/fd"))


class LeakCheck(unittest.TestCase):
    """A test case that checks live regions and fds come back to where they
    started."""

    def setUp(self):
        gc.collect()
        self._regions = _core.stats()["regions"]
        self._fds = open_fds()
        # A cleanup, not tearDown: it runs after the test's own cleanups
        # (which end its workers).
        self.addCleanup(self.assertNoLeak)

    def assertNoLeak(self):
        # Worker threads and monitors let go of their last references a
        # moment after join() returns: give them up to two seconds.
        deadline = time.monotonic() + 2
        while True:
            gc.collect()
            regions, fds = _core.stats()["regions"], open_fds()
            if (regions == self._regions and fds <= self._fds + 1) or \
                    time.monotonic() > deadline:
                break
            time.sleep(0.01)
        self.assertEqual(regions, self._regions, "regions leaked")
        # + 1: this thread's io_uring submission ring stays open.
        self.assertLessEqual(fds, self._fds + 1, "fds leaked")


class Workers:
    """Mixin for test cases over workers of self.mode: start() one that is
    ended (terminate()d if need be) and checked gone when the test is over."""

    mode = None

    def start(self, target, *args, kwargs=None, **kw):
        w = pw.Worker(target, args=args, kwargs=kwargs, mode=self.mode, **kw)
        self.addCleanup(self.reap, w)
        return w

    def assertProcessEnds(self, pid, what, within=10):
        """Process pid must be gone within seconds (else it is killed)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.02)
        os.kill(pid, signal.SIGKILL)
        self.fail(f"{what} ({pid}) outlived it")

    def run_script(self, body, timeout=60, flags=()):
        """Run body (a script, indented or not) in a Python of its own that
        sees this one's sys.path; the CompletedProcess, its output as text.
        A hang past timeout seconds is a failure."""
        script = f"import sys\nsys.path[:0] = {sys.path!r}\n" + textwrap.dedent(body)
        try:
            return subprocess.run([sys.executable, *flags, "-c", script],
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            self.fail(f"hung for {timeout} s")

    def reap(self, w):
        if w.is_alive():
            w.terminate()
        w.join(TIMEOUT)
        self.assertFalse(w.is_alive(), "worker did not end")


def fork_and_check(fn):
    """Run fn() in a forked child; return its exit status (0 = passed)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = 0 if fn() in (None, True) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)

