"""How much memory MLX holds, and limits on it: ``lucid.memory.peak()`` and friends, over MLX's
allocator (``mx.get_active_memory`` etc.) for the active backend.

MLX keeps freed buffers in a cache for reuse and does not hand them back to the OS on its own
(mlx #3993): a laptop training next to other apps can watch ``cache()`` and cap it with
``set_cache_limit``, or return it with ``clear_cache()``. Sizes are bytes (int).

On the NumPy backend arrays are ordinary process memory with no allocator to ask: every
function raises NotImplementedError naming numpy (use ``tracemalloc`` or your OS's tools)."""

from __future__ import annotations

from typing import Any

from lucid import backends

__all__ = ["active", "cache", "clear_cache", "peak", "reset_peak", "set_cache_limit",
           "set_memory_limit"]


def _allocator(what: str) -> Any:
    be = backends.current()
    if not hasattr(be, "memory_active"):
        raise NotImplementedError(
            f"lucid.memory.{what}() reports MLX's allocator, and the active backend is "
            f"{be.name!r}: its arrays are ordinary process memory that {be.name} does not "
            "account for (measure it with tracemalloc or your OS's tools), or switch with "
            "lucid.set_backend('mlx')")
    return be


def _limit(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} takes a number of bytes as an int, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} takes a number of bytes >= 0, got {value}")
    return value


def active() -> int:
    """Bytes in arrays that are alive now (not counting the cache)."""
    return int(_allocator("active").memory_active())


def peak() -> int:
    """The most bytes ``active()`` reached since the start or the last ``reset_peak()``."""
    return int(_allocator("peak").memory_peak())


def cache() -> int:
    """Bytes of freed buffers MLX keeps for reuse (not returned to the OS)."""
    return int(_allocator("cache").memory_cache())


def reset_peak() -> None:
    """Start ``peak()`` over from the current ``active()``."""
    _allocator("reset_peak").memory_reset_peak()


def clear_cache() -> None:
    """Return the cached buffers to the OS (``cache()`` becomes 0)."""
    _allocator("clear_cache").memory_clear_cache()


def set_cache_limit(limit: int) -> int:
    """Keep at most ``limit`` bytes of freed buffers (0: no cache); returns the previous limit,
    as MLX does. MLX's default is the memory limit."""
    return int(_allocator("set_cache_limit").memory_set_cache_limit(
        _limit(limit, "set_cache_limit")))


def set_memory_limit(limit: int) -> int:
    """A guideline for the most bytes MLX uses while evaluating a graph (past it, and with no
    RAM or swap left, allocations fail); returns the previous limit, as MLX does. MLX's default
    on a Mac is 1.5x the GPU's recommended working set."""
    return int(_allocator("set_memory_limit").memory_set_memory_limit(
        _limit(limit, "set_memory_limit")))
