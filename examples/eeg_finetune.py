"""Bring a braindecode EEGNet into lucid and fine-tune it on a new subject.

No model hub is reachable here, so the example makes its own checkpoint first: it trains
braindecode's ``EEGNet`` with PyTorch on one simulated subject (the synthetic ERP task of
eeg_maxnorm.py) and saves its state dict as a safetensors file. Then lucid takes over:
``lucid.models.EEGNet`` with the same arguments loads that file with
``lucid.models.load_torch_state_dict`` (strict: every key and shape must match), gives the same
predictions as the torch model, and is fine-tuned on a few trials of a second subject (another
head: different volume conduction), on MLX where it is installed.

    python examples/eeg_finetune.py [--backend numpy|mlx] [--quick] [--out DIR]

Needs torch and braindecode for the first part (pip install torch braindecode); pass
``--checkpoint FILE`` to start from a braindecode EEGNet state dict saved elsewhere instead
(n_chans=8, n_outputs=2, n_times=128).
"""

from __future__ import annotations

import os
import time

import numpy as np
from _braindecode import models as braindecode_models
from _common import example_parser, predict, save_curves, save_run, setup, train_and_report
from eeg_maxnorm import CHANNELS, FS, make_erp_dataset

import lucid
from lucid import models

EEGNET = {"n_chans": len(CHANNELS), "n_outputs": 2, "n_times": FS, "kernel_length": 32,
          "drop_prob": 0.25}
SOURCE_HEAD, TARGET_HEAD = 1234, 77


def pretrain_with_braindecode(path: str, n_trials: int, epochs: int, seed: int) -> float:
    """Train braindecode's EEGNet on the source subject with torch (Adam, batch 32) and save its
    state dict to ``path`` (safetensors). Returns its accuracy on fresh source trials."""
    bd = braindecode_models()
    if bd is None:
        raise SystemExit("this step needs torch and braindecode (pip install torch braindecode), "
                         "or pass --checkpoint FILE")
    import torch
    from safetensors.torch import save_file
    torch.manual_seed(seed)
    net = bd.EEGNet(**EEGNET)
    x, y = make_erp_dataset(n_trials, seed, head=SOURCE_HEAD)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        net.train()
        for idx in torch.randperm(len(xt), generator=gen).split(32):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(xt[idx]), yt[idx]).backward()
            opt.step()
    net.eval()
    xs, ys = make_erp_dataset(400, seed + 1, head=SOURCE_HEAD)
    with torch.no_grad():
        acc = float((net(torch.from_numpy(xs)).argmax(1).numpy() == ys).mean())
        reference = net(torch.from_numpy(xs[:8])).numpy()
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, path)
    np.save(path + ".logits.npy", reference)
    return acc


def main(argv: list[str] | None = None) -> dict:
    """Run the example; returns the accuracies before and after fine-tuning and the paths."""
    ap = example_parser(__doc__, "runs/eeg_finetune", "fewer trials and epochs (seconds)")
    ap.add_argument("--checkpoint", help="a braindecode EEGNet state dict (safetensors) to "
                    "start from instead of training one with torch")
    args = setup(ap, argv)
    t0 = time.time()
    path = args.checkpoint
    if path is None:
        path = os.path.join(args.out, "braindecode_eegnet.safetensors")
        acc_src = pretrain_with_braindecode(path, 800 if args.quick else 1600,
                                            6 if args.quick else 15, args.seed)
        print(f"braindecode EEGNet trained with torch on subject A: accuracy {acc_src:.3f}; "
              f"saved {path}")
    model = models.EEGNet(**EEGNET)
    models.load_torch_state_dict(model, path)                 # strict: keys and shapes
    result = {"checkpoint_in": path}
    model.eval()
    if os.path.isfile(path + ".logits.npy"):
        xs, _ = make_erp_dataset(400, args.seed + 1, head=SOURCE_HEAD)
        with lucid.no_grad():
            ours = model(lucid.tensor(xs[:8])).numpy()
        diff = float(np.abs(ours - np.load(path + ".logits.npy")).max())
        result["logits_diff"] = diff
        print(f"lucid's EEGNet reproduces the torch model's logits: max difference {diff:.1e}")
    n_tune = 200 if args.quick else 300
    xtr, ytr = make_erp_dataset(n_tune, args.seed + 2, head=TARGET_HEAD)
    xte, yte = make_erp_dataset(400, args.seed + 3, head=TARGET_HEAD)
    before = float((predict(model, xte) == yte).mean())
    print(f"subject B before fine-tuning: accuracy {before:.3f}; fine-tuning on {n_tune} trials")
    epochs = args.epochs or (6 if args.quick else 12)
    history, after, _, _ = train_and_report(model, (xtr, ytr), (xte, yte),
                                            ["non-target", "target"], epochs, lr=3e-3,
                                            compile=args.compile, precision=args.precision)
    print(f"subject B after fine-tuning: accuracy {after:.3f} (before {before:.3f})")
    figs = [save_curves(args.out, history)]
    ckpt = save_run(args.out, model, after, {"epochs": epochs, "seed": args.seed,
                                             "accuracy_before": before}, figs, t0)
    return {**result, "accuracy": after, "accuracy_before": before, "checkpoint": ckpt,
            "figures": figs, "history": history, "x_test": xte, "y_test": yte}


def load_checkpoint(path: str) -> tuple[lucid.nn.Module, dict]:
    """Rebuild the fine-tuned model from ``main``'s checkpoint. Returns (model, metadata)."""
    from _common import load_model
    return load_model(path, lambda meta: models.EEGNet(**EEGNET))


if __name__ == "__main__":
    main()
