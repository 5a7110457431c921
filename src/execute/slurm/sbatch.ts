/**
 * The batch script of one job array (pure): `#SBATCH` lines from the plan's `executor` block, the
 * plan's `setup` lines, then the task: array index → run directory through a manifest file in the
 * sweep directory, and `exec` of the same runner the local executor forks, in its standalone mode.
 * `exec` makes the runner the batch shell, so `scancel --batch --signal=TERM` (a graceful stop) and
 * `--signal=B:TERM@N` (before the time limit) reach the runner alone: it asks its Python worker to
 * checkpoint, exactly once, and records the run as cancelled.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The `executor` block of a plan (src/plan/schema.ts `ExecutorSchema`), plus `gpus_per_run`. */
export interface SlurmExecutorConfig {
  kind?: 'local' | 'slurm';
  partition?: string;
  account?: string;
  qos?: string;
  time?: string;
  mem?: string;
  cpus_per_run?: number;
  /** GPUs per task (`--gres=gpu:N`); default: the runs' `resources.gpus_per_run` when the partition has GPUs, else none. */
  gpus_per_run?: number;
  max_concurrent?: number;
  extra_sbatch?: string[];
  setup?: string[];
}

export interface ManifestEntry {
  runDir: string;
  attempt: number;
  /** Runs of the sweep sharing this run's reference log-probs (src/sweep/sharing.ts); default 1. */
  refSharing?: number;
}

/** One line per array index: `<run dir>\t<attempt>\t<ref sharing>`. */
export function renderManifest(entries: readonly ManifestEntry[]): string {
  for (const e of entries) {
    if (/[\t\n]/.test(e.runDir)) throw new Error(`a run directory with a tab or newline cannot go to Slurm: ${JSON.stringify(e.runDir)}`);
  }
  return entries.map((e) => `${e.runDir}\t${e.attempt}\t${e.refSharing ?? 1}\n`).join('');
}

export interface RunnerCommand {
  /** The node binary (the task may override it with DPO_SWEEP_NODE, e.g. from a `setup` line). */
  node: string;
  /** Arguments before the runner script (`--import <tsx>` when running from sources). */
  execArgv: string[];
  runner: string;
}

/**
 * The runner as the task starts it: `dist/execute/runner.js` when dpo-sweep runs compiled, or
 * `src/execute/runner.ts` under tsx (absolute loader path) when it runs from sources (the tests).
 * Either way, paths are absolute: the nodes see the install on the shared filesystem.
 */
export function runnerCommand(): RunnerCommand {
  const here = fileURLToPath(import.meta.url);
  const node = process.execPath;
  if (here.endsWith('.ts')) {
    const tsx = createRequire(import.meta.url).resolve('tsx');
    return { node, execArgv: ['--import', pathToFileURL(tsx).href], runner: join(here, '..', '..', 'runner.ts') };
  }
  return { node, execArgv: [], runner: join(here, '..', '..', 'runner.js') };
}

export interface BatchScriptInput {
  sweepName: string;
  /** Tasks in this array (indices 0..count-1). */
  count: number;
  /** `%K`: tasks at once. */
  maxConcurrent?: number;
  executor: SlurmExecutorConfig;
  /** GPUs per task (0: none requested), over all its nodes. */
  gpus: number;
  /** Nodes per task (`resources.nodes_per_run`; default 1). GPUs are asked per node: gpus / nodes. */
  nodes?: number;
  manifest: string;
  /** Folder of the Slurm logs (`%A_%a.out`). */
  logDir: string;
  cacheDir: string;
  python: string;
  /** Seconds the runner needs to checkpoint and stop (DPO_SWEEP_STOP_GRACE_MS, and `--signal=B:TERM@`). */
  stopGraceS: number;
  /** Variables the runners get (besides the environment sbatch exports). */
  env: Record<string, string>;
  runner: RunnerCommand;
}

/** Single-quote for bash. */
export function shQuote(value: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

/** A path in an #SBATCH line: sbatch reads double quotes there (a sweep directory with a space). */
function sbatchPath(path: string): string {
  if (/["\n]/.test(path)) throw new Error(`a Slurm log path cannot hold a double quote or newline: ${JSON.stringify(path)}`);
  return /\s/.test(path) ? `"${path}"` : path;
}

function sbatchLine(line: string): string {
  const t = line.trim();
  if (/\n/.test(t)) throw new Error(`an extra_sbatch entry must be one line: ${JSON.stringify(line)}`);
  return t.startsWith('#SBATCH') ? t : `#SBATCH ${t}`;
}

export function renderBatchScript(input: BatchScriptInput): string {
  const x = input.executor;
  if (input.count < 1) throw new Error('a job array needs at least one task');
  const name = `dpo-${input.sweepName}`.replace(/[^A-Za-z0-9._-]/g, '_');
  const nodes = Math.max(1, input.nodes ?? 1);
  if (input.gpus > 0 && input.gpus % nodes !== 0) throw new Error(`${input.gpus} GPUs per run do not split evenly over ${nodes} nodes`);
  const array = `0-${input.count - 1}${input.maxConcurrent ? `%${input.maxConcurrent}` : ''}`;
  const directives = [
    `--job-name=${name}`,
    `--array=${array}`,
    `--output=${sbatchPath(join(input.logDir, '%A_%a.out'))}`,
    '--open-mode=append',
    `--nodes=${nodes}`,
    ...(nodes > 1 ? ['--ntasks-per-node=1'] : ['--ntasks=1']),
    // Before a time limit, SIGTERM to the runner alone, early enough for its checkpoint.
    `--signal=B:TERM@${Math.min(65_535, Math.ceil(input.stopGraceS) + 30)}`,
    ...(x.partition ? [`--partition=${x.partition}`] : []),
    ...(x.account ? [`--account=${x.account}`] : []),
    ...(x.qos ? [`--qos=${x.qos}`] : []),
    ...(x.time ? [`--time=${x.time}`] : []),
    ...(x.mem ? [`--mem=${x.mem}`] : []),
    ...(x.cpus_per_run ? [`--cpus-per-task=${x.cpus_per_run}`] : []),
    ...(input.gpus > 0 ? [`--gres=gpu:${input.gpus / nodes}`] : []),
  ];
  for (const d of directives.slice(3)) if (/\s/.test(d)) throw new Error(`a Slurm option cannot hold whitespace: "${d}"`);
  const env = Object.entries(input.env).map(([k, v]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`not an environment variable name: "${k}"`);
    return `export ${k}=${shQuote(v)}`;
  });
  const r = input.runner;
  const runnerArgs = [...r.execArgv, r.runner].map(shQuote).join(' ');
  return [
    '#!/bin/bash',
    `# dpo-sweep: one task per run of sweep "${input.sweepName}"; written by dpo-sweep, resubmitted by \`dpo-sweep run\`.`,
    ...directives.map((d) => `#SBATCH ${d}`),
    ...(x.extra_sbatch ?? []).map(sbatchLine),
    '',
    'set -eo pipefail',
    `manifest=${shQuote(input.manifest)}`,
    'line=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" "$manifest")',
    `IFS=$'\\t' read -r run_dir attempt ref_sharing <<<"$line"`,
    'if [[ -z "$run_dir" || -z "$attempt" ]]; then',
    '  echo "dpo-sweep: no run for array index $SLURM_ARRAY_TASK_ID in $manifest" >&2',
    '  exit 2',
    'fi',
    'task="${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"',
    `ln -sfn ${shQuote(input.logDir)}"/$task.out" "$run_dir/slurm-$task.out" 2>/dev/null || true`,
    'echo "dpo-sweep: task $task (job $SLURM_JOB_ID) → $run_dir, attempt $attempt, node ${SLURMD_NODENAME:-$(hostname)}, $(date -Is)"',
    '',
    '# The environment the local executor gives its runners.',
    `node_bin=${shQuote(r.node)}`,
    `export DPO_SWEEP_RUNNER_PYTHON=${shQuote(input.python)}`,
    `export DPO_SWEEP_STOP_GRACE_MS=${Math.round(input.stopGraceS * 1000)}`,
    'export DPO_SWEEP_SLOTS="slurm:$task"',
    `export DPO_SWEEP_CACHE=${shQuote(input.cacheDir)}`,
    ...env,
    ...(x.setup?.length ? ['', '# setup (the plan\'s executor.setup)', ...x.setup] : []),
    '',
    `exec "\${DPO_SWEEP_NODE:-$node_bin}" ${runnerArgs} --run-dir "$run_dir" --cache-dir "$DPO_SWEEP_CACHE" --attempt "$attempt" --ref-sharing "\${ref_sharing:-1}"`,
    '',
  ].join('\n');
}
