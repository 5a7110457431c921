/**
 * Seed rollout config → the worker's rollout request. Expected values are read off seed-spec §2.1
 * (`rollout:` table, column R and the code defaults) by hand.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { translateRolloutConfig, type RolloutTranslateOptions } from '../../src/rollout/config.js';
import { loadSeedConfig } from '../../src/seed/load.js';
import { formatSeedMessage } from '../../src/seed/messages.js';
import { readModelMap } from '../../src/seed/model-map.js';
import { repoRoot } from '../helpers/python.js';

const fixtures = join(repoRoot, 'test', 'rollout', 'fixtures');
const configFile = join(fixtures, 'config_rollout.yaml');
const mapFile = join(fixtures, 'offline-map.yaml');

async function fromFile(options: Partial<RolloutTranslateOptions> & { sets?: string[] } = {}) {
  const { sets, ...rest } = options;
  const loaded = await loadSeedConfig(configFile, { sets: sets ?? [] });
  return translateRolloutConfig(loaded, { cacheDir: '/cache', modelMap: readModelMap({ flag: mapFile }), cwd: '/work', ...rest });
}

async function fromText(text: string, options: Partial<RolloutTranslateOptions> = {}) {
  const loaded = await loadSeedConfig('config.yaml', { cwd: '/seed', readFile: async () => text });
  return translateRolloutConfig(loaded, { cacheDir: '/cache', cwd: '/seed', pathKind: () => undefined, ...options });
}

async function problems(run: Promise<unknown>): Promise<string[]> {
  const error = await run.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof InputError)) throw new Error(`expected an InputError, got ${String(error)}`);
  return error.details;
}

const minimal = 'policy_name: org/sft\ndataset:\n  dataset_name: Anthropic/hh-rlhf\n';

describe('seed rollout config → request', () => {
  it('translates the seed config_rollout.yaml (column R) through the model map', async () => {
    const { request, messages } = await fromFile();
    expect(request).toEqual({
      model: 'builtin:tiny-llama',
      generator_model: 'jackf857/Llama32-1b-Instruct-hh-sft-30',
      dataset: { source: join(repoRoot, 'configs', 'data', 'prefs-hh.jsonl'), split: 'train[:50%]', name: 'Anthropic/hh-rlhf' },
      output_dir: '/work/rollout_output',
      cache_dir: '/cache',
      seed: 42,
      k: 5,
      temperature: 0.8,
      top_p: 0.9,
      max_new_tokens: 256,
      min_new_tokens: 10,
      batch_size: 5,
      vllm_batch_size: 500,
      gpu_memory_utilization: 0.9,
      limit: null,
      engine: 'vllm',
      precision: 'bf16',
      device_map: null,
      judge: 'rm',
      reward_model: 'builtin:tiny-reward',
      reward_model_name: 'RLHFlow/ArmoRM-Llama3-8B-v0.1',
      reward_batch_size: 5,
      reward_judge_batch_size: 5,
      reward_precision: null,
      reward_device_map: null,
      reward_max_length: null,
      reward_quantization: 'none',
      reward_trust_remote_code: false,
      debug_log_path: null,
      debug_log_all: false,
      debug_log_empty_only: false,
      debug_log_max: null,
      flush_every_batches: 10,
      log_throughput: true,
    });
    const text = messages.map(formatSeedMessage);
    expect(text.some((t) => /rollout\.engine: vllm needs the vllm package/.test(t))).toBe(true);
    expect(text.some((t) => /rollout\.upload_repo_id: not uploaded/.test(t))).toBe(true);
    expect(text.some((t) => /sft_training: not read by rollout/.test(t))).toBe(true);
    expect(text.some((t) => /RLHFlow\/ArmoRM-Llama3-8B-v0.1 → builtin:tiny-reward \(model map/.test(t))).toBe(true);
    // Messages are located in the file.
    expect(text.find((t) => t.includes('upload_repo_id'))).toMatch(/config_rollout\.yaml:\d+:\d+/);
  });

  it('--limit, --out and --set win over the file', async () => {
    const { request } = await fromFile({ limit: 4, out: 'here', sets: ['rollout.engine=st', 'rollout.k=5', 'rollout.limit=9'] });
    expect(request.limit).toBe(4);
    expect(request.output_dir).toBe('/work/here');
    expect(request.engine).toBe('hf');
    expect((await fromFile({ sets: ['rollout.limit=9'] })).request.limit).toBe(9);
  });

  it('uses the seed script defaults when the block is missing', async () => {
    const { request, messages } = await fromText(minimal);
    expect(request).toMatchObject({
      model: 'org/sft',
      generator_model: 'org/sft',
      dataset: { source: 'Anthropic/hh-rlhf', split: 'train', name: 'Anthropic/hh-rlhf' },
      output_dir: '/seed/rollout_output',
      seed: 42,
      k: 8,
      temperature: 0.7,
      top_p: 0.9,
      max_new_tokens: 512,
      min_new_tokens: 10,
      batch_size: 4,
      engine: 'hf',
      precision: 'auto',
      reward_model: 'RLHFlow/ArmoRM-Llama3-8B-v0.1',
      reward_batch_size: 4,
      reward_judge_batch_size: 1,
      reward_quantization: 'none',
      reward_trust_remote_code: true,
      debug_log_empty_only: true,
      flush_every_batches: 1,
    });
    const text = messages.map(formatSeedMessage).join('\n');
    expect(text).toMatch(/no rollout block/);
    expect(text).toMatch(/the seed defaulted to 8-bit/);
  });

  it('reads k as the alias of responses_per_prompt, generated data, 8-bit and judge aliases', async () => {
    const base = `${minimal}  generated_data: true\n  seed: 7\nrollout:\n`;
    const { request, messages } = await fromText(`${base}  k: 3\n  engine: st\n  judge: pairrm\n  reward_quantization: bnb8\n  temperature: "1e-1"\n`);
    expect(request).toMatchObject({ k: 3, engine: 'hf', seed: 7, reward_quantization: '8bit', temperature: 0.1, dataset: { format: 'generated' } });
    const text = messages.map(formatSeedMessage).join('\n');
    expect(text).toMatch(/rollout\.engine: st → hf/);
    expect(text).toMatch(/pairrm means the reward-model judge/);
    expect((await fromText(`${base}  reward_load_in_8bit: true\n`)).request.reward_quantization).toBe('8bit');
    expect((await fromText(`${base}  k: 4\n  responses_per_prompt: 4\n`)).request.k).toBe(4);
  });

  it('reports every problem with file:line, and warns about unknown keys', async () => {
    const text = `${minimal}rollout:\n  k: 3\n  responses_per_prompt: 5\n  temperature: hot\n  reward_quantization: 4bit\n  engine: tgi\n`;
    const details = await problems(fromText(text));
    expect(details.some((d) => /config\.yaml:7:\d+\s+rollout\.temperature: expected a number >= 0, received "hot"/.test(d))).toBe(true);
    expect(details.some((d) => /rollout\.engine/.test(d))).toBe(true);
    expect(details.some((d) => /rollout\.k: 3 disagrees with rollout\.responses_per_prompt 5/.test(d))).toBe(true);
    expect(details.some((d) => /rollout\.reward_quantization: "4bit" is not supported/.test(d))).toBe(true);

    const warned = await fromText(`${minimal}rollout:\n  temprature: 0.5\n  k: 2\n`);
    const w = warned.messages.map(formatSeedMessage).join('\n');
    expect(w).toMatch(/rollout\.temprature: unknown key — did you mean "temperature"\?; ignored/);

    // A key of another block, or vLLM's / transformers' name for a rollout key: the seed key to write.
    const moved = await fromText(`${minimal}rollout:\n  seed: 7\n  num_return_sequences: 4\n  max_tokens: 64\n  model: org/gen\n`);
    expect(moved.messages.filter((m) => m.level === 'warning').map(formatSeedMessage)).toEqual([
      'config.yaml:5:3  rollout.seed: unknown key in rollout — the seed reads dataset.seed; ignored',
      "config.yaml:6:3  rollout.num_return_sequences: unknown key — the seed's name for it is rollout.responses_per_prompt; ignored",
      "config.yaml:7:3  rollout.max_tokens: unknown key — the seed's name for it is rollout.max_new_tokens; ignored",
      'config.yaml:8:3  rollout.model: unknown key — did you mean "model_name"?; ignored',
    ]);
    expect(moved.request).toMatchObject({ seed: 42, k: 8, max_new_tokens: 512 });
    expect(warned.request.k).toBe(2);

    expect(await problems(fromText(`${minimal}rollout:\n  min_new_tokens: 20\n  max_new_tokens: 10\n`))).toEqual([
      expect.stringMatching(/rollout\.min_new_tokens: 20 is more than max_new_tokens 10/),
    ]);
    expect(await problems(fromText(`policy_name: ./missing\ndataset:\n  dataset_name: d\n`))).toEqual([
      expect.stringMatching(/policy_name: \.\/missing does not exist/),
    ]);
  });
});
