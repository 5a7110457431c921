"""Preference training, top to bottom: spec → data → models → DPOConfig → trainer → checkpoints → final model.

One recipe for `dpo`, `beta-dpo` and `dynamic-beta-dpo`; the adaptive algorithms differ only in the
trainer's loss hook and controller (see `trainers.py`). Every rank of a multi-process run executes
this function; only rank 0 writes the run directory's files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .. import host
from ..callbacks import EventCallback
from ..runtime import quiet_libraries, release_memory, resolve_device, resolve_model, seed_everything
from .common import (
    check_hub,
    check_report_to,
    check_vocab,
    drop_long_prompts,
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

__all__ = ["train", "load_preference_data", "last_checkpoint"]


def load_preference_data(dataset: dict, seed: int) -> tuple[list[dict], list[dict] | None, dict]:
    """Train rows, eval rows (or None) and a JSON-able account of what was loaded and dropped."""
    data = load_run_data(dataset, seed, "preference")
    return data.rows, data.eval_rows, data.report


def decide_precompute(training: dict, rows: int, sharing: int, settings: dict) -> bool:
    """`precompute_ref_log_probs: auto`: precompute (and share through the cache) when other runs of the
    sweep use the same reference and data, or when this run sees at least half of the rows anyway; a
    short run over a big dataset keeps the live reference (precomputing would score rows it never uses)."""
    value = training.get("precompute_ref_log_probs", "auto")
    if value != "auto":
        return bool(value)
    if sharing >= 2:
        return True
    from ..launch import processes_for

    processes = processes_for(settings)
    global_batch = training["batch_size"] * training["grad_accum"] * processes
    seen = training["max_steps"] * global_batch if training.get("max_steps") else training.get("epochs", 1) * rows
    return seen >= 0.5 * rows


def train(request: dict) -> dict:
    spec = request["spec"]
    settings = spec["settings"]
    training = settings["training"]
    run_dir = Path(request["run_dir"])
    cache_dir = request["cache_dir"]
    main = is_main_process()
    run_dir.mkdir(parents=True, exist_ok=True)
    quiet_libraries()

    from ..trainers import STATE_FILE, build_controller, check_resume, make_trainer

    # Fail fast on what the spec asks for that cannot work, before loading anything heavy.
    build_controller(settings)
    trackers = check_report_to(settings.get("report_to"))
    hub_target = check_hub(settings.get("hub"))
    checkpoints = run_dir / "checkpoints"
    resume_from = last_checkpoint(checkpoints, required=(STATE_FILE,)) if request.get("resume", True) else None
    if resume_from:
        check_resume(settings, resume_from)

    host.emit({"kind": "phase", "phase": "loading data"})
    data = load_run_data(settings["dataset"], training["seed"], "preference")
    policy_path = resolve_model(settings["model"], cache_dir)
    reference_ref = settings.get("reference") or settings["model"]
    reference_path = resolve_model(reference_ref, cache_dir)
    tokenizer, template = load_tokenizer(policy_path)
    check_vocab(tokenizer, policy_path, "policy")
    if reference_path != policy_path:
        check_vocab(tokenizer, reference_path, "reference")
    try:
        drop_long_prompts(data, tokenizer, training["max_length"])  # TRL would drop them without a word
    finally:
        if main:
            (run_dir / "data.json").write_text(json.dumps(data.report, indent=2))
    rows, eval_rows, data_report = data.rows, data.eval_rows, data.report
    host.emit({"kind": "data", **data_report["rows"], "dropped": data_report["train"]["dropped"]})
    for message in dropped_rows_warnings(data_report):
        host.emit({"kind": "warning", "message": message})

    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import DPOConfig

    device = resolve_device(training)
    for note in device.notes:
        host.emit({"kind": "warning", "message": note})
    seed_everything(training["seed"])

    host.emit({"kind": "phase", "phase": "loading models"})
    peft = lora_config(settings)
    policy = AutoModelForCausalLM.from_pretrained(policy_path, dtype=device.torch_dtype)
    precompute = decide_precompute(training, len(rows), int(request.get("ref_sharing", 1)), settings)
    host.emit({"kind": "reference", "precompute": precompute, "sharing": int(request.get("ref_sharing", 1))})
    if reference_path == policy_path and (peft is not None or precompute):
        # LoRA: the reference is the base model with the adapter disabled. Precomputed log-probs: TRL scores
        # the data with the still untrained policy before the first step, so no copy is kept in memory.
        reference = None
    else:
        reference = AutoModelForCausalLM.from_pretrained(reference_path, dtype=device.torch_dtype)

    adaptive = settings["algorithm"] != "dpo"
    config = DPOConfig(
        **trainer_args(settings, run_dir, device, has_eval=bool(eval_rows), trackers=trackers, run_name=spec.get("name")),
        loss_type=["sigmoid"] if adaptive else list(settings["loss_type"]),
        loss_weights=None if adaptive else settings.get("loss_weights"),
        beta=settings["beta"],
        label_smoothing=0.0 if adaptive else settings.get("label_smoothing", 0.0),
        precompute_ref_log_probs=precompute,
        remove_unused_columns=False,
    )

    host.emit({"kind": "phase", "phase": "preparing trainer"})
    with tracker_env(trackers, run_dir):
        trainer, extra = make_trainer(
            settings,
            run_dir=run_dir,
            model=policy,
            ref_model=reference,
            args=config,
            train_dataset=Dataset.from_list(rows),
            eval_dataset=Dataset.from_list(eval_rows) if eval_rows else None,
            processing_class=tokenizer,
            peft_config=peft,
            # reference log-probs shared across runs and sweeps (content-addressed, see refcache.py)
            ref_cache_dir=cache_dir if precompute else None,
            ref_identity=reference_path,
            ref_dtype=device.dtype_name,
        )
    for note in trainer.sweep.notes:
        host.emit({"kind": "warning", "message": note})
    debug_rows = write_debug_samples(trainer, tokenizer, run_dir, (settings.get("debug") or {}).get("samples", 0), "preference")
    events = EventCallback(extra=extra)
    trainer.add_callback(events)

    if resume_from:
        host.emit({"kind": "resume", "checkpoint": os.path.basename(resume_from)})
    host.emit({"kind": "phase", "phase": "training"})
    try:
        result = trainer.train(resume_from_checkpoint=resume_from)
        state = trainer.state
        outcome: dict[str, Any] = {
            "status": "interrupted" if events.interrupted else "succeeded",
            "algorithm": settings["algorithm"],
            "step": state.global_step,
            "total": state.max_steps,
            "train_loss": result.training_loss,
            "resumed_from": os.path.basename(resume_from) if resume_from else None,
            "device": device.kind,
            "precision": device.dtype_name,
            "gradient_checkpointing": device.gradient_checkpointing,
            "chat_template": template,
            "data": data_report["rows"],
            "controller": trainer.live_values(),
            "margins_dir": str(run_dir / "margins"),
        }
        if debug_rows:
            outcome["debug_samples"] = str(run_dir / "debug_samples.jsonl")
        if not events.interrupted:
            host.emit({"kind": "phase", "phase": "saving"})
            final = run_dir / "final"
            save_final(trainer, tokenizer, settings, policy_path, final, device)
            trainer.write_sweep_state(final)
            outcome["final_dir"] = str(final)
            if eval_rows:
                outcome["eval"] = trainer.evaluate()
            if hub_target and trainer.is_world_process_zero():
                host.emit({"kind": "phase", "phase": "pushing to the Hub"})
                outcome["hub"] = push_to_hub(trainer.model, tokenizer, hub_target)
        outcome["log_history"] = [entry for entry in state.log_history if "loss" in entry][-1:]
        return outcome
    finally:
        del trainer, policy, reference
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        release_memory()
