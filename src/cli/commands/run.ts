import { defaultCacheDir, runSweep } from '../../execute/sweep.js';
import { lineRenderer, listrRenderer } from '../../progress/render.js';
import { summaryTable } from '../../progress/view.js';
import { ensureWorker } from '../../setup/python-env.js';
import type { CliIO } from '../io.js';
import { planCommand } from './plan.js';

export interface RunCommandOptions {
  out?: string;
  cacheDir?: string;
  maxParallel?: number;
  set?: string[];
  dryRun?: boolean;
  python?: string;
  timeout?: number;
}

/** `dpo-sweep <plan>`: validate, set up the worker if needed, run every run, print the summary. */
export async function runCommand(file: string, opts: RunCommandOptions, io: CliIO): Promise<number> {
  if (opts.dryRun) return planCommand(file, opts, io);
  const python = await ensureWorker({ ...(opts.python ? { python: opts.python } : {}), log: (l) => io.err(`setup: ${l}`) }, io.env);
  const renderer = io.isTTY ? await listrRenderer() : lineRenderer(io.out);

  const stop = new AbortController();
  const kill = new AbortController();
  let interrupts = 0;
  const onSigint = () => {
    interrupts += 1;
    if (interrupts === 1) {
      io.err('stopping: each running run saves a checkpoint (Ctrl-C again to kill)');
      stop.abort();
    } else {
      kill.abort();
    }
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  try {
    const result = await runSweep(file, {
      python,
      sets: opts.set ?? [],
      cacheDir: opts.cacheDir ?? defaultCacheDir(io.env),
      ...(opts.out ? { out: opts.out } : {}),
      ...(opts.maxParallel ? { maxParallel: opts.maxParallel } : {}),
      ...(opts.timeout ? { timeoutMs: opts.timeout * 1000 } : {}),
      listener: renderer.listener,
      stopSignal: stop.signal,
      killSignal: kill.signal,
    });
    await renderer.done();
    io.out('');
    io.out(summaryTable(result.statuses));
    io.out(`sweep directory: ${result.out}`);
    const unfinished = result.statuses.some((s) => s.state !== 'succeeded');
    return result.failed.length || unfinished ? 1 : 0;
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
  }
}
