"""load_rows: every format from a tiny file, slicing, bad rows with line numbers, fatal errors."""

from __future__ import annotations

import json

import pytest

from dpo_sweep_worker.data import DataError, load_rows, slice_indices, train_eval_split
from dpo_sweep_worker.data.split import SplitSpecError

P = "\n\nHuman: What is 1 + 1?\n\nAssistant:"
U = [{"role": "user", "content": "What is 1 + 1?"}]


def a(text):
    return [{"role": "assistant", "content": text}]


def write_jsonl(path, records):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


# --- formats -------------------------------------------------------------------------------------


def test_hh_to_conversational_preference(tmp_path):
    multi = "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: What is 1 + 1?\n\nAssistant:"
    f = write_jsonl(
        tmp_path / "hh.jsonl",
        [
            {"chosen": P + " Answer: 2.", "rejected": P + " Answer: 3."},
            {"chosen": multi + " Answer: 2.", "rejected": multi + " 2"},
        ],
    )
    r = load_rows(f, "train")
    assert r.fmt == "hh" and r.task == "preference" and r.records == 2
    assert r.rows[0] == {"prompt": U, "chosen": a("Answer: 2."), "rejected": a("Answer: 3.")}
    assert r.rows[1]["prompt"] == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "What is 1 + 1?"},
    ]
    assert r.lines == [1, 2] and r.dropped == {} and r.bad_rows == []


def test_pairs_plain_and_hh_prompt_strings_and_message_lists(tmp_path):
    f = write_jsonl(
        tmp_path / "pairs.jsonl",
        [
            {"prompt": "What is 1 + 1?", "chosen": " Answer: 2. ", "rejected": "Answer: 3."},
            {"prompt": P, "chosen": "Answer: 2.", "rejected": "3"},
            {"prompt": U, "chosen": a("Answer: 2."), "rejected": {"content": "3"}},
        ],
    )
    r = load_rows(f, "train")
    assert r.fmt == "pairs"
    assert [row["prompt"] for row in r.rows] == [U, U, U]
    assert r.rows[0]["chosen"] == a("Answer: 2.")  # stripped
    assert r.rows[2]["rejected"] == a("3")


def test_generated_rows_follow_seed_rules(tmp_path):
    f = write_jsonl(
        tmp_path / "gen.jsonl",
        [
            {
                "prompt_messages": [
                    {"role": "system", "content": "be nice"},  # dropped (§3.4)
                    {"role": "user", "content": "  "},  # empty: dropped
                    {"role": "user", "content": "What is 1 + 1?"},
                ],
                "chosen": a("Answer: 2."),
                "rejected": a("Answer: 3."),
                "metadata": {"source": "hh_rollout"},
            },
            {"prompt_messages": U + a("x"), "chosen": a("y"), "rejected": a("z")},  # ends with assistant
        ],
    )
    r = load_rows(f, "train", "generated")
    assert r.rows == [{"prompt": U, "chosen": a("Answer: 2."), "rejected": a("Answer: 3.")}]
    assert r.bad_rows == [{"line": 2, "reason": "prompt_not_user_last", "detail": r.bad_rows[0]["detail"]}]


def test_implicit_conversational_pairs_split_at_common_prefix(tmp_path):
    f = write_jsonl(tmp_path / "imp.jsonl", [{"chosen": U + a("Answer: 2."), "rejected": U + a("Answer: 3.")}])
    r = load_rows(f, "train")
    assert r.rows == [{"prompt": U, "chosen": a("Answer: 2."), "rejected": a("Answer: 3.")}]


def test_messages_for_sft_and_refused_for_preference(tmp_path):
    f = write_jsonl(tmp_path / "sft.jsonl", [{"messages": U + a("Answer: 2.")}, {"messages": U}])
    r = load_rows(f, "train", task="sft")
    assert r.fmt == "messages" and r.rows == [{"messages": U + a("Answer: 2.")}]
    assert r.bad_rows[0]["line"] == 2 and r.bad_rows[0]["reason"] == "no_assistant_turn"
    with pytest.raises(DataError, match="rejected"):
        load_rows(f, "train", task="preference")


def test_sft_rows_from_preference_formats(tmp_path):
    hh = write_jsonl(tmp_path / "hh.jsonl", [{"chosen": P + " Answer: 2.", "rejected": P + " no"}])
    assert load_rows(hh, task="sft").rows == [{"messages": U + a("Answer: 2.")}]
    pairs = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "What is 1 + 1?", "chosen": "Answer: 2.", "rejected": "no"}])
    assert load_rows(pairs, task="sft").rows == [{"messages": U + a("Answer: 2.")}]


def test_prompts_task(tmp_path):
    f = write_jsonl(tmp_path / "e.jsonl", [{"id": "e1", "prompt_messages": U, "reference": "Answer: 2."}])
    assert load_rows(f, task="prompts").rows == [{"prompt": U, "reference": "Answer: 2.", "id": "e1"}]
    hh = write_jsonl(tmp_path / "hh.jsonl", [{"chosen": P + " Answer: 2.", "rejected": P + " no"}])
    assert load_rows(hh, task="prompts").rows == [{"prompt": U, "reference": "Answer: 2.", "id": None}]


def test_json_array_file(tmp_path):
    f = tmp_path / "d.json"
    f.write_text(json.dumps([{"chosen": P + " A", "rejected": P + " B"}, {"chosen": "no tag", "rejected": "x"}]))
    r = load_rows(f, "train")
    assert len(r.rows) == 1 and r.bad_rows[0]["line"] == 2 and r.bad_rows[0]["reason"] == "no_assistant_tag"


# --- bad rows --------------------------------------------------------------------------------------


def test_bad_rows_are_counted_with_line_numbers(tmp_path):
    good = {"chosen": P + " Answer: 2.", "rejected": P + " Answer: 3."}
    f = write_jsonl(
        tmp_path / "mixed.jsonl",
        [
            good,  # line 1
            "{not json",  # line 2
            "",  # line 3: blank, not a record
            {"chosen": P + " A"},  # line 4: missing rejected
            {"chosen": "\n\nHuman: no tag", "rejected": "\n\nHuman: no tag"},  # line 5
            {"chosen": P + " A", "rejected": "\n\nHuman: other\n\nAssistant: B"},  # line 6
            {"chosen": P + "   ", "rejected": P + " B"},  # line 7: whitespace-only
            {"chosen": P + " Same", "rejected": P + " Same "},  # line 8: identical after strip
            [1, 2],  # line 9: not an object
            {"chosen": 3, "rejected": P},  # line 10: bad type
            good,  # line 11
        ],
    )
    r = load_rows(f, "train")
    assert r.records == 10  # the blank line is not a record
    assert r.lines == [1, 11]
    assert [(b["line"], b["reason"]) for b in r.bad_rows] == [
        (2, "invalid_json"),
        (4, "missing_field"),
        (5, "no_assistant_tag"),
        (6, "prompt_mismatch"),
        (7, "empty_response"),
        (9, "not_an_object"),
        (10, "bad_type"),
    ]
    assert r.dropped == {
        "invalid_json": 1,
        "missing_field": 1,
        "no_assistant_tag": 1,
        "prompt_mismatch": 1,
        "empty_response": 1,
        "identical_pair": 1,
        "not_an_object": 1,
        "bad_type": 1,
    }
    assert len(r.rows) + sum(r.dropped.values()) == r.records
    assert "rejected" in r.bad_rows[1]["detail"]
    s = r.summary()
    assert s["rows"] == 2 and s["dropped"]["identical_pair"] == 1 and json.dumps(s)


# --- fatal errors ------------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found") as e:
        load_rows(tmp_path / "nope.jsonl")
    assert str(tmp_path / "nope.jsonl") in str(e.value)
    assert isinstance(e.value, ValueError)


def test_unknown_and_undetectable_format(tmp_path):
    f = write_jsonl(tmp_path / "x.jsonl", ["garbage", {"text": "hello"}])
    with pytest.raises(DataError, match="unknown data format"):
        load_rows(f, fmt="alpaca")
    with pytest.raises(DataError, match=r"x\.jsonl:2: cannot detect"):
        load_rows(f)


def test_empty_after_filtering_names_file_and_reasons(tmp_path):
    f = write_jsonl(tmp_path / "bad.jsonl", [{"chosen": "no tag", "rejected": "no tag"}, {"chosen": P + " A", "rejected": P + " A"}])
    with pytest.raises(DataError) as e:
        load_rows(f)
    msg = str(e.value)
    assert "bad.jsonl" in msg and "no usable rows" in msg and "line 1" in msg and "chosen equals rejected: 1" in msg


def test_invalid_json_array_file_names_line(tmp_path):
    f = tmp_path / "d.json"
    f.write_text('[{"chosen": "a",\n "rejected": }]')
    with pytest.raises(DataError, match=r"d\.json:2: invalid JSON"):
        load_rows(f)


def test_split_errors(tmp_path):
    f = write_jsonl(tmp_path / "hh.jsonl", [{"chosen": P + " A", "rejected": P + " B"}])
    with pytest.raises(DataError, match="one split"):
        load_rows(f, "test")
    with pytest.raises(DataError, match="cannot parse split"):
        load_rows(f, "train[::2]")
    with pytest.raises(DataError, match="selects no records"):
        load_rows(f, "train[5:]")


# --- slicing -----------------------------------------------------------------------------------------


def test_slicing_local_file(tmp_path):
    f = write_jsonl(tmp_path / "hh.jsonl", [{"chosen": P + f" A{i}", "rejected": P + " B"} for i in range(50)])
    assert load_rows(f, "train[10:20]").lines == list(range(11, 21))
    assert load_rows(f, "train[:2%]").lines == [1]
    assert load_rows(f, "train[90%:]").lines == list(range(46, 51))
    assert load_rows(f, "train[-3:]").lines == [48, 49, 50]
    assert load_rows(f, "train[:2]+train[-1:]").lines == [1, 2, 50]
    assert len(load_rows(f, "train").rows) == 50


SPECS = ["train", "train[:1%]", "train[10:20]", "train[90%:]", "train[-7:]", "train[:-3]", "train[33%:67%]",
         "train[1_0:2_0]", "train[:5]+train[-5:]", "train[5%:10]", "train[200:]", "train[:0]", "train[20:10]",
         "train[:100%]", "train[-10%:]", "train[:50%](pct1_dropremainder)"]


@pytest.mark.parametrize("n", [0, 1, 7, 99, 100, 250, 1001])
def test_slice_indices_match_datasets(n):
    from datasets import ReadInstruction

    for spec in SPECS:
        if "pct1" in spec and n < 100:
            with pytest.raises(SplitSpecError):
                slice_indices(spec, n)
            continue
        expected = []
        for abs_instr in ReadInstruction.from_spec(spec).to_absolute({"train": n}):
            expected.extend(range(abs_instr.from_, abs_instr.to))
        assert slice_indices(spec, n) == expected, (spec, n)


# --- train/eval split ----------------------------------------------------------------------------


def test_train_eval_split_is_deterministic_partition():
    rows = list(range(100))
    tr, ev = train_eval_split(rows, 0.1, seed=3)
    assert len(ev) == 10 and len(tr) == 90
    assert sorted(tr + ev) == rows and tr == sorted(tr) and ev == sorted(ev)
    assert train_eval_split(rows, 0.1, seed=3) == (tr, ev)
    assert train_eval_split(rows, 0.1, seed=4)[1] != ev
    assert train_eval_split(rows, 0.0, seed=0) == (rows, [])
    assert train_eval_split([1, 2, 3], 0.01, seed=0)[1] != []  # at least one eval row
    with pytest.raises(ValueError):
        train_eval_split(rows, 1.0, seed=0)
    with pytest.raises(ValueError):
        train_eval_split([1], 0.5, seed=0)


def test_split_docstring_examples():
    import doctest

    from dpo_sweep_worker.data import split

    assert doctest.testmod(split).failed == 0


def test_dataset_directory_goes_through_datasets(tmp_path):
    d = tmp_path / "ds"
    d.mkdir()
    write_jsonl(d / "train.jsonl", [{"chosen": P + f" A{i}", "rejected": P + " B"} for i in range(10)])
    r = load_rows(d, "train[:30%]")
    assert r.fmt == "hh" and len(r.rows) == 3 and r.lines == [1, 2, 3]


def test_unknown_hub_id_is_a_data_error_offline():
    with pytest.raises(DataError, match="cannot load dataset"):
        load_rows("no-such-owner/no-such-dataset-xyz", "train")


# --- encodings, line ends and files that are not JSONL ---------------------------------------------


PAIR = {"prompt": "What is 1 + 1?", "chosen": "2", "rejected": "3"}


def test_utf8_bom_keeps_the_first_record(tmp_path):
    line = json.dumps(PAIR).encode()
    f = tmp_path / "bom.jsonl"
    f.write_bytes(b"\xef\xbb\xbf" + line + b"\n" + line + b"\n")
    r = load_rows(f)
    assert r.lines == [1, 2] and r.dropped == {}
    j = tmp_path / "bom.json"
    j.write_bytes(b"\xef\xbb\xbf[" + line + b"]")
    assert len(load_rows(j).rows) == 1


def test_crlf_line_ends_and_unescaped_line_separators(tmp_path):
    f = tmp_path / "crlf.jsonl"
    odd = dict(PAIR, chosen="2\u2028two")  # U+2028 may stand unescaped inside a JSON string
    f.write_bytes((json.dumps(PAIR) + "\r\n" + json.dumps(odd, ensure_ascii=False) + "\r\n").encode())
    r = load_rows(f)
    assert r.lines == [1, 2] and r.dropped == {}
    assert r.rows[1]["chosen"][0]["content"] == "2\u2028two"


def test_a_file_that_is_not_utf8_names_line_and_column(tmp_path):
    f = tmp_path / "latin1.jsonl"
    f.write_bytes(json.dumps(PAIR).encode() + b"\n" + '{"prompt": "caf\xe9"}\n'.encode("latin-1"))
    with pytest.raises(DataError) as e:
        load_rows(f)
    assert str(e.value) == f"{f}:2: not UTF-8 text: byte 0xe9 at column 16 cannot be decoded; save the file as UTF-8"
    u16 = tmp_path / "u16.jsonl"
    u16.write_bytes((json.dumps(PAIR) + "\n").encode("utf-16"))
    with pytest.raises(DataError, match=r"u16\.jsonl:1: .*UTF-16 byte-order mark"):
        load_rows(u16)


@pytest.mark.parametrize("content", ["", "\n  \n", "[]"])
def test_an_empty_file_says_so(tmp_path, content):
    f = tmp_path / ("e.json" if content == "[]" else "e.jsonl")
    f.write_text(content)
    with pytest.raises(DataError) as e:
        load_rows(f, "train[:10]")
    assert str(e.value) == f"{f}: the file holds no records (it is empty, blank lines only, or an empty JSON array)"


def test_a_json_array_in_a_jsonl_file_gets_a_hint_and_the_first_problems(tmp_path):
    f = tmp_path / "arr.jsonl"
    f.write_text("[" + json.dumps(PAIR) + ",\n" + json.dumps(PAIR) + "]\n")
    with pytest.raises(DataError) as e:
        load_rows(f)
    msg = str(e.value)
    assert msg.startswith(f"{f}: no record is a JSON object")
    assert "a JSON array or an indented object belongs in a .json file" in msg
    assert "line 1: invalid JSON: " in msg and "line 2: invalid JSON: Extra data" in msg
    g = write_jsonl(tmp_path / "scalars.jsonl", ['"text"', "[1]"])
    with pytest.raises(DataError, match="line 1: a JSON string, not an object; line 2: a JSON array, not an object"):
        load_rows(g)
