"""weight_norm and spectral_norm: PyTorch's state-dict keys (a torch state dict loads), forward
and gradients against torch on both backends, FD of the weight-norm formula, train/eval."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
from helpers import check_grad

import lucid
from lucid import nn, optim
from lucid.nn.utils import parametrize as P
from lucid.nn.utils.parametrizations import _WeightNorm, spectral_norm, weight_norm

torch = pytest.importorskip("torch")
TP = torch.nn.utils.parametrizations

LAYERS = {
    "linear": (lambda M: M.Linear(4, 3), (2, 4)),
    "conv": (lambda M: M.Conv2d(2, 3, 3), (2, 2, 5, 5)),
    "transpose": (lambda M: M.ConvTranspose2d(2, 3, 3), (2, 2, 4, 4)),
}


def _pair(kind, wrap_ours, wrap_theirs):
    make, shape = LAYERS[kind]
    torch.manual_seed(0)
    theirs = wrap_theirs(make(torch.nn))
    ours = wrap_ours(make(nn))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(1).standard_normal(shape)
    return ours, theirs, x


def _forward_backward(ours, theirs, x):
    y = ours(lucid.tensor(x))
    ty = theirs(torch.tensor(x, dtype=torch.float32))
    seed = np.random.default_rng(2).standard_normal(ty.shape)
    y.backward(lucid.tensor(seed))
    ty.backward(torch.tensor(seed, dtype=torch.float32))
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-4, atol=1e-5)
    tgrads = {n: p.grad.numpy() for n, p in theirs.named_parameters()}
    for n, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tgrads[n], rtol=1e-4, atol=1e-5, err_msg=n)


@pytest.mark.parametrize("dim", [0, 1, None])
@pytest.mark.parametrize("kind", list(LAYERS))
def test_weight_norm_matches_torch(backend, kind, dim):
    ours, theirs, x = _pair(kind, lambda m: weight_norm(m, dim=dim),
                            lambda m: TP.weight_norm(m, dim=dim))
    plist = ours.parametrizations.weight
    assert plist.original0.shape == tuple(theirs.parametrizations.weight.original0.shape)
    _forward_backward(ours, theirs, x)


def test_weight_norm_keeps_the_weight_and_removes(backend):
    layer = nn.Linear(4, 3)
    w = layer.weight.numpy()
    weight_norm(layer)
    np.testing.assert_allclose(layer.weight.numpy(), w, rtol=1e-6)
    np.testing.assert_allclose(layer.parametrizations.weight.original0.numpy().ravel(),
                               np.linalg.norm(w, axis=1), rtol=1e-6)
    layer.weight = lucid.tensor(w * 2)                  # assignment goes through right_inverse
    np.testing.assert_allclose(layer.weight.numpy(), w * 2, rtol=1e-6)
    with pytest.raises(ValueError, match="leave_parametrized"):
        P.remove_parametrizations(layer, "weight", leave_parametrized=False)
    P.remove_parametrizations(layer, "weight")
    assert isinstance(layer.weight, nn.Parameter)
    np.testing.assert_allclose(layer.weight.numpy(), w * 2, rtol=1e-6)
    assert list(layer.state_dict()) == ["bias", "weight"]           # as torch: re-registered last


@pytest.mark.parametrize("dim", [0, 1, None])
def test_weight_norm_formula_matches_finite_differences(dim):
    rng = np.random.default_rng(3)
    v = rng.standard_normal((3, 2, 2))
    g_shape = () if dim is None else tuple(s if a == dim else 1 for a, s in enumerate(v.shape))
    check_grad(lambda g, v: _WeightNorm(dim)(g, v), [rng.uniform(0.5, 2, g_shape), v])


@pytest.mark.parametrize("iters", [1, 3])
@pytest.mark.parametrize("kind", list(LAYERS))
def test_spectral_norm_matches_torch_in_train_and_eval(backend, kind, iters):
    ours, theirs, x = _pair(kind, lambda m: spectral_norm(m, n_power_iterations=iters),
                            lambda m: TP.spectral_norm(m, n_power_iterations=iters))
    for _ in range(2):                                  # each read in training moves u and v
        _forward_backward(ours, theirs, x)
    for k, v in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[k].numpy(), v.numpy(), rtol=1e-4,
                                   atol=1e-5, err_msg=k)
    ours.eval()
    theirs.eval()
    u = ours.parametrizations.weight[0]._u.numpy()
    _forward_backward(ours, theirs, x)
    np.testing.assert_array_equal(ours.parametrizations.weight[0]._u.numpy(), u)


def test_spectral_norm_bounds_sigma_and_defaults(backend):
    layer = spectral_norm(nn.Linear(6, 5))
    for _ in range(10):
        w = layer.weight
    assert abs(np.linalg.svd(w.numpy(), compute_uv=False)[0] - 1.0) < 1e-3
    assert spectral_norm(nn.ConvTranspose2d(2, 3, 3)).parametrizations.weight[0].dim == 1
    assert spectral_norm(nn.Conv2d(2, 3, 3)).parametrizations.weight[0].dim == 0
    with pytest.raises(ValueError, match="n_power_iterations"):
        spectral_norm(nn.Linear(2, 2), n_power_iterations=0)
    with pytest.raises(IndexError, match="dim"):
        spectral_norm(nn.Linear(2, 2), dim=2)
    with pytest.raises(ValueError, match="no tensor"):
        weight_norm(nn.Linear(2, 2), "scale")


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_copies_and_compiled_training(backend, how):
    lucid.random.seed(0)
    model = nn.Sequential(weight_norm(nn.Linear(3, 4)), nn.ReLU(), spectral_norm(nn.Linear(4, 2)))
    twin = copy.deepcopy(model) if how == "deepcopy" else pickle.loads(pickle.dumps(model))
    x, y = lucid.random.randn(5, 3), lucid.random.randn(5, 2)
    losses = []
    for m, compiled in ((model, False), (twin, True)):
        opt = optim.Adam(m.parameters(), lr=0.05)

        def step(m=m, opt=opt):
            opt.zero_grad()
            loss = ((m(x) - y) ** 2).mean()
            loss.backward()
            opt.step()
            return loss

        if compiled:
            step = lucid.compile(step, state=[m, opt])
        losses.append([step().item() for _ in range(4)])
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-4)
    assert losses[0][-1] < losses[0][0]


def test_spectral_norm_registered_in_eval_mode_matches_torch(backend):
    torch.manual_seed(0)
    theirs = torch.nn.Linear(3, 3).eval()
    ours = nn.Linear(3, 3).eval()
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    spectral_norm(ours)
    TP.spectral_norm(theirs)
    assert not ours.parametrizations.weight[0].training
    # 15 power iterations at registration and none at the check (eval), as torch: reading the
    # weight twice in eval gives the same value
    np.testing.assert_array_equal(ours.weight.numpy(), ours.weight.numpy())
