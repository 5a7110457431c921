/**
 * Win / tie / loss counts and their confidence intervals. Pure functions of pair outcomes.
 *
 * A pair outcome is seen from system A's side: `a` (A wins), `b` (A loses), `tie`, or `invalid`.
 * `win_rate = (wins + ties/2) / (wins + losses + ties)`; invalid pairs are counted but excluded.
 */

export type PairVerdict = 'a' | 'b' | 'tie' | 'invalid';

export interface WinCounts {
  n_pairs: number;
  wins: number;
  losses: number;
  ties: number;
  invalid: number;
}

/** Counts the four outcomes; `wins + losses + ties + invalid === n_pairs` always. */
export function countVerdicts(verdicts: readonly PairVerdict[]): WinCounts {
  const c: WinCounts = { n_pairs: verdicts.length, wins: 0, losses: 0, ties: 0, invalid: 0 };
  for (const v of verdicts) {
    if (v === 'a') c.wins++;
    else if (v === 'b') c.losses++;
    else if (v === 'tie') c.ties++;
    else c.invalid++;
  }
  return c;
}

/** A's score for one pair: 1 win, ½ tie, 0 loss; `null` for invalid (excluded). */
export function verdictScore(v: PairVerdict): number | null {
  return v === 'a' ? 1 : v === 'tie' ? 0.5 : v === 'b' ? 0 : null;
}

/** `(wins + ties/2) / (wins + losses + ties)`, or `null` when no pair is valid. */
export function winRate(c: Pick<WinCounts, 'wins' | 'losses' | 'ties'>): number | null {
  const n = c.wins + c.losses + c.ties;
  return n === 0 ? null : (c.wins + c.ties / 2) / n;
}

/** z for a two-sided 95 % interval: Φ⁻¹(0.975). */
export const Z95 = 1.959963984540054;

/**
 * Wilson score interval for a proportion p̂ observed over n trials (p̂ may be fractional, as with
 * ties counted ½):
 *   centre = (p̂ + z²/2n) / (1 + z²/n),  half = z·√(p̂(1−p̂)/n + z²/4n²) / (1 + z²/n).
 * Returns `null` when n = 0. Bounds are clamped to [0, 1] against rounding.
 */
export function wilsonInterval(p: number, n: number, z: number = Z95): [number, number] | null {
  if (n <= 0) return null;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denom;
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

/** Wilson 95 % interval of the win rate (ties ½) with n = wins + losses + ties. */
export function winRateWilson(c: Pick<WinCounts, 'wins' | 'losses' | 'ties'>): [number, number] | null {
  const p = winRate(c);
  return p === null ? null : wilsonInterval(p, c.wins + c.losses + c.ties);
}

/**
 * A small, fast, seeded PRNG (mulberry32) returning floats in [0, 1). Same seed → same stream on every
 * platform, so bootstrap intervals are reproducible.
 */
export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface BootstrapOptions {
  /** Number of resamples (default 2000). */
  samples?: number;
  /** PRNG seed (default 0). */
  seed?: number;
  /** Two-sided coverage (default 0.95). */
  level?: number;
}

/** Linear-interpolated quantile (type 7, as numpy's default) of an ascending-sorted array. */
export function quantileSorted(sorted: readonly number[], q: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const h = (n - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(n - 1, lo + 1);
  const a = sorted[lo] as number;
  const b = sorted[hi] as number;
  return a + (h - lo) * (b - a);
}

/**
 * Paired (pair-level) percentile bootstrap of a statistic. The unit resampled is the pair (one
 * instruction with both systems' outputs, and both judging orders when there are two), so the
 * dependence inside a pair is kept. `rows[i]` is one unit's data; `stat` maps a resample to a number.
 * Returns `null` for no rows.
 */
export function pairedBootstrap<T>(
  rows: readonly T[],
  stat: (resample: readonly T[]) => number | null,
  options: BootstrapOptions = {},
): [number, number] | null {
  const n = rows.length;
  if (n === 0) return null;
  const samples = options.samples ?? 2000;
  const level = options.level ?? 0.95;
  const rand = mulberry32(options.seed ?? 0);
  const values: number[] = [];
  const resample: T[] = new Array<T>(n);
  for (let s = 0; s < samples; s++) {
    for (let i = 0; i < n; i++) resample[i] = rows[Math.floor(rand() * n)] as T;
    const v = stat(resample);
    if (v !== null && Number.isFinite(v)) values.push(v);
  }
  if (values.length === 0) return null;
  values.sort((x, y) => x - y);
  const alpha = (1 - level) / 2;
  return [quantileSorted(values, alpha), quantileSorted(values, 1 - alpha)];
}

/** Paired bootstrap 95 % interval of the win rate from per-pair scores (1, ½, 0; invalid excluded). */
export function winRateBootstrap(scores: readonly number[], options: BootstrapOptions = {}): [number, number] | null {
  return pairedBootstrap(scores, (r) => (r.length === 0 ? null : r.reduce((s, x) => s + x, 0) / r.length), options);
}
