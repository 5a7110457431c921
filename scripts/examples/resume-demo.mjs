#!/usr/bin/env zx
// Resume after a failure: start a sweep, kill the CLI with SIGKILL once a checkpoint exists, run it
// again, and watch it resume from the checkpoint instead of starting over.
//   npx zx scripts/examples/resume-demo.mjs
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { $, sleep } from 'zx';

const root = new URL('../..', import.meta.url).pathname;
const bin = join(root, 'dist/cli/bin.js');
const work = mkdtempSync(join(tmpdir(), 'resume-demo-'));
const out = join(work, 'out');
const plan = join(work, 'resume.yaml');
writeFileSync(
  plan,
  `name: resume-demo
base:
  model: builtin:tiny-llama
  dataset: {path: ${join(root, 'configs/data/prefs-hh.jsonl')}, format: hh}
  algorithm: dpo
  training: {max_steps: 60, save_steps: 10, batch_size: 8, learning_rate: 5.0e-4, scheduler: constant, max_length: 256}
`,
);

console.log('1. start the sweep, kill -9 the CLI once the first checkpoint is written');
const first = $`node ${bin} ${plan} --out ${out}`.nothrow().quiet();
const checkpoint = () => {
  if (!existsSync(join(out, 'runs'))) return false;
  return readdirSync(join(out, 'runs')).some((id) => {
    const dir = join(out, 'runs', id, 'checkpoints');
    return existsSync(dir) && readdirSync(dir).some((d) => d.startsWith('checkpoint-'));
  });
};
for (let i = 0; i < 600 && !checkpoint(); i++) await sleep(200);
await first.kill('SIGKILL');
await first;
console.log((await $`node ${bin} status ${out}`.nothrow()).stdout);

console.log('2. run it again: the finished work is kept, the run resumes from its checkpoint');
const second = await $`node ${bin} ${plan} --out ${out}`.nothrow();
process.stdout.write(second.stdout);
process.exit(second.exitCode ?? 1);
