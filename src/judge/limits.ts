/**
 * Throughput and fault limits: a worker pool (concurrency), requests/min and tokens/min token
 * buckets with a shared cool-down after a 429, and exponential back-off with jitter that honours
 * Retry-After. Every loop here is bounded in count, and every wait is a single finite sleep.
 * The clock is injected so tests can run it on fake time.
 */

export interface Clock {
  now(): number;
  /** Resolves after `ms`, or rejects with the signal's reason when aborted. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason ?? new Error('aborted'));
        return;
      }
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal?.reason ?? new Error('aborted'));
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, Math.max(0, ms));
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
};

/**
 * A token bucket refilled continuously at perMinute/60 s, holding at most `capacity` tokens — by
 * default ten seconds' worth, so a burst cannot spend a whole minute's allowance at once (servers
 * often enforce per-minute limits over shorter windows).
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  readonly capacity: number;
  constructor(
    readonly perMinute: number,
    private readonly clock: Clock,
    capacity?: number,
  ) {
    this.capacity = capacity ?? Math.max(1, perMinute / 6);
    this.tokens = this.capacity;
    this.last = clock.now();
  }
  private refill(): void {
    const now = this.clock.now();
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.last) * this.perMinute) / 60_000);
    this.last = now;
  }
  /** ms until `n` tokens are there (0 = now). A request larger than the bucket waits for a full bucket. */
  waitFor(n: number): number {
    this.refill();
    const need = Math.min(n, this.capacity);
    return this.tokens >= need ? 0 : Math.ceil(((need - this.tokens) * 60_000) / this.perMinute);
  }
  take(n: number): void {
    this.refill();
    this.tokens -= n; // may go negative for an oversize request: later requests repay it
  }
  /** Gives back (or charges) the difference between an estimate and what was used. */
  adjust(delta: number): void {
    this.refill();
    this.tokens = Math.min(this.capacity, this.tokens + delta);
  }
}

export interface RateLimits {
  /** Requests per minute (unlimited when absent). */
  rpm?: number | undefined;
  /** Tokens per minute, prompt + completion (unlimited when absent). */
  tpm?: number | undefined;
}

const MAX_WAIT_ROUNDS = 10_000;

/** Requests/min and tokens/min limits plus a shared cool-down, granted first come first served. */
export class RateLimiter {
  private readonly requests: TokenBucket | undefined;
  private readonly tokens: TokenBucket | undefined;
  private cooldownUntil = 0;
  private tail: Promise<void> = Promise.resolve();
  constructor(
    limits: RateLimits,
    private readonly clock: Clock = realClock,
  ) {
    this.requests = limits.rpm !== undefined && limits.rpm > 0 ? new TokenBucket(limits.rpm, clock) : undefined;
    this.tokens = limits.tpm !== undefined && limits.tpm > 0 ? new TokenBucket(limits.tpm, clock) : undefined;
  }

  /** Waits until one request of about `tokens` tokens may be sent, then takes it. */
  acquire(tokens: number, signal?: AbortSignal): Promise<void> {
    if (this.requests === undefined && this.tokens === undefined && this.clock.now() >= this.cooldownUntil) {
      return Promise.resolve(); // nothing to wait for: no queueing overhead
    }
    const turn = this.tail.then(() => this.grant(tokens, signal));
    this.tail = turn.catch(() => undefined);
    return turn;
  }

  private async grant(tokens: number, signal?: AbortSignal): Promise<void> {
    for (let round = 0; round < MAX_WAIT_ROUNDS; round++) {
      if (signal?.aborted) throw signal.reason ?? new Error('aborted');
      const wait = Math.max(
        this.cooldownUntil - this.clock.now(),
        this.requests?.waitFor(1) ?? 0,
        this.tokens?.waitFor(tokens) ?? 0,
      );
      if (wait <= 0) {
        this.requests?.take(1);
        this.tokens?.take(tokens);
        return;
      }
      await this.clock.sleep(wait, signal);
    }
    throw new Error('rate limiter: gave up waiting (internal error)');
  }

  /** After a 429: nobody sends for `ms` (the longest pause asked for wins). */
  pauseFor(ms: number): void {
    this.cooldownUntil = Math.max(this.cooldownUntil, this.clock.now() + ms);
  }

  /** Corrects the tokens/min bucket once the real usage is known. */
  settle(estimatedTokens: number, usedTokens: number): void {
    this.tokens?.adjust(estimatedTokens - usedTokens);
  }
}

export interface RetryPolicy {
  /** HTTP attempts per request, first included (default 6: the seed's 5 retries). */
  maxAttempts: number;
  /** First back-off in ms (default 1000); doubles each retry. */
  baseMs: number;
  /** Back-off cap in ms (default 60 000). */
  maxMs: number;
  /** Longest Retry-After honoured, in ms (default 120 000); longer ones are cut to this. */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 6, baseMs: 1000, maxMs: 60_000, maxRetryAfterMs: 120_000 };

/**
 * Delay before retry number `retry` (1 = first retry): "equal jitter" exponential back-off,
 * d = min(maxMs, baseMs·2^(retry−1)), delay ∈ [d/2, d); when the server sent Retry-After, the delay
 * is at least that (capped at maxRetryAfterMs) plus up to 10 % jitter so waiting workers do not all
 * wake at once.
 */
export function backoffDelay(retry: number, policy: RetryPolicy, retryAfterMs?: number, random: () => number = Math.random): number {
  const d = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, retry - 1));
  const jittered = d / 2 + (random() * d) / 2;
  if (retryAfterMs === undefined) return jittered;
  const ra = Math.min(retryAfterMs, policy.maxRetryAfterMs);
  return Math.max(jittered, ra + random() * Math.min(ra * 0.1, 1000));
}

/**
 * Runs `fn` over `items` with at most `concurrency` in flight; results keep the items' order.
 * If `fn` throws, no new item starts and the first error is rethrown once the running ones end.
 */
export async function mapPool<T, R>(items: readonly T[], concurrency: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failed: { error: unknown } | undefined;
  const worker = async () => {
    while (next < items.length && failed === undefined) {
      const i = next++;
      try {
        results[i] = await fn(items[i] as T, i);
      } catch (error) {
        failed ??= { error };
      }
    }
  };
  const n = Math.max(1, Math.min(concurrency, items.length));
  await Promise.all(Array.from({ length: n }, worker));
  if (failed !== undefined) throw failed.error;
  return results;
}
