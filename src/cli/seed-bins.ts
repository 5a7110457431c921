/**
 * The seed's console scripts, re-created: `train-dpo`, `train-beta-dpo`, `train-sft` read a seed
 * config (`--config`, default the seed's file name in the working directory) and run it as
 * `dpo-sweep train` / `dpo-sweep sft` would, with the algorithm fixed by the script's name as in
 * the seed (train-dpo: dynamic β, ignoring a beta_dpo block; train-beta-dpo: β-DPO). `--output_dir`
 * is accepted and names the sweep directory. Also: the options shared with `dpo-sweep train/sft`.
 */
import { Command, Option } from 'commander';
import { EXIT, InputError } from '../errors.js';
import type { SeedAlgorithm, SeedCommand } from '../seed/translate.js';
import type { SeedCommandOptions } from './commands/seed.js';
import { processIO, type CliIO } from './io.js';

export type SeedBin = 'train-dpo' | 'train-beta-dpo' | 'train-sft';

export const SEED_BINS: Record<SeedBin, { command: SeedCommand; algorithm: SeedAlgorithm; config: string; description: string }> = {
  'train-dpo': {
    command: 'train',
    algorithm: 'dynamic-beta-dpo',
    config: 'config_dpo.yaml',
    description: "risk-based dynamic-β DPO from a seed config (the seed's train-dpo)",
  },
  'train-beta-dpo': {
    command: 'train',
    algorithm: 'beta-dpo',
    config: 'config_beta_dpo.yaml',
    description: "β-DPO from a seed config (the seed's train-beta-dpo)",
  },
  'train-sft': { command: 'sft', algorithm: 'sft', config: 'config_sft.yaml', description: "SFT from a seed config (the seed's train-sft)" },
};

const collect = (value: string, previous: string[] = []) => [...previous, value];
const positiveInt = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InputError(`expected a positive integer, got "${value}"`);
  return n;
};

/** The options of `dpo-sweep train` / `sft` and of the seed bins (all but `--config`). */
export function addSeedOptions(command: Command, kind: SeedCommand): Command {
  command
    .option('--out <dir>', 'sweep directory (default runs/<run_name>/)')
    .option(
      '--model-map <map>',
      'hub id → local dir/file or builtin:<model>: a JSON/YAML file, inline JSON, or id=path,id=path (merged over DPO_SWEEP_MODEL_MAP)',
    )
    .option('--set <key=value>', 'override a seed config key (repeatable): --set dpo_training.batch_size=2', collect)
    .option('--max-steps <n>', 'stop after N optimizer steps (the seed has no such key)', positiveInt);
  if (kind === 'train') command.option('--seed-cadence', "update β/τ (or M0/σ) after every micro-batch, as the seed did (default: once per optimizer step)");
  return command
    .option('--dry-run', 'validate and print the translated run settings without running')
    .option('--cache-dir <dir>', 'cache for models and reference log-probs (default ~/.cache/dpo-sweep or DPO_SWEEP_CACHE)')
    .option('--timeout <seconds>', 'wall-clock limit of the run', positiveInt)
    .addOption(new Option('--python <path>', 'use this Python interpreter for the worker').env('DPO_SWEEP_PYTHON'));
}

export function buildSeedBinProgram(bin: SeedBin, io: CliIO, setExit: (code: number) => void): Command {
  const spec = SEED_BINS[bin];
  const program = new Command(bin)
    .description(`${spec.description}; dpo-sweep ${spec.command} --config … does the same with the algorithm chosen from the file`)
    .showHelpAfterError()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) })
    .exitOverride()
    .option('--config <yaml>', 'seed config', spec.config)
    .option('--output_dir <dir>', 'sweep directory (same as --out)');
  addSeedOptions(program, spec.command);
  program.action(async (opts: SeedCommandOptions & { output_dir?: string }) => {
    const { output_dir: outputDir, ...rest } = opts;
    if (outputDir && rest.out && outputDir !== rest.out) throw new InputError('--output_dir and --out name different directories; give one');
    const { seedCommand } = await import('./commands/seed.js');
    setExit(await seedCommand(spec.command, { ...rest, ...(outputDir ? { out: outputDir } : {}) }, io, spec.algorithm));
  });
  return program;
}

/** Runs a seed bin; returns the exit code (never calls process.exit itself). */
export async function seedBinMain(bin: SeedBin, argv: string[], io: CliIO = processIO): Promise<number> {
  let code: number = EXIT.ok;
  const program = buildSeedBinProgram(bin, io, (c) => (code = c));
  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (error) {
    const { reportError } = await import('./main.js');
    return reportError(error, io);
  }
}

/** The body of a bin file: run, let stdout/stderr drain, exit. */
export async function runSeedBin(bin: SeedBin): Promise<void> {
  const code = await seedBinMain(bin, process.argv.slice(2));
  process.exitCode = code;
  setImmediate(() => process.exit(code));
}
