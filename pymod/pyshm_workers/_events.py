# SPDX-License-Identifier: MIT
"""Event-style delivery: a thread reads a source and calls its callbacks,
holding back what comes while a callback is unset."""

import collections
import sys
import threading


class Unraisable:
    """What sys.unraisablehook takes: an exception no caller can catch."""

    def __init__(self, exc, err_msg):
        self.exc_type, self.exc_value = type(exc), exc
        self.exc_traceback = exc.__traceback__
        self.err_msg = err_msg
        self.object = None


class Dispatcher:
    """Calls callbacks[kind](value) for each (kind, value) that read()
    returns, in order, on a thread of its own; read() returning None ends
    it. An event whose callback is None waits, with everything after it,
    until the callback is set."""

    def __init__(self, owner, read, start_thread):
        self._owner = owner
        self._read = read
        self._callbacks = {}
        self._held = collections.deque()
        self._lock = threading.RLock()      # a callback may set another
        self._thread = None
        self._start_thread = start_thread

    def set(self, kind, fn):
        if fn is not None and not callable(fn):
            raise TypeError(f"{kind} must be callable or None")
        with self._lock:
            self._callbacks[kind] = fn
            if fn is not None and self._thread is None:
                self._thread = self._start_thread(self._run)
            self._flush()

    def get(self, kind):
        return self._callbacks.get(kind)

    def _flush(self):
        while self._held:
            fn = self._callbacks.get(self._held[0][0])
            if fn is None:
                return
            self._call(fn, *self._held.popleft())

    def _call(self, fn, kind, value):
        try:
            fn(value)
        except Exception as exc:
            # Reported as an exception in a thread is; delivery goes on.
            sys.unraisablehook(Unraisable(exc, f"Exception in {self._owner}.{kind}"))

    def _run(self):
        while True:
            event = self._read()
            if event is None:
                return
            with self._lock:
                fn = self._callbacks.get(event[0])
                if fn is None or self._held:
                    self._held.append(event)
                else:
                    self._call(fn, *event)
