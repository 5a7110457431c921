import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { InputError } from '../../errors.js';
import { readJson, readStatus, type RunStatus } from '../../execute/run-dir.js';
import type { SlurmRecord } from '../../execute/slurm/parse.js';
import { latestTasks, mergeRun, readSlurmRecord, recordFor, type MergedRun } from '../../execute/slurm/status.js';
import { slurmCli, type SlurmCli } from '../../execute/slurm/submit.js';
import { summaryTable } from '../../progress/view.js';
import type { CliIO } from '../io.js';

/** `dpo-sweep status <sweep-dir> [--json]`: read the run dirs (safe while another process runs the sweep). */
export async function statusCommand(dir: string, opts: { json?: boolean }, io: CliIO, cli: SlurmCli = slurmCli): Promise<number> {
  const out = resolve(dir);
  const sweep = readJson<{ name: string; runs: Array<{ id: string; name: string }> }>(join(out, 'sweep.json'));
  if (!sweep) throw new InputError(`${dir} is not a sweep directory (no readable sweep.json)`);
  const ids = sweep.runs.map((r) => r.id);
  const runsDir = join(out, 'runs');
  if (existsSync(runsDir)) for (const id of readdirSync(runsDir)) if (!ids.includes(id)) ids.push(id);
  let statuses = ids.map((id) => readStatus(join(runsDir, id))).filter((s) => s !== undefined);
  const slurm = await slurmView(out, statuses, cli);
  if (slurm) statuses = statuses.map((s) => withMerged(s, slurm.runs.get(s.id)));
  if (opts.json) {
    io.out(
      JSON.stringify({
        sweep: sweep.name,
        ...(slurm?.note ? { slurm_note: slurm.note } : {}),
        runs: statuses.map((s) => ({
          id: s.id,
          name: s.name,
          state: s.state,
          step: s.step,
          total: s.total,
          attempt: s.attempt,
          error_class: s.error_class,
          log: s.log,
          ...(slurm ? { slurm: slurm.runs.get(s.id)?.slurm ?? null } : {}),
          rollouts: rolloutJobs(join(runsDir, s.id)),
        })),
      }),
    );
  } else {
    io.out(`sweep ${sweep.name} (${out})`);
    io.out(summaryTable(statuses));
    const rollouts = statuses.flatMap((s) =>
      Object.entries(rolloutJobs(join(runsDir, s.id))).map(
        ([job, j]) => `  ${s.name}: ${job} ${j.status} ${j.done}/${j.total ?? '?'} prompts${j.tokens_per_s ? `, ${Math.round(j.tokens_per_s)} tokens/s` : ''}`,
      ),
    );
    if (rollouts.length) io.out(['', 'generation:', ...rollouts].join('\n'));
    if (slurm) {
      io.out('');
      io.out(slurmTable(statuses, slurm.runs));
      if (slurm.note) io.out(slurm.note);
    }
  }
  return 0;
}

/** The run's generation jobs (eval answers, rollouts): status, prompts done / total, tokens/s. */
function rolloutJobs(runDir: string): Record<string, { status: string; done: number; total: number | null; tokens_per_s: number | null }> {
  const state = readJson<{ jobs?: Record<string, { status: string; done: number; total: number | null; tokens_per_s?: number | null }> }>(
    join(runDir, 'rollouts', 'state.json'),
  );
  return Object.fromEntries(
    Object.entries(state?.jobs ?? {}).map(([name, j]) => [name, { status: j.status, done: j.done, total: j.total, tokens_per_s: j.tokens_per_s ?? null }]),
  );
}

function withMerged(status: RunStatus, merged: MergedRun | undefined): RunStatus {
  if (!merged) return status;
  return { ...status, state: merged.state, attempt: merged.attempt, error_class: merged.error_class, error: merged.error };
}

/** Slurm's view of the sweep's latest tasks, merged with the run files; undefined for a local sweep. */
async function slurmView(out: string, statuses: RunStatus[], cli: SlurmCli): Promise<{ runs: Map<string, MergedRun>; note?: string } | undefined> {
  const record = readSlurmRecord(out);
  if (!record) return undefined;
  const tasks = latestTasks(record);
  const jobIds = [...new Set([...tasks.values()].map((t) => t.job_id))];
  let records: SlurmRecord[] = [];
  let note: string | undefined;
  try {
    records = await cli.squeue(jobIds, { all: true });
    const missing = [...tasks.values()].filter((t) => !recordFor(records, t));
    if (missing.length) {
      // Gone from slurmctld's memory (MinJobAge): accounting, else the jobcomp file.
      const acct = await cli.sacct([...new Set(missing.map((t) => t.job_id))]).catch(() => undefined);
      if (acct) records = [...records, ...acct];
      const raw = missing.filter((t) => t.raw_job_id && !recordFor(records, t)).map((t) => t.raw_job_id!);
      if (raw.length) records = [...records, ...((await cli.sacctJobcomp(raw).catch(() => undefined)) ?? [])];
    }
  } catch (error) {
    note = `(Slurm could not be asked: ${(error as Error).message.split('\n')[0]}; states are the run files')`;
  }
  const runs = new Map<string, MergedRun>();
  for (const s of statuses) {
    const task = tasks.get(s.id);
    runs.set(s.id, mergeRun(s.id, s, task, task ? recordFor(records, task) : undefined));
  }
  return note ? { runs, note } : { runs };
}

function slurmTable(statuses: RunStatus[], runs: Map<string, MergedRun>): string {
  const header = ['id', 'name', 'slurm task', 'slurm state', 'node', 'reason / exit'];
  const rows = statuses.map((s) => {
    const v = runs.get(s.id)?.slurm;
    const exit = v?.exit && (v.exit.code || v.exit.signal) ? `exit ${v.exit.code}:${v.exit.signal}` : '';
    const reason = v?.reason && v.reason !== 'None' ? v.reason : '';
    return [s.id, s.name, v?.task ?? '-', v?.state ?? (v ? 'unknown' : '-'), v?.node ?? '', [reason, exit].filter(Boolean).join(', ')];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
