/**
 * The rollout manager with a fake worker: state.json through a job's life, progress (prompts done /
 * total, tokens/s), a finished job is never run again, a crashed or stopped one continues, and the fake
 * worker — which, like the real one, skips prompts its output file already holds — never regenerates a
 * finished prompt across crashes.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { WorkerEvent } from '../../src/execute/events.js';
import { formatProgress, readRolloutState, requestHash, runRolloutJob, throttle, type RolloutProgress, type WorkerCall, type WorkerCallOpts } from '../../src/rollout/manager.js';

/**
 * A fake `rollout` worker over `prompts` ids: appends one line per prompt to responses.jsonl, skipping
 * ids already there (as rollout.py does), emits progress events, and can crash after N prompts.
 */
function fakeRollout(dir: string, prompts: string[], opts: { crashAfter?: number; stopAfter?: number } = {}) {
  const generated: string[] = [];
  const calls: unknown[] = [];
  const call: WorkerCall = async (fn, request, o: WorkerCallOpts) => {
    calls.push({ fn, request });
    const file = join(dir, 'responses.jsonl');
    const done = new Set(existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);
    const limit = (request as { limit?: number }).limit ?? prompts.length;
    const selected = prompts.slice(0, limit);
    let count = done.size;
    let made = 0;
    const event = (e: WorkerEvent) => o.onEvent(e);
    event({ kind: 'rollout-progress', phase: 'generate', done: count, total: selected.length, tokens: 0, tokens_per_s: 0 });
    for (const id of selected) {
      if (done.has(id)) continue;
      if (opts.crashAfter !== undefined && made >= opts.crashAfter) throw new Error('the runner process was killed by SIGKILL');
      if (opts.stopAfter !== undefined && made >= opts.stopAfter) {
        return { status: 'interrupted', prompts_generated: count, prompts_selected: selected.length };
      }
      appendFileSync(file, `${id}\n`);
      generated.push(id);
      made += 1;
      count += 1;
      event({ kind: 'rollout-progress', phase: 'generate', done: count, total: selected.length, tokens: made * 10, tokens_per_s: made * 10 / 0.5 });
    }
    event({ kind: 'rollout-progress', phase: 'judge', done: selected.length, total: selected.length });
    return {
      status: 'complete',
      prompts_generated: count,
      prompts_selected: selected.length,
      generated_now: made,
      tokens_per_s: 20,
      files: { responses: file, manifest: file },
    };
  };
  return { call, generated, calls };
}

const tmp = () => mkdtempSync(join(tmpdir(), 'rollout-manager-'));
const PROMPTS = ['p0', 'p1', 'p2', 'p3', 'p4', 'p5'];

describe('rollout manager', () => {
  it('records progress and the result in state.json, then skips a finished job', async () => {
    const dir = tmp();
    const fake = fakeRollout(dir, PROMPTS);
    const progress: RolloutProgress[] = [];
    const request = { model: 'm', limit: 4, cache_dir: '/a' };
    const first = await runRolloutJob({ dir, job: 'rollout', fn: 'rollout', request, call: fake.call, onProgress: (p) => progress.push(p), writeEveryMs: 0 });
    expect(first.skipped).toBe(false);
    expect(first.state).toMatchObject({ fn: 'rollout', status: 'complete', done: 4, total: 4, attempts: 1, error: null, tokens_per_s: 20 });
    expect(first.state.request_hash).toBe(requestHash(request));
    expect(progress.filter((p) => p.phase === 'generate').map((p) => p.done)).toEqual([0, 1, 2, 3, 4]);
    expect(progress.at(-1)).toMatchObject({ phase: 'judge', done: 4, total: 4 });
    const onDisk = readRolloutState(dir).jobs['rollout']!;
    expect(onDisk.status).toBe('complete');
    expect(onDisk.result).toMatchObject({ prompts_generated: 4 });

    // Same request (another cache dir is the same request): nothing is called.
    const again = await runRolloutJob({ dir, job: 'rollout', fn: 'rollout', request: { ...request, cache_dir: '/b' }, call: fake.call });
    expect(again.skipped).toBe(true);
    expect(fake.calls).toHaveLength(1);
    // A larger limit continues: only the new prompts are generated.
    const more = await runRolloutJob({ dir, job: 'rollout', fn: 'rollout', request: { ...request, limit: 6 }, call: fake.call });
    expect(more.state).toMatchObject({ status: 'complete', done: 6, total: 6, attempts: 2 });
    expect(fake.generated).toEqual(PROMPTS);
    // --force calls the worker, which finds nothing to do.
    await runRolloutJob({ dir, job: 'rollout', fn: 'rollout', request: { ...request, limit: 6 }, call: fake.call, force: true });
    expect(fake.generated).toEqual(PROMPTS);
    // Outputs deleted: the job runs again even though state.json says complete.
    rmSync(join(dir, 'responses.jsonl'));
    const redo = await runRolloutJob({ dir, job: 'rollout', fn: 'rollout', request: { ...request, limit: 6 }, call: fake.call });
    expect(redo.skipped).toBe(false);
  });

  it('a deleted judged or skipped file makes a finished job run again (to judge again)', async () => {
    const dir = tmp();
    const files = { responses: join(dir, 'rollout_responses.jsonl'), judged: join(dir, 'rollout_judged.jsonl'), skipped: join(dir, 'rollout_skipped.jsonl'), manifest: join(dir, 'manifest.json') };
    let calls = 0;
    const call: WorkerCall = async () => {
      calls += 1;
      for (const f of Object.values(files)) writeFileSync(f, 'x\n');
      return { status: 'complete', prompts_generated: 3, prompts_selected: 3, judged: 2, skipped_ties: 1, skipped_too_few: 0, files };
    };
    const request = { model: 'm', limit: 3 };
    await runRolloutJob({ dir, job: 'rollout', fn: 'rollout', request, call });
    expect((await runRolloutJob({ dir, job: 'rollout', fn: 'rollout', request, call })).skipped).toBe(true);
    rmSync(files.judged);
    expect((await runRolloutJob({ dir, job: 'rollout', fn: 'rollout', request, call })).skipped).toBe(false);
    rmSync(files.skipped);
    expect((await runRolloutJob({ dir, job: 'rollout', fn: 'rollout', request, call })).skipped).toBe(false);
    expect(calls).toBe(3);
    // A job that judged nothing (k = 1: every prompt skipped) needs no judged file.
    const k1 = tmp();
    const noPairs: WorkerCall = async () => {
      writeFileSync(join(k1, 'r.jsonl'), 'x\n');
      writeFileSync(join(k1, 's.jsonl'), 'x\n');
      return { status: 'complete', judged: 0, skipped_too_few: 2, files: { responses: join(k1, 'r.jsonl'), judged: join(k1, 'none.jsonl'), skipped: join(k1, 's.jsonl') } };
    };
    await runRolloutJob({ dir: k1, job: 'rollout', fn: 'rollout', request, call: noPairs });
    expect((await runRolloutJob({ dir: k1, job: 'rollout', fn: 'rollout', request, call: noPairs })).skipped).toBe(true);
  });

  it('a crash is recorded as failed; the rerun continues and never regenerates a finished prompt', async () => {
    const dir = tmp();
    const crashing = fakeRollout(dir, PROMPTS, { crashAfter: 2 });
    const request = { model: 'm', limit: 6 };
    await expect(runRolloutJob({ dir, job: 'rollout', fn: 'rollout', request, call: crashing.call, writeEveryMs: 0 })).rejects.toThrow(/SIGKILL/);
    const failed = readRolloutState(dir).jobs['rollout']!;
    expect(failed).toMatchObject({ status: 'failed', done: 2, total: 6, attempts: 1 });
    expect(failed.error).toMatch(/SIGKILL/);

    const stopping = fakeRollout(dir, PROMPTS, { stopAfter: 1 });
    const stopped = await runRolloutJob({ dir, job: 'rollout', fn: 'rollout', request, call: stopping.call });
    expect(stopped.state).toMatchObject({ status: 'interrupted', attempts: 2, finished_at: null });

    const resumed = fakeRollout(dir, PROMPTS);
    const done = await runRolloutJob({ dir, job: 'rollout', fn: 'rollout', request, call: resumed.call });
    expect(done.state).toMatchObject({ status: 'complete', done: 6, attempts: 3 });
    expect([...crashing.generated, ...stopping.generated, ...resumed.generated]).toEqual(PROMPTS);
    expect(readFileSync(join(dir, 'responses.jsonl'), 'utf8').split('\n').filter(Boolean)).toEqual(PROMPTS);
  });

  it('keeps several jobs in one state file and writes progress at most every writeEveryMs', async () => {
    const dir = tmp();
    let t = 0;
    const now = () => new Date(1_700_000_000_000 + t);
    const writes: number[] = [];
    const call: WorkerCall = async (_fn, _req, o) => {
      for (let i = 1; i <= 10; i++) {
        t += 100;
        o.onEvent({ kind: 'rollout-progress', phase: 'eval', done: i, total: 10, tokens: i * 8, tokens_per_s: 80 });
        writes.push(readRolloutState(dir).jobs['eval']!.done);
      }
      writeFileSync(join(dir, 'eval.json'), '[]');
      return { status: 'complete', prompts: 10, out: join(dir, 'eval.json') };
    };
    await runRolloutJob({ dir, job: 'eval', fn: 'generate', request: { a: 1 }, call, now, writeEveryMs: 300 });
    expect(writes).toEqual([1, 1, 1, 4, 4, 4, 7, 7, 7, 10]);
    await runRolloutJob({ dir, job: 'other', fn: 'generate', request: { a: 2 }, call, now });
    expect(Object.keys(readRolloutState(dir).jobs).sort()).toEqual(['eval', 'other']);
    expect(readRolloutState(dir).jobs['eval']).toMatchObject({ status: 'complete', done: 10, total: 10, tokens: 80, tokens_per_s: 80 });
  });

  it('formats progress lines and throttles them', () => {
    expect(formatProgress({ job: 'r', phase: 'generate', done: 12, total: 100, tokens: 5, tokens_per_s: 345.4 })).toBe('generate 12/100 prompts · 345 tok/s');
    expect(formatProgress({ job: 'r', phase: 'judge', done: 3, total: 4, tokens: 0, tokens_per_s: null })).toBe('judge 3/4 prompts');
    expect(formatProgress({ job: 'r', phase: null, done: 0, total: null, tokens: 0, tokens_per_s: 2.25 })).toBe('generate 0 prompts · 2.3 tok/s');
    const seen: number[] = [];
    const f = throttle<number>(60_000, (v) => seen.push(v), (v) => v === 9);
    for (let i = 0; i < 10; i++) f(i);
    expect(seen).toEqual([0, 9]);
  });
});
