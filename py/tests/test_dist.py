"""Two CPU processes (torchrun, gloo): margins are gathered before every controller update and every rank
ends every step with the same controller state (β, τ, M0, σ, counters, mask, generator); 2 processes ×
batch 4 train on exactly the global batches of 1 process × batch 8 (same losses, margins and β)."""

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
#: Runs compared with one process and twice the batch. 20 rows = 2.5 global batches of 8: the first epoch's
#: last batch is completed with the epoch's first rows, and the later steps are in the second epoch
#: (dynamic: the second optimizer step of each epoch has one micro-batch).
EQUIV = {
    "dpo-eq": {"algorithm": "dpo", "dataset": {"limit": 20}, "training": {"max_steps": 6}},
    "dynamic-eq": {"algorithm": "dynamic-beta-dpo", "dataset": {"limit": 20}, "training": {"grad_accum": 2, "max_steps": 4}},
    # β-DPO draws from the gathered gaps with one seeded generator, i.e. what one process draws (a
    # rounding-level difference in a gap could change the draw in principle; it does not here)
    "beta-dpo-eq": {"algorithm": "beta-dpo", "dataset": {"limit": 20}, "training": {"grad_accum": 2, "max_steps": 4}},
}
#: Runs of EQUIV trained in two parts: this many steps first, then resumed from that checkpoint. dpo-eq
#: stops at step 4, one step into its second epoch (3 steps per epoch), so the resume skips a batch of the
#: second epoch's permutation (the one a 2-rank resume used to get wrong: the epoch did not reach the sampler).
RESUMED = {"dpo-eq": 4}


@pytest.fixture(scope="module")
def dist_run(tmp_path_factory, worker_cache):
    out = tmp_path_factory.mktemp("dist")
    job = {"out": str(out), "runs": {}}
    for name, over in {**RUNS, **EQUIV}.items():
        s = u.merge(u.settings(reference="builtin:tiny-llama@1", resources={"processes_per_run": 2}), over)
        if name in RESUMED:
            first = u.merge(s, {"training": {"max_steps": RESUMED[name]}})
            job["runs"][f"{name}-part1"] = u.request(first, out / name, worker_cache)
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


@pytest.fixture(scope="module")
def single_runs(tmp_path_factory, worker_cache):
    """The EQUIV runs in one process with batch_size 8 (= 2 processes × 4): outcome, events, margin records."""
    out = tmp_path_factory.mktemp("single")
    runs = {}
    for name, over in EQUIV.items():
        s = u.merge(u.settings(reference="builtin:tiny-llama@1"), over)
        s = u.merge(s, {"training": {"batch_size": 8}, "resources": {"processes_per_run": 1}})
        outcome, events = u.run(s, out / name, worker_cache)
        assert outcome["status"] == "succeeded"
        runs[name] = (outcome, events, u.records(out / name))
    return runs


def _logged_losses(run_dir: Path) -> dict[int, float]:
    state = sorted(run_dir.glob("checkpoints/checkpoint-*/trainer_state.json"))[-1]
    return {e["step"]: e["loss"] for e in json.loads(state.read_text())["log_history"] if "loss" in e}


@pytest.mark.parametrize("name", list(EQUIV))
def test_two_processes_train_on_the_global_batches_of_one(dist_run, single_runs, name):
    """Every logged step loss within 1e-5 of the single-process run with the same global batch; the margin
    records (the gathered margins of both ranks, in rank order) are the single run's margins in the same
    order, so each global batch holds the same rows in the same order; dynamic β follows the same trajectory;
    a run resumed in its second epoch continues with that epoch's order."""
    out, job = dist_run
    outcome, events, single = single_runs[name]
    settings = job["runs"][name]["spec"]["settings"]
    steps = settings["training"]["max_steps"]
    if name in RESUMED:
        resumed = json.loads((out / f"outcome-{name}-rank0.json").read_text())["resumed_from"]
        assert resumed == f"checkpoint-{RESUMED[name]}"
    one, two = u.step_losses(events), _logged_losses(out / name)
    assert sorted(one) == sorted(two) == list(range(1, steps + 1))
    diff = max(abs(one[k] - two[k]) for k in one)
    assert diff <= 1e-5, (one, two)
    multi = u.records(out / name)
    assert [r["step"] for r in multi] == [r["step"] for r in single] == list(range(1, steps + 1))
    for a, b in zip(single, multi):
        assert a["batch_size"] == b["batch_size"] == len(b["sample"])
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-5)
        assert b["sample"] == pytest.approx(a["sample"], rel=1e-5, abs=1e-4)  # same rows, same order (|h| ~ 1..100)
        if name.startswith("beta-dpo"):  # β_used is linear in the mean kept gap: rounding-level differences
            assert a["beta_used"] == pytest.approx(b["beta_used"], abs=1e-5)
            assert [mb["mask"] for mb in a["micro_batches"]] == [mb["mask"] for mb in b["micro_batches"]]
        else:
            assert a["beta"] == pytest.approx(b["beta"], rel=1e-6)
    # full global batches throughout, also at the epoch end (8 per micro-batch)
    grad_accum = settings["training"]["grad_accum"]
    sizes = [r["batch_size"] for r in multi]
    assert all(s % 8 == 0 and 8 <= s <= 8 * grad_accum for s in sizes)
    if name.startswith("dynamic"):
        betas = [r["beta"] for r in multi]
        assert len(set(betas)) > 1  # β moved
        r0, r1 = _states(out, name, 0), _states(out, name, 1)
        assert [s["controller"]["beta"] for s in r0] == [s["controller"]["beta"] for s in r1] == betas
        assert [s["controller"] for s in r0] == [s["controller"] for s in r1]


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
    # rank 0 dies of rank 1's death in a collective: rank 1's error is the one reported
    echo = {"type": "RuntimeError", "message": "[gloo/transport/tcp/pair.cc:553] Connection closed by peer [127.0.0.1]:1"}
    cause = {"type": "FileNotFoundError", "message": "no such file"}
    assert launch._cause([echo, cause]) is cause and launch._cause([echo]) is echo


def test_processes_for_and_fsdp_args(monkeypatch):
    """How many ranks a run gets (processes_per_run, else one per visible GPU for gpus_per_run > 1 on CUDA) and
    what `resources.fsdp` hands to TrainingArguments (only inside a multi-process run)."""
    from dpo_sweep_worker import launch
    from dpo_sweep_worker.recipes.common import fsdp_args

    res = lambda **r: {"resources": r}  # noqa: E731
    monkeypatch.setattr(launch, "_visible_gpus", lambda: 0)  # CPU
    assert launch.processes_for({}) == 1
    assert launch.processes_for(res(processes_per_run=3)) == 3
    assert launch.processes_for(res(gpus_per_run=4)) == 1
    monkeypatch.setattr(launch, "_visible_gpus", lambda: 2)  # CUDA, two GPUs visible
    assert launch.processes_for(res(gpus_per_run=2)) == 2
    assert launch.processes_for(res(gpus_per_run=4)) == 2
    assert launch.processes_for(res(gpus_per_run=2, processes_per_run=3)) == 3
    assert launch.processes_for(res(gpus_per_run=1)) == 1

    monkeypatch.setenv("WORLD_SIZE", "2")
    assert fsdp_args(res(fsdp=False)) == {} and fsdp_args({}) == {}
    assert fsdp_args(res(fsdp=True)) == {"fsdp": True}
    assert fsdp_args(res(fsdp="full_shard auto_wrap")) == {"fsdp": "full_shard auto_wrap"}
    assert fsdp_args(res(fsdp={"version": 2})) == {"fsdp": True, "fsdp_config": {"version": 2}}
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert fsdp_args(res(fsdp="full_shard")) == {}  # one process: ignored (with a warning event)
