"""TRL/transformers callbacks shared by the recipes: progress events, stop requests, non-finite losses."""

from __future__ import annotations

import math
import os
import time
from typing import Any

from transformers import TrainerCallback

from . import host

#: Trainer log keys forwarded in step events (TRL's names; `rewards/margins` = β·h averaged).
STEP_KEYS = (
    "loss",
    "grad_norm",
    "learning_rate",
    "rewards/chosen",
    "rewards/rejected",
    "rewards/accuracies",
    "rewards/margins",
    "logps/chosen",
    "logps/rejected",
    "entropy",
    "mean_token_accuracy",
    "num_tokens",
)


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite (a failure class of its own: retrying rarely helps)."""


class EventCallback(TrainerCallback):
    """Turns trainer logs into bridge events; honours stop requests (SIGTERM → checkpoint, then stop)."""

    def __init__(self, extra: Any = None):
        self.extra = extra  # callable(state) -> dict of live values (β, τ, …) merged into step events
        self.started = time.monotonic()
        self.interrupted = False
        self.first_step: int | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.monotonic()
        self.first_step = state.global_step
        host.emit({"kind": "train-begin", "step": state.global_step, "total": state.max_steps})

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = dict(logs or {})
        if "loss" in logs:
            loss = logs["loss"]
            metrics = {k: logs[k] for k in STEP_KEYS if k in logs}
            if self.extra is not None:
                metrics.update(self.extra(state) or {})
            host.emit(
                {
                    "kind": "step",
                    "step": state.global_step,
                    "total": state.max_steps,
                    "epoch": state.epoch,
                    "elapsed_s": time.monotonic() - self.started,
                    "steps_this_session": state.global_step - (self.first_step or 0),
                    "metrics": metrics,
                }
            )
            if isinstance(loss, float) and not math.isfinite(loss):
                raise NonFiniteLossError(f"training loss became {loss} at step {state.global_step}")
        elif any(k.startswith("eval_") for k in logs):
            host.emit({"kind": "eval", "step": state.global_step, "metrics": logs})

    def _stop_requested(self) -> bool:
        """A stop request (signal, or the multi-process launcher's stop file), agreed by every rank: all ranks
        must stop at the same step, or the next collective call would hang."""
        stop_file = os.environ.get("DPO_SWEEP_STOP_FILE")
        stop = host.stop_requested() or bool(stop_file and os.path.exists(stop_file))
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            import torch

            flag = torch.tensor([1.0 if stop else 0.0])
            if dist.get_backend() == "nccl":
                flag = flag.cuda()
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            stop = bool(flag.item() > 0)
        return stop

    def on_step_end(self, args, state, control, **kwargs):
        if self._stop_requested() and not self.interrupted:
            self.interrupted = True
            control.should_save = True
            control.should_training_stop = True
            host.emit({"kind": "stopping", "step": state.global_step, "reason": "stop requested"})

    def on_save(self, args, state, control, **kwargs):
        host.emit({"kind": "checkpoint", "step": state.global_step})
