import { describe, expect, it } from 'vitest';
import { PlanSchema, type PlanInput } from '../../src/plan/schema.js';
import {
  RULES,
  datasetHasSource,
  gridKeysExist,
  lossTypeOnlyWithPlainDpo,
  lossWeightsMatchLossTypes,
  noEmptyGrid,
  randomRangesValid,
  stageSftModel,
  sweepAxesDisjoint,
  uniqueVariantNames,
} from '../../src/plan/rules.js';

const plan = (input: Omit<PlanInput, 'name'>) => PlanSchema.parse({ name: 'p', ...input });
const data = { dataset: { name: 'hh' } };
const brief = (issues: { code: string; path: readonly (string | number)[] }[]) => issues.map((i) => `${i.code} @ ${i.path.join('.')}`);

describe('rules', () => {
  it('are named functions, all listed in RULES', () => {
    for (const rule of [datasetHasSource, gridKeysExist, lossTypeOnlyWithPlainDpo, lossWeightsMatchLossTypes, noEmptyGrid, randomRangesValid, stageSftModel, sweepAxesDisjoint, uniqueVariantNames]) {
      expect(RULES).toContain(rule);
    }
    expect(new Set(RULES.map((r) => r.name)).size).toBe(RULES.length);
  });

  it('a valid plan passes every rule', () => {
    const p = plan({ base: data, sweep: { list: [{ name: 'a' }, { name: 'b', loss_type: ['ipo'] }], grid: { beta: [0.1, 0.2] }, seeds: [1] } });
    expect(RULES.flatMap((rule) => rule(p)).filter((i) => i.severity !== 'warning')).toEqual([]);
  });

  it('lossWeightsMatchLossTypes counts against the default loss_type too', () => {
    expect(brief(lossWeightsMatchLossTypes(plan({ base: { ...data, loss_weights: [1, 2] } })))).toEqual(['loss-weights-length @ base.loss_weights']);
    expect(lossWeightsMatchLossTypes(plan({ base: { ...data, loss_weights: [1, 2], loss_type: ['sigmoid', 'sft'] } }))).toEqual([]);
    const fromGrid = lossWeightsMatchLossTypes(plan({ base: { ...data, loss_weights: [1, 2] }, sweep: { grid: { loss_type: [['sigmoid', 'sft'], ['ipo']] } } }));
    expect(brief(fromGrid)).toEqual(['loss-weights-length @ sweep.grid.loss_type.1']);
  });

  it('lossTypeOnlyWithPlainDpo allows the default loss_type everywhere', () => {
    expect(lossTypeOnlyWithPlainDpo(plan({ base: { ...data, algorithm: 'beta-dpo', loss_type: ['sigmoid'] } }))).toEqual([]);
    const issues = lossTypeOnlyWithPlainDpo(plan({ base: { ...data, loss_type: ['ipo'] }, sweep: { grid: { algorithm: ['dpo', 'sft'] } } }));
    expect(issues).toEqual([{ code: 'loss-type-needs-dpo', algorithm: 'sft', lossType: ['ipo'], path: ['base', 'loss_type'] }]);
  });

  it('gridKeysExist checks grid and random keys with a suggestion', () => {
    const issues = gridKeysExist(plan({ sweep: { grid: { 'training.batch_sze': [1], beta: [1] }, random: { count: 1, params: { zzz: { choice: [1] } } } } }));
    expect(issues).toEqual([
      { code: 'unknown-setting', key: 'training.batch_sze', suggestion: 'training.batch_size', path: ['sweep', 'grid', 'training.batch_sze'] },
      { code: 'unknown-setting', key: 'zzz', path: ['sweep', 'random', 'params', 'zzz'] },
    ]);
  });

  it('uniqueVariantNames points at the repeat and the first use', () => {
    expect(uniqueVariantNames(plan({ sweep: { list: [{ name: 'a' }, { name: 'b' }, { name: 'a' }, { name: 'a' }] } }))).toEqual([
      { code: 'duplicate-variant', name: 'a', first: ['sweep', 'list', 0], path: ['sweep', 'list', 2, 'name'] },
      { code: 'duplicate-variant', name: 'a', first: ['sweep', 'list', 0], path: ['sweep', 'list', 3, 'name'] },
    ]);
  });

  it('noEmptyGrid flags empty axes and a random block without params', () => {
    expect(brief(noEmptyGrid(plan({ sweep: { grid: { beta: [], label_smoothing: [0] }, random: { count: 2, params: {} } } })))).toEqual([
      'empty-axis @ sweep.grid.beta',
      'empty-axis @ sweep.random.params',
    ]);
  });

  it('randomRangesValid needs lo < hi, and lo > 0 for log_uniform', () => {
    const issues = randomRangesValid(
      plan({
        sweep: {
          random: {
            count: 1,
            params: { a: { uniform: [1, 1] }, b: { log_uniform: [0, 1] }, c: { log_uniform: [2, 1] }, d: { uniform: [0, 1] }, e: { choice: [1] } },
          },
        },
      }),
    );
    expect(issues.map((i) => [i.path.at(-2), 'reason' in i ? i.reason : undefined])).toEqual([
      ['a', 'order'],
      ['b', 'non-positive'],
      ['c', 'order'],
    ]);
  });

  it('datasetHasSource wants exactly one of path and name in every run', () => {
    expect(brief(datasetHasSource(plan({})))).toEqual(['dataset-source @ base.dataset']);
    expect(brief(datasetHasSource(plan({ base: { dataset: { name: 'hh' } }, sweep: { list: [{ name: 'a' }, { name: 'b', dataset: { path: 'x' } }] } })))).toEqual([
      'dataset-source @ sweep.list.1.dataset.path',
    ]);
    expect(datasetHasSource(plan({ sweep: { grid: { dataset: [{ name: 'a' }, { path: 'b' }] } } }))).toEqual([]);
  });

  it('stageSftModel needs stages.sft for stage:sft models, references and baselines', () => {
    expect(brief(stageSftModel(plan({ base: { ...data, reference: 'stage:sft' }, judge: { baseline: 'stage:sft' } })))).toEqual([
      'stage-missing @ base.reference',
      'stage-missing @ judge.baseline',
    ]);
    expect(stageSftModel(plan({ base: { ...data, model: 'stage:sft' }, stages: { sft: {} } }))).toEqual([]);
  });

  it('sweepAxesDisjoint rejects one setting on two axes, or a key and its parent', () => {
    const issues = sweepAxesDisjoint(
      plan({ sweep: { grid: { training: [{}], beta: [1] }, random: { count: 1, params: { beta: { uniform: [0, 1] } } }, seeds: [1] } }),
    );
    expect(brief(issues)).toEqual(['axis-overlap @ sweep.random.params.beta', 'axis-overlap @ sweep.seeds']);
  });
});
