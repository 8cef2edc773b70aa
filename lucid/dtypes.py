"""lucid's dtype names. Backends map these names to their own types; no library types live here."""

from __future__ import annotations

from typing import Any, overload


class DType:
    """A dtype name shared by every backend (``lucid.float32`` and friends)."""

    __slots__ = ("is_floating", "name")

    def __init__(self, name: str, is_floating: bool) -> None:
        self.name = name
        self.is_floating = is_floating

    def __repr__(self) -> str:
        return f"lucid.{self.name}"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DType):
            return self.name == other.name
        if isinstance(other, str):
            return self.name == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.name)


float16 = DType("float16", True)
"""16-bit IEEE float (half)."""
float32 = DType("float32", True)
"""32-bit IEEE float, the default for float data."""
float64 = DType("float64", True)
"""64-bit IEEE float; NumPy backend only (MLX would downcast it, so lucid refuses it there)."""
int32 = DType("int32", False)
"""32-bit signed integer."""
int64 = DType("int64", False)
"""64-bit signed integer, the default for integer data."""
bool_ = DType("bool", False)
"""Boolean."""

_BY_NAME = {d.name: d for d in (float16, float32, float64, int32, int64, bool_)}
_ALIASES = {"bool_": "bool", "float": "float32", "int": "int64", "half": "float16",
            "double": "float64"}


@overload
def get(dtype: None) -> None: ...
@overload
def get(dtype: Any) -> DType: ...


def get(dtype: Any) -> DType | None:
    """Normalise a dtype argument (DType, its name, a library dtype, or None) to a DType;
    TypeError if unknown."""
    if dtype is None or isinstance(dtype, DType):
        return dtype
    if isinstance(dtype, str):
        name = _ALIASES.get(dtype, dtype)
        if name in _BY_NAME:
            return _BY_NAME[name]
    # Accept library dtype objects (np.float32, mx.float32, torch.float32) by their printed name.
    name = getattr(dtype, "__name__", None) or str(dtype).rsplit(".", 1)[-1]
    name = _ALIASES.get(name, name)
    if name in _BY_NAME:
        return _BY_NAME[name]
    raise TypeError(f"unknown dtype {dtype!r}; expected one of {sorted(_BY_NAME)}")


def by_name(name: str) -> DType:
    """The DType for a backend-reported dtype name."""
    return _BY_NAME[name]


def names() -> list[str]:
    """Every lucid dtype name."""
    return list(_BY_NAME)
