"""Shared fixtures: every test that takes ``backend`` runs once per installed backend."""

from __future__ import annotations

import pytest

import lucid
from lucid import backends

AVAILABLE = backends.available()


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
