"""The shipped synthetic data: regenerable, the rule holds on every row, eval prompts held out."""

from __future__ import annotations

import doctest
import hashlib
import json
import subprocess
import sys

import pytest

from dpo_sweep_worker.data import load_rows, split_hh, synthetic
from dpo_sweep_worker.data.synthetic import check, is_eval_task, parse_task


@pytest.fixture(scope="module")
def data_dir(repo_root):
    return repo_root / "configs" / "data"


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_shipped_files_match_the_generator(repo_root):
    proc = subprocess.run(
        [sys.executable, str(repo_root / "scripts" / "make-synthetic-data.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr


def test_sizes(data_dir):
    total = 0
    for name, n in synthetic.FILES.items():
        path = data_dir / name
        assert len(read(path)) == n
        total += path.stat().st_size
    assert total < 1_000_000


def test_rule_holds_on_every_hh_row(data_dir):
    rows = read(data_dir / "prefs-hh.jsonl")
    multi = 0
    for row in rows:
        t = split_hh(row["chosen"], row["rejected"])
        assert t is not None
        assert check(t["prompt"], t["chosen"]) and not check(t["prompt"], t["rejected"]), t
        multi += t["prompt"].count("\n\nHuman:") > 1
    assert 0.25 < multi / len(rows) < 0.45  # about 35% multi-turn


def test_rule_holds_on_pairs_sft_and_eval_references(data_dir):
    for row in read(data_dir / "prefs-pairs.jsonl"):
        assert check(row["prompt"], row["chosen"]) and not check(row["prompt"], row["rejected"])
    for row in read(data_dir / "sft.jsonl"):
        msgs = row["messages"]
        assert msgs[-1]["role"] == "assistant" and check(msgs[-2]["content"], msgs[-1]["content"])
    for row in read(data_dir / "eval-prompts.jsonl"):
        assert row["prompt_messages"][-1]["role"] == "user"
        assert check(row["prompt_messages"][-1]["content"], row["reference"])


def test_rule_on_loaded_rows_uses_any_prompt_rendering(data_dir):
    # The judge may see the last user message or the whole conversation; the rule gives the same answer.
    for row in load_rows(data_dir / "prefs-hh.jsonl").rows:
        whole = "\n".join(m["content"] for m in row["prompt"])
        last = row["prompt"][-1]["content"]
        for prompt_text in (whole, last):
            assert check(prompt_text, row["chosen"][0]["content"])
            assert not check(prompt_text, row["rejected"][0]["content"])


def _prompt_key(messages):
    canon = json.dumps([[m["role"], m["content"].strip()] for m in messages], separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()


def test_eval_prompts_are_disjoint_from_training_prompts(data_dir):
    train_prompts, train_questions = set(), set()
    for name in ("prefs-hh.jsonl", "prefs-pairs.jsonl"):
        for row in load_rows(data_dir / name).rows:
            train_prompts.add(_prompt_key(row["prompt"]))
            train_questions.add(_prompt_key(row["prompt"][-1:]))
    for row in load_rows(data_dir / "sft.jsonl", task="sft").rows:
        train_prompts.add(_prompt_key(row["messages"][:-1]))
        train_questions.add(_prompt_key(row["messages"][-2:-1]))
    eval_rows = load_rows(data_dir / "eval-prompts.jsonl", task="prompts").rows
    assert len(eval_rows) == synthetic.FILES["eval-prompts.jsonl"]
    eval_prompts = {_prompt_key(r["prompt"]) for r in eval_rows}
    eval_questions = {_prompt_key(r["prompt"][-1:]) for r in eval_rows}
    assert len(eval_prompts) == len(eval_rows)  # no duplicates
    assert not eval_prompts & train_prompts
    assert not eval_questions & train_questions
    # Stronger: no arithmetic question of any eval turn occurs anywhere in training text.
    train_text = "".join((data_dir / n).read_text() for n in ("prefs-hh.jsonl", "prefs-pairs.jsonl", "sft.jsonl"))
    train_tasks = {parse_task(m.group(0)) for m in synthetic.TASK_RE.finditer(train_text)}
    assert all(not is_eval_task(*t) for t in train_tasks)
    for r in eval_rows:
        assert is_eval_task(*parse_task(r["prompt"][-1]["content"]))


def test_generator_is_deterministic():
    assert synthetic.generate(0) == synthetic.generate(0)
    assert synthetic.generate(1) != synthetic.generate(0)


@pytest.mark.parametrize(
    "prompt, response, ok",
    [
        ("What is 2 + 3?", "Answer: 5.", True),
        ("What is 2 + 3?", "  2 plus 3 is 5. Answer: 5.\n", True),
        ("What is 2 - 3?", "Answer: -1.", True),
        ("What is 12 * 12?", "Answer: 144.", True),
        ("What is 2 + 3?", "Answer: 6.", False),  # wrong value
        ("What is 2 + 3?", "Answer: 5", False),  # no full stop
        ("What is 2 + 3?", "answer: 5.", False),  # case
        ("What is 2 + 3?", "Answer: 05.", False),  # leading zero
        ("What is 2 + 3?", "Answer:5.", False),  # no space
        ("What is 2 + 3?", "Answer: 4. Answer: 5.", False),  # two answer lines
        ("What is 2 + 3?", "Answer: 5. Thanks!", False),  # text after
        ("What is 2 + 3?", "5", False),
        ("Hello there", "Answer: 5.", False),  # no task in prompt
        ("What is 1 + 1? Then: What is 2 + 3?", "Answer: 5.", True),  # last question counts
        ("\n\nHuman: What is 1 + 1?\n\nAssistant: Answer: 2.\n\nHuman: What is 3 * 3?\n\nAssistant:", "Answer: 9.", True),
    ],
)
def test_check_cases(prompt, response, ok):
    assert check(prompt, response) is ok


def test_docstring_examples():
    assert doctest.testmod(synthetic, raise_on_error=False).failed == 0
