"""Supervised fine-tuning: spec → `{"messages"}` rows → SFTConfig → TRL `SFTTrainer` → checkpoints → final model.

The loss covers **assistant tokens only** (`assistant_only_loss=True`): the seed trained on every
token of the templated conversation, user turns included (seed-spec §1.4, §7.14). The chat template
is the tokenizer's own; the seed-spec §3.2 Llama-3 template (with `{% generation %}` markers) is
installed only when the tokenizer has none. TRL swaps in a training variant with generation markers
for the template families it knows; any other template without markers is a `SpecError`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .. import host
from ..callbacks import EventCallback
from ..runtime import SpecError, quiet_libraries, release_memory, resolve_device, resolve_model, seed_everything
from .common import (
    check_hub,
    check_report_to,
    check_vocab,
    dropped_rows_warnings,
    is_main_process,
    last_checkpoint,
    load_run_data,
    load_tokenizer,
    lora_config,
    save_final,
    push_to_hub,
    tracker_env,
    trainer_args,
    write_debug_samples,
)

__all__ = ["train", "load_sft_data"]


def _sweep_sft_trainer(base):
    """TRL's ``SFTTrainer`` with the world-size-independent row order of :mod:`..dist` (as the preference
    trainer), so N processes × ``batch_size`` B see the global batches of one process × N·B."""
    from ..dist import GlobalBatchOrderMixin

    return type("SweepSFTTrainer", (GlobalBatchOrderMixin, base), {})


def load_sft_data(dataset: dict, seed: int) -> tuple[list[dict], list[dict] | None, dict]:
    """`{"messages"}` train rows, eval rows (or None) and a JSON-able account of what was loaded."""
    data = load_run_data(dataset, seed, "sft")
    return data.rows, data.eval_rows, data.report


def train(request: dict) -> dict:
    spec = request["spec"]
    settings = spec["settings"]
    training = settings["training"]
    run_dir = Path(request["run_dir"])
    cache_dir = request["cache_dir"]
    main = is_main_process()
    run_dir.mkdir(parents=True, exist_ok=True)
    quiet_libraries()

    trackers = check_report_to(settings.get("report_to"))
    hub_target = check_hub(settings.get("hub"))

    host.emit({"kind": "phase", "phase": "loading data"})
    rows, eval_rows, data_report = load_sft_data(settings["dataset"], training["seed"])
    if main:
        (run_dir / "data.json").write_text(json.dumps(data_report, indent=2))
    host.emit({"kind": "data", **data_report["rows"], "dropped": data_report["train"]["dropped"]})
    for message in dropped_rows_warnings(data_report):
        host.emit({"kind": "warning", "message": message})

    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    device = resolve_device(training)
    for note in device.notes:
        host.emit({"kind": "warning", "message": note})
    seed_everything(training["seed"])

    host.emit({"kind": "phase", "phase": "loading models"})
    model_path = resolve_model(settings["model"], cache_dir)
    tokenizer, template = load_tokenizer(model_path)
    check_vocab(tokenizer, model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=device.torch_dtype)
    config = SFTConfig(
        **trainer_args(settings, run_dir, device, has_eval=bool(eval_rows), trackers=trackers, run_name=spec.get("name")),
        assistant_only_loss=True,
        packing=False,
    )

    host.emit({"kind": "phase", "phase": "preparing trainer"})
    try:
        with tracker_env(trackers, run_dir):
            trainer = _sweep_sft_trainer(SFTTrainer)(
                model=model,
                args=config,
                train_dataset=Dataset.from_list(rows),
                eval_dataset=Dataset.from_list(eval_rows) if eval_rows else None,
                processing_class=tokenizer,
                peft_config=lora_config(settings),
            )
    except ValueError as e:
        if "not training-compatible" in str(e) or "generation" in str(e):
            raise SpecError(
                f"SFT trains on assistant tokens only, which needs {{% generation %}} markers in the chat template; "
                f"the tokenizer of {settings['model']} has a template TRL cannot patch: {e}"
            ) from e
        raise
    debug_rows = write_debug_samples(trainer, tokenizer, run_dir, (settings.get("debug") or {}).get("samples", 0), "sft")
    events = EventCallback()
    trainer.add_callback(events)

    checkpoints = run_dir / "checkpoints"
    resume_from = last_checkpoint(checkpoints) if request.get("resume", True) else None
    if resume_from:
        host.emit({"kind": "resume", "checkpoint": os.path.basename(resume_from)})
    host.emit({"kind": "phase", "phase": "training"})
    try:
        result = trainer.train(resume_from_checkpoint=resume_from)
        state = trainer.state
        outcome: dict[str, Any] = {
            "status": "interrupted" if events.interrupted else "succeeded",
            "algorithm": "sft",
            "step": state.global_step,
            "total": state.max_steps,
            "train_loss": result.training_loss,
            "resumed_from": os.path.basename(resume_from) if resume_from else None,
            "device": device.kind,
            "precision": device.dtype_name,
            "gradient_checkpointing": device.gradient_checkpointing,
            "chat_template": template,
            "data": data_report["rows"],
        }
        if debug_rows:
            outcome["debug_samples"] = str(run_dir / "debug_samples.jsonl")
        if not events.interrupted:
            host.emit({"kind": "phase", "phase": "saving"})
            final = run_dir / "final"
            save_final(trainer, tokenizer, settings, model_path, final, device)
            outcome["final_dir"] = str(final)
            if eval_rows:
                outcome["eval"] = trainer.evaluate()
            if hub_target and trainer.is_world_process_zero():
                host.emit({"kind": "phase", "phase": "pushing to the Hub"})
                outcome["hub"] = push_to_hub(trainer.model, tokenizer, hub_target)
        outcome["log_history"] = [entry for entry in state.log_history if "loss" in entry][-1:]
        return outcome
    finally:
        del trainer, model
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        release_memory()
