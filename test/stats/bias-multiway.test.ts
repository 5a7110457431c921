import { describe, expect, it } from 'vitest';
import { pFirst, pLonger, type BiasRecord } from '../../src/stats/bias.js';
import { allPairs, multiwayTable } from '../../src/stats/multiway.js';

describe('bias diagnostics', () => {
  const records: BiasRecord[] = [
    { verdict: 'a', order: 'ab', len_a: 10, len_b: 5 }, // first wins, longer wins
    { verdict: 'a', order: 'ba', len_a: 10, len_b: 5 }, // second wins, longer wins
    { verdict: 'b', order: 'ba', len_a: 3, len_b: 8 }, // first wins, longer wins
    { verdict: 'tie', order: 'ab', len_a: 4, len_b: 4 }, // ½ for first; equal length: left out of P(longer)
    { verdict: 'invalid', order: 'ab', len_a: 1, len_b: 9 }, // left out of both
  ];
  it('P(first) counts ties ½ over valid requests', () => {
    // (1 + 0 + 1 + ½) / 4 = 0.625
    expect(pFirst(records)).toBeCloseTo(0.625, 12);
  });
  it('P(longer) uses valid requests with different lengths', () => {
    // 3 of 3
    expect(pLonger(records)).toBe(1);
    expect(pLonger([{ verdict: 'b', order: 'ab', len_a: 9, len_b: 2 }])).toBe(0);
    expect(pFirst([])).toBeNull();
  });
});

describe('multiway comparisons as all pairs', () => {
  it('lists N(N−1)/2 pairs', () => {
    expect(allPairs(['sft', 'dpo', 'dyn'])).toEqual([
      ['sft', 'dpo'],
      ['sft', 'dyn'],
      ['dpo', 'dyn'],
    ]);
    expect(allPairs(['x'])).toEqual([]);
  });

  it('builds the win-rate matrix and pooled totals (seed HH: sft / dpo / dynamic-β)', () => {
    const t = multiwayTable([
      { a: 'dpo', b: 'sft', counts: { wins: 6, losses: 2, ties: 2, invalid: 0 } },
      { a: 'dyn', b: 'sft', counts: { wins: 7, losses: 3, ties: 0, invalid: 1 } },
      { a: 'dyn', b: 'dpo', counts: { wins: 4, losses: 4, ties: 2, invalid: 0 } },
    ]);
    expect(t.systems).toEqual(['dpo', 'sft', 'dyn']);
    // dpo vs sft: (6 + 1)/10 = 0.7; sft vs dpo mirrored: (2 + 1)/10 = 0.3
    expect(t.matrix[0]![1]).toBeCloseTo(0.7, 12);
    expect(t.matrix[1]![0]).toBeCloseTo(0.3, 12);
    expect(t.matrix[2]![0]).toBeCloseTo(0.5, 12);
    expect(t.matrix[0]![0]).toBeNull();
    // dyn pooled: wins 7 + 4 = 11, losses 3 + 4 = 7, ties 0 + 2 = 2 → (11 + 1)/20 = 0.6
    const dyn = t.totals.find((x) => x.system === 'dyn')!;
    expect(dyn).toMatchObject({ wins: 11, losses: 7, ties: 2, invalid: 1 });
    expect(dyn.win_rate).toBeCloseTo(0.6, 12);
  });
});
