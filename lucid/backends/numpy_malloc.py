"""Keep the NumPy backend's freed temporaries inside the process (glibc's allocator only).

A training step allocates and frees the same large temporaries over and over: im2col copies,
activations, their gradients. glibc serves an allocation above its mmap threshold with a fresh
``mmap`` and gives the heap's free top back to the OS past its trim threshold, so each step
touches new pages and pays a page fault per 4 KiB of every such temporary. Its dynamic
threshold adapts to the first sizes it sees, not to a CNN's mix of sizes: on a 2-core x86 box
the digits CNN's NumPy step spent about half its CPU time in those faults (17 ms -> 8.5 ms a
step with the thresholds below; the demo's net 59 -> 49 ms).

``tune()`` raises both thresholds with ``mallopt`` (the documented knobs behind the
``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_`` environment variables): blocks up to
64 MiB come from the heap, and up to 256 MiB of freed heap stays mapped for the next step. The
process's resident memory then stays near its peak instead of shrinking between steps, as with
PyTorch's caching allocators. Elsewhere (macOS, musl) nothing changes. ``LUCID_MALLOC_TUNE=0``
leaves glibc's defaults alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

M_TRIM_THRESHOLD = -1           # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 64 << 20       # bytes: larger blocks still get their own mapping
TRIM_THRESHOLD = 256 << 20      # bytes of free heap top kept mapped

_done: bool | None = None


def tune() -> bool:
    """Raise glibc's mmap and trim thresholds once per process. Returns whether they are set
    (False off glibc, when ``LUCID_MALLOC_TUNE=0``, or when ``mallopt`` refuses)."""
    global _done
    if _done is None:
        _done = _apply()
    return _done


def _apply() -> bool:
    if os.environ.get("LUCID_MALLOC_TUNE", "1") == "0":
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    path = ctypes.util.find_library("c")
    if path is None:
        return False
    mallopt = ctypes.CDLL(path).mallopt
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # mallopt returns 1 on success; the mmap threshold must come first (setting it fixes the
    # trim threshold's dynamic adjustment too)
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and \
        bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
