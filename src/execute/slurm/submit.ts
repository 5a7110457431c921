/**
 * Slurm's command-line tools, called through execa: sbatch, squeue, sacct (accounting, or the
 * jobcomp file with -c), scontrol, scancel, sinfo. Output goes through the pure parsers in
 * parse.ts. Every call has a timeout: a hung slurmctld must not hang the sweep.
 */
import { execa } from 'execa';
import { DpoSweepError } from '../../errors.js';
import {
  parseSacct,
  parseSbatchParsable,
  parseScontrolJobs,
  parseSqueue,
  SACCT_FIELDS,
  SQUEUE_FORMAT,
  type SlurmRecord,
} from './parse.js';

export interface ScancelOptions {
  /** Send this signal instead of ending the job. */
  signal?: string;
  /** Only the batch shell (the runner, which the script `exec`s): a graceful stop. */
  batch?: boolean;
  /** Only tasks in this state (e.g. PENDING). */
  state?: string;
}

export interface SlurmCli {
  /** Submit a batch script file; returns the job id. */
  sbatch(scriptPath: string, opts: { env: Record<string, string>; cwd: string }): Promise<string>;
  /** Active jobs and, with `all`, finished ones still in slurmctld's memory (MinJobAge). */
  squeue(jobIds: readonly string[], opts?: { all?: boolean }): Promise<SlurmRecord[]>;
  /** Accounting; undefined when accounting storage is disabled. */
  sacct(jobIds: readonly string[]): Promise<SlurmRecord[] | undefined>;
  /** The jobcomp record (`sacct -c`), by raw job ids; undefined when unavailable. */
  sacctJobcomp(rawJobIds: readonly string[]): Promise<SlurmRecord[] | undefined>;
  scontrolJob(id: string): Promise<Array<SlurmRecord & { fields: Record<string, string> }>>;
  scancel(jobIds: readonly string[], opts?: ScancelOptions): Promise<void>;
  /** Whether any node of the partition (default: the default partition) advertises GPUs. */
  partitionHasGpus(partition?: string): Promise<boolean>;
}

const TIMEOUT_MS = 30_000;

async function run(cmd: string, args: string[], opts: { env?: Record<string, string>; cwd?: string } = {}) {
  try {
    return await execa(cmd, args, {
      reject: false,
      timeout: TIMEOUT_MS,
      stdin: 'ignore',
      ...(opts.env ? { env: opts.env } : {}),
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
    });
  } catch (error) {
    throw new DpoSweepError('internal', `could not run ${cmd}: ${(error as Error).message}`, { cause: error });
  }
}

/** The command itself could not be run (not installed, not on PATH). */
function missing(result: { failed: boolean; code?: string; exitCode?: number | undefined }): boolean {
  return result.code === 'ENOENT' || (result.failed && result.exitCode === undefined);
}

function failure(cmd: string, args: string[], result: { stderr: unknown; stdout: unknown; exitCode?: number | undefined; code?: string }): DpoSweepError {
  const text = String(result.stderr || result.stdout || '').trim();
  const how = result.code === 'ENOENT' ? 'is not installed or not on PATH' : `exited with ${result.exitCode ?? result.code}`;
  return new DpoSweepError('internal', `${cmd} ${args.join(' ')} ${how}${text ? `: ${text.slice(0, 500)}` : ''}`);
}

/** "Invalid job id specified": every requested job has left slurmctld's memory. */
const INVALID_ID = /Invalid job id/i;

export const slurmCli: SlurmCli = {
  async sbatch(scriptPath, opts) {
    const args = ['--parsable', scriptPath];
    const r = await run('sbatch', args, { env: opts.env, cwd: opts.cwd });
    if (r.exitCode !== 0) throw failure('sbatch', args, r);
    return parseSbatchParsable(String(r.stdout)).jobId;
  },

  async squeue(jobIds, opts = {}) {
    if (!jobIds.length) return [];
    const args = ['-h', '-r', ...(opts.all ? ['--states=all'] : []), '-j', jobIds.join(','), '-o', SQUEUE_FORMAT];
    const r = await run('squeue', args);
    if (r.exitCode !== 0) {
      if (INVALID_ID.test(String(r.stderr))) return [];
      throw failure('squeue', args, r);
    }
    return parseSqueue(String(r.stdout));
  },

  async sacct(jobIds) {
    if (!jobIds.length) return [];
    const args = ['-P', '-n', '-X', '-j', jobIds.join(','), '-o', SACCT_FIELDS];
    const r = await run('sacct', args);
    if (r.exitCode !== 0 || /accounting storage is disabled/i.test(String(r.stderr))) return undefined;
    return parseSacct(String(r.stdout));
  },

  async sacctJobcomp(rawJobIds) {
    if (!rawJobIds.length) return [];
    const args = ['-c', '-P', '-n', '-j', rawJobIds.join(','), '-o', SACCT_FIELDS];
    const r = await run('sacct', args);
    if (r.exitCode !== 0) return undefined;
    return parseSacct(String(r.stdout), { jobcomp: true });
  },

  async scontrolJob(id) {
    const args = ['show', 'job', '-o', id];
    const r = await run('scontrol', args);
    if (r.exitCode !== 0) {
      if (INVALID_ID.test(String(r.stderr))) return [];
      throw failure('scontrol', args, r);
    }
    return parseScontrolJobs(String(r.stdout));
  },

  async scancel(jobIds, opts = {}) {
    if (!jobIds.length) return;
    const args = [
      ...(opts.batch ? ['--batch'] : []),
      ...(opts.signal ? [`--signal=${opts.signal}`] : []),
      ...(opts.state ? [`--state=${opts.state}`] : []),
      ...jobIds,
    ];
    const r = await run('scancel', args);
    // A job that already ended is not an error here; a missing scancel is.
    if (r.exitCode !== 0 && missing(r as never)) throw failure('scancel', args, r);
  },

  async partitionHasGpus(partition) {
    const args = ['-h', '-o', '%G', ...(partition ? ['-p', partition] : [])];
    const r = await run('sinfo', args);
    if (r.exitCode !== 0) return false;
    return /\bgpu\b/i.test(String(r.stdout));
  },
};

/** Whether Slurm's client tools are on PATH (sbatch answers --version). */
export async function slurmAvailable(): Promise<boolean> {
  try {
    const r = await execa('sbatch', ['--version'], { reject: false, timeout: 10_000, stdin: 'ignore' });
    return r.exitCode === 0;
  } catch {
    return false;
  }
}
