"""Shared fixtures: every test that takes ``backend`` runs once per installed backend."""

from __future__ import annotations

import os
import sys

# Parity between the backends means float32: MLX defaults MLX_ENABLE_TF32=1, and on M5-class
# Macs and mlx[cuda] float32 matmuls and convolutions then run with TF32's 10-bit mantissa. MLX
# reads the variable once, so it is set here, before anything imports MLX (lucid loads it
# below); subprocesses the tests start inherit it.
os.environ["MLX_ENABLE_TF32"] = "0"
assert "mlx.core" not in sys.modules, "MLX was imported before tests/conftest.py set TF32 off"

import pytest

import lucid
from lucid import backends

AVAILABLE = backends.available()

# The optional oracle, on one thread: tiny torch calls on a busy 2-core machine otherwise wait
# on its thread pool (1.5 ms became 200 ms).
try:
    import torch
    torch.set_num_threads(1)
except ImportError:
    torch = None


def pytest_report_header(config):
    tf32 = os.environ.get("MLX_ENABLE_TF32")
    lines = [f"lucid backends: {', '.join(AVAILABLE)}; MLX_ENABLE_TF32={tf32}"]
    if torch is None:
        lines.append("torch oracle: not installed (pip install -e '.[oracle]', torch==2.13.0), so "
                     "the comparisons with PyTorch skip")
    else:
        lines.append(f"torch oracle: torch {torch.__version__}")
    return lines


@pytest.fixture(params=AVAILABLE)
def backend(request):
    """Make each installed backend active in turn; restore the previous one afterwards."""
    with lucid.using_backend(request.param):
        lucid.random.seed(0)
        yield request.param


@pytest.fixture
def numpy_backend():
    with lucid.using_backend("numpy"):
        lucid.random.seed(0)
        yield "numpy"


@pytest.fixture
def mlx_only():
    if "mlx" not in AVAILABLE:
        pytest.skip("mlx not installed")
    with lucid.using_backend("mlx"):
        lucid.random.seed(0)
        yield "mlx"
