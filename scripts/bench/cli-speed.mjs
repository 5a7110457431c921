#!/usr/bin/env zx
// Start-up and validation speed of the installed CLI (compiled JS, lazy imports):
//   `dpo-sweep --help` (target ≤ 0.3 s) and `dpo-sweep validate` on a 1,000-run plan (target ≤ 1 s).
//   npx zx scripts/bench/cli-speed.mjs [--rounds 7]
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { $, argv } from 'zx';
import { load, machine, median, root, today, updateSection } from './lib.mjs';

const rounds = Number(argv.rounds ?? 7);
const bin = join(root, 'dist/cli/bin.js');
const work = mkdtempSync(join(tmpdir(), 'bench-cli-'));
const plan = join(work, 'big.yaml');
// 10 β × 10 learning rates × 10 seeds = 1,000 runs.
const values = (xs) => `[${xs.join(', ')}]`;
writeFileSync(
  plan,
  `name: big
base:
  model: builtin:tiny-llama
  dataset: {path: ${join(root, 'configs/data/prefs-hh.jsonl')}, format: hh}
  algorithm: dpo
  training: {max_steps: 100}
sweep:
  grid:
    beta: ${values(Array.from({ length: 10 }, (_, i) => (0.01 * (i + 1)).toFixed(2)))}
    training.learning_rate: ${values(Array.from({ length: 10 }, (_, i) => `${i + 1}.0e-6`))}
  seeds: ${values(Array.from({ length: 10 }, (_, i) => i))}
`,
);
$.verbose = false;
const time = async (args) => {
  const t0 = performance.now();
  await $`node ${bin} ${args}`;
  return (performance.now() - t0) / 1000;
};
await time(['--help']); // page cache
const help = [];
const validate = [];
for (let i = 0; i < rounds; i++) {
  help.push(await time(['--help']));
  validate.push(await time(['validate', plan]));
}
const out = (await $`node ${bin} validate ${plan}`).stdout.trim();
const h = median(help);
const v = median(validate);
updateSection(
  'cli-speed',
  `## CLI start-up and plan validation

\`npx zx scripts/bench/cli-speed.mjs --rounds ${rounds}\` — ${today()}, ${machine()}, load average after the run ${load()}.

Wall time of a fresh \`node dist/cli/bin.js\` process, median of ${rounds} alternating rounds.

| command | median (s) | min (s) | max (s) | target |
|---|---|---|---|---|
| \`dpo-sweep --help\` | ${h.toFixed(3)} | ${Math.min(...help).toFixed(3)} | ${Math.max(...help).toFixed(3)} | ≤ 0.3 s: ${h <= 0.3 ? 'PASS' : 'FAIL'} |
| \`dpo-sweep validate\` (1,000-run plan: 10 β × 10 learning rates × 10 seeds) | ${v.toFixed(3)} | ${Math.min(...validate).toFixed(3)} | ${Math.max(...validate).toFixed(3)} | ≤ 1 s: ${v <= 1 ? 'PASS' : 'FAIL'} |

\`validate\` said: \`${out}\``,
);
console.log(`--help ${h.toFixed(3)} s, validate ${v.toFixed(3)} s`);
