"""Learning-rate schedules, as PyTorch's (``torch.optim.lr_scheduler``): the same sequences of
learning rates, written as closed forms of the epoch (PyTorch steps most of them recursively;
the two agree to rounding). Each scheduler sets ``group["lr"]`` of its optimizer's param groups
at construction (epoch 0) and at every ``step()``; ``state_dict()`` / ``load_state_dict()``
resume as PyTorch's do: build the optimizer and the scheduler, then load both state dicts.

Schedulers are meant to be used one at a time per optimizer (or chained with SequentialLR):
two closed-form schedulers stepping the same optimizer do not multiply as PyTorch's recursive
ones do."""

from __future__ import annotations

import math
import types
from bisect import bisect_right
from collections.abc import Callable, Sequence
from typing import Any

from lucid.optim.optimizer import Optimizer


def _check_optimizer(optimizer: Any) -> Optimizer:
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"expected a lucid Optimizer, got {type(optimizer).__name__}")
    return optimizer


class _Scheduler:
    """Base: ``lr_at(base_lr, epoch)`` per group (or ``_values(epoch)`` for all groups)."""

    _not_saved: tuple[str, ...] = ("optimizer",)

    def __init__(self, optimizer: Optimizer) -> None:
        self.optimizer = _check_optimizer(optimizer)
        for g in optimizer.param_groups:
            g.setdefault("initial_lr", g["lr"])
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = 0
        self._apply()

    def lr_at(self, base: float, epoch: int) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def _values(self, epoch: int) -> list[float]:
        return [self.lr_at(base, epoch) for base in self.base_lrs]

    def _apply(self) -> None:
        for g, lr in zip(self.optimizer.param_groups, self._values(self.last_epoch)):
            g["lr"] = lr

    def step(self) -> None:
        self.last_epoch += 1
        self._apply()

    def get_last_lr(self) -> list[float]:
        return [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in self._not_saved}

    def load_state_dict(self, sd: dict) -> None:
        self.__dict__.update({k: v for k, v in sd.items() if k not in self._not_saved})
        self._apply()


class StepLR(_Scheduler):
    """lr = base · gamma^(epoch // step_size)."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        if step_size <= 0:
            raise ValueError(f"step_size must be > 0, got {step_size}")
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer)

    def lr_at(self, base: float, epoch: int) -> float:
        return base * self.gamma ** (epoch // self.step_size)


class CosineAnnealingLR(_Scheduler):
    """lr = eta_min + (base − eta_min) · (1 + cos(π · epoch / T_max)) / 2."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0) -> None:
        if T_max <= 0:
            raise ValueError(f"T_max must be > 0, got {T_max}")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer)

    def lr_at(self, base: float, epoch: int) -> float:
        cos = math.cos(math.pi * epoch / self.T_max)
        return self.eta_min + (base - self.eta_min) * (1 + cos) / 2


class LambdaLR(_Scheduler):
    """lr = base · lr_lambda(epoch); one function for every group, or a list (one per group).
    Like PyTorch, ``state_dict()`` keeps the attributes of callable objects but not plain
    functions or lambdas (which cannot be saved)."""

    _not_saved = ("optimizer", "lr_lambdas")

    def __init__(self, optimizer: Optimizer,
                 lr_lambda: Callable[[int], float] | Sequence[Callable[[int], float]]) -> None:
        groups = _check_optimizer(optimizer).param_groups
        fns: list[Any] = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else \
            [lr_lambda] * len(groups)
        if len(fns) != len(groups):
            raise ValueError(f"expected {len(groups)} lr_lambdas (one per param group), got "
                             f"{len(fns)}")
        for f in fns:
            if not callable(f):
                raise TypeError(f"lr_lambda must be callable, got {type(f).__name__}")
        self.lr_lambdas = fns
        super().__init__(optimizer)

    def _values(self, epoch: int) -> list[float]:
        return [base * f(epoch) for base, f in zip(self.base_lrs, self.lr_lambdas)]

    def state_dict(self) -> dict:
        sd = super().state_dict()
        sd["lr_lambdas"] = [None if isinstance(f, types.FunctionType) else dict(f.__dict__)
                            for f in self.lr_lambdas]
        return sd

    def load_state_dict(self, sd: dict) -> None:
        for f, saved in zip(self.lr_lambdas, sd.get("lr_lambdas", ())):
            if saved is not None:
                f.__dict__.update(saved)
        super().load_state_dict(sd)


class MultiStepLR(_Scheduler):
    """lr = base · gamma^(number of milestones <= epoch) (a repeated milestone counts twice)."""

    def __init__(self, optimizer: Optimizer, milestones: Sequence[int],
                 gamma: float = 0.1) -> None:
        self.milestones = sorted(int(m) for m in milestones)
        self.gamma = gamma
        super().__init__(optimizer)

    def lr_at(self, base: float, epoch: int) -> float:
        return base * self.gamma ** bisect_right(self.milestones, epoch)


class ExponentialLR(_Scheduler):
    """lr = base · gamma^epoch."""

    def __init__(self, optimizer: Optimizer, gamma: float) -> None:
        self.gamma = gamma
        super().__init__(optimizer)

    def lr_at(self, base: float, epoch: int) -> float:
        return base * self.gamma ** epoch


class LinearLR(_Scheduler):
    """lr = base · (start + (end − start) · min(epoch, total_iters) / total_iters): a linear
    warm-up (or decay) of the factor over ``total_iters`` steps, then constant."""

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3,
                 end_factor: float = 1.0, total_iters: int = 5) -> None:
        if not 0 < start_factor <= 1:
            raise ValueError(f"start_factor must be in (0, 1], got {start_factor}")
        if not 0 <= end_factor <= 1:
            raise ValueError(f"end_factor must be in [0, 1], got {end_factor}")
        if total_iters <= 0:
            raise ValueError(f"total_iters must be > 0, got {total_iters}")
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, \
            total_iters
        super().__init__(optimizer)

    def lr_at(self, base: float, epoch: int) -> float:
        frac = min(epoch, self.total_iters) / self.total_iters
        return base * (self.start_factor + (self.end_factor - self.start_factor) * frac)


class SequentialLR(_Scheduler):
    """``schedulers[i]`` runs from ``milestones[i-1]`` (restarting its own epoch count at 0
    there) until ``milestones[i]``: e.g. a LinearLR warm-up, then a cosine decay. All must step
    the same optimizer (ReduceLROnPlateau cannot be one)."""

    _not_saved = ("optimizer", "_schedulers")

    def __init__(self, optimizer: Optimizer, schedulers: Sequence[_Scheduler],
                 milestones: Sequence[int]) -> None:
        _check_optimizer(optimizer)
        schedulers = list(schedulers)
        if not schedulers:
            raise ValueError("SequentialLR needs at least one scheduler")
        for i, s in enumerate(schedulers):
            if not isinstance(s, _Scheduler) or isinstance(s, SequentialLR):
                raise TypeError(f"SequentialLR takes epoch schedulers; scheduler {i} is "
                                f"{type(s).__name__}")
            if s.optimizer is not optimizer:
                raise ValueError(f"scheduler {i} ({type(s).__name__}) steps another optimizer; "
                                 f"SequentialLR needs them all on the same one")
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"SequentialLR needs one milestone fewer than schedulers: "
                             f"{len(schedulers)} schedulers, {len(milestones)} milestones")
        self._schedulers, self._milestones = schedulers, list(milestones)
        self.optimizer = optimizer
        self.last_epoch = 0
        for s in schedulers:                       # undo their constructions' first step
            s.last_epoch -= 1
        for g in optimizer.param_groups:
            g["lr"] = g["initial_lr"]
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        schedulers[bisect_right(self._milestones, 0)].step()

    def step(self) -> None:
        self.last_epoch += 1
        idx = bisect_right(self._milestones, self.last_epoch)
        s = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            s.last_epoch = 0                       # this scheduler starts now
            s._apply()
        else:
            s.step()

    def _apply(self) -> None:
        idx = bisect_right(self._milestones, self.last_epoch)
        self._schedulers[idx]._apply()

    def state_dict(self) -> dict:
        sd = super().state_dict()
        sd["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return sd

    def load_state_dict(self, sd: dict) -> None:
        for s, saved in zip(self._schedulers, sd["_schedulers"]):
            s.__dict__.update({k: v for k, v in saved.items() if k not in s._not_saved})
        super().load_state_dict(sd)


class OneCycleLR(_Scheduler):
    """The 1cycle policy (PyTorch's): the lr rises from max_lr/div_factor to max_lr over the
    first ``pct_start`` of ``total_steps``, then anneals to initial_lr/final_div_factor
    (``three_phase``: back to the initial lr first); ``anneal_strategy`` "cos" or "linear".
    With ``cycle_momentum`` the momentum (SGD's ``momentum``, or beta1 of Adam-like ``betas``)
    moves inversely between max_momentum and base_momentum. Stepping past ``total_steps`` is
    a ValueError. (``lucid.compile`` passes lr, momentum and betas into its traces as inputs,
    so a cycled momentum takes effect every step without tracing again.)"""

    def __init__(self, optimizer: Optimizer, max_lr: float | Sequence[float],
                 total_steps: int | None = None, epochs: int | None = None,
                 steps_per_epoch: int | None = None, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True,
                 base_momentum: float | Sequence[float] = 0.85,
                 max_momentum: float | Sequence[float] = 0.95, div_factor: float = 25.0,
                 final_div_factor: float = 1e4, three_phase: bool = False) -> None:
        groups = _check_optimizer(optimizer).param_groups
        if total_steps is not None:
            if isinstance(total_steps, bool) or not isinstance(total_steps, int) or \
                    total_steps <= 0:
                raise ValueError(f"total_steps must be a positive int, got {total_steps!r}")
        elif epochs is not None and steps_per_epoch is not None:
            for name, v in (("epochs", epochs), ("steps_per_epoch", steps_per_epoch)):
                if not isinstance(v, int) or v <= 0:
                    raise ValueError(f"{name} must be a positive int, got {v!r}")
            total_steps = epochs * steps_per_epoch
        else:
            raise ValueError("OneCycleLR needs total_steps, or epochs and steps_per_epoch")
        if not isinstance(pct_start, float) or not 0 <= pct_start <= 1:
            raise ValueError(f"pct_start must be a float in [0, 1], got {pct_start!r}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must be 'cos' or 'linear', got "
                             f"{anneal_strategy!r}")
        self.total_steps, self.anneal_strategy = total_steps, anneal_strategy
        p = pct_start * total_steps
        if three_phase:
            self._phases = [(float(p) - 1, "initial_lr", "max_lr", "max_momentum",
                             "base_momentum"),
                            (float(2 * p) - 2, "max_lr", "initial_lr", "base_momentum",
                             "max_momentum"),
                            (total_steps - 1, "initial_lr", "min_lr", "max_momentum",
                             "max_momentum")]
        else:
            self._phases = [(float(p) - 1, "initial_lr", "max_lr", "max_momentum",
                             "base_momentum"),
                            (total_steps - 1, "max_lr", "min_lr", "base_momentum",
                             "max_momentum")]
        for g, m in zip(groups, _per_group("max_lr", max_lr, groups)):
            g["initial_lr"] = m / div_factor
            g["max_lr"] = m
            g["min_lr"] = g["initial_lr"] / final_div_factor
        self.cycle_momentum = bool(cycle_momentum)
        if self.cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError(f"cycle_momentum needs an optimizer with momentum or betas; "
                                 f"{type(optimizer).__name__} has neither")
            self.use_beta1 = "betas" in optimizer.defaults
            for g, hi, lo in zip(groups, _per_group("max_momentum", max_momentum, groups),
                                 _per_group("base_momentum", base_momentum, groups)):
                g["max_momentum"], g["base_momentum"] = hi, lo
                _set_momentum(g, hi, self.use_beta1)
        super().__init__(optimizer)

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def _values(self, epoch: int) -> list[float]:
        if epoch > self.total_steps:
            raise ValueError(f"OneCycleLR stepped {epoch} times, past total_steps="
                             f"{self.total_steps}")
        lrs = []
        for g in self.optimizer.param_groups:
            start = 0.0
            for i, (end, lr0, lr1, m0, m1) in enumerate(self._phases):
                if epoch <= end or i == len(self._phases) - 1:
                    pct = (epoch - start) / (end - start)
                    lrs.append(self._anneal(g[lr0], g[lr1], pct))
                    if self.cycle_momentum:
                        _set_momentum(g, self._anneal(g[m0], g[m1], pct), self.use_beta1)
                    break
                start = end
        return lrs


def _per_group(name: str, value: Any, groups: list[dict]) -> list[float]:
    if isinstance(value, (list, tuple)):
        if len(value) != len(groups):
            raise ValueError(f"expected {len(groups)} values of {name} (one per param group), "
                             f"got {len(value)}")
        return [float(v) for v in value]
    return [float(value)] * len(groups)


def _set_momentum(group: dict, value: float, use_beta1: bool) -> None:
    if use_beta1:
        group["betas"] = (value, *group["betas"][1:])
    else:
        group["momentum"] = value


class ReduceLROnPlateau:
    """Multiply every group's lr by ``factor`` (not below ``min_lr``; changes smaller than
    ``eps`` are skipped) when the metric passed to ``step(metric)`` has not improved for more
    than ``patience`` steps; then wait ``cooldown`` steps. Improvement: ``mode`` "min" or "max",
    by more than ``threshold`` ("rel": a fraction of the best, "abs": an amount). The metric
    is a number (a Tensor is read with ``float()``, a host read)."""

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1,
                 patience: int = 10, threshold: float = 1e-4, threshold_mode: str = "rel",
                 cooldown: int = 0, min_lr: float | Sequence[float] = 0,
                 eps: float = 1e-8) -> None:
        if factor >= 1.0:
            raise ValueError(f"factor must be < 1.0, got {factor}")
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        self.optimizer = _check_optimizer(optimizer)
        self.min_lrs = _per_group("min_lr", min_lr, optimizer.param_groups)
        self.factor, self.patience, self.cooldown, self.eps = factor, patience, cooldown, eps
        self.mode, self.threshold, self.threshold_mode = mode, threshold, threshold_mode
        self.last_epoch = 0
        self.best = math.inf if mode == "min" else -math.inf
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    def _is_better(self, a: float) -> bool:
        best, th = self.best, self.threshold
        if self.mode == "min":
            return a < (best * (1.0 - th) if self.threshold_mode == "rel" else best - th)
        return a > (best * (1.0 + th) if self.threshold_mode == "rel" else best + th)

    def step(self, metrics: Any) -> None:
        current = float(metrics)
        self.last_epoch += 1
        if self._is_better(current):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0                # bad epochs in cooldown do not count
        if self.num_bad_epochs > self.patience:
            for g, floor in zip(self.optimizer.param_groups, self.min_lrs):
                new = max(g["lr"] * self.factor, floor)
                if g["lr"] - new > self.eps:
                    g["lr"] = new
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0

    def get_last_lr(self) -> list[float]:
        return [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, sd: dict) -> None:
        self.__dict__.update({k: v for k, v in sd.items() if k != "optimizer"})
