"""What every recipe needs before it trains: device and precision, models resolved to paths, seeds.

Imports torch lazily (inside functions), so the façade's ``describe()`` stays importable anywhere.
"""

from __future__ import annotations

import gc
import importlib.util
import logging
import os
import random
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("dpo_sweep_worker")

BUILTIN_PREFIX = "builtin:"


class SpecError(ValueError):
    """A run spec asks for something this worker cannot do here (bad model path, missing extra)."""


@dataclass
class Device:
    kind: str  # "cuda" | "cpu"
    bf16: bool
    fp16: bool
    gradient_checkpointing: bool
    dtype_name: str  # "float32" | "bfloat16" | "float16"
    notes: list[str]

    @property
    def torch_dtype(self) -> Any:
        import torch

        return getattr(torch, self.dtype_name)


def resolve_device(training: dict) -> Device:
    """`precision: auto` → bf16 on CUDA (fp16 where bf16 is missing), fp32 on CPU; `gradient_checkpointing: auto` →
    on for CUDA, off on CPU (measured: on CPU bf16 is ×0.65 and checkpointing ×0.87 the speed of fp32)."""
    import torch

    notes: list[str] = []
    cuda = torch.cuda.is_available()
    precision = training.get("precision", "auto")
    if precision == "auto":
        precision = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if cuda else "fp32"
    if not cuda and precision in ("bf16", "fp16"):
        notes.append(f"precision {precision} asked for on a CPU-only machine: training in fp32 instead")
        precision = "fp32"
    checkpointing = training.get("gradient_checkpointing", "auto")
    if checkpointing == "auto":
        checkpointing = cuda
    dtype = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}[precision]
    return Device(
        kind="cuda" if cuda else "cpu",
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        gradient_checkpointing=bool(checkpointing),
        dtype_name=dtype,
        notes=notes,
    )


def resolve_model(ref: str, cache_dir: str) -> str:
    """`builtin:tiny-llama` → a locally built tiny model; a local dir → itself; anything else is a hub id."""
    if ref.startswith(BUILTIN_PREFIX):
        from .tiny import PRESETS, ensure_tiny

        name = ref[len(BUILTIN_PREFIX) :]
        seed = 0
        if "@" in name:  # builtin:tiny-llama@1 → another random init
            name, seed_text = name.split("@", 1)
            seed = int(seed_text)
        if name not in PRESETS:
            raise SpecError(f"unknown builtin model {ref!r}; builtins: {', '.join('builtin:' + p for p in PRESETS)}")
        return ensure_tiny(Path(cache_dir) / "models", name=name, seed=seed)
    path = Path(os.path.expanduser(ref))
    if path.is_absolute() or ref.startswith("."):
        if path.is_file():
            raise SpecError(f"{ref} is a file, not a model directory (a folder with config.json, or a LoRA adapter folder)")
        if not path.is_dir():
            raise SpecError(f"model directory not found: {ref}")
        if not (path / "config.json").exists() and not (path / "adapter_config.json").exists():
            raise SpecError(f"{ref} is not a model directory (no config.json)")
        if not _has_weights(path):
            raise SpecError(
                f"{ref} has no model weights: expected model.safetensors, sharded model-*.safetensors with "
                "model.safetensors.index.json, pytorch_model.bin, or adapter_model.safetensors (a copy or download "
                f"that did not finish?); found only {', '.join(sorted(p.name for p in path.iterdir())) or 'nothing'}"
            )
        return str(path)
    return ref


def _has_weights(path: Path) -> bool:
    """Whether a model (or LoRA adapter) directory holds weights transformers/peft can load."""
    for p in path.iterdir():
        name = p.name
        if name.endswith((".safetensors", ".safetensors.index.json")):
            return True
        if name.startswith(("pytorch_model", "adapter_model", "model")) and name.endswith((".bin", ".bin.index.json")):
            return True
    return False


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def release_memory() -> None:
    """Between runs of a warm worker: nothing of the last run may stay (a run's metrics must not depend on what ran
    before it in the same process)."""
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # pragma: no cover
        pass


def quiet_libraries() -> None:
    """Library chatter goes to worker.log anyway; keep it to warnings."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    for name in ("transformers", "datasets", "trl", "accelerate", "peft"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        import datasets

        datasets.disable_progress_bars()
    except Exception:  # pragma: no cover
        pass
    warnings.filterwarnings("ignore", message=".*does not support bf16.*")


OPTIONAL_EXTRAS = ("vllm", "liger_kernel", "deepspeed", "bitsandbytes", "flash_attn", "wandb", "tensorboard")


def extras_present() -> dict[str, bool]:
    return {name: importlib.util.find_spec(name) is not None for name in OPTIONAL_EXTRAS}
