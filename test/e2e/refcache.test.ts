/**
 * Shared reference log-probs: one reference pass over the data per (reference, data) key across the
 * runs of a sweep, none in a later sweep with the same cache; and the same losses as a live reference.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { readJsonl, runPaths } from '../../src/execute/run-dir.js';
import { runSweep } from '../../src/execute/sweep.js';
import { repoRoot } from '../helpers/python.js';
import { workerPython } from '../helpers/worker.js';

const plan = join(repoRoot, 'test/fixtures/plans/e2e-two-betas.yaml');

function passes(log: string): Array<{ key: string; rows: number }> {
  return existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
}

function losses(out: string, id: string): number[] {
  return readJsonl<{ kind: string; metrics: { loss: number } }>(runPaths(join(out, 'runs', id)).events)
    .filter((e) => e.kind === 'step')
    .map((e) => e.metrics.loss);
}

it('computes reference log-probs once per (reference, data) and matches a live reference', async () => {
  const python = workerPython();
  const cacheDir = mkdtempSync(join(tmpdir(), 'refcache-cache-'));
  const log = join(cacheDir, 'ref-passes.jsonl');
  const env = { DPO_SWEEP_REF_PASS_LOG: log };
  const sets = ['sweep.grid.beta=[0.05,0.1,0.2]', 'base.reference=builtin:tiny-llama@1'];

  const first = mkdtempSync(join(tmpdir(), 'refcache-1-'));
  const a = await runSweep(plan, { python, cacheDir, out: first, env, sets });
  expect(a.statuses.map((s) => s.state)).toEqual(['succeeded', 'succeeded', 'succeeded']);
  expect(passes(log)).toHaveLength(1); // three runs, one pass
  for (const spec of a.specs) {
    const ref = readJsonl<{ kind: string; precompute?: boolean; sharing?: number }>(runPaths(join(first, 'runs', spec.id)).events).find((e) => e.kind === 'reference');
    expect(ref).toMatchObject({ precompute: true, sharing: 3 });
  }

  const second = mkdtempSync(join(tmpdir(), 'refcache-2-'));
  const b = await runSweep(plan, { python, cacheDir, out: second, env, sets });
  expect(b.statuses.every((s) => s.state === 'succeeded')).toBe(true);
  expect(passes(log)).toHaveLength(1); // a later sweep: none

  // The same run with a live reference forward gives the same losses (1e-6 relative).
  const live = mkdtempSync(join(tmpdir(), 'refcache-live-'));
  const c = await runSweep(plan, {
    python,
    cacheDir,
    out: live,
    env,
    sets: ['sweep.grid.beta=[0.1]', 'base.reference=builtin:tiny-llama@1', 'base.training.precompute_ref_log_probs=false'],
  });
  const cached = losses(first, a.specs[1]!.id);
  const direct = losses(live, c.specs[0]!.id);
  expect(direct).toHaveLength(5);
  for (const [i, l] of direct.entries()) expect(Math.abs(cached[i]! - l) / Math.abs(l)).toBeLessThan(1e-6);
  // The reference differs from the policy, so the first loss is not ln 2: the check is not trivial.
  expect(Math.abs(direct[0]! - Math.log(2))).toBeGreaterThan(1e-3);
}, 400_000);
