/** `dpo-sweep train|sft --config …` and the seed bins through `main` with a fake io (no worker needed). */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as jsyaml from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { seedBinMain } from '../../src/cli/seed-bins.js';
import { loadSeedConfig } from '../../src/seed/load.js';
import { readModelMap } from '../../src/seed/model-map.js';
import { translateSeedConfig } from '../../src/seed/translate.js';
import { fakeIO, offlineMap, seedConfig } from './helpers.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'seed-cli-'));

function dryRunOutput(stdout: string[]): { header: string; run: { id: string; name: string; settings: Record<string, unknown> } } {
  const [header, ...rest] = stdout;
  return { header: header!, run: jsyaml.load(rest.join('\n')) as { id: string; name: string; settings: Record<string, unknown> } };
}

describe('dpo-sweep train / sft --config', () => {
  it('train --dry-run prints the warnings and notes, then the resolved run settings as YAML', async () => {
    const io = fakeIO();
    const out = tmp();
    const code = await main(['train', '--config', seedConfig('config_dpo.yaml'), '--model-map', offlineMap, '--out', out, '--max-steps', '3', '--dry-run'], io);
    expect(code).toBe(0);
    const expected = translateSeedConfig(await loadSeedConfig(seedConfig('config_dpo.yaml')), {
      command: 'train',
      modelMap: readModelMap({ flag: offlineMap }),
      maxSteps: 3,
    }).spec;
    const { header, run } = dryRunOutput(io.stdout);
    expect(header).toBe(`# train --config ${seedConfig('config_dpo.yaml')}: one dynamic-beta-dpo run → ${out}/runs/${expected.id}/`);
    expect(run).toEqual({ id: expected.id, name: 'trl-dynamic-beta', settings: JSON.parse(JSON.stringify(expected.settings)) });
    expect(io.stderr.every((l) => /^(warning|note): /.test(l))).toBe(true);
    expect(io.stderr).toContain(`warning: ${seedConfig('config_dpo.yaml')}:18:3  dataset.max_len: never read by the seed (sequence lengths are dataset.max_length and sft_training.max_length); ignored`);
    expect(io.stderr).toContain(`note: ${seedConfig('config_dpo.yaml')}:58:3  risk_test.beta_warmup: 120 micro-batches → dynamic_beta.warmup 30 optimizer steps (grad_accum 4)`);
  });

  it('chooses β-DPO from the file; --seed-cadence and --set reach the settings', async () => {
    const io = fakeIO();
    const code = await main(
      ['train', '--config', seedConfig('config_beta_dpo.yaml'), '--model-map', offlineMap, '--seed-cadence', '--set', 'beta_dpo.rho=0.5', '--set', 'dpo_training.report=false', '--dry-run'],
      io,
    );
    expect(code).toBe(0);
    const { header, run } = dryRunOutput(io.stdout);
    expect(header).toMatch(/: one beta-dpo run → .*\/runs\/beta-dpo-run\/runs\/[0-9a-f]{12}\/$/);
    expect(run.settings).toMatchObject({ algorithm: 'beta-dpo', update_on: 'micro_batch', beta_dpo: { keep_ratio: 0.5 }, report_to: [] });
  });

  it('takes the model map from DPO_SWEEP_MODEL_MAP', async () => {
    const io = fakeIO({ DPO_SWEEP_MODEL_MAP: 'W-61/hh-llama32-1b-sft=builtin:tiny-llama@2' });
    expect(await main(['train', '--config', seedConfig('config_dpo.yaml'), '--dry-run'], io)).toBe(0);
    expect(dryRunOutput(io.stdout).run.settings).toMatchObject({ model: 'builtin:tiny-llama@2', dataset: { name: 'jackf857/hh-llama32-1b-rollout-judged' } });
  });

  it('sft --dry-run warns that a push needs HF_TOKEN; a real run stops before starting (exit 2), asking nothing', async () => {
    const dry = fakeIO();
    expect(await main(['sft', '--config', seedConfig('config_sft.yaml'), '--model-map', offlineMap, '--dry-run'], dry)).toBe(0);
    expect(dry.stderr).toContain('warning: hub push to jackf857/hh-llama32-1b-Instruct-sft-30 needs HF_TOKEN in the environment (never in a file or on the command line)');
    expect(dryRunOutput(dry.stdout).run.settings).toMatchObject({ algorithm: 'sft', hub: { push: true } });
    const real = fakeIO();
    expect(await main(['sft', '--config', seedConfig('config_sft.yaml'), '--model-map', offlineMap, '--out', tmp()], real)).toBe(2);
    expect(real.stderr.at(-1)).toBe('error: hub push to jackf857/hh-llama32-1b-Instruct-sft-30 needs HF_TOKEN in the environment (never in a file or on the command line)');
    const withToken = fakeIO({ HF_TOKEN: 'hf_test' });
    expect(await main(['sft', '--config', seedConfig('config_sft.yaml'), '--model-map', offlineMap, '--dry-run'], withToken)).toBe(0);
    expect(withToken.stderr.join('\n')).not.toContain('hf_test');
    expect(withToken.stdout.join('\n')).not.toContain('hf_test');
  });

  it('exits 2 on bad input: wrong types (all listed, with positions), a missing file, a missing mapped dir, bad flags', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'bad.yaml'), 'policy_name: org/m\ndataset:\n  dataset_name: org/d\ndpo_training:\n  batch_size: two\n  learning_rate: -1\n');
    const bad = fakeIO();
    expect(await main(['train', '--config', join(dir, 'bad.yaml'), '--dry-run'], bad)).toBe(2);
    expect(bad.stderr).toEqual([
      `error: invalid config ${join(dir, 'bad.yaml')}: 2 problems`,
      `  ${join(dir, 'bad.yaml')}:5:3  dpo_training.batch_size: expected a positive integer, received "two"`,
      `  ${join(dir, 'bad.yaml')}:6:3  dpo_training.learning_rate: expected a number > 0, received -1`,
    ]);

    const missing = fakeIO();
    expect(await main(['train', '--config', join(dir, 'nope.yaml')], missing)).toBe(2);
    expect(missing.stderr).toEqual([`error: cannot read config ${join(dir, 'nope.yaml')}: no such file`]);

    const gone = fakeIO();
    expect(await main(['train', '--config', seedConfig('config_dpo.yaml'), '--model-map', `W-61/hh-llama32-1b-sft=${join(dir, 'models', 'sft')}`, '--dry-run'], gone)).toBe(2);
    expect(gone.stderr.filter((l) => !l.startsWith('  warning:'))).toEqual([
      `error: cannot run ${seedConfig('config_dpo.yaml')}: 1 problem`,
      `  ${seedConfig('config_dpo.yaml')}:7:1  policy_name: model map: "W-61/hh-llama32-1b-sft" → ${join(dir, 'models', 'sft')} (from --model-map): does not exist; expected a model directory`,
    ]);

    expect(await main(['train', '--dry-run'], fakeIO())).toBe(2); // --config is required
    expect(await main(['train', '--config', seedConfig('config_dpo.yaml'), '--max-steps', '0'], fakeIO())).toBe(2);
    expect(await main(['sft', '--config', seedConfig('config_sft.yaml'), '--seed-cadence'], fakeIO())).toBe(2); // train only
    const noMap = fakeIO();
    expect(await main(['train', '--config', seedConfig('config_dpo.yaml'), '--model-map', 'not-a-file', '--dry-run'], noMap)).toBe(2);
    expect(noMap.stderr[0]).toBe('error: --model-map: "not-a-file" is neither a file, a JSON object, nor hub-id=path pairs');
  });
});

describe('the seed bins: train-dpo, train-beta-dpo, train-sft', () => {
  it('fix the algorithm by their name and accept --output_dir', async () => {
    const out = tmp();
    const beta = fakeIO();
    expect(await seedBinMain('train-beta-dpo', ['--config', seedConfig('config_dpo.yaml'), '--model-map', offlineMap, '--output_dir', out, '--dry-run'], beta)).toBe(0);
    expect(dryRunOutput(beta.stdout).header).toMatch(new RegExp(`: one beta-dpo run → ${out}/runs/[0-9a-f]{12}/$`));
    expect(beta.stderr.some((l) => l.includes('risk_test: not read by β-DPO training'))).toBe(true);

    const dyn = fakeIO();
    expect(await seedBinMain('train-dpo', ['--config', seedConfig('config_beta_dpo.yaml'), '--model-map', offlineMap, '--dry-run'], dyn)).toBe(0);
    expect(dryRunOutput(dyn.stdout).run.settings).toMatchObject({ algorithm: 'dynamic-beta-dpo' });
    expect(dyn.stderr.some((l) => l.includes('beta_dpo: not read by dynamic-β training; ignored'))).toBe(true);

    const sft = fakeIO();
    expect(await seedBinMain('train-sft', ['--config', seedConfig('config_sft.yaml'), '--model-map', offlineMap, '--dry-run'], sft)).toBe(0);
    expect(dryRunOutput(sft.stdout).run.settings).toMatchObject({ algorithm: 'sft' });
  });

  it('--dry-run shows the seed defaults of keys the file leaves out: W converted, β-DPO margin samples', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'config_dpo.yaml'), 'policy_name: builtin:tiny-llama\ndataset:\n  dataset_name: org/data\ndpo_training:\n  gradient_accumulation: 4\n  eval_steps: 5\n');
    const dyn = fakeIO();
    expect(await seedBinMain('train-dpo', ['--config', join(dir, 'config_dpo.yaml'), '--dry-run'], dyn)).toBe(0);
    expect(dryRunOutput(dyn.stdout).run.settings).toMatchObject({ dynamic_beta: { warmup: 30 }, training: { grad_accum: 4, eval_steps: 5 }, margin_log: { sample_size: 64 } });
    expect(dyn.stderr).toContain(`note: ${join(dir, 'config_dpo.yaml')}  no risk_test.beta_warmup: the seed's default 120 micro-batches → dynamic_beta.warmup 30 optimizer steps (grad_accum 4)`);
    expect(dyn.stderr).toContain(
      `warning: ${join(dir, 'config_dpo.yaml')}:6:3  dpo_training.eval_steps: nothing to evaluate without dataset.val_ratio (no held-out rows; the seed required val_ratio): set dataset.val_ratio, e.g. 0.1`,
    );

    const beta = fakeIO();
    expect(await seedBinMain('train-beta-dpo', ['--config', seedConfig('config_beta_dpo.yaml'), '--model-map', offlineMap, '--dry-run'], beta)).toBe(0);
    expect(dryRunOutput(beta.stdout).run.settings).toMatchObject({ margin_log: { sample_size: 32 } });
  });

  it("default to the seed's config file names in the working directory", async () => {
    for (const [bin, file] of [
      ['train-dpo', 'config_dpo.yaml'],
      ['train-beta-dpo', 'config_beta_dpo.yaml'],
      ['train-sft', 'config_sft.yaml'],
    ] as const) {
      const io = fakeIO();
      expect(await seedBinMain(bin, ['--dry-run'], io)).toBe(2);
      expect(io.stderr).toEqual([`error: cannot read config ${file}: no such file`]);
    }
  });

  it('refuse --output_dir and --out naming different directories', async () => {
    const io = fakeIO();
    expect(await seedBinMain('train-dpo', ['--config', seedConfig('config_dpo.yaml'), '--output_dir', 'a', '--out', 'b', '--dry-run'], io)).toBe(2);
    expect(io.stderr).toEqual(['error: --output_dir and --out name different directories; give one']);
  });
});
