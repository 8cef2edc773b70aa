"""braindecode 1.8.1's ShallowFBCSPNet and Deep4Net (Schirrmeister et al. 2017): the same
arguments, defaults, submodule names and state-dict keys, so their checkpoints load."""

from __future__ import annotations

from typing import Any

from lucid.models._blocks import (
    CombinedConv,
    Ensure4d,
    Permute,
    SafeLog,
    Square,
    SqueezeFinalOutput,
    as_module,
    output_shape,
)
from lucid.models._checks import check_signal, positive, probability
from lucid.nn import init
from lucid.nn.layers.activation import ELU, Dropout
from lucid.nn.layers.container import Sequential
from lucid.nn.layers.conv import Conv2d
from lucid.nn.layers.linear import Identity
from lucid.nn.layers.normalization import BatchNorm2d
from lucid.nn.layers.pooling import AvgPool2d, MaxPool2d
from lucid.nn.module import Module

POOLS = {"mean": AvgPool2d, "max": MaxPool2d}


def _pool(mode: Any, name: str) -> type:
    if mode not in POOLS:
        raise ValueError(f"{name} must be 'mean' or 'max', got {mode!r}")
    return POOLS[mode]


def _split_first_layer(split: Any, model: str) -> None:
    if split is not True:
        # braindecode 1.8.1 builds a `conv_time` layer here, then initialises
        # `conv_time_spat`, which does not exist: the constructor crashes
        raise ValueError(f"{model}(split_first_layer={split!r}) is not supported: braindecode "
                         "1.8.1 crashes on it (its initialisation expects the split layer "
                         "conv_time_spat), so there is no reference to reproduce")


def _head(model: Sequential, n_filters: int, n_outputs: int, final_conv_length: Any,
          n_chans: int, n_times: int) -> int:
    """braindecode's classifier: a Conv2d over the remaining time, then squeezes."""
    model.eval()
    if final_conv_length == "auto":
        final_conv_length = output_shape(model, n_chans, n_times)[2]
    head = Sequential()
    head.add_module("conv_classifier", Conv2d(n_filters, n_outputs, (final_conv_length, 1)))
    head.add_module("squeeze", SqueezeFinalOutput())
    model.add_module("final_layer", head)
    init.xavier_uniform_(head.conv_classifier.weight, gain=1.0)
    init.zeros_(head.conv_classifier.bias)
    return int(final_conv_length)


def _init_first(model: Module, batch_norm: bool) -> None:
    """Xavier-uniform for the split first layer, zero biases, BatchNorm weight 1 / bias 0."""
    cts = model.conv_time_spat
    init.xavier_uniform_(cts.conv_time.weight, gain=1.0)
    init.zeros_(cts.conv_time.bias)
    init.xavier_uniform_(cts.conv_spat.weight, gain=1.0)
    if not batch_norm:
        init.zeros_(cts.conv_spat.bias)


class ShallowFBCSPNet(Sequential):
    """ShallowFBCSPNet as braindecode 1.8.1 builds it: input (N, n_chans, n_times), output
    (N, n_outputs) logits (no log-softmax, as braindecode since 0.8).

    ``ensuredims`` -> ``dimshuffle`` (N, 1, T, C) -> ``conv_time_spat`` (a CombinedConv: the
    temporal conv (filter_time_length, 1) and the spatial conv (1, n_chans) merged; keys
    ``conv_time_spat.conv_time.*``, ``conv_time_spat.conv_spat.weight``) -> ``bnorm``
    (momentum ``batch_norm_alpha``, eps 1e-5) -> ``conv_nonlin_exp`` (Square) -> ``pool``
    (pool_time_length, 1) stride (pool_time_stride, 1) -> ``pool_nonlin_exp`` (SafeLog) ->
    ``drop`` -> ``final_layer.conv_classifier``. No max-norm. Xavier-uniform weights, zero
    biases. ``conv_nonlin`` / ``activation_pool_nonlin`` take a Module class or a function.
    ``split_first_layer=False``: ValueError (braindecode 1.8.1 crashes on it).
    """

    def __init__(self, n_chans: int, n_outputs: int, n_times: int, n_filters_time: int = 40,
                 filter_time_length: int = 25, n_filters_spat: int = 40,
                 pool_time_length: int = 75, pool_time_stride: int = 15,
                 final_conv_length: Any = "auto", conv_nonlin: Any = Square,
                 pool_mode: str = "mean", activation_pool_nonlin: Any = SafeLog,
                 split_first_layer: bool = True, batch_norm: bool = True,
                 batch_norm_alpha: float = 0.1, drop_prob: float = 0.5) -> None:
        super().__init__()
        check_signal(n_chans, n_outputs, n_times)
        for name, v in (("n_filters_time", n_filters_time),
                        ("filter_time_length", filter_time_length),
                        ("n_filters_spat", n_filters_spat), ("pool_time_length", pool_time_length),
                        ("pool_time_stride", pool_time_stride)):
            positive(v, name)
        probability(drop_prob, "drop_prob")
        _split_first_layer(split_first_layer, "ShallowFBCSPNet")
        pool = _pool(pool_mode, "pool_mode")
        if n_times < filter_time_length + pool_time_length - 1:
            raise ValueError(f"n_times={n_times} is too short for ShallowFBCSPNet: the temporal "
                             f"conv ({filter_time_length}) and the pooling ({pool_time_length}) "
                             f"need at least {filter_time_length + pool_time_length - 1} samples")
        self.n_chans, self.n_outputs, self.n_times = n_chans, n_outputs, n_times
        self.add_module("ensuredims", Ensure4d())
        self.add_module("dimshuffle", Permute(0, 3, 2, 1))      # (N, C, T, 1) -> (N, 1, T, C)
        self.add_module("conv_time_spat", CombinedConv(
            n_chans, n_filters_time, n_filters_spat, filter_time_length, bias_time=True,
            bias_spat=not batch_norm))
        if batch_norm:
            self.add_module("bnorm", BatchNorm2d(n_filters_spat, momentum=batch_norm_alpha))
        self.add_module("conv_nonlin_exp", as_module(conv_nonlin, "conv_nonlin"))
        self.add_module("pool", pool(kernel_size=(pool_time_length, 1),
                                     stride=(pool_time_stride, 1)))
        self.add_module("pool_nonlin_exp", as_module(activation_pool_nonlin,
                                                     "activation_pool_nonlin"))
        self.add_module("drop", Dropout(drop_prob))
        self.final_conv_length = _head(self, n_filters_spat, n_outputs, final_conv_length,
                                       n_chans, n_times)
        _init_first(self, batch_norm)
        self.train()


class Deep4Net(Sequential):
    """Deep4Net as braindecode 1.8.1 builds it: input (N, n_chans, n_times), output
    (N, n_outputs) logits.

    ``ensuredims`` -> ``dimshuffle`` -> ``conv_time_spat`` (CombinedConv) -> ``bnorm`` ->
    ``conv_nonlin`` (ELU) -> ``pool`` (max, (pool_time_length, 1) stride (pool_time_stride, 1))
    -> ``pool_nonlin`` (Identity); then three blocks k = 2, 3, 4: ``drop_k`` -> ``conv_k``
    (filter_length_k, 1) -> ``bnorm_k`` -> ``nonlin_k`` -> ``pool_k`` -> ``pool_nonlin_k``;
    ``final_layer.conv_classifier``. BatchNorm momentum ``batch_norm_alpha``, eps 1e-5; no
    max-norm. ``stride_before_pool=True`` strides the block convolutions instead of the pools
    (the first, merged layer keeps stride 1, as braindecode's). Xavier-uniform weights, zero
    biases, BatchNorm weights 1.

    Where braindecode 1.8.1 silently shrinks every kernel and pool when ``n_times`` is below the
    minimum its layers need, lucid raises ValueError naming that minimum; ``split_first_layer=
    False`` is a ValueError too (braindecode crashes on it).
    """

    def __init__(self, n_chans: int, n_outputs: int, n_times: int,
                 final_conv_length: Any = "auto", n_filters_time: int = 25,
                 n_filters_spat: int = 25, filter_time_length: int = 10,
                 pool_time_length: int = 3, pool_time_stride: int = 3, n_filters_2: int = 50,
                 filter_length_2: int = 10, n_filters_3: int = 100, filter_length_3: int = 10,
                 n_filters_4: int = 200, filter_length_4: int = 10,
                 activation_first_conv_nonlin: type[Module] = ELU, first_pool_mode: str = "max",
                 first_pool_nonlin: type[Module] = Identity,
                 activation_later_conv_nonlin: type[Module] = ELU, later_pool_mode: str = "max",
                 later_pool_nonlin: type[Module] = Identity, drop_prob: float = 0.5,
                 split_first_layer: bool = True, batch_norm: bool = True,
                 batch_norm_alpha: float = 0.1, stride_before_pool: bool = False) -> None:
        super().__init__()
        check_signal(n_chans, n_outputs, n_times)
        sizes = {"n_filters_time": n_filters_time, "n_filters_spat": n_filters_spat,
                 "filter_time_length": filter_time_length, "pool_time_length": pool_time_length,
                 "pool_time_stride": pool_time_stride, "n_filters_2": n_filters_2,
                 "filter_length_2": filter_length_2, "n_filters_3": n_filters_3,
                 "filter_length_3": filter_length_3, "n_filters_4": n_filters_4,
                 "filter_length_4": filter_length_4}
        for name, v in sizes.items():
            positive(v, name)
        probability(drop_prob, "drop_prob")
        _split_first_layer(split_first_layer, "Deep4Net")
        first_pool, later_pool = (_pool(first_pool_mode, "first_pool_mode"),
                                  _pool(later_pool_mode, "later_pool_mode"))
        lengths = (filter_time_length, filter_length_2, filter_length_3, filter_length_4)
        minimum = min_n_times(lengths, pool_time_length, pool_time_stride)
        if n_times < minimum:
            raise ValueError(
                f"n_times={n_times} is below the {minimum} samples Deep4Net's kernels "
                f"{lengths} and pools ({pool_time_length}, stride {pool_time_stride}) need. "
                "braindecode 1.8.1 silently shrinks every kernel and pool in this case; lucid "
                "does not: pass shorter filter_length_* / pool_time_* or longer windows")
        self.n_chans, self.n_outputs, self.n_times = n_chans, n_outputs, n_times
        conv_stride, pool_stride = ((pool_time_stride, 1) if stride_before_pool
                                    else (1, pool_time_stride))

        def bnorm(n: int) -> BatchNorm2d:
            return BatchNorm2d(n, momentum=batch_norm_alpha, eps=1e-5)

        self.add_module("ensuredims", Ensure4d())
        self.add_module("dimshuffle", Permute(0, 3, 2, 1))
        self.add_module("conv_time_spat", CombinedConv(
            n_chans, n_filters_time, n_filters_spat, filter_time_length, bias_time=True,
            bias_spat=not batch_norm))
        if batch_norm:
            self.add_module("bnorm", bnorm(n_filters_spat))
        self.add_module("conv_nonlin", activation_first_conv_nonlin())
        self.add_module("pool", first_pool(kernel_size=(pool_time_length, 1),
                                           stride=(pool_stride, 1)))
        self.add_module("pool_nonlin", first_pool_nonlin())
        blocks = ((n_filters_spat, n_filters_2, filter_length_2),
                  (n_filters_2, n_filters_3, filter_length_3),
                  (n_filters_3, n_filters_4, filter_length_4))
        for k, (n_in, n_out, length) in enumerate(blocks, start=2):
            self.add_module(f"drop_{k}", Dropout(drop_prob))
            conv = Conv2d(n_in, n_out, (length, 1), stride=(conv_stride, 1), bias=not batch_norm)
            init.xavier_uniform_(conv.weight, gain=1.0)
            if conv.bias is not None:
                init.zeros_(conv.bias)
            self.add_module(f"conv_{k}", conv)
            if batch_norm:
                self.add_module(f"bnorm_{k}", bnorm(n_out))
            self.add_module(f"nonlin_{k}", activation_later_conv_nonlin())
            self.add_module(f"pool_{k}", later_pool(kernel_size=(pool_time_length, 1),
                                                    stride=(pool_stride, 1)))
            self.add_module(f"pool_nonlin_{k}", later_pool_nonlin())
        self.final_conv_length = _head(self, n_filters_4, n_outputs, final_conv_length,
                                       n_chans, n_times)
        _init_first(self, batch_norm)
        self.train()


def min_n_times(filter_lengths: tuple[int, ...], pool_length: int, pool_stride: int) -> int:
    """The fewest samples for which every conv (stride 1) and pool of Deep4Net leaves at least
    one: undo each pool (stride·(L - 1) + length) and conv (L + length - 1) from the last."""
    n = 1
    for length in reversed(filter_lengths):
        n = pool_stride * (n - 1) + pool_length
        n = n + length - 1
    return n
