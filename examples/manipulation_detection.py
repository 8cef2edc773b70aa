"""On-device training of a constrained CNN that detects image manipulation.

A scaled-down reproduction of Bayar & Stamm's constrained CNN for universal image-manipulation
detection, on the paper's five classes: original, 5×5 median, Gaussian blur σ 1.1, AWGN σ 2,
bilinear ×1.5. Data is made offline from photos that ship inside scikit-image and scikit-learn
(or a folder of your own), split by source image. The first layer is
``ConstrainedConv2d(1, 3, 5, constraint="fixed_center", enforce="forward")``: each filter has
centre −1 and neighbours that sum to 1 (a prediction-error filter), applied in every forward so
the gradient knows the constraint; its residuals feed the rest of the net unnormalised.

    python examples/manipulation_detection.py                  # the five-class detector
    python examples/manipulation_detection.py --first-layer plain   # one arm of the ablation
    python examples/manipulation_detection.py --ablation --seeds 3  # all arms, mean ± std
    python examples/manipulation_detection.py --model mislnet --ablation   # the paper's net
    python examples/manipulation_detection.py --images ~/Photos [--test-images DIR]
    python examples/manipulation_detection.py predict \\
        --checkpoint runs/manipulation/model.safetensors photo.png
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
from _common import (
    confusion,
    example_parser,
    fit,
    print_report,
    save_confusion,
    save_curves,
    save_kernels,
    save_run,
    setup,
)
from manipulation_data import (  # noqa: F401  (re-exported: the demo's data API)
    CLASSES,
    MIN_PATCH_STD,
    MIN_SIGMA,
    SCALE,
    half_scale,
    load_folder,
    make_dataset,
    make_patches,
    manipulate,
    noise_sigma,
    normalise,
    source_images,
    split_sources,
)

from lucid import nn, optim
from lucid.models import MISLnet

PATCH = 48                 # patch side in pixels (multiple of 8: three halvings before the pool)
ARCH = "bayar-mislnet-v2"  # names the layer layout of build_model; checkpoints record it
FIRST_LAYERS = ["constrained", "plain", "none"]
DEMO = "manipulation_detection"
# --model mislnet: lucid.models.MISLnet on 128×128 patches, trained with the paper's SGD
MISLNET_PATCH = 128
MISLNET_ARCH = "mislnet-128"
MISLNET_FIRST_LAYERS = ["constrained", "plain"]
# {--model: (patch side, architecture, first layers of its ablation, optimiser recipe)}
MODELS = {"demo": (PATCH, ARCH, FIRST_LAYERS, "adam"),
          "mislnet": (MISLNET_PATCH, MISLNET_ARCH, MISLNET_FIRST_LAYERS, "sgd")}


# -- model -------------------------------------------------------------------------------------

def build_model(first_layer: str, n_classes: int, size: int) -> nn.Sequential:
    """(N, 1, size, size) patches -> (N, n_classes) logits.

    The first layer (3 constrained prediction-error filters, or a plain 5×5 conv, or nothing)
    feeds its residuals straight into a MISLnet-like stack: a large 7×7 stride-2 conv, then 5×5
    and 1×1 convs, each with BatchNorm + tanh and pooling, a global average and two Linear
    layers. ``size`` must be a multiple of 8."""
    if size % 8:
        raise ValueError(f"patch size must be a multiple of 8, got {size}")
    if first_layer == "constrained":
        # enforce="forward": the kernel is w / Σw (neighbours) in every forward, and the gradient
        # flows through that division. With "post_step" (Bayar & Stamm's re-projection after
        # each step), Adam's steps, about lr per weight whatever the gradient, against neighbour
        # weights of about 1/24 let a filter's neighbours drift towards cancelling; the division
        # then blows them up (|w| sums of 600-840 seen), and that arm scored 2-3 points lower.
        first = [nn.ConstrainedConv2d(1, 3, 5, padding=2, constraint="fixed_center",
                                      enforce="forward")]
    elif first_layer == "plain":
        first = [nn.Conv2d(1, 3, 5, padding=2)]
    elif first_layer == "none":
        first = []
    else:
        raise ValueError(f"--first-layer must be constrained, plain or none, got {first_layer!r}")
    c0 = 3 if first else 1
    return nn.Sequential(
        *first,
        nn.Conv2d(c0, 24, 7, stride=2, padding=3), nn.BatchNorm2d(24), nn.Tanh(), nn.MaxPool2d(2),
        nn.Conv2d(24, 32, 5, padding=2), nn.BatchNorm2d(32), nn.Tanh(), nn.MaxPool2d(2),
        nn.Conv2d(32, 48, 1), nn.BatchNorm2d(48), nn.Tanh(), nn.AvgPool2d(size // 8),
        nn.Flatten(), nn.Linear(48, 64), nn.Tanh(), nn.Linear(64, n_classes))


def build_mislnet(first_layer: str, n_classes: int) -> MISLnet:
    """``lucid.models.MISLnet`` for 128×128 patches, (N, 1, 128, 128) -> (N, n_classes). With
    ``first_layer="plain"`` its constrained layer is replaced by an ordinary 5×5 'valid' conv
    without bias (the same shape and place, PyTorch's default initialisation, no constraint):
    the paper's ablation. Unlike the demo's net (48×48 patches, 3 convs of 24-48 channels, a
    global average, Adam), this is the paper's layer list at its smaller patch size."""
    if first_layer not in MISLNET_FIRST_LAYERS:
        raise ValueError(f"--first-layer for --model mislnet must be constrained or plain, got "
                         f"{first_layer!r}")
    model = MISLnet(1, n_classes, patch_size=MISLNET_PATCH)
    if first_layer == "plain":
        model.constrained = nn.Conv2d(1, 3, 5, padding="valid", bias=False)
    return model


def build(kind: str, first_layer: str, n_classes: int) -> nn.Module:
    """The model of ``--model kind`` (demo or mislnet) with this first layer."""
    if kind == "mislnet":
        return build_mislnet(first_layer, n_classes)
    return build_model(first_layer, n_classes, PATCH)


def save_figures(out: str, model: nn.Module, history: dict, cm: np.ndarray,
                 classes: list[str]) -> list[str]:
    """filters.png (the learned first-layer filters, when there is a first conv layer),
    curves.png and confusion.png in ``out``."""
    paths = []
    first = model.constrained if isinstance(model, MISLnet) else model[0]
    if isinstance(first, nn.Conv2d) and first.weight.shape[1] == 1 and first.weight.shape[2] == 5:
        # the kernel the forward uses: with enforce="forward" the parameter itself is raw
        k = first.constrained_weight() if isinstance(first, nn.ConstrainedConv2d) else first.weight
        paths.append(save_kernels(out, k.detach().numpy()[:, 0],
                                  f"learned first-layer filters ({type(first).__name__})"))
    return paths + [save_curves(out, history), save_confusion(out, cm, classes)]


def load_checkpoint(path: str) -> tuple[nn.Sequential, dict]:
    """Rebuild the model a run of this demo saved and load its weights (eval mode). Returns
    (model, metadata). A checkpoint of another example or of another layer layout is a
    ValueError saying which."""
    from manipulation_predict import load_detector
    return load_detector(path)


# -- training ----------------------------------------------------------------------------------

def optimiser(model: nn.Module, recipe: str, epochs: int, lr: float = 3e-3):
    """(optimizer, scheduler) of a recipe. "adam": the demo's, Adam at ``lr`` with cosine decay
    over ``epochs``. "sgd": Bayar & Stamm's (TIFS 2018): SGD with momentum 0.95, weight
    decay 5e-4 and learning rate 1e-3, halved at fixed intervals; scaled to a short run, the
    rate halves every quarter of it, rounded up (every 2 epochs of the default 6), as the
    paper's does several times over its much longer one."""
    if recipe == "sgd":
        opt = optim.SGD(model.parameters(), lr=1e-3, momentum=0.95, weight_decay=5e-4)
        quarter = max(1, -(-epochs // 4))
        return opt, optim.lr_scheduler.StepLR(opt, step_size=quarter, gamma=0.5)
    opt = optim.Adam(model.parameters(), lr=lr)
    return opt, optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)


def train(model: nn.Module, data: dict, epochs: int, lr: float = 3e-3, batch_size: int = 64,
          compile: bool = True, precision: str = "fp32", recipe: str = "adam",
          ) -> tuple[dict, float, np.ndarray, np.ndarray]:
    """``recipe`` (see ``optimiser``) over ``epochs``; batch 64 (the paper's; for the demo's
    net on 2 cores the NumPy backend also runs about twice as many patches a second as at 32,
    and learns more per epoch than at 128). Prints the per-class table and confusion matrix.
    Returns (history, accuracy, confusion, predictions)."""
    opt, scheduler = optimiser(model, recipe, epochs, lr)
    history, pred = fit(model, opt, (data["x_train"], data["y_train"]),
                        (data["x_test"], data["y_test"]), epochs, batch_size=batch_size,
                        scheduler=scheduler, compile=compile, precision=precision)
    cm = confusion(data["y_test"], pred, len(data["classes"]))
    print_report(cm, data["classes"])
    return history, float((pred == data["y_test"]).mean()), cm, pred


def per_image_accuracy(data: dict, pred: np.ndarray) -> dict[str, float]:
    """Test accuracy of the patches of each test image."""
    return {name: float((pred[data["src_test"] == i] == data["y_test"][data["src_test"] == i])
                        .mean()) for i, name in enumerate(data["test_names"])}


def run_once(args, data: dict, first_layer: str, seed: int, epochs: int) -> dict:
    """Train one model on ``data``; returns accuracy, per-class and per-image accuracy, the
    model, history, confusion matrix and the time it took (wall and CPU seconds)."""
    import lucid
    lucid.random.seed(seed)
    model = build(args.model, first_layer, len(data["classes"]))
    t0, c0 = time.time(), time.process_time()
    history, acc, cm, pred = train(model, data, epochs, compile=args.compile,
                                   precision=args.precision, recipe=MODELS[args.model][3])
    wall, cpu = time.time() - t0, time.process_time() - c0
    images = per_image_accuracy(data, pred)
    print("per-image test accuracy")
    for i, (name, a) in enumerate(images.items()):
        print(f"  {name:20s} {a:.3f}  ({(data['src_test'] == i).sum()} patches)")
    print(f"training took {wall:.0f}s wall, {cpu:.0f}s CPU")
    per_class = {c: float(cm[i, i] / max(cm[i].sum(), 1)) for i, c in enumerate(data["classes"])}
    return {"accuracy": acc, "per_class": per_class, "per_image": images, "model": model,
            "history": history, "cm": cm, "wall_s": wall, "cpu_s": cpu}


def load_user_images(args) -> tuple[dict | None, dict | None]:
    """--images / --test-images folders -> screened image dicts (None when not given). Every
    error is raised here, before any training."""
    if args.test_images and not args.images:
        raise ValueError("--test-images needs --images (the photos to train on)")
    if not args.images:
        return None, None
    need = 1 if args.test_images else 2          # a split needs one image on each side
    size = MODELS[args.model][0]
    images, _ = load_folder(args.images, size, min_images=need)
    test = load_folder(args.test_images, size, min_images=1)[0] if args.test_images else None
    return images, test


def dataset(args, seed: int, per_image: int, user: tuple[dict | None, dict | None]) -> dict:
    """The five-class (or --task) patches for one seed, and a line describing them."""
    t0 = time.time()
    size = MODELS[args.model][0]
    data = make_dataset(args.task, per_image, size, seed, images=user[0], test_images=user[1])
    n_train = len(data["train_names"]) // 2
    print(f"{len(data['x_train'])} train patches ({size}×{size}) from {n_train} images (and "
          f"their half-scale copies), {len(data['x_test'])} test patches from "
          f"{len(data['test_names'])} other images: {', '.join(data['test_names'])} "
          f"({time.time() - t0:.1f}s)")
    return data


def summarise(runs: dict[str, list[dict]], classes: list[str]) -> dict:
    """{first layer: [run, ...]} -> mean and std (over seeds) of accuracy and of each class's."""
    out = {}
    for layer, rs in runs.items():
        acc = np.array([r["accuracy"] for r in rs])
        pc = np.array([[r["per_class"][c] for c in classes] for r in rs])
        out[layer] = {"accuracy": [float(a) for a in acc], "mean": float(acc.mean()),
                      "std": float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
                      "per_class_mean": dict(zip(classes, pc.mean(axis=0).tolist())),
                      "per_class_std": dict(zip(classes, (pc.std(axis=0, ddof=1) if len(acc) > 1
                                                          else 0 * pc[0]).tolist())),
                      "per_image": [r["per_image"] for r in rs],
                      "wall_s": [r["wall_s"] for r in rs], "cpu_s": [r["cpu_s"] for r in rs]}
    return out


def print_table(summary: dict, classes: list[str], seeds: list[int]) -> None:
    """The ablation as a Markdown table: mean ± std over seeds, overall and per class."""
    print(f"\nablation over seeds {seeds} (mean ± std of test accuracy)")
    print("| first layer | all | " + " | ".join(classes) + " |")
    print("|---|---|" + "---|" * len(classes))
    for layer, s in summary.items():
        cells = [f"{s['per_class_mean'][c]:.3f} ± {s['per_class_std'][c]:.3f}" for c in classes]
        print(f"| {layer} | **{s['mean']:.3f} ± {s['std']:.3f}** | " + " | ".join(cells) + " |")


def save_ablation_figure(out: str, summary: dict, classes: list[str], seeds: list[int]) -> str:
    """Grouped bars (overall and per class, one colour per first layer) with ±1 std error bars
    -> out/ablation.png."""
    from _common import pyplot
    plt = pyplot()
    groups = ["all"] + classes
    layers = list(summary)
    width = 0.8 / len(layers)
    fig, ax = plt.subplots(figsize=(8, 3.6))
    for j, layer in enumerate(layers):
        s = summary[layer]
        mean = [s["mean"]] + [s["per_class_mean"][c] for c in classes]
        std = [s["std"]] + [s["per_class_std"][c] for c in classes]
        x = np.arange(len(groups)) + (j - (len(layers) - 1) / 2) * width
        ax.bar(x, mean, width, yerr=std, capsize=3, label=f"{layer} ({s['mean']:.3f})")
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylim(0, 1.05), ax.set_ylabel("test accuracy")
    ax.set_title(f"first-layer ablation, mean ± std over {len(seeds)} seed(s)")
    ax.legend(loc="lower left", fontsize=8)
    path = os.path.join(out, "ablation.png")
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)
    return path


def ablation(args, epochs: int, per_image: int, user) -> dict:
    """--ablation: every first layer over --seeds seeds (each seed its own patches and
    initialisation, shared by the arms). With --jobs N > 1 the runs go to N worker processes
    of one BLAS thread each, each run's output in ablation_logs/ under --out (on 2 cores two
    one-thread runs get more done than one two-thread run: the small GEMMs of a CNN step do
    not split well). Writes ablation.json and ablation.png."""
    seeds = [args.seed + k for k in range(args.seeds)]
    size, _arch, layers, recipe = MODELS[args.model]
    runs: dict[str, list[dict]] = {layer: [] for layer in layers}
    t0 = time.time()
    if args.jobs > 1:
        jobs = [(args, seed, layer, epochs, per_image, user) for seed in seeds for layer in layers]
        for (_, seed, layer, *_), r in zip(jobs, _in_workers(jobs, args.jobs)):
            print(f"test accuracy ({layer}, seed {seed}): {r['accuracy']:.3f} "
                  f"({r['wall_s']:.0f}s wall)")
            runs[layer].append(r)
        classes = CLASSES[args.task]
    else:
        for seed in seeds:
            data = dataset(args, seed, per_image, user)
            for layer in layers:
                print(f"\n== first layer {layer}, seed {seed} ==")
                r = run_once(args, data, layer, seed, epochs)
                print(f"test accuracy ({layer}, seed {seed}): {r['accuracy']:.3f}")
                runs[layer].append(r)
        classes = data["classes"]
    summary = summarise(runs, classes)
    print_table(summary, classes, seeds)
    fig = save_ablation_figure(args.out, summary, classes, seeds)
    path = os.path.join(args.out, "ablation.json")
    with open(path, "w") as f:
        json.dump({"task": args.task, "model": args.model, "recipe": recipe, "classes": classes,
                   "seeds": seeds, "epochs": epochs, "patches_per_image": per_image,
                   "patch_size": size, "backend": args.backend, "results": summary}, f, indent=1)
    print(f"wrote {path} and {fig} in {time.time() - t0:.0f}s")
    return {"summary": summary, "json": path, "figure": fig, "classes": classes}


def _ablation_job(job: tuple) -> dict:
    """One ablation run in a worker process: its seed's patches, one training, its numbers
    (not the model); its output goes to ablation_logs/seed<seed>_<layer>.log under --out."""
    import contextlib

    from _common import choose_backend
    args, seed, layer, epochs, per_image, user = job
    logs = os.path.join(args.out, "ablation_logs")
    os.makedirs(logs, exist_ok=True)
    # line-buffered: `tail -f` follows a run while it trains
    with open(os.path.join(logs, f"seed{seed}_{layer}.log"), "w", buffering=1) as f, \
            contextlib.redirect_stdout(f):
        print(choose_backend(args))
        data = dataset(args, seed, per_image, user)
        r = run_once(args, data, layer, seed, epochs)
    return {k: r[k] for k in ("accuracy", "per_class", "per_image", "wall_s", "cpu_s")}


def _in_workers(jobs: list[tuple], n: int) -> list[dict]:
    """``_ablation_job`` of each job in n spawned processes, one BLAS/OpenMP thread each
    (the thread counts are read when a worker imports NumPy, so they are set before the
    workers start and restored after). Results in the order of ``jobs``."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    pins = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    saved = {k: os.environ.get(k) for k in pins}
    os.environ.update({k: "1" for k in pins})
    try:
        with ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn")) as pool:
            return list(pool.map(_ablation_job, jobs))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def main(argv: list[str] | None = None) -> dict:
    """Train (or, with --ablation, compare first layers); ``predict ...`` runs the detector on
    images (see manipulation_predict). Returns accuracy, checkpoint/figure paths and the test
    set (or the ablation summary)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["predict"]:
        from manipulation_predict import main as predict_main
        return predict_main(argv[1:])
    ap = example_parser(__doc__, "runs/manipulation", "a small run that finishes in < 60 s")
    ap.add_argument("--task", choices=list(CLASSES), default="all")
    ap.add_argument("--model", choices=list(MODELS), default="demo",
                    help="demo: the scaled-down net on 48×48 patches, Adam (default); mislnet: "
                         "lucid.models.MISLnet on 128×128 patches with the paper's SGD")
    ap.add_argument("--first-layer", choices=FIRST_LAYERS, default="constrained")
    ap.add_argument("--ablation", action="store_true",
                    help="train every first layer over --seeds seeds; table, ablation.png/json")
    ap.add_argument("--seeds", type=int, default=3, help="seeds for --ablation (default 3)")
    ap.add_argument("--jobs", type=int, default=1, metavar="N",
                    help="--ablation: N runs at once in worker processes of one thread each")
    ap.add_argument("--images", metavar="DIR", help="train on your own photos (PNG/JPEG/TIFF, "
                    "recursive; split by image unless --test-images)")
    ap.add_argument("--test-images", metavar="DIR", help="test on these photos instead")
    ap.add_argument("--patches-per-image", type=int, default=None, metavar="N",
                    help="patch places cut per source image (default 120, --quick 40)")
    args = setup(ap, argv)
    if args.seeds < 1:
        ap.error(f"--seeds must be >= 1, got {args.seeds}")
    if args.jobs < 1:
        ap.error(f"--jobs must be >= 1, got {args.jobs}")
    if args.patches_per_image is not None and args.patches_per_image < 1:
        ap.error(f"--patches-per-image must be >= 1, got {args.patches_per_image}")
    if args.model == "mislnet" and args.first_layer not in MISLNET_FIRST_LAYERS:
        ap.error(f"--model mislnet takes --first-layer constrained or plain, got "
                 f"{args.first_layer!r}")
    if args.model == "mislnet":     # 128×128 patches cost ~7x a 48×48 one: fewer, longer runs
        per_image = args.patches_per_image or (6 if args.quick else 24)
        epochs = args.epochs or (2 if args.quick else 6)
    else:
        per_image = args.patches_per_image or (40 if args.quick else 120)
        epochs = args.epochs or (5 if args.quick else 8)
    user = load_user_images(args)             # every folder error before any training
    print(f"task {args.task} {CLASSES[args.task]}")
    if args.ablation:
        return ablation(args, epochs, per_image, user)

    t0 = time.time()
    data = dataset(args, args.seed, per_image, user)
    print(f"first layer {args.first_layer}")
    r = run_once(args, data, args.first_layer, args.seed, epochs)
    figs = save_figures(args.out, r["model"], r["history"], r["cm"], data["classes"])
    size, arch = MODELS[args.model][:2]
    meta = {"demo": DEMO, "architecture": arch, "task": args.task,
            "first_layer": args.first_layer, "classes": data["classes"], "patch_size": size,
            "scale": SCALE, "epochs": epochs, "seed": args.seed}
    ckpt = save_run(args.out, r["model"], r["accuracy"], meta, figs, t0)
    return {"accuracy": r["accuracy"], "checkpoint": ckpt, "figures": figs,
            "history": r["history"], "per_class": r["per_class"], "per_image": r["per_image"],
            "x_test": data["x_test"], "y_test": data["y_test"], "classes": data["classes"],
            "test_names": data["test_names"], "train_names": data["train_names"],
            "wall_s": r["wall_s"], "cpu_s": r["cpu_s"]}


if __name__ == "__main__":
    main()
