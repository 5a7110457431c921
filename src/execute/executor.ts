/**
 * Runs a list of resolved runs on device slots: one runner process per slot (each hosting one
 * warm Python worker), finished runs skipped, a crashed runner failing only its run.
 * Knows nothing about listr2: it emits `SweepEvent`s.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RunSpec } from '../sweep/run-spec.js';
import type { FromRunner, RunJob, SweepListener, ToRunner, WorkerEvent } from './events.js';
import {
  appendEvent,
  ensureRunDir,
  initialStatus,
  isComplete,
  readStatus,
  runPaths,
  writeJsonAtomic,
  type RunStatus,
} from './run-dir.js';

export interface ExecuteOptions {
  /** The sweep directory (`runs/<id>/` go below it). */
  out: string;
  cacheDir: string;
  /** The worker's Python interpreter. */
  python: string;
  /** Concurrent runner processes (device slots). */
  slots: number;
  listener?: SweepListener;
  /** Aborting it asks every running run to checkpoint and stop; queued runs stay queued. */
  stopSignal?: AbortSignal;
  /** Aborting it kills the runners (and their Python workers) at once. */
  killSignal?: AbortSignal;
  /** Wall-clock limit per run attempt (ms). */
  timeoutMs?: number;
  /** Extra environment for the runners (tests use it to slow or break workers). */
  env?: Record<string, string>;
  /** Grace period for a stop request before the worker is killed (ms). */
  stopGraceMs?: number;
}

interface RunnerEntry {
  path: string;
  execArgv: string[];
}

/** The runner script: compiled JS next to this file, or the TypeScript source under tsx (tests). */
export function runnerEntry(): RunnerEntry {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.ts')) return { path: here.replace(/executor\.ts$/, 'runner.ts'), execArgv: ['--import', 'tsx'] };
  return { path: here.replace(/executor\.js$/, 'runner.js'), execArgv: [] };
}

export function runDirOf(out: string, id: string): string {
  return join(out, 'runs', id);
}

class Slot {
  child: ChildProcess | undefined;
  private exitWaiters: Array<(info: { code: number | null; signal: NodeJS.Signals | null }) => void> = [];
  readonly logPath: string;

  constructor(
    readonly index: number,
    private readonly opts: ExecuteOptions,
  ) {
    this.logPath = join(opts.out, 'logs', `runner-${index}.log`);
  }

  start(): ChildProcess {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) return this.child;
    mkdirSync(join(this.opts.out, 'logs'), { recursive: true });
    const fd = openSync(this.logPath, 'a');
    const entry = runnerEntry();
    const child = fork(entry.path, [], {
      execArgv: entry.execArgv,
      stdio: ['ignore', fd, fd, 'ipc'],
      // Its own process group: a terminal Ctrl-C reaches the CLI only, which asks for checkpoints.
      detached: true,
      env: {
        ...process.env,
        ...this.opts.env,
        DPO_SWEEP_RUNNER_PYTHON: this.opts.python,
        DPO_SWEEP_STOP_GRACE_MS: String(this.opts.stopGraceMs ?? 60_000),
        DPO_SWEEP_SLOT: String(this.index),
      },
    });
    closeSync(fd);
    child.once('exit', (code, signal) => {
      const waiters = this.exitWaiters;
      this.exitWaiters = [];
      for (const w of waiters) w({ code, signal });
    });
    this.child = child;
    return child;
  }

  onExit(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) {
      return Promise.resolve({ code: child?.exitCode ?? null, signal: child?.signalCode ?? null });
    }
    return new Promise((resolve) => this.exitWaiters.push(resolve));
  }

  send(message: ToRunner): void {
    if (this.child?.connected) this.child.send(message);
  }

  /** Ask the runner to exit; kill its whole process group if it does not within `ms`. */
  async close(ms = 5000): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    this.send({ type: 'exit' });
    const done = await Promise.race([this.onExit().then(() => true), sleep(ms).then(() => false)]);
    if (!done) this.kill();
    await Promise.race([this.onExit(), sleep(3000)]);
  }

  kill(): void {
    const pid = this.child?.pid;
    if (!pid) return;
    try {
      process.kill(-pid, 'SIGKILL'); // the runner and its Python
    } catch {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

/**
 * Execute `specs` (already written under `out/runs/<id>/spec.json` or written here). Returns the
 * final status of every run, skipped ones included.
 */
export async function executeRuns(specs: RunSpec[], opts: ExecuteOptions): Promise<RunStatus[]> {
  const emit: SweepListener = opts.listener ?? (() => undefined);
  const started = Date.now();
  const statuses = new Map<string, RunStatus>();
  const queue: RunSpec[] = [];
  for (const spec of specs) {
    const dir = runDirOf(opts.out, spec.id);
    ensureRunDir(dir, spec);
    if (isComplete(dir)) {
      statuses.set(spec.id, readStatus(dir)!);
      emit({ kind: 'run-skipped', id: spec.id, name: spec.name, reason: 'already succeeded' });
      continue;
    }
    const previous = readStatus(dir);
    if (!previous || previous.state !== 'queued') {
      writeJsonAtomic(runPaths(dir).status, { ...(previous ?? initialStatus(spec, dir)), state: 'queued' });
    }
    queue.push(spec);
  }

  let stopping = opts.stopSignal?.aborted ?? false;
  const slots = Array.from({ length: Math.max(1, Math.min(opts.slots, queue.length)) }, (_, i) => new Slot(i, opts));
  const onStop = () => {
    stopping = true;
    for (const slot of slots) slot.send({ type: 'stop' });
  };
  const onKill = () => {
    stopping = true;
    for (const slot of slots) slot.kill();
  };
  opts.stopSignal?.addEventListener('abort', onStop, { once: true });
  opts.killSignal?.addEventListener('abort', onKill, { once: true });

  const worker = async (slot: Slot) => {
    for (;;) {
      if (stopping) return;
      const spec = queue.shift();
      if (!spec) return;
      const status = await runOnSlot(slot, spec, opts, emit);
      statuses.set(spec.id, status);
    }
  };
  try {
    await Promise.all(slots.map(worker));
  } finally {
    opts.stopSignal?.removeEventListener('abort', onStop);
    opts.killSignal?.removeEventListener('abort', onKill);
    await Promise.all(slots.map((s) => s.close()));
  }
  for (const spec of queue) statuses.set(spec.id, readStatus(runDirOf(opts.out, spec.id))!);
  const ordered = specs.map((s) => statuses.get(s.id) ?? readStatus(runDirOf(opts.out, s.id))!);
  emit({ kind: 'sweep-end', statuses: ordered, durationMs: Date.now() - started });
  return ordered;
}

async function runOnSlot(slot: Slot, spec: RunSpec, opts: ExecuteOptions, emit: SweepListener): Promise<RunStatus> {
  const dir = runDirOf(opts.out, spec.id);
  const previous = readStatus(dir);
  const attempt = (previous?.attempt ?? 0) + 1;
  const job: RunJob = {
    runId: spec.id,
    runDir: dir,
    cacheDir: opts.cacheDir,
    attempt,
    resume: true,
    ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
  };
  const child = slot.start();
  emit({ kind: 'run-start', id: spec.id, name: spec.name, attempt, slot: slot.index });

  return new Promise<RunStatus>((resolve) => {
    let settled = false;
    const finish = (status: RunStatus) => {
      if (settled) return;
      settled = true;
      child.off('message', onMessage);
      emit({ kind: 'run-end', id: spec.id, name: spec.name, status });
      resolve(status);
    };
    const onMessage = (raw: unknown) => {
      const message = raw as FromRunner;
      if (message.type === 'event' && message.runId === spec.id) {
        emit({ kind: 'run-event', id: spec.id, name: spec.name, event: message.event as WorkerEvent });
      } else if (message.type === 'done' && message.runId === spec.id) {
        finish(message.status);
      } else if (message.type === 'fatal') {
        appendEvent(runPaths(dir).events, { t: new Date().toISOString(), kind: 'runner-fatal', message: message.message });
      }
    };
    child.on('message', onMessage);
    void slot.onExit().then(({ code, signal }) => {
      if (settled) return;
      // The runner died mid-run: it could not record why, so we do (its own log has the details).
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      const status: RunStatus = {
        ...(readStatus(dir) ?? initialStatus(spec, dir)),
        state: 'failed',
        attempt,
        error_class: 'runner-crash',
        error: `the runner process ${how}${tailOf(slot.logPath)}`,
        finished_at: new Date().toISOString(),
        updated_at: new Date().toISOString(),
      };
      writeJsonAtomic(runPaths(dir).status, status);
      appendEvent(runPaths(dir).events, { t: status.finished_at, kind: 'run-end', state: 'failed', error_class: 'runner-crash', error: status.error });
      finish(status);
    });
    slot.send({ type: 'run', job });
  });
}

function tailOf(path: string): string {
  if (!existsSync(path)) return '';
  const lines = readFileSync(path, 'utf8').trim().split('\n').slice(-3).join(' | ');
  return lines ? ` (runner log: ${lines.slice(0, 300)})` : '';
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
