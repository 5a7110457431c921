/**
 * `runJudge`: judge every matched pair of two outputs files with a preset, and return the summary.
 *
 * Reads top to bottom: load the preset and the pairs → plan the requests (orders, prompts, cache
 * keys) → look them up in the cache → estimate the cost (dry run and budget stop here) → send what
 * is left through the limits → write `judgments.jsonl` and `summary.json` → return the summary.
 * It never prints (lines go to `deps.log`) and never exits; bad input throws an InputError.
 */
import { setMaxListeners } from 'node:events';
import { constants as fsConstants } from 'node:fs';
import { access, mkdir, rename, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { InputError } from '../errors.js';
import { charLength } from '../stats/lc.js';
import { cacheKey, fileCache, promptHash, type CacheEntry, type JudgmentCache, type Usage } from './cache.js';
import { openAIClient, TransportError, type ChatReply, type JudgeClient } from './client.js';
import { costOf, DEFAULT_PRICES, estimateRequest, loadPricesFile, priceFor } from './cost.js';
import { DEFAULT_RETRY, RateLimiter, backoffDelay, mapPool, realClock, type Clock, type RetryPolicy } from './limits.js';
import { ordersFor, pairHash, type Order } from './order.js';
import { describeReport, loadOutputsFile, matchPairs, type Pair, type PairsReport } from './pairs.js';
import { loadPreset, presetFingerprint, type LlmPreset, type Price, type RulePreset } from './presets.js';
import { renderMessages, type ChatMessage } from './prompt.js';
import { summariseRecords, verdictFromChoice, type InvalidReason, type JudgeStats, type JudgmentRecord } from './records.js';
import { makeRedactor, redactDeep, type Redactor } from './secrets.js';

export interface JudgeOptions {
  /** Outputs of system A (AlpacaEval JSON array or JSONL). */
  a: string;
  /** Outputs of system B, or a dataset's reference answers. */
  b: string;
  /** Preset name under configs/judges/, or a preset folder. */
  preset: string;
  /** Output folder for judgments.jsonl and summary.json. */
  out: string;
  /** Judge model (default: the preset's). */
  model?: string | undefined;
  /** Judge both orders of every pair (default false: one seeded order). */
  bothOrders?: boolean | undefined;
  /** Seed of the per-pair order and of the bootstrap (default 42). */
  seed?: number | undefined;
  /** Requests in flight at most (default 8). */
  concurrency?: number | undefined;
  /** Refuse to start, or stop sending, before spending more than this many USD. */
  maxCost?: number | undefined;
  /** Plan and estimate only: no request, no file written. */
  dryRun?: boolean | undefined;
  /** Cache root (judgments under `<cacheDir>/judgments/`); default $DPO_SWEEP_CACHE or ~/.cache/dpo-sweep. */
  cacheDir?: string | undefined;
  /** Requests per minute (default unlimited). */
  rpm?: number | undefined;
  /** Tokens per minute (default unlimited). */
  tpm?: number | undefined;
  /** Per-request timeout in ms (default 60 000). */
  timeoutMs?: number | undefined;
  /** Retry policy overrides (attempts, back-off). */
  retry?: Partial<RetryPolicy> | undefined;
  /** JSON price table `{model: {input_per_mtok, output_per_mtok}}` overriding the built-in one. */
  pricesFile?: string | undefined;
  /** Folder of named presets (default the shipped configs/judges/). */
  presetsDir?: string | undefined;
  /** Bootstrap resamples (default 2000). */
  bootstrapSamples?: number | undefined;
}

export interface JudgeDeps {
  /** Environment for OPENAI_API_KEY / OPENAI_BASE_URL / DPO_SWEEP_CACHE (default: process.env). */
  env?: NodeJS.ProcessEnv;
  /** Judge client; default the OpenAI SDK client built from `env`. */
  client?: JudgeClient;
  /** Judgment cache; default a file cache under the cache dir. */
  cache?: JudgmentCache;
  /** Receives progress and report lines (already redacted). */
  log?: (line: string) => void;
  clock?: Clock;
  /** Jitter source (default Math.random). */
  random?: () => number;
  /** Cancels the run: unsent requests end `invalid` (cancelled), files are still written. */
  signal?: AbortSignal;
}

export interface JudgeSummary extends JudgeStats {
  preset: string;
  preset_version: string;
  kind: 'llm' | 'rule';
  model: string;
  a: { path: string; generator: string };
  b: { path: string; generator: string };
  seed: number;
  both_orders: boolean;
  inputs: PairsReport;
  /** HTTP attempts sent by this invocation (retries and re-asks included). */
  requests: number;
  /** Requests planned but not sent because the cache had the outcome. */
  cache_hits: number;
  /** Re-asks after an unreadable reply. */
  reasks: number;
  /** Retries after transport failures. */
  retries: number;
  /** USD spent by this invocation (from returned usage); null when the model has no price. */
  cost_usd: number | null;
  /**
   * USD of every judgment in the file: `cost_usd` plus the cached judgments at the usage recorded when
   * they were made (a cached one with no recorded usage counts 0); null when the model has no price.
   */
  total_cost_usd: number | null;
  /** Upper-side estimate made before sending; null when the model has no price. */
  estimated_cost_usd: number | null;
  /** Requests still to send after the cache (what --dry-run reports). */
  planned_requests: number;
  /** Models the server said answered. */
  served_models: string[];
  /** Why sending stopped early, if it did. */
  stopped: 'budget' | 'cancelled' | null;
  dry_run: boolean;
}

/** Default cache root: $DPO_SWEEP_CACHE, else ~/.cache/dpo-sweep. */
export function defaultCacheDir(env: NodeJS.ProcessEnv): string {
  return env.DPO_SWEEP_CACHE && env.DPO_SWEEP_CACHE.length > 0 ? env.DPO_SWEEP_CACHE : join(homedir(), '.cache', 'dpo-sweep');
}

interface Task {
  index: number;
  pair: Pair;
  pairId: string;
  order: Order;
  messages: ChatMessage[];
  key: string;
  promptHash: string;
  lenA: number;
  lenB: number;
}

type Exchange = { ok: true; reply: ChatReply } | { ok: false; reason: InvalidReason; detail: string };

export async function runJudge(options: JudgeOptions, deps: JudgeDeps = {}): Promise<JudgeSummary> {
  const env = deps.env ?? process.env;
  const redact = makeRedactor(env);
  const log = (line: string) => deps.log?.(redact(line));
  const clock = deps.clock ?? realClock;
  const seed = options.seed ?? 42;
  const bothOrders = options.bothOrders ?? false;
  const concurrency = Math.max(1, Math.floor(options.concurrency ?? 8));

  // 1. Preset, key, pairs.
  const preset = await loadPreset(options.preset, options.presetsDir);
  // A blank key (`OPENAI_API_KEY=` or spaces) is no key: the server would refuse every request.
  if (preset.kind === 'llm' && !options.dryRun && deps.client === undefined && !env.OPENAI_API_KEY?.trim()) {
    throw new InputError(`judge preset "${options.preset}" calls an LLM and OPENAI_API_KEY is not set`, [
      'export OPENAI_API_KEY=… (and OPENAI_BASE_URL=http://host:port/v1 for another OpenAI-compatible server)',
      'or use a rule preset (kind: rule), which needs no key',
    ]);
  }
  const [fileA, fileB] = await Promise.all([loadOutputsFile(options.a, 'a'), loadOutputsFile(options.b, 'b')]);
  const { pairs, report } = matchPairs(fileA, fileB);
  log(`${pairs.length} pairs matched (${fileA.generator} vs ${fileB.generator})`);
  for (const line of describeReport(report)) log(line);

  const header = {
    preset: options.preset,
    preset_version: preset.version,
    kind: preset.kind,
    a: { path: options.a, generator: fileA.generator },
    b: { path: options.b, generator: fileB.generator },
    seed,
    both_orders: bothOrders,
    inputs: report,
  };
  const statsOptions = { bothOrders, bootstrapSeed: seed, bootstrapSamples: options.bootstrapSamples };

  if (preset.kind === 'rule') {
    const model = `rule:${preset.rule}`;
    if (!options.dryRun) await ensureOutDir(options.out);
    const records = await judgeByRule(preset, pairs, { seed, bothOrders, model });
    const summary: JudgeSummary = {
      ...header,
      model,
      ...summariseRecords(records, statsOptions),
      requests: 0,
      cache_hits: 0,
      reasks: 0,
      retries: 0,
      cost_usd: 0,
      total_cost_usd: 0,
      estimated_cost_usd: 0,
      planned_requests: 0,
      served_models: [],
      stopped: null,
      dry_run: options.dryRun ?? false,
    };
    if (options.dryRun) {
      log(`dry run: rule preset ${preset.rule}: ${records.length} judgments, 0 requests, $0`);
      return summary;
    }
    await writeOutputs(options.out, records, summary, redact);
    log(summaryLine(summary));
    return summary;
  }

  // 2. Plan: one task per pair and order.
  const model = options.model ?? preset.model;
  const fingerprint = presetFingerprint(preset);
  const tasks: Task[] = [];
  pairs.forEach((pair, index) => {
    const pairId = pairHash(pair.instruction, pair.outputA, pair.outputB);
    for (const order of ordersFor(seed, pair.instruction, bothOrders)) {
      const messages = renderMessages(preset, pair, order);
      const [first, second] = order === 'ab' ? [pair.outputA, pair.outputB] : [pair.outputB, pair.outputA];
      const prompt = promptHash(messages);
      const key = cacheKey({
        model,
        preset: { version: preset.version, fingerprint },
        params: { temperature: preset.temperature, max_tokens: preset.maxTokens },
        prompt,
        instruction: pair.instruction,
        output_first: first,
        output_second: second,
        order,
      });
      tasks.push({ index, pair, pairId, order, messages, key, promptHash: prompt.slice(0, 16), lenA: charLength(pair.outputA), lenB: charLength(pair.outputB) });
    }
  });

  // 3. Cache.
  const cacheRoot = resolve(options.cacheDir ?? defaultCacheDir(env));
  const cache = deps.cache ?? fileCache(join(cacheRoot, 'judgments'));
  const hits = cache.getMany ? await cache.getMany(tasks.map((t) => t.key)) : await mapPool(tasks, 64, (t) => cache.get(t.key));
  const todo = tasks.filter((_, i) => hits[i] === undefined);

  // 4. Cost.
  // Built-in table < the preset's `price:` < a --prices file.
  const table: Record<string, Price> = {
    ...DEFAULT_PRICES,
    ...(preset.price ? { [model]: preset.price } : {}),
    ...(options.pricesFile ? await loadPricesFile(options.pricesFile) : {}),
  };
  const price: Price | undefined = priceFor(model, table);
  const estimates = todo.map((t) => estimateRequest(t.messages, preset.maxTokens));
  const estimatedCost = price ? estimates.reduce((s, e) => s + costOf(e, price), 0) : null;
  const estTokens = estimates.reduce((s, e) => s + e.prompt_tokens + e.completion_tokens, 0);
  const costText = estimatedCost === null ? 'unknown (no price for this model; see --prices)' : `$${estimatedCost.toFixed(4)}`;
  log(`${tasks.length} judgments: ${tasks.length - todo.length} cached, ${todo.length} to request from ${model} (≈${estTokens} tokens, est. cost ${costText})`);

  if (options.dryRun) {
    for (const t of todo.slice(0, 20)) log(`request pair=${t.pairId} order=${t.order} key=${t.key.slice(0, 16)}`);
    if (todo.length > 20) log(`… and ${todo.length - 20} more requests`);
    if (options.maxCost !== undefined && todo.length > 0) {
      if (price === undefined) log(`--max-cost $${options.maxCost}: the real run would refuse, no price is known for ${model} (see --prices)`);
      else if ((estimatedCost ?? 0) > options.maxCost) log(`--max-cost $${options.maxCost}: the real run would refuse, the estimate is over it`);
      else log(`--max-cost $${options.maxCost}: within budget`);
    }
    const firstTask = todo[0];
    if (firstTask) for (const m of firstTask.messages) log(`--- first request, ${m.role} message ---\n${m.content}`);
    const records = tasks.map((t, i) => (hits[i] ? recordFromEntry(t, hits[i]!, model) : pendingRecord(t, model)));
    return {
      ...header,
      model,
      ...summariseRecords(records, statsOptions),
      requests: 0,
      cache_hits: tasks.length - todo.length,
      reasks: 0,
      retries: 0,
      cost_usd: 0,
      total_cost_usd: price ? cachedCost(records, price) : null,
      estimated_cost_usd: estimatedCost,
      planned_requests: todo.length,
      served_models: [],
      stopped: null,
      dry_run: true,
    };
  }
  if (options.maxCost !== undefined && todo.length > 0) {
    if (price === undefined) {
      throw new InputError(`--max-cost needs a price for model "${model}", and none is known`, [
        'add one with --prices prices.json ({"<model>": {"input_per_mtok": …, "output_per_mtok": …}}) or `price:` in the preset',
      ]);
    }
    if ((estimatedCost ?? 0) > options.maxCost) {
      throw new InputError(
        `estimated cost $${(estimatedCost ?? 0).toFixed(4)} exceeds --max-cost $${options.maxCost}; nothing was sent`,
        [`${todo.length} requests to send (${tasks.length - todo.length} cached); raise --max-cost or judge fewer pairs`],
      );
    }
  }
  // Before the first request: a run whose results cannot be written must not spend anything.
  await ensureOutDir(options.out);
  if (price === undefined && todo.length > 0) log(`no price known for ${model}: cost_usd will be null (add --prices)`);

  // 5. Send.
  const client =
    deps.client ??
    openAIClient({ apiKey: env.OPENAI_API_KEY ?? '', baseURL: env.OPENAI_BASE_URL, redact });
  const limiter = new RateLimiter({ rpm: options.rpm, tpm: options.tpm }, clock);
  const retry: RetryPolicy = { ...DEFAULT_RETRY, ...options.retry };
  const timeoutMs = options.timeoutMs ?? 60_000;
  const random = deps.random ?? Math.random;
  const stopper = new AbortController();
  setMaxListeners(4 * concurrency + 16, stopper.signal); // each in-flight request and back-off listens to it
  const onOuterAbort = () => stopper.abort(deps.signal?.reason);
  deps.signal?.addEventListener('abort', onOuterAbort, { once: true });
  if (deps.signal?.aborted) stopper.abort(deps.signal.reason);

  const state = {
    requests: 0,
    reasks: 0,
    retries: 0,
    spent: 0,
    reserved: 0,
    /** Largest observed actual/estimated prompt tokens: estimates are scaled by it. */
    promptScale: 1,
    stopped: null as 'budget' | 'cancelled' | null,
    fatal: undefined as TransportError | undefined,
    served: new Set<string>(),
    done: 0,
    cacheWarned: false,
  };
  const pendingPuts = new Set<Promise<void>>();

  const exchange = async (messages: ChatMessage[]): Promise<Exchange> => {
    const est = estimateRequest(messages, preset.maxTokens);
    est.prompt_tokens = Math.ceil(est.prompt_tokens * state.promptScale);
    const estCost = price ? costOf(est, price) : 0;
    for (let attempt = 1; attempt <= retry.maxAttempts; attempt++) {
      if (stopper.signal.aborted) return { ok: false, reason: 'cancelled', detail: state.fatal ? state.fatal.message : 'run cancelled before this request' };
      if (state.stopped === 'budget') return { ok: false, reason: 'budget', detail: 'not sent: --max-cost reached' };
      if (options.maxCost !== undefined && state.spent + state.reserved + estCost > options.maxCost) {
        state.stopped = 'budget';
        return { ok: false, reason: 'budget', detail: `not sent: spent $${state.spent.toFixed(4)}, this request (≈$${estCost.toFixed(4)}) would pass --max-cost $${options.maxCost}` };
      }
      try {
        await limiter.acquire(est.prompt_tokens + est.completion_tokens, stopper.signal);
      } catch {
        return { ok: false, reason: 'cancelled', detail: 'run cancelled before this request' };
      }
      state.requests++;
      state.reserved += estCost;
      let reply: ChatReply;
      try {
        reply = await client.complete(
          { model, messages, temperature: preset.temperature, max_tokens: preset.maxTokens },
          { timeoutMs, signal: stopper.signal },
        );
      } catch (err) {
        state.reserved -= estCost;
        const e = err instanceof TransportError ? err : new TransportError('connection', redact(String((err as Error)?.message ?? err)));
        if (e.kind === 'aborted' || stopper.signal.aborted) return { ok: false, reason: 'cancelled', detail: 'request aborted: run cancelled' };
        if (e.fatal) {
          state.fatal ??= e;
          stopper.abort(e);
          return { ok: false, reason: 'transport', detail: redact(e.message) };
        }
        if (!e.retryable || attempt === retry.maxAttempts) {
          return { ok: false, reason: 'transport', detail: redact(`${e.message}${e.retryable ? ` (after ${attempt} attempts)` : ''}`) };
        }
        if (e.kind === 'rate-limit' && e.retryAfterMs !== undefined) limiter.pauseFor(Math.min(e.retryAfterMs, retry.maxRetryAfterMs));
        state.retries++;
        try {
          await clock.sleep(backoffDelay(attempt, retry, e.retryAfterMs, random), stopper.signal);
        } catch {
          return { ok: false, reason: 'cancelled', detail: 'run cancelled during back-off' };
        }
        continue;
      }
      state.reserved -= estCost;
      const used = reply.usage ?? { prompt_tokens: est.prompt_tokens, completion_tokens: est.completion_tokens, total_tokens: est.prompt_tokens + est.completion_tokens };
      if (price) state.spent += costOf(used, price);
      if (reply.usage && est.prompt_tokens > 0) {
        state.promptScale = Math.max(state.promptScale, (reply.usage.prompt_tokens / est.prompt_tokens) * state.promptScale);
      }
      limiter.settle(est.prompt_tokens + est.completion_tokens, used.total_tokens);
      if (reply.model) state.served.add(reply.model);
      return { ok: true, reply };
    }
    return { ok: false, reason: 'transport', detail: 'no attempt left' };
  };

  const judgeTask = async (t: Task): Promise<JudgmentRecord> => {
    const first = await exchange(t.messages);
    if (!first.ok) return failedRecord(t, model, first.reason, first.detail, null);
    const parsed = preset.parse(first.reply.content);
    let entry: CacheEntry;
    if (parsed.ok) {
      entry = newEntry(t.key, model, first.reply, null, parsed.choice, null, null, sumUsage(first.reply.usage, null), 1, clock);
    } else {
      // Re-ask once, in the same conversation, saying what was wrong.
      state.reasks++;
      const follow: ChatMessage[] = [
        ...t.messages,
        { role: 'assistant', content: first.reply.content },
        // A function replacement: `$&`, `$'` … in the reply's text are not replacement patterns.
        { role: 'user', content: preset.reask.replace(/\{\{\s*detail\s*\}\}/g, () => parsed.detail) },
      ];
      const second = await exchange(follow);
      if (!second.ok) return failedRecord(t, model, second.reason, second.detail, first.reply.content);
      const again = preset.parse(second.reply.content);
      entry = again.ok
        ? newEntry(t.key, model, second.reply, first.reply.content, again.choice, null, null, sumUsage(first.reply.usage, second.reply.usage), 2, clock)
        : newEntry(t.key, model, second.reply, first.reply.content, null, again.code, again.detail, sumUsage(first.reply.usage, second.reply.usage), 2, clock);
    }
    // Write-behind: the slot moves on to its next request while the entry is written; every write
    // is awaited before the run returns. A crash loses at most the writes in flight (re-asked next run).
    const put = cache.put(redactDeep(entry, redact)).catch((err: unknown) => {
      if (!state.cacheWarned) log(`warning: could not write the judgment cache: ${(err as Error).message}`);
      state.cacheWarned = true;
    });
    pendingPuts.add(put);
    void put.finally(() => pendingPuts.delete(put));
    return recordFromEntry(t, entry, model, false);
  };

  const progressEvery = Math.max(1, Math.floor(todo.length / 10));
  const sent = await mapPool(todo, concurrency, async (t) => {
    const r = await judgeTask(t);
    state.done++;
    if (state.done % progressEvery === 0 || state.done === todo.length) log(`judged ${state.done}/${todo.length}`);
    return r;
  });
  await Promise.all([...pendingPuts]);
  deps.signal?.removeEventListener('abort', onOuterAbort);
  if (deps.signal?.aborted) state.stopped = 'cancelled';

  // 6. Records in plan order, summary, files.
  const sentByKeyOrder = new Map<Task, JudgmentRecord>();
  todo.forEach((t, i) => sentByKeyOrder.set(t, sent[i]!));
  const records = tasks.map((t, i) => (hits[i] ? recordFromEntry(t, hits[i]!, model, true) : sentByKeyOrder.get(t)!));
  const served = [...state.served].sort();
  const stats = summariseRecords(records, statsOptions);
  if (served.some((m) => m !== model)) stats.warnings.push(`the server answered as ${served.join(', ')} for requested model ${model}`);
  const summary: JudgeSummary = {
    ...header,
    model,
    ...stats,
    requests: state.requests,
    cache_hits: tasks.length - todo.length,
    reasks: state.reasks,
    retries: state.retries,
    cost_usd: price ? state.spent : null,
    total_cost_usd: price ? state.spent + cachedCost(records, price) : null,
    estimated_cost_usd: estimatedCost,
    planned_requests: todo.length,
    served_models: served,
    stopped: state.stopped,
    dry_run: false,
  };
  await writeOutputs(options.out, records, summary, redact);
  log(summaryLine(summary));
  if (state.fatal) {
    throw new InputError(redact(`judging stopped: ${state.fatal.message}`), [
      `judgments so far are in ${join(options.out, 'judgments.jsonl')}; completed ones are cached`,
    ]);
  }
  return summary;
}

function sumUsage(a: Usage | null, b: Usage | null): Usage | null {
  if (a === null && b === null) return null;
  const z = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
  const x = a ?? z;
  const y = b ?? z;
  return {
    prompt_tokens: x.prompt_tokens + y.prompt_tokens,
    completion_tokens: x.completion_tokens + y.completion_tokens,
    total_tokens: x.total_tokens + y.total_tokens,
  };
}

function newEntry(
  key: string,
  model: string,
  reply: ChatReply,
  firstRaw: string | null,
  choice: CacheEntry['choice'],
  code: string | null,
  detail: string | null,
  usage: Usage | null,
  exchanges: number,
  clock: Clock,
): CacheEntry {
  return {
    format: 1,
    key,
    created: new Date(clock.now()).toISOString(),
    model,
    served_model: reply.model,
    raw: reply.content,
    first_raw: firstRaw,
    choice,
    parse_code: code,
    parse_detail: detail,
    usage,
    exchanges,
  };
}

function baseRecord(t: Task, model: string): Omit<JudgmentRecord, 'verdict' | 'reason' | 'detail' | 'raw' | 'first_raw' | 'served_model' | 'usage' | 'cached'> {
  return {
    pair: t.pairId,
    index: t.index,
    instruction: t.pair.instruction,
    order: t.order,
    model,
    key: t.key,
    prompt_hash: t.promptHash,
    len_a: t.lenA,
    len_b: t.lenB,
  };
}

/** USD of the cached judgments among `records`, at the usage recorded when they were made. */
function cachedCost(records: readonly JudgmentRecord[], price: Price): number {
  return records.reduce((sum, r) => sum + (r.cached && r.usage ? costOf(r.usage, price) : 0), 0);
}

function recordFromEntry(t: Task, e: CacheEntry, model: string, cached = true): JudgmentRecord {
  return {
    ...baseRecord(t, model),
    verdict: e.choice === null ? 'invalid' : verdictFromChoice(e.choice, t.order),
    reason: e.choice === null ? 'unparseable' : null,
    detail: e.choice === null ? `${e.parse_code}: ${e.parse_detail}` : null,
    raw: e.raw,
    first_raw: e.first_raw,
    served_model: e.served_model,
    usage: e.usage,
    cached,
  };
}

function failedRecord(t: Task, model: string, reason: InvalidReason, detail: string, firstRaw: string | null): JudgmentRecord {
  return { ...baseRecord(t, model), verdict: 'invalid', reason, detail, raw: null, first_raw: firstRaw, served_model: null, usage: null, cached: false };
}

/** A dry run's placeholder for a request not yet made (counted as invalid/cancelled in its stats). */
function pendingRecord(t: Task, model: string): JudgmentRecord {
  return failedRecord(t, model, 'cancelled', 'dry run: not sent', null);
}

async function judgeByRule(
  preset: RulePreset,
  pairs: readonly Pair[],
  o: { seed: number; bothOrders: boolean; model: string },
): Promise<JudgmentRecord[]> {
  const records: JudgmentRecord[] = [];
  for (const [index, pair] of pairs.entries()) {
    const pairId = pairHash(pair.instruction, pair.outputA, pair.outputB);
    for (const order of ordersFor(o.seed, pair.instruction, o.bothOrders)) {
      const base = {
        pair: pairId,
        index,
        instruction: pair.instruction,
        order,
        model: o.model,
        key: null,
        prompt_hash: null,
        len_a: charLength(pair.outputA),
        len_b: charLength(pair.outputB),
        first_raw: null,
        served_model: null,
        usage: null,
        cached: false,
      };
      try {
        const v = await preset.judge({ instruction: pair.instruction, outputA: pair.outputA, outputB: pair.outputB });
        if (v === 'a' || v === 'b' || v === 'tie') records.push({ ...base, verdict: v, reason: null, detail: null, raw: v });
        else records.push({ ...base, verdict: 'invalid', reason: 'rule', detail: `rule returned ${JSON.stringify(v)}, not 'a' | 'b' | 'tie'`, raw: null });
      } catch (err) {
        records.push({ ...base, verdict: 'invalid', reason: 'rule', detail: `rule threw: ${(err as Error)?.message ?? String(err)}`, raw: null });
      }
    }
  }
  return records;
}

async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, text, 'utf8');
  await rename(tmp, path);
}

/** `--out` is (or can be made) a writable folder; an InputError naming it otherwise. */
async function ensureOutDir(out: string): Promise<void> {
  try {
    await mkdir(out, { recursive: true });
    if (!(await stat(out)).isDirectory()) throw new Error('not a directory');
    await access(out, fsConstants.W_OK);
  } catch (cause) {
    throw new InputError(`--out ${out}: cannot write judgments there`, [(cause as Error).message, 'choose a folder you can write (it is created when missing)'], { cause });
  }
}

async function writeOutputs(out: string, records: readonly JudgmentRecord[], summary: JudgeSummary, redact: Redactor): Promise<void> {
  try {
    await mkdir(out, { recursive: true });
    const lines = records.map((r) => JSON.stringify(redactDeep(r, redact))).join('\n');
    await writeAtomic(join(out, 'judgments.jsonl'), lines.length > 0 ? `${lines}\n` : '');
    await writeAtomic(join(out, 'summary.json'), `${JSON.stringify(redactDeep(summary, redact), null, 2)}\n`);
  } catch (cause) {
    throw new InputError(redact(`--out ${out}: cannot write judgments.jsonl / summary.json`), [
      redact((cause as Error).message),
      'the judged pairs are cached: rerun with a writable --out to write them without new requests',
    ], { cause });
  }
}

const pct = (x: number | null) => (x === null ? 'n/a' : `${(x * 100).toFixed(1)}%`);

/** One line for people. */
export function summaryLine(s: JudgeSummary): string {
  const ci = s.win_rate_ci ? ` [${pct(s.win_rate_ci[0])}, ${pct(s.win_rate_ci[1])}]` : '';
  return (
    `${s.a.generator} vs ${s.b.generator}: ${s.n_pairs} pairs, ${s.wins} wins, ${s.losses} losses, ${s.ties} ties, ${s.invalid} invalid; ` +
    `win rate ${pct(s.win_rate)}${ci}, LC ${pct(s.lc_win_rate)}, P(first) ${pct(s.p_first)}, P(longer) ${pct(s.p_longer)}` +
    (s.order_inconsistent !== null ? `, ${s.order_inconsistent} order-inconsistent` : '') +
    `; ${s.requests} requests, ${s.cache_hits} cached, cost ${s.cost_usd === null ? 'unknown' : `$${s.cost_usd.toFixed(4)}`}` +
    (s.cache_hits > 0 && s.total_cost_usd !== null ? ` ($${s.total_cost_usd.toFixed(4)} with the cached judgments)` : '') +
    (s.stopped ? `; stopped early (${s.stopped})` : '')
  );
}
