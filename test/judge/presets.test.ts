import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { builtinPresetsDir, listPresets, loadPreset, presetFingerprint, type LlmPreset } from '../../src/judge/presets.js';
import { renderMessages, checkTemplate, renderTemplate } from '../../src/judge/prompt.js';

const fixtures = resolve(__dirname, '../fixtures/judge');

async function inputError(p: Promise<unknown>): Promise<InputError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(InputError);
    return e as InputError;
  }
  throw new Error('expected an InputError');
}

describe('shipped presets', () => {
  it('are found next to the package', () => {
    expect(listPresets()).toEqual(expect.arrayContaining(['alpaca', 'format-rule', 'hh', 'longest', 'tldr', 'tldr-concise']));
    expect(builtinPresetsDir()).toMatch(/configs[/\\]judges$/);
  });

  it.each(listPresets())('%s loads, validates and renders', async (name) => {
    const p = await loadPreset(name);
    expect(p.version).toBeTruthy();
    if (p.kind === 'llm') {
      expect(checkTemplate(p.template)).toEqual([]);
      const msgs = renderMessages(p, { instruction: 'INSTR', outputA: 'OUT-A', outputB: 'OUT-B' }, 'ba');
      const user = msgs[msgs.length - 1]!.content;
      expect(user.indexOf('OUT-B')).toBeLessThan(user.indexOf('OUT-A')); // B shown first in order ba
      expect(user).toContain('INSTR');
      expect(p.reask.length).toBeGreaterThan(0);
    }
  });

  it('hh, tldr and alpaca follow their protocols', async () => {
    const hh = (await loadPreset('hh')) as LlmPreset;
    expect(hh.parse('Comparison: x\nMore helpful: B')).toEqual({ ok: true, choice: 'second' });
    expect(hh.template).toMatch(/More helpful: <A or B>/);
    const tldr = (await loadPreset('tldr')) as LlmPreset;
    expect(tldr.parse('Comparison: x\nPreferred: A')).toEqual({ ok: true, choice: 'first' });
    const alpaca = (await loadPreset('alpaca')) as LlmPreset;
    expect(alpaca.parse('M')).toEqual({ ok: true, choice: 'second' });
    expect(alpaca.maxTokens).toBe(1);
  });

  it('format-rule prefers the finished answer', async () => {
    const p = await loadPreset('format-rule');
    if (p.kind !== 'rule') throw new Error('expected a rule preset');
    expect(await p.judge({ instruction: 'q', outputA: 'It is 4.', outputB: 'It is' })).toBe('a');
    expect(await p.judge({ instruction: 'q', outputA: '', outputB: 'Yes!' })).toBe('b');
    expect(await p.judge({ instruction: 'q', outputA: 'One.', outputB: 'Two.' })).toBe('tie');
  });
});

describe('custom presets', () => {
  it('load from a folder, with parser options and a price', async () => {
    const p = (await loadPreset(join(fixtures, 'custom-preset'))) as LlmPreset;
    expect(p).toMatchObject({ kind: 'llm', version: '3', model: 'local-judge', maxTokens: 64, price: { input_per_mtok: 1, output_per_mtok: 2 } });
    expect(p.parse('Winner: Tie')).toEqual({ ok: true, choice: 'tie' });
    expect(p.system).toBeUndefined();
    expect(renderMessages(p, { instruction: 'i', outputA: 'a', outputB: 'b' }, 'ab')).toHaveLength(1);
  });

  it('a rule module is loaded and called', async () => {
    const p = await loadPreset(join(fixtures, 'rule-module'));
    if (p.kind !== 'rule') throw new Error('expected a rule preset');
    expect(p.rule).toBe('module:rule.mjs');
    expect(await p.judge({ instruction: 'q', outputA: 'no', outputB: 'yes' })).toBe('b');
  });

  it('reports schema problems with their path', async () => {
    const e = await inputError(loadPreset(join(fixtures, 'bad-preset')));
    expect(e.message).toMatch(/bad-preset[/\\]preset\.yaml: invalid judge preset/);
    expect(e.details).toEqual(['temperature: Too big: expected number to be <=2']);
  });

  it('checks placeholders', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'preset-'));
    writeFileSync(join(dir, 'preset.yaml'), 'kind: llm\nversion: 1\nprompt: p.txt\nparser: preferred\nmodel: m\n');
    writeFileSync(join(dir, 'p.txt'), '{{instruction}} {{output_1}} {{outptu_2}}');
    const e = await inputError(loadPreset(dir));
    expect(e.details).toEqual([
      'p.txt: unknown placeholder {{outptu_2}}; known: {{instruction}}, {{output_1}}, {{output_2}}',
      'p.txt: missing placeholder {{output_2}}',
    ]);
  });

  it('names the YAML line of a syntax error, unknown presets, missing files and rule mistakes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'preset-'));
    writeFileSync(join(dir, 'preset.yaml'), 'kind: llm\nversion: 1\nprompt: [unclosed\n');
    expect((await inputError(loadPreset(dir))).message).toMatch(/preset\.yaml:\d+:\d+: invalid YAML/);

    const unknown = await inputError(loadPreset('no-such-judge'));
    expect(unknown.message).toBe('unknown judge preset "no-such-judge"');
    expect(unknown.details[0]).toMatch(/known presets: .*hh/);

    const missing = join(tmpdir(), `preset-missing-${process.pid}`);
    mkdirSync(missing, { recursive: true });
    writeFileSync(join(missing, 'preset.yaml'), 'kind: llm\nversion: 1\nprompt: nope.txt\nparser: preferred\nmodel: m\n');
    expect((await inputError(loadPreset(missing))).message).toMatch(/cannot read nope\.txt/);

    const both = mkdtempSync(join(tmpdir(), 'preset-'));
    writeFileSync(join(both, 'preset.yaml'), "kind: rule\nversion: 1\npattern: 'x'\nmodule: r.mjs\n");
    expect((await inputError(loadPreset(both))).details).toEqual(['(top level): a rule preset needs exactly one of `pattern` or `module`']);

    const badParser = mkdtempSync(join(tmpdir(), 'preset-'));
    writeFileSync(join(badParser, 'preset.yaml'), 'kind: llm\nversion: 1\nprompt: p.txt\nparser: vibes\nmodel: m\n');
    writeFileSync(join(badParser, 'p.txt'), '{{instruction}} {{output_1}} {{output_2}}');
    expect((await inputError(loadPreset(badParser))).details[0]).toMatch(/^parser: unknown parser "vibes"/);

    await expect(loadPreset('./does/not/exist')).rejects.toThrow(/has no preset\.yaml/);
  });

  it('the fingerprint follows the template and parser, not the folder', async () => {
    const a = (await loadPreset('hh')) as LlmPreset;
    const b = (await loadPreset(join(builtinPresetsDir(), 'hh'))) as LlmPreset;
    expect(presetFingerprint(a)).toBe(presetFingerprint(b));
    expect(presetFingerprint({ ...a, template: `${a.template} ` })).not.toBe(presetFingerprint(a));
  });
});

describe('templates', () => {
  it('render in one pass: placeholders inside outputs stay as they are', () => {
    const t = 'Q: {{instruction}}\n1: {{output_1}}\n2: {{ output_2 }}';
    expect(renderTemplate(t, { instruction: 'say {{output_2}}', output_1: '{{instruction}}', output_2: 'x' })).toBe(
      'Q: say {{output_2}}\n1: {{instruction}}\n2: x',
    );
  });
});
