import { describe, expect, it } from 'vitest';
import { charLength, fitLengthControlled, lcWarning, sampleSd, sigmoid, type LcRow } from '../../src/stats/lc.js';

const rows = (n: number, score: number, deltaLen: number): LcRow[] => Array.from({ length: n }, () => ({ score, deltaLen }));

describe('length-controlled win rate', () => {
  it('equals the raw win rate when no pair differs in length', () => {
    // Δ ≡ 0 → x ≡ 0 → the likelihood depends on θ only: Σ(y − σ(θ)) = 0 → σ(θ) = mean(y) = 7/10.
    const fit = fitLengthControlled([...rows(7, 1, 0), ...rows(3, 0, 0)]);
    expect(fit.lc_win_rate).toBeCloseTo(0.7, 9);
    expect(fit.w).toBe(0);
    expect(fit.converged).toBe(true);
  });

  it('matches the hand-derived MLE of a two-level design', () => {
    // 10 pairs with Δ = +50 (A won 8) and 10 with Δ = −50 (A won 4). x takes two values ±c, so the
    // unpenalised MLE fits each group exactly: σ(θ + wc) = 0.8, σ(θ − wc) = 0.4.
    // θ = (logit 0.8 + logit 0.4)/2 = (ln 4 + ln(2/3))/2 = ln(8/3)/2, so e^{−θ} = √(3/8) and
    // LC = σ(θ) = 1/(1 + √(3/8)) = 1/1.6123724 = 0.6202041.
    const data = [...rows(8, 1, 50), ...rows(2, 0, 50), ...rows(4, 1, -50), ...rows(6, 0, -50)];
    const fit = fitLengthControlled(data, { ridge: 0 });
    expect(fit.lc_win_rate).toBeCloseTo(1 / (1 + Math.sqrt(3 / 8)), 8);
    expect(fit.lc_win_rate).toBeCloseTo(0.6202041, 6);
    // w·c = (logit 0.8 − logit 0.4)/2 = (ln 4 − ln(2/3))/2 = ln 6 / 2; c = tanh(50/sd), sd = 50·√(20/19).
    const c = Math.tanh(1 / Math.sqrt(20 / 19));
    expect(fit.w * c).toBeCloseTo(Math.log(6) / 2, 7);
    // The default small ridge barely moves it.
    expect(fitLengthControlled(data).lc_win_rate).toBeCloseTo(0.6202, 3);
  });

  it('is ≈ 0.5 when the longer output wins every pair, although the raw rate is 0.75', () => {
    // A is longer in 15 pairs (Δ = 10…150) and wins them; B is longer in 5 (Δ = −10…−50) and wins those.
    const data: LcRow[] = [];
    for (let k = 1; k <= 15; k++) data.push({ score: 1, deltaLen: 10 * k });
    for (let k = 1; k <= 5; k++) data.push({ score: 0, deltaLen: -10 * k });
    const fit = fitLengthControlled(data);
    expect(fit.lc_win_rate!).toBeGreaterThan(0.45);
    expect(fit.lc_win_rate!).toBeLessThan(0.55);
    expect(fit.w).toBeGreaterThan(3); // strong length preference
    expect(lcWarning(fit.lc_win_rate, 0.75)).toMatch(/differs from the raw 75.0%/);
  });

  it('is antisymmetric: LC(B, A) = 1 − LC(A, B)', () => {
    const data: LcRow[] = [];
    for (let i = 0; i < 40; i++) data.push({ score: [1, 0, 0.5, 1, 1][i % 5]!, deltaLen: ((i * 37) % 90) - 40 });
    const ab = fitLengthControlled(data).lc_win_rate!;
    const ba = fitLengthControlled(data.map((r) => ({ score: 1 - r.score, deltaLen: -r.deltaLen }))).lc_win_rate!;
    expect(ab + ba).toBeCloseTo(1, 8);
  });

  it('gives 0.5 for a system against itself, and a bounded result when A always wins', () => {
    // Against itself: every pair ties with Δ = 0 → σ(θ) = 0.5.
    expect(fitLengthControlled(rows(10, 0.5, 0)).lc_win_rate).toBeCloseTo(0.5, 12);
    const all = fitLengthControlled([...rows(5, 1, 20), ...rows(5, 1, -20)]);
    expect(all.lc_win_rate!).toBeGreaterThan(0.99);
    expect(all.iterations).toBeLessThanOrEqual(100);
    expect(fitLengthControlled([]).lc_win_rate).toBeNull();
  });

  it('helpers: sample sd (ddof 1), code-point lengths, stable sigmoid', () => {
    // [2, 4, 4, 4, 5, 5, 7, 9]: mean 5, Σ(x−5)² = 32, sd = √(32/7) = 2.1380899
    expect(sampleSd([2, 4, 4, 4, 5, 5, 7, 9])).toBeCloseTo(2.1380899, 6);
    expect(sampleSd([3])).toBe(0);
    expect(charLength('héllo 👋')).toBe(7); // the emoji is one code point, two UTF-16 units
    expect(sigmoid(-800)).toBe(0);
    expect(sigmoid(800)).toBe(1);
    expect(lcWarning(0.62, 0.6)).toBeNull();
  });
});
