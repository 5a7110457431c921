/**
 * The walking skeleton, for real: plan → runs → runner process → pythonia bridge → TRL → run dir.
 * Slow tier: uses the managed venv (torch, TRL) and the built-in tiny model, on CPU.
 */
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { SweepEvent } from '../../src/execute/events.js';
import { readJsonl, readStatus, runPaths } from '../../src/execute/run-dir.js';
import { runSweep } from '../../src/execute/sweep.js';
import { isAlive, repoRoot, waitFor } from '../helpers/python.js';
import { readSafetensors } from '../helpers/safetensors.js';
import { testCache, workerPython } from '../helpers/worker.js';

const plan = join(repoRoot, 'test/fixtures/plans/e2e-two-betas.yaml');
let python: string;
let cacheDir: string;

beforeAll(() => {
  python = workerPython();
  cacheDir = testCache();
});

function tinyModelDir(): string {
  const models = join(cacheDir, 'models');
  const dir = readdirSync(models).find((d) => d.startsWith('tiny-llama-s0-'));
  if (!dir) throw new Error('the tiny model was not built in the cache');
  return join(models, dir);
}

describe('a 2-run sweep through the real bridge and TRL', () => {
  it('trains both runs, changes every parameter, logs ln 2 first, in order', async () => {
    const out = mkdtempSync(join(tmpdir(), 'e2e-sweep-'));
    const events: SweepEvent[] = [];
    const result = await runSweep(plan, { python, cacheDir, out, listener: (e) => events.push(e) });

    expect(result.statuses.map((s) => s.state)).toEqual(['succeeded', 'succeeded']);
    expect(result.specs.map((s) => s.settings.beta)).toEqual([0.05, 0.1]);
    expect(new Set(result.specs.map((s) => s.id)).size).toBe(2);

    const initial = readSafetensors(join(tinyModelDir(), 'model.safetensors'));
    for (const spec of result.specs) {
      const dir = join(out, 'runs', spec.id);
      const paths = runPaths(dir);
      for (const f of [paths.spec, paths.status, paths.events, paths.log, join(paths.final, 'config.json')]) {
        expect(existsSync(f), f).toBe(true);
      }
      expect(existsSync(join(paths.final, 'tokenizer.json'))).toBe(true);
      const status = readStatus(dir)!;
      expect(status).toMatchObject({ id: spec.id, state: 'succeeded', step: 5, total: 5, attempt: 1, error_class: null });

      // Every trainable parameter moved away from the initial weights.
      const final = readSafetensors(join(paths.final, 'model.safetensors'));
      expect([...final.keys()].sort()).toEqual([...initial.keys()].sort());
      const unchanged = [...initial].filter(([name, bytes]) => final.get(name)!.equals(bytes)).map(([n]) => n);
      expect(unchanged).toEqual([]);

      // Events: in order, the first loss is ln 2 (reference = policy at step 0).
      const log = readJsonl<{ t: string; kind: string; step?: number; metrics?: { loss: number } }>(paths.events);
      const kinds = log.map((e) => e.kind);
      expect(kinds[0]).toBe('run-start');
      expect(kinds.at(-1)).toBe('run-end');
      expect(kinds.indexOf('train-begin')).toBeLessThan(kinds.indexOf('step'));
      const steps = log.filter((e) => e.kind === 'step');
      expect(steps.map((e) => e.step)).toEqual([1, 2, 3, 4, 5]);
      expect(steps[0]!.metrics!.loss).toBeCloseTo(Math.log(2), 6);
      const times = log.map((e) => Date.parse(e.t));
      expect(times).toEqual([...times].sort((a, b) => a - b));
    }

    // The listener saw each run start, step and end, in order.
    for (const spec of result.specs) {
      const mine = events.filter((e) => 'id' in e && e.id === spec.id).map((e) => e.kind);
      expect(mine[0]).toBe('run-start');
      expect(mine.at(-1)).toBe('run-end');
      expect(mine.filter((k) => k === 'run-event').length).toBeGreaterThan(5);
    }

    // A rerun does not redo finished runs.
    const again: SweepEvent[] = [];
    const second = await runSweep(plan, { python, cacheDir, out, listener: (e) => again.push(e) });
    expect(second.statuses.map((s) => s.state)).toEqual(['succeeded', 'succeeded']);
    expect(again.filter((e) => e.kind === 'run-skipped')).toHaveLength(2);
    expect(again.filter((e) => e.kind === 'run-start')).toHaveLength(0);
  });

  it('a worker killed mid-run fails that run within 2 s with the signal; the other run completes', async () => {
    const out = mkdtempSync(join(tmpdir(), 'e2e-kill-'));
    let killedAt = 0;
    let failedAt = 0;
    let victim: string | undefined;
    const result = await runSweep(plan, {
      python,
      cacheDir,
      out,
      sets: ['base.training.max_steps=40'],
      retry: { max: 0 }, // a killed run is retried by default; here we look at the failure itself
      listener: (e) => {
        if (e.kind === 'run-event' && e.event.kind === 'step' && !victim) {
          victim = e.id;
          const pid = readStatus(join(out, 'runs', e.id))!.worker_pid!;
          expect(isAlive(pid)).toBe(true);
          process.kill(pid, 'SIGKILL');
          killedAt = Date.now();
          const dir = join(out, 'runs', e.id);
          void waitFor(() => readStatus(dir)?.state === 'failed', 5000, 10).then(() => (failedAt = Date.now()));
        }
      },
    });
    await waitFor(() => failedAt > 0, 5000);
    expect(killedAt).toBeGreaterThan(0);
    expect(failedAt - killedAt).toBeLessThan(2000);
    const killed = result.statuses.find((s) => s.id === victim)!;
    expect(killed).toMatchObject({ state: 'failed', error_class: 'killed' });
    expect(killed.error).toContain('SIGKILL');
    const other = result.statuses.find((s) => s.id !== victim)!;
    expect(other).toMatchObject({ state: 'succeeded', step: 40 });
    expect(result.failed).toHaveLength(1);
  });
});
