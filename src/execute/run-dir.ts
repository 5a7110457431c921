/**
 * A run directory: paths, atomic status, append-only events. The runner writes it (the source of
 * truth); the CLI only reads it, except to record a runner crash the runner itself could not.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
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

/** Append one event as one whole line (a single write of a single line). */
export function appendEvent(path: string, event: Record<string, unknown>): void {
  appendFileSync(path, `${JSON.stringify(event)}\n`);
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
  if (tail.trim()) {
    try {
      const last = JSON.parse(tail) as unknown;
      if (last && typeof last === 'object' && !Array.isArray(last)) complete.push(tail);
    } catch {
      // torn: its writer has not finished it
    }
  }
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

export function readStatus(runDir: string): RunStatus | undefined {
  return readJson<RunStatus>(runPaths(runDir).status);
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
