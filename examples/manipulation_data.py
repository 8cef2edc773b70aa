"""Data for the manipulation-detection demo: source photos (shipped with scikit-image and
scikit-learn, training-only ones with PyWavelets, glymur, mahotas and matplotlib, or a folder of
the user's own), noise screening, the five manipulations, patches
cut at the same places from every version, and the split by source image.

Every image here is a 2-D float64 array of grey levels in [0, 255]; patches go to the net as
(N, 1, s, s) float32, centred and divided by a constant (``SCALE``), so the noise *level* and the
residual structure the constrained layer extracts both survive (a per-patch normalisation would
remove exactly the level that tells an original from one with added noise)."""

from __future__ import annotations

import os

import numpy as np

CLASSES = {"binary": ["original", "median"],
           "multi": ["original", "median", "blur", "resample"],
           "all": ["original", "median", "blur", "noise", "resample"]}
SKIMAGE = ["camera", "astronaut", "coffee", "chelsea", "brick", "grass", "gravel", "moon", "page",
           "text", "coins", "clock", "hubble_deep_field", "immunohistochemistry", "retina",
           "rocket", "cell", "colorwheel"]
# Photos that other packages of the examples extra ship: {name: (package, file inside it)}. They
# only ever train: the test split is drawn from the scikit-image / scikit-learn photos alone, so
# the four test photos, and every number measured on them, stay as they were.
TRAIN_ONLY = {"aero": ("pywt", "data/aero.npz"), "ascent": ("pywt", "data/ascent.npz"),
              "goodstuff": ("glymur", "data/goodstuff.j2k"), "nemo": ("glymur", "data/nemo.jp2"),
              "department_store": ("mahotas", "demos/data/DepartmentStore.jpg"),
              "luispedro": ("mahotas", "demos/data/luispedro.jpg"),
              "grace_hopper": ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg")}
MIN_SIGMA = 1.5          # grey levels of sensor noise an "original" must show (see screen)
MIN_PATCH_STD = 5.0      # grey levels; flatter patches look the same in every class
SCALE = 16.0             # grey levels per input unit (one constant for every patch)
MAX_SIDE = 512           # sources are centre-cropped to at most this (cropping keeps the noise)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


# -- sources -----------------------------------------------------------------------------------

def noise_sigma(img: np.ndarray) -> float:
    """Immerkær's fast estimate of the noise standard deviation of an image, in grey levels."""
    from scipy import ndimage
    k = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float64)
    r = ndimage.convolve(img, k)[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2) * np.abs(r).mean() / 6)


def to_grey(im: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
    """(H, W) or (H, W, C) 8-bit array -> (h, w) float64 grey levels: the green channel of colour
    images (the densest in a Bayer sensor, and untouched by a colour transform), centre-cropped
    to at most max_side × max_side."""
    im = np.asarray(im)
    if im.ndim == 3:
        im = im[..., 1] if im.shape[2] >= 3 else im[..., 0]
    if im.dtype == np.uint16:                  # 16-bit TIFF/PNG: keep the 8-bit range
        im = im / 257.0
    h, w = im.shape
    r, c = max(0, (h - max_side) // 2), max(0, (w - max_side) // 2)
    return np.asarray(im[r:r + max_side, c:c + max_side], dtype=np.float64)


def screen(raw: dict[str, np.ndarray], min_sigma: float = MIN_SIGMA) -> dict[str, np.ndarray]:
    """Keep only images with an estimated noise level of at least ``min_sigma`` grey levels.
    Images that were smoothed before they shipped (the motion-blurred clock, the synthetic colour
    wheel, denoised or heavily compressed scans) are, pixel for pixel, close to median-filtered
    ones, so labelling them "original" would teach the net nothing real."""
    return {name: im for name, im in raw.items() if noise_sigma(im) >= min_sigma}


def source_images(min_sigma: float = MIN_SIGMA) -> dict[str, np.ndarray]:
    """The shipped photos (scikit-image, scikit-learn) as grey float images, screened."""
    import skimage.data
    from sklearn.datasets import load_sample_images
    raw = {name: getattr(skimage.data, name)() for name in SKIMAGE}
    raw["motorcycle"] = skimage.data.stereo_motorcycle()[0]          # the left view only
    for i, im in enumerate(load_sample_images().images):
        raw[f"sklearn_{i}"] = im
    return screen({name: to_grey(im) for name, im in raw.items()}, min_sigma)


def package_file(package: str, rel: str) -> str:
    """The path of a data file inside an installed package, found without importing it (mahotas
    and glymur are only data sources here). A missing package or file is an error naming the
    install that brings it."""
    import importlib.util
    spec = importlib.util.find_spec(package)
    path = os.path.join(spec.submodule_search_locations[0], rel) if spec and \
        spec.submodule_search_locations else None
    if path is None or not os.path.isfile(path):
        raise FileNotFoundError(f"the demo's training photo {rel!r} comes with the {package!r} "
                                "package, which is not installed (or lacks it): "
                                "pip install -e '.[examples]'")
    return path


def train_only_images(min_sigma: float = MIN_SIGMA) -> dict[str, np.ndarray]:
    """The TRAIN_ONLY photos as grey float images, screened like the others."""
    raw = {}
    for name, (package, rel) in TRAIN_ONLY.items():
        path = package_file(package, rel)
        if path.endswith(".npz"):
            with np.load(path) as z:
                raw[name] = z[z.files[0]]
        else:
            raw[name] = read_pixels(path)
    return screen({name: to_grey(im) for name, im in raw.items()}, min_sigma)


def half_scale(img: np.ndarray) -> np.ndarray:
    """2×2 box-average downscale, rounded to 8 bits: the same scene as a cleaner camera would see
    it (half the noise). Training sees these too, so noise level alone cannot separate an
    original from one with added noise."""
    h, w = img.shape[0] // 2 * 2, img.shape[1] // 2 * 2
    return np.round(img[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3)))


# -- the user's own photos ----------------------------------------------------------------------

def image_files(folder: str) -> list[str]:
    """Image files (PNG, JPEG, TIFF by extension) under ``folder``, recursively, sorted."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"no such image folder: {folder!r}")
    out = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        out += [os.path.join(root, f) for f in sorted(files)
                if f.lower().endswith(IMAGE_EXTENSIONS)]
    return out


def read_pixels(path: str) -> np.ndarray:
    """The pixels of one image file as Pillow decodes them: (H, W) or (H, W, 3). Palette, CMYK
    and alpha images become RGB. An undecodable file is a ValueError naming it."""
    from PIL import Image
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("P", "PA", "CMYK", "YCbCr", "LA", "RGBA", "LAB", "HSV"):
                im = im.convert("RGB")
            return np.asarray(im)
    # Pillow signals a bad file with any of these, depending on the format plugin.
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as e:
        raise ValueError(f"cannot read {path!r} as an image: {type(e).__name__}: {e}") from e


def load_folder(folder: str, size: int, min_images: int = 2, min_sigma: float = MIN_SIGMA,
                min_std: float = MIN_PATCH_STD,
                log=print) -> tuple[dict[str, np.ndarray], list[tuple[str, str]]]:
    """Read every image under ``folder`` (Pillow; grey, or the green channel of colour) and keep
    the usable ones: readable, at least 2·size pixels on each side (so patches from several
    places fit, and a half-scale copy still holds one), textured (std ≥ min_std) and with at
    least ``min_sigma`` grey levels of noise (see ``screen``). Returns ({relative path: image},
    [(path, why skipped)]); each skipped file is named through ``log``.

    Raises FileNotFoundError for a missing folder, ValueError when no file reads as an image or
    fewer than ``min_images`` are usable, all before any training."""
    files = image_files(folder)
    if not files:
        raise ValueError(f"no image files (PNG, JPEG, TIFF) under {folder!r}")
    images, skipped = {}, []
    for path in files:
        name = os.path.relpath(path, folder)
        try:
            arr = read_pixels(path)
        except ValueError as e:
            skipped.append((path, f"unreadable ({e.__cause__ or e})"))
            continue
        img = to_grey(arr)
        if min(img.shape) < 2 * size:
            why = f"too small ({img.shape[1]}×{img.shape[0]}; needs at least {2 * size} a side)"
        elif img.std() < min_std:
            why = f"too flat (std {img.std():.1f} < {min_std} grey levels)"
        elif noise_sigma(img) < min_sigma:
            why = (f"too smooth to be an original (noise {noise_sigma(img):.2f} < {min_sigma} "
                   "grey levels: already filtered or heavily compressed)")
        else:
            images[name] = img
            continue
        skipped.append((path, why))
    for path, why in skipped:
        log(f"skipping {path}: {why}")
    if len(skipped) == len(files) and all(w.startswith("unreadable") for _, w in skipped):
        raise ValueError(f"no readable image under {folder!r} ({len(files)} files tried)")
    if len(images) < min_images:
        raise ValueError(f"too few usable images under {folder!r}: {len(images)} of "
                         f"{len(files)}, need at least {min_images} (see the skipped files above)")
    return images, skipped


# -- manipulations and patches -----------------------------------------------------------------

def manipulate(img: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Apply one manipulation (scipy), returning an image in [0, 255] rounded like a saved 8-bit
    image. "resample" returns the ×1.5 enlarged image."""
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
    """(N, s, s) grey levels -> (N, 1, s, s) float32: each patch centred (its mean carries no
    manipulation trace) and divided by the one constant ``SCALE``, so residual levels compare
    across patches."""
    p = (patches - patches.mean(axis=(1, 2), keepdims=True)) / SCALE
    return p[:, None].astype(np.float32)


def patch_corners(img: np.ndarray, n: int, size: int, rng: np.random.Generator,
                  min_std: float = MIN_PATCH_STD) -> list[tuple[int, int]]:
    """Up to n random top-left corners of textured size×size windows (std ≥ min_std); none in
    an image smaller than a window (the half-scale copy of a small photo, for 128×128 patches)."""
    h, w = img.shape
    if h < size or w < size:
        return []
    rows = rng.integers(0, h - size + 1, 8 * n)
    cols = rng.integers(0, w - size + 1, 8 * n)
    return [(int(r), int(c)) for r, c in zip(rows, cols)
            if img[r:r + size, c:c + size].std() >= min_std][:n]


def make_patches(images: dict[str, np.ndarray], names: list[str], classes: list[str],
                 per_image: int, size: int, seed: int,
                 min_std: float = MIN_PATCH_STD) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Up to ``per_image`` size×size patch locations per named image, each cut from every
    manipulated version (so classes differ by the manipulation, not by what the patch shows; the
    ×1.5 resample is cut at the same coordinates of its enlarged image). Flat locations
    (original's std below ``min_std`` grey levels) are skipped: there every class looks alike.
    Returns x (N, 1, size, size) float32 (see ``normalise``), y (N,) int64, and the source index
    into ``names`` of every patch (N,)."""
    rng = np.random.default_rng(seed)
    xs, ys, src = [], [], []
    for i, name in enumerate(names):
        img = images[name]
        versions = [manipulate(img, kind, rng) for kind in classes]
        for r, c in patch_corners(img, per_image, size, rng, min_std):
            for label, v in enumerate(versions):
                xs.append(v[r:r + size, c:c + size])
                ys.append(label)
                src.append(i)
    if not xs:
        raise ValueError(f"no textured {size}×{size} patch in {len(names)} images")
    return normalise(np.stack(xs)), np.array(ys, dtype=np.int64), np.array(src, dtype=np.int64)


def make_dataset(task: str, per_image: int, size: int, seed: int,
                 images: dict[str, np.ndarray] | None = None,
                 test_images: dict[str, np.ndarray] | None = None) -> dict:
    """Train and test patches from disjoint source images (the shipped photos unless ``images``
    is given; ``test_images`` instead of the split when given); training also sees every training
    image at half scale and, for the shipped photos, the TRAIN_ONLY ones. Returns a dict with
    x_train, y_train, src_train, x_test, y_test, src_test, train_names, test_names, classes."""
    shipped = images is None
    images = dict(source_images() if shipped else images)
    if test_images is None:
        train_names, test_names = split_sources(list(images))
        if shipped:
            extra = train_only_images()
            images.update(extra)
            train_names += sorted(extra)
    else:
        train_names, test_names = sorted(images), sorted(f"test:{n}" for n in test_images)
        images.update({f"test:{n}": im for n, im in test_images.items()})
    train_all = train_names + [f"{n}@half" for n in train_names]
    for n in train_names:
        images[f"{n}@half"] = half_scale(images[n])
    classes = CLASSES[task]
    xtr, ytr, str_ = make_patches(images, train_all, classes, per_image, size, seed)
    xte, yte, ste = make_patches(images, test_names, classes, per_image, size, seed + 1)
    return {"x_train": xtr, "y_train": ytr, "src_train": str_, "x_test": xte, "y_test": yte,
            "src_test": ste, "train_names": train_all, "test_names": test_names,
            "classes": classes}
