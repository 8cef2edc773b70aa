"""Use a trained manipulation detector on whole images: per image the predicted class with its
probability, and a heat map of the per-patch predictions over the image.

    python examples/manipulation_detection.py predict \\
        --checkpoint runs/manipulation/model.safetensors a.png b.jpg

With ``--export DIR`` it also writes the detector for deployment (docs/deploying.md):
DIR/manipulation_detector.mlxfn (MLX, any batch size), DIR/manipulation_detector.onnx (ONNX,
batch axis "N") and DIR/manipulation_detector.json (the classes and the input's preparation).
Images are then optional.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
from _common import default_backend
from manipulation_data import MIN_PATCH_STD, SCALE, normalise, read_pixels, to_grey

import lucid
from lucid import nn

# One colour per class (RGB); "original" green so that a clean photo reads as a green image.
COLOURS = {"original": (40, 170, 70), "median": (220, 40, 40), "blur": (240, 150, 20),
           "noise": (150, 60, 200), "resample": (30, 110, 230)}


def load_detector(path: str) -> tuple[nn.Sequential, dict]:
    """Read a checkpoint written by this demo, rebuild its model, load the weights (eval mode).
    Returns (model, metadata). Refuses, with a ValueError saying why, a checkpoint of another
    example (no ``demo`` entry naming this one) or of another layer layout (``architecture``
    differs from this version's, or the weights do not fit)."""
    from manipulation_detection import ARCH, DEMO, MISLNET_ARCH, build_mislnet, build_model
    ckpt = lucid.load(path)
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise ValueError(f"{path!r} is not a checkpoint written by an example (no 'model' entry)")
    demo = ckpt.get("demo")
    if demo != DEMO:
        raise ValueError(f"{path!r} is not a manipulation-detection checkpoint (its 'demo' entry "
                         f"is {demo!r}, expected {DEMO!r}); train one with "
                         "examples/manipulation_detection.py")
    arch = ckpt.get("architecture")
    if arch not in (ARCH, MISLNET_ARCH):
        raise ValueError(f"{path!r} was trained with architecture {arch!r}, this version builds "
                         f"{ARCH!r} and {MISLNET_ARCH!r}; retrain it")
    if arch == MISLNET_ARCH:
        model = build_mislnet(ckpt["first_layer"], len(ckpt["classes"]))
    else:
        model = build_model(ckpt["first_layer"], len(ckpt["classes"]), int(ckpt["patch_size"]))
    try:
        model.load_state_dict(ckpt["model"])
    except (ValueError, TypeError) as e:
        raise ValueError(f"{path!r} does not fit the {arch!r} model: {e}") from e
    model.eval()
    return model, {k: v for k, v in ckpt.items() if k != "model"}


def read_image(path: str) -> np.ndarray:
    """An image file -> (H, W) float64 grey levels (green channel of colour), full size."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such image: {path!r}")
    arr = read_pixels(path)
    return to_grey(arr, max_side=1 << 30)         # no crop: the heat map covers it all


def patch_probabilities(model: nn.Module, img: np.ndarray, size: int,
                        batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Tile ``img`` (H, W) into non-overlapping size×size patches. Returns the class
    probabilities (rows, cols, K) and the textured mask (rows, cols): flat tiles (std below
    MIN_PATCH_STD) look alike in every class, so they get no vote."""
    rows, cols = img.shape[0] // size, img.shape[1] // size
    if rows == 0 or cols == 0:
        raise ValueError(f"image of {img.shape[1]}×{img.shape[0]} pixels is smaller than one "
                         f"{size}×{size} patch")
    tiles = img[:rows * size, :cols * size].reshape(rows, size, cols, size).swapaxes(1, 2)
    tiles = tiles.reshape(rows * cols, size, size)
    x = normalise(tiles)
    out = []
    with lucid.no_grad():
        for i in range(0, len(x), batch):
            out.append(model(lucid.tensor(x[i:i + batch])).numpy().astype(np.float64))
    logits = np.concatenate(out)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    textured = tiles.std(axis=(1, 2)) >= MIN_PATCH_STD
    return p.reshape(rows, cols, -1), textured.reshape(rows, cols)


def heat_map(img: np.ndarray, probs: np.ndarray, textured: np.ndarray, classes: list[str],
             size: int, path: str) -> str:
    """Write an RGB PNG of exactly the image's size: the grey image, each textured tile tinted
    with its predicted class's colour (stronger for a surer prediction), flat tiles left grey,
    and a colour key in the top-left corner."""
    from PIL import Image, ImageDraw
    grey = np.clip(img, 0, 255)[..., None].repeat(3, axis=2)
    out = grey.copy()
    pred = probs.argmax(axis=2)
    for (r, c), k in np.ndenumerate(pred):
        if not textured[r, c]:
            continue
        alpha = 0.25 + 0.45 * float(probs[r, c, k])
        sl = (slice(r * size, (r + 1) * size), slice(c * size, (c + 1) * size))
        colour = np.array(COLOURS.get(classes[k], (128, 128, 128)), dtype=np.float64)
        out[sl] = (1 - alpha) * grey[sl] + alpha * colour
    pic = Image.fromarray(np.round(out).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(pic)
    for i, c in enumerate(classes):                 # the key, if the image is big enough
        y = 4 + 14 * i
        if y + 12 > pic.height or pic.width < 90:
            break
        draw.rectangle([4, y, 84, y + 12], fill=(255, 255, 255))
        draw.rectangle([6, y + 2, 14, y + 10], fill=COLOURS.get(c, (128, 128, 128)))
        draw.text((18, y), c, fill=(0, 0, 0))
    pic.save(path)
    return path


def predict_image(model: nn.Module, meta: dict, path: str, out: str) -> dict:
    """One image: the class with the highest mean probability over its textured patches (all
    patches when none is textured), that probability, each class's share of the patches, and the
    heat map written to out/<name>_heatmap.png."""
    size, classes = int(meta["patch_size"]), list(meta["classes"])
    img = read_image(path)
    probs, textured = patch_probabilities(model, img, size)
    votes = probs[textured] if textured.any() else probs.reshape(-1, len(classes))
    mean = votes.mean(axis=0)
    k = int(mean.argmax())
    shares = np.bincount(votes.argmax(axis=1), minlength=len(classes)) / len(votes)
    stem = os.path.splitext(os.path.basename(path))[0]
    heat = heat_map(img, probs, textured, classes, size,
                    os.path.join(out, f"{stem}_heatmap.png"))
    return {"image": path, "class": classes[k], "probability": float(mean[k]),
            "probabilities": dict(zip(classes, mean.tolist())),
            "patch_shares": dict(zip(classes, shares.tolist())), "patches": len(votes),
            "heatmap": heat}


def export_detector(model: nn.Module, meta: dict, folder: str) -> dict[str, str]:
    """Write the detector's eval forward, (N, 1, s, s) patches -> (N, K) logits, as
    ``manipulation_detector.mlxfn`` (shapeless: any batch) and ``.onnx`` (batch axis "N"),
    with ``manipulation_detector.json`` holding what a caller needs to prepare patches and
    read the logits. A format whose package is missing (mlx, onnx) is skipped with a note.
    Returns {kind: path} of the files written."""
    from lucid.export import to_mlxfn, to_onnx
    os.makedirs(folder, exist_ok=True)
    size = int(meta["patch_size"])
    rng = np.random.default_rng(0)
    example = lucid.tensor(normalise(rng.uniform(0, 255, (2, size, size))))
    stem = os.path.join(folder, "manipulation_detector")
    written = {}
    for kind, export, options in (("mlxfn", to_mlxfn, {"shapeless": True}),
                                  ("onnx", to_onnx, {})):
        try:
            export(model, f"{stem}.{kind}", example, **options)
        except ImportError as e:
            print(f"note: {stem}.{kind} not written: {e}")
            continue
        written[kind] = f"{stem}.{kind}"
    with open(f"{stem}.json", "w") as f:
        json.dump({"classes": list(meta["classes"]), "patch_size": size,
                   "input": "(N, 1, patch_size, patch_size) float32: a grey-level patch (0-255) "
                            "minus its own mean, divided by scale",
                   "scale": SCALE, "output": "(N, len(classes)) logits; softmax for "
                                             "probabilities"}, f, indent=2)
    written["json"] = f"{stem}.json"
    for kind, path in written.items():
        print(f"exported {kind}: {path}")
    return written


def main(argv: list[str] | None = None) -> dict:
    """``predict --checkpoint FILE IMAGE...``: print one line per image and write heat maps."""
    ap = argparse.ArgumentParser(prog="manipulation_detection.py predict", description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--checkpoint", required=True, help="model.safetensors from a training run")
    ap.add_argument("--out", default="runs/manipulation/predict", help="folder for heat maps")
    ap.add_argument("--backend", choices=["mlx", "numpy"], default=None,
                    help="default: the faster one on this machine (MLX on a GPU, else NumPy)")
    ap.add_argument("--export", metavar="DIR", default=None,
                    help="also write the model as DIR/manipulation_detector.{mlxfn,onnx,json}")
    ap.add_argument("images", nargs="*", metavar="IMAGE")
    args = ap.parse_args(argv)
    if not args.images and args.export is None:
        ap.error("give at least one IMAGE (or --export DIR)")
    if args.backend is None:
        args.backend = default_backend()[0]
    lucid.set_backend(args.backend)
    model, meta = load_detector(args.checkpoint)    # a wrong checkpoint fails before any image
    missing = [p for p in args.images if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(f"no such image: {', '.join(map(repr, missing))}")
    exported = export_detector(model, meta, args.export) if args.export is not None else {}
    os.makedirs(args.out, exist_ok=True)
    results = []
    for path in args.images:
        r = predict_image(model, meta, path, args.out)
        shares = ", ".join(f"{c} {s:.0%}" for c, s in r["patch_shares"].items() if s > 0)
        print(f"{path}: {r['class']} (p = {r['probability']:.2f}; {r['patches']} patches: "
              f"{shares}) -> {r['heatmap']}")
        results.append(r)
    return {"results": results, "meta": meta, "exported": exported}
