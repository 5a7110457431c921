"""Sequence log-probabilities and the (masked) DPO loss.

Equations follow ``docs/seed-spec.md`` §1.1 (the **[FIX2]** behaviour: prompt and completion are
scored together, prompt columns carry label -100) and Rafailov et al. 2023, "Direct Preference
Optimization", eq. 7; the masked mean is the β-DPO loss of seed-spec §1.3 step 5 (Wu et al. 2024).

Only torch and the standard library are imported here: no transformers, no TRL.

Shapes: ``B`` = batch size, ``L`` = sequence length, ``V`` = vocabulary size.
"""

from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F

__all__ = ["IGNORE_INDEX", "sequence_logps", "dpo_loss", "masked_dpo_loss"]

#: Label value that marks a position as not scored (prompt tokens, padding).
IGNORE_INDEX = -100


def sequence_logps(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-sequence sum of next-token log-probabilities (seed-spec §1.1, "Log-prob of a sequence").

    .. math::

        \\log p(b) = \\sum_{t=1}^{L-1} 1[y_{b,t} \\ne -100]\\,
                     \\operatorname{log\\_softmax}(Z_{b,t-1,:})[y_{b,t}]

    The logit at position ``t-1`` predicts the label at position ``t`` (causal shift:
    ``logits[:, :-1]`` against ``labels[:, 1:]``), so ``labels[:, 0]`` and ``logits[:, -1]`` are never
    used. The sum has no length normalisation.

    Args:
        logits: ``[B, L, V]`` float tensor (any float dtype; bf16/fp16 are upcast).
        labels: ``[B, L]`` integer tensor; ``-100`` = ignore.

    Returns:
        ``[B]`` tensor on ``logits.device``; float32 (float64 when the logits are float64).
        A row with no scored position gives exactly 0.

    Numerics: the log-softmax runs over the **full vocabulary** in float32 (or float64), one batch
    row at a time, so the peak extra memory is one ``[L, V]`` float32 copy rather than ``[B, L, V]``.
    Ignored labels are replaced by 0 before the gather and their terms are zeroed by the mask.
    """
    if not isinstance(logits, torch.Tensor) or not isinstance(labels, torch.Tensor):
        raise TypeError("sequence_logps expects torch tensors")
    if logits.dim() != 3:
        raise ValueError(f"logits must be [B, L, V], got shape {tuple(logits.shape)}")
    if labels.dim() != 2 or tuple(labels.shape) != tuple(logits.shape[:2]):
        raise ValueError(
            f"labels must be [B, L] matching logits {tuple(logits.shape)}, got {tuple(labels.shape)}"
        )
    if not logits.is_floating_point():
        raise TypeError(f"logits must be a float tensor, got {logits.dtype}")
    if labels.is_floating_point() or labels.is_complex():
        raise TypeError(f"labels must be an integer tensor, got {labels.dtype}")

    work_dtype = torch.float64 if logits.dtype == torch.float64 else torch.float32
    labels = labels.to(logits.device)
    target = labels[:, 1:]  # [B, L-1]
    mask = target != IGNORE_INDEX  # [B, L-1]
    safe_target = target.masked_fill(~mask, 0).long()  # [B, L-1]

    rows = []
    for b in range(logits.shape[0]):
        row_logits = logits[b, :-1, :].to(work_dtype)  # [L-1, V]
        row_logp = torch.log_softmax(row_logits, dim=-1)  # [L-1, V]
        token_logp = row_logp.gather(-1, safe_target[b].unsqueeze(-1)).squeeze(-1)  # [L-1]
        rows.append((token_logp * mask[b].to(work_dtype)).sum())
    if not rows:
        return logits.new_zeros((0,), dtype=work_dtype)
    return torch.stack(rows)  # [B]


def _beta_like(beta, ref: torch.Tensor) -> torch.Tensor | float:
    if isinstance(beta, torch.Tensor):
        if beta.numel() != 1:
            raise ValueError(f"beta must be a scalar (0-d tensor), got shape {tuple(beta.shape)}")
        return beta.reshape(()).to(device=ref.device, dtype=ref.dtype)
    if isinstance(beta, numbers.Real) and not isinstance(beta, bool):
        return float(beta)
    raise TypeError(f"beta must be a python float or a 0-d tensor, got {type(beta).__name__}")


def dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    beta,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-example sigmoid DPO loss (Rafailov et al. 2023, eq. 7; seed-spec §1.1 "DPO loss").

    With ``πc, πr, rc, rr`` the four sequence log-probs (each ``[B]``)::

        Δc = πc − rc,   Δr = πr − rr,   h = Δc − Δr        (h is the margin of §1.1 / §3.6)
        loss_i = −log σ(β · h_i)                            (computed as -logsigmoid: stable)
        chosen_reward_i = β·Δc_i,  rejected_reward_i = β·Δr_i   (both detached)

    The batch reduction is left to the caller (plain mean, or :func:`masked_dpo_loss`).

    Args:
        policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps:
            ``[B]`` tensors, same shape (the reference ones are normally computed under no_grad).
        beta: python float or 0-d tensor (e.g. a dynamic β or β-DPO's β_used).

    Returns:
        ``(losses [B], chosen_rewards [B], rejected_rewards [B])``; ``losses`` keeps the graph.
        When policy == reference, ``h = 0`` and every loss is exactly ``log 2``.
    """
    tensors = (policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps)
    if not all(isinstance(t, torch.Tensor) for t in tensors):
        raise TypeError("dpo_loss expects four torch tensors")
    shape = tuple(policy_chosen_logps.shape)
    if any(tuple(t.shape) != shape for t in tensors):
        raise ValueError(f"log-prob tensors must share one shape, got {[tuple(t.shape) for t in tensors]}")
    delta_chosen = policy_chosen_logps - ref_chosen_logps.to(policy_chosen_logps.device)
    delta_rejected = policy_rejected_logps - ref_rejected_logps.to(policy_rejected_logps.device)
    h = delta_chosen - delta_rejected.to(delta_chosen.device)
    b = _beta_like(beta, h)
    losses = -F.logsigmoid(b * h)
    chosen_rewards = (b * delta_chosen).detach()
    rejected_rewards = (b * delta_rejected).detach()
    return losses, chosen_rewards, rejected_rewards


def masked_dpo_loss(losses: torch.Tensor, mask: torch.Tensor, normaliser=None) -> torch.Tensor:
    """Masked mean of per-example losses (β-DPO, seed-spec §1.3 step 5; Wu et al. 2024).

    ::

        loss = Σ_i mask_i · ℓ_i / max(N, 1),   N = Σ_i mask_i   (or ``normaliser`` when given)

    Unselected examples (``mask_i = 0``) get exactly zero gradient. An all-zero mask gives 0.

    Args:
        losses: ``[B]`` per-example losses (from :func:`dpo_loss`).
        mask: ``[B]`` 0/1 mask (float or bool, any device; moved to ``losses``' device and dtype).
        normaliser: optional python number or scalar tensor replacing the local ``Σ mask`` — the
            **global kept count across ranks** (e.g. ``k`` of the gathered batch, or an all-reduced
            ``Σ mask``), so that each rank's term is its share of the global masked mean. Note that
            DDP averages gradients over the ``world_size`` ranks; a caller that wants the gradient
            of the global masked mean multiplies this rank's result by ``world_size``.

    Returns:
        0-d tensor.
    """
    if not isinstance(losses, torch.Tensor):
        raise TypeError("losses must be a torch tensor")
    mask = torch.as_tensor(mask)
    if tuple(mask.shape) != tuple(losses.shape):
        raise ValueError(f"mask shape {tuple(mask.shape)} != losses shape {tuple(losses.shape)}")
    mask = mask.to(device=losses.device, dtype=losses.dtype)
    total = (mask * losses).sum()
    if normaliser is None:
        denom = mask.sum().clamp_min(1.0)
    elif isinstance(normaliser, torch.Tensor):
        if normaliser.numel() != 1:
            raise ValueError("normaliser must be a scalar")
        denom = normaliser.reshape(()).to(device=losses.device, dtype=losses.dtype).clamp_min(1.0)
    else:
        denom = max(float(normaliser), 1.0)
    return total / denom
