#!/usr/bin/env zx
// A sweep of 8 β values through dpo-sweep (one warm worker, shared data and reference log-probs)
// against 8 separate plain-Python TRL processes doing the same training.
// Targets: ≤ 0.5 of the time with 30-step runs, ≤ 0.8 with 300-step runs.
//   npx zx scripts/bench/sweep-vs-plain.mjs [--steps 30,300] [--betas 8]
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { $, argv } from 'zx';
import { load, machine, root, today, updateSection } from './lib.mjs';

const stepsList = String(argv.steps ?? '30,300').split(',').map(Number);
const nBetas = Number(argv.betas ?? 8);
const betas = Array.from({ length: nBetas }, (_, i) => Number((0.025 * (i + 1)).toFixed(3)));
const work = mkdtempSync(join(tmpdir(), 'bench-sweep-'));
const cache = join(work, 'cache');
const python = join(root, '.venv/bin/python');
const data = join(root, 'configs/data/prefs-hh.jsonl');
const env = { ...process.env, DPO_SWEEP_CACHE: cache, HF_HUB_OFFLINE: '1', CI: '1', PYTHONPATH: join(root, 'py') };
$.verbose = false;

// Build the tiny model once (both sides use the same directory).
await $({ env })`${python} -c ${'import sys; from dpo_sweep_worker.tiny import ensure_tiny; print(ensure_tiny(sys.argv[1] + "/models"))'} ${cache}`;
const modelDir = join(cache, 'models', readdirSync(join(cache, 'models')).find((d) => d.startsWith('tiny-llama-s0-')));

async function sweep(steps, tag) {
  const plan = join(work, `plan-${tag}.yaml`);
  writeFileSync(
    plan,
    `name: bench-${tag}
base:
  model: ${modelDir}
  dataset: {path: ${data}, format: hh}
  algorithm: dpo
  training: {max_steps: ${steps}, batch_size: 8, learning_rate: 5.0e-4, scheduler: constant, max_length: 256, save_steps: 100000, precompute_ref_log_probs: true}
sweep:
  grid:
    beta: [${betas.join(', ')}]
`,
  );
  const t0 = performance.now();
  await $({ env, cwd: root })`node dist/cli/bin.js ${plan} --out ${join(work, `sweep-${tag}`)} --cache-dir ${join(work, `refcache-${tag}`)}`;
  return (performance.now() - t0) / 1000;
}

async function plain(steps, tag) {
  const t0 = performance.now();
  for (const [i, beta] of betas.entries()) {
    await $({ env, cwd: root })`${python} scripts/bench/plain_trl.py ${modelDir} ${data} ${beta} ${steps} ${join(work, `plain-${tag}-${i}`)}`;
  }
  return (performance.now() - t0) / 1000;
}

const rows = [];
for (const steps of stepsList) {
  const ours = await sweep(steps, `${steps}`);
  const theirs = await plain(steps, `${steps}`);
  const target = steps <= 30 ? 0.5 : 0.8;
  rows.push({ steps, ours, theirs, ratio: ours / theirs, target });
  console.log(`${steps} steps: dpo-sweep ${ours.toFixed(1)} s, plain ${theirs.toFixed(1)} s, ratio ${(ours / theirs).toFixed(2)}`);
}
updateSection(
  'sweep-vs-plain',
  `## A β sweep through dpo-sweep vs separate plain TRL processes

\`npx zx scripts/bench/sweep-vs-plain.mjs --steps ${stepsList.join(',')} --betas ${nBetas}\` — ${today()}, ${machine()}, load average after the run ${load()}.

${nBetas} DPO runs (β = ${betas.join(', ')}), tiny Llama, batch 8, fp32 on CPU. dpo-sweep: one plan, one runner with a warm worker, reference log-probs computed once and shared through the cache (\`precompute_ref_log_probs: true\`). Plain: \`scripts/bench/plain_trl.py\` (TRL's DPOTrainer with a live reference, as usually written) run ${nBetas} times in fresh processes, one after the other. Both sides include process start-up and library imports; a fresh reference cache for each size.

| steps per run | dpo-sweep (s) | plain TRL (s) | ratio | target |
|---|---|---|---|---|
${rows.map((r) => `| ${r.steps} | ${r.ours.toFixed(1)} | ${r.theirs.toFixed(1)} | ${r.ratio.toFixed(2)} | ≤ ${r.target}: ${r.ratio <= r.target ? 'PASS' : 'FAIL'} |`).join('\n')}`,
);
