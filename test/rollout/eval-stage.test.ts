/**
 * The plan's eval stage with a fake worker: which runs get outputs (succeeded, no eval.json yet), what the
 * generate request says (final model, the run's reference for KL, prompts, sampling), the baselines
 * (stage:sft, reference), and a failing job failing only itself.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ensureRunDir, initialStatus, writeJsonAtomic, type RunState } from '../../src/execute/run-dir.js';
import { evalOutputsPath, planEvalJobs, referenceKey, runEvalStage, type EvalOutcome } from '../../src/rollout/eval-stage.js';
import { readRolloutState, type WorkerCall } from '../../src/rollout/manager.js';
import { RunSettingsSchema, type RunSettingsInput, type RunSpec } from '../../src/sweep/run-spec.js';

function spec(id: string, name: string, settings: RunSettingsInput): RunSpec {
  return { id, name, sweep: 's', varied: {}, settings: RunSettingsSchema.parse(settings) };
}

function sweepDir(): string {
  return mkdtempSync(join(tmpdir(), 'eval-stage-'));
}

function setState(out: string, s: RunSpec, state: RunState): void {
  const dir = join(out, 'runs', s.id);
  ensureRunDir(dir, s);
  writeJsonAtomic(join(dir, 'status.json'), { ...initialStatus(s, dir), state, ...(state === 'succeeded' ? { final_dir: join(dir, 'final') } : {}) });
}

/** Writes the outputs file like the real `generate` does, and records the requests. */
function fakeGenerate(failFor: string[] = []) {
  const requests: Array<Record<string, unknown>> = [];
  const call: WorkerCall = async (fn, request, o) => {
    const r = request as Record<string, unknown>;
    requests.push({ fn, ...r });
    if (failFor.includes(String(r.generator))) throw new Error(`boom for ${String(r.generator)}`);
    o.onEvent({ kind: 'rollout-progress', phase: 'eval', done: 2, total: 2, tokens: 16, tokens_per_s: 8 });
    mkdirSync(join(String(r.out), '..'), { recursive: true });
    writeFileSync(String(r.out), JSON.stringify([{ instruction: 'q', output: 'a', generator: r.generator, dataset: 'd', kl: 0.5 }]));
    return { status: 'complete', out: r.out, prompts: 2, outputs: 2, mean_kl: 0.5 };
  };
  return { call, requests };
}

const prompts = '/data/eval-prompts.jsonl';
const base: RunSettingsInput = { model: 'stage:sft@sft1', dataset: { path: '/data/prefs.jsonl' } };

describe('eval stage', () => {
  it('generates outputs for each succeeded run without eval.json, with KL against its reference', async () => {
    const out = sweepDir();
    const a = spec('run-a', 'dpo-beta0.1', base);
    const b = spec('run-b', 'dpo-beta0.2', { ...base, reference: 'builtin:tiny-llama@1' });
    const failed = spec('run-c', 'dpo-broken', base);
    const done = spec('run-d', 'dpo-done', base);
    setState(out, a, 'succeeded');
    setState(out, b, 'succeeded');
    setState(out, failed, 'failed');
    setState(out, done, 'succeeded');
    mkdirSync(join(out, 'runs', done.id, 'rollouts'), { recursive: true });
    writeFileSync(evalOutputsPath(out, done.id), '[]');

    const fake = fakeGenerate();
    const seen: EvalOutcome[] = [];
    const result = await runEvalStage(out, [a, b, failed, done], { prompts, max_new_tokens: 64, n: 2 }, { cacheDir: '/cache', call: fake.call, onOutcome: (o) => seen.push(o) });
    expect(result.failed).toBe(0);
    expect(fake.requests).toEqual([
      {
        fn: 'generate', model: join(out, 'runs', 'run-a', 'final'), reference: join(out, 'runs', 'sft1', 'final'), prompts,
        out: evalOutputsPath(out, 'run-a'), generator: 'dpo-beta0.1', n: 2, max_new_tokens: 64, temperature: 0.7, top_p: 0.9, seed: 42, cache_dir: '/cache',
      },
      expect.objectContaining({ model: join(out, 'runs', 'run-b', 'final'), reference: 'builtin:tiny-llama@1', generator: 'dpo-beta0.2' }),
    ]);
    const byKey = Object.fromEntries(seen.map((o) => [o.key, o]));
    expect(byKey['run-a']).toMatchObject({ status: 'written', mean_kl: 0.5 });
    expect(byKey['run-c']).toMatchObject({ status: 'skipped', reason: 'run failed' });
    expect(byKey['run-d']).toMatchObject({ status: 'exists' });
    expect(readRolloutState(join(out, 'runs', 'run-a', 'rollouts')).jobs['eval']).toMatchObject({ fn: 'generate', status: 'complete', done: 2, total: 2 });

    // A second pass finds everything written: no worker call.
    const again = fakeGenerate();
    const second = await runEvalStage(out, [a, b, failed, done], { prompts, max_new_tokens: 64, n: 2 }, { cacheDir: '/cache', call: again.call });
    expect(again.requests).toEqual([]);
    expect(second.outcomes.filter((o) => o.status === 'exists').map((o) => o.key).sort()).toEqual(['run-a', 'run-b', 'run-d']);
  });

  it('writes the baseline outputs: the SFT stage, or each distinct reference model', () => {
    const out = sweepDir();
    const stage = spec('sft1', 'plan-sft', { algorithm: 'sft', dataset: { path: '/data/sft.jsonl' } });
    const a = spec('run-a', 'a', base);
    setState(out, stage, 'succeeded');
    setState(out, a, 'succeeded');
    const sft = planEvalJobs(out, [a], { prompts }, { cacheDir: '/c', judgeBaseline: 'stage:sft', stages: [stage] });
    const sftJob = sft.jobs.find((j) => j.kind === 'baseline')!;
    expect(sftJob).toMatchObject({ key: 'sft1', name: 'plan-sft', out: evalOutputsPath(out, 'sft1') });
    expect(sftJob.request).toMatchObject({ model: join(out, 'runs', 'sft1', 'final'), reference: join(out, 'runs', 'sft1', 'final'), generator: 'plan-sft' });

    const b = spec('run-b', 'b', { model: 'builtin:tiny-llama', dataset: { path: '/data/prefs.jsonl' } });
    const c = spec('run-c', 'c', { model: 'builtin:tiny-llama', reference: 'builtin:tiny-llama', dataset: { path: '/data/prefs.jsonl' } });
    setState(out, b, 'succeeded');
    setState(out, c, 'succeeded');
    const ref = planEvalJobs(out, [a, b, c], { prompts }, { cacheDir: '/c', judgeBaseline: 'reference' });
    const baselines = ref.jobs.filter((j) => j.kind === 'baseline');
    expect(baselines.map((j) => j.request.model)).toEqual([join(out, 'runs', 'sft1', 'final'), 'builtin:tiny-llama']);
    expect(baselines[1]).toMatchObject({ key: referenceKey('builtin:tiny-llama'), name: 'reference', out: join(out, 'baselines', referenceKey('builtin:tiny-llama'), 'rollouts', 'eval.json') });
  });

  it('takes prompts from eval.prompts (relative to the plan) or the dataset eval split, else skips', () => {
    const out = sweepDir();
    const withSplit = spec('run-a', 'a', { model: 'builtin:tiny-llama', dataset: { path: '/data/prefs.jsonl', eval_split: 'train[90%:]' } });
    const without = spec('run-b', 'b', { model: 'builtin:tiny-llama', dataset: { name: 'org/data' } });
    setState(out, withSplit, 'succeeded');
    setState(out, without, 'succeeded');
    const fromDataset = planEvalJobs(out, [withSplit, without], {}, { cacheDir: '/c' });
    expect(fromDataset.jobs.map((j) => [j.key, j.request.prompts, j.request.split])).toEqual([['run-a', '/data/prefs.jsonl', 'train[90%:]']]);
    expect(fromDataset.outcomes).toEqual([expect.objectContaining({ key: 'run-b', status: 'skipped', reason: expect.stringMatching(/eval_split/) })]);
    const relative = planEvalJobs(out, [without], { prompts: 'data/eval.jsonl' }, { cacheDir: '/c', planDir: '/plans' });
    expect(relative.jobs[0]!.request.prompts).toBe('/plans/data/eval.jsonl');
    const hub = planEvalJobs(out, [without], { prompts: 'tatsu-lab/alpaca_eval' }, { cacheDir: '/c', planDir: '/plans' });
    expect(hub.jobs[0]!.request.prompts).toBe('tatsu-lab/alpaca_eval');
  });

  it('a failing job fails only itself and leaves no outputs file', async () => {
    const out = sweepDir();
    const a = spec('run-a', 'a', base);
    const b = spec('run-b', 'b', base);
    setState(out, a, 'succeeded');
    setState(out, b, 'succeeded');
    const fake = fakeGenerate(['a']);
    const result = await runEvalStage(out, [a, b], { prompts }, { cacheDir: '/c', call: fake.call });
    expect(result.failed).toBe(1);
    expect(result.outcomes.find((o) => o.key === 'run-a')).toMatchObject({ status: 'failed', reason: 'boom for a' });
    expect(existsSync(evalOutputsPath(out, 'run-a'))).toBe(false);
    expect(JSON.parse(readFileSync(evalOutputsPath(out, 'run-b'), 'utf8'))[0].generator).toBe('b');
    expect(readRolloutState(join(out, 'runs', 'run-a', 'rollouts')).jobs['eval']).toMatchObject({ status: 'failed', error: 'boom for a' });
  });
});
