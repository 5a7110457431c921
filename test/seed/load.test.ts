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
