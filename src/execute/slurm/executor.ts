/**
 * The Slurm executor: the same contract as the local one (`executeRuns`): skip finished runs,
 * emit the same `SweepEvent` stream, retry failures by class, stop on request, return every run's
 * final status. Each run is one task of a job array; the task runs the same runner, standalone,
 * on its node, and writes only the run's directory on the shared filesystem. This process submits,
 * polls squeue (bounded interval with back-off), tails each run's events.jsonl and reads its
 * status.json (the source of truth); Slurm tells it only what a run file cannot (pending, node,
 * a task that died before its runner could record anything).
 *
 * - One array per submission: the runs not complete at the start, later a small array of the
 *   runs that are retried. `%K` caps the tasks at once.
 * - Every submission is recorded in `<sweep>/slurm.json` (`dpo-sweep status` / `cancel` use it).
 * - A rerun follows the tasks of an earlier submission that are still pending or running instead
 *   of submitting their runs twice, and resubmits the rest (runners resume from checkpoints).
 * - Stop (Ctrl-C, `dpo-sweep cancel`): pending tasks are cancelled, running runners get SIGTERM
 *   alone (`scancel --batch`), checkpoint and exit; after the grace period, plain `scancel`.
 *   Kill (second Ctrl-C): plain `scancel` at once.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RetryPolicySchema, type RetryPolicy } from '../../schedule/retry.js';
import type { RunSpec } from '../../sweep/run-spec.js';
import type { SweepListener, WorkerEvent } from '../events.js';
import { afterFailure, bestEffort, earlierShape, runDirOf } from '../executor.js';
import { appendEvent, ensureRunDir, initialStatus, isComplete, readStatus, runPaths, writeJsonAtomic, writeOverrides, type RunStatus } from '../run-dir.js';
import { isActive, type SlurmRecord } from './parse.js';
import { renderBatchScript, renderManifest, runnerCommand, type SlurmExecutorConfig } from './sbatch.js';
import {
  describeEnd,
  latestTasks,
  readSlurmRecord,
  recordedOutcome,
  recordFor,
  slurmErrorClass,
  taskName,
  writeSlurmRecord,
  type SlurmSweepRecord,
  type TaskRef,
} from './status.js';
import { slurmCli, type SlurmCli } from './submit.js';
import { referenceSharing } from '../../sweep/sharing.js';

export interface SlurmExecuteOptions {
  out: string;
  cacheDir: string;
  /** The worker's Python on the nodes (the shared filesystem: the same path as here). */
  python: string;
  /** Names the job (`dpo-<sweep>`). */
  sweepName: string;
  /** The plan's `executor` block. */
  executor: SlurmExecutorConfig;
  /** `%K` (else `executor.max_concurrent`; else no cap). */
  maxConcurrent?: number;
  listener?: SweepListener;
  /** Aborting it stops gracefully: pending tasks cancelled, runners checkpoint. */
  stopSignal?: AbortSignal;
  /** Aborting it cancels every task at once. */
  killSignal?: AbortSignal;
  retry?: Partial<RetryPolicy>;
  /** Extra environment for the runners (written into the batch script). */
  env?: Record<string, string>;
  stopGraceMs?: number;
  /** As in the local executor: written to each run's overrides.json, which its standalone runner reads. */
  overridesFor?: (spec: RunSpec) => Record<string, unknown> | undefined;
  /** First poll interval (ms, default 1000); it backs off ×1.5 while nothing changes, up to `maxPollMs`. */
  pollMs?: number;
  maxPollMs?: number;
  /** Slurm's tools (tests may substitute them). */
  cli?: SlurmCli;
}

interface InFlight {
  spec: RunSpec;
  task: TaskRef;
  logPath: string;
  offset: number;
  started: boolean;
  phase?: string;
  /** When the task was first seen ended (or gone) without the run recording its outcome. */
  unrecordedSince?: number;
}

/** `dpo-sweep cancel` leaves this file; a monitoring `dpo-sweep run` then stops too. */
export const cancelMarkerPath = (out: string) => join(out, 'slurm', 'cancel-requested');

/**
 * Graceful stop of jobs: pending tasks cancelled first (so the `%K` throttle starts no new one),
 * then SIGTERM to each running task's batch shell, i.e. its runner, which checkpoints and exits.
 */
export async function gracefulCancel(cli: SlurmCli, jobIds: readonly string[]): Promise<void> {
  if (!jobIds.length) return;
  await cli.scancel(jobIds, { state: 'PENDING' });
  await cli.scancel(jobIds, { batch: true, signal: 'TERM' });
}

const NOT_FORWARDED = new Set(['retry', 'traceback', 'runner-fatal']);

export async function executeSlurm(specs: RunSpec[], opts: SlurmExecuteOptions): Promise<RunStatus[]> {
  const emit: SweepListener = opts.listener ?? (() => undefined);
  const cli = opts.cli ?? slurmCli;
  const policy = RetryPolicySchema.parse(opts.retry ?? {});
  const graceMs = opts.stopGraceMs ?? 60_000;
  const pollMs = opts.pollMs ?? 1000;
  const maxPollMs = Math.max(pollMs, opts.maxPollMs ?? 5000);
  const maxConcurrent = opts.maxConcurrent ?? opts.executor.max_concurrent;
  const slurmDir = join(opts.out, 'slurm');
  const logDir = join(slurmDir, 'logs');
  mkdirSync(logDir, { recursive: true });
  const startedAt = Date.now();
  rmSync(cancelMarkerPath(opts.out), { force: true });

  // A task's runner reads runs/<id>/overrides.json: a stage's model, an OOM retry's micro-batch.
  const shapes = new Map<string, { batch_size: number; grad_accum: number }>();
  const writeRunOverrides = (spec: RunSpec) => {
    const stage = opts.overridesFor?.(spec);
    const shape = shapes.get(spec.id);
    writeOverrides(runDirOf(opts.out, spec.id), { ...stage, ...(shape ? { training: { ...(stage?.training as object), ...shape } } : {}) });
  };

  const statuses = new Map<string, RunStatus>();
  const inflight = new Map<string, InFlight>();
  const retries: Array<{ spec: RunSpec; notBefore: number }> = [];
  let record: SlurmSweepRecord = readSlurmRecord(opts.out) ?? { version: 1, submissions: [] };
  let stopping = opts.stopSignal?.aborted ?? false;
  let killing = opts.killSignal?.aborted ?? false;
  let wake: () => void = () => undefined;
  const onStop = () => {
    stopping = true;
    wake();
  };
  const onKill = () => {
    stopping = true;
    killing = true;
    wake();
  };
  opts.stopSignal?.addEventListener('abort', onStop, { once: true });
  opts.killSignal?.addEventListener('abort', onKill, { once: true });

  const eventsSize = (dir: string) => {
    try {
      return statSync(runPaths(dir).events).size;
    } catch {
      return 0;
    }
  };
  const persistTask = (task: TaskRef, changes: { raw_job_id?: string; node?: string }) => {
    const sub = record.submissions.find((s) => s.job_id === task.job_id);
    const entry = sub?.tasks.find((t) => t.index === task.index);
    if (!entry) return;
    if ((changes.raw_job_id === undefined || entry.raw_job_id === changes.raw_job_id) && (changes.node === undefined || entry.node === changes.node)) return;
    Object.assign(entry, changes);
    writeSlurmRecord(opts.out, record);
  };

  // --- runs to do ----------------------------------------------------------------------------
  const todo: RunSpec[] = [];
  for (const spec of specs) {
    const dir = runDirOf(opts.out, spec.id);
    ensureRunDir(dir, spec);
    if (isComplete(dir)) {
      statuses.set(spec.id, readStatus(dir)!);
      emit({ kind: 'run-skipped', id: spec.id, name: spec.name, reason: 'already succeeded' });
      continue;
    }
    todo.push(spec);
  }
  for (const spec of todo) {
    // An earlier invocation's out-of-memory retry: start from the micro-batch it reached.
    const earlier = earlierShape(runDirOf(opts.out, spec.id), spec);
    if (earlier) {
      shapes.set(spec.id, earlier.shape);
      emit({ kind: 'run-event', id: spec.id, name: spec.name, event: { kind: 'warning', message: earlier.warning } });
    }
    writeRunOverrides(spec); // after ensureRunDir: a run's directory may be new
  }
  /** Each run's first attempt in this invocation: retries.max counts the retries of one invocation. */
  const firstAttempt = new Map<string, number>();

  // Tasks of an earlier submission that are still pending or running: follow them, don't resubmit.
  const earlier = latestTasks(record);
  const candidates = todo.filter((s) => earlier.has(s.id));
  if (candidates.length) {
    const jobIds = [...new Set(candidates.map((s) => earlier.get(s.id)!.job_id))];
    let records: SlurmRecord[] = [];
    try {
      records = await cli.squeue(jobIds);
    } catch {
      records = []; // cannot tell: resubmitting is safe (the run lock and checkpoints guard a run)
    }
    for (const spec of candidates) {
      const task = earlier.get(spec.id)!;
      const rec = recordFor(records, task);
      if (!rec || !isActive(rec.state)) continue;
      const dir = runDirOf(opts.out, spec.id);
      inflight.set(spec.id, { spec, task, logPath: join(logDir, `${taskName(task)}.out`), offset: eventsSize(dir), started: false });
      firstAttempt.set(spec.id, task.attempt);
      emit({ kind: 'setup', message: `slurm: ${spec.name} is still ${rec.state} as task ${taskName(task)} of an earlier submission: following it` });
    }
  }

  const gpus = await (async () => {
    if (opts.executor.gpus_per_run !== undefined) return opts.executor.gpus_per_run;
    const want = Math.max(0, ...specs.map((s) => s.settings.resources.gpus_per_run));
    if (!want) return 0;
    return (await cli.partitionHasGpus(opts.executor.partition).catch(() => false)) ? want : 0;
  })();

  // Runs sharing reference log-probs (counted over the whole sweep, as the local executor does).
  const sharing = referenceSharing(specs);
  // One array for the sweep: every task gets the widest run's nodes (a run uses the nodes it asks for).
  const nodes = Math.max(1, ...specs.map((s) => s.settings.resources?.nodes_per_run ?? 1));

  const submit = async (batch: RunSpec[]) => {
    const n = record.submissions.length + 1;
    const stamp = `${n}`;
    const entries = batch.map((spec) => {
      const runDir = runDirOf(opts.out, spec.id);
      const previous = readStatus(runDir);
      const attempt = (previous?.attempt ?? 0) + 1;
      if (!firstAttempt.has(spec.id)) firstAttempt.set(spec.id, attempt);
      return { spec, runDir, attempt, previous, refSharing: sharing.get(spec.id) ?? 1 };
    });
    const manifest = join(slurmDir, `submit-${stamp}.tsv`);
    const script = join(slurmDir, `submit-${stamp}.sbatch`);
    writeFileSync(manifest, renderManifest(entries));
    const timeMinutes =
      !opts.executor.time && policy.timeout_s ? Math.ceil((policy.timeout_s + graceMs / 1000 + 30) / 60) : undefined;
    writeFileSync(
      script,
      renderBatchScript({
        sweepName: opts.sweepName,
        count: entries.length,
        ...(maxConcurrent ? { maxConcurrent } : {}),
        executor: timeMinutes ? { ...opts.executor, time: String(timeMinutes) } : opts.executor,
        gpus,
        nodes,
        manifest,
        logDir,
        cacheDir: opts.cacheDir,
        python: opts.python,
        stopGraceS: graceMs / 1000,
        env: opts.env ?? {},
        runner: runnerCommand(),
      }),
      { mode: 0o755 },
    );
    for (const e of entries) {
      if (!e.previous || e.previous.state !== 'queued') {
        writeJsonAtomic(runPaths(e.runDir).status, { ...(e.previous ?? initialStatus(e.spec, e.runDir)), state: 'queued' });
      }
    }
    const jobId = await cli.sbatch(script, { env: opts.env ?? {}, cwd: opts.out });
    record = readSlurmRecord(opts.out) ?? record;
    record.submissions.push({
      job_id: jobId,
      submitted_at: new Date().toISOString(),
      script,
      manifest,
      log_dir: logDir,
      max_concurrent: maxConcurrent ?? null,
      tasks: entries.map((e, index) => ({ index, run_id: e.spec.id, attempt: e.attempt })),
    });
    writeSlurmRecord(opts.out, record);
    entries.forEach((e, index) => {
      const task: TaskRef = { job_id: jobId, index, attempt: e.attempt };
      inflight.set(e.spec.id, { spec: e.spec, task, logPath: join(logDir, `${taskName(task)}.out`), offset: eventsSize(e.runDir), started: false });
    });
    const cap = maxConcurrent ? `, at most ${maxConcurrent} at a time` : '';
    emit({ kind: 'setup', message: `slurm: submitted job array ${jobId} (${entries.length} run${entries.length === 1 ? '' : 's'}${cap}); logs in ${logDir}` });
  };

  /** Forward the run's new events (whole lines only: a torn last line waits for its end). */
  const tail = (f: InFlight) => {
    const path = runPaths(runDirOf(opts.out, f.spec.id)).events;
    let size: number;
    try {
      size = statSync(path).size;
    } catch {
      return false;
    }
    if (size < f.offset) f.offset = 0; // truncated or replaced
    if (size === f.offset) return false;
    const fd = openSync(path, 'r');
    let text: Buffer;
    try {
      text = Buffer.alloc(size - f.offset);
      readSync(fd, text, 0, text.length, f.offset);
    } finally {
      closeSync(fd);
    }
    const end = text.lastIndexOf(0x0a);
    if (end < 0) return false;
    f.offset += end + 1;
    for (const line of text.subarray(0, end).toString('utf8').split('\n')) {
      if (!line.trim()) continue;
      let event: WorkerEvent;
      try {
        event = JSON.parse(line) as WorkerEvent;
      } catch {
        continue;
      }
      if (NOT_FORWARDED.has(event.kind)) continue;
      const { t: _t, ...rest } = event;
      emit({ kind: 'run-event', id: f.spec.id, name: f.spec.name, event: rest as WorkerEvent });
    }
    return true;
  };

  const phase = (f: InFlight, text: string) => {
    if (f.phase === text) return;
    f.phase = text;
    emit({ kind: 'run-event', id: f.spec.id, name: f.spec.name, event: { kind: 'phase', phase: text } });
  };

  const logTail = (path: string) => {
    if (!existsSync(path)) return '';
    const lines = readFileSync(path, 'utf8').trim().split('\n').filter(Boolean).slice(-3).join(' | ');
    return lines ? `; Slurm log ${path}: ${lines.slice(0, 400)}` : `; Slurm log ${path}`;
  };

  const finish = (f: InFlight, ended: RunStatus) => {
    inflight.delete(f.spec.id);
    const spec = f.spec;
    const dir = runDirOf(opts.out, spec.id);
    const failed = ended.state === 'failed' && !stopping ? afterFailure(spec, ended, firstAttempt.get(spec.id) ?? 1, policy, shapes.get(spec.id)) : undefined;
    const status = failed?.status ?? ended;
    if (status !== ended) bestEffort(() => writeJsonAtomic(runPaths(dir).status, status));
    const decision = failed?.decision;
    statuses.set(spec.id, status);
    emit({ kind: 'run-end', id: spec.id, name: spec.name, status });
    if (!decision?.retry) return;
    if (decision.training) {
      shapes.set(spec.id, decision.training);
      writeRunOverrides(spec);
    }
    retries.push({ spec, notBefore: Date.now() + decision.delayMs });
    bestEffort(() => writeJsonAtomic(runPaths(dir).status, { ...status, state: 'queued', updated_at: new Date().toISOString() }));
    bestEffort(() => appendEvent(runPaths(dir).events, {
      t: new Date().toISOString(),
      kind: 'retry',
      after: status.error_class,
      delay_ms: decision.delayMs,
      ...(decision.note ? { note: decision.note } : {}),
    }));
    emit({
      kind: 'run-retry',
      id: spec.id,
      name: spec.name,
      attempt: status.attempt + 1,
      delayMs: decision.delayMs,
      reason: status.error_class ?? 'failure',
      ...(decision.note ? { note: decision.note } : {}),
    });
  };

  /** One look at Slurm and the run files; true when anything changed. */
  const poll = async (): Promise<boolean> => {
    let changed = false;
    const jobIds = [...new Set([...inflight.values()].map((f) => f.task.job_id))];
    const records = await cli.squeue(jobIds, { all: true });
    for (const f of [...inflight.values()]) {
      const dir = runDirOf(opts.out, f.spec.id);
      const status = readStatus(dir);
      let rec = recordFor(records, f.task);
      if (rec?.rawJobId || rec?.nodes) {
        persistTask(f.task, { ...(rec.rawJobId ? { raw_job_id: rec.rawJobId } : {}), ...(rec.nodes ? { node: rec.nodes } : {}) });
        if (rec.rawJobId) f.task.raw_job_id = rec.rawJobId;
        if (rec.nodes) f.task.node = rec.nodes;
      }
      const onNode = rec && isActive(rec.state) && rec.state !== 'PENDING' && !rec.state.startsWith('REQUEUE');
      const runnerWrote = status?.state === 'running' && status.attempt >= f.task.attempt;
      if (!f.started && (onNode || runnerWrote || recordedOutcome(status, f.task))) {
        f.started = true;
        changed = true;
        const node = rec?.nodes ?? f.task.node ?? 'slurm';
        emit({ kind: 'run-start', id: f.spec.id, name: f.spec.name, attempt: f.task.attempt, slot: node });
        phase(f, `on ${node} (Slurm task ${taskName(f.task)})`);
      } else if (!f.started && rec && isActive(rec.state)) {
        phase(f, `${rec.state.toLowerCase()}${rec.reason && rec.reason !== 'None' ? ` (${rec.reason})` : ''} as Slurm task ${taskName(f.task)}`);
      }
      if (tail(f)) changed = true;
      if (rec && isActive(rec.state)) continue;

      // The task has ended (or Slurm no longer knows it).
      if (recordedOutcome(status, f.task)) {
        tail(f);
        finish(f, status!);
        changed = true;
        continue;
      }
      const now = Date.now();
      f.unrecordedSince ??= now;
      if (now - f.unrecordedSince < 3000) continue; // a shared filesystem may show the file late
      const name = taskName(f.task);
      if (rec) {
        // squeue has the end state but no exit code: scontrol has it while the job is in memory.
        if (rec.exit === undefined) {
          const detail = await cli.scontrolJob(name).then((r) => recordFor(r, f.task)).catch(() => undefined);
          if (detail?.exit && detail.state === rec.state) rec = { ...rec, exit: detail.exit };
        }
      } else {
        // Gone from slurmctld's memory: accounting, then the jobcomp file (by the task's own job id).
        rec =
          (await cli.scontrolJob(name).then((r) => recordFor(r, f.task)).catch(() => undefined)) ??
          (await cli.sacct([name]).then((r) => (r ? recordFor(r, f.task) : undefined)).catch(() => undefined)) ??
          (f.task.raw_job_id
            ? await cli.sacctJobcomp([f.task.raw_job_id]).then((r) => (r ? recordFor(r, f.task) : undefined)).catch(() => undefined)
            : undefined);
        if (rec && f.task.node && !rec.nodes) rec = { ...rec, nodes: f.task.node };
      }
      if (rec && isActive(rec.state)) continue;
      if (!f.started && (!rec || rec.state === 'CANCELLED')) {
        // Cancelled before it started (a stop): the run stays queued, as locally.
        inflight.delete(f.spec.id);
        statuses.set(f.spec.id, readStatus(dir) ?? initialStatus(f.spec, dir));
        changed = true;
        continue;
      }
      const errorClass = slurmErrorClass(rec?.state ?? 'UNKNOWN');
      const at = new Date().toISOString();
      const failed: RunStatus = {
        ...(readStatus(dir) ?? initialStatus(f.spec, dir)),
        state: errorClass === 'cancelled' ? 'cancelled' : 'failed',
        attempt: f.task.attempt,
        error_class: errorClass,
        error: `${describeEnd(f.task, rec)}${logTail(f.logPath)}`,
        finished_at: at,
        updated_at: at,
      };
      writeJsonAtomic(runPaths(dir).status, failed);
      appendEvent(runPaths(dir).events, { t: at, kind: 'run-end', state: failed.state, error_class: errorClass, error: failed.error });
      tail(f);
      finish(f, failed);
      changed = true;
    }
    return changed;
  };

  const activeJobs = () => [...new Set([...inflight.values()].map((f) => f.task.job_id))];
  let stopSent = false;
  let killSent = false;
  let hardAt: number | undefined;
  let giveUpAt: number | undefined;

  try {
    if (!stopping) {
      const fresh = todo.filter((s) => !inflight.has(s.id));
      if (fresh.length) await submit(fresh);
    }
    let interval = pollMs;
    for (;;) {
      if (!stopping && existsSync(cancelMarkerPath(opts.out)) && statSync(cancelMarkerPath(opts.out)).mtimeMs >= startedAt - 1000) {
        stopping = true;
        stopSent = true; // `dpo-sweep cancel` has sent the signals
        emit({ kind: 'setup', message: 'slurm: `dpo-sweep cancel` was run: stopping' });
        hardAt = Date.now() + graceMs + 20_000;
      }
      if (stopping) retries.length = 0;
      if (killing && !killSent) {
        killSent = true;
        await cli.scancel(activeJobs());
        giveUpAt = Date.now() + 20_000;
      } else if (stopping && !stopSent) {
        stopSent = true;
        emit({ kind: 'setup', message: 'slurm: cancelling pending tasks; running runs save a checkpoint and stop' });
        await gracefulCancel(cli, activeJobs());
        hardAt = Date.now() + graceMs + 20_000;
      }
      if (hardAt !== undefined && Date.now() > hardAt && giveUpAt === undefined) {
        await cli.scancel(activeJobs());
        giveUpAt = Date.now() + 30_000;
      }
      if (giveUpAt !== undefined && Date.now() > giveUpAt) break;

      const due = retries.filter((r) => r.notBefore <= Date.now());
      if (due.length && !stopping) {
        for (const d of due) retries.splice(retries.indexOf(d), 1);
        await submit(due.map((d) => d.spec));
      }
      if (inflight.size === 0 && (retries.length === 0 || stopping)) break;

      const changed = inflight.size ? await poll() : false;
      interval = changed ? pollMs : Math.min(maxPollMs, Math.round(interval * 1.5));
      if (inflight.size === 0 && retries.length === 0) break;
      const nextRetry = Math.min(...retries.map((r) => r.notBefore));
      const wait = Math.max(50, Math.min(interval, Number.isFinite(nextRetry) ? nextRetry - Date.now() : interval));
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, wait);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  } finally {
    opts.stopSignal?.removeEventListener('abort', onStop);
    opts.killSignal?.removeEventListener('abort', onKill);
  }
  return specs.map((s) => statuses.get(s.id) ?? readStatus(runDirOf(opts.out, s.id))!);
}
