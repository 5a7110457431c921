/**
 * Slurm output parsers, the batch script and the status merge (pure, fast). Fixtures:
 *   test/slurm/fixtures/live-22.05/        captured from the live Slurm 22.05.8 (scripts/slurm/lab-up.sh)
 *   test/slurm/fixtures/docs-23.02-25.x/   BUILT FROM the documented formats of 23.02–25.05, not captured
 * Each fixture file's first line (a "#" comment) says which, and with what command.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RunStatus } from '../../src/execute/run-dir.js';
import {
  expandHostlist,
  expandIndices,
  findTask,
  normaliseState,
  parseExitCode,
  parseJobId,
  parseSacct,
  parseSbatchParsable,
  parseScontrolFields,
  parseScontrolJobs,
  parseSqueue,
  type SlurmRecord,
} from '../../src/execute/slurm/parse.js';
import { renderBatchScript, renderManifest, shQuote } from '../../src/execute/slurm/sbatch.js';
import { describeEnd, latestTasks, mergeRun, recordFor, slurmErrorClass } from '../../src/execute/slurm/status.js';
import { repoRoot } from '../helpers/python.js';

const fixtures = join(repoRoot, 'test/slurm/fixtures');
function fixture(name: string): { label: string; text: string } {
  const raw = readFileSync(join(fixtures, name), 'utf8');
  const lines = raw.split('\n');
  const label = lines.filter((l) => l.startsWith('#')).join('\n');
  return { label, text: lines.filter((l) => !l.startsWith('#')).join('\n') };
}
const live = (name: string) => fixture(`live-22.05/${name}`);
const docs = (name: string) => fixture(`docs-23.02-25.x/${name}`);
const pick = (records: SlurmRecord[], id: string) => records.find((r) => r.id === id);

describe('fixture labels', () => {
  it('every fixture says where it came from', () => {
    const files = execFileSync('find', [fixtures, '-type', 'f'], { encoding: 'utf8' }).trim().split('\n');
    expect(files.length).toBeGreaterThan(15);
    for (const f of files) {
      const first = readFileSync(f, 'utf8').split('\n')[0]!;
      if (f.includes('live-22.05')) expect(first, f).toMatch(/^# captured from the live Slurm 22\.05/);
      else expect(first, f).toMatch(/^# BUILT FROM DOCS, not captured/);
    }
  });
});

describe('small pieces', () => {
  it.each([
    ['12', { jobId: '12' }],
    ['12_3', { jobId: '12', task: 3 }],
    ['12_[4-7%2]', { jobId: '12', tasks: [4, 5, 6, 7], throttle: 2 }],
    ['12_[1,3-5]', { jobId: '12', tasks: [1, 3, 4, 5] }],
    ['12_[0-8:4]', { jobId: '12', tasks: [0, 4, 8] }],
    ['12_3.batch', { jobId: '12', task: 3, step: 'batch' }],
    ['12.0', { jobId: '12', step: '0' }],
    ['12+1', { jobId: '12+1' }],
  ])('job id %s', (text, expected) => {
    expect(parseJobId(text)).toEqual(expected);
  });

  it('rejects what is not a job id', () => {
    expect(() => parseJobId('JOBID')).toThrow(/unreadable Slurm job id/);
  });

  it.each([
    ['CANCELLED by 0', 'CANCELLED', '0'],
    ['CANCELLED by 12345', 'CANCELLED', '12345'],
    ['COMPLETED+', 'COMPLETED', undefined],
    ['CA', 'CANCELLED', undefined],
    ['OOM', 'OUT_OF_MEMORY', undefined],
    ['PD', 'PENDING', undefined],
    ['running', 'RUNNING', undefined],
  ])('state %s', (text, state, by) => {
    const n = normaliseState(text);
    expect(n.state).toBe(state);
    expect(n.by).toBe(by);
  });

  it('exit codes, index lists, host lists', () => {
    expect(parseExitCode('3:0')).toEqual({ code: 3, signal: 0 });
    expect(parseExitCode('0:15')).toEqual({ code: 0, signal: 15 });
    expect(parseExitCode('')).toBeUndefined();
    expect(expandIndices('0-3%2')).toEqual({ indices: [0, 1, 2, 3], throttle: 2 });
    expect(expandHostlist('n[1-3],gpu[010-011],login')).toEqual(['n1', 'n2', 'n3', 'gpu010', 'gpu011', 'login']);
    expect(expandHostlist('None assigned')).toEqual([]);
  });

  it('sbatch --parsable', () => {
    expect(parseSbatchParsable(live('sbatch-parsable.txt').text)).toEqual({ jobId: '1' });
    expect(parseSbatchParsable(docs('sbatch-parsable-cluster.txt').text)).toEqual({ jobId: '9123', cluster: 'cluster-a' });
    expect(() => parseSbatchParsable('sbatch: error: Batch job submission failed: Invalid partition name specified')).toThrow(/not a job id/);
  });
});

describe('live 22.05: squeue', () => {
  it('a running array without -r: the pending tasks are one range record', () => {
    const r = parseSqueue(live('squeue-array-running.txt').text);
    expect(r).toHaveLength(4);
    expect(pick(r, '1_[3-6%3]')).toMatchObject({ jobId: '1', tasks: [3, 4, 5, 6], throttle: 3, state: 'PENDING', reason: 'JobArrayTaskLimit' });
    expect(pick(r, '1_[3-6%3]')!.nodes).toBeUndefined();
    expect(pick(r, '1_[3-6%3]')!.rawJobId).toBeUndefined();
    expect(pick(r, '1_2')).toMatchObject({ task: 2, state: 'RUNNING', nodes: 'n2', rawJobId: '4' });
    expect(findTask(r, '1', 5)).toMatchObject({ task: 5, state: 'PENDING' });
  });

  it('with -r, one line per task; %A of a pending task is the array id, not its own', () => {
    const r = parseSqueue(live('squeue-r-array-running.txt').text);
    expect(r.map((x) => x.id)).toEqual(['1_3', '1_4', '1_5', '1_6', '1_2', '1_1', '1_0']);
    expect(r.filter((x) => x.state === 'PENDING').every((x) => x.rawJobId === undefined)).toBe(true);
    expect(pick(r, '1_0')).toMatchObject({ state: 'RUNNING', nodes: 'n1', rawJobId: '2' });
  });

  it('four fields (no %A) parse too', () => {
    const r = parseSqueue(live('squeue-r-4fields.txt').text);
    expect(r).toHaveLength(7);
    expect(pick(r, '1_1')).toMatchObject({ state: 'RUNNING', nodes: 'n1', reason: 'None' });
    expect(pick(r, '1_1')!.rawJobId).toBeUndefined();
  });

  it('--states=all after the end: exit 3 and a killed batch shell', () => {
    const r = parseSqueue(live('squeue-r-all-done.txt').text);
    expect(pick(r, '1_1')).toMatchObject({ state: 'FAILED', reason: 'NonZeroExitCode', nodes: 'n1', rawJobId: '3' });
    expect(pick(r, '1_2')).toMatchObject({ state: 'FAILED', reason: 'JobLaunchFailure', nodes: 'n2' });
    expect(pick(r, '1_6')).toMatchObject({ state: 'COMPLETED', rawJobId: '1' });
  });

  it('cancelled pending tasks collapse into the array\'s bare record', () => {
    const r = parseSqueue(live('squeue-r-all-cancelled.txt').text);
    expect(findTask(r, '8', 0)).toMatchObject({ state: 'CANCELLED', nodes: 'n2' });
    expect(findTask(r, '8', 3)).toMatchObject({ task: 3, state: 'CANCELLED', reason: 'JobArrayTaskLimit' });
    expect(findTask(r, '8', 3)!.nodes).toBeUndefined();
    expect(findTask(r, '99', 0)).toBeUndefined();
  });
});

describe('live 22.05: scontrol show job -o', () => {
  it('while running: the pending record holds a range', () => {
    const r = parseScontrolJobs(live('scontrol-array-running.txt').text);
    expect(r).toHaveLength(4);
    expect(r[0]).toMatchObject({ id: '1_[3-6%3]', tasks: [3, 4, 5, 6], throttle: 3, state: 'PENDING', reason: 'JobArrayTaskLimit' });
    expect(r[0]!.rawJobId).toBeUndefined();
    expect(findTask(r, '1', 2)).toMatchObject({ state: 'RUNNING', nodes: 'n2', rawJobId: '4', exit: { code: 0, signal: 0 } });
    expect(r[1]!.fields.BatchHost).toBe('n2');
    expect(r[1]!.fields.WorkDir).toBe('/tmp/cap');
  });

  it('after the end: exit code 3, and signal 9 for the killed batch shell', () => {
    const r = parseScontrolJobs(live('scontrol-array-done.txt').text);
    expect(findTask(r, '1', 1)).toMatchObject({ state: 'FAILED', exit: { code: 3, signal: 0 }, reason: 'NonZeroExitCode' });
    expect(findTask(r, '1', 2)).toMatchObject({ state: 'FAILED', exit: { code: 0, signal: 9 }, reason: 'JobLaunchFailure' });
    expect(findTask(r, '1', 6)).toMatchObject({ state: 'COMPLETED', rawJobId: '1' });
  });

  it('after cancelling: ArrayTaskId=4294967294 is the array\'s own record', () => {
    const r = parseScontrolJobs(live('scontrol-array-cancelled.txt').text);
    expect(r[0]).toMatchObject({ id: '8', jobId: '8', state: 'CANCELLED' });
    expect(r[0]!.task).toBeUndefined();
    expect(findTask(r, '8', 2)).toMatchObject({ state: 'CANCELLED' });
    expect(findTask(r, '8', 0)).toMatchObject({ state: 'CANCELLED', nodes: 'n2' });
  });
});

describe('live 22.05: sacct', () => {
  it('jobcomp mode (sacct -c) has raw job ids only; a task is found by its raw id', () => {
    const r = parseSacct(live('sacct-c-jobcomp.txt').text, { jobcomp: true });
    expect(r.every((x) => x.source === 'sacct-jobcomp' && x.task === undefined)).toBe(true);
    expect(pick(r, '3')).toMatchObject({ state: 'FAILED', exit: { code: 3, signal: 0 }, nodes: 'n1' });
    expect(pick(r, '8')!.nodes).toBeUndefined(); // "(null)"
    expect(findTask(r, '1', 1, '3')).toMatchObject({ jobId: '1', task: 1, state: 'FAILED' });
    expect(findTask(r, '1', 2, '4')).toMatchObject({ state: 'FAILED', exit: { code: 0, signal: 9 } });
  });

  it('without accounting, sacct says so (and the CLI wrapper falls back)', () => {
    expect(live('sacct-disabled.stderr.txt').text).toMatch(/accounting storage is disabled/i);
  });
});

describe('built from docs (23.02–25.x): squeue', () => {
  it('-r with more states, a reason with a comma, a multi-node list', () => {
    const r = parseSqueue(docs('squeue-r.txt').text);
    expect(pick(r, '4242_9')).toMatchObject({ state: 'PENDING', reason: 'ReqNodeNotAvail, UnavailableNodes:gpu[03-04]' });
    expect(pick(r, '4242_9')!.nodes).toBeUndefined();
    expect(pick(r, '4242_5')).toMatchObject({ state: 'CONFIGURING', nodes: 'gpu[05-06]', rawJobId: '4248' });
    expect(expandHostlist(pick(r, '4242_5')!.nodes)).toEqual(['gpu05', 'gpu06']);
    expect(pick(r, '4242_1')).toMatchObject({ state: 'REQUEUE_HOLD', reason: 'launch failed requeued held' });
    expect(pick(r, '4242_4')!.state).toBe('COMPLETING');
  });

  it('pending ranges with lists, steps and a throttle; a plain pending job', () => {
    const r = parseSqueue(docs('squeue-ranges.txt').text);
    expect(r[0]).toMatchObject({ jobId: '5001', tasks: [10, 11, 12, 13, 14, 15, 20, 30, 35, 40], throttle: 4 });
    expect(findTask(r, '5001', 35)).toMatchObject({ state: 'PENDING', task: 35 });
    expect(findTask(r, '5001', 3)).toMatchObject({ state: 'RUNNING', nodes: 'node-a017' });
    expect(pick(r, '5003')).toMatchObject({ jobId: '5003', state: 'PENDING', reason: 'Dependency' });
  });

  it('compact state codes', () => {
    const r = parseSqueue(docs('squeue-compact.txt').text);
    expect(r.map((x) => x.state)).toEqual([
      'COMPLETED',
      'FAILED',
      'CANCELLED',
      'TIMEOUT',
      'OUT_OF_MEMORY',
      'NODE_FAIL',
      'PREEMPTED',
      'RUNNING',
      'PENDING',
    ]);
  });
});

describe('built from docs (23.02–25.x): sacct and scontrol', () => {
  it('accounting rows: every end state, "CANCELLED by uid", pending ranges, "None assigned"', () => {
    const r = parseSacct(docs('sacct-accounting.txt').text);
    expect(r).toHaveLength(13);
    expect(pick(r, '7100_2')).toMatchObject({ state: 'CANCELLED', cancelledBy: '12345', exit: { code: 0, signal: 15 } });
    expect(pick(r, '7100_4')).toMatchObject({ state: 'OUT_OF_MEMORY', exit: { code: 0, signal: 125 } });
    expect(pick(r, '7100_9')!.nodes).toBeUndefined();
    expect(findTask(r, '7100', 13)).toMatchObject({ state: 'PENDING' });
    expect(findTask(r, '7100', 17)).toMatchObject({ state: 'CANCELLED', cancelledBy: '0' });
    expect(expandHostlist(pick(r, '7100_10')!.nodes)).toEqual(['gpu010', 'gpu011']);
  });

  it('step rows are dropped: the job row carries the outcome', () => {
    const r = parseSacct(docs('sacct-steps.txt').text);
    expect(r.map((x) => x.id)).toEqual(['7200_0', '7200_1']);
    expect(r[0]).toMatchObject({ state: 'FAILED', exit: { code: 2, signal: 0 } });
  });

  it('scontrol: values with spaces, newer fields, ranges, end states', () => {
    const r = parseScontrolJobs(docs('scontrol.txt').text);
    expect(r[0]).toMatchObject({ tasks: [4, 5, 6, 7, 8, 9], throttle: 2, state: 'PENDING' });
    expect(r[0]!.fields.Command).toBe('/shared/sweeps/my sweep/slurm/submit-1.sbatch');
    expect(r[0]!.fields.Comment).toBe('a comment with spaces');
    expect(r[0]!.fields.TresPerNode).toBe('gres/gpu:1');
    expect(findTask(r, '8800', 2)).toMatchObject({ state: 'RUNNING', nodes: 'gpu[017-018]', rawJobId: '8803' });
    expect(findTask(r, '8800', 1)).toMatchObject({ state: 'OUT_OF_MEMORY', reason: 'OutOfMemory', exit: { code: 0, signal: 125 } });
    expect(findTask(r, '8800', 0)).toMatchObject({ state: 'TIMEOUT', reason: 'TimeLimit' });
    expect(parseScontrolFields('JobId=1 TRES=cpu=1,mem=2G WorkDir=/a b/c Power=')).toEqual({
      JobId: '1',
      TRES: 'cpu=1,mem=2G',
      WorkDir: '/a b/c',
      Power: '',
    });
  });
});

describe('status merge: the run file wins for progress, Slurm tells the rest', () => {
  const status = (over: Partial<RunStatus>): RunStatus => ({
    id: 'r1',
    name: 'run-1',
    state: 'queued',
    step: 0,
    total: 10,
    attempt: 0,
    metrics: {},
    error_class: null,
    error: null,
    log: '/s/runs/r1/worker.log',
    runner_pid: null,
    worker_pid: null,
    started_at: null,
    finished_at: null,
    updated_at: '2026-01-01T00:00:00Z',
    final_dir: null,
    resumed_from: null,
    ...over,
  });
  const task = { job_id: '12', index: 3, attempt: 1 };
  const rec = (line: string) => parseSqueue(line)[0]!;

  it.each([
    ['pending: queued, with the reason', status({}), '12_3|PENDING|JobArrayTaskLimit||12', { state: 'queued', slurm: { state: 'PENDING', reason: 'JobArrayTaskLimit', node: null } }],
    ['running: the file gives the step, Slurm the node', status({ state: 'running', step: 4, attempt: 1 }), '12_3|RUNNING|None|n2|15', { state: 'running', step: 4, slurm: { node: 'n2' } }],
    ['running before the runner wrote anything', status({}), '12_3|RUNNING|None|n2|15', { state: 'running', attempt: 1 }],
    ['succeeded', status({ state: 'succeeded', step: 10, attempt: 1 }), '12_3|COMPLETED|None|n2|15', { state: 'succeeded', step: 10 }],
    ['the runner recorded a stop; Slurm says FAILED (exit 1): the file wins', status({ state: 'cancelled', step: 6, attempt: 1, error_class: 'cancelled' }), '12_3|FAILED|NonZeroExitCode|n2|15', { state: 'cancelled', error_class: 'cancelled' }],
    ['failed before the runner started (a setup line)', status({}), '12_3|FAILED|NonZeroExitCode|n1|15', { state: 'failed', error_class: 'runner-crash', attempt: 1 }],
    ['time limit while running', status({ state: 'running', step: 5, attempt: 1 }), '12_3|TIMEOUT|TimeLimit|n1|15', { state: 'failed', error_class: 'timeout', step: 5 }],
    ['node failure', status({ state: 'running', attempt: 1 }), '12_3|NODE_FAIL|NodeDown|n1|15', { state: 'failed', error_class: 'killed' }],
    ['cancelled while running, runner killed before recording', status({ state: 'running', attempt: 1 }), '12_3|CANCELLED|None|n1|15', { state: 'cancelled', error_class: 'cancelled' }],
    ['cancelled while pending (a stop): the run is still to do', status({}), '12|CANCELLED|JobArrayTaskLimit||12', { state: 'queued', slurm: { state: 'CANCELLED' } }],
    ['an older failure, the retry pending', status({ state: 'failed', attempt: 1, error_class: 'killed' }), '13_0|PENDING|Priority||13', { state: 'queued', error_class: null }],
  ])('%s', (_what, s, line, expected) => {
    const t = line.startsWith('13_') ? { job_id: '13', index: 0, attempt: 2 } : task;
    expect(mergeRun('r1', s, t, rec(line))).toMatchObject(expected);
  });

  it('without a Slurm record the run file stands', () => {
    expect(mergeRun('r1', status({ state: 'running', step: 2, attempt: 1 }), task, undefined)).toMatchObject({ state: 'running', step: 2, slurm: { task: '12_3', state: null } });
    expect(mergeRun('r1', status({ state: 'succeeded', attempt: 1 }), undefined, undefined)).toMatchObject({ state: 'succeeded', slurm: null });
  });

  it('the cause of a task that died unrecorded names the task, state, exit and node', () => {
    const r = parseScontrolJobs(live('scontrol-array-done.txt').text);
    const t = { job_id: '1', index: 1, attempt: 1 };
    expect(describeEnd(t, recordFor(r, t))).toBe('Slurm task 1_1 ended FAILED (exit code 3, NonZeroExitCode) on n1 before the run recorded an outcome');
    const t2 = { job_id: '1', index: 2, attempt: 1 };
    expect(describeEnd(t2, recordFor(r, t2))).toContain('killed by signal 9');
    expect(slurmErrorClass('OUT_OF_MEMORY')).toBe('killed');
    expect(slurmErrorClass('DEADLINE')).toBe('timeout');
  });

  it('the latest submission of a run is its task', () => {
    const latest = latestTasks({
      version: 1,
      submissions: [
        { job_id: '5', submitted_at: '', script: '', manifest: '', log_dir: '', max_concurrent: 2, tasks: [{ index: 0, run_id: 'a', attempt: 1 }, { index: 1, run_id: 'b', attempt: 1 }] },
        { job_id: '9', submitted_at: '', script: '', manifest: '', log_dir: '', max_concurrent: 2, tasks: [{ index: 0, run_id: 'b', attempt: 2, raw_job_id: '10', node: 'n2' }] },
      ],
    });
    expect(latest.get('a')).toEqual({ job_id: '5', index: 0, attempt: 1 });
    expect(latest.get('b')).toEqual({ job_id: '9', index: 0, attempt: 2, raw_job_id: '10', node: 'n2' });
  });
});

describe('batch script', () => {
  const input = {
    sweepName: 'beta scan',
    count: 4,
    maxConcurrent: 2,
    executor: {
      partition: 'gpu',
      account: 'lab',
      qos: 'normal',
      time: '04:00:00',
      mem: '64G',
      cpus_per_run: 8,
      extra_sbatch: ['--constraint=a100', '#SBATCH --exclusive'],
      setup: ['module load cuda/12.4', 'source /shared/venv/bin/activate'],
    },
    gpus: 1,
    manifest: '/shared/my sweep/slurm/submit-1.tsv',
    logDir: '/shared/my sweep/slurm/logs',
    cacheDir: '/shared/cache',
    python: '/shared/venv/bin/python',
    stopGraceS: 60,
    env: { FAKE_WORKER: `{"*": {"steps": 3}} it's` },
    runner: { node: '/opt/node/bin/node', execArgv: [], runner: '/opt/dpo-sweep/dist/execute/runner.js' },
  };

  it('#SBATCH lines from the executor block, then setup, then exec of the runner', () => {
    const s = renderBatchScript(input);
    const directives = s.split('\n').filter((l) => l.startsWith('#SBATCH'));
    expect(directives).toEqual([
      '#SBATCH --job-name=dpo-beta_scan',
      '#SBATCH --array=0-3%2',
      '#SBATCH --output="/shared/my sweep/slurm/logs/%A_%a.out"',
      '#SBATCH --open-mode=append',
      '#SBATCH --nodes=1',
      '#SBATCH --ntasks=1',
      '#SBATCH --signal=B:TERM@90',
      '#SBATCH --partition=gpu',
      '#SBATCH --account=lab',
      '#SBATCH --qos=normal',
      '#SBATCH --time=04:00:00',
      '#SBATCH --mem=64G',
      '#SBATCH --cpus-per-task=8',
      '#SBATCH --gres=gpu:1',
      '#SBATCH --constraint=a100',
      '#SBATCH --exclusive',
    ]);
    expect(s.indexOf('module load cuda/12.4')).toBeGreaterThan(s.indexOf('export DPO_SWEEP_RUNNER_PYTHON=/shared/venv/bin/python'));
    expect(s).toContain(`export FAKE_WORKER='{"*": {"steps": 3}} it'\\''s'`);
    expect(s.trimEnd().split('\n').at(-1)).toBe(
      'exec "${DPO_SWEEP_NODE:-$node_bin}" /opt/dpo-sweep/dist/execute/runner.js --run-dir "$run_dir" --cache-dir "$DPO_SWEEP_CACHE" --attempt "$attempt" --ref-sharing "${ref_sharing:-1}"',
    );
  });

  it('is valid bash, and maps an array index to its manifest line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sbatch-'));
    const manifest = join(dir, 'm.tsv');
    writeFileSync(manifest, renderManifest([{ runDir: join(dir, 'runs/a b'), attempt: 1 }, { runDir: join(dir, 'runs/c'), attempt: 3, refSharing: 4 }]));
    const script = join(dir, 's.sh');
    const fake = join(dir, 'node.sh');
    writeFileSync(fake, '#!/bin/bash\necho "ARGS:$*"\n', { mode: 0o755 });
    writeFileSync(script, renderBatchScript({ ...input, manifest, logDir: dir, executor: { setup: ['echo setup-ran'] }, runner: { ...input.runner, node: fake } }));
    execFileSync('bash', ['-n', script]);
    const out = execFileSync('bash', [script], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH!, SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_JOB_ID: '77', SLURM_JOB_ID: '79', SLURMD_NODENAME: 'n3' },
    });
    expect(out).toContain('task 77_1 (job 79)');
    expect(out).toContain('node n3');
    expect(out).toContain('setup-ran');
    expect(out).toContain(`ARGS:/opt/dpo-sweep/dist/execute/runner.js --run-dir ${join(dir, 'runs/c')} --cache-dir /shared/cache --attempt 3 --ref-sharing 4`);
    expect(() =>
      execFileSync('bash', [script], { env: { PATH: process.env.PATH!, SLURM_ARRAY_TASK_ID: '5', SLURM_ARRAY_JOB_ID: '77' }, stdio: 'pipe' }),
    ).toThrow(/no run for array index 5/);
  });

  it('a run over several nodes: --nodes=M, one task per node, GPUs asked per node', () => {
    const s = renderBatchScript({ ...input, gpus: 4, nodes: 2 });
    const directives = s.split('\n').filter((l) => l.startsWith('#SBATCH'));
    expect(directives).toContain('#SBATCH --nodes=2');
    expect(directives).toContain('#SBATCH --ntasks-per-node=1');
    expect(directives).not.toContain('#SBATCH --ntasks=1');
    expect(directives).toContain('#SBATCH --gres=gpu:2');
    expect(() => renderBatchScript({ ...input, gpus: 3, nodes: 2 })).toThrow(/3 GPUs per run do not split evenly over 2 nodes/);
    expect(renderManifest([{ runDir: '/s/runs/a', attempt: 2, refSharing: 3 }, { runDir: '/s/runs/b', attempt: 1 }])).toBe('/s/runs/a\t2\t3\n/s/runs/b\t1\t1\n');
  });

  it('refuses what would break the script', () => {
    expect(() => renderManifest([{ runDir: 'a\tb', attempt: 1 }])).toThrow(/tab or newline/);
    expect(() => renderBatchScript({ ...input, executor: { partition: 'gpu a100' } })).toThrow(/whitespace/);
    expect(() => renderBatchScript({ ...input, env: { 'BAD-NAME': 'x' } })).toThrow(/not an environment variable/);
    expect(shQuote('/plain/path')).toBe('/plain/path');
    expect(shQuote("it's")).toBe(`'it'\\''s'`);
  });
});
