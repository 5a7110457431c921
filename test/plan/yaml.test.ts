import { describe, expect, it } from 'vitest';
import { parseYaml } from '../../src/plan/yaml.js';
import { yaml } from './helpers.js';

const at = (text: string) => {
  const doc = parseYaml(text, 'p.yaml');
  expect(doc.issues).toEqual([]);
  return (key: string) => {
    const pos = doc.positions.get(key);
    return pos ? `${pos.line}:${pos.col}` : undefined;
  };
};

describe('parseYaml positions', () => {
  it('gives the key of mapping entries and the start of sequence items', () => {
    const pos = at(yaml`
      name: x
      base:
        training:
          batch_size: 8   # comment
      sweep:
        list:
          - name: a
            beta: 0.2
          -   name: b
        seeds:
          - 1
          -
            2
    `);
    expect(pos('name')).toBe('1:1');
    expect(pos('base')).toBe('2:1');
    expect(pos('base.training')).toBe('3:3');
    expect(pos('base.training.batch_size')).toBe('4:5');
    expect(pos('sweep.list')).toBe('6:3');
    expect(pos('sweep.list.0')).toBe('7:7');
    expect(pos('sweep.list.0.name')).toBe('7:7');
    expect(pos('sweep.list.0.beta')).toBe('8:7');
    expect(pos('sweep.list.1')).toBe('9:9');
    expect(pos('sweep.list.1.name')).toBe('9:9');
    expect(pos('sweep.seeds.0')).toBe('11:7');
    expect(pos('sweep.seeds.1')).toBe('13:7');
  });

  it('handles flow style, dotted keys and quoted keys', () => {
    const pos = at(yaml`
      sweep:
        grid: {beta: [0.05, 0.1], "dynamic_beta.alpha": [1, 2]}
        list: [{name: a, beta: 1}, {name: b}]
    `);
    expect(pos('sweep.grid.beta')).toBe('2:10');
    expect(pos('sweep.grid.beta.0')).toBe('2:17');
    expect(pos('sweep.grid.beta.1')).toBe('2:23');
    expect(pos('sweep.grid.dynamic_beta.alpha')).toBe('2:29');
    expect(pos('sweep.grid.dynamic_beta.alpha.1')).toBe('2:55');
    expect(pos('sweep.list.0')).toBe('3:10');
    expect(pos('sweep.list.0.beta')).toBe('3:20');
    expect(pos('sweep.list.1.name')).toBe('3:31');
  });

  it('maps aliased and merged keys to where they were written', () => {
    const text = yaml`
      defaults: &d
        beta: 0.1
        training: {batch_size: 4}
      base:
        <<: *d
        beta: 0.2
      copy: *d
    `;
    const doc = parseYaml(text, 'p.yaml');
    expect(doc.value).toEqual({
      defaults: { beta: 0.1, training: { batch_size: 4 } },
      base: { beta: 0.2, training: { batch_size: 4 } },
      copy: { beta: 0.1, training: { batch_size: 4 } },
    });
    const pos = at(text);
    expect(pos('base.beta')).toBe('6:3'); // the explicit key wins over the merged one
    expect(pos('base.training')).toBe('3:3'); // merged: where the anchor wrote it
    expect(pos('base.training.batch_size')).toBe('3:14');
    expect(pos('copy')).toBe('7:1');
    expect(pos('copy.beta')).toBe('2:3');
  });

  it('merges a list of mappings, the first one winning', () => {
    const pos = at(yaml`
      a: &a {x: 1, y: 1}
      b: &b {y: 2, z: 2}
      c:
        <<: [*a, *b]
    `);
    expect(pos('c.x')).toBe('1:8');
    expect(pos('c.y')).toBe('1:14');
    expect(pos('c.z')).toBe('2:14');
  });

  it('handles CRLF line ends and a byte-order mark', () => {
    const pos = at('\ufeffname: x\r\nbase:\r\n  beta: 1\r\n');
    expect(pos('base.beta')).toBe('3:3');
  });
});

describe('parseYaml problems', () => {
  it('reports a syntax error with line, column and js-yaml reason', () => {
    const doc = parseYaml(yaml`
      name: x
      base:
        beta: 0.1
       training: {}
    `, 'p.yaml');
    expect(doc.value).toBeUndefined();
    expect(doc.issues).toHaveLength(1);
    expect(doc.issues[0]).toMatchObject({ code: 'yaml-syntax', origin: { file: 'p.yaml', line: 4, col: 2 } });
    expect(doc.issues[0]).toHaveProperty('reason', 'bad indentation of a mapping entry');
  });

  it('turns a duplicate key into a positioned issue at the second key', () => {
    const doc = parseYaml('name: x\nbase:\n  beta: 1\n  beta: 2\n', 'p.yaml');
    expect(doc.issues).toEqual([
      { code: 'yaml-syntax', reason: 'duplicated mapping key', path: [], origin: { kind: 'file', file: 'p.yaml', line: 4, col: 3 } },
    ]);
  });

  it('rejects a second document at its separator', () => {
    const doc = parseYaml('name: a\n---\nname: b\n', 'p.yaml');
    expect(doc.issues).toMatchObject([{ code: 'multiple-documents', origin: { line: 2, col: 1 } }]);
  });

  it('reports an empty file', () => {
    expect(parseYaml('# nothing\n', 'p.yaml').issues).toMatchObject([{ code: 'empty-plan' }]);
  });

  it('flags numbers a double cannot hold, with the text as written', () => {
    const doc = parseYaml(yaml`
      a: 1e400
      b: 1180591620717411303424
      c: [1, -1e999]
      d: .inf
      e: '1e400'
      f: 9007199254740991
    `, 'p.yaml');
    expect(doc.issues.map((i) => [i.path.join('.'), (i as { raw?: string }).raw, (i as { reason?: string }).reason, i.origin])).toEqual([
      ['a', '1e400', 'overflow', { kind: 'file', file: 'p.yaml', line: 1, col: 1 }],
      ['b', '1180591620717411303424', 'unsafe-integer', { kind: 'file', file: 'p.yaml', line: 2, col: 1 }],
      ['c.1', '-1e999', 'overflow', { kind: 'file', file: 'p.yaml', line: 3, col: 8 }],
      ['d', '.inf', 'not-finite', { kind: 'file', file: 'p.yaml', line: 4, col: 1 }],
    ]);
  });

  it('does not hang on recursive aliases', () => {
    const doc = parseYaml('a: &a [1, *a]\n', 'p.yaml');
    expect(doc.positions.get('a.0')).toEqual({ line: 1, col: 8 });
  });
});

describe('parseYaml positions, property over a corpus', () => {
  const corpus = [
    'a: 1\nb:\n  c: [1, {d: 2}]\n  e: {f: [x, y]}\n',
    'a:\n  0.1\nb:\n  - 1\n  -\n  - [2, 3]\n  - {k: v}\n',
    '? a\n: 1\n? b\n: {c: 2}\n',
    'a: !!str 1\nb: &x {c: 1}\nd: *x\n&k e: 2\n',
    'text: |\n  line one\n  line two\nnext: >\n  folded\nlast: 1\n',
    'x: &base\n  p: 1\n  q: 2\ny:\n  <<: *base\n  q: 3\n  r: [*base]\n',
    '{a: 1, b: [1, 2], c: {d: e}}\n',
    '- a: 1\n  b: 2\n- c: 3\n',
    "'quoted key': 1\n\"dq\": {inner: 2}\n",
  ];

  it.each(corpus)('gives every path a position where its key or item is written: %j', (text) => {
    const doc = parseYaml(text, 'p.yaml');
    expect(doc.issues).toEqual([]);
    const lines = text.split('\n');
    const walk = (value: unknown, path: string[]) => {
      if (value === null || typeof value !== 'object') return;
      for (const [k, v] of Object.entries(value)) {
        const p = [...path, k];
        const pos = doc.positions.get(p.join('.'));
        expect(pos, p.join('.')).toBeDefined();
        const at = lines[pos!.line - 1]!.slice(pos!.col - 1);
        if (!Array.isArray(value)) expect(at.replace(/^[&!]\S+ /, '').replace(/^["']/, ''), p.join('.')).toMatch(new RegExp(`^${k.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
        walk(v, p);
      }
    };
    walk(doc.value, []);
  });
});
