"""Cross-rank helpers for the controllers (gloo or NCCL, through the trainer's ``accelerate.Accelerator``).

With one process every helper is a no-op that returns its input, so single-process training pays
nothing for them. With several, they are collective calls: **every rank must call them, in the same
order** (the trainer calls them from ``compute_loss`` and ``on_step_end``, which every rank runs).
"""

from __future__ import annotations

import torch

__all__ = ["gather_rows", "broadcast_from_main", "all_equal"]


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
