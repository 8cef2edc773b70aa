"""``lucid.selfcheck``: it passes here, it catches a wrong MLX conv kernel (the strided grouped
case Metal got wrong before MLX 0.32.0), and its grid follows the conv ranks lucid has."""

from __future__ import annotations

import subprocess
import sys

import pytest

import lucid
import lucid.nn.functional as F
from lucid import selfcheck

LINE = r"^\S+ +mlx:(cpu|gpu) +max_err=\S+ tol=\S+ (PASS|FAIL)"


@pytest.fixture(scope="module")
def quick_report():
    if "mlx" not in lucid.backends.available():
        pytest.skip("mlx not installed")
    return selfcheck.run(quick=True)


def test_selfcheck_passes_here(quick_report):
    import re
    report = quick_report
    assert report.failures == [], "\n".join(report.failures)
    names = {r.check for r in report.results}
    for must in ("conv2d_strided_grouped", "conv2d_depthwise_s2", "conv2d_transposed",
                 "conv2d_float16", "conv2d_bfloat16", "sum_2^20_and_per_channel",
                 "cumsum_and_backward",
                 "gather_scatter_add", "setitem_int64", "softmax_cross_entropy",
                 "batch_norm_train_stats", "compiled_train_step", "random_stream"):
        assert must in names
    assert all(re.match(LINE, r.line) for r in report.results)
    assert {r.device for r in report.results} >= {"mlx:cpu"}
    text = str(report)
    assert "MLX_ENABLE_TF32=0" in text and "MLX 0." in text and "chip:" in text
    assert "OS:" in text and f"lucid {lucid.__version__}" in text


def test_selfcheck_restores_backend_and_random_stream(mlx_only, monkeypatch):
    monkeypatch.setattr(selfcheck, "grid", lambda quick=False: selfcheck.other_checks()[-2:])
    lucid.random.seed(5)
    want = lucid.random.rand(3).numpy()
    lucid.random.seed(5)
    with lucid.using_backend("numpy"):
        report = selfcheck.run(devices=["cpu"])
        assert lucid.get_backend() == "numpy"
        assert [r.check for r in report.results] == ["compiled_train_step", "random_stream"]
    assert (lucid.random.rand(3).numpy() == want).all()


# each primitive's positional parameters after (input, weight), as MLX 0.32 orders them
POSITIONAL = {
    "conv_general": ("stride", "padding", "kernel_dilation", "input_dilation", "groups", "flip"),
    "conv1d": ("stride", "padding", "dilation", "groups"),
    "conv2d": ("stride", "padding", "dilation", "groups"),
    "conv3d": ("stride", "padding", "dilation", "groups"),
    "conv_transpose1d": ("stride", "padding", "dilation", "output_padding", "groups"),
    "conv_transpose2d": ("stride", "padding", "dilation", "output_padding", "groups"),
    "conv_transpose3d": ("stride", "padding", "dilation", "output_padding", "groups"),
}


def _perturb_strided_grouped(monkeypatch):
    """Make MLX's conv primitives wrong (x1.05) only for calls that are grouped and strided
    (stride or input dilation > 1): the dx of a strided grouped conv, Metal's bug before 0.32,
    whichever primitive lucid's conv calls."""
    import mlx.core as mx

    def many(v):
        return list(v) if isinstance(v, (list, tuple)) else [v]

    for name, names in POSITIONAL.items():
        real = getattr(mx, name, None)
        if real is None:
            continue

        def wrong(*args, _real=real, _names=names, **kw):
            out = _real(*args, **kw)
            given = dict(zip(_names, args[2:]), **kw)
            strided = any(s > 1 for s in many(given.get("stride", 1))) or any(
                d > 1 for d in many(given.get("input_dilation", 1)))
            return out * 1.05 if given.get("groups", 1) > 1 and strided else out
        monkeypatch.setattr(mx, name, wrong)


def test_a_wrong_strided_grouped_conv_kernel_fails(mlx_only, monkeypatch, capsys):
    _perturb_strided_grouped(monkeypatch)
    report = selfcheck.run(quick=True, devices=["cpu"])
    failed = {line.split()[0] for line in report.failures}
    assert "conv2d_strided_grouped" in failed and "conv2d_depthwise_s2" in failed, failed
    assert "conv2d_plain" not in failed and "random_stream" not in failed, failed
    assert selfcheck.main(["--quick", "--device", "cpu"]) == 1
    out = capsys.readouterr().out
    assert "conv2d_strided_grouped         mlx:cpu" in out and " FAIL" in out


def test_the_module_runs_and_exits_0(mlx_only):
    out = subprocess.run([sys.executable, "-m", "lucid.selfcheck", "--quick"],
                         capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines()[0].startswith("lucid selfcheck: lucid ")
    assert "all passed" in out.stdout.splitlines()[-1]


def test_grid_has_a_row_per_conv_rank(monkeypatch):
    names = {c.name for c in selfcheck.grid()}
    assert {"conv2d_plain", "conv2d_input_dilated", "conv2d_transposed"} <= names
    assert ("conv1d_plain" in names) == hasattr(F, "conv1d")

    def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        raise AssertionError("not run")
    monkeypatch.setattr(F, "conv1d", conv1d, raising=False)
    names = {c.name for c in selfcheck.grid()}
    assert {"conv1d_plain", "conv1d_strided_grouped", "conv1d_depthwise_s2"} <= names
    assert "conv1d_input_dilated" not in names          # this conv1d has no input_dilation
    assert "conv1d_transposed" in names if hasattr(F, "conv_transpose1d") else True


def test_without_mlx_the_report_fails_with_the_reason(monkeypatch):
    from lucid import backends

    def no_mlx(name):
        raise ImportError("the mlx backend needs MLX, which could not be imported")
    monkeypatch.setattr(backends, "load", no_mlx)
    report = selfcheck.run()
    assert len(report.failures) == 1 and "could not be imported" in report.failures[0]
