"""nn.Module: registration, traversal, state dicts, modes, movement, repr."""

from __future__ import annotations

import numpy as np
import pytest

import lucid
from lucid import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.head = nn.Linear(2, 3)
        self.tied = self.head              # shared submodule
        self.register_buffer("scale", lucid.ones(1))
        self.register_buffer("cache", lucid.zeros(1), persistent=False)
        self.extra = None

    def forward(self, x):
        return self.head(self.conv(x).mean(axis=(2, 3)))


def test_registration_and_traversal():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["conv.weight", "conv.bias", "head.weight", "head.bias"]
    assert len(list(net.parameters())) == 4               # shared head listed once
    assert [n for n, _ in net.named_buffers()] == ["scale", "cache"]
    assert len(list(net.children())) == 2 and len(list(net.modules())) == 3
    assert list(net.state_dict()) == ["scale"] + names    # own tensors first; "cache" left out


def test_named_modules_order_prefix_and_sharing():
    # depth first in registration order, each module once under its first name, as PyTorch
    inner = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    shared = nn.Linear(2, 2)
    outer = nn.Sequential(inner, nn.Sequential(shared, inner), shared)
    assert [n for n, _ in outer.named_modules()] == ["", "0", "0.0", "0.1", "1", "1.0"]
    assert [n for n, _ in outer.named_modules(prefix="net")] == \
        ["net", "net.0", "net.0.0", "net.0.1", "net.1", "net.1.0"]
    assert [m for _, m in outer.named_modules()][5] is shared
    assert [n for n, _ in outer.named_parameters()] == \
        ["0.0.weight", "0.0.bias", "1.0.weight", "1.0.bias"]
    assert list(outer.modules()) == [m for _, m in outer.named_modules()]


def test_assignment_rules():
    net = Net()
    new = nn.Parameter(lucid.zeros(3, 2))
    net.head.weight = new
    assert net.head.weight is new
    with pytest.raises(TypeError, match="cannot assign Tensor to parameter 'weight'"):
        net.head.weight = lucid.zeros(3, 2)
    net.head.bias = None
    assert net.head.bias is None and len(list(net.head.parameters())) == 1


def test_load_state_dict_strict_reports_by_name():
    a, b = Net(), Net()
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(b.conv.weight.numpy(), a.conv.weight.numpy())
    sd = a.state_dict()
    sd.pop("head.bias")
    sd["bogus"] = lucid.zeros(1)
    with pytest.raises(ValueError,
                       match=r"missing keys \['head.bias'\], unexpected keys \['bogus'\]"):
        b.load_state_dict(sd)
    res = b.load_state_dict(sd, strict=False)
    assert res.missing_keys == ["head.bias"] and res.unexpected_keys == ["bogus"]
    sd = a.state_dict()
    sd["conv.weight"] = lucid.zeros(1, 1, 1, 1)
    with pytest.raises(ValueError,
                       match=r"conv.weight: checkpoint \(1, 1, 1, 1\) vs model \(2, 1, 3, 3\)"):
        b.load_state_dict(sd)


def test_train_eval_zero_grad_apply():
    net = Net()
    net.eval()
    assert not net.training and not net.conv.training
    net.train()
    assert net.head.training
    net(lucid.random.randn(1, 1, 5, 5)).sum().backward()
    assert net.conv.weight.grad is not None
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    seen = []
    net.apply(lambda m: seen.append(type(m).__name__))
    assert seen[-1] == "Net" and "Conv2d" in seen


def test_to_moves_parameters_in_place(mlx_only):
    net = Net()
    p = net.conv.weight
    before = p.numpy().copy()
    net.to("numpy")
    assert net.conv.weight is p and p.backend == "numpy"
    np.testing.assert_array_equal(p.numpy(), before)
    out = net(lucid.random.randn(1, 1, 5, 5, device="numpy"))
    assert out.backend == "numpy"
    net.to("gpu")
    assert p.backend == "mlx"


def test_nested_repr():
    r = repr(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Sequential(nn.Linear(2, 2))))
    assert "(0): Conv2d(1, 2, kernel_size=(3, 3), stride=(1, 1))" in r
    assert "(2): Sequential(\n    (0): Linear(in_features=2, out_features=2, bias=True)\n  )" in r


def test_module_list():
    ml = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2)])
    assert len(ml) == 2 and len(list(ml.parameters())) == 4
    with pytest.raises(TypeError):
        ml.append(3)


def test_replacing_a_member_keeps_its_place():
    """Assigning, add_module, register_parameter or register_buffer on an existing name
    replaces it in place (as in PyTorch): a Sequential still runs its layers in order, and
    state-dict keys keep their order."""
    seq = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2))
    setattr(seq, "0", nn.Linear(4, 3))
    seq.add_module("1", nn.ReLU())
    assert list(seq._modules) == ["0", "1", "2"]
    assert isinstance(seq[1], nn.ReLU)
    assert seq(lucid.ones(5, 4)).shape == (5, 2)
    lin = seq[2]
    lin.weight = nn.Parameter(lucid.zeros(2, 3))
    lin.register_parameter("weight", nn.Parameter(lucid.ones(2, 3)))
    assert list(dict(lin.named_parameters())) == ["weight", "bias"]
    net = Net()
    keys = list(net.state_dict())
    net.register_buffer("scale", lucid.ones(1) * 2)
    assert list(net.state_dict()) == keys
