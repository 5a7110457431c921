/**
 * A shortened quickstart, end to end through the CLI: SFT stage, a DPO / β-DPO / dynamic-β sweep
 * from its model, eval generations, the rule judge against the SFT model, the report.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { readJsonl, readStatus } from '../../src/execute/run-dir.js';
import { repoRoot } from '../helpers/python.js';
import { testCache, workerPython } from '../helpers/worker.js';

it('runs every stage of a shortened quickstart and the rule judge counts add up', () => {
  const out = mkdtempSync(join(tmpdir(), 'e2e-quickstart-'));
  const sets = [
    'stages.sft.training.max_steps=40',
    'base.training.max_steps=6',
    'sweep.list=[{name: dpo, algorithm: dpo, beta: 0.5}, {name: beta-dpo, algorithm: beta-dpo, beta: 0.5}, {name: dynamic, algorithm: dynamic-beta-dpo, beta: 0.5}]',
    'base.dynamic_beta.warmup=2',
    'eval.limit=12',
    'eval.max_new_tokens=12',
  ];
  const cli = (extra: string[]) =>
    spawnSync(
      process.execPath,
      ['--import', 'tsx', join(repoRoot, 'src/cli/bin.ts'), join(repoRoot, 'configs/quickstart.yaml'), '--out', out, ...[...sets, ...extra].flatMap((s) => ['--set', s])],
      { cwd: repoRoot, encoding: 'utf8', timeout: 900_000, env: { ...process.env, CI: '1', DPO_SWEEP_PYTHON: workerPython(), DPO_SWEEP_CACHE: testCache() } },
    );
  // First with the plan's judge options both_orders and seed; then without them (below).
  const r = cli(['judge.both_orders=true', 'judge.seed=7']);
  expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);

  const sweep = JSON.parse(readFileSync(join(out, 'sweep.json'), 'utf8')) as { stages: Array<{ id: string }>; runs: Array<{ id: string; name: string }> };
  const sftId = sweep.stages[0]!.id;
  expect(readStatus(join(out, 'runs', sftId))?.state).toBe('succeeded');
  const sftOutputs = join(out, 'runs', sftId, 'rollouts', 'eval.json');
  expect(JSON.parse(readFileSync(sftOutputs, 'utf8'))).toHaveLength(12);

  expect(sweep.runs.map((run) => run.name)).toEqual(['dpo', 'beta-dpo', 'dynamic']);
  for (const run of sweep.runs) {
    const dir = join(out, 'runs', run.id);
    const spec = JSON.parse(readFileSync(join(dir, 'spec.json'), 'utf8')) as { settings: { model: string } };
    // The same SFT checkpoint is the DPO starting point and the judge's baseline.
    expect(spec.settings.model).toBe(`stage:sft@${sftId}`);
    expect(readStatus(dir)?.state).toBe('succeeded');
    const outputs = JSON.parse(readFileSync(join(dir, 'rollouts', 'eval.json'), 'utf8')) as Array<{ instruction: string; generator: string }>;
    expect(outputs).toHaveLength(12);
    expect(outputs.every((o) => o.generator === run.name)).toBe(true);
    const summary = JSON.parse(readFileSync(join(dir, 'judge', 'stage-sft', 'summary.json'), 'utf8'));
    expect(summary.b.path).toBe(sftOutputs);
    expect(summary.n_pairs).toBe(12);
    expect(summary.wins + summary.losses + summary.ties + summary.invalid).toBe(summary.n_pairs);
    expect(summary.requests).toBe(0); // a rule preset sends nothing
    expect([summary.both_orders, summary.seed]).toEqual([true, 7]);
    const judgments = readJsonl(join(dir, 'judge', 'stage-sft', 'judgments.jsonl'));
    expect(judgments).toHaveLength(24); // both orders of 12 pairs
  }
  for (const f of ['report.md', 'report.html', 'summary.json', 'results.csv']) expect(existsSync(join(out, 'report', f)), f).toBe(true);
  const report = readFileSync(join(out, 'report', 'report.md'), 'utf8');
  for (const name of ['dpo', 'beta-dpo', 'dynamic']) expect(report).toContain(name);
  expect(r.stdout).toContain('report: ');

  // Rerun with the judge options gone: nothing is trained or generated again, the judge runs again.
  const again = cli([]);
  expect(again.status, `${again.stdout}\n${again.stderr}`).toBe(0);
  expect(again.stdout).not.toMatch(/\bstarted \(attempt/);
  for (const run of sweep.runs) {
    const dir = join(out, 'runs', run.id, 'judge', 'stage-sft');
    const summary = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8'));
    expect([summary.both_orders, summary.seed, summary.n_pairs]).toEqual([false, 42, 12]);
    expect(readJsonl(join(dir, 'judgments.jsonl'))).toHaveLength(12);
  }
}, 900_000);
