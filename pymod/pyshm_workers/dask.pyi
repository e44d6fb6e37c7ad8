# SPDX-License-Identifier: MIT
"""Dask: each distributed worker gets a WorkerPool executor (see dask.py)."""

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from typing import Any, Literal, ParamSpec, TypeVar

from distributed import WorkerPlugin

from . import WorkerPool

__all__ = ["DaskExecutor", "PyshmPlugin"]

_P = ParamSpec("_P")
_T = TypeVar("_T")

class PyshmPlugin(WorkerPlugin):
    max_workers: int | None
    mode: Literal["auto", "interpreter", "process"]
    name: str
    def __init__(self, max_workers: int | None = None,
                 mode: Literal["auto", "interpreter", "process"] = "auto",
                 name: str = "pyshm") -> None: ...
    def setup(self, worker: Any) -> None: ...
    def teardown(self, worker: Any) -> None: ...

class DaskExecutor(Executor):
    pool: WorkerPool
    def __init__(self, pool: WorkerPool) -> None: ...
    def submit(self, fn: Callable[_P, _T], /, *args: _P.args,
               **kwargs: _P.kwargs) -> Future[_T]: ...
    def map(self, fn: Callable[..., _T], *iterables: Iterable[Any],
            **kwargs: Any) -> Iterator[_T]: ...
    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None: ...
