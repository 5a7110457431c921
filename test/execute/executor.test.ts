/**
 * The executor with real runner processes and a fast fake worker (no torch): crashes fail one run,
 * the sweep goes on, finished runs are skipped.
 */
import { appendFileSync, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { readJsonl, readStatus, runPaths } from '../../src/execute/run-dir.js';
import { runSweep } from '../../src/execute/sweep.js';
import { plainPython, repoRoot } from '../helpers/python.js';

const plan = join(repoRoot, 'test/fixtures/plans/e2e-two-betas.yaml');
const fake = join(repoRoot, 'test/fixtures/python/fake_worker.py');

function run(out: string, behaviour: Record<string, unknown>, extra: Partial<Parameters<typeof runSweep>[1]> = {}, planFile = plan) {
  return runSweep(planFile, {
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
    const result = await run(out, { 'beta0.05': { fail: 'kill-runner', fail_at: 2 } }, { retry: { max: 0 } });
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

  it('a plan edit that renames runs keeps them (same ids) and shows the new names', async () => {
    const { writeFileSync } = await import('node:fs');
    const { relative } = await import('node:path');
    const out = mkdtempSync(join(tmpdir(), 'exec-rename-'));
    const first = await run(out, {});
    const renamedPlan = join(out, 'renamed.yaml');
    writeFileSync(renamedPlan, `extends: ${relative(out, plan)}\nname: renamed\n`);
    const second = await run(out, {}, {}, renamedPlan);
    expect(second.specs.map((s) => s.id)).toEqual(first.specs.map((s) => s.id));
    expect(second.statuses.map((s) => [s.name, s.state, s.attempt])).toEqual([
      ['renamed-beta0.05', 'succeeded', 1],
      ['renamed-beta0.1', 'succeeded', 1],
    ]);
    expect(readStatus(join(out, 'runs', first.specs[0]!.id))!.name).toBe('renamed-beta0.05');
  });

  it('a rerun after a writer died mid-line appends whole events: the torn piece is cut off once, at the start', async () => {
    const out = mkdtempSync(join(tmpdir(), 'exec-torn-'));
    const first = await run(out, { 'beta0.1': { fail: 'raise' } });
    const events = runPaths(join(out, 'runs', first.specs[1]!.id)).events;
    appendFileSync(events, '{"t":"2026-11-26T00:00:00Z","kind":"st'); // a runner killed mid-write
    const second = await run(out, {});
    expect(second.statuses.map((s) => s.state)).toEqual(['succeeded', 'succeeded']);
    const after = readJsonl<{ kind: string }>(events);
    expect(after.at(-1)).toMatchObject({ kind: 'run-end', state: 'succeeded' });
    expect(readFileSync(events, 'utf8')).not.toContain('"kind":"st{');
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

function readLog(path: string): Array<{ name: string; event: string; t: number; step: number; pid: number; attempt?: number; batch_size?: number; grad_accum?: number }> {
  return readJsonl(path);
}

describe('retries, device slots', () => {
  it('retries a killed worker with back-off and succeeds on the next attempt', async () => {
    const out = mkdtempSync(join(tmpdir(), 'exec-retry-'));
    const result = await run(out, { 'beta0.05': { fail: 'kill-self', fail_at: 3, fail_attempts: [1] } }, {
      retry: { backoff_s: 0.2 },
    });
    const [retried, ok] = result.statuses;
    expect(retried).toMatchObject({ state: 'succeeded', attempt: 2 });
    expect(ok).toMatchObject({ state: 'succeeded', attempt: 1 });
    const events = readJsonl<{ kind: string; after?: string }>(runPaths(join(out, 'runs', retried!.id)).events);
    expect(events.filter((e) => e.kind === 'retry')).toEqual([expect.objectContaining({ after: 'killed', delay_ms: 200 })]);
    // The second attempt resumed from the checkpoint the first wrote at step 2.
    expect(events.some((e) => e.kind === 'resume')).toBe(true);
  });

  it('does not retry a Python exception (it would fail the same way)', async () => {
    const out = mkdtempSync(join(tmpdir(), 'exec-noretry-'));
    const result = await run(out, { 'beta0.05': { fail: 'raise' } }, { retry: { backoff_s: 0 } });
    expect(result.statuses[0]).toMatchObject({ state: 'failed', attempt: 1, error_class: 'python-exception' });
  });

  it('an out-of-memory retry halves the micro-batch and doubles accumulation (global batch kept)', async () => {
    const out = mkdtempSync(join(tmpdir(), 'exec-oom-'));
    const log = join(out, 'times.jsonl');
    // The plan's micro-batch is 4 (× accumulation 1); only a micro-batch of 1 fits.
    const result = await run(out, { '*': { oom_above: 1, log_times: log } }, { retry: { backoff_s: 0, max: 3 } });
    expect(result.statuses.map((s) => [s.state, s.attempt])).toEqual([
      ['succeeded', 3],
      ['succeeded', 3],
    ]);
    const starts = readLog(log).filter((r) => r.event === 'start' && r.name.includes('beta0.05'));
    expect(starts.map((r) => [r.batch_size, r.grad_accum])).toEqual([
      [4, 1],
      [2, 2],
      [1, 4],
    ]);
    const events = readJsonl<{ kind: string; note?: string }>(runPaths(join(out, 'runs', result.specs[0]!.id)).events);
    expect(events.find((e) => e.kind === 'retry')?.note).toContain('micro-batch 2 × accumulation 2');
  });

  it('a rerun starts from the micro-batch an earlier out-of-memory retry reached, and says so', async () => {
    const out = mkdtempSync(join(tmpdir(), 'exec-oom-rerun-'));
    const log = join(out, 'times.jsonl');
    // Only a micro-batch of 1 fits; one retry gets to 2 × 2, which still runs out of memory.
    const first = await run(out, { '*': { oom_above: 1, log_times: log } }, { retry: { backoff_s: 0, max: 1 } });
    expect(first.statuses.map((s) => s.state)).toEqual(['failed', 'failed']);
    const dir = join(out, 'runs', first.specs[0]!.id);
    expect(JSON.parse(readFileSync(runPaths(dir).overrides, 'utf8'))).toEqual({ training: { batch_size: 2, grad_accum: 2 } });
    const warnings: string[] = [];
    const second = await run(out, { '*': { oom_above: 1, log_times: log } }, {
      retry: { backoff_s: 0, max: 1 },
      listener: (e) => {
        if (e.kind === 'run-event' && e.event.kind === 'warning' && e.id === first.specs[0]!.id) warnings.push(String(e.event['message']));
      },
    });
    expect(second.statuses.map((s) => s.state)).toEqual(['succeeded', 'succeeded']);
    const starts = readLog(log).filter((r) => r.event === 'start' && r.name.includes('beta0.05'));
    // First invocation 4 × 1 then 2 × 2; the rerun starts at 2 × 2, not at the plan's 4 × 1.
    expect(starts.map((r) => [r.batch_size, r.grad_accum])).toEqual([
      [4, 1],
      [2, 2],
      [2, 2],
      [1, 4],
    ]);
    expect(warnings).toEqual([expect.stringContaining('micro-batch 2 × accumulation 2 (the plan says 4 × 1), as an earlier out-of-memory retry left it')]);
  });

  it('two CPU slots run two runs at the same time', async () => {
    const out = mkdtempSync(join(tmpdir(), 'exec-slots-'));
    const log = join(out, 'times.jsonl');
    const t0 = Date.now();
    const result = await run(out, { '*': { steps: 5, step_s: 0.3, log_times: log } }, { maxParallel: 2 });
    expect(result.statuses.map((s) => s.state)).toEqual(['succeeded', 'succeeded']);
    const records = readLog(log);
    const span = (name: string) => {
      const mine = records.filter((r) => r.name.includes(name));
      return [mine.find((r) => r.event === 'start')!.t, mine.find((r) => r.event === 'end')!.t] as const;
    };
    const [a0, a1] = span('beta0.05');
    const [b0, b1] = span('beta0.1');
    expect(Math.max(a0, b0)).toBeLessThan(Math.min(a1, b1)); // the intervals overlap
    expect(new Set(records.map((r) => r.pid)).size).toBe(2); // two workers
    expect(Date.now() - t0).toBeLessThan(20_000);
  });
});

const staged = join(repoRoot, 'test/fixtures/plans/staged.yaml');
/** The staged plan (an SFT stage, then two runs from its model), no retries. */
const runStaged = (out: string, behaviour: Record<string, unknown>, extra: Partial<Parameters<typeof runSweep>[1]> = {}) =>
  run(out, behaviour, { retry: { max: 0 }, ...extra }, staged);

describe('stages', () => {

  it('runs the SFT stage once, then every sweep run from its final model', async () => {
    const out = mkdtempSync(join(tmpdir(), 'exec-stage-'));
    const log = join(out, 'times.jsonl');
    const result = await runStaged(out, { '*': { log_times: log } });
    expect(result.statuses.map((s) => [s.name, s.state])).toEqual([
      ['staged-sft', 'succeeded'],
      ['staged-beta0.05', 'succeeded'],
      ['staged-beta0.1', 'succeeded'],
    ]);
    const [sft, ...sweep] = result.specs;
    expect(sft!.settings.algorithm).toBe('sft');
    for (const spec of sweep) {
      expect(spec.settings.model).toBe(`stage:sft@${sft!.id}`);
      // The worker was given the stage's final model (the fake records the model it saw).
      const seen = readJsonl<{ model: string }>(join(out, 'runs', spec.id, 'events.jsonl')).find((e) => 'model' in e);
      expect(seen?.model).toBe(join(out, 'runs', sft!.id, 'final'));
    }
    const order = readLog(log).filter((r) => r.event === 'start').map((r) => r.name);
    expect(order[0]).toBe('staged-sft');
    // A rerun skips the finished stage and runs.
    const again = await runStaged(out, { '*': { log_times: log } });
    expect(again.statuses.every((s) => s.state === 'succeeded')).toBe(true);
    expect(readLog(log).filter((r) => r.event === 'start')).toHaveLength(3);
  });

  it('a failed stage fails the runs that need it, without running them', async () => {
    const out = mkdtempSync(join(tmpdir(), 'exec-stage-fail-'));
    const result = await runStaged(out, { 'staged-sft': { fail: 'raise' } });
    expect(result.statuses.map((s) => [s.state, s.error_class])).toEqual([
      ['failed', 'python-exception'],
      ['failed', 'stage-failed'],
      ['failed', 'stage-failed'],
    ]);
  });
});

describe('one worker call through a runner (generate, rollout, …)', () => {
  it('returns the result, forwards events, and maps Python errors', async () => {
    const { callWorker, WorkerCallError } = await import('../../src/execute/worker-call.js');
    const out = mkdtempSync(join(tmpdir(), 'exec-call-'));
    const events: unknown[] = [];
    const result = await callWorker('describe', {}, { python: plainPython(), logPath: join(out, 'call.log'), onEvent: (e) => events.push(e) });
    expect(result).toMatchObject({ algorithms: ['sft', 'dpo', 'beta-dpo', 'dynamic-beta-dpo'] });
    await expect(callWorker('no_such_function', {}, { python: plainPython(), logPath: join(out, 'call.log') })).rejects.toBeInstanceOf(WorkerCallError);
  });
});

describe('the standalone runner (a Slurm task)', () => {
  it('runs the run in its directory with the overrides recorded there', async () => {
    const { execFileSync } = await import('node:child_process');
    const { mkdirSync } = await import('node:fs');
    const { expandPlan } = await import('../../src/sweep/expand.js');
    const { loadPlan } = await import('../../src/plan/load.js');
    const { writeOverrides, writeJsonAtomic } = await import('../../src/execute/run-dir.js');
    const out = mkdtempSync(join(tmpdir(), 'standalone-'));
    const spec = expandPlan((await loadPlan(plan)).plan)[0]!;
    const dir = join(out, 'runs', spec.id);
    mkdirSync(dir, { recursive: true });
    writeJsonAtomic(join(dir, 'spec.json'), spec);
    writeOverrides(dir, { model: '/models/from-a-stage', training: { batch_size: 2, grad_accum: 2 } });
    const log = join(out, 'times.jsonl');
    execFileSync(process.execPath, ['--import', 'tsx', join(repoRoot, 'src/execute/runner.ts'), '--run-dir', dir, '--cache-dir', join(out, 'cache'), '--attempt', '3', '--ref-sharing', '4'], {
      cwd: repoRoot,
      env: {
        ...process.env,
        DPO_SWEEP_RUNNER_PYTHON: plainPython(),
        DPO_SWEEP_WORKER_TARGET: fake,
        FAKE_WORKER: JSON.stringify({ '*': { log_times: log } }),
      },
      timeout: 60_000,
    });
    const status = readStatus(dir)!;
    expect(status).toMatchObject({ state: 'succeeded', attempt: 3 });
    const start = readLog(log).find((r) => r.event === 'start')!;
    expect([start.batch_size, start.grad_accum]).toEqual([2, 2]);
    const seen = readJsonl<{ kind: string; model?: string; ref_sharing?: number }>(join(dir, 'events.jsonl')).find((e) => e.kind === 'train-begin');
    expect(seen?.model).toBe('/models/from-a-stage');
    expect(seen?.ref_sharing).toBe(4); // the Slurm manifest's third column
  });

  it('refuses resources.nodes_per_run > 1 on the local executor before anything runs', async () => {
    const out = mkdtempSync(join(tmpdir(), 'exec-nodes-'));
    const error = await run(out, {}, { sets: ['base.resources.nodes_per_run=2'] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).message).toMatch(/nodes_per_run > 1 needs the Slurm executor/);
    expect((error as InputError).details).toEqual([expect.stringMatching(/nodes_per_run 2$/), expect.stringMatching(/nodes_per_run 2$/)]);
    expect(existsSync(join(out, 'runs'))).toBe(false); // nothing started
  });
});

describe('bad run dirs, give-ups and stops', () => {
  it('a run its runner cannot write fails with the cause naming the file, never hangs; the other run still runs', async () => {
    const { mkdirSync } = await import('node:fs');
    const { expandPlan } = await import('../../src/sweep/expand.js');
    const { loadPlan } = await import('../../src/plan/load.js');
    const out = mkdtempSync(join(tmpdir(), 'exec-unwritable-'));
    const broken = expandPlan((await loadPlan(plan)).plan)[0]!;
    // A folder where events.jsonl should be: every append the runner makes fails (as on a full disk).
    mkdirSync(join(out, 'runs', broken.id, 'events.jsonl'), { recursive: true });
    const result = await run(out, {}, { retry: { max: 0 } });
    const [failed, ok] = result.statuses;
    expect(failed).toMatchObject({ state: 'failed', error_class: 'runner-crash' });
    expect(failed!.error).toMatch(/^the runner could not run it: EISDIR: .*events\.jsonl/);
    expect(readStatus(join(out, 'runs', broken.id))).toMatchObject({ state: 'failed', error_class: 'runner-crash' });
    expect(ok).toMatchObject({ state: 'succeeded', step: 5 });
  }, 30_000);

  it('a status.json that is JSON but not this run\'s status starts the run afresh, never hangs', async () => {
    const { mkdirSync, writeFileSync } = await import('node:fs');
    const { expandPlan } = await import('../../src/sweep/expand.js');
    const { loadPlan } = await import('../../src/plan/load.js');
    const out = mkdtempSync(join(tmpdir(), 'exec-foreign-status-'));
    const [a, b] = expandPlan((await loadPlan(plan)).plan);
    for (const [spec, text] of [[a!, '{}'], [b!, JSON.stringify({ id: 'another-run', name: 'x', state: 'succeeded' })]] as const) {
      mkdirSync(join(out, 'runs', spec.id), { recursive: true });
      writeFileSync(join(out, 'runs', spec.id, 'status.json'), text); // edited by hand, copied from another run
    }
    const result = await run(out, {});
    expect(result.statuses.map((s) => [s.id, s.name, s.state, s.attempt])).toEqual([
      [a!.id, a!.name, 'succeeded', 1],
      [b!.id, b!.name, 'succeeded', 1],
    ]);
    expect(readStatus(join(out, 'runs', a!.id))).toMatchObject({ id: a!.id, name: a!.name, state: 'succeeded', total: 5 });
  }, 30_000);

  it('out of memory at micro-batch 1 fails with a status that says why it is not retried', async () => {
    const out = mkdtempSync(join(tmpdir(), 'exec-oom-floor-'));
    // Nothing fits: 4 → 2 → 1, then there is nothing left to halve (retries.max 5 is not the limit).
    const result = await run(out, { '*': { oom_above: 0 } }, { retry: { backoff_s: 0, max: 5 } });
    for (const status of result.statuses) {
      expect(status).toMatchObject({ state: 'failed', error_class: 'oom', attempt: 3 });
      expect(status.error).toContain('out of memory (fake) at micro-batch 1');
      expect(status.error).toContain('not retried: out of memory at micro-batch 1 (× accumulation 4): nothing left to halve');
      const dir = join(out, 'runs', status.id);
      expect(readStatus(dir)!.error).toBe(status.error);
    }
  });

  it('a retried class whose retries are used up says so; max 0 never retries', async () => {
    const out = mkdtempSync(join(tmpdir(), 'exec-gave-up-'));
    const result = await run(out, { 'beta0.05': { fail: 'kill-self', fail_at: 2 } }, { retry: { max: 0 } });
    expect(result.statuses[0]).toMatchObject({ state: 'failed', error_class: 'killed', attempt: 1 });
    expect(result.statuses[0]!.error).toMatch(/ — not retried: gave up after 1 attempt \(retries\.max is 0\)$/);
    expect(result.statuses[1]).toMatchObject({ state: 'succeeded' });
  });

  it('a stop (Ctrl-C) during the stage leaves the sweep runs queued, not failed; the next invocation runs them', async () => {
    const out = mkdtempSync(join(tmpdir(), 'exec-stage-stop-'));
    const stop = new AbortController();
    const first = await runStaged(out, { '*': { steps: 3, step_s: 0.3 } }, {
      stopSignal: stop.signal,
      listener: (e) => {
        if (e.kind === 'run-event' && e.event.kind === 'step') stop.abort();
      },
    });
    expect(first.statuses.map((s) => [s.name, s.state, s.error_class])).toEqual([
      ['staged-sft', 'cancelled', 'cancelled'],
      ['staged-beta0.05', 'queued', null],
      ['staged-beta0.1', 'queued', null],
    ]);
    for (const spec of first.specs.slice(1)) expect(readStatus(join(out, 'runs', spec.id))).toMatchObject({ state: 'queued', error: null });
    const second = await runStaged(out, { '*': { steps: 3 } });
    expect(second.statuses.map((s) => s.state)).toEqual(['succeeded', 'succeeded', 'succeeded']);
  }, 60_000);

  it('--out that is a file, or under a file, is an input error naming the path; nothing is written', async () => {
    const { writeFileSync, readFileSync } = await import('node:fs');
    const root = mkdtempSync(join(tmpdir(), 'exec-out-file-'));
    const file = join(root, 'results.txt');
    writeFileSync(file, 'keep me');
    const asFile = await run(file, {}).catch((e: unknown) => e);
    expect(asFile).toBeInstanceOf(InputError);
    expect((asFile as Error).message).toBe(`the sweep directory ${file} is a file, not a directory`);
    const under = await run(join(file, 'sweep'), {}).catch((e: unknown) => e);
    expect(under).toBeInstanceOf(InputError);
    expect((under as Error).message).toBe(`cannot create the sweep directory ${join(file, 'sweep')}: a part of its path is a file`);
    expect(readFileSync(file, 'utf8')).toBe('keep me');
  });
});
