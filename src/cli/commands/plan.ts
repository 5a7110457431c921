import { loadPlan } from '../../plan/load.js';
import { renderPlanTable } from '../../plan/table.js';
import { defaultOut } from '../../execute/sweep.js';
import { estimateRun, measuredThroughput, renderEstimates } from '../../plan/estimate.js';
import { expandPlan } from '../../sweep/expand.js';
import { stageRuns } from '../../sweep/stages.js';
import type { CliIO } from '../io.js';

export async function validateCommand(file: string, opts: { set?: string[] }, io: CliIO): Promise<number> {
  const { plan, warnings } = await loadPlan(file, { sets: opts.set ?? [] });
  for (const w of warnings) io.err(`warning: ${w}`);
  const specs = expandPlan(plan);
  io.out(`${file}: valid plan "${plan.name}" with ${specs.length} run${specs.length === 1 ? '' : 's'}`);
  return 0;
}

export async function planCommand(file: string, opts: { set?: string[]; out?: string }, io: CliIO): Promise<number> {
  const { plan, warnings } = await loadPlan(file, { sets: opts.set ?? [] });
  for (const w of warnings) io.err(`warning: ${w}`);
  const { stages, sweep } = stageRuns(plan, expandPlan(plan));
  const specs = [...stages, ...sweep];
  io.out(`plan "${plan.name}": ${specs.length} run${specs.length === 1 ? '' : 's'}${stages.length ? ` (${stages.length} stage run first)` : ''}`);
  io.out(renderPlanTable(specs));
  const out = opts.out ?? defaultOut(plan.name);
  const rate = measuredThroughput(out);
  io.out(renderEstimates(specs.map((s) => estimateRun(s, rate)), rate ? `${Math.round(rate)} tokens/s (measured by earlier runs in ${out})` : null));
  return 0;
}
