#!/usr/bin/env zx
// The cost of driving training through dpo-sweep: the same 300-step tiny DPO run, once through
// `dpo-sweep <plan>` (CLI → runner process → pythonia bridge → worker) and once called from plain
// Python (`facade.train(request)` in a fresh interpreter), alternated. Targets: ratio ≤ 1.03 and
// absolute overhead ≤ 1 s. Usage: npx zx scripts/bench/overhead.mjs [--rounds 3] [--steps 300]
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { $, argv } from 'zx';
import { load, machine, median, root, today, updateSection } from './lib.mjs';

const rounds = Number(argv.rounds ?? 3);
const steps = Number(argv.steps ?? 300);
const work = mkdtempSync(join(tmpdir(), 'bench-overhead-'));
const cache = join(work, 'cache');
const python = join(root, '.venv/bin/python');
const env = { ...process.env, DPO_SWEEP_CACHE: cache, HF_HUB_OFFLINE: '1', CI: '1' };
const plan = join(work, 'plan.yaml');
writeFileSync(
  plan,
  `name: overhead
base:
  model: builtin:tiny-llama
  dataset: {path: ${join(root, 'configs/data/prefs-hh.jsonl')}, format: hh}
  algorithm: dpo
  training: {max_steps: ${steps}, batch_size: 8, learning_rate: 5.0e-4, scheduler: constant, max_length: 256, save_steps: 100000}
`,
);
$.verbose = false;

/** Run a command under bash; wall ms and the CPU seconds (user + system) of its whole process tree (bash `times`). */
async function timed(cmd, log, extraEnv = {}) {
  const t0 = performance.now();
  const script = '"$@" > "$LOG" 2>&1; status=$?; times; exit $status';
  const r = await $({ env: { ...env, ...extraEnv, LOG: log }, cwd: root })`bash -c ${script} _ ${cmd}`;
  const ms = performance.now() - t0;
  const children = r.stdout.trim().split('\n').at(-1) ?? '';
  const secs = [...children.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  return { ms, cpu: secs.reduce((a, b) => a + b, 0) };
}

async function viaCli(i) {
  const out = join(work, `cli-${i}`);
  return { ...(await timed(['node', 'dist/cli/bin.js', plan, '--out', out], join(work, `cli-${i}.log`))), out };
}

async function viaPython(i, spec) {
  const runDir = join(work, `py-${i}`);
  const request = JSON.stringify({ spec, run_dir: runDir, cache_dir: cache, resume: false });
  const code = `import json, os, sys; os.makedirs(sys.argv[2], exist_ok=True)
from dpo_sweep_worker import facade
out = facade.train(json.loads(sys.argv[1]))
assert out["status"] == "succeeded", out`;
  return timed([python, '-c', code, request, runDir], join(work, `py-${i}.log`), { PYTHONPATH: join(root, 'py') });
}

// Warm-up: build the tiny model and the page cache, and get the exact spec the CLI runs.
const warm = await viaCli('warm');
const runId = readdirSync(join(warm.out, 'runs'))[0];
const spec = JSON.parse(readFileSync(join(warm.out, 'runs', runId, 'spec.json'), 'utf8'));

const cli = [];
const py = [];
for (let i = 0; i < rounds; i++) {
  // Alternate which side goes first, so drift hits both.
  if (i % 2 === 0) {
    cli.push(await viaCli(i));
    py.push(await viaPython(i, spec));
  } else {
    py.push(await viaPython(i, spec));
    cli.push(await viaCli(i));
  }
  console.log(
    `round ${i + 1}: dpo-sweep ${(cli[i].ms / 1000).toFixed(2)} s (CPU ${cli[i].cpu.toFixed(1)} s), plain Python ${(py[i].ms / 1000).toFixed(2)} s (CPU ${py[i].cpu.toFixed(1)} s)`,
  );
}
const ratio = median(cli.map((c, i) => c.ms / py[i].ms));
const overhead = median(cli.map((c, i) => c.ms - py[i].ms)) / 1000;
const cpuRatio = median(cli.map((c, i) => c.cpu / py[i].cpu));
const cpuOverhead = median(cli.map((c, i) => c.cpu - py[i].cpu));
const rows = cli.map(
  (c, i) =>
    `| ${i + 1} | ${(c.ms / 1000).toFixed(2)} | ${(py[i].ms / 1000).toFixed(2)} | ${(c.ms / py[i].ms).toFixed(3)} | ${((c.ms - py[i].ms) / 1000).toFixed(2)} | ${c.cpu.toFixed(1)} | ${py[i].cpu.toFixed(1)} | ${(c.cpu / py[i].cpu).toFixed(3)} |`,
);
updateSection(
  'overhead',
  `## Driving a run through dpo-sweep vs plain Python

\`npx zx scripts/bench/overhead.mjs --rounds ${rounds} --steps ${steps}\` — ${today()}, ${machine()}, load average after the run ${load()}.

One ${steps}-step DPO run on the built-in tiny Llama (batch 8, fp32, CPU): \`dpo-sweep plan.yaml\` (CLI process, runner process, pythonia bridge, events and status files) against \`facade.train(request)\` in a fresh Python process, with the same resolved spec. Both sides pay Python start-up and library imports; rounds alternate which side goes first.

| round | dpo-sweep (s) | plain Python (s) | ratio | overhead (s) | dpo-sweep CPU (s) | plain CPU (s) | CPU ratio |
|---|---|---|---|---|---|---|---|
${rows.join('\n')}

**Median ratio ${ratio.toFixed(3)} (target ≤ 1.03: ${ratio <= 1.03 ? 'PASS' : 'FAIL'}); median overhead ${overhead.toFixed(2)} s (target ≤ 1 s: ${overhead <= 1 ? 'PASS' : 'FAIL'}).** CPU time of the whole process tree (user + system, from bash \`times\`): median ratio ${cpuRatio.toFixed(3)}, median extra ${cpuOverhead.toFixed(2)} CPU-s. The CPU columns are far steadier than the wall columns on a shared 2-vCPU machine, where the same run's wall time moves by tens of percent between minutes; they bound what dpo-sweep itself adds.`,
);
console.log(`ratio ${ratio.toFixed(3)}, overhead ${overhead.toFixed(2)} s; CPU ratio ${cpuRatio.toFixed(3)}, extra ${cpuOverhead.toFixed(2)} CPU-s`);
