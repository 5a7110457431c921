"""β controllers: risk-based dynamic β (seed-spec §1.2) and β-DPO's data filter + adaptive β (§1.3).

Both controllers are plain Python objects with no knowledge of ranks, devices or TRL: the trainer
feeds them margins/gaps (already gathered across ranks where it wants global statistics), calls them
on rank 0 (or on every rank with identical inputs), and broadcasts what they return.

Conventions shared by both classes:

* **Inputs** are 1-D tensors (any float dtype, any device — they are copied to the CPU), numpy
  arrays or lists of numbers. They must be non-empty and finite; anything else raises ``ValueError``
  (a NaN margin would otherwise poison τ / M0 for the rest of the run).
* **Statistics run in float64** on the CPU (numpy): the float32 margins convert exactly, so a
  restored controller reproduces the uninterrupted one bit for bit.
* **State** (``state_dict()``) holds only JSON-able python values (floats, ints, bools, lists,
  None, dicts), so it can be written as JSON inside a TRL checkpoint. ``json.dumps`` writes floats
  with ``repr``, which round-trips exactly. ``load_state_dict`` checks that the saved
  hyper-parameters equal this object's (``strict=True``) and raises ``ValueError`` otherwise.
* Invalid hyper-parameters raise ``ValueError`` at construction.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import torch

__all__ = ["RiskBetaController", "BetaDPOController"]

_STATE_VERSION = 1


# --- helpers ---------------------------------------------------------------------------------------


def _as_float64_1d(values, name: str) -> np.ndarray:
    """1-D, non-empty, finite float64 numpy copy of a tensor / array / list (on the CPU)."""
    if isinstance(values, torch.Tensor):
        arr = values.detach().to(device="cpu", dtype=torch.float64).numpy()
    else:
        arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {tuple(arr.shape)}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains non-finite values")
    return np.array(arr, dtype=np.float64, copy=True)


def _real(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return value


def _opt_float(value) -> float | None:
    return None if value is None else float(value)


def _check_config(saved: Any, mine: dict, cls: str) -> None:
    if not isinstance(saved, dict):
        raise ValueError(f"{cls} state has no 'config' dict")
    if saved != mine:
        raise ValueError(f"{cls} state was saved with other hyper-parameters: {saved} != {mine}")


# --- risk-based dynamic β (seed-spec §1.2) ---------------------------------------------------------


class RiskBetaController:
    """Risk-controlled dynamic β for DPO (seed-spec §1.2, "Dynamic-beta DPO").

    Hyper-parameters (symbols of §1.2): ``delta`` δ ∈ (0, 1) (risk level; quantile level
    q = 1 − δ), ``ema_lambda`` λ ∈ [0, 1] (weight of the new batch quantile in the τ EMA),
    ``warmup`` W ≥ 1 (number of **updates** spent filling the warm-up buffer), ``beta0`` β₀,
    ``alpha`` α ≥ 0 (log-step size; 0 = plain DPO), ``gamma`` γ ≥ 0 (tanh slope), ``beta_min`` /
    ``beta_max`` with 0 ≤ β_min ≤ β₀ ≤ β_max. All must be finite.

    One :meth:`update` per controller step (optimizer step or micro-batch — the caller decides),
    with the margins ``M_i = (πc − πr) − (rc − rr)`` of that step (a 1-D tensor of length n):

    ``count ← count + 1``, then

    * **warm-up** (``count ≤ W``): append the margins to the buffer. On the W-th update,
      ``τ₀ = Quantile_q(buffer)`` (linear interpolation, numpy/torch default), ``τ ← τ₀``,
      ``warmed_up ← True`` and the buffer is cleared. β is **not** changed during warm-up,
      including the W-th update.
    * **adaptive** (every later update), in this order::

          τ   ← (1 − λ)·τ + λ·Quantile_q(M)          (EMA with the current batch, BEFORE p̂)
          p̂   = (1/n)·Σ_i 1[M_i ≥ τ]                 (≥: ties at τ count, as in the seed)
          fail = p̂ > δ                               (logged only; does not gate the update)
          σ_n = sqrt(δ(1 − δ)/n)
          u_k = (p̂ − δ)/σ_n                          (one-sample proportion z-statistic)
          s_k = tanh(γ·u_k)                          (∈ (−1, 1))
          β   ← clip(β·exp(α·s_k), β_min, β_max)

      ``u_k = 0`` leaves β exactly unchanged.

    ``exceedance`` (additive option; default ``"ge"`` = the seed): with ``"gt"`` p̂ counts
    ``M_i > τ`` strictly (seed-spec §7.3), and a **degenerate** adaptive batch — every margin equal,
    so the batch says nothing about the tail — leaves τ and β unchanged (``count`` still advances,
    ``p_hat``/``u_k``/``s_k``/``fail`` are None and ``skipped`` counts it). The seed's ``≥`` pushes β
    up on such a batch whenever the margins sit at τ (e.g. all zero with τ = 0); a bare ``>`` would
    push it down instead. The trainers use ``"gt"``.

    ``W = 0`` is rejected with ``ValueError``: τ₀ needs at least one warm-up batch, and the seed's
    behaviour with W = 0 (τ stays 0.0 forever because the EMA is never created, seed-spec §7.20)
    is a bug, not a mode. Attributes ``tau`` is None until warm-up ends; ``p_hat``, ``u_k``, ``s_k``
    and ``fail`` are None until the first adaptive update.
    """

    def __init__(
        self,
        delta: float,
        ema_lambda: float,
        warmup: int,
        beta0: float,
        alpha: float,
        gamma: float,
        beta_min: float,
        beta_max: float,
        exceedance: str = "ge",
    ) -> None:
        if exceedance not in ("ge", "gt"):
            raise ValueError(f"exceedance must be 'ge' (M >= tau, the seed) or 'gt' (M > tau), got {exceedance!r}")
        self.exceedance = exceedance
        self.delta = _real("delta", delta)
        if not 0.0 < self.delta < 1.0:
            raise ValueError(f"delta must be in (0, 1), got {delta!r}")
        self.ema_lambda = _real("ema_lambda", ema_lambda)
        if not 0.0 <= self.ema_lambda <= 1.0:
            raise ValueError(f"ema_lambda must be in [0, 1], got {ema_lambda!r}")
        if isinstance(warmup, bool) or not isinstance(warmup, numbers.Integral):
            raise ValueError(f"warmup must be an integer, got {warmup!r}")
        if warmup < 1:
            raise ValueError(
                f"warmup must be >= 1 (tau_0 needs at least one warm-up update), got {warmup!r}"
            )
        self.warmup = int(warmup)
        self.beta0 = _real("beta0", beta0)
        self.alpha = _real("alpha", alpha)
        if self.alpha < 0.0:
            raise ValueError(f"alpha must be >= 0, got {alpha!r}")
        self.gamma = _real("gamma", gamma)
        if self.gamma < 0.0:
            raise ValueError(f"gamma must be >= 0, got {gamma!r}")
        self.beta_min = _real("beta_min", beta_min)
        self.beta_max = _real("beta_max", beta_max)
        if not 0.0 <= self.beta_min <= self.beta0 <= self.beta_max:
            raise ValueError(
                "need 0 <= beta_min <= beta0 <= beta_max, got "
                f"beta_min={beta_min!r}, beta0={beta0!r}, beta_max={beta_max!r}"
            )
        self.quantile_level = 1.0 - self.delta

        self.beta: float = self.beta0
        self.count: int = 0
        self.warmed_up: bool = False
        self.tau: float | None = None
        self.p_hat: float | None = None
        self.u_k: float | None = None
        self.s_k: float | None = None
        self.fail: bool | None = None
        self.skipped: int = 0
        self._buffer: list[float] = []

    # -- maths --

    def update(self, margins) -> float:
        """One controller update from a 1-D batch of margins; returns β after the update (float)."""
        m = _as_float64_1d(margins, "margins")
        self.count += 1
        if not self.warmed_up:
            self._buffer.extend(m.tolist())
            if self.count >= self.warmup:
                buf = np.asarray(self._buffer, dtype=np.float64)
                self.tau = float(np.quantile(buf, self.quantile_level))
                self.warmed_up = True
                self._buffer = []
            return self.beta

        if self.exceedance == "gt" and float(np.max(m)) == float(np.min(m)):
            # Degenerate batch (no spread): no information about the (1 - δ) tail; skip the update.
            self.skipped += 1
            self.p_hat = self.u_k = self.s_k = self.fail = None
            return self.beta
        lam = self.ema_lambda
        batch_q = float(np.quantile(m, self.quantile_level))
        self.tau = (1.0 - lam) * self.tau + lam * batch_q
        n = int(m.size)
        exceed = m > self.tau if self.exceedance == "gt" else m >= self.tau
        p_hat = int(np.count_nonzero(exceed)) / n
        sigma_n = math.sqrt(self.delta * (1.0 - self.delta) / n)
        u_k = (p_hat - self.delta) / sigma_n
        s_k = math.tanh(self.gamma * u_k)
        beta = self.beta * math.exp(self.alpha * s_k)
        self.beta = min(max(beta, self.beta_min), self.beta_max)
        self.p_hat, self.u_k, self.s_k, self.fail = p_hat, u_k, s_k, p_hat > self.delta
        return self.beta

    # -- logging --

    @property
    def buffer(self) -> list[float]:
        """Copy of the warm-up buffer (empty once warmed up)."""
        return list(self._buffer)

    def stats(self) -> dict:
        """Values for the trainer log: ``beta``, ``count``, ``warmed_up`` and the last risk-test
        statistics (``tau``, ``p_hat``, ``fail``, ``u_k``, ``s_k``; None while not available)."""
        return {
            "beta": self.beta,
            "count": self.count,
            "warmed_up": self.warmed_up,
            "tau": self.tau,
            "p_hat": self.p_hat,
            "fail": self.fail,
            "u_k": self.u_k,
            "s_k": self.s_k,
            "skipped": self.skipped,
        }

    # -- checkpointing --

    def _config(self) -> dict:
        return {
            "delta": self.delta,
            "ema_lambda": self.ema_lambda,
            "warmup": self.warmup,
            "beta0": self.beta0,
            "alpha": self.alpha,
            "gamma": self.gamma,
            "beta_min": self.beta_min,
            "beta_max": self.beta_max,
            "exceedance": self.exceedance,
        }

    def state_dict(self) -> dict:
        """JSON-able state (plain python values; the warm-up buffer as a list of floats)."""
        return {
            "kind": "risk_beta",
            "version": _STATE_VERSION,
            "config": self._config(),
            "beta": self.beta,
            "count": self.count,
            "warmed_up": self.warmed_up,
            "buffer": list(self._buffer),
            "tau": self.tau,
            "p_hat": self.p_hat,
            "u_k": self.u_k,
            "s_k": self.s_k,
            "fail": self.fail,
            "skipped": self.skipped,
        }

    def load_state_dict(self, state: dict, strict: bool = True) -> None:
        """Restore :meth:`state_dict` output; with ``strict`` the hyper-parameters must match."""
        if not isinstance(state, dict) or state.get("kind") != "risk_beta":
            raise ValueError("not a RiskBetaController state")
        if state.get("version") != _STATE_VERSION:
            raise ValueError(f"unsupported state version {state.get('version')!r}")
        if strict:
            _check_config(state.get("config"), self._config(), "RiskBetaController")
        warmed_up = state["warmed_up"]
        if not isinstance(warmed_up, bool):
            raise ValueError("warmed_up must be a bool")
        if warmed_up and state["tau"] is None:
            raise ValueError("a warmed-up state needs tau")
        self.beta = float(state["beta"])
        self.count = int(state["count"])
        self.warmed_up = warmed_up
        self._buffer = [float(x) for x in state["buffer"]]
        self.tau = _opt_float(state["tau"])
        self.p_hat = _opt_float(state["p_hat"])
        self.u_k = _opt_float(state["u_k"])
        self.s_k = _opt_float(state["s_k"])
        self.fail = None if state["fail"] is None else bool(state["fail"])
        self.skipped = int(state.get("skipped", 0))


# --- β-DPO (seed-spec §1.3, Wu et al. 2024) ---------------------------------------------------------


class BetaDPOController:
    """β-DPO data filter and batch-level adaptive β (seed-spec §1.3; Wu et al. 2024, "β-DPO").

    Hyper-parameters: ``beta0`` β₀ > 0, ``alpha`` α ≥ 0, ``momentum`` m ∈ [0, 1) (EMA momentum,
    higher = slower; the seed's ``m``), ``keep_ratio`` ρ ∈ (0, 1] (fraction kept; the seed's
    ``rho``), ``min_beta`` > 0, ``eps`` > 0. All must be finite.

    Gaps are the margins ``g_i = (πc_i − rc_i) − (πr_i − rr_i)`` (1-D, length B).

    :meth:`update` (statistics; seed-spec §1.3 step 2)::

        μ_b = mean(g),  σ_b = max(std_pop(g), eps)                  (std with ddof 0)
        first update:  M0 ← μ_b,  σ ← σ_b
        later:         M0 ← m·M0 + (1 − m)·μ_b,  σ ← max(m·σ + (1 − m)·σ_b, eps)

    :meth:`select` (data filter and β; steps 3–4), with the current M0, σ::

        z_i = (g_i − M0)/(σ + eps),   w_i = exp(−z_i²/2)
        k   = max(1, floor(B·ρ))       (B=16, ρ=0.8 ⇒ 12; B=3, ρ=0.1 ⇒ 1)
        idx = torch.multinomial(w, k, replacement=False, generator=generator)
        mask_i = 1 for i in idx, else 0
        β_used = max(min_beta, β₀·(1 + α·(mean(g[idx]) − M0)))      (no upper clamp)

    Decisions beyond the seed:

    * ``floor(B·ρ)`` is taken after rounding ``B·ρ`` to 9 decimals, so that binary noise such as
      ``100 × 0.29 = 28.999999999999996`` gives 29, not 28.
    * If Σw ≤ 0 or is not finite (every weight underflowed), the weights are uniform. If only some
      weights underflowed to 0 and fewer than k remain positive, all positive-weight examples are
      kept and the rest are drawn uniformly among the zero-weight ones — the limit of sequential
      sampling with vanishing weights (torch would otherwise pick zero-weight rows by index order).
    * β_used has **no upper clamp** (as in the seed); the trainer may bound it if it wants.
    * The weights are float64 on the CPU, so ``generator`` must be a CPU ``torch.Generator``
      (or None for the global RNG). Checkpointing the generator's state is the caller's job.

    :meth:`select` works on gaps gathered from every rank (B = world_size × local batch): call it on
    rank 0 and broadcast the mask and β_used. :meth:`step` is :meth:`update` then :meth:`select`
    (the seed's per-micro-batch behaviour). :meth:`evaluate` is the evaluation path: an all-ones
    mask, β_used from the mean of all gaps, and M0/σ untouched.
    """

    def __init__(
        self,
        beta0: float,
        alpha: float,
        momentum: float,
        keep_ratio: float,
        min_beta: float,
        eps: float,
    ) -> None:
        self.beta0 = _real("beta0", beta0)
        if self.beta0 <= 0.0:
            raise ValueError(f"beta0 must be > 0, got {beta0!r}")
        self.alpha = _real("alpha", alpha)
        if self.alpha < 0.0:
            raise ValueError(f"alpha must be >= 0, got {alpha!r}")
        self.momentum = _real("momentum", momentum)
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        self.keep_ratio = _real("keep_ratio", keep_ratio)
        if not 0.0 < self.keep_ratio <= 1.0:
            raise ValueError(f"keep_ratio must be in (0, 1], got {keep_ratio!r}")
        self.min_beta = _real("min_beta", min_beta)
        if self.min_beta <= 0.0:
            raise ValueError(f"min_beta must be > 0, got {min_beta!r}")
        self.eps = _real("eps", eps)
        if self.eps <= 0.0:
            raise ValueError(f"eps must be > 0, got {eps!r}")

        self.M0: float | None = None
        self.sigma: float | None = None
        self.count: int = 0
        self.last: dict | None = None

    # -- maths --

    def num_kept(self, batch_size: int) -> int:
        """k = max(1, floor(B·keep_ratio)) (B·keep_ratio rounded to 9 decimals first)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        return max(1, math.floor(round(batch_size * self.keep_ratio, 9)))

    def update(self, gaps) -> None:
        """Update M0 and σ from a batch of gaps (first call initialises them)."""
        g = _as_float64_1d(gaps, "gaps")
        mu_b = float(np.mean(g))
        sigma_b = max(float(np.std(g)), self.eps)
        if self.M0 is None:
            self.M0, self.sigma = mu_b, sigma_b
        else:
            m = self.momentum
            self.M0 = m * self.M0 + (1.0 - m) * mu_b
            self.sigma = max(m * self.sigma + (1.0 - m) * sigma_b, self.eps)
        self.count += 1

    def _beta_used(self, kept_mean: float, M0: float) -> float:
        return max(self.min_beta, self.beta0 * (1.0 + self.alpha * (kept_mean - M0)))

    def select(self, gaps, generator: torch.Generator | None = None) -> tuple[torch.Tensor, float]:
        """Draw the kept subset and β_used with the current statistics (state unchanged except for
        the ``last`` log record). Returns ``(mask, beta_used)``: ``mask`` is a float32 CPU tensor of
        0/1 with length B, ``beta_used`` a python float. Raises ``RuntimeError`` before any update."""
        if self.M0 is None or self.sigma is None:
            raise RuntimeError("BetaDPOController.select called before any update()")
        g = _as_float64_1d(gaps, "gaps")
        B = int(g.size)
        k = self.num_kept(B)
        z = (g - self.M0) / (self.sigma + self.eps)
        with np.errstate(over="ignore", under="ignore"):
            w = np.exp(-0.5 * z * z)
        total = float(np.sum(w))
        if not math.isfinite(total) or total <= 0.0:
            w = np.ones(B, dtype=np.float64)
        w_t = torch.from_numpy(w)
        positive = int(np.count_nonzero(w > 0.0))
        if positive >= k:
            idx = torch.multinomial(w_t, k, replacement=False, generator=generator)
        else:
            pos_idx = torch.nonzero(w_t > 0.0).reshape(-1)
            zero_idx = torch.nonzero(w_t <= 0.0).reshape(-1)
            extra = torch.multinomial(
                torch.ones(zero_idx.numel(), dtype=torch.float64),
                k - positive,
                replacement=False,
                generator=generator,
            )
            idx = torch.cat([pos_idx, zero_idx[extra]])
        mask = torch.zeros(B, dtype=torch.float32)
        mask[idx] = 1.0
        kept = g[mask.numpy() > 0.0]
        kept_mean = float(np.mean(kept))
        beta_used = self._beta_used(kept_mean, self.M0)
        self.last = {
            "beta_used": beta_used,
            "M0": self.M0,
            "sigma": self.sigma,
            "k": k,
            "batch_size": B,
            "keep_ratio": k / B,
            "gap_mean": float(np.mean(g)),
            "gap_selected_mean": kept_mean,
        }
        return mask, beta_used

    def step(self, gaps, generator: torch.Generator | None = None) -> tuple[torch.Tensor, float]:
        """:meth:`update` then :meth:`select` on the same gaps (seed-spec §1.3 steps 2–4)."""
        self.update(gaps)
        return self.select(gaps, generator)

    def evaluate(self, gaps) -> tuple[torch.Tensor, float]:
        """Evaluation: all-ones mask and ``β_used = max(min_beta, β₀·(1 + α·(mean(g) − M0)))``;
        M0/σ and ``last`` are untouched. Before any update (no M0 yet) β_used = max(min_beta, β₀)."""
        g = _as_float64_1d(gaps, "gaps")
        mean = float(np.mean(g))
        M0 = mean if self.M0 is None else self.M0
        return torch.ones(int(g.size), dtype=torch.float32), self._beta_used(mean, M0)

    # -- checkpointing --

    def _config(self) -> dict:
        return {
            "beta0": self.beta0,
            "alpha": self.alpha,
            "momentum": self.momentum,
            "keep_ratio": self.keep_ratio,
            "min_beta": self.min_beta,
            "eps": self.eps,
        }

    def state_dict(self) -> dict:
        """JSON-able state (plain python values)."""
        return {
            "kind": "beta_dpo",
            "version": _STATE_VERSION,
            "config": self._config(),
            "M0": self.M0,
            "sigma": self.sigma,
            "count": self.count,
            "last": None if self.last is None else dict(self.last),
        }

    def load_state_dict(self, state: dict, strict: bool = True) -> None:
        """Restore :meth:`state_dict` output; with ``strict`` the hyper-parameters must match."""
        if not isinstance(state, dict) or state.get("kind") != "beta_dpo":
            raise ValueError("not a BetaDPOController state")
        if state.get("version") != _STATE_VERSION:
            raise ValueError(f"unsupported state version {state.get('version')!r}")
        if strict:
            _check_config(state.get("config"), self._config(), "BetaDPOController")
        if (state["M0"] is None) != (state["sigma"] is None):
            raise ValueError("M0 and sigma must both be set or both be None")
        self.M0 = _opt_float(state["M0"])
        self.sigma = _opt_float(state["sigma"])
        self.count = int(state["count"])
        self.last = None if state.get("last") is None else dict(state["last"])
