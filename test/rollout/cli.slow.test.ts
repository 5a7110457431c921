/**
 * `dpo-sweep generate` and `dpo-sweep rollout --config … --limit 4` through the CLI, a runner process,
 * the bridge and the real worker, on the tiny Llama and the tiny reward model (CPU, offline). Slow tier
 * (needs the worker venv: `npx dpo-sweep setup`).
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { readJsonl } from '../../src/execute/run-dir.js';
import { readRolloutState } from '../../src/rollout/manager.js';
import { repoRoot } from '../helpers/python.js';
import { testCache, workerPython } from '../helpers/worker.js';
import { fakeIO } from '../seed/helpers.js';

const fixtures = join(repoRoot, 'test', 'rollout', 'fixtures');
const SMALL = ['rollout.engine=st', 'rollout.max_new_tokens=8', 'rollout.min_new_tokens=2', 'rollout.responses_per_prompt=3', 'rollout.batch_size=4', 'rollout.reward_judge_batch_size=4'];

let python: string;
let cacheDir: string;

beforeAll(() => {
  python = workerPython();
  cacheDir = testCache();
});

function rollout(out: string, extra: string[] = [], sets = SMALL) {
  const io = fakeIO({ HF_HUB_OFFLINE: '1' });
  const args = ['rollout', '--config', join(fixtures, 'config_rollout.yaml'), '--model-map', join(fixtures, 'offline-map.yaml'), '--out', out, '--cache-dir', cacheDir, '--python', python, ...extra];
  for (const s of sets) args.push('--set', s);
  return main(args, io).then((code) => ({ code, io, log: [...io.stdout, ...io.stderr].join('\n') }));
}

describe('rollout and generate through the real worker', () => {
  it('generate: AlpacaEval records with a KL estimate', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'generate-')), 'eval.json');
    const io = fakeIO({ HF_HUB_OFFLINE: '1' });
    const code = await main(
      ['generate', '--model', 'builtin:tiny-llama', '--prompts', join(repoRoot, 'configs', 'data', 'eval-prompts.jsonl'), '--out', out, '--limit', '3', '--n', '2',
        '--max-new-tokens', '6', '--reference', 'builtin:tiny-llama@1', '--cache-dir', cacheDir, '--python', python],
      io,
    );
    expect(code, [...io.stdout, ...io.stderr].join('\n')).toBe(0);
    const records = JSON.parse(readFileSync(out, 'utf8')) as Array<Record<string, unknown>>;
    expect(records).toHaveLength(6);
    for (const r of records) {
      expect(Object.keys(r).sort()).toEqual(['dataset', 'generator', 'instruction', 'kl', 'output', 'sample']);
      expect(r).toMatchObject({ generator: 'tiny-llama', dataset: 'eval-prompts' });
      expect(typeof r.kl).toBe('number');
    }
    expect(io.stdout.join('\n')).toMatch(/6 outputs for 3 generated prompts, mean KL -?\d/);
  }, 120_000);

  it('rollout --limit 4, then --limit 6 continues without regenerating, then a rerun does nothing', async () => {
    const out = mkdtempSync(join(tmpdir(), 'rollout-cli-'));
    const first = await rollout(out, ['--limit', '4']);
    expect(first.code, first.log).toBe(0);
    const responses = readJsonl<{ prompt_messages: unknown[]; responses: string[] }>(join(out, 'rollout_responses.jsonl'));
    expect(responses).toHaveLength(4);
    expect(responses.every((r) => r.responses.length === 3)).toBe(true);
    const judged = readJsonl<{ metadata: { scores: unknown[]; generator_model: string; reward_model: string } }>(join(out, 'rollout_judged.jsonl'));
    const skipped = readJsonl(join(out, 'rollout_skipped.jsonl'));
    expect(judged.length + skipped.length).toBe(4);
    expect(judged[0]!.metadata).toMatchObject({ generator_model: 'jackf857/Llama32-1b-Instruct-hh-sft-30', reward_model: 'RLHFlow/ArmoRM-Llama3-8B-v0.1' });
    expect(judged[0]!.metadata.scores).toHaveLength(3);
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as Record<string, unknown>;
    expect(manifest).toMatchObject({ status: 'complete', engine: 'hf', k_candidates: 3, subset: 'train[:50%]', dataset_name: 'Anthropic/hh-rlhf', reward_quantization: 'none' });
    expect(readRolloutState(out).jobs['rollout']).toMatchObject({ status: 'complete', done: 4, total: 4 });
    expect(first.io.stdout.join('\n')).toMatch(/rollout complete: 4 prompts with 3 candidates each \(4 generated now\)/);

    const before = readFileSync(join(out, 'rollout_responses.jsonl'), 'utf8');
    const more = await rollout(out, ['--limit', '6']);
    expect(more.code, more.log).toBe(0);
    const after = readFileSync(join(out, 'rollout_responses.jsonl'), 'utf8');
    expect(after.startsWith(before)).toBe(true);
    expect(after.split('\n').filter(Boolean)).toHaveLength(6);
    expect(more.io.stdout.join('\n')).toMatch(/6 prompts with 3 candidates each \(2 generated now\)/);

    const again = await rollout(out, ['--limit', '6']);
    expect(again.code).toBe(0);
    expect(again.io.stderr.join('\n')).toMatch(/already complete/);
    expect(readFileSync(join(out, 'rollout_responses.jsonl'), 'utf8')).toBe(after);
  }, 300_000);

  it('engine vllm without the vllm package: exit 2 and a clear message', async () => {
    const out = mkdtempSync(join(tmpdir(), 'rollout-vllm-'));
    const { code, io } = await rollout(out, ['--limit', '1'], ['rollout.max_new_tokens=16']);
    // This machine has no vllm (the CPU test tier); on a GPU machine with vllm the run would proceed.
    expect(code).toBe(2);
    expect(io.stderr.join('\n')).toMatch(/engine vllm needs the vllm package/);
  }, 120_000);
});
