/**
 * Bad inputs to `dpo-sweep rollout` and `dpo-sweep generate` that must fail before any work, with a
 * clear message and exit 2 (no stack trace): an output path that is a file or lies below one, a
 * max_new_tokens below the default min_new_tokens, k = 1. Fast tier: nothing reaches the worker.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateRequest } from '../../src/cli/commands/generate.js';
import { main } from '../../src/cli/main.js';
import { InputError } from '../../src/errors.js';
import { translateRolloutConfig } from '../../src/rollout/config.js';
import { outputPathProblem } from '../../src/rollout/manager.js';
import { loadSeedConfig } from '../../src/seed/load.js';
import { formatSeedMessage } from '../../src/seed/messages.js';
import { repoRoot } from '../helpers/python.js';
import { fakeIO } from '../seed/helpers.js';

const fixtures = join(repoRoot, 'test', 'rollout', 'fixtures');

async function translate(text: string) {
  const loaded = await loadSeedConfig('config.yaml', { cwd: '/seed', readFile: async () => text });
  return translateRolloutConfig(loaded, { cacheDir: '/cache', cwd: '/seed', pathKind: () => undefined });
}

const minimal = 'policy_name: org/sft\ndataset:\n  dataset_name: Anthropic/hh-rlhf\n';

describe('output paths', () => {
  it('outputPathProblem: a file where a folder is wanted, a file above, a folder where a file is wanted', () => {
    const dir = mkdtempSync(join(tmpdir(), 'outpath-'));
    const file = join(dir, 'afile');
    writeFileSync(file, 'x');
    mkdirSync(join(dir, 'folder.json'));
    expect(outputPathProblem(join(dir, 'new', 'deeper'), 'dir')).toBeNull();
    expect(outputPathProblem(dir, 'dir')).toBeNull();
    expect(outputPathProblem(file, 'dir')).toBe(`${file} is a file, not a folder`);
    expect(outputPathProblem(join(file, 'sub', 'x'), 'dir')).toBe(`${file} is a file, not a folder`);
    expect(outputPathProblem(join(dir, 'missing', 'o.json'), 'file')).toBeNull();
    expect(outputPathProblem(file, 'file')).toBeNull(); // overwritten at the end, as documented
    expect(outputPathProblem(join(file, 'o.json'), 'file')).toBe(`${file} is a file, not a folder`);
    expect(outputPathProblem(join(dir, 'folder.json'), 'file')).toBe(`${join(dir, 'folder.json')} is a folder, not a file`);
  });

  it('generate --out below a file or naming a folder: InputError before the worker starts', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gen-out-'));
    const file = join(dir, 'afile');
    writeFileSync(file, 'x');
    mkdirSync(join(dir, 'folder.json'));
    const opts = { model: 'builtin:tiny-llama', prompts: join(repoRoot, 'configs', 'data', 'eval-prompts.jsonl') };
    expect(() => generateRequest({ ...opts, out: join(file, 'o.json') }, '/cache')).toThrow(new InputError(`--out ${join(file, 'o.json')}: ${file} is a file, not a folder`));
    expect(() => generateRequest({ ...opts, out: join(dir, 'folder.json') }, '/cache')).toThrow(/is a folder, not a file/);
    expect(generateRequest({ ...opts, out: join(dir, 'new', 'o.json') }, '/cache').out).toBe(join(dir, 'new', 'o.json'));
  });

  it('rollout --out naming a file: exit 2 with a message, no stack trace, the file untouched', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rollout-out-'));
    const file = join(dir, 'afile');
    writeFileSync(file, 'keep me');
    for (const out of [file, join(file, 'sub')]) {
      // --python points nowhere: reaching the worker setup would fail differently.
      const io = fakeIO({ HF_HUB_OFFLINE: '1' });
      const code = await main(
        ['rollout', '--config', join(fixtures, 'config_rollout.yaml'), '--model-map', join(fixtures, 'offline-map.yaml'), '--out', out, '--python', '/no/such/python', '--set', 'rollout.engine=st'],
        io,
      );
      const text = [...io.stdout, ...io.stderr].join('\n');
      expect(code, text).toBe(2);
      expect(text).toContain(`output folder (--out ${out}): ${file} is a file, not a folder`);
      expect(text).not.toMatch(/\n\s+at /);
    }
    expect(readFileSync(file, 'utf8')).toBe('keep me');
  });
});

describe('sampling settings the seed defaults make wrong', () => {
  it('max_new_tokens below the default min_new_tokens points at max_new_tokens and names the default', async () => {
    const error = await translate(`${minimal}rollout:\n  max_new_tokens: 6\n`).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).details).toEqual([
      expect.stringMatching(/config\.yaml:5:\d+\s+rollout\.max_new_tokens: 6 is less than min_new_tokens 10 \(the seed's default; set rollout\.min_new_tokens\)/),
    ]);
  });

  it('k = 1 is accepted with a warning that no pair can be formed', async () => {
    for (const key of ['k', 'responses_per_prompt']) {
      const { request, messages } = await translate(`${minimal}rollout:\n  ${key}: 1\n`);
      expect(request.k).toBe(1);
      const w = messages.filter((m) => m.level === 'warning').map(formatSeedMessage);
      expect(w).toEqual([expect.stringMatching(new RegExp(`config\\.yaml:5:\\d+\\s+rollout\\.${key}: 1 candidate per prompt: no chosen/rejected pair can be formed`))]);
    }
    const { messages } = await translate(`${minimal}rollout:\n  k: 2\n`);
    expect(messages.some((m) => /no chosen\/rejected pair/.test(m.text))).toBe(false);
  });
});
