/**
 * Runs resolved runs on device slots: runner processes (each hosting one warm Python worker),
 * finished runs skipped, failures retried by class, a crashed runner failing only its run.
 * Knows nothing about listr2: it emits `SweepEvent`s.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decideRetry, givingUp, RetryPolicySchema, type RetryDecision, type RetryPolicy, type TrainingShape } from '../schedule/retry.js';
import { pickNext, type Pending } from '../schedule/scheduler.js';
import type { RunSpec } from '../sweep/run-spec.js';
import { referenceSharing } from '../sweep/sharing.js';
import type { FromRunner, RunJob, SweepListener, ToRunner, WorkerEvent } from './events.js';
import { readRunLock, waitForRunLock } from './run-lock.js';
import {
  appendEvent,
  ensureRunDir,
  initialStatus,
  isComplete,
  readStatus,
  runPaths,
  savedShape,
  writeJsonAtomic,
  writeOverrides,
  type RunStatus,
} from './run-dir.js';

export interface ExecuteOptions {
  /** The sweep directory (`runs/<id>/` go below it). */
  out: string;
  cacheDir: string;
  /** The worker's Python interpreter. */
  python: string;
  /** Device slots: GPU indices ('0', '1', …) or CPU slots ('cpu0', …). One runner process each. */
  slots: string[];
  listener?: SweepListener;
  /** Aborting it asks every running run to checkpoint and stop; queued runs stay queued. */
  stopSignal?: AbortSignal;
  /** Aborting it kills the runners (and their Python workers) at once. */
  killSignal?: AbortSignal;
  /** Failure handling (default: retry killed / oom / timeout / runner-crash twice, with back-off). */
  retry?: Partial<RetryPolicy>;
  /** Extra environment for the runners (tests use it to slow or break workers). */
  env?: Record<string, string>;
  /** Grace period for a stop request before the worker is killed (ms). */
  stopGraceMs?: number;
  /** Settings the worker applies on top of a run's spec (e.g. `stage:sft` → the stage's model dir). */
  overridesFor?: (spec: RunSpec) => Record<string, unknown> | undefined;
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

const isGpuSlot = (slot: string) => /^\d+$/.test(slot);

/** One runner process bound to a set of device slots. */
class Runner {
  child: ChildProcess | undefined;
  private exitWaiters: Array<(info: { code: number | null; signal: NodeJS.Signals | null }) => void> = [];
  readonly key: string;
  readonly logPath: string;

  constructor(
    readonly slots: string[],
    private readonly opts: ExecuteOptions,
  ) {
    this.key = slots.join(',');
    this.logPath = join(opts.out, 'logs', `runner-${slots.join('+')}.log`);
  }

  get alive(): boolean {
    return Boolean(this.child && this.child.exitCode === null && this.child.signalCode === null);
  }

  start(): ChildProcess {
    if (this.alive) return this.child!;
    mkdirSync(join(this.opts.out, 'logs'), { recursive: true });
    const fd = openSync(this.logPath, 'a');
    const entry = runnerEntry();
    const devices = this.slots.every(isGpuSlot) ? { CUDA_VISIBLE_DEVICES: this.slots.join(',') } : {};
    const child = fork(entry.path, [], {
      execArgv: entry.execArgv,
      stdio: ['ignore', fd, fd, 'ipc'],
      // Its own process group: a terminal Ctrl-C reaches the CLI only, which asks for checkpoints.
      detached: true,
      env: {
        ...process.env,
        ...this.opts.env,
        ...devices,
        DPO_SWEEP_RUNNER_PYTHON: this.opts.python,
        DPO_SWEEP_STOP_GRACE_MS: String(this.opts.stopGraceMs ?? 60_000),
        DPO_SWEEP_SLOTS: this.key,
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
    if (!child || !this.alive) return Promise.resolve({ code: child?.exitCode ?? null, signal: child?.signalCode ?? null });
    return new Promise((resolve) => this.exitWaiters.push(resolve));
  }

  send(message: ToRunner): void {
    if (this.child?.connected) this.child.send(message);
  }

  /** Ask the runner to exit; kill its whole process group if it does not within `ms`. */
  async close(ms = 5000): Promise<void> {
    if (!this.alive) return;
    this.send({ type: 'exit' });
    const done = await Promise.race([this.onExit().then(() => true), sleep(ms).then(() => false)]);
    if (!done) this.kill();
    await Promise.race([this.onExit(), sleep(3000)]);
  }

  kill(): void {
    killGroup(this.child?.pid);
  }
}

function killGroup(pid: number | undefined): void {
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

/**
 * Execute `specs` (spec.json written here if missing). Returns the final status of every run,
 * skipped ones included, in the order of `specs`.
 */
export async function executeRuns(specs: RunSpec[], opts: ExecuteOptions): Promise<RunStatus[]> {
  const emit: SweepListener = opts.listener ?? (() => undefined);
  const policy = RetryPolicySchema.parse(opts.retry ?? {});
  const byId = new Map(specs.map((s) => [s.id, s]));
  const sharing = referenceSharing(specs);
  const statuses = new Map<string, RunStatus>();
  const pending: Pending[] = [];
  const gpu = opts.slots.every(isGpuSlot);
  /** Micro-batch shapes after out-of-memory retries (this invocation's, or an earlier one's from overrides.json). */
  const shapes = new Map<string, TrainingShape>();
  /** Warnings for runs that start from an earlier invocation's shape, emitted when they start. */
  const shapeWarnings = new Map<string, string>();
  /** Each run's first attempt in this invocation: retries.max counts the retries of one invocation. */
  const firstAttempt = new Map<string, number>();
  for (const spec of specs) {
    const dir = runDirOf(opts.out, spec.id);
    ensureRunDir(dir, spec);
    const previous = readStatus(dir);
    // The plan may have renamed the run since (a variant's name is not part of its id).
    const renamed = previous !== undefined && previous.name !== spec.name;
    if (isComplete(dir)) {
      const done = renamed ? { ...previous, name: spec.name } : previous!;
      if (renamed) writeJsonAtomic(runPaths(dir).status, done);
      statuses.set(spec.id, done);
      emit({ kind: 'run-skipped', id: spec.id, name: spec.name, reason: 'already succeeded' });
      continue;
    }
    if (!previous || previous.state !== 'queued' || renamed) {
      writeJsonAtomic(runPaths(dir).status, { ...(previous ?? initialStatus(spec, dir)), name: spec.name, state: 'queued' });
    }
    firstAttempt.set(spec.id, (previous?.attempt ?? 0) + 1);
    const earlier = earlierShape(dir, spec);
    if (earlier) {
      shapes.set(spec.id, earlier.shape);
      shapeWarnings.set(spec.id, earlier.warning);
    }
    pending.push({ id: spec.id, need: gpu ? spec.settings.resources.gpus_per_run : 1 });
  }

  const runners = new Map<string, Runner>();
  const free = new Set(opts.slots);
  const running = new Map<string, { runner: Runner; done: Promise<void> }>();
  let stopping = opts.stopSignal?.aborted ?? false;
  let wake: () => void = () => undefined;

  const onStop = () => {
    stopping = true;
    for (const r of runners.values()) r.send({ type: 'stop' });
    wake();
  };
  const onKill = () => {
    stopping = true;
    for (const r of runners.values()) r.kill();
    wake();
  };
  opts.stopSignal?.addEventListener('abort', onStop, { once: true });
  opts.killSignal?.addEventListener('abort', onKill, { once: true });

  const runnerFor = async (slots: string[]): Promise<Runner> => {
    const key = slots.join(',');
    // A runner on overlapping devices holds their memory: close it first.
    for (const [k, r] of runners) {
      if (k !== key && r.slots.some((s) => slots.includes(s))) {
        await r.close();
        runners.delete(k);
      }
    }
    let runner = runners.get(key);
    if (!runner) {
      runner = new Runner(slots, opts);
      runners.set(key, runner);
    }
    return runner;
  };

  const launch = async (spec: RunSpec, slots: string[]) => {
    const runner = await runnerFor(slots);
    const dir = runDirOf(opts.out, spec.id);
    await waitForRunLock(dir, (opts.stopGraceMs ?? 60_000) + 10_000, killGroup);
    const warning = shapeWarnings.get(spec.id);
    if (warning) {
      shapeWarnings.delete(spec.id);
      emit({ kind: 'run-event', id: spec.id, name: spec.name, event: { kind: 'warning', message: warning } });
    }
    const ended = await runOnRunner(runner, spec, opts, emit, shapes.get(spec.id), sharing.get(spec.id) ?? 1);
    statuses.set(spec.id, ended);
    for (const s of slots) free.add(s);
    if (ended.state === 'failed' && !stopping) {
      const { decision, status } = afterFailure(spec, ended, firstAttempt.get(spec.id) ?? 1, policy, shapes.get(spec.id));
      if (status !== ended) {
        // Why it is not retried again, in its status (events.jsonl keeps run-end as its last record).
        statuses.set(spec.id, status);
        bestEffort(() => writeJsonAtomic(runPaths(dir).status, status));
      }
      if (decision.retry) {
        if (decision.training) {
          shapes.set(spec.id, decision.training);
          bestEffort(() => writeOverrides(dir, { training: decision.training }));
        }
        const retryAt = Date.now() + decision.delayMs;
        pending.push({ id: spec.id, need: gpu ? spec.settings.resources.gpus_per_run : 1, notBefore: retryAt });
        const queued: RunStatus = { ...status, state: 'queued', updated_at: new Date().toISOString() };
        bestEffort(() => writeJsonAtomic(runPaths(dir).status, queued));
        const note = decision.note ? { note: decision.note } : {};
        bestEffort(() => appendEvent(runPaths(dir).events, { t: queued.updated_at, kind: 'retry', after: status.error_class, delay_ms: decision.delayMs, ...note }));
        emit({ kind: 'run-retry', id: spec.id, name: spec.name, attempt: status.attempt + 1, delayMs: decision.delayMs, reason: status.error_class ?? 'failure', ...note });
      }
    }
  };

  try {
    for (;;) {
      if (!stopping) {
        const pick = pickNext(pending, [...free], Date.now(), opts.slots.length);
        if (pick) {
          pending.splice(
            pending.findIndex((p) => p.id === pick.id),
            1,
          );
          for (const s of pick.slots) free.delete(s);
          const spec = byId.get(pick.id)!;
          const done = launch(spec, pick.slots).finally(() => {
            running.delete(spec.id);
            wake();
          });
          running.set(spec.id, { runner: runners.get(pick.slots.join(','))!, done });
          continue;
        }
      }
      if (running.size === 0 && (stopping || pending.length === 0)) break;
      // Wait for a run to finish, a back-off to expire, or a stop.
      const nextRetry = Math.min(...pending.map((p) => p.notBefore ?? Number.POSITIVE_INFINITY));
      await new Promise<void>((resolve) => {
        wake = resolve;
        if (Number.isFinite(nextRetry)) setTimeout(resolve, Math.max(0, nextRetry - Date.now()) + 5);
      });
    }
  } finally {
    opts.stopSignal?.removeEventListener('abort', onStop);
    opts.killSignal?.removeEventListener('abort', onKill);
    await Promise.allSettled([...running.values()].map((r) => r.done));
    await Promise.all([...runners.values()].map((r) => r.close()));
  }
  return specs.map((s) => statuses.get(s.id) ?? readStatus(runDirOf(opts.out, s.id))!);
}

async function runOnRunner(
  runner: Runner,
  spec: RunSpec,
  opts: ExecuteOptions,
  emit: SweepListener,
  shape: { batch_size: number; grad_accum: number } | undefined,
  refSharing: number,
): Promise<RunStatus> {
  const dir = runDirOf(opts.out, spec.id);
  const previous = readStatus(dir);
  const attempt = (previous?.attempt ?? 0) + 1;
  const overrides = mergeOverrides(opts.overridesFor?.(spec), shape ? { training: shape } : undefined);
  const job: RunJob = {
    runId: spec.id,
    runDir: dir,
    cacheDir: opts.cacheDir,
    attempt,
    resume: true,
    refSharing,
    ...(overrides ? { overrides } : {}),
    ...(opts.retry?.timeout_s ? { timeoutMs: opts.retry.timeout_s * 1000 } : {}),
  };
  const child = runner.start();
  emit({ kind: 'run-start', id: spec.id, name: spec.name, attempt, slot: runner.key });

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
        // The runner could not run (or record) the run — a run dir it cannot write (disk full, a
        // file where a folder should be), a broken worker. It will not send `done`: fail the run now
        // rather than wait for ever.
        if (settled) return;
        bestEffort(() => appendEvent(runPaths(dir).events, { t: new Date().toISOString(), kind: 'runner-fatal', message: message.message }));
        finish(crashed(`the runner could not run it: ${message.message}`));
      }
    };
    /** The failed status of a run its runner could not finish; recorded here, as far as the run dir lets us. */
    const crashed = (error: string): RunStatus => {
      const now = new Date().toISOString();
      const status: RunStatus = {
        ...(readStatus(dir) ?? initialStatus(spec, dir)),
        state: 'failed',
        attempt,
        error_class: 'runner-crash',
        error,
        finished_at: now,
        updated_at: now,
      };
      bestEffort(() => writeJsonAtomic(runPaths(dir).status, status));
      bestEffort(() => appendEvent(runPaths(dir).events, { t: now, kind: 'run-end', state: 'failed', error_class: 'runner-crash', error }));
      return status;
    };
    child.on('message', onMessage);
    void runner.onExit().then(({ code, signal }) => {
      if (settled) return;
      // The runner died mid-run: it could not record why, so we do (its own log has the details).
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      finish(crashed(`the runner process ${how}${tailOf(runner.logPath)}`));
    });
    runner.send({ type: 'run', job });
  });
}

function mergeOverrides(a?: Record<string, unknown>, b?: Record<string, unknown>): Record<string, unknown> | undefined {
  if (!a) return b;
  if (!b) return a;
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] = prev && typeof prev === 'object' && v && typeof v === 'object' ? { ...(prev as object), ...(v as object) } : v;
  }
  return out;
}

/** A run-dir write whose failure must not stop the sweep (the status in memory still carries the cause). */
export function bestEffort(write: () => void): void {
  try {
    write();
  } catch {
    // the returned status still carries the cause
  }
}

/**
 * A failed attempt, for both executors: whether and how to retry it (`firstAttempt` is the run's first
 * attempt in this invocation, so retries.max counts this invocation's retries; `shape` its current
 * micro-batch), and the status to record, which says why a class that is retried is not retried again.
 */
export function afterFailure(spec: RunSpec, ended: RunStatus, firstAttempt: number, policy: RetryPolicy, shape?: TrainingShape): { decision: RetryDecision; status: RunStatus } {
  const current = shape ?? { batch_size: spec.settings.training.batch_size, grad_accum: spec.settings.training.grad_accum };
  const decision = decideRetry(ended.error_class, ended.attempt - firstAttempt + 1, policy, current);
  const final = givingUp(ended.error_class, decision, policy);
  if (!final) return { decision, status: ended };
  return { decision, status: { ...ended, error: `${ended.error ?? ended.error_class} — not retried: ${final}`, updated_at: new Date().toISOString() } };
}

/** The micro-batch an earlier invocation's out-of-memory retry left for `spec` (overrides.json), with the warning that says it is used. */
export function earlierShape(runDir: string, spec: RunSpec): { shape: TrainingShape; warning: string } | undefined {
  const shape = savedShape(runDir, spec.settings.training);
  if (!shape) return undefined;
  const { batch_size: b, grad_accum: a } = spec.settings.training;
  return {
    shape,
    warning: `micro-batch ${shape.batch_size} × accumulation ${shape.grad_accum} (the plan says ${b} × ${a}), as an earlier out-of-memory retry left it in overrides.json; delete that file to start from the plan's`,
  };
}

function tailOf(path: string): string {
  if (!existsSync(path)) return '';
  const lines = readFileSync(path, 'utf8').trim().split('\n').slice(-3).join(' | ');
  return lines ? ` (runner log: ${lines.slice(0, 300)})` : '';
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export { readRunLock };
