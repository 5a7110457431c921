/**
 * Comparisons of N systems as all pairs (the seed's 3-way HH judge — sft / dpo / dynamic-β — becomes
 * three pairwise comparisons, each judged and counted on its own, so every number keeps the pairwise
 * meaning and position-bias control of `dpo-sweep judge`).
 */
import { winRate, type WinCounts } from './winrate.js';

/** All unordered pairs [a, b] with a before b in the given order: N(N−1)/2 of them. */
export function allPairs<T>(systems: readonly T[]): Array<[T, T]> {
  const out: Array<[T, T]> = [];
  for (let i = 0; i < systems.length; i++) {
    for (let j = i + 1; j < systems.length; j++) out.push([systems[i] as T, systems[j] as T]);
  }
  return out;
}

export interface PairwiseResult {
  a: string;
  b: string;
  counts: Pick<WinCounts, 'wins' | 'losses' | 'ties' | 'invalid'>;
}

export interface MultiwayTable {
  systems: string[];
  /** `matrix[i][j]`: win rate of systems[i] against systems[j] (ties ½); null on the diagonal or without data. */
  matrix: Array<Array<number | null>>;
  /** Per system: wins/losses/ties pooled over all its opponents, and the pooled win rate. */
  totals: Array<{ system: string; wins: number; losses: number; ties: number; invalid: number; win_rate: number | null }>;
}

/**
 * Assembles pairwise results into a win-rate matrix and pooled totals. A result for (b, a) is used
 * mirrored for (a, b). Systems are listed in first-seen order.
 */
export function multiwayTable(results: readonly PairwiseResult[]): MultiwayTable {
  const systems: string[] = [];
  const index = new Map<string, number>();
  const see = (s: string): number => {
    let i = index.get(s);
    if (i === undefined) {
      i = systems.length;
      systems.push(s);
      index.set(s, i);
    }
    return i;
  };
  for (const r of results) {
    see(r.a);
    see(r.b);
  }
  const k = systems.length;
  const tallies = Array.from({ length: k }, () =>
    Array.from({ length: k }, () => ({ wins: 0, losses: 0, ties: 0, invalid: 0 })),
  );
  for (const r of results) {
    const i = see(r.a);
    const j = see(r.b);
    const ij = tallies[i]![j]!;
    const ji = tallies[j]![i]!;
    ij.wins += r.counts.wins;
    ij.losses += r.counts.losses;
    ij.ties += r.counts.ties;
    ij.invalid += r.counts.invalid;
    ji.wins += r.counts.losses;
    ji.losses += r.counts.wins;
    ji.ties += r.counts.ties;
    ji.invalid += r.counts.invalid;
  }
  const matrix = tallies.map((row, i) => row.map((c, j) => (i === j ? null : winRate(c))));
  const totals = systems.map((system, i) => {
    const t = { wins: 0, losses: 0, ties: 0, invalid: 0 };
    for (const c of tallies[i]!) {
      t.wins += c.wins;
      t.losses += c.losses;
      t.ties += c.ties;
      t.invalid += c.invalid;
    }
    return { system, ...t, win_rate: winRate(t) };
  });
  return { systems, matrix, totals };
}
