/**
 * Seeded random search. The draws depend only on `seed`, `count` and the params in the order
 * written, so a plan expands to the same runs on every machine and every Node version.
 */
import type { RandomParam } from './schema.js';

/**
 * mulberry32 (Tommy Ettinger, public domain): a 32-bit state PRNG, uniform on [0, 1), full period
 * 2^32. Small, fast and identical everywhere (integer maths only, `Math.imul`).
 */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One sampled parameter of one draw. `choice` records which item was picked. */
export interface Sample {
  key: string;
  value: unknown;
  choice?: number;
}

/** Maps u ~ U[0, 1) to a sample of `param`. log_uniform is uniform in log space. */
export function sampleParam(param: RandomParam, u: number): { value: unknown; choice?: number } {
  if ('uniform' in param) {
    const [lo, hi] = param.uniform;
    return { value: lo + u * (hi - lo) };
  }
  if ('log_uniform' in param) {
    const [lo, hi] = param.log_uniform;
    return { value: Math.exp(Math.log(lo) + u * (Math.log(hi) - Math.log(lo))) };
  }
  const index = Math.min(param.choice.length - 1, Math.floor(u * param.choice.length));
  return { value: param.choice[index], choice: index };
}

/** `count` draws; each draw samples every param once, in the order written. */
export function drawRandom(spec: { count: number; seed: number; params: Record<string, RandomParam> }): Sample[][] {
  const next = mulberry32(spec.seed);
  const draws: Sample[][] = [];
  for (let i = 0; i < spec.count; i++) {
    draws.push(Object.entries(spec.params).map(([key, param]) => ({ key, ...sampleParam(param, next()) })));
  }
  return draws;
}
