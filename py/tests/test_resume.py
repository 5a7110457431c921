"""Checkpoint and resume: a run SIGKILLed after step k and resumed from its last checkpoint matches the
uninterrupted run at every later step (β, τ, M0, σ, masks, margins, loss) within 1e-6."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

import _train_utils as u

pytestmark = pytest.mark.slow

# Trains in a fresh process and SIGKILLs itself at the end of optimizer step KILL (after that step's
# margin record, before its checkpoint would be due): a real SIGKILL, at a deterministic point.
KILLED_RUN = """
import json, os, signal, sys
from transformers import TrainerCallback
from dpo_sweep_worker import trainers
from dpo_sweep_worker.recipes import preference

request, kill = json.load(open(sys.argv[1])), int(sys.argv[2])

class Kill(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == kill:
            os.kill(os.getpid(), signal.SIGKILL)

make = trainers.make_trainer
def make_and_arm(*a, **k):
    trainer, extra = make(*a, **k)
    trainer.add_callback(Kill())
    return trainer, extra
trainers.make_trainer = make_and_arm
preference.train(request)
"""


def _close(a, b, path="") -> None:
    """Every number within 1e-6, everything else equal."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and sorted(a) == sorted(b), path
        for k in a:
            _close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert a == pytest.approx(b, abs=1e-6), path
    else:
        assert a == b, path


@pytest.mark.parametrize(
    "algorithm,over",
    [
        ("beta-dpo", {}),
        ("dynamic-beta-dpo", {"training": {"grad_accum": 2}}),
    ],
)
def test_sigkill_and_resume_matches_the_uninterrupted_run(tmp_path, worker_cache, algorithm, over):
    s = u.merge(u.settings(algorithm=algorithm, training={"max_steps": 6, "save_steps": 2}), over)
    full_dir, cut_dir = tmp_path / "full", tmp_path / "cut"
    full_out, full_events = u.run(s, full_dir, worker_cache)
    assert full_out["step"] == 6

    req = tmp_path / "request.json"
    req.write_text(json.dumps(u.request(s, cut_dir, worker_cache)))
    env = dict(os.environ, PYTHONPATH=str(u.REPO / "py"), HF_HUB_OFFLINE="1")
    proc = subprocess.run([sys.executable, "-c", KILLED_RUN, str(req), "3"], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    assert [r["step"] for r in u.records(cut_dir)] == [1, 2, 3]  # step 3 was logged, its checkpoint never came
    assert sorted(p.name for p in (cut_dir / "checkpoints").glob("checkpoint-*")) == ["checkpoint-2"]

    out, events = u.run(s, cut_dir, worker_cache)
    assert out["status"] == "succeeded" and out["step"] == 6 and out["resumed_from"] == "checkpoint-2"
    full, cut = u.records(full_dir), u.records(cut_dir)
    assert [r["step"] for r in cut] == [1, 2, 3, 4, 5, 6]
    for a, b in zip(full, cut):
        _close(a, b, f"step {a['step']}")
    assert len(list((cut_dir / "margins").glob("epoch_*/step_*.npy"))) == 6
    full_losses, cut_losses = u.step_losses(full_events), u.step_losses(events)
    assert sorted(cut_losses) == [3, 4, 5, 6]
    for step, loss in cut_losses.items():
        assert loss == pytest.approx(full_losses[step], abs=1e-6), step
    final_full = json.loads((full_dir / "final" / "dpo_sweep_controller.json").read_text())
    final_cut = json.loads((cut_dir / "final" / "dpo_sweep_controller.json").read_text())
    _close(final_full["controller"], final_cut["controller"])
    assert final_full["generator"] == final_cut["generator"]
