/**
 * Stages before the sweep (pure). `stages.sft` is one SFT run; sweep runs that say
 * `model: stage:sft` (or `reference: stage:sft`) start from its final model. Their spec names the
 * stage run by id (`stage:sft@<id>`), so a changed SFT stage gives new sweep runs, and an unchanged
 * one keeps them.
 */
import type { Plan } from '../plan/schema.js';
import { runId } from './run-id.js';
import { RunSettingsSchema, type RunSpec } from './run-spec.js';

export const STAGE_SFT = 'stage:sft';

export interface StagedRuns {
  /** Runs of the stages, in execution order. */
  stages: RunSpec[];
  /** The sweep's runs, stage references pinned to stage run ids. */
  sweep: RunSpec[];
}

export function sftStageSpec(plan: Plan): RunSpec | undefined {
  const stage = plan.stages?.sft;
  if (!stage) return undefined;
  const settings = RunSettingsSchema.parse({ ...(stage as Record<string, unknown>), algorithm: 'sft' });
  return { id: runId(settings), name: `${plan.name}-sft`, sweep: plan.name, varied: {}, settings };
}

export function stageRuns(plan: Plan, specs: RunSpec[]): StagedRuns {
  const sft = sftStageSpec(plan);
  if (!sft) return { stages: [], sweep: specs };
  const pin = (value: string | undefined) => (value === STAGE_SFT ? `${STAGE_SFT}@${sft.id}` : value);
  const sweep = specs.map((spec) => {
    const model = pin(spec.settings.model)!;
    const reference = pin(spec.settings.reference);
    if (model === spec.settings.model && reference === spec.settings.reference) return spec;
    const settings = { ...spec.settings, model, ...(reference !== undefined ? { reference } : {}) };
    return { ...spec, id: runId(settings), settings };
  });
  return { stages: [sft], sweep };
}

/** The stage run ids a spec depends on. */
export function stageDependencies(spec: RunSpec): string[] {
  return [spec.settings.model, spec.settings.reference]
    .filter((v): v is string => typeof v === 'string' && v.startsWith(`${STAGE_SFT}@`))
    .map((v) => v.slice(STAGE_SFT.length + 1));
}
