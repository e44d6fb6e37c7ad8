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


class Atomics:
    """The typed-array atomic operations, spelled as in JavaScript.

    ``Atomics.add(a, i, v)`` is ``a.add(i, v)``; timeouts are in seconds.
    ``and``/``or`` are Python keywords: use ``Atomics.and_``/``Atomics.or_``
    (``getattr(Atomics, "and")`` works too).
    """

    __slots__ = ()

    @staticmethod
    def load(a, i):
        return a.load(i)

    @staticmethod
    def store(a, i, v):
        return a.store(i, v)

    @staticmethod
    def add(a, i, v):
        return a.add(i, v)

    @staticmethod
    def sub(a, i, v):
        return a.sub(i, v)

    @staticmethod
    def and_(a, i, v):
        return a.and_(i, v)

    @staticmethod
    def or_(a, i, v):
        return a.or_(i, v)

    @staticmethod
    def xor(a, i, v):
        return a.xor(i, v)

    @staticmethod
    def exchange(a, i, v):
        return a.exchange(i, v)

    @staticmethod
    def compare_exchange(a, i, expected, new):
        return a.compare_exchange(i, expected, new)

    compareExchange = compare_exchange

    @staticmethod
    def wait(a, i, value, timeout=None):
        return a.wait(i, value, timeout)

    @staticmethod
    def notify(a, i, count=None):
        return a.notify(i, count)

    @staticmethod
    def is_lock_free(size):
        return size in (1, 2, 4, 8)

    isLockFree = is_lock_free


setattr(Atomics, "and", Atomics.and_)
setattr(Atomics, "or", Atomics.or_)
