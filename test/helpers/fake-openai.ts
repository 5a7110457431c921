/**
 * A scriptable OpenAI-compatible server for tests and benchmarks: node:http on 127.0.0.1, a random
 * port, POST /v1/chat/completions (with usage). The real `openai` SDK talks real HTTP to it.
 *
 * Each request is answered by `handler(req)` (default: a fixed valid reply), which may return a reply
 * string or a scripted action: latency, a status (429 with Retry-After, 500, …), a hang past the
 * client's timeout, a garbage JSON body, empty content. The server counts requests and tracks the
 * peak number in flight. `close()` ends hanging connections, so nothing outlives a test.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeChatBody {
  model: string;
  messages: Array<{ role: string; content: string }>;
  temperature?: number;
  max_tokens?: number;
  [k: string]: unknown;
}

export interface FakeRequest {
  /** 0-based arrival index. */
  index: number;
  body: FakeChatBody;
  /** The last user message (the rendered prompt, or the re-ask). */
  prompt: string;
  /** Number of earlier requests with exactly the same messages (0 on the first). */
  repeat: number;
  headers: IncomingMessage['headers'];
}

export type FakeAction =
  | { kind: 'reply'; content: string | null; latencyMs?: number; usage?: { prompt_tokens: number; completion_tokens: number } | null; model?: string }
  | { kind: 'status'; status: number; retryAfter?: string; retryAfterMs?: string; latencyMs?: number; body?: unknown }
  | { kind: 'hang' }
  | { kind: 'garbage'; latencyMs?: number }
  | { kind: 'non-json'; latencyMs?: number };

export type FakeHandler = (req: FakeRequest) => FakeAction | string;

export interface FakeOpenAIOptions {
  /** Default latency of every answer in ms (default 0). */
  latencyMs?: number;
  handler?: FakeHandler;
}

export interface FakeOpenAI {
  /** Base URL for the SDK: http://127.0.0.1:<port>/v1 */
  baseURL: string;
  readonly requests: FakeRequest[];
  /** Requests received so far. */
  count(): number;
  /** Peak of requests in flight at once. */
  maxInFlight(): number;
  setHandler(handler: FakeHandler): void;
  close(): Promise<void>;
}

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
};

export async function startFakeOpenAI(options: FakeOpenAIOptions = {}): Promise<FakeOpenAI> {
  let handler: FakeHandler = options.handler ?? (() => 'Comparison: A is better.\nMore helpful: A');
  const defaultLatency = options.latencyMs ?? 0;
  const requests: FakeRequest[] = [];
  const seen = new Map<string, number>();
  const timers = new Set<NodeJS.Timeout>();
  let inFlight = 0;
  let peak = 0;

  const later = (ms: number, fn: () => void) => {
    if (ms <= 0) {
      fn();
      return;
    }
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || !req.url?.endsWith('/chat/completions')) {
        json(res, 404, { error: { message: `no route ${req.method} ${req.url}`, type: 'not_found' } });
        return;
      }
      let body: FakeChatBody;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as FakeChatBody;
      } catch {
        json(res, 400, { error: { message: 'bad JSON', type: 'invalid_request_error' } });
        return;
      }
      const sig = JSON.stringify(body.messages);
      const repeat = seen.get(sig) ?? 0;
      seen.set(sig, repeat + 1);
      const users = body.messages.filter((m) => m.role === 'user');
      const request: FakeRequest = { index: requests.length, body, prompt: users[users.length - 1]?.content ?? '', repeat, headers: req.headers };
      requests.push(request);
      inFlight++;
      peak = Math.max(peak, inFlight);
      let finished = false;
      const done = () => {
        if (!finished) {
          finished = true;
          inFlight--;
        }
      };
      res.on('close', done);
      const result = handler(request);
      const action: FakeAction = typeof result === 'string' ? { kind: 'reply', content: result } : result;
      if (action.kind === 'hang') return; // never answer; the client times out, close() cleans up
      const latency = action.latencyMs ?? defaultLatency;
      later(latency, () => {
        if (res.destroyed) return;
        if (action.kind === 'status') {
          const headers: Record<string, string> = {};
          if (action.retryAfter !== undefined) headers['retry-after'] = action.retryAfter;
          if (action.retryAfterMs !== undefined) headers['retry-after-ms'] = action.retryAfterMs;
          json(res, action.status, action.body ?? { error: { message: `scripted ${action.status}`, type: 'server_error' } }, headers);
        } else if (action.kind === 'garbage') {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end('{"id": "chatcmpl-x", "choices": [ {"mess');
        } else if (action.kind === 'non-json') {
          res.writeHead(200, { 'content-type': 'text/html' });
          res.end('<html>gateway says hello</html>');
        } else {
          const content = action.content;
          const usage =
            action.usage === null
              ? undefined
              : (action.usage ?? {
                  prompt_tokens: Math.ceil(JSON.stringify(body.messages).length / 4),
                  completion_tokens: Math.max(1, Math.ceil((content ?? '').length / 4)),
                });
          json(res, 200, {
            id: `chatcmpl-${request.index}`,
            object: 'chat.completion',
            created: 0,
            model: action.model ?? body.model,
            choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
            ...(usage ? { usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens } } : {}),
          });
        }
      });
    });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    baseURL: `http://127.0.0.1:${port}/v1`,
    requests,
    count: () => requests.length,
    maxInFlight: () => peak,
    setHandler(h) {
      handler = h;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const t of timers) clearTimeout(t);
        timers.clear();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
