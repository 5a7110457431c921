import { defaultCacheDir } from '../../execute/sweep.js';
import { runPlan } from '../../pipeline.js';
import { detectGpus, parseDevices } from '../../setup/devices.js';
import { ensureWorker } from '../../setup/python-env.js';
import type { CliIO } from '../io.js';
import { runWithProgress } from '../sweep-session.js';
import { planCommand } from './plan.js';

export interface RunCommandOptions {
  out?: string;
  cacheDir?: string;
  maxParallel?: number;
  set?: string[];
  dryRun?: boolean;
  python?: string;
  timeout?: number;
  devices?: string;
  executor?: 'local' | 'slurm';
}

/** `dpo-sweep <plan>`: validate, set up the worker if needed, run every run, print the summary. */
export async function runCommand(file: string, opts: RunCommandOptions, io: CliIO): Promise<number> {
  if (opts.dryRun) return planCommand(file, opts, io);
  const devices = opts.devices !== undefined ? parseDevices(opts.devices) : await detectGpus(io.env);
  const python = await ensureWorker({ ...(opts.python ? { python: opts.python } : {}), log: (l) => io.err(`setup: ${l}`) }, io.env);
  return runWithProgress(io, (controls) =>
    runPlan(file, {
      python,
      sets: opts.set ?? [],
      cacheDir: opts.cacheDir ?? defaultCacheDir(io.env),
      ...(opts.out ? { out: opts.out } : {}),
      ...(opts.maxParallel ? { maxParallel: opts.maxParallel } : {}),
      ...(devices.length ? { devices } : {}),
      ...(opts.timeout ? { timeoutMs: opts.timeout * 1000 } : {}),
      ...(opts.executor ? { executor: opts.executor } : {}),
      ...controls,
    }),
  );
}
