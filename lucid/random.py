"""Seeded random numbers: the same seed gives the same numbers on every backend, eagerly and
inside ``lucid.compile``.

The generator is counter-based: Philox-4x32-10 (Salmon et al., SC 2011; the generator of cuRAND,
JAX and PyTorch's CUDA backend) maps a 64-bit key (the seed) and a 128-bit counter to four
random 32-bit words, using only integer multiplies, shifts and xors. The stream's state is two
ints, the seed and the number of counter blocks used so far; each draw takes the next blocks.

- Eagerly, the words are computed on the host (NumPy) and the numbers placed on the requested
  backend, so ``seed(0); randn(3)`` is bit-identical on NumPy and MLX.
- Inside a ``lucid.compile``'d function the same words are computed by the traced backend from
  the stream position passed in as an input, so every call draws fresh numbers (nothing freezes
  into the trace) and the stream advances exactly as the eager run would. Uniform, bernoulli
  (dropout masks) and integer draws are then bit-identical to eager ones; normals match to
  float32 rounding (the backends' log/cos differ in the last bit). ``permutation`` and
  ``truncated_normal`` are host-only (they sort or loop) and refuse to run inside a trace.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lucid import backends, dtypes, tracing
from lucid.device import resolve
from lucid.tensor import Tensor
from lucid.tensor_methods import _shape_arg

_M0, _M1 = 0xD2511F53, 0xCD9E8D57          # Philox-4x32 multipliers
_W0, _W1 = 0x9E3779B9, 0xBB67AE85          # Weyl increments of the key
_ROUNDS = 10
_MASK64 = (1 << 64) - 1

_seed = 0
_counter = 0                                # Philox blocks (4 words each) used so far


def seed(n: int) -> None:
    """Restart the stream from seed ``n`` (an int in [0, 2**64)); every backend then draws the
    same sequence."""
    global _seed, _counter
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
        raise TypeError(f"seed must be an int, got {n!r}")
    if not 0 <= int(n) <= _MASK64:
        raise ValueError(f"seed must be in [0, 2**64), got {n}")
    _seed, _counter = int(n), 0


manual_seed = seed


def get_state() -> dict:
    """The stream's position, for ``set_state``."""
    return {"seed": _seed, "counter": _counter}


def set_state(state: dict) -> None:
    """Moves the stream back to a position ``get_state`` returned."""
    global _seed, _counter
    _seed, _counter = int(state["seed"]), int(state["counter"])


# -- the generator ---------------------------------------------------------------------------

def philox(be: Any, c0: Any, c1: Any, k0: Any, k1: Any, c2: Any = None,
           c3: Any = None) -> list[Any]:
    """Philox-4x32-10 on uint32 arrays: counter words (c0, c1, c2, c3) (the stream uses
    c2 = c3 = 0) and key (k0, k1) -> four uint32 arrays. The key words are Python ints, or
    uint32 arrays when traced. Written on the backend contract, so it runs on any backend and
    inside a trace."""
    def mulhilo(m: int, x: Any) -> tuple[Any, Any]:
        p = be.multiply(be.astype(x, "uint64"), be.asarray(m, "uint64"))
        return be.astype(be.right_shift(p, be.asarray(32, "uint64")), "uint32"), \
            be.astype(p, "uint32")

    def round_key(k: Any, w: int, r: int) -> Any:
        if isinstance(k, int):
            return be.asarray((k + w * r) & 0xFFFFFFFF, "uint32")
        return be.add(k, be.asarray((w * r) & 0xFFFFFFFF, "uint32"))

    zero = be.full(tuple(c0.shape), 0, "uint32")
    x = [c0, c1, zero if c2 is None else c2, zero if c3 is None else c3]
    for r in range(_ROUNDS):
        hi0, lo0 = mulhilo(_M0, x[0])
        hi1, lo1 = mulhilo(_M1, x[2])
        x = [be.bitwise_xor(be.bitwise_xor(hi1, x[1]), round_key(k0, _W0, r)), lo1,
             be.bitwise_xor(be.bitwise_xor(hi0, x[3]), round_key(k1, _W1, r)), lo0]
    return x


def _words(n_words: int) -> tuple[Any, Any]:
    """The next ``n_words`` random uint32 words of the stream, as (backend, array): on the host
    eagerly, or on the traced backend inside ``lucid.compile``."""
    global _counter
    blocks = -(-n_words // 4)
    trace = tracing.active()
    if trace is not None and trace.rng is not None:
        be = trace.be
        key, position = trace.rng
        ids = be.add(be.add(position, be.asarray(trace.drawn, "uint64")),
                     be.arange(0, blocks, 1, "uint64"))
        trace.drawn += blocks
        c0 = be.astype(ids, "uint32")
        c1 = be.astype(be.right_shift(ids, be.asarray(32, "uint64")), "uint32")
        k0 = be.getitem(key, 0)
        k1 = be.getitem(key, 1)
    else:
        be = backends.load("numpy")
        ids = np.arange(_counter, _counter + blocks, dtype=np.uint64)
        _counter += blocks
        c0, c1 = ids.astype(np.uint32), (ids >> np.uint64(32)).astype(np.uint32)
        k0, k1 = _seed & 0xFFFFFFFF, _seed >> 32
    w = philox(be, c0, c1, k0, k1)
    flat = be.reshape(be.transpose(be.concatenate([be.reshape(v, (1, blocks)) for v in w], 0),
                                   (1, 0)), (4 * blocks,))
    return be, be.getitem(flat, slice(0, n_words))


_key_arrays: dict[tuple[str, int], Any] = {}


def stream_arrays(be: Any) -> tuple[Any, Any]:
    """The stream's key and position as backend arrays: what ``lucid.compile`` passes into a
    trace (see ``_words``). The key array is made once per seed and backend (every compiled
    call asks for it)."""
    key = _key_arrays.get((be.name, _seed))
    if key is None:
        key = be.asarray(np.array([_seed & 0xFFFFFFFF, _seed >> 32], dtype=np.uint32), "uint32")
        _key_arrays.clear()
        _key_arrays[(be.name, _seed)] = key
    # a Python int takes the backend's scalar path (no NumPy round trip); MLX takes ints
    # only below 2**63
    pos = int(_counter) if _counter < 2 ** 63 else np.uint64(_counter)
    return key, be.asarray(pos, "uint64")


def advance(blocks: int) -> None:
    """Move the stream on by what a compiled call drew."""
    global _counter
    _counter += blocks


def _unit(n: int, dtype: str) -> tuple[Any, Any]:
    """n uniforms in [0, 1): the top 24 bits of a word times 2**-24 (exact in float32), or 53
    bits of two words for float64."""
    if dtype == "float64":
        be, w = _words(2 * n)
        w = be.reshape(be.astype(w, "uint64"), (n, 2))
        hi = be.right_shift(be.getitem(w, (slice(None), 0)), be.asarray(5, "uint64"))
        lo = be.right_shift(be.getitem(w, (slice(None), 1)), be.asarray(6, "uint64"))
        u = be.add(be.multiply(be.astype(hi, "float64"), 67108864.0), be.astype(lo, "float64"))
        return be, be.multiply(u, 2.0 ** -53)
    be, w = _words(n)
    top = be.astype(be.right_shift(w, be.asarray(8, "uint32")), "float32")
    return be, be.multiply(top, be.asarray(2.0 ** -24, "float32"))


def _float_name(dtype: Any) -> str:
    dt = dtypes.get(dtype) or dtypes.float32
    if not dt.is_floating:
        raise TypeError(f"this draw gives floating-point numbers; dtype {dt} is not floating")
    return dt.name


def _place(be: Any, arr: Any, shape: tuple[int, ...], dtype: str, device: Any,
           requires_grad: bool) -> Tensor:
    """A Tensor of ``shape`` and ``dtype`` on ``device`` from an array drawn on ``be`` (the host
    eagerly; the traced backend inside a compiled function)."""
    arr = be.astype(be.reshape(arr, shape), dtype)
    target = resolve(device)
    if target is not be:
        if be.lazy:
            raise RuntimeError(f"a random draw inside lucid.compile stays on the traced "
                               f"backend {be.name!r}; it cannot be placed on {target.name!r}")
        t = Tensor._wrap(target.asarray(arr, dtype), target)
        t._ready = True                       # made from host values
    else:
        t = Tensor._wrap(arr, be)
    return t.requires_grad_(True) if requires_grad else t


def _size(size: Any) -> tuple[int, ...]:
    return (size,) if isinstance(size, int) else _shape_arg((size,) if not isinstance(
        size, (tuple, list)) else tuple(size))


def _numel(shape: tuple[int, ...]) -> int:
    for s in shape:
        if s < 0:
            raise ValueError(f"negative dimension {s} in shape {shape}")
    return math.prod(shape)


def rand(*shape: Any, dtype: Any = None, device: Any = None,
         requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1)."""
    return uniform(0.0, 1.0, _shape_arg(shape), dtype, device, requires_grad)


def uniform(low: float = 0.0, high: float = 1.0, size: Any = (), dtype: Any = None,
            device: Any = None, requires_grad: bool = False) -> Tensor:
    """Uniform samples in [low, high)."""
    if high < low:
        raise ValueError(f"uniform needs low <= high, got low={low}, high={high}")
    shape, name = _size(size), _float_name(dtype)
    calc = "float64" if name == "float64" else "float32"
    be, u = _unit(_numel(shape), calc)
    if (low, high) != (0.0, 1.0):
        u = be.add(be.multiply(u, be.asarray(high - low, calc)), be.asarray(low, calc))
    return _place(be, u, shape, name, device, requires_grad)


def randn(*shape: Any, dtype: Any = None, device: Any = None,
          requires_grad: bool = False) -> Tensor:
    """Standard normal samples of the given shape."""
    return normal(0.0, 1.0, _shape_arg(shape), dtype, device, requires_grad)


def normal(mean: float = 0.0, std: float = 1.0, size: Any = (), dtype: Any = None,
           device: Any = None, requires_grad: bool = False) -> Tensor:
    """Normal(mean, std) samples by the Box-Muller transform of pairs of uniforms."""
    if std < 0:
        raise ValueError(f"normal needs std >= 0, got {std}")
    shape, name = _size(size), _float_name(dtype)
    calc = "float64" if name == "float64" else "float32"
    n = _numel(shape)
    half = -(-n // 2)
    be, u = _unit(2 * half, calc)
    u = be.reshape(u, (2, half))
    one = be.asarray(1.0, calc)
    u1 = be.subtract(one, be.getitem(u, 0))                  # (0, 1]: log stays finite
    theta = be.multiply(be.getitem(u, 1), be.asarray(2 * math.pi, calc))
    r = be.sqrt(be.multiply(be.log(u1), be.asarray(-2.0, calc)))
    z = be.concatenate([be.multiply(r, be.cos(theta)), be.multiply(r, be.sin(theta))], 0)
    z = be.getitem(z, slice(0, n))
    if (mean, std) != (0.0, 1.0):
        z = be.add(be.multiply(z, be.asarray(std, calc)), be.asarray(mean, calc))
    return _place(be, z, shape, name, device, requires_grad)


def randint(low: int, high: int | None = None, size: Any = (), dtype: Any = None,
            device: Any = None) -> Tensor:
    """Integers in [low, high) (or [0, low) when high is omitted), int64 by default."""
    if high is None:
        low, high = 0, low
    if high <= low:
        raise ValueError(f"randint needs low < high, got low={low}, high={high}")
    if high - low > 2 ** 32:
        raise ValueError(f"randint's range high - low must be at most 2**32, got {high - low}")
    shape = _size(size)
    be, w = _words(_numel(shape))
    # Lemire's multiply-shift: floor(word * range / 2**32) is in [0, range)
    scaled = be.right_shift(be.multiply(be.astype(w, "uint64"), be.asarray(high - low, "uint64")),
                            be.asarray(32, "uint64"))
    out = be.add(be.astype(scaled, "int64"), be.asarray(low, "int64"))
    return _place(be, out, shape, (dtypes.get(dtype) or dtypes.int64).name, device, False)


def permutation(n: int, device: Any = None) -> Tensor:
    """A random ordering of 0..n-1 (int64): the order of n random words (host only)."""
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
        raise ValueError(f"permutation needs a non-negative int, got {n!r}")
    tracing.forbid_host_read("lucid.random.permutation (it sorts on the host)")
    _, w = _words(int(n))
    order = np.argsort(w, kind="stable").astype(np.int64)
    return _place(backends.load("numpy"), order, (int(n),), "int64", device, False)


def bernoulli_mask(shape: Any, p_keep: float, device: Any = None, dtype: Any = None) -> Tensor:
    """A mask of ones with probability p_keep, else zeros (dropout's), float32 by default."""
    shape = _shape_arg((shape,)) if not isinstance(shape, tuple) else shape
    be, u = _unit(_numel(shape), "float32")
    keep = be.astype(be.greater(be.asarray(p_keep, "float32"), u), "float32")
    return _place(be, keep, shape, (dtypes.get(dtype) or dtypes.float32).name, device, False)


def truncated_normal(mean: float, std: float, low: float, high: float, size: Any,
                     dtype: Any = None, device: Any = None) -> Tensor:
    """Normal(mean, std) samples redrawn until they fall in [low, high] (host only)."""
    if not low < high:
        raise ValueError(f"truncated_normal needs low < high, got {low}, {high}")
    tracing.forbid_host_read("lucid.random.truncated_normal (it redraws on the host)")
    shape = _size(size)
    name = _float_name(dtype)
    out = normal(mean, std, shape, "float64" if name == "float64" else "float32",
                 device="numpy").numpy().astype(np.float64)
    bad = (out < low) | (out > high)
    while bad.any():
        out[bad] = normal(mean, std, (int(bad.sum()),), device="numpy").numpy()
        bad = (out < low) | (out > high)
    return _place(backends.load("numpy"), out, shape, name, device, False)
