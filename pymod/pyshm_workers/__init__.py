# SPDX-License-Identifier: MIT
"""pyshm_workers: Web Workers for Python.

Workers (own-GIL subinterpreters or processes) share nothing by default:
post_message() sends a structured clone. SharedArrayBuffer memory is the
exception, and Int32Array/Int64Array give it atomic operations.
"""

from ._core import (
    DataCloneError,
    Int32Array,
    Int64Array,
    SharedArrayBuffer,
    WorkerError,
    backend,
    structured_clone,
)
# The clone's message bytes, for tests and fuzzing (not part of the API).
from ._core import _decode, _encode  # noqa: F401
from ._port import MessageChannel, MessagePort
from ._version import __version__
from ._worker import Worker, in_worker

# Inside a worker, its MessagePort to the creator and the clone of the
# creator's worker_data; None in the main interpreter.
parent = None
worker_data = None

__all__ = [
    "Atomics",
    "DataCloneError",
    "Int32Array",
    "Int64Array",
    "MessageChannel",
    "MessagePort",
    "SharedArrayBuffer",
    "Worker",
    "WorkerError",
    "WorkerPool",
    "backend",
    "in_worker",
    "parent",
    "structured_clone",
    "worker_data",
]


def __getattr__(name):
    # WorkerPool pulls in concurrent.futures: load it only when used, so
    # that starting a worker stays cheap.
    if name == "WorkerPool":
        from ._pool import WorkerPool
        globals()["WorkerPool"] = WorkerPool
        return WorkerPool
    raise AttributeError(f"module 'pyshm_workers' has no attribute {name!r}")


_TYPED_ARRAYS = (Int32Array, Int64Array)


def _typed(a, op):
    """a itself, when it is a typed array: TypeError otherwise (as
    JavaScript's Atomics refuse anything else)."""
    if not isinstance(a, _TYPED_ARRAYS):
        raise TypeError(f"Atomics.{op}() needs an Int32Array or Int64Array, "
                        f"not {type(a).__name__}")
    return a


class Atomics:
    """The typed-array atomic operations, spelled as in JavaScript.

    ``Atomics.add(a, i, v)`` is ``a.add(i, v)``; timeouts are in seconds.
    ``and``/``or`` are Python keywords: use ``Atomics.and_``/``Atomics.or_``
    (``getattr(Atomics, "and")`` works too).
    """

    __slots__ = ()

    @staticmethod
    def load(a, i):
        return _typed(a, "load").load(i)

    @staticmethod
    def store(a, i, v):
        return _typed(a, "store").store(i, v)

    @staticmethod
    def add(a, i, v):
        return _typed(a, "add").add(i, v)

    @staticmethod
    def sub(a, i, v):
        return _typed(a, "sub").sub(i, v)

    @staticmethod
    def and_(a, i, v):
        return _typed(a, "and_").and_(i, v)

    @staticmethod
    def or_(a, i, v):
        return _typed(a, "or_").or_(i, v)

    @staticmethod
    def xor(a, i, v):
        return _typed(a, "xor").xor(i, v)

    @staticmethod
    def exchange(a, i, v):
        return _typed(a, "exchange").exchange(i, v)

    @staticmethod
    def compare_exchange(a, i, expected, new):
        return _typed(a, "compare_exchange").compare_exchange(i, expected, new)

    compareExchange = compare_exchange

    @staticmethod
    def wait(a, i, value, timeout=None):
        return _typed(a, "wait").wait(i, value, timeout)

    @staticmethod
    def notify(a, i, count=None):
        return _typed(a, "notify").notify(i, count)

    @staticmethod
    def is_lock_free(size):
        return size in (1, 2, 4, 8)

    isLockFree = is_lock_free


setattr(Atomics, "and", Atomics.and_)
setattr(Atomics, "or", Atomics.or_)
