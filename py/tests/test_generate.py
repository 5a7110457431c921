"""Generation on the tiny model: prompts (one BOS, one assistant header), stop tokens, per-prompt seeding
(batching never changes a prompt's samples), the sampler's maths, KL estimates, evaluation prompt formats
and the AlpacaEval output file."""

from __future__ import annotations

import json
import math

import pytest
import torch

from dpo_sweep_worker import facade
from dpo_sweep_worker.generate import (
    Generator,
    RowSampler,
    SamplingParams,
    add_kl,
    clean_response,
    load_eval_prompts,
    prompt_id,
    sample_seed,
    sequence_logps,
    tldr_prompt,
)
from dpo_sweep_worker.runtime import SpecError

PROMPTS = [
    [{"role": "user", "content": "What is 2 + 3?"}],
    [{"role": "user", "content": "Hi there!"}, {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "What is 7 * 8?"}],
    [{"role": "user", "content": "Can you help me with some arithmetic? What is 12 - 5?"}],
    "A long post about my cat.\n\nTL;DR:",
    [{"role": "user", "content": "Thanks."}],
]


@pytest.fixture(scope="module")
def gen(worker_cache) -> Generator:
    return Generator("builtin:tiny-llama", cache_dir=worker_cache)


def _ids(samples):
    return [[s.token_ids for s in group] for group in samples]


# --- identity and seeds ------------------------------------------------------------------------------


def test_prompt_id_depends_on_role_and_content_only():
    a = [{"role": "user", "content": "hi"}]
    b = [{"role": "user", "content": "hi", "name": "x"}]
    assert prompt_id(a) == prompt_id(b) and len(prompt_id(a)) == 16
    assert prompt_id(a) != prompt_id([{"role": "user", "content": "hi "}])
    assert prompt_id("hi") != prompt_id(a)
    # Pinned: changing the scheme would silently change every rollout.
    assert sample_seed(42, a, 0) == int.from_bytes(
        __import__("hashlib").sha256(b'42\x00[{"content":"hi","role":"user"}]\x000').digest()[:8], "big"
    ) & ((1 << 63) - 1)
    assert len({sample_seed(42, a, j) for j in range(8)}) == 8
    assert sample_seed(1, a, 0) != sample_seed(2, a, 0)


def test_clean_response_cuts_at_human_turn_and_keeps_angle_brackets():
    assert clean_response("  4 > 3 <b>\n\nHuman: more") == "4 > 3 <b>"
    assert clean_response("\n\n ok \n") == "ok"
    assert clean_response("") == ""


# --- prompts -------------------------------------------------------------------------------------------


def test_rendered_prompts_have_one_bos_and_one_assistant_header(gen):
    bos = gen.tokenizer.bos_token_id
    header = "<|start_header_id|>assistant<|end_header_id|>\n\n"
    for prompt in PROMPTS:
        text, ids = gen.render(prompt)
        assert ids[0] == bos and ids.count(bos) == 1, (prompt, ids[:4])
        if isinstance(prompt, str):
            assert text == prompt
            continue
        assert text.endswith(header) and not text.endswith(header + header)
        # Exactly one header per assistant turn in the prompt, plus the generation prompt (seed bug §7.10).
        assert text.count("<|start_header_id|>assistant") == 1 + sum(m["role"] == "assistant" for m in prompt)
        assert "\\n" not in text


def test_stop_tokens_include_eos_and_end_of_turn(gen):
    vocab = gen.tokenizer.get_vocab()
    assert vocab["<|eot_id|>"] in gen.stop_ids and vocab["<|end_of_text|>"] in gen.stop_ids


# --- determinism and batching -------------------------------------------------------------------------


def test_same_seed_same_samples_whatever_the_batching(gen):
    p = SamplingParams(n=3, temperature=1.0, top_p=0.9, max_new_tokens=10, min_new_tokens=2, seed=7)
    batched = gen.generate(PROMPTS, p, batch_size=5)
    single = gen.generate(PROMPTS, p, batch_size=1)
    pairs = gen.generate(PROMPTS, p, batch_size=2)
    reordered = gen.generate(PROMPTS[::-1], p, batch_size=3)[::-1]
    assert _ids(batched) == _ids(single) == _ids(pairs) == _ids(reordered)
    assert [[s.text for s in g] for g in batched] == [[s.text for s in g] for g in single]
    # The k candidates of a prompt differ, and another seed gives other samples.
    assert len({tuple(s.token_ids) for s in batched[0]}) == 3
    other = gen.generate(PROMPTS, SamplingParams(n=3, temperature=1.0, top_p=0.9, max_new_tokens=10, min_new_tokens=2, seed=8), batch_size=5)
    assert _ids(other) != _ids(batched)
    assert all(len(s.token_ids) == 10 or s.stopped for g in batched for s in g)


def test_preallocated_kv_cache_gives_the_same_samples_as_hf_cache(gen, monkeypatch):
    import dpo_sweep_worker.generate as G

    p = SamplingParams(n=2, temperature=1.0, top_p=0.9, max_new_tokens=9, seed=5)
    ours = gen.generate(PROMPTS, p, batch_size=5)
    monkeypatch.setattr(G, "preallocated_cache", lambda *a, **k: None)
    assert _ids(gen.generate(PROMPTS, p, batch_size=5)) == _ids(ours)


def test_greedy_top_p_and_top_k_limits_agree(gen):
    greedy = gen.generate(PROMPTS[:3], SamplingParams(n=2, temperature=0.0, max_new_tokens=8), batch_size=3)
    tiny_p = gen.generate(PROMPTS[:3], SamplingParams(n=2, temperature=1.0, top_p=1e-9, max_new_tokens=8), batch_size=1)
    top1 = gen.generate(PROMPTS[:3], SamplingParams(n=2, temperature=1.0, top_p=1.0, top_k=1, max_new_tokens=8), batch_size=2)
    assert _ids(greedy) == _ids(tiny_p) == _ids(top1)
    assert all(g[0].token_ids == g[1].token_ids for g in greedy)


class _BiasedHead(torch.nn.Module):
    def __init__(self, head, token: int, bias: float):
        super().__init__()
        self.head = head
        self.token = token
        self.bias = bias

    def forward(self, x):
        out = self.head(x)
        out[..., self.token] += self.bias
        return out


def test_min_new_tokens_then_stop_at_end_of_turn_and_decode_without_special_tokens(worker_cache):
    g = Generator("builtin:tiny-llama", cache_dir=worker_cache)
    eot = g.tokenizer.convert_tokens_to_ids("<|eot_id|>")
    g.model.lm_head = _BiasedHead(g.model.lm_head, eot, 60.0)
    out = g.generate(PROMPTS[:2], SamplingParams(n=2, temperature=1.0, top_p=0.95, max_new_tokens=12, min_new_tokens=3), batch_size=2)
    for group in out:
        for s in group:
            assert s.stopped and len(s.token_ids) == 4 and s.token_ids[-1] == eot
            assert s.raw.endswith("<|eot_id|>") and "<|" not in s.text
            assert s.text == s.text.strip()


def test_sampler_matches_softmax_and_never_leaves_the_nucleus():
    logits = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0, -30.0])
    probs = torch.softmax(logits / 0.8, -1)
    rows = 6000
    sampler = RowSampler(SamplingParams(temperature=0.8, top_p=1.0, max_new_tokens=4), range(rows), prompt_len=0, stop_ids=[5])
    scores = sampler(torch.zeros((rows, 1), dtype=torch.long), logits.repeat(rows, 1))
    assert bool((torch.isfinite(scores).sum(-1) == 1).all())
    freq = torch.bincount(scores.argmax(-1), minlength=6).double() / rows
    assert torch.allclose(freq, probs.double(), atol=0.02), (freq, probs)
    # top-p 0.7: the smallest set of most likely tokens with mass >= 0.7.
    nucleus = SamplingParams(temperature=1.0, top_p=0.7, max_new_tokens=4)
    p1 = torch.softmax(logits, -1)
    keep = int((torch.cumsum(p1, -1) < 0.7).sum()) + 1
    picks = RowSampler(nucleus, range(rows), 0, [5])(torch.zeros((rows, 1), dtype=torch.long), logits.repeat(rows, 1)).argmax(-1)
    assert set(picks.tolist()) == set(range(keep))
    # Stop tokens are suppressed before min_new_tokens.
    forced = torch.tensor([-5.0, -5.0, -5.0, -5.0, -5.0, 10.0])
    early = RowSampler(SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=9, min_new_tokens=2), range(50), 3, [5])
    assert 5 not in early(torch.zeros((50, 4), dtype=torch.long), forced.repeat(50, 1)).argmax(-1).tolist()
    assert 5 in early(torch.zeros((50, 5), dtype=torch.long), forced.repeat(50, 1)).argmax(-1).tolist()


# --- KL ------------------------------------------------------------------------------------------------


def _manual_logp(model, prompt_ids, completion):
    ids = torch.tensor([prompt_ids + completion])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits.float(), -1)[0]
    return sum(float(logp[len(prompt_ids) + t - 1, tok]) for t, tok in enumerate(completion))


def test_sequence_logps_and_kl_match_unpadded_forward_passes(gen, worker_cache):
    from dpo_sweep_worker.generate import load_reference

    p = SamplingParams(n=2, temperature=1.0, top_p=1.0, max_new_tokens=6, seed=3)
    samples = gen.generate(PROMPTS, p, batch_size=5)
    prompt_ids = [gen.render(pr)[1] for pr in PROMPTS for _ in range(2)]
    completions = [s.token_ids for g in samples for s in g]
    batched = sequence_logps(gen.model, prompt_ids, completions, pad_id=gen.pad_id, batch_size=10)
    manual = [_manual_logp(gen.model, a, b) for a, b in zip(prompt_ids, completions)]
    assert batched == pytest.approx(manual, abs=1e-3)
    # Reference = the policy itself: exactly 0.
    add_kl(gen, gen.model, PROMPTS, samples)
    assert all(s.kl == 0.0 for g in samples for s in g)
    ref = load_reference("builtin:tiny-llama@1", worker_cache, gen)
    add_kl(gen, ref, PROMPTS, samples, batch_size=3)
    expected = [m - _manual_logp(ref, a, b) for m, a, b in zip(manual, prompt_ids, completions)]
    assert [s.kl for g in samples for s in g] == pytest.approx(expected, abs=2e-3)
    assert all(math.isfinite(s.kl) and s.kl != 0 for g in samples for s in g)


# --- evaluation prompts ------------------------------------------------------------------------------


def test_eval_prompt_formats(tmp_path):
    alpaca = tmp_path / "alpaca.json"
    alpaca.write_text(json.dumps([
        {"instruction": "Name a colour.", "output": "x", "generator": "gpt4", "dataset": "helpful_base"},
        {"instruction": "Translate", "input": "chat", "dataset": "koala"},
    ]))
    rows, stats = load_eval_prompts(str(alpaca))
    assert stats["format"] == "alpaca"
    assert rows[0] == {"prompt": [{"role": "user", "content": "Name a colour."}], "instruction": "Name a colour.", "dataset": "helpful_base"}
    assert rows[1]["prompt"][0]["content"] == "Translate\n\nchat" and rows[1]["instruction"] == "Translate"

    tldr = tmp_path / "tldr.jsonl"
    tldr.write_text(json.dumps({"post_id": "1", "post": "My cat ate my homework. ", "reference_summary": "cat"}) + "\n"
                    + json.dumps({"prompt": "SUBREDDIT: r/x\nPOST: hi\nTL;DR:", "completion": " c"}) + "\n")
    rows, stats = load_eval_prompts(str(tldr))
    assert stats["format"] == "tldr"
    assert rows[0] == {"prompt": "My cat ate my homework.\n\nTL;DR:", "instruction": "My cat ate my homework. ", "dataset": "tldr"}
    assert rows[1]["prompt"] == "SUBREDDIT: r/x\nPOST: hi\nTL;DR:"  # no second TL;DR: (seed bug §7.15)
    assert tldr_prompt("x\n\nTL;DR:") == "x\n\nTL;DR:"

    hh = tmp_path / "hh.jsonl"
    hh.write_text(
        json.dumps({"chosen": "\n\nHuman: Hi?\n\nAssistant: Hello.", "rejected": "\n\nHuman: Hi?\n\nAssistant: Go."}) + "\n"
        + json.dumps({"chosen": "\n\nHuman: A\n\nAssistant: B\n\nHuman: C\n\nAssistant: D", "rejected": "\n\nHuman: A\n\nAssistant: B\n\nHuman: C\n\nAssistant: E"}) + "\n"
    )
    rows, stats = load_eval_prompts(str(hh))
    assert stats["format"] == "hh" and stats["skipped"] == {"not_single_turn": 1}
    assert rows == [{"prompt": [{"role": "user", "content": "Hi?"}], "instruction": "Hi?", "dataset": "hh"}]

    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps(["one", "two"]))
    text = tmp_path / "plain.txt"
    text.write_text("one\n\ntwo\n")
    for f in (plain, text):
        rows, stats = load_eval_prompts(str(f), dataset="mine")
        assert stats["format"] == "list" and [r["instruction"] for r in rows] == ["one", "two"] and rows[0]["dataset"] == "mine"

    rows, stats = load_eval_prompts("/work/main/configs/data/eval-prompts.jsonl", limit=3)
    assert stats["format"] == "generated" and len(rows) == 3
    multi = next(r for r in rows if len(r["prompt"]) > 1)
    assert multi["instruction"].startswith("Human: ") and "\n\nAssistant: " in multi["instruction"]


# --- the façade ------------------------------------------------------------------------------------------


def test_generate_writes_alpaca_eval_records_with_kl(tmp_path, worker_cache, repo_root):
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps([{"instruction": "What is 2 + 2?", "dataset": "arith"}, {"instruction": "What is 3 * 3?", "dataset": "arith"}]))
    out = tmp_path / "outputs.json"
    res = facade.generate({
        "model": "builtin:tiny-llama", "reference": "builtin:tiny-llama@1", "prompts": str(prompts), "out": str(out),
        "n": 2, "max_new_tokens": 6, "temperature": 0.7, "seed": 1, "generator": "run-a", "cache_dir": worker_cache,
    })
    records = json.loads(out.read_text())
    assert res["status"] == "complete" and res["outputs"] == 4 and len(records) == 4
    assert [set(r) for r in records] == [{"instruction", "output", "generator", "dataset", "kl", "sample"}] * 4
    assert [r["sample"] for r in records] == [0, 1, 0, 1]
    assert all(r["generator"] == "run-a" and r["dataset"] == "arith" and isinstance(r["kl"], float) for r in records)
    assert res["mean_kl"] == pytest.approx(sum(r["kl"] for r in records) / 4)

    # n = 1, no reference: no `sample`, kl null; JSONL by suffix; a failing job does not lose the other.
    out2 = tmp_path / "o.jsonl"
    both = facade.generate({"cache_dir": worker_cache, "max_new_tokens": 4, "jobs": [
        {"model": "builtin:tiny-llama", "prompts": str(prompts), "out": str(out2)},
        {"model": "builtin:no-such", "prompts": str(prompts), "out": str(tmp_path / "x.json")},
    ]})
    ok, bad = both["results"]
    assert ok["ok"] and not bad["ok"] and bad["error"]["type"] == "SpecError"
    lines = [json.loads(line) for line in out2.read_text().splitlines()]
    assert [set(r) for r in lines] == [{"instruction", "output", "generator", "dataset", "kl"}] * 2 and lines[0]["kl"] is None


def test_vllm_engine_missing_is_a_clear_spec_error(worker_cache):
    pytest.importorskip("torch")
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here")
    from dpo_sweep_worker.generate import make_generator

    with pytest.raises(SpecError, match="engine vllm needs the vllm package"):
        make_generator("vllm", "builtin:tiny-llama", cache_dir=worker_cache)


# --- bad inputs ------------------------------------------------------------------------------------------


def test_a_line_that_is_not_json_is_an_error_naming_the_file_and_line(tmp_path):
    from dpo_sweep_worker.data import DataError

    bad = tmp_path / "prompts.jsonl"
    bad.write_text('{"instruction": "Say hi"}\n\n{"instruction": oops}\n{"instruction": "Say bye"}\n')
    # Line 3 (blank line 2 is skipped, not counted away): never dropped quietly as "not an object".
    with pytest.raises(DataError, match=r"prompts\.jsonl:3: invalid JSON"):
        load_eval_prompts(str(bad))
    good = tmp_path / "ok.jsonl"
    good.write_text('{"instruction": "Say hi"}\n\n\n{"instruction": "Say bye"}\n')
    rows, stats = load_eval_prompts(str(good))
    assert [r["instruction"] for r in rows] == ["Say hi", "Say bye"] and stats["skipped"] == {}


def test_a_wrong_reference_or_reward_model_fails_before_anything_is_generated(tmp_path, worker_cache, monkeypatch):
    import dpo_sweep_worker.generate as g

    prompts = tmp_path / "p.json"
    prompts.write_text(json.dumps([{"instruction": "What is 2 + 2?"}]))
    out = tmp_path / "o.json"

    def no_generation(*_a, **_k):
        raise AssertionError("the model was loaded before the reference / reward model was checked")

    monkeypatch.setattr(g, "Generator", no_generation)
    base = {"model": "builtin:tiny-llama", "prompts": str(prompts), "out": str(out), "max_new_tokens": 2, "cache_dir": worker_cache}
    with pytest.raises(SpecError, match="model directory not found: /no/such/reference"):
        facade.generate({**base, "reference": "/no/such/reference"})
    with pytest.raises(SpecError, match="model directory not found: /no/such/rm"):
        facade.generate({**base, "reward_model": "/no/such/rm"})
    (tmp_path / "notamodel").mkdir()
    with pytest.raises(SpecError, match="is not a model directory"):
        facade.generate({**base, "reward_model": str(tmp_path / "notamodel")})
    assert not out.exists()


def test_a_model_that_cannot_be_loaded_is_a_spec_error(tmp_path, worker_cache):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    with pytest.raises(SpecError, match="broken has no model weights"):  # caught before loading
        Generator(str(broken), cache_dir=worker_cache)
    (broken / "model.safetensors").write_bytes(b"")
    with pytest.raises(SpecError, match="cannot load the model"):
        Generator(str(broken), cache_dir=worker_cache)
    # A hub id that is not there (offline in tests): a SpecError (exit 2), not an OSError.
    with pytest.raises(SpecError, match="no-such-org/no-such-model"):
        Generator("no-such-org/no-such-model", cache_dir=worker_cache)
