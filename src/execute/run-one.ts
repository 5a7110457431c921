/**
 * Execute one run through a bridge and keep its run directory true: `status.json` (atomic),
 * `events.jsonl` (append-only), `worker.log` (Python's output). Used by the runner process, in a
 * sweep and standalone (a Slurm task), so it never assumes a parent process.
 */
import type { PythonBridge } from '../bridge/bridge.js';
import { asNumber } from '../bridge/json.js';
import {
  BridgeStartError,
  CallAbortedError,
  CallTimeoutError,
  PythonError,
  WorkerExitError,
} from '../bridge/errors.js';
import type { RunSpec } from '../sweep/run-spec.js';
import type { RunJob, WorkerEvent } from './events.js';
import { acquireRunLock } from './run-lock.js';
import {
  appendEvent,
  healJsonlTail,
  ensureRunDir,
  initialStatus,
  readJson,
  readStatus,
  runPaths,
  writeJsonAtomic,
  type ErrorClass,
  type RunStatus,
} from './run-dir.js';

export const FACADE = 'dpo_sweep_worker.facade';
/** The module whose `train(request)` runs a run; tests point it at a fast fake worker. */
export function workerTarget(): string {
  return process.env.DPO_SWEEP_WORKER_TARGET || FACADE;
}
const STATUS_EVERY_MS = 1000;

interface TrainOutcome {
  status: 'succeeded' | 'interrupted';
  step: number;
  total: number;
  train_loss?: number | string;
  final_dir?: string;
  resumed_from?: string | null;
  [key: string]: unknown;
}

/** Map a failure to its class (retry policy and summary depend on it) and a one-line cause. */
export function classifyFailure(error: unknown): { errorClass: ErrorClass; message: string } {
  if (error instanceof PythonError) {
    const t = error.pythonType;
    if (t === 'NonFiniteLossError') return { errorClass: 'nan-loss', message: error.message };
    if (t === 'OutOfMemoryError' || /out of memory/i.test(error.pythonMessage)) return { errorClass: 'oom', message: error.message };
    if (t === 'DataError') return { errorClass: 'bad-data', message: error.message };
    if (t === 'SpecError' || t === 'ValidationError') return { errorClass: 'bad-spec', message: error.message };
    return { errorClass: 'python-exception', message: error.message };
  }
  if (error instanceof WorkerExitError) return { errorClass: 'killed', message: error.message };
  if (error instanceof CallTimeoutError) return { errorClass: 'timeout', message: error.message };
  if (error instanceof CallAbortedError) return { errorClass: 'cancelled', message: error.message };
  if (error instanceof BridgeStartError) return { errorClass: 'runner-crash', message: error.message };
  return { errorClass: 'runner-crash', message: error instanceof Error ? error.message : String(error) };
}

export async function runOne(
  job: RunJob,
  bridge: PythonBridge,
  options: { onEvent?: (event: WorkerEvent) => void; signal?: AbortSignal } = {},
): Promise<RunStatus> {
  const paths = runPaths(job.runDir);
  const spec = readJson<RunSpec>(paths.spec);
  if (!spec) throw new Error(`no readable spec.json in ${job.runDir}`);
  ensureRunDir(job.runDir, spec);
  const releaseLock = acquireRunLock(job.runDir);
  try {
    return await execute(job, spec, bridge, options);
  } finally {
    releaseLock();
  }
}

async function execute(
  job: RunJob,
  spec: RunSpec,
  bridge: PythonBridge,
  options: { onEvent?: (event: WorkerEvent) => void; signal?: AbortSignal },
): Promise<RunStatus> {
  const paths = runPaths(job.runDir);

  const previous = readStatus(job.runDir);
  const status: RunStatus = {
    // Fields an older status.json lacks come from the initial status.
    ...initialStatus(spec, job.runDir),
    ...previous,
    id: spec.id,
    name: spec.name,
    state: 'running',
    attempt: job.attempt,
    error_class: null,
    error: null,
    runner_pid: process.pid,
    started_at: new Date().toISOString(),
    finished_at: null,
    log: paths.log,
  };
  let lastWrite = 0;
  const save = (force = false) => {
    const now = Date.now();
    if (!force && now - lastWrite < STATUS_EVERY_MS) return;
    lastWrite = now;
    status.updated_at = new Date(now).toISOString();
    writeJsonAtomic(paths.status, status);
  };
  // An earlier attempt may have died mid-line: cut that off once, then append whole lines only.
  healJsonlTail(paths.events);
  const record = (event: WorkerEvent) => {
    appendEvent(paths.events, { t: new Date().toISOString(), ...event }, { healed: true });
    options.onEvent?.(event);
  };
  try {
    status.worker_pid = await bridge.pid();
  } catch {
    status.worker_pid = null; // the call below reports why the worker cannot start
  }
  save(true);
  record({ kind: 'run-start', attempt: job.attempt, runner_pid: process.pid, worker_pid: status.worker_pid });

  const onWorkerEvent = (raw: unknown) => {
    const event = raw as WorkerEvent;
    if (event.kind === 'step') {
      status.step = Number(event.step) || status.step;
      if (typeof event.total === 'number' && event.total > 0) status.total = event.total;
      status.metrics = (event.metrics as Record<string, unknown>) ?? {};
    } else if (event.kind === 'train-begin' && typeof event.total === 'number') {
      status.total = event.total;
      status.step = Number(event.step) || 0;
    } else if (event.kind === 'resume') {
      status.resumed_from = String(event.checkpoint);
    }
    record(event);
    save(event.kind !== 'step');
  };

  try {
    const outcome = await bridge.call<TrainOutcome>(
      workerTarget(),
      'train',
      {
        spec: job.overrides ? { ...spec, settings: deepMerge(spec.settings, job.overrides) } : spec,
        run_dir: job.runDir,
        cache_dir: job.cacheDir,
        resume: job.resume,
        attempt: job.attempt,
        overrides: job.overrides ?? {},
        ref_sharing: job.refSharing ?? 1,
      },
      {
        logPath: paths.log,
        onEvent: onWorkerEvent,
        ...(job.timeoutMs ? { timeoutMs: job.timeoutMs } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
      },
    );
    status.step = outcome.step;
    status.total = outcome.total;
    if (outcome.status === 'succeeded') {
      status.state = 'succeeded';
      status.final_dir = outcome.final_dir ?? null;
      const loss = asNumber(outcome.train_loss);
      if (loss !== undefined) status.metrics = { ...status.metrics, train_loss: outcome.train_loss };
    } else {
      status.state = 'cancelled';
      status.error_class = 'cancelled';
      status.error = `stopped at step ${outcome.step} after a stop request; the checkpoint resumes it`;
    }
  } catch (error) {
    const { errorClass, message } = classifyFailure(error);
    status.state = errorClass === 'cancelled' ? 'cancelled' : 'failed';
    status.error_class = errorClass;
    status.error = message;
    if (error instanceof PythonError) {
      appendEvent(paths.events, { t: new Date().toISOString(), kind: 'traceback', traceback: error.traceback });
    }
  }
  status.finished_at = new Date().toISOString();
  save(true);
  record({ kind: 'run-end', state: status.state, error_class: status.error_class, error: status.error, step: status.step });
  return status;
}

function deepMerge<T>(base: T, over: Record<string, unknown>): T {
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [key, value] of Object.entries(over)) {
    const prev = out[key];
    out[key] =
      value && typeof value === 'object' && !Array.isArray(value) && prev && typeof prev === 'object' && !Array.isArray(prev)
        ? deepMerge(prev, value as Record<string, unknown>)
        : value;
  }
  return out as T;
}
