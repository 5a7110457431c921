/**
 * `dpo-sweep judge`: the command as a plain async function the CLI wires with commander (and tests
 * call directly).
 *
 *   dpo-sweep judge --a <outputs> --b <outputs> --preset <name> --out <dir> [--model M] [--both-orders]
 *     [--seed N] [--concurrency N] [--max-cost USD] [--dry-run]
 *     [--cache-dir DIR] [--rpm N] [--tpm N] [--timeout S] [--prices FILE]
 *
 * Options arrive as commander gives them (numbers may be strings) and are validated here. Bad input
 * throws an InputError (the CLI prints it and exits 2); otherwise the exit code is 0, or 1 when
 * sending stopped early (budget or cancellation).
 */
import { z } from 'zod';
import { InputError } from '../errors.js';
import { makeRedactor } from './secrets.js';
import { runJudge, summaryLine, type JudgeDeps, type JudgeSummary } from './run.js';

const count = z.coerce.number().int().positive();

export const judgeCommandOptionsSchema = z.object({
  /** Outputs of system A (AlpacaEval JSON array or JSONL). */
  a: z.string().min(1),
  /** Outputs of system B, or reference answers. */
  b: z.string().min(1),
  /** Preset name (configs/judges/<name>) or folder. */
  preset: z.string().min(1),
  /** Output folder. */
  out: z.string().min(1),
  model: z.string().min(1).optional(),
  bothOrders: z.boolean().optional(),
  /** Order and bootstrap seed (default 42). */
  seed: z.coerce.number().int().nonnegative().optional(),
  /** Requests in flight (default 8). */
  concurrency: count.optional(),
  /** USD. */
  maxCost: z.coerce.number().nonnegative().optional(),
  dryRun: z.boolean().optional(),
  /** Cache root (default $DPO_SWEEP_CACHE or ~/.cache/dpo-sweep). */
  cacheDir: z.string().min(1).optional(),
  /** Requests per minute. */
  rpm: count.optional(),
  /** Tokens per minute. */
  tpm: count.optional(),
  /** Per-request timeout in seconds (default 60). */
  timeout: z.coerce.number().positive().optional(),
  /** JSON price table overriding the built-in one. */
  prices: z.string().min(1).optional(),
});

export type JudgeCommandOptions = z.input<typeof judgeCommandOptionsSchema>;

export interface JudgeCommandIo {
  log(line: string): void;
  env: NodeJS.ProcessEnv;
  /**
   * Stop on SIGINT / SIGTERM as on a cancellation: unsent pairs end `invalid` (cancelled), the files
   * are written and the exit code is 1; a second signal exits at once (130). Default: on when no
   * `deps.signal` is given (the CLI), off otherwise.
   */
  handleSignals?: boolean;
}

export async function judgeCommand(
  opts: JudgeCommandOptions,
  io: JudgeCommandIo,
  deps: Omit<JudgeDeps, 'env' | 'log'> = {},
): Promise<{ exitCode: number; summary?: JudgeSummary }> {
  const parsed = judgeCommandOptionsSchema.safeParse(opts);
  if (!parsed.success) {
    throw new InputError(
      'dpo-sweep judge: invalid options',
      parsed.error.issues.map((i) => `--${String(i.path[0] ?? '').replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}: ${i.message}`),
    );
  }
  const o = parsed.data;
  const redact = makeRedactor(io.env);
  const say = (line: string) => io.log(redact(line));
  let signal = deps.signal;
  let release = () => {};
  if (io.handleSignals ?? deps.signal === undefined) {
    const stop = new AbortController();
    if (deps.signal) {
      const outer = deps.signal;
      if (outer.aborted) stop.abort(outer.reason);
      else outer.addEventListener('abort', () => stop.abort(outer.reason), { once: true });
    }
    let interrupts = 0;
    const onSignal = () => {
      interrupts++;
      if (interrupts === 1) {
        say('stopping: no new requests; judged pairs are cached and the files are written (signal again to quit now)');
        stop.abort(new Error('interrupted'));
      } else {
        process.exit(130);
      }
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    release = () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    };
    signal = stop.signal;
  }
  let summary: JudgeSummary;
  try {
    summary = await runJudge(
      {
        a: o.a,
        b: o.b,
        preset: o.preset,
        out: o.out,
        model: o.model,
        bothOrders: o.bothOrders,
        seed: o.seed,
        concurrency: o.concurrency,
        maxCost: o.maxCost,
        dryRun: o.dryRun,
        cacheDir: o.cacheDir,
        rpm: o.rpm,
        tpm: o.tpm,
        timeoutMs: o.timeout !== undefined ? o.timeout * 1000 : undefined,
        pricesFile: o.prices,
      },
      { ...deps, env: io.env, log: say, ...(signal ? { signal } : {}) },
    );
  } finally {
    release();
  }
  if (summary.dry_run) {
    say(
      `dry run: ${summary.planned_requests} requests to send, ${summary.cache_hits} cached, estimated cost ${
        summary.estimated_cost_usd === null ? 'unknown' : `$${summary.estimated_cost_usd.toFixed(4)}`
      }`,
    );
    return { exitCode: 0, summary };
  }
  if (summary.stopped !== null) {
    say(`stopped early (${summary.stopped}): ${summary.invalid} pairs left invalid; rerun to finish (judged pairs are cached)`);
    return { exitCode: 1, summary };
  }
  say(`wrote ${o.out}/judgments.jsonl and ${o.out}/summary.json`);
  return { exitCode: 0, summary };
}

export { summaryLine };
