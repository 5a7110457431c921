"""The training row order (`dist.GlobalBatchOrder`) gives the same global batches for any number of processes,
through accelerate's own sharding (`BatchSamplerShard`, as `accelerator.prepare` builds it)."""

from __future__ import annotations

import pytest
import torch
from accelerate.data_loader import BatchSamplerShard, SeedableRandomSampler
from torch.utils.data import BatchSampler

from dpo_sweep_worker.dist import GlobalBatchOrder


def global_batches(rows: int, per_process: int, processes: int, epoch: int, seed: int = 42) -> list[list[int]]:
    """The global micro-batches a run sees: rank r's r-th batch of every round, concatenated in rank order."""
    order = GlobalBatchOrder(rows, per_process * processes, seed)
    order.set_epoch(epoch)
    batches = BatchSampler(order, per_process, drop_last=False)
    if processes == 1:
        return [list(b) for b in batches]
    shards = [list(BatchSamplerShard(batches, processes, r, split_batches=False, even_batches=True)) for r in range(processes)]
    assert len({len(s) for s in shards}) == 1  # every rank the same number of batches, each of per_process rows
    assert all(len(b) == per_process for s in shards for b in s)
    return [sum((s[i] for s in shards), []) for i in range(len(shards[0]))]


@pytest.mark.parametrize("rows", [32, 20, 17, 5])
@pytest.mark.parametrize("processes", [2, 3])
def test_n_processes_see_the_global_batches_of_one(rows, processes):
    for epoch in (0, 1):
        one = global_batches(rows, 4 * processes, 1, epoch)
        many = global_batches(rows, 4, processes, epoch)
        assert many == one
        assert all(len(b) == 4 * processes for b in one)  # the last one is completed, not short
        flat = sum(one, [])
        assert sorted(set(flat)) == list(range(rows))  # every row once per epoch, then the completion
        assert flat[rows:] == (flat[:rows] * 4)[: len(flat) - rows]  # completed with the epoch's first rows


def test_the_permutation_is_accelerates_seedable_one_and_changes_with_the_epoch():
    """Runs whose row count is a multiple of the global batch keep the order they had with accelerate's sampler."""
    for epoch in (0, 1, 2):
        ref = SeedableRandomSampler(data_source=range(24), data_seed=42)
        ref.set_epoch(epoch)
        order = GlobalBatchOrder(24, 8, 42)
        order.set_epoch(epoch)
        assert list(order) == list(ref)
    a, b = GlobalBatchOrder(24, 8, 42), GlobalBatchOrder(24, 8, 42)
    b.set_epoch(1)
    assert list(a) != list(b) and sorted(a) == sorted(b)
    assert list(GlobalBatchOrder(24, 8, 7)) != list(a)


def test_length_and_drop_last():
    assert len(GlobalBatchOrder(20, 8, 0)) == 24
    assert len(GlobalBatchOrder(20, 8, 0, drop_last=True)) == 16
    assert len(list(GlobalBatchOrder(3, 8, 0))) == 8  # smaller than one global batch: cycles
    with pytest.raises(ValueError):
        GlobalBatchOrder(0, 8, 0)
    assert torch.equal(torch.tensor(list(GlobalBatchOrder(20, 8, 0))), torch.tensor(list(GlobalBatchOrder(20, 8, 0))))
