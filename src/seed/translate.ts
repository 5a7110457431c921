/**
 * A validated seed config → one `RunSpec`, with a message for everything that is ignored or means
 * something different here. Pure apart from the existence checks of local paths (injected).
 *
 *   train  + a `beta_dpo:` block → beta-dpo          (the seed's train-beta-dpo)
 *   train  without one           → dynamic-beta-dpo  (the seed's train-dpo; `beta_update.alpha: 0` = fixed β)
 *   sft                          → sft               (the seed's train-sft; `sft_training.*`)
 *
 * The key-by-key table is docs/migrating.md; keep the two in step.
 */
import path from 'node:path';
import { InputError } from '../errors.js';
import { formatOrigin, formatPath, issueMessage } from '../plan/format.js';
import type { Path } from '../plan/issues.js';
import { originOf } from '../plan/origins.js';
import { fromZod } from '../plan/zod-issues.js';
import { runId } from '../sweep/run-id.js';
import { RunSettingsSchema, type RunSpec } from '../sweep/run-spec.js';
import type { LoadedSeedConfig } from './load.js';
import { formatSeedMessage, locate, note, sortMessages, warning, type SeedMessage } from './messages.js';
import { pathKindOnDisk, resolveSource, type ModelMap, type PathKind } from './model-map.js';
import { NEVER_READ, type SeedConfig } from './schema.js';

export type SeedAlgorithm = 'dynamic-beta-dpo' | 'beta-dpo' | 'sft';
export type SeedCommand = 'train' | 'sft';

export interface TranslateOptions {
  command: SeedCommand;
  /** Forces the algorithm, as the seed's console scripts did (train-dpo, train-beta-dpo); default: chosen from the file. */
  algorithm?: SeedAlgorithm;
  modelMap?: ModelMap;
  /** The seed's cadence: controllers update per micro-batch (`update_on: micro_batch`), warm-up unchanged. */
  seedCadence?: boolean;
  /** Optimizer steps to stop after (`training.max_steps`; the seed has no such key). */
  maxSteps?: number;
  /** Where relative local model/dataset paths are looked up first (default: process.cwd()). */
  cwd?: string;
  pathKind?: PathKind;
}

export interface Translation {
  algorithm: SeedAlgorithm;
  spec: RunSpec;
  /** Unknown keys, ignored keys and translation notes, located and in file order. */
  messages: SeedMessage[];
}

/** Blocks each command reads; any other block present is reported as ignored. */
const READS: Record<SeedAlgorithm, readonly string[]> = {
  'dynamic-beta-dpo': ['dpo_training', 'risk_test', 'beta_update', 'margin_log', 'debug'],
  'beta-dpo': ['dpo_training', 'beta_dpo', 'margin_log', 'debug'],
  sft: ['sft_training'],
};
const BLOCKS = ['dpo_training', 'sft_training', 'risk_test', 'beta_update', 'margin_log', 'beta_dpo', 'debug', 'rollout'] as const;
const WHO_READS: Record<(typeof BLOCKS)[number], string> = {
  dpo_training: 'dpo-sweep train',
  sft_training: 'dpo-sweep sft',
  risk_test: 'dynamic-β training (dpo-sweep train without a beta_dpo block)',
  beta_update: 'dynamic-β training (dpo-sweep train without a beta_dpo block)',
  margin_log: 'dpo-sweep train',
  beta_dpo: 'β-DPO training (dpo-sweep train, or train-beta-dpo)',
  debug: 'dpo-sweep train',
  rollout: 'the rollout command, not by training',
};

/** W when risk_test.beta_warmup is absent: the seed's DynamicBetaDPOConfig default (micro-batches). */
const SEED_BETA_WARMUP = 120;
/** Margins per margin-log record of the seed's train-beta-dpo (BetaDPOConfig.jsonl_sample_size). */
const BETA_DPO_SAMPLE_SIZE = 32;
/** The worker's floor for dynamic_beta.beta_min = 0, as a fraction of β₀ (py/dpo_sweep_worker/trainers.py BETA_MIN_FLOOR). */
const BETA_MIN_FLOOR = 1e-3;

const OUTPUT_PLACES = 'checkpoints go to <out>/runs/<id>/checkpoints/ and the final model to <out>/runs/<id>/final/';

export function chooseAlgorithm(config: SeedConfig, command: SeedCommand, forced?: SeedAlgorithm): SeedAlgorithm {
  if (forced) return forced;
  if (command === 'sft') return 'sft';
  return config.beta_dpo !== undefined ? 'beta-dpo' : 'dynamic-beta-dpo';
}

export function translateSeedConfig(loaded: LoadedSeedConfig, options: TranslateOptions): Translation {
  const c = loaded.config;
  const algorithm = chooseAlgorithm(c, options.command, options.algorithm);
  const messages: SeedMessage[] = [];
  const errors: { path: Path; text: string }[] = [];
  const kind = options.pathKind ?? pathKindOnDisk;
  const cwd = options.cwd ?? process.cwd();
  const configDir = path.dirname(loaded.file);
  const has = (p: Path): boolean => valueAt(c, p) !== undefined;

  // ── which blocks are read ──────────────────────────────────────────────────────────────────
  if (options.command === 'train' && !options.algorithm) {
    messages.push(
      algorithm === 'beta-dpo'
        ? note(['beta_dpo'], 'present: training with β-DPO (algorithm beta-dpo)')
        : note([], 'no beta_dpo block: training with risk-based dynamic β (algorithm dynamic-beta-dpo)'),
    );
  }
  const trainingBlock = algorithm === 'sft' ? 'sft_training' : 'dpo_training';
  if (c[trainingBlock] === undefined) {
    const hint =
      algorithm === 'sft' ? 'this looks like a DPO config: run dpo-sweep train --config …' : 'this looks like an SFT config: run dpo-sweep sft --config …';
    errors.push({ path: [], text: `${trainingBlock} is missing (${options.command === 'sft' ? 'sft' : 'train'} reads it); ${hint}` });
  }
  for (const block of BLOCKS) {
    if (c[block] === undefined || READS[algorithm].includes(block)) continue;
    messages.push(warning([block], `not read by ${algorithm === 'sft' ? 'sft' : algorithmLabel(algorithm)}; ignored (read by ${WHO_READS[block]})`));
  }
  for (const { path: p, reason } of NEVER_READ) {
    if (has(p) && (p[0] === 'dataset' || READS[algorithm].includes(p[0]!))) messages.push(warning(p, `${reason}; ignored`));
  }
  if (c.use_fsdp === true) {
    messages.push(
      warning(['use_fsdp'], 'ignored: a seed config trains as one process; for several processes with FSDP write a plan with resources.processes_per_run and resources.fsdp (controller state is synced over ranks)'),
    );
  }

  // ── models and data ─────────────────────────────────────────────────────────────────────────
  const resolveLocal = (value: string, what: 'model' | 'dataset', at: Path): { value: string; local: boolean } => {
    const r = resolveSource(options.modelMap ?? new Map(), value, what, [cwd, configDir], kind);
    if (r.mapped) messages.push(note(at, r.mapped));
    if (r.error) errors.push({ path: at, text: r.error });
    return r;
  };

  const model = resolveLocal(c.policy_name, 'model', ['policy_name']).value;
  let reference: string | undefined;
  if (algorithm === 'sft') {
    if (c.ref_name !== undefined) messages.push(note(['ref_name'], 'not read by sft'));
  } else if (c.ref_name === undefined) {
    messages.push(note([], 'no ref_name: the reference is the policy model (policy_name)'));
  } else {
    const ref = c.ref_name === c.policy_name ? model : resolveLocal(c.ref_name, 'model', ['ref_name']).value;
    if (ref !== model) reference = ref;
  }

  const d = c.dataset;
  const source = resolveLocal(d.dataset_name, 'dataset', ['dataset', 'dataset_name']);
  const dataset: Record<string, unknown> = source.local ? { path: source.value } : { name: source.value };
  if (d.subset !== undefined) {
    dataset['split'] = d.subset;
    messages.push(note(['dataset', 'subset'], `${d.subset} → dataset.split`));
  }
  if (d.val_ratio !== undefined) dataset['val_ratio'] = d.val_ratio;
  if (algorithm === 'sft') {
    if (d.generated_data !== undefined) {
      const text = 'not read by sft: the format is detected from the rows (HH transcripts train on their chosen conversation, as in the seed)';
      messages.push(note(['dataset', 'generated_data'], text));
    }
  } else {
    dataset['format'] = d.generated_data ? 'generated' : 'hh';
    if (d.generated_data !== undefined) {
      messages.push(note(['dataset', 'generated_data'], `${String(d.generated_data)} → dataset.format ${String(dataset['format'])}`));
    }
  }
  if (d.chat_template === true) {
    messages.push(note(['dataset', 'chat_template'], "the worker always applies the tokenizer's chat template to conversational rows"));
  } else if (d.chat_template === false && algorithm === 'sft') {
    messages.push(note(['dataset', 'chat_template'], "not read by sft: the seed's SFT always rendered conversations with the chat template, as the worker does"));
  } else if (d.chat_template === false) {
    messages.push(
      warning(
        ['dataset', 'chat_template'],
        "false is not available: the worker always applies the tokenizer's chat template to conversational rows (the seed's raw strings had no BOS and, for generated data, no space after \"Assistant:\"; seed-spec §7.9)",
      ),
    );
  }

  // ── training ────────────────────────────────────────────────────────────────────────────────
  const training: Record<string, unknown> = {};
  if (c.precision !== undefined) {
    training['precision'] = c.precision;
    if (c.precision !== 'fp32') messages.push(note(['precision'], `${c.precision} falls back to fp32 (with a warning) on a CPU-only machine`));
  }
  if (d.seed !== undefined) {
    training['seed'] = d.seed;
    messages.push(note(['dataset', 'seed'], `${d.seed} → training.seed (the split and the training seed; the seed's trainer always used 42)`));
  }
  if (options.maxSteps !== undefined) training['max_steps'] = options.maxSteps;

  const settings: Record<string, unknown> = { model, algorithm, dataset, training };
  if (reference !== undefined) settings['reference'] = reference;
  let runName: string | undefined;

  if (algorithm === 'sft') {
    const s = c.sft_training ?? {};
    runName = s.run_name ?? 'sft';
    copy(s, training, {
      learning_rate: 'learning_rate',
      batch_size: 'batch_size',
      eval_batch_size: 'eval_batch_size',
      epochs: 'epochs',
      log_steps: 'logging_steps',
      save_steps: 'save_steps',
      warmup_steps: 'warmup_steps',
      max_length: 'max_length',
    });
    // Without held-out rows there is nothing to evaluate: the save cadence only stands in for eval_steps with val_ratio.
    const evalSteps = s.eval_steps ?? (d.val_ratio !== undefined ? s.save_steps : undefined);
    if (evalSteps !== undefined) training['eval_steps'] = evalSteps;
    if (s.eval_steps !== undefined) noHeldOut(d.val_ratio, ['sft_training', 'eval_steps'], messages);
    if (s.eval_steps === undefined && evalSteps !== undefined) {
      messages.push(note(['sft_training', 'save_steps'], `also the eval cadence (no sft_training.eval_steps; as in the seed): training.eval_steps ${s.save_steps}`));
    }
    for (const key of ['max_prompt_length', 'max_completion_length', 'max_length', 'truncation_mode'] as const) {
      if (d[key] !== undefined) messages.push(note(['dataset', key], 'not read by sft (sft_training.max_length is)'));
    }
    if (s.save_dir !== undefined) messages.push(note(['sft_training', 'save_dir'], OUTPUT_PLACES));
    if (s.save_only_model !== undefined) {
      messages.push(note(['sft_training', 'save_only_model'], 'ignored: checkpoints keep the optimizer state, so an interrupted run resumes where it stopped'));
    }
    if (s.wandb_project) wandb(s.wandb_project, ['sft_training', 'wandb_project'], settings, messages);
    hub(s.push_to_hub, s.hub_model_id ?? undefined, ['sft_training'], settings, messages, errors, true);
  } else {
    const t = c.dpo_training ?? {};
    runName = t.run_name ?? (algorithm === 'beta-dpo' ? 'beta-dpo' : path.basename(loaded.file).replace(/\.ya?ml$/i, ''));
    copy(t, training, {
      epochs: 'epochs',
      batch_size: 'batch_size',
      eval_batch_size: 'eval_batch_size',
      learning_rate: 'learning_rate',
      log_steps: 'logging_steps',
      eval_steps: 'eval_steps',
      save_steps: 'save_steps',
      gradient_accumulation: 'grad_accum',
      max_grad_norm: 'max_grad_norm',
      warmup_steps: 'warmup_steps',
    });
    if (typeof d.max_length === 'number') training['max_length'] = d.max_length;
    else if (d.max_length === null) {
      messages.push(warning(['dataset', 'max_length'], 'null (no limit) is not available: prompt + completion are truncated to training.max_length 1024 (the default); write a number to choose another limit'));
    }
    for (const key of ['max_prompt_length', 'max_completion_length'] as const) {
      const limit = d.max_length ?? 1024;
      if (d[key] === null) {
        messages.push(note(['dataset', key], `null (no separate limit), as here: prompt + completion are truncated to training.max_length (${limit}) together`));
      } else if (d[key] !== undefined) {
        messages.push(warning(['dataset', key], `ignored: TRL 1.x has no separate prompt/completion limits; prompt + completion are truncated to training.max_length (${limit}) together`));
      }
    }
    if (t.eval_steps !== undefined) noHeldOut(d.val_ratio, ['dpo_training', 'eval_steps'], messages);
    if (d.truncation_mode === 'keep_end') messages.push(note(['dataset', 'truncation_mode'], 'keep_end is deprecated in TRL: using max_length only (each row keeps its start)'));
    else if (d.truncation_mode === 'keep_start') messages.push(note(['dataset', 'truncation_mode'], 'keep_start is what the worker does: using max_length only'));
    if (t.save_dir !== undefined) messages.push(note(['dpo_training', 'save_dir'], OUTPUT_PLACES));
    // The seed: a truthy `report` turns wandb on and names the project, unless `wandb_project` does.
    const reportOn = t.report === true || (typeof t.report === 'string' && t.report !== '');
    if (reportOn) wandb(t.wandb_project ?? (typeof t.report === 'string' ? t.report : undefined), ['dpo_training', 'report'], settings, messages);
    else if (t.wandb_project) messages.push(note(['dpo_training', 'wandb_project'], 'ignored without a truthy dpo_training.report (as in the seed)'));
    hub(t.push_to_hub, t.hub_model_id ?? undefined, ['dpo_training'], settings, messages, errors, false, algorithm);

    const gradAccum = t.gradient_accumulation ?? 1;
    if (algorithm === 'dynamic-beta-dpo') {
      translateDynamic(c, gradAccum, options.seedCadence === true, settings, messages);
      errors.push(...dynamicBounds(c));
    }
    else translateBetaDpo(c, options.seedCadence === true, settings, messages);
    translateMarginLog(c, algorithm, settings, messages);
    translateDebug(c, settings, messages);
  }

  if (errors.length > 0) throw translationFailure(loaded, errors, messages);
  const parsed = RunSettingsSchema.safeParse(settings, { reportInput: true });
  if (!parsed.success) {
    // The seed schema checks what RunSettingsSchema checks; reaching this is a gap between the two.
    const problems = fromZod(parsed.error.issues, RunSettingsSchema).map((i) => ({
      path: [] as Path,
      text: `translated setting ${formatPath(i.path)}: ${issueMessage(i)}`,
    }));
    throw translationFailure(loaded, problems, messages);
  }
  const name = sanitizeName(runName);
  const spec: RunSpec = { id: runId(parsed.data), name, sweep: name, varied: {}, settings: parsed.data };
  return { algorithm, spec, messages: sortMessages(locate([...loaded.messages, ...messages], loaded.origins)) };
}

/** Risk-based dynamic β: risk_test + beta_update (seed-spec §1.2). */
function translateDynamic(c: SeedConfig, gradAccum: number, seedCadence: boolean, settings: Record<string, unknown>, messages: SeedMessage[]): void {
  const r = c.risk_test ?? {};
  const u = c.beta_update ?? {};
  const dynamic: Record<string, unknown> = {};
  if (u.beta_0 !== undefined) settings['beta'] = u.beta_0;
  if (r.delta !== undefined) dynamic['delta'] = r.delta;
  if (r.lambda !== undefined) dynamic['ema_lambda'] = r.lambda;
  copy(u, dynamic, { alpha: 'alpha', gamma: 'gamma', beta_min: 'beta_min', beta_max: 'beta_max' });

  // Absent: the seed's dataclass default, 120 micro-batches (the seed's train-dpo required the key).
  const w = r.beta_warmup ?? SEED_BETA_WARMUP;
  const at: Path = r.beta_warmup !== undefined ? ['risk_test', 'beta_warmup'] : c.risk_test !== undefined ? ['risk_test'] : [];
  const given = r.beta_warmup !== undefined ? `${w}` : `no risk_test.beta_warmup: the seed's default ${w}`;
  let updates = seedCadence ? w : Math.ceil(w / gradAccum);
  if (w === 0) {
    updates = 1;
    messages.push(warning(at, "0: the seed's τ EMA never starts with no warm-up (seed-spec §7.20); using dynamic_beta.warmup 1"));
  } else if (seedCadence) {
    messages.push(note(at, `${given} micro-batches → dynamic_beta.warmup ${w} micro-batches (--seed-cadence)`));
  } else {
    const rounded = w % gradAccum === 0 ? '' : ', rounded up';
    messages.push(note(at, `${given} micro-batches → dynamic_beta.warmup ${updates} optimizer steps (grad_accum ${gradAccum}${rounded})`));
  }
  dynamic['warmup'] = updates;
  settings['dynamic_beta'] = dynamic;
  cadence(seedCadence, 'β and τ', c.risk_test !== undefined ? ['risk_test'] : [], settings, messages);
  if (u.beta_min === 0) {
    const floor = Number((BETA_MIN_FLOOR * (u.beta_0 ?? 0.1)).toPrecision(12));
    messages.push(
      note(['beta_update', 'beta_min'], `0 would let β decay to 0, where the loss is log 2 with no gradient (seed-spec §7.20): the worker uses ${BETA_MIN_FLOOR}·beta_0 = ${floor} instead, with a warning; write a positive beta_min to choose the floor`),
    );
  }
  if (u.alpha === 0) {
    messages.push(
      note(['beta_update', 'alpha'], `0: the dynamic-β trainer with α = 0, i.e. β fixed at ${u.beta_0 ?? 0.1} (the seed's "original DPO"); τ and the risk statistics are still computed and logged`),
    );
  }
}

/** 0 ≤ beta_min ≤ beta_0 ≤ beta_max (seed-spec §7.19; the plan rule dynamicBetaBounds checks the same). */
function dynamicBounds(c: SeedConfig): { path: Path; text: string }[] {
  const u = c.beta_update ?? {};
  const beta = u.beta_0 ?? 0.1;
  const lo = u.beta_min ?? 0;
  const hi = u.beta_max ?? 2;
  if (lo <= beta && beta <= hi) return [];
  const at: Path = u.beta_0 !== undefined ? ['beta_update', 'beta_0'] : ['beta_update'];
  return [{ path: at, text: `needs beta_min ≤ beta_0 ≤ beta_max; got beta_min ${lo}, beta_0 ${beta}, beta_max ${hi}` }];
}

/** β-DPO: beta_dpo (seed-spec §1.3); `rho` is the fraction kept. */
function translateBetaDpo(c: SeedConfig, seedCadence: boolean, settings: Record<string, unknown>, messages: SeedMessage[]): void {
  const b = c.beta_dpo ?? {};
  if (b.beta_0 !== undefined) settings['beta'] = b.beta_0;
  const betaDpo: Record<string, unknown> = {};
  copy(b, betaDpo, { alpha: 'alpha', m: 'momentum', rho: 'keep_ratio', min_beta: 'min_beta', eps: 'eps' });
  settings['beta_dpo'] = betaDpo;
  if (b.rho !== undefined) messages.push(note(['beta_dpo', 'rho'], `${b.rho} → beta_dpo.keep_ratio (the fraction of each batch kept)`));
  if (b.m !== undefined) messages.push(note(['beta_dpo', 'm'], `${b.m} → beta_dpo.momentum`));
  if (b.alpha === undefined) messages.push(note(['beta_dpo'], 'no alpha: beta_dpo.alpha 0.6 (the seed\'s train-beta-dpo default)'));
  if (b.log_margins === false) messages.push(warning(['beta_dpo', 'log_margins'], 'false is ignored: margins are always logged (runs/<id>/margins/)'));
  if (b.log_dir !== undefined) messages.push(note(['beta_dpo', 'log_dir'], 'margins are written under the run dir (runs/<id>/margins/)'));
  cadence(seedCadence, 'M0/σ', ['beta_dpo'], settings, messages);
}

function cadence(seedCadence: boolean, what: string, at: Path, settings: Record<string, unknown>, messages: SeedMessage[]): void {
  if (seedCadence) {
    settings['update_on'] = 'micro_batch';
    messages.push(note(at, `update_on micro_batch (--seed-cadence): ${what} update after every micro-batch, as in the seed`));
  } else {
    messages.push(
      note(at, `the seed updated ${what} after every micro-batch on each rank; here once per optimizer step over all its micro-batches and ranks (update_on: optimizer_step); --seed-cadence restores the seed's cadence`),
    );
  }
}

function translateMarginLog(c: SeedConfig, algorithm: SeedAlgorithm, settings: Record<string, unknown>, messages: SeedMessage[]): void {
  const m = c.margin_log;
  if (m?.jsonl_sample_size !== undefined) settings['margin_log'] = { sample_size: m.jsonl_sample_size };
  else if (algorithm === 'beta-dpo') {
    // The seed's BetaDPOConfig kept 32 margins per record, a value its YAML could not change.
    settings['margin_log'] = { sample_size: BETA_DPO_SAMPLE_SIZE };
    messages.push(note(m ? ['margin_log'] : [], `no margin_log.jsonl_sample_size: margin_log.sample_size ${BETA_DPO_SAMPLE_SIZE}, as the seed's train-beta-dpo kept`));
  }
  if (!m) return;
  if (m.save_per_rank === true) messages.push(warning(['margin_log', 'save_per_rank'], 'ignored: margins are gathered over ranks into one log per run'));
  if (m.log_dir !== undefined) messages.push(note(['margin_log', 'log_dir'], 'margins are written under the run dir (runs/<id>/margins/)'));
}

function translateDebug(c: SeedConfig, settings: Record<string, unknown>, messages: SeedMessage[]): void {
  const g = c.debug;
  if (!g || g.enabled !== true) return;
  const samples = (g.first_n ?? 10) + (g.random_n ?? 5);
  settings['debug'] = { samples };
  messages.push(note(['debug', 'enabled'], `true → debug.samples ${samples} (first_n + random_n): tokenised rows in runs/<id>/debug_samples.jsonl`));
  const ignored = (['output_dir', 'log_all_batches', 'max_batches', 'console_n'] as const).filter((key) => g[key] !== undefined && g[key] !== null && g[key] !== false);
  if (ignored.length > 0) messages.push(note(['debug', ignored[0]!], `ignored: ${ignored.map((k) => `debug.${k}`).join(', ')}`));
}

/** eval_steps without val_ratio: the seed required val_ratio; here no held-out rows means no evaluation. */
function noHeldOut(valRatio: number | undefined, at: Path, messages: SeedMessage[]): void {
  if (valRatio !== undefined) return;
  messages.push(warning(at, 'nothing to evaluate without dataset.val_ratio (no held-out rows; the seed required val_ratio): set dataset.val_ratio, e.g. 0.1'));
}

function wandb(project: string | undefined, at: Path, settings: Record<string, unknown>, messages: SeedMessage[]): void {
  settings['report_to'] = ['wandb'];
  const name = project ? ` and set WANDB_PROJECT=${project} to keep the seed's project name` : '';
  messages.push(warning(at, `${project ?? 'true'} → report_to: [wandb]; the worker needs the wandb package (pip install wandb into its venv)${name}`));
}

function hub(
  push: boolean | undefined,
  modelId: string | undefined,
  at: Path,
  settings: Record<string, unknown>,
  messages: SeedMessage[],
  errors: { path: Path; text: string }[],
  sft: boolean,
  algorithm?: SeedAlgorithm,
): void {
  if (push === undefined && modelId === undefined) return;
  settings['hub'] = { push: push === true, ...(modelId ? { model_id: modelId } : {}) };
  if (push === true && !modelId) {
    errors.push({ path: [...at, 'push_to_hub'], text: 'true needs a hub_model_id (the repository to push to)' });
  } else if (push === true) {
    messages.push(note([...at, 'push_to_hub'], `pushes the final model to ${modelId} with HF_TOKEN from the environment; nothing is asked interactively`));
  } else if (modelId && !sft && algorithm === 'beta-dpo') {
    messages.push(
      warning([...at, 'hub_model_id'], `not pushed: the seed's train-beta-dpo pushed to it after every run; set ${at.join('.')}.push_to_hub: true (HF_TOKEN from the environment) to push`),
    );
  } else if (modelId && push !== false) {
    messages.push(note([...at, 'hub_model_id'], `not pushed (${at.join('.')}.push_to_hub is not true)`));
  }
}

function algorithmLabel(algorithm: SeedAlgorithm): string {
  return algorithm === 'beta-dpo' ? 'β-DPO training' : 'dynamic-β training';
}

function copy(from: object, to: Record<string, unknown>, keys: Record<string, string>): void {
  for (const [seedKey, key] of Object.entries(keys)) {
    const value = (from as Record<string, unknown>)[seedKey];
    if (value !== undefined && value !== null) to[key] = value;
  }
}

function valueAt(value: unknown, p: Path): unknown {
  let v = value;
  for (const segment of p) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[String(segment)];
  }
  return v;
}

/** Run and sweep names become folder names. */
function sanitizeName(name: string): string {
  return name.replace(/[^A-Za-z0-9._+=-]/g, '_') || 'run';
}

function translationFailure(loaded: LoadedSeedConfig, errors: readonly { path: Path; text: string }[], messages: readonly SeedMessage[]): InputError {
  const lines = errors.map((e) => {
    const origin = originOf(loaded.origins, e.path);
    const p = formatPath(e.path);
    return `${formatOrigin(origin)}  ${p ? `${p}: ` : ''}${e.text}`;
  });
  const warnings = sortMessages(locate([...loaded.messages, ...messages], loaded.origins)).filter((m) => m.level === 'warning');
  const n = lines.length;
  return new InputError(`cannot run ${loaded.display}: ${n} problem${n === 1 ? '' : 's'}`, [
    ...lines,
    ...warnings.map((w) => `warning: ${formatSeedMessage(w)}`),
  ]);
}
