"""The rollout pipeline (seed-spec §4): prompts → k candidates → reward-model judge → DPO pairs.

Files in ``output_dir`` (formats: seed-spec §3.5, plus the scores; docs/rollouts.md):

* ``rollout_responses.jsonl``: one line per prompt, ``{prompt_messages, responses, reference_responses}``.
* ``rollout_judged.jsonl``: one line per judged prompt, ``{prompt_messages, chosen, rejected, metadata}``
  with the seed's metadata fields plus ``scores`` (one per candidate, ``null`` for an empty one),
  ``chosen_index``, ``rejected_index`` and ``prompt_id``.  Loads as ``generated`` data for DPO.
* ``rollout_skipped.jsonl``: one line per prompt the judge skipped, ``{prompt_id, reason, scores}``
  (``reason``: ``tie`` = all scores equal, ``too_few`` = fewer than two non-empty candidates).
* ``rollout_debug.jsonl`` (optional): ``{prompt_messages, prompt_text, raw_responses,
  cleaned_responses, empty_indices}``.
* ``manifest.json``: the seed's fields, plus ``status`` and ``counts``.

Resume.  Every file is appended one whole line at a time (flushed after each batch, fsynced every
``flush_every_batches`` batches).  A prompt's id is a hash of its messages
(:func:`~dpo_sweep_worker.generate.prompt_id`); a rerun truncates a torn last line, skips prompts
whose id is already in the responses file, judges only prompts in neither the judged nor the
skipped file, and refuses to continue a directory made with other settings (model, seed, k,
sampling, data).  Candidates are seeded per prompt, so the resumed files equal an uninterrupted
run's, line for line.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from pathlib import Path
from typing import Any

from . import __version__, host
from .generate import SamplingParams, clean_response, make_generator, prompt_id
from .runtime import SpecError, quiet_libraries

log = logging.getLogger("dpo_sweep_worker.rollout")

RESPONSES = "rollout_responses.jsonl"
JUDGED = "rollout_judged.jsonl"
SKIPPED = "rollout_skipped.jsonl"
DEBUG = "rollout_debug.jsonl"
MANIFEST = "manifest.json"
SOURCE = "hh_rollout"

#: seed-spec §3.1: prompts whose messages still contain a turn tag are skipped.
_EMBEDDED_TAG = re.compile(r"(^|\n\n)(Human|Assistant):")
#: Settings that change what is generated; a directory made with other values is not continued.
GENERATION_KEYS = ("generator_model", "seed", "k_candidates", "generation_kwargs", "dataset_name", "subset", "engine")
JUDGE_KEYS = ("reward_model", "reward_quantization")
PROGRESS_EVERY_S = 1.0


# --- prompts ---------------------------------------------------------------------------------------


def _reference(value: Any) -> str | None:
    """A reference response from an HH transcript (its final assistant turn), a message list, a
    ``{content}`` object or a plain string; ``None`` when there is none."""
    from .data.hh import ASSISTANT_TAG, HUMAN_TAG, normalize_newlines, parse_hh_to_messages

    if value is None:
        return None
    if isinstance(value, str):
        text = normalize_newlines(value)
        if HUMAN_TAG in text or ASSISTANT_TAG in text:
            msgs = parse_hh_to_messages(text)
            return msgs[-1]["content"] if msgs and msgs[-1]["role"] == "assistant" else None
        return text.strip() or None
    if isinstance(value, dict):
        content = value.get("content")
        if not isinstance(content, str):
            return None
        return content.strip() or None
    if isinstance(value, list):
        parts = [m["content"] for m in value if isinstance(m, dict) and isinstance(m.get("content"), str) and m.get("role", "assistant") == "assistant"]
        return "\n\n".join(parts).strip() or None
    return None


def load_prompts(source: str, split: str = "train", fmt: str | None = None) -> tuple[list[dict], dict]:
    """Rollout prompts of a dataset: ``[{"id", "prompt_messages", "reference_responses"}]`` in file
    order, and ``{"records", "dropped": {reason: n}}``.

    Prompts come from ``load_rows(task="prompts")`` (any format; HH transcripts lose their final
    assistant turn, which becomes the chosen reference).  The rejected reference is the final
    assistant turn of the record's ``rejected`` (HH transcript, message list or string).  Dropped,
    and counted: prompts that still contain a ``Human:``/``Assistant:`` turn tag (seed-spec §3.1)
    and repeats of a prompt already listed (same messages ⇒ same id ⇒ same samples).
    """
    from .data import load_rows
    from .data.load import _is_local, _read_hub, _read_local

    result = load_rows(source, split, fmt, task="prompts")
    damaged = next((b for b in result.bad_rows if b["reason"] == "invalid_json"), None)
    if damaged is not None:
        # A line that is not JSON is a damaged file: dropping it quietly would lose a prompt.
        from .data import DataError

        raise DataError(f"{damaged['detail']}; fix or delete this line", source=source, line=damaged["line"])
    raw: dict[int, Any] = {}
    if result.fmt != "messages":
        local = _is_local(source) and not os.path.isdir(os.path.expanduser(source))
        raw = dict(_read_local(source, split) if local else _read_hub(source, split, None))
    dropped = dict(result.dropped)
    out: list[dict] = []
    seen: set[str] = set()
    for row, line in zip(result.rows, result.lines):
        messages = [{"role": m["role"], "content": m["content"]} for m in row["prompt"]]
        if any(_EMBEDDED_TAG.search(m["content"]) for m in messages):
            dropped["embedded_turn_tag"] = dropped.get("embedded_turn_tag", 0) + 1
            continue
        pid = prompt_id(messages)
        if pid in seen:
            dropped["duplicate_prompt"] = dropped.get("duplicate_prompt", 0) + 1
            continue
        seen.add(pid)
        record = raw.get(line)
        rejected = _reference(record.get("rejected")) if isinstance(record, dict) else None
        chosen = row.get("reference")
        if chosen is None and isinstance(record, dict):
            chosen = _reference(record.get("chosen"))
        out.append({"id": pid, "prompt_messages": messages, "reference_responses": {"chosen": chosen, "rejected": rejected}})
    return out, {"records": result.records, "format": result.fmt, "dropped": dropped}


# --- files -----------------------------------------------------------------------------------------


def read_lines(path: Path) -> list[dict]:
    """The records of an append-only JSONL file.  A torn last line (no newline: a crash mid-write)
    is cut off the file; a bad line elsewhere is an error."""
    if not path.exists():
        return []
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        keep = data.rfind(b"\n") + 1
        log.warning("%s: dropping a torn last line (%d bytes) left by an interrupted run", path, len(data) - keep)
        with open(path, "r+b") as f:
            f.truncate(keep)
        data = data[:keep]
    out = []
    for n, line in enumerate(data.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise SpecError(f"{path}:{n}: unreadable line ({e.msg}); this file is written whole lines at a time, so it was edited or damaged") from e
    return out


class Appender:
    """Whole-line appends; ``flush()`` after each batch, ``fsync`` every ``sync_every`` flushes."""

    def __init__(self, path: Path, sync_every: int = 1):
        self.path = path
        self.f = open(path, "a", encoding="utf-8")
        self.sync_every = max(1, sync_every)
        self.flushes = 0

    def write(self, record: dict) -> None:
        self.f.write(json.dumps(record, ensure_ascii=False) + "\n")

    def flush(self, force_sync: bool = False) -> None:
        self.f.flush()
        self.flushes += 1
        if force_sync or self.flushes % self.sync_every == 0:
            os.fsync(self.f.fileno())

    def close(self) -> None:
        if not self.f.closed:
            self.flush(force_sync=True)
            self.f.close()


def _write_json(path: Path, value: dict) -> None:
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


# --- settings --------------------------------------------------------------------------------------


class Settings:
    """The request, with the seed's defaults (seed-spec §2.1 ``rollout:``)."""

    def __init__(self, request: dict):
        r = request
        if not r.get("model"):
            raise SpecError("rollout needs model (the generator)")
        dataset = r.get("dataset") or {}
        if not dataset.get("source"):
            raise SpecError("rollout needs dataset.source (a JSON/JSONL file or a hub dataset id)")
        if not r.get("output_dir"):
            raise SpecError("rollout needs output_dir")
        self.model = r["model"]
        self.generator_model = r.get("generator_model") or r["model"]
        self.source = dataset["source"]
        self.dataset_name = dataset.get("name") or dataset["source"]
        self.split = dataset.get("split") or "train"
        self.format = dataset.get("format")
        self.output_dir = Path(r["output_dir"])
        self.cache_dir = r.get("cache_dir") or os.environ.get("DPO_SWEEP_CACHE") or str(Path.home() / ".cache" / "dpo-sweep")
        self.seed = int(r.get("seed", 42))
        self.params = SamplingParams(
            n=int(r.get("k", 8)),
            temperature=float(r.get("temperature", 0.7)),
            top_p=float(r.get("top_p", 0.9)),
            top_k=int(r.get("top_k") or 0),
            max_new_tokens=int(r.get("max_new_tokens", 512)),
            min_new_tokens=int(r.get("min_new_tokens", 10)),
            seed=self.seed,
        )
        self.engine = {"st": "hf", "transformers": "hf"}.get(str(r.get("engine") or "hf").lower(), str(r.get("engine") or "hf").lower())
        if self.engine not in ("hf", "vllm"):
            raise SpecError(f"unknown engine {r.get('engine')!r}; use hf (seed: st) or vllm")
        self.batch_size = int(r.get("vllm_batch_size") or 500) if self.engine == "vllm" else int(r.get("batch_size") or 4)
        self.gpu_memory_utilization = float(r.get("gpu_memory_utilization") or 0.9)
        self.limit = r.get("limit")
        self.precision = r.get("precision") or "auto"
        self.device_map = r.get("device_map")
        judge = r.get("judge", "rm")
        self.judge = judge not in (None, False, "none")
        if self.judge and str(judge).lower() not in ("rm", "reward", "pairrm"):
            raise SpecError(f"unknown judge {judge!r}; rm (also reward, pairrm) is the reward-model judge")
        self.reward_model = r.get("reward_model")
        if self.judge and not self.reward_model:
            raise SpecError("the rm judge needs reward_model (a sequence-classification model)")
        self.reward_model_name = r.get("reward_model_name") or self.reward_model
        from .reward import normalise_quantization

        self.reward_quantization = normalise_quantization(r.get("reward_quantization"), bool(r.get("reward_load_in_8bit")))
        self.reward_batch_size = int(r.get("reward_batch_size") or 4)
        self.reward_judge_batch_size = int(r.get("reward_judge_batch_size") or 1)
        self.reward_precision = r.get("reward_precision") or self.precision
        self.reward_device_map = r.get("reward_device_map")
        self.reward_max_length = r.get("reward_max_length")
        self.reward_trust_remote_code = bool(r.get("reward_trust_remote_code", False))
        self.debug_all = bool(r.get("debug_log_all", False))
        self.debug_empty_only = bool(r.get("debug_log_empty_only", True))
        self.debug_max = r.get("debug_log_max")
        self.debug_path = Path(r["debug_log_path"]) if r.get("debug_log_path") else self.output_dir / DEBUG
        self.flush_every = int(r.get("flush_every_batches") or 1)
        self.log_throughput = bool(r.get("log_throughput", True))
        self.pause_after_batch_s = float(r.get("pause_after_batch_s") or 0)
        #: Batches per write window (prompts are batched longest first within a window).
        self.window_batches = int(r.get("window_batches") or 8)

    @property
    def debug_enabled(self) -> bool:
        return self.debug_all or self.debug_empty_only

    def manifest(self) -> dict:
        """The seed's manifest fields (seed-spec §3.5)."""
        return {
            "dataset_name": self.dataset_name,
            "subset": self.split,
            "generation_kwargs": self.params.generation_kwargs(),
            "responses_file": str(self.output_dir / RESPONSES),
            "judged_file": str(self.output_dir / JUDGED),
            "debug_file": str(self.debug_path) if self.debug_enabled else None,
            "engine": self.engine,
            "source": SOURCE,
            "seed": self.seed,
            "k_candidates": self.params.n,
            "generator_model": self.generator_model,
            "judge": "rm" if self.judge else None,
            "reward_model": self.reward_model_name if self.judge else None,
            "reward_quantization": self.reward_quantization if self.judge else None,
        }


def _check_compatible(old: dict, new: dict, out: Path, judged_rows: int) -> None:
    keys = list(GENERATION_KEYS) + (list(JUDGE_KEYS) if judged_rows and new.get("judge") else [])
    diff = [k for k in keys if k in old and old.get(k) != new.get(k)]
    if diff:
        what = "; ".join(f"{k}: {json.dumps(old.get(k))} there, {json.dumps(new.get(k))} now" for k in diff)
        raise SpecError(f"{out} holds a rollout made with other settings ({what}); use another output_dir, or delete it to start over")


# --- the pipeline ----------------------------------------------------------------------------------


class _Progress:
    def __init__(self, phase: str, total: int, done: int):
        self.phase = phase
        self.total = total
        self.done = done
        self.tokens = 0
        self.started = time.perf_counter()
        self.last = 0.0

    def update(self, done: int, tokens: int = 0, force: bool = False) -> None:
        self.done = done
        self.tokens += tokens
        now = time.perf_counter()
        if not force and now - self.last < PROGRESS_EVERY_S:
            return
        self.last = now
        elapsed = max(now - self.started, 1e-9)
        event = {"kind": "rollout-progress", "phase": self.phase, "done": self.done, "total": self.total}
        if self.phase == "generate":
            event.update(tokens=self.tokens, tokens_per_s=self.tokens / elapsed)
        host.emit(event)


def run_rollout(request: dict) -> dict:
    """Generate, judge and write the rollout files; see the module docstring.  Returns counts and
    ``status`` (``complete``, or ``interrupted`` after a stop request)."""
    quiet_libraries()
    s = Settings(request)
    out = s.output_dir
    blocker = next((d for d in (out, *out.parents) if d.exists() and not d.is_dir()), None)
    if blocker is not None:
        raise SpecError(f"output_dir {out}: {blocker} is a file, not a folder; use another output_dir")
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / MANIFEST
    fresh = s.manifest()

    responses_path, judged_path, skipped_path = out / RESPONSES, out / JUDGED, out / SKIPPED
    done_lines = read_lines(responses_path)
    judged_lines = read_lines(judged_path)
    skipped_lines = read_lines(skipped_path)
    if manifest_path.exists():
        try:
            old = json.loads(manifest_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            old = {}
        if done_lines or judged_lines or skipped_lines:
            _check_compatible(old, fresh, out, len(judged_lines) + len(skipped_lines))
    elif done_lines:
        raise SpecError(f"{responses_path} exists without {MANIFEST}: cannot tell what made it; use another output_dir")

    prompts, load_stats = load_prompts(s.source, s.split, s.format)
    if s.limit is not None:
        prompts = prompts[: int(s.limit)]
    done_ids = {prompt_id(line["prompt_messages"]) for line in done_lines}
    pending = [p for p in prompts if p["id"] not in done_ids]
    total = len(done_ids | {p["id"] for p in prompts})
    if pending and s.judge:
        # The reward model is loaded after generation: a wrong path must fail now, not after it.
        from .reward import resolve_reward_model

        resolve_reward_model(s.reward_model, s.cache_dir)
    manifest = {**fresh, "status": "generating", "dpo_sweep_version": __version__, "seeding": "per candidate: sha256(seed, prompt, index)", "counts": {}}
    _write_json(manifest_path, manifest)

    status = "complete"
    gen_stats = {"generated": 0, "tokens": 0, "seconds": 0.0}
    if pending:
        status = _generate(s, pending, done=len(done_ids), total=total, stats=gen_stats)
        done_lines = read_lines(responses_path)

    judge_stats = {"judged_now": 0}
    if status == "complete" and s.judge:
        status = _judge(s, done_lines, judged_lines, skipped_lines, judge_stats)

    counts = _counts(out, load_stats, len(prompts))
    manifest.update(status="complete" if status == "complete" else "interrupted", counts=counts)
    _write_json(manifest_path, manifest)
    tps = gen_stats["tokens"] / gen_stats["seconds"] if gen_stats["seconds"] > 0 else None
    return {
        "status": status,
        "output_dir": str(out),
        "files": {"responses": str(responses_path), "judged": str(judged_path), "skipped": str(skipped_path), "manifest": str(manifest_path), "debug": fresh["debug_file"]},
        "generated_now": gen_stats["generated"],
        "tokens_now": gen_stats["tokens"],
        "tokens_per_s": tps,
        "judged_now": judge_stats["judged_now"],
        **counts,
    }


def _generate(s: Settings, pending: list[dict], *, done: int, total: int, stats: dict) -> str:
    gen = make_generator(
        s.engine, s.model, cache_dir=s.cache_dir, precision=s.precision, device_map=s.device_map,
        model_name=s.generator_model, gpu_memory_utilization=s.gpu_memory_utilization, seed=s.seed,
    )
    writer = Appender(s.output_dir / RESPONSES, s.flush_every)
    debug = None
    debug_rows = len(read_lines(s.debug_path)) if s.debug_enabled else 0
    if s.debug_enabled:
        s.debug_path.parent.mkdir(parents=True, exist_ok=True)
        debug = Appender(s.debug_path, s.flush_every)
    progress = _Progress("generate", total, done)
    progress.update(done, 0, force=True)
    count = done
    in_window = 0
    stopped = False

    def on_batch(_indices, samples, batch_stats) -> None:
        nonlocal in_window, stopped
        in_window += len(samples)
        stats["tokens"] += batch_stats.tokens
        stats["seconds"] += batch_stats.seconds
        if s.log_throughput:
            print(f"rollout: {count + in_window}/{total} prompts; batch of {batch_stats.prompts}: {batch_stats.tokens} tokens in {batch_stats.seconds:.2f} s ({batch_stats.tokens / max(batch_stats.seconds, 1e-9):.1f} tokens/s)", flush=True)
        progress.update(count + in_window, batch_stats.tokens)
        if s.pause_after_batch_s:
            time.sleep(s.pause_after_batch_s)
        stopped = host.stop_requested()

    # Windows of `window_batches` batches: within a window prompts are batched longest first (less
    # padding); lines are written in file order at the window's end, so the file is always the
    # prompts' order whatever the batching (after a stop request: the window's finished prefix).
    window = max(1, s.batch_size) * max(1, s.window_batches)
    try:
        for wstart in range(0, len(pending), window):
            if stopped:
                break
            chunk = pending[wstart : wstart + window]
            in_window = 0
            results = gen.generate([p["prompt_messages"] for p in chunk], s.params, batch_size=s.batch_size, on_batch=on_batch, should_stop=lambda: stopped)
            for item, group in zip(chunk, results):
                if group is None:
                    break
                cleaned = [x.text for x in group]
                writer.write({"prompt_messages": item["prompt_messages"], "responses": cleaned, "reference_responses": item["reference_responses"]})
                empty = [i for i, t in enumerate(cleaned) if not t.strip()]
                if debug is not None and (s.debug_all or empty) and (s.debug_max is None or debug_rows < int(s.debug_max)):
                    debug.write({
                        "prompt_messages": item["prompt_messages"],
                        "prompt_text": gen.render(item["prompt_messages"])[0],
                        "raw_responses": [x.raw for x in group],
                        "cleaned_responses": cleaned,
                        "empty_indices": empty,
                    })
                    debug_rows += 1
                count += 1
                stats["generated"] += 1
            writer.flush()
            if debug is not None:
                debug.flush()
            in_window = 0
            progress.update(count, 0, force=True)
    finally:
        writer.close()
        if debug is not None:
            debug.close()
        gen.close()
    progress.update(count, 0, force=True)
    return "interrupted" if count < total else "complete"


def _judge(s: Settings, lines: list[dict], judged: list[dict], skipped: list[dict], stats: dict) -> str:
    """Judge the prompts of the responses file in chunks of ``reward_judge_batch_size`` prompts, the
    chunks fixed by position in that file.  A chunk is redone whole when a crash left it partly
    written (its lines are removed first), so every score comes from the same batch as in an
    uninterrupted run, to the last bit."""
    from .reward import RewardModel, judge_many

    ids = [prompt_id(line["prompt_messages"]) for line in lines]
    judged_ids = [line.get("metadata", {}).get("prompt_id") or prompt_id(line["prompt_messages"]) for line in judged]
    skipped_ids = [line["prompt_id"] for line in skipped]
    finished = set(judged_ids) | set(skipped_ids)
    chunk = max(1, s.reward_judge_batch_size)
    chunks = [list(range(i, min(i + chunk, len(lines)))) for i in range(0, len(lines), chunk)]
    todo = [c for c in chunks if not all(ids[k] in finished for k in c)]
    partial = {ids[k] for c in todo for k in c if ids[k] in finished}
    if partial:
        log.warning("redoing %d judged prompts of chunks an interrupted run left incomplete", len(partial))
        _rewrite(s.output_dir / JUDGED, [line for line, pid in zip(judged, judged_ids) if pid not in partial])
        _rewrite(s.output_dir / SKIPPED, [line for line, pid in zip(skipped, skipped_ids) if pid not in partial])
    progress = _Progress("judge", len(lines), len(lines) - sum(len(c) for c in todo))
    progress.update(progress.done, force=True)
    if not todo:
        return "complete"
    rm = RewardModel(
        s.reward_model, cache_dir=s.cache_dir, precision=s.reward_precision, quantization=s.reward_quantization,
        device_map=s.reward_device_map, max_length=s.reward_max_length, trust_remote_code=s.reward_trust_remote_code,
    )
    judged_out = Appender(s.output_dir / JUDGED, s.flush_every)
    skipped_out = Appender(s.output_dir / SKIPPED, s.flush_every)
    done = progress.done
    try:
        for c in todo:
            if host.stop_requested():
                return "interrupted"
            part = [lines[k] for k in c]
            pids = [ids[k] for k in c]
            verdicts = judge_many(rm, [(line["prompt_messages"], line["responses"], pid) for line, pid in zip(part, pids)], seed=s.seed, batch_size=s.reward_batch_size)
            for line, pid, v in zip(part, pids, verdicts):
                if v.skip is not None:
                    skipped_out.write({"prompt_id": pid, "reason": v.skip, "scores": v.scores, "empty": v.empty})
                    continue
                judged_out.write({
                    "prompt_messages": line["prompt_messages"],
                    "chosen": [{"role": "assistant", "content": line["responses"][v.chosen]}],
                    "rejected": [{"role": "assistant", "content": line["responses"][v.rejected]}],
                    "metadata": {
                        "source": SOURCE,
                        "seed": s.seed,
                        "k_candidates": s.params.n,
                        "generator_model": s.generator_model,
                        "judge": "rm",
                        "reward_model": s.reward_model_name,
                        "reward_quantization": s.reward_quantization,
                        "reference_responses": line.get("reference_responses"),
                        "scores": v.scores,
                        "chosen_index": v.chosen,
                        "rejected_index": v.rejected,
                        "prompt_id": pid,
                    },
                })
                stats["judged_now"] += 1
            judged_out.flush()
            skipped_out.flush()
            done += len(part)
            progress.update(done, force=done >= len(lines))
            if s.pause_after_batch_s:
                time.sleep(s.pause_after_batch_s)
    finally:
        judged_out.close()
        skipped_out.close()
        rm.close()
    return "complete"


def _rewrite(path: Path, records: list[dict]) -> None:
    """Replace an append-only file by *records* in one step (temporary file, fsync, rename)."""
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _counts(out: Path, load_stats: dict, selected: int) -> dict:
    responses = read_lines(out / RESPONSES)
    judged = read_lines(out / JUDGED)
    skipped = read_lines(out / SKIPPED)
    reasons: dict[str, int] = {}
    for line in skipped:
        reasons[line["reason"]] = reasons.get(line["reason"], 0) + 1
    judged_or_skipped = {line["metadata"]["prompt_id"] for line in judged if "prompt_id" in line.get("metadata", {})} | {line["prompt_id"] for line in skipped}
    empty = sum(1 for line in responses if prompt_id(line["prompt_messages"]) in judged_or_skipped for t in line["responses"] if not t.strip())
    return {
        "source_records": load_stats["records"],
        "source_format": load_stats["format"],
        "prompts_dropped": load_stats["dropped"],
        "prompts_selected": selected,
        "prompts_generated": len(responses),
        "judged": len(judged),
        "skipped_ties": reasons.get("tie", 0),
        "skipped_too_few": reasons.get("too_few", 0),
        "dropped_empty": empty,
    }


__all__ = ["run_rollout", "load_prompts", "read_lines", "clean_response"]
