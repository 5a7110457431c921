/**
 * End-to-end judge runs: the real `openai` SDK talking real HTTP to a scripted OpenAI-compatible
 * server on 127.0.0.1 (test/helpers/fake-openai.ts). Every wait is bounded by the test timeout and
 * by small retry/back-off settings.
 */
import { mkdtempSync, readFileSync, readdirSync, existsSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { judgeCommand } from '../../src/judge/command.js';
import { runJudge, type JudgeOptions, type JudgeSummary } from '../../src/judge/run.js';
import type { JudgmentRecord } from '../../src/judge/records.js';
import { startFakeOpenAI, type FakeOpenAI, type FakeRequest } from '../helpers/fake-openai.js';

const KEY = 'sk-test-0123456789abcdefSECRET';
const fixtures = resolve(__dirname, '../fixtures/judge');
const FAST_RETRY = { baseMs: 5, maxMs: 40, maxAttempts: 4 };

let server: FakeOpenAI;
let work: string;
let lines: string[];

beforeEach(async () => {
  server = await startFakeOpenAI();
  work = mkdtempSync(join(tmpdir(), 'judge-run-'));
  lines = [];
});
afterEach(async () => {
  await server.close();
  rmSync(work, { recursive: true, force: true });
});

/** n pairs; A's output is the GOOD one for even i, B's for odd i; A's outputs are longer when good. */
function writePairs(n: number, name = 'p'): { a: string; b: string } {
  const a: unknown[] = [];
  const b: unknown[] = [];
  for (let i = 0; i < n; i++) {
    const aGood = i % 2 === 0;
    a.push({ instruction: `question ${i}?`, output: aGood ? `GOOD answer number ${i}, with detail.` : `meh ${i}`, generator: 'dpo' });
    b.push({ instruction: `question ${i}?`, output: aGood ? `meh ${i}` : `GOOD ${i}.`, generator: 'sft' });
  }
  const pa = join(work, `${name}-a.json`);
  const pb = join(work, `${name}-b.jsonl`);
  writeFileSync(pa, JSON.stringify(a, null, 2));
  writeFileSync(pb, b.map((x) => JSON.stringify(x)).join('\n'));
  return { a: pa, b: pb };
}

/** The verdict a fair judge gives for the hh prompt: the response containing GOOD. */
function fairHh(req: FakeRequest): string {
  const p = req.prompt;
  const firstIsGood = p.indexOf('GOOD') < p.indexOf('[Response B]');
  return `Comparison: one response is a better answer than the other.\nMore helpful: ${firstIsGood ? 'A' : 'B'}`;
}

const env = () => ({ OPENAI_API_KEY: KEY, OPENAI_BASE_URL: server.baseURL });

function options(files: { a: string; b: string }, extra: Partial<JudgeOptions> = {}): JudgeOptions {
  return { ...files, preset: 'hh', out: join(work, 'out'), cacheDir: join(work, 'cache'), seed: 1, concurrency: 4, retry: FAST_RETRY, timeoutMs: 5_000, ...extra };
}

const run = (o: JudgeOptions, extraEnv: Record<string, string | undefined> = {}, signal?: AbortSignal) =>
  runJudge(o, { env: { ...env(), ...extraEnv }, log: (l) => lines.push(l), ...(signal ? { signal } : {}) });

function readRecords(out: string): JudgmentRecord[] {
  return readFileSync(join(out, 'judgments.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as JudgmentRecord);
}

function expectCountsAddUp(s: JudgeSummary) {
  expect(s.wins + s.losses + s.ties + s.invalid).toBe(s.n_pairs);
  const reasons = Object.values(s.invalid_reasons).reduce((x, y) => x + (y ?? 0), 0);
  expect(reasons).toBe(s.invalid);
}

function allFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? allFiles(p) : [p];
  });
}

describe('judge over HTTP with the real SDK', () => {
  it('judges every pair from A\'s side whatever the order, writes both files, and a rerun sends 0 requests', async () => {
    server.setHandler(fairHh);
    const files = writePairs(20);
    const s = await run(options(files));
    expectCountsAddUp(s);
    expect(s).toMatchObject({ n_pairs: 20, wins: 10, losses: 10, ties: 0, invalid: 0, requests: 20, cache_hits: 0, win_rate: 0.5, model: 'gpt-4o-2024-08-06' });
    expect(server.count()).toBe(20);
    expect(server.requests[0]!.headers.authorization).toBe(`Bearer ${KEY}`); // OPENAI_API_KEY honoured
    expect(server.requests[0]!.body).toMatchObject({ model: 'gpt-4o-2024-08-06', temperature: 0, max_tokens: 256 });
    expect(s.cost_usd!).toBeGreaterThan(0);
    expect(s.p_longer).toBe(1); // every GOOD output is the longer one of its pair
    expect(s.win_rate_ci![0]).toBeLessThan(0.5);
    const records = readRecords(join(work, 'out'));
    expect(records).toHaveLength(20);
    const orders = new Set(records.map((r) => r.order));
    expect(orders).toEqual(new Set(['ab', 'ba'])); // seeded per pair: both orders occur
    for (const r of records) {
      expect(r.verdict).toBe(r.index % 2 === 0 ? 'a' : 'b');
      expect(r).toMatchObject({ model: 'gpt-4o-2024-08-06', cached: false, reason: null });
      expect(r.raw).toMatch(/More helpful: [AB]$/);
      expect(r.usage!.total_tokens).toBeGreaterThan(0);
      expect(r.pair).toMatch(/^[0-9a-f]{16}$/);
      expect(r.prompt_hash).toMatch(/^[0-9a-f]{16}$/);
    }
    const summaryFile = JSON.parse(readFileSync(join(work, 'out', 'summary.json'), 'utf8')) as JudgeSummary;
    for (const k of ['n_pairs', 'wins', 'losses', 'ties', 'invalid', 'win_rate', 'win_rate_ci', 'lc_win_rate', 'p_first', 'p_longer', 'order_inconsistent', 'requests', 'cache_hits', 'cost_usd']) {
      expect(summaryFile).toHaveProperty(k);
    }

    const again = await run(options(files, { out: join(work, 'out2') }));
    expect(server.count()).toBe(20);
    expect(again).toMatchObject({ requests: 0, cache_hits: 20, wins: 10, losses: 10, cost_usd: 0 });
    // The comparison's cost stays visible on a cached rerun: gpt-4o-2024-08-06 is $2.50 / $10 per
    // million prompt / completion tokens, over the usage each record kept.
    const byHand = records.reduce((sum, r) => sum + (r.usage!.prompt_tokens * 2.5 + r.usage!.completion_tokens * 10) / 1e6, 0);
    expect(s.total_cost_usd!).toBeCloseTo(byHand, 12);
    expect(s.cost_usd!).toBeCloseTo(byHand, 12);
    expect(again.total_cost_usd!).toBeCloseTo(byHand, 12);
    expect(readRecords(join(work, 'out2')).every((r) => r.cached)).toBe(true);
  });

  it('--both-orders: agreement is consistent; a judge that always picks the first makes every pair an inconsistent tie', async () => {
    const files = writePairs(6);
    server.setHandler(fairHh);
    const fair = await run(options(files, { bothOrders: true }));
    expect(fair).toMatchObject({ requests: 12, order_inconsistent: 0, wins: 3, losses: 3, ties: 0, p_first: 0.5 });
    expect(readRecords(join(work, 'out')).map((r) => r.order)).toEqual(['ab', 'ba', 'ab', 'ba', 'ab', 'ba', 'ab', 'ba', 'ab', 'ba', 'ab', 'ba']);

    server.setHandler(() => 'Comparison: the first one.\nMore helpful: A');
    const biased = await run(options(files, { bothOrders: true, cacheDir: join(work, 'cache-2') }));
    expectCountsAddUp(biased);
    expect(biased).toMatchObject({ n_pairs: 6, ties: 6, wins: 0, losses: 0, order_inconsistent: 6, p_first: 1, win_rate: 0.5 });
    expect(biased.inconsistent_pairs).toHaveLength(6);
    expect(biased.inconsistent_pairs[0]).toMatchObject({ index: 0, instruction: 'question 0?' });
  });

  it('429 with Retry-After: waits at least that long, then succeeds', async () => {
    const arrivals: number[] = [];
    server.setHandler((req) => {
      arrivals.push(Date.now());
      return req.index === 0 ? { kind: 'status', status: 429, retryAfter: '1' } : fairHh(req);
    });
    const s = await run(options(writePairs(3), { concurrency: 1 }));
    expectCountsAddUp(s);
    expect(s).toMatchObject({ invalid: 0, requests: 4, retries: 1 });
    expect(arrivals[1]! - arrivals[0]!).toBeGreaterThanOrEqual(990);
  });

  it('500s are retried with back-off; a pair that keeps failing ends invalid (transport), is not cached, and a rerun retries it', async () => {
    server.setHandler((req) => (req.repeat < 2 ? { kind: 'status', status: 500 } : fairHh(req)));
    const files = writePairs(4);
    const s = await run(options(files));
    expect(s).toMatchObject({ invalid: 0, requests: 12, retries: 8 });

    server.setHandler((req) => (req.prompt.includes('question 3?') ? { kind: 'status', status: 503 } : fairHh(req)));
    const files2 = writePairs(4, 'q');
    const cache = join(work, 'cache-b');
    const broken = await run(options(files2, { cacheDir: cache }));
    expectCountsAddUp(broken);
    expect(broken).toMatchObject({ invalid: 1, invalid_reasons: { transport: 1 }, requests: 3 + FAST_RETRY.maxAttempts });
    const bad = readRecords(join(work, 'out')).find((r) => r.index === 3)!;
    expect(bad).toMatchObject({ verdict: 'invalid', reason: 'transport', raw: null });
    expect(bad.detail).toMatch(/503 .*after 4 attempts/);

    server.setHandler(fairHh);
    const healed = await run(options(files2, { cacheDir: cache }));
    expect(healed).toMatchObject({ invalid: 0, requests: 1, cache_hits: 3 });
  });

  it('a request that hangs past the timeout is retried', async () => {
    server.setHandler((req) => (req.repeat === 0 && req.prompt.includes('question 1?') ? { kind: 'hang' } : fairHh(req)));
    const t0 = Date.now();
    const s = await run(options(writePairs(3), { timeoutMs: 300 }));
    expect(s).toMatchObject({ invalid: 0, requests: 4, retries: 1 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect(Date.now() - t0).toBeLessThan(5_000);
  });

  it('garbage JSON and non-JSON bodies are transport faults, retried', async () => {
    server.setHandler((req) => (req.repeat === 0 ? { kind: 'garbage' } : req.repeat === 1 ? { kind: 'non-json' } : fairHh(req)));
    const s = await run(options(writePairs(2)));
    expect(s).toMatchObject({ invalid: 0, requests: 6, retries: 4 });

    server.setHandler(() => ({ kind: 'garbage' }));
    const dead = await run(options(writePairs(2), { cacheDir: join(work, 'cache-g'), retry: { ...FAST_RETRY, maxAttempts: 2 } }));
    expectCountsAddUp(dead);
    expect(dead).toMatchObject({ invalid: 2, invalid_reasons: { transport: 2 } });
    expect(readRecords(join(work, 'out'))[0]!.detail).toMatch(/unreadable response body/);
  });

  it('unreadable replies: re-asked once; still unreadable → invalid with the raw text, cached; never a silent tie', async () => {
    server.setHandler((req) => {
      const reask = req.prompt.startsWith('I could not read');
      if (req.prompt.includes('question 0?') || (reask && req.body.messages[1]!.content.includes('question 0?'))) {
        return { kind: 'reply', content: '' }; // empty both times
      }
      if (req.prompt.includes('question 1?')) return 'Both responses are equally good; A is a fine answer.'; // no verdict line
      if (reask) return fairHh({ ...req, prompt: req.body.messages[1]!.content });
      return fairHh(req);
    });
    const files = writePairs(3);
    const s = await run(options(files, { concurrency: 1 }));
    expectCountsAddUp(s);
    expect(s).toMatchObject({ n_pairs: 3, invalid: 1, invalid_reasons: { unparseable: 1 }, ties: 0, reasks: 2, requests: 5 });
    const records = readRecords(join(work, 'out'));
    expect(records[0]).toMatchObject({ verdict: 'invalid', reason: 'unparseable', raw: '', first_raw: '', detail: 'empty: empty reply' });
    expect(records[1]).toMatchObject({ verdict: 'b', first_raw: 'Both responses are equally good; A is a fine answer.' });
    const reask = server.requests.find((r) => r.prompt.startsWith('I could not read') && r.body.messages[1]!.content.includes('question 1?'))!;
    expect(reask.body.messages.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'user']);
    expect(reask.prompt).toContain('no line starting with "More helpful:"');

    const again = await run(options(files, { out: join(work, 'again') }));
    expect(again).toMatchObject({ requests: 0, cache_hits: 3, invalid: 1 });
  });

  it('keeps to the concurrency limit under latency', async () => {
    await server.close();
    server = await startFakeOpenAI({ latencyMs: 40, handler: fairHh });
    const t0 = Date.now();
    const s = await run(options(writePairs(40), { concurrency: 8 }));
    expect(s.requests).toBe(40);
    expect(server.maxInFlight()).toBe(8);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(5 * 40 - 10); // 40 / 8 rounds of 40 ms
  });

  it('--max-cost: refuses to start when the estimate is over, and stops before passing it', async () => {
    server.setHandler(fairHh);
    const files = writePairs(10);
    await expect(run(options(files, { maxCost: 0.0001 }))).rejects.toThrow(/estimated cost \$0\.0\d+ exceeds --max-cost \$0\.0001; nothing was sent/);
    expect(server.count()).toBe(0);

    // The server reports 100 000 prompt tokens a request ($0.25 at $2.5/M): far over the estimate.
    server.setHandler((req) => ({ kind: 'reply', content: fairHh(req), usage: { prompt_tokens: 100_000, completion_tokens: 10 } }));
    const s = await run(options(files, { maxCost: 0.6, concurrency: 1 }));
    expectCountsAddUp(s);
    expect(s.stopped).toBe('budget');
    expect(s.requests).toBe(2);
    expect(s.cost_usd!).toBeLessThanOrEqual(0.6);
    expect(s).toMatchObject({ invalid: 8, invalid_reasons: { budget: 8 } });
    const r = readRecords(join(work, 'out')).find((x) => x.reason === 'budget')!;
    expect(r.detail).toMatch(/would pass --max-cost \$0\.6/);
  });

  it('--dry-run: counts requests and estimates cost, sends and writes nothing', async () => {
    const files = writePairs(5);
    const s = await runJudge(options(files, { dryRun: true, out: join(work, 'dry') }), { env: {}, log: (l) => lines.push(l) });
    expect(s).toMatchObject({ dry_run: true, requests: 0, planned_requests: 5 });
    expect(s.estimated_cost_usd!).toBeGreaterThan(0);
    expect(server.count()).toBe(0);
    expect(existsSync(join(work, 'dry'))).toBe(false);
    expect(lines.join('\n')).toMatch(/--- first request, user message ---/);
    // With --max-cost, the dry run says whether the real run would go ahead.
    const est = s.estimated_cost_usd!;
    lines.length = 0;
    await runJudge(options(files, { dryRun: true, maxCost: est / 2, out: join(work, 'dry') }), { env: {}, log: (l) => lines.push(l) });
    expect(lines.join('\n')).toMatch(/--max-cost \$[\d.e-]+: the real run would refuse, the estimate is over it/);
    lines.length = 0;
    await runJudge(options(files, { dryRun: true, maxCost: est * 2, out: join(work, 'dry') }), { env: {}, log: (l) => lines.push(l) });
    expect(lines.join('\n')).toMatch(/--max-cost \$[\d.e-]+: within budget/);
    expect(server.count()).toBe(0);
  });

  it('an llm preset without OPENAI_API_KEY stops before any request; a rule preset needs no key', async () => {
    const files = writePairs(4);
    const e = await runJudge(options(files), { env: { OPENAI_BASE_URL: server.baseURL } }).then(
      () => {
        throw new Error('expected an InputError');
      },
      (x: unknown) => x as InputError,
    );
    expect(e).toBeInstanceOf(InputError);
    expect(e.message).toMatch(/OPENAI_API_KEY is not set/);
    expect(e.details.join('\n')).toMatch(/export OPENAI_API_KEY=/);
    expect(server.count()).toBe(0);

    const rule = await runJudge(options(files, { preset: 'format-rule', bothOrders: true }), { env: {} });
    expectCountsAddUp(rule);
    // format-rule: "GOOD answer number i, with detail." / "GOOD i." end with "."; "meh i" does not.
    expect(rule).toMatchObject({ n_pairs: 4, wins: 2, losses: 2, requests: 0, order_inconsistent: 0, kind: 'rule' });
    expect(readRecords(join(work, 'out'))[0]!.model).toMatch(/^rule:pattern:/);
  });

  it('a rule module that throws or answers junk gives invalid (rule), with the reason', async () => {
    const a = join(work, 'ra.json');
    const b = join(work, 'rb.json');
    writeFileSync(a, JSON.stringify([{ instruction: 'boom', output: 'yes' }, { instruction: 'junk', output: 'x' }, { instruction: 'ok', output: 'yes' }]));
    writeFileSync(b, JSON.stringify([{ instruction: 'boom', output: 'no' }, { instruction: 'junk', output: 'y' }, { instruction: 'ok', output: 'no' }]));
    const s = await runJudge(options({ a, b }, { preset: join(fixtures, 'rule-module') }), { env: {} });
    expectCountsAddUp(s);
    expect(s).toMatchObject({ wins: 1, invalid: 2, invalid_reasons: { rule: 2 } });
    expect(readRecords(join(work, 'out')).map((r) => r.detail)).toEqual(['rule threw: rule exploded', "rule returned \"maybe\", not 'a' | 'b' | 'tie'", null]);
  });

  it('secrets never reach judgments, summaries, the cache, logs or errors', async () => {
    server.setHandler((req) =>
      req.prompt.includes('question 1?')
        ? { kind: 'status', status: 400, body: { error: { message: `bad request from key ${KEY} (Authorization: Bearer ${KEY})` } } }
        : `Comparison: I was called with ${KEY} and sk-other-ABCDEFGHIJKLMNOP.\nMore helpful: A`,
    );
    const s = await run(options(writePairs(3)));
    expect(s.invalid_reasons).toEqual({ transport: 1 });
    const written = [...allFiles(join(work, 'out')), ...allFiles(join(work, 'cache'))].map((f) => readFileSync(f, 'utf8')).join('\n');
    expect(written).toContain('[redacted]');
    expect(written).not.toContain(KEY);
    expect(written).not.toContain('sk-other-ABCDEFGHIJKLMNOP');
    expect(lines.join('\n')).not.toContain(KEY);

    server.setHandler(() => ({ kind: 'status', status: 401, body: { error: { message: `Incorrect API key provided: ${KEY}` } } }));
    const e = await run(options(writePairs(3, 'k'), { out: join(work, 'out401') })).then(
      () => {
        throw new Error('expected an InputError');
      },
      (x: unknown) => x as InputError,
    );
    expect(e).toBeInstanceOf(InputError);
    expect(e.message).toMatch(/refused the credentials/);
    expect(`${e.message}\n${e.details.join('\n')}\n${String(e.stack)}`).not.toContain(KEY);
    expect(readFileSync(join(work, 'out401', 'judgments.jsonl'), 'utf8')).not.toContain(KEY);
    expect(server.count()).toBeLessThanOrEqual(3 + 4); // stopped instead of hammering: ≤ one per in-flight slot
  });

  it('cancellation ends unsent pairs as invalid (cancelled) and still writes the files', async () => {
    await server.close();
    server = await startFakeOpenAI({ latencyMs: 300, handler: fairHh });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const s = await run(options(writePairs(8), { concurrency: 2 }), {}, ac.signal);
    expectCountsAddUp(s);
    expect(s.stopped).toBe('cancelled');
    expect(s.invalid).toBe(8);
    expect(s.invalid_reasons).toEqual({ cancelled: 8 });
    expect(readRecords(join(work, 'out'))).toHaveLength(8);
  });

  it('warns when the server answers as another model (judge drift)', async () => {
    server.setHandler((req) => ({ kind: 'reply', content: fairHh(req), model: 'gpt-4o-2099-01-01' }));
    const s = await run(options(writePairs(2)));
    expect(s.served_models).toEqual(['gpt-4o-2099-01-01']);
    expect(s.warnings.join('\n')).toMatch(/answered as gpt-4o-2099-01-01 for requested model gpt-4o-2024-08-06/);
  });
});

describe('judgeCommand', () => {
  it('takes commander-style options, returns exit codes, and throws InputError on bad options', async () => {
    server.setHandler(fairHh);
    const files = writePairs(4);
    const out: string[] = [];
    const io = { log: (l: string) => out.push(l), env: env() };
    const ok = await judgeCommand(
      { a: files.a, b: files.b, preset: 'hh', out: join(work, 'cmd'), seed: '3', concurrency: '2', cacheDir: join(work, 'cache'), bothOrders: true } as never,
      io,
    );
    expect(ok.exitCode).toBe(0);
    expect(ok.summary).toMatchObject({ n_pairs: 4, requests: 8, seed: 3 });
    expect(out.join('\n')).toMatch(/4 pairs, 2 wins, 2 losses, 0 ties, 0 invalid/);

    server.setHandler((req) => ({ kind: 'reply', content: fairHh(req), usage: { prompt_tokens: 100_000, completion_tokens: 1 } }));
    const stopped = await judgeCommand(
      { a: files.a, b: files.b, preset: 'hh', out: join(work, 'cmd2'), maxCost: 0.3, concurrency: 1, cacheDir: join(work, 'cache-c') },
      io,
    );
    expect(stopped.exitCode).toBe(1);

    await expect(judgeCommand({ a: files.a, b: files.b, preset: 'hh', out: 'x', concurrency: 'many' } as never, io)).rejects.toThrow(
      'dpo-sweep judge: invalid options',
    );
  });
});
