/**
 * What an execution reports, as data. The executor emits these; progress renderers only draw them.
 */
import type { ErrorClass, RunStatus } from './run-dir.js';

/** An event a run's worker emitted (phase, step, checkpoint, …), as it arrived from Python. */
export interface WorkerEvent {
  kind: string;
  [key: string]: unknown;
}

export type SweepEvent =
  | { kind: 'sweep-start'; sweep: string; out: string; runs: Array<{ id: string; name: string; state: string }> }
  | { kind: 'run-skipped'; id: string; name: string; reason: string }
  | { kind: 'run-start'; id: string; name: string; attempt: number; slot: string }
  | { kind: 'run-retry'; id: string; name: string; attempt: number; delayMs: number; reason: string; note?: string }
  | { kind: 'run-event'; id: string; name: string; event: WorkerEvent }
  | { kind: 'run-end'; id: string; name: string; status: RunStatus }
  | { kind: 'setup'; message: string }
  /** Progress of the stages after training (eval generations, judgments, the report). */
  | { kind: 'stage'; stage: 'eval' | 'judge' | 'report'; message: string }
  | { kind: 'sweep-end'; statuses: RunStatus[]; durationMs: number };

export type SweepListener = (event: SweepEvent) => void;

/** Messages from the CLI to a runner process. */
export type ToRunner =
  | { type: 'run'; job: RunJob }
  /** Any other façade function (generate, rollout, score, …): one call, its result comes back. */
  | { type: 'call'; callId: string; fn: string; request: unknown; logPath?: string; timeoutMs?: number }
  | { type: 'stop' } // checkpoint and stop the current run
  | { type: 'exit' };

/** Messages from a runner process to the CLI. */
export type FromRunner =
  | { type: 'ready'; pid: number; pythonPid: number | null }
  | { type: 'event'; runId: string; event: WorkerEvent }
  | { type: 'done'; runId: string; status: RunStatus }
  | { type: 'call-event'; callId: string; event: WorkerEvent }
  | { type: 'call-result'; callId: string; ok: true; result: unknown }
  | { type: 'call-result'; callId: string; ok: false; error: { name: string; message: string; pythonType?: string; traceback?: string } }
  | { type: 'fatal'; message: string };

export interface RunJob {
  runId: string;
  runDir: string;
  cacheDir: string;
  attempt: number;
  resume: boolean;
  /** Wall-clock limit for the training call (ms). */
  timeoutMs?: number;
  /** Settings the worker applies on top of spec.json (stage model paths, an OOM retry's micro-batch). */
  overrides?: Record<string, unknown>;
  /** How many runs of the sweep share this run's reference log-probs (`precompute_ref_log_probs: auto`). */
  refSharing?: number;
}

export function isFailure(errorClass: ErrorClass | null): boolean {
  return errorClass !== null && errorClass !== 'cancelled';
}
