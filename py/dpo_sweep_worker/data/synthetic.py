'''Synthetic arithmetic preference data whose preference a program can verify.

Every prompt's **last user turn** asks one question of the form ``What is A OP B?`` and the
preferred answer is correct *and* ends in a fixed format.  :func:`check` is the rule; a TypeScript
judge preset re-implements it, so it is kept to two regular expressions and integer arithmetic.

The rule, exactly
-----------------
``check(prompt_text, response) -> bool``:

1. ``TASK_RE = /What is (\\d+) ([-+*]) (\\d+)\\?/``.  Take the **last** match in *prompt_text* (any
   rendering of the prompt works: the last user message, an HH transcript, or chat-template text,
   because the last user turn holds the question and earlier turns come before it).  No match ⇒
   ``False``.  ``expected = A + B``, ``A - B`` or ``A * B`` (``-`` is ASCII hyphen-minus, ``*`` is
   ASCII asterisk; the result may be negative).
2. ``r = response.strip()`` (Python ``str.strip``: Unicode whitespace; JavaScript ``trim()`` agrees
   on every character this data uses).
3. ``r`` must contain the substring ``"Answer:"`` exactly once, and
   ``ANSWER_RE = /Answer: (-?(?:0|[1-9]\\d*))\\.$/`` must match at the end of ``r`` (one space after
   the colon, no leading zeros, a final full stop, nothing after it), and its integer must equal
   ``expected``.  All matching is case-sensitive.

The generated chosen responses always pass and the rejected ones always fail (wrong value, right
value in the wrong format, or no answer at all); ``scripts/make-synthetic-data.py`` asserts it and a
test re-checks every shipped row.

Train/eval split
----------------
Each question ``(A, OP, B)`` belongs to the eval pool when the first byte of
``sha256(f"{A} {OP} {B}")`` is below 26 (about 10 %), else to the training pool.  Training files only
ask training-pool questions (in every turn), ``eval-prompts.jsonl`` only eval-pool ones, so held-out
prompts can never appear in training data.
'''

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterator

TASK_RE = re.compile(r"What is (\d+) ([-+*]) (\d+)\?")
ANSWER_RE = re.compile(r"Answer: (-?(?:0|[1-9]\d*))\.$")

#: Files written by ``scripts/make-synthetic-data.py`` into ``configs/data/`` and their row counts.
FILES = {"prefs-hh.jsonl": 400, "prefs-pairs.jsonl": 300, "sft.jsonl": 300, "eval-prompts.jsonl": 200}
MULTI_TURN_FRACTION = 0.35

_OP_WORDS = {"+": "plus", "-": "minus", "*": "times"}


# --- the rule ------------------------------------------------------------------------------------


def parse_task(prompt_text: str) -> tuple[int, str, int] | None:
    """The last ``What is A OP B?`` question in *prompt_text* as ``(A, OP, B)``, or ``None``."""
    matches = TASK_RE.findall(prompt_text)
    if not matches:
        return None
    a, op, b = matches[-1]
    return int(a), op, int(b)


def solve(a: int, op: str, b: int) -> int:
    """``A OP B`` for ``OP`` in ``+ - *``."""
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    raise ValueError(f"unknown operator {op!r}")


def extract_answer(response: str) -> int | None:
    """The integer of a well-formed final ``Answer: N.``, or ``None`` when the format is broken."""
    r = response.strip()
    if r.count("Answer:") != 1:
        return None
    m = ANSWER_RE.search(r)
    return int(m.group(1)) if m else None


def check(prompt_text: str, response: str) -> bool:
    """``True`` when *response* answers the last question of *prompt_text* correctly and in format.

    See the module docstring for the exact rule.

    >>> check("What is 2 + 3?", "2 plus 3 is 5. Answer: 5.")
    True
    >>> check("What is 2 + 3?", "Answer: 5")        # no final full stop
    False
    >>> check("What is 2 - 3?", " Answer: -1. ")
    True
    """
    task = parse_task(prompt_text)
    if task is None:
        return False
    got = extract_answer(response)
    return got is not None and got == solve(*task)


# --- the generator -------------------------------------------------------------------------------


def is_eval_task(a: int, op: str, b: int) -> bool:
    """Whether the question belongs to the held-out eval pool (see the module docstring)."""
    return hashlib.sha256(f"{a} {op} {b}".encode()).digest()[0] < 26


_QUESTION_TEMPLATES = [
    "What is {a} {op} {b}?",
    "What is {a} {op} {b}? Please end with the answer line.",
    "Quick question. What is {a} {op} {b}?",
    "I am checking my homework. What is {a} {op} {b}?",
    "Can you help me with some arithmetic? What is {a} {op} {b}?",
    "My calculator is broken. What is {a} {op} {b}?",
    "Here is one for you. What is {a} {op} {b}?",
    "Please work this out. What is {a} {op} {b}?",
]

_CHOSEN_TEMPLATES = [
    "{a} {word} {b} is {r}. Answer: {r}.",
    "Let me work it out: {a} {op} {b} = {r}. Answer: {r}.",
    "Sure! {a} {word} {b} equals {r}. Answer: {r}.",
    "Answer: {r}.",
    "Happy to help. {a} {op} {b} gives {r}. Answer: {r}.",
    "Starting from {a}, {word} {b} gives {r}. Answer: {r}.",
]

# Each rejected template fails the rule on purpose; {w} is a wrong value, {r} the right one.
_REJECTED_TEMPLATES = [
    ("wrong_value", "{a} {word} {b} is {w}. Answer: {w}."),
    ("wrong_value", "Let me work it out: {a} {op} {b} = {w}. Answer: {w}."),
    ("wrong_value", "Answer: {w}."),
    ("no_answer_line", "{a} {word} {b} is {r}."),
    ("no_answer_line", "The answer is {r}."),
    ("no_final_stop", "{a} {op} {b} = {r}. Answer: {r}"),
    ("lowercase_tag", "{a} {word} {b} is {r}. answer: {r}."),
    ("text_after_answer", "Answer: {r}. Hope that helps!"),
    ("wrong_no_format", "I think it is {w}."),
    ("refusal", "I am not sure about that one, sorry."),
    ("refusal", "Math is hard. Let us talk about something else."),
]

_SMALL_TALK = [
    ("Hi there!", "Hello! How can I help you today?"),
    ("Good morning.", "Good morning! What can I do for you?"),
    ("I have a few maths questions.", "Of course. Ask away and I will answer each one."),
    ("Are you good with numbers?", "I can do basic arithmetic. What would you like to know?"),
    ("Thanks for the help earlier.", "You are welcome. Is there anything else?"),
    ("Can I ask you something?", "Sure, go ahead."),
]


def _task(rng: random.Random, *, eval_pool: bool) -> tuple[int, str, int]:
    while True:
        op = rng.choice("+-*")
        if op == "*":
            a, b = rng.randint(0, 12), rng.randint(0, 12)
        else:
            a, b = rng.randint(0, 99), rng.randint(0, 99)
        if is_eval_task(a, op, b) == eval_pool:
            return a, op, b


def _fmt(template: str, a: int, op: str, b: int, **extra: int) -> str:
    return template.format(a=a, op=op, b=b, word=_OP_WORDS[op], **extra)


def _question(rng: random.Random, task: tuple[int, str, int]) -> str:
    return _fmt(rng.choice(_QUESTION_TEMPLATES), *task)


def _chosen(rng: random.Random, task: tuple[int, str, int]) -> str:
    return _fmt(rng.choice(_CHOSEN_TEMPLATES), *task, r=solve(*task))


def _wrong(rng: random.Random, task: tuple[int, str, int]) -> int:
    right = solve(*task)
    a, op, b = task
    candidates = [right + d for d in (-10, -2, -1, 1, 2, 10)]
    candidates += [solve(a, o, b) for o in "+-*" if o != op]
    return rng.choice([c for c in candidates if c != right])


def _rejected(rng: random.Random, task: tuple[int, str, int]) -> str:
    _kind, template = rng.choice(_REJECTED_TEMPLATES)
    return _fmt(template, *task, r=solve(*task), w=_wrong(rng, task))


def _conversation(rng: random.Random, *, eval_pool: bool, multi_turn: bool) -> tuple[list[dict], tuple]:
    """A prompt (message list ending with the user question) and its task."""
    messages: list[dict[str, str]] = []
    if multi_turn:
        for _ in range(rng.randint(1, 2)):
            if rng.random() < 0.5:
                user, assistant = rng.choice(_SMALL_TALK)
            else:
                prior = _task(rng, eval_pool=eval_pool)
                user, assistant = _question(rng, prior), _chosen(rng, prior)
            messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    task = _task(rng, eval_pool=eval_pool)
    messages.append({"role": "user", "content": _question(rng, task)})
    return messages, task


def _hh(messages: list[dict[str, str]]) -> str:
    tag = {"user": "\n\nHuman: ", "assistant": "\n\nAssistant: "}
    return "".join(tag[m["role"]] + m["content"] for m in messages) + "\n\nAssistant:"


def _pair(rng: random.Random, task: tuple) -> tuple[str, str]:
    chosen, rejected = _chosen(rng, task), _rejected(rng, task)
    assert check(task_text(task), chosen) and not check(task_text(task), rejected), (task, chosen, rejected)
    return chosen, rejected


def task_text(task: tuple[int, str, int]) -> str:
    """The canonical question text ``What is A OP B?``."""
    a, op, b = task
    return f"What is {a} {op} {b}?"


def generate(seed: int = 0) -> dict[str, list[dict]]:
    """All synthetic files as ``{file name: rows}``; deterministic for a given *seed*.

    * ``prefs-hh.jsonl``: ``{"chosen": HH transcript, "rejected": HH transcript}``; both share the
      prompt ``"\\n\\nHuman: …\\n\\nAssistant:"`` and continue with ``" " + response``.
    * ``prefs-pairs.jsonl``: ``{"prompt": str, "chosen": str, "rejected": str}`` (plain user text,
      single turn).
    * ``sft.jsonl``: ``{"messages": [{"role", "content"}, …]}`` ending with a correct assistant turn.
    * ``eval-prompts.jsonl``: ``{"id": "eval-NNNN", "prompt_messages": [...], "reference": str}``,
      ``reference`` being a correct formatted answer; eval-pool questions only.
    """
    out: dict[str, list[dict]] = {}
    # One generator per file, so changing one file's size does not reshuffle the others.
    rng = random.Random(f"{seed}/prefs-hh")
    rows = []
    for _ in range(FILES["prefs-hh.jsonl"]):
        messages, task = _conversation(rng, eval_pool=False, multi_turn=rng.random() < MULTI_TURN_FRACTION)
        chosen, rejected = _pair(rng, task)
        prompt = _hh(messages)
        rows.append({"chosen": prompt + " " + chosen, "rejected": prompt + " " + rejected})
    out["prefs-hh.jsonl"] = rows

    rng = random.Random(f"{seed}/prefs-pairs")
    rows = []
    for _ in range(FILES["prefs-pairs.jsonl"]):
        messages, task = _conversation(rng, eval_pool=False, multi_turn=False)
        chosen, rejected = _pair(rng, task)
        rows.append({"prompt": messages[-1]["content"], "chosen": chosen, "rejected": rejected})
    out["prefs-pairs.jsonl"] = rows

    rng = random.Random(f"{seed}/sft")
    rows = []
    for _ in range(FILES["sft.jsonl"]):
        messages, task = _conversation(rng, eval_pool=False, multi_turn=rng.random() < MULTI_TURN_FRACTION)
        rows.append({"messages": messages + [{"role": "assistant", "content": _chosen(rng, task)}]})
    out["sft.jsonl"] = rows

    rng = random.Random(f"{seed}/eval-prompts")
    rows = []
    seen: set[str] = set()
    while len(rows) < FILES["eval-prompts.jsonl"]:
        messages, task = _conversation(rng, eval_pool=True, multi_turn=rng.random() < MULTI_TURN_FRACTION)
        key = repr(messages)
        if key in seen:
            continue
        seen.add(key)
        rows.append(
            {"id": f"eval-{len(rows):04d}", "prompt_messages": messages, "reference": _chosen(rng, task)}
        )
    out["eval-prompts.jsonl"] = rows
    return out


def corpus_texts(seed: int = 0) -> Iterator[str]:
    """Every string of :func:`generate` (prompts and responses), for tokenizer training."""

    def walk(value):
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for v in value.values():
                yield from walk(v)
        elif isinstance(value, list):
            for v in value:
                yield from walk(v)

    for name, rows in generate(seed).items():
        for row in rows:
            yield from walk(row)
