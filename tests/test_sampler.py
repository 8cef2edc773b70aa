"""DistributedSampler: disjoint shards that together cover the dataset, equal lengths (padded by
wrapping around unless drop_last), one order per seed and epoch on every rank, PyTorch's index
layout, untouched global random stream, argument errors; DataLoader(sampler=)."""

from __future__ import annotations

import numpy as np
import pytest

import lucid
from lucid import distributed as dist
from lucid.data import DataLoader, DistributedSampler, TensorDataset


def _shards(n, replicas, epoch=0, **kw):
    out = []
    for rank in range(replicas):
        s = DistributedSampler(range(n), num_replicas=replicas, rank=rank, **kw)
        s.set_epoch(epoch)
        out.append(list(s))
    return out


@pytest.mark.parametrize("n, replicas", [(10, 2), (10, 3), (7, 4), (3, 5), (1, 1), (0, 2)])
@pytest.mark.parametrize("shuffle", [True, False])
def test_shards_are_disjoint_cover_and_have_equal_length(n, replicas, shuffle):
    shards = _shards(n, replicas, shuffle=shuffle, seed=5)
    length = -(-n // replicas)
    assert all(len(s) == length for s in shards)
    assert [len(DistributedSampler(range(n), replicas, r)) for r in range(replicas)] == \
        [length] * replicas
    joined = [i for s in shards for i in s]
    assert sorted(set(joined)) == list(range(n))          # covers every index
    # padding repeats the first indices of the order; without it the shards are disjoint
    assert len(joined) - len(set(joined)) == length * replicas - n


@pytest.mark.parametrize("n, replicas", [(10, 3), (7, 4), (3, 5), (8, 4)])
def test_drop_last_cuts_the_tail_instead(n, replicas):
    shards = _shards(n, replicas, shuffle=True, seed=1, drop_last=True)
    assert all(len(s) == n // replicas for s in shards)
    joined = [i for s in shards for i in s]
    assert len(set(joined)) == len(joined) == replicas * (n // replicas)
    assert set(joined) <= set(range(n))


def test_same_seed_and_epoch_give_the_same_order_on_every_rank():
    a, b = _shards(50, 3, epoch=4, seed=9), _shards(50, 3, epoch=4, seed=9)
    assert a == b
    lucid.random.seed(123)                # the global stream does not enter the order
    assert _shards(50, 3, epoch=4, seed=9) == a


def test_each_epoch_and_seed_reshuffles():
    orders = [tuple(i for s in _shards(40, 2, epoch=e, seed=0) for i in s) for e in range(4)]
    assert len(set(orders)) == 4
    assert _shards(40, 2, epoch=0, seed=1) != _shards(40, 2, epoch=0, seed=0)
    assert _shards(40, 2, shuffle=False) == [list(range(0, 40, 2)), list(range(1, 40, 2))]
    s = DistributedSampler(range(40), 2, 0, seed=3)
    first = list(s)
    assert list(s) == first                  # iterating again without set_epoch: same order
    s.set_epoch(1)
    assert list(s) != first


def test_the_global_random_stream_is_left_where_it_was():
    lucid.random.seed(7)
    expected = lucid.random.rand(4).numpy()
    lucid.random.seed(7)
    list(DistributedSampler(range(30), 2, 1, seed=0))
    np.testing.assert_array_equal(lucid.random.rand(4).numpy(), expected)


def test_index_layout_matches_pytorch_without_shuffle():
    torch = pytest.importorskip("torch")
    from torch.utils.data import DistributedSampler as TorchSampler
    for n, replicas, drop_last in [(10, 3, False), (10, 3, True), (3, 5, False), (7, 2, True)]:
        for rank in range(replicas):
            ours = list(DistributedSampler(range(n), replicas, rank, shuffle=False,
                                           drop_last=drop_last))
            theirs = list(TorchSampler(range(n), replicas, rank, shuffle=False,
                                       drop_last=drop_last))
            assert ours == theirs, (n, replicas, rank, drop_last)
    assert torch is not None


@pytest.mark.parametrize("kwargs, match", [
    ({"num_replicas": 2, "rank": 2}, r"rank=2 is out of range for num_replicas=2.*\[0, 1\]"),
    ({"num_replicas": 2, "rank": -1}, "rank must be a non-negative int, got -1"),
    ({"num_replicas": 0, "rank": 0}, "num_replicas must be a positive int, got 0"),
    ({"num_replicas": -3, "rank": 0}, "num_replicas must be a positive int, got -3"),
    ({"num_replicas": 2.0, "rank": 0}, "num_replicas must be a positive int, got 2.0"),
    ({"num_replicas": 2, "rank": "1"}, "rank must be a non-negative int, got '1'"),
    ({"num_replicas": 2, "rank": True}, "rank must be a non-negative int, got True"),
    ({"num_replicas": 2, "rank": 0, "seed": -1}, "seed must be a non-negative int, got -1"),
    ({"num_replicas": 2, "rank": 0, "seed": 0.5}, "seed must be a non-negative int, got 0.5"),
])
def test_bad_arguments_name_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DistributedSampler(range(4), **kwargs)


def test_set_epoch_checks_its_argument():
    s = DistributedSampler(range(4), 1, 0)
    for bad in (-1, 1.5, "2"):
        with pytest.raises(ValueError, match=f"epoch must be a non-negative int, got {bad!r}"):
            s.set_epoch(bad)
    assert s.epoch == 0


def test_replicas_and_rank_default_to_the_process_group(monkeypatch):
    monkeypatch.setattr(dist, "_group", None)
    with pytest.raises(RuntimeError, match=r"distributed.init\(\)"):
        DistributedSampler(range(4))
    dist.init()
    s = DistributedSampler(range(5))
    assert (s.num_replicas, s.rank, len(s)) == (1, 0, 5)
    assert sorted(s) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="rank=1 is out of range for num_replicas=1"):
        DistributedSampler(range(5), rank=1)


def test_dataloader_batches_the_sampler_order(backend):
    x = lucid.arange(0, 20, 1).reshape(10, 2)
    data = TensorDataset(x, lucid.arange(0, 10, 1))
    sampler = DistributedSampler(data, num_replicas=3, rank=1, seed=2)
    sampler.set_epoch(5)
    loader = DataLoader(data, batch_size=3, sampler=sampler)
    order = list(sampler)
    assert len(loader) == 2 and len(order) == 4
    batches = [(xb.numpy(), yb.numpy()) for xb, yb in loader]
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), order)
    np.testing.assert_array_equal(batches[0][0], x.numpy()[order[:3]])
    assert [len(b[1]) for b in batches] == [3, 1]
    dropped = DataLoader(data, batch_size=3, sampler=sampler, drop_last=True)
    assert len(dropped) == 1 and [len(b[1]) for b in dropped] == [3]


def test_dataloader_rejects_sampler_with_shuffle():
    data = TensorDataset(lucid.zeros(4, 1))
    with pytest.raises(ValueError, match="mutually exclusive"):
        DataLoader(data, batch_size=2, shuffle=True, sampler=DistributedSampler(data, 1, 0))
    with pytest.raises(TypeError, match="sampler must be an iterable of indices"):
        DataLoader(data, batch_size=2, sampler=3)
