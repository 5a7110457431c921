/**
 * The whole plan, end to end: the training runs (execute), then the stages the plan asks for after
 * them — `eval` (each run's responses to the eval prompts), `judge` (each run against the baseline)
 * and `report` — each skipped when its outputs exist. This module composes the pipeline stages, so
 * it is the one place allowed to import them all (each stage imports only earlier ones).
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { SweepListener } from './execute/events.js';
import type { RunStatus } from './execute/run-dir.js';
import { readJson, readStatus } from './execute/run-dir.js';
import { defaultOut, openSweepDir, runSweep, type SweepOptions, type SweepResult } from './execute/sweep.js';
import { WorkerSession } from './execute/worker-call.js';
import { runJudge } from './judge/run.js';
import { loadPlan } from './plan/load.js';
import type { Plan } from './plan/schema.js';
import { writeReport } from './report/write.js';
import { evalOutputsPath, referenceKey, resolveModelRef, runEvalStage } from './rollout/eval-stage.js';
import type { RunSpec } from './sweep/run-spec.js';
import { STAGE_SFT } from './sweep/stages.js';

export interface PipelineResult extends SweepResult {
  /** Stage steps that failed (eval of a run, a judgment), with why. */
  stageFailures: string[];
  /** Files of the report, when one was written. */
  report: string[];
}

export function stageEvent(listener: SweepListener | undefined, stage: 'eval' | 'judge' | 'report', message: string): void {
  listener?.({ kind: 'stage', stage, message });
}

/** Run a plan file: training, then eval, judge and report as the plan asks. */
export async function runPlan(planFile: string, options: SweepOptions): Promise<PipelineResult> {
  const loaded = await loadPlan(planFile, { sets: options.sets ?? [] });
  // One writer over the whole pipeline: a second `dpo-sweep` on this dir exits 3 during eval, judge
  // and report too, not only while runs train.
  const lock = openSweepDir(resolve(options.out ?? defaultOut(loaded.plan.name)));
  try {
    return await pipeline(planFile, loaded, options);
  } finally {
    lock.release();
  }
}

async function pipeline(planFile: string, loaded: Awaited<ReturnType<typeof loadPlan>>, options: SweepOptions): Promise<PipelineResult> {
  const result = await runSweep(planFile, options);
  const stageFailures: string[] = [];
  const plan = loaded.plan;
  if (options.stopSignal?.aborted) return { ...result, stageFailures, report: [] };
  const stages = result.stages;
  const sweep = result.specs.filter((s) => !stages.includes(s));

  if (plan.eval) {
    const session = new WorkerSession({ python: options.python, runnerLog: join(result.out, 'logs', 'runner-eval.log'), ...(options.env ? { env: options.env } : {}) });
    try {
      const evalResult = await runEvalStage(result.out, sweep, plan.eval, {
        cacheDir: options.cacheDir ?? '',
        python: options.python,
        call: (fn, req, callOpts) => session.call(fn, req, callOpts),
        ...(plan.judge?.baseline ? { judgeBaseline: plan.judge.baseline } : {}),
        stages,
        planDir: dirname(loaded.file),
        ...(options.stopSignal ? { signal: options.stopSignal } : {}),
        onOutcome: (o) => {
          if (o.status === 'written' || o.status === 'failed') {
            stageEvent(options.listener, 'eval', `${o.name}: ${o.status}${o.reason ? ` (${o.reason})` : ''}${typeof o.mean_kl === 'number' ? `, mean KL ${o.mean_kl.toFixed(3)}` : ''}`);
          }
        },
        onProgress: (job, p) => stageEvent(options.listener, 'eval', `${job.name}: ${p.done}/${p.total} prompts${p.tokens_per_s ? `, ${Math.round(p.tokens_per_s)} tokens/s` : ''}`),
      });
      for (const o of evalResult.outcomes) if (o.status === 'failed') stageFailures.push(`eval ${o.name}: ${o.reason ?? 'failed'}`);
    } finally {
      await session.close();
    }
  }

  if (plan.judge && plan.eval && !options.stopSignal?.aborted) {
    await judgeStage(result.out, plan, sweep, stages, options, stageFailures, dirname(loaded.file));
  }

  let report: string[] = [];
  if ((plan.report || plan.judge) && !options.stopSignal?.aborted) {
    const written = await writeReport(result.out, {
      ...(plan.report?.formats ? { formats: plan.report.formats } : {}),
      ...(plan.report?.metric ? { metric: plan.report.metric } : {}),
    });
    report = written.files;
    stageEvent(options.listener, 'report', `written: ${report.find((f) => f.endsWith('.html')) ?? report[0] ?? '(nothing)'}`);
  }
  return { ...result, stageFailures, report };
}

/** The outputs a run is judged against, and the folder name its judgments go in. */
export function baselineFor(
  out: string,
  plan: Plan,
  spec: RunSpec,
  sweep: readonly RunSpec[],
  stages: readonly RunSpec[],
): { file: string; slug: string } | { missing: string } {
  const baseline = plan.judge?.baseline ?? (stages.length ? STAGE_SFT : 'reference');
  const slug = baseline.replace(/[^A-Za-z0-9._-]+/g, '-');
  if (baseline === STAGE_SFT) {
    const stage = stages[0];
    if (!stage) return { missing: 'judge.baseline is stage:sft but the plan has no stages.sft' };
    return { file: evalOutputsPath(out, stage.id), slug };
  }
  if (baseline === 'reference') {
    const ref = resolveModelRef(out, spec.settings.reference ?? spec.settings.model);
    return { file: evalOutputsPath(out, referenceKey(ref), 'baseline'), slug };
  }
  // A variant name: its run with the same seed if there is one, else its first run.
  const candidates = sweep.filter((s) => s.name === baseline || s.name.startsWith(`${baseline}-`));
  const pick = candidates.find((s) => s.settings.training.seed === spec.settings.training.seed) ?? candidates[0];
  if (!pick) return { missing: `judge.baseline ${baseline} names no run of this sweep` };
  return { file: evalOutputsPath(out, pick.id), slug };
}

async function judgeStage(
  out: string,
  plan: Plan,
  sweep: readonly RunSpec[],
  stages: readonly RunSpec[],
  options: SweepOptions,
  failures: string[],
  planDir: string,
): Promise<void> {
  const judge = plan.judge ?? {};
  // A preset folder written in the plan is relative to the plan file; a bare name is a built-in preset.
  const preset = /[\\/]/.test(judge.preset ?? '') || (judge.preset ?? '').startsWith('.') ? resolve(planDir, judge.preset!) : (judge.preset ?? 'hh');
  // judge.max_cost is the stage's budget: each run's judge gets what the earlier ones left.
  let spent = 0;
  for (const spec of sweep) {
    const status: RunStatus | undefined = readStatus(join(out, 'runs', spec.id));
    const mine = evalOutputsPath(out, spec.id);
    if (status?.state !== 'succeeded' || !existsSync(mine)) continue;
    const baseline = baselineFor(out, plan, spec, sweep, stages);
    if ('missing' in baseline) {
      failures.push(`judge ${spec.name}: ${baseline.missing}`);
      continue;
    }
    if (baseline.file === mine) continue; // the baseline itself
    if (!existsSync(baseline.file)) {
      failures.push(`judge ${spec.name}: no baseline outputs at ${baseline.file}`);
      continue;
    }
    const dir = join(out, 'runs', spec.id, 'judge', baseline.slug);
    const summary = join(dir, 'summary.json');
    // Skipped when its outputs exist, are newer than both inputs and were judged with these settings.
    if (
      existsSync(summary) &&
      statSync(summary).mtimeMs >= Math.max(statSync(mine).mtimeMs, statSync(baseline.file).mtimeMs) &&
      sameJudgeSettings(readJson<Record<string, unknown>>(summary), preset, judge)
    ) {
      continue;
    }
    const left = judge.max_cost !== undefined ? Math.max(0, judge.max_cost - spent) : undefined;
    try {
      const s = await runJudge(
        {
          a: mine,
          b: baseline.file,
          preset,
          out: dir,
          ...(judge.model ? { model: judge.model } : {}),
          ...(judge.both_orders !== undefined ? { bothOrders: judge.both_orders } : {}),
          ...(judge.seed !== undefined ? { seed: judge.seed } : {}),
          ...(judge.concurrency !== undefined ? { concurrency: judge.concurrency } : {}),
          ...(left !== undefined ? { maxCost: left } : {}),
          ...(options.cacheDir ? { cacheDir: options.cacheDir } : {}),
        },
        { ...(options.env ? { env: { ...process.env, ...options.env } } : {}), ...(options.stopSignal ? { signal: options.stopSignal } : {}) },
      );
      spent += s.cost_usd ?? 0;
      const ci = s.win_rate_ci ? ` [${s.win_rate_ci.map((x) => x.toFixed(3)).join(', ')}]` : '';
      stageEvent(options.listener, 'judge', `${spec.name} vs ${baseline.slug}: win rate ${s.win_rate?.toFixed(3) ?? '-'}${ci} (${s.wins}/${s.losses}/${s.ties} W/L/T, ${s.invalid} invalid)`);
    } catch (error) {
      failures.push(`judge ${spec.name}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}

/** Whether a judge summary was made with the plan's judge settings (a changed setting judges again; the cache keeps it cheap). */
function sameJudgeSettings(summary: Record<string, unknown> | undefined, preset: string, judge: NonNullable<Plan['judge']>): boolean {
  if (!summary || summary.dry_run === true || summary.stopped) return false;
  return (
    summary.preset === preset &&
    summary.seed === (judge.seed ?? 42) &&
    summary.both_orders === (judge.both_orders ?? false) &&
    (judge.model === undefined || summary.model === judge.model)
  );
}
