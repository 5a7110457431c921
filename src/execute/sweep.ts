/**
 * A whole sweep: plan → runs → sweep directory → execution. The library entry point
 * (`runSweep`), used by the CLI and by scripts.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadPlan, type LoadedPlan } from '../plan/load.js';
import { expandPlan } from '../sweep/expand.js';
import type { RunSpec } from '../sweep/run-spec.js';
import type { SweepListener } from './events.js';
import type { RetryPolicy } from '../schedule/retry.js';
import { slotNames } from '../schedule/scheduler.js';
import { executeRuns } from './executor.js';
import { acquireLock } from './lock.js';
import { readJson, writeJsonAtomic, type RunStatus } from './run-dir.js';

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
  sets?: string[];
  listener?: SweepListener;
  stopSignal?: AbortSignal;
  killSignal?: AbortSignal;
  timeoutMs?: number;
  env?: Record<string, string>;
  stopGraceMs?: number;
}

export interface SweepResult {
  out: string;
  specs: RunSpec[];
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
  const specs = expandPlan(loaded.plan);
  const retry = options.retry ?? loaded.plan.retries;
  return runSpecs({ name: loaded.plan.name, file: loaded.file, plan: loaded.plan }, specs, { ...options, ...(retry ? { retry } : {}) });
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
  mkdirSync(out, { recursive: true });
  const lock = acquireLock(out);
  try {
    const planText = readFileSync(src.file, 'utf8');
    const previous = readJson<{ created?: string }>(join(out, 'sweep.json'));
    writeJsonAtomic(join(out, 'sweep.json'), {
      name: src.name,
      plan_file: src.file,
      plan_hash: createHash('sha256').update(planText).digest('hex'),
      sets: options.sets ?? [],
      plan: src.plan,
      runs: specs.map((s) => ({ id: s.id, name: s.name, varied: s.varied })),
      versions: { node: process.version, dpo_sweep: packageVersion() },
      created: previous?.created ?? new Date().toISOString(),
      updated: new Date().toISOString(),
    });
    options.listener?.({
      kind: 'sweep-start',
      sweep: src.name,
      out,
      runs: specs.map((s) => ({ id: s.id, name: s.name, state: 'queued' })),
    });
    const statuses = await executeRuns(specs, {
      out,
      cacheDir: options.cacheDir ?? defaultCacheDir(),
      python: options.python,
      slots: slotNames(options.devices?.slice(0, options.maxParallel ?? options.devices.length), options.maxParallel ?? 1),
      ...(options.retry ? { retry: options.retry } : {}),
      ...(options.listener ? { listener: options.listener } : {}),
      ...(options.stopSignal ? { stopSignal: options.stopSignal } : {}),
      ...(options.killSignal ? { killSignal: options.killSignal } : {}),
      ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
      ...(options.env ? { env: options.env } : {}),
      ...(options.stopGraceMs ? { stopGraceMs: options.stopGraceMs } : {}),
    });
    return { out, specs, statuses, failed: statuses.filter((s) => s.state === 'failed') };
  } finally {
    lock.release();
  }
}

let version: string | undefined;
export function packageVersion(): string {
  if (!version) {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    version = pkg.version;
  }
  return version;
}
