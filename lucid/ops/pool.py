"""Max pooling over strided window taps: one Function for every rank, kernel, stride and
dilation (average pooling is shared code: a sum of the same taps)."""

from __future__ import annotations

import itertools
import math
from typing import Any

from lucid.autograd import Function


def first_max(be, taps: list, stacked=None):
    """(elementwise max of the K same-shaped arrays ``taps``, index of the first tap reaching
    it); a NaN counts as the maximum, as in argmax. ``stacked``: the taps as one (K, ...)
    array when the caller has it, whose max over axis 0 is one reduction (and the one form of
    the maximum that MLX replays at another batch size: a shapeless export keeps a slice's
    recorded batch, silently). The index is a chain of K - 1 selects (NumPy's argmax over a
    leading axis loops per window, ~5x slower on a CNN's pooling)."""
    k = len(taps)
    if stacked is not None:
        m = be.max(stacked, axis=0)
    else:
        m = taps[0]
        for t in taps[1:]:
            m = be.maximum(m, t)               # NaN-propagating on both backends
    idx = be.full(tuple(m.shape), k - 1, "int64")
    nan_wins = be.full((), True, "bool")
    for i in range(k - 2, -1, -1):
        t = taps[i]
        hit = be.where(be.equal(t, t), be.equal(t, m), nan_wins)      # t is NaN: it wins
        idx = be.where(hit, be.full((), i, "int64"), idx)
    return m, idx


def _block_taps(be, x, k, out):
    """The taps of non-overlapping windows that tile x (..., *S) exactly, stacked (K, ...) in
    ``offsets`` order: x is reshaped to (..., out_1, k_1, out_2, k_2, ...) and its kernel axes
    moved to the front by one transpose (one copy). Reshapes and a transpose, no slices: MLX
    can replay this at another batch size (shapeless compile and export)."""
    r = len(k)
    lead = tuple(x.shape[:-r])
    nl = len(lead)
    split = be.reshape(x, lead + tuple(v for m, kk in zip(out, k) for v in (m, kk)))
    perm = tuple(nl + 2 * j + 1 for j in range(r)) + tuple(range(nl)) + tuple(
        nl + 2 * j for j in range(r))                              # (*k, *lead, *out)
    return be.reshape(be.transpose(split, perm), (math.prod(k),) + lead + tuple(out))


class MaxPoolWindows(Function):
    """Max pooling of x (..., *S) over windows of kernel k, stride s, dilation d along its last
    len(k) axes, with ``out`` windows per axis (x is already padded). The K = prod(k) taps are
    strided views of x (no copy on NumPy), reduced as in ``first_max``: the gradient goes to
    one winner per window, the first maximum, as in PyTorch (not shared between ties).

    The backward puts each tap's routed gradient back without a scatter per tap into a zero
    array of x's size: x is viewed as s_1·s_2·… phase planes (plane r holds positions
    r + s·i), tap offset o lands in plane (o·d) mod s shifted by (o·d) div s, so each tap is
    one window-sized slice of the routed gradient (padded when it is shifted) added into its
    plane, and the planes are interleaved back with one transpose. Non-overlapping windows
    (s = k, the usual 2×2 / 2) give each tap a plane of its own: the routed gradient (one
    select) is already the stack of planes, and one transpose finishes."""

    def forward(self, x, k=(), s=(), d=(), out=()):
        be = self.be
        self.offsets = list(itertools.product(*(range(kk) for kk in k)))
        r = len(k)
        if tuple(s) == tuple(k) and set(d) == {1} and tuple(x.shape[-r:]) == tuple(
                m * kk for m, kk in zip(out, k)):
            self.blocks = True
            stacked = _block_taps(be, x, k, out)
            taps = [be.getitem(stacked, (i,)) for i in range(len(self.offsets))]
        else:
            self.blocks = False
            stacked = None
            taps = [be.getitem(x, (Ellipsis,) + tuple(
                slice(o * dd, o * dd + ss * (m - 1) + 1, ss)
                for o, dd, ss, m in zip(offs, d, s, out))) for offs in self.offsets]
        m, self.idx = first_max(be, taps, stacked)
        self.meta = (tuple(x.shape), len(k), tuple(s), tuple(d), be.dtype_name(x))
        return m

    def backward(self, g):
        be = self.be
        shape, r, s, d, dtype = self.meta
        lead, out, size = tuple(g.shape[:-r]), tuple(g.shape[-r:]), shape[-r:]
        planes = tuple(-(-n // ss) for n, ss in zip(size, s))       # rows of each phase plane
        zero = be.full((), 0, dtype)
        k = len(self.offsets)
        # every tap's share of g at once: (K, *lead, *out), g where the tap won, else 0
        ks = be.reshape(be.arange(0, k, 1, "int64"), (k,) + (1,) * g.ndim)
        routed = be.where(be.equal(ks, be.reshape(self.idx, (1,) + tuple(g.shape))),
                          be.reshape(g, (1,) + tuple(g.shape)), zero)
        if self.blocks:                 # tap i is plane i, unshifted: routed is the stack
            stacked = routed
        else:
            acc: dict[tuple[int, ...], Any] = {}
            for i, offs in enumerate(self.offsets):
                part = be.getitem(routed, (i,))
                phase = tuple(o * dd % ss for o, dd, ss in zip(offs, d, s))
                shift = tuple(o * dd // ss for o, dd, ss in zip(offs, d, s))
                widths = tuple((q, p - q - m) for q, p, m in zip(shift, planes, out))
                if any(w != (0, 0) for w in widths):
                    part = be.pad(part, ((0, 0),) * len(lead) + widths, 0.0)
                acc[phase] = part if phase not in acc else be.add(acc[phase], part)
            full = be.full(lead + planes, 0, dtype)
            stacked = be.concatenate(
                [be.reshape(acc.get(ph, full), (1,) + lead + planes)
                 for ph in itertools.product(*(range(ss) for ss in s))], 0)
        # (s_1, s_2, ..., *lead, *planes) -> (*lead, p_1, s_1, p_2, s_2, ...) -> x's shape
        stacked = be.reshape(stacked, s + lead + planes)
        nl = len(lead)
        perm = tuple(range(r, r + nl)) + tuple(a for j in range(r) for a in (r + nl + j, j))
        inter = be.reshape(be.transpose(stacked, perm),
                           lead + tuple(p * ss for p, ss in zip(planes, s)))
        if tuple(inter.shape[-r:]) == tuple(size):
            return inter
        return be.getitem(inter, (Ellipsis,) + tuple(slice(0, n) for n in size))
