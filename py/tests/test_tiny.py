"""The tiny model + tokenizer: builds offline, caches, reloads identically, and works with TRL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dpo_sweep_worker import tiny

PY_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def render(messages, add_generation_prompt=False):
    """seed-spec §3.2, written out independently of the template."""
    out = "<|begin_of_text|>"
    for m in messages:
        out += f"<|start_header_id|>{m['role']}<|end_header_id|>\n\n{m['content'].strip()}<|eot_id|>"
    if add_generation_prompt:
        out += "<|start_header_id|>assistant<|end_header_id|>\n\n"
    return out


CONV = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "  What is 2 + 3? "},
    {"role": "assistant", "content": " Answer: 5."},
    {"role": "user", "content": "And 4 * 4?\n"},
]


def test_directory_loads_with_auto_classes(tiny_model_dir, tok):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert model.config.model_type == "llama"
    assert model.config.vocab_size == len(tok)
    assert model.config.tie_word_embeddings is False
    assert model.get_input_embeddings().weight.data_ptr() != model.get_output_embeddings().weight.data_ptr()
    ids = {t: tok.convert_tokens_to_ids(t) for t in tiny.SPECIAL_TOKENS}
    assert len(set(ids.values())) == len(tiny.SPECIAL_TOKENS)
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == ("<|begin_of_text|>", "<|eot_id|>", "<|pad|>")
    assert model.config.bos_token_id == ids["<|begin_of_text|>"]
    assert model.config.eos_token_id == ids["<|eot_id|>"]
    assert model.config.pad_token_id == ids["<|pad|>"]
    assert model.generation_config.eos_token_id == [ids["<|eot_id|>"], ids["<|end_of_text|>"]]
    assert model.generation_config.pad_token_id == ids["<|pad|>"]
    assert set(tiny.SPECIAL_TOKENS) <= set(tok.all_special_tokens)
    manifest = json.loads((Path(tiny_model_dir) / tiny.MANIFEST).read_text())
    assert Path(tiny_model_dir).name.endswith(manifest["hash"])


def test_chat_template_renders_seed_format_with_one_bos(tok):
    assert tok.apply_chat_template(CONV, tokenize=False) == render(CONV)
    p = tok.apply_chat_template(CONV, tokenize=False, add_generation_prompt=True)
    assert p == render(CONV, add_generation_prompt=True)
    ids = tok.apply_chat_template(CONV, add_generation_prompt=True, return_dict=True)["input_ids"]
    assert ids.count(tok.bos_token_id) == 1 and ids[0] == tok.bos_token_id
    assert tok.decode(ids) == p


def test_plain_encoding_adds_bos_never_eos(tok):
    ids = tok("What is 2 + 3?")["input_ids"]
    assert ids[0] == tok.bos_token_id and tok.eos_token_id not in ids
    assert tok("What is 2 + 3?", add_special_tokens=False)["input_ids"] == ids[1:]
    # Chat-rendered text already holds BOS: encode it without special tokens (or get two BOS).
    text = tok.apply_chat_template(CONV, tokenize=False)
    assert tok(text, add_special_tokens=False)["input_ids"].count(tok.bos_token_id) == 1
    assert tok(text)["input_ids"].count(tok.bos_token_id) == 2


def test_decode_round_trip_and_skip_special(tok):
    text = "Hello, world!\n\nNew paragraph: 12 * 7 = 84. Ünïcödé → ok 🙂"
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text
    ids = tok.apply_chat_template(CONV, return_dict=True)["input_ids"]
    assert "<|" not in tok.decode(ids, skip_special_tokens=True)


def test_prompt_tokens_prefix_completion_tokens_on_shipped_data(tok, repo_root):
    from dpo_sweep_worker.data import load_rows

    rows = load_rows(repo_root / "configs" / "data" / "prefs-hh.jsonl").rows
    rows += load_rows(repo_root / "configs" / "data" / "prefs-pairs.jsonl").rows
    for row in rows:
        p = tok.apply_chat_template(row["prompt"], add_generation_prompt=True, return_dict=True)["input_ids"]
        for key in ("chosen", "rejected"):
            full = tok.apply_chat_template(row["prompt"] + row[key], return_dict=True)["input_ids"]
            assert full[: len(p)] == p
            completion = full[len(p) :]
            assert completion[-1] == tok.eos_token_id and completion.count(tok.eos_token_id) == 1
            assert tok.bos_token_id not in completion


def test_assistant_mask_covers_assistant_content_and_eot(tok):
    out = tok.apply_chat_template(CONV[:3], return_dict=True, return_assistant_tokens_mask=True)
    masked = [i for i, m in zip(out["input_ids"], out["assistant_masks"]) if m]
    assert tok.decode(masked) == "Answer: 5.<|eot_id|>"


def test_ensure_tiny_caches_and_is_deterministic(tmp_path, tiny_model_dir):
    import torch
    from safetensors.torch import load_file

    t0 = time.perf_counter()
    again = tiny.ensure_tiny(Path(tiny_model_dir).parent)
    assert again == tiny_model_dir and time.perf_counter() - t0 < 1.0
    fresh = tiny.build_tiny(tmp_path / "fresh")
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "config.json", "tiny.json"):
        assert (Path(fresh) / name).read_text() == (Path(tiny_model_dir) / name).read_text(), name
    a, b = load_file(Path(fresh) / "model.safetensors"), load_file(Path(tiny_model_dir) / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    other = tiny.build_tiny(tmp_path / "seed1", seed=1)
    c = load_file(Path(other) / "model.safetensors")
    assert not torch.equal(a["model.embed_tokens.weight"], c["model.embed_tokens.weight"])
    assert tiny.tiny_dir_name("tiny-llama", 1) != tiny.tiny_dir_name("tiny-llama", 0)
    assert tiny.tiny_dir_name("tiny-llama-h256") != tiny.tiny_dir_name("tiny-llama")
    with pytest.raises(ValueError, match="unknown tiny model"):
        tiny.ensure_tiny(tmp_path, "huge-llama")


def test_reload_gives_identical_logits(tiny_model_dir, tok, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    m1 = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    m1.save_pretrained(tmp_path / "copy")
    m2 = AutoModelForCausalLM.from_pretrained(tmp_path / "copy")
    ids = torch.tensor([tok.apply_chat_template(CONV, return_dict=True)["input_ids"]])
    with torch.no_grad():
        assert torch.equal(m1(ids).logits, m2(ids).logits)


def test_cache_hit_imports_no_torch(tiny_model_dir):
    code = (
        "import sys; from dpo_sweep_worker.tiny import ensure_tiny; "
        f"print(ensure_tiny({str(Path(tiny_model_dir).parent)!r})); "
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    )
    env = {**os.environ, "PYTHONPATH": str(PY_ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == tiny_model_dir


def test_import_is_cheap():
    code = (
        "import sys; import dpo_sweep_worker.tiny, dpo_sweep_worker.data, dpo_sweep_worker.data.synthetic; "
        "heavy = [m for m in ('torch', 'transformers', 'datasets', 'tokenizers', 'trl') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    env = {**os.environ, "PYTHONPATH": str(PY_ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr


@pytest.mark.slow
def test_concurrent_builders_agree(tmp_path):
    code = "import sys; from dpo_sweep_worker.tiny import ensure_tiny; print(ensure_tiny(sys.argv[1]))"
    env = {**os.environ, "PYTHONPATH": str(PY_ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    dirs = {o[0].strip() for o in outs}
    assert len(dirs) == 1
    assert [p.name for p in tmp_path.iterdir()] == [Path(dirs.pop()).name]  # no temp dirs left


@pytest.mark.slow
def test_gpt2_kind_builds(tmp_path):
    from transformers import AutoModelForCausalLM

    d = tiny.build_tiny(tmp_path / "g", kind="gpt2")
    m = AutoModelForCausalLM.from_pretrained(d)
    assert m.config.model_type == "gpt2" and m.config.tie_word_embeddings is False
