/**
 * One writer per sweep directory: the lock is re-entrant in one process (the pipeline holds it over
 * training, eval, judge and report), and processes racing for a stale lock end with one owner.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LockedError } from '../../src/errors.js';
import { acquireLock } from '../../src/execute/lock.js';
import { runPlan } from '../../src/pipeline.js';
import { plainPython, repoRoot } from '../helpers/python.js';

const lockOf = (dir: string) => JSON.parse(readFileSync(join(dir, '.lock'), 'utf8')) as { pid: number };

describe('sweep directory lock', () => {
  it('is re-entrant in one process and released by the last holder', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lock-reentrant-'));
    const outer = acquireLock(dir);
    const inner = acquireLock(dir);
    inner.release();
    expect(lockOf(dir).pid).toBe(process.pid); // the outer holder still has it
    inner.release(); // twice: no effect
    expect(existsSync(join(dir, '.lock'))).toBe(true);
    outer.release();
    expect(existsSync(join(dir, '.lock'))).toBe(false);
  });

  it('dpo-sweep run holds it through the stages after training (a second invocation exits 3 then too)', async () => {
    const root = mkdtempSync(join(tmpdir(), 'lock-pipeline-'));
    const planFile = join(root, 'plan.yaml');
    writeFileSync(planFile, `extends: ${relative(root, join(repoRoot, 'test/fixtures/plans/e2e-two-betas.yaml'))}\nname: locked\nreport: {formats: [json]}\n`);
    const out = join(root, 'out');
    const seen: Array<number | undefined> = [];
    const result = await runPlan(planFile, {
      python: plainPython(),
      out,
      cacheDir: join(root, 'cache'),
      env: { DPO_SWEEP_WORKER_TARGET: join(repoRoot, 'test/fixtures/python/fake_worker.py'), FAKE_WORKER: '{}' },
      listener: (e) => {
        if (e.kind === 'stage' && e.stage === 'report') seen.push(existsSync(join(out, '.lock')) ? lockOf(out).pid : undefined);
      },
    });
    expect(result.statuses.map((s) => s.state)).toEqual(['succeeded', 'succeeded']);
    expect(seen).toEqual([process.pid]); // held while the report was written
    expect(existsSync(join(out, '.lock'))).toBe(false);
  });

  it('a live holder makes acquireLock throw LockedError naming the dir and pid', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lock-live-'));
    writeFileSync(join(dir, '.lock'), JSON.stringify({ pid: process.ppid, host: hostname(), started: 'then' }));
    expect(() => acquireLock(dir)).toThrow(LockedError);
    expect(() => acquireLock(dir)).toThrow(`${dir} is in use by another dpo-sweep process (pid ${process.ppid}, since then)`);
  });

  it('processes racing for a stale lock end with exactly one owner', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lock-race-'));
    // The lock of a process that is gone (kill -9): every racer sees it stale.
    writeFileSync(join(dir, '.lock'), JSON.stringify({ pid: 2 ** 22 + 12345, host: hostname(), started: 'long ago' }));
    const startAt = Date.now() + 3000;
    const script = `
      import { acquireLock } from ${JSON.stringify(join(repoRoot, 'src/execute/lock.ts'))};
      while (Date.now() < ${startAt}) {}
      try { acquireLock(${JSON.stringify(dir)}); console.log('owner'); await new Promise((r) => setTimeout(r, 1500)); }
      catch (e) { console.log(e.name); }`;
    const racers = Array.from(
      { length: 6 },
      () =>
        new Promise<string>((resolve, reject) =>
          execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: repoRoot }, (error, stdout) =>
            error ? reject(error) : resolve(stdout.trim()),
          ),
        ),
    );
    const outcomes = await Promise.all(racers);
    expect(outcomes.filter((o) => o === 'owner')).toHaveLength(1);
    expect(outcomes.filter((o) => o !== 'owner')).toEqual(Array(5).fill('LockedError'));
  }, 30_000);
});
