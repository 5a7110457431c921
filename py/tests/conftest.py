"""Shared test setup: offline hub, the package importable from the source tree, a tiny model."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# No test may touch a model hub; with this set a mistaken hub id fails in seconds, not minutes.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# One intra-op thread: the tiny models gain little from two, and on a shared, oversubscribed machine
# OpenMP's spinning threads make a training step up to ~7x slower (measured: 2.2 s vs 15.8 s for a
# 5-step run). Set before torch is imported; subprocesses (torchrun, resume tests) inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (holds configs/, scripts/, py/)."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> str:
    """A tiny Llama + tokenizer directory (``ensure_tiny`` into a per-session cache, ~1-2 s)."""
    from dpo_sweep_worker.tiny import ensure_tiny

    return ensure_tiny(tmp_path_factory.mktemp("tiny-cache"))


@pytest.fixture(scope="session")
def worker_cache(tmp_path_factory) -> str:
    """A worker ``cache_dir`` with ``builtin:tiny-llama`` (seed 0) and ``builtin:tiny-llama@1`` prebuilt,
    so recipes, subprocesses and torchrun ranks all find them (built once per session)."""
    from dpo_sweep_worker.tiny import ensure_tiny

    cache = tmp_path_factory.mktemp("worker-cache")
    ensure_tiny(cache / "models", seed=0)
    ensure_tiny(cache / "models", seed=1)
    return str(cache)
