/**
 * The executor with real runner processes and a fast fake worker (no torch): crashes fail one run,
 * the sweep goes on, finished runs are skipped.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readJsonl, readStatus, runPaths } from '../../src/execute/run-dir.js';
import { runSweep } from '../../src/execute/sweep.js';
import { plainPython, repoRoot } from '../helpers/python.js';

const plan = join(repoRoot, 'test/fixtures/plans/e2e-two-betas.yaml');
const fake = join(repoRoot, 'test/fixtures/python/fake_worker.py');

function run(out: string, behaviour: Record<string, unknown>, extra: Partial<Parameters<typeof runSweep>[1]> = {}) {
  return runSweep(plan, {
    python: plainPython(),
    out,
    cacheDir: join(out, 'cache'),
    env: { DPO_SWEEP_WORKER_TARGET: fake, FAKE_WORKER: JSON.stringify(behaviour) },
    ...extra,
  });
}

describe('executor with runner processes', () => {
  it('a runner that crashes fails its run with the cause; the next run still runs', async () => {
    const out = mkdtempSync(join(tmpdir(), 'exec-crash-'));
    const result = await run(out, { 'beta0.05': { fail: 'kill-runner', fail_at: 2 } });
    const [crashed, ok] = result.statuses;
    expect(crashed).toMatchObject({ state: 'failed', error_class: 'runner-crash' });
    expect(crashed!.error).toContain('SIGKILL');
    expect(ok).toMatchObject({ state: 'succeeded', step: 5 });
    const events = readJsonl<{ kind: string }>(runPaths(join(out, 'runs', crashed!.id)).events);
    expect(events.at(-1)).toMatchObject({ kind: 'run-end', state: 'failed', error_class: 'runner-crash' });
  });

  it('a Python exception fails the run with its type and traceback; the sweep goes on', async () => {
    const out = mkdtempSync(join(tmpdir(), 'exec-raise-'));
    const result = await run(out, { 'beta0.05': { fail: 'raise', fail_at: 3 } });
    const [failed, ok] = result.statuses;
    expect(failed).toMatchObject({ state: 'failed', error_class: 'python-exception', step: 2 });
    expect(failed!.error).toContain('RuntimeError: fake failure at step 3');
    const events = readJsonl<{ kind: string; traceback?: string }>(runPaths(join(out, 'runs', failed!.id)).events);
    expect(events.find((e) => e.kind === 'traceback')?.traceback).toContain('fake_worker.py');
    expect(ok!.state).toBe('succeeded');
  });

  it('reruns only what did not succeed', async () => {
    const out = mkdtempSync(join(tmpdir(), 'exec-rerun-'));
    const first = await run(out, { 'beta0.1': { fail: 'raise' } });
    expect(first.statuses.map((s) => s.state)).toEqual(['succeeded', 'failed']);
    const second = await run(out, {});
    expect(second.statuses.map((s) => s.state)).toEqual(['succeeded', 'succeeded']);
    expect(readStatus(join(out, 'runs', second.specs[0]!.id))!.attempt).toBe(1); // not redone
    expect(readStatus(join(out, 'runs', second.specs[1]!.id))!.attempt).toBe(2);
  });
});
