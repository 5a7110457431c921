"""The quickstart's data: the rule holds on every pair, eval prompts are disjoint from training."""

import hashlib
import json
import re
from pathlib import Path

from dpo_sweep_worker.data.quickstart import FILES, SFT_FORMAT_SHARE, follows_format, generate_quickstart

ROOT = Path(__file__).resolve().parents[2] / "configs" / "data" / "quickstart"
QUESTION = re.compile(r"What is (\d+) ([-+*]) (\d+)\?")


def rows(name):
    return [json.loads(line) for line in (ROOT / name).read_text().splitlines()]


def questions(messages):
    """Every arithmetic question asked in a message list, as hashes of its canonical text."""
    out = set()
    for m in messages:
        for a, op, b in QUESTION.findall(m["content"]):
            out.add(hashlib.sha256(f"{a} {op} {b}".encode()).hexdigest())
    return out


def test_shipped_files_match_the_generator():
    generated = generate_quickstart(0)
    assert set(generated) == set(FILES)
    for name, expected in generated.items():
        assert rows(name) == expected, name


def test_the_rule():
    assert follows_format("12 plus 5 is 17. Answer: 17.")
    assert follows_format("  Answer: -3.\n")
    assert not follows_format("Answer: 17")  # no full stop
    assert not follows_format("Answer: 17. Thanks!")  # text after it
    assert not follows_format("answer: 17.")  # case
    assert not follows_format("12 plus 5 is 17.")


def test_every_pair_follows_the_rule():
    for row in rows("prefs.jsonl"):
        assert follows_format(row["chosen"][0]["content"])
        assert not follows_format(row["rejected"][0]["content"])


def test_sft_uses_the_format_only_sometimes():
    share = sum(follows_format(r["messages"][-1]["content"]) for r in rows("sft.jsonl")) / FILES["sft.jsonl"]
    assert abs(share - SFT_FORMAT_SHARE) < 0.06


def test_eval_prompts_are_disjoint_from_training_by_hash():
    train = set()
    for r in rows("sft.jsonl"):
        train |= questions(r["messages"])
    for r in rows("prefs.jsonl"):
        train |= questions(r["prompt"]) | questions(r["chosen"]) | questions(r["rejected"])
    held_out = set()
    for r in rows("eval-prompts.jsonl"):
        held_out |= questions(r["prompt_messages"])
    assert train and held_out
    assert not (train & held_out)
