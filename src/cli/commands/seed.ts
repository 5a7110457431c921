/**
 * `dpo-sweep train --config config_dpo.yaml` / `dpo-sweep sft --config config_sft.yaml` (and the
 * `train-dpo`, `train-beta-dpo`, `train-sft` bins): a seed config → one run, run as a one-run sweep.
 *
 *   load + validate (file:line for every problem) → model map → translate → print warnings/notes
 *   → --dry-run: print the run settings | else: worker, runSpecs, summary
 */
import path from 'node:path';
import * as jsyaml from 'js-yaml';
import { InputError } from '../../errors.js';
import { defaultCacheDir, runSpecs } from '../../execute/sweep.js';
import { loadSeedConfig } from '../../seed/load.js';
import { formatSeedMessage } from '../../seed/messages.js';
import { MODEL_MAP_ENV, readModelMap } from '../../seed/model-map.js';
import { translateSeedConfig, type SeedAlgorithm, type SeedCommand, type Translation } from '../../seed/translate.js';
import { ensureWorker } from '../../setup/python-env.js';
import type { CliIO } from '../io.js';
import { runWithProgress } from '../sweep-session.js';

export interface SeedCommandOptions {
  /** The seed config file. */
  config: string;
  /** Sweep directory (default `runs/<run_name>/`). */
  out?: string;
  /** `--model-map`: a file, inline JSON, or `id=path,...` pairs (merged over DPO_SWEEP_MODEL_MAP). */
  modelMap?: string;
  /** `--set key=value` on seed config keys. */
  set?: string[];
  /** Controllers update per micro-batch, as in the seed. */
  seedCadence?: boolean;
  dryRun?: boolean;
  maxSteps?: number;
  cacheDir?: string;
  python?: string;
  /** Wall-clock limit of the run (seconds). */
  timeout?: number;
}

/** Reads, validates and translates; prints the messages. Throws `InputError` (exit 2) on bad input. */
export async function prepareSeedRun(command: SeedCommand, opts: SeedCommandOptions, io: CliIO, algorithm?: SeedAlgorithm): Promise<Translation & { file: string; config: unknown }> {
  const loaded = await loadSeedConfig(opts.config, { sets: opts.set ?? [] });
  const modelMap = readModelMap({ flag: opts.modelMap, env: io.env[MODEL_MAP_ENV] });
  const translation = translateSeedConfig(loaded, {
    command,
    modelMap,
    ...(algorithm ? { algorithm } : {}),
    ...(opts.seedCadence ? { seedCadence: true } : {}),
    ...(opts.maxSteps !== undefined ? { maxSteps: opts.maxSteps } : {}),
  });
  for (const m of translation.messages) io.err(`${m.level}: ${formatSeedMessage(m)}`);
  return { ...translation, file: loaded.file, config: loaded.config };
}

export async function seedCommand(command: SeedCommand, opts: SeedCommandOptions, io: CliIO, algorithm?: SeedAlgorithm): Promise<number> {
  const run = await prepareSeedRun(command, opts, io, algorithm);
  const { spec } = run;
  const out = path.resolve(opts.out ?? path.join('runs', spec.name));
  const hubToken = Boolean(io.env.HF_TOKEN);
  const tokenProblem = `hub push to ${spec.settings.hub.model_id ?? '?'} needs HF_TOKEN in the environment (never in a file or on the command line)`;

  if (opts.dryRun) {
    if (spec.settings.hub.push && !hubToken) io.err(`warning: ${tokenProblem}`);
    io.out(`# ${command === 'sft' ? 'sft' : 'train'} --config ${opts.config}: one ${run.algorithm} run → ${out}/runs/${spec.id}/`);
    io.out(jsyaml.dump({ id: spec.id, name: spec.name, settings: spec.settings }, { lineWidth: -1, noRefs: true }).trimEnd());
    return 0;
  }
  if (spec.settings.hub.push && !hubToken) throw new InputError(tokenProblem);

  const python = await ensureWorker({ ...(opts.python ? { python: opts.python } : {}), log: (l) => io.err(`setup: ${l}`) }, io.env);
  const source = { name: spec.name, file: run.file, plan: { command, algorithm: run.algorithm, seed_config: run.config } };
  return runWithProgress(io, (controls) =>
    runSpecs(source, [spec], {
      python,
      out,
      sets: opts.set ?? [],
      cacheDir: opts.cacheDir ?? defaultCacheDir(io.env),
      ...(opts.timeout ? { timeoutMs: opts.timeout * 1000 } : {}),
      ...controls,
    }),
  );
}
