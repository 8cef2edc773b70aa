"""The manipulation-detection demo: the five-class quick run (accuracy floor, figures, checkpoint
reload, the constraint held), the ablation's table and figure, training on a folder of one's own
photos (split by image, bad files skipped and named, every error before training), ``predict``
(per-image lines, heat maps of the image's size, wrong checkpoints refused), and the data
(split by source image, all classes, seeded, flat places skipped, the manipulations).

The five-class floor runs on NumPy (the demo's target backend on Linux); MLX-cpu, several times
slower here, gets a one-epoch smoke of the same path."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
sys.path.insert(0, EXAMPLES)

import manipulation_data as mdata
import manipulation_detection as md
from _common import predict

import lucid
from lucid import backends

PNG = b"\x89PNG\r\n\x1a\n"


def _is_png(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(8) == PNG


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One five-class --quick run on NumPy, shared by the tests that need a trained model."""
    out = tmp_path_factory.mktemp("quick")
    import io
    from contextlib import redirect_stdout

    from threadpoolctl import threadpool_limits
    buf = io.StringIO()
    # (the examples pin BLAS to one thread; the context gives this process its own count back)
    with lucid.using_backend("numpy"), redirect_stdout(buf), threadpool_limits(limits=None):
        result = md.main(["--backend", "numpy", "--quick", "--out", str(out)])
    result["stdout"] = buf.getvalue()
    return result


def test_quick_five_class_floor_figures_and_reload(quick_run):
    result = quick_run
    assert result["classes"] == mdata.CLASSES["all"]
    assert result["accuracy"] >= 0.75                       # the issue's --quick floor
    assert os.path.isfile(result["checkpoint"])
    assert sorted(os.path.basename(p) for p in result["figures"]) == [
        "confusion.png", "curves.png", "filters.png"]
    for path in result["figures"]:
        assert os.path.getsize(path) > 1000 and _is_png(path), path
    out = result["stdout"]
    assert out.rstrip().splitlines()[-1] == f"test accuracy: {result['accuracy']:.3f}"
    assert "per-class test accuracy" in out and "per-image test accuracy" in out
    assert "BLAS threads: 1 (--threads sets them)" in out      # the examples' default
    with lucid.using_backend("numpy"):
        model, meta = md.load_checkpoint(result["checkpoint"])
        acc = float((predict(model, result["x_test"]) == result["y_test"]).mean())
    assert acc == result["accuracy"] and meta["test_accuracy"] == pytest.approx(acc)
    assert meta["architecture"] == md.ARCH and meta["patch_size"] == md.PATCH
    # the kernel the forward uses keeps fixed_center; with enforce="forward" the raw
    # parameter's centre gets no gradient and keeps its random initial value
    w = model[0].constrained_weight().detach().numpy().astype(np.float64)
    assert np.abs(model[0].weight.numpy()[:, :, 2, 2] + 1.0).max() > 1e-3
    np.testing.assert_allclose(w[:, :, 2, 2], -1.0, atol=1e-6)
    np.testing.assert_allclose(w.sum(axis=(2, 3)) + 1.0, 1.0, atol=1e-5)


@pytest.mark.skipif("mlx" not in backends.available(), reason="mlx not installed")
def test_quick_smoke_on_mlx(mlx_only, tmp_path):
    result = md.main(["--backend", "mlx", "--quick", "--epochs", "1", "--patches-per-image", "10",
                      "--out", str(tmp_path)])
    assert result["accuracy"] > 0.3                          # better than chance (0.2)
    model, _ = md.load_checkpoint(result["checkpoint"])
    assert float((predict(model, result["x_test"]) == result["y_test"]).mean()) == \
        pytest.approx(result["accuracy"], abs=2e-3)


def test_build_model_contract():
    """The benchmark imports build_model(first_layer, n_classes, size) and PATCH."""
    with lucid.using_backend("numpy"):
        for layer in md.FIRST_LAYERS:
            model = md.build_model(layer, 5, md.PATCH)
            out = model(lucid.tensor(np.zeros((2, 1, md.PATCH, md.PATCH), np.float32)))
            assert out.shape == (2, 5)
        with pytest.raises(ValueError, match="multiple of 8"):
            md.build_model("constrained", 5, 50)
        with pytest.raises(ValueError, match="first-layer"):
            md.build_model("sobel", 5, md.PATCH)


def test_build_mislnet_arms():
    """--model mislnet: lucid.models.MISLnet at 128×128; the plain arm swaps only the
    constrained layer for an unconstrained conv of the same shape; there is no 'none' arm."""
    from lucid.models import MISLnet
    with lucid.using_backend("numpy"):
        con, plain = (md.build_mislnet(layer, 5) for layer in md.MISLNET_FIRST_LAYERS)
        assert isinstance(con, MISLnet) and isinstance(plain, MISLnet)
        assert isinstance(con.constrained, lucid.nn.ConstrainedConv2d)
        assert type(plain.constrained) is lucid.nn.Conv2d and plain.constrained.bias is None
        assert plain.constrained.weight.shape == con.constrained.weight.shape == (3, 1, 5, 5)
        assert list(dict(plain.named_parameters())) == list(dict(con.named_parameters()))
        x = lucid.tensor(np.zeros((2, 1, 128, 128), np.float32))
        assert plain(x).shape == con(x).shape == (2, 5)
        with pytest.raises(ValueError, match="constrained or plain.*'none'"):
            md.build_mislnet("none", 5)


def test_mislnet_first_layer_none_is_refused(capsys):
    with pytest.raises(SystemExit):
        md.main(["--backend", "numpy", "--model", "mislnet", "--first-layer", "none"])
    assert "--model mislnet takes --first-layer constrained or plain" in capsys.readouterr().err


def test_mislnet_run_trains_with_sgd_holds_the_constraint_and_reloads(numpy_backend, tmp_path,
                                                                       monkeypatch):
    """A tiny --model mislnet run: the paper's SGD recipe (momentum 0.95, weight decay 5e-4,
    lr 1e-3 halved every quarter of the run), the post-step constraint held after training,
    and the checkpoint rebuilt as a MISLnet whose predictions equal the run's."""
    made = []
    real = md.optimiser

    def spy(model, recipe, epochs, lr=3e-3):
        made.append(real(model, recipe, epochs, lr))
        return made[-1]

    monkeypatch.setattr(md, "optimiser", spy)
    res = md.main(["--backend", "numpy", "--model", "mislnet", "--task", "binary", "--epochs",
                   "2", "--patches-per-image", "1", "--out", str(tmp_path)])
    opt, sched = made[0]
    assert type(opt).__name__ == "SGD" and type(sched).__name__ == "StepLR"
    group = opt.param_groups[0]
    assert (group["momentum"], group["weight_decay"]) == (0.95, 5e-4)
    assert group["lr"] == pytest.approx(1e-3 * 0.5 ** 2)          # halved after each epoch
    model, meta = md.load_checkpoint(res["checkpoint"])
    assert meta["architecture"] == md.MISLNET_ARCH and meta["patch_size"] == 128
    w = model.constrained.weight.numpy()[:, 0]
    np.testing.assert_allclose(w[:, 2, 2], -1.0, atol=1e-6)
    np.testing.assert_allclose(w.sum(axis=(1, 2)) + 1.0, 1.0, atol=1e-5)   # neighbours sum 1
    assert float((predict(model, res["x_test"]) == res["y_test"]).mean()) == \
        pytest.approx(res["accuracy"], abs=1e-9)


def test_mislnet_ablation_has_two_arms(numpy_backend, tmp_path, monkeypatch):
    """--model mislnet --ablation compares the constrained and plain first layers only, on
    128×128 patches, and says so in ablation.json (training replaced by a stub)."""
    seen = []

    def fake_run(args, data, layer, seed, epochs):
        seen.append((layer, seed, data["x_train"].shape[-1]))
        acc = 0.5 if layer == "plain" else 0.6
        return {"accuracy": acc, "per_class": {c: acc for c in data["classes"]},
                "per_image": {}, "wall_s": 1.0, "cpu_s": 1.0}

    monkeypatch.setattr(md, "run_once", fake_run)
    res = md.main(["--backend", "numpy", "--model", "mislnet", "--ablation", "--seeds", "2",
                   "--task", "binary", "--patches-per-image", "1", "--out", str(tmp_path)])
    assert seen == [("constrained", 0, 128), ("plain", 0, 128), ("constrained", 1, 128),
                    ("plain", 1, 128)]
    with open(res["json"]) as f:
        saved = json.load(f)
    assert (saved["model"], saved["recipe"], saved["patch_size"]) == ("mislnet", "sgd", 128)
    assert set(saved["results"]) == {"constrained", "plain"}
    assert saved["results"]["constrained"]["mean"] == pytest.approx(0.6)


def test_ablation_jobs_run_in_workers_and_equal_the_serial_runs(numpy_backend, tmp_path):
    """--jobs 2: the arms train in two spawned one-thread workers, each logging to its own
    file, and give the accuracies the same runs give in this process."""
    base = ["--backend", "numpy", "--ablation", "--seeds", "1", "--task", "binary", "--epochs",
            "1", "--patches-per-image", "2", "--no-compile"]
    env = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    par = md.main(base + ["--jobs", "2", "--out", str(tmp_path / "par")])
    assert {k: os.environ.get(k) for k in env} == env           # the pins were restored
    ser = md.main(base + ["--out", str(tmp_path / "ser")])
    logs = sorted(os.listdir(tmp_path / "par" / "ablation_logs"))
    assert logs == [f"seed0_{layer}.log" for layer in sorted(md.FIRST_LAYERS)]
    with open(tmp_path / "par" / "ablation_logs" / "seed0_plain.log") as f:
        assert "training took" in f.read()
    for layer in md.FIRST_LAYERS:
        assert par["summary"][layer]["accuracy"] == pytest.approx(
            ser["summary"][layer]["accuracy"], abs=1e-9)


def test_ablation_quick_writes_table_and_figure(numpy_backend, tmp_path, capsys):
    res = md.main(["--backend", "numpy", "--ablation", "--quick", "--seeds", "2", "--epochs", "1",
                   "--patches-per-image", "4", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "ablation over seeds [0, 1]" in out
    for layer in md.FIRST_LAYERS:
        assert f"| {layer} | **" in out
    assert os.path.getsize(res["figure"]) > 1000 and _is_png(res["figure"])
    with open(res["json"]) as f:
        saved = json.load(f)
    assert saved["seeds"] == [0, 1] and set(saved["results"]) == set(md.FIRST_LAYERS)
    for s in saved["results"].values():
        assert len(s["accuracy"]) == 2 and s["std"] >= 0
        assert set(s["per_class_mean"]) == set(mdata.CLASSES["all"])


# -- your own photos ---------------------------------------------------------------------------

def _photo(rng: np.random.Generator, shape=(128, 128)) -> np.ndarray:
    """A textured 8-bit 'photo' with sensor-like noise (σ 3)."""
    from scipy import ndimage
    scene = ndimage.gaussian_filter(rng.normal(0, 1, shape), 3)
    scene = 128 + 60 * scene / scene.std()
    return np.clip(np.round(scene + rng.normal(0, 3, shape)), 0, 255).astype(np.uint8)


@pytest.fixture
def photo_folder(tmp_path):
    """Six usable photos (PNG, JPEG quality 100, TIFF, RGB and grey, one in a subfolder), a
    corrupt PNG, a tiny image, a flat one and a text file."""
    from PIL import Image
    rng = np.random.default_rng(0)
    root = tmp_path / "photos"
    (root / "trip").mkdir(parents=True)
    for i in range(3):
        Image.fromarray(_photo(rng)).save(root / f"grey_{i}.png")
    Image.fromarray(np.stack([_photo(rng)] * 3, axis=2)).save(root / "colour.tif")
    Image.fromarray(_photo(rng)).save(root / "trip" / "beach.jpg", quality=100)
    Image.fromarray(_photo(rng)).save(root / "trip" / "hill.png")
    (root / "broken.png").write_bytes(PNG + b"not really an image")
    Image.fromarray(_photo(rng, (40, 40))).save(root / "tiny.png")
    Image.fromarray(np.full((128, 128), 90, np.uint8)).save(root / "flat.png")
    (root / "notes.txt").write_text("not an image")
    return root


def test_load_folder_skips_and_names_bad_files(photo_folder):
    logged = []
    images, skipped = mdata.load_folder(str(photo_folder), md.PATCH, log=logged.append)
    assert sorted(images) == ["colour.tif", "grey_0.png", "grey_1.png", "grey_2.png",
                              os.path.join("trip", "beach.jpg"), os.path.join("trip", "hill.png")]
    why = {os.path.basename(p): w for p, w in skipped}
    assert set(why) == {"broken.png", "tiny.png", "flat.png"}
    assert why["broken.png"].startswith("unreadable") and why["tiny.png"].startswith("too small")
    assert why["flat.png"].startswith("too flat")
    assert all(any(name in line for line in logged) for name in why)
    for im in images.values():
        assert im.ndim == 2 and im.dtype == np.float64


def test_train_on_image_folder_splits_by_image(numpy_backend, photo_folder, tmp_path, capsys):
    res = md.main(["--backend", "numpy", "--images", str(photo_folder), "--quick", "--epochs", "1",
                   "--patches-per-image", "4", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "skipping" in out and "broken.png" in out and "tiny.png" in out
    train = {n.split("@")[0] for n in res["train_names"]}
    assert train.isdisjoint(res["test_names"]) and res["test_names"]
    assert len(train) + len(res["test_names"]) == 6
    assert os.path.isfile(res["checkpoint"])


def test_separate_test_folder(numpy_backend, photo_folder, tmp_path):
    from PIL import Image
    test_dir = tmp_path / "held_out"
    test_dir.mkdir()
    Image.fromarray(_photo(np.random.default_rng(5))).save(test_dir / "new.png")
    res = md.main(["--backend", "numpy", "--images", str(photo_folder), "--test-images",
                   str(test_dir), "--epochs", "1", "--patches-per-image", "3",
                   "--out", str(tmp_path / "run")])
    assert res["test_names"] == ["test:new.png"]
    assert len({n.split("@")[0] for n in res["train_names"]}) == 6


def _no_training(monkeypatch):
    def fail(*a, **k):
        raise AssertionError("training started before the error")
    monkeypatch.setattr(md, "train", fail)
    monkeypatch.setattr(md, "make_dataset", fail)


def test_image_folder_errors_before_training(numpy_backend, tmp_path, monkeypatch):
    from PIL import Image
    _no_training(monkeypatch)
    run = ["--backend", "numpy", "--out", str(tmp_path / "run"), "--images"]
    with pytest.raises(FileNotFoundError, match="no such image folder.*nowhere"):
        md.main([*run, str(tmp_path / "nowhere")])
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("hi")
    with pytest.raises(ValueError, match="no image files"):
        md.main([*run, str(empty)])
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.png").write_bytes(b"garbage")
    (bad / "b.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(ValueError, match="no readable image"):
        md.main([*run, str(bad)])
    few = tmp_path / "few"
    few.mkdir()
    Image.fromarray(_photo(np.random.default_rng(1))).save(few / "only.png")
    Image.fromarray(_photo(np.random.default_rng(2), (30, 200))).save(few / "thin.png")
    Image.fromarray(np.full((200, 200), 7, np.uint8)).save(few / "flat.png")
    with pytest.raises(ValueError, match="too few usable images.*1 of 3, need at least 2"):
        md.main([*run, str(few)])
    with pytest.raises(ValueError, match="--test-images needs --images"):
        md.main(["--backend", "numpy", "--out", str(tmp_path), "--test-images", str(few)])
    with pytest.raises(SystemExit):
        md.main(["--backend", "numpy", "--out", str(tmp_path), "--seeds", "0"])


# -- predict -----------------------------------------------------------------------------------

def test_predict_prints_per_image_and_writes_heat_maps(quick_run, tmp_path, capsys):
    from PIL import Image
    from skimage.data import camera
    img = camera()[100:340, 60:420]                           # 360×240, not a multiple of 48
    a, b = tmp_path / "camera.png", tmp_path / "camera_median.png"
    Image.fromarray(img).save(a)
    from scipy import ndimage
    Image.fromarray(ndimage.median_filter(img, 5)).save(b)
    with lucid.using_backend("numpy"):
        res = md.main(["predict", "--checkpoint", quick_run["checkpoint"],
                       "--out", str(tmp_path / "maps"), str(a), str(b)])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith(str(a)) and lines[1].startswith(str(b))
    assert res["results"][1]["class"] == "median"            # a clear case even for --quick
    for r in res["results"]:
        assert r["class"] in mdata.CLASSES["all"] and 0 < r["probability"] <= 1
        assert f"{r['class']} (p = {r['probability']:.2f}" in lines[res["results"].index(r)]
        with Image.open(r["heatmap"]) as h:
            assert h.size == (360, 240) and h.mode == "RGB"


def test_predict_export_writes_files_that_run_without_lucid(quick_run, tmp_path, capsys):
    """``predict --export DIR`` (no images): the .mlxfn (any batch) and the .onnx give the
    trained model's eval logits; the JSON names the classes and the patch preparation."""
    from manipulation_predict import load_detector
    out = tmp_path / "deploy"
    with lucid.using_backend("numpy"):
        res = md.main(["predict", "--checkpoint", quick_run["checkpoint"], "--export", str(out)])
        model, meta = load_detector(quick_run["checkpoint"])
        size = int(meta["patch_size"])
        x = mdata.normalise(np.random.default_rng(5).uniform(0, 255, (3, size, size)))
        ref = model(lucid.tensor(x)).numpy()
    assert res["results"] == [] and set(res["exported"]) <= {"mlxfn", "onnx", "json"}
    with open(out / "manipulation_detector.json") as f:
        info = json.load(f)
    assert info["classes"] == meta["classes"] and info["patch_size"] == size
    assert info["scale"] == mdata.SCALE
    if "mlx" in backends.available():
        import mlx.core as mx
        fn = mx.import_function(str(out / "manipulation_detector.mlxfn"))
        np.testing.assert_allclose(np.array(fn(mx.array(x))[0]), ref, rtol=1e-4, atol=1e-4)
    try:
        import onnxruntime
    except ImportError:
        return
    session = onnxruntime.InferenceSession(str(out / "manipulation_detector.onnx"))
    np.testing.assert_allclose(session.run(None, {"input_0": x})[0], ref, rtol=1e-4, atol=1e-4)
    assert "exported onnx" in capsys.readouterr().out


def test_predict_refuses_wrong_checkpoints(quick_run, tmp_path):
    from manipulation_predict import load_detector
    with lucid.using_backend("numpy"):
        good = lucid.load(quick_run["checkpoint"])
        other = tmp_path / "digits.safetensors"               # another example's checkpoint
        lucid.save({"model": good["model"], "test_accuracy": 0.9, "hidden": 64}, str(other))
        with pytest.raises(ValueError, match="not a manipulation-detection checkpoint"):
            load_detector(str(other))
        old = tmp_path / "old.safetensors"                    # this demo, older layout
        lucid.save({**good, "architecture": "bayar-mislnet-v1"}, str(old))
        with pytest.raises(ValueError, match="architecture 'bayar-mislnet-v1'.*retrain"):
            md.main(["predict", "--checkpoint", str(old), str(tmp_path / "x.png")])
        bent = tmp_path / "bent.safetensors"                  # right labels, wrong weights
        lucid.save({**good, "classes": ["original", "median"]}, str(bent))
        with pytest.raises(ValueError, match="does not fit"):
            load_detector(str(bent))
        with pytest.raises(FileNotFoundError, match="no such image"):
            md.main(["predict", "--checkpoint", quick_run["checkpoint"],
                     str(tmp_path / "missing.png")])


# -- data --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_dataset():
    return md.make_dataset("all", per_image=4, size=md.PATCH, seed=3)


def test_split_is_by_source_image(small_dataset):
    d = small_dataset
    train_sources = {n.split("@")[0] for n in d["train_names"]}
    assert train_sources.isdisjoint(d["test_names"])
    assert len(d["test_names"]) >= 3 and len(train_sources) >= 8
    # the extra photos train; the test set is the split of the scikit-image/-learn photos alone
    assert set(mdata.TRAIN_ONLY) <= train_sources
    assert d["test_names"] == md.split_sources(list(md.source_images()))[1]
    assert set(np.unique(d["src_test"])) == set(range(len(d["test_names"])))
    assert set(np.unique(d["src_train"])) == set(range(len(d["train_names"])))


def test_every_class_in_train_and_test(small_dataset):
    d = small_dataset
    k = len(md.CLASSES["all"])
    for y in (d["y_train"], d["y_test"]):
        counts = np.bincount(y, minlength=k)
        assert counts.shape == (k,) and (counts > 0).all() and len(set(counts)) == 1
    assert d["x_train"].shape[1:] == (1, md.PATCH, md.PATCH)


def test_patches_are_deterministic_for_a_seed():
    images = md.source_images()
    names = sorted(images)[:2]
    a = md.make_patches(images, names, ["original", "noise"], 3, 32, seed=7)
    b = md.make_patches(images, names, ["original", "noise"], 3, 32, seed=7)
    c = md.make_patches(images, names, ["original", "noise"], 3, 32, seed=8)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[0], c[0])
    assert a[0].shape == (12, 1, 32, 32) and a[0].dtype == np.float32


def test_patches_keep_the_noise_level():
    """One constant scale for every patch: added noise shows as a larger residual (the per-patch
    normalisation this replaced divided it away)."""
    rng = np.random.default_rng(0)
    img = np.round(128 + 40 * np.sin(np.arange(96)[:, None] / 5) + rng.normal(0, 1, (96, 96)))
    x, y, _ = md.make_patches({"i": img}, ["i"], ["original", "noise"], 5, 32, seed=0)
    lap = np.abs(np.diff(x[:, 0], 2, axis=2)).mean(axis=(1, 2))
    assert (lap[y == 1] > 1.3 * lap[y == 0]).all()
    np.testing.assert_allclose(x.mean(axis=(1, 2, 3)), 0, atol=1e-5)


def test_patches_skip_flat_regions_and_differ_only_by_manipulation():
    img = np.full((96, 96), 100.0)
    img[:, 48:] += np.random.default_rng(0).normal(0, 20, (96, 48)).round()   # right half textured
    x, y, src = md.make_patches({"half": img}, ["half"], ["original", "median"], 6, 32, seed=0)
    assert len(x) == 12 and (np.bincount(y) == 6).all() and (src == 0).all()
    assert (x.reshape(len(x), -1).std(axis=1) > 0).all()           # no flat patch kept
    orig, med = x[y == 0], x[y == 1]
    assert not np.allclose(orig, med)


def test_source_images_keep_only_noisy_originals():
    images = md.source_images()
    assert "colorwheel" not in images and "clock" not in images     # synthetic / motion-blurred
    assert {"camera", "astronaut", "coffee"} <= set(images)
    for name, im in images.items():
        assert im.ndim == 2 and max(im.shape) <= 512 and im.min() >= 0 and im.max() <= 255
        assert md.noise_sigma(im) >= md.MIN_SIGMA, name


def test_train_only_photos_load_without_importing_their_packages():
    images = mdata.train_only_images()
    assert set(images) == set(mdata.TRAIN_ONLY)                # every one passes the noise screen
    for name, im in images.items():
        assert im.ndim == 2 and max(im.shape) <= 512 and 0 <= im.min() and im.max() <= 255, name
        assert md.noise_sigma(im) >= md.MIN_SIGMA and im.std() > 20, name
    assert "mahotas" not in sys.modules and "glymur" not in sys.modules


def test_a_missing_photo_package_is_named():
    with pytest.raises(FileNotFoundError, match="'no_such_package' package, which is not "
                       r"installed.*pip install -e '\.\[examples\]'"):
        mdata.package_file("no_such_package", "data/x.png")
    with pytest.raises(FileNotFoundError, match="'data/missing.npz' comes with the 'pywt'"):
        mdata.package_file("pywt", "data/missing.npz")


def test_manipulations_change_the_image_as_specified():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (40, 40)).astype(np.float64)
    assert np.array_equal(md.manipulate(img, "original", rng), img)
    assert md.manipulate(img, "resample", rng).shape == (60, 60)
    noisy = md.manipulate(img, "noise", rng)
    assert 1.0 < np.std(noisy - img) < 3.0
    for kind in ("median", "blur"):
        out = md.manipulate(img, kind, rng)
        assert out.shape == img.shape and np.std(out) < np.std(img) / 2
        assert np.array_equal(out, np.round(out))                    # saved as 8-bit
    with pytest.raises(ValueError, match="unknown manipulation"):
        md.manipulate(img, "sharpen", rng)
    assert md.half_scale(img).shape == (20, 20)
