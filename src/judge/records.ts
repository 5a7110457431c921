/**
 * The judge's output records and their reduction to a summary: pure functions of the judgments
 * (the contract in ARCHITECTURE.md "Judge records and statistics").
 */
import { pFirst, pLonger } from '../stats/bias.js';
import { fitLengthControlled, lcWarning, type LcFit } from '../stats/lc.js';
import {
  countVerdicts,
  verdictScore,
  winRate,
  winRateBootstrap,
  winRateWilson,
  type PairVerdict,
} from '../stats/winrate.js';
import type { Usage } from './cache.js';
import type { Choice } from './parse.js';
import type { Order } from './order.js';

/** Why a request or pair ended `invalid`. */
export type InvalidReason =
  | 'unparseable' // the reply (and the re-ask's) did not follow the preset's format
  | 'transport' // timeouts, 5xx, 429 after retries, bad bodies, other HTTP errors
  | 'budget' // not sent: --max-cost would have been exceeded
  | 'cancelled' // not sent or aborted: the run was cancelled or stopped by a fatal error
  | 'rule'; // a rule preset's module threw or returned something else than a|b|tie

/** One line of `judgments.jsonl`: the outcome of one pair in one order. */
export interface JudgmentRecord {
  /** Pair name: sha256(instruction, output A, output B), 16 hex digits. */
  pair: string;
  /** Position of the pair in file A's order. */
  index: number;
  instruction: string;
  order: Order;
  /** From A's side. */
  verdict: PairVerdict;
  reason: InvalidReason | null;
  /** What went wrong, for people (parser detail, HTTP error). */
  detail: string | null;
  /** Final reply text (null when no reply came). */
  raw: string | null;
  /** The unreadable first reply, when the judge was re-asked. */
  first_raw: string | null;
  /** Model asked for (`rule:…` for rule presets). */
  model: string;
  /** Model the server said answered. */
  served_model: string | null;
  usage: Usage | null;
  cached: boolean;
  /** Cache key (hash of model, preset version, parameters, prompt, both outputs and order). */
  key: string | null;
  /** sha256 of the rendered messages, 16 hex digits. */
  prompt_hash: string | null;
  /** Output lengths in code points. */
  len_a: number;
  len_b: number;
}

/** Maps a choice by position to A's side. */
export function verdictFromChoice(choice: Choice, order: Order): 'a' | 'b' | 'tie' {
  if (choice === 'tie') return 'tie';
  return (choice === 'first') === (order === 'ab') ? 'a' : 'b';
}

export interface PairOutcome {
  pair: string;
  index: number;
  instruction: string;
  verdict: PairVerdict;
  reason: InvalidReason | null;
  /** Both orders judged, valid, and different. */
  inconsistent: boolean;
  len_a: number;
  len_b: number;
}

/**
 * One outcome per pair. One order: its verdict. Both orders: valid only if both are; if they
 * disagree the pair is a tie and marked inconsistent.
 */
export function pairOutcomes(records: readonly JudgmentRecord[]): PairOutcome[] {
  const byIndex = new Map<number, JudgmentRecord[]>();
  for (const r of records) {
    const list = byIndex.get(r.index);
    if (list) list.push(r);
    else byIndex.set(r.index, [r]);
  }
  const out: PairOutcome[] = [];
  for (const index of [...byIndex.keys()].sort((x, y) => x - y)) {
    const rs = byIndex.get(index)!;
    const first = rs[0]!;
    const base = { pair: first.pair, index, instruction: first.instruction, len_a: first.len_a, len_b: first.len_b };
    const invalid = rs.find((r) => r.verdict === 'invalid');
    if (invalid) {
      out.push({ ...base, verdict: 'invalid', reason: invalid.reason ?? 'transport', inconsistent: false });
      continue;
    }
    const verdicts = new Set(rs.map((r) => r.verdict));
    if (verdicts.size === 1) out.push({ ...base, verdict: first.verdict, reason: null, inconsistent: false });
    else out.push({ ...base, verdict: 'tie', reason: null, inconsistent: true });
  }
  return out;
}

export interface JudgeStats {
  n_pairs: number;
  wins: number;
  losses: number;
  ties: number;
  invalid: number;
  /** Pairs ending invalid, by reason. */
  invalid_reasons: Partial<Record<InvalidReason, number>>;
  /** (wins + ties/2) / (wins + losses + ties); null without valid pairs. */
  win_rate: number | null;
  /** Wilson 95 % interval of win_rate, n = wins + losses + ties. */
  win_rate_ci: [number, number] | null;
  /** Paired (pair-level) percentile bootstrap 95 % interval of win_rate. */
  win_rate_bootstrap_ci: [number, number] | null;
  /** σ(θ) of the length GLM (stats/lc.ts). */
  lc_win_rate: number | null;
  lc_fit: Omit<LcFit, 'lc_win_rate'>;
  /** P(the output shown first wins), ties ½, over valid requests. */
  p_first: number | null;
  /** P(the longer output wins), ties ½, over valid requests with different lengths. */
  p_longer: number | null;
  /** Pairs whose two orders disagree (null without --both-orders). */
  order_inconsistent: number | null;
  inconsistent_pairs: Array<{ pair: string; index: number; instruction: string }>;
  warnings: string[];
}

const shortText = (s: string): string => (s.length > 120 ? `${s.slice(0, 117)}...` : s);

/** Every statistic of a judge run, from its records alone. */
export function summariseRecords(
  records: readonly JudgmentRecord[],
  options: { bothOrders: boolean; bootstrapSeed?: number; bootstrapSamples?: number },
): JudgeStats {
  const pairs = pairOutcomes(records);
  const counts = countVerdicts(pairs.map((p) => p.verdict));
  const invalid_reasons: Partial<Record<InvalidReason, number>> = {};
  for (const p of pairs) if (p.reason) invalid_reasons[p.reason] = (invalid_reasons[p.reason] ?? 0) + 1;
  const valid = pairs.filter((p) => p.verdict !== 'invalid');
  const scores = valid.map((p) => verdictScore(p.verdict) as number);
  const wr = winRate(counts);
  const lc = fitLengthControlled(valid.map((p) => ({ score: verdictScore(p.verdict) as number, deltaLen: p.len_a - p.len_b })));
  const { lc_win_rate, ...lc_fit } = lc;
  const inconsistent = pairs.filter((p) => p.inconsistent);
  const warnings: string[] = [];
  const lcw = lcWarning(lc_win_rate, wr);
  if (lcw) warnings.push(lcw);
  if (valid.length >= 2 && !lc.converged) warnings.push('length-controlled fit did not converge (length or one side decides almost every verdict)');
  if (counts.invalid > 0) {
    warnings.push(`${counts.invalid} of ${counts.n_pairs} pairs are invalid (${Object.entries(invalid_reasons).map(([k, v]) => `${k}: ${v}`).join(', ')}); they are excluded from the win rate`);
  }
  return {
    ...counts,
    invalid_reasons,
    win_rate: wr,
    win_rate_ci: winRateWilson(counts),
    win_rate_bootstrap_ci: winRateBootstrap(scores, { seed: options.bootstrapSeed ?? 0, samples: options.bootstrapSamples ?? 2000 }),
    lc_win_rate,
    lc_fit,
    p_first: pFirst(records),
    p_longer: pLonger(records),
    order_inconsistent: options.bothOrders ? inconsistent.length : null,
    inconsistent_pairs: inconsistent.map((p) => ({ pair: p.pair, index: p.index, instruction: shortText(p.instruction) })),
    warnings,
  };
}
