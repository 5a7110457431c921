"""Run layout over processes and nodes, and the srun/torchrun command of a run spanning Slurm nodes (launch.py).
The live multi-node run is test/slurm/slurm.slow.test.ts (a 2-node loopback Slurm)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dpo_sweep_worker import launch
from dpo_sweep_worker.runtime import SpecError


def _settings(**resources) -> dict:
    return {"resources": {"gpus_per_run": 1, "processes_per_run": 1, **resources}}


def test_layout_splits_processes_over_nodes(monkeypatch):
    monkeypatch.setattr(launch, "_visible_gpus", lambda: 0)
    assert launch.layout(_settings()) == (1, 1)
    assert launch.layout(_settings(processes_per_run=2)) == (1, 2)
    assert launch.layout(_settings(processes_per_run=4, nodes_per_run=2)) == (2, 2)
    assert launch.layout(_settings(nodes_per_run=3)) == (3, 1)  # at least one process per node
    assert launch.layout(_settings(gpus_per_run=4, nodes_per_run=2)) == (2, 1)  # CPU: GPUs change nothing
    monkeypatch.setattr(launch, "_visible_gpus", lambda: 2)
    assert launch.layout(_settings(gpus_per_run=4, nodes_per_run=2)) == (2, 2)  # CUDA: one process per GPU of the node


def test_outside_a_big_enough_slurm_job_is_a_spec_error(monkeypatch, tmp_path):
    for key in ("SLURM_JOB_ID", "SLURM_JOB_NUM_NODES", "SLURM_NNODES"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(SpecError, match=r"nodes_per_run is 2: .* runs in no Slurm job"):
        launch._node_command(2, 1, tmp_path / ".launch-x")
    monkeypatch.setenv("SLURM_JOB_ID", "41")
    monkeypatch.setenv("SLURM_JOB_NUM_NODES", "1")
    with pytest.raises(SpecError, match=r"runs in a Slurm job of 1 node$"):
        launch._node_command(2, 1, tmp_path / ".launch-x")


def test_node_command_runs_one_torchrun_per_node_through_srun(monkeypatch, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    srun = bin_dir / "srun"
    srun.write_text("#!/bin/sh\n")
    srun.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SLURM_JOB_ID", "41")
    monkeypatch.setenv("SLURM_JOB_NUM_NODES", "3")
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "8")
    monkeypatch.setenv("DPO_SWEEP_RDZV_HOST", "10.1.2.3")
    work = tmp_path / ".launch-abc"
    cmd = launch._node_command(2, 4, work)
    assert cmd[:8] == [str(srun), "--overlap", "--nodes=2", "--ntasks=2", "--ntasks-per-node=1", "--kill-on-bad-exit=1", "--export=ALL", "--cpus-per-task=8"]
    torchrun = cmd[8:]
    assert torchrun[1:3] == ["-m", "torch.distributed.run"]
    assert "--nnodes=2" in torchrun and "--nproc_per_node=4" in torchrun and "--rdzv_backend=c10d" in torchrun
    endpoint = next(a for a in torchrun if a.startswith("--rdzv_endpoint="))
    host, port = endpoint.split("=", 1)[1].rsplit(":", 1)
    assert host == "10.1.2.3" and 0 < int(port) < 65536
    assert "--rdzv_id=launch-abc" in torchrun
    assert torchrun[-3:] == ["-m", "dpo_sweep_worker.launch", str(work)]
    assert "--standalone" not in torchrun
