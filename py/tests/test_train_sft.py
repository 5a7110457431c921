"""SFT through the recipe: assistant-only loss (seed-spec §7.14 fixed), the fallback chat template."""

from __future__ import annotations

import json

import pytest
import torch

import _train_utils as u

SYSTEM = "You are a terse calculator."


def _sft_rows(n: int = 16) -> list[dict]:
    rows = []
    for i in range(n):
        a, b = 3 + i, 7 + 2 * i
        rows.append(
            {
                "messages": [
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": f"What is {a} + {b}?"},
                    {"role": "assistant", "content": f"Answer: {a + b}."},
                    {"role": "user", "content": f"And {a} * 2?"},
                    {"role": "assistant", "content": f"{a} * 2 = {2 * a}. Answer: {2 * a}."},
                ]
            }
        )
    return rows


@pytest.mark.slow
def test_sft_five_steps_assistant_tokens_only(tmp_path, worker_cache):
    data = tmp_path / "sft.jsonl"
    rows = _sft_rows()
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    s = u.settings(algorithm="sft", dataset={"path": str(data), "limit": 16}, debug={"samples": 4})
    run_dir = tmp_path / "run"
    out, events = u.run(s, run_dir, worker_cache)
    assert out["status"] == "succeeded" and out["step"] == 5 and out["algorithm"] == "sft"
    assert out["chat_template"] == "tokenizer"

    from safetensors.torch import load_file

    initial = load_file(f"{u.model_dir(worker_cache)}/model.safetensors")
    final = load_file(str(run_dir / "final" / "model.safetensors"))
    assert [n for n in initial if torch.equal(initial[n], final[n])] == []
    assert (run_dir / "final" / "tokenizer.json").exists()
    assert [e["step"] for e in events if e["kind"] == "step"] == [1, 2, 3, 4, 5]

    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(run_dir / "final"))
    records = [json.loads(line) for line in (run_dir / "debug_samples.jsonl").read_text().splitlines()]
    assert len(records) == 4
    for rec in records:
        row = rows[rec["index"]]
        ids, labels = rec["input_ids"], rec["labels"]
        # labels: exactly the assistant contents and their end-of-turn token; system/user text and every
        # header are -100
        trained = tok.decode([t for t in labels if t != -100])
        assert trained == "".join(m["content"] + "<|eot_id|>" for m in row["messages"] if m["role"] == "assistant")
        untrained = tok.decode([t for t, lab in zip(ids, labels) if lab == -100])
        assert SYSTEM in untrained and row["messages"][1]["content"] in untrained
        assert "<|start_header_id|>assistant<|end_header_id|>" in untrained
        assert all(lab in (-100, t) for t, lab in zip(ids, labels))
        assert rec["bos_count"] == 1 and not rec["double_bos"] and not rec["double_eos"]
        assert ids.count(tok.convert_tokens_to_ids("<|eot_id|>")) == 5


def test_fallback_template_only_without_a_tokenizer_template(worker_cache):
    """The seed-spec §3.2 Llama-3 template is installed only when the tokenizer has none; its generation
    markers give assistant-only masks; one BOS."""
    from transformers import AutoTokenizer

    from dpo_sweep_worker.recipes.common import FALLBACK_CHAT_TEMPLATE, ensure_chat_template

    tok = AutoTokenizer.from_pretrained(u.model_dir(worker_cache))
    own = tok.chat_template
    assert ensure_chat_template(tok) == "tokenizer" and tok.chat_template == own
    tok.chat_template = None
    assert ensure_chat_template(tok) == "fallback" and tok.chat_template == FALLBACK_CHAT_TEMPLATE
    messages = _sft_rows(1)[0]["messages"]
    text = tok.apply_chat_template(messages, tokenize=False)
    assert text.startswith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n" + SYSTEM + "<|eot_id|>")
    assert text.count("<|begin_of_text|>") == 1
    out = tok.apply_chat_template(messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    ids, mask = out["input_ids"], out["assistant_masks"]
    assert ids.count(tok.bos_token_id) == 1
    trained = tok.decode([t for t, m in zip(ids, mask) if m])
    assert trained == "Answer: 10.<|eot_id|>3 * 2 = 6. Answer: 6.<|eot_id|>"
    prompt = tok.apply_chat_template(messages[:2], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")


@pytest.mark.slow
def test_sft_lora_adapter_only_final_loads_onto_its_base(tmp_path, worker_cache):
    """``peft.save: adapter``: final/ holds the adapter and the tokenizer, and loads as a model (transformers puts
    the adapter on its base through peft), as eval generation and ``dpo-sweep generate`` load it."""
    from transformers import AutoModelForCausalLM

    data = tmp_path / "sft.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in _sft_rows()))
    s = u.settings(
        algorithm="sft",
        dataset={"path": str(data), "limit": 16},
        peft={"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": "all-linear", "save": "adapter"},
        training={"max_steps": 3, "learning_rate": 5e-3},
    )
    out, _ = u.run(s, tmp_path / "run", worker_cache)
    final = tmp_path / "run" / "final"
    assert out["status"] == "succeeded"
    assert (final / "adapter_config.json").exists() and not (final / "config.json").exists()
    assert (final / "tokenizer_config.json").exists()
    loaded = AutoModelForCausalLM.from_pretrained(str(final))
    base = AutoModelForCausalLM.from_pretrained(u.model_dir(worker_cache))
    ids = torch.tensor([[1, 5, 9, 14, 3, 7, 2, 11]])
    with torch.no_grad():
        assert not torch.allclose(loaded(input_ids=ids).logits, base(input_ids=ids).logits, atol=1e-4)
