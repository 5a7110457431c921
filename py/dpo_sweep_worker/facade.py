"""The worker's façade: the only functions the bridge calls (through `host.invoke`).

Each takes a JSON-decoded request dict and returns something JSON-able; progress goes out as
`host.emit` events. Heavy imports happen inside the functions.
"""

from __future__ import annotations

import importlib.metadata
import platform
import sys

from . import __version__
from .runtime import extras_present

ALGORITHMS = ("sft", "dpo", "beta-dpo", "dynamic-beta-dpo")
TRL_LOSS_TYPES = (
    "sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard", "aot",
    "aot_unpaired", "apo_zero", "apo_down", "discopop", "sft", "sigmoid_norm",
)
PACKAGES = ("torch", "transformers", "trl", "datasets", "accelerate", "peft", "numpy", "jsonschema")


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def describe(request: dict | None = None) -> dict:
    """Versions, devices, algorithms, TRL loss types and optional extras present."""
    devices: list[dict] = []
    cuda_error = None
    try:
        import torch

        if torch.cuda.is_available():
            for i in range(torch.cuda.device_count()):
                props = torch.cuda.get_device_properties(i)
                devices.append({"index": i, "kind": "cuda", "name": props.name, "memory_gb": round(props.total_memory / 2**30, 1)})
    except Exception as exc:  # torch missing or broken: doctor reports it
        cuda_error = f"{type(exc).__name__}: {exc}"
    return {
        "worker_version": __version__,
        "python": sys.executable,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "packages": {name: _version(name) for name in PACKAGES},
        "devices": devices or [{"index": 0, "kind": "cpu", "name": platform.processor() or "cpu"}],
        "cuda": bool(devices),
        "torch_error": cuda_error,
        "algorithms": list(ALGORITHMS),
        "loss_types": list(TRL_LOSS_TYPES),
        "extras": extras_present(),
    }


def train(request: dict) -> dict:
    """Train one run and return its outcome.

    `request`: {spec, run_dir, cache_dir, resume, attempt, overrides}. `spec.settings` already has the
    executor's `overrides` applied (a `stage:sft` model resolved to its directory, an out-of-memory
    retry's smaller micro-batch); spec.json on disk keeps the run as planned.

    With `resources.processes_per_run > 1`, or `gpus_per_run > 1` on CUDA (`launch.processes_for`), and
    not already inside a distributed launch, the run is trained by that many processes under torchrun
    (`launch.py`; with `resources.nodes_per_run > 1`, on that many nodes of the Slurm job); this process
    relays rank 0's events.
    """
    import os

    from .launch import launch, layout

    nodes, processes = layout(request["spec"]["settings"])
    if nodes * processes > 1 and "WORLD_SIZE" not in os.environ:
        return launch(request, processes, nodes)
    return run_recipe(request)


def run_recipe(request: dict) -> dict:
    """The recipe for the run's algorithm, in this process (one rank of a multi-process run, or the only one)."""
    algorithm = request["spec"]["settings"]["algorithm"]
    if algorithm == "sft":
        from .recipes import sft

        return sft.train(request)
    from .recipes import preference

    return preference.train(request)


def warmup(request: dict | None = None) -> dict:
    """Import the heavy libraries now (about 5 s for TRL), so the slot's first run starts warm."""
    import torch  # noqa: F401
    import transformers  # noqa: F401
    import trl  # noqa: F401

    return {"warm": True}


def generate(request: dict) -> dict:
    """Evaluation outputs in AlpacaEval format (see `generate.run_generate`).

    `request` is one job, or `{"jobs": [job, ...], ...shared}`: the jobs run one after another in
    this worker (models load once per job, the libraries once), each job's outcome is reported on its
    own (`{"results": [{"ok": true, "result": ...} | {"ok": false, "error": {...}}]}`), and a stop
    request skips the jobs not yet started.
    """
    from . import host
    from .generate import run_generate

    jobs = request.get("jobs")
    if jobs is None:
        return run_generate(request)
    shared = {k: v for k, v in request.items() if k != "jobs"}
    results: list[dict] = []
    for job in jobs:
        if host.stop_requested():
            results.append({"ok": False, "error": {"type": "Interrupted", "message": "stopped before this job started"}})
            continue
        try:
            results.append({"ok": True, "result": run_generate({**shared, **job})})
        except Exception as exc:  # one job's failure must not lose the others' outputs
            results.append({"ok": False, "error": {"type": type(exc).__name__, "message": str(exc) or type(exc).__name__}})
    return {"results": results}


def rollout(request: dict) -> dict:
    """The seed's rollout pipeline: k candidates per prompt, reward-model judge, DPO pairs (see `rollout`)."""
    from .rollout import run_rollout

    return run_rollout(request)


def score(request: dict) -> dict:
    """Reward-model scores for inline rows or an outputs file (see `reward.score_request`)."""
    from .reward import score_request

    return score_request(request)
