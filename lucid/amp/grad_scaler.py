"""``lucid.amp.GradScaler``: dynamic loss scaling for float16 training, with PyTorch's semantics
and state-dict keys.

float16 has 5 exponent bits: gradients below ~6e-8 flush to zero. The scaler multiplies the
loss by ``scale`` so the backward pass runs on larger numbers, divides the gradients by it
before the optimizer sees them, skips the step when a gradient came out inf or NaN (the scale
was too large) and then halves the scale; after ``growth_interval`` clean steps it doubles it.

The scale and the growth tracker are 0-d arrays (Tensors), so a GradScaler can be
``lucid.compile`` state: inside a compiled step the inf check, the skip (a select between the
old and the new parameters and optimizer state) and the scale update are graph ops and nothing
is read on the host. Eagerly ``step`` reads the inf flag once, as PyTorch does."""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

from lucid import backends, structure, tracing
from lucid.autograd import no_grad
from lucid.optim.optimizer import Optimizer
from lucid.tensor import Tensor


class _Stage(enum.Enum):
    READY = 0
    UNSCALED = 1
    STEPPED = 2


class GradScaler:
    """Loss scaling as ``torch.amp.GradScaler``:

        scaler = lucid.amp.GradScaler()
        with lucid.autocast(dtype=lucid.float16):
            loss = loss_fn(model(x), y)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)                       # optional: clip true gradients here
        lucid.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(opt)                           # skipped if a gradient is inf/NaN
        scaler.update()

    ``init_scale`` > 0; ``growth_factor`` > 1; 0 < ``backoff_factor`` < 1; ``growth_interval``
    a positive int. ``enabled=False`` makes every method a pass-through (``step`` just steps).
    A string first argument is PyTorch's device (``GradScaler("cuda")``) and is ignored. The
    scale lives on the backend in force at construction and follows the loss's backend.

    Inside ``lucid.compile(state=[model, opt, scaler])`` the whole cycle (``scale`` to
    ``update``) must run in the compiled function. A step skipped there also leaves the
    optimizer state as it was; state an optimizer creates on that very step starts from zeros
    (every lucid optimizer's initial state)."""

    def __init__(self, init_scale: float | str = 65536.0, growth_factor: float = 2.0,
                 backoff_factor: float = 0.5, growth_interval: int = 2000,
                 enabled: bool = True) -> None:
        if isinstance(init_scale, str):            # torch.amp.GradScaler("cuda")
            init_scale = 65536.0
        _check(init_scale, growth_factor, backoff_factor, growth_interval)
        self._enabled = bool(enabled)
        self._init_scale = float(init_scale)
        self._growth_factor = float(growth_factor)
        self._backoff_factor = float(backoff_factor)
        self._growth_interval = int(growth_interval)
        be = backends.current()
        self._scale = Tensor._wrap(be.asarray(self._init_scale, "float32"), be)
        self._growth_tracker = Tensor._wrap(be.asarray(0, "int32"), be)
        self._per_optimizer: dict[int, dict[str, Any]] = {}

    # -- the cycle -------------------------------------------------------------------------------
    def scale(self, outputs: Any) -> Any:
        """outputs (a Tensor, or a list/tuple of them) multiplied by the scale (a float32
        0-d tensor, so a half-precision loss comes back float32, as PyTorch's 0-d losses do:
        65536 does not fit in float16)."""
        if not self._enabled:
            return outputs
        if isinstance(outputs, Tensor):
            self._follow(outputs)
            return outputs * self._scale
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(o) for o in outputs)
        raise TypeError(f"GradScaler.scale needs a Tensor or a list/tuple of Tensors, got "
                        f"{type(outputs).__name__}")

    def unscale_(self, optimizer: Optimizer) -> None:
        """Divide the gradients of optimizer's parameters by the scale, in place, and record
        whether any is inf or NaN. At most once per optimizer between ``update()`` calls."""
        if not self._enabled:
            return
        st = self._state(optimizer)
        if st["stage"] is _Stage.UNSCALED:
            raise RuntimeError("unscale_() has already been called on this optimizer since "
                               "the last update().")
        if st["stage"] is _Stage.STEPPED:
            raise RuntimeError("unscale_() is being called after step().")
        grads = [p.grad for g in optimizer.param_groups for p in g["params"]
                 if p.grad is not None]
        for grad in grads:
            if grad.dtype.name == "float16":
                raise ValueError("Attempting to unscale FP16 gradients.")
        be = self._scale._be
        # 1/scale in float32, exact for the powers of two the scale normally is
        inv = be.divide(be.asarray(1.0, "float32"), self._scale.data)
        bad = be.asarray(0.0, "float32")
        with no_grad():
            for grad in grads:
                # inf·0 and NaN·0 are NaN: the sum is NaN exactly when some value is not finite
                bad = be.add(bad, be.astype(be.sum(be.multiply(grad.data, 0.0)), "float32"))
                grad._set_data(be.multiply(grad.data, be.astype(inv, be.dtype_name(grad.data))))
        found = be.subtract(be.asarray(1.0, "float32"), be.astype(be.equal(bad, bad), "float32"))
        st["found_inf"] = Tensor._wrap(found, be)
        st["stage"] = _Stage.UNSCALED

    def step(self, optimizer: Optimizer, *args: Any, **kwargs: Any) -> Any:
        """``unscale_`` (unless done already), then ``optimizer.step()`` unless a gradient was
        inf or NaN. Returns what ``optimizer.step`` returned (None when skipped)."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs or args:
            raise RuntimeError("Closure use is not currently supported if GradScaler is "
                               "enabled.")
        st = self._state(optimizer)
        if st["stage"] is _Stage.STEPPED:
            raise RuntimeError("step() has already been called since the last update().")
        if st["stage"] is _Stage.READY:
            self.unscale_(optimizer)
        found: Tensor = st["found_inf"]
        st["stage"] = _Stage.STEPPED
        if tracing.active() is None:
            return None if found.item() else optimizer.step()
        return _select_step(optimizer, found)

    def update(self, new_scale: float | Tensor | None = None) -> None:
        """Back off the scale (×backoff_factor) if a step found inf/NaN, else grow it
        (×growth_factor) after ``growth_interval`` clean steps in a row; or set it to
        ``new_scale``. Graph ops only: no host read."""
        if not self._enabled:
            return
        be = self._scale._be
        if new_scale is not None:
            value = new_scale.data if isinstance(new_scale, Tensor) else float(new_scale)
            self._scale._set_data(be.astype(be.asarray(value, "float32"), "float32"))
        else:
            founds = [st["found_inf"] for st in self._per_optimizer.values()
                      if st["found_inf"] is not None]
            if not founds:
                raise AssertionError("No inf checks were recorded prior to update.")
            total = founds[0].data
            for f in founds[1:]:
                total = be.add(total, f.data)
            self._update_scale(be, be.greater(total, 0.0))
        self._per_optimizer.clear()

    def _update_scale(self, be: Any, found: Any) -> None:
        """torch's ``_amp_update_scale_`` as selects."""
        scale, tracker = self._scale.data, self._growth_tracker.data
        tracker1 = be.add(tracker, be.asarray(1, "int32"))
        grow = be.greater_equal(tracker1, be.asarray(self._growth_interval, "int32"))
        grown = be.multiply(scale, be.asarray(self._growth_factor, "float32"))
        finite = be.equal(be.multiply(grown, 0.0), 0.0)
        zero = be.asarray(0, "int32")
        new_scale = be.where(found, be.multiply(scale, be.asarray(self._backoff_factor,
                                                                 "float32")),
                             be.where(be.where(grow, finite, grow), grown, scale))
        new_tracker = be.where(found, zero, be.where(grow, zero, tracker1))
        self._scale._set_data(be.astype(new_scale, "float32"))
        self._growth_tracker._set_data(be.astype(new_tracker, "int32"))

    # -- reading and setting ---------------------------------------------------------------------
    def get_scale(self) -> float:
        """The current scale as a Python float (1.0 when disabled). A host read: call it
        outside a compiled function."""
        return float(self._scale.item()) if self._enabled else 1.0

    def get_growth_factor(self) -> float:
        """The factor the scale grows by after ``growth_interval`` clean steps."""
        return self._growth_factor

    def set_growth_factor(self, new_factor: float) -> None:
        """Set the growth factor (> 1)."""
        _check(self._init_scale, new_factor, self._backoff_factor, self._growth_interval)
        self._growth_factor = float(new_factor)
        structure.bump()            # a compiled step bakes the factor in (_compile_key)

    def get_backoff_factor(self) -> float:
        """The factor the scale shrinks by after an inf/NaN step."""
        return self._backoff_factor

    def set_backoff_factor(self, new_factor: float) -> None:
        """Set the backoff factor (in (0, 1))."""
        _check(self._init_scale, self._growth_factor, new_factor, self._growth_interval)
        self._backoff_factor = float(new_factor)
        structure.bump()

    def get_growth_interval(self) -> int:
        """How many clean steps in a row grow the scale."""
        return self._growth_interval

    def set_growth_interval(self, new_interval: int) -> None:
        """Set the growth interval (a positive int)."""
        _check(self._init_scale, self._growth_factor, self._backoff_factor, new_interval)
        self._growth_interval = int(new_interval)
        structure.bump()

    def is_enabled(self) -> bool:
        """Whether this scaler scales (``enabled=True``)."""
        return self._enabled

    def state_dict(self) -> dict[str, Any]:
        """PyTorch's keys: ``scale``, ``growth_factor``, ``backoff_factor``,
        ``growth_interval``, ``_growth_tracker``; empty when disabled. A host read."""
        if not self._enabled:
            return {}
        return {"scale": self.get_scale(), "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor, "growth_interval": self._growth_interval,
                "_growth_tracker": int(self._growth_tracker.item())}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what ``state_dict`` (this class's or torch's) saved."""
        if not self._enabled:
            return
        if len(state_dict) == 0:
            raise RuntimeError("The source state dict is empty, possibly because it was saved "
                               "from a disabled instance of GradScaler.")
        scale = float(state_dict["scale"])
        _check(scale, state_dict["growth_factor"], state_dict["backoff_factor"],
               state_dict["growth_interval"])
        self._init_scale = scale
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        structure.bump()            # the factors and interval are part of a trace's key
        be = self._scale._be
        self._scale._set_data(be.asarray(scale, "float32"))
        self._growth_tracker._set_data(be.asarray(int(state_dict["_growth_tracker"]), "int32"))

    # -- lucid.compile -----------------------------------------------------------------------------
    def _compile_tensors(self) -> list[Tensor]:
        """The arrays a compiled step reads and updates: the scale and the growth tracker."""
        return [self._scale, self._growth_tracker]

    def _compile_key(self) -> tuple:
        """What a trace bakes in as constants: changing one traces again."""
        return (self._enabled, self._growth_factor, self._backoff_factor,
                self._growth_interval)

    # -- helpers -------------------------------------------------------------------------------
    def _state(self, optimizer: Optimizer) -> dict[str, Any]:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"GradScaler needs a lucid.optim Optimizer, got "
                            f"{type(optimizer).__name__}")
        return self._per_optimizer.setdefault(id(optimizer), {"stage": _Stage.READY,
                                                              "found_inf": None})

    def _follow(self, t: Tensor) -> None:
        """Move the scale to t's backend (eagerly; a compiled call's tensors share one)."""
        if t._be is not self._scale._be:
            self._scale._set_data(t._be.asarray(self._scale.numpy(), "float32"), t._be)
            self._growth_tracker._set_data(t._be.asarray(self._growth_tracker.numpy(),
                                                         "int32"), t._be)


def _check(init_scale: Any, growth_factor: Any, backoff_factor: Any, growth_interval: Any) -> None:
    for name, v in (("init_scale", init_scale), ("growth_factor", growth_factor),
                    ("backoff_factor", backoff_factor)):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise TypeError(f"GradScaler {name} must be a number, got {type(v).__name__}")
    if not init_scale > 0:
        raise ValueError(f"GradScaler init_scale must be > 0, got {init_scale}")
    if not growth_factor > 1.0:
        raise ValueError(f"The growth factor must be > 1.0, got {growth_factor}")
    if not 0.0 < backoff_factor < 1.0:
        raise ValueError(f"The backoff factor must be in (0, 1), got {backoff_factor}")
    if isinstance(growth_interval, bool) or not isinstance(growth_interval, int) or \
            growth_interval <= 0:
        raise ValueError(f"GradScaler growth_interval must be a positive int, got "
                         f"{growth_interval!r}")


def _select_step(optimizer: Optimizer, found: Tensor) -> Any:
    """optimizer.step() whose effect is undone in the graph where ``found`` is 1: every
    parameter and state array becomes where(found, old, new)."""
    params = [p for g in optimizer.param_groups for p in g["params"]]
    old_data = {id(p): p.data for p in params}
    old_state = {p: dict(s) for p, s in optimizer.state.items()}
    out = optimizer.step()
    be = found._be
    skip = be.greater(found.data, 0.0)
    keep: Callable[[Any, Any], Any] = lambda old, new: be.where(skip, old, new)
    with no_grad():
        for p in params:
            if p.data is not old_data[id(p)]:
                p._set_data(keep(old_data[id(p)], p.data))
        for p, s in optimizer.state.items():
            before = old_state.get(p, {})
            for k, v in list(s.items()):
                old = before.get(k, 0.0)         # state made on this step: zeros before it
                if isinstance(v, (int, float)):
                    # a step count the optimizer made on this very step (a traced call's
                    # installed counts are arrays already): it becomes a 0-d array
                    v = be.asarray(float(v), "float32")
                if isinstance(old, (int, float)):
                    old = be.full(tuple(v.shape), float(old), be.dtype_name(v))
                s[k] = keep(old, v)
    return out
