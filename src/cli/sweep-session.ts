/**
 * Running a sweep from the CLI: progress renderer (listr2 on a TTY, lines elsewhere), Ctrl-C (first
 * asks each run to checkpoint and stop, second kills), the summary table and the exit code. Shared
 * by `dpo-sweep run` and the seed-config commands (`train`, `sft`, `train-dpo`, …).
 */
import type { SweepListener } from '../execute/events.js';
import type { SweepResult } from '../execute/sweep.js';
import { lineRenderer, listrRenderer } from '../progress/render.js';
import { summaryTable } from '../progress/view.js';
import type { CliIO } from './io.js';

export interface SweepControls {
  listener: SweepListener;
  stopSignal: AbortSignal;
  killSignal: AbortSignal;
}

/** Runs `start` with progress and signal handling; 0 when every run succeeded, else 1. */
export async function runWithProgress(io: CliIO, start: (controls: SweepControls) => Promise<SweepResult>): Promise<number> {
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
    const result = await start({ listener: renderer.listener, stopSignal: stop.signal, killSignal: kill.signal });
    await renderer.done();
    io.out('');
    io.out(summaryTable(result.statuses));
    const stageFailures = (result as { stageFailures?: string[] }).stageFailures ?? [];
    for (const f of stageFailures) io.out(`stage failed: ${f}`);
    const report = (result as { report?: string[] }).report ?? [];
    const html = report.find((f) => f.endsWith('.html'));
    if (html) io.out(`report: ${html}`);
    io.out(`sweep directory: ${result.out}`);
    const unfinished = result.statuses.some((s) => s.state !== 'succeeded');
    return result.failed.length || unfinished || stageFailures.length ? 1 : 0;
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
  }
}
