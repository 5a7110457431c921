import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { InputError } from '../../errors.js';
import { readJson, readStatus } from '../../execute/run-dir.js';
import { summaryTable } from '../../progress/view.js';
import type { CliIO } from '../io.js';

/** `dpo-sweep status <sweep-dir> [--json]`: read the run dirs (safe while another process runs the sweep). */
export async function statusCommand(dir: string, opts: { json?: boolean }, io: CliIO): Promise<number> {
  const out = resolve(dir);
  const sweep = readJson<{ name: string; runs: Array<{ id: string; name: string }> }>(join(out, 'sweep.json'));
  if (!sweep) throw new InputError(`${dir} is not a sweep directory (no readable sweep.json)`);
  const ids = sweep.runs.map((r) => r.id);
  const runsDir = join(out, 'runs');
  if (existsSync(runsDir)) for (const id of readdirSync(runsDir)) if (!ids.includes(id)) ids.push(id);
  const statuses = ids.map((id) => readStatus(join(runsDir, id))).filter((s) => s !== undefined);
  if (opts.json) {
    io.out(
      JSON.stringify({
        sweep: sweep.name,
        runs: statuses.map((s) => ({
          id: s.id,
          name: s.name,
          state: s.state,
          step: s.step,
          total: s.total,
          attempt: s.attempt,
          error_class: s.error_class,
          log: s.log,
        })),
      }),
    );
  } else {
    io.out(`sweep ${sweep.name} (${out})`);
    io.out(summaryTable(statuses));
  }
  return 0;
}
