/**
 * Survives kill -9: the CLI is SIGKILLed at random moments (seeded), then rerun. Finished runs are
 * never redone, interrupted runs resume from their last checkpoint, no orphan stays behind, no torn
 * file is read as data. A second CLI on a live sweep dir exits 3. Fast fake worker (no torch).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readJsonl, readStatus } from '../../src/execute/run-dir.js';
import { isAlive, plainPython, repoRoot, waitFor } from '../helpers/python.js';

const plan = join(repoRoot, 'test/fixtures/plans/e2e-two-betas.yaml');
const fake = join(repoRoot, 'test/fixtures/python/fake_worker.py');
const bin = join(repoRoot, 'src/cli/bin.ts');

function cli(out: string, log: string, extra: string[] = [], stepS = 0.12): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', bin, plan, '--out', out, '--max-parallel', '2', ...extra], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      CI: '1',
      DPO_SWEEP_PYTHON: plainPython(),
      DPO_SWEEP_CACHE: join(out, 'cache'),
      DPO_SWEEP_WORKER_TARGET: fake,
      FAKE_WORKER: JSON.stringify({ '*': { steps: 8, step_s: stepS, ckpt_every: 3, log_times: log } }),
    },
  });
}

function finished(child: ChildProcess): Promise<{ code: number | null; out: string; err: string }> {
  let out = '';
  let err = '';
  child.stdout?.on('data', (d) => (out += d));
  child.stderr?.on('data', (d) => (err += d));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, out, err })));
}

/** Live processes whose environment mentions `dir` (the runners and workers of one trial). */
function processesOf(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/environ`, 'utf8').includes(dir) && isAlive(Number(entry))) pids.push(Number(entry));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

/** mulberry32: the trial delays are the same on every run of the test. */
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('kill -9 of the CLI at random moments', () => {
  it('10 trials: rerun finishes every run once, resuming interrupted runs, leaving no orphans', async () => {
    const random = rng(2026);
    let resumed = 0;
    for (let trial = 0; trial < 10; trial++) {
      const out = mkdtempSync(join(tmpdir(), `kill9-${trial}-`));
      const log = join(out, 'times.jsonl');
      const first = cli(out, log);
      const done = finished(first);
      // Kill at a seeded random point of progress (not of wall time, which depends on load): right
      // after start-up (before or while runners fork), or after the k-th of the 16 training steps.
      const k = Math.floor(random() * 15);
      const steps = () => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter((l) => l.includes('"step"')).length : 0);
      if (k === 0) await new Promise((r) => setTimeout(r, random() * 1500));
      else await waitFor(() => steps() >= k, 60_000, 10);
      const delay = k;
      first.kill('SIGKILL');
      await done;

      // The orphaned runners notice, checkpoint and exit; the rerun waits for them if needed.
      const second = await finished(cli(out, log));
      expect(second.code, `trial ${trial} (killed after step ${delay}): ${second.err}`).toBe(0);

      const runs = readdirSync(join(out, 'runs'));
      expect(runs).toHaveLength(2);
      const records = readJsonl<{ name: string; event: string; step: number; pid: number; t: number }>(log);
      for (const id of runs) {
        const status = readStatus(join(out, 'runs', id))!;
        expect(status.state).toBe('succeeded');
        const mine = records.filter((r) => r.name === status.name);
        // Never completed twice.
        expect(mine.filter((r) => r.event === 'end')).toHaveLength(1);
        // Every start resumed from the last checkpoint written before it (a multiple of 3, or the
        // step where the orphaned runner's stop request checkpointed), or from 0 if there was none.
        const starts = mine.filter((r) => r.event === 'start');
        for (const s of starts) {
          const ckpts = mine.filter((r) => r.event === 'checkpoint' && r.t < s.t).map((r) => r.step);
          expect(s.step, `${status.name} started at ${s.step} after checkpoints ${ckpts.join(',')}`).toBe(ckpts.length ? Math.max(...ckpts) : 0);
          if (s.step > 0) resumed += 1;
        }
        // At most one step is run twice (killed between a step and its checkpoint).
        const steps = mine.filter((r) => r.event === 'step').map((r) => r.step);
        const repeats = steps.length - new Set(steps).size;
        expect(repeats, `steps ${steps.join(',')}`).toBeLessThanOrEqual(3);
        expect(new Set(steps)).toEqual(new Set([1, 2, 3, 4, 5, 6, 7, 8]));
        // events.jsonl is readable (a torn last line is dropped, never parsed).
        expect(() => readJsonl(join(out, 'runs', id, 'events.jsonl'))).not.toThrow();
      }
      // No process of either invocation is left: workers that ran, and runners or workers that
      // never got a run (the CLI died right after forking them).
      const pids = new Set(records.map((r) => r.pid));
      const gone = await waitFor(() => [...pids].every((p) => !isAlive(p)) && processesOf(out).length === 0, 5000);
      expect(gone, `trial ${trial}: still alive: ${processesOf(out).join(', ')}`).toBe(true);
      expect(existsSync(join(out, '.lock'))).toBe(false);
    }
    // The trials really interrupted runs mid-way (the delays are seeded: this holds on every run).
    expect(resumed).toBeGreaterThanOrEqual(3);
  }, 240_000);
});

describe('two CLIs on one sweep dir', () => {
  it('the second exits with code 3 and says who holds the sweep', async () => {
    const out = mkdtempSync(join(tmpdir(), 'two-clis-'));
    const log = join(out, 'times.jsonl');
    const first = cli(out, log, [], 0.4);
    const firstDone = finished(first);
    expect(await waitFor(() => existsSync(join(out, '.lock')), 20_000)).toBe(true);
    const second = await finished(cli(out, log));
    expect(second.code).toBe(3);
    expect(second.err).toContain('in use by another dpo-sweep process');
    expect(second.err).toContain(String(first.pid));
    const result = await firstDone;
    expect(result.code).toBe(0);
    expect(readFileSync(log, 'utf8').split('\n').filter((l) => l.includes('"end"'))).toHaveLength(2);
  }, 60_000);
});
