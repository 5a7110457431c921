"""HH-RLHF parsing: seed-spec §3.1, case by case."""

from __future__ import annotations

import pytest

from dpo_sweep_worker.data import messages_to_hh, parse_hh_to_messages, split_hh
from dpo_sweep_worker.data.hh import split_hh_with_reason

P = "\n\nHuman: How are you?\n\nAssistant:"


def test_split_keeps_leading_space_and_prompt_ends_with_tag():
    out = split_hh(P + " Fine, thanks.", P + " Go away.")
    assert out == {"prompt": P, "chosen": " Fine, thanks.", "rejected": " Go away."}
    assert out["prompt"].startswith("\n\nHuman:") and out["prompt"].endswith("\n\nAssistant:")


def test_split_uses_last_assistant_tag():
    prompt = "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: 2+2?\n\nAssistant:"
    out = split_hh(prompt + " 4", prompt + " 5")
    assert out["prompt"] == prompt
    assert (out["chosen"], out["rejected"]) == (" 4", " 5")


def test_split_strips_exactly_one_leading_newline():
    out = split_hh(P + "\n\nFine", P + "\nBad")
    assert out["chosen"] == "\nFine"  # only one "\n" removed
    assert out["rejected"] == "Bad"


def test_split_normalises_crlf_and_cr():
    chosen = P.replace("\n", "\r\n") + " Fine"
    rejected = P.replace("\n", "\r") + " Bad"
    assert split_hh(chosen, rejected) == {"prompt": P, "chosen": " Fine", "rejected": " Bad"}


def test_split_without_assistant_tag_raises():
    with pytest.raises(ValueError, match="Assistant"):
        split_hh("\n\nHuman: hello there", "\n\nHuman: hello there")


def test_split_drops_rejected_not_sharing_prompt():
    assert split_hh(P + " Fine", "\n\nHuman: Something else?\n\nAssistant: Bad") is None
    assert split_hh_with_reason(P + " Fine", "\n\nHuman: x\n\nAssistant: y") == (None, "prompt_mismatch")


@pytest.mark.parametrize("chosen_resp, rejected_resp", [(" ", " Bad"), (" Fine", "\n \t"), ("", " Bad")])
def test_split_drops_whitespace_only_responses(chosen_resp, rejected_resp):
    assert split_hh(P + chosen_resp, P + rejected_resp) is None
    assert split_hh_with_reason(P + chosen_resp, P + rejected_resp)[1] == "empty_response"


def test_split_keeps_identical_responses():
    # §3.1 step 5: identical pairs are not removed by split_hh (the loader counts and drops them).
    assert split_hh(P + " Same", P + " Same") == {"prompt": P, "chosen": " Same", "rejected": " Same"}


def test_parse_messages_basic():
    text = "\n\nHuman: Hi there\n\nAssistant: Hello!\n\nHuman: Bye\n\nAssistant:"
    assert parse_hh_to_messages(text) == [
        {"role": "user", "content": "Hi there"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Bye"},
    ]


def test_parse_messages_prefixes_missing_newlines_and_normalises():
    assert parse_hh_to_messages("Human: Hi\r\n\r\nAssistant:  Yo ") == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Yo"},
    ]


def test_parse_messages_removes_one_leading_newline_then_strips():
    assert parse_hh_to_messages("\n\nHuman:\nline one\nline two  ") == [
        {"role": "user", "content": "line one\nline two"}
    ]


def test_parse_messages_keeps_consecutive_same_role_and_skips_empty():
    text = "\n\nHuman: a\n\nHuman: b\n\nAssistant:   \n\nAssistant: c"
    assert parse_hh_to_messages(text) == [
        {"role": "user", "content": "a"},
        {"role": "user", "content": "b"},
        {"role": "assistant", "content": "c"},
    ]


def test_parse_messages_text_before_first_tag_is_ignored():
    # "preamble" is prefixed with "\n\n" but matches no tag, so it is the discarded head of the split.
    assert parse_hh_to_messages("preamble\n\nHuman: q") == [{"role": "user", "content": "q"}]


def test_messages_to_hh_round_trip():
    msgs = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}, {"role": "user", "content": "Q"}]
    text = messages_to_hh(msgs, add_generation_prompt=True)
    assert text == "\n\nHuman: Hi\n\nAssistant: Yo\n\nHuman: Q\n\nAssistant:"
    assert parse_hh_to_messages(text) == msgs
    with pytest.raises(ValueError):
        messages_to_hh([{"role": "system", "content": "x"}])
