import { describe, expect, it } from 'vitest';
import {
  aggregate,
  canonicalMetric,
  directionOf,
  groupLabel,
  headline,
  metricRule,
  outcomeOf,
  verdictText,
  type Verdict,
} from '../../src/report/aggregate.js';
import { collectReportData } from '../../src/report/collect.js';
import { SWEEP_FIXTURE, sweepData } from './helpers.js';

describe('results table', () => {
  it('groups runs that differ only in training.seed, mean ± t-CI over succeeded seeds (by hand)', () => {
    /*
     * variant a: losses 0.60, 0.64, 0.68 over seeds 1-3 → mean 0.64, s = 0.04,
     *   half-width = t_{0.975,2} · s/√3 = 4.3026527 × 0.0230940 = 0.0993655 → [0.5406345, 0.7393655]
     * variant b: seed 1 succeeded (0.5), seed 2 failed (NaN) → n = 1, no interval
     */
    const data = sweepData([
      { name: 'a-seed1', seed: 1, varied: { beta: 0.1, 'training.seed': 1 }, loss: 0.6 },
      { name: 'a-seed2', seed: 2, varied: { beta: 0.1, 'training.seed': 2 }, loss: 0.64 },
      { name: 'a-seed3', seed: 3, varied: { beta: 0.1, 'training.seed': 3 }, loss: 0.68 },
      { name: 'b-seed1', seed: 1, varied: { beta: 0.2, 'training.seed': 1 }, loss: 0.5 },
      { name: 'b-seed2', seed: 2, varied: { beta: 0.2, 'training.seed': 2 }, loss: Number.NaN, state: 'failed' },
    ]);
    const r = aggregate(data);
    expect(r.varied_keys).toEqual(['beta', 'training.seed']);
    expect(r.groups.map((g) => [g.group, g.runs.length, g.succeeded, g.not_succeeded])).toEqual([
      ['a', 3, 3, 0],
      ['b', 2, 1, 1],
    ]);
    expect(r.groups[0]!.varied).toEqual({ beta: 0.1 });
    const a = r.groups[0]!.metrics.loss;
    expect(a.n).toBe(3);
    expect(a.mean).toBeCloseTo(0.64, 12);
    expect(a.ci![0]).toBeCloseTo(0.5406345, 6);
    expect(a.ci![1]).toBeCloseTo(0.7393655, 6);
    expect(r.groups[1]!.metrics.loss).toEqual({ n: 1, mean: 0.5, sd: null, ci: null });
    expect(r.has_seeds).toBe(true);
    // The failed run keeps its row, with its (non-finite) final loss.
    expect(r.rows[4]!.state).toBe('failed');
    expect(r.rows[4]!.metrics.loss).toBeNaN();
  });

  it('reads final values: last step, last eval, configured β for plain DPO', () => {
    const r = aggregate(sweepData([{ name: 'x', loss: 0.3, evalLoss: 0.35, margin: 1.5 }]));
    expect(r.rows[0]!.metrics).toMatchObject({ loss: 0.3, eval_loss: 0.35, reward_margin: 1.5, beta: 0.1, win_rate: null, kl: null });
  });

  it('names a variant after its runs without the -seedN part', () => {
    expect(groupLabel({ name: 'dpo-beta0.1-seed3', seed: 3 })).toBe('dpo-beta0.1');
    expect(groupLabel({ name: 'dpo-seed3-2', seed: 3 })).toBe('dpo-2');
    expect(groupLabel({ name: 'dpo', seed: null })).toBe('dpo');
    expect(groupLabel({ name: 'seed12', seed: 1 })).toBe('seed12');
  });

  it('fixture: dpo wins over 3 seeds, derived by hand', async () => {
    /*
     * dpo-seed1..3 win rates (wins + ties/2)/40: 27/40 = 0.675, 26/40 = 0.65, 28/40 = 0.70
     * mean 0.675, deviations 0, −0.025, 0.025 → s² = 0.00125/2 = 0.000625 → s = 0.025
     * se = 0.025/√3 = 0.0144338; half = 4.3026527 × 0.0144338 = 0.0621036 → [0.6128964, 0.7371036]
     */
    const data = await collectReportData(SWEEP_FIXTURE);
    const r = aggregate(data);
    const dpo = r.verdicts.find((v) => v.group === 'dpo')!;
    expect(dpo.basis).toBe('t-seeds');
    expect(dpo.win_rate).toBeCloseTo(0.675, 12);
    expect(dpo.ci![0]).toBeCloseTo(0.6128964, 6);
    expect(dpo.ci![1]).toBeCloseTo(0.7371036, 6);
    expect(dpo.outcome).toBe('beats');
    expect(r.verdicts.map((v) => [v.group, v.outcome])).toEqual([
      ['dpo', 'beats'],
      ['dyn', 'no-difference'],
      ['bdpo', 'loses'],
    ]);
    // bdpo: one finished seed → its Wilson interval over 39 valid pairs (one invalid).
    const bdpo = r.verdicts.find((v) => v.group === 'bdpo')!;
    expect(bdpo).toMatchObject({ basis: 'wilson', n_runs: 1, n_pairs: 39 });
    expect(r.best.run?.run).toBe('dpo-seed3');
    expect(r.best.group).toMatchObject({ group: 'dpo', n: 3 });
    expect(r.best.group!.value).toBeCloseTo(0.675, 12);
  });
});

describe('best run', () => {
  const runs = [
    { name: 'r1', loss: 0.5, win: 0.55 },
    { name: 'r2', loss: 0.3, win: 0.52 },
    { name: 'r3', loss: 0.4, win: 0.61 },
    { name: 'r4', loss: 0.1, win: 0.9, state: 'failed' as const },
  ];

  it('lower is better for losses, higher for win rates; failed runs never win', () => {
    expect(aggregate(sweepData(runs, { metric: 'loss' })).best.run).toMatchObject({ run: 'r2', value: 0.3 });
    expect(aggregate(sweepData(runs, { metric: 'win_rate' })).best.run).toMatchObject({ run: 'r3', value: 0.61 });
  });

  it('a -/+ prefix forces the direction', () => {
    const lowWin = aggregate(sweepData(runs, { metric: '-win_rate' }));
    expect(lowWin.metric).toMatchObject({ key: 'win_rate', direction: 'lower', because: 'prefix' });
    expect(lowWin.best.run?.run).toBe('r2');
    const highLoss = aggregate(sweepData(runs, { metric: '+loss' }));
    expect(highLoss.metric).toMatchObject({ key: 'loss', direction: 'higher', because: 'prefix' });
    expect(highLoss.best.run?.run).toBe('r1');
  });

  it('the caller overrides the plan; ties keep the earlier run; aliases and logged names work', () => {
    const data = sweepData([{ name: 'a', margin: 1 }, { name: 'b', margin: 1 }, { name: 'c', margin: 0.5 }], { metric: 'loss' });
    expect(aggregate(data, { metric: 'rewards/margins' }).best.run?.run).toBe('a');
    expect(canonicalMetric('rewards/margins')).toBe('reward_margin');
    expect(canonicalMetric('Win_Rate')).toBe('win_rate');
    expect(canonicalMetric('grad_norm')).toBe('grad_norm');
  });

  it('direction from the name', () => {
    for (const n of ['loss', 'eval_loss', 'kl', 'nll', 'perplexity', 'error_rate']) expect(directionOf(n)).toBe('lower');
    for (const n of ['win_rate', 'lc_win_rate', 'reward_accuracy', 'reward_margin', 'rewards/chosen']) expect(directionOf(n)).toBe('higher');
  });

  it('default metric: win_rate when judged, else eval_loss, else loss', () => {
    expect(aggregate(sweepData([{ name: 'a', loss: 1, evalLoss: 1, win: 0.5 }])).metric.key).toBe('win_rate');
    expect(aggregate(sweepData([{ name: 'a', loss: 1, evalLoss: 1 }])).metric.key).toBe('eval_loss');
    expect(aggregate(sweepData([{ name: 'a', loss: 1 }])).metric).toMatchObject({ key: 'loss', requested: null, available: true });
  });

  it('no succeeded run with a finite value: no best run, and the rule says so', () => {
    const r = aggregate(sweepData([{ name: 'a', loss: Number.NaN }, { name: 'b', loss: 0.2, state: 'failed' }], { metric: 'loss' }));
    expect(r.best.run).toBeNull();
    expect(metricRule('loss', r.rows).available).toBe(false);
  });
});

describe('verdicts', () => {
  it('beats only when the lower bound is above 0.5, loses only when the upper bound is below', () => {
    expect(outcomeOf([0.5000001, 0.7])).toBe('beats');
    expect(outcomeOf([0.5, 0.7])).toBe('no-difference'); // touching 0.5 is not above it
    expect(outcomeOf([0.45, 0.55])).toBe('no-difference');
    expect(outcomeOf([0.3, 0.5])).toBe('no-difference');
    expect(outcomeOf([0.3, 0.4999999])).toBe('loses');
    expect(outcomeOf(null)).toBe('no-data');
  });

  it('wording comes from the outcome and the numbers', () => {
    const base = { group: 'v', baseline: 'sft', win_rate: 0.6, basis: 'wilson' as const, n_runs: 1, n_pairs: 100 };
    expect(verdictText({ ...base, outcome: 'beats', ci: [0.51, 0.69] })).toBe('v beats sft: win rate 60.0 %, 95 % CI 51.0 % – 69.0 % (Wilson interval, 100 pairs).');
    expect(verdictText({ ...base, outcome: 'no-difference', ci: [0.5, 0.69] })).toBe(
      'v does not beat sft (no significant difference): win rate 60.0 %, 95 % CI 50.0 % – 69.0 % (Wilson interval, 100 pairs).',
    );
    expect(verdictText({ ...base, win_rate: 0.4, outcome: 'loses', ci: [0.31, 0.49], basis: 't-seeds', n_runs: 3 })).toBe(
      'v loses to sft: win rate 40.0 %, 95 % CI 31.0 % – 49.0 % (t-interval over 3 seeds).',
    );
  });

  it('a variant whose CI straddles 0.5 is reported as not beating the baseline, even with a high mean', () => {
    // Two seeds at 0.9 and 0.5: mean 0.7, but t_{0.975,1} = 12.7 makes the interval huge.
    const r = aggregate(
      sweepData([
        { name: 'v-seed1', seed: 1, win: 0.9, ci: [0.8, 0.96] },
        { name: 'v-seed2', seed: 2, win: 0.5, ci: [0.4, 0.6] },
      ]),
    );
    expect(r.verdicts[0]!.outcome).toBe('no-difference');
    expect(r.verdicts[0]!.text).toMatch(/^v does not beat sft/);
    expect(r.headline).toBe('No variant beats sft (1 variant judged); 1 shows no significant difference.');
  });

  it('only succeeded runs are judged; the plan baseline variant is marked, not judged', () => {
    const r = aggregate(
      sweepData(
        [
          { name: 'sftlike', loss: 1 },
          { name: 'v-seed1', seed: 1, win: 0.7, ci: [0.6, 0.8] },
          { name: 'v-seed2', seed: 2, win: 0.1, ci: [0.05, 0.2], state: 'failed' },
        ],
        { baseline: 'sftlike' },
      ),
    );
    expect(r.verdicts.map((v) => [v.group, v.outcome, v.basis])).toEqual([
      ['sftlike', 'baseline', null],
      ['v', 'beats', 'wilson'],
    ]);
    expect(r.headline).toBe('1 of 1 variant beats sft.');
  });

  it('headline counts every outcome', () => {
    const v = (outcome: Verdict['outcome']): Verdict => ({ group: 'g', baseline: 'sft', outcome, win_rate: 0.5, ci: null, basis: null, n_runs: 1, n_pairs: 1, text: '' });
    expect(headline([v('beats'), v('beats'), v('loses'), v('no-difference')])).toBe('2 of 4 variants beat sft; 1 loses; 1 shows no significant difference.');
    expect(headline([v('loses'), v('loses')])).toBe('No variant beats sft (2 variants judged); 2 lose.');
    expect(headline([])).toBeNull();
  });
});
