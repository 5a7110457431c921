/** Small hand-made `ReportData` for the pure report tests. */
import { cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { JudgeData, ReportData, RunData } from '../../src/report/collect.js';

export const FIXTURES = resolve(__dirname, '../fixtures/report');
export const SWEEP_FIXTURE = join(FIXTURES, 'sweep');
export const JUDGE_FIXTURE = join(FIXTURES, 'judge-only');

/** A copy of a fixture dir in a temp folder (reports are written inside the dir). */
export function copyFixture(name: 'sweep' | 'judge-only'): string {
  const dir = mkdtempSync(join(tmpdir(), 'report-'));
  cpSync(join(FIXTURES, name), join(dir, name), { recursive: true });
  return join(dir, name);
}

export interface RunInput {
  name: string;
  seed?: number | null;
  state?: RunData['state'];
  varied?: Record<string, unknown>;
  loss?: number;
  evalLoss?: number;
  margin?: number;
  /** Judge win rate and its interval (counts are derived from 40 pairs). */
  win?: number;
  ci?: [number, number];
}

export function judgeData(win: number, ci: [number, number], baseline = 'sft'): JudgeData {
  return {
    dir: 'judge/sft',
    baseline,
    summary: { n_pairs: 40, wins: Math.round(win * 40), losses: 40 - Math.round(win * 40), ties: 0, invalid: 0, win_rate: win, win_rate_ci: ci, lc_win_rate: win },
    records: [],
    outputs: {},
    outputs_note: null,
  };
}

export function runData(r: RunInput): RunData {
  const seed = r.seed === undefined ? null : r.seed;
  const metrics: Record<string, number> = {};
  if (r.loss !== undefined) metrics.loss = r.loss;
  if (r.margin !== undefined) metrics['rewards/margins'] = r.margin;
  return {
    id: `id-${r.name}`,
    name: r.name,
    varied: r.varied ?? (seed === null ? {} : { 'training.seed': seed }),
    seed,
    algorithm: 'dpo',
    beta: 0.1,
    state: r.state ?? 'succeeded',
    step: 10,
    total: 10,
    attempt: 1,
    error_class: r.state === 'failed' ? 'nan-loss' : null,
    error: r.state === 'failed' ? 'loss is NaN' : null,
    log: `runs/id-${r.name}/worker.log`,
    started_at: null,
    finished_at: null,
    status_metrics: {},
    steps: [{ step: 10, epoch: 1, metrics }],
    evals: r.evalLoss === undefined ? [] : [{ step: 10, metrics: { eval_loss: r.evalLoss } }],
    margins: [],
    rollouts: null,
    judges: r.win === undefined ? [] : [judgeData(r.win, r.ci ?? [r.win - 0.1, r.win + 0.1])],
  };
}

export function sweepData(runs: RunInput[], options: { metric?: string | null; baseline?: string | null } = {}): ReportData {
  return {
    kind: 'sweep',
    dir: '/nowhere/sweep',
    name: 'unit',
    sweep: { plan_file: 'plan.yaml', plan_hash: 'abc', created: null, updated: null, versions: {} },
    report: { formats: null, metric: options.metric ?? null },
    judge_config: options.baseline === undefined ? null : { preset: 'hh', baseline: options.baseline, model: null },
    runs: runs.map(runData),
    judge: null,
    warnings: [],
  };
}
