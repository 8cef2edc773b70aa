"""Backend selection. A backend is a module implementing ``contract.Backend``; it is imported only
when first asked for, so the NumPy backend works where MLX cannot be installed."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import sys
from collections.abc import Iterator
from types import ModuleType

CHOICES = ("numpy", "mlx")
_loaded: dict[str, ModuleType] = {}
_current: str | None = None


def _check_name(name: object) -> str:
    if not isinstance(name, str):
        raise TypeError(f"backend name must be a str, got {type(name).__name__}")
    key = name.lower()
    if key not in CHOICES:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(CHOICES)}")
    return key


def _rosetta() -> bool:
    """Whether this process is an x86-64 build translated by Rosetta 2 on an Apple-Silicon Mac
    (macOS reports it in ``sysctl.proc_translated``; Intel Macs lack the key)."""
    try:
        out = subprocess.run(["sysctl", "-n", "sysctl.proc_translated"], capture_output=True,
                             text=True, timeout=5, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return out.strip() == "1"


# Darwin 23 is macOS 14 (Sonoma): MLX publishes wheels for macOS 14 and later since 0.30, and
# pyproject.toml installs it only there.
MIN_DARWIN, MIN_MACOS = 23, "14 (Sonoma)"


def _mlx_install_hint(system: str | None = None, machine: str | None = None,
                      release: str | None = None, translated: bool | None = None) -> str:
    """Why MLX is missing on this machine and what to do (arguments: for tests)."""
    system = sys.platform if system is None else system
    machine = platform.machine() if machine is None else machine
    if system == "darwin":
        if machine != "arm64":
            if _rosetta() if translated is None else translated:
                return ("this Python is an x86-64 build running under Rosetta on an "
                        "Apple-Silicon Mac, and MLX runs only in arm64 processes: install an "
                        "arm64 Python (python.org's universal2 installer, Homebrew in "
                        "/opt/homebrew, or conda's osx-arm64), check that `python -c \"import "
                        "platform; print(platform.machine())\"` prints arm64, then pip "
                        "install lucid again")
            return ("MLX runs only on Apple Silicon (arm64) Macs; this is an Intel Mac, so use "
                    "the numpy backend")
        release = platform.release() if release is None else release
        major = release.split(".")[0]
        if major.isdigit() and int(major) < MIN_DARWIN:
            return (f"MLX's wheels need macOS {MIN_MACOS} or later and this Mac runs Darwin "
                    f"{release} (older), so pip installed lucid without MLX; lucid runs on the "
                    "numpy backend here. Update macOS, then: pip install 'mlx>=0.32.1'")
        return "install it with: pip install 'mlx>=0.32.1'"
    return 'install it with: pip install "mlx[cpu]" (or "mlx[cuda]" for NVIDIA GPUs)'


def load(name: str) -> ModuleType:
    """The backend module for ``name``, imported on first use."""
    key = _check_name(name)
    if key not in _loaded:
        if key == "numpy":
            from lucid.backends import numpy_backend
            _loaded[key] = numpy_backend
        else:
            try:
                from lucid.backends import mlx_backend
            except ImportError as e:
                raise ImportError(f"the mlx backend needs MLX, which could not be imported "
                                  f"({e}); {_mlx_install_hint()}") from e
            _loaded[key] = mlx_backend
    return _loaded[key]


def current() -> ModuleType:
    """The active backend module (``LUCID_BACKEND`` or numpy until set_backend is called)."""
    global _current
    if _current is None:
        _current = _check_name(os.environ.get("LUCID_BACKEND", "numpy"))
    return load(_current)


def set_backend(name: str) -> None:
    """Make ``name`` ("numpy" or "mlx") the backend new tensors are created on."""
    global _current
    key = _check_name(name)
    load(key)                   # fail here, before switching, if it cannot load
    _current = key


def get_backend() -> str:
    """The name of the active backend."""
    return current().name


def available() -> list[str]:
    """Names of the backends that can be loaded on this machine."""
    out = []
    for n in CHOICES:
        try:
            load(n)
            out.append(n)
        except ImportError:
            pass
    return out


@contextlib.contextmanager
def using_backend(name: str) -> Iterator[None]:
    """Context manager: run the block with ``name`` active, then restore the previous backend."""
    previous = get_backend()
    set_backend(name)
    try:
        yield
    finally:
        set_backend(previous)


def format_array(host_array, prefix: str, extras: list[str]) -> str:
    """``Tensor([[1., 2.]], requires_grad=True)``: NumPy's layout under our own prefix."""
    import numpy as np

    body = np.array2string(host_array, separator=", ", prefix=prefix + "(")
    return f"{prefix}({', '.join([body] + extras)})"
