"""Datasets, samplers and a batching DataLoader (shuffled with ``lucid.random``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from lucid import random, tracing
from lucid.data.sampler import DistributedSampler, Sampler
from lucid.functions import stack
from lucid.tensor import Tensor

__all__ = ["DataLoader", "Dataset", "DistributedSampler", "Sampler", "TensorDataset"]


class Dataset:
    """Map-style dataset: ``__len__`` and ``__getitem__(i)``."""

    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def __getitem__(self, i: int) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


class TensorDataset(Dataset):
    """Rows of equally long tensors: item i is ``tuple(t[i] for t in tensors)``."""

    def __init__(self, *tensors: Tensor) -> None:
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        n = tensors[0].shape[0]
        for t in tensors:
            if not isinstance(t, Tensor) or t.ndim == 0 or t.shape[0] != n:
                raise ValueError(f"all tensors need the same first dimension {n}, got "
                                 f"{getattr(t, 'shape', t)}")
        self.tensors = tensors

    def __len__(self) -> int:
        return self.tensors[0].shape[0]

    def __getitem__(self, i: Any) -> tuple[Tensor, ...]:
        return tuple(t[i] for t in self.tensors)


class DataLoader:
    """Batches of ``batch_size`` items; ``shuffle`` draws a new order from lucid.random each
    epoch; ``sampler`` (an iterable of indices with a length, such as a DistributedSampler)
    gives the order instead, and excludes ``shuffle`` as in PyTorch; ``drop_last`` skips a final
    short batch. A TensorDataset is batched by one gather per tensor; other datasets by stacking
    their items."""

    def __init__(self, dataset: Dataset, batch_size: int = 1, shuffle: bool = False,
                 drop_last: bool = False, sampler: Sampler | None = None) -> None:
        if not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if sampler is not None:
            if shuffle:
                raise ValueError("sampler and shuffle=True are mutually exclusive: the sampler "
                                 "decides the order (a DistributedSampler shuffles itself)")
            if not (hasattr(sampler, "__iter__") and hasattr(sampler, "__len__")):
                raise TypeError(f"sampler must be an iterable of indices with a length, got "
                                f"{type(sampler).__name__}")
        self.dataset, self.batch_size, self.sampler = dataset, batch_size, sampler
        self.shuffle, self.drop_last = shuffle, drop_last

    def __len__(self) -> int:
        n = len(self.dataset) if self.sampler is None else len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[Any]:
        if self.sampler is not None:
            order = [int(i) for i in self.sampler]
        elif self.shuffle:
            order = random.permutation(len(self.dataset), device="numpy").tolist()
        else:
            order = list(range(len(self.dataset)))
        n = len(order)
        for start in range(0, n, self.batch_size):
            idx = order[start:start + self.batch_size]
            if len(idx) < self.batch_size and self.drop_last:
                return
            yield self._batch(idx)

    def _batch(self, idx: list[int]) -> Any:
        if isinstance(self.dataset, TensorDataset):
            batch = tuple(t[Tensor(idx, dtype="int64", device=t.backend)]
                          for t in self.dataset.tensors)
        else:
            items = [self.dataset[i] for i in idx]
            if isinstance(items[0], tuple):
                batch = tuple(_collate([it[j] for it in items]) for j in range(len(items[0])))
            else:
                batch = _collate(items)
        return _materialised(batch)


def _materialised(batch: Any) -> Any:
    """A batch evaluated before it is handed out (on a lazy backend: one small gather, outside
    any forward or backward), so that the checks of indices and class targets can read it
    (see lucid.indexing) instead of leaving it unchecked."""
    ts = [t for t in (batch if isinstance(batch, tuple) else (batch,)) if isinstance(t, Tensor)]
    lazy = [t for t in ts if t._be.lazy and not t._ready]
    if lazy and tracing.active() is None:
        lazy[0]._be.eval(*[t.data for t in lazy])
        for t in lazy:
            t._ready = True
    return batch


def _collate(values: list) -> Any:
    if isinstance(values[0], Tensor):
        return stack(values)
    return Tensor(values)
