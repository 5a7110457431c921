/**
 * `resources.processes_per_run: 2` through the real sweep (runner → bridge → worker → torchrun, gloo on
 * CPU): the runs succeed, rank 0's step events reach the run directory, the margin logs cover the global
 * batch, and the losses (and dynamic β) equal those of one process with twice the batch size.
 * Run ids leave `resources` out, so the two executions get separate sweep directories.
 */
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import type { SweepEvent } from '../../src/execute/events.js';
import { readJsonl, runPaths } from '../../src/execute/run-dir.js';
import { runSweep, type SweepResult } from '../../src/execute/sweep.js';
import { repoRoot } from '../helpers/python.js';
import { testCache, workerPython } from '../helpers/worker.js';

const plan = join(repoRoot, 'test/fixtures/plans/e2e-multiprocess.yaml');
const STEPS = 5;

interface MarginRecord {
  step: number;
  batch_size: number;
  loss: number;
  beta: number;
  sample: number[];
}

function stepLosses(out: string, id: string): number[] {
  return readJsonl<{ kind: string; step: number; metrics: { loss: number } }>(runPaths(join(out, 'runs', id)).events)
    .filter((e) => e.kind === 'step')
    .map((e) => e.metrics.loss);
}

function margins(out: string, id: string): MarginRecord[] {
  const dir = join(out, 'runs', id, 'margins');
  return readdirSync(dir)
    .filter((d) => d.startsWith('epoch_'))
    .sort()
    .flatMap((d) => readJsonl<MarginRecord>(join(dir, d, 'margins.jsonl')));
}

function byName(result: SweepResult) {
  return new Map(result.specs.map((s) => [s.name, s]));
}

it('trains with 2 processes exactly as 1 process with the same global batch', async () => {
  const python = workerPython();
  const cacheDir = testCache();
  const twoOut = mkdtempSync(join(tmpdir(), 'e2e-mp2-'));
  const events: SweepEvent[] = [];
  const two = await runSweep(plan, { python, cacheDir, out: twoOut, listener: (e) => events.push(e) });
  expect(two.statuses.map((s) => s.state)).toEqual(['succeeded', 'succeeded']);
  expect(two.specs.map((s) => s.settings.resources.processes_per_run)).toEqual([2, 2]);

  const oneOut = mkdtempSync(join(tmpdir(), 'e2e-mp1-'));
  const one = await runSweep(plan, {
    python,
    cacheDir,
    out: oneOut,
    sets: ['base.resources.processes_per_run=1', 'base.training.batch_size=8'],
  });
  expect(one.statuses.map((s) => s.state)).toEqual(['succeeded', 'succeeded']);

  const twos = byName(two);
  const ones = byName(one);
  expect([...twos.keys()].sort()).toEqual(['dpo', 'dynamic']);
  for (const [name, spec] of twos) {
    const single = ones.get(name)!;
    expect(single.id).not.toBe(spec.id); // batch_size is part of the id; resources are not

    // Rank 0's progress, relayed by the launching worker: the phase, then one step event per optimizer step.
    const log = readJsonl<{ kind: string; step?: number; phase?: string }>(runPaths(join(twoOut, 'runs', spec.id)).events);
    expect(log.some((e) => e.kind === 'phase' && e.phase === 'launching 2 training processes')).toBe(true);
    expect(log.filter((e) => e.kind === 'step').map((e) => e.step)).toEqual([1, 2, 3, 4, 5]);
    const live = events.filter((e) => e.kind === 'run-event' && e.id === spec.id && e.event.kind === 'step');
    expect(live).toHaveLength(STEPS);

    // One margin record per optimizer step, each over the global batch (2 × 4 rows, both ranks).
    const recs = margins(twoOut, spec.id);
    expect(recs.map((r) => r.step)).toEqual([1, 2, 3, 4, 5]);
    expect(recs.every((r) => r.batch_size === 8)).toBe(true);
    expect(existsSync(join(twoOut, 'runs', spec.id, 'final', 'model.safetensors'))).toBe(true);

    // The same numbers as one process with batch_size 8.
    const a = stepLosses(oneOut, single.id);
    const b = stepLosses(twoOut, spec.id);
    expect(a).toHaveLength(STEPS);
    expect(b).toHaveLength(STEPS);
    const diff = Math.max(...a.map((x, i) => Math.abs(x - b[i]!)));
    expect(diff, `${name}: ${a} vs ${b}`).toBeLessThanOrEqual(1e-5);
    const singleRecs = margins(oneOut, single.id);
    expect(singleRecs.map((r) => r.batch_size)).toEqual(recs.map((r) => r.batch_size));
    recs.forEach((r, i) => {
      expect(Math.abs(r.loss - singleRecs[i]!.loss)).toBeLessThanOrEqual(1e-5);
      expect(Math.abs(r.beta - singleRecs[i]!.beta)).toBeLessThanOrEqual(1e-6 * singleRecs[i]!.beta);
    });
    if (name === 'dynamic') expect(new Set(recs.map((r) => r.beta)).size).toBeGreaterThan(1);
  }
}, 600_000);
