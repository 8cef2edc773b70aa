"""Devices: where a tensor's backend computes, and the names ``device=`` arguments accept."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from lucid import backends, dtypes

# "cpu" and "gpu" name a backend too: the NumPy reference runs on the CPU, MLX (on a Mac) on
# the GPU. "mps" (what PyTorch calls a Mac's GPU) is MLX as "gpu" is. A tensor's ``device``
# reports where its backend really runs (MLX's CPU build: cpu).
ALIASES = {"cpu": "numpy", "gpu": "mlx", "mps": "mlx", "numpy": "numpy", "mlx": "mlx"}


class Device:
    """A backend and the kind of processor it runs on (``"cpu"`` or ``"gpu"``).

    ``t.device == "cpu"`` compares the processor type (or the backend name); ``t.to(t.device)``
    keeps the tensor on its backend."""

    __slots__ = ("backend", "type")

    def __init__(self, backend: str, type: str) -> None:
        self.backend, self.type = backend, type

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Device):
            return (self.backend, self.type) == (other.backend, other.type)
        if isinstance(other, str):
            key = other.lower()
            if key == "mps":                # PyTorch's name for a Mac's GPU
                key = "gpu" if self.backend == "mlx" else key
            return key in (self.type, self.backend, str(self))
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.backend, self.type))

    def __str__(self) -> str:
        return f"{self.backend}:{self.type}"

    def __repr__(self) -> str:
        return f"device(type='{self.type}', backend='{self.backend}')"


def of(be: ModuleType) -> Device:
    """The device a backend module computes on."""
    return Device(be.name, be.device_type())


def is_name(target: Any) -> bool:
    """True for a Device or a string that names a backend or device ("mlx", "cpu", "mlx:gpu")."""
    if isinstance(target, Device):
        return True
    return isinstance(target, str) and target.lower().split(":")[0] in ALIASES


def resolve(device: Any = None) -> ModuleType:
    """Backend module for a ``device=`` argument: None (the active backend), a Device, "cpu",
    "gpu", "mps" (both mlx) or a backend name (an optional ":suffix" is ignored: "mlx:gpu")."""
    if device is None:
        return backends.current()
    if isinstance(device, Device):
        return backends.load(device.backend)
    if not isinstance(device, str):
        raise TypeError(f"device must be a str such as 'cpu', 'gpu', 'mps', 'numpy' or 'mlx', got "
                        f"{device!r}")
    key = device.lower().split(":")[0]
    if key not in ALIASES:
        raise ValueError(f"unknown device {device!r}; choose 'cpu' (numpy), 'gpu' or 'mps' "
                         "(mlx), 'numpy' or 'mlx'")
    return backends.load(ALIASES[key])


def to_target(target: Any) -> tuple[ModuleType | None, dtypes.DType | None]:
    """What ``Tensor.to`` / ``Module.to`` was asked for: (backend module, None) for a backend or
    device name, (None, dtype) for a dtype; a ValueError naming every accepted name otherwise."""
    if is_name(target):
        return resolve(target), None
    try:
        return None, dtypes.get(target)
    except TypeError:
        raise ValueError(f"to() got {target!r}, which is neither a backend or device ("
                         f"{', '.join(sorted(ALIASES))}) nor a dtype "
                         f"({', '.join(dtypes.names())})") from None
