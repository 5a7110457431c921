'''The quickstart's data: a preference a tiny model can learn in minutes on a CPU, checkable by a rule.

The question is the same arithmetic as :mod:`.synthetic`, but the preference is about the **answer
format**, not about getting the sum right (a 0.8M-parameter model trained for a few minutes cannot do
arithmetic; it can learn a format).

The rule, exactly (``follows_format(response)``; the ``answer-format`` judge preset implements the
same regular expression)::

    response.strip() matches  /Answer: -?(?:0|[1-9]\\d*)\\.$/   (the reply ends with the answer line)

* ``sft.jsonl``: the SFT data answers in that format only ``SFT_FORMAT_SHARE`` of the time; the
  other answers state the result in prose ("12 plus 5 is 17.").  So the SFT model uses the format
  now and then.
* ``prefs.jsonl``: pairs whose chosen answer uses the format and whose rejected answer states the
  same result without it.  DPO should move the model towards the format.
* ``eval-prompts.jsonl``: held-out questions (the eval pool of :mod:`.synthetic`: disjoint from every
  training question, checked by hash in the tests).

Nothing here is tuned to make a variant win: the report states whatever the judge finds.
'''

from __future__ import annotations

import random
import re

from .synthetic import _OP_WORDS, _QUESTION_TEMPLATES, _SMALL_TALK, _task, solve

FORMAT_RE = re.compile(r"Answer: -?(?:0|[1-9]\d*)\.$")
SFT_FORMAT_SHARE = 0.4
FILES = {"sft.jsonl": 600, "prefs.jsonl": 600, "eval-prompts.jsonl": 200}

_FORMATTED = [
    "{a} {word} {b} is {r}. Answer: {r}.",
    "Let me work it out: {a} {op} {b} = {r}. Answer: {r}.",
    "Answer: {r}.",
    "Sure. {a} {op} {b} gives {r}. Answer: {r}.",
]
_PROSE = [
    "{a} {word} {b} is {r}.",
    "The answer is {r}.",
    "Let me work it out: {a} {op} {b} = {r}.",
    "Sure. {a} {op} {b} gives {r}.",
    "It comes to {r}.",
]


def follows_format(response: str) -> bool:
    """The quickstart rule: the reply ends with ``Answer: N.`` (``N`` an integer, any value)."""
    return FORMAT_RE.search(response.strip()) is not None


def _fill(template: str, task: tuple[int, str, int]) -> str:
    a, op, b = task
    return template.format(a=a, op=op, b=b, word=_OP_WORDS[op], r=solve(a, op, b))


def _prompt(rng: random.Random, *, eval_pool: bool) -> tuple[list[dict[str, str]], tuple[int, str, int]]:
    messages: list[dict[str, str]] = []
    if rng.random() < 0.25:
        user, assistant = rng.choice(_SMALL_TALK)
        messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    task = _task(rng, eval_pool=eval_pool)
    a, op, b = task
    messages.append({"role": "user", "content": rng.choice(_QUESTION_TEMPLATES).format(a=a, op=op, b=b)})
    return messages, task


def generate_quickstart(seed: int = 0) -> dict[str, list[dict]]:
    """``{file name: rows}`` for ``configs/data/quickstart/``; deterministic for a given seed."""
    out: dict[str, list[dict]] = {}
    rng = random.Random(f"{seed}/quickstart-sft")
    rows = []
    for _ in range(FILES["sft.jsonl"]):
        messages, task = _prompt(rng, eval_pool=False)
        templates = _FORMATTED if rng.random() < SFT_FORMAT_SHARE else _PROSE
        rows.append({"messages": messages + [{"role": "assistant", "content": _fill(rng.choice(templates), task)}]})
    out["sft.jsonl"] = rows

    rng = random.Random(f"{seed}/quickstart-prefs")
    rows = []
    for _ in range(FILES["prefs.jsonl"]):
        messages, task = _prompt(rng, eval_pool=False)
        chosen, rejected = _fill(rng.choice(_FORMATTED), task), _fill(rng.choice(_PROSE), task)
        assert follows_format(chosen) and not follows_format(rejected), (chosen, rejected)
        rows.append(
            {
                "prompt": messages,
                "chosen": [{"role": "assistant", "content": chosen}],
                "rejected": [{"role": "assistant", "content": rejected}],
            }
        )
    out["prefs.jsonl"] = rows

    rng = random.Random(f"{seed}/quickstart-eval")
    rows, seen = [], set()
    while len(rows) < FILES["eval-prompts.jsonl"]:
        messages, task = _prompt(rng, eval_pool=True)
        if repr(messages) in seen:
            continue
        seen.add(repr(messages))
        rows.append({"id": f"qs-eval-{len(rows):04d}", "prompt_messages": messages, "reference": _fill(_FORMATTED[0], task)})
    out["eval-prompts.jsonl"] = rows
    return out
