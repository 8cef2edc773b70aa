"""On-device training of a constrained CNN that detects image manipulation.

A scaled-down reproduction of Bayar & Stamm's constrained CNN for universal image-manipulation
detection. Data is made offline from images that ship inside scikit-image and scikit-learn; the
train/test split is by source image. The first layer is ``ConstrainedConv2d(1, 3, 5,
constraint="fixed_center", enforce="post_step")``: each filter has centre −1 and neighbours that
sum to 1 (a prediction-error filter), re-projected after every optimizer step.

    python examples/manipulation_detection.py                # binary: original vs median
    python examples/manipulation_detection.py --task multi   # original/median/blur/resample
    python examples/manipulation_detection.py --first-layer plain   # the ablation
"""

from __future__ import annotations

import time

import numpy as np
from _common import (
    example_parser,
    load_model,
    save_confusion,
    save_curves,
    save_kernels,
    save_run,
    setup,
    train_and_report,
)

from lucid import nn

CLASSES = {"binary": ["original", "median"],
           "multi": ["original", "median", "blur", "resample"],
           "all": ["original", "median", "blur", "noise", "resample"]}
SKIMAGE = ["camera", "astronaut", "coffee", "chelsea", "brick", "grass", "gravel", "moon", "page",
           "text", "coins", "clock", "hubble_deep_field", "immunohistochemistry", "retina",
           "rocket", "cell", "colorwheel"]
MIN_SIGMA = 1.5          # grey levels of sensor noise an "original" must show (see source_images)
MIN_PATCH_STD = 5.0      # grey levels; flatter patches look the same in every class


# -- data --------------------------------------------------------------------------------------

def noise_sigma(img: np.ndarray) -> float:
    """Immerkær's fast estimate of the noise standard deviation of an image, in grey levels."""
    from scipy import ndimage
    k = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float64)
    r = ndimage.convolve(img, k)[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2) * np.abs(r).mean() / 6)


def source_images(min_sigma: float = MIN_SIGMA) -> dict[str, np.ndarray]:
    """Grayscale float images in [0, 255] (green channel of colour ones), centre-cropped to at most
    512×512 (cropping, not resizing, keeps each camera's own pixel statistics).

    Only images with an estimated noise level of at least ``min_sigma`` grey levels serve as
    originals: images that were already smoothed before they shipped (the motion-blurred clock,
    the synthetic colour wheel, denoised or heavily compressed scans) are, pixel for pixel, close
    to median-filtered ones, so labelling them "original" would teach the net nothing real."""
    import skimage.data
    from sklearn.datasets import load_sample_images
    raw = {name: getattr(skimage.data, name)() for name in SKIMAGE}
    raw["motorcycle"] = skimage.data.stereo_motorcycle()[0]          # the left view only
    for i, im in enumerate(load_sample_images().images):
        raw[f"sklearn_{i}"] = im
    out = {}
    for name, im in raw.items():
        im = im[..., 1] if im.ndim == 3 else im
        h, w = im.shape
        r, c = max(0, (h - 512) // 2), max(0, (w - 512) // 2)
        im = np.asarray(im[r:r + 512, c:c + 512], dtype=np.float64)
        if noise_sigma(im) >= min_sigma:
            out[name] = im
    return out


def half_scale(img: np.ndarray) -> np.ndarray:
    """2×2 box-average downscale, rounded to 8 bits: the same scene as a cleaner camera would see
    it. Used to add low-noise originals to training, so that the net cannot separate the classes
    by noise level alone."""
    h, w = img.shape[0] // 2 * 2, img.shape[1] // 2 * 2
    return np.round(img[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3)))


def manipulate(img: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Apply one manipulation (scipy), returning an image in [0, 255] rounded like a saved 8-bit
    image."""
    from scipy import ndimage
    if kind == "original":
        out = img
    elif kind == "median":
        out = ndimage.median_filter(img, size=5)
    elif kind == "blur":
        out = ndimage.gaussian_filter(img, sigma=1.1)
    elif kind == "noise":
        out = img + rng.normal(0.0, 2.0, img.shape)
    elif kind == "resample":
        out = ndimage.zoom(img, 1.5, order=1)
    else:
        raise ValueError(f"unknown manipulation {kind!r}")
    return np.clip(np.round(out), 0, 255)


def split_sources(names: list[str], test_every: int = 4) -> tuple[list[str], list[str]]:
    """Deterministic split by source image: every ``test_every``-th sorted name is for testing."""
    names = sorted(names)
    test = names[1::test_every]
    return [n for n in names if n not in test], test


def normalise(patches: np.ndarray) -> np.ndarray:
    """(N, s, s) grey levels -> (N, 1, s, s) float32: each patch centred and divided by its mean
    absolute Laplacian residual (+0.25 grey levels). Photos differ in noise level far more than
    median filtering changes it, so this removes the level and leaves its structure to learn."""
    p = patches
    lap = np.abs(4 * p[:, 1:-1, 1:-1] - p[:, :-2, 1:-1] - p[:, 2:, 1:-1] - p[:, 1:-1, :-2]
                 - p[:, 1:-1, 2:]).mean(axis=(1, 2)) / 4
    p = (p - p.mean(axis=(1, 2), keepdims=True)) / (lap[:, None, None] + 0.25)
    return p[:, None].astype(np.float32)


def make_patches(images: dict[str, np.ndarray], names: list[str], classes: list[str],
                 per_image: int, size: int, seed: int,
                 min_std: float = MIN_PATCH_STD) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Up to ``per_image`` size×size patch locations per named image, each cut from every
    manipulated version (so classes differ by the manipulation, not by what the patch shows; the
    ×1.5 resample is cut at the same coordinates of its enlarged image). Flat
    locations (original's std below ``min_std`` grey levels) are skipped: there every class looks
    alike. Returns x (N, 1, size, size) float32 (see ``normalise``), y (N,) int64, and the source
    index into ``names`` of every patch (N,)."""
    rng = np.random.default_rng(seed)
    xs, ys, src = [], [], []
    for i, name in enumerate(names):
        img = images[name]
        versions = [manipulate(img, kind, rng) for kind in classes]
        h, w = img.shape
        rows = rng.integers(0, h - size + 1, 8 * per_image)
        cols = rng.integers(0, w - size + 1, 8 * per_image)
        keep = [(r, c) for r, c in zip(rows, cols)
                if img[r:r + size, c:c + size].std() >= min_std][:per_image]
        for r, c in keep:
            for label, v in enumerate(versions):
                xs.append(v[r:r + size, c:c + size])
                ys.append(label)
                src.append(i)
    return normalise(np.stack(xs)), np.array(ys, dtype=np.int64), np.array(src, dtype=np.int64)


def make_dataset(task: str, per_image: int, size: int, seed: int) -> dict:
    """Train and test patches from disjoint source images; training also sees every training
    image at half scale. Returns a dict with x_train, y_train, src_train, x_test, y_test,
    src_test, train_names, test_names, classes."""
    images = source_images()
    train_names, test_names = split_sources(list(images))
    train_all = train_names + [f"{n}@half" for n in train_names]
    for n in train_names:
        images[f"{n}@half"] = half_scale(images[n])
    classes = CLASSES[task]
    xtr, ytr, str_ = make_patches(images, train_all, classes, per_image, size, seed)
    xte, yte, ste = make_patches(images, test_names, classes, per_image, size, seed + 1)
    return {"x_train": xtr, "y_train": ytr, "src_train": str_, "x_test": xte, "y_test": yte,
            "src_test": ste, "train_names": train_all, "test_names": test_names,
            "classes": classes}


# -- model -------------------------------------------------------------------------------------

def build_model(first_layer: str, n_classes: int, size: int) -> nn.Sequential:
    """Constrained residual layer, then a small MISLnet-like stack of conv + BatchNorm + tanh +
    max-pool blocks and two Linear layers."""
    if first_layer == "constrained":
        first = [nn.ConstrainedConv2d(1, 3, 5, padding=2, constraint="fixed_center",
                                      enforce="post_step")]
    elif first_layer == "plain":
        first = [nn.Conv2d(1, 3, 5, padding=2)]
    elif first_layer == "none":
        first = []
    else:
        raise ValueError(f"--first-layer must be constrained, plain or none, got {first_layer!r}")
    c0 = 3 if first else 1
    feat = size // 8
    return nn.Sequential(
        *first,
        nn.Conv2d(c0, 16, 5, stride=2, padding=2), nn.BatchNorm2d(16), nn.Tanh(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.Tanh(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * feat * feat, 64), nn.Tanh(), nn.Linear(64, n_classes))


def save_figures(out: str, model: nn.Module, history: dict, cm: np.ndarray,
                 classes: list[str]) -> list[str]:
    """filters.png (the learned first-layer filters, when there is a first conv layer),
    curves.png and confusion.png in ``out``."""
    paths = []
    if isinstance(model[0], nn.Conv2d):
        paths.append(save_kernels(out, model[0].weight.numpy()[:, 0],
                                  f"learned first-layer filters ({type(model[0]).__name__})"))
    return paths + [save_curves(out, history), save_confusion(out, cm, classes)]


# -- main --------------------------------------------------------------------------------------

def load_checkpoint(path: str) -> tuple[nn.Sequential, dict]:
    """Rebuild the model a run saved and load its weights. Returns (model, metadata)."""
    return load_model(path, lambda meta: build_model(meta["first_layer"], len(meta["classes"]),
                                                     int(meta["patch_size"])))


def main(argv: list[str] | None = None) -> dict:
    """Run the example; returns accuracy, checkpoint/figure paths and the test set."""
    ap = example_parser(__doc__, "runs/manipulation", "a small run that finishes in < 60 s")
    ap.add_argument("--task", choices=["binary", "multi", "all"], default="binary")
    ap.add_argument("--first-layer", choices=["constrained", "plain", "none"],
                    default="constrained")
    args = setup(ap, argv)
    size = 32
    per_image = 60 if args.quick else 150
    epochs = args.epochs or (4 if args.quick else 6)

    t0 = time.time()
    data = make_dataset(args.task, per_image, size, args.seed)
    classes = data["classes"]
    xtr, ytr, xte, yte = data["x_train"], data["y_train"], data["x_test"], data["y_test"]
    print(f"backend {args.backend}; task {args.task} {classes}; first layer {args.first_layer}")
    print(f"{len(xtr)} train patches from {len(data['train_names']) // 2} images (and their half-"
          f"scale copies), {len(xte)} test patches from {len(data['test_names'])} other images: "
          f"{', '.join(data['test_names'])} ({time.time() - t0:.1f}s)")
    model = build_model(args.first_layer, len(classes), size)
    history, acc, cm, pred = train_and_report(model, (xtr, ytr), (xte, yte), classes, epochs)
    print("per-image test accuracy")
    for i, name in enumerate(data["test_names"]):
        sel = data["src_test"] == i
        print(f"  {name:20s} {(pred[sel] == yte[sel]).mean():.3f}  ({sel.sum()} patches)")
    figs = save_figures(args.out, model, history, cm, classes)
    meta = {"task": args.task, "first_layer": args.first_layer, "classes": classes,
            "patch_size": size, "epochs": epochs, "seed": args.seed}
    ckpt = save_run(args.out, model, acc, meta, figs, t0)
    return {"accuracy": acc, "checkpoint": ckpt, "figures": figs, "history": history,
            "x_test": xte, "y_test": yte, "classes": classes}


if __name__ == "__main__":
    main()
