"""Define-by-run autograd: ``Function`` nodes over raw backend arrays and the backward engine.

A Function subclass writes ``forward(self, *arrays, **options) -> array`` and
``backward(self, grad) -> array | tuple`` (one gradient or None per input, in input order) side by
side. Inside both, array work goes through ``self.be`` (the backend module); tensors never appear.
The engine here walks tensors duck-typed (``_ctx``, ``requires_grad``, ``grad``) so this module does
not import ``tensor``.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from lucid import tracing

_grad_enabled = True


def is_grad_enabled() -> bool:
    """Whether operations now record a graph for ``backward`` (False inside ``no_grad``)."""
    return _grad_enabled


class _GradMode(contextlib.ContextDecorator):
    """Base of no_grad / enable_grad: a context manager that also works as a decorator."""

    mode = True

    def __enter__(self) -> None:
        global _grad_enabled
        self._prev = _grad_enabled
        _grad_enabled = self.mode

    def __exit__(self, *exc: object) -> None:
        global _grad_enabled
        _grad_enabled = self._prev


class no_grad(_GradMode):
    """Within this block no graph is recorded: results have ``requires_grad=False``."""

    mode = False


class enable_grad(_GradMode):
    """Re-enable graph recording inside a ``no_grad`` block."""

    mode = True


class Function:
    """One node of the graph: the op that produced a tensor, with what its backward needs."""

    def __init__(self, be: Any, parents: tuple, needs_input_grad: tuple[bool, ...]) -> None:
        self.be = be
        self.parents = parents
        self.needs_input_grad = needs_input_grad
        self._saved: tuple | None = ()
        self.freed = False

    def save_for_backward(self, *arrays: Any) -> None:
        self._saved = arrays

    @property
    def saved(self) -> tuple:
        if self._saved is None:
            raise RuntimeError(_FREED)
        return self._saved

    def forward(self, *arrays: Any, **options: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, grad: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def release(self) -> None:
        """Drop saved arrays and parents once backward is done (unless the graph is retained)."""
        self._saved = None
        self.parents = ()
        self.freed = True


def unbroadcast(be: Any, grad: Any, shape: tuple[int, ...]) -> Any:
    """Sum ``grad`` over the axes broadcasting added, so it takes the input's ``shape``."""
    if tuple(grad.shape) == tuple(shape):
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1)
    run = 0                                 # the leading axes 0, 1, ... among them
    while run < len(axes) and axes[run] == run:
        run += 1
    if 0 < run < len(axes):
        # e.g. a bias (1, C, 1, 1) from (N, C, H, W): over the batch first (whole contiguous
        # rows), then the rest; one reduction over (0, 2, 3) is ~3x slower on NumPy
        grad = be.sum(grad, axis=axes[:run], keepdims=True)
        axes = axes[run:]
    if axes:
        grad = be.sum(grad, axis=axes, keepdims=True)
    return be.reshape(grad, tuple(shape))


def _topological_order(root: Any) -> list:
    """Tensors reachable from root that need grad, each once, children before parents.
    Iterative, so 10 000-op chains do not hit Python's recursion limit."""
    order: list = []
    visited: set[int] = set()
    stack: list = [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        ctx = node._ctx
        if ctx is not None:
            for p in ctx.parents:
                if p.requires_grad and id(p) not in visited:
                    stack.append((p, False))
    return order


# The output the last backward outside lucid.compile ran from (the loss), weakly: the next
# optimizer step evaluates it together with the parameters, so that reading the loss after the
# step costs no second evaluation (on MLX each evaluation is a sync with its worker thread,
# ~20 µs on a CPU build, more than a small net's step of Python).
_last_root: weakref.ref | None = None


def take_last_root() -> Any:
    """The tensor the last eager backward started from, if it is still alive (then forgotten)."""
    global _last_root
    ref, _last_root = _last_root, None
    return ref() if ref is not None else None


# Tensors written in place outside lucid.compile on a lazy backend (BatchNorm's running
# statistics, a user's copy_), weakly by id: the next optimizer step evaluates them with the
# parameters. Unevaluated, each step's write would chain onto the last one: after 1000 eager
# MLX steps of the digits CNN, evaluating its running statistics took 137 ms, and every step's
# batch statistics stayed alive until then.
_lazy_writes: dict[int, weakref.ref] = {}


def note_lazy_write(t: Any) -> None:
    """Record an in-place write of ``t`` on a lazy backend (see ``take_lazy_writes``)."""
    _lazy_writes[id(t)] = weakref.ref(t)


def take_lazy_writes() -> list:
    """The tensors written in place since the last call that are still alive (then forgotten)."""
    if not _lazy_writes:
        return []
    alive = [t for t in (r() for r in _lazy_writes.values()) if t is not None]
    _lazy_writes.clear()
    return alive


def run_backward(root: Any, grad: Any, retain_graph: bool, wrap: Callable[[Any, Any], Any]) -> None:
    """Propagate ``grad`` (a raw array shaped like root) to every leaf that requires grad.

    Each node's backward runs once, after all gradients flowing into it were summed.
    ``wrap(array, like)`` turns a raw gradient into a Tensor for ``.grad``.
    """
    global _last_root
    if root._ctx is not None and root._ctx.freed:
        raise RuntimeError(_FREED)
    if tracing._active is None:                 # never a tracer: it would outlive its trace
        _last_root = weakref.ref(root)
    grads: dict[int, Any] = {id(root): grad}
    with no_grad():
        for node in reversed(_topological_order(root)):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            ctx = node._ctx
            if ctx is None or node._retains_grad:
                _accumulate(node, g, wrap)
            if ctx is None:
                continue
            if ctx.freed:
                raise RuntimeError(_FREED)
            in_grads = ctx.backward(g)
            if not isinstance(in_grads, tuple):
                in_grads = (in_grads,)
            for parent, pg, need in zip(ctx.parents, in_grads, ctx.needs_input_grad):
                if not need or pg is None or not parent.requires_grad:
                    continue
                key = id(parent)
                grads[key] = pg if key not in grads else ctx.be.add(grads[key], pg)
            if not retain_graph:
                ctx.release()


def _accumulate(node: Any, g: Any, wrap: Callable[[Any, Any], Any]) -> None:
    tracing.note_grad(node)
    if node.grad is None:
        node.grad = wrap(g, node)
    else:
        node.grad = wrap(node._be.add(node.grad.data, g), node)


_FREED = ("trying to backward through the graph a second time (its saved arrays were freed after "
          "the first backward); call backward(retain_graph=True) the first time if you need to")


@contextlib.contextmanager
def set_grad_enabled(mode: bool) -> Iterator[None]:
    """Context manager that sets grad mode to ``mode`` for its block."""
    with (enable_grad() if mode else no_grad()):
        yield
