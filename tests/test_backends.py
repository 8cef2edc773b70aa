"""Backend switching, errors, dtypes, printing, random numbers, and the import rule."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lucid
from lucid import backends

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_unknown_backend_lists_choices():
    with pytest.raises(ValueError, match="numpy, mlx"):
        lucid.set_backend("jax")


def test_using_backend_restores_previous(backend):
    other = "numpy" if backend == "mlx" else backend
    with lucid.using_backend(other):
        assert lucid.get_backend() == other
    assert lucid.get_backend() == backend


def test_env_variable_selects_backend():
    code = "import lucid; print(lucid.get_backend()); print(lucid.zeros(1).backend)"
    env = {"LUCID_BACKEND": "numpy", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout.split()
    assert out == ["numpy", "numpy"]
    env["LUCID_BACKEND"] = "nope"
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         cwd=ROOT, check=False)
    assert res.returncode != 0 and "unknown backend 'nope'" in res.stderr


def test_missing_mlx_gives_install_command():
    code = ("import sys; sys.modules['mlx'] = None; sys.modules['mlx.core'] = None\n"
            "import lucid\ntry:\n    lucid.set_backend('mlx')\nexcept ImportError as e:\n"
            "    print(e)\nprint(lucid.get_backend())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         check=True, env={"PATH": "/usr/bin:/bin"}).stdout
    assert "pip install" in out and "mlx" in out
    assert out.strip().endswith("numpy")          # the failed switch changed nothing


def test_tensor_keeps_its_backend_and_to_moves_it(mlx_only):
    t = lucid.tensor([1.0, 2.0])
    assert t.backend == "mlx"
    n = t.to("numpy")
    assert n.backend == "numpy" and t.to("cpu").backend == "numpy"
    np.testing.assert_array_equal(n.numpy(), [1.0, 2.0])
    assert lucid.tensor([1.0], device="cpu").backend == "numpy"
    assert lucid.tensor([1.0], device="gpu").backend == "mlx"


def test_mixed_backends_raise_with_both_names(mlx_only):
    a = lucid.tensor([1.0])
    b = lucid.tensor([1.0], device="numpy")
    for op in (lambda: a + b, lambda: b * a, lambda: lucid.concatenate([a, b])):
        with pytest.raises(RuntimeError, match="backend") as e:
            op()
        assert "mlx" in str(e.value) and "numpy" in str(e.value)


def test_float64_on_mlx_is_refused_not_downcast(mlx_only):
    with pytest.raises(TypeError, match="float64"):
        lucid.tensor([1.0], dtype="float64")
    with pytest.raises(TypeError, match="float64"):
        lucid.zeros(2, dtype=lucid.float64)
    # float64 NumPy data without a dtype becomes float32, as for every float input
    assert lucid.tensor(np.array([1.0])).dtype == lucid.float32


def test_float64_works_on_numpy(numpy_backend):
    t = lucid.tensor([1.0], dtype=lucid.float64)
    assert t.dtype == lucid.float64 and t.numpy().dtype == np.float64


def test_default_dtypes(backend):
    assert lucid.tensor([1.0, 2.0]).dtype == lucid.float32
    assert lucid.tensor(np.arange(3.0)).dtype == lucid.float32
    assert lucid.tensor([1, 2]).dtype == lucid.int64
    assert lucid.tensor([True]).dtype == lucid.bool_
    assert lucid.arange(3).dtype == lucid.int64
    assert lucid.arange(0.0, 1.0, 0.25).shape == (4,)


def test_creation_functions(backend):
    assert lucid.zeros(2, 3).shape == (2, 3) and lucid.zeros((2, 3)).shape == (2, 3)
    assert lucid.ones(4).numpy().sum() == 4
    assert lucid.empty(1, 2).shape == (1, 2)
    np.testing.assert_array_equal(lucid.full((2,), 7.0).numpy(), [7.0, 7.0])
    np.testing.assert_array_equal(lucid.arange(1, 7, 2).numpy(), [1, 3, 5])
    x = lucid.tensor([[1.0, 2.0]])
    assert lucid.zeros_like(x).shape == (1, 2) and lucid.ones_like(x).numpy().sum() == 2
    np.testing.assert_array_equal(lucid.eye(2).numpy(), np.eye(2))
    t = lucid.Tensor([1.0, 2.0], requires_grad=True)
    assert t.requires_grad and t.shape == (2,) and t.ndim == 1


def test_item_tolist_numpy(backend):
    t = lucid.tensor([[1.5, 2.0]])
    assert t.tolist() == [[1.5, 2.0]]
    assert lucid.tensor(3.0).item() == 3.0
    with pytest.raises(ValueError, match="one element"):
        t.item()


def test_repr_like_pytorch(numpy_backend):
    assert repr(lucid.tensor([[1.0, 2.0]], requires_grad=True)) == \
        "Tensor([[1., 2.]], requires_grad=True)"
    assert repr(lucid.tensor([1, 2])) == "Tensor([1, 2])"
    assert "grad_fn=<Mul>" in repr(lucid.tensor([1.0], requires_grad=True) * 2)


def test_random_is_identical_across_backends():
    values = {}
    for name in backends.available():
        with lucid.using_backend(name):
            lucid.random.seed(42)
            values[name] = [lucid.random.randn(3, 2).numpy(), lucid.random.rand(4).numpy(),
                            lucid.random.uniform(-2, 3, (5,)).numpy(),
                            lucid.random.randint(0, 10, (6,)).numpy(),
                            lucid.random.permutation(7).numpy()]
    ref = values["numpy"]
    assert sorted(ref[4].tolist()) == list(range(7))
    assert ref[2].min() >= -2 and ref[2].max() < 3
    for name, vals in values.items():
        for a, b in zip(vals, ref):
            np.testing.assert_array_equal(a, b, err_msg=name)
    lucid.random.seed(42)
    again = lucid.random.randn(3, 2).numpy()
    np.testing.assert_array_equal(again, ref[0])


def test_random_argument_errors():
    with pytest.raises(ValueError, match="low < high"):
        lucid.random.randint(5, 5)
    with pytest.raises(TypeError, match="seed"):
        lucid.random.seed(1.5)


def test_only_backends_random_and_serialization_import_numpy_or_mlx():
    allowed = {"backends", "random.py", "serialization.py"}
    offenders = []
    for path in (ROOT / "lucid").rglob("*.py"):
        rel = path.relative_to(ROOT / "lucid")
        if rel.parts[0] in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{rel}: {n}" for n in names if n.split(".")[0] in ("numpy", "mlx")]
    assert offenders == []


# -- the NumPy where's bit-select path ---------------------------------------------------------

SPECIAL = np.array([0.0, -0.0, 1.5, -2.0, 1e-40, np.inf, -np.inf, np.nan])


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("case", ["arrays", "zero", "neg_zero", "scalar_a", "cond_row", "a_row",
                                  "b_col", "cond_col_zero"])
def test_numpy_where_bit_select_equals_np_where(dtype, case):
    """Bit for bit np.where's result (NaN payloads, signed zeros, infinities, subnormals),
    dtype and shape, on every broadcast form, and taken on each."""
    from lucid.backends import numpy_backend as nb
    from lucid.backends import numpy_select as S
    rng = np.random.default_rng(len(case))
    a = rng.choice(SPECIAL, (64, 80)).astype(dtype)
    b = rng.choice(SPECIAL, (64, 80)).astype(dtype)
    c = rng.random((64, 80)) > 0.5
    args = {"arrays": (c, a, b), "zero": (c, a, 0), "neg_zero": (c, a, -0.0),
            "scalar_a": (c, 3.0, b), "cond_row": (c[:1], a, b), "a_row": (c, a[:1], b),
            "b_col": (c, a, b[:, :1]), "cond_col_zero": (c[:, :1], a, 0.0)}[case]
    assert S.applies(*args) == np.dtype(dtype)
    got, want = nb.where(*args), np.where(*args)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got.view(np.uint8), np.ascontiguousarray(want).view(np.uint8))


def test_numpy_where_bit_select_declines():
    from lucid.backends import numpy_select as S
    big = np.ones((64, 80), np.float32)
    c = big > 0
    assert S.applies(c[:8, :8], big[:8, :8], 0) is None                # too small to pay
    assert S.applies(c, big, big.astype(np.float64)) is None            # two dtypes
    assert S.applies(c.astype(np.int8), big, 0) is None                 # cond not bool
    assert S.applies(c, big, True) is None                              # a bool operand
    assert S.applies(c, big.astype(np.int32), 0.5) is None              # would promote
    assert S.applies(c, c, 1) is None                                   # int with bools
    assert S.applies(c, big.astype(np.complex64), 0) is None            # not a real dtype
    assert S.applies(c, 1, 2) is None                                   # no array operand
    assert S.applies(c, big.astype(np.int8), 300) is None               # np.where wraps it
    assert S.applies(c, big.astype(np.uint8), -1) is None
    assert S.applies(c, big.astype(np.uint8), 255) == np.uint8


@pytest.mark.parametrize("dtype", ["int8", "int32", "int64", "uint8", "uint32", "uint64", "bool"])
@pytest.mark.parametrize("case", ["arrays", "scalar_b", "scalar_a", "zero_d", "cond_row", "b_col"])
def test_numpy_where_bit_select_integers_and_bools(dtype, case):
    """Integer and bool selects (max pooling's winner index) take the bit select too, bit for
    bit np.where's result, dtype and shape."""
    from lucid.backends import numpy_backend as nb
    from lucid.backends import numpy_select as S
    rng = np.random.default_rng(len(case) + len(dtype))
    info = np.iinfo(dtype) if dtype != "bool" else None
    if info is None:
        a, b = rng.random((64, 80)) > 0.5, rng.random((64, 80)) > 0.5
    else:
        a = rng.integers(info.min, info.max, (64, 80), dtype=dtype, endpoint=True)
        b = rng.integers(info.min, info.max, (64, 80), dtype=dtype, endpoint=True)
    c = rng.random((64, 80)) > 0.5
    if info is None and case in ("scalar_a", "scalar_b"):
        case = "zero_d"                          # a Python bool operand is declined (above)
    scalar = 0 if info is None else int(info.max) - 3
    args = {"arrays": (c, a, b), "scalar_b": (c, a, scalar), "scalar_a": (c, scalar, b),
            "zero_d": (c, a, np.array(b[0, 0])), "cond_row": (c[:1], a, b),
            "b_col": (c, a, b[:, :1])}[case]
    assert S.applies(*args) == np.dtype(dtype)
    got, want = nb.where(*args), np.where(*args)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


# -- numpy_reshape: the copy of a view with a short last axis --------------------------------

@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_numpy_reshape_short_last_axis_equals_np_reshape(data):
    """Any transposed view, any reshape of it: the values, shape and dtype of np.reshape, the
    short-axis copy taken where the view needs a copy and has a short last axis, and a reshape
    that can be a view still one."""
    from lucid.backends import numpy_backend as nb
    from lucid.backends import numpy_reshape as R
    dims = data.draw(st.lists(st.integers(1, 6), min_size=2, max_size=5))
    perm = data.draw(st.permutations(range(len(dims))))
    dtype = data.draw(st.sampled_from([np.float32, np.float64, np.int64, np.bool_]))
    base = np.arange(int(np.prod(dims))).reshape(dims).astype(dtype)
    x = base.transpose(perm)
    flat = data.draw(st.integers(0, x.ndim - 1))       # merge the last `flat + 1` axes
    shape = x.shape[:x.ndim - 1 - flat] + (-1,)
    calls = []
    real = R.reshape

    def spy(a, s):
        calls.append(a.shape)
        return real(a, s)

    with pytest.MonkeyPatch.context() as m:
        m.setattr(R, "MIN_SIZE", 1)
        m.setattr(R, "reshape", spy)
        got = nb.reshape(x, shape)
    want = np.reshape(x, shape)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    short = not x.flags.c_contiguous and x.shape[-1] <= R.SHORT
    assert bool(calls) == short
    if np.shares_memory(want, x):                      # NumPy made a view: so does the path
        assert np.shares_memory(got, x)


def test_numpy_reshape_interleave_takes_the_short_axis_copy(monkeypatch):
    """The 2x2 max pool's backward interleave: the path is taken at its real size."""
    from lucid.backends import numpy_backend as nb
    from lucid.backends import numpy_reshape as R
    stacked = np.random.default_rng(0).standard_normal((2, 2, 64, 32, 4, 4)).astype(np.float32)
    x = stacked.transpose(2, 3, 4, 0, 5, 1)
    assert R.applies(x)
    taken = []
    real = R.reshape
    monkeypatch.setattr(R, "reshape", lambda a, s: taken.append(1) or real(a, s))
    got = nb.reshape(x, (64, 32, 8, 8))
    assert taken and got.flags.c_contiguous
    np.testing.assert_array_equal(got, np.reshape(x, (64, 32, 8, 8)))
    assert not R.applies(np.ones((64, 32, 8, 8)))                       # contiguous
    assert not R.applies(np.ones((64, 32, 5, 8)).transpose(0, 1, 3, 2))  # a last axis of 5
    assert not R.applies(x[:2, :2])                                      # below MIN_SIZE
