/**
 * A whole sweep: plan → runs → sweep directory → execution. The library entry point
 * (`runSweep`), used by the CLI and by scripts.
 */
import { createHash } from 'node:crypto';
import { InputError } from '../errors.js';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadPlan, type LoadedPlan } from '../plan/load.js';
import { expandPlan } from '../sweep/expand.js';
import type { RunSpec } from '../sweep/run-spec.js';
import type { SweepListener } from './events.js';
import type { RetryPolicy } from '../schedule/retry.js';
import { slotNames } from '../schedule/scheduler.js';
import { STAGE_SFT, stageDependencies, stageRuns } from '../sweep/stages.js';
import { executeRuns, type ExecuteOptions } from './executor.js';
import { executeSlurm } from './slurm/executor.js';
import type { SlurmExecutorConfig } from './slurm/sbatch.js';
import { acquireLock, type SweepLock } from './lock.js';
import { ensureRunDir, initialStatus, isComplete, readJson, readStatus, writeJsonAtomic, type RunStatus } from './run-dir.js';

export interface SweepOptions {
  /** Sweep directory (default `runs/<plan name>/` under the working directory). */
  out?: string;
  cacheDir?: string;
  python: string;
  /** Concurrent runs (runner processes); on GPUs at most one per device. */
  maxParallel?: number;
  /** GPU indices to use, one slot each (default: none, i.e. CPU slots). */
  devices?: string[];
  /** Failure handling (the plan's `retries`). */
  retry?: Partial<RetryPolicy>;
  /** Runs that must finish before the sweep (`stages.sft`). */
  stages?: RunSpec[];
  sets?: string[];
  listener?: SweepListener;
  stopSignal?: AbortSignal;
  killSignal?: AbortSignal;
  timeoutMs?: number;
  env?: Record<string, string>;
  stopGraceMs?: number;
  /** Where runs execute (default: the plan's `executor.kind`, else local). */
  executor?: 'local' | 'slurm';
  /** The plan's `executor` block (partition, time, setup, …); `runSweep` passes the plan's. */
  executorConfig?: SlurmExecutorConfig;
}

export interface SweepResult {
  out: string;
  /** Every run: the stage runs first, then the sweep's. */
  specs: RunSpec[];
  /** The stage runs (`stages.sft`), also in `specs`. */
  stages: RunSpec[];
  statuses: RunStatus[];
  failed: RunStatus[];
}

export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.DPO_SWEEP_CACHE ?? join(homedir(), '.cache', 'dpo-sweep'));
}

export function defaultOut(planName: string): string {
  return resolve('runs', planName);
}

/** Load, expand and run a plan file. */
export async function runSweep(planFile: string, options: SweepOptions): Promise<SweepResult> {
  const loaded = await loadPlan(planFile, { sets: options.sets ?? [] });
  const { stages, sweep } = stageRuns(loaded.plan, expandPlan(loaded.plan));
  const retry = options.retry ?? loaded.plan.retries;
  return runSpecs({ name: loaded.plan.name, file: loaded.file, plan: loaded.plan }, sweep, {
    ...(loaded.plan.executor ? { executorConfig: loaded.plan.executor } : {}),
    ...options,
    ...(retry ? { retry } : {}),
    stages,
  });
}

/** Where a set of runs came from: a plan, or a seed-style config (`dpo-sweep train --config`). */
export interface SweepSource {
  name: string;
  /** The file the runs were made from (hashed into sweep.json). */
  file: string;
  /** The resolved plan or config, recorded in sweep.json. */
  plan: unknown;
}

export async function runSpecs(source: SweepSource | LoadedPlan, specs: RunSpec[], options: SweepOptions): Promise<SweepResult> {
  const src: SweepSource = 'plan' in source && 'warnings' in source ? { name: source.plan.name, file: source.file, plan: source.plan } : (source as SweepSource);
  const out = resolve(options.out ?? defaultOut(src.name));
  const executor = options.executor ?? options.executorConfig?.kind ?? 'local';
  if (executor !== 'slurm') {
    const spread = [...(options.stages ?? []), ...specs].filter((s) => (s.settings.resources?.nodes_per_run ?? 1) > 1);
    if (spread.length) {
      throw new InputError(
        `resources.nodes_per_run > 1 needs the Slurm executor (executor: slurm, or --executor slurm): the local executor runs on one machine`,
        spread.map((s) => `${s.name}: nodes_per_run ${s.settings.resources.nodes_per_run}`),
      );
    }
  }
  const lock = openSweepDir(out);
  try {
    const planText = readFileSync(src.file, 'utf8');
    const previous = readJson<{ created?: string }>(join(out, 'sweep.json'));
    writeJsonAtomic(join(out, 'sweep.json'), {
      name: src.name,
      plan_file: src.file,
      plan_hash: createHash('sha256').update(planText).digest('hex'),
      sets: options.sets ?? [],
      plan: src.plan,
      stages: (options.stages ?? []).map((s) => ({ id: s.id, name: s.name })),
      runs: specs.map((s) => ({ id: s.id, name: s.name, varied: s.varied })),
      versions: { node: process.version, dpo_sweep: packageVersion() },
      created: previous?.created ?? new Date().toISOString(),
      updated: new Date().toISOString(),
    });
    options.listener?.({
      kind: 'sweep-start',
      sweep: src.name,
      out,
      runs: [...(options.stages ?? []), ...specs].map((s) => ({ id: s.id, name: s.name, state: 'queued' })),
    });
    const started = Date.now();
    const retryOptions =
      options.retry || options.timeoutMs ? { retry: { ...options.retry, ...(options.timeoutMs ? { timeout_s: options.timeoutMs / 1000 } : {}) } } : {};
    const execute = (runs: RunSpec[], overridesFor?: ExecuteOptions['overridesFor']) => executor === 'slurm' ? executeSlurm(runs, {
      out,
      cacheDir: options.cacheDir ?? defaultCacheDir(),
      python: options.python,
      sweepName: src.name,
      executor: options.executorConfig ?? { kind: 'slurm' },
      // --max-parallel → %K (else executor.max_concurrent).
      ...(options.maxParallel ? { maxConcurrent: options.maxParallel } : {}),
      ...retryOptions,
      ...(options.listener ? { listener: options.listener } : {}),
      ...(options.stopSignal ? { stopSignal: options.stopSignal } : {}),
      ...(options.killSignal ? { killSignal: options.killSignal } : {}),
      ...(options.env ? { env: options.env } : {}),
      ...(options.stopGraceMs ? { stopGraceMs: options.stopGraceMs } : {}),
      ...(overridesFor ? { overridesFor } : {}),
    }) : executeRuns(runs, {
      out,
      cacheDir: options.cacheDir ?? defaultCacheDir(),
      python: options.python,
      slots: slotNames(options.devices?.slice(0, options.maxParallel ?? options.devices.length), options.maxParallel ?? 1),
      ...(options.retry || options.timeoutMs
        ? { retry: { ...options.retry, ...(options.timeoutMs ? { timeout_s: options.timeoutMs / 1000 } : {}) } }
        : {}),
      ...(options.listener ? { listener: options.listener } : {}),
      ...(options.stopSignal ? { stopSignal: options.stopSignal } : {}),
      ...(options.killSignal ? { killSignal: options.killSignal } : {}),
      ...(options.env ? { env: options.env } : {}),
      ...(options.stopGraceMs ? { stopGraceMs: options.stopGraceMs } : {}),
      ...(overridesFor ? { overridesFor } : {}),
    });

    const stageStatuses = options.stages?.length ? await execute(options.stages) : [];
    const stageDirs = new Map(stageStatuses.map((s) => [s.id, s]));
    const blocked = (spec: RunSpec) => stageDependencies(spec).filter((id) => stageDirs.get(id)?.state !== 'succeeded');
    const runnable = specs.filter((s) => blocked(s).length === 0 && !options.stopSignal?.aborted);
    const sweepStatuses = new Map(
      (await execute(runnable, (spec) => {
        const deps = stageDependencies(spec);
        if (!deps.length) return undefined;
        const final = (id: string) => join(out, 'runs', id, 'final');
        const pinned = (v: string | undefined) => (v?.startsWith(`${STAGE_SFT}@`) ? final(v.slice(STAGE_SFT.length + 1)) : undefined);
        const model = pinned(spec.settings.model);
        const reference = pinned(spec.settings.reference) ?? (spec.settings.reference === undefined ? model : undefined);
        return { ...(model ? { model } : {}), ...(reference ? { reference } : {}) };
      })).map((s) => [s.id, s]),
    );
    for (const spec of specs) {
      if (sweepStatuses.has(spec.id)) continue;
      // Not run: its stage failed, or the sweep was stopped (Ctrl-C) before it started.
      const failedStages = blocked(spec).filter((id) => stageDirs.get(id)?.state === 'failed');
      const dir = join(out, 'runs', spec.id);
      ensureRunDir(dir, spec);
      const base = readStatus(dir) ?? initialStatus(spec, dir);
      const now = new Date().toISOString();
      const status: RunStatus = failedStages.length
        ? { ...base, state: 'failed', error_class: 'stage-failed', error: `stage run ${failedStages.join(', ')} did not succeed`, updated_at: now }
        : isComplete(dir)
          ? base
          : // A stopped stage fails nothing: the run waits, queued, for the next invocation.
            { ...base, state: 'queued', error_class: null, error: null, updated_at: now };
      if (status !== base) writeJsonAtomic(join(dir, 'status.json'), status);
      sweepStatuses.set(spec.id, status);
    }
    const statuses = [...stageStatuses, ...specs.map((s) => sweepStatuses.get(s.id)!)];
    options.listener?.({ kind: 'sweep-end', statuses, durationMs: Date.now() - started });
    return { out, specs: [...(options.stages ?? []), ...specs], stages: options.stages ?? [], statuses, failed: statuses.filter((s) => s.state === 'failed') };
  } finally {
    lock.release();
  }
}

/**
 * Create the sweep directory and take its lock (re-entrant in one process). Bad `--out` values are
 * input errors naming the path: a file, a path under a file, a folder that cannot be written.
 */
export function openSweepDir(out: string): SweepLock {
  if (existsSync(out) && !statSync(out).isDirectory()) {
    throw new InputError(`the sweep directory ${out} is a file, not a directory`, ['pass another --out, or move the file away']);
  }
  try {
    mkdirSync(out, { recursive: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOTDIR' || code === 'EEXIST' ? 'a part of its path is a file' : code === 'EACCES' || code === 'EROFS' ? 'permission denied' : (error as Error).message;
    throw new InputError(`cannot create the sweep directory ${out}: ${why}`, ['pass another --out'], { cause: error });
  }
  return acquireLock(out);
}

let version: string | undefined;
export function packageVersion(): string {
  if (!version) {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    version = pkg.version;
  }
  return version;
}
