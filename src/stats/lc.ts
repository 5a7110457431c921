/**
 * Length-controlled win rate that works on any prompt set.
 *
 * AlpacaEval's GLM (`length_controlled_v1`) with its per-instruction difficulty term removed, so it
 * needs no precomputed table of instructions (AlpacaEval issues #316, #453):
 *
 *   P(A wins | pair i) = σ(θ + w · x_i),   x_i = tanh(Δ_i / sd(Δ)),   Δ_i = len(A_i) − len(B_i)
 *
 * with lengths in Unicode code points and sd the sample standard deviation (ddof = 1, as pandas)
 * of Δ over the fitted pairs, not centred (as AlpacaEval). Labels are soft: win 1, tie ½, loss 0.
 * θ and w are fitted by maximum likelihood with Newton's method (step halving, at most
 * `maxIterations` steps) and a small ridge penalty ½·λ·w² on the length weight only, which keeps w
 * finite when length separates the verdicts perfectly and leaves θ an unpenalised intercept. The
 * counterfactual "no length difference" prediction is LC = σ(θ).
 *
 * Properties (tested): LC(A, B) = 1 − LC(B, A); with Δ ≡ 0, LC equals the raw win rate; when the
 * longer output wins every pair (and Δ is symmetric), LC ≈ ½.
 */

export interface LcRow {
  /** A's score: 1 win, 0.5 tie, 0 loss (invalid pairs are not passed in). */
  score: number;
  /** len(A) − len(B) in code points. */
  deltaLen: number;
}

export interface LcOptions {
  /** Ridge penalty λ on w (default 0.01). 0 gives the plain MLE (which may not exist). */
  ridge?: number;
  /** Newton step bound (default 100). */
  maxIterations?: number;
  /** Stop when every parameter moves less than this (default 1e-10). */
  tolerance?: number;
}

export interface LcFit {
  /** σ(θ): the win rate predicted at zero length difference; `null` without data. */
  lc_win_rate: number | null;
  theta: number;
  /** Weight of tanh(Δ/sd) on the logit scale; positive means longer outputs are preferred. */
  w: number;
  /** sd(Δ) used to normalise (0 when undefined: fewer than 2 rows or constant Δ). */
  sd: number;
  iterations: number;
  converged: boolean;
  n: number;
}

/** Characters as a researcher counts them: Unicode code points (Python's `len`). */
export function charLength(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

export function sigmoid(z: number): number {
  return z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
}

/** log σ(z), stable for large |z|. */
function logSigmoid(z: number): number {
  return z >= 0 ? -Math.log1p(Math.exp(-z)) : z - Math.log1p(Math.exp(z));
}

/** Sample standard deviation (ddof = 1); 0 for fewer than 2 values. */
export function sampleSd(xs: readonly number[]): number {
  const n = xs.length;
  if (n < 2) return 0;
  const mean = xs.reduce((s, x) => s + x, 0) / n;
  const ss = xs.reduce((s, x) => s + (x - mean) * (x - mean), 0);
  return Math.sqrt(ss / (n - 1));
}

const PARAM_BOUND = 30; // |θ|, |w| ≤ 30: σ(30) = 1 − 9e-14, so nothing is lost by clamping

export function fitLengthControlled(rows: readonly LcRow[], options: LcOptions = {}): LcFit {
  const n = rows.length;
  const ridge = options.ridge ?? 0.01;
  const maxIterations = options.maxIterations ?? 100;
  const tolerance = options.tolerance ?? 1e-10;
  if (n === 0) return { lc_win_rate: null, theta: 0, w: 0, sd: 0, iterations: 0, converged: true, n: 0 };

  const deltas = rows.map((r) => r.deltaLen);
  const sd = sampleSd(deltas);
  const x = deltas.map((d) => (sd > 0 ? Math.tanh(d / sd) : 0));
  const y = rows.map((r) => r.score);

  const objective = (t: number, w: number): number => {
    let ll = 0;
    for (let i = 0; i < n; i++) {
      const z = t + w * (x[i] as number);
      const yi = y[i] as number;
      ll += yi * logSigmoid(z) + (1 - yi) * logSigmoid(-z);
    }
    return ll - 0.5 * ridge * w * w;
  };

  let theta = 0;
  let w = 0;
  let current = objective(theta, w);
  let converged = false;
  let iterations = 0;
  for (; iterations < maxIterations; iterations++) {
    let gT = 0;
    let gW = -ridge * w;
    let hTT = 0;
    let hTW = 0;
    let hWW = ridge;
    for (let i = 0; i < n; i++) {
      const xi = x[i] as number;
      const p = sigmoid(theta + w * xi);
      const r = (y[i] as number) - p;
      const v = p * (1 - p);
      gT += r;
      gW += r * xi;
      hTT += v;
      hTW += v * xi;
      hWW += v * xi * xi;
    }
    const det = hTT * hWW - hTW * hTW;
    let dT: number;
    let dW: number;
    if (det > 1e-12 * Math.max(1, hTT * hWW)) {
      dT = (hWW * gT - hTW * gW) / det;
      dW = (hTT * gW - hTW * gT) / det;
    } else {
      // Flat curvature (saturated fit): a plain gradient step, bounded by the parameter clamp.
      dT = gT;
      dW = gW;
    }
    // Step halving: accept the first step that does not decrease the penalised likelihood.
    let step = 1;
    let accepted = false;
    for (let h = 0; h < 30; h++) {
      const t2 = clamp(theta + step * dT);
      const w2 = clamp(w + step * dW);
      const value = objective(t2, w2);
      if (value >= current - 1e-12) {
        const moved = Math.max(Math.abs(t2 - theta), Math.abs(w2 - w));
        theta = t2;
        w = w2;
        current = value;
        accepted = true;
        if (moved < tolerance) converged = true;
        break;
      }
      step /= 2;
    }
    if (!accepted || converged) {
      converged = true;
      iterations++;
      break;
    }
    if (Math.abs(gT) < tolerance && Math.abs(gW) < tolerance) {
      converged = true;
      iterations++;
      break;
    }
  }
  if (Math.abs(theta) >= PARAM_BOUND || Math.abs(w) >= PARAM_BOUND) converged = false;
  return { lc_win_rate: sigmoid(theta), theta, w, sd, iterations, converged, n };
}

function clamp(v: number): number {
  return Math.max(-PARAM_BOUND, Math.min(PARAM_BOUND, v));
}

/**
 * AlpacaEval's sanity check on the GLM: a length-controlled rate that moves more than 10 points
 * absolute, or more than a quarter relative, from the raw rate is a sign the fit failed or length
 * explains most of the verdicts. Returns the warning text, or `null`.
 */
export function lcWarning(lc: number | null, raw: number | null): string | null {
  if (lc === null || raw === null) return null;
  const abs = Math.abs(lc - raw);
  const rel = raw > 0 ? abs / raw : abs > 0 ? Infinity : 0;
  if (abs > 0.1 || rel > 0.25) {
    return (
      `length-controlled win rate ${(lc * 100).toFixed(1)}% differs from the raw ${(raw * 100).toFixed(1)}% ` +
      `by more than 10 points or a quarter: length explains much of the verdicts, or the fit is poor`
    );
  }
  return null;
}
