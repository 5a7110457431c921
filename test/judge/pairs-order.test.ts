import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { ordersFor, pairHash, seededOrder } from '../../src/judge/order.js';
import { describeReport, loadOutputsFile, matchPairs, parseHhTranscript } from '../../src/judge/pairs.js';

const dir = mkdtempSync(join(tmpdir(), 'pairs-'));
const write = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

describe('outputs files', () => {
  it('reads a JSON array and JSONL, matches by instruction, reports unmatched and duplicates', async () => {
    const a = write(
      'a.json',
      JSON.stringify([
        { instruction: 'q1', output: 'a1', generator: 'dpo' },
        { instruction: ' q2 ', output: 'a2', generator: 'dpo' },
        { instruction: 'q3', output: 'a3', generator: 'dpo' },
        { instruction: 'q1', output: 'a1-again', generator: 'dpo' },
      ]),
    );
    const b = write(
      'b.jsonl',
      ['{"instruction":"q2","output":"b2","generator":"sft"}', '', '{"instruction":"q1","output":"b1","generator":"sft"}', '{"instruction":"q9","output":"b9"}'].join('\n'),
    );
    const fa = await loadOutputsFile(a, 'a');
    const fb = await loadOutputsFile(b, 'b');
    expect(fa.generator).toBe('dpo');
    expect(fb.generator).toBe('sft');
    const { pairs, report } = matchPairs(fa, fb);
    expect(pairs).toEqual([
      { instruction: 'q1', outputA: 'a1', outputB: 'b1' },
      { instruction: 'q2', outputA: 'a2', outputB: 'b2' },
    ]);
    expect(report.matched).toBe(2);
    expect(report.unmatched_a).toEqual({ count: 1, examples: [{ where: 'item 2', instruction: 'q3' }] });
    expect(report.unmatched_b).toEqual({ count: 1, examples: [{ where: 'line 4', instruction: 'q9' }] });
    expect(report.duplicates_a).toEqual({ count: 1, examples: [{ where: 'item 3', instruction: 'q1' }] });
    expect(describeReport(report)).toEqual([
      'unmatched instructions in --a: 1 (first: item 2: "q3")',
      'unmatched instructions in --b: 1 (first: line 4: "q9")',
      'duplicate instructions in --a (first kept): 1 (first: item 3: "q1")',
    ]);
  });

  it('takes reference answers: HH chosen transcripts (single-turn) and TL;DR reference summaries', async () => {
    const hh = write(
      'hh.jsonl',
      [
        JSON.stringify({ chosen: '\n\nHuman: What is 2+2?\n\nAssistant: 4.', rejected: '\n\nHuman: What is 2+2?\n\nAssistant: 5.' }),
        JSON.stringify({ chosen: '\n\nHuman: hi\n\nAssistant: hello\n\nHuman: bye\n\nAssistant: ciao', rejected: 'x' }),
      ].join('\n'),
    );
    const f = await loadOutputsFile(hh, 'b');
    expect(f.records).toEqual([{ instruction: 'What is 2+2?', output: '4.', generator: 'hh-chosen', where: 'line 1' }]);
    expect(f.skipped).toEqual({ 'multi-turn HH transcript': 1 });
    const tldr = write('tldr.json', JSON.stringify([{ post_id: 'p', post: 'long post', reference_summary: 'short' }]));
    expect((await loadOutputsFile(tldr, 'b')).records[0]).toMatchObject({ instruction: 'long post', output: 'short', generator: 'reference' });
    expect(parseHhTranscript('Human: a\n\nAssistant: b')).toEqual([
      { role: 'human', text: 'a' },
      { role: 'assistant', text: 'b' },
    ]);
  });

  it('reports bad rows with file and line, all at once', async () => {
    const bad = write('bad.jsonl', '{"instruction":"q","output":"o"}\n{"instruction":"q2"}\nnot json\n{"instruction": 3, "output": "x"}\n');
    const e = await loadOutputsFile(bad, 'a').then(
      () => {
        throw new Error('expected an InputError');
      },
      (x: unknown) => x as InputError,
    );
    expect(e).toBeInstanceOf(InputError);
    expect(e.message).toMatch(/bad\.jsonl: invalid JSONL/);
    expect(e.details).toEqual([expect.stringMatching(/bad\.jsonl:3: not a JSON object/)]);

    const bad2 = write('bad2.jsonl', '{"instruction":"q","output":"o"}\n{"instruction":"q2"}\n{"instruction": 3, "output": "x"}\n');
    const e2 = await loadOutputsFile(bad2, 'a').then(
      () => {
        throw new Error('expected an InputError');
      },
      (x: unknown) => x as InputError,
    );
    expect(e2.details).toEqual([
      `${bad2}: line 2: field "output" must be a string`,
      `${bad2}: line 3: field "instruction" must be a string`,
    ]);
    await expect(loadOutputsFile(join(dir, 'missing.json'), 'a')).rejects.toThrow(/--a .*missing\.json: cannot read the file/);
  });

  it('refuses two files with nothing in common', async () => {
    const a = await loadOutputsFile(write('x.json', JSON.stringify([{ instruction: 'x', output: '1' }])), 'a');
    const b = await loadOutputsFile(write('y.json', JSON.stringify([{ instruction: 'y', output: '2' }])), 'b');
    expect(() => matchPairs(a, b)).toThrow(InputError);
  });
});

describe('seeded order', () => {
  it('depends only on seed and instruction, and is roughly balanced', () => {
    expect(seededOrder(42, 'hello')).toBe(seededOrder(42, 'hello'));
    const orders = Array.from({ length: 2000 }, (_, i) => seededOrder(42, `instruction ${i}`));
    const ab = orders.filter((o) => o === 'ab').length;
    expect(ab).toBeGreaterThan(900);
    expect(ab).toBeLessThan(1100);
    const other = Array.from({ length: 2000 }, (_, i) => seededOrder(43, `instruction ${i}`));
    expect(other).not.toEqual(orders);
  });

  it('both orders when asked; pair hashes name the content', () => {
    expect(ordersFor(1, 'x', true)).toEqual(['ab', 'ba']);
    expect(ordersFor(1, 'x', false)).toEqual([seededOrder(1, 'x')]);
    expect(pairHash('i', 'a', 'b')).toMatch(/^[0-9a-f]{16}$/);
    expect(pairHash('i', 'a', 'b')).not.toBe(pairHash('i', 'b', 'a'));
  });
});
