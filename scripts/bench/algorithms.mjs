#!/usr/bin/env zx
// Step time of β-DPO, dynamic-β and the worker's plain dpo against TRL's sigmoid DPO (target ratio ≤ 1.05),
// measured by scripts/bench/algorithms.py with the worker's venv; writes the `algorithms` section of
// docs/BENCHMARKS.md.
//   npx zx scripts/bench/algorithms.mjs [--rounds 7] [--steps 30] [--threads 1] [--python .venv/bin/python]
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { $, argv } from 'zx';
import { load, root, today, updateSection } from './lib.mjs';

const python = argv.python ?? process.env.DPO_SWEEP_PYTHON ?? join(root, '.venv/bin/python');
const rounds = Number(argv.rounds ?? 7);
const steps = Number(argv.steps ?? 30);
const threads = Number(argv.threads ?? 1);
const out = join(mkdtempSync(join(tmpdir(), 'bench-algorithms-')), 'result.json');

$.verbose = false;
$.quiet = true; // progress comes through the filter below
const run = $`${python} ${join(root, 'scripts/bench/algorithms.py')} --rounds ${rounds} --steps ${steps} --threads ${threads} --json ${out}`;
run.stderr.on('data', (chunk) => process.stderr.write(chunk.toString().split('\n').filter((l) => l.startsWith('round')).map((l) => `${l}\n`).join('')));
await run;
const r = JSON.parse(readFileSync(out, 'utf8'));

const TARGET = 1.05;
const f = (x, d = 1) => x.toFixed(d);
const range = (m, lo, hi) => (m === undefined ? '1 (baseline)' : `${f(m, 3)} [${f(lo, 3)}–${f(hi, 3)}]`);
const rows = Object.entries(r.configs).map(([name, c]) => {
  const verdict = c.ratio_median === undefined || name === 'dpo' ? '' : c.ratio_median <= TARGET ? 'PASS' : 'FAIL';
  return `| ${name} | ${f(c.median_ms)} | ${f(c.min_ms)} | ${f(c.max_ms)} | ${f(c.steps_per_s, 2)} | ${range(c.ratio_median, c.ratio_min, c.ratio_max)} | ${verdict} | ${f(c.cpu_median_ms)} | ${range(c.cpu_ratio_median, c.cpu_ratio_min, c.cpu_ratio_max)} |`;
});
const adaptive = ['beta-dpo', 'dynamic-beta-dpo'].map((n) => `${n} ${f(r.configs[n].ratio_median, 3)}×`).join(', ');
const pass = ['beta-dpo', 'dynamic-beta-dpo'].every((n) => r.configs[n].ratio_median <= TARGET);

updateSection(
  'algorithms',
  `
## Preference trainers: step time against TRL's sigmoid DPO

\`npx zx scripts/bench/algorithms.mjs --rounds ${r.rounds} --steps ${r.steps} --threads ${r.threads}\` — ${r.date ?? today()}, ${r.machine}, torch ${r.versions.torch}, transformers ${r.versions.transformers}, TRL ${r.versions.trl}, ${r.threads} torch thread(s), load average after the run ${load()}, ${f(r.wall_s, 0)} s in all.

Tiny Llama (0.79M parameters), ${r.rows} preference rows of \`configs/data/prefs-hh.jsonl\` in the same order for every configuration, batch ${r.batch_size}, max_length ${r.max_length}, fp32 on CPU, reference = a separate copy of the policy. ${r.rounds} rounds in one process, each training every configuration for ${r.steps} optimizer steps in a rotated order; a configuration's step time in a round is the median time between consecutive optimizer steps after the first ${r.skip}. Ratio = step time / \`trl.DPOTrainer\` step time in the same round, median [min–max] over rounds; the CPU columns are the process CPU time of the same steps (with one torch thread, much less sensitive to other work on the machine than wall time). \`dpo\`, \`beta-dpo\` and \`dynamic-beta-dpo\` are the worker's \`SweepDPOTrainer\` with margin logs (a JSONL record and a \`.npy\` per step) and, for the adaptive ones, their controllers (β-DPO defaults; dynamic β with warm-up 5 updates, so most steps take the adaptive branch).

| configuration | median step (ms) | min (ms) | max (ms) | steps/s | ratio vs trl-sigmoid | target ≤ ${TARGET} | CPU per step (ms) | CPU ratio |
|---|---|---|---|---|---|---|---|---|
${rows.join('\n')}

**${adaptive} the step time of TRL's sigmoid DPO (target ≤ ${TARGET}: ${pass ? 'PASS' : 'FAIL'}).** The loss hook reuses TRL's forward passes and log-probs (no second forward, no extra log-softmax); what it adds per step is a sum over the recorded per-token log-probs, the controller on a handful of numbers, and the margin-log write.
`,
);
console.log(`docs/BENCHMARKS.md: algorithms section updated (${adaptive}; ${pass ? 'PASS' : 'FAIL'})`);
