/**
 * The hardened pythonia bridge: the ONLY module that imports pythonia.
 *
 * pythonia runs one Python process per Node process, spawns it when the module loads, has a hidden
 * 100 s timeout, hangs forever when Python dies, crashes Node on a NaN and lets Python write to the
 * terminal (measured: docs/bridge.md). This module makes it safe:
 *
 * - pythonia is imported lazily, after PYTHON_BIN / REQ_TIMEOUT=0 / PYTHONPATH are set;
 * - every call goes through the Python call host (`dpo_sweep_worker.host.invoke`), which returns
 *   JSON text only, catches BaseException, sends fds 1/2 to the call's log and watches its parent;
 * - every call races the Python process's `exit` event, so a dead worker rejects at once with its
 *   exit code or signal, and the next call starts a fresh worker;
 * - timeouts are explicit per call, cancellation is an AbortSignal; both ask Python to stop first
 *   (SIGTERM: the worker checkpoints and returns) and kill it after a grace period.
 */
import { constants as fsConstants } from 'node:fs';
import { access } from 'node:fs/promises';
import type { ChildProcess } from 'node:child_process';
import { delimiter } from 'node:path';
import {
  BridgeStartError,
  CallAbortedError,
  CallTimeoutError,
  PythonError,
  WorkerExitError,
  type PythonFailure,
} from './errors.js';

interface PythoniaModule {
  python: ((module: string) => Promise<PyHost>) & { exit(): void; setFastMode(on: boolean): void };
  com: {
    proc: ChildProcess | null;
    handlers: Record<string, unknown>;
    register(event: string, handler: (message: unknown) => unknown): void;
  };
}

/** pythonia's internal Bridge singleton (`globalThis.__pythonBridge`), for re-wiring after a restart. */
interface PythoniaBridgeInternals {
  jsi: { onMessage(message: unknown): unknown };
  freeable: unknown[];
}

/** The Python call host as pythonia exposes it (a proxy; we only ever get strings back). */
interface PyHost {
  invoke(target: string, fn: string, request: string, logPath: string | null, onEvent: unknown): Promise<string>;
  ping(): Promise<string>;
}

export interface BridgeOptions {
  /** Absolute path of the Python interpreter (a venv's `bin/python`). */
  python: string;
  /** Folders prepended to PYTHONPATH (the package's `py/`, so the host and worker match this code). */
  pythonPath?: string[];
  /** Extra environment for the Python process. */
  env?: Record<string, string | undefined>;
  /** After a timeout or abort, how long Python gets to stop by itself before SIGKILL (ms, default 30 000). */
  gracePeriodMs?: number;
}

export interface CallOptions {
  /** Wall-clock limit for this call in ms; none by default (pythonia's hidden 100 s limit is off). */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Python's stdout/stderr (fd level) go here during the call. */
  logPath?: string;
  /** Progress events emitted by the Python function (`host.emit`), already JSON-decoded. */
  onEvent?: (event: unknown) => void;
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

let pythonia: PythoniaModule | undefined;
let active: PythonBridge | undefined;

async function loadPythonia(): Promise<PythoniaModule> {
  if (!pythonia) {
    const mod = (await import('pythonia')) as unknown as { default?: PythoniaModule } & PythoniaModule;
    pythonia = (mod.default ?? mod) as PythoniaModule;
  }
  return pythonia;
}

const HOST_MODULE = 'dpo_sweep_worker.host';

/**
 * One Python worker behind pythonia. pythonia allows one per Node process, so `PythonBridge.open`
 * refuses a second live bridge; the runner process model (one runner per slot) gives parallelism.
 */
export class PythonBridge {
  private readonly opts: Required<Pick<BridgeOptions, 'gracePeriodMs'>> & BridgeOptions;
  private host: PyHost | undefined;
  private proc: ChildProcess | undefined;
  private exited: Promise<Exit> | undefined;
  private tail: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(opts: BridgeOptions) {
    this.opts = { gracePeriodMs: 30_000, ...opts };
  }

  static open(opts: BridgeOptions): PythonBridge {
    if (active && !active.closed) {
      throw new BridgeStartError('a Python bridge is already open in this process (pythonia allows one)');
    }
    active = new PythonBridge(opts);
    return active;
  }

  /** The live Python process id, starting the worker if needed. */
  async pid(): Promise<number> {
    await this.ensureStarted();
    return this.proc!.pid!;
  }

  /**
   * Call `fn(request)` in Python module `target` (a module name or an absolute `.py` path).
   * Calls run one at a time, in order; a call's timeout counts from when it starts running.
   */
  call<T = unknown>(target: string, fn: string, request: unknown, options: CallOptions = {}): Promise<T> {
    const run = this.tail.then(
      () => this.callNow<T>(target, fn, request, options),
      () => this.callNow<T>(target, fn, request, options),
    );
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Stop the Python process (idle: SIGTERM exits it at once) and release pythonia. */
  async stop(): Promise<void> {
    this.closed = true;
    const proc = this.proc;
    if (proc && this.exited && proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      const done = await raceTimeout(this.exited, 3_000);
      if (!done) {
        proc.kill('SIGKILL');
        await raceTimeout(this.exited, 3_000);
      }
    }
    this.release();
    if (active === this) active = undefined;
  }

  private async callNow<T>(target: string, fn: string, request: unknown, options: CallOptions): Promise<T> {
    const label = `${fn}()`;
    if (this.closed) throw new BridgeStartError(`the bridge is stopped; cannot run ${label}`);
    if (options.signal?.aborted) throw new CallAbortedError(label, options.signal.reason);
    const host = await this.ensureStarted();
    const proc = this.proc!;
    const exited = this.exited!;

    const onEvent = options.onEvent
      ? (text: string) => {
          try {
            options.onEvent!(JSON.parse(text));
          } catch {
            // A consumer's bug must never reach into the Python call.
          }
        }
      : null;

    const pending = host.invoke(target, fn, JSON.stringify(request ?? {}), options.logPath ?? null, onEvent);
    type Outcome =
      | { kind: 'reply'; text: string }
      | { kind: 'exit'; exit: Exit }
      | { kind: 'timeout' }
      | { kind: 'abort' }
      | { kind: 'bridge-error'; error: unknown };
    const cleanups: Array<() => void> = [];
    const racers: Array<Promise<Outcome>> = [
      pending.then(
        (text): Outcome => ({ kind: 'reply', text }),
        (error): Outcome => ({ kind: 'bridge-error', error }),
      ),
      exited.then((exit): Outcome => ({ kind: 'exit', exit })),
    ];
    if (options.timeoutMs !== undefined) {
      racers.push(
        new Promise<Outcome>((resolve) => {
          const t = setTimeout(() => resolve({ kind: 'timeout' }), options.timeoutMs);
          cleanups.push(() => clearTimeout(t));
        }),
      );
    }
    if (options.signal) {
      const signal = options.signal;
      racers.push(
        new Promise<Outcome>((resolve) => {
          const onAbort = () => resolve({ kind: 'abort' });
          signal.addEventListener('abort', onAbort, { once: true });
          cleanups.push(() => signal.removeEventListener('abort', onAbort));
        }),
      );
    }
    let outcome: Outcome;
    try {
      outcome = await Promise.race(racers);
    } finally {
      for (const c of cleanups) c();
    }

    switch (outcome.kind) {
      case 'reply':
        return decodeReply<T>(outcome.text, label);
      case 'exit':
        this.release();
        throw new WorkerExitError(outcome.exit.code, outcome.exit.signal, label);
      case 'bridge-error':
        // pythonia itself failed (its errors have an empty message); the host never raises.
        throw new BridgeStartError(`the bridge failed during ${label}: ${describePythoniaError(outcome.error)}`, {
          cause: outcome.error,
        });
      case 'timeout':
      case 'abort': {
        const partial = await this.stopCall(proc, exited, pending, label);
        if (outcome.kind === 'timeout') throw new CallTimeoutError(options.timeoutMs!, label, partial);
        throw new CallAbortedError(label, options.signal?.reason, partial);
      }
    }
  }

  /** Ask the running call to stop (SIGTERM), give it the grace period, then kill the worker. */
  private async stopCall(proc: ChildProcess, exited: Promise<Exit>, pending: Promise<string>, label: string) {
    proc.kill('SIGTERM');
    const graceful = await Promise.race([
      pending.then(
        (text) => ({ text }),
        () => undefined,
      ),
      exited.then(() => undefined),
      sleep(this.opts.gracePeriodMs).then(() => undefined),
    ]);
    if (graceful) {
      try {
        return decodeReply(graceful.text, label);
      } catch (error) {
        return { error: (error as Error).message };
      }
    }
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await raceTimeout(exited, 5_000);
    this.release();
    return undefined;
  }

  private async ensureStarted(): Promise<PyHost> {
    if (this.host && this.proc && this.proc.exitCode === null && this.proc.signalCode === null) return this.host;
    if (this.closed) throw new BridgeStartError('the bridge is stopped');
    try {
      await access(this.opts.python, fsConstants.X_OK);
    } catch (cause) {
      throw new BridgeStartError(
        `Python interpreter not found or not executable: ${this.opts.python} (run \`dpo-sweep setup\`, or set DPO_SWEEP_PYTHON)`,
        { cause },
      );
    }
    process.env.PYTHON_BIN = this.opts.python;
    process.env.REQ_TIMEOUT = '0';
    process.env.PYTHONUNBUFFERED = '1';
    process.env.PYTHONDONTWRITEBYTECODE ??= '1';
    const paths = [...(this.opts.pythonPath ?? []), ...(process.env.PYTHONPATH ? [process.env.PYTHONPATH] : [])];
    if (paths.length) process.env.PYTHONPATH = [...new Set(paths.join(delimiter).split(delimiter))].join(delimiter);
    for (const [k, v] of Object.entries(this.opts.env ?? {})) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }

    const mod = await loadPythonia();
    // `python()` restarts the process when a previous one was released (com.proc === null).
    const hostPromise = mod.python(HOST_MODULE);
    const proc = mod.com.proc;
    if (!proc) throw new BridgeStartError('pythonia did not start a Python process');
    rewireAfterRestart(mod);
    proc.on('error', () => undefined); // spawn errors surface as an exit below
    const exited = new Promise<Exit>((resolve) => {
      if (proc.exitCode !== null || proc.signalCode !== null) resolve({ code: proc.exitCode, signal: proc.signalCode });
      else proc.once('exit', (code, signal) => resolve({ code, signal }));
    });
    this.proc = proc;
    this.exited = exited;

    const first = await Promise.race([
      hostPromise.then(
        (host) => ({ host }),
        (error: unknown) => ({ error }),
      ),
      exited.then((exit) => ({ exit })),
    ]);
    if ('exit' in first) {
      this.release();
      const how = first.exit.signal ? `killed by ${first.exit.signal}` : `exit code ${first.exit.code}`;
      throw new BridgeStartError(`the Python worker died while starting (${how}); see the runner log`);
    }
    if ('error' in first) {
      this.release();
      throw new BridgeStartError(
        `cannot import ${HOST_MODULE} with ${this.opts.python}: ${describePythoniaError(first.error)}`,
        { cause: first.error },
      );
    }
    mod.python.setFastMode(true);
    this.host = first.host;
    return first.host;
  }

  /** Forget the current process; pythonia starts a fresh one on the next call. */
  private release(): void {
    const proc = this.proc;
    this.host = undefined;
    this.proc = undefined;
    this.exited = undefined;
    if (pythonia && proc && pythonia.com.proc === proc) {
      try {
        pythonia.python.exit();
      } catch {
        // already gone
      }
    }
  }
}

/**
 * pythonia's `com.start()` (its restart path) clears every IPC handler, including the one that
 * answers Python→JS callbacks: without re-registering it, a callback after a restart waits forever.
 * Its proxy-release timer stays stopped after `python.exit()`, on purpose: a proxy of the dead
 * process collected later would otherwise free the same ffid in the new process, which is our live
 * host module (both found by test/bridge: events and calls after a worker crash). We hold one proxy
 * per process (the host module) and every result is a string, so nothing needs releasing.
 */
function rewireAfterRestart(mod: PythoniaModule): void {
  const internals = (globalThis as { __pythonBridge?: PythoniaBridgeInternals }).__pythonBridge;
  if (!internals) return;
  internals.freeable = [];
  if (!mod.com.handlers.jsi) mod.com.register('jsi', internals.jsi.onMessage.bind(internals.jsi));
}

function decodeReply<T>(text: string, label: string): T {
  let reply: { ok: boolean; result?: unknown; error?: PythonFailure };
  try {
    reply = JSON.parse(text);
  } catch (cause) {
    throw new BridgeStartError(`unreadable reply from ${label}: ${String(text).slice(0, 200)}`, { cause });
  }
  if (reply.ok) return reply.result as T;
  throw new PythonError(reply.error ?? { type: 'UnknownError', message: 'no error detail', traceback: '' }, label);
}

function describePythoniaError(error: unknown): string {
  if (error instanceof Error) {
    const text = error.message || error.stack || '';
    // pythonia puts the Python traceback in `stack` only, with ANSI colours.
    // eslint-disable-next-line no-control-regex
    const clean = text.replace(/\u001b\[[0-9;]*m/g, '').trim();
    const lines = clean.split('\n').filter((l) => l.trim());
    return lines.slice(-3).join(' | ') || error.name;
  }
  return String(error);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function raceTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), ms)))]);
  } finally {
    if (timer) clearTimeout(timer);
  }
}
