"""Losses: values and gradients against PyTorch for every reduction, float64 finite differences
on NumPy, both backends, argument checks; losses finite where PyTorch's are."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from helpers import check_grad, run

import lucid
import lucid.nn.functional as F
from lucid import nn

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


# -- the elementwise losses: torch values and gradients for every reduction, FD on NumPy ----------

TF = torch.nn.functional if torch is not None else None
R = np.random.default_rng(3)
X = R.standard_normal((4, 3)) * 1.5
T = R.standard_normal((4, 3))
P = R.uniform(0.05, 0.95, (4, 3))                      # probabilities
Y = R.uniform(0, 1, (4, 3))                            # soft binary targets
LOGP = np.log(R.dirichlet(np.ones(3), 4))              # log-probabilities (4, 3)
Q = R.dirichlet(np.ones(3), 4)                         # target distributions
# keep |x - t| away from the kinks of L1 / smooth L1 / Huber (finite differences there lie)
D = np.where(np.abs(np.abs(X - T) - 1.0) < 0.05, X + 0.2, X)
D = np.where(np.abs(D - T) < 0.05, D + 0.3, D)

# name -> (lucid fn(x, t, reduction), torch fn, x, t)
LOSSES = {
    "l1": (F.l1_loss, lambda x, t, r: TF.l1_loss(x, t, reduction=r), D, T),
    "smooth_l1": (lambda x, t, r: F.smooth_l1_loss(x, t, r),
                  lambda x, t, r: TF.smooth_l1_loss(x, t, reduction=r), D, T),
    "smooth_l1-beta": (lambda x, t, r: F.smooth_l1_loss(x, t, r, beta=0.5),
                       lambda x, t, r: TF.smooth_l1_loss(x, t, reduction=r, beta=0.5), D, T),
    "huber": (lambda x, t, r: F.huber_loss(x, t, r),
              lambda x, t, r: TF.huber_loss(x, t, reduction=r), D, T),
    "huber-delta": (lambda x, t, r: F.huber_loss(x, t, r, delta=2.0),
                    lambda x, t, r: TF.huber_loss(x, t, reduction=r, delta=2.0), D, T),
    "bce": (lambda x, t, r: F.binary_cross_entropy(x, t, reduction=r),
            lambda x, t, r: TF.binary_cross_entropy(x, t, reduction=r), P, Y),
    "bce-weight": (lambda x, t, r: F.binary_cross_entropy(x, t, lucid.tensor(
                       [1.0, 2.0, 0.5], dtype=x.dtype), r),
                   lambda x, t, r: TF.binary_cross_entropy(x, t, torch.tensor(
                       [1.0, 2.0, 0.5], dtype=x.dtype), reduction=r), P, Y),
    "kl": (lambda x, t, r: F.kl_div(x, t, r), lambda x, t, r: TF.kl_div(x, t, reduction=r),
           LOGP, Q),
    "kl-log": (lambda x, t, r: F.kl_div(x, t, r, log_target=True),
               lambda x, t, r: TF.kl_div(x, t, reduction=r, log_target=True), LOGP, np.log(Q)),
}
REDS = ["mean", "sum", "none"]


def _reds(name):
    return REDS + (["batchmean"] if name.startswith("kl") else [])


GRID = [(n, r) for n in LOSSES for r in _reds(n)]


@pytest.mark.parametrize("name,reduction", GRID)
def test_loss_gradients_match_finite_differences(name, reduction):
    fn, _, x, t = LOSSES[name]
    check_grad(lambda a, b: fn(a, b, reduction), [x, t], rtol=1e-5, atol=1e-7)


@pytest.mark.skipif(torch is None, reason="torch oracle")
@pytest.mark.parametrize("name,reduction", GRID)
def test_loss_matches_torch(backend, name, reduction):
    fn, tfn, x, t = LOSSES[name]
    out, grads = run(lambda a, b: fn(a, b, reduction), [x, t], backend)
    ta, tb = (torch.tensor(v, dtype=torch.float32, requires_grad=True) for v in (x, t))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                  # torch warns about "mean" of kl_div
        ref = tfn(ta, tb, reduction)
    ref.backward(torch.ones_like(ref))
    np.testing.assert_allclose(out, ref.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grads[0], ta.grad.numpy(), rtol=1e-4, atol=1e-5)
    if name != "kl":                                    # torch's kl target grad differs at 0
        np.testing.assert_allclose(grads[1], tb.grad.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(torch is None, reason="torch oracle")
@pytest.mark.parametrize("reduction", REDS)
def test_nll_loss_module_matches_torch(backend, reduction):
    target = np.array([0, 2, -100, 1])
    x = lucid.tensor(LOGP, requires_grad=True)
    loss = nn.NLLLoss(reduction)(x, lucid.tensor(target))
    loss.backward(lucid.ones(*loss.shape))
    tx = torch.tensor(LOGP, dtype=torch.float32, requires_grad=True)
    ref = torch.nn.NLLLoss(reduction=reduction)(tx, torch.tensor(target))
    ref.backward(torch.ones_like(ref))
    np.testing.assert_allclose(loss.numpy(), ref.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-6)


@pytest.mark.skipif(torch is None, reason="torch oracle")
@pytest.mark.parametrize("make", [
    lambda M: M.L1Loss(reduction="sum"),
    lambda M: M.SmoothL1Loss(beta=0.3),
    lambda M: M.HuberLoss(delta=0.7),
    lambda M: M.KLDivLoss(reduction="batchmean"),
    lambda M: M.KLDivLoss(log_target=True),
    lambda M: M.BCELoss(),
    lambda M: M.BCELoss(reduction="none"),
])
def test_loss_modules_match_torch(backend, make):
    ours, theirs = make(nn), make(torch.nn)
    x, t = (P, Y) if "BCE" in type(ours).__name__ else (LOGP, Q)
    if getattr(ours, "log_target", False):
        t = np.log(Q)
    out = ours(lucid.tensor(x), lucid.tensor(t)).numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = theirs(torch.tensor(x, dtype=torch.float32), torch.tensor(t, dtype=torch.float32))
    np.testing.assert_allclose(out, ref.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(torch is None, reason="torch oracle")
def test_losses_finite_where_torch_is(backend):
    # BCE at probabilities 0 and 1 (logs clamped at -100), KL with a 0 target and a -inf input
    p, y = np.array([0.0, 1.0, 0.0, 1.0]), np.array([0.0, 1.0, 1.0, 0.0])
    x = lucid.tensor(p, requires_grad=True)
    loss = F.binary_cross_entropy(x, lucid.tensor(y), reduction="sum")
    loss.backward()
    ref = TF.binary_cross_entropy(torch.tensor(p, dtype=torch.float32),
                                  torch.tensor(y, dtype=torch.float32), reduction="sum")
    np.testing.assert_allclose(loss.numpy(), ref.numpy())
    assert np.isfinite(x.grad.numpy()).all()
    kl = F.kl_div(lucid.tensor([[-np.inf, 0.0]]), lucid.tensor([[0.0, 1.0]]), "sum")
    assert kl.item() == 0.0


@pytest.mark.parametrize("call,err,match", [
    (lambda: F.l1_loss(lucid.ones(2, 3), lucid.ones(3)), ValueError, "shape"),
    (lambda: F.huber_loss(lucid.ones(2), lucid.ones(2), "avg"), ValueError, "reduction"),
    (lambda: F.smooth_l1_loss(lucid.ones(2), lucid.ones(2), beta=-1.0), ValueError, "beta"),
    (lambda: F.huber_loss(lucid.ones(2), lucid.ones(2), delta=0.0), ValueError, "delta"),
    (lambda: F.kl_div(lucid.ones(2), lucid.ones(2), "batch"), ValueError, "reduction"),
    (lambda: F.binary_cross_entropy(lucid.tensor([0.5, 1.5]), lucid.ones(2)), ValueError,
     r"\[0, 1\]"),
    (lambda: F.binary_cross_entropy(lucid.tensor([0.5]), lucid.ones(2)), ValueError, "shape"),
    (lambda: nn.NLLLoss()(lucid.ones(2, 3), lucid.tensor([0, 3])), IndexError, "3"),
    (lambda: nn.KLDivLoss("avg"), ValueError, "reduction"),
    (lambda: nn.L1Loss("avg"), ValueError, "reduction"),
])
def test_loss_checks(backend, call, err, match):
    with pytest.raises(err, match=match):
        call()
