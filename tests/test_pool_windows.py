"""Max pooling with overlapping, strided or dilated windows (ops.pool.MaxPoolWindows) of every
rank, as a property: for random kernels, strides, dilations, paddings and ceil_mode, the output
and the input gradient equal PyTorch's on both backends (ties included: small integer inputs
make many; the first maximum takes the gradient)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lucid
import lucid.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional


@st.composite
def pools(draw):
    rank = draw(st.integers(1, 3))
    k = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    s = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    d = tuple(draw(st.integers(1, 2)) for _ in range(rank))
    p = tuple(draw(st.integers(0, kk // 2)) for kk in k)
    size = tuple(draw(st.integers(dd * (kk - 1) + 1, dd * (kk - 1) + 5))
                 for kk, dd in zip(k, d))
    ceil = draw(st.booleans())
    seed = draw(st.integers(0, 2**16))
    return rank, k, s, d, p, size, ceil, seed


@settings(max_examples=40, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=pools())
def test_max_pool_matches_torch(backend, case):
    rank, k, s, d, p, size, ceil, seed = case
    rng = np.random.default_rng(seed)
    x = rng.integers(-3, 4, (2, 3) + size).astype(np.float32)       # ties in most windows
    lx = lucid.tensor(x, requires_grad=True)
    y = getattr(F, f"max_pool{rank}d")(lx, k, s, p, d, ceil_mode=ceil)
    tx = torch.tensor(x, requires_grad=True)
    ty = getattr(TF, f"max_pool{rank}d")(tx, k, s, p, d, ceil_mode=ceil)
    g = rng.standard_normal(tuple(ty.shape)).astype(np.float32)
    y.backward(lucid.tensor(g))
    ty.backward(torch.tensor(g))
    np.testing.assert_array_equal(y.numpy(), ty.detach().numpy())
    np.testing.assert_allclose(lx.grad.numpy(), tx.grad.numpy(), rtol=1e-6, atol=1e-6)
