/**
 * One call of a worker façade function (generate, rollout, score, …) from the CLI process, through
 * a runner process (the CLI never hosts the bridge). For a sweep's eval stage the executor reuses
 * its warm runners instead.
 */
import { fork } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { DpoSweepError } from '../errors.js';
import type { FromRunner, ToRunner, WorkerEvent } from './events.js';
import { runnerEntry } from './executor.js';

export class WorkerCallError extends DpoSweepError {
  readonly pythonType: string | undefined;
  readonly traceback: string | undefined;
  constructor(message: string, pythonType?: string, traceback?: string) {
    super(pythonType === 'DataError' || pythonType === 'SpecError' ? 'bad-input' : 'worker', message);
    this.pythonType = pythonType;
    this.traceback = traceback;
  }
}

export interface WorkerCallOptions {
  python: string;
  /** Python output of the call goes here. */
  logPath: string;
  /** The runner process's own output (default: next to logPath). */
  runnerLog?: string;
  onEvent?: (event: WorkerEvent) => void;
  signal?: AbortSignal;
  timeoutMs?: number;
  env?: Record<string, string>;
}

export async function callWorker<T = unknown>(fn: string, request: unknown, opts: WorkerCallOptions): Promise<T> {
  mkdirSync(dirname(opts.logPath), { recursive: true });
  const fd = openSync(opts.runnerLog ?? `${opts.logPath}.runner`, 'a');
  const entry = runnerEntry();
  const child = fork(entry.path, [], {
    execArgv: entry.execArgv,
    stdio: ['ignore', fd, fd, 'ipc'],
    detached: true,
    env: { ...process.env, ...opts.env, DPO_SWEEP_RUNNER_PYTHON: opts.python },
  });
  closeSync(fd);
  const send = (m: ToRunner) => child.connected && child.send(m);
  const onAbort = () => send({ type: 'stop' });
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await new Promise<T>((resolve, reject) => {
      child.on('message', (raw) => {
        const m = raw as FromRunner;
        if (m.type === 'call-event') opts.onEvent?.(m.event);
        else if (m.type === 'call-result') {
          if (m.ok) resolve(m.result as T);
          else reject(new WorkerCallError(m.error.message, m.error.pythonType, m.error.traceback));
        } else if (m.type === 'fatal') reject(new WorkerCallError(`the runner failed: ${m.message}`));
      });
      child.on('exit', (code, signal) =>
        reject(new WorkerCallError(`the runner process ${signal ? `was killed by ${signal}` : `exited with code ${code}`} (see ${opts.logPath})`)),
      );
      send({ type: 'call', callId: '1', fn, request, logPath: opts.logPath, ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}) });
    });
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    if (child.exitCode === null && child.signalCode === null) {
      send({ type: 'exit' });
      await Promise.race([new Promise((r) => child.once('exit', r)), new Promise((r) => setTimeout(r, 5000))]);
      if (child.exitCode === null && child.signalCode === null && child.pid) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
  }
}

/**
 * Several calls through one runner process (one warm Python worker): the eval stage generates for
 * every run of a sweep without paying the library imports each time.
 */
export class WorkerSession {
  private child: ReturnType<typeof fork> | undefined;
  private next = 0;
  private readonly pending = new Map<string, { resolve(v: unknown): void; reject(e: Error): void; onEvent?: ((e: WorkerEvent) => void) | undefined }>();

  constructor(private readonly opts: { python: string; runnerLog: string; env?: Record<string, string> }) {}

  private start() {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) return this.child;
    mkdirSync(dirname(this.opts.runnerLog), { recursive: true });
    const fd = openSync(this.opts.runnerLog, 'a');
    const entry = runnerEntry();
    const child = fork(entry.path, [], {
      execArgv: entry.execArgv,
      stdio: ['ignore', fd, fd, 'ipc'],
      detached: true,
      env: { ...process.env, ...this.opts.env, DPO_SWEEP_RUNNER_PYTHON: this.opts.python },
    });
    closeSync(fd);
    child.on('message', (raw) => {
      const m = raw as FromRunner;
      if (m.type === 'call-event') this.pending.get(m.callId)?.onEvent?.(m.event);
      else if (m.type === 'call-result') {
        const p = this.pending.get(m.callId);
        this.pending.delete(m.callId);
        if (!p) return;
        if (m.ok) p.resolve(m.result);
        else p.reject(new WorkerCallError(m.error.message, m.error.pythonType, m.error.traceback));
      }
    });
    child.on('exit', (code, signal) => {
      const error = new WorkerCallError(`the runner process ${signal ? `was killed by ${signal}` : `exited with code ${code}`} (see ${this.opts.runnerLog})`);
      for (const p of this.pending.values()) p.reject(error);
      this.pending.clear();
    });
    this.child = child;
    return child;
  }

  call<T = unknown>(fn: string, request: unknown, opts: { logPath: string; onEvent?: (e: WorkerEvent) => void; signal?: AbortSignal }): Promise<T> {
    const child = this.start();
    const callId = String(++this.next);
    const onAbort = () => child.connected && child.send({ type: 'stop' } satisfies ToRunner);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    return new Promise<T>((resolve, reject) => {
      this.pending.set(callId, { resolve: resolve as (v: unknown) => void, reject, onEvent: opts.onEvent });
      child.send({ type: 'call', callId, fn, request, logPath: opts.logPath } satisfies ToRunner);
    }).finally(() => opts.signal?.removeEventListener('abort', onAbort));
  }

  async close(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    if (child.connected) child.send({ type: 'exit' } satisfies ToRunner);
    await Promise.race([new Promise((r) => child.once('exit', r)), new Promise((r) => setTimeout(r, 5000))]);
    if (child.exitCode === null && child.signalCode === null && child.pid) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
}
