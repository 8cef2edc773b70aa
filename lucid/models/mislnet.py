"""MISLnet: Bayar & Stamm's constrained CNN for universal image-manipulation detection."""

from __future__ import annotations

from lucid.models._checks import positive
from lucid.nn.layers.activation import Tanh
from lucid.nn.layers.constrained_conv import ConstrainedConv2d
from lucid.nn.layers.container import Sequential
from lucid.nn.layers.conv import Conv2d
from lucid.nn.layers.linear import Flatten, Linear
from lucid.nn.layers.normalization import BatchNorm2d
from lucid.nn.layers.pooling import MaxPool2d
from lucid.tensor import Tensor

# spatial size of conv4's pooled output for each supported patch size
_FLAT_SIDE = {256: 6, 128: 2}
ENFORCE = ("forward", "post_step", "pre_forward")


def _block(c_in: int, c_out: int, kernel: int, stride: int, padding: object) -> Sequential:
    return Sequential({
        "conv": Conv2d(c_in, c_out, kernel, stride=stride, padding=padding),
        "bn": BatchNorm2d(c_out, eps=1e-3, momentum=0.01),
        "tanh": Tanh(),
        "pool": MaxPool2d(3, stride=2),
    })


class MISLnet(Sequential):
    """MISLnet (Bayar & Stamm, "Constrained convolutional neural networks: a new approach
    towards general purpose image manipulation detection", IEEE TIFS 2018), as the MISL
    TensorFlow code lays it out. Input (N, in_channels, P, P) grey-level patches, P = 256 or
    128; output (N, n_classes) logits.

    ``constrained``: ConstrainedConv2d(in_channels, constrained_filters, 5, 'valid', no bias,
    constraint="fixed_center") — per kernel slice W[o, i] the centre is -1 and the other taps
    sum to 1 — projected at construction and, with ``enforce="post_step"`` (the paper's), after
    every optimizer step; then four blocks, each conv -> BatchNorm (scale and shift; TF's eps
    1e-3 and momentum 0.99, lucid's 0.01) -> tanh -> 3×3 stride-2 'valid' max-pool:
    ``conv1`` 7×7 stride 2 ×96 with TF's 'SAME' split (2 before, 3 after), ``conv2`` 5×5 ×64,
    ``conv3`` 5×5 ×64, ``conv4`` 1×1 ×128 ('same'), all with bias; ``flatten`` (6·6·128 for
    256, 2·2·128 for 128) -> ``fc1`` 200 tanh -> ``fc2`` 200 tanh -> ``classifier``.

    The five-class demo (examples/manipulation_detection.py) uses a scaled-down stack of the same
    parts on 48×48 patches (fewer, narrower convs and one fc layer), fed by the raw residuals.
    """

    def __init__(self, in_channels: int = 1, n_classes: int = 5, patch_size: int = 256,
                 constrained_filters: int = 3, *, enforce: str = "post_step") -> None:
        super().__init__()
        positive(in_channels, "in_channels")
        positive(n_classes, "n_classes")
        positive(constrained_filters, "constrained_filters")
        if patch_size not in _FLAT_SIDE:
            raise ValueError(f"MISLnet patch_size must be 256 or 128 (the paper's layer sizes), "
                             f"got {patch_size!r}")
        if enforce not in ENFORCE:
            raise ValueError(f"unknown enforce {enforce!r}; choose one of {', '.join(ENFORCE)}")
        self.patch_size = patch_size
        side = _FLAT_SIDE[patch_size]
        self.add_module("constrained", ConstrainedConv2d(
            in_channels, constrained_filters, 5, padding="valid", bias=False,
            constraint="fixed_center", enforce=enforce))
        self.add_module("conv1", _block(constrained_filters, 96, 7, 2, ((2, 3), (2, 3))))
        self.add_module("conv2", _block(96, 64, 5, 1, "same"))
        self.add_module("conv3", _block(64, 64, 5, 1, "same"))
        self.add_module("conv4", _block(64, 128, 1, 1, "same"))
        self.add_module("flatten", Flatten())
        self.add_module("fc1", Sequential({"linear": Linear(side * side * 128, 200),
                                           "tanh": Tanh()}))
        self.add_module("fc2", Sequential({"linear": Linear(200, 200), "tanh": Tanh()}))
        self.add_module("classifier", Linear(200, n_classes))

    def forward(self, x: Tensor) -> Tensor:
        p = self.patch_size
        if x.ndim != 4 or tuple(x.shape[2:]) != (p, p):
            raise ValueError(f"MISLnet(patch_size={p}) expects (N, C, {p}, {p}) input, got "
                             f"shape {x.shape}")
        return super().forward(x)
