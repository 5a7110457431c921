/**
 * A run directory: paths, atomic status, append-only events. The runner writes it (the source of
 * truth); the CLI only reads it, except to record a runner crash the runner itself could not.
 */
import { appendFileSync, closeSync, existsSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { RunSpec } from '../sweep/run-spec.js';

export const RUN_STATES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type RunState = (typeof RUN_STATES)[number];

/** Why a run failed; drives the retry policy and the final summary. */
export type ErrorClass =
  | 'python-exception'
  | 'killed'
  | 'oom'
  | 'timeout'
  | 'nan-loss'
  | 'bad-data'
  | 'bad-spec'
  | 'runner-crash'
  | 'stage-failed'
  | 'cancelled';

export interface RunStatus {
  id: string;
  name: string;
  state: RunState;
  step: number;
  total: number | null;
  attempt: number;
  /** Latest step metrics (loss, β, …); non-finite values are kept as "NaN" / "Infinity" strings. */
  metrics: Record<string, unknown>;
  error_class: ErrorClass | null;
  error: string | null;
  log: string;
  runner_pid: number | null;
  /** The Python worker process of the current attempt. */
  worker_pid: number | null;
  started_at: string | null;
  finished_at: string | null;
  updated_at: string;
  /** Set when the run finished: where the final model is. */
  final_dir: string | null;
  resumed_from: string | null;
}

export function runPaths(runDir: string) {
  return {
    dir: runDir,
    spec: join(runDir, 'spec.json'),
    status: join(runDir, 'status.json'),
    events: join(runDir, 'events.jsonl'),
    log: join(runDir, 'worker.log'),
    final: join(runDir, 'final'),
    checkpoints: join(runDir, 'checkpoints'),
    /** Settings applied on top of spec.json for the next attempt (a stage's model, an OOM retry's batch). */
    overrides: join(runDir, 'overrides.json'),
  };
}

/** Record (or clear) the overrides a runner started without a parent (a Slurm task) must apply. */
export function writeOverrides(runDir: string, overrides: Record<string, unknown> | undefined): void {
  const path = runPaths(runDir).overrides;
  if (overrides && Object.keys(overrides).length) writeJsonAtomic(path, overrides);
  else rmSync(path, { force: true });
}

/**
 * The micro-batch an earlier out-of-memory retry settled on (`training` in overrides.json), when it
 * still fits this run: a smaller micro-batch with the same effective batch. A rerun of the sweep starts
 * from it instead of running out of memory again at the plan's micro-batch.
 */
export function savedShape(runDir: string, training: { batch_size: number; grad_accum: number }): { batch_size: number; grad_accum: number } | undefined {
  const saved = readJson<{ training?: { batch_size?: unknown; grad_accum?: unknown } }>(runPaths(runDir).overrides)?.training;
  const batch = saved?.batch_size;
  const accum = saved?.grad_accum;
  if (typeof batch !== 'number' || typeof accum !== 'number' || !Number.isInteger(batch) || !Number.isInteger(accum)) return undefined;
  if (batch < 1 || batch >= training.batch_size || batch * accum !== training.batch_size * training.grad_accum) return undefined;
  return { batch_size: batch, grad_accum: accum };
}

/** Write JSON atomically: a reader sees the old file or the new one, never a torn one. */
export function writeJsonAtomic(path: string, value: unknown): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`);
  renameSync(tmp, path);
}

export function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/**
 * Append one event as one whole line (a single write of a single line). A torn last line left by a
 * writer that died mid-write is dropped first: appended after it, the new record would share its
 * line and make the file unreadable (`readJsonl` only forgives a torn *last* line). A writer that
 * appends many events (the runner, one per logged step) heals the file once when it starts and
 * passes `healed: true`.
 */
export function appendEvent(path: string, event: Record<string, unknown>, options: { healed?: boolean } = {}): void {
  if (!options.healed) healJsonlTail(path);
  appendFileSync(path, `${JSON.stringify(event)}\n`);
}

/**
 * Make an append-only JSONL file end at a line boundary: a torn last line is cut off, a whole last
 * record written without its newline gets one. Only for a file no live process is writing.
 */
export function healJsonlTail(path: string): void {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return; // missing: nothing to heal (other errors surface at the append)
  }
  let size: number;
  let last: string;
  try {
    const stat = fstatSync(fd);
    size = stat.size;
    if (size === 0 || !stat.isFile()) return; // not a file: the append names the path in its error
    const byte = Buffer.alloc(1);
    readSync(fd, byte, 0, 1, size - 1);
    last = byte.toString('latin1');
  } finally {
    closeSync(fd);
  }
  if (last === '\n') return;
  const text = readFileSync(path);
  const start = text.lastIndexOf(0x0a) + 1;
  const tail = text.subarray(start).toString('utf8');
  if (isJsonObject(tail)) appendFileSync(path, '\n');
  else truncateSync(path, start);
}

function isJsonObject(text: string): boolean {
  try {
    const value = JSON.parse(text) as unknown;
    return Boolean(value) && typeof value === 'object' && !Array.isArray(value);
  } catch {
    return false;
  }
}

/**
 * Read an append-only JSONL file. A torn last line (a crash mid-write) is dropped, never parsed as
 * data; a bad line elsewhere is an error, because only whole lines are ever written.
 */
export function readJsonl<T = Record<string, unknown>>(path: string): T[] {
  if (!existsSync(path)) return [];
  const text = readFileSync(path, 'utf8');
  // The last piece after the final newline is '' (clean end), a torn line (being written: dropped),
  // or a whole record written without a final newline (another tool's file: kept). A torn object
  // never parses, so "parses as an object" tells the two apart.
  const pieces = text.split('\n');
  const tail = pieces.pop()!;
  const complete = pieces;
  if (tail.trim() && isJsonObject(tail)) complete.push(tail); // else torn: its writer has not finished it
  const out: T[] = [];
  complete.forEach((line, i) => {
    if (!line.trim()) return;
    try {
      out.push(JSON.parse(line) as T);
    } catch (cause) {
      throw new Error(`${path}:${i + 1}: unreadable JSON line`, { cause });
    }
  });
  return out;
}

/**
 * The run's status, or undefined when there is none or it cannot be trusted: torn, not JSON, JSON
 * that is not a run status, or the status of another run (a run dir copied by hand). Every caller
 * then starts from `initialStatus`, as for a run not started yet; the run resumes from its checkpoint.
 */
export function readStatus(runDir: string): RunStatus | undefined {
  const raw = readJson<unknown>(runPaths(runDir).status);
  const id = basename(resolve(runDir));
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return undefined;
  const status = raw as Partial<RunStatus>;
  if (status.id !== id || !(RUN_STATES as readonly unknown[]).includes(status.state)) return undefined;
  return status as RunStatus;
}

export function initialStatus(spec: RunSpec, runDir: string): RunStatus {
  return {
    id: spec.id,
    name: spec.name,
    state: 'queued',
    step: 0,
    total: spec.settings.training.max_steps ?? null,
    attempt: 0,
    metrics: {},
    error_class: null,
    error: null,
    log: runPaths(runDir).log,
    runner_pid: null,
    worker_pid: null,
    started_at: null,
    finished_at: null,
    updated_at: new Date().toISOString(),
    final_dir: null,
    resumed_from: null,
  };
}

/** A run counts as done when its status says so and its final model is on disk. */
export function isComplete(runDir: string): boolean {
  const status = readStatus(runDir);
  return status?.state === 'succeeded' && existsSync(join(runPaths(runDir).final, 'config.json'));
}

export function ensureRunDir(runDir: string, spec: RunSpec): void {
  mkdirSync(runDir, { recursive: true });
  const paths = runPaths(runDir);
  const existing = readJson<RunSpec>(paths.spec);
  if (!existing || JSON.stringify(existing) !== JSON.stringify(spec)) writeJsonAtomic(paths.spec, spec);
}
