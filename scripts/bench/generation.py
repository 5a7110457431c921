"""Batched vs one-prompt-at-a-time generation on CPU: tokens/s of the worker's sampler.

Run with the worker's venv (the zx wrapper `scripts/bench/generation.mjs` does this and writes the
result into docs/BENCHMARKS.md):

    .venv/bin/python scripts/bench/generation.py [--rounds 5] [--prompts 64] [--k 4] [--batch 32]
        [--max-new-tokens 64] [--model builtin:tiny-llama] [--threads 1] [--json out.json]

The workload is the rollout's: the first ``--prompts`` prompts of ``configs/data/prefs-hh.jsonl``
(HH conversations, chat-templated), ``--k`` candidates each, the seed's sampling settings
(temperature 0.8, top-p 0.9), ``--max-new-tokens`` new tokens (the random tiny model rarely says
end-of-turn, so nearly every row runs to the limit).

* ``batched``: ``--batch`` prompts per ``model.generate`` call (``batch × k`` rows, left-padded),
  longest prompts first (the worker's default);
* ``batched-file-order``: the same in file order (shows what the length sorting adds);
* ``single``: one prompt per call (``k`` rows), the seed's HF path with ``batch_size: 1``.

All three produce the same samples (seeding is per prompt and candidate); the script checks it
every round.  Rounds rotate which side goes first; tokens/s = generated tokens (up to and including
a stop token) / wall time of the ``generate`` calls (also per CPU second of this process, which a
busy shared machine disturbs less).  Reported: the medians and the median of the per-round ratio
batched / single.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "py"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--model", default="builtin:tiny-llama")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cache-dir", default=os.environ.get("DPO_SWEEP_CACHE") or str(Path.home() / ".cache" / "dpo-sweep"))
    ap.add_argument("--json")
    args = ap.parse_args()

    import torch
    import transformers

    torch.set_num_threads(args.threads)
    from dpo_sweep_worker.generate import Generator, SamplingParams
    from dpo_sweep_worker.rollout import load_prompts

    started = time.perf_counter()
    prompts = [p["prompt_messages"] for p in load_prompts(str(ROOT / "configs/data/prefs-hh.jsonl"))[0][: args.prompts]]
    gen = Generator(args.model, cache_dir=args.cache_dir)
    params = SamplingParams(n=args.k, temperature=0.8, top_p=0.9, max_new_tokens=args.max_new_tokens, min_new_tokens=0, seed=42)
    params_m = sum(p.numel() for p in gen.model.parameters())
    prompt_tokens = [len(gen.render(p)[1]) for p in prompts]
    gen.generate(prompts[:2], params, batch_size=2)  # warm-up

    sides = {"batched": (args.batch, True), "batched-file-order": (args.batch, False), "single": (1, False)}

    def timed(batch: int, sort: bool):
        t0, c0 = time.perf_counter(), time.process_time()
        samples = gen.generate(prompts, params, batch_size=batch, sort_by_length=sort)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        tokens = sum(len(s.token_ids) for g in samples for s in g)
        return {"tps": tokens / dt, "cpu_tps": tokens / dc, "s": dt, "tokens": tokens, "ids": [[s.token_ids for s in g] for g in samples]}

    names = list(sides)
    rounds = []
    for r in range(args.rounds):
        order = names[r % len(names):] + names[: r % len(names)]  # rotate who goes first
        res = {name: timed(*sides[name]) for name in order}
        same = res["batched"]["ids"] == res["single"]["ids"] == res["batched-file-order"]["ids"]
        row = {name: {k: v for k, v in res[name].items() if k != "ids"} for name in names}
        row["ratio"] = res["batched"]["tps"] / res["single"]["tps"]
        row["cpu_ratio"] = res["batched"]["cpu_tps"] / res["single"]["cpu_tps"]
        row["identical"] = same
        rounds.append(row)
        print(f"round {r + 1}: batched {res['batched']['tps']:.0f} tok/s, file order {res['batched-file-order']['tps']:.0f} tok/s, "
              f"single {res['single']['tps']:.0f} tok/s; ratio {row['ratio']:.2f} (CPU time {row['cpu_ratio']:.2f}); identical samples: {same}",
              file=sys.stderr, flush=True)

    med = statistics.median
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} CPUs ({cpu_model()}), Python {platform.python_version()}",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "model": args.model,
        "parameters": params_m,
        "threads": args.threads,
        "prompts": len(prompts),
        "prompt_tokens": [min(prompt_tokens), max(prompt_tokens)],
        "k": args.k,
        "batch": args.batch,
        "max_new_tokens": args.max_new_tokens,
        "rounds": rounds,
        "sides": {
            name: {
                "tps": med(r[name]["tps"] for r in rounds),
                "cpu_tps": med(r[name]["cpu_tps"] for r in rounds),
                "s": med(r[name]["s"] for r in rounds),
            }
            for name in names
        },
        "tokens": rounds[0]["batched"]["tokens"],
        "ratio_median": med(r["ratio"] for r in rounds),
        "ratio_min": min(r["ratio"] for r in rounds),
        "ratio_max": max(r["ratio"] for r in rounds),
        "cpu_ratio_median": med(r["cpu_ratio"] for r in rounds),
        "file_order_ratio_median": med(r["batched-file-order"]["tps"] / r["single"]["tps"] for r in rounds),
        "all_identical": all(r["identical"] for r in rounds),
        "wall_s": time.perf_counter() - started,
    }
    text = json.dumps(result, indent=2)
    if args.json:
        Path(args.json).write_text(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
