# SPDX-License-Identifier: MIT
"""Web Locks for the workers of a program: locks by name, held for the
length of a with (or async with) block, exclusive or shared, coordinated
program-wide (pymod/locks.c).

    with pw.locks.request("cache") as lock:
        ...                     # no other holder of "cache" anywhere

A holder that ends, however it ends (its process killed included),
releases what it holds.
"""

from . import _core

__all__ = ["Lock", "query", "request"]

MODES = ("exclusive", "shared")
# _core's answers (pymod/locks.c: LK_*)
_WAITING, _GRANTED, _NOT_AVAILABLE, _FAILED = 0, 1, 2, 3


class Lock:
    """A held lock: its name and mode."""

    __slots__ = ("name", "mode")

    def __init__(self, name, mode):
        self.name = name
        self.mode = mode

    def __repr__(self):
        return f"<pyshm_workers.locks.Lock {self.name!r} {self.mode}>"


class _Request:
    """The context manager request() returns: the lock is asked for on
    entry and released on exit."""

    def __init__(self, name, mode, if_available, steal, timeout):
        self._args = (name, mode == "shared", if_available, steal)
        self._name, self._mode, self._timeout = name, mode, timeout
        self._id = None

    def _ask(self):
        if self._id is not None:
            raise RuntimeError("a lock request is entered once")
        self._id = _core._lock_request(*self._args)

    def _answered(self, state):
        if state == _GRANTED:
            return Lock(self._name, self._mode)
        _core._lock_done(self._id)
        self._id = None
        if state == _NOT_AVAILABLE:
            return None
        if state == _WAITING:
            raise TimeoutError(f"lock {self._name!r} not granted within {self._timeout} s")
        raise RuntimeError(f"lock {self._name!r}: the program's lock manager cannot be "
                           "reached (its process is gone)")

    def _give_up(self):
        if self._id is not None:
            _core._lock_done(self._id)
            self._id = None

    def __enter__(self):
        try:
            self._ask()
            state = _core._lock_wait(self._id, -1.0 if self._timeout is None
                                     else float(self._timeout))
        except BaseException:
            self._give_up()
            raise
        return self._answered(state)

    def __exit__(self, *exc):
        self._give_up()

    async def __aenter__(self):
        import asyncio
        loop = asyncio.get_running_loop()
        try:
            self._ask()
            fd = _core._lock_fd(self._id)
        except BaseException:
            self._give_up()
            raise
        fut = loop.create_future()
        loop.add_reader(fd, lambda: fut.done() or fut.set_result(None))
        try:
            await asyncio.wait_for(fut, self._timeout)
        except asyncio.TimeoutError:
            pass
        except BaseException:       # cancelled: the request goes too
            self._give_up()
            raise
        finally:
            loop.remove_reader(fd)
        return self._answered(_core._lock_wait(self._id, 0.0))

    async def __aexit__(self, *exc):
        self.__exit__(*exc)

    def __repr__(self):
        state = "held" if self._id is not None else "not held"
        return f"<lock request {self._name!r} {self._mode} {state}>"


def request(name, mode="exclusive", *, if_available=False, steal=False, timeout=None):
    """A context manager holding the lock `name` for its block: with or
    async with. mode "exclusive" (one holder) or "shared" (any number of
    shared holders, no exclusive one). if_available: do not wait; the block
    gets None when the lock is held. steal: take it from its holders at
    once (exclusive only, not with if_available). timeout: seconds to wait
    before TimeoutError (None: no limit)."""
    if not isinstance(name, str):
        raise TypeError(f"lock name must be a str, not {type(name).__name__}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    if steal and if_available:
        raise ValueError("steal and if_available cannot both be set")
    if steal and mode == "shared":
        raise ValueError("steal takes an exclusive lock only")
    if timeout is not None:
        timeout = float(timeout)
        if timeout != timeout or timeout < 0:
            raise ValueError("timeout must be a number >= 0 or None")
    return _Request(name, mode, bool(if_available), bool(steal), timeout)


def query(timeout=10.0):
    """What is held and what waits, program-wide:
    {"held": [{"name", "mode"}...], "pending": [...]}."""
    out = {"held": [], "pending": []}
    for held, shared, name in _core._lock_query(float(timeout)):
        out["held" if held else "pending"].append(
            {"name": name, "mode": "shared" if shared else "exclusive"})
    return out
