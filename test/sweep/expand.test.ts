import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { loadPlan } from '../../src/plan/load.js';
import { PlanSchema, type PlanInput } from '../../src/plan/schema.js';
import { expandPlan } from '../../src/sweep/expand.js';
import { runId } from '../../src/sweep/run-id.js';
import { RunSettingsSchema, RunSpecSchema } from '../../src/sweep/run-spec.js';

const plan = (input: Omit<PlanInput, 'name'>, name = 'scan') => PlanSchema.parse({ name, ...input });
const data = { dataset: { name: 'hh' } };

describe('expandPlan: list × grid × random × seeds', () => {
  const p = plan({
    base: { ...data, beta: 0.5, training: { max_steps: 10 } },
    sweep: {
      list: [{ name: 'dpo' }, { name: 'ipo', loss_type: ['ipo'], beta: 0.3 }],
      grid: { beta: [0.05, 0.1], 'training.batch_size': [1, 2, 4] },
      random: { count: 2, seed: 0, params: { 'training.learning_rate': { log_uniform: [1e-7, 1e-5] } } },
      seeds: [1, 2],
    },
  });
  const runs = expandPlan(p);

  it('makes one run per combination, in nesting order (seeds innermost, last grid key fastest)', () => {
    expect(runs).toHaveLength(2 * 2 * 3 * 2 * 2);
    const expected: string[] = [];
    for (const v of ['dpo', 'ipo']) for (const beta of [0.05, 0.1]) for (const bs of [1, 2, 4]) for (const draw of [0, 1]) for (const seed of [1, 2]) expected.push(`${v} ${beta} ${bs} ${draw} ${seed}`);
    const lrs = [...new Set(runs.map((r) => r.settings.training.learning_rate))];
    expect(lrs).toHaveLength(2);
    expect(runs.map((r) => `${r.name.split('-')[0]} ${r.settings.beta} ${r.settings.training.batch_size} ${lrs.indexOf(r.settings.training.learning_rate)} ${r.settings.training.seed}`)).toEqual(expected);
  });

  it('merges base ← variant ← grid ← random ← seed, then applies defaults once', () => {
    const run = runs.find((r) => r.name.startsWith('ipo') && r.settings.training.batch_size === 2 && r.settings.training.seed === 2)!;
    expect(run.settings.loss_type).toEqual(['ipo']); // from the variant
    expect([0.05, 0.1]).toContain(run.settings.beta); // the grid beats the variant's 0.3 and base's 0.5
    const input = { ...data, beta: run.settings.beta, loss_type: ['ipo'], training: { max_steps: 10, batch_size: 2, learning_rate: run.settings.training.learning_rate, seed: 2 } };
    expect(run.settings).toEqual(RunSettingsSchema.parse(input));
    expect(run.settings.training.grad_accum).toBe(1); // a default
  });

  it('names runs after the variant and short varied values, and records what varies', () => {
    const first = runs[0]!;
    const lr = first.settings.training.learning_rate;
    expect(first.name).toBe(`dpo-beta0.05-batch_size1-learning_rate${Number(lr.toPrecision(3))}-seed1`);
    expect(first.varied).toEqual({ beta: 0.05, 'training.batch_size': 1, 'training.learning_rate': lr, 'training.seed': 1 });
    expect(runs.find((r) => r.name.startsWith('ipo'))!.varied).toMatchObject({ loss_type: ['ipo'], beta: 0.05 });
    expect(new Set(runs.map((r) => r.name)).size).toBe(runs.length);
  });

  it('gives every run a valid spec with a distinct id from its settings', () => {
    for (const run of runs) {
      expect(RunSpecSchema.parse(run)).toEqual(run);
      expect(run.id).toBe(runId(run.settings));
      expect(run.sweep).toBe('scan');
    }
    expect(new Set(runs.map((r) => r.id)).size).toBe(runs.length);
  });

  it('is deterministic', () => {
    expect(expandPlan(plan(p as PlanInput))).toEqual(runs);
  });
});

describe('expandPlan: random draws', () => {
  const draws = (seed: number, count = 400) =>
    expandPlan(plan({ base: data, sweep: { random: { count, seed, params: { beta: { log_uniform: [0.001, 1] }, label_smoothing: { uniform: [0.1, 0.3] } } } } })).map((r) => r.settings);

  it('are reproducible, depend on the seed, and stay inside their ranges', () => {
    const a = draws(3);
    expect(draws(3)).toEqual(a);
    expect(draws(4)).not.toEqual(a);
    for (const s of a) {
      expect(s.beta).toBeGreaterThanOrEqual(0.001);
      expect(s.beta).toBeLessThan(1);
      expect(s.label_smoothing).toBeGreaterThanOrEqual(0.1);
      expect(s.label_smoothing).toBeLessThan(0.3);
    }
  });

  it('samples log_uniform in log space: half the draws fall below the geometric mean', () => {
    const betas = draws(11).map((s) => s.beta);
    const belowGeometricMean = betas.filter((b) => b < Math.sqrt(0.001 * 1)).length / betas.length;
    expect(belowGeometricMean).toBeGreaterThan(0.4); // a linear sampler would put ~3% there
    expect(belowGeometricMean).toBeLessThan(0.6);
    const smoothing = draws(11).map((s) => s.label_smoothing);
    const belowMidpoint = smoothing.filter((x) => x < 0.2).length / smoothing.length;
    expect(belowMidpoint).toBeGreaterThan(0.4);
    expect(belowMidpoint).toBeLessThan(0.6);
  });

  it('shares the same draws across variants and grid points', () => {
    const runs = expandPlan(
      plan({ base: data, sweep: { list: [{ name: 'a' }, { name: 'b', label_smoothing: 0.1 }], grid: { 'training.batch_size': [1, 2] }, random: { count: 3, params: { beta: { uniform: [0.1, 0.2] } } } } }),
    );
    const betasOf = (variant: string, bs: number) => runs.filter((r) => r.name.startsWith(`${variant}-`) && r.settings.training.batch_size === bs).map((r) => r.settings.beta);
    expect(betasOf('a', 1)).toHaveLength(3);
    expect(betasOf('a', 2)).toEqual(betasOf('a', 1));
    expect(betasOf('b', 1)).toEqual(betasOf('a', 1));
  });
});

describe('expandPlan: single runs, problems and paths', () => {
  it('turns a plan without a sweep into one run named after the plan', () => {
    const runs = expandPlan(plan({ base: data }, 'solo'));
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ name: 'solo', sweep: 'solo', varied: {} });
    expect(runs[0]!.settings).toEqual(RunSettingsSchema.parse(data));
  });

  it('throws one InputError naming both runs when two resolve to the same settings', () => {
    const p = plan({ base: data, sweep: { list: [{ name: 'a', beta: 0.2 }, { name: 'b', beta: 0.2, training: { save_steps: 5 } }] } });
    const error = (() => {
      try {
        expandPlan(p);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).details).toEqual(['sweep.list[1]: runs "a" and "b" resolve to the same settings; remove one or make them differ']);
  });

  it('throws an InputError locating invalid values of a plan that skipped validation', () => {
    const p = plan({ base: data, sweep: { grid: { beta: [0.1, -2] } } });
    expect(() => expandPlan(p)).toThrow(InputError);
    try {
      expandPlan(p);
    } catch (e) {
      expect((e as InputError).details).toEqual(['sweep.grid.beta[1]: expected a number > 0, received -2']);
    }
  });

  it('resolves relative dataset paths and ./model folders against baseDir', () => {
    const runs = expandPlan(plan({ base: { dataset: { path: 'data/x.jsonl' }, model: './ckpt', reference: 'org/ref' } }), { baseDir: '/experiments' });
    expect(runs[0]!.settings.dataset.path).toBe(path.resolve('/experiments', 'data/x.jsonl'));
    expect(runs[0]!.settings.model).toBe(path.resolve('/experiments', 'ckpt'));
    expect(runs[0]!.settings.reference).toBe('org/ref');
  });

  it('expands a loaded fixture: 2 variants × 2 betas × 2 seeds', async () => {
    const { plan: loaded } = await loadPlan('test/fixtures/plans/basic.yaml');
    const runs = expandPlan(loaded);
    expect(runs.map((r) => r.name)).toEqual([
      'dpo-beta0.05-seed1',
      'dpo-beta0.05-seed2',
      'dpo-beta0.1-seed1',
      'dpo-beta0.1-seed2',
      'ipo-beta0.05-seed1',
      'ipo-beta0.05-seed2',
      'ipo-beta0.1-seed1',
      'ipo-beta0.1-seed2',
    ]);
    expect(runs.every((r) => r.settings.dataset.path === path.resolve('test/fixtures/plans/data/hh.jsonl'))).toBe(true);
  });
});
