import { describe, expect, it } from 'vitest';
import { drawRandom, mulberry32, sampleParam } from '../../src/plan/random.js';

/** mulberry32 written again with BigInt arithmetic modulo 2^32, to check the Math.imul version. */
function referenceMulberry32(seed: number): () => number {
  const M = 2n ** 32n;
  const u32 = (x: bigint) => ((x % M) + M) % M;
  const mul = (a: bigint, b: bigint) => u32(a * b);
  let state = u32(BigInt(seed));
  return () => {
    state = u32(state + 0x6d2b79f5n);
    let t = state;
    t = mul(t ^ (t >> 15n), t | 1n);
    t = u32(t ^ u32(t + mul(t ^ (t >> 7n), t | 61n)));
    return Number(u32(t ^ (t >> 14n))) / 2 ** 32;
  };
}

describe('mulberry32', () => {
  it('matches an independent BigInt implementation', () => {
    for (const seed of [0, 1, 42, 2 ** 31, 2 ** 32 - 1]) {
      const a = mulberry32(seed);
      const b = referenceMulberry32(seed);
      for (let i = 0; i < 200; i++) expect(a()).toBe(b());
    }
  });

  it('is uniform on [0, 1) to the eye of a coarse histogram', () => {
    const next = mulberry32(123);
    const bins = new Array(10).fill(0);
    for (let i = 0; i < 20_000; i++) {
      const u = next();
      expect(u).toBeGreaterThanOrEqual(0);
      expect(u).toBeLessThan(1);
      bins[Math.floor(u * 10)]++;
    }
    for (const count of bins) expect(Math.abs(count - 2000)).toBeLessThan(200); // ~4.7 sigma
  });
});

describe('sampleParam', () => {
  it('maps u to the distribution', () => {
    expect(sampleParam({ uniform: [2, 4] }, 0).value).toBe(2);
    expect(sampleParam({ uniform: [2, 4] }, 0.25).value).toBe(2.5);
    // log-uniform: the middle of log space is the geometric mean.
    expect(sampleParam({ log_uniform: [0.01, 1] }, 0.5).value).toBeCloseTo(0.1, 12);
    expect(sampleParam({ log_uniform: [0.01, 1] }, 0).value).toBeCloseTo(0.01, 12);
    expect(sampleParam({ choice: ['a', 'b', 'c'] }, 0.34)).toEqual({ value: 'b', choice: 1 });
    expect(sampleParam({ choice: ['a', 'b', 'c'] }, 0.9999999)).toEqual({ value: 'c', choice: 2 });
  });
});

describe('drawRandom', () => {
  const spec = { count: 50, seed: 7, params: { beta: { log_uniform: [0.01, 0.5] as [number, number] }, lr: { uniform: [1, 2] as [number, number] } } };

  it('is reproducible and depends on the seed', () => {
    expect(drawRandom(spec)).toEqual(drawRandom(spec));
    expect(drawRandom({ ...spec, seed: 8 })).not.toEqual(drawRandom(spec));
  });

  it('samples each param once per draw, in the order written, from consecutive numbers', () => {
    const next = referenceMulberry32(7);
    for (const draw of drawRandom(spec)) {
      expect(draw.map((s) => s.key)).toEqual(['beta', 'lr']);
      const u1 = next();
      const u2 = next();
      expect(draw[0]!.value).toBeCloseTo(Math.exp(Math.log(0.01) + u1 * (Math.log(0.5) - Math.log(0.01))), 12);
      expect(draw[1]!.value).toBeCloseTo(1 + u2, 12);
    }
  });
});
