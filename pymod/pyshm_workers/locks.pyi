# SPDX-License-Identifier: MIT
"""Web Locks for the workers of a program (see locks.py)."""

from typing import Literal

__all__ = ["Lock", "query", "request"]

MODES: tuple[str, str]

class Lock:
    name: str
    mode: Literal["exclusive", "shared"]
    def __init__(self, name: str, mode: Literal["exclusive", "shared"]) -> None: ...

class _Request:
    def __init__(
        self, name: str, mode: str, if_available: bool, steal: bool, timeout: float | None
    ) -> None: ...
    def __enter__(self) -> Lock | None: ...
    def __exit__(self, *exc: object) -> None: ...
    async def __aenter__(self) -> Lock | None: ...
    async def __aexit__(self, *exc: object) -> None: ...

def request(
    name: str,
    mode: Literal["exclusive", "shared"] = "exclusive",
    *,
    if_available: bool = False,
    steal: bool = False,
    timeout: float | None = None,
) -> _Request: ...
def query(timeout: float = 10.0) -> dict[str, list[dict[str, str]]]: ...
