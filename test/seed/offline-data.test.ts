/**
 * configs/seed/data/rollout-judged.jsonl is derived from configs/data/prefs-hh.jsonl (the first 200
 * pairs in the seed's rollout_judged format, seed-spec §3.5). Regenerate after the source changes:
 *   UPDATE_SEED_DATA=1 npx vitest run test/seed/offline-data.test.ts
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { hhToMessages, ROLLOUT_JUDGED, rolloutJudgedText } from './helpers.js';

describe('offline seed data', () => {
  it('rollout-judged.jsonl matches its source', () => {
    const expected = rolloutJudgedText();
    if (process.env.UPDATE_SEED_DATA) writeFileSync(ROLLOUT_JUDGED, expected);
    expect(readFileSync(ROLLOUT_JUDGED, 'utf8')).toBe(expected);
  });

  it('parses HH transcripts like the seed (one optional space eaten, empty turns skipped)', () => {
    expect(hhToMessages('\n\nHuman: hi\n\nAssistant:  hello \n\nHuman:\n\nAssistant: x')).toEqual([
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: 'hello' },
      { role: 'assistant', content: 'x' },
    ]);
    expect(hhToMessages('Human: a\n\nAssistant: b')).toEqual([
      { role: 'user', content: 'a' },
      { role: 'assistant', content: 'b' },
    ]);
  });
});
