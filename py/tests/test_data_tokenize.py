"""Loaded rows through TRL: the chat template is applied once (seed-spec §7.8/9 fixed).

TRL 1.13 ``DPOTrainer._prepare_dataset`` tokenises conversational rows with
``apply_chat_template(prompt, add_generation_prompt=True)`` and
``apply_chat_template(prompt + chosen)``, then takes the completion as the remainder; it appends
EOS only to non-conversational rows.  These tests check the token ids TRL actually produces.
"""

from __future__ import annotations

import pytest
from datasets import Dataset

HEADER = ["<|start_header_id|>", "assistant", "<|end_header_id|>", "ĊĊ"]


def _dpo_config(tmp_path, **kw):
    from trl import DPOConfig

    base = dict(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=4, max_steps=2, learning_rate=1e-3,
        max_length=256, use_cpu=True, bf16=False, gradient_checkpointing=False, report_to="none",
        save_strategy="no", disable_tqdm=True, logging_steps=1, seed=0, dataloader_num_workers=0,
    )
    return DPOConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.mark.parametrize("name", ["prefs-hh.jsonl", "prefs-pairs.jsonl"])
def test_dpo_tokenisation_one_bos_one_eot(name, repo_root, tiny_model_dir, tok, tmp_path):
    from trl import DPOTrainer

    from dpo_sweep_worker.data import load_rows

    rows = load_rows(repo_root / "configs" / "data" / name, "train[:40]").rows
    trainer = DPOTrainer(
        model=tiny_model_dir, args=_dpo_config(tmp_path), train_dataset=Dataset.from_list(rows), processing_class=tok
    )
    bos, eot = tok.bos_token_id, tok.eos_token_id
    assert eot == tok.convert_tokens_to_ids("<|eot_id|>")
    for ex in trainer.train_dataset:
        prompt = ex["prompt_ids"]
        assert prompt[0] == bos and prompt.count(bos) == 1
        assert tok.convert_ids_to_tokens(prompt[-4:]) == HEADER
        for key in ("chosen_ids", "rejected_ids"):
            completion = ex[key]
            assert completion[-1] == eot and completion.count(eot) == 1, tok.decode(completion)
            assert bos not in completion
            assert tok.decode(completion[:-1]) == tok.decode(completion[:-1]).strip()  # content, trimmed


@pytest.mark.slow
def test_dpo_trains_two_steps(repo_root, tiny_model_dir, tok, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM
    from trl import DPOTrainer

    from dpo_sweep_worker.data import load_rows

    rows = load_rows(repo_root / "configs" / "data" / "prefs-hh.jsonl", "train[:16]").rows
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer = DPOTrainer(model=model, ref_model=AutoModelForCausalLM.from_pretrained(tiny_model_dir),
                         args=_dpo_config(tmp_path), train_dataset=Dataset.from_list(rows), processing_class=tok)
    out = trainer.train()
    assert out.global_step == 2 and torch.isfinite(torch.tensor(out.training_loss))
    for n, p in model.named_parameters():
        assert not torch.equal(before[n], p.detach()), f"{n} did not change"


@pytest.mark.slow
def test_sft_assistant_only_loss_trains_two_steps(repo_root, tiny_model_dir, tok, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    from dpo_sweep_worker.data import load_rows

    rows = load_rows(repo_root / "configs" / "data" / "sft.jsonl", "train[:16]", task="sft").rows
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    cfg = SFTConfig(
        output_dir=str(tmp_path / "sft"), per_device_train_batch_size=4, max_steps=2, learning_rate=1e-3,
        max_length=256, use_cpu=True, bf16=False, gradient_checkpointing=False, report_to="none",
        save_strategy="no", disable_tqdm=True, assistant_only_loss=True, seed=0,
    )
    trainer = SFTTrainer(model=model, args=cfg, train_dataset=Dataset.from_list(rows), processing_class=tok)
    # Labels cover exactly the assistant turns (content + <|eot_id|>), never user/system text or headers.
    for ex, row in zip(trainer.train_dataset, rows):
        labelled = [t for t, lab in zip(ex["input_ids"], ex["labels"]) if lab != -100]
        expected = "".join(m["content"].strip() + "<|eot_id|>" for m in row["messages"] if m["role"] == "assistant")
        assert tok.decode(labelled) == expected
        assert ex["input_ids"].count(tok.bos_token_id) == 1
    out = trainer.train()
    assert out.global_step == 2
    changed = [n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach())]
    assert len(changed) == len(before)
