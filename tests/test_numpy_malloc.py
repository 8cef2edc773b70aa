"""numpy_malloc: on glibc the NumPy backend keeps freed temporaries in the process, so a step's
repeated large allocations stop faulting in fresh pages; LUCID_MALLOC_TUNE=0 opts out. Counted
in page faults (getrusage), not in time."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="the allocator thresholds are glibc's")

PROBE = """
import resource
import numpy as np
import lucid
from lucid.backends import numpy_malloc
print(numpy_malloc.tune())
a = np.ones(40 << 18, dtype=np.float32); del a          # 40 MiB: past glibc's own 32 MiB cap
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    a = np.ones(40 << 18, dtype=np.float32); del a
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
"""


def _probe(**env) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         env={**os.environ, **env}, check=True).stdout.split()
    return out[0], int(out[1])


def test_importing_lucid_keeps_freed_blocks_mapped():
    tuned, faults = _probe()
    assert tuned == "True"
    assert faults < 100                     # the ten 40 MiB arrays reuse the first one's pages


def test_opt_out_leaves_glibc_defaults():
    tuned, faults = _probe(LUCID_MALLOC_TUNE="0")
    assert tuned == "False"
    assert faults >= 10 * 20                # every array maps fresh pages (20 if 2 MiB pages)
