import { loadPlan } from '../../plan/load.js';
import { renderPlanTable } from '../../plan/table.js';
import { expandPlan } from '../../sweep/expand.js';
import type { CliIO } from '../io.js';

export async function validateCommand(file: string, opts: { set?: string[] }, io: CliIO): Promise<number> {
  const { plan, warnings } = await loadPlan(file, { sets: opts.set ?? [] });
  for (const w of warnings) io.err(`warning: ${w}`);
  const specs = expandPlan(plan);
  io.out(`${file}: valid plan "${plan.name}" with ${specs.length} run${specs.length === 1 ? '' : 's'}`);
  return 0;
}

export async function planCommand(file: string, opts: { set?: string[] }, io: CliIO): Promise<number> {
  const { plan, warnings } = await loadPlan(file, { sets: opts.set ?? [] });
  for (const w of warnings) io.err(`warning: ${w}`);
  const specs = expandPlan(plan);
  io.out(`plan "${plan.name}": ${specs.length} run${specs.length === 1 ? '' : 's'}`);
  io.out(renderPlanTable(specs));
  return 0;
}
