"""lucid's dtypes: the one table of dtype facts (name, size, which backend holds it, how it
promotes, whether it is a float, whether autocast may compute in it).

Every other file asks this table instead of keeping its own list: backends build their type maps
from ``supported(backend)``, Tensor promotes with ``promote``, autocast checks ``autocast_ok``.
No library types live here (the backends map names to their own types), so this module imports
nothing of lucid and any layer may use it."""

from __future__ import annotations

from typing import Any, overload


class DType:
    """A dtype shared by every backend (``lucid.float32`` and friends).

    ``itemsize``: bytes per element; ``kind``: ``"f"`` float, ``"i"`` signed integer, ``"b"``
    bool; ``is_floating``: ``kind == "f"``; ``autocast_ok``: a half-precision float that
    ``lucid.autocast`` may compute in; ``backends``: the backends that can hold it."""

    __slots__ = ("autocast_ok", "backends", "is_floating", "itemsize", "kind", "name")

    def __init__(self, name: str, kind: str, itemsize: int, backends: frozenset[str],
                 autocast_ok: bool = False) -> None:
        self.name, self.kind, self.itemsize = name, kind, itemsize
        self.is_floating = kind == "f"
        self.backends = backends
        self.autocast_ok = autocast_ok

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


_BOTH = frozenset({"numpy", "mlx"})

# The table. MLX has no float64 on the GPU and turns float64 input into float32 silently, so it
# is refused there; bfloat16 is native on MLX and comes from ml_dtypes on NumPy.
float16 = DType("float16", "f", 2, _BOTH, autocast_ok=True)
"""16-bit IEEE float (half)."""
bfloat16 = DType("bfloat16", "f", 2, _BOTH, autocast_ok=True)
"""16-bit brain float: float32's range with an 8-bit mantissa (NumPy through ml_dtypes)."""
float32 = DType("float32", "f", 4, _BOTH)
"""32-bit IEEE float, the default for float data."""
float64 = DType("float64", "f", 8, frozenset({"numpy"}))
"""64-bit IEEE float; NumPy backend only (MLX would downcast it, so lucid refuses it there)."""
int32 = DType("int32", "i", 4, _BOTH)
"""32-bit signed integer."""
int64 = DType("int64", "i", 8, _BOTH)
"""64-bit signed integer, the default for integer data."""
bool_ = DType("bool", "b", 1, _BOTH)
"""Boolean."""

_ALL = (bool_, int32, int64, float16, bfloat16, float32, float64)
_BY_NAME = {d.name: d for d in _ALL}
_ALIASES = {"bool_": "bool", "float": "float32", "int": "int64", "half": "float16",
            "double": "float64", "bf16": "bfloat16"}
# Promotion: bool < integers < floats; within a kind the wider wins (PyTorch's lattice).
_KIND_RANK = {"b": 0, "i": 1, "f": 2}


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
    # Accept library dtype objects (np.float32, mx.float32, torch.float32, ml_dtypes.bfloat16)
    # by their printed name.
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


def supported(backend: str) -> frozenset[str]:
    """The dtype names a backend (``"numpy"``, ``"mlx"``) can hold."""
    return frozenset(d.name for d in _ALL if backend in d.backends)


def is_floating(name: str) -> bool:
    """Whether the dtype called ``name`` is a floating-point type."""
    return _BY_NAME[name].is_floating


def is_half(name: str) -> bool:
    """Whether ``name`` is a 16-bit float (float16, bfloat16): the dtypes whose reductions and
    normalisation statistics lucid accumulates in float32."""
    return _BY_NAME[name].autocast_ok


def promote(a: str, b: str) -> str:
    """The dtype name two dtypes promote to: bool < int32 < int64 < float16, bfloat16 <
    float32 < float64; an integer with a float gives that float; float16 with bfloat16 gives
    float32 (neither holds the other), as in PyTorch."""
    if a == b:
        return a
    da, db = _BY_NAME[a], _BY_NAME[b]
    if da.kind != db.kind:
        return a if _KIND_RANK[da.kind] > _KIND_RANK[db.kind] else b
    if da.itemsize == db.itemsize:                 # float16 vs bfloat16
        return "float32"
    return a if da.itemsize > db.itemsize else b
