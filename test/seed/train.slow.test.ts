/**
 * Seed configs trained for real: `dpo-sweep train|sft --config configs/seed/…` through the CLI, the
 * runner, the bridge and the worker, on the built-in tiny model (offline map), 3 optimizer steps on
 * CPU. Slow tier (needs the worker venv: `npx dpo-sweep setup`).
 */
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { readJson, readStatus, runPaths } from '../../src/execute/run-dir.js';
import { testCache, workerPython } from '../helpers/worker.js';
import { fakeIO, offlineMap, seedConfig } from './helpers.js';

let python: string;
let cacheDir: string;

beforeAll(() => {
  python = workerPython();
  cacheDir = testCache();
});

const SMALL_DPO = ['dpo_training.report=false', 'dpo_training.batch_size=4', 'dpo_training.eval_batch_size=4', 'dpo_training.gradient_accumulation=2', 'dataset.max_length=128'];
const SMALL_SFT = ['sft_training.push_to_hub=false', 'sft_training.wandb_project=null', 'sft_training.batch_size=4', 'sft_training.eval_batch_size=4', 'sft_training.max_length=128'];

async function train(command: 'train' | 'sft', file: string, sets: string[], modelMap = offlineMap) {
  const out = mkdtempSync(join(tmpdir(), 'seed-train-'));
  // The shipped offline map comes from the environment; --model-map entries win over it.
  const io = fakeIO({ HF_HUB_OFFLINE: '1', DPO_SWEEP_CACHE: cacheDir, DPO_SWEEP_MODEL_MAP: offlineMap });
  const args = [command, '--config', seedConfig(file), '--model-map', modelMap, '--out', out, '--max-steps', '3', '--python', python];
  for (const s of sets) args.push('--set', s);
  const code = await main(args, io);
  const sweep = readJson<{ runs: { id: string }[] }>(join(out, 'sweep.json'));
  const id = sweep?.runs[0]?.id ?? '';
  return { code, io, out, dir: join(out, 'runs', id), id };
}

describe('seed configs trained for real (tiny model, CPU, 3 steps)', () => {
  it.each([
    ['config_dpo.yaml', 'dynamic-beta-dpo'],
    ['config_beta_dpo.yaml', 'beta-dpo'],
  ])('train --config %s (%s)', async (file, algorithm) => {
    const { code, io, dir } = await train('train', file, SMALL_DPO);
    expect(code, [...io.stdout, ...io.stderr].join('\n')).toBe(0);
    expect(readStatus(dir)).toMatchObject({ state: 'succeeded', step: 3 });
    expect(readJson<{ settings: { algorithm: string } }>(runPaths(dir).spec)?.settings.algorithm).toBe(algorithm);
    expect(existsSync(join(runPaths(dir).final, 'config.json'))).toBe(true);
    expect(io.stdout.some((l) => l.startsWith('sweep directory: '))).toBe(true);
  });

  it('sft --config config_sft.yaml', async () => {
    const { code, io, dir } = await train('sft', 'config_sft.yaml', SMALL_SFT);
    expect(code, [...io.stdout, ...io.stderr].join('\n')).toBe(0);
    expect(readStatus(dir)).toMatchObject({ state: 'succeeded', step: 3 });
    expect(existsSync(join(runPaths(dir).final, 'config.json'))).toBe(true);
  });

  it('a run that fails exits 1 (the mapped policy folder holds no model)', async () => {
    const empty = join(mkdtempSync(join(tmpdir(), 'seed-empty-')), 'model');
    mkdirSync(empty);
    const { code, io, dir } = await train('train', 'config_dpo.yaml', SMALL_DPO, `W-61/hh-llama32-1b-sft=${empty}`);
    expect(code).toBe(1);
    expect(readStatus(dir)).toMatchObject({ state: 'failed', error: expect.stringContaining('no config.json') });
    expect(io.stdout.some((l) => l.includes('failed'))).toBe(true);
  });
});
