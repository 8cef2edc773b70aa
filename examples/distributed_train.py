"""The digits CNN of examples/digits.py, trained data parallel over several processes with
lucid.distributed on MLX's distributed layer.

    mlx.launch -n 2 --python "$(which python)" examples/distributed_train.py --quick
    mlx.launch --hostfile hosts.json --python "$(which python)" examples/distributed_train.py
    python examples/distributed_train.py                  # one process: plain training

Every rank starts from rank 0's weights, trains on its DistributedSampler shard of each global
batch (--batch-size is the global batch, split evenly over the ranks), and averages gradients
with one bucketed all-reduce per step, so N ranks take the same optimisation steps as one
process on the whole batch. BatchNorm normalises by each rank's own part of the batch; its
running statistics are averaged over the ranks after every epoch. Loss and accuracies are
averaged over ranks (the test set is split among them too); only rank 0 prints them and writes
the checkpoint and figures.

At the end every rank compares its parameters and buffers with rank 0's, bit for bit. Rank 0
prints ``all N rank(s) hold identical parameters`` or ``FAILED: ...``; when any rank disagrees,
every rank exits with status 1. mlx.launch exits 0 even when a rank fails, so check for that
line (or for mlx.launch's "exited with code" warning).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
from _common import (
    choose_backend,
    confusion,
    example_parser,
    peak_memory_line,
    print_report,
    save_confusion,
    save_curves,
    save_kernels,
    save_run,
    train_step,
)
from digits import build_model, load_digits

import lucid
from lucid import distributed as dist
from lucid import nn, optim
from lucid.data import DataLoader, DistributedSampler, TensorDataset


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = example_parser(__doc__, "runs/distributed", "fewer epochs (seconds)")
    ap.add_argument("--batch-size", type=int, default=32,
                    help="global batch per step, divided evenly among the ranks")
    ap.add_argument("--subset", type=int, default=None,
                    help="train on only the first N training digits (smoke tests)")
    ap.add_argument("--perturb-rank", type=int, default=None,
                    help="testing only: change this rank's weights before the final check, "
                         "which must then fail")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    """Run on this rank; returns the test accuracy, whether the ranks agree, and (rank 0) the
    checkpoint and figure paths."""
    args = parse(argv)
    backend_line = choose_backend(args)
    group = dist.init()
    rank, world = group.rank(), group.size()
    if args.batch_size % world:
        raise SystemExit(f"--batch-size {args.batch_size} must be divisible by the {world} ranks")
    epochs = args.epochs or (3 if args.quick else 8)
    t0 = time.time()
    (xtr, ytr), (xte, yte) = load_digits(args.seed)        # the same split on every rank
    xtr, ytr = xtr[:args.subset], ytr[:args.subset]
    lucid.random.seed(args.seed)
    model = build_model()
    dist.broadcast_parameters(model, src=0)                 # one starting point for all
    lucid.random.seed(args.seed + 1 + rank)                 # each rank its own dropout masks
    say = print if rank == 0 else (lambda *a, **k: None)
    say(backend_line)
    say(f"{world} rank(s), {args.batch_size // world} of each batch of "
        f"{args.batch_size} per rank; {len(xtr)} train and {len(xte)} test digits")

    history = train(model, (xtr, ytr), (xte, yte), epochs, args.batch_size // world, say,
                    args.compile, args.precision)
    cm = confusion_over_ranks(model, xte, yte)
    acc = float(np.trace(cm) / cm.sum())
    result = {"accuracy": acc, "history": history}
    if rank == 0:
        os.makedirs(args.out, exist_ok=True)
        classes = [str(i) for i in range(10)]
        print_report(cm, classes)
        figs = [save_kernels(args.out, model[0].weight.numpy()[:8, 0],
                             "first-layer filters (8 of 16)", annotate=False),
                save_curves(args.out, history), save_confusion(args.out, cm, classes)]
        meta = {"epochs": epochs, "seed": args.seed, "ranks": world}
        result.update(figures=figs, checkpoint=save_run(args.out, model, acc, meta, figs, t0))

    if args.perturb_rank == rank:
        with lucid.no_grad():
            model[0].bias.copy_(model[0].bias + 1e-3)
    disagree = ranks_disagreeing(model)
    result["ranks_agree"] = disagree == 0
    if disagree:
        say(f"FAILED: {disagree} of {world} ranks hold parameters that differ from rank 0's")
    else:
        say(f"all {world} rank(s) hold identical parameters")
    return result


def train(model: nn.Module, train_set: tuple[np.ndarray, np.ndarray],
          test_set: tuple[np.ndarray, np.ndarray], epochs: int, batch: int, say,
          compile: bool = True, precision: str = "fp32") -> dict:
    """Adam with cosine decay as in digits.py, on this rank's shard (the step, gradient
    all-reduce included, compiled unless ``compile`` is False); returns the per-epoch history
    (loss, train_acc, test_acc), each averaged over all ranks."""
    opt = optim.Adam(model.parameters(), lr=3e-3)
    scheduler = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    # the mean of the gradients over all ranks' batches, before every optimizer step
    step = train_step(model, opt, compile,
                      after_backward=lambda: dist.all_reduce_gradients(model),
                      precision=precision)
    data = TensorDataset(lucid.tensor(train_set[0]), lucid.tensor(train_set[1]))
    # drop_last: every rank takes the same number of steps, all with full batches
    sampler = DistributedSampler(data, shuffle=True, seed=0)
    loader = DataLoader(data, batch_size=batch, sampler=sampler, drop_last=True)
    history: dict[str, list[float]] = {"loss": [], "train_acc": [], "test_acc": []}
    on_mlx = lucid.get_backend() == "mlx"
    if on_mlx:
        lucid.memory.reset_peak()
    for epoch in range(epochs):
        model.train()
        sampler.set_epoch(epoch)
        loss_sum, correct, seen = 0.0, 0, 0
        for xb, yb in loader:
            loss, hits = step(xb, yb)
            loss_sum += loss.item() * yb.shape[0]
            correct += int(hits.item())
            seen += yb.shape[0]
        scheduler.step()
        average_batchnorm_statistics(model)
        totals = dist.all_reduce(lucid.tensor([loss_sum, correct, seen]), op="sum").numpy()
        cm = confusion_over_ranks(model, *test_set)
        history["loss"].append(float(totals[0] / totals[2]))
        history["train_acc"].append(float(totals[1] / totals[2]))
        history["test_acc"].append(float(np.trace(cm) / cm.sum()))
        say(f"  epoch {epoch + 1}/{epochs}: loss {history['loss'][-1]:.3f}  train acc "
            f"{history['train_acc'][-1]:.3f}  test acc {history['test_acc'][-1]:.3f}  "
            f"(all ranks)")
    if on_mlx:
        say(peak_memory_line() + " on rank 0")
    return history


def average_batchnorm_statistics(model: nn.Module) -> None:
    """Replace each rank's BatchNorm running mean and variance by their average over the
    ranks, so that every rank evaluates (and saves) the same model."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d) and m.running_mean is not None:
            for buf in (m.running_mean, m.running_var):
                dist.all_reduce(buf, op="mean")


def confusion_over_ranks(model: nn.Module, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The (10, 10) confusion matrix of the whole test set: each rank predicts every
    world-th sample (disjoint, no padding, so nothing is counted twice) and the counts are
    summed over the ranks."""
    rank, world = dist.get_rank(), dist.get_world_size()
    xs, ys = x[rank::world], y[rank::world]
    model.eval()
    pred = [np.zeros(0, dtype=np.int64)]
    with lucid.no_grad():
        for i in range(0, len(xs), 256):
            pred.append(model(lucid.tensor(xs[i:i + 256])).argmax(axis=1).numpy())
    cm = lucid.tensor(confusion(ys, np.concatenate(pred), 10).astype(np.int32), dtype="int32")
    return dist.all_reduce(cm, op="sum").numpy().astype(np.int64)


def ranks_disagreeing(model: nn.Module) -> int:
    """How many ranks hold parameters or buffers that differ from rank 0's in any bit. Each
    rank receives rank 0's values by broadcast into a copy, compares, and the mismatches are
    summed over the ranks, so every rank gets the same answer."""
    reference = build_model()
    reference.load_state_dict(model.state_dict())      # (what a group of one "broadcasts")
    dist.broadcast_parameters(reference, src=0)
    # Read everything before comparing: a collective runs when its result is evaluated, and a
    # comparison that stopped at the first difference would leave this rank's later
    # all-reduces unmatched while the other ranks wait in them.
    mine = {k: v.numpy() for k, v in model.state_dict().items()}
    rank0 = {k: v.numpy() for k, v in reference.state_dict().items()}
    differs = any(not np.array_equal(mine[k], rank0[k]) for k in mine)
    if differs:
        print(f"rank {dist.get_rank()}: parameters differ from rank 0's", file=sys.stderr)
    count = dist.all_reduce(lucid.tensor([int(differs)], dtype="int32"), op="sum")
    return int(count.item())


if __name__ == "__main__":
    sys.exit(0 if main()["ranks_agree"] else 1)
