/**
 * The library API: everything the CLI does, as functions (no printing, no process.exit).
 *
 *   import { loadPlan, expandPlan, runSweep } from 'dpo-sweep';
 *   const { plan } = await loadPlan('plan.yaml');
 *   const runs = expandPlan(plan);
 *   const result = await runSweep('plan.yaml', { python, listener: (event) => … });
 */
export { loadPlan, type LoadedPlan, type LoadOptions } from './plan/load.js';
export { PlanSchema, type Plan, type PlanInput } from './plan/schema.js';
export { renderPlanTable } from './plan/table.js';
export { expandPlan } from './sweep/expand.js';
export { runId } from './sweep/run-id.js';
export { stageRuns } from './sweep/stages.js';
export {
  RunSettingsSchema,
  RunSpecSchema,
  ALGORITHMS,
  TRL_LOSS_TYPES,
  type Algorithm,
  type RunSettings,
  type RunSettingsInput,
  type RunSpec,
} from './sweep/run-spec.js';
export { runSweep, runSpecs, defaultCacheDir, type SweepOptions, type SweepResult, type SweepSource } from './execute/sweep.js';
export { executeRuns, type ExecuteOptions } from './execute/executor.js';
export { executeSlurm } from './execute/slurm/executor.js';
export { writeReport } from './report/write.js';
export type { SweepEvent, SweepListener, WorkerEvent } from './execute/events.js';
export { readStatus, readJsonl, runPaths, type RunStatus, type RunState, type ErrorClass } from './execute/run-dir.js';
export { decideRetry, RetryPolicySchema, type RetryPolicy } from './schedule/retry.js';
export { ensureWorker, setupWorker, resolvePython } from './setup/python-env.js';
export { runJudge } from './judge/run.js';
export { DpoSweepError, InputError, LockedError } from './errors.js';
