"""Helpers for the training tests: run specs, margin-log reading, log-probs computed by hand.

"By hand" = the prompt and prompt+completion are rendered with the tokenizer's chat template
(``apply_chat_template``, independent of TRL's data pipeline), each sequence is run through the model on
its own (no padding) and scored with :func:`dpo_sweep_worker.losses.sequence_logps` on labels that are
-100 on the prompt.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[2]
PREFS = str(REPO / "configs" / "data" / "prefs-hh.jsonl")
SFT = str(REPO / "configs" / "data" / "sft.jsonl")
LN2 = math.log(2.0)

BASE: dict[str, Any] = {
    "model": "builtin:tiny-llama",
    "dataset": {"path": PREFS, "split": "train", "limit": 32},
    "algorithm": "dpo",
    "beta": 0.1,
    "loss_type": ["sigmoid"],
    "label_smoothing": 0.0,
    "beta_dpo": {"alpha": 0.6, "momentum": 0.9, "keep_ratio": 0.5, "min_beta": 1e-3, "eps": 1e-6},
    "dynamic_beta": {"delta": 0.1, "ema_lambda": 0.1, "warmup": 1, "alpha": 0.5, "gamma": 2.0, "beta_min": 0.01, "beta_max": 2.0},
    "update_on": "optimizer_step",
    "margin_log": {"sample_size": -1},
    "debug": {"samples": 0},
    "report_to": [],
    "hub": {"push": False},
    "training": {
        "max_steps": 5, "epochs": 1, "batch_size": 4, "grad_accum": 1, "learning_rate": 1e-3, "scheduler": "constant",
        "warmup_steps": 0, "max_grad_norm": 1.0, "weight_decay": 0.0, "max_length": 256, "precision": "auto",
        "gradient_checkpointing": "auto", "precompute_ref_log_probs": False, "seed": 42, "save_steps": 100,
        "save_total_limit": 2, "logging_steps": 1,
    },
    "resources": {"gpus_per_run": 1, "processes_per_run": 1},
}


def merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def settings(**over) -> dict:
    return merge(BASE, over)


def request(s: dict, run_dir, cache: str, resume: bool = True) -> dict:
    return {"spec": {"id": "t", "name": "t", "sweep": "s", "varied": {}, "settings": s}, "run_dir": str(run_dir), "cache_dir": cache, "resume": resume}


def run(s: dict, run_dir, cache: str, resume: bool = True, on_event=None) -> tuple[dict, list[dict]]:
    """Train through the façade in this process; returns (outcome, events). ``on_event(event)`` is called
    for each progress event as it arrives."""
    from dpo_sweep_worker import facade, host

    events: list[dict] = []

    def emit(text: str) -> None:
        events.append(json.loads(text))
        if on_event is not None:
            on_event(events[-1])

    previous = host._emit
    host._emit = emit
    try:
        out = facade.train(request(s, run_dir, cache, resume))
    finally:
        host._emit = previous
        host.clear_stop()
    return out, events


def step_losses(events: list[dict]) -> dict[int, float]:
    """Trainer-logged loss per optimizer step (logging_steps = 1), from the progress events."""
    return {e["step"]: e["metrics"]["loss"] for e in events if e["kind"] == "step"}


def records(run_dir) -> list[dict]:
    out = []
    for path in sorted(Path(run_dir, "margins").glob("epoch_*/margins.jsonl")):
        out += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return out


def model_dir(cache: str, seed: int = 0) -> str:
    from dpo_sweep_worker.tiny import ensure_tiny

    return ensure_tiny(Path(cache) / "models", seed=seed)


@torch.no_grad()
def hand_logps(model, tokenizer, rows: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(πc, πr)`` for conversational preference rows, one unpadded sequence at a time."""
    from dpo_sweep_worker.losses import sequence_logps

    model.eval()
    out = {"chosen": [], "rejected": []}
    for row in rows:
        prompt = tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=True, return_dict=False)
        for side in ("chosen", "rejected"):
            full = tokenizer.apply_chat_template(row["prompt"] + row[side], tokenize=True, return_dict=False)
            assert full[: len(prompt)] == prompt
            ids = torch.tensor([full])
            labels = ids.clone()
            labels[0, : len(prompt)] = -100
            logits = model(input_ids=ids).logits
            out[side].append(sequence_logps(logits, labels)[0])
    return torch.stack(out["chosen"]), torch.stack(out["rejected"])


def load(path: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)
