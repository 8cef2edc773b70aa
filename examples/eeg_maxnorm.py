"""An EEGNet-style model with a selfeeg-style max-norm constrained spatial filter, trained on a
SYNTHETIC event-related-potential (ERP) dataset generated here (no EEG data ships offline).

The data: 1 s epochs of 8 scalp channels at 128 Hz. Every trial holds correlated background
activity (AR(1) noise mixed across channels, plus a posterior 10 Hz alpha rhythm of random phase)
and the same sensory N100/P200 response; "target" trials add a P300, a positive wave near 300 ms
(latency jittered trial to trial) strongest over Pz/Cz. The task: target vs non-target.

The model is ``lucid.models.eegnet_keras``, the EEGNet-8,2 of Lawhern et al. (2018) as the
authors' Keras code builds it: a temporal Conv2d, then a depthwise spatial filter across all
channels, ``ConstrainedConv2d(F1, D·F1, (C, 1), groups=F1, max_norm=...)``, whose per-filter L2
norm is clipped to ``MAX_NORM`` after every optimizer step, then a separable conv, average
pooling and a max-norm classifier, ``ConstrainedLinear(..., max_norm=CLASSIFIER_MAX_NORM)``
(each output unit's input weights). Here the temporal kernel is 32 taps (a quarter second) and
dropout 0.25, the paper's settings for within-subject training.

    python examples/eeg_maxnorm.py [--backend numpy|mlx] [--quick] [--out DIR]
"""

from __future__ import annotations

import os
import time

import numpy as np
from _common import (
    example_parser,
    load_model,
    pyplot,
    save_confusion,
    save_curves,
    save_run,
    setup,
    train_and_report,
)

from lucid import models, nn

CHANNELS = ["Fz", "C3", "Cz", "C4", "P3", "Pz", "P4", "Oz"]
FS = 128                  # samples per second; one epoch is 1 s
# Scalp weights of each simulated source, one per channel in CHANNELS order.
P300_TOPO = np.array([0.3, 0.5, 0.8, 0.5, 0.7, 1.0, 0.7, 0.4])
SENSORY_TOPO = np.array([0.9, 0.6, 1.0, 0.6, 0.4, 0.5, 0.4, 0.3])
ALPHA_TOPO = np.array([0.1, 0.2, 0.2, 0.2, 0.6, 0.7, 0.6, 1.0])
MAX_NORM = 0.5      # EEGNet uses 1.0; this run reaches 0.5, so the bound is seen at work
CLASSIFIER_MAX_NORM = 0.25      # EEGNet's bound on its dense classifier


def make_erp_dataset(n_trials: int, seed: int, p300_uv: float = 8.0,
                     noise_uv: float = 6.0, head: int = 1234) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic ERP trials. Returns x (N, 8, 128) float32 in units of 10 µV and y (N,) int64
    (1 = target, with a P300), classes balanced and shuffled."""
    rng = np.random.default_rng(seed)
    c, t = len(CHANNELS), FS
    time_s = np.arange(t) / FS
    y = rng.permutation(np.arange(n_trials) % 2)
    # Background: AR(1) noise (pole 0.9: most power below ~10 Hz, as in EEG), mixed across channels.
    white = rng.standard_normal((n_trials, c, t))
    ar = np.empty_like(white)
    ar[..., 0] = white[..., 0]
    for k in range(1, t):
        ar[..., k] = 0.9 * ar[..., k - 1] + np.sqrt(1 - 0.81) * white[..., k]
    # One fixed "head": the same volume-conduction mixing for every trial and every split
    # (another ``head`` seed stands for another subject).
    mixing = np.eye(c) + 0.4 * np.random.default_rng(head).standard_normal((c, c)) / np.sqrt(c)
    x = noise_uv * np.einsum("ij,njt->nit", mixing, ar)
    phase = rng.uniform(0, 2 * np.pi, (n_trials, 1, 1))
    x += 5.0 * ALPHA_TOPO[None, :, None] * np.sin(2 * np.pi * 10 * time_s + phase)
    # Sensory response, identical for both classes: N100 (negative) then P200.
    sensory = -4.0 * np.exp(-((time_s - 0.10) / 0.025) ** 2) + 3.0 * np.exp(
        -((time_s - 0.20) / 0.035) ** 2)
    x += SENSORY_TOPO[None, :, None] * sensory
    # P300 on target trials, latency jittered by ±40 ms.
    latency = 0.30 + rng.uniform(-0.04, 0.04, (n_trials, 1, 1))
    p300 = p300_uv * np.exp(-((time_s - latency) / 0.06) ** 2)
    x += y[:, None, None] * P300_TOPO[None, :, None] * p300
    return (x / 10.0).astype(np.float32), y.astype(np.int64)


def build_model(f1: int = 8, depth: int = 2, f2: int = 16) -> nn.Sequential:
    """EEGNet-8,2 (``lucid.models.eegnet_keras``): (N, 8, 128) -> (N, 2) logits."""
    return models.eegnet_keras(len(CHANNELS), 2, FS, F1=f1, D=depth, F2=f2, kernel_length=32,
                               dropout_rate=0.25, norm_rate=CLASSIFIER_MAX_NORM,
                               depthwise_max_norm=MAX_NORM)


def spatial_norms(model: nn.Sequential) -> np.ndarray:
    """L2 norm of every spatial filter (over axes 1, 2, 3 of the depthwise weight), (D·F1,)."""
    w = model.block1.conv_depthwise.weight.numpy().astype(np.float64)
    return np.sqrt((w ** 2).sum(axis=(1, 2, 3)))


def classifier_norms(model: nn.Sequential) -> np.ndarray:
    """L2 norm of each output unit's input weights in the classifier (over axis 1), (2,)."""
    w = model.dense.weight.numpy().astype(np.float64)
    return np.sqrt((w ** 2).sum(axis=1))


def load_checkpoint(path: str) -> tuple[nn.Sequential, dict]:
    """Rebuild the saved model and load its weights. Returns (model, metadata)."""
    return load_model(path, lambda meta: build_model())


def save_eeg_figures(out: str, x: np.ndarray, y: np.ndarray, model: nn.Sequential) -> list[str]:
    """erp.png: class-average waveforms at Pz; spatial_filters.png: the learned spatial filters
    and their norms against the max-norm bound."""
    plt = pyplot()
    t_ms = np.arange(FS) / FS * 1000
    pz = CHANNELS.index("Pz")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for label, name in ((0, "non-target"), (1, "target")):
        ax.plot(t_ms, 10 * x[y == label, pz].mean(axis=0), label=name)
    ax.set_xlabel("time after stimulus (ms)"), ax.set_ylabel("µV at Pz")
    ax.set_title("synthetic ERP, class averages"), ax.legend()
    paths = [os.path.join(out, "erp.png")]
    fig.savefig(paths[-1], dpi=100, bbox_inches="tight")
    plt.close(fig)
    w = model.block1.conv_depthwise.weight.numpy()[:, 0, :, 0]
    norms = spatial_norms(model)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [2, 1]})
    lim = float(np.abs(w).max())
    im = a1.imshow(w.T, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    a1.set_yticks(range(len(CHANNELS)), CHANNELS), a1.set_xlabel("spatial filter")
    a1.set_title("learned spatial filters"), fig.colorbar(im, ax=a1)
    a2.bar(range(len(norms)), norms)
    a2.axhline(MAX_NORM, color="red", linestyle="--", label=f"max_norm={MAX_NORM}")
    a2.set_title("filter L2 norms"), a2.set_xlabel("spatial filter"), a2.legend()
    paths.append(os.path.join(out, "spatial_filters.png"))
    fig.savefig(paths[-1], dpi=100, bbox_inches="tight")
    plt.close(fig)
    return paths


def main(argv: list[str] | None = None) -> dict:
    """Run the example; returns accuracy, filter norms, checkpoint/figure paths and the test set."""
    args = setup(example_parser(__doc__, "runs/eeg", "fewer trials and epochs (seconds)"), argv)
    n_train = 800 if args.quick else 1600
    epochs = args.epochs or (10 if args.quick else 15)
    t0 = time.time()
    xtr, ytr = make_erp_dataset(n_train, args.seed)
    xte, yte = make_erp_dataset(400, args.seed + 10_000)        # independent trials
    print(f"SYNTHETIC ERP data: {len(xtr)} train / {len(xte)} test "
          f"trials, {len(CHANNELS)} channels × {FS} samples")
    model = build_model()
    classes = ["non-target", "target"]
    history, acc, cm, _ = train_and_report(model, (xtr, ytr), (xte, yte), classes, epochs,
                                           compile=args.compile, precision=args.precision)
    norms = spatial_norms(model)
    on_bound = int((norms > MAX_NORM - 1e-4).sum())
    print(f"spatial filter L2 norms after training: max {norms.max():.4f} (bound {MAX_NORM}); "
          f"{on_bound} of {len(norms)} filters sit on the bound"
          + (" (the constraint is active)" if on_bound else " (the bound was not reached)"))
    cls = classifier_norms(model)
    print(f"classifier unit L2 norms: {', '.join(f'{v:.4f}' for v in cls)} "
          f"(bound {CLASSIFIER_MAX_NORM})")
    figs = (save_eeg_figures(args.out, xte, yte, model)
            + [save_curves(args.out, history), save_confusion(args.out, cm, classes)])
    ckpt = save_run(args.out, model, acc, {"epochs": epochs, "seed": args.seed}, figs, t0)
    return {"accuracy": acc, "norms": norms, "classifier_norms": cls, "checkpoint": ckpt,
            "figures": figs, "history": history, "x_test": xte, "y_test": yte}


if __name__ == "__main__":
    main()
