import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { collectReportData, detectDir, numbers } from '../../src/report/collect.js';
import { copyFixture, JUDGE_FIXTURE, SWEEP_FIXTURE } from './helpers.js';

const copies: string[] = [];
afterEach(() => {
  for (const c of copies.splice(0)) rmSync(join(c, '..'), { recursive: true, force: true });
});

describe('collectReportData', () => {
  it('tells a sweep dir, a judge dir and anything else apart', () => {
    expect(detectDir(SWEEP_FIXTURE)).toBe('sweep');
    expect(detectDir(JUDGE_FIXTURE)).toBe('judge');
    expect(detectDir(join(SWEEP_FIXTURE, 'runs'))).toBeNull();
  });

  it('reads every listed run, failed and unstarted ones included, in sweep order', async () => {
    const data = await collectReportData(SWEEP_FIXTURE);
    expect(data).toMatchObject({ kind: 'sweep', name: 'fixture-scan', report: { metric: 'win_rate' }, judge_config: { baseline: 'stage:sft' } });
    expect(data.runs.map((r) => [r.name, r.state])).toEqual([
      ['dpo-seed1', 'succeeded'],
      ['dpo-seed2', 'succeeded'],
      ['dpo-seed3', 'succeeded'],
      ['dyn-seed1', 'succeeded'],
      ['dyn-seed2', 'succeeded'],
      ['dyn-seed3', 'failed'],
      ['bdpo-seed1', 'succeeded'],
      ['bdpo-seed2', 'running'],
      ['bdpo-seed3', 'missing'],
    ]);
    const failed = data.runs[5]!;
    expect(failed).toMatchObject({ error_class: 'nan-loss', step: 12, attempt: 2, seed: 3, algorithm: 'dynamic-beta-dpo' });
    expect(failed.error).toMatch(/^loss is NaN at step 12/);
    // The run wrote an absolute log path on another machine; the report shows it inside the sweep dir.
    expect(failed.log).toBe(`runs/${failed.id}/worker.log`);
    expect(failed.status_metrics.loss).toBeNaN();
    expect(failed.status_metrics.grad_norm).toBe(Number.POSITIVE_INFINITY);
  });

  it('drops a torn last events line without a warning, keeps the rest', async () => {
    const data = await collectReportData(SWEEP_FIXTURE);
    const bdpo = data.runs.find((r) => r.name === 'bdpo-seed1')!;
    expect(bdpo.steps).toHaveLength(20);
    expect(bdpo.evals.map((e) => e.step)).toEqual([10, 20]);
    expect(data.warnings).toEqual([]);
  });

  it('reads margins (β from beta or beta_used), rollouts KL and the judgment with its outputs', async () => {
    const data = await collectReportData(SWEEP_FIXTURE);
    const dyn = data.runs.find((r) => r.name === 'dyn-seed1')!;
    const bdpo = data.runs.find((r) => r.name === 'bdpo-seed1')!;
    expect(dyn.margins).toHaveLength(20);
    expect(dyn.margins.every((m) => m.beta !== null)).toBe(true);
    expect(bdpo.margins.every((m) => m.beta !== null)).toBe(true);
    expect(data.runs[0]!.margins.every((m) => m.beta === null)).toBe(true);
    expect(dyn.rollouts).toMatchObject({ n: 40, n_kl: 40 });
    expect(dyn.judges).toHaveLength(1);
    const judge = dyn.judges[0]!;
    expect(judge).toMatchObject({ baseline: 'sft', dir: `runs/${dyn.id}/judge/stage-sft`, outputs_note: null });
    expect(judge.records).toHaveLength(80); // 40 pairs × both orders
    expect(Object.keys(judge.outputs)).toHaveLength(40);
  });

  it('reads a bare judge dir, finding the outputs files relative to it', async () => {
    const data = await collectReportData(JUDGE_FIXTURE);
    expect(data).toMatchObject({ kind: 'judge', name: 'judge-only', runs: [] });
    expect(data.judge!.baseline).toBe('sft');
    expect(Object.keys(data.judge!.outputs)).toHaveLength(30);
  });

  it('survives broken files: a bad JSONL line and a bad summary become warnings', async () => {
    const dir = copyFixture('sweep');
    copies.push(dir);
    const data0 = await collectReportData(dir);
    const run = data0.runs[0]!;
    const events = join(dir, 'runs', run.id, 'events.jsonl');
    writeFileSync(events, '{"kind":"step","step":1}\nnot json\n{"kind":"step","step":2}\n');
    writeFileSync(join(dir, 'runs', data0.runs[1]!.id, 'judge', 'stage-sft', 'summary.json'), '{ torn');
    mkdirSync(join(dir, 'runs', 'orphan0000'), { recursive: true });
    const data = await collectReportData(dir);
    expect(data.runs[0]!.steps).toEqual([]);
    expect(data.runs[1]!.judges).toEqual([]);
    expect(data.warnings).toEqual([
      `runs/${run.id}/events.jsonl: line 2: unreadable JSON line; file ignored`,
      `runs/${data0.runs[1]!.id}/judge/stage-sft/summary.json: not readable JSON; judgment ignored`,
    ]);
    // A run dir not listed in sweep.json is still reported, after the listed ones.
    expect(data.runs.at(-1)).toMatchObject({ id: 'orphan0000', state: 'missing' });
  });

  it('shows no outputs for pairs whose texts changed after judging', async () => {
    const dir = copyFixture('judge-only');
    copies.push(dir);
    writeFileSync(join(dir, 'inputs/sft.jsonl'), '{"instruction":"How do I keep basil alive on a windowsill?","output":"changed","generator":"sft"}\n');
    const data = await collectReportData(dir);
    expect(Object.keys(data.judge!.outputs)).toHaveLength(0);
    expect(data.judge!.outputs_note).toBe('30 judged pair(s) no longer match the outputs files; their texts are not shown');
  });

  it('parses NaN / Infinity strings as numbers and ignores other strings', () => {
    expect(numbers({ a: 'NaN', b: 'Infinity', c: '-Infinity', d: 1, e: 'x', f: null })).toEqual({ a: Number.NaN, b: Infinity, c: -Infinity, d: 1 });
  });
});
