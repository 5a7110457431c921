/**
 * The judge's HTTP client: the ONLY module that imports `openai`.
 *
 * `JudgeClient` is the seam: `openAIClient()` talks to any OpenAI-compatible server through the
 * official SDK (with the SDK's own retries off — limits.ts owns retries, so `requests` counts every
 * HTTP attempt); tests and benchmarks inject fakes. Every failure becomes a `TransportError` that says
 * whether it is worth retrying and carries the server's Retry-After, with secrets redacted.
 */
import OpenAI from 'openai';
import { z } from 'zod';
import type { ChatMessage } from './prompt.js';
import type { Usage } from './cache.js';
import type { Redactor } from './secrets.js';

export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  temperature: number;
  max_tokens: number;
}

export interface ChatReply {
  /** The reply text ('' when the server sent no content). */
  content: string;
  /** Model name the server reported, if any. */
  model: string | null;
  usage: Usage | null;
}

export interface RequestOptions {
  /** Per-request timeout in ms. */
  timeoutMs: number;
  signal?: AbortSignal | undefined;
}

export interface JudgeClient {
  complete(request: ChatRequest, options: RequestOptions): Promise<ChatReply>;
}

export type TransportKind =
  | 'timeout'
  | 'rate-limit' // 429
  | 'server' // 5xx, 408, 409
  | 'connection'
  | 'bad-response' // a 200 whose body is not a chat completion
  | 'auth' // 401, 403: stops the run
  | 'not-found' // 404 (unknown model or wrong base URL): stops the run
  | 'client' // other 4xx: this request only, not retried
  | 'aborted';

const RETRYABLE: ReadonlySet<TransportKind> = new Set(['timeout', 'rate-limit', 'server', 'connection', 'bad-response']);
const FATAL: ReadonlySet<TransportKind> = new Set(['auth', 'not-found']);

export class TransportError extends Error {
  readonly kind: TransportKind;
  readonly status: number | undefined;
  /** Server's Retry-After (or retry-after-ms) in ms, when it sent one. */
  readonly retryAfterMs: number | undefined;
  constructor(kind: TransportKind, message: string, options: { status?: number; retryAfterMs?: number; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'TransportError';
    this.kind = kind;
    this.status = options.status;
    this.retryAfterMs = options.retryAfterMs;
  }
  get retryable(): boolean {
    return RETRYABLE.has(this.kind);
  }
  /** Failures that will not get better for the next request either (bad key, unknown model). */
  get fatal(): boolean {
    return FATAL.has(this.kind);
  }
}

/**
 * Parses `retry-after-ms` (OpenAI) or `retry-after` (seconds or an HTTP date) into ms.
 * Returns undefined when absent or unreadable.
 */
export function parseRetryAfter(
  header: (name: string) => string | null | undefined,
  now: number = Date.now(),
): number | undefined {
  const ms = header('retry-after-ms');
  if (ms != null && ms.trim() !== '' && Number.isFinite(Number(ms))) return Math.max(0, Number(ms));
  const ra = header('retry-after');
  if (ra == null || ra.trim() === '') return undefined;
  if (/^\s*\d+(\.\d+)?\s*$/.test(ra)) return Math.max(0, Number(ra) * 1000);
  const date = Date.parse(ra);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

const completionSchema = z.object({
  model: z.string().optional(),
  choices: z
    .array(z.object({ message: z.object({ content: z.string().nullable().optional() }).passthrough() }).passthrough())
    .min(1),
  usage: z
    .object({
      prompt_tokens: z.number().nonnegative(),
      completion_tokens: z.number().nonnegative(),
      total_tokens: z.number().nonnegative().optional(),
    })
    .passthrough()
    .nullable()
    .optional(),
});

/** Turns whatever the SDK threw into a TransportError. */
export function classifyError(err: unknown, redact: Redactor): TransportError {
  if (err instanceof TransportError) return err;
  const msg = redact(err instanceof Error ? err.message : String(err));
  if (err instanceof OpenAI.APIUserAbortError) return new TransportError('aborted', 'request aborted');
  if (err instanceof OpenAI.APIConnectionTimeoutError) return new TransportError('timeout', 'request timed out');
  if (err instanceof OpenAI.APIConnectionError) return new TransportError('connection', `connection failed: ${msg}`);
  if (err instanceof OpenAI.APIError) {
    const status = err.status;
    const retryAfterMs = err.headers ? parseRetryAfter((n) => err.headers?.get(n)) : undefined;
    const opts = { status, retryAfterMs };
    if (status === 429) return new TransportError('rate-limit', `429 rate limited: ${msg}`, opts);
    if (status === 401 || status === 403) {
      return new TransportError('auth', `${status}: the server refused the credentials (${msg}); check OPENAI_API_KEY and OPENAI_BASE_URL`, opts);
    }
    if (status === 404) {
      return new TransportError('not-found', `404: ${msg}; check the model name and OPENAI_BASE_URL`, opts);
    }
    if (status !== undefined && (status >= 500 || status === 408 || status === 409)) {
      return new TransportError('server', `${status} server error: ${msg}`, opts);
    }
    return new TransportError('client', `${status ?? '?'}: ${msg}`, opts);
  }
  // A 200 whose JSON body does not parse surfaces as a SyntaxError from the SDK.
  if (err instanceof SyntaxError) return new TransportError('bad-response', `unreadable response body: ${msg}`);
  return new TransportError('connection', msg);
}

export interface OpenAIClientOptions {
  apiKey: string;
  /** Defaults to https://api.openai.com/v1; `OPENAI_BASE_URL` is passed here by the caller. */
  baseURL?: string | undefined;
  redact: Redactor;
}

/** A JudgeClient over the official SDK. */
export function openAIClient(options: OpenAIClientOptions): JudgeClient {
  const sdk = new OpenAI({
    apiKey: options.apiKey,
    baseURL: options.baseURL && options.baseURL.length > 0 ? options.baseURL : 'https://api.openai.com/v1',
    maxRetries: 0,
  });
  return {
    async complete(request, { timeoutMs, signal }) {
      // The SDK never removes the listener it adds to the signal it is given, so it gets a
      // per-request child signal; the long-lived run signal keeps one listener per request in flight.
      const child = new AbortController();
      const onAbort = () => child.abort(signal?.reason);
      if (signal?.aborted) child.abort(signal.reason);
      else signal?.addEventListener('abort', onAbort, { once: true });
      let body: unknown;
      try {
        body = await sdk.chat.completions.create(
          {
            model: request.model,
            messages: request.messages,
            temperature: request.temperature,
            max_tokens: request.max_tokens,
          },
          { timeout: timeoutMs, maxRetries: 0, signal: child.signal },
        );
      } catch (err) {
        throw classifyError(err, options.redact);
      } finally {
        signal?.removeEventListener('abort', onAbort);
      }
      const parsed = completionSchema.safeParse(body);
      if (!parsed.success) {
        const preview = typeof body === 'string' ? body.slice(0, 80) : JSON.stringify(body ?? null).slice(0, 80);
        throw new TransportError('bad-response', `response is not a chat completion: ${options.redact(preview)}`);
      }
      const c = parsed.data;
      const u = c.usage;
      return {
        content: c.choices[0]?.message.content ?? '',
        model: c.model ?? null,
        usage: u
          ? { prompt_tokens: u.prompt_tokens, completion_tokens: u.completion_tokens, total_tokens: u.total_tokens ?? u.prompt_tokens + u.completion_tokens }
          : null,
      };
    },
  };
}
