"""Samplers: the order in which a DataLoader visits a dataset's indices."""

from __future__ import annotations

from collections.abc import Iterator, Sized
from typing import Any

from lucid import random


class Sampler:
    """An iterable of dataset indices with a length."""

    def __iter__(self) -> Iterator[int]:  # pragma: no cover - abstract
        raise NotImplementedError

    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError


class DistributedSampler(Sampler):
    """Rank ``rank``'s shard of ``dataset`` among ``num_replicas`` data-parallel processes, with
    PyTorch's semantics.

    Every epoch the indices 0..N-1 are put in one order that every rank computes alike (a
    permutation seeded with ``seed + epoch`` when ``shuffle``, else 0..N-1). Unless ``drop_last``,
    the order is padded by wrapping around to a multiple of num_replicas; with ``drop_last`` its
    tail is cut to one. Rank r takes positions r, r + num_replicas, ...; so the shards are
    disjoint (before padding), together cover the dataset, and all have ``len(sampler)`` items.
    Call ``set_epoch(epoch)`` before each epoch for a fresh order.

    ``num_replicas`` and ``rank`` default to ``lucid.distributed``'s world size and rank (init
    it first). Drawing the order leaves lucid's global random stream where it was.
    """

    def __init__(self, dataset: Sized, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False) -> None:
        if num_replicas is None or rank is None:
            from lucid import distributed
            if not distributed.is_initialized():
                raise RuntimeError("DistributedSampler reads num_replicas and rank from "
                                   "lucid.distributed: call lucid.distributed.init() first, or "
                                   "pass both")
            num_replicas = distributed.get_world_size() if num_replicas is None else num_replicas
            rank = distributed.get_rank() if rank is None else rank
        _check_int("num_replicas", num_replicas, 1)
        _check_int("rank", rank, 0)
        if rank >= num_replicas:
            raise ValueError(f"rank={rank} is out of range for num_replicas={num_replicas}: rank "
                             f"must be in [0, {num_replicas - 1}]")
        _check_int("seed", seed, 0)
        n = len(dataset)
        self.dataset, self.num_replicas, self.rank = dataset, num_replicas, rank
        self.shuffle, self.seed, self.drop_last, self.epoch = bool(shuffle), seed, drop_last, 0
        if drop_last:
            self.num_samples = n // num_replicas          # the tail that does not divide is cut
        else:
            self.num_samples = -(-n // num_replicas)       # ceil: padded by wrapping around
        self.total_size = self.num_samples * num_replicas

    def set_epoch(self, epoch: int) -> None:
        """Use the order of this epoch (seed + epoch) from the next iteration on."""
        _check_int("epoch", epoch, 0)
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        if self.shuffle:
            order = _permutation(n, self.seed + self.epoch)
        else:
            order = list(range(n))
        if self.total_size > n:                             # wrap around, as often as needed
            order = (order * -(-self.total_size // n))[:self.total_size]
        else:
            order = order[:self.total_size]
        return iter(order[self.rank:self.total_size:self.num_replicas])


def _permutation(n: int, seed: int) -> list[int]:
    """A permutation of 0..n-1 drawn from lucid.random seeded with ``seed``, restoring the
    global stream afterwards so that sampling does not change anything else's draws."""
    state = random.get_state()
    try:
        random.seed(seed)
        return random.permutation(n, device="numpy").tolist()
    finally:
        random.set_state(state)


def _check_int(name: str, value: Any, low: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        rule = "a positive int" if low == 1 else "a non-negative int"
        raise ValueError(f"{name} must be {rule}, got {value!r}")
