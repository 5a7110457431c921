/**
 * The plan's `eval:` stage: after the runs train, each succeeded run's responses to the evaluation
 * prompts, in AlpacaEval format, ready for the judge and for reward-vs-KL plots.
 *
 *   runs/<id>/rollouts/eval.json         [{instruction, output, generator: <run name>, dataset, kl}, …]
 *   runs/<stage-id>/rollouts/eval.json   the SFT stage's outputs   (judge.baseline: stage:sft)
 *   baselines/reference-<hash>/rollouts/eval.json   the reference's (judge.baseline: reference)
 *
 * `kl` is the sample's Σ log π − log π_ref over its generated tokens, π_ref being the run's
 * reference model (default: its initial model); baselines are their own reference (kl = 0).
 * A run whose eval.json exists is skipped, so editing `eval:` never regenerates finished outputs
 * (delete the file to redo it). One worker call per output file, through the rollout manager
 * (`state.json` beside it tracks prompts done / total and tokens/s).
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import path, { join } from 'node:path';
import { callWorker } from '../execute/worker-call.js';
import { readStatus } from '../execute/run-dir.js';
import type { Plan } from '../plan/schema.js';
import type { RunSpec } from '../sweep/run-spec.js';
import { STAGE_SFT } from '../sweep/stages.js';
import { readRolloutState, requestHash, runRolloutJob, type RolloutProgress, type WorkerCall } from './manager.js';

export type EvalConfig = NonNullable<Plan['eval']>;

/** Sampling defaults of the eval stage (the seed's evaluation scripts, seed-spec §5.1). */
export const EVAL_DEFAULTS = { max_new_tokens: 512, temperature: 0.7, top_p: 0.9, n: 1, seed: 42 } as const;

export interface EvalStageOptions {
  cacheDir: string;
  /** The worker interpreter (for the default call). */
  python?: string;
  /** The worker call; default: `callWorker` through a runner process. */
  call?: WorkerCall;
  /** `plan.judge.baseline`: `stage:sft` and `reference` get their own outputs. */
  judgeBaseline?: string;
  /** The runs of the stages (`stages.sft`). */
  stages?: RunSpec[];
  /** Folder of the plan file (relative `eval.prompts` resolve against it; default cwd). */
  planDir?: string;
  /** Sampling seed of every eval job (common random numbers across runs); default 42. */
  seed?: number;
  onProgress?: (job: EvalJob, progress: RolloutProgress) => void;
  onOutcome?: (outcome: EvalOutcome) => void;
  signal?: AbortSignal;
}

export interface EvalJob {
  /** Run id, stage run id, or `reference-<hash>`. */
  key: string;
  /** The generator name written into the outputs. */
  name: string;
  kind: 'run' | 'baseline';
  /** The rollouts folder (state.json, worker.log, eval.json). */
  dir: string;
  out: string;
  request: Record<string, unknown>;
}

export interface EvalOutcome {
  key: string;
  name: string;
  kind: 'run' | 'baseline';
  out: string;
  status: 'written' | 'exists' | 'skipped' | 'failed' | 'interrupted';
  reason?: string;
  mean_kl?: number | null;
}

export interface EvalStageResult {
  outcomes: EvalOutcome[];
  failed: number;
}

/** Where a model reference points: `stage:sft@<id>` → that stage run's final model. */
export function resolveModelRef(sweepDir: string, ref: string): string {
  return ref.startsWith(`${STAGE_SFT}@`) ? join(sweepDir, 'runs', ref.slice(STAGE_SFT.length + 1), 'final') : ref;
}

/** The outputs file of a run or baseline. */
export function evalOutputsPath(sweepDir: string, key: string, kind: 'run' | 'baseline' = 'run'): string {
  return kind === 'run' || !key.startsWith('reference-')
    ? join(sweepDir, 'runs', key, 'rollouts', 'eval.json')
    : join(sweepDir, 'baselines', key, 'rollouts', 'eval.json');
}

/** `reference-<first 12 hex of sha256(model ref)>`: one baseline per distinct reference model. */
export function referenceKey(ref: string): string {
  return `reference-${createHash('sha256').update(ref).digest('hex').slice(0, 12)}`;
}

function looksLikeFile(value: string): boolean {
  return /\.(jsonl?|txt)$/i.test(value) || value.startsWith('.') || path.isAbsolute(value);
}

/** The prompts of a run: `eval.prompts`, else the run's dataset with its `eval_split`. */
function promptsFor(spec: RunSpec, config: EvalConfig, planDir: string): { prompts: string; split?: string } | { skip: string } {
  if (config.prompts) {
    const p = config.prompts;
    const local = looksLikeFile(p) || existsSync(path.resolve(planDir, p));
    return { prompts: local ? path.resolve(planDir, p) : p };
  }
  const d = spec.settings.dataset;
  const source = d.path ?? d.name;
  if (!source || !d.eval_split) return { skip: 'eval.prompts is not set and the run\'s dataset has no eval_split' };
  return { prompts: source, split: d.eval_split };
}

function request(config: EvalConfig, opts: EvalStageOptions, fields: Record<string, unknown>): Record<string, unknown> {
  return {
    n: config.n ?? EVAL_DEFAULTS.n,
    max_new_tokens: config.max_new_tokens ?? EVAL_DEFAULTS.max_new_tokens,
    temperature: config.temperature ?? EVAL_DEFAULTS.temperature,
    top_p: config.top_p ?? EVAL_DEFAULTS.top_p,
    seed: config.seed ?? opts.seed ?? EVAL_DEFAULTS.seed,
    ...(config.limit ? { limit: config.limit } : {}),
    cache_dir: opts.cacheDir,
    ...fields,
  };
}

/** An outputs file that exists and was made with this very request (sampling settings, prompts, model). */
function upToDate(out: string, req: Record<string, unknown>): boolean {
  if (!existsSync(out)) return false;
  const job = readRolloutState(path.dirname(out)).jobs?.eval;
  // Outputs written without a state file (by hand, or an older version) are kept as they are.
  return job === undefined || (job.status === 'complete' && job.request_hash === requestHash(req));
}

/** The jobs still to do, and an outcome for every run or baseline that needs none. Reads only. */
export function planEvalJobs(sweepDir: string, specs: readonly RunSpec[], config: EvalConfig, opts: EvalStageOptions): { jobs: EvalJob[]; outcomes: EvalOutcome[] } {
  const planDir = opts.planDir ?? process.cwd();
  const jobs: EvalJob[] = [];
  const outcomes: EvalOutcome[] = [];
  const succeeded: RunSpec[] = [];
  for (const spec of specs) {
    const dir = join(sweepDir, 'runs', spec.id);
    const out = evalOutputsPath(sweepDir, spec.id);
    const base = { key: spec.id, name: spec.name, kind: 'run' as const, out };
    const status = readStatus(dir);
    if (status?.state !== 'succeeded') {
      outcomes.push({ ...base, status: 'skipped', reason: `run ${status?.state ?? 'not started'}` });
      continue;
    }
    succeeded.push(spec);
    const prompts = promptsFor(spec, config, planDir);
    if ('skip' in prompts) {
      outcomes.push({ ...base, status: 'skipped', reason: prompts.skip });
      continue;
    }
    const model = status.final_dir ?? join(dir, 'final');
    const reference = resolveModelRef(sweepDir, spec.settings.reference ?? spec.settings.model);
    const req = request(config, opts, { model, reference, ...prompts, out, generator: spec.name });
    if (upToDate(out, req)) {
      outcomes.push({ ...base, status: 'exists' });
      continue;
    }
    jobs.push({ ...base, dir: path.dirname(out), request: req });
  }

  const baseline = opts.judgeBaseline;
  const first = succeeded[0];
  if (baseline === STAGE_SFT) {
    const stage = opts.stages?.find((s) => s.settings.algorithm === 'sft');
    if (stage) {
      const out = evalOutputsPath(sweepDir, stage.id);
      const base = { key: stage.id, name: stage.name, kind: 'baseline' as const, out };
      const status = readStatus(join(sweepDir, 'runs', stage.id));
      const prompts = first ? promptsFor(first, config, planDir) : { skip: 'no run succeeded' };
      if (status?.state !== 'succeeded') outcomes.push({ ...base, status: 'skipped', reason: `stage run ${status?.state ?? 'not started'}` });
      else if ('skip' in prompts) outcomes.push({ ...base, status: 'skipped', reason: prompts.skip });
      else {
        const model = status.final_dir ?? join(sweepDir, 'runs', stage.id, 'final');
        const req = request(config, opts, { model, reference: model, ...prompts, out, generator: stage.name });
        if (upToDate(out, req)) outcomes.push({ ...base, status: 'exists' });
        else jobs.push({ ...base, dir: path.dirname(out), request: req });
      }
    }
  } else if (baseline === 'reference') {
    const seen = new Set<string>();
    for (const spec of succeeded) {
      const ref = resolveModelRef(sweepDir, spec.settings.reference ?? spec.settings.model);
      if (seen.has(ref)) continue;
      seen.add(ref);
      const key = referenceKey(ref);
      const out = evalOutputsPath(sweepDir, key, 'baseline');
      const base = { key, name: 'reference', kind: 'baseline' as const, out };
      const prompts = promptsFor(spec, config, planDir);
      if ('skip' in prompts) outcomes.push({ ...base, status: 'skipped', reason: prompts.skip });
      else {
        const req = request(config, opts, { model: ref, reference: ref, ...prompts, out, generator: 'reference' });
        if (upToDate(out, req)) outcomes.push({ ...base, status: 'exists' });
        else jobs.push({ ...base, dir: path.dirname(out), request: req });
      }
    }
  }
  return { jobs, outcomes };
}

/** Generate every missing outputs file (see the module comment). A failed job fails only itself. */
export async function runEvalStage(sweepDir: string, specs: readonly RunSpec[], config: EvalConfig, opts: EvalStageOptions): Promise<EvalStageResult> {
  const { jobs, outcomes } = planEvalJobs(sweepDir, specs, config, opts);
  for (const o of outcomes) opts.onOutcome?.(o);
  const call = opts.call ?? defaultCall(opts);
  for (const job of jobs) {
    const base = { key: job.key, name: job.name, kind: job.kind, out: job.out };
    if (opts.signal?.aborted) {
      const o: EvalOutcome = { ...base, status: 'interrupted', reason: 'stopped before it started' };
      outcomes.push(o);
      opts.onOutcome?.(o);
      continue;
    }
    let outcome: EvalOutcome;
    try {
      const { state } = await runRolloutJob({
        dir: job.dir,
        job: 'eval',
        fn: 'generate',
        request: job.request,
        call,
        ...(opts.signal ? { signal: opts.signal } : {}),
        ...(opts.onProgress ? { onProgress: (p: RolloutProgress) => opts.onProgress!(job, p) } : {}),
      });
      const meanKl = state.result?.mean_kl;
      outcome =
        state.status === 'complete'
          ? { ...base, status: 'written', mean_kl: typeof meanKl === 'number' ? meanKl : null }
          : { ...base, status: 'interrupted', reason: 'stopped' };
    } catch (error) {
      outcome = { ...base, status: 'failed', reason: error instanceof Error ? error.message : String(error) };
    }
    outcomes.push(outcome);
    opts.onOutcome?.(outcome);
  }
  return { outcomes, failed: outcomes.filter((o) => o.status === 'failed').length };
}

function defaultCall(opts: EvalStageOptions): WorkerCall {
  return (fn, req, callOpts) => {
    if (!opts.python) throw new Error('runEvalStage needs python (the worker interpreter) or a call');
    return callWorker(fn, req, { python: opts.python, logPath: callOpts.logPath, onEvent: callOpts.onEvent, ...(callOpts.signal ? { signal: callOpts.signal } : {}) });
  };
}
