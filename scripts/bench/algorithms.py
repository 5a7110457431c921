"""Step time of the worker's preference trainers against TRL's own sigmoid DPO, on the tiny Llama.

Run with the worker's venv (the zx wrapper `scripts/bench/algorithms.mjs` does this and writes the
result into docs/BENCHMARKS.md):

    .venv/bin/python scripts/bench/algorithms.py [--rounds 7] [--steps 30] [--threads 1] [--json out.json]

Configurations, all on the same tiny Llama, the same 256 preference rows in the same order, batch 8,
max_length 128, fp32 on CPU:

* ``trl-sigmoid`` — `trl.DPOTrainer`, loss_type sigmoid (the baseline);
* ``dpo`` — the worker's `SweepDPOTrainer` for plain dpo (TRL's loss + margin capture + margin logs);
* ``beta-dpo`` and ``dynamic-beta-dpo`` — the worker's trainers with their controllers (default
  hyper-parameters; dynamic β warm-up 5 updates so that most steps take the adaptive branch), margin
  logs included.

Each round trains every configuration once, in an order rotated from round to round, in this one
process (timings on shared machines vary between processes). A configuration's step time in a round
is the median wall time between consecutive optimizer steps, skipping the first `--skip` steps
(warm-up); the process CPU time of the same steps is reported beside it (with one torch thread it is
much less sensitive to other work on a shared machine). Reported: per configuration the median over
rounds; per adaptive configuration the median [min–max] over rounds of the paired ratio (its step
time / trl-sigmoid's step time in the same round), for wall and for CPU time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "py"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CONFIGS = ("trl-sigmoid", "dpo", "beta-dpo", "dynamic-beta-dpo")


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
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--skip", type=int, default=3, help="warm-up steps left out of each median")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1 = least noisy)")
    ap.add_argument("--rows", type=int, default=256)
    ap.add_argument("--json", help="write the results here as JSON")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    import transformers
    import trl
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import DPOConfig, DPOTrainer

    from dpo_sweep_worker.data import load_rows
    from dpo_sweep_worker.runtime import quiet_libraries
    from dpo_sweep_worker.tiny import ensure_tiny
    from dpo_sweep_worker.trainers import make_trainer

    quiet_libraries()
    transformers.logging.set_verbosity_error()
    work = Path(tempfile.mkdtemp(prefix="bench-algorithms-"))
    model_dir = ensure_tiny(work / "models")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rows = load_rows(ROOT / "configs" / "data" / "prefs-hh.jsonl", f"train[:{args.rows}]").rows
    dataset = Dataset.from_list(rows)

    class StepClock(TrainerCallback):
        def __init__(self):
            self.times: list[tuple[float, float]] = []  # (wall, process CPU) at each optimizer step's end

        def on_step_end(self, a, state, control, **kw):
            self.times.append((time.perf_counter(), time.process_time()))

    settings = {
        "beta": 0.1,
        "loss_type": ["sigmoid"],
        "update_on": "optimizer_step",
        "beta_dpo": {"alpha": 0.6, "momentum": 0.9, "keep_ratio": 0.8, "min_beta": 1e-3, "eps": 1e-6},
        "dynamic_beta": {"delta": 0.1, "ema_lambda": 0.1, "warmup": 5, "alpha": 0.005, "gamma": 2.0, "beta_min": 0.01, "beta_max": 2.0},
        "margin_log": {"sample_size": 64},
        "training": {"seed": 42},
    }

    def one(config: str, round_dir: Path) -> tuple[float, float]:
        cfg = DPOConfig(
            output_dir=str(round_dir / "out"), loss_type=["sigmoid"], beta=0.1, max_length=128,
            per_device_train_batch_size=8, max_steps=args.steps, learning_rate=1e-4, lr_scheduler_type="constant",
            seed=42, logging_steps=10, report_to="none", save_strategy="no", disable_tqdm=True, use_cpu=True,
            bf16=False, gradient_checkpointing=False, dataloader_num_workers=0, precompute_ref_log_probs=False,
        )
        kwargs = dict(
            model=AutoModelForCausalLM.from_pretrained(model_dir), ref_model=AutoModelForCausalLM.from_pretrained(model_dir),
            args=cfg, train_dataset=dataset, processing_class=tokenizer,
        )
        if config == "trl-sigmoid":
            trainer = DPOTrainer(**kwargs)
        else:
            trainer, _ = make_trainer({**settings, "algorithm": config}, run_dir=round_dir, **kwargs)
        clock = StepClock()
        trainer.add_callback(clock)
        trainer.train()
        kept = clock.times[args.skip :]
        wall = [b[0] - a[0] for a, b in zip(kept, kept[1:])]
        cpu = [b[1] - a[1] for a, b in zip(kept, kept[1:])]
        return statistics.median(wall), statistics.median(cpu)

    per_config: dict[str, list[float]] = {c: [] for c in CONFIGS}
    per_config_cpu: dict[str, list[float]] = {c: [] for c in CONFIGS}
    started = time.time()
    for r in range(args.rounds):
        order = CONFIGS[r % len(CONFIGS) :] + CONFIGS[: r % len(CONFIGS)]
        for config in order:
            wall, cpu = one(config, work / f"r{r}-{config}")
            per_config[config].append(wall)
            per_config_cpu[config].append(cpu)
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{c} {per_config[c][-1] * 1000:.1f} ms (CPU {per_config_cpu[c][-1] * 1000:.1f})" for c in CONFIGS), file=sys.stderr)

    base, base_cpu = per_config["trl-sigmoid"], per_config_cpu["trl-sigmoid"]
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} CPUs ({cpu_model()}), Python {platform.python_version()}",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__},
        "threads": args.threads,
        "rounds": args.rounds,
        "steps": args.steps,
        "skip": args.skip,
        "rows": len(rows),
        "batch_size": 8,
        "max_length": 128,
        "wall_s": round(time.time() - started, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "configs": {},
    }
    for config in CONFIGS:
        times, cpu = per_config[config], per_config_cpu[config]
        entry = {"median_ms": statistics.median(times) * 1000, "min_ms": min(times) * 1000, "max_ms": max(times) * 1000,
                 "steps_per_s": 1.0 / statistics.median(times), "rounds_ms": [t * 1000 for t in times],
                 "cpu_median_ms": statistics.median(cpu) * 1000, "cpu_rounds_ms": [t * 1000 for t in cpu]}
        if config != "trl-sigmoid":
            ratios = [t / b for t, b in zip(times, base)]
            entry.update(ratio_median=statistics.median(ratios), ratio_min=min(ratios), ratio_max=max(ratios))
            cpu_ratios = [t / b for t, b in zip(cpu, base_cpu)]
            entry.update(cpu_ratio_median=statistics.median(cpu_ratios), cpu_ratio_min=min(cpu_ratios), cpu_ratio_max=max(cpu_ratios))
        result["configs"][config] = entry
    text = json.dumps(result, indent=2)
    if args.json:
        Path(args.json).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
