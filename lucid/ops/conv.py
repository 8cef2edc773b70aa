"""Convolution Functions of every rank (1, 2 or 3 spatial axes). The only file that knows the
backends' layouts (channels-last input (N, *spatial, C), weight (O, *k, C/g)); the public layout
is PyTorch's (N, C, *spatial) / (O, I/g, *k), changed here once per call.

Every pass — forward, input gradient, weight gradient, and the transposed convolution — is one call
of the backend's ``conv`` primitive:
- input gradient: a flipped conv of the output gradient, dilated by the stride, with the weight's
  in/out channels swapped per group (strided by the forward's input dilation, if any);
- weight gradient: a conv of the input (batch and channels swapped, input-dilated as in the
  forward) by the output gradient, with the roles of stride and dilation swapped.
The primitive takes only non-negative padding; a negative pad (a crop) is done here by slicing.
The Functions read the layer's ``ConvGeometry``; output sizes come from
``backends.contract.conv_output_size`` (the formulas' one home)."""

from __future__ import annotations

from lucid.autograd import Function
from lucid.backends.contract import ConvGeometry, Ints, conv_output_size, dilated_size


def to_last(rank: int) -> Ints:
    """(N, C, *spatial) -> (N, *spatial, C); also (O, I, *k) -> (O, *k, I)."""
    return (0,) + tuple(range(2, rank + 2)) + (1,)


def to_first(rank: int) -> Ints:
    """(N, *spatial, C) -> (N, C, *spatial)."""
    return (0, rank + 1) + tuple(range(1, rank + 1))


def _ends_swapped(rank: int) -> Ints:
    """(A, *spatial, B) -> (B, *spatial, A)."""
    return (rank + 1,) + tuple(range(1, rank + 1)) + (0,)


def _sizes(x, w, stride, lo, hi, dilation, in_dil) -> list[int]:
    return [conv_output_size(x.shape[1 + a], w.shape[1 + a], stride[a], lo[a], hi[a],
                             dilation[a], in_dil[a]) for a in range(x.ndim - 2)]


def _primitive(be, x, w, stride: Ints, lo: Ints, hi: Ints, dilation: Ints, in_dil: Ints,
               groups: int, flip: bool):
    """``be.conv``, except that an empty batch, the empty reduction of an empty batch's weight
    gradient, or an empty output (a transposed conv may have one, as in PyTorch) gives zeros of
    the right shape without calling the backend (MLX's CPU conv kills the process with SIGFPE on
    an empty input; NumPy's GEMM blocking divides by zero)."""
    size = _sizes(x, w, stride, lo, hi, dilation, in_dil)
    if 0 in x.shape or 0 in w.shape or 0 in size:
        return be.full((x.shape[0], *size, w.shape[0]), 0.0, be.dtype_name(x))
    return be.conv(x, w, stride, lo, hi, dilation, in_dil, groups, flip)


def _conv_any_pads(be, x, w, stride: Ints, lo: Ints, hi: Ints, dilation: Ints, in_dil: Ints,
                   groups: int, flip: bool):
    """A conv whose pads may be negative (a crop of the dilated input). A low pad -c becomes
    s·t - c >= 0 with t = ceil(c / s): that shifts the windows by t whole strides, so the output
    drops its first t pixels; a negative high pad becomes 0 and the output keeps the length the
    negative pads give."""
    length = _sizes(x, w, stride, lo, hi, dilation, in_dil)
    shift = [-(p // s) if p < 0 else 0 for p, s in zip(lo, stride)]      # ceil(-p / s)
    lo_ = tuple(p + s * t for p, s, t in zip(lo, stride, shift))
    out = _primitive(be, x, w, stride, lo_, tuple(max(0, p) for p in hi), dilation, in_dil,
                     groups, flip)
    if any(shift) or tuple(out.shape[1:-1]) != tuple(length):
        out = be.getitem(out, (slice(None),) + tuple(slice(t, t + n)
                                                     for t, n in zip(shift, length)))
    return out


def _swap_io(be, w, groups: int):
    """(O, *k, C/g) -> (C, *k, O/g): the weight of the adjoint conv, per group."""
    o, *k, cg = w.shape
    r = len(k)
    w = be.reshape(w, (groups, o // groups, *k, cg))
    w = be.transpose(w, (0, r + 2) + tuple(range(2, r + 2)) + (1,))
    return be.reshape(w, (groups * cg, *k, o // groups))


def conv_forward(be, x, w, stride: Ints, lo: Ints, hi: Ints, dilation: Ints, groups: int,
                 in_dil: Ints | None = None):
    """x (N, *S, C), w (O, *k, C/g), pads >= 0 -> (N, *S_out, O)."""
    in_dil = in_dil or (1,) * (x.ndim - 2)
    return _primitive(be, x, w, stride, lo, hi, dilation, in_dil, groups, False)


def conv_input_grad(be, g, w, in_size: Ints, stride: Ints, lo: Ints, hi: Ints, dilation: Ints,
                    groups: int, in_dil: Ints | None = None):
    """d(conv)/dx applied to g (N, *S_out, O) -> (N, *S, C): the transposed convolution.

    It is a flipped conv of g dilated by the stride; padded to give the gradient of every row
    of the (input-dilated) input, and with stride in_dil, so that it gives only the rows that
    are x's own (every in_dil-th)."""
    in_dil = in_dil or (1,) * (g.ndim - 2)
    k, m = w.shape[1:-1], g.shape[1:-1]
    plo = tuple(d * (kk - 1) - p for kk, d, p in zip(k, dilation, lo))
    phi = tuple(dilated_size(n, di) - 1 - (mm - 1) * s + p          # the last row x has
                for n, s, p, mm, di in zip(in_size, stride, lo, m, in_dil))
    return _conv_any_pads(be, g, _swap_io(be, w, groups), in_dil, plo, phi, dilation, stride,
                          groups, True)


def conv_weight_grad(be, x, g, k_size: Ints, stride: Ints, lo: Ints, hi: Ints, dilation: Ints,
                     groups: int, in_dil: Ints | None = None):
    """d(conv)/dw applied to g: x (N, *S, C), g (N, *S_out, O) -> (O, *k, C/g)."""
    n, *sp, c = x.shape
    r = len(sp)
    in_dil = in_dil or (1,) * r
    cg = c // groups
    # The batch becomes the channel axis: x -> (C/g, *S, g*N) with group-major channels. The
    # merge of groups and batch goes through (C/g, g*N, *S): when x is a channels-last view of
    # channels-first memory, that copy moves whole image rows, where merging in channels-last
    # order gathers one value per channel plane.
    xt = be.transpose(be.reshape(x, (n, *sp, groups, cg)),
                      (r + 2, r + 1, 0) + tuple(range(1, r + 1)))
    xt = be.transpose(be.reshape(xt, (cg, groups * n, *sp)), to_last(r))
    gt = be.transpose(g, _ends_swapped(r))                              # (O, *S_out, N)
    # Only the input rows the kernel reaches are needed: trim the high pad to that.
    need = [(k - 1) * d + s * (m - 1) + 1 - dilated_size(size, di) - p for k, d, s, m, size, di, p
            in zip(k_size, dilation, stride, g.shape[1:-1], sp, in_dil, lo)]
    hi_eff = tuple(max(0, min(p, q)) for p, q in zip(hi, need))
    out = _primitive(be, xt, gt, dilation, lo, hi_eff, stride, in_dil, groups, False)
    # out: (C/g, *k', O)
    if tuple(out.shape[1:-1]) != tuple(k_size):
        out = be.getitem(out, (slice(None),) + tuple(slice(0, k) for k in k_size))
    return be.transpose(out, _ends_swapped(r))


class _ConvFunction(Function):
    """Layout changes shared by the conv Functions: the public channels-first (or channels-last)
    activations and (O, I, *k) weights to and from the backend's channels-last / (O, *k, I)."""

    channels_last = False
    rank = 2

    def to_backend(self, a):
        return a if self.channels_last else self.be.transpose(a, to_last(self.rank))

    def from_backend(self, a):
        return a if self.channels_last else self.be.transpose(a, to_first(self.rank))


class Conv(_ConvFunction):
    """y = conv(x, w) of any rank. x (N, C, *S) (or (N, *S, C) when channels_last), w (O, I/g, *k);
    the geometry's zero pads (>= 0), the input dilated by input_dilation (zeros between pixels)
    before it is padded."""

    def forward(self, x, w, geo: ConvGeometry):
        be = self.be
        self.geo, self.rank, self.channels_last = geo, geo.rank, geo.channels_last
        lo, hi = geo.conv_pads
        xh = self.to_backend(x)
        wh = be.transpose(w, to_last(geo.rank))
        self.save_for_backward(xh, wh)
        return self.from_backend(conv_forward(be, xh, wh, geo.stride, lo, hi, geo.dilation,
                                              geo.groups, geo.input_dilation))

    def backward(self, g):
        be, geo = self.be, self.geo
        xh, wh = self.saved
        lo, hi = geo.conv_pads
        gh = self.to_backend(g)
        gx = gw = None
        if self.needs_input_grad[0]:
            gx = self.from_backend(conv_input_grad(
                be, gh, wh, xh.shape[1:-1], geo.stride, lo, hi, geo.dilation, geo.groups,
                geo.input_dilation))
        if self.needs_input_grad[1]:
            gw = conv_weight_grad(be, xh, gh, wh.shape[1:-1], geo.stride, lo, hi, geo.dilation,
                                  geo.groups, geo.input_dilation)
            gw = be.transpose(gw, to_first(geo.rank))
        return gx, gw


class ConvTranspose(_ConvFunction):
    """The adjoint of Conv: x (N, C_in, *S) (or channels-last), w (C_in, C_out/g, *k) as in
    PyTorch.

    With padding p and output_padding q, each output axis has
    (n - 1) * stride - 2p + dilation * (k - 1) + q + 1 entries: the conv picture pads p on
    the low side and p - q on the high side of the (larger) output."""

    def forward(self, x, w, geo: ConvGeometry):
        be = self.be
        self.rank, self.channels_last = geo.rank, geo.channels_last
        xh = self.to_backend(x)
        wh = be.transpose(w, to_last(geo.rank))      # the conv picture: O' = C_in, I'/g = C_out/g
        out_size = geo.output_size(xh.shape[1:-1])
        hi = tuple(p - q for p, q in zip(geo.lo, geo.output_padding))
        self.opts = (geo.stride, geo.lo, hi, geo.dilation, geo.groups)
        self.save_for_backward(xh, wh)
        y = conv_input_grad(be, xh, wh, out_size, geo.stride, geo.lo, hi, geo.dilation,
                            geo.groups)
        return self.from_backend(y)

    def backward(self, g):
        be = self.be
        xh, wh = self.saved
        stride, lo, hi, dilation, groups = self.opts
        gh = self.to_backend(g)
        hi0 = tuple(max(0, p) for p in hi)
        gx = gw = None
        if self.needs_input_grad[0]:
            # The forward conv of the output-space gradient. A negative high pad (output_padding
            # larger than padding) means those last rows never reach x: crop them.
            crop = tuple(max(0, -p) for p in hi)
            gh_c = gh
            if any(crop):
                gh_c = be.getitem(gh, (slice(None),) + tuple(
                    slice(0, n - c) for n, c in zip(gh.shape[1:-1], crop)))
            gx = self.from_backend(conv_forward(be, gh_c, wh, stride, lo, hi0, dilation, groups))
        if self.needs_input_grad[1]:
            gw = conv_weight_grad(be, gh, xh, wh.shape[1:-1], stride, lo, hi0, dilation, groups)
            gw = be.transpose(gw, to_first(self.rank))
        return gx, gw
