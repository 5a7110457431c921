"""The rollout pipeline on the tiny model and the tiny reward model: prompt extraction, the seed's file
formats field by field (plus scores), determinism, resume after SIGKILL (line-for-line equal to an
uninterrupted run), judging rules inside the pipeline (ties, empties), refusing a directory made with other
settings, and the judged file training a DPO run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dpo_sweep_worker import facade
from dpo_sweep_worker.data import load_rows
from dpo_sweep_worker.generate import prompt_id
from dpo_sweep_worker.reward import ensure_tiny_reward
from dpo_sweep_worker.rollout import JUDGED, MANIFEST, RESPONSES, SKIPPED, load_prompts, read_lines
from dpo_sweep_worker.runtime import SpecError

REPO = Path(__file__).resolve().parents[2]
PREFS = str(REPO / "configs" / "data" / "prefs-hh.jsonl")
SEED_MANIFEST_FIELDS = {
    "dataset_name", "subset", "generation_kwargs", "responses_file", "judged_file", "debug_file", "engine", "source", "seed",
    "k_candidates", "generator_model", "judge", "reward_model", "reward_quantization",
}
SEED_METADATA_FIELDS = {"source", "seed", "k_candidates", "generator_model", "judge", "reward_model", "reward_quantization", "reference_responses"}


def request(out, cache, **over) -> dict:
    r = {
        "model": "builtin:tiny-llama", "generator_model": "builtin:tiny-llama",
        "dataset": {"source": PREFS, "split": "train", "name": "synthetic-hh"},
        "output_dir": str(out), "cache_dir": cache, "seed": 42, "k": 3, "temperature": 1.0, "top_p": 0.9,
        "max_new_tokens": 10, "min_new_tokens": 2, "batch_size": 3, "limit": 6,
        "judge": "rm", "reward_model": "builtin:tiny-reward", "reward_batch_size": 4, "reward_judge_batch_size": 2,
        "reward_quantization": "none", "debug_log_empty_only": True,
    }
    r.update(over)
    return r


@pytest.fixture(scope="module")
def cache(worker_cache) -> str:
    ensure_tiny_reward(Path(worker_cache) / "models")
    return worker_cache


@pytest.fixture(scope="module")
def full(tmp_path_factory, cache):
    out = tmp_path_factory.mktemp("rollout")
    events: list[dict] = []
    from dpo_sweep_worker import host

    previous = host._emit
    host._emit = lambda text: events.append(json.loads(text))
    try:
        result = facade.rollout(request(out, cache))
    finally:
        host._emit = previous
    return out, result, events


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else ""


# --- prompts -------------------------------------------------------------------------------------------


def test_prompt_extraction_references_tags_and_duplicates(tmp_path):
    hh = tmp_path / "hh.jsonl"
    rows = [
        {"chosen": "\n\nHuman: Hi?\n\nAssistant: Hello.", "rejected": "\n\nHuman: Hi?\n\nAssistant: Go away."},
        {"chosen": "\n\nHuman: Hi?\n\nAssistant: Hey.", "rejected": "\n\nHuman: Hi?\n\nAssistant: No."},  # same prompt
        {"chosen": "\n\nHuman: Human: twice\n\nAssistant: ok", "rejected": "\n\nHuman: Human: twice\n\nAssistant: no"},
        {"chosen": "\n\nHuman: A\n\nAssistant: B\n\nHuman: C?\n\nAssistant: D", "rejected": "\n\nHuman: A\n\nAssistant: B\n\nHuman: C?\n\nAssistant: E"},
    ]
    hh.write_text("".join(json.dumps(r) + "\n" for r in rows))
    prompts, stats = load_prompts(str(hh))
    assert stats["dropped"] == {"duplicate_prompt": 1, "embedded_turn_tag": 1} and stats["records"] == 4
    assert prompts[0] == {"id": prompt_id([{"role": "user", "content": "Hi?"}]), "prompt_messages": [{"role": "user", "content": "Hi?"}],
                          "reference_responses": {"chosen": "Hello.", "rejected": "Go away."}}
    assert [m["role"] for m in prompts[1]["prompt_messages"]] == ["user", "assistant", "user"]
    assert prompts[1]["reference_responses"] == {"chosen": "D", "rejected": "E"}
    # Message data: the final assistant turn is the chosen reference, there is no rejected one.
    msgs = tmp_path / "m.jsonl"
    msgs.write_text(json.dumps({"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]}) + "\n")
    prompts, _ = load_prompts(str(msgs))
    assert prompts[0]["reference_responses"] == {"chosen": "A", "rejected": None}


# --- formats ---------------------------------------------------------------------------------------------


def test_files_have_the_seed_formats_plus_scores(full):
    out, result, events = full
    responses = read_lines(out / RESPONSES)
    judged = read_lines(out / JUDGED)
    skipped = read_lines(out / SKIPPED)
    assert result["status"] == "complete" and result["prompts_generated"] == len(responses) == 6
    assert result["judged"] == len(judged) and len(judged) + len(skipped) == 6
    for line in responses:
        assert set(line) == {"prompt_messages", "responses", "reference_responses"}
        assert line["prompt_messages"][-1]["role"] == "user" and all(set(m) == {"role", "content"} for m in line["prompt_messages"])
        assert len(line["responses"]) == 3 and all(isinstance(t, str) and t == t.strip() for t in line["responses"])
        assert set(line["reference_responses"]) == {"chosen", "rejected"}
    assert responses[0]["reference_responses"] == {"chosen": "Starting from 81, minus 2 gives 79. Answer: 79.", "rejected": "81 - 2 = 79. Answer: 79"}
    by_id = {prompt_id(line["prompt_messages"]): line for line in responses}
    for row in judged:
        assert set(row) == {"prompt_messages", "chosen", "rejected", "metadata"}
        meta = row["metadata"]
        assert set(meta) == SEED_METADATA_FIELDS | {"scores", "chosen_index", "rejected_index", "prompt_id"}
        assert (meta["source"], meta["seed"], meta["k_candidates"], meta["judge"], meta["reward_quantization"]) == ("hh_rollout", 42, 3, "rm", "none")
        assert meta["generator_model"] == "builtin:tiny-llama" and meta["reward_model"] == "builtin:tiny-reward"
        src = by_id[meta["prompt_id"]]
        assert row["prompt_messages"] == src["prompt_messages"] and meta["reference_responses"] == src["reference_responses"]
        scores = meta["scores"]
        assert len(scores) == 3 and meta["chosen_index"] != meta["rejected_index"]
        valid = [s for s in scores if s is not None]
        assert scores[meta["chosen_index"]] == max(valid) and scores[meta["rejected_index"]] == min(valid)
        assert row["chosen"] == [{"role": "assistant", "content": src["responses"][meta["chosen_index"]]}]
        assert row["rejected"] == [{"role": "assistant", "content": src["responses"][meta["rejected_index"]]}]
        assert row["chosen"] != row["rejected"]
    manifest = json.loads((out / MANIFEST).read_text())
    assert SEED_MANIFEST_FIELDS <= set(manifest)
    assert manifest["generation_kwargs"] == {"do_sample": True, "temperature": 1.0, "top_p": 0.9, "top_k": 0, "max_new_tokens": 10, "min_new_tokens": 2}
    assert (manifest["source"], manifest["engine"], manifest["status"], manifest["dataset_name"], manifest["subset"]) == ("hh_rollout", "hf", "complete", "synthetic-hh", "train")
    assert manifest["counts"]["judged"] == len(judged) and manifest["counts"]["prompts_generated"] == 6
    assert {"skipped_ties", "skipped_too_few", "dropped_empty"} <= set(manifest["counts"])
    gen = [e for e in events if e["phase"] == "generate"]
    assert gen[-1]["done"] == gen[-1]["total"] == 6 and gen[-1]["tokens"] > 0 and gen[-1]["tokens_per_s"] > 0
    assert all(e["kind"] == "rollout-progress" for e in events) and any(e["phase"] == "judge" for e in events)


def test_same_seed_same_files_other_seed_other_samples(full, cache, tmp_path):
    out, _, _ = full
    again = facade.rollout(request(tmp_path / "a", cache, batch_size=6))
    assert again["status"] == "complete"
    for name in (RESPONSES, JUDGED, SKIPPED):
        assert _text(tmp_path / "a" / name) == _text(out / name), name
    other = facade.rollout(request(tmp_path / "b", cache, seed=43, judge=None))
    assert other["judged"] == 0
    a = [line["responses"] for line in read_lines(out / RESPONSES)]
    b = [line["responses"] for line in read_lines(tmp_path / "b" / RESPONSES)]
    assert a != b and len(b) == len(a)


def test_rerun_of_a_finished_rollout_does_nothing(full, cache):
    out, _, _ = full
    before = {name: _text(out / name) for name in (RESPONSES, JUDGED, SKIPPED)}
    res = facade.rollout(request(out, cache))
    assert (res["generated_now"], res["judged_now"], res["status"]) == (0, 0, "complete")
    assert {name: _text(out / name) for name in before} == before


def test_resume_after_sigkill_equals_an_uninterrupted_run(full, cache, tmp_path):
    out, _, _ = full
    target = tmp_path / "killed"
    req = request(target, cache, batch_size=1, window_batches=1, pause_after_batch_s=0.4)
    env = {**os.environ, "PYTHONPATH": str(REPO / "py"), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    code = "import json, sys; from dpo_sweep_worker.rollout import run_rollout; run_rollout(json.loads(sys.argv[1]))"
    child = subprocess.Popen([sys.executable, "-c", code, json.dumps(req)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 90
        while time.time() < deadline and len(_text(target / RESPONSES).splitlines()) < 2:
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    first = _text(target / RESPONSES).splitlines()
    assert 2 <= len(first) < 6, "the kill should land mid-generation"
    assert not (target / JUDGED).exists() or _text(target / JUDGED) == ""
    with open(target / RESPONSES, "a") as f:
        f.write('{"prompt_messages": [{"role": "us')  # a torn line, as a crash mid-write leaves
    res = facade.rollout(request(target, cache))
    assert res["status"] == "complete" and res["generated_now"] == 6 - len(first)
    for name in (RESPONSES, JUDGED, SKIPPED):
        assert _text(target / name).splitlines() == _text(out / name).splitlines(), name


def test_a_stop_request_keeps_the_file_a_prefix_in_prompt_order(full, cache, tmp_path, monkeypatch):
    from dpo_sweep_worker import host

    out, _, _ = full
    target = tmp_path / "stopped"
    batches = {"n": 0}

    def stop_after_two() -> bool:
        batches["n"] += 1
        return batches["n"] >= 2

    monkeypatch.setattr(host, "stop_requested", stop_after_two)
    res = facade.rollout(request(target, cache, batch_size=1, window_batches=4))
    assert res["status"] == "interrupted" and res["judged_now"] == 0
    lines = _text(target / RESPONSES).splitlines()
    assert lines == _text(out / RESPONSES).splitlines()[: len(lines)] and len(lines) < 6
    assert json.loads((target / MANIFEST).read_text())["status"] == "interrupted"
    monkeypatch.undo()
    res = facade.rollout(request(target, cache, batch_size=2, window_batches=2))
    assert res["status"] == "complete"
    for name in (RESPONSES, JUDGED, SKIPPED):
        assert _text(target / name).splitlines() == _text(out / name).splitlines(), name


def test_a_judging_chunk_left_half_written_is_redone_whole(full, cache, tmp_path):
    out, _, _ = full
    target = tmp_path / "half"
    shutil.copytree(out, target)
    judged = _text(target / JUDGED).splitlines(keepends=True)
    assert len(judged) >= 2
    # A crash in the middle of the last chunk's lines: one whole line kept, then a torn one.
    (target / JUDGED).write_text("".join(judged[:-1]) + judged[-1][:40])
    res = facade.rollout(request(target, cache))
    assert res["generated_now"] == 0 and 1 <= res["judged_now"] <= 2
    for name in (RESPONSES, JUDGED, SKIPPED):
        assert _text(target / name).splitlines() == _text(out / name).splitlines(), name


def test_ties_and_empties_inside_the_pipeline(full, cache, tmp_path):
    out, _, _ = full
    target = tmp_path / "crafted"
    shutil.copytree(out, target)
    for name in (JUDGED, SKIPPED):
        (target / name).unlink(missing_ok=True)
    lines = read_lines(target / RESPONSES)
    crafted = [["", " ", ""], ["Answer: 79.", "Answer: 79.", "Answer: 79."], ["Answer: 79.", "", "Sorry."], ["only one", "", ""]]
    for line, responses in zip(lines, crafted):
        line["responses"] = responses
    (target / RESPONSES).write_text("".join(json.dumps(line) + "\n" for line in lines))
    res = facade.rollout(request(target, cache))
    assert (res["generated_now"], res["skipped_too_few"], res["skipped_ties"]) == (0, 2, 1)
    assert res["dropped_empty"] == 3 + 0 + 1 + 2 + sum(t == "" for line in lines[4:] for t in line["responses"])
    judged = read_lines(target / JUDGED)
    third = next(r for r in judged if r["metadata"]["prompt_id"] == prompt_id(lines[2]["prompt_messages"]))
    assert third["chosen"][0]["content"] == "Answer: 79." and third["rejected"][0]["content"] == "Sorry."
    assert third["metadata"]["scores"][1] is None
    skipped = {r["prompt_id"]: r for r in read_lines(target / SKIPPED)}
    assert skipped[prompt_id(lines[1]["prompt_messages"])]["reason"] == "tie"
    manifest = json.loads((target / MANIFEST).read_text())
    assert (manifest["counts"]["skipped_ties"], manifest["counts"]["skipped_too_few"]) == (1, 2)


def test_a_directory_made_with_other_settings_is_refused(full, cache):
    out, _, _ = full
    with pytest.raises(SpecError, match="temperature"):
        facade.rollout(request(out, cache, temperature=0.5))
    with pytest.raises(SpecError, match="engine vllm needs the vllm package"):
        import importlib.util

        if importlib.util.find_spec("vllm") is not None:
            pytest.skip("vllm installed")
        facade.rollout(request(out.parent / "vllm", cache, engine="vllm"))


def test_judged_file_loads_as_generated_data_and_trains_dpo(full, cache, tmp_path):
    import _train_utils as u

    out, _, _ = full
    loaded = load_rows(str(out / JUDGED), fmt="generated")
    assert len(loaded.rows) == len(read_lines(out / JUDGED)) >= 2 and not loaded.dropped
    row = loaded.rows[0]
    assert row["prompt"][-1]["role"] == "user" and row["chosen"][0]["role"] == "assistant"
    settings = u.settings(
        dataset={"path": str(out / JUDGED), "split": "train", "format": "generated", "limit": 8},
        training={"max_steps": 2, "batch_size": 2},
    )
    outcome, _events = u.run(settings, tmp_path / "run", cache)
    assert outcome["status"] == "succeeded" and outcome["step"] == 2


# --- bad inputs ------------------------------------------------------------------------------------------


def test_bad_inputs_fail_before_generation_with_what_and_where(cache, tmp_path):
    from dpo_sweep_worker.data import DataError

    rows = [json.loads(line) for line in Path(PREFS).read_text().splitlines()[:3]]
    damaged = tmp_path / "damaged.jsonl"
    damaged.write_text(json.dumps(rows[0]) + "\n\n" + '{"chosen": oops}\n' + json.dumps(rows[1]) + "\n")
    out = tmp_path / "out"
    # A line that is not JSON (line 3; the blank line 2 is fine) is an error, not a silently lost prompt.
    with pytest.raises(DataError, match=r"damaged\.jsonl:3: invalid JSON"):
        facade.rollout(request(out, cache, dataset={"source": str(damaged), "split": "train", "name": "d"}))
    assert not (out / RESPONSES).exists()

    # A reward model that is not there fails before any prompt is generated (not after all of them).
    with pytest.raises(SpecError, match="model directory not found: /no/such/rm"):
        facade.rollout(request(out, cache, reward_model="/no/such/rm"))
    assert not (out / RESPONSES).exists() and not (out / MANIFEST).exists()

    # output_dir that is a file, or below one.
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    for target in (afile, afile / "sub"):
        with pytest.raises(SpecError, match="is a file, not a folder"):
            facade.rollout(request(target, cache))
    assert afile.read_text() == "keep me"


def test_k_1_writes_responses_and_skips_every_prompt_as_too_few(cache, tmp_path):
    res = facade.rollout(request(tmp_path / "k1", cache, k=1, limit=2))
    assert res["status"] == "complete" and res["prompts_generated"] == 2
    assert (res["judged"], res["skipped_too_few"]) == (0, 2)
    assert read_lines(tmp_path / "k1" / JUDGED) == []
    assert all(len(line["responses"]) == 1 for line in read_lines(tmp_path / "k1" / RESPONSES))
