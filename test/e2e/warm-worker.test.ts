/**
 * A slot's worker is reused across runs; a run's metrics must be identical whether it ran first in
 * a fresh worker or third, after two other runs, in the same Python process.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { readJsonl, runPaths } from '../../src/execute/run-dir.js';
import { runSweep } from '../../src/execute/sweep.js';
import { repoRoot } from '../helpers/python.js';
import { testCache, workerPython } from '../helpers/worker.js';

const plan = join(repoRoot, 'test/fixtures/plans/warm-worker.yaml');

function stepMetrics(out: string, id: string) {
  return readJsonl<{ kind: string; step: number; metrics: Record<string, number> }>(runPaths(join(out, 'runs', id)).events)
    .filter((e) => e.kind === 'step')
    .map((e) => ({ step: e.step, loss: e.metrics.loss, grad_norm: e.metrics.grad_norm, margins: e.metrics['rewards/margins'] }));
}

it('a run gives the same numbers first in a fresh worker and third in a warm one', async () => {
  const python = workerPython();
  const cacheDir = testCache();
  const alone = mkdtempSync(join(tmpdir(), 'warm-alone-'));
  const first = await runSweep(plan, { python, cacheDir, out: alone, sets: ['sweep.list=[{name: target, beta: 0.1, training.seed: 11}]'] });
  const warm = mkdtempSync(join(tmpdir(), 'warm-third-'));
  const third = await runSweep(plan, { python, cacheDir, out: warm });

  const target = third.specs.find((s) => s.name === 'target')!;
  expect(first.specs[0]!.id).toBe(target.id);
  expect(third.statuses.map((s) => s.state)).toEqual(['succeeded', 'succeeded', 'succeeded']);
  // The three runs shared one worker process.
  expect(new Set(third.statuses.map((s) => s.worker_pid)).size).toBe(1);
  const a = stepMetrics(alone, target.id);
  const b = stepMetrics(warm, target.id);
  expect(a).toHaveLength(4);
  expect(b).toEqual(a); // bit-identical, not just close
}, 300_000);
