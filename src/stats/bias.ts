/**
 * Judge bias diagnostics, AlpacaEval-style: P(prefer first) and P(prefer longer).
 *
 * Both are computed over judged requests (one per pair and order), not over pairs, because position
 * is a property of a request. Invalid requests are excluded; a tie counts ½ for each side.
 * An unbiased judge scores 0.5 on P(first); P(longer) mixes length bias with real quality differences.
 */
import type { PairVerdict } from './winrate.js';

export interface BiasRecord {
  /** Verdict from A's side. */
  verdict: PairVerdict;
  /** `ab`: A was shown first; `ba`: B was shown first. */
  order: 'ab' | 'ba';
  /** Output lengths in code points. */
  len_a: number;
  len_b: number;
}

/** P(the output shown first wins), ties ½; `null` when no request is valid. */
export function pFirst(records: readonly BiasRecord[]): number | null {
  let n = 0;
  let score = 0;
  for (const r of records) {
    if (r.verdict === 'invalid') continue;
    n++;
    if (r.verdict === 'tie') score += 0.5;
    else if ((r.verdict === 'a') === (r.order === 'ab')) score += 1;
  }
  return n === 0 ? null : score / n;
}

/** P(the longer output wins), ties ½, over valid requests whose outputs differ in length. */
export function pLonger(records: readonly BiasRecord[]): number | null {
  let n = 0;
  let score = 0;
  for (const r of records) {
    if (r.verdict === 'invalid' || r.len_a === r.len_b) continue;
    n++;
    if (r.verdict === 'tie') score += 0.5;
    else if ((r.verdict === 'a') === (r.len_a > r.len_b)) score += 1;
  }
  return n === 0 ? null : score / n;
}
