/**
 * Slurm's view of a sweep merged with each run's own status file (ARCHITECTURE.md: the run
 * directory is the source of truth). The run file wins for progress and for any outcome the
 * runner recorded; Slurm tells what the file cannot: pending (and why), running on which node,
 * failed before the runner could start or record anything (a bad `setup` line, a node failure,
 * a time limit), cancelled. Also the sweep's `slurm.json`: every array submitted, so that
 * `dpo-sweep status` and `dpo-sweep cancel` find the jobs.
 */
import { join } from 'node:path';
import type { ErrorClass, RunState, RunStatus } from '../run-dir.js';
import { readJson, writeJsonAtomic } from '../run-dir.js';
import { expandHostlist, findTask, isActive, isTerminal, type ExitCode, type SlurmRecord } from './parse.js';

// --- slurm.json --------------------------------------------------------------------------------

export interface SlurmTaskEntry {
  index: number;
  run_id: string;
  attempt: number;
  /** The task's own job id once it started (sacct -c knows only this one). */
  raw_job_id?: string;
  node?: string;
}

export interface SlurmSubmission {
  job_id: string;
  submitted_at: string;
  script: string;
  manifest: string;
  log_dir: string;
  max_concurrent: number | null;
  tasks: SlurmTaskEntry[];
}

export interface SlurmSweepRecord {
  version: 1;
  submissions: SlurmSubmission[];
}

export const slurmRecordPath = (out: string) => join(out, 'slurm.json');

export function readSlurmRecord(out: string): SlurmSweepRecord | undefined {
  return readJson<SlurmSweepRecord>(slurmRecordPath(out));
}

export function writeSlurmRecord(out: string, record: SlurmSweepRecord): void {
  writeJsonAtomic(slurmRecordPath(out), record);
}

export interface TaskRef {
  job_id: string;
  index: number;
  attempt: number;
  raw_job_id?: string;
  node?: string;
}

/** The latest task of each run (a later submission, e.g. a retry, replaces an earlier one). */
export function latestTasks(record: SlurmSweepRecord | undefined): Map<string, TaskRef> {
  const out = new Map<string, TaskRef>();
  for (const sub of record?.submissions ?? []) {
    for (const t of sub.tasks) {
      out.set(t.run_id, {
        job_id: sub.job_id,
        index: t.index,
        attempt: t.attempt,
        ...(t.raw_job_id ? { raw_job_id: t.raw_job_id } : {}),
        ...(t.node ? { node: t.node } : {}),
      });
    }
  }
  return out;
}

export const taskName = (t: { job_id: string; index: number }) => `${t.job_id}_${t.index}`;

// --- merging -----------------------------------------------------------------------------------

export interface SlurmTaskView {
  task: string;
  state: string | null;
  reason: string | null;
  node: string | null;
  exit: ExitCode | null;
}

export interface MergedRun {
  id: string;
  state: RunState;
  step: number;
  total: number | null;
  attempt: number;
  error_class: ErrorClass | null;
  error: string | null;
  slurm: SlurmTaskView | null;
}

/** States in which the task's runner is (or is about to be) alive on a node. */
const ON_NODE = new Set(['RUNNING', 'CONFIGURING', 'COMPLETING', 'SIGNALING', 'STAGE_OUT', 'SUSPENDED', 'STOPPED']);

const FINAL: ReadonlySet<RunState> = new Set(['succeeded', 'failed', 'cancelled']);

/** Whether the run file holds the outcome of this task's attempt (or of a later one). */
export function recordedOutcome(status: RunStatus | undefined, task: TaskRef): boolean {
  return Boolean(status && FINAL.has(status.state) && status.attempt >= task.attempt);
}

/** The failure class of a task that ended without its runner recording an outcome. */
export function slurmErrorClass(state: string): ErrorClass {
  switch (state) {
    case 'CANCELLED':
      return 'cancelled';
    case 'TIMEOUT':
    case 'DEADLINE':
      return 'timeout';
    case 'OUT_OF_MEMORY':
    case 'NODE_FAIL':
    case 'PREEMPTED':
    case 'BOOT_FAIL':
      return 'killed';
    default:
      return 'runner-crash';
  }
}

/** "Slurm task 12_3 ended FAILED (exit code 2, NonZeroExitCode) on n1 before the run recorded an outcome". */
export function describeEnd(task: TaskRef, rec: SlurmRecord | undefined): string {
  const name = taskName(task);
  if (!rec) return `Slurm task ${name} is gone (not in squeue, sacct or scontrol) and the run recorded no outcome`;
  const bits: string[] = [];
  if (rec.exit && (rec.exit.code || rec.exit.signal)) {
    bits.push(rec.exit.signal ? `killed by signal ${rec.exit.signal}` : `exit code ${rec.exit.code}`);
  }
  if (rec.reason && rec.reason !== 'None') bits.push(rec.reason);
  if (rec.cancelledBy !== undefined) bits.push(`cancelled by uid ${rec.cancelledBy}`);
  const node = rec.nodes ? ` on ${rec.nodes}` : '';
  return `Slurm task ${name} ended ${rec.state}${bits.length ? ` (${bits.join(', ')})` : ''}${node} before the run recorded an outcome`;
}

/**
 * One run as `dpo-sweep status` shows it. `rec` is what Slurm says about the run's latest task
 * (undefined: no task, or Slurm has forgotten it and accounting is off).
 */
export function mergeRun(id: string, status: RunStatus | undefined, task: TaskRef | undefined, rec: SlurmRecord | undefined): MergedRun {
  const base: MergedRun = {
    id,
    state: status?.state ?? 'queued',
    step: status?.step ?? 0,
    total: status?.total ?? null,
    attempt: status?.attempt ?? 0,
    error_class: status?.error_class ?? null,
    error: status?.error ?? null,
    slurm: null,
  };
  if (!task) return base;
  base.slurm = {
    task: taskName(task),
    state: rec?.state ?? null,
    reason: rec?.reason ?? null,
    node: rec?.nodes ?? task.node ?? null,
    exit: rec?.exit ?? null,
  };
  if (!rec) return base;
  if (isActive(rec.state)) {
    if (recordedOutcome(status, task)) return base; // the runner is done; the job is winding down
    if (ON_NODE.has(rec.state)) {
      return { ...base, state: 'running', attempt: Math.max(base.attempt, task.attempt), error_class: null, error: null };
    }
    return { ...base, state: 'queued', error_class: null, error: null }; // pending, requeued, held
  }
  const startedThisAttempt = status?.state === 'running' && status.attempt >= task.attempt;
  if (rec.state === 'CANCELLED' && !startedThisAttempt && !rec.nodes) return base; // cancelled while pending: still to do
  if (isTerminal(rec.state) && !recordedOutcome(status, task)) {
    const errorClass = slurmErrorClass(rec.state);
    return {
      ...base,
      state: errorClass === 'cancelled' ? 'cancelled' : 'failed',
      attempt: Math.max(base.attempt, task.attempt),
      error_class: errorClass,
      error: describeEnd(task, rec),
    };
  }
  return base;
}

/** Look up a run's task in everything Slurm reported. */
export function recordFor(records: readonly SlurmRecord[], task: TaskRef): SlurmRecord | undefined {
  return findTask(records, task.job_id, task.index, task.raw_job_id);
}

/** The nodes a set of records ran on. */
export function nodesOf(records: readonly SlurmRecord[]): string[] {
  return [...new Set(records.flatMap((r) => expandHostlist(r.nodes)))].sort();
}
