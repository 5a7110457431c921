import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { InputError } from '../../errors.js';
import { isActive } from '../../execute/slurm/parse.js';
import { cancelMarkerPath, gracefulCancel } from '../../execute/slurm/executor.js';
import { readSlurmRecord } from '../../execute/slurm/status.js';
import { slurmCli, type SlurmCli } from '../../execute/slurm/submit.js';
import type { CliIO } from '../io.js';

export interface CancelOptions {
  now?: boolean;
  /** Seconds running runs get to checkpoint before a plain scancel (default 90). */
  wait?: number;
}

/**
 * `dpo-sweep cancel <sweep-dir>`: every Slurm job recorded in `<sweep>/slurm.json` that still has
 * pending or running tasks. Pending tasks are cancelled; running runners get SIGTERM alone
 * (`scancel --batch`), save a checkpoint and exit; what is still there after `--wait` seconds gets
 * a plain `scancel`. A `dpo-sweep run` following the sweep sees the request and stops too.
 * Resubmitting (`dpo-sweep run` again) skips finished runs and resumes the others.
 */
export async function cancelCommand(dir: string, opts: CancelOptions, io: CliIO, cli: SlurmCli = slurmCli): Promise<number> {
  const out = resolve(dir);
  const record = readSlurmRecord(out);
  if (!record?.submissions.length) {
    throw new InputError(`${dir} has no Slurm jobs (no slurm.json): a local sweep stops with Ctrl-C in its terminal`);
  }
  const jobIds = [...new Set(record.submissions.map((s) => s.job_id))];
  const activeJobs = async () => [...new Set((await cli.squeue(jobIds)).filter((r) => isActive(r.state)).map((r) => r.jobId))];
  const active = await activeJobs();
  if (!active.length) {
    io.out(`no pending or running Slurm task in ${out} (jobs ${jobIds.join(', ')})`);
    return 0;
  }
  const marker = cancelMarkerPath(out);
  mkdirSync(dirname(marker), { recursive: true });
  writeFileSync(marker, `${JSON.stringify({ at: new Date().toISOString(), pid: process.pid, now: Boolean(opts.now) })}\n`);
  if (opts.now) {
    await cli.scancel(active);
    io.out(`scancel ${active.join(' ')}: every task ends now`);
    return 0;
  }
  await gracefulCancel(cli, active);
  io.out(`cancelled the pending tasks of job ${active.join(', ')}; running runs are saving a checkpoint`);
  const deadline = Date.now() + (opts.wait ?? 90) * 1000;
  let left = await activeJobs();
  while (left.length && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 1000));
    left = await activeJobs();
  }
  if (left.length) {
    await cli.scancel(left);
    io.out(`still running after ${opts.wait ?? 90} s: scancel ${left.join(' ')}`);
  } else {
    io.out('every task has stopped; `dpo-sweep run` again resumes the sweep');
  }
  return 0;
}
