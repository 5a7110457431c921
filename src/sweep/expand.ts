/**
 * Plan → RunSpec[]: runs = list × grid × random draws × seeds, in that nesting order (seeds
 * innermost; grid keys in the order written, the last varying fastest). Each run merges
 * base ← variant ← grid values ← random values ← seed, then `RunSettingsSchema` applies the
 * defaults, once. Pure and deterministic.
 */
import { InputError } from '../errors.js';
import { formatIssue } from '../plan/format.js';
import { isError } from '../plan/issues.js';
import { resolvePlanPaths } from '../plan/paths.js';
import { checkRuns } from '../plan/runs.js';
import type { Plan } from '../plan/schema.js';
import { resolveVariants } from '../plan/variants.js';
import { runId } from './run-id.js';
import { RunSettingsSchema, type RunSpec } from './run-spec.js';

export interface ExpandOptions {
  /**
   * Folder that relative `dataset.path` and `./model` paths resolve against. `loadPlan` already
   * made them absolute (against the file that wrote each); set this for plans built in code.
   */
  baseDir?: string;
}

/** Throws `InputError` when a run does not validate or two runs would compute the same thing. */
export function expandPlan(plan: Plan, options: ExpandOptions = {}): RunSpec[] {
  const resolved = options.baseDir === undefined ? plan : resolvePlanPaths(plan, () => options.baseDir!);
  const problems = checkRuns(resolved).filter(isError);
  if (problems.length > 0) {
    throw new InputError(`plan ${plan.name} does not expand: ${problems.length} problem${problems.length === 1 ? '' : 's'}`, problems.map(formatIssue));
  }
  return resolveVariants(resolved).map((draft) => {
    const settings = RunSettingsSchema.parse(draft.input);
    return { id: runId(settings), name: draft.name, sweep: plan.name, varied: draft.varied, settings };
  });
}
