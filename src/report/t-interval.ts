/**
 * Mean and Student-t 95 % confidence interval of a handful of values (a metric across seeds).
 * Pure. The t quantile is computed, not tabled: t_{0.975, ν} solves I_x(ν/2, ½) = 0.05 with
 * x = ν / (ν + t²) (regularized incomplete beta, Numerical Recipes §6.4), by bisection on x.
 */

export interface Estimate {
  /** Values that went in (finite ones only). */
  n: number;
  mean: number | null;
  /** Sample standard deviation (ddof = 1); null for n < 2. */
  sd: number | null;
  /** mean ± t_{0.975, n−1} · sd / √n; null for n < 2 (one seed has no spread to estimate). */
  ci: [number, number] | null;
}

/** Mean ± 95 % t-interval of the finite values (NaN / ±Infinity are left out of n). */
export function meanCI(values: readonly number[], level = 0.95): Estimate {
  const xs = values.filter((x) => Number.isFinite(x));
  const n = xs.length;
  if (n === 0) return { n, mean: null, sd: null, ci: null };
  // Equal values have no spread; summing them would leave float dust (0.1 ± 4e-17).
  if (xs.every((x) => x === xs[0])) return { n, mean: xs[0]!, sd: n > 1 ? 0 : null, ci: n > 1 ? [xs[0]!, xs[0]!] : null };
  const m = xs.reduce((s, x) => s + x, 0) / n;
  const sd = Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / (n - 1));
  const half = tQuantile(1 - (1 - level) / 2, n - 1) * (sd / Math.sqrt(n));
  return { n, mean: m, sd, ci: [m - half, m + half] };
}

/** The p-quantile (p > ½) of Student's t with `df` degrees of freedom. */
export function tQuantile(p: number, df: number): number {
  if (!(p > 0.5 && p < 1) || !(df > 0)) throw new RangeError(`tQuantile(p=${p}, df=${df}): need ½ < p < 1 and df > 0`);
  // P(T > t) = ½ I_x(df/2, ½), x = df/(df + t²); I is increasing in x, t decreasing in x.
  const target = 2 * (1 - p);
  let lo = 0;
  let hi = 1;
  for (let i = 0; i < 200; i++) {
    const mid = (lo + hi) / 2;
    if (betaInc(mid, df / 2, 0.5) < target) lo = mid;
    else hi = mid;
    if (hi - lo < 1e-16) break;
  }
  const x = (lo + hi) / 2;
  return Math.sqrt((df * (1 - x)) / x);
}

/** Regularized incomplete beta I_x(a, b). */
export function betaInc(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x));
  // The continued fraction converges fast for x < (a+1)/(a+b+2); use the symmetry otherwise.
  return x < (a + 1) / (a + b + 2) ? (front * betaCf(x, a, b)) / a : 1 - (front * betaCf(1 - x, b, a)) / b;
}

/** Continued fraction of the incomplete beta (modified Lentz). */
function betaCf(x: number, a: number, b: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 500; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-15) break;
  }
  return h;
}

/** ln Γ(z) for z > 0 (Lanczos, g = 7, n = 9; ~15 significant digits). */
export function logGamma(z: number): number {
  const g = 7;
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905,
    -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (z < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * z)) - logGamma(1 - z);
  const zz = z - 1;
  let x = c[0]!;
  for (let i = 1; i < g + 2; i++) x += c[i]! / (zz + i);
  const t = zz + g + 0.5;
  return 0.5 * Math.log(2 * Math.PI) + (zz + 0.5) * Math.log(t) - t + Math.log(x);
}
