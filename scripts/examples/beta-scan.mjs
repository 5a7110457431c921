#!/usr/bin/env zx
// A β scan as a script: write a plan, run it through the library, print final loss per β.
//   npx zx scripts/examples/beta-scan.mjs --betas 0.05,0.1,0.2 --steps 40
// Uses the built CLI library (npm run build) and the worker venv (created on first use).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { argv, chalk } from 'zx';

const root = new URL('../..', import.meta.url).pathname;
const { ensureWorker, runSweep } = await import(join(root, 'dist/index.js'));

const betas = String(argv.betas ?? '0.05,0.1,0.2').split(',').map(Number);
const steps = Number(argv.steps ?? 40);
const work = mkdtempSync(join(tmpdir(), 'beta-scan-'));
const plan = join(work, 'beta-scan.yaml');
writeFileSync(
  plan,
  `name: beta-scan-script
base:
  model: builtin:tiny-llama
  dataset: {path: ${join(root, 'configs/data/prefs-hh.jsonl')}, format: hh}
  algorithm: dpo
  training: {max_steps: ${steps}, batch_size: 8, learning_rate: 5.0e-4, scheduler: constant, max_length: 256}
sweep:
  grid:
    beta: [${betas.join(', ')}]
`,
);

const python = await ensureWorker({ log: (line) => console.error(chalk.dim(line)) });
const result = await runSweep(plan, {
  python,
  out: join(work, 'out'),
  listener: (event) => {
    if (event.kind === 'run-end') console.log(`${event.name}: ${event.status.state}`);
  },
});
console.log('\nbeta    final loss   reward margin');
for (const [i, spec] of result.specs.entries()) {
  const m = result.statuses[i].metrics;
  console.log(`${String(spec.settings.beta).padEnd(7)} ${Number(m.loss).toFixed(4).padEnd(12)} ${Number(m['rewards/margins']).toFixed(4)}`);
}
console.log(`\nsweep directory: ${result.out}`);
process.exit(result.failed.length ? 1 : 0);
