"""``weight_norm`` and ``spectral_norm`` on top of ``parametrize`` (PyTorch's
``torch.nn.utils.parametrizations``: the same formulas, parameter and buffer names, and
state-dict keys, so a PyTorch state dict loads).

- ``weight_norm(module, "weight", dim=0)``: weight = g · v / ‖v‖, the norm over every axis but
  ``dim`` (``dim=None``, like PyTorch's -1, over the whole tensor). Stored as
  ``parametrizations.weight.original0`` (g, shaped like the weight with 1 on every axis but
  ``dim``) and ``original1`` (v).
- ``spectral_norm(module, "weight", n_power_iterations=1, eps=1e-12, dim=None)``:
  weight = W / σ(W), σ estimated by power iteration on W viewed as a matrix (axis ``dim``,
  0 by default and 1 for transposed convolutions, as rows). Stored as
  ``parametrizations.weight.original`` with the buffers ``parametrizations.weight.0._u`` and
  ``._v``. In training mode every read of ``module.weight`` runs ``n_power_iterations`` and
  updates u and v in place (without gradient); in eval mode they are used as stored.
"""

from __future__ import annotations

from lucid import random
from lucid.autograd import no_grad
from lucid.functions import maximum
from lucid.nn.module import Module
from lucid.nn.utils import parametrize
from lucid.tensor import Tensor


def _normalize(x: Tensor, eps: float) -> Tensor:
    """x / max(‖x‖₂, eps) of a vector (PyTorch's F.normalize)."""
    return x / maximum((x * x).sum().sqrt(), eps)


def _norm_except_dim(v: Tensor, dim: int | None) -> Tensor:
    """‖v‖₂ over every axis but ``dim``, kept as size-1 axes (None: the whole tensor, 0-d)."""
    if dim is None:
        return (v * v).sum().sqrt()
    axes = tuple(a for a in range(v.ndim) if a != dim)
    return (v * v).sum(axis=axes, keepdims=True).sqrt() if axes else (v * v).sqrt()


class _WeightNorm(Module):
    """weight = g · v / ‖v‖ (norm over every axis but ``dim``)."""

    def __init__(self, dim: int | None = 0) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, weight_g: Tensor, weight_v: Tensor) -> Tensor:
        return weight_v * (weight_g / _norm_except_dim(weight_v, self.dim))

    def right_inverse(self, weight: Tensor) -> tuple[Tensor, Tensor]:
        return _norm_except_dim(weight, self.dim), weight

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


def _axis(dim: int, ndim: int, what: str) -> int:
    if isinstance(dim, bool) or not isinstance(dim, int) or not -max(ndim, 1) <= dim < \
            max(ndim, 1):
        raise IndexError(f"{what}: dim {dim!r} is out of range for a {ndim}-D weight")
    return dim % max(ndim, 1)


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """Reparametrise ``module.<name>`` as g · v / ‖v‖ (see the module docstring); returns the
    module. ``dim=None`` or -1 normalises the whole tensor (PyTorch's convention)."""
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(  # noqa: TRY004 - a missing name, as register_parametrization's
            f"{type(module).__name__} has no tensor {name!r} to weight-normalise")
    d = None if dim is None or dim == -1 else _axis(dim, weight.ndim, "weight_norm")
    return parametrize.register_parametrization(module, name, _WeightNorm(d))


class _SpectralNorm(Module):
    """weight / σ, σ = uᵀ W v from power iteration on W as a (rows = axis ``dim``) matrix.
    A 1-D weight is simply normalised to unit length."""

    def __init__(self, weight: Tensor, n_power_iterations: int = 1, dim: int = 0,
                 eps: float = 1e-12) -> None:
        super().__init__()
        self.dim = _axis(dim, weight.ndim, "spectral_norm")
        if isinstance(n_power_iterations, bool) or not isinstance(n_power_iterations, int) or \
                n_power_iterations <= 0:
            raise ValueError(f"spectral_norm needs n_power_iterations > 0, got "
                             f"{n_power_iterations!r}")
        self.eps, self.n_power_iterations = float(eps), n_power_iterations
        if weight.ndim > 1:
            with no_grad():
                mat = self._matrix(weight.detach())
                h, w = mat.shape
                u = random.randn(h, dtype=weight.dtype, device=weight.backend)
                v = random.randn(w, dtype=weight.dtype, device=weight.backend)
                self.register_buffer("_u", _normalize(u, self.eps))
                self.register_buffer("_v", _normalize(v, self.eps))
                self._power_method(mat, 15)

    def _matrix(self, weight: Tensor) -> Tensor:
        if self.dim != 0:
            weight = weight.permute(self.dim, *(d for d in range(weight.ndim) if d != self.dim))
        return weight.reshape(weight.shape[0], -1)

    def _power_method(self, mat: Tensor, iterations: int) -> None:
        """u ← normalize(W v), v ← normalize(Wᵀ u), written into the buffers in place."""
        with no_grad():
            u, v = self._u, self._v
            for _ in range(iterations):
                u = _normalize(mat.matmul(v), self.eps)
                v = _normalize(mat.T.matmul(u), self.eps)
            self._u._set_data(u.data)
            self._v._set_data(v.data)

    def forward(self, weight: Tensor) -> Tensor:
        if weight.ndim == 1:
            return _normalize(weight, self.eps)
        mat = self._matrix(weight)
        if self.training:
            self._power_method(mat.detach(), self.n_power_iterations)
        u, v = self._u.detach(), self._v.detach()
        sigma = (u * mat.matmul(v)).sum()
        return weight / sigma

    def right_inverse(self, value: Tensor) -> Tensor:
        return value

    def extra_repr(self) -> str:
        return f"dim={self.dim}, n_power_iterations={self.n_power_iterations}, eps={self.eps}"


def spectral_norm(module: Module, name: str = "weight", n_power_iterations: int = 1,
                  eps: float = 1e-12, dim: int | None = None) -> Module:
    """Reparametrise ``module.<name>`` as W / σ(W) (see the module docstring); returns the
    module. ``dim`` defaults to 1 for transposed convolutions (their output channels) and 0
    otherwise."""
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(  # noqa: TRY004 - a missing name, as register_parametrization's
            f"{type(module).__name__} has no tensor {name!r} to spectrally normalise")
    if dim is None:
        transposed = any(c.__name__.startswith("ConvTranspose") for c in type(module).__mro__)
        dim = 1 if transposed else 0
    return parametrize.register_parametrization(
        module, name, _SpectralNorm(weight, n_power_iterations, dim, eps))
