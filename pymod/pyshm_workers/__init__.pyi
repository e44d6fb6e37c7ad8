# SPDX-License-Identifier: MIT
# Types of the public API of pyshm_workers (Documentation/python-api.rst).
# The C types and functions come from _core.pyi; Worker, MessagePort,
# WorkerPool and Atomics are the package's Python classes.

from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping
from concurrent.futures import Executor, Future
from types import TracebackType
from typing import Any, Literal, ParamSpec, Protocol, TypeVar

from typing_extensions import Self

from . import _core, locks as locks
from ._core import (
    ArrayBuffer as ArrayBuffer,
    BoundedSemaphore as BoundedSemaphore,
    DataCloneError as DataCloneError,
    Event as Event,
    Float32Array as Float32Array,
    Float64Array as Float64Array,
    Int8Array as Int8Array,
    Int16Array as Int16Array,
    Int32Array as Int32Array,
    Int64Array as Int64Array,
    Lock as Lock,
    OwnerDiedError as OwnerDiedError,
    RLock as RLock,
    Semaphore as Semaphore,
    SharedArrayBuffer as SharedArrayBuffer,
    Uint8Array as Uint8Array,
    Uint8ClampedArray as Uint8ClampedArray,
    Uint16Array as Uint16Array,
    Uint32Array as Uint32Array,
    Uint64Array as Uint64Array,
    _WaitResult,
    WorkerError as WorkerError,
    backend as backend,
    mark_as_uncloneable as mark_as_uncloneable,
    structured_clone as structured_clone,
)

__version__: str

_P = ParamSpec("_P")
_T = TypeVar("_T")

_Mode = Literal["auto", "interpreter", "process"]
# What the Atomics take: the integer typed arrays (not Uint8ClampedArray);
# wait, notify and wait_async: Int32Array and Int64Array.
_TypedArray = (Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array
               | Int64Array | Uint64Array)
_WaitArray = Int32Array | Int64Array

class MessagePort(_core.MessagePort):
    """One end of a MessageChannel: post_message(), recv(), iteration,
    arecv(); it moves to another worker with transfer=[port]."""

    async def arecv(self) -> Any: ...

def MessageChannel() -> tuple[MessagePort, MessagePort]: ...

class BroadcastChannel:
    """Every other open BroadcastChannel of the same name in the program
    gets what this one posts."""

    def __init__(self, name: str) -> None: ...
    @property
    def name(self) -> str: ...
    @property
    def closed(self) -> bool: ...
    def post_message(self, message: Any) -> None: ...
    def recv(self, timeout: float | None = None) -> Any: ...
    async def arecv(self) -> Any: ...
    def __iter__(self) -> Iterator[Any]: ...
    @property
    def on_message(self) -> Callable[[Any], object] | None: ...
    @on_message.setter
    def on_message(self, fn: Callable[[Any], object] | None) -> None: ...
    def close(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, *exc: object) -> None: ...

class Worker:
    """Runs target(*args, **kwargs) in a new worker (an own-GIL
    subinterpreter or a process)."""

    def __init__(
        self,
        target: Callable[..., object] | str,
        args: Iterable[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        mode: _Mode = "auto",
        name: object = None,
        worker_data: object = None,
        max_inflight_bytes: int | None = None,
    ) -> None: ...
    def post_message(self, message: object, transfer: Iterable[object] = (), *,
                     timeout: float | None = None) -> None: ...
    def recv(self, timeout: float | None = None) -> Any: ...
    async def arecv(self) -> Any: ...
    def __iter__(self) -> Iterator[Any]: ...
    @property
    def on_message(self) -> Callable[[Any], object] | None: ...
    @on_message.setter
    def on_message(self, fn: Callable[[Any], object] | None) -> None: ...
    @property
    def on_error(self) -> Callable[[WorkerError], object] | None: ...
    @on_error.setter
    def on_error(self, fn: Callable[[WorkerError], object] | None) -> None: ...
    def terminate(self) -> None: ...
    def join(self, timeout: float | None = None) -> None: ...
    def is_alive(self) -> bool: ...
    @property
    def exit_code(self) -> int | None: ...
    @property
    def name(self) -> str: ...
    @property
    def mode(self) -> Literal["interpreter", "process"]: ...
    @property
    def pid(self) -> int | None: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, exc_type: type[BaseException] | None,
                 exc: BaseException | None, tb: TracebackType | None) -> None: ...

class WorkerPool(Executor):
    """A concurrent.futures.Executor whose tasks run in pyshm workers."""

    def __init__(self, max_workers: int | None = None, mode: _Mode = "auto") -> None: ...
    def submit(self, fn: Callable[_P, _T], /, *args: _P.args,
               **kwargs: _P.kwargs) -> Future[_T]: ...
    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None: ...

class Atomics:
    """The typed-array atomic operations, spelled as in JavaScript
    (Atomics.add(a, i, v) is a.add(i, v))."""

    @staticmethod
    def load(a: _TypedArray, i: int) -> int: ...
    @staticmethod
    def store(a: _TypedArray, i: int, v: int) -> int: ...
    @staticmethod
    def add(a: _TypedArray, i: int, v: int) -> int: ...
    @staticmethod
    def sub(a: _TypedArray, i: int, v: int) -> int: ...
    @staticmethod
    def and_(a: _TypedArray, i: int, v: int) -> int: ...
    @staticmethod
    def or_(a: _TypedArray, i: int, v: int) -> int: ...
    @staticmethod
    def xor(a: _TypedArray, i: int, v: int) -> int: ...
    @staticmethod
    def exchange(a: _TypedArray, i: int, v: int) -> int: ...
    @staticmethod
    def compare_exchange(a: _TypedArray, i: int, expected: int, new: int) -> int: ...
    @staticmethod
    def compareExchange(a: _TypedArray, i: int, expected: int, new: int) -> int: ...
    @staticmethod
    def wait(a: _WaitArray, i: int, value: int, timeout: float | None = None) -> _WaitResult: ...
    @staticmethod
    def wait_async(a: _WaitArray, i: int, value: int,
                   timeout: float | None = None) -> Coroutine[Any, Any, _WaitResult]: ...
    @staticmethod
    def waitAsync(a: _WaitArray, i: int, value: int,
                  timeout: float | None = None) -> Coroutine[Any, Any, _WaitResult]: ...
    @staticmethod
    def notify(a: _WaitArray, i: int, count: float | None = None) -> int: ...
    @staticmethod
    def is_lock_free(size: int) -> bool: ...
    @staticmethod
    def isLockFree(size: int) -> bool: ...

class _LockLike(Protocol):
    def acquire(self, blocking: bool = ..., timeout: float = ...) -> bool: ...
    def release(self) -> None: ...

class Condition:
    """threading.Condition in shared memory (its lock too, when a Lock or
    RLock of this package)."""

    def __init__(self, lock: _LockLike | None = None) -> None: ...
    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool: ...
    def release(self) -> None: ...
    def __enter__(self) -> bool: ...
    def __exit__(self, *args: object) -> None: ...
    def wait(self, timeout: float | None = None) -> bool: ...
    def wait_for(self, predicate: Callable[[], _T], timeout: float | None = None) -> _T: ...
    def notify(self, n: int = 1) -> None: ...
    def notify_all(self) -> None: ...
    def notifyAll(self) -> None: ...

class Barrier:
    """threading.Barrier in shared memory; BrokenBarrierError is
    threading's."""

    def __init__(self, parties: int, action: Callable[[], object] | None = None,
                 timeout: float | None = None) -> None: ...
    def wait(self, timeout: float | None = None) -> int: ...
    def reset(self) -> None: ...
    def abort(self) -> None: ...
    @property
    def parties(self) -> int: ...
    @property
    def n_waiting(self) -> int: ...
    @property
    def broken(self) -> bool: ...

def in_worker() -> bool: ...
def receive_message_on_port(port: MessagePort | BroadcastChannel | Worker) -> tuple[Any] | None: ...

# Inside a worker: its port to the creator, and the clone of worker_data;
# None in the main interpreter.
parent: MessagePort | None
worker_data: Any

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
