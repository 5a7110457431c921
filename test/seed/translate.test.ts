/**
 * Seed config → RunSpec. The expected settings below are read off seed-spec §2.1 by hand (columns
 * D, O, B, S), through the table in docs/migrating.md; defaults not written here come from
 * RunSettingsSchema.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { loadSeedConfig } from '../../src/seed/load.js';
import { formatSeedMessage } from '../../src/seed/messages.js';
import { readModelMap } from '../../src/seed/model-map.js';
import { translateSeedConfig, type TranslateOptions, type Translation } from '../../src/seed/translate.js';
import { runId } from '../../src/sweep/run-id.js';
import { RunSettingsSchema, type RunSettingsInput } from '../../src/sweep/run-spec.js';
import { repoRoot } from '../helpers/python.js';
import { yaml } from '../plan/helpers.js';
import { offlineMap, seedConfig, seedDir } from './helpers.js';

const offline = () => readModelMap({ flag: offlineMap });

async function translateFile(file: string, options: Partial<TranslateOptions> & { sets?: string[] } = {}) {
  const { sets, ...rest } = options;
  const loaded = await loadSeedConfig(seedConfig(file), { sets: sets ?? [] });
  return translateSeedConfig(loaded, { command: file === 'config_sft.yaml' ? 'sft' : 'train', modelMap: offline(), ...rest });
}

/** An inline config at /seed/config.yaml; nothing exists on "disk". */
async function translateText(text: string, options: Partial<TranslateOptions> & { sets?: string[] } = {}) {
  const { sets, ...rest } = options;
  const loaded = await loadSeedConfig('config.yaml', { cwd: '/seed', sets: sets ?? [], readFile: async () => text });
  return translateSeedConfig(loaded, { command: 'train', pathKind: () => undefined, cwd: '/seed', ...rest });
}

async function failure(run: Promise<unknown>): Promise<string[]> {
  const error = await run.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof InputError)) throw new Error(`expected an InputError, got ${String(error)}`);
  return error.details;
}

const settings = (input: RunSettingsInput) => RunSettingsSchema.parse(input);
const rollout = join(seedDir, 'data', 'rollout-judged.jsonl');
const lineOf = (file: string, pattern: RegExp) => readFileSync(seedConfig(file), 'utf8').split('\n').findIndex((l) => pattern.test(l)) + 1;

const minimal = yaml`
  policy_name: org/model
  dataset:
    dataset_name: org/data
  dpo_training:
    gradient_accumulation: 4
  risk_test:
    beta_warmup: 120
`;

describe('translating the shipped seed configs', () => {
  it('config_dpo.yaml → dynamic-beta-dpo (column D)', async () => {
    const t = await translateFile('config_dpo.yaml');
    expect(t.algorithm).toBe('dynamic-beta-dpo');
    expect(t.spec.name).toBe('trl-dynamic-beta');
    expect(t.spec.sweep).toBe('trl-dynamic-beta');
    expect(t.spec.settings).toEqual(
      settings({
        model: 'builtin:tiny-llama',
        algorithm: 'dynamic-beta-dpo',
        dataset: { path: rollout, split: 'train[:30%]', format: 'generated', val_ratio: 0.1 },
        beta: 0.1,
        dynamic_beta: { delta: 0.1, ema_lambda: 0.1, warmup: 30, alpha: 0.005, gamma: 2, beta_min: 0, beta_max: 2 },
        update_on: 'optimizer_step',
        training: {
          epochs: 1,
          batch_size: 16,
          eval_batch_size: 16,
          learning_rate: 5e-7,
          logging_steps: 10,
          eval_steps: 500,
          save_steps: 500,
          grad_accum: 4,
          max_grad_norm: 10,
          warmup_steps: 120,
          max_length: 512,
          precision: 'bf16',
          seed: 42,
        },
        margin_log: { sample_size: 64 },
        debug: { samples: 15 },
        report_to: ['wandb'],
      }),
    );
    expect(t.spec.id).toBe(runId(t.spec.settings));
    expect(t.spec.varied).toEqual({});
  });

  it('config_dpo_original.yaml → the dynamic trainer with α = 0 (fixed β), and says so', async () => {
    const t = await translateFile('config_dpo_original.yaml');
    expect(t.algorithm).toBe('dynamic-beta-dpo');
    expect(t.spec.name).toBe('trl-original-dpo');
    expect(t.spec.settings.dynamic_beta).toEqual({ delta: 0.1, ema_lambda: 0.1, warmup: 30, alpha: 0, gamma: 2, beta_min: 0, beta_max: 2 });
    expect(t.spec.settings.debug).toEqual({ samples: 0 });
    const alpha = t.messages.find((m) => m.path.join('.') === 'beta_update.alpha')!;
    expect(formatSeedMessage(alpha)).toBe(
      `${seedConfig('config_dpo_original.yaml')}:${lineOf('config_dpo_original.yaml', /^ {2}alpha: 0\.0/)}:3  beta_update.alpha: 0: the dynamic-β trainer with α = 0, i.e. β fixed at 0.1 (the seed's "original DPO"); τ and the risk statistics are still computed and logged`,
    );
  });

  it('config_beta_dpo.yaml → beta-dpo, chosen by its beta_dpo block (column B; rho → keep_ratio, m → momentum)', async () => {
    const t = await translateFile('config_beta_dpo.yaml');
    expect(t.algorithm).toBe('beta-dpo');
    expect(t.spec.name).toBe('beta-dpo-run');
    expect(t.spec.settings).toEqual(
      settings({
        model: 'builtin:tiny-llama',
        algorithm: 'beta-dpo',
        dataset: { path: rollout, split: 'train[:30%]', format: 'generated', val_ratio: 0.1 },
        beta: 0.1,
        beta_dpo: { alpha: 0.5, momentum: 0.9, keep_ratio: 0.8, min_beta: 1e-3, eps: 1e-6 },
        update_on: 'optimizer_step',
        training: {
          epochs: 1,
          batch_size: 16,
          eval_batch_size: 16,
          learning_rate: 5e-7,
          logging_steps: 10,
          eval_steps: 500,
          save_steps: 500,
          grad_accum: 4,
          max_grad_norm: 10,
          warmup_steps: 0,
          max_length: 1024,
          precision: 'bf16',
          seed: 42,
        },
        margin_log: { sample_size: 32 },
        report_to: ['wandb'],
        hub: { push: false, model_id: 'W-61/hh-llama32-1b-beta-dpo-hh-rollout' },
      }),
    );
    const texts = t.messages.map((m) => `${m.level} ${m.path.join('.')}: ${m.text}`);
    expect(texts).toContain('note beta_dpo: present: training with β-DPO (algorithm beta-dpo)');
    expect(texts).toContain('note beta_dpo.rho: 0.8 → beta_dpo.keep_ratio (the fraction of each batch kept)');
    expect(texts.some((l) => l.startsWith("warning dpo_training.hub_model_id: not pushed: the seed's train-beta-dpo pushed"))).toBe(true);
    expect(texts.some((l) => l.startsWith("warning dataset.chat_template: false is not available"))).toBe(true);
  });

  it('config_sft.yaml → sft (column S; sft_training.*), pushing with HF_TOKEN and asking nothing', async () => {
    const t = await translateFile('config_sft.yaml');
    expect(t.algorithm).toBe('sft');
    expect(t.spec.name).toBe('sft');
    expect(t.spec.settings).toEqual(
      settings({
        model: 'builtin:tiny-llama',
        algorithm: 'sft',
        dataset: { path: join(repoRoot, 'configs', 'data', 'prefs-hh.jsonl'), split: 'train[:30%]', val_ratio: 0.1 },
        training: {
          learning_rate: 5e-6,
          batch_size: 16,
          eval_batch_size: 16,
          epochs: 1,
          logging_steps: 10,
          save_steps: 500,
          eval_steps: 500,
          warmup_steps: 120,
          max_length: 512,
          precision: 'bf16',
          seed: 42,
        },
        report_to: ['wandb'],
        hub: { push: true, model_id: 'jackf857/hh-llama32-1b-Instruct-sft-30' },
      }),
    );
    const push = t.messages.find((m) => m.path.join('.') === 'sft_training.push_to_hub')!;
    expect(push.text).toBe('pushes the final model to jackf857/hh-llama32-1b-Instruct-sft-30 with HF_TOKEN from the environment; nothing is asked interactively');
  });

  it('without a model map, hub ids stay hub ids', async () => {
    const t = await translateFile('config_dpo.yaml', { modelMap: new Map() });
    expect(t.spec.settings.model).toBe('W-61/hh-llama32-1b-sft');
    expect(t.spec.settings.reference).toBeUndefined();
    expect(t.spec.settings.dataset).toMatchObject({ name: 'jackf857/hh-llama32-1b-rollout-judged' });
    expect(t.spec.settings.dataset.path).toBeUndefined();
  });

  it('warns about keys the seed never reads and blocks this command does not read, by name and line', async () => {
    const file = 'config_dpo.yaml';
    const t = await translateFile(file);
    const warnings = t.messages.filter((m) => m.level === 'warning').map(formatSeedMessage);
    const at = (pattern: RegExp, col: number) => `${seedConfig(file)}:${lineOf(file, pattern)}:${col}`;
    expect(warnings).toEqual([
      `${at(/^ {2}max_len:/, 3)}  dataset.max_len: never read by the seed (sequence lengths are dataset.max_length and sft_training.max_length); ignored`,
      `${at(/^ {2}max_prompt_length:/, 3)}  dataset.max_prompt_length: ignored: TRL 1.x has no separate prompt/completion limits; prompt + completion are truncated to training.max_length (512) together`,
      `${at(/^ {2}max_completion_length:/, 3)}  dataset.max_completion_length: ignored: TRL 1.x has no separate prompt/completion limits; prompt + completion are truncated to training.max_length (512) together`,
      `${at(/^ {2}report:/, 3)}  dpo_training.report: wandb_dpo_project → report_to: [wandb]; the worker needs the wandb package (pip install wandb into its venv) and set WANDB_PROJECT=wandb_dpo_project to keep the seed's project name`,
      `${at(/^ {2}save_dpo_dir:/, 3)}  dpo_training.save_dpo_dir: never read by the seed; ignored`,
      `${at(/^sft_training:/, 1)}  sft_training: not read by dynamic-β training; ignored (read by dpo-sweep sft)`,
      `${at(/^ {2}dpo_log_dir:/, 3)}  margin_log.dpo_log_dir: never read by the seed; ignored`,
      `${at(/^rollout:/, 1)}  rollout: not read by dynamic-β training; ignored (read by the rollout command, not by training)`,
    ]);
    const notes = t.messages.filter((m) => m.level === 'note').map((m) => `${m.path.join('.')}: ${m.text}`);
    expect(notes).toEqual(
      expect.arrayContaining([
        ': no beta_dpo block: training with risk-based dynamic β (algorithm dynamic-beta-dpo)',
        'precision: bf16 falls back to fp32 (with a warning) on a CPU-only machine',
        'dataset.subset: train[:30%] → dataset.split',
        "dataset.chat_template: the worker always applies the tokenizer's chat template to conversational rows",
        'dataset.truncation_mode: keep_end is deprecated in TRL: using max_length only (each row keeps its start)',
        'risk_test.beta_warmup: 120 micro-batches → dynamic_beta.warmup 30 optimizer steps (grad_accum 4)',
        'margin_log.log_dir: margins are written under the run dir (runs/<id>/margins/)',
      ]),
    );
    // The whole file: named without a line.
    expect(formatSeedMessage(t.messages.find((m) => m.path.length === 0)!)).toBe(
      `${seedConfig(file)}  no beta_dpo block: training with risk-based dynamic β (algorithm dynamic-beta-dpo)`,
    );
  });

  it('sft reads sft_training and says what it ignores', async () => {
    const t = await translateFile('config_dpo.yaml', { command: 'sft' });
    expect(t.algorithm).toBe('sft');
    expect(t.spec.settings.training).toMatchObject({ learning_rate: 5e-6, batch_size: 16, max_length: 512, warmup_steps: 120 });
    expect(t.spec.settings.hub).toEqual({ push: false, model_id: 'W-61/hh-llama32-1b-sft-100' });
    const ignored = t.messages.filter((m) => m.level === 'warning' && m.path.length === 1).map((m) => m.path[0]);
    expect(ignored).toEqual(['dpo_training', 'risk_test', 'beta_update', 'margin_log', 'debug', 'rollout']);
  });
});

describe('translation rules', () => {
  it('picks β-DPO by the beta_dpo block; the seed bins force their algorithm', async () => {
    expect((await translateText(minimal)).algorithm).toBe('dynamic-beta-dpo');
    expect((await translateText(minimal, { sets: ['beta_dpo.rho=0.5'] })).algorithm).toBe('beta-dpo');
    expect((await translateText(minimal, { sets: ['beta_dpo={}'] })).spec.settings.beta_dpo).toEqual({ alpha: 0.6, momentum: 0.9, keep_ratio: 0.8, min_beta: 1e-3, eps: 1e-6 });
    const forced = await translateText(minimal, { sets: ['beta_dpo.rho=0.5'], algorithm: 'dynamic-beta-dpo' });
    expect(forced.algorithm).toBe('dynamic-beta-dpo');
    expect(forced.messages.find((m) => m.path.join('.') === 'beta_dpo')).toMatchObject({ level: 'warning', text: expect.stringContaining('not read by dynamic-β training') });
    const beta = await translateText(minimal, { algorithm: 'beta-dpo' });
    expect(beta.spec.settings.algorithm).toBe('beta-dpo');
    expect(beta.messages.filter((m) => m.level === 'warning').map((m) => m.path.join('.'))).toEqual(['risk_test']);
  });

  it('converts the warm-up from micro-batches to optimizer steps: ceil(W / grad_accum)', async () => {
    const warmup = async (w: number, g: number, seedCadence = false) => {
      const t = await translateText(minimal, { sets: [`risk_test.beta_warmup=${w}`, `dpo_training.gradient_accumulation=${g}`], seedCadence });
      return { warmup: t.spec.settings.dynamic_beta.warmup, updateOn: t.spec.settings.update_on, note: t.messages.find((m) => m.path.join('.') === 'risk_test.beta_warmup')?.text };
    };
    expect(await warmup(120, 4)).toEqual({ warmup: 30, updateOn: 'optimizer_step', note: '120 micro-batches → dynamic_beta.warmup 30 optimizer steps (grad_accum 4)' });
    expect(await warmup(121, 4)).toEqual({ warmup: 31, updateOn: 'optimizer_step', note: '121 micro-batches → dynamic_beta.warmup 31 optimizer steps (grad_accum 4, rounded up)' });
    expect(await warmup(3, 4)).toMatchObject({ warmup: 1 });
    expect(await warmup(50, 1)).toMatchObject({ warmup: 50 });
    expect(await warmup(120, 4, true)).toEqual({ warmup: 120, updateOn: 'micro_batch', note: '120 micro-batches → dynamic_beta.warmup 120 micro-batches (--seed-cadence)' });
    expect(await warmup(0, 4)).toEqual({
      warmup: 1,
      updateOn: 'optimizer_step',
      note: "0: the seed's τ EMA never starts with no warm-up (seed-spec §7.20); using dynamic_beta.warmup 1",
    });
    // No grad accumulation key: 1, as in the seed's DPOConfig.
    const t = await translateText(yaml`
      policy_name: org/model
      dataset: {dataset_name: org/data}
      dpo_training: {batch_size: 2}
      risk_test: {beta_warmup: 7}
    `);
    expect(t.spec.settings.dynamic_beta.warmup).toBe(7);
  });

  it('--seed-cadence gives β-DPO the per-micro-batch statistics too', async () => {
    const t = await translateText(minimal, { sets: ['beta_dpo.rho=0.5'], seedCadence: true });
    expect(t.spec.settings.update_on).toBe('micro_batch');
    expect((await translateText(minimal, { sets: ['beta_dpo.rho=0.5'] })).spec.settings.update_on).toBe('optimizer_step');
  });

  it('--max-steps caps the optimizer steps (the seed has no key for it)', async () => {
    expect((await translateText(minimal, { maxSteps: 3 })).spec.settings.training.max_steps).toBe(3);
    expect((await translateText(minimal)).spec.settings.training.max_steps).toBeUndefined();
  });

  it('checks 0 <= beta_min <= beta_0 <= beta_max (seed-spec §7.19)', async () => {
    const lines = await failure(translateText(minimal, { sets: ['beta_update.beta_0=3'] }));
    expect(lines).toEqual(['--set beta_update.beta_0=3  beta_update.beta_0: needs beta_min ≤ beta_0 ≤ beta_max; got beta_min 0, beta_0 3, beta_max 2']);
  });

  it('needs the training block of its command', async () => {
    const text = yaml`
      policy_name: org/model
      dataset: {dataset_name: org/data}
      sft_training: {batch_size: 2}
    `;
    expect(await failure(translateText(text))).toEqual([
      'config.yaml:1:1  dpo_training is missing (train reads it); this looks like an SFT config: run dpo-sweep sft --config …',
      'warning: config.yaml:3:1  sft_training: not read by dynamic-β training; ignored (read by dpo-sweep sft)',
    ]);
    expect((await translateText(text, { command: 'sft' })).spec.settings.training.batch_size).toBe(2);
    expect(await failure(translateText(minimal, { command: 'sft' }))).toEqual([
      'config.yaml:1:1  sft_training is missing (sft reads it); this looks like a DPO config: run dpo-sweep train --config …',
      'warning: config.yaml:4:1  dpo_training: not read by sft; ignored (read by dpo-sweep train)',
      'warning: config.yaml:6:1  risk_test: not read by sft; ignored (read by dynamic-β training (dpo-sweep train without a beta_dpo block))',
    ]);
  });

  it('push_to_hub needs a hub_model_id; wandb only with a truthy report', async () => {
    expect(await failure(translateText(minimal, { sets: ['dpo_training.push_to_hub=true'] }))).toEqual([
      '--set dpo_training.push_to_hub=true  dpo_training.push_to_hub: true needs a hub_model_id (the repository to push to)',
    ]);
    const pushed = await translateText(minimal, { sets: ['dpo_training.push_to_hub=true', 'dpo_training.hub_model_id=me/model'] });
    expect(pushed.spec.settings.hub).toEqual({ push: true, model_id: 'me/model' });
    expect((await translateText(minimal, { sets: ['dpo_training.report=false', 'dpo_training.wandb_project=p'] })).spec.settings.report_to).toEqual([]);
    expect((await translateText(minimal, { sets: ['dpo_training.report=true'] })).spec.settings.report_to).toEqual(['wandb']);
  });

  it('resolves local models and data against the working directory, then the config folder', async () => {
    const kinds: Record<string, 'file' | 'dir'> = { '/work/models/sft': 'dir', '/seed/data/prefs.jsonl': 'file' };
    const t = await translateText(
      yaml`
        policy_name: models/sft
        ref_name: models/sft
        dataset: {dataset_name: data/prefs.jsonl}
        dpo_training: {batch_size: 2}
      `,
      { cwd: '/work', pathKind: (p) => kinds[p] },
    );
    expect(t.spec.settings.model).toBe('/work/models/sft');
    expect(t.spec.settings.reference).toBeUndefined();
    expect(t.spec.settings.dataset).toMatchObject({ path: '/seed/data/prefs.jsonl', format: 'hh' });
    const missing = await failure(
      translateText(yaml`
        policy_name: ./models/nope
        dataset: {dataset_name: org/data}
        dpo_training: {batch_size: 2}
      `),
    );
    expect(missing).toEqual(['config.yaml:1:1  policy_name: ./models/nope does not exist (a local model directory)']);
  });

  it('a different ref_name becomes the reference; a missing one means the policy', async () => {
    const map = readModelMap({ flag: 'org/model=builtin:tiny-llama,org/ref=builtin:tiny-llama@1' });
    const t = await translateText(`${minimal}ref_name: org/ref\n`, { modelMap: map });
    expect(t.spec.settings.model).toBe('builtin:tiny-llama');
    expect(t.spec.settings.reference).toBe('builtin:tiny-llama@1');
    const none = await translateText(minimal);
    expect(none.spec.settings.reference).toBeUndefined();
    expect(none.messages.some((m) => m.text === 'no ref_name: the reference is the policy model (policy_name)')).toBe(true);
  });

  it('reports a mapped directory that does not exist with the id and path, at the key', async () => {
    const map = readModelMap({ flag: 'org/model=/nowhere/sft' });
    expect(await failure(translateText(minimal, { modelMap: map }))).toEqual([
      'config.yaml:1:1  policy_name: model map: "org/model" → /nowhere/sft (from --model-map): does not exist; expected a model directory',
    ]);
  });

  it('without risk_test.beta_warmup, W is the seed\'s default 120 micro-batches, converted like a written one', async () => {
    const text = yaml`
      policy_name: org/model
      dataset: {dataset_name: org/data}
      dpo_training: {batch_size: 2, gradient_accumulation: 4}
    `;
    const t = await translateText(text);
    expect(t.spec.settings.dynamic_beta.warmup).toBe(30);
    expect(t.messages.filter((m) => m.text.includes('beta_warmup')).map(formatSeedMessage)).toEqual([
      "config.yaml  no risk_test.beta_warmup: the seed's default 120 micro-batches → dynamic_beta.warmup 30 optimizer steps (grad_accum 4)",
    ]);
    expect((await translateText(text, { seedCadence: true })).spec.settings.dynamic_beta.warmup).toBe(120);
    const block = await translateText(text, { sets: ['risk_test.delta=0.2'] });
    expect(block.spec.settings.dynamic_beta).toMatchObject({ delta: 0.2, warmup: 30 });
    expect(formatSeedMessage(block.messages.find((m) => m.text.startsWith('no risk_test.beta_warmup'))!)).toBe(
      "--set risk_test.delta=0.2  risk_test: no risk_test.beta_warmup: the seed's default 120 micro-batches → dynamic_beta.warmup 30 optimizer steps (grad_accum 4)",
    );
  });

  it('says what beta_min 0 (the seed\'s configs) becomes: the worker\'s floor 1e-3·beta_0 (seed-spec §7.20)', async () => {
    const t = await translateText(minimal, { sets: ['beta_update.beta_min=0', 'beta_update.beta_0=0.2'] });
    expect(t.spec.settings.dynamic_beta.beta_min).toBe(0);
    expect(formatSeedMessage(t.messages.find((m) => m.path.join('.') === 'beta_update.beta_min')!)).toBe(
      '--set beta_update.beta_min=0  beta_update.beta_min: 0 would let β decay to 0, where the loss is log 2 with no gradient (seed-spec §7.20): the worker uses 0.001·beta_0 = 0.0002 instead, with a warning; write a positive beta_min to choose the floor',
    );
    const shipped = await translateFile('config_dpo.yaml');
    expect(shipped.messages.find((m) => m.path.join('.') === 'beta_update.beta_min')?.text).toContain('0.001·beta_0 = 0.0001 instead');
    expect((await translateText(minimal, { sets: ['beta_update.beta_min=0.01'] })).messages.some((m) => m.path.join('.') === 'beta_update.beta_min')).toBe(false);
  });

  it('warns that eval_steps evaluates nothing without dataset.val_ratio (which the seed required)', async () => {
    const warned = (t: Translation) =>
      t.messages.filter((m) => m.level === 'warning' && m.text.startsWith('nothing to evaluate')).map((m) => m.path.join('.'));
    const dpo = await translateText(minimal, { sets: ['dpo_training.eval_steps=5'] });
    expect(dpo.spec.settings.training.eval_steps).toBe(5);
    expect(formatSeedMessage(dpo.messages.find((m) => m.path.join('.') === 'dpo_training.eval_steps')!)).toBe(
      '--set dpo_training.eval_steps=5  dpo_training.eval_steps: nothing to evaluate without dataset.val_ratio (no held-out rows; the seed required val_ratio): set dataset.val_ratio, e.g. 0.1',
    );
    expect(warned(await translateText(minimal, { sets: ['dpo_training.eval_steps=5', 'dataset.val_ratio=0.1'] }))).toEqual([]);
    const sftText = yaml`
      policy_name: org/model
      dataset: {dataset_name: org/data}
      sft_training: {save_steps: 50}
    `;
    // sft: save_steps stands in for eval_steps only when there are held-out rows.
    const sft = await translateText(sftText, { command: 'sft' });
    expect(sft.spec.settings.training.eval_steps).toBeUndefined();
    expect(warned(sft)).toEqual([]);
    expect((await translateText(sftText, { command: 'sft', sets: ['dataset.val_ratio=0.1'] })).spec.settings.training.eval_steps).toBe(50);
    expect(warned(await translateText(sftText, { command: 'sft', sets: ['sft_training.eval_steps=10'] }))).toEqual(['sft_training.eval_steps']);
  });

  it('null dataset lengths (TRL\'s "no limit"): prompt/completion as here, max_length takes the default with a warning', async () => {
    const t = await translateText(minimal, { sets: ['dataset.max_prompt_length=null', 'dataset.max_completion_length=null', 'dataset.max_length=null'] });
    expect(t.spec.settings.training.max_length).toBe(1024);
    expect(t.messages.filter((m) => m.path[0] === 'dataset' && String(m.path[1]).startsWith('max_')).map(formatSeedMessage)).toEqual([
      '--set dataset.max_length=null  dataset.max_length: null (no limit) is not available: prompt + completion are truncated to training.max_length 1024 (the default); write a number to choose another limit',
      '--set dataset.max_prompt_length=null  dataset.max_prompt_length: null (no separate limit), as here: prompt + completion are truncated to training.max_length (1024) together',
      '--set dataset.max_completion_length=null  dataset.max_completion_length: null (no separate limit), as here: prompt + completion are truncated to training.max_length (1024) together',
    ]);
    const levels = t.messages.filter((m) => m.path[0] === 'dataset' && String(m.path[1]).startsWith('max_')).map((m) => m.level);
    expect(levels).toEqual(['warning', 'note', 'note']);
    expect((await translateText(minimal, { sets: ['dataset.max_completion_length=null', 'dataset.max_length=512'] })).spec.settings.training.max_length).toBe(512);
  });

  it('β-DPO keeps 32 margins per record unless margin_log says otherwise (the seed\'s train-beta-dpo)', async () => {
    const t = await translateText(minimal, { sets: ['beta_dpo={}'] });
    expect(t.spec.settings.margin_log).toEqual({ sample_size: 32 });
    expect(t.messages.some((m) => m.text === "no margin_log.jsonl_sample_size: margin_log.sample_size 32, as the seed's train-beta-dpo kept")).toBe(true);
    expect((await translateText(minimal, { sets: ['beta_dpo={}', 'margin_log.jsonl_sample_size=8'] })).spec.settings.margin_log).toEqual({ sample_size: 8 });
    expect((await translateText(minimal)).spec.settings.margin_log).toEqual({ sample_size: 64 });
  });

  it('sft: chat_template false is not read (the seed\'s SFT always used the template)', async () => {
    const text = yaml`
      policy_name: org/model
      dataset: {dataset_name: org/data, chat_template: false}
      sft_training: {batch_size: 2}
    `;
    const sft = await translateText(text, { command: 'sft' });
    expect(sft.messages.filter((m) => m.path.join('.') === 'dataset.chat_template').map((m) => `${m.level}: ${m.text}`)).toEqual([
      "note: not read by sft: the seed's SFT always rendered conversations with the chat template, as the worker does",
    ]);
    const dpo = await translateText(text.replace('sft_training', 'dpo_training'));
    expect(dpo.messages.find((m) => m.path.join('.') === 'dataset.chat_template')?.level).toBe('warning');
  });

  it('names runs for folders', async () => {
    expect((await translateText(minimal, { sets: ['dpo_training.run_name="my run/1"'] })).spec.name).toBe('my_run_1');
    expect((await translateText(minimal)).spec.name).toBe('config');
    expect((await translateText(minimal, { sets: ['beta_dpo={}'] })).spec.name).toBe('beta-dpo');
  });
});
