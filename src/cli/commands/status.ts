import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { InputError } from '../../errors.js';
import { lockState } from '../../execute/lock.js';
import { readJson, readStatus, type RunStatus } from '../../execute/run-dir.js';
import type { SlurmRecord } from '../../execute/slurm/parse.js';
import { latestTasks, mergeRun, readSlurmRecord, recordFor, type MergedRun } from '../../execute/slurm/status.js';
import { slurmCli, type SlurmCli } from '../../execute/slurm/submit.js';
import { summaryTable } from '../../progress/view.js';
import type { CliIO } from '../io.js';

/** `dpo-sweep status <sweep-dir> [--json]`: read the run dirs (safe while another process runs the sweep). */
export async function statusCommand(dir: string, opts: { json?: boolean }, io: CliIO, cli: SlurmCli = slurmCli): Promise<number> {
  const out = resolve(dir);
  const sweep = readSweepIndex(dir, out);
  const runsDir = join(out, 'runs');
  // Every run the sweep planned (stage runs first), then any other run dir found on disk.
  const planned = [...sweep.stages, ...sweep.runs];
  const names = new Map(planned.map((r) => [r.id, r.name]));
  const ids = [...new Set(planned.map((r) => r.id))];
  if (existsSync(runsDir)) {
    for (const entry of readdirSync(runsDir, { withFileTypes: true })) {
      if (entry.isDirectory() && !ids.includes(entry.name) && existsSync(join(runsDir, entry.name, 'status.json'))) ids.push(entry.name);
    }
  }
  const unreadable: string[] = [];
  let statuses = ids.map((id) => {
    const runDir = join(runsDir, id);
    const status = readStatus(runDir);
    if (isStatus(status)) return status;
    // Not started yet (no status.json), or a status.json that cannot be read: the next run of the
    // sweep starts it (resuming from its last checkpoint), so it is queued, never silently left out.
    if (existsSync(join(runDir, 'status.json'))) unreadable.push(id);
    return placeholderStatus(id, names.get(id) ?? readSpecName(runDir) ?? id, runDir);
  });
  const slurm = await slurmView(out, statuses, cli);
  if (slurm) statuses = statuses.map((s) => withMerged(s, slurm.runs.get(s.id)));
  // A local sweep whose dpo-sweep process is gone (kill -9, a closed terminal, a reboot) runs
  // nothing, whatever its last status.json says.
  const stale: string[] = [];
  if (!slurm && lockState(out) === 'none') {
    statuses = statuses.map((s) => {
      if (s.state !== 'running') return s;
      stale.push(s.id);
      return { ...s, state: 'queued' };
    });
  }
  const noteOf = (id: string) => (unreadable.includes(id) ? UNREADABLE : stale.includes(id) ? STALE : undefined);
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
          ...(noteOf(s.id) ? { note: noteOf(s.id) } : {}),
          ...(slurm ? { slurm: slurm.runs.get(s.id)?.slurm ?? null } : {}),
          rollouts: rolloutJobs(join(runsDir, s.id)),
        })),
      }),
    );
  } else {
    io.out(`sweep ${sweep.name} (${out})`);
    io.out(summaryTable(statuses));
    for (const s of statuses) if (noteOf(s.id)) io.out(`${s.name} (${s.id}): ${noteOf(s.id)}`);
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

const STALE =
  'status.json says running, but no dpo-sweep process holds this sweep directory (killed?); shown as queued: the next run of the sweep resumes it from its last checkpoint';
const UNREADABLE = 'status.json is unreadable (torn or corrupt); shown as queued: the next run of the sweep starts it again from its last checkpoint';

interface SweepIndex {
  name: string;
  stages: Array<{ id: string; name: string }>;
  runs: Array<{ id: string; name: string }>;
}

/** sweep.json, checked: a clear error (exit 2) for a folder that is not a sweep directory or a damaged index. */
function readSweepIndex(dir: string, out: string): SweepIndex {
  const file = join(out, 'sweep.json');
  if (!existsSync(out)) throw new InputError(`${dir} does not exist`);
  if (!existsSync(file)) throw new InputError(`${dir} is not a sweep directory (no sweep.json)`);
  const raw = readJson<unknown>(file);
  const entries = (value: unknown): Array<{ id: string; name: string }> | undefined =>
    Array.isArray(value) && value.every((r) => isObject(r) && typeof r['id'] === 'string' && /^[A-Za-z0-9._-]+$/.test(r['id']) && !/^\.\.?$/.test(r['id']))
      ? value.map((r) => ({ id: String(r['id']), name: typeof r['name'] === 'string' ? r['name'] : String(r['id']) }))
      : undefined;
  const runs = isObject(raw) ? entries(raw['runs']) : undefined;
  const stages = isObject(raw) ? (raw['stages'] === undefined ? [] : entries(raw['stages'])) : undefined;
  if (!isObject(raw) || typeof raw['name'] !== 'string' || !runs || !stages) {
    throw new InputError(`${file} is not a readable sweep index`, [
      raw === undefined ? 'it is not valid JSON (torn or edited by hand)' : 'expected {"name": <sweep name>, "runs": [{"id": <run id>, "name": ...}, ...]}',
      'rerunning the plan (dpo-sweep <plan> --out <this dir>) rewrites it; finished runs are kept',
    ]);
  }
  return { name: raw['name'], stages, runs };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function isStatus(v: unknown): v is RunStatus {
  return isObject(v) && typeof v['id'] === 'string' && typeof v['state'] === 'string';
}

function readSpecName(runDir: string): string | undefined {
  const spec = readJson<unknown>(join(runDir, 'spec.json'));
  return isObject(spec) && typeof spec['name'] === 'string' ? spec['name'] : undefined;
}

/** What `status` shows for a run without a readable status.json. */
function placeholderStatus(id: string, name: string, runDir: string): RunStatus {
  const spec = readJson<{ settings?: { training?: { max_steps?: unknown } } }>(join(runDir, 'spec.json'));
  const maxSteps = isObject(spec) ? spec.settings?.training?.max_steps : undefined;
  return {
    id,
    name,
    state: 'queued',
    step: 0,
    total: typeof maxSteps === 'number' ? maxSteps : null,
    attempt: 0,
    metrics: {},
    error_class: null,
    error: null,
    log: join(runDir, 'worker.log'),
    runner_pid: null,
    worker_pid: null,
    started_at: null,
    finished_at: null,
    updated_at: new Date(0).toISOString(),
    final_dir: null,
    resumed_from: null,
  };
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
