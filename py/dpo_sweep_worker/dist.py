"""Cross-rank helpers: the controllers' collectives and a training row order that does not depend on the
number of processes.

**Collectives** (gloo or NCCL, through the trainer's ``accelerate.Accelerator``). With one process every
helper is a no-op that returns its input, so single-process training pays nothing for them. With several,
they are collective calls: **every rank must call them, in the same order** (the trainer calls them from
``compute_loss`` and ``on_step_end``, which every rank runs).

**Row order** (:class:`GlobalBatchOrder`, :class:`GlobalBatchOrderMixin`). A run with N processes and
``batch_size`` B sees exactly the global batches of a run with one process and ``batch_size`` N·B:

* the order of the rows is one permutation per epoch, ``torch.randperm(rows)`` from a CPU generator
  seeded with ``data_seed + epoch`` — the permutation accelerate's ``SeedableRandomSampler`` draws, which
  does not depend on N;
* the permutation is cut into *global micro-batches* of G = N·B consecutive rows; accelerate's
  ``BatchSamplerShard`` (``split_batches=False``) hands rank r the r-th block of B rows of each, so the
  ranks' rows, concatenated in rank order (as ``gather_rows`` does), are the global micro-batch in order;
* the epoch's last global micro-batch is **completed with the first rows of the same permutation** when
  ``rows`` is not a multiple of G. Without this, one process trains on a short last batch while
  accelerate's ``even_batches`` completes it for N processes (with a different number of rows), and the
  two runs differ at every epoch end. With it every optimizer step of every world size sees G·grad_accum
  rows (a constant batch size for the controllers' statistics too); a row may be seen twice in an epoch.
"""

from __future__ import annotations

import math

import torch
from transformers import TrainerCallback

__all__ = ["gather_rows", "broadcast_from_main", "all_equal", "GlobalBatchOrder", "GlobalBatchOrderMixin"]


def gather_rows(accelerator, rows: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
    """Concatenate ``rows`` (``[n_r, ...]``, detached) from every rank in rank order.

    Local sizes may differ between ranks (the sizes are gathered first and the padding is cut off
    again), so a short last batch on one rank is handled. Returns ``(gathered, sizes)`` where
    ``sizes[r]`` is rank r's row count; this rank's rows are
    ``gathered[sum(sizes[:rank]) : sum(sizes[:rank + 1])]``.
    """
    rows = rows.detach()
    world = accelerator.num_processes
    if world == 1:
        return rows, [int(rows.shape[0])]
    n = torch.tensor([rows.shape[0]], device=rows.device, dtype=torch.long)
    sizes = [int(s) for s in accelerator.gather(n).tolist()]
    longest = max(sizes)
    if rows.shape[0] < longest:
        pad = rows.new_zeros((longest - rows.shape[0], *rows.shape[1:]))
        rows = torch.cat([rows, pad], dim=0)
    everything = accelerator.gather(rows.contiguous())  # [world * longest, ...]
    parts = [everything[r * longest : r * longest + sizes[r]] for r in range(world)]
    return torch.cat(parts, dim=0), sizes


def broadcast_from_main(accelerator, tensor: torch.Tensor) -> torch.Tensor:
    """Rank 0's copy of ``tensor`` on every rank (same shape and dtype on every rank required)."""
    if accelerator.num_processes == 1:
        return tensor
    from accelerate.utils import broadcast

    return broadcast(tensor.contiguous().to(accelerator.device), from_process=0).to(tensor.device)


def all_equal(accelerator, values: list[float]) -> bool:
    """Whether a small vector of floats is bit-identical on every rank (a consistency check)."""
    if accelerator.num_processes == 1:
        return True
    t = torch.tensor(values, dtype=torch.float64, device=accelerator.device).reshape(1, -1)
    everything = accelerator.gather(t)
    return bool(torch.all(everything == everything[0:1]).item())


# --- row order -------------------------------------------------------------------------------------


class GlobalBatchOrder(torch.utils.data.Sampler):
    """Row indices for one epoch: a seeded permutation, completed to a whole number of global micro-batches.

    ``global_batch`` = per-process batch size × number of processes. Deliberately not a ``RandomSampler``
    subclass, so that ``accelerate.prepare`` keeps it (it swaps a ``RandomSampler`` for its own
    ``SeedableRandomSampler``); every rank builds the same one and accelerate's ``BatchSamplerShard``
    takes this rank's blocks of it. ``set_epoch`` is called by the Trainer before every epoch.
    """

    def __init__(self, num_rows: int, global_batch: int, seed: int, drop_last: bool = False):
        if num_rows <= 0 or global_batch <= 0:
            raise ValueError(f"GlobalBatchOrder needs rows and a batch size (got {num_rows} rows, global batch {global_batch})")
        self.num_rows, self.global_batch, self.seed, self.drop_last = int(num_rows), int(global_batch), int(seed), bool(drop_last)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        batches = self.num_rows // self.global_batch if self.drop_last else math.ceil(self.num_rows / self.global_batch)
        return batches * self.global_batch

    def indices(self, epoch: int | None = None) -> list[int]:
        """The epoch's row order (``len(self)`` indices)."""
        generator = torch.Generator(device="cpu")
        generator.manual_seed(self.seed + (self.epoch if epoch is None else int(epoch)))
        order = torch.randperm(self.num_rows, generator=generator).tolist()
        total = len(self)
        if total <= len(order):
            return order[:total]
        reps = math.ceil(total / len(order))  # a dataset smaller than one global batch cycles
        return (order * reps)[:total]

    def __iter__(self):
        return iter(self.indices())


class _SetOrderEpoch(TrainerCallback):
    """Sets the order's epoch at every epoch start from the trainer state (``floor(state.epoch)``).

    The Trainer also calls ``set_epoch`` itself, but after a resume in a later epoch with several
    processes its call does not reach a sampler below accelerate's ``SkipBatchSampler`` and
    ``BatchSamplerShard``; this one always does (``state.epoch`` is restored from the checkpoint).
    """

    def __init__(self, trainer):
        self.trainer = trainer

    def on_epoch_begin(self, args, state, control, **kwargs):
        order = getattr(self.trainer, "_global_batch_order", None)
        if order is not None:
            order.set_epoch(int(math.floor((state.epoch or 0.0) + 1e-9)))


class GlobalBatchOrderMixin:
    """For a ``transformers.Trainer`` subclass: train on :class:`GlobalBatchOrder` (see the module docstring).

    Only the default ``train_sampling_strategy="random"`` on a sized dataset is replaced; the seed is
    ``args.data_seed`` (else ``args.seed``), as for accelerate's seedable sampler, so runs whose row count is a
    multiple of the global micro-batch keep the order they had before.
    """

    def __init__(self, *args, **kwargs):
        self._global_batch_order: GlobalBatchOrder | None = None
        super().__init__(*args, **kwargs)
        self.add_callback(_SetOrderEpoch(self))

    def _get_train_sampler(self, train_dataset=None):
        from transformers.trainer_utils import has_length

        dataset = train_dataset if train_dataset is not None else self.train_dataset
        if dataset is None or not has_length(dataset) or self.args.train_sampling_strategy != "random":
            return super()._get_train_sampler(train_dataset)
        if getattr(self.accelerator, "split_batches", False):
            raise RuntimeError("GlobalBatchOrder assumes accelerate's split_batches=False (one per-process batch per rank)")
        seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
        global_batch = self.args.train_batch_size * max(1, self.args.world_size)
        self._global_batch_order = GlobalBatchOrder(len(dataset), global_batch, seed, drop_last=self.args.dataloader_drop_last)
        return self._global_batch_order
