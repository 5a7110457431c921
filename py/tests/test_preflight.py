"""Bad inputs to a training run fail before anything expensive, naming the file, line or setting at fault:
prompts longer than max_length, a val_ratio the data cannot serve, a model folder without weights, a tokenizer
larger than the model's vocabulary or without pad/EOS, a checkpoint written with other settings, and a dynamic-β
update that would see a single margin."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import _train_utils as u
from dpo_sweep_worker.data import DataError
from dpo_sweep_worker.runtime import SpecError

SHORT = "What is 1 + 1?"
LONG = " ".join(["seven"] * 120) + "?"


def pairs_file(path: Path, prompts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"prompt": p, "chosen": f"Answer: {i}.", "rejected": f"No idea {i}."}) + "\n" for i, p in enumerate(prompts)))
    return path


def prompt_tokens(tokenizer, text: str) -> int:
    """The rendered generation prompt, tokenised as plain text (a path independent of the recipe's)."""
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True, tokenize=False)
    return len(tokenizer(rendered, add_special_tokens=False)["input_ids"])


def tiny_copy(worker_cache: str, tmp_path: Path) -> Path:
    dst = tmp_path / "model"
    shutil.copytree(u.model_dir(worker_cache), dst)
    return dst


# --- prompts that fill max_length ---------------------------------------------------------------------


def test_prompts_that_fill_max_length_are_dropped_with_their_lines(tmp_path, worker_cache):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(u.model_dir(worker_cache))
    short, long = prompt_tokens(tok, SHORT), prompt_tokens(tok, LONG)
    assert short < 64 <= long  # the premise: only the long prompts fill max_length 64
    data = pairs_file(tmp_path / "prefs.jsonl", [SHORT, LONG, SHORT, SHORT, LONG, SHORT])
    s = u.settings(dataset={"path": str(data), "split": "train", "format": "pairs", "limit": None},
                   training={"max_length": 64, "max_steps": 1, "batch_size": 2})
    out, events = u.run(s, tmp_path / "run", worker_cache)
    assert out["status"] == "succeeded" and out["data"] == {"train": 4, "eval": 0}
    [data_event] = [e for e in events if e["kind"] == "data"]
    assert data_event["train"] == 4 and data_event["dropped"] == {"prompt_too_long": 2}
    [warning] = [e["message"] for e in events if e["kind"] == "warning" and "kept" in e["message"]]
    assert warning == (f"{data} [train]: kept 4 of 6 records; dropped 2: 2 the prompt alone fills training.max_length tokens "
                       "(lines 2, 5); every dropped record is listed in data.json")
    report = json.loads((tmp_path / "run" / "data.json").read_text())
    assert report["rows"] == {"train": 4, "eval": 0} and report["train"]["rows"] == 4
    detail = f"the prompt is {long} tokens, which leaves no room for a response within max_length 64"
    assert report["train"]["bad_rows"] == [
        {"line": 2, "reason": "prompt_too_long", "detail": detail},
        {"line": 5, "reason": "prompt_too_long", "detail": detail},
    ]


def test_no_row_within_max_length_is_a_data_error_before_any_model_loads(tmp_path, worker_cache, monkeypatch):
    import transformers

    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(u.model_dir(worker_cache))
    short = prompt_tokens(tok, SHORT)
    data = pairs_file(tmp_path / "prefs.jsonl", [SHORT] * 3)

    def no_model(*a, **k):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", no_model)
    s = u.settings(dataset={"path": str(data), "split": "train", "format": "pairs", "limit": None}, training={"max_length": short})
    with pytest.raises(DataError) as e:
        u.run(s, tmp_path / "run", worker_cache)
    assert str(e.value) == (f"{data}: no training row fits training.max_length {short}: all 3 prompts are {short} tokens or longer "
                            f"(shortest {short}, lines 1, 2, 3); raise max_length above the prompt lengths")
    assert json.loads((tmp_path / "run" / "data.json").read_text())["train"]["dropped"] == {"prompt_too_long": 3}
    # the eval split is checked the same way (train rows fit, both eval rows do not)
    mixed = pairs_file(tmp_path / "mixed.jsonl", [LONG, LONG, SHORT, SHORT])
    s = u.settings(dataset={"path": str(mixed), "split": "train[2:]", "eval_split": "train[:2]", "format": "pairs", "limit": None},
                   training={"max_length": 64})
    with pytest.raises(DataError, match=r"mixed\.jsonl: no evaluation row fits training\.max_length 64: all 2 prompts .*lines 1, 2\)"):
        u.run(s, tmp_path / "run2", worker_cache)


def test_a_val_ratio_the_rows_cannot_serve_is_a_data_error(tmp_path):
    from dpo_sweep_worker.recipes.preference import load_preference_data

    data = pairs_file(tmp_path / "one.jsonl", [SHORT])
    with pytest.raises(DataError) as e:
        load_preference_data({"path": str(data), "format": "pairs", "val_ratio": 0.1}, 0)
    assert str(e.value) == f"{data}: dataset.val_ratio 0.1: cannot hold out an eval split from 1 row(s); need at least 2"


def test_val_ratio_rows_keep_their_lines(tmp_path):
    from dpo_sweep_worker.recipes.common import load_run_data

    data = pairs_file(tmp_path / "p.jsonl", [f"q{i}" for i in range(10)])
    d = load_run_data({"path": str(data), "format": "pairs", "val_ratio": 0.2, "limit": 3}, 5, "preference")
    assert len(d.lines) == 3 and len(d.eval_lines) == 2 and d.report["rows"] == {"train": 3, "eval": 2}
    for rows, lines in ((d.rows, d.lines), (d.eval_rows, d.eval_lines)):
        assert [r["prompt"][0]["content"] for r in rows] == [f"q{n - 1}" for n in lines]


# --- models and tokenizers --------------------------------------------------------------------------


def test_a_model_folder_without_weights_is_a_spec_error(tmp_path, worker_cache):
    from dpo_sweep_worker.runtime import resolve_model

    m = tiny_copy(worker_cache, tmp_path)
    assert resolve_model(str(m), worker_cache) == str(m)
    (m / "model.safetensors").unlink()
    with pytest.raises(SpecError) as e:
        resolve_model(str(m), worker_cache)
    assert str(e.value).startswith(f"{m} has no model weights: expected model.safetensors")
    assert str(e.value).endswith("found only chat_template.jinja, config.json, generation_config.json, tiny.json, tokenizer.json, tokenizer_config.json")
    (m / "pytorch_model.bin").write_bytes(b"")
    assert resolve_model(str(m), worker_cache) == str(m)


def test_a_tokenizer_larger_than_the_model_vocabulary_is_a_spec_error(tmp_path, worker_cache):
    m = tiny_copy(worker_cache, tmp_path)
    config = json.loads((m / "config.json").read_text())
    vocab = config["vocab_size"]
    config["vocab_size"] = 500
    (m / "config.json").write_text(json.dumps(config))
    s = u.settings(model=str(m))
    with pytest.raises(SpecError) as e:
        u.run(s, tmp_path / "run", worker_cache)
    assert str(e.value).startswith(f"the tokenizer ({m}) has {vocab} tokens but the policy {m} has embeddings for 500 "
                                   f"(vocab_size in config.json): token ids 500..{vocab - 1} would index past them.")
    # the same check for a separate reference model
    s = u.settings(reference=str(m))
    with pytest.raises(SpecError, match=f"but the reference {m} has embeddings for 500"):
        u.run(s, tmp_path / "run2", worker_cache)


def test_a_tokenizer_without_pad_and_eos_is_a_spec_error(tmp_path, worker_cache):
    from dpo_sweep_worker.recipes.common import load_tokenizer

    m = tiny_copy(worker_cache, tmp_path)
    cfg = json.loads((m / "tokenizer_config.json").read_text())
    cfg.pop("pad_token", None)
    (m / "tokenizer_config.json").write_text(json.dumps(cfg))
    tok, _ = load_tokenizer(str(m))
    assert tok.pad_token == tok.eos_token == "<|eot_id|>"  # pad falls back to EOS
    cfg.pop("eos_token", None)
    (m / "tokenizer_config.json").write_text(json.dumps(cfg))
    with pytest.raises(SpecError) as e:
        load_tokenizer(str(m))
    assert str(e.value) == (f"the tokenizer of {m} has neither a pad token nor an EOS token (batches cannot be padded): "
                            "set pad_token or eos_token in its tokenizer_config.json")


# --- resuming ------------------------------------------------------------------------------------------


def fake_checkpoint(run_dir: Path, settings: dict) -> Path:
    """A checkpoint folder as a run with ``settings`` would leave it (only what resuming reads first)."""
    from dpo_sweep_worker.trainers import STATE_FILE, build_controller

    controller, _ = build_controller(settings)
    folder = run_dir / "checkpoints" / "checkpoint-2"
    folder.mkdir(parents=True)
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": 2}))
    state = {"format": 1, "algorithm": settings["algorithm"], "update_on": settings["update_on"], "global_step": 2,
             "beta": settings["beta"], "controller": None if controller is None else controller.state_dict(), "generator": None, "live": {}}
    (folder / STATE_FILE).write_text(json.dumps(state))
    return folder


@pytest.mark.parametrize(
    "algorithm,saved,now,diff",
    [
        ("dpo", {"beta": 0.1}, {"beta": 0.5}, "beta: 0.1 → 0.5"),
        ("dynamic-beta-dpo", {"dynamic_beta": {"alpha": 0.5}}, {"dynamic_beta": {"alpha": 0.9}}, "dynamic_beta.alpha: 0.5 → 0.9"),
        ("beta-dpo", {"beta_dpo": {"keep_ratio": 0.5}}, {"beta_dpo": {"keep_ratio": 0.75}, "beta": 0.2},
         "beta: 0.1 → 0.2; beta_dpo.keep_ratio: 0.5 → 0.75"),
        ("dpo", {}, {"update_on": "micro_batch"}, "update_on: 'optimizer_step' → 'micro_batch'"),
    ],
)
def test_resuming_a_checkpoint_written_with_other_settings_fails_before_loading(tmp_path, worker_cache, algorithm, saved, now, diff):
    run_dir = tmp_path / "run"
    folder = fake_checkpoint(run_dir, u.settings(algorithm=algorithm, **saved))
    with pytest.raises(SpecError) as e:
        u.run(u.settings(algorithm=algorithm, dataset={"path": str(tmp_path / "missing.jsonl")}, **now), run_dir, worker_cache)
    assert str(e.value) == (f"cannot resume from {folder}: its dpo_sweep_controller.json was written by a run with other settings "
                            f"({diff}). Restore those settings, or train in a fresh run directory")


def test_resume_mismatches_in_the_trainer(tmp_path):
    from dpo_sweep_worker.trainers import build_controller, resume_mismatches

    s = u.settings(algorithm="dpo")
    state = json.loads((fake_checkpoint(tmp_path, s) / "dpo_sweep_controller.json").read_text())
    assert resume_mismatches(state, "dpo", "optimizer_step", None, 0.1) == []
    assert resume_mismatches(state, "dpo", "optimizer_step", None, 0.3) == ["beta: 0.1 → 0.3"]
    controller, _ = build_controller(u.settings(algorithm="beta-dpo"))
    assert resume_mismatches(None, "beta-dpo", "optimizer_step", controller, 0.1) == [
        "dpo_sweep_controller.json: missing, so the beta-dpo controller state cannot be restored"]
    assert resume_mismatches(None, "dpo", "optimizer_step", None, 0.1) == []


# --- dynamic β needs a spread of margins -----------------------------------------------------------------


def test_dynamic_beta_with_one_margin_per_update_is_a_spec_error():
    from dpo_sweep_worker.control import RiskBetaController
    from dpo_sweep_worker.trainers import build_controller

    # the premise: with one margin per update the controller never moves β
    c = RiskBetaController(0.1, 0.1, 1, 0.1, 0.5, 2.0, 0.01, 2.0, exceedance="gt")
    for m in (0.0, 1.0, 2.0, -3.0, 5.0):
        c.update([m])
    assert c.beta == 0.1 and c.skipped == 4
    with pytest.raises(SpecError) as e:
        build_controller(u.settings(algorithm="dynamic-beta-dpo", training={"batch_size": 1, "grad_accum": 1}))
    assert str(e.value) == (
        "dynamic_beta: each controller update (optimizer_step) sees 1 margin (training.batch_size 1 x 1 micro-batch x 1 process); "
        "a single margin carries no spread, so beta would never move from its initial value. Use batch_size >= 2, "
        "or grad_accum >= 2 with update_on: optimizer_step")
    with pytest.raises(SpecError, match=r"\(micro_batch\) sees 1 margin .*Use batch_size >= 2$"):
        build_controller(u.settings(algorithm="dynamic-beta-dpo", update_on="micro_batch", training={"batch_size": 1, "grad_accum": 4}))
    ok, _ = build_controller(u.settings(algorithm="dynamic-beta-dpo", training={"batch_size": 1, "grad_accum": 2}))
    assert ok is not None
    assert build_controller(u.settings(algorithm="dpo", training={"batch_size": 1}))[0] is None
