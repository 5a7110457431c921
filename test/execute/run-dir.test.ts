/** readJsonl: a torn last line (its writer is still at it) is dropped; a whole last record without a newline is kept. */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
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

it('appendEvent after a crash mid-line drops the torn piece, so the file stays readable', async () => {
  const { appendEvent } = await import('../../src/execute/run-dir.js');
  const dir = mkdtempSync(join(tmpdir(), 'jsonl-append-'));
  const torn = join(dir, 'torn.jsonl');
  writeFileSync(torn, '{"kind":"step","step":1}\n{"kind":"step","st');
  appendEvent(torn, { kind: 'run-start', attempt: 2 });
  expect(readJsonl(torn)).toEqual([{ kind: 'step', step: 1 }, { kind: 'run-start', attempt: 2 }]);
  expect(readFileSync(torn, 'utf8')).toBe('{"kind":"step","step":1}\n{"kind":"run-start","attempt":2}\n');
  // A whole last record without its newline (another tool's file) is kept, on its own line.
  const whole = join(dir, 'whole.jsonl');
  writeFileSync(whole, '{"a":1}');
  appendEvent(whole, { a: 2 });
  expect(readJsonl(whole)).toEqual([{ a: 1 }, { a: 2 }]);
  // Nothing but a torn piece: the file restarts clean.
  const only = join(dir, 'only.jsonl');
  writeFileSync(only, '{"a":');
  appendEvent(only, { a: 3 });
  expect(readFileSync(only, 'utf8')).toBe('{"a":3}\n');
});

it('readStatus trusts only a status of this run: torn, empty, non-object and foreign ones read as none', async () => {
  const { mkdirSync } = await import('node:fs');
  const { readStatus } = await import('../../src/execute/run-dir.js');
  const dir = join(mkdtempSync(join(tmpdir(), 'status-')), 'runs', 'abc123');
  mkdirSync(dir, { recursive: true });
  const withStatus = (text: string) => {
    writeFileSync(join(dir, 'status.json'), text);
    return readStatus(dir);
  };
  for (const text of ['', '{"id":"abc123","sta', 'null', '[]', '"x"', '{}', '{"id":"other","state":"succeeded"}', '{"id":"abc123","state":"done"}']) {
    expect(withStatus(text), text).toBeUndefined();
  }
  expect(withStatus('{"id":"abc123","state":"failed","attempt":2}')).toEqual({ id: 'abc123', state: 'failed', attempt: 2 });
});
