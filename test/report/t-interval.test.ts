import { describe, expect, it } from 'vitest';
import { betaInc, meanCI, tQuantile } from '../../src/report/t-interval.js';

describe('tQuantile', () => {
  it('matches published two-sided 95 % critical values of Student t', () => {
    // scipy.stats.t.ppf(0.975, df)
    const table: Array<[number, number]> = [
      [1, 12.706204736174704],
      [2, 4.302652729911275],
      [3, 3.182446305284263],
      [4, 2.7764451051977987],
      [9, 2.2621571627409915],
      [29, 2.045229642132703],
      [100, 1.9839715184496334],
    ];
    for (const [df, t] of table) expect(tQuantile(0.975, df)).toBeCloseTo(t, 8);
  });

  it('tends to the normal quantile for large df', () => {
    expect(tQuantile(0.975, 1e6)).toBeCloseTo(1.959964, 5);
  });

  it('rejects p ≤ ½ and df ≤ 0', () => {
    expect(() => tQuantile(0.5, 3)).toThrow(RangeError);
    expect(() => tQuantile(0.975, 0)).toThrow(RangeError);
  });

  it('betaInc has the closed forms I_x(1, 1) = x and I_x(a, b) = 1 − I_{1−x}(b, a)', () => {
    expect(betaInc(0.3, 1, 1)).toBeCloseTo(0.3, 12);
    expect(betaInc(0.2, 2.5, 0.5)).toBeCloseTo(1 - betaInc(0.8, 0.5, 2.5), 12);
  });
});

describe('meanCI', () => {
  it('mean ± t-interval of three seeds, derived by hand', () => {
    /*
     * x = 0.60, 0.64, 0.68 (n = 3)
     * mean = 1.92 / 3 = 0.64
     * deviations −0.04, 0, 0.04 → Σd² = 0.0032 → s² = 0.0032 / 2 = 0.0016 → s = 0.04
     * standard error = s / √3 = 0.04 / 1.7320508 = 0.0230940
     * t_{0.975, 2} = 4.3026527
     * half-width = 4.3026527 × 0.0230940 = 0.0993655
     * CI = [0.64 − 0.0993655, 0.64 + 0.0993655] = [0.5406345, 0.7393655]
     */
    const e = meanCI([0.6, 0.64, 0.68]);
    expect(e.n).toBe(3);
    expect(e.mean).toBeCloseTo(0.64, 12);
    expect(e.sd).toBeCloseTo(0.04, 12);
    expect(e.ci![0]).toBeCloseTo(0.5406345, 6);
    expect(e.ci![1]).toBeCloseTo(0.7393655, 6);
  });

  it('one value: a mean and no interval; none: nothing', () => {
    expect(meanCI([0.7])).toEqual({ n: 1, mean: 0.7, sd: null, ci: null });
    expect(meanCI([])).toEqual({ n: 0, mean: null, sd: null, ci: null });
  });

  it('leaves non-finite values out of n', () => {
    const e = meanCI([1, Number.NaN, 3, Number.POSITIVE_INFINITY]);
    expect(e.n).toBe(2);
    expect(e.mean).toBe(2);
  });

  it('equal values have exactly zero spread', () => {
    expect(meanCI([0.1, 0.1, 0.1])).toEqual({ n: 3, mean: 0.1, sd: 0, ci: [0.1, 0.1] });
  });
});
