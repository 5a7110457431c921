import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { loadSeedConfig, type SeedLoadOptions } from '../../src/seed/load.js';
import { formatSeedMessage } from '../../src/seed/messages.js';
import { yaml } from '../plan/helpers.js';
import { seedConfig, seedDir } from './helpers.js';

/** Loads `config.yaml` from memory. */
function load(text: string, options: Omit<SeedLoadOptions, 'readFile' | 'cwd'> = {}) {
  return loadSeedConfig('config.yaml', {
    cwd: '/seed',
    ...options,
    readFile: async (file) => {
      if (file !== '/seed/config.yaml') throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
      return text;
    },
  });
}

async function problems(text: string, options: Omit<SeedLoadOptions, 'readFile' | 'cwd'> = {}): Promise<{ message: string; details: string[] }> {
  const error = await load(text, options).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof InputError)) throw new Error(`expected an InputError, got ${String(error)}`);
  return { message: error.message, details: error.details };
}

const minimal = yaml`
  policy_name: org/model
  dataset:
    dataset_name: org/data
  dpo_training:
    batch_size: 2
`;

describe('seed configs: schema and loading', () => {
  it('every shipped seed config validates, with no unknown keys', async () => {
    const files = readdirSync(seedDir).filter((f) => f.startsWith('config_') && f.endsWith('.yaml'));
    expect(files.sort()).toEqual(['config_beta_dpo.yaml', 'config_dpo.yaml', 'config_dpo_original.yaml', 'config_sft.yaml']);
    for (const file of files) {
      const loaded = await loadSeedConfig(seedConfig(file));
      expect(loaded.messages, file).toEqual([]);
      expect(loaded.config.policy_name, file).toMatch(/\//);
    }
  });

  it('reads YAML 1.1 style values as the seed did: "5e-7" strings are numbers, yes/no booleans', async () => {
    const { config } = await load(yaml`
      policy_name: org/model
      dataset:
        dataset_name: org/data
        generated_data: yes
        chat_template: off
        val_ratio: "0.1"
      dpo_training:
        learning_rate: "5e-7"
        max_grad_norm: '1_0'
        epochs: "1"
      beta_dpo:
        min_beta: 1e-3
        eps: " 1e-6 "
    `);
    expect(config.dpo_training).toEqual({ learning_rate: 5e-7, max_grad_norm: 10, epochs: 1 });
    expect(config.beta_dpo).toEqual({ min_beta: 1e-3, eps: 1e-6 });
    expect(config.dataset).toMatchObject({ generated_data: true, chat_template: false, val_ratio: 0.1 });
  });

  it('reads YAML 1.1 digit grouping (1_000) as PyYAML did, for integers too; a real overflow stays an error', async () => {
    const { config } = await load(yaml`
      policy_name: org/model
      dataset:
        dataset_name: org/data
        seed: 1_234
      dpo_training:
        batch_size: 1_6
        save_steps: 1_000
        learning_rate: 1_0e-7
      risk_test:
        beta_warmup: 0x10
    `);
    expect(config.dataset.seed).toBe(1234);
    expect(config.dpo_training).toEqual({ batch_size: 16, save_steps: 1000, learning_rate: 1e-6 });
    expect(config.risk_test).toEqual({ beta_warmup: 16 });
    expect((await problems(minimal, { sets: ['dpo_training.learning_rate=1e400'] })).details).toEqual([
      '--set dpo_training.learning_rate=1e400  dpo_training.learning_rate: expected a number > 0, received Infinity',
    ]);
    expect((await problems(`${minimal}  save_steps: 1e400\n`)).details).toEqual(['config.yaml:6:3  dpo_training.save_steps: 1e400 is out of range (too large for a 64-bit float)']);
  });

  it('rejects wrong types and values with their positions, all at once, in file order', async () => {
    const { message, details } = await problems(yaml`
      policy_name: org/model
      precision: bf17
      dataset:
        val_ratio: 1.5
      dpo_training:
        batch_size: eight
        learning_rate: "five"
      risk_test:
        delta: 0
        beta_warmup: -1
      beta_dpo:
        rho: 1.2
    `);
    expect(message).toBe('invalid config config.yaml: 8 problems');
    expect(details).toEqual([
      'config.yaml:2:1  precision: expected one of bf16 | fp16 | fp32, received "bf17"',
      'config.yaml:3:1  dataset.dataset_name: missing (expected a non-empty string)',
      'config.yaml:4:3  dataset.val_ratio: expected a number > 0 and < 1, received 1.5',
      'config.yaml:6:3  dpo_training.batch_size: expected a positive integer, received "eight"',
      'config.yaml:7:3  dpo_training.learning_rate: expected a number > 0, received "five"',
      'config.yaml:9:3  risk_test.delta: expected a number > 0 and < 1, received 0',
      'config.yaml:10:3  risk_test.beta_warmup: expected a non-negative integer, received -1',
      'config.yaml:12:3  beta_dpo.rho: expected a number > 0 and <= 1, received 1.2',
    ]);
  });

  it('warns about unknown keys by name and line (with a did-you-mean) and drops them', async () => {
    const loaded = await load(yaml`
      policy_name: org/model
      dataset:
        dataset_name: org/data
        dataset_nme: typo
      dpo_training:
        batch_size: 2
        max_steps: 500
      risk_tset:
        delta: 0.1
    `);
    expect(loaded.messages.map(formatSeedMessage)).toEqual([
      'config.yaml:4:3  dataset.dataset_nme: unknown key — did you mean "dataset_name"?; ignored',
      'config.yaml:7:3  dpo_training.max_steps: not a key of the seed trainers (they never read it); pass --max-steps N to cap the optimizer steps',
      'config.yaml:8:1  risk_tset: unknown key — did you mean "risk_test"?; ignored',
    ]);
    expect(loaded.messages.every((m) => m.level === 'warning')).toBe(true);
    expect(loaded.config).toEqual({ policy_name: 'org/model', dataset: { dataset_name: 'org/data' }, dpo_training: { batch_size: 2 } });
  });

  it('names the seed key to write for a key in the wrong block or under another tool\'s name', async () => {
    const loaded = await load(yaml`
      policy_name: org/model
      temperature: 0.5
      dataset:
        dataset_name: org/data
        beta_warmup: 3
        split: train[:1%]
      dpo_training:
        batch_size: 2
        grad_accum: 4
        gradient_accumulation_steps: 4
        num_train_epochs: 2
        max_length: 512
        beta_0: 0.2
      risk_test:
        warmup: 10
    `);
    expect(loaded.messages.map(formatSeedMessage)).toEqual([
      'config.yaml:2:1  temperature: unknown key at the top level — the seed reads rollout.temperature; ignored',
      'config.yaml:5:3  dataset.beta_warmup: unknown key in dataset — the seed reads risk_test.beta_warmup; ignored',
      "config.yaml:6:3  dataset.split: unknown key — the seed's name for it is dataset.subset; ignored",
      "config.yaml:9:3  dpo_training.grad_accum: unknown key — the seed's name for it is dpo_training.gradient_accumulation; ignored",
      "config.yaml:10:3  dpo_training.gradient_accumulation_steps: unknown key — the seed's name for it is dpo_training.gradient_accumulation; ignored",
      "config.yaml:11:3  dpo_training.num_train_epochs: unknown key — the seed's name for it is dpo_training.epochs; ignored",
      'config.yaml:12:3  dpo_training.max_length: unknown key in dpo_training — the seed reads dataset.max_length or sft_training.max_length; ignored',
      'config.yaml:13:3  dpo_training.beta_0: unknown key in dpo_training — the seed reads beta_update.beta_0 or beta_dpo.beta_0; ignored',
      "config.yaml:15:3  risk_test.warmup: unknown key — the seed's name for it is risk_test.beta_warmup; ignored",
    ]);
    expect(loaded.config.dpo_training).toEqual({ batch_size: 2 });
  });

  it('takes null where the seed passed None to TRL (dataset max lengths), from the file and from --set', async () => {
    const loaded = await load(`${minimal}`.replace('  dataset_name: org/data\n', '  dataset_name: org/data\n  max_completion_length: null\n  max_length: ~\n'), {
      sets: ['dataset.max_prompt_length=null', 'debug.max_batches=null'],
    });
    expect(loaded.config.dataset).toEqual({ dataset_name: 'org/data', max_completion_length: null, max_length: null, max_prompt_length: null });
    expect(loaded.config.debug).toEqual({ max_batches: null });
    // Where TRL has no None (a step count), null stays an error that names the key.
    expect((await problems(minimal, { sets: ['dpo_training.warmup_steps=null'] })).details).toEqual([
      '--set dpo_training.warmup_steps=null  dpo_training.warmup_steps: expected a non-negative integer, received null',
    ]);
  });

  it('checks dataset.subset is a split expression the loader can read', async () => {
    for (const ok of ['train', 'train[:30%]', 'train[10%:20%]', 'train[100:200]', 'train[-10:]', 'train[:10%]+test[:10%]', 'train[:1%](pct1_dropremainder)']) {
      expect((await load(minimal, { sets: [`dataset.subset=${ok}`] })).config.dataset.subset, ok).toBe(ok);
    }
    const { details } = await problems(minimal.replace('  dataset_name: org/data\n', '  dataset_name: org/data\n  subset: train[:30%\n'));
    expect(details).toEqual([
      'config.yaml:4:3  dataset.subset: expected a split expression such as train, train[:30%], train[100:200] or train[:10%]+test[:10%]',
    ]);
    expect((await problems(minimal, { sets: ['dataset.subset=train[30]'] })).details).toHaveLength(1);
  });

  it('refuses a --set below a key that holds a value, naming the override', async () => {
    const { details } = await problems(minimal, { sets: ['policy_name.revision=main', 'dpo_training.batch_size.n=4'] });
    expect(details).toEqual([
      '--set policy_name.revision=main  policy_name is a value ("org/model"), not a block of keys; write --set policy_name=<value>',
      '--set dpo_training.batch_size.n=4  dpo_training.batch_size is a value (2), not a block of keys; write --set dpo_training.batch_size=<value>',
    ]);
    expect((await load(minimal, { sets: ['risk_test.delta=0.2', 'beta_update.beta_0=0.2'] })).config).toMatchObject({ risk_test: { delta: 0.2 }, beta_update: { beta_0: 0.2 } });
  });

  it('lists the unknown-key warnings beside the errors (a typo often explains a missing key)', async () => {
    const { details } = await problems(yaml`
      policy_nme: org/model
      dataset:
        dataset_name: org/data
    `);
    expect(details).toEqual([
      'config.yaml:1:1  policy_name: missing (expected a non-empty string)',
      'warning: config.yaml:1:1  policy_nme: unknown key — did you mean "policy_name"?; ignored',
    ]);
  });

  it('refuses secrets in the file: tokens come from the environment only', async () => {
    const { details } = await problems(`${minimal}  hub_token: hf_xxx\n`);
    expect(details).toEqual([
      'config.yaml:6:3  dpo_training.hub_token: secrets are read from the environment only (HF_TOKEN, WANDB_API_KEY, ...); remove this key from the file',
    ]);
    await expect(load(`${minimal}openai_api_key: sk\n`)).rejects.toThrow(InputError);
  });

  it('applies --set to seed keys before validating; its problems point at the override', async () => {
    const loaded = await load(minimal, { sets: ['dpo_training.learning_rate=5e-7', 'risk_test.beta_warmup=8'] });
    expect(loaded.config.dpo_training).toEqual({ batch_size: 2, learning_rate: 5e-7 });
    expect(loaded.config.risk_test).toEqual({ beta_warmup: 8 });
    const { details } = await problems(minimal, { sets: ['dpo_training.batch_size=0', 'nonsense'] });
    expect(details).toEqual([
      '--set nonsense  expected key=value (e.g. --set dpo_training.batch_size=4)',
      '--set dpo_training.batch_size=0  dpo_training.batch_size: expected a positive integer, received 0',
    ]);
  });

  it('reports unreadable, empty, non-mapping and broken files', async () => {
    await expect(loadSeedConfig('/nonexistent/config_dpo.yaml')).rejects.toThrow('cannot read config /nonexistent/config_dpo.yaml: no such file');
    expect((await problems('')).details).toEqual(['config.yaml:1:1  the config is empty']);
    expect((await problems('- a\n- b\n')).details).toEqual(['config.yaml:1:1  a seed config is a mapping of keys (policy_name, dataset, dpo_training, ...)']);
    expect((await problems('policy_name: [\n')).details[0]).toMatch(/^config\.yaml:2:1 {2}YAML syntax error/);
    expect((await problems('policy_name: a\n---\npolicy_name: b\n')).details).toEqual([
      'config.yaml:2:1  a second YAML document starts here; a seed config holds exactly one (remove the "---" separator)',
    ]);
  });

  it('rejects a dataset.seed numpy cannot take (it becomes training.seed)', async () => {
    expect((await problems(minimal, { sets: ['dataset.seed=4294967296'] })).details).toEqual([
      '--set dataset.seed=4294967296  dataset.seed: expected an integer >= 0 and <= 4294967295, received 4294967296',
    ]);
    expect((await load(minimal, { sets: ['dataset.seed=4294967295'] })).config.dataset.seed).toBe(4294967295);
  });
});
