"""Anthropic HH-RLHF transcripts: prompt/response extraction and message parsing (seed-spec §3.1).

An HH transcript is ``"\\n\\nHuman: …\\n\\nAssistant: …\\n\\nHuman: …\\n\\nAssistant: <final>"``.
Both functions are pure string code (no third-party imports) and follow the seed rules exactly, so
data prepared by the seed and by this package agree row for row.
"""

from __future__ import annotations

import re

ASSISTANT_TAG = "\n\nAssistant:"
HUMAN_TAG = "\n\nHuman:"

_TURN_RE = re.compile(r"\n\n(Human|Assistant): ?")
_ROLE = {"Human": "user", "Assistant": "assistant"}


def normalize_newlines(text: str) -> str:
    """``\\r\\n`` and lone ``\\r`` become ``\\n``."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _strip_one_newline(text: str) -> str:
    return text[1:] if text.startswith("\n") else text


def split_hh(chosen: str, rejected: str) -> dict[str, str] | None:
    """Split an HH pair into ``{"prompt", "chosen", "rejected"}`` strings (seed ``build_HH_dataset``).

    1. ``\\r\\n``/``\\r`` → ``\\n`` (the seed normalises *chosen* only; *rejected* is normalised
       too here, so a CRLF file does not lose every row at step 3).
    2. The prompt is *chosen* up to and including its **last** ``"\\n\\nAssistant:"``; the chosen
       response is the rest with at most one leading ``\\n`` removed.  The leading space is kept:
       ``" Fine, thanks."``.
    3. *rejected* must start with the prompt, else the row is dropped (``None``); the rejected
       response is the rest minus one leading ``\\n``.
    4. The row is dropped (``None``) when the prompt or either response is whitespace-only.

    Identical chosen/rejected responses are returned as is (callers count and drop them).

    Raises:
        ValueError: *chosen* contains no ``"\\n\\nAssistant:"`` tag.
    """
    triple, _reason = split_hh_with_reason(chosen, rejected)
    return triple


def split_hh_with_reason(chosen: str, rejected: str) -> tuple[dict[str, str] | None, str | None]:
    """:func:`split_hh` plus why a row was dropped: ``(triple, None)`` or ``(None, reason)``.

    ``reason`` is ``"prompt_mismatch"`` (rejected does not start with the prompt),
    ``"empty_prompt"`` or ``"empty_response"``.  Raises ``ValueError`` like :func:`split_hh`.
    """
    chosen = normalize_newlines(chosen)
    rejected = normalize_newlines(rejected)
    idx = chosen.rfind(ASSISTANT_TAG)
    if idx < 0:
        raise ValueError('chosen transcript has no "\\n\\nAssistant:" tag')
    end = idx + len(ASSISTANT_TAG)
    prompt = chosen[:end]
    chosen_resp = _strip_one_newline(chosen[end:])
    if not rejected.startswith(prompt):
        return None, "prompt_mismatch"
    rejected_resp = _strip_one_newline(rejected[len(prompt) :])
    if not prompt.strip():
        return None, "empty_prompt"
    if not chosen_resp.strip() or not rejected_resp.strip():
        return None, "empty_response"
    return {"prompt": prompt, "chosen": chosen_resp, "rejected": rejected_resp}, None


def parse_hh_to_messages(text: str) -> list[dict[str, str]]:
    """Parse an HH transcript into ``[{"role": "user"|"assistant", "content": str}, …]`` (seed §3.1).

    Newlines are normalised; text that does not start with ``"\\n\\nHuman:"`` or
    ``"\\n\\nAssistant:"`` gets ``"\\n\\n"`` prefixed; the text is split on
    ``\\n\\n(Human|Assistant): ?`` (one optional space eaten); each content loses one leading
    ``\\n`` and is stripped; empty contents are skipped (so a trailing ``"\\n\\nAssistant:"`` adds no
    message).  Consecutive turns with the same role are kept as they are.  Text before the first tag
    is discarded.
    """
    text = normalize_newlines(text)
    if not (text.startswith(HUMAN_TAG) or text.startswith(ASSISTANT_TAG)):
        text = "\n\n" + text
    parts = _TURN_RE.split(text)
    # parts = [before, tag1, content1, tag2, content2, …]
    messages: list[dict[str, str]] = []
    for tag, content in zip(parts[1::2], parts[2::2]):
        content = _strip_one_newline(content).strip()
        if content:
            messages.append({"role": _ROLE[tag], "content": content})
    return messages


def messages_to_hh(messages: list[dict[str, str]], *, add_generation_prompt: bool = False) -> str:
    """Inverse of :func:`parse_hh_to_messages` for user/assistant turns (seed §3.4 prompt string).

    ``"\\n\\nHuman: " + content`` / ``"\\n\\nAssistant: " + content`` per message, then
    ``"\\n\\nAssistant:"`` when *add_generation_prompt*.  Other roles raise ``ValueError``.
    """
    out = []
    for m in messages:
        if m["role"] == "user":
            out.append("\n\nHuman: " + m["content"])
        elif m["role"] == "assistant":
            out.append("\n\nAssistant: " + m["content"])
        else:
            raise ValueError(f"HH transcripts have no {m['role']!r} role")
    if add_generation_prompt:
        out.append(ASSISTANT_TAG)
    return "".join(out)
