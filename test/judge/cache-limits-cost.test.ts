import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cacheKey, fileCache, promptHash, type CacheEntry, type CacheKeyParts } from '../../src/judge/cache.js';
import { parseRetryAfter } from '../../src/judge/client.js';
import { costOf, estimatePromptTokens, loadPricesFile, priceFor } from '../../src/judge/cost.js';
import { backoffDelay, DEFAULT_RETRY, mapPool, RateLimiter, TokenBucket, type Clock } from '../../src/judge/limits.js';
import { makeRedactor, redactDeep } from '../../src/judge/secrets.js';

const parts: CacheKeyParts = {
  model: 'gpt-4o',
  preset: { version: '1', fingerprint: 'abc' },
  params: { temperature: 0, max_tokens: 256 },
  prompt: promptHash([{ role: 'user', content: 'prompt' }]),
  instruction: 'i',
  output_first: 'x',
  output_second: 'y',
  order: 'ab',
};

const entry = (key: string): CacheEntry => ({
  format: 1,
  key,
  created: '2026-01-01T00:00:00.000Z',
  model: 'gpt-4o',
  served_model: 'gpt-4o-2024-08-06',
  raw: 'Comparison: x\nMore helpful: A',
  first_raw: null,
  choice: 'first',
  parse_code: null,
  parse_detail: null,
  usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
  exchanges: 1,
});

describe('cache', () => {
  it('the key changes with every component and nothing else', () => {
    const k = cacheKey(parts);
    expect(k).toMatch(/^[0-9a-f]{64}$/);
    expect(cacheKey({ ...parts })).toBe(k);
    const variants: CacheKeyParts[] = [
      { ...parts, model: 'gpt-4o-mini' },
      { ...parts, preset: { version: '2', fingerprint: 'abc' } },
      { ...parts, preset: { version: '1', fingerprint: 'abd' } },
      { ...parts, params: { temperature: 0.5, max_tokens: 256 } },
      { ...parts, params: { temperature: 0, max_tokens: 255 } },
      { ...parts, prompt: promptHash([{ role: 'user', content: 'prompt!' }]) },
      { ...parts, instruction: 'j' },
      { ...parts, output_first: 'x2' },
      { ...parts, output_second: 'y2' },
      { ...parts, order: 'ba' },
    ];
    const keys = new Set(variants.map(cacheKey));
    expect(keys.size).toBe(variants.length);
    expect(keys.has(k)).toBe(false);
  });

  it('round-trips through files written atomically', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cache-'));
    const c = fileCache(dir);
    const k = cacheKey(parts);
    expect(await c.get(k)).toBeUndefined();
    await c.put(entry(k));
    expect(await c.get(k)).toEqual(entry(k));
    expect(readdirSync(join(dir, k.slice(0, 2)))).toEqual([`${k}.json`]); // no temporary left behind
  });

  it('ignores torn, foreign and mismatched entries', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cache-'));
    const c = fileCache(dir);
    const k = cacheKey(parts);
    await c.put(entry(k));
    const file = join(dir, k.slice(0, 2), `${k}.json`);
    const text = readFileSync(file, 'utf8');
    writeFileSync(file, text.slice(0, text.length / 2)); // torn write
    expect(await c.get(k)).toBeUndefined();
    writeFileSync(file, JSON.stringify({ ...entry(k), choice: 'maybe' })); // not an entry
    expect(await c.get(k)).toBeUndefined();
    const other = cacheKey({ ...parts, order: 'ba' });
    writeFileSync(file, JSON.stringify(entry(other))); // someone else's entry under this name
    expect(await c.get(k)).toBeUndefined();
    expect(await c.get('../../etc/passwd')).toBeUndefined();
  });
});

/** A clock whose sleep advances time at once: waits are exact and instant. */
function fakeClock(): Clock & { t: number } {
  const c = {
    t: 0,
    now: () => c.t,
    sleep: async (ms: number) => {
      c.t += ms;
    },
  };
  return c;
}

describe('limits', () => {
  it('requests/min: a 10-second burst, then one request per 60/rpm seconds', async () => {
    const clock = fakeClock();
    const limiter = new RateLimiter({ rpm: 60 }, clock); // capacity 10, refill 1 per second
    const times: number[] = [];
    for (let i = 0; i < 13; i++) {
      await limiter.acquire(1);
      times.push(clock.t);
    }
    expect(times.slice(0, 10)).toEqual(Array(10).fill(0));
    expect(times.slice(10)).toEqual([1000, 2000, 3000]);
  });

  it('tokens/min: waits for tokens, and gives back what the estimate overcharged', async () => {
    const clock = fakeClock();
    const limiter = new RateLimiter({ tpm: 6000 }, clock); // capacity 1000, refill 100 per second
    await limiter.acquire(800);
    await limiter.acquire(400); // 200 left, 200 missing → 2 s
    expect(clock.t).toBe(2000);
    limiter.settle(400, 100); // 300 given back
    await limiter.acquire(300);
    expect(clock.t).toBe(2000);
  });

  it('a 429 pauses every sender', async () => {
    const clock = fakeClock();
    const limiter = new RateLimiter({}, clock);
    limiter.pauseFor(1500);
    await limiter.acquire(1);
    expect(clock.t).toBe(1500);
    await limiter.acquire(1);
    expect(clock.t).toBe(1500);
  });

  it('an oversize request waits for a full bucket instead of forever', () => {
    const clock = fakeClock();
    const b = new TokenBucket(600, clock); // capacity 100
    b.take(100);
    expect(b.waitFor(1_000_000)).toBe(10_000);
  });

  it('back-off doubles with equal jitter, caps, and honours Retry-After', () => {
    const p = { ...DEFAULT_RETRY, baseMs: 100, maxMs: 1000 };
    // d = min(1000, 100·2^(r−1)); delay = d/2 + random·d/2
    expect(backoffDelay(1, p, undefined, () => 0)).toBe(50);
    expect(backoffDelay(1, p, undefined, () => 1)).toBe(100);
    expect(backoffDelay(3, p, undefined, () => 0.5)).toBe(300); // d = 400
    expect(backoffDelay(10, p, undefined, () => 1)).toBe(1000);
    // Retry-After 2 s wins over a 50 ms back-off, plus up to 10 % jitter (random 0.5 → +100 ms)
    expect(backoffDelay(1, p, 2000, () => 0.5)).toBe(2100);
    expect(backoffDelay(1, { ...p, maxRetryAfterMs: 500 }, 60_000, () => 0)).toBe(500);
  });

  it('parses Retry-After in its three forms', () => {
    const h = (m: Record<string, string>) => (n: string) => m[n];
    expect(parseRetryAfter(h({ 'retry-after': '2' }))).toBe(2000);
    expect(parseRetryAfter(h({ 'retry-after-ms': '150', 'retry-after': '9' }))).toBe(150);
    expect(parseRetryAfter(h({ 'retry-after': new Date(10_000).toUTCString() }), 7_000)).toBe(3000);
    expect(parseRetryAfter(h({ 'retry-after': 'soon' }))).toBeUndefined();
    expect(parseRetryAfter(h({}))).toBeUndefined();
  });

  it('the pool keeps order and never exceeds its concurrency', async () => {
    let inFlight = 0;
    let peak = 0;
    const out = await mapPool([...Array(50).keys()], 4, async (i) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await new Promise((r) => setTimeout(r, 1));
      inFlight--;
      return i * 2;
    });
    expect(out).toEqual([...Array(50).keys()].map((i) => i * 2));
    expect(peak).toBe(4);
    await expect(mapPool([1, 2, 3], 2, async (i) => (i === 2 ? Promise.reject(new Error('x')) : i))).rejects.toThrow('x');
  });
});

describe('cost', () => {
  it('finds prices by exact name or the longest dated prefix', () => {
    expect(priceFor('gpt-4o-2024-08-06')).toEqual({ input_per_mtok: 2.5, output_per_mtok: 10 });
    expect(priceFor('gpt-4o-mini-2024-07-18')).toEqual({ input_per_mtok: 0.15, output_per_mtok: 0.6 });
    expect(priceFor('gpt-4-0613')).toEqual({ input_per_mtok: 30, output_per_mtok: 60 });
    expect(priceFor('gpt-4.1-mini-2025-04-14')).toEqual({ input_per_mtok: 0.4, output_per_mtok: 1.6 });
    expect(priceFor('llama-3-70b')).toBeUndefined();
  });

  it('computes cost and estimates', async () => {
    // 1000 prompt tokens at $2.5/M + 100 completion tokens at $10/M = 0.0025 + 0.001
    expect(costOf({ prompt_tokens: 1000, completion_tokens: 100 }, { input_per_mtok: 2.5, output_per_mtok: 10 })).toBeCloseTo(0.0035, 12);
    // 3 + (4 + ceil(10/4)) = 10
    expect(estimatePromptTokens([{ role: 'user', content: '0123456789' }])).toBe(10);
    const dir = mkdtempSync(join(tmpdir(), 'prices-'));
    writeFileSync(join(dir, 'p.json'), JSON.stringify({ 'my-judge': { input_per_mtok: 1, output_per_mtok: 1 } }));
    expect(await loadPricesFile(join(dir, 'p.json'))).toEqual({ 'my-judge': { input_per_mtok: 1, output_per_mtok: 1 } });
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ 'my-judge': { input: 1 } }));
    await expect(loadPricesFile(join(dir, 'bad.json'))).rejects.toThrow(/invalid price table/);
  });
});

describe('secrets', () => {
  it('redacts env secrets and key shapes everywhere', () => {
    const r = makeRedactor({ OPENAI_API_KEY: 'local-key-1234567890', HOME: '/home/me' });
    expect(r('key local-key-1234567890 in text')).toBe('key [redacted] in text');
    expect(r('Authorization: Bearer abcdefghijklmnop')).toBe('Authorization: Bearer [redacted]');
    expect(r('sk-proj-ABCDEFGHIJKLMNOP and hf_abcdefghijklmnop')).toBe('[redacted] and [redacted]');
    expect(r('/home/me is fine')).toBe('/home/me is fine');
    expect(redactDeep({ a: ['local-key-1234567890'], n: 1 }, r)).toEqual({ a: ['[redacted]'], n: 1 });
  });
});
