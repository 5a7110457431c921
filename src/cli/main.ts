/**
 * The command-line program. The only module that reads argv, prints and exits (through `bin.ts`);
 * commands are plain async functions in `commands/`, imported lazily so `--help` stays fast.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { DpoSweepError, EXIT, InputError } from '../errors.js';
import { processIO, type CliIO } from './io.js';
import { addSeedOptions } from './seed-bins.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];
const positiveInt = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected a positive integer, got "${value}"`);
  return n;
};

const number = (value: string) => {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`expected a number, got "${value}"`);
  return n;
};
const nonNegativeInt = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`expected a non-negative integer, got "${value}"`);
  return n;
};

export function buildProgram(io: CliIO, setExit: (code: number) => void): Command {
  const program = new Command('dpo-sweep')
    .description('Sweeps, run state, judges and reports for DPO-family preference optimisation.')
    .version('0.1.0')
    .showHelpAfterError('(dpo-sweep <command> --help for usage)')
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) })
    .exitOverride();

  const action =
    <A extends unknown[]>(fn: (...args: A) => Promise<number>) =>
    async (...args: A) => setExit(await fn(...args));

  program
    .command('run', { isDefault: true })
    .description('run a plan: every run of its sweep (finished runs are skipped)')
    .argument('<plan>', 'plan YAML file')
    .option('--out <dir>', 'sweep directory (default runs/<plan name>/)')
    .option('--cache-dir <dir>', 'cache for models and reference log-probs (default ~/.cache/dpo-sweep or DPO_SWEEP_CACHE)')
    .option('--max-parallel <n>', 'runs at a time (runner processes); on GPUs at most one per device', positiveInt)
    .option('--devices <list>', 'GPU indices to use, one run slot each (default: all visible GPUs, else one CPU slot)')
    .option('--set <key=value>', 'override a plan key (repeatable): --set base.beta=0.2', collect)
    .option('--dry-run', 'validate and show the runs without running them')
    .option('--timeout <seconds>', 'wall-clock limit per run attempt', positiveInt)
    .addOption(new Option('--executor <kind>', "where runs execute (default: the plan's executor.kind, else local); slurm: one job array, --max-parallel is its %K").choices(['local', 'slurm']))
    .addOption(new Option('--python <path>', 'use this Python interpreter for the worker').env('DPO_SWEEP_PYTHON'))
    .action(action(async (plan: string, opts) => (await import('./commands/run.js')).runCommand(plan, opts, io)));

  program
    .command('validate')
    .description('check a plan and report every problem at once')
    .argument('<plan>', 'plan YAML file')
    .option('--set <key=value>', 'override a plan key (repeatable)', collect)
    .action(action(async (plan: string, opts) => (await import('./commands/plan.js')).validateCommand(plan, opts, io)));

  program
    .command('plan')
    .description('dry run: the table of runs a plan expands to, with estimated tokens (and time, once runs measured it)')
    .argument('<plan>', 'plan YAML file')
    .option('--set <key=value>', 'override a plan key (repeatable)', collect)
    .option('--out <dir>', 'sweep directory whose finished runs give the measured throughput')
    .action(action(async (plan: string, opts) => (await import('./commands/plan.js')).planCommand(plan, opts, io)));

  program
    .command('status')
    .description('state of every run of a sweep (works while the sweep is running)')
    .argument('<sweep-dir>', 'sweep directory')
    .option('--json', 'machine-readable output')
    .action(action(async (dir: string, opts) => (await import('./commands/status.js')).statusCommand(dir, opts, io)));

  program
    .command('cancel')
    .description('cancel the Slurm jobs of a sweep: pending tasks at once, running runs checkpoint first')
    .argument('<sweep-dir>', 'sweep directory')
    .option('--now', 'end every task at once (plain scancel: no checkpoint wait)')
    .option('--wait <seconds>', 'how long running runs get to checkpoint before a plain scancel (default 90)', positiveInt)
    .action(action(async (dir: string, opts) => (await import('./commands/cancel.js')).cancelCommand(dir, opts, io)));

  program
    .command('setup')
    .description('create the worker virtual environment with the pinned packages (idempotent)')
    .option('--force', 'reinstall even when the pins are unchanged')
    .addOption(new Option('--python <path>', 'use this interpreter instead of a managed venv').env('DPO_SWEEP_PYTHON'))
    .action(action(async (opts) => (await import('./commands/setup.js')).setupCommand(opts, io)));

  program
    .command('doctor')
    .description('Python path, torch/transformers/trl versions against the pins, devices')
    .option('--json', 'machine-readable output')
    .addOption(new Option('--python <path>', 'check this interpreter').env('DPO_SWEEP_PYTHON'))
    .action(action(async (opts) => (await import('./commands/setup.js')).doctorCommand(opts, io)));

  const train = program
    .command('train')
    .description('train from a seed config: config_dpo.yaml (dynamic β), or one with a beta_dpo block (β-DPO)')
    .requiredOption('--config <yaml>', 'seed training config (config_dpo.yaml, config_beta_dpo.yaml, ...)');
  addSeedOptions(train, 'train').action(action(async (opts) => (await import('./commands/seed.js')).seedCommand('train', opts, io)));

  const sft = program
    .command('sft')
    .description('supervised fine-tuning from a seed config (config_sft.yaml)')
    .requiredOption('--config <yaml>', 'seed config with an sft_training block');
  addSeedOptions(sft, 'sft').action(action(async (opts) => (await import('./commands/seed.js')).seedCommand('sft', opts, io)));

  program
    .command('rollout')
    .description("the seed's rollout pipeline: k candidates per prompt, reward-model judge, DPO pairs (rerun to continue)")
    .requiredOption('--config <yaml>', 'seed config with a rollout block (config_rollout.yaml)')
    .option('--limit <n>', 'prompts to generate (wins over rollout.limit)', positiveInt)
    .option('--out <dir>', 'output folder (wins over rollout.output_dir)')
    .option(
      '--model-map <map>',
      'hub id → local dir/file or builtin:<model>: a JSON/YAML file, inline JSON, or id=path,id=path (merged over DPO_SWEEP_MODEL_MAP)',
    )
    .option('--set <key=value>', 'override a seed config key (repeatable): --set rollout.k=4', collect)
    .option('--dry-run', 'validate and print the worker request without running')
    .option('--cache-dir <dir>', 'cache for built-in models (default ~/.cache/dpo-sweep or DPO_SWEEP_CACHE)')
    .addOption(new Option('--python <path>', 'use this Python interpreter for the worker').env('DPO_SWEEP_PYTHON'))
    .action(action(async (opts) => (await import('./commands/rollout.js')).rolloutCommand(opts, io)));

  program
    .command('generate')
    .description('outputs of a model for evaluation prompts, in AlpacaEval format (with KL to a reference)')
    .requiredOption('--model <model>', 'model directory, builtin:<name> or hub id')
    .requiredOption('--prompts <file>', 'AlpacaEval JSON, HH transcripts, TL;DR posts, a plain list (.json/.txt) or message data')
    .requiredOption('--out <file>', 'outputs file (.json array or .jsonl)')
    .option('--n <n>', 'samples per prompt (default 1)', positiveInt)
    .option('--max-new-tokens <n>', 'tokens per sample (default 512)', positiveInt)
    .option('--temperature <t>', 'sampling temperature, 0 = greedy (default 0.7)', number)
    .option('--top-p <p>', 'nucleus sampling (default 0.9)', number)
    .option('--seed <s>', 'sampling seed (default 42)', nonNegativeInt)
    .option('--reference <model>', 'reference model: adds each sample\'s KL estimate (sum of log pi - log pi_ref)')
    .option('--reward-model <model>', 'reward model: adds each sample\'s reward')
    .option('--generator <name>', 'generator name in the outputs (default: the model\'s name)')
    .option('--dataset <name>', 'dataset name in the outputs (default: AlpacaEval\'s own, else the prompts file name)')
    .option('--format <format>', 'prompt format: alpaca | tldr | hh | list | messages | generated | pairs (default: detected)')
    .option('--split <split>', 'split of a hub dataset or slice of a file (default train)')
    .option('--limit <n>', 'first N prompts only', positiveInt)
    .option('--batch-size <n>', 'prompts per generate call (default 8)', positiveInt)
    .option('--cache-dir <dir>', 'cache for built-in models (default ~/.cache/dpo-sweep or DPO_SWEEP_CACHE)')
    .addOption(new Option('--python <path>', 'use this Python interpreter for the worker').env('DPO_SWEEP_PYTHON'))
    .action(action(async (opts) => (await import('./commands/generate.js')).generateCommand(opts, io)));

  program
    .command('report')
    .description('write report.md, report.html, summary.json and results.csv for a sweep or judge directory')
    .argument('<dir>', 'sweep directory or judge output directory')
    .option('--format <list>', 'formats to write: md,html,json,csv (default: the plan\'s, else all)')
    .option('--metric <name>', 'metric that picks the best run (prefix - or + to force the direction)')
    .action(action(async (dir: string, opts) => (await import('./commands/report.js')).reportCommand(dir, opts, io)));

  program
    .command('judge')
    .description('pairwise judging of two output files (LLM presets via the OpenAI API, or rule presets)')
    .requiredOption('--a <outputs>', 'outputs of system A (AlpacaEval JSON array or JSONL)')
    .requiredOption('--b <outputs>', 'outputs of system B, or reference answers')
    .requiredOption('--preset <name>', 'hh | tldr | alpaca | a rule preset | a preset folder')
    .requiredOption('--out <dir>', 'output folder (judgments.jsonl, summary.json)')
    .option('--model <model>', 'judge model (default: the preset\'s)')
    .option('--both-orders', 'judge each pair in both orders')
    .option('--seed <n>', 'order and bootstrap seed', '42')
    .option('--concurrency <n>', 'requests in flight')
    .option('--max-cost <usd>', 'refuse to start, or stop before, spending more than this')
    .option('--dry-run', 'print the requests and the estimated cost, send nothing')
    .option('--cache-dir <dir>', 'judgment cache root (default ~/.cache/dpo-sweep or DPO_SWEEP_CACHE)')
    .option('--rpm <n>', 'requests per minute')
    .option('--tpm <n>', 'tokens per minute')
    .option('--timeout <seconds>', 'per-request timeout')
    .option('--prices <file>', 'JSON price table (USD per 1M tokens) overriding the built-in one')
    .action(
      action(async (opts) => {
        const { judgeCommand } = await import('../judge/command.js');
        const { exitCode } = await judgeCommand(opts, { log: (line) => io.err(line), env: io.env });
        return exitCode;
      }),
    );

  return program;
}

/** Run the program; returns the exit code (never calls process.exit itself). */
export async function main(argv: string[], io: CliIO = processIO): Promise<number> {
  let code: number = EXIT.ok;
  const program = buildProgram(io, (c) => (code = c));
  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (error) {
    return reportError(error, io);
  }
}

export function reportError(error: unknown, io: CliIO): number {
  const e = error as { code?: string; exitCode?: number };
  if (typeof e?.code === 'string' && e.code.startsWith('commander.')) {
    // commander already printed what was wrong (or the help / version).
    return e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.exitCode === 0 ? EXIT.ok : EXIT.badInput;
  }
  if (error instanceof InputError) {
    io.err(`error: ${error.message}`);
    for (const line of error.details) io.err(`  ${line}`);
    return EXIT.badInput;
  }
  if (error instanceof DpoSweepError) {
    io.err(`error: ${error.message}`);
    if (error.code === 'locked') return EXIT.locked;
    if (error.code === 'bad-input') return EXIT.badInput;
    return EXIT.failed;
  }
  io.err(`internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  io.err('This is a bug in dpo-sweep; please report it with the command you ran.');
  return EXIT.failed;
}
