import { describe, expect, it } from 'vitest';
import {
  countVerdicts,
  mulberry32,
  pairedBootstrap,
  quantileSorted,
  verdictScore,
  wilsonInterval,
  winRate,
  winRateBootstrap,
  winRateWilson,
  type PairVerdict,
} from '../../src/stats/winrate.js';

const verdicts = (w: number, l: number, t: number, i: number): PairVerdict[] => [
  ...Array<PairVerdict>(w).fill('a'),
  ...Array<PairVerdict>(l).fill('b'),
  ...Array<PairVerdict>(t).fill('tie'),
  ...Array<PairVerdict>(i).fill('invalid'),
];

describe('counts and win rate', () => {
  it('counts the four outcomes and they add up', () => {
    const c = countVerdicts(verdicts(5, 3, 2, 4));
    expect(c).toEqual({ n_pairs: 14, wins: 5, losses: 3, ties: 2, invalid: 4 });
    expect(c.wins + c.losses + c.ties + c.invalid).toBe(c.n_pairs);
  });

  it('counts ties as ½ and leaves invalid out', () => {
    // (5 + 2/2) / (5 + 3 + 2) = 6/10
    expect(winRate(countVerdicts(verdicts(5, 3, 2, 4)))).toBeCloseTo(0.6, 12);
    expect(winRate({ wins: 0, losses: 0, ties: 0 })).toBeNull();
    expect(verdictScore('invalid')).toBeNull();
  });
});

describe('Wilson interval', () => {
  it('matches the hand computation for 7 wins out of 10', () => {
    // p̂ = 0.7, n = 10, z = 1.959964, z² = 3.841459
    // denom  = 1 + z²/n               = 1.3841459
    // centre = (0.7 + z²/2n) / denom  = 0.8920729 / 1.3841459 = 0.6444934
    // half   = z·√(0.7·0.3/10 + z²/400) / denom = 1.959964·√0.0306036 / 1.3841459
    //        = 1.959964·0.1749390 / 1.3841459 = 0.2477153
    // → [0.3967781, 0.8922087]
    const [lo, hi] = wilsonInterval(0.7, 10)!;
    expect(lo).toBeCloseTo(0.3967781, 6);
    expect(hi).toBeCloseTo(0.8922087, 6);
  });

  it('uses ties as half a win with n = wins + losses + ties', () => {
    // 5 wins, 3 losses, 2 ties → p̂ = 0.6, n = 10:
    // centre = (0.6 + 0.1920729)/1.3841459 = 0.5722467; half = 1.959964·√(0.024 + 0.0096036)/1.3841459
    //        = 1.959964·0.1833130/1.3841459 = 0.2595730 → [0.3126738, 0.8318197]
    const [lo, hi] = winRateWilson({ wins: 5, losses: 3, ties: 2 })!;
    expect(lo).toBeCloseTo(0.3126738, 6);
    expect(hi).toBeCloseTo(0.8318197, 6);
  });

  it('stays inside [0, 1] at the edges and is null without data', () => {
    // p̂ = 1, n = 5: centre = (1 + 3.841459/10)/(1 + 0.7682918) = 0.7827588; half = z·√(z²/100)/1.7682918
    // = 1.959964·0.1959964/1.7682918 = 0.2172412 → upper = 1 exactly, lower = 0.5655175
    const [lo, hi] = wilsonInterval(1, 5)!;
    expect(hi).toBeCloseTo(1, 12);
    expect(lo).toBeCloseTo(0.5655, 3);
    expect(wilsonInterval(0.5, 0)).toBeNull();
  });
});

describe('bootstrap', () => {
  it('is reproducible for a seed and covers the point estimate', () => {
    const scores = [...Array(60).fill(1), ...Array(30).fill(0), ...Array(10).fill(0.5)];
    const a = winRateBootstrap(scores, { seed: 7 })!;
    const b = winRateBootstrap(scores, { seed: 7 })!;
    expect(a).toEqual(b);
    expect(a[0]).toBeLessThan(0.65);
    expect(a[1]).toBeGreaterThan(0.65);
    // Binomial-ish standard error √(0.65·0.35/100) ≈ 0.045 → a 95 % interval about ±0.09 wide.
    expect(a[1] - a[0]).toBeGreaterThan(0.12);
    expect(a[1] - a[0]).toBeLessThan(0.24);
  });

  it('collapses to a point when every pair scores the same', () => {
    expect(winRateBootstrap([1, 1, 1, 1], { samples: 50 })).toEqual([1, 1]);
    expect(pairedBootstrap([], () => 0)).toBeNull();
  });

  it('quantiles interpolate linearly (numpy type 7)', () => {
    // sorted [0, 10, 20, 30]: h = 3·0.5 = 1.5 → 10 + 0.5·10 = 15
    expect(quantileSorted([0, 10, 20, 30], 0.5)).toBe(15);
    expect(quantileSorted([0, 10, 20, 30], 0)).toBe(0);
    expect(quantileSorted([0, 10, 20, 30], 1)).toBe(30);
  });

  it('the PRNG is deterministic and uniform enough', () => {
    const r = mulberry32(1);
    const xs = Array.from({ length: 10_000 }, r);
    expect(mulberry32(1)()).toBe(xs[0]);
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(mean).toBeGreaterThan(0.49);
    expect(mean).toBeLessThan(0.51);
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
  });
});
