"""What the SFT and preference recipes share: checks that fail fast, TRL config fields, chat template,
LoRA, trackers, Hub upload, debug samples and checkpoint discovery."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from .. import host
from ..runtime import Device, SpecError

#: seed-spec §3.2 Llama-3 rendering, used only when the tokenizer has no chat template. Assistant
#: content and its <|eot_id|> sit inside {% generation %} markers, so SFT's assistant-only loss works
#: with it. BOS comes from the tokenizer (written once, before the first message; TRL tokenises the
#: rendered text without adding special tokens, so there is exactly one).
FALLBACK_CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if loop.first and bos_token %}{{- bos_token }}{%- endif %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}"
    "{%- if message['role'] == 'assistant' %}"
    "{%- generation %}{{- message['content'] | trim + '<|eot_id|>' }}{%- endgeneration %}"
    "{%- else %}"
    "{{- message['content'] | trim + '<|eot_id|>' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)

#: Tracker name → the package TRL's callback needs (any one of them).
TRACKER_PACKAGES = {"wandb": ("wandb",), "tensorboard": ("tensorboard", "tensorboardX")}


def dataset_source(dataset: dict) -> str:
    source = dataset.get("path") or dataset.get("name")
    if not source:
        raise SpecError("dataset needs a `path` (local JSON/JSONL) or a `name` (Hugging Face dataset id)")
    return source


@dataclass
class RunData:
    """The rows a run trains and evaluates on, each with its record's line (``LoadResult.lines``), and the
    JSON-able account written to ``data.json``: ``{"train": summary, ["eval": summary,] "rows": counts}``.
    With ``val_ratio`` the held-out rows come from the train split, so their drops count in its summary."""

    source: str
    rows: list[dict]
    lines: list[int]
    eval_rows: list[dict] | None
    eval_lines: list[int] | None
    report: dict

    def count(self) -> None:
        self.report["rows"] = {"train": len(self.rows), "eval": len(self.eval_rows) if self.eval_rows is not None else 0}


def load_run_data(dataset: dict, seed: int, task: str) -> RunData:
    """Train rows, eval rows (``eval_split``, or ``val_ratio`` held out of the train split, or none) and the
    account of what was loaded and dropped. A ``val_ratio`` the rows cannot serve is a :class:`DataError`."""
    from ..data import DataError, load_rows, train_eval_split

    source = dataset_source(dataset)
    train = load_rows(source, dataset.get("split", "train"), dataset.get("format"), task=task)
    report: dict[str, Any] = {"train": train.summary()}
    pairs = list(zip(train.rows, train.lines))
    held = None
    if dataset.get("eval_split"):
        loaded = load_rows(source, dataset["eval_split"], dataset.get("format") or train.fmt, task=task)
        held = list(zip(loaded.rows, loaded.lines))
        report["eval"] = loaded.summary()
    elif dataset.get("val_ratio"):
        try:
            pairs, held = train_eval_split(pairs, dataset["val_ratio"], seed)
        except ValueError as e:
            raise DataError(f"dataset.val_ratio {dataset['val_ratio']}: {e}", source=source) from e
    if dataset.get("limit"):
        pairs = pairs[: dataset["limit"]]
    data = RunData(
        source=source,
        rows=[r for r, _ in pairs],
        lines=[n for _, n in pairs],
        eval_rows=None if held is None else [r for r, _ in held],
        eval_lines=None if held is None else [n for _, n in held],
        report=report,
    )
    data.count()
    return data


def _prompt_lengths(tokenizer, prompts: list[list[dict]], batch: int = 512) -> list[int]:
    """Token count of each conversational prompt exactly as TRL's DPO tokenisation renders it (chat template,
    generation prompt, no extra special tokens)."""
    out: list[int] = []
    for start in range(0, len(prompts), batch):
        ids = tokenizer.apply_chat_template(prompts[start : start + batch], add_generation_prompt=True, tokenize=True, return_dict=True)
        out.extend(len(x) for x in ids["input_ids"])
    return out


def drop_long_prompts(data: RunData, tokenizer, max_length: int | None) -> None:
    """Drop the preference rows whose prompt alone fills ``max_length`` tokens, before TRL does.

    TRL's DPO trainer silently filters such rows out (with ``truncation_mode="keep_start"`` no response token
    would remain); when that leaves nothing the run crashed later inside the trainer with no word about
    ``max_length``. Here every dropped row is counted under ``prompt_too_long`` with its line (``data.json`` and
    the dropped-rows warning), and a split left empty is a :class:`DataError` naming ``max_length``, raised
    before any model is loaded. TRL's own filter then has nothing left to drop.
    """
    if max_length is None:
        return
    from ..data import DataError

    def split(rows, lines, summary, name):
        lengths = _prompt_lengths(tokenizer, [r["prompt"] for r in rows])
        keep = [i for i, n in enumerate(lengths) if n < max_length]
        if len(keep) == len(rows):
            return rows, lines
        for i, n in enumerate(lengths):
            if n >= max_length:
                summary["dropped"]["prompt_too_long"] = summary["dropped"].get("prompt_too_long", 0) + 1
                if len(summary["bad_rows"]) < 100:
                    summary["bad_rows"].append({
                        "line": lines[i], "reason": "prompt_too_long",
                        "detail": f"the prompt is {n} tokens, which leaves no room for a response within max_length {max_length}",
                    })
        summary["bad_rows"].sort(key=lambda b: b["line"])
        summary["rows"] -= len(rows) - len(keep)
        if not keep:
            raise DataError(
                f"no {name} row fits training.max_length {max_length}: all {len(rows)} prompts are {max_length} tokens "
                f"or longer (shortest {min(lengths)}, lines {', '.join(map(str, lines[:5]))}{', …' if len(lines) > 5 else ''}); "
                "raise max_length above the prompt lengths",
                source=data.source,
            )
        return [rows[i] for i in keep], [lines[i] for i in keep]

    train_summary = data.report["train"]
    data.rows, data.lines = split(data.rows, data.lines, train_summary, "training")
    if data.eval_rows:
        eval_summary = data.report.get("eval", train_summary)
        data.eval_rows, data.eval_lines = split(data.eval_rows, data.eval_lines, eval_summary, "evaluation")
    data.count()


# --- fail-fast checks ----------------------------------------------------------------------------


def check_report_to(report_to: list[str] | None) -> list[str]:
    """The trackers to pass to TRL; a missing package is a :class:`SpecError` naming it."""
    trackers = list(report_to or [])
    for name in trackers:
        packages = TRACKER_PACKAGES.get(name)
        if packages is None:
            raise SpecError(f"report_to: unknown tracker {name!r}; use one of {', '.join(TRACKER_PACKAGES)}")
        if not any(importlib.util.find_spec(p) is not None for p in packages):
            raise SpecError(
                f"report_to: {name} needs the `{packages[0]}` package, which is not installed in the worker's "
                f"environment (pip install {packages[0]}), or remove {name!r} from report_to"
            )
    return trackers


def check_hub(hub: dict | None) -> tuple[str, str] | None:
    """``(model_id, token)`` when ``hub.push`` is set, else None. The token comes from ``HF_TOKEN`` only
    (never from the spec, never written anywhere); a missing token or model id is a :class:`SpecError`."""
    hub = hub or {}
    if not hub.get("push"):
        return None
    model_id = hub.get("model_id")
    if not model_id:
        raise SpecError("hub.push needs hub.model_id (the target repository, e.g. user/my-model)")
    token = os.environ.get("HF_TOKEN")
    if not token:
        raise SpecError(
            "hub.push needs a Hugging Face token in the HF_TOKEN environment variable of the worker "
            "(it is read from the environment only, never from the plan)"
        )
    return model_id, token


def push_to_hub(model: Any, tokenizer: Any, target: tuple[str, str]) -> str:
    """Push the final model and tokenizer; the token is passed as an argument, never stored."""
    model_id, token = target
    model.push_to_hub(model_id, token=token)
    tokenizer.push_to_hub(model_id, token=token)
    return model_id


# --- config ----------------------------------------------------------------------------------------


def trainer_args(
    settings: dict, run_dir: Path, device: Device, *, has_eval: bool, trackers: list[str], run_name: str | None = None
) -> dict:
    """Fields shared by ``DPOConfig`` and ``SFTConfig``."""
    training = settings["training"]
    return dict(
        output_dir=str(run_dir / "checkpoints"),
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
        eval_strategy="steps" if (has_eval and training.get("eval_steps")) else "no",
        eval_steps=training.get("eval_steps"),
        bf16=device.bf16,
        fp16=device.fp16,
        use_cpu=device.kind == "cpu",
        gradient_checkpointing=device.gradient_checkpointing,
        report_to=trackers or "none",
        run_name=run_name,
        disable_tqdm=True,
        dataloader_num_workers=0,
        ddp_find_unused_parameters=False,  # every parameter takes part (saves DDP a graph traversal per step)
        **fsdp_args(settings),
    )


def world_size() -> int:
    """Processes of this run (torchrun's ``WORLD_SIZE``; 1 outside a distributed launch)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def fsdp_args(settings: dict) -> dict:
    """``TrainingArguments.fsdp`` / ``fsdp_config`` for ``resources.fsdp``, in a multi-process run only.

    ``false`` → DDP (nothing passed); ``true`` or an option string (``"full_shard auto_wrap"``) →
    ``fsdp``; a mapping → ``fsdp=True`` with the mapping as ``fsdp_config``. Passed through to
    transformers/accelerate unchanged (untested on CPU); with one process it is ignored with a warning.
    """
    value = (settings.get("resources") or {}).get("fsdp", False)
    if value is None or value is False or value == "":
        return {}
    if not (value is True or isinstance(value, (str, dict))):
        raise SpecError(f"resources.fsdp: expected false, true, an FSDP option string or an fsdp_config mapping, got {value!r}")
    if world_size() <= 1:
        host.emit({"kind": "warning", "message": "resources.fsdp is ignored: this run trains in one process "
                   "(set resources.processes_per_run, or gpus_per_run on CUDA, above 1)"})
        return {}
    if isinstance(value, dict):
        return {"fsdp": True, "fsdp_config": dict(value)}
    return {"fsdp": value}


@contextlib.contextmanager
def tracker_env(trackers: list[str], run_dir: Path) -> Iterator[None]:
    """TensorBoard logs go to ``run_dir/tensorboard`` (TRL reads the directory from the environment when the
    trainer is built); the variable is restored afterwards, so a warm worker's next run is not affected."""
    if "tensorboard" not in trackers:
        yield
        return
    key = "TENSORBOARD_LOGGING_DIR"
    before = os.environ.get(key)
    os.environ[key] = str(run_dir / "tensorboard")
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = before


def lora_config(settings: dict):
    """``peft.LoraConfig`` from ``settings["peft"]``, or None."""
    spec = settings.get("peft")
    if not spec:
        return None
    from peft import LoraConfig

    target = spec.get("target_modules", "all-linear")
    return LoraConfig(
        r=spec.get("r", 16),
        lora_alpha=spec.get("alpha", 32),
        lora_dropout=spec.get("dropout", 0.05),
        target_modules=target if target == "all-linear" else list(target),
        task_type="CAUSAL_LM",
    )


def dropped_rows_warnings(data_report: dict) -> list[str]:
    """One sentence per data split that lost records: how many were kept, why the others were dropped, and the
    first lines (``data.json`` in the run directory lists them all)."""
    from ..data.convert import REASONS

    out = []
    for split, report in data_report.items():
        if not isinstance(report, dict) or not report.get("dropped"):
            continue
        dropped = report["dropped"]
        total = sum(dropped.values())
        reasons = ", ".join(f"{n} {REASONS.get(k, k)}" for k, n in sorted(dropped.items(), key=lambda kv: -kv[1]))
        lines = [b["line"] for b in report.get("bad_rows", [])]
        where = f" (lines {', '.join(map(str, lines[:10]))}{', …' if len(lines) > 10 else ''})" if lines else ""
        out.append(
            f"{report.get('source')} [{split}]: kept {report.get('rows')} of {report.get('records')} records; "
            f"dropped {total}: {reasons}{where}; every dropped record is listed in data.json"
        )
    return out


def save_final(trainer, tokenizer, settings: dict, base_path: str, final: Path, device: Device) -> None:
    """The run's ``final/``: a model directory every consumer loads as it is (``stage:sft``, eval generation,
    ``dpo-sweep generate``, a later run's ``model:``). Without LoRA that is the trained model. With LoRA and
    ``peft.save: merged`` (the default) the adapter goes to ``final/adapter/`` and ``final/`` holds the base model
    with the adapter merged in, rebuilt on the CPU of rank 0 from the saved adapter (so a DDP/FSDP-wrapped or
    sharded model is never merged in place, and the trainer can still evaluate with its adapter afterwards);
    ``peft.save: adapter`` keeps the adapter alone in ``final/`` (transformers loads it onto its base through peft)."""
    spec = settings.get("peft") or {}
    mode = spec.get("save", "merged") if spec else None
    target = final / "adapter" if mode == "merged" else final
    trainer.save_model(str(target))
    if not trainer.is_world_process_zero():
        return
    tokenizer.save_pretrained(str(final))
    if mode != "merged":
        return
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_path, dtype=device.torch_dtype)
    merged = PeftModel.from_pretrained(base, str(target)).merge_and_unload()
    merged.save_pretrained(str(final))
    del base, merged
    if torch.cuda.is_available():  # pragma: no cover - GPU machines
        torch.cuda.empty_cache()


def ensure_chat_template(tokenizer) -> str:
    """Keep the tokenizer's chat template; install the seed-spec §3.2 Llama-3 fallback only when it has none.
    Returns ``"tokenizer"`` or ``"fallback"``."""
    if getattr(tokenizer, "chat_template", None):
        return "tokenizer"
    tokenizer.chat_template = FALLBACK_CHAT_TEMPLATE
    missing = [t for t in ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>") if t not in tokenizer.get_vocab()]
    if missing:
        host.emit(
            {
                "kind": "warning",
                "message": "the tokenizer has no chat template; using the Llama-3 fallback, but its special tokens "
                f"{missing} are not in the vocabulary (they will be split into ordinary tokens)",
            }
        )
    return "fallback"


def load_tokenizer(path: str):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise SpecError(
                f"the tokenizer of {path} has neither a pad token nor an EOS token (batches cannot be padded): "
                "set pad_token or eos_token in its tokenizer_config.json"
            )
        tokenizer.pad_token = tokenizer.eos_token
    template = ensure_chat_template(tokenizer)
    return tokenizer, template


def check_vocab(tokenizer, model_path: str, role: str = "model") -> None:
    """A :class:`SpecError` when the tokenizer has more tokens than the model has embeddings (read from the
    model's config, before the weights are loaded): the first batch holding one of those ids would stop the
    run with ``IndexError: index out of range in self`` inside the embedding."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(model_path)
    except Exception:  # noqa: BLE001 - an adapter folder, or a config loading the weights will report better
        return
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    vocab = getattr(text, "vocab_size", None)
    if not isinstance(vocab, int) or len(tokenizer) <= vocab:
        return
    raise SpecError(
        f"the tokenizer ({tokenizer.name_or_path}) has {len(tokenizer)} tokens but the {role} {model_path} has "
        f"embeddings for {vocab} (vocab_size in config.json): token ids {vocab}..{len(tokenizer) - 1} would index past "
        "them. Use the tokenizer saved with this model, or resize its embeddings "
        "(model.resize_token_embeddings(len(tokenizer))) and save it again"
    )


# --- checkpoints ---------------------------------------------------------------------------------

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def last_checkpoint(checkpoints: Path, required: tuple[str, ...] = ()) -> str | None:
    """The newest **complete** checkpoint folder (``trainer_state.json`` is written last; ``required`` names
    further files it must hold), or None. A folder left half-written by a kill is skipped."""
    if not checkpoints.is_dir():
        return None
    found = []
    for p in checkpoints.iterdir():
        m = _CHECKPOINT.match(p.name)
        if m and p.is_dir() and (p / "trainer_state.json").exists() and all((p / r).exists() for r in required):
            found.append((int(m.group(1)), p))
    return str(max(found)[1]) if found else None


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


# --- debug samples -------------------------------------------------------------------------------


def _flags(ids: list[int], tokenizer) -> dict:
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    return {
        "double_bos": bos is not None and len(ids) > 1 and ids[0] == bos and ids[1] == bos,
        "bos_count": ids.count(bos) if bos is not None else 0,
        "double_eos": eos is not None and len(ids) > 1 and ids[-1] == eos and ids[-2] == eos,
    }


def _labels(ids: list[int], mask: list[int]) -> list[int]:
    return [t if m else -100 for t, m in zip(ids, mask)]


def write_debug_samples(trainer, tokenizer, run_dir: Path, n: int, task: str) -> int:
    """Write the first ``n`` tokenised training rows to ``run_dir/debug_samples.jsonl`` (rank 0 only).

    Rows are taken from the trainer's prepared dataset (exactly what TRL trains on). Preference rows:
    prompt/chosen/rejected ids, and for chosen and rejected the concatenated ``input_ids``,
    ``attention_mask``, ``completion_mask`` and ``labels`` (-100 outside the completion), plus the
    decoded prompt and completions. SFT rows: ``input_ids``, ``labels`` (TRL's: -100 outside assistant
    turns), ``assistant_masks`` and the decoded full text and trained (assistant) text. Each record has ``double_bos``/``double_eos`` flags;
    a warning event is sent when any is set. Returns the number of rows written.
    """
    if n <= 0 or not trainer.is_world_process_zero():
        return 0
    dataset = trainer.train_dataset
    count = min(n, len(dataset))
    out = run_dir / "debug_samples.jsonl"
    problems = 0
    with open(out, "w", encoding="utf-8") as f:
        for index in range(count):
            row = dataset[index]
            if task == "sft":
                ids = list(row["input_ids"])
                if row.get("labels") is not None:  # TRL folds assistant_masks into labels
                    labels = list(row["labels"])
                else:
                    labels = _labels(ids, list(row.get("assistant_masks") or [1] * len(ids)))
                record = {
                    "index": index,
                    "input_ids": ids,
                    "attention_mask": [1] * len(ids),
                    "labels": labels,
                    "assistant_masks": [int(t != -100) for t in labels],
                    "text": tokenizer.decode(ids),
                    "trained_text": tokenizer.decode([t for t in labels if t != -100]),
                    "trained_tokens": sum(t != -100 for t in labels),
                    **_flags(ids, tokenizer),
                }
                problems += record["double_bos"] or record["double_eos"]
            else:
                prompt = list(row["prompt_ids"])
                record = {
                    "index": index,
                    "prompt_ids": prompt,
                    "prompt_text": tokenizer.decode(prompt),
                }
                for side in ("chosen", "rejected"):
                    completion = list(row[f"{side}_ids"])
                    ids = prompt + completion
                    completion_mask = [0] * len(prompt) + [1] * len(completion)
                    record[f"{side}_ids"] = completion
                    record[f"{side}_input_ids"] = ids
                    record[f"{side}_attention_mask"] = [1] * len(ids)
                    record[f"{side}_completion_mask"] = completion_mask
                    record[f"{side}_labels"] = _labels(ids, completion_mask)
                    record[f"{side}_text"] = tokenizer.decode(completion)
                    flags = _flags(ids, tokenizer)
                    record[f"{side}_double_bos"] = flags["double_bos"]
                    record[f"{side}_double_eos"] = flags["double_eos"]
                    record[f"{side}_bos_count"] = flags["bos_count"]
                    problems += flags["double_bos"] or flags["double_eos"]
                if trainer.args.max_length is not None:
                    record["truncated"] = max(len(record["chosen_input_ids"]), len(record["rejected_input_ids"])) > trainer.args.max_length
            f.write(json.dumps(record) + "\n")
    if problems:
        host.emit({"kind": "warning", "message": f"debug samples: {problems} rows with a doubled BOS or EOS ({out})"})
    return count
