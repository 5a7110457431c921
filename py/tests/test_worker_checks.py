"""Fast checks of the worker's plumbing: spec errors, margin-log files, checkpoints, device defaults."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import _train_utils as u
from dpo_sweep_worker.runtime import SpecError

# --- spec errors fail fast, with the class the TypeScript side classifies as bad-spec ----------------


@pytest.mark.parametrize("tracker,package", [("wandb", "wandb"), ("tensorboard", "tensorboard")])
def test_report_to_missing_package_is_a_spec_error(monkeypatch, tmp_path, tracker, package):
    import importlib.util

    from dpo_sweep_worker.recipes import common

    real = importlib.util.find_spec
    monkeypatch.setattr(common.importlib.util, "find_spec", lambda name, *a: None if name in ("wandb", "tensorboard", "tensorboardX") else real(name, *a))
    with pytest.raises(SpecError, match=f"report_to: {tracker} needs the `{package}` package"):
        common.check_report_to([tracker])
    # through the recipe: before any data or model is loaded
    for algorithm in ("dpo", "sft"):
        with pytest.raises(SpecError, match=f"`{package}`"):
            u.run(u.settings(algorithm=algorithm, report_to=[tracker]), tmp_path / algorithm, str(tmp_path / "cache"))
    assert not (tmp_path / "cache" / "models").exists()


def test_report_to_passes_through_when_installed(monkeypatch):
    from dpo_sweep_worker.recipes import common

    monkeypatch.setattr(common.importlib.util, "find_spec", lambda name, *a: object())
    assert common.check_report_to(["wandb", "tensorboard"]) == ["wandb", "tensorboard"]
    assert common.check_report_to([]) == []


def test_hub_push_needs_a_token_from_the_environment(monkeypatch, tmp_path):
    from dpo_sweep_worker.recipes.common import check_hub

    monkeypatch.delenv("HF_TOKEN", raising=False)
    assert check_hub({"push": False}) is None
    with pytest.raises(SpecError, match="hub.model_id"):
        check_hub({"push": True})
    with pytest.raises(SpecError, match="HF_TOKEN"):
        check_hub({"push": True, "model_id": "me/model"})
    with pytest.raises(SpecError, match="HF_TOKEN"):
        u.run(u.settings(hub={"push": True, "model_id": "me/model"}), tmp_path / "r", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    assert check_hub({"push": True, "model_id": "me/model"}) == ("me/model", "hf_secret")


@pytest.mark.parametrize(
    "over,match",
    [
        ({"algorithm": "dynamic-beta-dpo", "dynamic_beta": {"beta_max": 0.05}}, "dynamic_beta: need 0 <= beta_min <= beta0 <= beta_max"),
        ({"algorithm": "dynamic-beta-dpo", "dynamic_beta": {"beta_min": 0.5}}, "dynamic_beta: need 0 <= beta_min"),
        ({"algorithm": "dynamic-beta-dpo", "dynamic_beta": {"warmup": 0}}, "dynamic_beta: warmup must be >= 1"),
        ({"algorithm": "beta-dpo", "beta_dpo": {"keep_ratio": 0.0}}, "beta_dpo: keep_ratio must be in"),
        ({"algorithm": "beta-dpo", "beta_dpo": {"momentum": 1.0}}, "beta_dpo: momentum must be in"),
        ({"algorithm": "beta-dpo", "loss_type": ["ipo"]}, "loss_type, loss_weights and label_smoothing apply to plain dpo"),
        ({"algorithm": "dynamic-beta-dpo", "label_smoothing": 0.1}, "apply to plain dpo"),
    ],
)
def test_rejected_hyper_parameters_are_spec_errors(over, match, tmp_path):
    from dpo_sweep_worker.trainers import build_controller

    s = u.settings(**over)
    with pytest.raises(SpecError, match=match):
        build_controller(s)
    with pytest.raises(SpecError, match=match):  # through the recipe, before anything is loaded
        u.run(s, tmp_path / "r", str(tmp_path / "cache"))


def test_beta_min_zero_gets_a_floor_and_a_warning():
    from dpo_sweep_worker.trainers import build_controller

    controller, notes = build_controller(u.settings(algorithm="dynamic-beta-dpo", beta=0.2, dynamic_beta={"beta_min": 0.0}))
    assert controller.beta_min == pytest.approx(2e-4) and controller.exceedance == "gt"
    assert len(notes) == 1 and "beta_min" in notes[0]
    controller, notes = build_controller(u.settings(algorithm="dynamic-beta-dpo", dynamic_beta={"beta_min": 0.01}))
    assert controller.beta_min == 0.01 and notes == []
    assert build_controller(u.settings(algorithm="dpo")) == (None, [])


def test_strict_exceedance_and_degenerate_batches():
    """seed-spec §7.3: with exceedance="gt" ties at τ do not count, and an all-equal batch changes nothing."""
    from dpo_sweep_worker.control import RiskBetaController

    c = RiskBetaController(0.1, 0.3, 1, 0.1, 0.01, 1.0, 0.0, 2.0, exceedance="gt")
    c.update([0.0, 0.0, 0.0])
    assert c.tau == 0.0
    assert c.update([0.0, 0.0, 0.0, 0.0]) == 0.1  # degenerate: skipped
    assert c.skipped == 1 and c.p_hat is None and c.tau == 0.0 and c.count == 2
    c.update([0.0, 0.0, 1.0, 2.0])  # τ = 0.7·0 + 0.3·q90 = 0.3·1.7 = 0.51; p̂ = #{M > 0.51}/4 = 2/4
    assert c.tau == pytest.approx(0.51) and c.p_hat == 0.5
    seed = RiskBetaController(0.1, 0.3, 1, 0.1, 0.01, 1.0, 0.0, 2.0)
    seed.update([0.0, 0.0, 0.0])
    seed.update([0.0, 0.0, 0.0, 0.0])
    assert seed.p_hat == 1.0  # the seed's ≥ counts every tie
    with pytest.raises(ValueError):
        RiskBetaController(0.1, 0.3, 1, 0.1, 0.01, 1.0, 0.0, 2.0, exceedance="le")


def test_device_auto_is_fp32_without_checkpointing_on_cpu():
    import torch

    from dpo_sweep_worker.runtime import resolve_device

    if torch.cuda.is_available():
        pytest.skip("CPU defaults")
    d = resolve_device({"precision": "auto", "gradient_checkpointing": "auto"})
    assert (d.dtype_name, d.bf16, d.fp16, d.gradient_checkpointing, d.notes) == ("float32", False, False, False, [])
    d = resolve_device({"precision": "bf16", "gradient_checkpointing": True})
    assert d.dtype_name == "float32" and d.gradient_checkpointing is True and "CPU" in d.notes[0]


# --- margin logger -----------------------------------------------------------------------------------


def test_margin_logger_writes_records_and_never_overwrites(tmp_path):
    from dpo_sweep_worker.margins import SEED_FIELDS, MarginLogger, read_records

    log = MarginLogger(tmp_path / "margins", sample_size=2, run_dir=tmp_path)
    rec = log.write(np.array([1.0, -2.0, 3.0], dtype=np.float32), epoch=0, step=1, extra={"beta": 0.1, "tau": float("nan")})
    log.write([0.5], epoch=0, step=2, micro_batch=1)
    log.write([0.25], epoch=1, step=3)
    log.close()
    recs = read_records(tmp_path / "margins" / "epoch_000" / "margins.jsonl")
    assert [r["step"] for r in recs] == [1, 2]
    assert list(recs[0])[: len(SEED_FIELDS)] == list(SEED_FIELDS)
    assert recs[0]["sample"] == [1.0, -2.0] and recs[0]["batch_size"] == 3 and recs[0]["pos_frac"] == pytest.approx(2 / 3)
    assert recs[0]["tau"] is None  # strict JSON: non-finite → null
    assert recs[0] == rec | {"tau": None}
    assert recs[1]["npy"] == os.path.join("margins", "epoch_000", "step_00002_mb1.npy") and recs[1]["micro_batch"] == 1
    assert np.load(tmp_path / recs[0]["npy"]).tolist() == [1.0, -2.0, 3.0]
    assert (tmp_path / "margins" / "epoch_001" / "step_00003.npy").exists()
    with pytest.raises(FileExistsError):
        log.write([9.0], epoch=0, step=1)


def test_margin_logger_truncates_after_a_resume_point(tmp_path):
    from dpo_sweep_worker.margins import MarginLogger, read_records

    log = MarginLogger(tmp_path / "margins", run_dir=tmp_path)
    for step in range(1, 6):
        log.write([float(step)], epoch=0 if step < 4 else 1, step=step)
    log.close()
    jsonl = tmp_path / "margins" / "epoch_001" / "margins.jsonl"
    with open(jsonl, "a") as f:
        f.write('{"epoch": 1, "step": 6, "batch')  # torn by a kill
    assert log.truncate_after(3) == 2
    assert [r["step"] for r in read_records(tmp_path / "margins" / "epoch_000" / "margins.jsonl")] == [1, 2, 3]
    assert not (tmp_path / "margins" / "epoch_001").exists()
    log.write([4.0], epoch=1, step=4)  # written again, no FileExistsError
    assert log.truncate_after(0) == 4
    assert list((tmp_path / "margins").iterdir()) == []


def test_last_checkpoint_skips_incomplete_folders(tmp_path):
    from dpo_sweep_worker.recipes.common import last_checkpoint

    assert last_checkpoint(tmp_path / "none") is None
    for step, files in ((2, ["trainer_state.json", "dpo_sweep_controller.json"]), (4, ["trainer_state.json"]), (6, ["dpo_sweep_controller.json"])):
        d = tmp_path / f"checkpoint-{step}"
        d.mkdir()
        for f in files:
            (d / f).write_text("{}")
    assert last_checkpoint(tmp_path).endswith("checkpoint-4")
    assert last_checkpoint(tmp_path, required=("dpo_sweep_controller.json",)).endswith("checkpoint-2")


def test_sweep_state_roundtrip_restores_controller_and_generator():
    import torch

    from dpo_sweep_worker.trainers import _generator_state, _set_generator_state

    g = torch.Generator().manual_seed(7)
    torch.rand(5, generator=g)
    text = json.loads(json.dumps(_generator_state(g)))
    expected = torch.rand(4, generator=g)
    h = torch.Generator().manual_seed(0)
    _set_generator_state(h, text)
    assert torch.equal(torch.rand(4, generator=h), expected)


def test_dropped_records_are_a_warning_naming_counts_reasons_and_lines(tmp_path):
    """Bad rows are never dropped silently: the recipe emits one warning per split that lost records."""
    from dpo_sweep_worker.recipes.common import dropped_rows_warnings
    from dpo_sweep_worker.recipes.preference import load_preference_data

    data = tmp_path / "prefs.jsonl"
    good = [{"prompt": f"q{i}", "chosen": f"yes {i}", "rejected": f"no {i}"} for i in range(3)]
    lines = [json.dumps(good[0]), "not json", json.dumps({"prompt": "x", "chosen": "same", "rejected": "same"}),
             json.dumps(good[1]), json.dumps({"chosen": "a", "rejected": "b", "prompt": 3}), json.dumps(good[2])]
    data.write_text("\n".join(lines) + "\n")
    _, _, report = load_preference_data({"path": str(data), "format": "pairs", "split": "train"}, 0)
    [warning] = dropped_rows_warnings(report)
    assert warning.startswith(f"{data} [train]: kept 3 of 6 records; dropped 3: ")
    assert "1 chosen equals rejected" in warning
    assert "(lines 2, 5)" in warning  # the malformed ones; identical pairs are counted, not listed
    assert warning.endswith("every dropped record is listed in data.json")
    clean = tmp_path / "clean.jsonl"
    clean.write_text("".join(json.dumps(r) + "\n" for r in good))
    assert dropped_rows_warnings(load_preference_data({"path": str(clean), "format": "pairs", "split": "train"}, 0)[2]) == []


def test_a_model_path_that_is_a_file_says_so(tmp_path):
    from dpo_sweep_worker.runtime import resolve_model

    f = tmp_path / "model.json"
    f.write_text("{}")
    with pytest.raises(SpecError, match=r"model\.json is a file, not a model directory"):
        resolve_model(str(f), str(tmp_path))
    with pytest.raises(SpecError, match="model directory not found"):
        resolve_model(str(tmp_path / "nope"), str(tmp_path))
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpecError, match="is not a model directory"):
        resolve_model(str(tmp_path / "empty"), str(tmp_path))
