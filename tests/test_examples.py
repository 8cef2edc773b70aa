"""The examples, end to end in their quick modes on every installed backend: accuracy floors,
figures and checkpoint written, and the checkpoint reloads into a model that reproduces the test
accuracy. The manipulation-detection demo has its own file, tests/test_manipulation.py."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
sys.path.insert(0, EXAMPLES)

import digits
import eeg_finetune
import eeg_maxnorm
import manipulation_detection as md
from _common import predict


def _run(module, backend, out, *extra):
    result = module.main(["--backend", backend, "--quick", "--out", str(out), *extra])
    assert os.path.isfile(result["checkpoint"])
    for path in result["figures"]:
        assert os.path.getsize(path) > 1000, path
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n", path
    return result


def _reloaded_accuracy(module, result):
    model, meta = module.load_checkpoint(result["checkpoint"])
    acc = float((predict(model, result["x_test"]) == result["y_test"]).mean())
    assert meta["test_accuracy"] == pytest.approx(result["accuracy"])
    return model, acc


def test_digits_quick(backend, tmp_path):
    result = _run(digits, backend, tmp_path)
    assert result["accuracy"] >= 0.97
    assert _reloaded_accuracy(digits, result)[1] == result["accuracy"]


def test_eeg_maxnorm_quick(backend, tmp_path):
    result = _run(eeg_maxnorm, backend, tmp_path)
    assert result["accuracy"] >= 0.75
    assert result["norms"].max() <= eeg_maxnorm.MAX_NORM + 1e-5     # the bound holds ...
    assert (result["norms"] > eeg_maxnorm.MAX_NORM - 1e-4).any()     # ... and was reached
    assert result["classifier_norms"].max() <= eeg_maxnorm.CLASSIFIER_MAX_NORM + 1e-5
    assert (result["classifier_norms"] > eeg_maxnorm.CLASSIFIER_MAX_NORM - 1e-4).any()
    assert isinstance(eeg_maxnorm.build_model()[-1], eeg_maxnorm.nn.ConstrainedLinear)
    model, acc = _reloaded_accuracy(eeg_maxnorm, result)
    assert acc == result["accuracy"]
    np.testing.assert_allclose(eeg_maxnorm.spatial_norms(model), result["norms"], rtol=1e-6)


@pytest.fixture(scope="module")
def braindecode_checkpoint(tmp_path_factory):
    """The fine-tune example's first step, once: braindecode's EEGNet trained with torch."""
    if eeg_finetune.braindecode_models() is None:
        pytest.skip("torch and braindecode (the eeg-oracle extra) are not installed")
    path = str(tmp_path_factory.mktemp("bd") / "braindecode_eegnet.safetensors")
    acc = eeg_finetune.pretrain_with_braindecode(path, 800, 6, seed=0)
    assert acc >= 0.7
    return path


def test_eeg_finetune_quick(backend, tmp_path, braindecode_checkpoint):
    result = _run(eeg_finetune, backend, tmp_path, "--checkpoint", braindecode_checkpoint)
    assert result["logits_diff"] < 1e-5          # the loaded model is the torch model
    assert result["accuracy"] >= 0.75
    assert result["accuracy"] >= result["accuracy_before"] - 0.02
    _, acc = _reloaded_accuracy(eeg_finetune, result)
    assert acc == result["accuracy"]


def test_no_compile_matches_compiled(backend, tmp_path, capsys):
    """--no-compile runs the same step eagerly: the same losses per epoch (float32 rounding on
    MLX, where the compiled graph may fuse differently; identical on NumPy)."""
    compiled = digits.main(["--backend", backend, "--epochs", "2", "--out", str(tmp_path)])
    eager = digits.main(["--backend", backend, "--epochs", "2", "--no-compile",
                         "--out", str(tmp_path)])
    np.testing.assert_allclose(eager["history"]["loss"], compiled["history"]["loss"], rtol=1e-4)
    # MLX runs end with the allocator's peak (lucid.memory); NumPy has none to report
    assert ("peak MLX memory:" in capsys.readouterr().out) == (backend == "mlx")
    if backend == "numpy":
        assert eager["history"] == compiled["history"]


def test_default_backend_is_said(tmp_path, capsys, monkeypatch):
    """Without --backend the example picks the faster backend here and says which and why."""
    import _common
    name, why = _common.default_backend()
    assert name in ("numpy", "mlx") and why
    monkeypatch.setattr(_common, "default_backend", lambda: ("numpy", "a test's reason"))
    digits.main(["--epochs", "1", "--out", str(tmp_path)])
    first = capsys.readouterr().out.splitlines()[0]
    assert first == "backend numpy (the default here: a test's reason; --backend chooses)"


def test_examples_reject_bad_epochs(tmp_path):
    for module in (md, digits, eeg_maxnorm, eeg_finetune):
        with pytest.raises(SystemExit):
            module.main(["--backend", "numpy", "--epochs", "0", "--out", str(tmp_path)])
        with pytest.raises(SystemExit):
            module.main(["--backend", "numpy", "--threads", "0", "--out", str(tmp_path)])


def test_blas_threads_follow_the_example_default_and_the_flag(tmp_path, capsys):
    """Every example runs BLAS on one thread unless --threads sets another count (see
    _common.limit_blas_threads); example_parser(threads=None) leaves BLAS its own."""
    import _common
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads():                             # the BLAS that NumPy itself loaded
        return {i["num_threads"] for i in threadpool_info()
                if i["user_api"] == "blas" and "numpy" in i["filepath"]}

    with threadpool_limits(limits=None):          # restores this process's setting after
        digits.main(["--backend", "numpy", "--epochs", "1", "--threads", "2",
                     "--out", str(tmp_path)])
        assert "BLAS threads: 2 (--threads sets them)" in capsys.readouterr().out
        assert blas_threads() == {2}
        digits.main(["--backend", "numpy", "--epochs", "1", "--out", str(tmp_path)])
        assert "BLAS threads: 1 (--threads sets them)" in capsys.readouterr().out
        assert blas_threads() == {1}
        assert _common.example_parser("doc", str(tmp_path), "quick").parse_args([]).threads == 1
        own = _common.example_parser("doc", str(tmp_path), "quick", threads=None)
        assert own.parse_args([]).threads is None
        assert own.parse_args(["--threads", "3"]).threads == 3


@pytest.mark.filterwarnings("ignore::RuntimeWarning")          # float16 overflow, then backoff
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_digits_half_precision(tmp_path, precision):
    # one epoch on NumPy (bfloat16 there is ml_dtypes: a correctness run, not a speed one)
    result = digits.main(["--backend", "numpy", "--epochs", "1", "--precision", precision,
                          "--out", str(tmp_path)])
    assert result["accuracy"] >= 0.85
    model, _ = digits.load_checkpoint(result["checkpoint"])
    assert all(p.dtype.name == "float32" for p in model.parameters())   # float32 masters
