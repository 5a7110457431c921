import { describe, expect, it } from 'vitest';
import { PlanSchema, type PlanInput } from '../../src/plan/schema.js';
import { issueMessage } from '../../src/plan/format.js';
import {
  RULES,
  betaDpoKeysOnlyWithBetaDpo,
  datasetHasSource,
  dynamicBetaBounds,
  dynamicBetaKeysOnlyWithDynamicBeta,
  dynamicBetaSeesSpread,
  sftHasNoPreferenceKeys,
  updateOnOnlyWithAdaptive,
  gridKeysExist,
  lossTypeOnlyWithPlainDpo,
  lossWeightsMatchLossTypes,
  noEmptyGrid,
  randomRangesValid,
  nodesDivideProcesses,
  stageSftModel,
  stageSftSavesModel,
  sweepAxesDisjoint,
  trainingSeedFits,
  evalStepsNeedHeldOutData,
  uniqueVariantNames,
} from '../../src/plan/rules.js';
import { loadFromMemory, problems, yaml } from './helpers.js';

const plan = (input: Omit<PlanInput, 'name'>) => PlanSchema.parse({ name: 'p', ...input });
const data = { dataset: { name: 'hh' } };
const brief = (issues: { code: string; path: readonly (string | number)[] }[]) => issues.map((i) => `${i.code} @ ${i.path.join('.')}`);

describe('rules', () => {
  it('are named functions, all listed in RULES', () => {
    for (const rule of [
      datasetHasSource,
      gridKeysExist,
      lossTypeOnlyWithPlainDpo,
      lossWeightsMatchLossTypes,
      noEmptyGrid,
      randomRangesValid,
      stageSftModel,
      stageSftSavesModel,
      nodesDivideProcesses,
      trainingSeedFits,
      evalStepsNeedHeldOutData,
      sweepAxesDisjoint,
      uniqueVariantNames,
      betaDpoKeysOnlyWithBetaDpo,
      dynamicBetaKeysOnlyWithDynamicBeta,
      updateOnOnlyWithAdaptive,
      dynamicBetaBounds,
      dynamicBetaSeesSpread,
      sftHasNoPreferenceKeys,
    ]) {
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

  it('stageSftSavesModel: the SFT stage the sweep starts from saves its LoRA merged', () => {
    expect(brief(stageSftSavesModel(plan({ base: data, stages: { sft: { ...data, peft: { save: 'adapter' } } } })))).toEqual([
      'stage-sft-adapter @ stages.sft.peft.save',
    ]);
    expect(stageSftSavesModel(plan({ base: data, stages: { sft: { ...data, peft: { r: 8 } } } }))).toEqual([]);
    expect(stageSftSavesModel(plan({ base: { ...data, peft: { save: 'adapter' } } }))).toEqual([]); // a sweep run may keep its adapter
  });

  it('nodesDivideProcesses: processes and GPUs split evenly over a run\'s nodes', () => {
    const issues = nodesDivideProcesses(
      plan({
        base: { ...data, resources: { nodes_per_run: 2, processes_per_run: 3 } },
        sweep: { list: [{ name: 'a' }, { name: 'b', resources: { nodes_per_run: 2, processes_per_run: 4, gpus_per_run: 5 } }] },
      }),
    );
    expect(brief(issues)).toEqual(['nodes-split @ base.resources.processes_per_run', 'nodes-split @ sweep.list.1.resources.gpus_per_run']);
    expect(issueMessage(issues[0]!)).toBe('resources.processes_per_run is 3, which does not split evenly over resources.nodes_per_run 2 nodes');
    expect(nodesDivideProcesses(plan({ base: { ...data, resources: { nodes_per_run: 2, processes_per_run: 4, gpus_per_run: 2 } } }))).toEqual([]);
    expect(nodesDivideProcesses(plan({ base: { ...data, resources: { processes_per_run: 3 } } }))).toEqual([]);
  });

  it('sweepAxesDisjoint rejects one setting on two axes, or a key and its parent', () => {
    const issues = sweepAxesDisjoint(
      plan({ sweep: { grid: { training: [{}], beta: [1] }, random: { count: 1, params: { beta: { uniform: [0, 1] } } }, seeds: [1] } }),
    );
    expect(brief(issues)).toEqual(['axis-overlap @ sweep.random.params.beta', 'axis-overlap @ sweep.seeds']);
  });

  it('betaDpoKeysOnlyWithBetaDpo: a beta_dpo block must reach a beta-dpo run (base, variant, grid, random)', () => {
    // Shared in base by a dpo and a beta-dpo variant: fine.
    expect(betaDpoKeysOnlyWithBetaDpo(plan({ base: { ...data, beta_dpo: { alpha: 1 } }, sweep: { list: [{ name: 'a' }, { name: 'b', algorithm: 'beta-dpo' }] } }))).toEqual([]);
    // Only dpo runs take it: at the block where it was written.
    expect(brief(betaDpoKeysOnlyWithBetaDpo(plan({ base: { ...data, beta_dpo: { alpha: 1 } } })))).toEqual(['key-needs-algorithm @ base.beta_dpo']);
    const inVariant = betaDpoKeysOnlyWithBetaDpo(
      plan({ base: data, sweep: { list: [{ name: 'a', beta_dpo: { keep_ratio: 0.5 } }, { name: 'b', algorithm: 'beta-dpo', beta_dpo: { keep_ratio: 0.7 } }] } }),
    );
    expect(inVariant).toEqual([{ code: 'key-needs-algorithm', key: 'beta_dpo', algorithms: ['beta-dpo'], used: ['dpo'], path: ['sweep', 'list', 0, 'beta_dpo'] }]);
    // A grid axis is judged by the runs it produces, the algorithm resolved per run (base ← variant ← grid).
    expect(brief(betaDpoKeysOnlyWithBetaDpo(plan({ base: { ...data, algorithm: 'dynamic-beta-dpo' }, sweep: { grid: { 'beta_dpo.alpha': [0.1, 0.2] } } })))).toEqual([
      'key-needs-algorithm @ sweep.grid.beta_dpo.alpha',
    ]);
    expect(betaDpoKeysOnlyWithBetaDpo(plan({ base: data, sweep: { list: [{ name: 'b', algorithm: 'beta-dpo' }], grid: { 'beta_dpo.alpha': [0.1, 0.2] } } }))).toEqual([]);
    expect(betaDpoKeysOnlyWithBetaDpo(plan({ base: data, sweep: { grid: { algorithm: ['dpo', 'beta-dpo'], 'beta_dpo.keep_ratio': [0.5, 1] } } }))).toEqual([]);
    expect(brief(betaDpoKeysOnlyWithBetaDpo(plan({ base: data, sweep: { random: { count: 2, params: { 'beta_dpo.alpha': { uniform: [0, 1] } } } } })))).toEqual([
      'key-needs-algorithm @ sweep.random.params.beta_dpo.alpha',
    ]);
    // A whole-block grid axis counts too.
    expect(brief(betaDpoKeysOnlyWithBetaDpo(plan({ base: data, sweep: { grid: { beta_dpo: [{ alpha: 1 }, { alpha: 2 }] } } })))).toEqual([
      'key-needs-algorithm @ sweep.grid.beta_dpo',
    ]);
  });

  it('dynamicBetaKeysOnlyWithDynamicBeta and updateOnOnlyWithAdaptive follow the same resolution', () => {
    expect(brief(dynamicBetaKeysOnlyWithDynamicBeta(plan({ base: { ...data, algorithm: 'beta-dpo', dynamic_beta: { warmup: 3 } } })))).toEqual([
      'key-needs-algorithm @ base.dynamic_beta',
    ]);
    expect(dynamicBetaKeysOnlyWithDynamicBeta(plan({ base: { ...data, dynamic_beta: { warmup: 3 } }, sweep: { grid: { algorithm: ['dpo', 'dynamic-beta-dpo'] } } }))).toEqual([]);
    expect(brief(updateOnOnlyWithAdaptive(plan({ base: { ...data, update_on: 'micro_batch' } })))).toEqual(['key-needs-algorithm @ base.update_on']);
    expect(updateOnOnlyWithAdaptive(plan({ base: { ...data, algorithm: 'beta-dpo', update_on: 'micro_batch' } }))).toEqual([]);
    expect(updateOnOnlyWithAdaptive(plan({ base: { ...data, algorithm: 'dynamic-beta-dpo' }, sweep: { grid: { update_on: ['micro_batch', 'optimizer_step'] } } }))).toEqual([]);
    const [only] = updateOnOnlyWithAdaptive(plan({ base: data, sweep: { list: [{ name: 'a', update_on: 'micro_batch' }, { name: 'b', algorithm: 'sft' }] } }));
    expect(issueMessage(only!)).toBe('update_on only applies to algorithm beta-dpo or dynamic-beta-dpo, and no run that takes this value uses it (they use dpo)');
  });

  it('dynamicBetaBounds: 0 <= beta_min <= beta <= beta_max per dynamic-beta-dpo run, at the later-written value', () => {
    const dyn = { ...data, algorithm: 'dynamic-beta-dpo' as const };
    expect(dynamicBetaBounds(plan({ base: { ...dyn, beta: 0.5, dynamic_beta: { beta_min: 0.5, beta_max: 0.5 } } }))).toEqual([]);
    // Not a dynamic run: the bounds mean nothing (dynamicBetaKeysOnlyWithDynamicBeta reports the block).
    expect(dynamicBetaBounds(plan({ base: { ...data, beta: 3 } }))).toEqual([]);
    const [above] = dynamicBetaBounds(plan({ base: { ...dyn, beta: 3 } }));
    expect(above).toEqual({ code: 'dynamic-beta-bounds', betaMin: 0.001, beta: 3, betaMax: 2, path: ['base', 'beta'] });
    expect(issueMessage(above!)).toBe('dynamic β needs 0 <= dynamic_beta.beta_min <= beta <= dynamic_beta.beta_max; this run has beta_min 0.001, beta 3, beta_max 2');
    // Written together: the bound.
    expect(brief(dynamicBetaBounds(plan({ base: { ...dyn, beta: 0.1, dynamic_beta: { beta_min: 0.2 } } })))).toEqual(['dynamic-beta-bounds @ base.dynamic_beta.beta_min']);
    // A grid value of beta that crosses the base bound: at the grid value, once per spot.
    const fromGrid = dynamicBetaBounds(plan({ base: { ...dyn, dynamic_beta: { beta_max: 1 } }, sweep: { grid: { beta: [0.5, 1.5] }, seeds: [1, 2] } }));
    expect(brief(fromGrid)).toEqual(['dynamic-beta-bounds @ sweep.grid.beta.1']);
    // A variant bound below the base beta: at the variant's bound.
    const fromVariant = dynamicBetaBounds(plan({ base: { ...dyn, beta: 0.3 }, sweep: { list: [{ name: 'a' }, { name: 'b', dynamic_beta: { beta_max: 0.2 } }] } }));
    expect(brief(fromVariant)).toEqual(['dynamic-beta-bounds @ sweep.list.1.dynamic_beta.beta_max']);
  });

  it('dynamicBetaSeesSpread: a dynamic-beta update must see at least two margins', () => {
    const dyn = { ...data, algorithm: 'dynamic-beta-dpo' as const };
    const one = dynamicBetaSeesSpread(plan({ base: { ...dyn, training: { batch_size: 1 } } }));
    expect(brief(one)).toEqual(['dynamic-beta-one-margin @ base.training.batch_size']);
    expect(issueMessage(one[0]!)).toBe(
      'dynamic-beta-dpo: each controller update (optimizer_step) would see a single margin, which carries no spread, so beta would never move; use batch_size ≥ 2, or grad_accum ≥ 2, or processes_per_run ≥ 2',
    );
    // Two micro-batches per optimizer step, or two processes: two margins per update.
    expect(dynamicBetaSeesSpread(plan({ base: { ...dyn, training: { batch_size: 1, grad_accum: 2 } } }))).toEqual([]);
    expect(dynamicBetaSeesSpread(plan({ base: { ...dyn, training: { batch_size: 1 }, resources: { processes_per_run: 2 } } }))).toEqual([]);
    // Updating per micro-batch, accumulation does not help.
    const micro = dynamicBetaSeesSpread(plan({ base: { ...dyn, update_on: 'micro_batch', training: { batch_size: 1, grad_accum: 4 } } }));
    expect(micro).toMatchObject([{ code: 'dynamic-beta-one-margin', updateOn: 'micro_batch' }]);
    // Other algorithms, and a batch of one only for the dpo variant, are fine; a grid value is blamed where written.
    expect(dynamicBetaSeesSpread(plan({ base: { ...data, training: { batch_size: 1 } } }))).toEqual([]);
    const fromGrid = dynamicBetaSeesSpread(plan({ base: dyn, sweep: { grid: { 'training.batch_size': [1, 4] } } }));
    expect(brief(fromGrid)).toEqual(['dynamic-beta-one-margin @ sweep.grid.training.batch_size.0']);
  });

  it('sftHasNoPreferenceKeys: preference settings that only sft runs (or stages.sft) take', () => {
    const issues = sftHasNoPreferenceKeys(
      plan({ base: { ...data, algorithm: 'sft', beta: 0.2, loss_type: ['ipo'], beta_dpo: { alpha: 1 }, update_on: 'micro_batch' }, stages: { sft: { dynamic_beta: { warmup: 2 } } } }),
    );
    expect(brief(issues)).toEqual([
      'sft-preference-key @ base.beta',
      'sft-preference-key @ base.loss_type',
      'sft-preference-key @ base.beta_dpo',
      'sft-preference-key @ base.update_on',
      'sft-preference-key @ stages.sft.dynamic_beta',
    ]);
    expect(issueMessage(issues[0]!)).toBe('beta is a preference-training setting; algorithm sft does not use it');
    // Shared with a dpo run: not an sft-only value.
    expect(sftHasNoPreferenceKeys(plan({ base: { ...data, beta: 0.2 }, sweep: { list: [{ name: 'sft', algorithm: 'sft' }, { name: 'dpo' }] } }))).toEqual([]);
    expect(brief(sftHasNoPreferenceKeys(plan({ base: data, sweep: { list: [{ name: 'sft', algorithm: 'sft', reference: 'x' }, { name: 'dpo' }] } })))).toEqual([
      'sft-preference-key @ sweep.list.0.reference',
    ]);
  });

  it('the loader keeps one message per spot: the sft one, worded with its position', async () => {
    const lines = await problems(yaml`
      name: p
      base:
        dataset: {name: hh}
        algorithm: sft
        beta_dpo:
          alpha: 0.5
        dynamic_beta:
          beta_max: 3
    `);
    expect(lines).toEqual([
      'plan.yaml:5:3  base.beta_dpo: beta_dpo is a preference-training setting; algorithm sft does not use it',
      'plan.yaml:7:3  base.dynamic_beta: dynamic_beta is a preference-training setting; algorithm sft does not use it',
    ]);
    const loaded = await loadFromMemory({
      'plan.yaml': yaml`
        name: q
        base:
          dataset: {name: hh}
          algorithm: beta-dpo
          beta_dpo: {keep_ratio: 0.5}
          update_on: micro_batch
        sweep:
          grid:
            beta: [0.05, 0.1]
      `,
    });
    expect(loaded.warnings).toEqual([]);
  });
});

describe('training seeds the worker can use', () => {
  it('rejects a training seed numpy cannot take (>= 2**32), wherever it was written', () => {
    const p = plan({
      base: { ...data, training: { seed: 2 ** 32 } },
      sweep: { list: [{ name: 'ok', training: { seed: 7 } }, { name: 'big' }], seeds: undefined },
    });
    expect(brief(trainingSeedFits(p))).toEqual(['seed-range @ base.training.seed']);
    const seeds = plan({ base: data, sweep: { seeds: [1, 2 ** 32 - 1, 2 ** 40] } });
    const found = trainingSeedFits(seeds);
    expect(brief(found)).toEqual(['seed-range @ sweep.seeds.2']);
    expect(issueMessage(found[0]!)).toBe('training seed 1099511627776 is too large: the worker seeds numpy, which takes 0 to 4294967295');
  });

  it('stops the plan with the position of the seed, and bounds the random-search seed', async () => {
    expect(
      await problems(yaml`
        name: seeds
        base: {dataset: {name: hh}}
        sweep:
          random: {count: 1, seed: 4294967296, params: {beta: {choice: [0.1]}}}
          seeds: [0, 5000000000]
      `),
    ).toEqual([
      'plan.yaml:4:22  sweep.random.seed: expected an integer >= 0 and <= 4294967295, received 4294967296',
      'plan.yaml:5:14  sweep.seeds[1]: training seed 5000000000 is too large: the worker seeds numpy, which takes 0 to 4294967295',
    ]);
  });
});

describe('eval_steps without held-out data', () => {
  it('warns where eval_steps was written when a run has neither val_ratio nor eval_split', async () => {
    const p = plan({
      base: { ...data, training: { eval_steps: 10 } },
      sweep: { list: [{ name: 'held', dataset: { val_ratio: 0.1 } }, { name: 'none' }, { name: 'split', dataset: { eval_split: 'test' } }] },
    });
    const found = evalStepsNeedHeldOutData(p);
    expect(brief(found)).toEqual(['eval-steps-no-data @ base.training.eval_steps']);
    expect(found[0]!.severity).toBe('warning');
    const { warnings } = await loadFromMemory({
      'plan.yaml': yaml`
        name: ev
        base: {dataset: {name: hh}, training: {eval_steps: 10}}
      `,
    });
    expect(warnings).toEqual(['plan.yaml:2:40  base.training.eval_steps: has no effect: the run has no held-out data (set dataset.val_ratio or dataset.eval_split)']);
    expect(evalStepsNeedHeldOutData(plan({ base: { dataset: { name: 'hh', val_ratio: 0.1 }, training: { eval_steps: 10 } } }))).toEqual([]);
  });
});
