"""Preference training through the recipe, on the tiny model: dpo, beta-dpo, dynamic-beta-dpo.

Every expected number is computed here, independently of the trainer: log-probs by hand
(`_train_utils.hand_logps`: chat template → one unpadded sequence → `sequence_logps`), the controllers
fed with the logged margins, the β-DPO loss from the logged mask. The trainer's own numbers come from
the progress events (TRL's logged loss) and the margin logs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import _train_utils as u

pytestmark = pytest.mark.slow

ALGORITHMS = ("dpo", "beta-dpo", "dynamic-beta-dpo")
CONTROLLER_FIELDS = {
    "dpo": ("beta",),
    "dynamic-beta-dpo": ("beta", "beta_used", "tau", "p_hat", "u_k", "s_k", "fail"),
    "beta-dpo": ("beta_used", "M_0", "sigma", "keep_ratio", "kept", "micro_batches"),
}


def _weights(path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(Path(path) / "model.safetensors"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory, worker_cache):
    """One 5-step run per algorithm, reference = policy (ln 2 first), checkpoints every 2 steps, limit 1."""
    out = {}
    for algorithm in ALGORITHMS:
        run_dir = tmp_path_factory.mktemp(algorithm)
        s = u.settings(algorithm=algorithm, training={"save_steps": 2, "save_total_limit": 1}, debug={"samples": 3})
        outcome, events = u.run(s, run_dir, worker_cache)
        out[algorithm] = (run_dir, outcome, events, s)
    return out


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_five_steps_change_every_parameter_and_write_the_run_dir(trained, worker_cache, algorithm):
    run_dir, outcome, events, _ = trained[algorithm]
    assert outcome["status"] == "succeeded" and outcome["step"] == 5 and outcome["algorithm"] == algorithm
    assert outcome["device"] == "cpu" and outcome["precision"] == "float32" and outcome["gradient_checkpointing"] is False
    initial = _weights(u.model_dir(worker_cache))
    final = _weights(run_dir / "final")
    assert sorted(final) == sorted(initial)
    unchanged = [name for name in initial if torch.equal(initial[name], final[name])]
    assert unchanged == []
    for name in ("config.json", "tokenizer.json", "dpo_sweep_controller.json"):
        assert (run_dir / "final" / name).exists(), name
    assert (run_dir / "data.json").exists()
    # checkpoints at steps 2, 4 and the last step, save_total_limit 1: only checkpoint-5 is left, with the
    # controller state inside
    assert sorted(p.name for p in (run_dir / "checkpoints").glob("checkpoint-*")) == ["checkpoint-5"]
    state = json.loads((run_dir / "checkpoints" / "checkpoint-5" / "dpo_sweep_controller.json").read_text())
    assert state["global_step"] == 5 and state["algorithm"] == algorithm
    rec4 = u.records(run_dir)[4]
    if algorithm == "beta-dpo":
        assert state["controller"]["M0"] == rec4["M_0"] and state["controller"]["sigma"] == rec4["sigma"]
    elif algorithm == "dynamic-beta-dpo":
        assert state["controller"]["beta"] == rec4["beta"] and state["controller"]["tau"] == rec4["tau"]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_margin_log_records_have_every_field(trained, algorithm):
    from dpo_sweep_worker.margins import SEED_FIELDS

    run_dir, _, events, s = trained[algorithm]
    recs = u.records(run_dir)
    assert [r["step"] for r in recs] == [1, 2, 3, 4, 5]
    assert all(r["epoch"] == 0 for r in recs)
    for r in recs:
        for key in SEED_FIELDS + ("loss",) + CONTROLLER_FIELDS[algorithm]:
            assert key in r, (key, r)
        m = np.load(run_dir / r["npy"])
        assert m.dtype == np.float32 and m.shape == (4,) and r["batch_size"] == 4
        assert r["sample"] == [float(x) for x in m]  # sample_size -1 keeps all
        assert r["mean"] == pytest.approx(float(np.mean(m.astype(np.float64))), abs=1e-12)
        assert r["pos_frac"] == float(np.mean(m > 0))
    assert len(list((run_dir / "margins" / "epoch_000").glob("step_*.npy"))) == 5
    # live values reach the progress display
    steps = [e for e in events if e["kind"] == "step"]
    assert [e["step"] for e in steps] == [1, 2, 3, 4, 5]
    for e in steps:
        assert "beta" in e["metrics"] and "margin_mean" in e["metrics"]
    assert steps[-1]["metrics"]["margin_mean"] == pytest.approx(recs[-1]["mean"])
    if algorithm == "beta-dpo":
        assert {"M0", "sigma"} <= set(steps[-1]["metrics"])
    if algorithm == "dynamic-beta-dpo":
        assert {"tau", "p_hat"} <= set(steps[-1]["metrics"])


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_first_loss_is_ln2_and_margins_are_zero_only_when_reference_is_policy(trained, algorithm):
    run_dir, _, events, _ = trained[algorithm]
    losses = u.step_losses(events)
    assert losses[1] == pytest.approx(u.LN2, abs=1e-6)
    recs = u.records(run_dir)
    assert recs[0]["sample"] == [0.0, 0.0, 0.0, 0.0]  # seed-spec §7.1: exactly 0 only while policy == reference
    for r in recs[1:]:
        assert all(x != 0.0 for x in r["sample"])


def test_dynamic_beta_trajectory_recomputed_from_the_logged_margins(trained):
    """A fresh controller fed the logged margins reproduces every logged β, τ, p̂; each step's loss used
    the β of the start of the step (warm-up 1: step 1 only fills the buffer)."""
    from dpo_sweep_worker.control import RiskBetaController

    run_dir, _, events, s = trained["dynamic-beta-dpo"]
    d = s["dynamic_beta"]
    c = RiskBetaController(d["delta"], d["ema_lambda"], d["warmup"], s["beta"], d["alpha"], d["gamma"], d["beta_min"], d["beta_max"], exceedance="gt")
    beta_before = s["beta"]
    losses = u.step_losses(events)
    for r in u.records(run_dir):
        assert r["beta_used"] == beta_before
        h = torch.tensor(r["sample"], dtype=torch.float64)
        expected_loss = float(-torch.nn.functional.logsigmoid(beta_before * h).mean())
        assert losses[r["step"]] == pytest.approx(expected_loss, abs=1e-6)
        c.update(r["sample"])
        assert r["beta"] == pytest.approx(c.beta, rel=1e-12) and r["tau"] == pytest.approx(c.tau, rel=1e-12)
        assert r["p_hat"] == c.p_hat
        beta_before = c.beta
    assert c.beta != s["beta"]  # β moved


def test_beta_dpo_loss_recomputed_from_the_logged_mask(trained):
    """Every step: loss = Σ mask·(−log σ(β_used·h)) / K from the logged mask and margins; β_used from the
    kept margins and the M0 of the start of the step; M0/σ updated once after the step."""
    run_dir, _, events, s = trained["beta-dpo"]
    b = s["beta_dpo"]
    losses = u.step_losses(events)
    previous = None
    for r in u.records(run_dir):
        (mb,) = r["micro_batches"]
        h = torch.tensor(r["sample"], dtype=torch.float64)
        mask = torch.tensor(mb["mask"], dtype=torch.float64)
        assert int(mask.sum()) == mb["kept"] == 2  # k = floor(4 · 0.5)
        kept_mean = float(h[mask > 0].mean())
        beta_used = max(b["min_beta"], s["beta"] * (1 + b["alpha"] * (kept_mean - mb["M_0"])))
        assert mb["beta_used"] == pytest.approx(beta_used, rel=1e-9)
        expected = float((mask * -torch.nn.functional.logsigmoid(beta_used * h)).sum() / mask.sum())
        assert losses[r["step"]] == pytest.approx(expected, abs=1e-6)
        if previous is None:  # the first micro-batch initialised the statistics
            assert mb["M_0"] == pytest.approx(float(h.mean()), abs=1e-9)
            m0, sd = float(h.mean()), max(float(h.std(unbiased=False)), b["eps"])
        else:
            assert mb["M_0"] == previous["M_0"] and mb["sigma"] == previous["sigma"]
            m0, sd = previous["M_0"], previous["sigma"]
        m = b["momentum"]
        assert r["M_0"] == pytest.approx(m * m0 + (1 - m) * float(h.mean()), rel=1e-9)
        assert r["sigma"] == pytest.approx(max(m * sd + (1 - m) * max(float(h.std(unbiased=False)), b["eps"]), b["eps"]), rel=1e-9)
        previous = r


def test_debug_samples_show_the_tokenised_rows(trained):
    run_dir, outcome, _, _ = trained["dpo"]
    lines = (run_dir / "debug_samples.jsonl").read_text().splitlines()
    assert len(lines) == 3 and outcome["debug_samples"].endswith("debug_samples.jsonl")
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(run_dir / "final"))
    for line in lines:
        r = json.loads(line)
        assert r["prompt_text"].startswith("<|begin_of_text|><|start_header_id|>user")
        assert r["prompt_text"].endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
        for side in ("chosen", "rejected"):
            ids, labels, cmask = r[f"{side}_input_ids"], r[f"{side}_labels"], r[f"{side}_completion_mask"]
            n_prompt = len(r["prompt_ids"])
            assert ids == r["prompt_ids"] + r[f"{side}_ids"]
            assert labels[:n_prompt] == [-100] * n_prompt and labels[n_prompt:] == r[f"{side}_ids"]
            assert cmask == [0] * n_prompt + [1] * len(r[f"{side}_ids"])
            assert r[f"{side}_text"].endswith("<|eot_id|>") and r[f"{side}_text"].count("<|eot_id|>") == 1
            assert r[f"{side}_bos_count"] == 1 and not r[f"{side}_double_bos"] and not r[f"{side}_double_eos"]
            assert tok.decode(ids) == r["prompt_text"] + r[f"{side}_text"]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_first_loss_with_another_reference_matches_the_hand_computation(tmp_path, worker_cache, algorithm):
    """Policy = tiny-llama, reference = tiny-llama@1: the first step (all 8 rows in one batch) has the
    loss of `dpo_loss(sequence_logps(...))` computed by hand, within 1e-6."""
    from dpo_sweep_worker.control import BetaDPOController
    from dpo_sweep_worker.data import load_rows
    from dpo_sweep_worker.losses import dpo_loss, masked_dpo_loss

    s = u.settings(
        algorithm=algorithm, reference="builtin:tiny-llama@1", dataset={"limit": 8},
        training={"batch_size": 8, "max_steps": 1},
    )
    _, events = u.run(s, tmp_path, worker_cache)
    rows = load_rows(u.PREFS, "train", task="preference").rows[:8]
    policy, tok = u.load(u.model_dir(worker_cache, 0))
    reference, _ = u.load(u.model_dir(worker_cache, 1))
    pc, pr = u.hand_logps(policy, tok, rows)
    rc, rr = u.hand_logps(reference, tok, rows)
    losses, _, _ = dpo_loss(pc, pr, rc, rr, s["beta"])
    h = (pc - rc) - (pr - rr)
    (rec,) = u.records(tmp_path)
    logged = torch.tensor(rec["sample"], dtype=torch.float32)
    assert torch.allclose(torch.sort(logged).values, torch.sort(h).values, atol=2e-4)
    if algorithm == "beta-dpo":
        # the batch order of the trainer (from the logged margins), then the controller API by hand
        order = [int(torch.argmin((h - x).abs())) for x in logged]
        assert sorted(order) == list(range(8))
        b = s["beta_dpo"]
        c = BetaDPOController(s["beta"], b["alpha"], b["momentum"], b["keep_ratio"], b["min_beta"], b["eps"])
        hp = h[order]
        c.update(hp)
        mask, beta_used = c.select(hp, torch.Generator().manual_seed(s["training"]["seed"]))
        assert mask.tolist() == rec["micro_batches"][0]["mask"]
        losses, _, _ = dpo_loss(pc[order], pr[order], rc[order], rr[order], beta_used)
        expected = float(masked_dpo_loss(losses, mask))
    else:
        expected = float(losses.mean())
    assert abs(expected - u.LN2) > 1e-3
    assert u.step_losses(events)[1] == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("algorithm", ["dynamic-beta-dpo", "beta-dpo"])
@pytest.mark.parametrize("update_on", ["optimizer_step", "micro_batch"])
def test_cadence_with_grad_accum_two(tmp_path, worker_cache, algorithm, update_on):
    s = u.settings(algorithm=algorithm, update_on=update_on, training={"grad_accum": 2, "max_steps": 3})
    out, _ = u.run(s, tmp_path, worker_cache)
    assert out["step"] == 3
    recs = u.records(tmp_path)
    files = sorted(p.name for p in (tmp_path / "margins" / "epoch_000").glob("*.npy"))
    if update_on == "optimizer_step":
        assert [r["step"] for r in recs] == [1, 2, 3]
        assert files == ["step_00001.npy", "step_00002.npy", "step_00003.npy"]
        assert all(r["batch_size"] == 8 and len(r["micro_batches"]) == 2 and "micro_batch" not in r for r in recs)
    else:
        assert [(r["step"], r["micro_batch"]) for r in recs] == [(1, 0), (1, 1), (2, 0), (2, 1), (3, 0), (3, 1)]
        assert files == [f"step_0000{s}_mb{g}.npy" for s in (1, 2, 3) for g in (0, 1)]
        assert all(r["batch_size"] == 4 and len(r["micro_batches"]) == 1 for r in recs)
    mbs = [mb for r in recs for mb in r["micro_batches"]]
    if algorithm == "dynamic-beta-dpo":
        # every micro-batch used the β of the latest update before it
        beta = s["beta"]
        for r in recs:
            for mb in r["micro_batches"]:
                assert mb["beta_used"] == beta
            beta = r["beta"]
        used = [mb["beta_used"] for mb in mbs]
        if update_on == "optimizer_step":
            assert used[0] == used[1] and used[2] == used[3] and used[4] == used[5]
        else:
            assert used[3] != used[2]  # a new β after every micro-batch (warm-up 1: from the second one)
    else:
        if update_on == "optimizer_step":
            m = s["beta_dpo"]["momentum"]
            for i, r in enumerate(recs):
                a, b = r["micro_batches"]
                assert (a["M_0"], a["sigma"]) == (b["M_0"], b["sigma"])  # statistics of the start of the step
                if i:
                    assert a["M_0"] == recs[i - 1]["M_0"]
                # One update per step from all its gaps: the first step's statistics are its mean, not a mix
                # with the first micro-batch's provisional ones (which would count those gaps twice).
                mean = float(np.mean(r["sample"]))
                expected = mean if i == 0 else m * recs[i - 1]["M_0"] + (1 - m) * mean
                assert len(r["sample"]) == 8
                assert r["M_0"] == pytest.approx(expected, rel=1e-9, abs=1e-12)
                assert r["count"] == i + 1
        else:
            m = s["beta_dpo"]["momentum"]
            for i, r in enumerate(recs):  # the seed: update with the micro-batch, then select with the new M0
                assert r["micro_batches"][0]["M_0"] == r["M_0"]
                mean = float(np.mean(r["sample"]))
                expected = mean if i == 0 else m * recs[i - 1]["M_0"] + (1 - m) * mean
                assert r["M_0"] == pytest.approx(expected, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("algorithm", ["dynamic-beta-dpo", "beta-dpo"])
def test_evaluation_uses_the_controllers_beta(tmp_path, worker_cache, algorithm):
    """eval_loss = mean −log σ(β·h) over the held-out rows with the controller's β after training (never β₀)."""
    from dpo_sweep_worker.data import load_rows

    s = u.settings(
        algorithm=algorithm, dataset={"split": "train[8:48]", "eval_split": "train[:8]", "limit": 32},
        training={"max_steps": 4, "eval_batch_size": 8},
    )
    out, _ = u.run(s, tmp_path, worker_cache)
    last = u.records(tmp_path)[-1]
    rows = load_rows(u.PREFS, "train[:8]", task="preference").rows
    policy, tok = u.load(str(tmp_path / "final"))
    reference, _ = u.load(u.model_dir(worker_cache, 0))
    pc, pr = u.hand_logps(policy, tok, rows)
    rc, rr = u.hand_logps(reference, tok, rows)
    h = ((pc - rc) - (pr - rr)).double()
    if algorithm == "dynamic-beta-dpo":
        beta = last["beta"]
    else:  # β-DPO evaluate(): all rows kept, β from the batch's mean gap and the current M0
        b = s["beta_dpo"]
        beta = max(b["min_beta"], s["beta"] * (1 + b["alpha"] * (float(h.mean()) - last["M_0"])))
    assert abs(beta - s["beta"]) > 1e-4
    expected = float(-torch.nn.functional.logsigmoid(beta * h).mean())
    assert out["eval"]["eval_loss"] == pytest.approx(expected, abs=1e-5)
    assert out["eval"]["eval_beta"] == pytest.approx(beta, rel=1e-5)


def test_masked_out_rows_get_zero_gradient(tmp_path, worker_cache):
    """The β-DPO loss hook's gradient equals the gradient of Σ_kept ℓ_i / K computed by hand on the kept
    rows only: a masked-out row contributes nothing."""
    from datasets import Dataset
    from trl import DPOConfig

    from dpo_sweep_worker.data import load_rows
    from dpo_sweep_worker.losses import dpo_loss, sequence_logps
    from dpo_sweep_worker.trainers import make_trainer

    s = u.settings(algorithm="beta-dpo", reference="builtin:tiny-llama@1")
    policy, tok = u.load(u.model_dir(worker_cache, 0))
    reference, _ = u.load(u.model_dir(worker_cache, 1))
    rows = load_rows(u.PREFS, "train[:8]", task="preference").rows
    cfg = DPOConfig(
        output_dir=str(tmp_path / "ck"), per_device_train_batch_size=4, max_length=256, use_cpu=True, bf16=False,
        gradient_checkpointing=False, report_to="none", save_strategy="no", disable_tqdm=True, seed=42,
    )
    trainer, _ = make_trainer(s, run_dir=tmp_path, model=policy, ref_model=reference, args=cfg,
                              train_dataset=Dataset.from_list(rows), processing_class=tok)
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    model = trainer.model
    model.train()
    model.zero_grad()
    trainer.compute_loss(model, batch).backward()
    got = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    mb = trainer._pending[-1]
    mask = mb.mask.bool()
    assert 0 < int(mask.sum()) < 4

    model.zero_grad()
    labels = batch["input_ids"].masked_fill(batch["completion_mask"] == 0, -100)
    logps = sequence_logps(model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits, labels)
    with torch.no_grad():
        ref = sequence_logps(reference(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits, labels)
    pc, pr = logps.chunk(2)
    rc, rr = ref.chunk(2)
    losses, _, _ = dpo_loss(pc[mask], pr[mask], rc[mask], rr[mask], mb.beta_used)
    (losses.sum() / mask.sum()).backward()
    for name, p in model.named_parameters():
        assert torch.allclose(got[name], p.grad, atol=1e-6, rtol=1e-4), name


def test_lora_trains_every_adapter_parameter(tmp_path, worker_cache, monkeypatch):
    from transformers import TrainerCallback

    from dpo_sweep_worker import trainers

    seen = {}

    class Snapshot(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kw):
            seen["before"] = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}

        def on_train_end(self, args, state, control, model=None, **kw):
            seen["after"] = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}

    original = trainers.make_trainer

    def patched(*a, **k):
        trainer, extra = original(*a, **k)
        trainer.add_callback(Snapshot())
        return trainer, extra

    monkeypatch.setattr(trainers, "make_trainer", patched)
    s = u.settings(algorithm="dynamic-beta-dpo", peft={"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": "all-linear"})
    out, events = u.run(s, tmp_path, worker_cache)
    before, after = seen["before"], seen["after"]
    assert before and all("lora_" in n for n in before)
    assert [n for n in before if torch.equal(before[n], after[n])] == []
    assert u.step_losses(events)[1] == pytest.approx(u.LN2, abs=1e-6)  # reference = base with the adapter off

    # peft.save: merged (the default): final/ is a whole model equal to base + adapter; the adapter is kept beside it.
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    final = tmp_path / "final"
    assert (final / "adapter" / "adapter_config.json").exists() and not (final / "adapter_config.json").exists()
    assert (final / "config.json").exists() and (final / "tokenizer_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(str(final))
    assert not any("lora_" in n for n, _ in merged.named_parameters())
    base = AutoModelForCausalLM.from_pretrained(u.model_dir(worker_cache))
    ids = torch.tensor([[1, 5, 9, 14, 3, 7, 2, 11]])
    with torch.no_grad():
        base_logits = base(input_ids=ids).logits
        merged_logits = merged(input_ids=ids).logits
        adapted = PeftModel.from_pretrained(base, str(final / "adapter"))(input_ids=ids).logits
    assert torch.allclose(merged_logits, adapted, atol=1e-5)
    assert not torch.allclose(merged_logits, base_logits, atol=1e-4)  # training moved the merged model
