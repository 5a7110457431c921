"""One source record → one TRL-ready row, per data format and task.  Pure functions, no I/O.

Output rows are TRL *conversational* rows, so the tokenizer's chat template is applied once, by TRL
(no double BOS/EOS: seed-spec §7.8/9):

* preference: ``{"prompt": [{"role", "content"}, …], "chosen": [{"role": "assistant", "content"}],
  "rejected": [{"role": "assistant", "content"}]}``; the prompt ends with a user turn; contents are
  stripped.
* sft: ``{"messages": [{"role", "content"}, …]}`` ending with a non-empty assistant turn.
* prompts: ``{"prompt": [messages ending with a user turn], "reference": str | None, "id": str | None}``
  (``reference``: the source's reference/chosen response; ``id``: the record's string ``id``).

A record that cannot be converted raises :class:`RowError` with a reason code (the loader counts it
and reports its line).
"""

from __future__ import annotations

from typing import Any

from .hh import ASSISTANT_TAG, HUMAN_TAG, normalize_newlines, parse_hh_to_messages, split_hh_with_reason

FORMATS = ("hh", "messages", "pairs", "generated")
TASKS = ("preference", "sft", "prompts")

#: Reason codes a record can be dropped for (``LoadResult.dropped`` keys).
REASONS = {
    "invalid_json": "the line is not valid JSON",
    "not_an_object": "the record is not a JSON object",
    "missing_field": "a required field is missing",
    "bad_type": "a field has the wrong type",
    "bad_message": "a message is not an object with string 'role' and 'content'",
    "no_assistant_tag": 'the chosen transcript has no "\\n\\nAssistant:" tag',
    "prompt_mismatch": "chosen and rejected do not share the prompt",
    "empty_prompt": "the prompt is empty",
    "prompt_not_user_last": "the prompt does not end with a user turn",
    "empty_response": "a response is empty or whitespace-only",
    "no_assistant_turn": "the conversation does not end with a non-empty assistant turn",
    "identical_pair": "chosen equals rejected",
    "prompt_too_long": "the prompt alone fills training.max_length tokens",
}


class RowError(Exception):
    """A record that cannot be converted; ``reason`` is a key of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(detail or REASONS[reason])
        self.reason = reason
        self.detail = detail or REASONS[reason]


def detect_format(record: dict) -> str | None:
    """The format a record's keys imply, or ``None``.

    ``prompt_messages`` → ``generated``; ``messages`` → ``messages``; ``prompt`` + ``chosen`` +
    ``rejected`` → ``pairs``; ``chosen`` + ``rejected`` → ``hh``.
    """
    keys = set(record)
    if "prompt_messages" in keys:
        return "generated"
    if "messages" in keys:
        return "messages"
    if {"prompt", "chosen", "rejected"} <= keys:
        return "pairs"
    if {"chosen", "rejected"} <= keys:
        return "hh"
    return None


# --- field helpers -------------------------------------------------------------------------------


def _field(record: dict, key: str) -> Any:
    if key not in record or record[key] is None:
        raise RowError("missing_field", f"missing field {key!r}")
    return record[key]


def _messages(value: Any, key: str) -> list[dict[str, str]]:
    """Validate a message list: a list of objects with string ``role`` and ``content``."""
    if not isinstance(value, list):
        raise RowError("bad_type", f"{key!r} must be a list of messages")
    out = []
    for i, m in enumerate(value):
        if not (isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)):
            raise RowError("bad_message", f"{key}[{i}] is not an object with string 'role' and 'content'")
        out.append({"role": m["role"], "content": m["content"]})
    return out


def _is_hh_text(text: str) -> bool:
    return HUMAN_TAG in text or text.startswith("Human:") or ASSISTANT_TAG in text


def _prompt_messages(value: Any, key: str = "prompt") -> list[dict[str, str]]:
    """A prompt given as a string (HH transcript or plain user text) or a message list."""
    if isinstance(value, str):
        text = normalize_newlines(value)
        if _is_hh_text(text):
            msgs = parse_hh_to_messages(text.strip())
        else:
            msgs = [{"role": "user", "content": text.strip()}] if text.strip() else []
    else:
        msgs = [{"role": m["role"], "content": m["content"].strip()} for m in _messages(value, key)]
        msgs = [m for m in msgs if m["content"]]
    if not msgs:
        raise RowError("empty_prompt", f"{key!r} is empty")
    if msgs[-1]["role"] != "user":
        raise RowError("prompt_not_user_last", f"{key!r} ends with a {msgs[-1]['role']!r} turn, not 'user'")
    return msgs


def _response(value: Any, key: str) -> str:
    """A response as a string, a ``{"content"}`` object or a message list (assistant or role-less
    contents joined by ``"\\n\\n"``, seed §3.4); stripped; empty ⇒ ``empty_response``."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, dict):
        if not isinstance(value.get("content"), str):
            raise RowError("bad_type", f"{key!r} object has no string 'content'")
        text = value["content"]
    elif isinstance(value, list):
        parts = []
        for i, m in enumerate(value):
            if not (isinstance(m, dict) and isinstance(m.get("content"), str)):
                raise RowError("bad_message", f"{key}[{i}] is not an object with string 'content'")
            if m.get("role", "assistant") == "assistant":
                parts.append(m["content"])
        text = "\n\n".join(parts)
    else:
        raise RowError("bad_type", f"{key!r} must be a string, an object or a message list")
    text = normalize_newlines(text).strip()
    if not text:
        raise RowError("empty_response", f"{key!r} is empty or whitespace-only")
    return text


def _assistant(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


# --- format → (prompt messages, chosen, rejected) ------------------------------------------------


def _hh_triple(record: dict) -> tuple[list[dict], str, str]:
    chosen, rejected = _field(record, "chosen"), _field(record, "rejected")
    if isinstance(chosen, list) and isinstance(rejected, list):
        return _implicit_conversational(chosen, rejected)
    if not isinstance(chosen, str) or not isinstance(rejected, str):
        raise RowError("bad_type", "'chosen' and 'rejected' must both be strings (HH transcripts)")
    try:
        triple, reason = split_hh_with_reason(chosen, rejected)
    except ValueError:
        raise RowError("no_assistant_tag") from None
    if triple is None:
        raise RowError(reason)
    return _prompt_messages(triple["prompt"]), _response(triple["chosen"], "chosen"), _response(
        triple["rejected"], "rejected"
    )


def _implicit_conversational(chosen: Any, rejected: Any) -> tuple[list[dict], str, str]:
    """Two full conversations: the prompt is the longest common message prefix (seed [v4] rule)."""
    c, r = _messages(chosen, "chosen"), _messages(rejected, "rejected")
    k = 0
    while k < min(len(c), len(r)) and c[k] == r[k]:
        k += 1
    if k == len(c) and k == len(r):
        # Identical conversations: split before the last turn so the pair is reported as identical.
        k = len(c) - 1
    c_tail, r_tail = c[k:], r[k:]
    if len(c_tail) != 1 or len(r_tail) != 1 or c_tail[0]["role"] != "assistant" or r_tail[0]["role"] != "assistant":
        raise RowError("prompt_mismatch", "chosen and rejected must differ in exactly one final assistant turn")
    if k == 0:
        raise RowError("empty_prompt")
    return _prompt_messages(c[:k]), _response(c_tail, "chosen"), _response(r_tail, "rejected")


def _pairs_triple(record: dict) -> tuple[list[dict], str, str]:
    prompt = _field(record, "prompt")
    if not isinstance(prompt, (str, list)):
        raise RowError("bad_type", "'prompt' must be a string or a message list")
    return (
        _prompt_messages(prompt),
        _response(_field(record, "chosen"), "chosen"),
        _response(_field(record, "rejected"), "rejected"),
    )


def _generated_prompt(record: dict) -> list[dict[str, str]]:
    """seed §3.4: keep user/assistant turns with non-empty stripped content; last must be user."""
    msgs = _messages(_field(record, "prompt_messages"), "prompt_messages")
    kept = [
        {"role": m["role"], "content": m["content"].strip()}
        for m in msgs
        if m["role"] in ("user", "assistant") and m["content"].strip()
    ]
    return _prompt_messages(kept, "prompt_messages")


def _generated_triple(record: dict) -> tuple[list[dict], str, str]:
    return (
        _generated_prompt(record),
        _response(_field(record, "chosen"), "chosen"),
        _response(_field(record, "rejected"), "rejected"),
    )


_TRIPLE = {"hh": _hh_triple, "pairs": _pairs_triple, "generated": _generated_triple}


# --- public --------------------------------------------------------------------------------------


def convert(record: Any, fmt: str, task: str) -> dict:
    """Convert one source record (``fmt`` in :data:`FORMATS`) to a row for ``task`` in :data:`TASKS`.

    Raises :class:`RowError` when the record is unusable (identical chosen/rejected included,
    reason ``identical_pair``), ``ValueError`` for an unknown format/task or a combination that
    cannot work (``messages`` data for preference training).
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown data format {fmt!r}; use one of {', '.join(FORMATS)}")
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; use one of {', '.join(TASKS)}")
    if not isinstance(record, dict):
        raise RowError("not_an_object")

    if fmt == "messages":
        msgs = _messages(_field(record, "messages"), "messages")
        if task == "preference":
            raise ValueError("'messages' data has no rejected responses; preference training needs hh, pairs or generated")
        if task == "prompts":
            ref = None
            if msgs and msgs[-1]["role"] == "assistant":
                ref = msgs.pop()["content"].strip() or None
            rid = record.get("id")
            return {
                "prompt": _prompt_messages(msgs, "messages"),
                "reference": ref,
                "id": rid if isinstance(rid, str) else None,
            }
        return {"messages": _sft_messages(msgs, "messages")}

    if task == "prompts":
        return _prompt_row(record, fmt)
    if task == "sft" and fmt == "hh":
        chosen = _field(record, "chosen")
        if isinstance(chosen, str):
            return {"messages": _sft_messages(parse_hh_to_messages(chosen), "chosen")}
        return {"messages": _sft_messages(_messages(chosen, "chosen"), "chosen")}

    prompt, chosen, rejected = _TRIPLE[fmt](record)
    if task == "sft":
        return {"messages": prompt + _assistant(chosen)}
    if chosen == rejected:
        raise RowError("identical_pair")
    return {"prompt": prompt, "chosen": _assistant(chosen), "rejected": _assistant(rejected)}


def _sft_messages(msgs: list[dict[str, str]], key: str) -> list[dict[str, str]]:
    if not msgs or msgs[-1]["role"] != "assistant" or not msgs[-1]["content"].strip():
        raise RowError("no_assistant_turn", f"{key!r} must end with a non-empty assistant turn")
    if not any(m["role"] != "assistant" and m["content"].strip() for m in msgs):
        raise RowError("empty_prompt", f"{key!r} has no non-assistant turn before the answer")
    return msgs


def _prompt_row(record: dict, fmt: str) -> dict:
    if fmt == "generated":
        prompt = _generated_prompt(record)
        ref = record.get("reference")
        if ref is None and isinstance(record.get("chosen"), (str, dict, list)):
            ref = record["chosen"]
    elif fmt == "pairs":
        prompt = _prompt_messages(_field(record, "prompt"))
        ref = record.get("chosen")
    else:  # hh: the chosen transcript without its final assistant turn
        chosen = _field(record, "chosen")
        if not isinstance(chosen, str):
            raise RowError("bad_type", "'chosen' must be an HH transcript string")
        msgs = parse_hh_to_messages(chosen)
        ref = msgs.pop()["content"] if msgs and msgs[-1]["role"] == "assistant" else None
        prompt = _prompt_messages(msgs, "chosen")
    try:
        reference = _response(ref, "reference") if ref is not None else None
    except RowError:
        reference = None
    rid = record.get("id")
    return {"prompt": prompt, "reference": reference, "id": rid if isinstance(rid, str) else None}
