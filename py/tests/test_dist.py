"""Two CPU processes (torchrun, gloo): margins are gathered before every controller update and every rank
ends every step with the same controller state (β, τ, M0, σ, counters, mask, generator)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import _train_utils as u

pytestmark = [pytest.mark.slow, pytest.mark.dist]

RUNS = {
    "beta-dpo": {"algorithm": "beta-dpo", "training": {"grad_accum": 2, "max_steps": 4}},
    "dynamic": {"algorithm": "dynamic-beta-dpo", "training": {"grad_accum": 2, "max_steps": 4}},
    "beta-dpo-mb": {"algorithm": "beta-dpo", "update_on": "micro_batch", "training": {"max_steps": 3}},
}


@pytest.fixture(scope="module")
def dist_run(tmp_path_factory, worker_cache):
    out = tmp_path_factory.mktemp("dist")
    job = {"out": str(out), "runs": {}}
    for name, over in RUNS.items():
        s = u.merge(u.settings(reference="builtin:tiny-llama@1", resources={"processes_per_run": 2}), over)
        job["runs"][name] = u.request(s, out / name, worker_cache)
    (out / "job.json").write_text(json.dumps(job))
    env = dict(os.environ, PYTHONPATH=str(u.REPO / "py"), HF_HUB_OFFLINE="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(Path(__file__).with_name("_dist_job.py")), str(out / "job.json")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return out, job


def _states(out: Path, name: str, rank: int) -> list[dict]:
    return [json.loads(line) for line in (out / f"state-{name}" / f"rank{rank}.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("name", list(RUNS))
def test_every_rank_ends_every_step_with_the_same_controller_state(dist_run, name):
    out, job = dist_run
    r0, r1 = _states(out, name, 0), _states(out, name, 1)
    grad_accum = job["runs"][name]["spec"]["settings"]["training"]["grad_accum"]
    steps = job["runs"][name]["spec"]["settings"]["training"]["max_steps"]
    expected = steps if RUNS[name].get("update_on") != "micro_batch" else steps * grad_accum
    assert len(r0) == len(r1) == expected
    for a, b in zip(r0, r1):
        assert (a["rank"], b["rank"]) == (0, 1)
        a.pop("rank"), b.pop("rank")
        assert a == b  # bit-identical: β, τ, buffer, M0, σ, counts, masks, β_used, generator state
    controllers = [s["controller"] for s in r0]
    if name == "dynamic":
        assert len({c["beta"] for c in controllers}) > 1
    else:
        assert len({c["M0"] for c in controllers}) == len(controllers)
    o0 = json.loads((out / f"outcome-{name}-rank0.json").read_text())
    o1 = json.loads((out / f"outcome-{name}-rank1.json").read_text())
    assert o0 == o1 and o0["step"] == steps


@pytest.mark.parametrize("name", list(RUNS))
def test_rank_zero_logs_the_gathered_margins_and_the_global_masked_loss(dist_run, name):
    """One record per update with the margins of both ranks (and every micro-batch); β-DPO's logged loss is
    the global masked mean Σ mask·ℓ / K over both ranks (each rank's term is scaled by the world size)."""
    out, job = dist_run
    settings = job["runs"][name]["spec"]["settings"]
    recs = u.records(out / name)
    per_update = 2 * settings["training"]["batch_size"] * (settings["training"]["grad_accum"] if settings["update_on"] == "optimizer_step" else 1)
    assert all(r["batch_size"] == per_update for r in recs)
    history = json.loads(sorted((out / name / "checkpoints").glob("checkpoint-*/trainer_state.json"))[-1].read_text())["log_history"]
    logged = {e["step"]: e["loss"] for e in history if "loss" in e}
    if name.startswith("beta-dpo"):
        by_step: dict[int, list[float]] = {}
        for r in recs:
            h = torch.tensor(r["sample"], dtype=torch.float64).reshape(len(r["micro_batches"]), -1)
            for hh, mb in zip(h, r["micro_batches"]):
                mask = torch.tensor(mb["mask"], dtype=torch.float64)
                assert len(mb["mask"]) == 2 * settings["training"]["batch_size"] and mb["kept"] == int(mask.sum()) == 4
                loss = float((mask * -torch.nn.functional.logsigmoid(mb["beta_used"] * hh)).sum() / mask.sum())
                by_step.setdefault(r["step"], []).append(loss)
        for step, losses in by_step.items():
            assert logged[step] == pytest.approx(sum(losses) / len(losses), abs=1e-6)
    else:
        for r in recs:
            h = torch.tensor(r["sample"], dtype=torch.float64)
            expected = float(-torch.nn.functional.logsigmoid(r["beta_used"] * h).mean())
            assert logged[r["step"]] == pytest.approx(expected, abs=1e-6)


def test_processes_per_run_launches_ranks_relays_events_and_stops_on_request(tmp_path, worker_cache):
    """`resources.processes_per_run: 2` through the façade: torchrun with 2 ranks, rank 0's progress events
    reach this process, the margins cover both ranks, and a stop request (as SIGTERM would set it) makes
    both ranks checkpoint at the same step and return `interrupted`."""
    from dpo_sweep_worker import host

    s = u.settings(algorithm="dynamic-beta-dpo", resources={"processes_per_run": 2}, training={"max_steps": 40})

    def stop_after_two(event):
        if event["kind"] == "step" and event["step"] == 2:
            host._stop.set()

    out, events = u.run(s, tmp_path, worker_cache, on_event=stop_after_two)
    assert any(e["kind"] == "phase" and "2 training processes" in e["phase"] for e in events)
    assert out["status"] == "interrupted" and 2 <= out["step"] < 40
    steps = [e["step"] for e in events if e["kind"] == "step"]
    assert steps == list(range(1, out["step"] + 1))
    assert any(e["kind"] == "stopping" for e in events)
    checkpoint = tmp_path / "checkpoints" / f"checkpoint-{out['step']}"
    state = json.loads((checkpoint / "dpo_sweep_controller.json").read_text())
    assert state["global_step"] == out["step"] and (checkpoint / "trainer_state.json").exists()
    recs = u.records(tmp_path)
    assert [r["step"] for r in recs] == steps and all(r["batch_size"] == 8 for r in recs)
    assert state["controller"]["beta"] == recs[-1]["beta"]
    assert not list(tmp_path.glob(".launch-*"))


def test_a_failing_rank_reports_its_error_class(tmp_path, monkeypatch):
    from dpo_sweep_worker import host, launch
    from dpo_sweep_worker.data import DataError

    work = tmp_path / "work"
    work.mkdir()
    s = u.settings(dataset={"path": str(tmp_path / "missing.jsonl")})
    (work / "request.json").write_text(json.dumps(u.request(s, tmp_path / "run", str(tmp_path / "cache"))))
    monkeypatch.delenv("RANK", raising=False)
    try:
        assert launch._child(work) == 1
    finally:
        host._emit = None
        host._in_call.clear()
    report = json.loads((work / "outcome-rank0.json").read_text())
    assert report["error"]["type"] == "DataError" and "file not found" in report["error"]["message"]
    err = launch._rebuild(report["error"])
    assert isinstance(err, DataError) and "file not found" in str(err)
    assert type(launch._rebuild({"type": "SpecError", "message": "m"})).__name__ == "SpecError"
    assert isinstance(launch._rebuild({"type": "KeyError", "message": "x"}), RuntimeError)
