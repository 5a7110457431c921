"""TRL ``DPOTrainer`` extended with margin logs and the β controllers (``dpo``, ``beta-dpo``, ``dynamic-beta-dpo``).

One subclass, :class:`SweepDPOTrainer`, serves the three preference algorithms. Everything that TRL
does is still TRL's: the data pipeline and collator, the trainer loop, gradient accumulation, the
precomputed reference log-probs, the metrics, evaluation and checkpointing. The subclass adds:

**The loss hook** (``_compute_loss``). It runs TRL's own ``DPOTrainer._compute_loss`` on TRL's
batch while recording the per-token log-prob tensors that TRL computes (policy first, then the
reference unless ``precompute_ref_log_probs`` puts ``ref_chosen_logps``/``ref_rejected_logps`` in
the batch). Summing those over the sequence gives exactly TRL's sequence log-probs ``πc, πr, rc,
rr`` — the same tensors, not a recomputation, so no second forward and no extra log-softmax — and
the margins ``h = (πc − rc) − (πr − rr)`` (seed-spec §1.1) of every micro-batch. Then:

* ``dpo``: TRL's loss (any ``loss_type`` / ``loss_weights``) is returned unchanged.
* ``dynamic-beta-dpo``: ``self.beta`` is set to the controller's β before TRL's code runs, so TRL's
  sigmoid loss and its ``rewards/*`` metrics use the β of the step.
* ``beta-dpo``: the gaps (= margins) are gathered over ranks, the controller draws the kept subset
  and β_used (every rank draws from the same gathered gaps with the same generator; rank 0's mask and
  β_used are broadcast), and the returned loss is ``world_size · Σ_local mask·ℓ / K_global`` with
  ``ℓ = −log σ(β_used·h)`` built from the recorded (graph-carrying) log-probs, so DDP's gradient
  average gives the gradient of the global masked mean. TRL's ``rewards/*`` metrics are rewritten
  with β_used.

**The cadence** (``update_on``). ``optimizer_step`` (default): every micro-batch of a step uses the
controller state as of the start of the step; after the optimizer step (``on_step_end``) the
controller is updated once from the margins of all the step's micro-batches, gathered over ranks,
and one margin-log record is written. ``micro_batch`` (the seed's cadence): the controller is
updated after every micro-batch (β-DPO: before its selection, as in the seed) and each micro-batch
gets its own record. Margins are always gathered over ranks first, and every rank computes the same
update from the same data, so every rank ends every step with the same β, τ, M0, σ and mask.

**Data order.** The rows come in :class:`~.dist.GlobalBatchOrder` (:class:`~.dist.GlobalBatchOrderMixin`):
the same seeded permutation and the same global batches for any number of processes, the epoch's last
one completed with the epoch's first rows, so N processes × ``batch_size`` B train on exactly the
batches of one process × N·B.

**Checkpoints.** ``checkpoint-N/dpo_sweep_controller.json`` (written before TRL's files, so a
checkpoint with ``trainer_state.json`` is complete) holds the controller state, the β-DPO selection
generator state and the trainer's β; it is restored when training resumes from that checkpoint, and
the margin logs are cut back to step N.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import trl.trainer.dpo_trainer as _trl_dpo
from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from trl import DPOTrainer

from .callbacks import NonFiniteLossError
from .control import BetaDPOController, RiskBetaController
from .dist import GlobalBatchOrderMixin, broadcast_from_main, gather_rows
from .losses import dpo_loss, masked_dpo_loss
from .margins import MarginLogger
from .refcache import SharedRefLogpsMixin
from .runtime import SpecError

__all__ = [
    "STATE_FILE", "SweepOptions", "SweepDPOTrainer", "build_controller", "check_resume", "make_trainer", "read_sweep_state",
    "resume_mismatches",
]

#: Controller state file inside each TRL checkpoint folder (and in ``final/``).
STATE_FILE = "dpo_sweep_controller.json"
STATE_FORMAT = 1
PREFERENCE_ALGORITHMS = ("dpo", "beta-dpo", "dynamic-beta-dpo")
ADAPTIVE = ("beta-dpo", "dynamic-beta-dpo")
#: Floor used for ``dynamic_beta.beta_min = 0`` (seed-spec §7.20), as a fraction of β₀.
BETA_MIN_FLOOR = 1e-3


# --- controllers from settings ----------------------------------------------------------------------


def build_controller(settings: dict) -> tuple[RiskBetaController | BetaDPOController | None, list[str]]:
    """The controller for ``settings["algorithm"]`` (None for plain ``dpo``) and warning notes.

    Hyper-parameters the controllers reject raise :class:`SpecError` (a bad-spec failure)."""
    algorithm = settings["algorithm"]
    notes: list[str] = []
    if algorithm not in PREFERENCE_ALGORITHMS:
        raise SpecError(f"algorithm {algorithm!r} is not a preference algorithm ({', '.join(PREFERENCE_ALGORITHMS)})")
    if algorithm in ADAPTIVE:
        loss_type = list(settings.get("loss_type") or ["sigmoid"])
        if loss_type != ["sigmoid"] or settings.get("loss_weights") or settings.get("label_smoothing", 0):
            raise SpecError(
                f"loss_type, loss_weights and label_smoothing apply to plain dpo; {algorithm} uses the sigmoid DPO loss "
                f"(got loss_type={loss_type}, loss_weights={settings.get('loss_weights')}, "
                f"label_smoothing={settings.get('label_smoothing', 0)})"
            )
    beta0 = float(settings["beta"])
    if algorithm == "dynamic-beta-dpo":
        d = settings.get("dynamic_beta") or {}
        beta_min = float(d.get("beta_min", 0.0))
        if beta_min == 0.0:
            beta_min = BETA_MIN_FLOOR * beta0
            notes.append(
                f"dynamic_beta.beta_min = 0 would let beta decay to 0 (loss -> ln 2, no gradient; seed-spec §7.20): "
                f"using beta_min = {beta_min:g} ({BETA_MIN_FLOOR:g} x beta); set a positive beta_min to choose it"
            )
        try:
            controller = RiskBetaController(
                delta=d.get("delta", 0.1),
                ema_lambda=d.get("ema_lambda", 0.1),
                warmup=d.get("warmup", 120),
                beta0=beta0,
                alpha=d.get("alpha", 0.005),
                gamma=d.get("gamma", 2.0),
                beta_min=beta_min,
                beta_max=d.get("beta_max", 2.0),
                exceedance="gt",
            )
        except ValueError as e:
            raise SpecError(f"dynamic_beta: {e}") from e
        _check_margins_per_update(settings)
        return controller, notes
    if algorithm == "beta-dpo":
        b = settings.get("beta_dpo") or {}
        try:
            controller = BetaDPOController(
                beta0=beta0,
                alpha=b.get("alpha", 0.6),
                momentum=b.get("momentum", 0.9),
                keep_ratio=b.get("keep_ratio", 0.8),
                min_beta=b.get("min_beta", 1e-3),
                eps=b.get("eps", 1e-6),
            )
        except ValueError as e:
            raise SpecError(f"beta_dpo: {e}") from e
        return controller, notes
    return None, notes


def _check_margins_per_update(settings: dict) -> None:
    """Dynamic β needs at least two margins per controller update: one margin is an all-equal (degenerate)
    batch, which the strict-exceedance controller skips, so β and τ would stay at their warm-up values for the
    whole run — plain DPO under another name."""
    training = settings.get("training") or {}
    if "batch_size" not in training:
        return
    from .launch import processes_for

    update_on = settings.get("update_on", "optimizer_step")
    accum = int(training.get("grad_accum", 1)) if update_on == "optimizer_step" else 1
    processes = processes_for(settings)
    n = int(training["batch_size"]) * accum * processes
    if n < 2:
        raise SpecError(
            f"dynamic_beta: each controller update ({update_on}) sees {n} margin (training.batch_size "
            f"{training['batch_size']} x {accum} micro-batch x {processes} process); a single margin carries no spread, "
            "so beta would never move from its initial value. Use batch_size >= 2"
            + (", or grad_accum >= 2 with update_on: optimizer_step" if update_on == "optimizer_step" else "")
        )


# --- the trainer ------------------------------------------------------------------------------------


@dataclass
class SweepOptions:
    """What :class:`SweepDPOTrainer` adds to a ``DPOConfig``."""

    algorithm: str = "dpo"
    update_on: str = "optimizer_step"  # | "micro_batch"
    controller: RiskBetaController | BetaDPOController | None = None
    margin_logger: MarginLogger | None = None
    seed: int = 0  # β-DPO selection generator
    state_log: str | None = None  # test-only: per-rank JSONL of the controller state after every update
    notes: list[str] = field(default_factory=list)  # warnings about the settings, for the progress events


@dataclass
class _MicroBatch:
    margins: torch.Tensor  # gathered over ranks (CPU, float32), rank order
    beta_used: float
    loss: torch.Tensor | None = None  # this rank's loss (detached)
    mask: torch.Tensor | None = None  # β-DPO: gathered mask (CPU, float32)
    M0: float | None = None  # β-DPO: statistics used for the selection
    sigma: float | None = None
    kept: int | None = None


@contextlib.contextmanager
def _record_token_logps():
    """Record the tensors TRL's ``_compute_loss`` gets from ``selective_log_softmax`` (policy, then reference).

    TRL calls that function through its module's globals; it is swapped for a recording wrapper for the
    duration of one ``_compute_loss`` call and restored afterwards, whatever happens. TRL then zeroes
    the non-completion positions of those very tensors in place, so summing them afterwards gives TRL's
    sequence log-probs bit for bit, with the autograd graph of the policy forward attached.
    """
    captured: list[torch.Tensor] = []
    previous = _trl_dpo.selective_log_softmax

    def recording(logits, index):
        out = previous(logits, index)
        captured.append(out)
        return out

    _trl_dpo.selective_log_softmax = recording
    try:
        yield captured
    finally:
        _trl_dpo.selective_log_softmax = previous


class _StepEnd(TrainerCallback):
    def __init__(self, trainer: "SweepDPOTrainer"):
        self.trainer = trainer

    def on_step_end(self, args, state, control, **kwargs):
        self.trainer._optimizer_step_end()

    def on_train_end(self, args, state, control, **kwargs):
        if self.trainer.sweep.margin_logger is not None:
            self.trainer.sweep.margin_logger.close()


def _generator_state(generator: torch.Generator) -> str:
    return base64.b64encode(generator.get_state().numpy().tobytes()).decode("ascii")


def _set_generator_state(generator: torch.Generator, text: str) -> None:
    raw = np.frombuffer(base64.b64decode(text), dtype=np.uint8).copy()
    generator.set_state(torch.from_numpy(raw))


def _write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_sweep_state(checkpoint: str | os.PathLike) -> dict | None:
    """The controller state saved in a checkpoint (or ``final/``) folder, or None if there is none."""
    path = Path(checkpoint) / STATE_FILE
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


#: Controller hyper-parameter → the settings key it comes from (for messages).
_SETTING_OF = {
    "risk_beta": {"beta0": "beta", **{k: f"dynamic_beta.{k}" for k in ("delta", "ema_lambda", "warmup", "alpha", "gamma", "beta_min", "beta_max", "exceedance")}},
    "beta_dpo": {"beta0": "beta", **{k: f"beta_dpo.{k}" for k in ("alpha", "momentum", "keep_ratio", "min_beta", "eps")}},
}


def resume_mismatches(state: dict | None, algorithm: str, update_on: str, controller, beta: float) -> list[str]:
    """What differs between a checkpoint's saved sweep state and this run, as ``"key: saved → now"`` lines.

    Checked: the state file's presence (an adaptive run cannot restart its controller silently) and format,
    ``algorithm``, ``update_on``, the controller's hyper-parameters and, for plain ``dpo``, ``beta`` (which the
    checkpoint would otherwise override without a word)."""
    if state is None:
        return [] if controller is None else [f"{STATE_FILE}: missing, so the {algorithm} controller state cannot be restored"]
    if state.get("format") != STATE_FORMAT:
        return [f"format: {state.get('format')!r} is not {STATE_FORMAT} (written by another version)"]
    out = [f"{key}: {state.get(key)!r} → {now!r}" for key, now in (("algorithm", algorithm), ("update_on", update_on)) if state.get(key) != now]
    if out:
        return out
    if controller is None:
        if float(state.get("beta", beta)) != float(beta):
            out.append(f"beta: {state['beta']!r} → {float(beta)!r}")
        return out
    saved = (state.get("controller") or {}).get("config") or {}
    mine = controller.state_dict()["config"]
    names = _SETTING_OF.get(controller.state_dict()["kind"], {})
    for key in sorted(set(saved) | set(mine)):
        if saved.get(key) != mine.get(key):
            out.append(f"{names.get(key, key)}: {saved.get(key)!r} → {mine.get(key)!r}")
    return out


def check_resume(settings: dict, checkpoint: str | os.PathLike) -> None:
    """Before anything is loaded: a :class:`SpecError` when ``checkpoint`` was written with other settings than
    ``settings`` (see :func:`resume_mismatches`), naming the state file and every difference."""
    controller, _ = build_controller(settings)
    try:
        state = read_sweep_state(checkpoint)
    except (OSError, ValueError) as e:
        raise SpecError(f"{Path(checkpoint) / STATE_FILE}: unreadable ({e}); delete {checkpoint} to resume from an earlier checkpoint") from e
    diffs = resume_mismatches(state, settings["algorithm"], settings.get("update_on", "optimizer_step"), controller, float(settings["beta"]))
    if diffs:
        raise SpecError(
            f"cannot resume from {checkpoint}: its {STATE_FILE} was written by a run with other settings ("
            + "; ".join(diffs)
            + "). Restore those settings, or train in a fresh run directory"
        )


class SweepDPOTrainer(SharedRefLogpsMixin, GlobalBatchOrderMixin, DPOTrainer):
    """``DPOTrainer`` + margin logs + β controller (see the module docstring for the design).

    With ``precompute_ref_log_probs``, the reference pass goes through the shared, content-addressed
    cache of :mod:`.refcache` when ``ref_cache_dir`` and ``ref_identity`` are given. The training rows come
    in :class:`~.dist.GlobalBatchOrder`, so N processes × batch B see the global batches of 1 × N·B.
    """

    def __init__(
        self,
        *args: Any,
        sweep: SweepOptions | None = None,
        ref_cache_dir: str | None = None,
        ref_identity: str | None = None,
        ref_dtype: str = "float32",
        **kwargs: Any,
    ):
        # read by SharedRefLogpsMixin._precompute_ref_logps, which DPOTrainer.__init__ calls
        self.ref_cache_dir, self.ref_identity, self.ref_dtype = ref_cache_dir, ref_identity, ref_dtype
        self.sweep = sweep or SweepOptions()
        if self.sweep.algorithm not in PREFERENCE_ALGORITHMS:
            raise SpecError(f"unknown preference algorithm {self.sweep.algorithm!r}")
        if self.sweep.update_on not in ("optimizer_step", "micro_batch"):
            raise SpecError(f"update_on must be optimizer_step or micro_batch, got {self.sweep.update_on!r}")
        if (self.sweep.controller is None) != (self.sweep.algorithm == "dpo"):
            raise ValueError(f"{self.sweep.algorithm} needs {'no' if self.sweep.algorithm == 'dpo' else 'a'} controller")
        super().__init__(*args, **kwargs)
        if self.use_liger_kernel:
            raise SpecError("the Liger DPO loss never materialises per-token log-probs; margin logs need use_liger_kernel=False")
        if self.ld_alpha is not None or self.f_divergence_type != "reverse_kl":
            raise SpecError("margin logs are defined for the standard DPO log-ratios (no ld_alpha, reverse_kl only)")
        self.generator = torch.Generator(device="cpu")
        self.generator.manual_seed(int(self.sweep.seed))
        if self.sweep.margin_logger is not None:
            self.sweep.margin_logger.enabled = self.is_world_process_zero()
        if isinstance(self.sweep.controller, RiskBetaController):
            self.beta = self.sweep.controller.beta
        self._pending: list[_MicroBatch] = []  # micro-batches of the current step not yet logged
        self._mb_in_step = 0
        # β-DPO, optimizer_step: statistics the run's first micro-batch set up only to select with; the
        # step-end update replaces them with those of the whole step (so no micro-batch counts twice).
        self._provisional_stats = False
        self._step_epoch = 0
        self._live: dict[str, float] = {"beta": float(self.beta)}
        self.add_callback(_StepEnd(self))

    # -- reference log-probs with several ranks ------------------------------------------------------

    def _precompute_ref_logps(self, dataset, name, batch_size):  # noqa: D401 - TRL's name
        """One process: the shared cache of :mod:`.refcache`. Several: the same cache, used by all ranks together.

        TRL's own multi-rank precompute cannot be used: for an in-memory dataset its cache file lives in a
        per-process temporary directory, so rank 0 writes it where the other ranks never look
        (``FileNotFoundError`` on rank 1). Here rank 0 looks the key up (waiting for a run computing it
        right now) and tells every rank; on a miss all ranks run the reference pass together (a sharded,
        sequential loader gathered in order, so every rank gets every row) and rank 0 stores it.
        """
        if self.accelerator.num_processes == 1:
            return super()._precompute_ref_logps(dataset, name, batch_size)
        from .refcache import _locked, _record_pass, cache_key

        path = None
        if self.ref_cache_dir and self.ref_identity:
            key = cache_key(self.ref_identity, dataset, dtype=self.ref_dtype, ld_alpha=getattr(self, "ld_alpha", None))
            path = Path(self.ref_cache_dir) / "ref-logps" / f"{key}.npz"
        hit = 0.0
        if path is not None and self.accelerator.is_main_process:
            with _locked(path.with_suffix(".lock")):
                hit = float(path.exists())
        hit = float(broadcast_from_main(self.accelerator, torch.tensor([hit], dtype=torch.float64)).item())
        if hit:
            with np.load(path) as stored:
                chosen, rejected = stored["chosen"], stored["rejected"]
        else:
            started = time.monotonic()
            chosen, rejected = self._reference_pass(dataset, name, batch_size)
            if path is not None and self.accelerator.is_main_process:
                with _locked(path.with_suffix(".lock")):
                    if not path.exists():
                        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
                        np.savez(tmp, chosen=chosen, rejected=rejected)
                        os.replace(tmp, path)
                        _record_pass(key, len(dataset), time.monotonic() - started)
            self.accelerator.wait_for_everyone()
        if len(chosen) != len(dataset):
            raise RuntimeError(f"reference pass gave {len(chosen)} rows for a dataset of {len(dataset)}")
        dataset = dataset.add_column("ref_chosen_logps", chosen.tolist())
        return dataset.add_column("ref_rejected_logps", rejected.tolist())

    # -- loss hook ---------------------------------------------------------------------------------

    def _trl_loss_and_logps(self, model, inputs, return_outputs):
        """TRL's ``_compute_loss`` and TRL's own sequence log-probs ``(πc, πr, rc, rr)``."""
        with _record_token_logps() as captured:
            result = super()._compute_loss(model, inputs, return_outputs)
        expected = 1 if self.precompute_ref_logps else 2
        rows = inputs["input_ids"].shape[0]
        if len(captured) != expected or any(t.dim() != 2 or t.shape[0] != rows for t in captured):
            raise RuntimeError(
                f"expected {expected} per-token log-prob tensors of {rows} rows from TRL's DPO loss, got "
                f"{[tuple(t.shape) for t in captured]}: TRL's internals changed (this worker is tested with TRL 1.13)"
            )
        # TRL's reduction; accumulated in float32 (identical for fp32 models, more precise than TRL's own
        # bf16 sum for bf16 ones)
        chosen, rejected = captured[0].sum(dim=1, dtype=torch.float32).chunk(2, dim=0)
        if self.precompute_ref_logps:
            ref_chosen, ref_rejected = inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]
        else:
            ref_chosen, ref_rejected = captured[1].sum(dim=1, dtype=torch.float32).chunk(2, dim=0)
        return result, (chosen, rejected, ref_chosen, ref_rejected)

    def _gathered_ratios(self, logps) -> tuple[torch.Tensor, list[int], torch.Tensor]:
        """``[N, 2]`` chosen/rejected log-ratios gathered over ranks (CPU, float32), local sizes, margins ``h``."""
        chosen, rejected, ref_chosen, ref_rejected = logps
        ratios = torch.stack([(chosen - ref_chosen).detach(), (rejected - ref_rejected).detach()], dim=1)
        gathered, sizes = gather_rows(self.accelerator, ratios)
        gathered = gathered.to(device="cpu", dtype=torch.float32)
        margins = gathered[:, 0] - gathered[:, 1]  # h = (πc − rc) − (πr − rr), as TRL's delta_score
        if not bool(torch.isfinite(margins).all()):
            raise NonFiniteLossError(f"non-finite DPO margins at step {self.state.global_step + 1}: {margins.tolist()}")
        return gathered, sizes, margins

    def _rewrite_rewards(self, mode: str, gathered: torch.Tensor, beta: float) -> None:
        """TRL appended ``rewards/*`` computed with ``self.beta``; replace them with the β actually used."""
        metrics = self._metrics[mode]
        chosen = beta * gathered[:, 0]
        rejected = beta * gathered[:, 1]
        for key, value in (("rewards/chosen", chosen), ("rewards/rejected", rejected), ("rewards/margins", chosen - rejected)):
            if metrics.get(key):
                metrics[key][-1] = value.mean().item()

    def _compute_loss(self, model, inputs, return_outputs):
        if not self.model.training:
            return self._eval_loss(model, inputs, return_outputs)
        algorithm = self.sweep.algorithm
        controller = self.sweep.controller
        if self._mb_in_step == 0:
            self._step_epoch = int(math.floor(self.state.epoch or 0.0))
        if algorithm == "dynamic-beta-dpo":
            # optimizer_step: β only changes at step ends, so this is β as of the start of the step.
            self.beta = controller.beta
        result, logps = self._trl_loss_and_logps(model, inputs, return_outputs)
        loss, outputs = result if return_outputs else (result, None)
        gathered, sizes, margins = self._gathered_ratios(logps)

        if algorithm == "beta-dpo":
            loss, mb = self._beta_dpo_loss(logps, gathered, sizes, margins)
        else:
            mb = _MicroBatch(margins=margins, beta_used=float(self.beta))
        mb.loss = loss.detach()
        self._metrics["train"]["beta"].append(mb.beta_used)
        self._pending.append(mb)
        self._mb_in_step += 1
        if self.sweep.update_on == "micro_batch":
            self._finish(step=self.state.global_step + 1, micro_batch=self._mb_in_step - 1)
        return (loss, outputs) if return_outputs else loss

    def _beta_dpo_loss(self, logps, gathered, sizes, margins):
        """β-DPO (seed-spec §1.3): select on the gathered gaps, masked loss normalised by the global kept count."""
        controller: BetaDPOController = self.sweep.controller
        if self.sweep.update_on == "micro_batch" or controller.M0 is None:
            # The seed: update M0/σ with the micro-batch, then select. optimizer_step: the very first
            # micro-batch sets up provisional statistics to select with; later ones of that step use them
            # too, and the step-end update starts afresh from all of the step's gaps.
            if self.sweep.update_on == "optimizer_step":
                self._provisional_stats = True
            controller.update(margins)
        M0, sigma = controller.M0, controller.sigma
        mask, beta_used = controller.select(margins, self.generator)
        packed = torch.cat([mask.to(torch.float64), torch.tensor([beta_used], dtype=torch.float64)])
        packed = broadcast_from_main(self.accelerator, packed).cpu()
        mask, beta_used = packed[:-1].to(torch.float32), float(packed[-1])
        kept = int(mask.sum().item())
        rank = self.accelerator.process_index
        start = sum(sizes[:rank])
        chosen, rejected, ref_chosen, ref_rejected = logps
        local_mask = mask[start : start + sizes[rank]].to(chosen.device)
        losses, _, _ = dpo_loss(chosen, rejected, ref_chosen, ref_rejected, beta_used)
        loss = masked_dpo_loss(losses, local_mask, normaliser=kept) * self.accelerator.num_processes
        self._rewrite_rewards("train", gathered, beta_used)
        return loss, _MicroBatch(margins=margins, beta_used=beta_used, mask=mask, M0=M0, sigma=sigma, kept=kept)

    def _eval_loss(self, model, inputs, return_outputs):
        """Evaluation with the controller's current β (never the base β); no controller update."""
        algorithm = self.sweep.algorithm
        if algorithm == "dynamic-beta-dpo":
            self.beta = self.sweep.controller.beta
        if algorithm != "beta-dpo":
            result = super()._compute_loss(model, inputs, return_outputs)
            self._metrics["eval"]["beta"].append(float(self.beta))
            return result
        result, logps = self._trl_loss_and_logps(model, inputs, return_outputs)
        outputs = result[1] if return_outputs else None
        gathered, _, margins = self._gathered_ratios(logps)
        _, beta_used = self.sweep.controller.evaluate(margins)  # all-ones mask, M0/σ untouched
        chosen, rejected, ref_chosen, ref_rejected = logps
        losses, _, _ = dpo_loss(chosen, rejected, ref_chosen, ref_rejected, beta_used)
        loss = losses.mean()
        self._rewrite_rewards("eval", gathered, beta_used)
        self._metrics["eval"]["beta"].append(beta_used)
        return (loss, outputs) if return_outputs else loss

    # -- controller updates and margin records -------------------------------------------------------

    def _optimizer_step_end(self) -> None:
        if self.sweep.update_on == "optimizer_step" and self._pending:
            self._finish(step=self.state.global_step, micro_batch=None)
        self._mb_in_step = 0

    def _finish(self, *, step: int, micro_batch: int | None) -> None:
        """Update the controller from the pending micro-batches (all of a step, or one) and log them."""
        mbs, self._pending = self._pending, []
        margins = torch.cat([mb.margins for mb in mbs])
        local_losses = torch.stack([mb.loss.float().reshape(()) for mb in mbs]).reshape(-1, 1)
        all_losses, _ = gather_rows(self.accelerator, local_losses)
        extra: dict[str, Any] = {"loss": float(all_losses.double().mean().item()), "update_on": self.sweep.update_on}
        controller = self.sweep.controller
        algorithm = self.sweep.algorithm
        metrics = self._metrics["train"]
        if algorithm == "dpo":
            extra["beta"] = float(self.beta)
        elif algorithm == "dynamic-beta-dpo":
            beta_used = mbs[0].beta_used
            controller.update(margins)
            stats = controller.stats()
            extra.update(
                beta=stats["beta"], beta_used=beta_used, tau=stats["tau"], p_hat=stats["p_hat"], u_k=stats["u_k"],
                s_k=stats["s_k"], fail=stats["fail"], count=stats["count"], warmed_up=stats["warmed_up"],
                skipped=stats["skipped"], micro_batches=[{"beta_used": mb.beta_used} for mb in mbs],
            )
            self._live.update(beta=stats["beta"], tau=stats["tau"], p_hat=stats["p_hat"])
            metrics["dynamic_beta/beta"].append(stats["beta"])
            for key in ("tau", "p_hat", "u_k"):
                if stats[key] is not None:
                    metrics[f"dynamic_beta/{key}"].append(float(stats[key]))
        else:  # beta-dpo
            if self.sweep.update_on == "optimizer_step":
                if self._provisional_stats:
                    controller.M0, controller.sigma, controller.count = None, None, 0
                    self._provisional_stats = False
                controller.update(margins)  # once, from every gap of the step (all micro-batches, all ranks)
            kept = sum(mb.kept for mb in mbs)
            beta_used = float(np.mean([mb.beta_used for mb in mbs]))
            extra.update(
                beta_used=beta_used, M_0=controller.M0, sigma=controller.sigma, keep_ratio=kept / int(margins.numel()),
                kept=kept, count=controller.count,
                micro_batches=[
                    {"beta_used": mb.beta_used, "M_0": mb.M0, "sigma": mb.sigma, "kept": mb.kept,
                     "batch_size": int(mb.margins.numel()), "mask": [int(x) for x in mb.mask.tolist()]}
                    for mb in mbs
                ],
            )
            self._live.update(beta=mbs[-1].beta_used, M0=controller.M0, sigma=controller.sigma)
            metrics["beta_dpo/M0"].append(float(controller.M0))
            metrics["beta_dpo/sigma"].append(float(controller.sigma))
            metrics["beta_dpo/keep_ratio"].append(kept / int(margins.numel()))
        if algorithm == "dpo":
            self._live["beta"] = float(self.beta)
        margin_mean = float(margins.double().mean().item())
        self._live["margin_mean"] = margin_mean
        metrics["margins/mean"].append(margin_mean)
        if self.sweep.margin_logger is not None:
            self.sweep.margin_logger.write(margins, epoch=self._step_epoch, step=step, micro_batch=micro_batch, extra=extra)
        if self.sweep.state_log:
            self._write_state_log(step, micro_batch, mbs)

    def _write_state_log(self, step: int, micro_batch: int | None, mbs: list[_MicroBatch]) -> None:
        entry = {
            "rank": self.accelerator.process_index,
            "step": step,
            "micro_batch": micro_batch,
            "beta_used": [mb.beta_used for mb in mbs],
            "mask": [None if mb.mask is None else mb.mask.tolist() for mb in mbs],
            "controller": None if self.sweep.controller is None else self.sweep.controller.state_dict(),
            "generator": _generator_state(self.generator),
        }
        with open(self.sweep.state_log, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")

    def live_values(self, state: Any = None) -> dict[str, float]:
        """Live values for progress events: ``beta``, ``margin_mean``; ``tau``/``p_hat`` (dynamic β),
        ``M0``/``sigma`` (β-DPO). Values not available yet are left out."""
        return {k: v for k, v in self._live.items() if v is not None}

    # -- checkpoints --------------------------------------------------------------------------------

    def sweep_state(self) -> dict:
        controller = self.sweep.controller
        return {
            "format": STATE_FORMAT,
            "algorithm": self.sweep.algorithm,
            "update_on": self.sweep.update_on,
            "global_step": self.state.global_step,
            "beta": float(self.beta),
            "controller": None if controller is None else controller.state_dict(),
            "generator": _generator_state(self.generator),
            "live": self.live_values(),
        }

    def write_sweep_state(self, folder: str | os.PathLike) -> None:
        """Write :data:`STATE_FILE` into ``folder`` (rank 0 only)."""
        if self.args.should_save:
            os.makedirs(folder, exist_ok=True)
            _write_json_atomic(Path(folder) / STATE_FILE, self.sweep_state())

    def load_sweep_state(self, checkpoint: str | os.PathLike) -> None:
        state = read_sweep_state(checkpoint)
        diffs = resume_mismatches(state, self.sweep.algorithm, self.sweep.update_on, self.sweep.controller, float(self.beta))
        if diffs:
            raise RuntimeError(f"cannot resume from {checkpoint}: {'; '.join(diffs)} (resuming would mix two configurations)")
        if state is None:
            return
        if self.sweep.controller is not None:
            self.sweep.controller.load_state_dict(state["controller"])
        if state.get("generator"):
            _set_generator_state(self.generator, state["generator"])
        self.beta = float(state["beta"])
        self._live.update(state.get("live") or {})

    def _save_checkpoint(self, model, trial):
        folder = os.path.join(self._get_output_dir(trial=trial), f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}")
        self.write_sweep_state(folder)  # before TRL's files: trainer_state.json, written last, marks completeness
        super()._save_checkpoint(model, trial)

    def train(self, resume_from_checkpoint: str | bool | None = None, trial=None, **kwargs):
        checkpoint = resume_from_checkpoint
        if checkpoint is True:
            from transformers.trainer_utils import get_last_checkpoint

            checkpoint = get_last_checkpoint(self.args.output_dir)
        resumed_step = 0
        if checkpoint:
            self.load_sweep_state(checkpoint)
            trainer_state = Path(checkpoint) / "trainer_state.json"
            if trainer_state.exists():
                resumed_step = int(json.loads(trainer_state.read_text())["global_step"])
        self._pending, self._mb_in_step = [], 0
        logger = self.sweep.margin_logger
        if logger is not None:
            logger.truncate_after(resumed_step)  # records of the killed attempt after its last checkpoint
        try:
            return super().train(resume_from_checkpoint=checkpoint or None, trial=trial, **kwargs)
        finally:
            if logger is not None:
                logger.close()


# --- factory ------------------------------------------------------------------------------------


def make_trainer(settings: dict, *, run_dir: Path, **kwargs: Any) -> tuple[SweepDPOTrainer, Callable | None]:
    """The trainer for ``settings["algorithm"]`` plus a callable giving live values for progress events.

    ``kwargs`` go to :class:`SweepDPOTrainer` — :class:`trl.DPOTrainer`'s (model, ref_model, args,
    datasets, processing_class, peft_config) and the shared reference cache's (``ref_cache_dir``,
    ``ref_identity``, ``ref_dtype``). Margin logs go to ``run_dir/margins``.
    """
    controller, notes = build_controller(settings)
    training = settings.get("training") or {}
    margin_log = settings.get("margin_log") or {}
    state_dir = os.environ.get("DPO_SWEEP_STATE_LOG")  # test-only: per-rank controller state logs
    state_log = None
    if state_dir:
        os.makedirs(state_dir, exist_ok=True)
        state_log = os.path.join(state_dir, f"rank{int(os.environ.get('RANK', '0'))}.jsonl")
    options = SweepOptions(
        algorithm=settings["algorithm"],
        update_on=settings.get("update_on", "optimizer_step"),
        controller=controller,
        margin_logger=MarginLogger(Path(run_dir) / "margins", sample_size=margin_log.get("sample_size", 64), run_dir=run_dir),
        seed=int(training.get("seed", 0)),
        state_log=state_log,
        notes=notes,
    )
    trainer = SweepDPOTrainer(sweep=options, **kwargs)
    return trainer, trainer.live_values
