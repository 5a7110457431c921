import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { mapId, parseModelMap, readModelMap } from '../../src/seed/model-map.js';
import { offlineMap, seedDir } from './helpers.js';

const targets = (map: ReadonlyMap<string, { target: string }>) => Object.fromEntries([...map].map(([id, e]) => [id, e.target]));

describe('the model map', () => {
  it('reads a YAML or JSON file; relative targets resolve against its folder, builtin: stays', () => {
    expect(targets(readModelMap({ flag: offlineMap }))).toEqual({
      'W-61/hh-llama32-1b-sft': 'builtin:tiny-llama',
      'meta-llama/Llama-3.2-1B-Instruct': 'builtin:tiny-llama',
      'jackf857/Llama32-1b-Instruct-hh-sft-30': 'builtin:tiny-llama',
      'jackf857/hh-llama32-1b-rollout-judged': join(seedDir, 'data', 'rollout-judged.jsonl'),
      'Anthropic/hh-rlhf': join(seedDir, '..', 'data', 'prefs-hh.jsonl'),
    });
    const dir = mkdtempSync(join(tmpdir(), 'model-map-'));
    writeFileSync(join(dir, 'map.json'), JSON.stringify({ 'org/a': 'models/a', 'org/b': '/abs/b' }));
    const map = readModelMap({ flag: 'map.json', cwd: dir });
    expect(targets(map)).toEqual({ 'org/a': join(dir, 'models', 'a'), 'org/b': '/abs/b' });
    expect(map.get('org/a')!.from).toBe('--model-map map.json');
  });

  it('reads hub-id=path pairs and inline JSON; relative targets resolve against the working directory', () => {
    expect(targets(parseModelMap('org/a=builtin:tiny-llama, org/b=models/b ,', '--model-map', { cwd: '/w', pathKind: () => undefined }))).toEqual({
      'org/a': 'builtin:tiny-llama',
      'org/b': '/w/models/b',
    });
    expect(targets(parseModelMap('{"org/a": "x"}', '--model-map', { cwd: '/w' }))).toEqual({ 'org/a': '/w/x' });
  });

  it('merges DPO_SWEEP_MODEL_MAP with --model-map; the flag wins', () => {
    const map = readModelMap({ env: 'org/a=/env/a,org/b=/env/b', flag: '{"org/b": "/flag/b"}', cwd: '/w' });
    expect(targets(map)).toEqual({ 'org/a': '/env/a', 'org/b': '/flag/b' });
    expect(map.get('org/a')!.from).toBe('DPO_SWEEP_MODEL_MAP');
    expect(map.get('org/b')!.from).toBe('--model-map (inline JSON)');
    expect(readModelMap({ env: '  ', flag: undefined }).size).toBe(0);
  });

  it('rejects malformed sources with a message that says what is accepted', () => {
    expect(() => readModelMap({ flag: 'no-such-file.yaml', cwd: '/w' })).toThrow('--model-map: /w/no-such-file.yaml does not exist; expected a YAML or JSON file of hub id: target');
    expect(() => readModelMap({ env: 'maps.JSON', cwd: '/w' })).toThrow('DPO_SWEEP_MODEL_MAP: /w/maps.JSON does not exist');
    const folder = mkdtempSync(join(tmpdir(), 'model-map-dir-'));
    expect(() => readModelMap({ flag: folder })).toThrow(`--model-map: ${folder} is a directory; expected a YAML or JSON file`);
    expect(() => readModelMap({ flag: 'just-words', cwd: '/w' })).toThrow('--model-map: "just-words" is neither a file, a JSON object, nor hub-id=path pairs');
    expect(() => readModelMap({ flag: 'org/a=,=b' })).toThrow('--model-map: "org/a=" is not hub-id=path');
    expect(() => readModelMap({ flag: '{"org/a": 3}' })).toThrow(InputError);
    expect(() => readModelMap({ env: '{not json' })).toThrow(/DPO_SWEEP_MODEL_MAP \(inline JSON\): not valid JSON or YAML/);
  });

  it('names the line and column of a map file that is not valid YAML (a duplicated id, say)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'model-map-'));
    writeFileSync(join(dir, 'maps.yaml'), 'org/a: builtin:tiny-llama\norg/b: data.jsonl\norg/a: models/a\n');
    expect(() => readModelMap({ flag: 'maps.yaml', cwd: dir })).toThrow('--model-map maps.yaml: not valid JSON or YAML (line 3, column 1): duplicated mapping key');
    writeFileSync(join(dir, 'bad.json'), '{\n  "org/a": "x",\n  "org/b" "y"\n}\n');
    expect(() => readModelMap({ env: join(dir, 'bad.json') })).toThrow(/^DPO_SWEEP_MODEL_MAP .*bad\.json: not valid JSON or YAML \(line 3, column \d+\): /);
    // An inline value is one line: no position.
    expect(() => readModelMap({ flag: '{"org/a": "x"' })).toThrow(/^--model-map \(inline JSON\): not valid JSON or YAML: /);
  });

  it('mapId checks that a mapped target exists: a directory for models, a file or folder for data', () => {
    const dir = mkdtempSync(join(tmpdir(), 'model-map-'));
    mkdirSync(join(dir, 'sft'));
    writeFileSync(join(dir, 'data.jsonl'), '');
    const map = readModelMap({ flag: `org/sft=${join(dir, 'sft')},org/data=${join(dir, 'data.jsonl')},org/gone=${join(dir, 'gone')},org/tiny=builtin:tiny-llama` });
    expect(mapId(map, 'org/sft', 'model')).toMatchObject({ target: join(dir, 'sft') });
    expect(mapId(map, 'org/data', 'dataset')).toMatchObject({ target: join(dir, 'data.jsonl') });
    expect(mapId(map, 'org/tiny', 'model')).toMatchObject({ target: 'builtin:tiny-llama' });
    expect(mapId(map, 'org/other', 'model')).toBeUndefined();
    expect(() => mapId(map, 'org/gone', 'model')).toThrow(`model map: "org/gone" → ${join(dir, 'gone')} (from --model-map): does not exist; expected a model directory`);
    expect(() => mapId(map, 'org/data', 'model')).toThrow('is a file; expected a model directory');
    expect(() => mapId(map, 'org/tiny', 'dataset')).toThrow('builtin: targets are models only');
  });
});
