/** readJsonl: a torn last line (its writer is still at it) is dropped; a whole last record without a newline is kept. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { readJsonl } from '../../src/execute/run-dir.js';

it('readJsonl keeps complete records, drops only a torn tail, and names a bad middle line', () => {
  const dir = mkdtempSync(join(tmpdir(), 'jsonl-'));
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  expect(readJsonl(file('clean.jsonl', '{"a":1}\n\n{"a":2}\n'))).toEqual([{ a: 1 }, { a: 2 }]);
  expect(readJsonl(file('torn.jsonl', '{"a":1}\n{"a":2,"b":'))).toEqual([{ a: 1 }]);
  expect(readJsonl(file('no-newline.jsonl', '{"a":1}\n{"a":2}'))).toEqual([{ a: 1 }, { a: 2 }]);
  expect(readJsonl(file('torn-number.jsonl', '{"a":1}\n12'))).toEqual([{ a: 1 }]); // not an object: not a record
  expect(readJsonl(join(dir, 'missing.jsonl'))).toEqual([]);
  expect(() => readJsonl(file('bad.jsonl', '{"a":1}\nnope\n{"a":3}\n'))).toThrow(/bad\.jsonl:2: unreadable JSON line/);
});
