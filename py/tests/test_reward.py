"""Reward-model judging: the tiny RM (deterministic, prefers correct `Answer: N.` replies), tokenisation
(one BOS, left truncation), batched == single scores (also when pad = end-of-turn), pair selection
(ties, empties, never the same candidate), 8-bit requirements, the `score` façade."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from dpo_sweep_worker import facade
from dpo_sweep_worker.data import synthetic
from dpo_sweep_worker.reward import RewardModel, ensure_tiny_reward, judge_many, normalise_quantization, require_8bit, select_pair
from dpo_sweep_worker.runtime import SpecError

Q = [{"role": "user", "content": "What is 2 + 3?"}]


@pytest.fixture(scope="module")
def rm(worker_cache) -> RewardModel:
    ensure_tiny_reward(Path(worker_cache) / "models")
    return RewardModel("builtin:tiny-reward", cache_dir=worker_cache)


def test_tiny_reward_model_is_deterministic_and_prefers_correct_answers(rm, worker_cache, tmp_path):
    meta = json.loads((Path(rm.path) / "tiny_reward.json").read_text())
    assert meta["heldout_pair_accuracy"] >= 0.8
    # Fresh pairs (another generator seed): chosen (correct, formatted) beats rejected.
    pairs = synthetic.generate(seed=2)["prefs-pairs.jsonl"][:60]
    chosen = rm.score([(p["prompt"], p["chosen"]) for p in pairs], batch_size=16)
    rejected = rm.score([(p["prompt"], p["rejected"]) for p in pairs], batch_size=16)
    assert sum(c > r for c, r in zip(chosen, rejected)) / len(pairs) >= 0.8
    # Built again elsewhere: the same weights (same scores).
    again = ensure_tiny_reward(tmp_path / "models")
    other = RewardModel(again, cache_dir=str(tmp_path))
    assert other.score([(Q, "Answer: 5."), (Q, "No idea.")]) == rm.score([(Q, "Answer: 5."), (Q, "No idea.")])


def test_encoding_has_one_bos_and_truncates_from_the_left(rm, worker_cache):
    ids = rm.encode(Q, "Answer: 5.")
    bos = rm.tokenizer.bos_token_id
    assert ids[0] == bos and ids.count(bos) == 1
    assert ids[-1] == rm.tokenizer.convert_tokens_to_ids("<|eot_id|>")
    assert rm.encode("What is 2 + 3?", "Answer: 5.") == ids  # a raw prompt is one user turn
    short = RewardModel("builtin:tiny-reward", cache_dir=worker_cache, max_length=8)
    assert short.encode(Q, "Answer: 5.") == ids[-8:]


def test_batched_scores_equal_single_scores_even_when_pad_is_end_of_turn(rm):
    convs = [(Q, "Answer: 5."), (Q, "2 plus 3 is 5. Answer: 5."), (Q, "x"), ("Hello", "Hi! How can I help you today?")]
    single = [rm.score([c])[0] for c in convs]
    assert rm.score(convs, batch_size=4) == pytest.approx(single, abs=1e-5)
    saved = rm.tokenizer.pad_token
    rm.tokenizer.pad_token = "<|eot_id|>"  # the seed's pad := eos: every row ends with it
    try:
        assert rm.score(convs, batch_size=4) == pytest.approx(single, abs=1e-5)
    finally:
        rm.tokenizer.pad_token = saved
    assert rm.model.config.pad_token_id == rm.tokenizer.pad_token_id


def test_select_pair_rules():
    rng = random.Random(0)
    assert select_pair([], rng) == "too_few"
    assert select_pair([None, 1.0, None], rng) == "too_few"
    assert select_pair([2.0, 2.0, None, 2.0], rng) == "tie"
    assert select_pair([float("nan"), 1.0], rng) == "too_few"
    assert select_pair([0.1, 0.5, -0.2], rng) == (1, 2)
    # Ties at the top or bottom: any best / any worst, never the same index; chosen text ≠ rejected text.
    r = random.Random(1)
    for _ in range(500):
        scores = [r.choice([None, 0.0, 1.0, 2.0]) for _ in range(r.randint(0, 6))]
        pick = select_pair(scores, r)
        valid = [s for s in scores if s is not None]
        if len(valid) < 2:
            assert pick == "too_few"
        elif max(valid) == min(valid):
            assert pick == "tie"
        else:
            c, j = pick
            assert c != j and scores[c] == max(valid) and scores[j] == min(valid)
    # Tie-breaking is reproducible from the seed.
    assert select_pair([1.0, 1.0, 0.0], random.Random("42:abc")) == select_pair([1.0, 1.0, 0.0], random.Random("42:abc"))


def test_judge_drops_empties_scores_duplicates_once_and_skips_ties(rm):
    items = [
        (Q, ["Answer: 5.", "", "Math is hard.", "   "], "p1"),
        (Q, ["Answer: 5.", "Answer: 5.", "Answer: 5."], "p2"),  # identical texts: an exact tie
        (Q, ["", "Answer: 5."], "p3"),  # one non-empty candidate
        (Q, ["", " "], "p4"),
        (Q, ["Answer: 5.", "I think it is 7.", "Answer: 5."], "p5"),
    ]
    v = judge_many(rm, items, seed=42, batch_size=3)
    assert (v[0].chosen, v[0].rejected, v[0].skip, v[0].empty) == (0, 2, None, 2)
    assert v[0].scores[1] is None and v[0].scores[3] is None
    assert v[1].skip == "tie" and v[1].chosen is None and len(set(v[1].scores)) == 1
    assert (v[2].skip, v[2].empty) == ("too_few", 1) and (v[3].skip, v[3].empty) == ("too_few", 2)
    assert v[4].scores[0] == v[4].scores[2] and v[4].chosen in (0, 2) and v[4].rejected == 1


def test_8bit_needs_bitsandbytes_and_cuda():
    assert normalise_quantization("bnb8") == normalise_quantization("INT8") == normalise_quantization(None, True) == "8bit"
    assert normalise_quantization(False) == normalise_quantization(None) == "none"
    with pytest.raises(SpecError):
        normalise_quantization("4bit")
    import importlib.util

    import torch

    if importlib.util.find_spec("bitsandbytes") and torch.cuda.is_available():
        pytest.skip("8-bit is available here")
    with pytest.raises(SpecError, match="reward_quantization 8bit needs") as e:
        require_8bit()
    assert ("bitsandbytes" in str(e.value)) != (importlib.util.find_spec("bitsandbytes") is not None)
    assert ("CUDA" in str(e.value)) != torch.cuda.is_available()


def test_score_facade_rows_and_files(rm, worker_cache, tmp_path):
    res = facade.score({"reward_model": "builtin:tiny-reward", "cache_dir": worker_cache, "rows": [
        {"prompt": Q, "response": "Answer: 5."}, {"prompt": "What is 2 + 3?", "response": "No idea."}]})
    assert res["scores"] == pytest.approx(rm.score([(Q, "Answer: 5."), (Q, "No idea.")]), abs=1e-5)
    outputs = tmp_path / "eval.json"
    outputs.write_text(json.dumps([{"instruction": "What is 2 + 3?", "output": "Answer: 5.", "generator": "g"}]))
    res = facade.score({"reward_model": "builtin:tiny-reward", "cache_dir": worker_cache, "path": str(outputs)})
    rows = json.loads(outputs.read_text())
    assert res["n"] == 1 and rows[0]["reward"] == pytest.approx(res["mean_reward"]) and rows[0]["generator"] == "g"


def test_non_finite_scores_are_no_scores_and_the_verdict_is_valid_json():
    class _FakeRM:
        def __init__(self, values):
            self.values = values

        def score(self, conversations, batch_size=8):
            return [self.values[text] for _prompt, text in conversations]

    nan, inf = float("nan"), float("inf")
    rm = _FakeRM({"a": 1.0, "b": nan, "c": 0.5, "d": inf, "e": nan})
    v = judge_many(rm, [(Q, ["a", "b", "c"], "p1"), (Q, ["b", "d", "a"], "p2"), (Q, ["b", "e", ""], "p3")], seed=1)
    assert v[0].scores == [1.0, None, 0.5] and (v[0].chosen, v[0].rejected) == (0, 2)
    assert v[1].scores == [None, None, 1.0] and v[1].skip == "too_few"
    assert v[2].scores == [None, None, None] and v[2].skip == "too_few" and v[2].empty == 1
    # What the rollout writes: strict JSON (NaN / Infinity are not JSON).
    for j in v:
        json.loads(json.dumps({"scores": j.scores}, allow_nan=False))
