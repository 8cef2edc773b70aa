"""LayerNorm, GroupNorm, InstanceNorm1d/2d and their F. forms: float64 finite differences on
NumPy, values and gradients against PyTorch on both backends, running statistics, checks."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import check_grad, run

import lucid
import lucid.nn.functional as F
from lucid import nn

torch = pytest.importorskip("torch")
TF = torch.nn.functional

RNG = np.random.default_rng(0)
X4 = RNG.standard_normal((2, 4, 3, 3)) * 2 + 1
X3 = RNG.standard_normal((2, 4, 5))
W4, B4 = RNG.standard_normal(4), RNG.standard_normal(4)
W_LN, B_LN = RNG.standard_normal((3, 3)), RNG.standard_normal((3, 3))

# (name, lucid fn, torch fn, inputs): each fn takes tensors (x, w, b) of its library
CASES = [
    ("layer_norm", lambda x, w, b: F.layer_norm(x, (3, 3), w, b),
     lambda x, w, b: TF.layer_norm(x, (3, 3), w, b), [X4, W_LN, B_LN]),
    ("layer_norm-last", lambda x, w, b: F.layer_norm(x, 5, w, b, eps=1e-3),
     lambda x, w, b: TF.layer_norm(x, (5,), w, b, eps=1e-3), [X3, X3[0, 0], X3[1, 1]]),
    ("layer_norm-plain", lambda x: F.layer_norm(x, [4, 5]),
     lambda x: TF.layer_norm(x, [4, 5]), [X3]),
    ("group_norm", lambda x, w, b: F.group_norm(x, 2, w, b),
     lambda x, w, b: TF.group_norm(x, 2, w, b), [X4, W4, B4]),
    ("group_norm-1d", lambda x, w: F.group_norm(x, 4, w),
     lambda x, w: TF.group_norm(x, 4, w), [X3, W4]),
    ("group_norm-one", lambda x: F.group_norm(x, 1), lambda x: TF.group_norm(x, 1), [X4]),
    ("instance_norm", lambda x, w, b: F.instance_norm(x, weight=w, bias=b),
     lambda x, w, b: TF.instance_norm(x, weight=w, bias=b), [X4, W4, B4]),
    ("instance_norm-1d", lambda x: F.instance_norm(x, eps=1e-2),
     lambda x: TF.instance_norm(x, eps=1e-2), [X3]),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("name,fn,tfn,inputs", CASES, ids=IDS)
def test_gradient_matches_finite_differences(name, fn, tfn, inputs):
    check_grad(fn, inputs, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name,fn,tfn,inputs", CASES, ids=IDS)
def test_matches_torch(backend, name, fn, tfn, inputs):
    seed = np.random.default_rng(1).standard_normal(inputs[0].shape)
    out, grads = run(fn, inputs, backend, seed_grad=seed)
    ts = [torch.tensor(a, dtype=torch.float32, requires_grad=True) for a in inputs]
    ref = tfn(*ts)
    ref.backward(torch.tensor(seed, dtype=torch.float32))
    np.testing.assert_allclose(out, ref.detach().numpy(), rtol=1e-4, atol=1e-5)
    for g, t in zip(grads, ts):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-4, atol=1e-4)


def _copy_params(ours, theirs):
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})


@pytest.mark.parametrize("make,x", [
    (lambda L: L.LayerNorm((4, 5)), X3),
    (lambda L: L.LayerNorm(5, elementwise_affine=False), X3),
    (lambda L: L.LayerNorm(5, bias=False), X3),
    (lambda L: L.GroupNorm(2, 4), X4),
    (lambda L: L.GroupNorm(4, 4, affine=False, eps=1e-3), X3),
    (lambda L: L.InstanceNorm1d(4), X3),
    (lambda L: L.InstanceNorm1d(4), X3[0]),                     # unbatched (C, L)
    (lambda L: L.InstanceNorm2d(4, affine=True), X4),
    (lambda L: L.InstanceNorm2d(4, affine=True), X4[1]),        # unbatched (C, H, W)
    (lambda L: L.InstanceNorm2d(4, track_running_stats=True, momentum=0.3), X4),
])
def test_layers_match_torch_with_keys_and_running_stats(backend, make, x):
    ours, theirs = make(nn), make(torch.nn)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    with lucid.no_grad():
        for p in ours.parameters():
            p.copy_(lucid.tensor(RNG.standard_normal(p.shape)))
    _copy_params(ours, theirs)
    for _ in range(2):                                          # running stats move twice
        y = ours(lucid.tensor(x))
        ty = theirs(torch.tensor(x, dtype=torch.float32))
        np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-4, atol=1e-5)
    for k, v in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[k].numpy(), v.numpy(), rtol=1e-5,
                                   atol=1e-6, err_msg=k)
    ours.eval()
    theirs.eval()
    np.testing.assert_allclose(ours(lucid.tensor(x)).numpy(),
                               theirs(torch.tensor(x, dtype=torch.float32)).detach().numpy(),
                               rtol=1e-4, atol=1e-5)


def test_layer_norm_float64_and_repr(numpy_backend):
    ln = nn.LayerNorm(3, dtype="float64")
    assert ln(lucid.tensor(np.ones((2, 3)), dtype="float64")).dtype == lucid.float64
    assert repr(ln) == "LayerNorm((3,), eps=1e-05, elementwise_affine=True)"


@pytest.mark.parametrize("call,match", [
    (lambda: F.layer_norm(lucid.ones(2, 3), (2,)), "normalized_shape"),
    (lambda: F.layer_norm(lucid.ones(2, 3), 3, lucid.ones(2)), "weight"),
    (lambda: F.group_norm(lucid.ones(2, 4, 3), 3), "num_groups"),
    (lambda: nn.GroupNorm(3, 4), "divisible"),
    (lambda: nn.GroupNorm(2, 4)(lucid.ones(2, 3, 3)), "expects"),
    (lambda: F.instance_norm(lucid.ones(2, 3, 1)), "spatial"),
    (lambda: nn.InstanceNorm2d(3)(lucid.ones(3, 4)), "4-D"),
    (lambda: nn.InstanceNorm1d(3, affine=True)(lucid.ones(2, 2, 4)), "channels"),
    (lambda: nn.LayerNorm(3, eps=0), "eps"),
])
def test_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_each_is_one_node(backend):
    x = lucid.tensor(X4, requires_grad=True)
    for y in (F.layer_norm(x, (3, 3)), F.group_norm(x, 2, lucid.tensor(W4)),
              F.instance_norm(x), nn.LayerNorm(3)(x)):
        assert type(y._ctx).__name__ == "RowNorm"
