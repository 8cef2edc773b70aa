"""Convolution Functions. The only file that knows the backends' layouts (NHWC input, OHWI weight);
the public layout is PyTorch's NCHW / OIHW, changed here once per call.

Every pass — forward, input gradient, weight gradient, and the transposed convolution — is one call
of the backend's ``conv2d`` primitive:
- input gradient: a flipped conv of the output gradient, dilated by the stride, with the weight's
  in/out channels swapped per group (strided by the forward's input dilation, if any);
- weight gradient: a conv of the input (batch and channels swapped, input-dilated as in the
  forward) by the output gradient, with the roles of stride and dilation swapped.
The primitive takes only non-negative padding; a negative pad (a crop) is done here by slicing.
Output sizes come from ``backends.contract.conv_output_size`` (the formulas' one home)."""

from __future__ import annotations

from lucid.autograd import Function
from lucid.backends.contract import conv_output_size, conv_transpose_output_size, dilated_size

Pair = tuple[int, int]
_TO_NHWC, _TO_NCHW, _TO_OHWI = (0, 2, 3, 1), (0, 3, 1, 2), (0, 2, 3, 1)


def _primitive(be, x, w, stride: Pair, lo: Pair, hi: Pair, dilation: Pair, in_dil: Pair,
               groups: int, flip: bool):
    """``be.conv2d``, except that an empty batch, or the empty reduction of an empty batch's
    weight gradient, gives zeros of the right shape without calling the backend (MLX's CPU conv
    kills the process with SIGFPE on an empty input; NumPy's GEMM blocking divides by zero)."""
    if 0 in x.shape or 0 in w.shape:
        size = [conv_output_size(x.shape[1 + a], w.shape[1 + a], stride[a], lo[a], hi[a],
                                 dilation[a], in_dil[a]) for a in (0, 1)]
        return be.full((x.shape[0], size[0], size[1], w.shape[0]), 0.0, be.dtype_name(x))
    return be.conv2d(x, w, stride, lo, hi, dilation, in_dil, groups, flip)


def _conv_any_pads(be, x, w, stride: Pair, lo: Pair, hi: Pair, dilation: Pair, in_dil: Pair,
                   groups: int, flip: bool):
    """A conv whose pads may be negative (a crop of the dilated input). A low pad -c becomes
    s·t - c >= 0 with t = ceil(c / s): that shifts the windows by t whole strides, so the output
    drops its first t pixels; a negative high pad becomes 0 and the output keeps the length the
    negative pads give."""
    length = [conv_output_size(x.shape[1 + a], w.shape[1 + a], stride[a], lo[a], hi[a],
                               dilation[a], in_dil[a]) for a in (0, 1)]
    shift = [-(p // s) if p < 0 else 0 for p, s in zip(lo, stride)]      # ceil(-p / s)
    lo_ = (lo[0] + stride[0] * shift[0], lo[1] + stride[1] * shift[1])
    out = _primitive(be, x, w, stride, lo_, (max(0, hi[0]), max(0, hi[1])), dilation, in_dil,
                     groups, flip)
    if any(shift) or (out.shape[1], out.shape[2]) != tuple(length):
        out = be.getitem(out, (slice(None), slice(shift[0], shift[0] + length[0]),
                               slice(shift[1], shift[1] + length[1])))
    return out


def _swap_io(be, w, groups: int):
    """(O, kh, kw, C/g) -> (C, kh, kw, O/g): the weight of the adjoint conv, per group."""
    o, kh, kw, cg = w.shape
    og = o // groups
    w = be.reshape(w, (groups, og, kh, kw, cg))
    w = be.transpose(w, (0, 4, 2, 3, 1))
    return be.reshape(w, (groups * cg, kh, kw, og))


def conv_forward(be, x, w, stride: Pair, lo: Pair, hi: Pair, dilation: Pair, groups: int,
                 in_dil: Pair = (1, 1)):
    """x (N, H, W, C), w (O, kh, kw, C/g), pads >= 0 -> (N, Ho, Wo, O)."""
    return _primitive(be, x, w, stride, lo, hi, dilation, in_dil, groups, False)


def conv_input_grad(be, g, w, in_hw: Pair, stride: Pair, lo: Pair, hi: Pair, dilation: Pair,
                    groups: int, in_dil: Pair = (1, 1)):
    """d(conv)/dx applied to g (N, Ho, Wo, O) -> (N, H, W, C): the transposed convolution.

    It is a flipped conv of g dilated by the stride; padded to give the gradient of every row
    of the (input-dilated) input, and with stride in_dil, so that it gives only the rows that
    are x's own (every in_dil-th)."""
    kh, kw = w.shape[1], w.shape[2]
    ho, wo = g.shape[1], g.shape[2]
    plo, phi = [], []
    for n, k, s, p_lo, d, m, di in zip(in_hw, (kh, kw), stride, lo, dilation, (ho, wo), in_dil):
        plo.append(d * (k - 1) - p_lo)
        phi.append(dilated_size(n, di) - 1 - (m - 1) * s + p_lo)   # the last row x has
    return _conv_any_pads(be, g, _swap_io(be, w, groups), in_dil, tuple(plo), tuple(phi),
                          dilation, stride, groups, True)


def conv_weight_grad(be, x, g, k_hw: Pair, stride: Pair, lo: Pair, hi: Pair, dilation: Pair,
                     groups: int, in_dil: Pair = (1, 1)):
    """d(conv)/dw applied to g: x (N, H, W, C), g (N, Ho, Wo, O) -> (O, kh, kw, C/g)."""
    n, h, w_, c = x.shape
    ho, wo = g.shape[1], g.shape[2]
    cg = c // groups
    # The batch becomes the channel axis: x -> (C/g, H, W, g*N) with group-major channels. The
    # merge of groups and batch goes through (C/g, g*N, H, W): when x is an NHWC view of NCHW
    # memory, that copy moves whole image rows, where merging in NHWC order gathers one value
    # per channel plane.
    xt = be.transpose(be.reshape(x, (n, h, w_, groups, cg)), (4, 3, 0, 1, 2))
    xt = be.transpose(be.reshape(xt, (cg, groups * n, h, w_)), (0, 2, 3, 1))
    gt = be.transpose(g, (3, 1, 2, 0))                                   # (O, Ho, Wo, N)
    # Only the input rows the kernel reaches are needed: trim the high pad to that.
    need = [(k - 1) * d + s * (m - 1) + 1 - dilated_size(size, di) - p for k, d, s, m, size, di, p
            in zip(k_hw, dilation, stride, (ho, wo), (h, w_), in_dil, lo)]
    hi_eff = tuple(max(0, min(p, q)) for p, q in zip(hi, need))
    out = _primitive(be, xt, gt, dilation, lo, hi_eff, stride, in_dil, groups, False)
    # out: (C/g, kh', kw', O)
    if out.shape[1] != k_hw[0] or out.shape[2] != k_hw[1]:
        out = be.getitem(out, (slice(None), slice(0, k_hw[0]), slice(0, k_hw[1])))
    return be.transpose(out, (3, 1, 2, 0))


class _ConvFunction(Function):
    """Layout changes shared by the conv Functions: the public NCHW (or channels-last NHWC)
    activations and OIHW-style weights to and from the backend's NHWC / OHWI."""

    channels_last = False

    def to_nhwc(self, a):
        return a if self.channels_last else self.be.transpose(a, _TO_NHWC)

    def from_nhwc(self, a):
        return a if self.channels_last else self.be.transpose(a, _TO_NCHW)


class Conv2d(_ConvFunction):
    """y = conv(x, w). x NCHW (or NHWC when channels_last), w OIHW; zero pads lo/hi >= 0; the
    input dilated by input_dilation (zeros between pixels) before it is padded."""

    def forward(self, x, w, stride=(1, 1), lo=(0, 0), hi=(0, 0), dilation=(1, 1), groups=1,
                channels_last=False, input_dilation=(1, 1)):
        be = self.be
        self.opts = (stride, lo, hi, dilation, groups, input_dilation)
        self.channels_last = channels_last
        xh = self.to_nhwc(x)
        wh = be.transpose(w, _TO_OHWI)
        self.save_for_backward(xh, wh)
        y = conv_forward(be, xh, wh, stride, lo, hi, dilation, groups, input_dilation)
        return self.from_nhwc(y)

    def backward(self, g):
        be = self.be
        xh, wh = self.saved
        stride, lo, hi, dilation, groups, in_dil = self.opts
        gh = self.to_nhwc(g)
        gx = gw = None
        if self.needs_input_grad[0]:
            gx = conv_input_grad(be, gh, wh, (xh.shape[1], xh.shape[2]), stride, lo, hi,
                                 dilation, groups, in_dil)
            gx = self.from_nhwc(gx)
        if self.needs_input_grad[1]:
            gw = conv_weight_grad(be, xh, gh, (wh.shape[1], wh.shape[2]), stride, lo, hi,
                                  dilation, groups, in_dil)
            gw = be.transpose(gw, _TO_NCHW)
        return gx, gw


class ConvTranspose2d(_ConvFunction):
    """The adjoint of Conv2d: x NCHW (or NHWC), w (C_in, C_out/g, kh, kw) as in PyTorch.

    With padding p and output_padding q, the output has
    H_out = (H - 1) * stride - 2p + dilation * (kh - 1) + q + 1 rows: the conv picture pads p on
    the low side and p - q on the high side of the (larger) output."""

    def forward(self, x, w, stride=(1, 1), padding=(0, 0), output_padding=(0, 0),
                dilation=(1, 1), groups=1, channels_last=False):
        be = self.be
        self.channels_last = channels_last
        xh = self.to_nhwc(x)
        wh = be.transpose(w, _TO_OHWI)           # the conv picture: O' = C_in, I'/g = C_out/g
        kh, kw = wh.shape[1], wh.shape[2]
        out_hw = tuple(conv_transpose_output_size(n, k, s, p, q, d) for n, k, s, p, q, d in zip(
            (xh.shape[1], xh.shape[2]), (kh, kw), stride, padding, output_padding, dilation))
        hi = tuple(p - q for p, q in zip(padding, output_padding))
        self.opts = (stride, tuple(padding), hi, dilation, groups)
        self.save_for_backward(xh, wh)
        y = conv_input_grad(be, xh, wh, out_hw, stride, tuple(padding), hi, dilation, groups)
        return self.from_nhwc(y)

    def backward(self, g):
        be = self.be
        xh, wh = self.saved
        stride, lo, hi, dilation, groups = self.opts
        gh = self.to_nhwc(g)
        gx = gw = None
        if self.needs_input_grad[0]:
            # The forward conv of the output-space gradient. A negative high pad (output_padding
            # larger than padding) means those last rows never reach x: crop them.
            crop = tuple(max(0, -p) for p in hi)
            gh_c = gh
            if any(crop):
                gh_c = be.getitem(gh, (slice(None), slice(0, gh.shape[1] - crop[0]),
                                       slice(0, gh.shape[2] - crop[1])))
            gx = conv_forward(be, gh_c, wh, stride, lo, tuple(max(0, p) for p in hi), dilation,
                              groups)
            gx = self.from_nhwc(gx)
        if self.needs_input_grad[1]:
            gw = conv_weight_grad(be, gh, xh, (wh.shape[1], wh.shape[2]), stride, lo,
                                  tuple(max(0, p) for p in hi), dilation, groups)
            gw = be.transpose(gw, _TO_NCHW)
        return gx, gw
