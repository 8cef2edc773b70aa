"""One test helper for gradients and parity: finite differences in float64 on the NumPy backend,
and the same function run on every backend."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

import lucid
from lucid import backends


def run(fn: Callable, inputs: Sequence[np.ndarray], backend: str, dtype="float32",
        seed_grad: np.ndarray | None = None):
    """fn(*tensors) on ``backend``; returns (output as numpy, [grad of each input as numpy]).
    The output is back-propagated with ``seed_grad`` (ones if None) so every Jacobian entry
    counts."""
    with lucid.using_backend(backend):
        ts = [lucid.tensor(a, dtype=dtype, requires_grad=True) for a in inputs]
        out = fn(*ts)
        seed = np.ones(out.shape) if seed_grad is None else seed_grad
        out.backward(lucid.tensor(seed, dtype=dtype))
        grads = [t.grad.numpy() if t.grad is not None else np.zeros(t.shape) for t in ts]
        return out.numpy(), grads


def numeric_grads(fn: Callable, inputs: Sequence[np.ndarray], seed_grad: np.ndarray,
                  eps: float = 1e-6) -> list[np.ndarray]:
    """Central differences of sum(fn(*inputs) * seed_grad), float64 on the NumPy backend."""
    def f(arrs):
        with lucid.using_backend("numpy"), lucid.no_grad():
            out = fn(*[lucid.tensor(a, dtype="float64") for a in arrs]).numpy()
        return float(np.sum(out * seed_grad))

    arrs = [np.array(a, dtype=np.float64) for a in inputs]
    grads = []
    for a in arrs:
        g = np.zeros_like(a)
        flat, gflat = a.reshape(-1), g.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            hi = f(arrs)
            flat[i] = old - eps
            lo = f(arrs)
            flat[i] = old
            gflat[i] = (hi - lo) / (2 * eps)
        grads.append(g)
    return grads


def check_grad(fn: Callable, inputs: Sequence[np.ndarray], rtol: float = 1e-5,
               atol: float = 1e-6, eps: float = 1e-6) -> None:
    """Assert lucid's float64 gradients equal finite differences for a random output cotangent."""
    rng = np.random.default_rng(123)
    with lucid.using_backend("numpy"), lucid.no_grad():
        shape = fn(*[lucid.tensor(a, dtype="float64") for a in inputs]).shape
    seed = rng.standard_normal(shape)
    _, analytic = run(fn, inputs, "numpy", "float64", seed)
    numeric = numeric_grads(fn, inputs, seed, eps)
    for i, (a, n) in enumerate(zip(analytic, numeric)):
        np.testing.assert_allclose(a, n, rtol=rtol, atol=atol, err_msg=f"gradient of input {i}")


def check_parity(fn: Callable, inputs: Sequence[np.ndarray], rtol: float = 1e-4,
                 atol: float = 1e-5) -> None:
    """Assert every installed backend gives the NumPy reference's forward and gradients
    (float32)."""
    rng = np.random.default_rng(7)
    ref_out, _ = run(fn, inputs, "numpy")
    seed = rng.standard_normal(ref_out.shape).astype(np.float32)
    ref_out, ref_grads = run(fn, inputs, "numpy", seed_grad=seed)
    for name in backends.available():
        if name == "numpy":
            continue
        out, grads = run(fn, inputs, name, seed_grad=seed)
        np.testing.assert_allclose(out, ref_out, rtol=rtol, atol=atol, err_msg=f"{name} forward")
        for i, (g, r) in enumerate(zip(grads, ref_grads)):
            np.testing.assert_allclose(g, r, rtol=rtol, atol=atol, err_msg=f"{name} grad {i}")
