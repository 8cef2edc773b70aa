"""A float64 convolution written from its definition: loops over output pixels, no im2col."""

from __future__ import annotations

import numpy as np


def conv2d_ref(x, w, b, stride, lo, hi, dilation, groups, gy=None):
    """x (N, C, H, W), w (O, C/g, kh, kw), zero pads lo/hi per axis.
    Returns y, and with ``gy`` (the output cotangent) also dx, dw, db by the same loops."""
    n, _c, _, _ = x.shape
    o, cg, kh, kw = w.shape
    og = o // groups
    xp = np.pad(x, ((0, 0), (0, 0), (lo[0], hi[0]), (lo[1], hi[1])))
    ho = (xp.shape[2] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (xp.shape[3] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    y = np.zeros((n, o, ho, wo))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    for i in range(ho):
        for j in range(wo):
            rows = i * stride[0] + dilation[0] * np.arange(kh)
            cols = j * stride[1] + dilation[1] * np.arange(kw)
            for grp in range(groups):
                win = xp[:, grp * cg:(grp + 1) * cg][:, :, rows][:, :, :, cols]   # (N, cg, kh, kw)
                ws = w[grp * og:(grp + 1) * og]                                  # (og, cg, kh, kw)
                y[:, grp * og:(grp + 1) * og, i, j] = np.einsum("nckl,ockl->no", win, ws)
                if gy is not None:
                    g = gy[:, grp * og:(grp + 1) * og, i, j]                      # (N, og)
                    dw[grp * og:(grp + 1) * og] += np.einsum("no,nckl->ockl", g, win)
                    contrib = np.einsum("no,ockl->nckl", g, ws)
                    block = dxp[:, grp * cg:(grp + 1) * cg]
                    block[:, :, rows[:, None], cols[None, :]] += contrib
    if b is not None:
        y += b.reshape(1, -1, 1, 1)
    if gy is None:
        return y
    dx = dxp[:, :, lo[0]:lo[0] + x.shape[2], lo[1]:lo[1] + x.shape[3]]
    db = gy.sum(axis=(0, 2, 3)) if b is not None else None
    return y, dx, dw, db
