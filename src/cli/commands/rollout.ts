/**
 * `dpo-sweep rollout --config config_rollout.yaml [--limit N] [--out DIR] [--model-map …]`: the seed's
 * rollout script (seed-spec §4), rebuilt: k candidates per prompt, reward-model judge, DPO pairs.
 *
 *   load + validate the seed config (file:line for every problem) → model map → translate
 *   → --dry-run: print the worker request | else: worker (one runner), progress lines, summary
 *
 * Rerunning continues: finished prompts are never regenerated (docs/rollouts.md).
 */
import * as jsyaml from 'js-yaml';
import { InputError } from '../../errors.js';
import { defaultCacheDir } from '../../execute/sweep.js';
import { callWorker } from '../../execute/worker-call.js';
import { translateRolloutConfig } from '../../rollout/config.js';
import { formatProgress, outputPathProblem, runRolloutJob, throttle, type RolloutProgress } from '../../rollout/manager.js';
import { loadSeedConfig } from '../../seed/load.js';
import { formatSeedMessage } from '../../seed/messages.js';
import { MODEL_MAP_ENV, readModelMap } from '../../seed/model-map.js';
import { ensureWorker } from '../../setup/python-env.js';
import type { CliIO } from '../io.js';

export interface RolloutCommandOptions {
  config: string;
  limit?: number;
  out?: string;
  modelMap?: string;
  set?: string[];
  cacheDir?: string;
  python?: string;
  dryRun?: boolean;
  /** Progress lines at most this often (ms; default 2000). */
  progressEveryMs?: number;
}

export async function rolloutCommand(opts: RolloutCommandOptions, io: CliIO): Promise<number> {
  const loaded = await loadSeedConfig(opts.config, { sets: opts.set ?? [] });
  const modelMap = readModelMap({ flag: opts.modelMap, env: io.env[MODEL_MAP_ENV] });
  const { request, messages } = translateRolloutConfig(loaded, {
    cacheDir: opts.cacheDir ?? defaultCacheDir(io.env),
    modelMap,
    ...(opts.limit !== undefined ? { limit: opts.limit } : {}),
    ...(opts.out !== undefined ? { out: opts.out } : {}),
  });
  for (const m of messages) io.err(`${m.level}: ${formatSeedMessage(m)}`);
  const outProblem = outputPathProblem(request.output_dir, 'dir');
  if (outProblem) throw new InputError(`output folder ${opts.out !== undefined ? `(--out ${opts.out})` : '(rollout.output_dir)'}: ${outProblem}`);
  if (opts.dryRun) {
    io.out(`# rollout --config ${opts.config} → ${request.output_dir}`);
    io.out(jsyaml.dump(request, { lineWidth: -1, noRefs: true }).trimEnd());
    return 0;
  }

  const python = await ensureWorker({ ...(opts.python ? { python: opts.python } : {}), log: (l) => io.err(`setup: ${l}`) }, io.env);
  const stop = new AbortController();
  let interrupts = 0;
  const onSignal = () => {
    interrupts += 1;
    if (interrupts === 1) {
      io.err('stopping after the current batch (files stay resumable; Ctrl-C again to quit now)');
      stop.abort();
    } else {
      process.exit(130);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const show = throttle<RolloutProgress>(opts.progressEveryMs ?? 2000, (p) => io.err(`rollout: ${formatProgress(p)}`), (p) => p.total !== null && p.done >= p.total);
  try {
    const { state, skipped } = await runRolloutJob({
      dir: request.output_dir,
      job: 'rollout',
      fn: 'rollout',
      request: request as unknown as Record<string, unknown>,
      call: (fn, req, callOpts) => callWorker(fn, req, { python, logPath: callOpts.logPath, onEvent: callOpts.onEvent, ...(callOpts.signal ? { signal: callOpts.signal } : {}) }),
      onProgress: show,
      signal: stop.signal,
    });
    const r = (state.result ?? {}) as Record<string, unknown>;
    if (skipped) io.err('rollout: already complete with these settings; nothing to do');
    const num = (k: string) => (typeof r[k] === 'number' ? (r[k] as number) : 0);
    io.out(
      `rollout ${state.status}: ${num('prompts_generated')} prompts with ${request.k} candidates each (${num('generated_now')} generated now), ` +
        `${num('judged')} judged pairs, ${num('skipped_ties')} skipped as ties, ${num('skipped_too_few')} with fewer than 2 non-empty candidates, ` +
        `${num('dropped_empty')} empty candidates dropped`,
    );
    io.out(`output: ${request.output_dir} (rollout_responses.jsonl, rollout_judged.jsonl, manifest.json)`);
    if (state.status !== 'complete') io.out('rerun the same command to continue');
    return state.status === 'complete' ? 0 : 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
