# SPDX-License-Identifier: MIT
"""pyshm_workers: Web Workers for Python.

Workers (own-GIL subinterpreters or processes) share nothing by default:
post_message() sends a structured clone. SharedArrayBuffer memory is the
exception; typed arrays (Int8Array ... Float64Array) view it, or a worker's
own ArrayBuffer, and the integer ones have atomic operations.

Workers
    Worker(target, args=(), kwargs=None, *, mode="auto", ...) runs a
    function in a new worker; WorkerPool(max_workers=None, mode="auto") is a
    concurrent.futures.Executor over such workers. Inside a worker,
    ``parent`` is the MessagePort to its creator, ``worker_data`` the clone
    of what the creator passed, and in_worker() is True.
Messages
    MessageChannel() gives two entangled MessagePorts; post_message(),
    recv(), iteration and arecv() on ports and workers. structured_clone()
    is the clone algorithm, in-process; DataCloneError says what could not
    be cloned, WorkerError what a worker raised.
BroadcastChannel(name)
    Every other open channel of that name in the program, in any worker,
    gets what one posts.
locks
    pw.locks.request(name, mode="exclusive", ...) holds a lock by name,
    program-wide, for a with (or async with) block; pw.locks.query().
Synchronisation
    Lock, RLock, Semaphore, BoundedSemaphore, Event, Condition and Barrier:
    threading's, in shared memory, shared (not copied) when posted or passed
    to a worker; OwnerDiedError when a lock's holder process died.
Shared memory
    SharedArrayBuffer(n, max_byte_length=None); typed arrays over it
    (Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array,
    Int32Array, Uint32Array, Int64Array, Uint64Array, Float32Array,
    Float64Array), with load/store/add/... on the integer ones and
    wait/notify/wait_async on Int32Array and Int64Array, also spelled as
    Atomics.add(a, i, v). ArrayBuffer(n) is memory of one worker: copied
    when posted, moved by post_message(ab, transfer=[ab]). backend() names
    where regions come from.
Helpers as in Node
    mark_as_uncloneable(obj); receive_message_on_port(port).

``python -m pyshm_workers --version | doctor | stats [--json]`` checks
this machine and shows what pyshm holds (Documentation/cli.rst).
"""

from ._core import (
    ArrayBuffer,
    DataCloneError,
    Float32Array,
    Float64Array,
    Int8Array,
    Int16Array,
    Int32Array,
    Int64Array,
    SharedArrayBuffer,
    Uint8Array,
    Uint8ClampedArray,
    Uint16Array,
    Uint32Array,
    Uint64Array,
    WorkerError,
    backend,
    mark_as_uncloneable,
    structured_clone,
)
# The clone's message bytes, for tests and fuzzing (not part of the API).
from ._core import _decode, _encode  # noqa: F401
from . import _core
from ._port import MessageChannel, MessagePort
from ._broadcast import BroadcastChannel
from ._core import BoundedSemaphore, Event, Lock, OwnerDiedError, RLock, Semaphore
from ._sync import Barrier, Condition
from . import locks
from ._version import __version__
from ._worker import Worker, in_worker

# Inside a worker, its MessagePort to the creator and the clone of the
# creator's worker_data; None in the main interpreter.
parent = None
worker_data = None

__all__ = [
    "ArrayBuffer",
    "Atomics",
    "Barrier",
    "BoundedSemaphore",
    "BroadcastChannel",
    "Condition",
    "DataCloneError",
    "Event",
    "Float32Array",
    "Float64Array",
    "Int16Array",
    "Int32Array",
    "Int64Array",
    "Int8Array",
    "Lock",
    "MessageChannel",
    "MessagePort",
    "OwnerDiedError",
    "RLock",
    "Semaphore",
    "SharedArrayBuffer",
    "Uint16Array",
    "Uint32Array",
    "Uint64Array",
    "Uint8Array",
    "Uint8ClampedArray",
    "Worker",
    "WorkerError",
    "WorkerPool",
    "backend",
    "in_worker",
    "locks",
    "mark_as_uncloneable",
    "parent",
    "receive_message_on_port",
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


def __dir__():
    # dir(), help() and completion see WorkerPool before it is loaded.
    return sorted(set(globals()) | {"WorkerPool"})


class _ExceptionSignature:
    """The __signature__ of an exception class, made on first use
    (inspect finds none for exception types, whose __init__ is C;
    importing inspect up front would slow every worker's start)."""

    def __get__(self, obj, cls=None):
        import inspect
        return inspect.Signature([inspect.Parameter("args", inspect.Parameter.VAR_POSITIONAL)])


for _exc in (DataCloneError, OwnerDiedError, WorkerError):
    _exc.__signature__ = _ExceptionSignature()
del _exc


_TYPED_ARRAYS = (Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array,
                 Int32Array, Uint32Array, Int64Array, Uint64Array, Float32Array,
                 Float64Array)


def _typed(a, op):
    """a itself, when it is a typed array: TypeError otherwise (as
    JavaScript's Atomics refuse anything else; the array's method refuses
    the types that have no such operation)."""
    if not isinstance(a, _TYPED_ARRAYS):
        raise TypeError(f"Atomics.{op}() needs a typed array, not {type(a).__name__}")
    return a


def receive_message_on_port(port):
    """The next message of port, as a 1-tuple (message,), or None when none
    is there; never blocks (Node's receiveMessageOnPort()). port is a
    MessagePort (a BroadcastChannel or a Worker works too); None as well
    once it is closed or its other end is closed and drained."""
    if not isinstance(port, (_core.MessagePort, BroadcastChannel, Worker)):
        raise TypeError("receive_message_on_port() needs a MessagePort, not "
                        f"{type(port).__name__}")
    if getattr(port, "closed", False):
        return None
    try:
        return (port.recv(0),)
    except (TimeoutError, EOFError):
        return None


class Atomics:
    """The typed-array atomic operations, spelled as in JavaScript.

    ``Atomics.add(a, i, v)`` is ``a.add(i, v)``; timeouts are in seconds.
    ``and``/``or`` are Python keywords: use ``Atomics.and_``/``Atomics.or_``
    (``getattr(Atomics, "and")`` works too).
    """

    __slots__ = ()

    @staticmethod
    def load(a, i):
        """a[i], read atomically: a.load(i)."""
        return _typed(a, "load").load(i)

    @staticmethod
    def store(a, i, v):
        """Atomically write a[i] = v; returns v: a.store(i, v)."""
        return _typed(a, "store").store(i, v)

    @staticmethod
    def add(a, i, v):
        """Atomically add v to a[i]; returns the old value: a.add(i, v)."""
        return _typed(a, "add").add(i, v)

    @staticmethod
    def sub(a, i, v):
        """Atomically subtract v from a[i]; returns the old value: a.sub(i, v)."""
        return _typed(a, "sub").sub(i, v)

    @staticmethod
    def and_(a, i, v):
        """Atomically a[i] &= v; returns the old value: a.and_(i, v)."""
        return _typed(a, "and_").and_(i, v)

    @staticmethod
    def or_(a, i, v):
        """Atomically a[i] |= v; returns the old value: a.or_(i, v)."""
        return _typed(a, "or_").or_(i, v)

    @staticmethod
    def xor(a, i, v):
        """Atomically a[i] ^= v; returns the old value: a.xor(i, v)."""
        return _typed(a, "xor").xor(i, v)

    @staticmethod
    def exchange(a, i, v):
        """Atomically set a[i] = v; returns the old value: a.exchange(i, v)."""
        return _typed(a, "exchange").exchange(i, v)

    @staticmethod
    def compare_exchange(a, i, expected, new):
        """Atomically set a[i] = new if it equals expected; returns the old
        value: a.compare_exchange(i, expected, new)."""
        return _typed(a, "compare_exchange").compare_exchange(i, expected, new)

    compareExchange = compare_exchange

    @staticmethod
    def wait(a, i, value, timeout=None):
        """Sleep while a[i] == value, until notify() or timeout seconds;
        "ok", "not-equal" or "timed-out": a.wait(i, value, timeout)."""
        return _typed(a, "wait").wait(i, value, timeout)

    @staticmethod
    def wait_async(a, i, value, timeout=None):
        """Await a notify() of a[i] while a[i] == value, for asyncio:
        "ok", "not-equal" or "timed-out": await a.wait_async(i, value,
        timeout). The wait begins at the call, as in JavaScript."""
        return _typed(a, "wait_async").wait_async(i, value, timeout)

    waitAsync = wait_async

    @staticmethod
    def notify(a, i, count=None):
        """Wake up to count waiters on a[i] (all when None); how many woke:
        a.notify(i, count)."""
        return _typed(a, "notify").notify(i, count)

    @staticmethod
    def is_lock_free(size):
        """True for sizes (in bytes) whose atomics never take a lock: 1, 2, 4, 8."""
        return size in (1, 2, 4, 8)

    isLockFree = is_lock_free


setattr(Atomics, "and", Atomics.and_)
setattr(Atomics, "or", Atomics.or_)
