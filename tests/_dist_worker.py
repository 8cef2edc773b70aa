"""One rank of the data-parallel test in test_distributed.py, and the same training run on one
process for its reference.

    MLX_RANK=r MLX_HOSTFILE=hosts.json LUCID_BACKEND=mlx python _dist_worker.py OUT {eager|compiled}

trains a small CNN (Conv2d + BatchNorm2d + ReLU + MaxPool2d + Linear) for STEPS steps on this
rank's DistributedSampler shard, BATCH samples a step, and writes OUT/rank<r>.npz: every
parameter and buffer after the broadcast ("0/<name>") and after each step ("<k>/<name>"), the
rank-averaged losses, and the number of all_sum calls the broadcast and each eager step made.

BatchNorm runs in eval mode: in train mode each rank would normalise by its own 8-sample batch
statistics, which differ from the 16-sample statistics of the joined batch (that needs a
synchronised BatchNorm), so the two runs would not be the same computation. Its running
statistics are set to random values instead, so that they are real buffers to broadcast.
"""

from __future__ import annotations

import os
import sys

import numpy as np

import lucid
from lucid import distributed as dist
from lucid import nn, optim
from lucid.data import DataLoader, DistributedSampler, TensorDataset

STEPS, BATCH, SAMPLES, SEED = 5, 8, 80, 3


def build_model(seed: int) -> nn.Module:
    """(N, 1, 8, 8) -> (N, 3), initialised from ``seed``, BatchNorm in eval mode."""
    lucid.random.seed(seed)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
    bn = model[1]
    bn.running_mean = lucid.random.randn(4) * 0.1
    bn.running_var = lucid.random.rand(4) + 0.5
    bn.num_batches_tracked = lucid.full((), 7 + seed, dtype="int64")
    return model.eval()


def dataset() -> TensorDataset:
    """The same SAMPLES seeded images and labels on every rank."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((SAMPLES, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 3, SAMPLES)
    return TensorDataset(lucid.tensor(x), lucid.tensor(y, dtype="int64"))


def snapshot(model: nn.Module) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in model.state_dict().items()}


def train(batch: int, compiled: bool, crash: bool = False) -> dict[str, np.ndarray]:
    """Every rank starts from its own seed, takes rank 0's weights by broadcast, then trains.
    On one process (size 1) this is plain training from rank 0's seed, on ``batch`` samples a
    step."""
    group = dist.init()
    be = lucid.backends.current()
    calls = [0]
    real_all_sum = be.all_sum

    def counting_all_sum(x, g):
        calls[0] += 1
        return real_all_sum(x, g)

    be.all_sum = counting_all_sum            # count the collectives this run makes
    try:
        return _train(group, batch, compiled, calls, crash)
    finally:
        be.all_sum = real_all_sum


def _train(group: dist.Group, batch: int, compiled: bool, calls: list[int], crash: bool) -> dict:
    model = build_model(SEED + group.rank())
    dist.broadcast_parameters(model, src=0)
    out = {f"0/{k}": v for k, v in snapshot(model).items()}
    counts = [calls[0]]
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    def step(xb, yb):
        opt.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        dist.all_reduce_gradients(model)
        opt.step()
        return dist.all_reduce(loss.detach(), op="mean")

    if compiled:
        step = lucid.compile(step, state=[model, opt])
    data = dataset()
    sampler = DistributedSampler(data, shuffle=True, seed=11)
    sampler.set_epoch(1)
    loader = DataLoader(data, batch_size=batch, sampler=sampler)
    losses = []
    for k, (xb, yb) in enumerate(loader, start=1):
        if k > STEPS:
            break
        if crash and k == 2 and group.rank() == 1:
            raise RuntimeError("rank 1 fails on purpose")
        before = calls[0]
        losses.append(step(xb, yb).item())
        counts.append(calls[0] - before)
        out.update({f"{k}/{n}": v for n, v in snapshot(model).items()})
        print(f"rank {group.rank()} of {group.size()}: step {k} loss {losses[-1]:.6f}",
              flush=True)
    out["losses"] = np.array(losses)
    out["all_sum_calls"] = np.array(counts)
    return out


def traced_reductions() -> dict[str, np.ndarray]:
    """all_reduce_gradients and all_reduce inside ``mx.compile`` (what lucid.compile builds on).
    Rank r's inputs are (r + 1) * base + 1: gradients in float32 and float16 (two buckets), then
    an int32 tensor summed; on two ranks the mean is 1.5 * base + 1 and the sum 3 * base."""
    import mlx.core as mx

    shapes = [(3, 2), (5,), ()]

    def reduce(*arrays):
        params = [nn.Parameter(lucid.Tensor(a)) for a in arrays[:3]]
        for p, a in zip(params, arrays):
            p.grad = lucid.Tensor(a)
        dist.all_reduce_gradients(params)
        total = dist.all_reduce(lucid.Tensor(arrays[3]), op="sum")
        return tuple(p.grad.data for p in params) + (total.data,)

    scale = dist.get_rank() + 1.0
    inputs = [mx.arange(int(np.prod(s)), dtype=mx.float32).reshape(s) * scale + 1 for s in shapes]
    inputs[2] = inputs[2].astype(mx.float16)
    inputs.append(mx.array([1, 2, 3], dtype=mx.int32) * int(scale))
    outputs = mx.compile(reduce)(*inputs)
    return {f"traced/{i}": np.array(a) for i, a in enumerate(outputs)}


def main(path: str, mode: str) -> None:
    lucid.set_backend("mlx")
    result = train(BATCH, mode == "compiled", crash=mode == "crash")
    if mode == "eager":
        result.update(traced_reductions())
    rank = dist.get_rank()
    np.savez(os.path.join(path, f"rank{rank}.npz"), **result)
    print(f"rank {rank} of {dist.get_world_size()}: done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
