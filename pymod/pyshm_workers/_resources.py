# SPDX-License-Identifier: MIT
"""Worker resource limits (process mode): checking the resource_limits
argument, before anything starts."""

import math

LIMITS = ("max_memory_bytes", "max_cpu_seconds")


def check_limits(limits, mode):
    """(max_memory_bytes, max_cpu_seconds), 0 for no limit, from a
    resource_limits argument; None for None. TypeError for a wrong type,
    ValueError for an unknown key, a number that is not positive, or mode
    "interpreter" (a subinterpreter's thread cannot be limited apart from
    the process it runs in)."""
    if limits is None:
        return None
    # Loaded at every start (os imports it); collections.abc may be
    # half-imported by another thread.
    from _collections_abc import Mapping
    if not isinstance(limits, Mapping):
        raise TypeError(f"resource_limits must be a dict, not {type(limits).__name__}")
    for key in limits:
        if key not in LIMITS:
            raise ValueError(f"unknown resource limit {key!r}; the limits are "
                             f"{', '.join(LIMITS)}")
    memory = limits.get("max_memory_bytes")
    cpu = limits.get("max_cpu_seconds")
    if memory is not None:
        if isinstance(memory, bool) or not isinstance(memory, int):
            raise TypeError("resource_limits['max_memory_bytes'] must be an int, "
                            f"not {type(memory).__name__}")
        if memory <= 0:
            raise ValueError("resource_limits['max_memory_bytes'] must be positive, "
                             f"not {memory}")
        if memory >= 1 << 63:
            raise ValueError(f"resource_limits['max_memory_bytes'] = {memory} is too large")
    if cpu is not None:
        if isinstance(cpu, bool) or not isinstance(cpu, (int, float)):
            raise TypeError("resource_limits['max_cpu_seconds'] must be a number, "
                            f"not {type(cpu).__name__}")
        if not math.isfinite(cpu) or cpu <= 0:
            raise ValueError("resource_limits['max_cpu_seconds'] must be positive and "
                             f"finite, not {cpu}")
        if cpu >= 1 << 53:
            raise ValueError(f"resource_limits['max_cpu_seconds'] = {cpu} is too large")
    if mode == "interpreter":
        raise ValueError("resource_limits need mode='process': an interpreter-mode "
                         "worker shares its process's memory and CPU limits")
    return (memory or 0, float(cpu or 0))
