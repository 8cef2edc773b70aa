"""Elementwise Functions. Binary ops broadcast; their gradients are summed back to input shapes."""

from __future__ import annotations

from lucid.autograd import Function, unbroadcast


class Add(Function):
    def forward(self, a, b):
        self.shapes = (a.shape, b.shape)
        return self.be.add(a, b)

    def backward(self, g):
        na, nb = self.needs_input_grad
        return (unbroadcast(self.be, g, self.shapes[0]) if na else None,
                unbroadcast(self.be, g, self.shapes[1]) if nb else None)


class Sub(Function):
    def forward(self, a, b):
        self.shapes = (a.shape, b.shape)
        return self.be.subtract(a, b)

    def backward(self, g):
        be = self.be
        na, nb = self.needs_input_grad
        return (unbroadcast(be, g, self.shapes[0]) if na else None,
                unbroadcast(be, be.multiply(g, -1), self.shapes[1]) if nb else None)


class Mul(Function):
    def forward(self, a, b):
        self.save_for_backward(a, b)
        return self.be.multiply(a, b)

    def backward(self, g):
        a, b = self.saved
        be = self.be
        ga = unbroadcast(be, be.multiply(g, b), a.shape) if self.needs_input_grad[0] else None
        gb = unbroadcast(be, be.multiply(g, a), b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    def forward(self, a, b):
        self.save_for_backward(a, b)
        return self.be.divide(a, b)

    def backward(self, g):
        a, b = self.saved
        be = self.be
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = unbroadcast(be, be.divide(g, b), a.shape)
        if self.needs_input_grad[1]:
            gb = unbroadcast(be, be.multiply(be.multiply(g, -1), be.divide(be.divide(a, b), b)),
                             b.shape)
        return ga, gb


class Pow(Function):
    """a ** b. d/db uses log(a), taken only where a > 0 (0 elsewhere) so it stays finite."""

    def forward(self, a, b):
        out = self.be.power(a, b)
        self.save_for_backward(a, b, out)
        return out

    def backward(self, g):
        a, b, out = self.saved
        be = self.be
        ga = gb = None
        if self.needs_input_grad[0]:
            # b * a ** (b - 1), written so a == 0 with b >= 1 gives 0 rather than 0 * inf.
            d = be.multiply(b, be.power(a, be.subtract(b, 1)))
            ga = unbroadcast(be, be.multiply(g, d), a.shape)
        if self.needs_input_grad[1]:
            pos = be.greater(a, 0)
            loga = be.log(be.where(pos, a, 1))
            gb = unbroadcast(be, be.multiply(g, be.where(pos, be.multiply(out, loga), 0)), b.shape)
        return ga, gb


class Maximum(Function):
    """Elementwise max; on ties each input gets half the gradient (PyTorch's rule)."""

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return self.be.maximum(a, b)

    def backward(self, g):
        a, b = self.saved
        be = self.be
        half = be.multiply(g, 0.5)
        ga = be.where(be.greater(a, b), g, be.where(be.equal(a, b), half, 0))
        gb = be.where(be.greater(b, a), g, be.where(be.equal(a, b), half, 0))
        return unbroadcast(be, ga, a.shape), unbroadcast(be, gb, b.shape)


class Where(Function):
    """where(cond, a, b); cond is a non-differentiable bool array passed as an option."""

    def forward(self, a, b, cond=None):
        self.cond = cond
        self.shapes = (a.shape, b.shape)
        return self.be.where(cond, a, b)

    def backward(self, g):
        be = self.be
        na, nb = self.needs_input_grad
        ga = unbroadcast(be, be.where(self.cond, g, 0), self.shapes[0]) if na else None
        gb = unbroadcast(be, be.where(self.cond, 0, g), self.shapes[1]) if nb else None
        return ga, gb


class Neg(Function):
    def forward(self, x):
        return self.be.multiply(x, -1)

    def backward(self, g):
        return self.be.multiply(g, -1)


class Exp(Function):
    def forward(self, x):
        out = self.be.exp(x)
        self.save_for_backward(out)
        return out

    def backward(self, g):
        return self.be.multiply(g, self.saved[0])


class Log(Function):
    def forward(self, x):
        self.save_for_backward(x)
        return self.be.log(x)

    def backward(self, g):
        return self.be.divide(g, self.saved[0])


class Sqrt(Function):
    def forward(self, x):
        out = self.be.sqrt(x)
        self.save_for_backward(out)
        return out

    def backward(self, g):
        return self.be.divide(g, self.be.multiply(self.saved[0], 2))


class Tanh(Function):
    def forward(self, x):
        out = self.be.tanh(x)
        self.save_for_backward(out)
        return out

    def backward(self, g):
        t = self.saved[0]
        return self.be.multiply(g, self.be.subtract(1, self.be.multiply(t, t)))


class Sigmoid(Function):
    """1 / (1 + exp(-x)) via tanh, which is finite for every x (exp(-x) overflows for x << 0)."""

    def forward(self, x):
        be = self.be
        out = be.multiply(be.add(be.tanh(be.multiply(x, 0.5)), 1), 0.5)
        self.save_for_backward(out)
        return out

    def backward(self, g):
        s = self.saved[0]
        return self.be.multiply(g, self.be.multiply(s, self.be.subtract(1, s)))


class Erf(Function):
    def forward(self, x):
        self.save_for_backward(x)
        return self.be.erf(x)

    def backward(self, g):
        x = self.saved[0]
        be = self.be
        # d erf/dx = 2/sqrt(pi) * exp(-x^2)
        return be.multiply(g, be.multiply(be.exp(be.multiply(be.multiply(x, x), -1)),
                                          1.1283791670955126))


class Abs(Function):
    """|x|; the gradient at 0 is 0 (sign(0) = 0, as in PyTorch)."""

    def forward(self, x):
        self.save_for_backward(x)
        return self.be.maximum(x, self.be.multiply(x, -1))

    def backward(self, g):
        x = self.saved[0]
        be = self.be
        return be.where(be.greater(x, 0), g, be.where(be.greater(0, x), be.multiply(g, -1), 0))


class Relu(Function):
    def forward(self, x):
        self.save_for_backward(x)
        return self.be.maximum(x, 0)

    def backward(self, g):
        return self.be.where(self.be.greater(self.saved[0], 0), g, 0)


class Clip(Function):
    """clip(x, lo, hi) with scalar bounds (None = unbounded); gradient 1 inside [lo, hi]."""

    def forward(self, x, lo=None, hi=None):
        be = self.be
        self.save_for_backward(x)
        self.lo, self.hi = lo, hi
        out = x
        if lo is not None:
            out = be.maximum(out, be.asarray(lo, be.dtype_name(x)))
        if hi is not None:
            hi_arr = be.asarray(hi, be.dtype_name(x))
            out = be.where(be.greater(out, hi_arr), hi_arr, out)
        return out

    def backward(self, g):
        x = self.saved[0]
        be = self.be
        if self.lo is not None:
            g = be.where(be.greater(self.lo, x), 0, g)
        if self.hi is not None:
            g = be.where(be.greater(x, self.hi), 0, g)
        return g


class Cast(Function):
    def forward(self, x, dtype=None):
        self.src = self.be.dtype_name(x)
        return self.be.astype(x, dtype)

    def backward(self, g):
        return self.be.astype(g, self.src)
