"""Preference training, top to bottom: spec → data → models → DPOConfig → trainer → checkpoints → final model.

One recipe for `dpo`, `beta-dpo` and `dynamic-beta-dpo`; the adaptive algorithms differ only in the
trainer's loss hook and controller (see `trainers.py`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .. import host
from ..callbacks import EventCallback
from ..data import load_rows, train_eval_split
from ..runtime import SpecError, quiet_libraries, release_memory, resolve_device, resolve_model, seed_everything


def _dataset_source(dataset: dict) -> str:
    source = dataset.get("path") or dataset.get("name")
    if not source:
        raise SpecError("dataset needs a `path` (local JSON/JSONL) or a `name` (Hugging Face dataset id)")
    return source


def load_preference_data(dataset: dict, seed: int) -> tuple[list[dict], list[dict] | None, dict]:
    """Train rows, eval rows (or None) and a JSON-able account of what was loaded and dropped."""
    source = _dataset_source(dataset)
    train = load_rows(source, dataset.get("split", "train"), dataset.get("format"), task="preference")
    report: dict[str, Any] = {"train": train.summary()}
    rows = train.rows
    eval_rows = None
    if dataset.get("eval_split"):
        held = load_rows(source, dataset["eval_split"], dataset.get("format") or train.fmt, task="preference")
        eval_rows = held.rows
        report["eval"] = held.summary()
    elif dataset.get("val_ratio"):
        rows, eval_rows = train_eval_split(rows, dataset["val_ratio"], seed)
    if dataset.get("limit"):
        rows = rows[: dataset["limit"]]
    report["rows"] = {"train": len(rows), "eval": len(eval_rows) if eval_rows is not None else 0}
    return rows, eval_rows, report


def last_checkpoint(checkpoints: Path) -> str | None:
    if not checkpoints.is_dir():
        return None
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(checkpoints))


def train(request: dict) -> dict:
    spec = request["spec"]
    settings = spec["settings"]
    training = settings["training"]
    run_dir = Path(request["run_dir"])
    cache_dir = request["cache_dir"]
    quiet_libraries()

    host.emit({"kind": "phase", "phase": "loading data"})
    rows, eval_rows, data_report = load_preference_data(settings["dataset"], training["seed"])
    (run_dir / "data.json").write_text(json.dumps(data_report, indent=2))
    host.emit({"kind": "data", **data_report["rows"], "dropped": data_report["train"]["dropped"]})

    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig

    from ..trainers import make_trainer

    device = resolve_device(training)
    for note in device.notes:
        host.emit({"kind": "warning", "message": note})
    seed_everything(training["seed"])

    host.emit({"kind": "phase", "phase": "loading models"})
    policy_path = resolve_model(settings["model"], cache_dir)
    reference_path = resolve_model(settings.get("reference") or settings["model"], cache_dir)
    tokenizer = AutoTokenizer.from_pretrained(policy_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    policy = AutoModelForCausalLM.from_pretrained(policy_path, dtype=device.torch_dtype)
    reference = AutoModelForCausalLM.from_pretrained(reference_path, dtype=device.torch_dtype)

    checkpoints = run_dir / "checkpoints"
    config = DPOConfig(
        output_dir=str(checkpoints),
        loss_type=list(settings["loss_type"]),
        loss_weights=settings.get("loss_weights"),
        beta=settings["beta"],
        label_smoothing=settings.get("label_smoothing", 0.0),
        max_length=training["max_length"],
        per_device_train_batch_size=training["batch_size"],
        per_device_eval_batch_size=training.get("eval_batch_size") or training["batch_size"],
        gradient_accumulation_steps=training["grad_accum"],
        learning_rate=training["learning_rate"],
        lr_scheduler_type=training["scheduler"],
        warmup_steps=training["warmup_steps"],
        max_grad_norm=training["max_grad_norm"],
        weight_decay=training["weight_decay"],
        max_steps=training.get("max_steps") or -1,
        num_train_epochs=training["epochs"],
        seed=training["seed"],
        data_seed=training["seed"],
        logging_steps=training["logging_steps"],
        save_strategy="steps",
        save_steps=training["save_steps"],
        save_total_limit=training["save_total_limit"],
        eval_strategy="steps" if (eval_rows and training.get("eval_steps")) else "no",
        eval_steps=training.get("eval_steps"),
        precompute_ref_log_probs=training["precompute_ref_log_probs"],
        bf16=device.bf16,
        fp16=device.fp16,
        use_cpu=device.kind == "cpu",
        gradient_checkpointing=device.gradient_checkpointing,
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        remove_unused_columns=False,
    )

    host.emit({"kind": "phase", "phase": "preparing trainer"})
    trainer, extra = make_trainer(
        settings,
        model=policy,
        ref_model=reference,
        args=config,
        train_dataset=Dataset.from_list(rows),
        eval_dataset=Dataset.from_list(eval_rows) if eval_rows else None,
        processing_class=tokenizer,
        run_dir=run_dir,
    )
    events = EventCallback(extra=extra)
    trainer.add_callback(events)

    resume_from = last_checkpoint(checkpoints) if request.get("resume", True) else None
    if resume_from:
        host.emit({"kind": "resume", "checkpoint": os.path.basename(resume_from)})
    host.emit({"kind": "phase", "phase": "training"})
    try:
        result = trainer.train(resume_from_checkpoint=resume_from)
        state = trainer.state
        outcome: dict[str, Any] = {
            "status": "interrupted" if events.interrupted else "succeeded",
            "step": state.global_step,
            "total": state.max_steps,
            "train_loss": result.training_loss,
            "resumed_from": os.path.basename(resume_from) if resume_from else None,
            "device": device.kind,
            "precision": device.dtype_name,
            "data": data_report["rows"],
        }
        if not events.interrupted:
            host.emit({"kind": "phase", "phase": "saving"})
            final = run_dir / "final"
            trainer.save_model(str(final))
            tokenizer.save_pretrained(str(final))
            outcome["final_dir"] = str(final)
            if eval_rows:
                outcome["eval"] = trainer.evaluate()
        outcome["log_history"] = [entry for entry in state.log_history if "loss" in entry][-1:]
        return outcome
    finally:
        del trainer, policy, reference
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        release_memory()
