/**
 * Cross-field rules: what zod's per-field checks cannot see. Each rule is a named pure function
 * `(plan) => Issue[]` over a plan that passed the schema; issues carry plan paths and are located
 * and worded by the loader. To add one: write the function, add its issue code in issues.ts and
 * its sentence in format.ts, and list it in `RULES`.
 */
import { RunSettingsSchema } from '../sweep/run-spec.js';
import { canonicalJson } from './canonical.js';
import { defaultOf, settingPaths } from './introspect.js';
import { issue, pathKey, type Issue, type Path } from './issues.js';
import { isMapping } from './origins.js';
import { dedupe } from './runs.js';
import type { Plan } from './schema.js';
import { closest } from './suggest.js';
import { axisKeys, resolveVariants, settingsOf, sourceOf, splitKey, valueAt, type RunDraft } from './variants.js';

export type Rule = (plan: Plan) => Issue[];

const SETTING_PATHS = (): string[] => settingPaths(RunSettingsSchema);

/** `loss_weights` needs exactly one weight per `loss_type` entry (the default loss_type included). */
export function lossWeightsMatchLossTypes(plan: Plan): Issue[] {
  return resolveVariants(plan).flatMap((draft) => {
    const s = settingsOf(draft);
    if (!s?.loss_weights || s.loss_weights.length === s.loss_type.length) return [];
    // Point at whichever of the two was written later: that is the value that broke the pair.
    const weights = sourceOf(draft, ['loss_weights']);
    const types = sourceOf(draft, ['loss_type']);
    const at = types.layer > weights.layer ? types : weights;
    return [issue(at.planPath, { code: 'loss-weights-length', weights: s.loss_weights.length, lossTypes: s.loss_type.length })];
  });
}

/** A non-default `loss_type` is a TRL DPOTrainer option: plain `dpo` only. */
export function lossTypeOnlyWithPlainDpo(plan: Plan): Issue[] {
  const fallback = canonicalJson(defaultOf(RunSettingsSchema.shape.loss_type)?.value);
  return resolveVariants(plan).flatMap((draft) => {
    const s = settingsOf(draft);
    if (!s || s.algorithm === 'dpo' || canonicalJson(s.loss_type) === fallback) return [];
    const { planPath } = sourceOf(draft, ['loss_type']);
    return [issue(planPath, { code: 'loss-type-needs-dpo', algorithm: s.algorithm, lossType: [...s.loss_type] })];
  });
}

/** Every grid key and random param is a real settings path. */
export function gridKeysExist(plan: Plan): Issue[] {
  const paths = SETTING_PATHS();
  return axisKeys(plan)
    .filter(({ key }) => !paths.includes(key))
    .map(({ key, source }) => {
      const suggestion = closest(key, paths);
      return issue(source, { code: 'unknown-setting', key, ...(suggestion ? { suggestion } : {}) });
    });
}

/** List variant names are unique (they name runs and judge baselines). */
export function uniqueVariantNames(plan: Plan): Issue[] {
  const first = new Map<string, number>();
  const issues: Issue[] = [];
  (plan.sweep?.list ?? []).forEach((variant, i) => {
    const earlier = first.get(variant.name);
    if (earlier === undefined) first.set(variant.name, i);
    else issues.push(issue(['sweep', 'list', i, 'name'], { code: 'duplicate-variant', name: variant.name, first: ['sweep', 'list', earlier] }));
  });
  return issues;
}

/** An empty grid axis (or random block without params) would silently produce no runs. */
export function noEmptyGrid(plan: Plan): Issue[] {
  const issues = Object.entries(plan.sweep?.grid ?? {})
    .filter(([, values]) => values.length === 0)
    .map(([key]) => issue(['sweep', 'grid', key], { code: 'empty-axis', key }));
  const random = plan.sweep?.random;
  if (random && Object.keys(random.params).length === 0) issues.push(issue(['sweep', 'random', 'params'], { code: 'empty-axis', key: 'params' }));
  return issues;
}

/** `uniform: [lo, hi]` needs lo < hi; `log_uniform` also lo > 0. */
export function randomRangesValid(plan: Plan): Issue[] {
  return Object.entries(plan.sweep?.random?.params ?? {}).flatMap(([key, param]) => {
    const dist = 'uniform' in param ? 'uniform' : 'log_uniform' in param ? 'log_uniform' : undefined;
    if (!dist) return [];
    const [lo, hi] = 'uniform' in param ? param.uniform : (param as { log_uniform: [number, number] }).log_uniform;
    const path: Path = ['sweep', 'random', 'params', key, dist];
    if (dist === 'log_uniform' && lo <= 0) return [issue(path, { code: 'bad-range', dist, lo, hi, reason: 'non-positive' })];
    if (!(lo < hi)) return [issue(path, { code: 'bad-range', dist, lo, hi, reason: 'order' })];
    return [];
  });
}

/** Each run reads exactly one of `dataset.path` (local file) and `dataset.name` (hub id). */
export function datasetHasSource(plan: Plan): Issue[] {
  return resolveVariants(plan).flatMap((draft) => {
    const dataset = valueAt(draft.input, ['dataset']);
    const hasPath = isMapping(dataset) && dataset['path'] !== undefined;
    const hasName = isMapping(dataset) && dataset['name'] !== undefined;
    if (hasPath !== hasName) return [];
    if (!hasPath) return [issue(sourceOf(draft, ['dataset']).planPath, { code: 'dataset-source', found: 'none' })];
    const path = sourceOf(draft, ['dataset', 'path']);
    const name = sourceOf(draft, ['dataset', 'name']);
    // Written together: point at the dataset; written apart: at the later one.
    const at = path.layer === name.layer ? sourceOf(draft, ['dataset']) : name.layer > path.layer ? name : path;
    return [issue(at.planPath, { code: 'dataset-source', found: 'both' })];
  });
}

/** `model: stage:sft` (or reference, or judge baseline) needs a `stages.sft` section. */
export function stageSftModel(plan: Plan): Issue[] {
  if (plan.stages?.sft) return [];
  const issues = resolveVariants(plan).flatMap((draft) =>
    (['model', 'reference'] as const)
      .filter((key) => draft.input[key] === 'stage:sft')
      .map((key) => issue(sourceOf(draft, [key]).planPath, { code: 'stage-missing', stage: 'sft', value: `${key}: stage:sft` })),
  );
  if (plan.judge?.baseline === 'stage:sft') {
    issues.push(issue(['judge', 'baseline'], { code: 'stage-missing', stage: 'sft', value: 'baseline: stage:sft' }));
  }
  return issues;
}

/** The sweep starts from the SFT stage's final/, which must be a whole model: LoRA there saves merged. */
export function stageSftSavesModel(plan: Plan): Issue[] {
  const peft = (plan.stages?.sft as { peft?: { save?: string } } | undefined)?.peft;
  return peft?.save === 'adapter' ? [issue(['stages', 'sft', 'peft', 'save'], { code: 'stage-sft-adapter' })] : [];
}

/** A run spread over N nodes puts the same number of processes (or GPUs) on each. */
export function nodesDivideProcesses(plan: Plan): Issue[] {
  const out: Issue[] = [];
  for (const draft of resolveVariants(plan)) {
    const nodes = valueAt(draft.input, ['resources', 'nodes_per_run']);
    if (typeof nodes !== 'number' || nodes <= 1) continue;
    for (const key of ['processes_per_run', 'gpus_per_run'] as const) {
      const value = valueAt(draft.input, ['resources', key]);
      if (typeof value === 'number' && value > 1 && value % nodes !== 0) {
        out.push(issue(sourceOf(draft, ['resources', key]).planPath, { code: 'nodes-split', key, value, nodes }));
      }
    }
  }
  return dedupe(out);
}

/** A setting is varied by one axis only (grid, random or seeds), and never both a key and its parent. */
export function sweepAxesDisjoint(plan: Plan): Issue[] {
  const axes = axisKeys(plan);
  const issues: Issue[] = [];
  axes.forEach((axis, j) => {
    const mine = splitKey(axis.key);
    const clash = axes.slice(0, j).find((other) => {
      const theirs = splitKey(other.key);
      const n = Math.min(mine.length, theirs.length);
      return mine.slice(0, n).join('.') === theirs.slice(0, n).join('.');
    });
    if (clash) issues.push(issue(axis.source, { code: 'axis-overlap', key: axis.key, other: clash.source }));
  });
  return issues;
}

/** Settings that only preference training reads; an sft run ignores them. */
export const PREFERENCE_KEYS = ['reference', 'beta', 'loss_type', 'loss_weights', 'label_smoothing', 'beta_dpo', 'dynamic_beta', 'update_on'] as const;

/** A written `beta_dpo` block (base, variant, grid or random key) must reach at least one beta-dpo run. */
export function betaDpoKeysOnlyWithBetaDpo(plan: Plan): Issue[] {
  return keyOnlyWithAlgorithms(plan, ['beta_dpo'], ['beta-dpo']);
}

/** A written `dynamic_beta` block must reach at least one dynamic-beta-dpo run. */
export function dynamicBetaKeysOnlyWithDynamicBeta(plan: Plan): Issue[] {
  return keyOnlyWithAlgorithms(plan, ['dynamic_beta'], ['dynamic-beta-dpo']);
}

/** `update_on` is the cadence of the adaptive controllers: it must reach a beta-dpo or dynamic-beta-dpo run. */
export function updateOnOnlyWithAdaptive(plan: Plan): Issue[] {
  return keyOnlyWithAlgorithms(plan, ['update_on'], ['beta-dpo', 'dynamic-beta-dpo']);
}

/**
 * Preference settings (`PREFERENCE_KEYS`) written where only sft runs take them, or in `stages.sft`.
 * Listed before the per-algorithm rules: where both find the same spot, this message is the one kept.
 */
export function sftHasNoPreferenceKeys(plan: Plan): Issue[] {
  const issues = PREFERENCE_KEYS.flatMap((key) =>
    placesWriting(plan, [key])
      .filter(({ runs }) => runs.every((run) => algorithmOf(run) === 'sft'))
      .map(({ planPath }) => issue(planPath, { code: 'sft-preference-key', key })),
  );
  const stage = plan.stages?.sft as Record<string, unknown> | undefined;
  for (const key of PREFERENCE_KEYS) {
    if (stage && stage[key] !== undefined) issues.push(issue(['stages', 'sft', key], { code: 'sft-preference-key', key }));
  }
  return issues;
}

/** Dynamic β is clipped to [beta_min, beta_max]: every dynamic-beta-dpo run needs 0 <= beta_min <= beta <= beta_max. */
export function dynamicBetaBounds(plan: Plan): Issue[] {
  return dedupe(
    resolveVariants(plan).flatMap((draft) => {
      const s = settingsOf(draft);
      if (!s || s.algorithm !== 'dynamic-beta-dpo') return [];
      const { beta_min: betaMin, beta_max: betaMax } = s.dynamic_beta;
      if (betaMin <= s.beta && s.beta <= betaMax) return [];
      // Point at whichever of beta and the crossed bound was written later (the bound on a tie).
      const bound = sourceOf(draft, ['dynamic_beta', s.beta < betaMin ? 'beta_min' : 'beta_max']);
      const beta = sourceOf(draft, ['beta']);
      const at = beta.layer > bound.layer ? beta : bound;
      return [issue(at.planPath, { code: 'dynamic-beta-bounds', betaMin, beta: s.beta, betaMax })];
    }),
  );
}

/**
 * Dynamic β learns from the spread of the margins one controller update sees: with one margin
 * (`batch_size` 1 × one micro-batch × one process) every update is skipped and β never moves. The
 * worker refuses it too; here it is reported where `batch_size` was written, before anything runs.
 * Runs whose process count depends on the GPUs found (`gpus_per_run` > 1) are left to the worker.
 */
export function dynamicBetaSeesSpread(plan: Plan): Issue[] {
  return dedupe(
    resolveVariants(plan).flatMap((draft) => {
      const s = settingsOf(draft);
      if (!s || s.algorithm !== 'dynamic-beta-dpo') return [];
      const processes = s.resources.processes_per_run;
      if (processes === 1 && s.resources.gpus_per_run > 1) return [];
      const accum = s.update_on === 'optimizer_step' ? s.training.grad_accum : 1;
      const margins = s.training.batch_size * accum * processes;
      if (margins >= 2) return [];
      return [issue(sourceOf(draft, ['training', 'batch_size']).planPath, { code: 'dynamic-beta-one-margin', updateOn: s.update_on })];
    }),
  );
}

/** Issues for every place that writes `key` while none of the runs taking that value uses one of `algorithms`. */
function keyOnlyWithAlgorithms(plan: Plan, key: Path, algorithms: readonly string[]): Issue[] {
  return placesWriting(plan, key).flatMap(({ planPath, runs }) => {
    const used = [...new Set(runs.map(algorithmOf))];
    if (used.some((a) => algorithms.includes(a))) return [];
    return [issue(planPath, { code: 'key-needs-algorithm', key: key.join('.'), algorithms: [...algorithms], used })];
  });
}

/**
 * Every place a plan writes settings at or below `key` (a `base` or variant key, a grid axis, a
 * random param), with the runs whose layers include it. Runs resolve base ← variant ← grid ←
 * random, so a place "reaches" a run when one of the run's layers is that place.
 */
function placesWriting(plan: Plan, key: Path): { planPath: Path; runs: RunDraft[] }[] {
  const places = new Map<string, { planPath: Path; runs: RunDraft[] }>();
  for (const draft of resolveVariants(plan)) {
    for (const layer of draft.layers) {
      let planPath: Path | undefined;
      if (layer.kind === 'base' || layer.kind === 'variant') {
        if (valueAt(layer.values, key) !== undefined) planPath = [...layer.source, ...key];
      } else if (layer.kind === 'grid' || layer.kind === 'random') {
        const below = startsWith(layer.key, key);
        const above = startsWith(key, layer.key) && valueAt(layer.values, key) !== undefined;
        if (below || above) planPath = layer.source.slice(0, layer.kind === 'grid' ? 3 : 4);
      }
      if (!planPath) continue;
      const id = pathKey(planPath);
      const place = places.get(id) ?? { planPath, runs: [] };
      if (!place.runs.includes(draft)) place.runs.push(draft);
      places.set(id, place);
    }
  }
  return [...places.values()];
}

function algorithmOf(draft: RunDraft): string {
  const written = valueAt(draft.input, ['algorithm']);
  return settingsOf(draft)?.algorithm ?? (typeof written === 'string' ? written : 'dpo');
}

function startsWith(path: Path, prefix: Path): boolean {
  return prefix.length <= path.length && prefix.every((segment, i) => String(path[i]) === String(segment));
}

/** Warning: `training.epochs` means nothing once `training.max_steps` is set. */
export function epochsIgnoredWithMaxSteps(plan: Plan): Issue[] {
  return resolveVariants(plan).flatMap((draft) =>
    valueAt(draft.input, ['training', 'max_steps']) !== undefined && valueAt(draft.input, ['training', 'epochs']) !== undefined
      ? [issue(sourceOf(draft, ['training', 'epochs']).planPath, { code: 'epochs-ignored' }, 'warning')]
      : [],
  );
}

/** Warning: a value written in `base` or a variant that a sweep axis overrides in every run. */
export function sweepOverridesWrittenValues(plan: Plan): Issue[] {
  const layers: { values: unknown; source: Path }[] = [
    { values: plan.base, source: ['base'] },
    ...(plan.sweep?.list ?? []).map((variant, i) => ({ values: variant, source: ['sweep', 'list', i] as Path })),
  ];
  return axisKeys(plan).flatMap(({ key, source }) =>
    layers
      .filter(({ values }) => valueAt(values, splitKey(key)) !== undefined)
      .map((layer) => issue([...layer.source, ...splitKey(key)], { code: 'overridden-by-sweep', key, by: source }, 'warning')),
  );
}

/** Largest seed the worker can use: numpy's `np.random.seed` takes 0 … 2**32 − 1. */
export const MAX_TRAINING_SEED = 2 ** 32 - 1;

/** `training.seed` seeds numpy too, which rejects seeds of 2**32 and more (the run would fail after loading its model). */
export function trainingSeedFits(plan: Plan): Issue[] {
  return dedupe(
    resolveVariants(plan).flatMap((draft) => {
      const seed = valueAt(draft.input, ['training', 'seed']);
      if (typeof seed !== 'number' || !Number.isInteger(seed) || seed <= MAX_TRAINING_SEED) return [];
      return [issue(sourceOf(draft, ['training', 'seed']).planPath, { code: 'seed-range', seed, max: MAX_TRAINING_SEED })];
    }),
  );
}

/** Warning: `training.eval_steps` evaluates on held-out rows; without `dataset.val_ratio` or `dataset.eval_split` there are none and nothing is evaluated. */
export function evalStepsNeedHeldOutData(plan: Plan): Issue[] {
  return dedupe(
    resolveVariants(plan).flatMap((draft) => {
      if (valueAt(draft.input, ['training', 'eval_steps']) === undefined) return [];
      if (valueAt(draft.input, ['dataset', 'val_ratio']) !== undefined || valueAt(draft.input, ['dataset', 'eval_split']) !== undefined) return [];
      return [issue(sourceOf(draft, ['training', 'eval_steps']).planPath, { code: 'eval-steps-no-data' }, 'warning')];
    }),
  );
}

/** Every rule, in reporting order. */
export const RULES: readonly Rule[] = [
  gridKeysExist,
  sweepAxesDisjoint,
  noEmptyGrid,
  randomRangesValid,
  uniqueVariantNames,
  datasetHasSource,
  stageSftModel,
  stageSftSavesModel,
  nodesDivideProcesses,
  lossWeightsMatchLossTypes,
  sftHasNoPreferenceKeys,
  lossTypeOnlyWithPlainDpo,
  betaDpoKeysOnlyWithBetaDpo,
  dynamicBetaKeysOnlyWithDynamicBeta,
  updateOnOnlyWithAdaptive,
  dynamicBetaBounds,
  dynamicBetaSeesSpread,
  trainingSeedFits,
  epochsIgnoredWithMaxSteps,
  evalStepsNeedHeldOutData,
  sweepOverridesWrittenValues,
];

/** Runs every rule; a rule that throws on a half-valid plan is an internal error, not a user one. */
export function runRules(plan: Plan, rules: readonly Rule[] = RULES): Issue[] {
  return rules.flatMap((rule) => rule(plan));
}
