/**
 * `executor: slurm` against a real Slurm: the lab cluster of scripts/slurm/lab-up.sh (munge,
 * slurmctld and slurmd on 127.0.0.1; CI starts it with SLURM_LAB_NODES=3 SLURM_LAB_CPUS=2) and the
 * fast fake worker (no torch). The runner under Slurm runs from the sources here, through tsx
 * (sbatch.ts `runnerCommand`): no build needed; a compiled dpo-sweep uses dist/execute/runner.js.
 *
 * If SLURM_CONF is unset and this is root, the test starts the lab itself and stops what it
 * started. With CI=true a Slurm that cannot be started FAILS the test; otherwise it skips.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cancelCommand } from '../../src/cli/commands/cancel.js';
import { statusCommand } from '../../src/cli/commands/status.js';
import type { SweepEvent } from '../../src/execute/events.js';
import { readJsonl, readStatus, runPaths } from '../../src/execute/run-dir.js';
import { expandHostlist } from '../../src/execute/slurm/parse.js';
import { executeSlurm } from '../../src/execute/slurm/executor.js';
import { loadPlan } from '../../src/plan/load.js';
import { expandPlan } from '../../src/sweep/expand.js';
import { readSlurmRecord } from '../../src/execute/slurm/status.js';
import { runSweep, type SweepOptions } from '../../src/execute/sweep.js';
import { plainPython, repoRoot, waitFor } from '../helpers/python.js';
import { testCache, workerPython } from '../helpers/worker.js';

const ci = process.env.CI === 'true' || process.env.CI === '1';
const fake = join(repoRoot, 'test/fixtures/python/fake_worker.py');
const labUp = join(repoRoot, 'scripts/slurm/lab-up.sh');
const labDown = join(repoRoot, 'scripts/slurm/lab-down.sh');

interface Lab {
  ok: boolean;
  reason?: string;
  /** Started here (and so stopped here). */
  started: boolean;
  nodes: string[];
}

function sinfoNodes(env: NodeJS.ProcessEnv): string[] | undefined {
  const r = spawnSync('sinfo', ['-h', '-N', '-o', '%N|%T'], { env, encoding: 'utf8', timeout: 20_000 });
  if (r.status !== 0) return undefined;
  return [...new Set(r.stdout.trim().split('\n').filter(Boolean).map((l) => l.split('|')[0]!))];
}

function prepareLab(): Lab {
  let started = false;
  if (!process.env.SLURM_CONF) {
    const dir = process.env.SLURM_LAB ?? '/tmp/dpo-sweep-slurm-lab';
    const conf = join(dir, 'etc', 'slurm.conf');
    const up = existsSync(conf) && sinfoNodes({ ...process.env, SLURM_CONF: conf }) !== undefined;
    if (!up) {
      if (process.getuid?.() !== 0) {
        return { ok: false, started, nodes: [], reason: 'SLURM_CONF is unset and this is not root, so the lab Slurm (scripts/slurm/lab-up.sh) cannot be started' };
      }
      const r = spawnSync('bash', [labUp], {
        env: { ...process.env, SLURM_LAB: dir, SLURM_LAB_NODES: process.env.SLURM_LAB_NODES ?? '3', SLURM_LAB_CPUS: process.env.SLURM_LAB_CPUS ?? '2' },
        encoding: 'utf8',
        timeout: 180_000,
      });
      if (r.status !== 0) return { ok: false, started, nodes: [], reason: `lab-up.sh failed (exit ${r.status}): ${(r.stderr || r.stdout || '').slice(-800)}` };
      started = true;
    }
    process.env.SLURM_CONF = conf;
  }
  const nodes = sinfoNodes(process.env);
  if (!nodes?.length) return { ok: false, started, nodes: [], reason: `Slurm does not answer (sinfo failed with SLURM_CONF=${process.env.SLURM_CONF})` };
  return { ok: true, started, nodes };
}

const lab = prepareLab();
if (!lab.ok && !ci) console.warn(`skipping the Slurm tests: ${lab.reason}`);

afterAll(() => {
  if (lab.started) spawnSync('bash', [labDown], { stdio: 'inherit', timeout: 60_000 });
});

/** A 4-run plan on the Slurm executor. */
function writePlan(dir: string, executor: Record<string, unknown>): string {
  const file = join(dir, 'plan.yaml');
  const lines = [
    'name: slurm-test',
    'base:',
    '  model: builtin:tiny-llama',
    '  dataset:',
    `    path: ${join(repoRoot, 'configs/data/prefs-hh.jsonl')}`,
    '    format: hh',
    '  algorithm: dpo',
    '  training:',
    '    max_steps: 5',
    '    batch_size: 4',
    'sweep:',
    '  grid:',
    '    beta: [0.01, 0.02, 0.03, 0.04]',
    `executor: ${JSON.stringify({ kind: 'slurm', ...executor })}`,
  ];
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

function sweep(out: string, plan: string, behaviour: Record<string, unknown>, extra: Partial<SweepOptions> = {}) {
  const events: SweepEvent[] = [];
  const promise = runSweep(plan, {
    python: plainPython(),
    out,
    cacheDir: join(out, 'cache'),
    env: { DPO_SWEEP_WORKER_TARGET: fake, FAKE_WORKER: JSON.stringify(behaviour) },
    stopGraceMs: 15_000,
    listener: (e) => events.push(e),
    ...extra,
  });
  return { events, promise };
}

interface TimeRecord {
  name: string;
  event: string;
  t: number;
  step: number;
  attempt?: number;
}

/** The largest number of runs whose [start, end] intervals overlap. */
function maxOverlap(records: TimeRecord[]): number {
  const points: Array<[number, number]> = [];
  for (const r of records) {
    if (r.event === 'start') points.push([r.t, 1]);
    if (r.event === 'end') points.push([r.t, -1]);
  }
  points.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let now = 0;
  let max = 0;
  for (const [, d] of points) max = Math.max(max, (now += d));
  return max;
}

/** Tests that need 2+ nodes: with CI=true a one-node lab fails them, else they are skipped with a warning. */
function severalNodes(what: string): boolean {
  if (lab.nodes.length >= 2) return true;
  if (ci) throw new Error(`the lab has one node (${lab.nodes.join(',')}): CI must start it with SLURM_LAB_NODES=3`);
  console.warn(`one-node Slurm: ${what} needs SLURM_LAB_NODES=3`);
  return false;
}

function captureIO() {
  const lines: string[] = [];
  return { io: { out: (l: string) => lines.push(l), err: (l: string) => lines.push(l), isTTY: false, env: process.env }, lines };
}

describe('Slurm lab', () => {
  it.runIf(ci || lab.ok)('is up (with CI=true it must be)', () => {
    expect(lab.reason ?? 'ok').toBe('ok');
  });
});

describe.runIf(lab.ok)('executor: slurm (live Slurm, fake worker)', () => {
  it('runs every run as one job array, at most K at a time; status shows Slurm state and node', async () => {
    const out = mkdtempSync(join(tmpdir(), 'slurm-cap-'));
    const log = join(out, 'times.jsonl');
    const t0 = Date.now();
    const { events, promise } = sweep(out, writePlan(out, { max_concurrent: 2, setup: ['echo "setup on $SLURMD_NODENAME"'] }), {
      '*': { steps: 4, step_s: 0.4, log_times: log },
    });
    const result = await promise;
    const seconds = (Date.now() - t0) / 1000;
    expect(result.statuses.map((s) => [s.state, s.attempt])).toEqual(Array(4).fill(['succeeded', 1]));
    const record = readSlurmRecord(out)!;
    expect(record.submissions).toHaveLength(1); // one array for the sweep
    expect(readFileSync(record.submissions[0]!.script, 'utf8')).toContain('#SBATCH --array=0-3%2');
    const times = readJsonl<TimeRecord>(log);
    expect(maxOverlap(times)).toBe(2); // the cap holds, and is used
    // The same event stream as the local executor.
    for (const s of result.specs) {
      const kinds = events.filter((e) => 'id' in e && e.id === s.id).map((e) => e.kind);
      expect(kinds).toContain('run-start');
      expect(kinds.at(-1)).toBe('run-end');
      expect(events.some((e) => e.kind === 'run-event' && e.id === s.id && e.event.kind === 'step')).toBe(true);
    }
    // The task's Slurm log sits in the run dir (a link), with the setup line's output.
    const firstRun = join(out, 'runs', result.specs[0]!.id);
    const link = join(firstRun, `slurm-${record.submissions[0]!.job_id}_0.out`);
    expect(readFileSync(link, 'utf8')).toMatch(/setup on \S+/);

    const { io, lines } = captureIO();
    await statusCommand(out, {}, io);
    const text = lines.join('\n');
    expect(text).toContain('4 succeeded, 0 failed');
    expect(text).toMatch(new RegExp(`${record.submissions[0]!.job_id}_3\\s+COMPLETED\\s+\\S+`));
    console.log(`cap test: 4 runs × 4 steps of 0.4 s, %2, in ${seconds.toFixed(1)} s`);
  }, 90_000);

  it('spreads runs over several nodes (SLURM_LAB_NODES=3)', async () => {
    if (!severalNodes('the spread test')) return;
    const out = mkdtempSync(join(tmpdir(), 'slurm-nodes-'));
    const { promise } = sweep(out, writePlan(out, {}), { '*': { steps: 4, step_s: 0.5 } });
    const result = await promise;
    expect(result.statuses.every((s) => s.state === 'succeeded')).toBe(true);
    const nodes = new Set(readSlurmRecord(out)!.submissions.flatMap((s) => s.tasks.flatMap((t) => expandHostlist(t.node))));
    expect(nodes.size).toBeGreaterThanOrEqual(2);
    // Each task says where it ran (SLURMD_NODENAME) in its log.
    const logged = new Set(
      result.specs.map((s) => /node (\S+),/.exec(readFileSync(join(out, 'runs', s.id, `slurm-${readSlurmRecord(out)!.submissions[0]!.job_id}_${result.specs.indexOf(s)}.out`), 'utf8'))?.[1]),
    );
    expect(logged).toEqual(nodes);
  }, 90_000);

  it('reports a failing task with its cause; retries a killed worker by the local policy', async () => {
    const out = mkdtempSync(join(tmpdir(), 'slurm-fail-'));
    const { events, promise } = sweep(
      out,
      writePlan(out, { max_concurrent: 4 }),
      {
        '*': { steps: 4, step_s: 0.1 },
        'beta0.01': { fail: 'raise', fail_at: 3 },
        'beta0.02': { fail: 'kill-self', fail_at: 3, fail_attempts: [1] },
      },
      { retry: { backoff_s: 0.2 } },
    );
    const result = await promise;
    const [raised, killed, ok3, ok4] = result.statuses;
    expect(raised).toMatchObject({ state: 'failed', attempt: 1, error_class: 'python-exception' });
    expect(raised!.error).toContain('RuntimeError: fake failure at step 3');
    const raisedEvents = readJsonl<{ kind: string; traceback?: string }>(runPaths(join(out, 'runs', raised!.id)).events);
    expect(raisedEvents.find((e) => e.kind === 'traceback')?.traceback).toContain('fake_worker.py');
    expect(killed).toMatchObject({ state: 'succeeded', attempt: 2 });
    const killedEvents = readJsonl<{ kind: string; after?: string }>(runPaths(join(out, 'runs', killed!.id)).events);
    expect(killedEvents.filter((e) => e.kind === 'retry')).toEqual([expect.objectContaining({ after: 'killed', delay_ms: 200 })]);
    expect(killedEvents.some((e) => e.kind === 'resume')).toBe(true); // from the step-2 checkpoint
    expect(events.filter((e) => e.kind === 'run-retry').map((e) => (e as { id: string }).id)).toEqual([killed!.id]);
    expect([ok3!.state, ok4!.state]).toEqual(['succeeded', 'succeeded']);
    // The retry went to Slurm as a new, one-task array.
    const subs = readSlurmRecord(out)!.submissions;
    expect(subs.map((s) => s.tasks.map((t) => [t.run_id, t.attempt]))).toEqual([
      result.specs.map((s) => [s.id, 1]),
      [[killed!.id, 2]],
    ]);
    const { io, lines } = captureIO();
    await statusCommand(out, {}, io);
    expect(lines.join('\n')).toContain('[python-exception] RuntimeError: fake failure at step 3');
  }, 90_000);

  it('a task that fails before its runner starts is reported with Slurm\'s cause and log', async () => {
    const out = mkdtempSync(join(tmpdir(), 'slurm-setup-'));
    const setup = ['if [[ $SLURM_ARRAY_TASK_ID == 1 ]]; then echo "module: cuda/99 not found" >&2; exit 7; fi'];
    const { promise } = sweep(out, writePlan(out, { setup }), { '*': { steps: 2, step_s: 0.05 } }, { retry: { max: 0 } });
    const result = await promise;
    const bad = result.statuses[1]!;
    const job = readSlurmRecord(out)!.submissions[0]!.job_id;
    expect(bad).toMatchObject({ state: 'failed', error_class: 'runner-crash', attempt: 1 });
    expect(bad.error).toContain(`Slurm task ${job}_1 ended FAILED (exit code 7`);
    expect(bad.error).toContain('module: cuda/99 not found');
    expect(result.statuses.filter((s) => s.state === 'succeeded')).toHaveLength(3);
    // runner-crash is retried by default; with retries.max 0 the status says why this one was not.
    const [cause, why] = bad.error!.split(' — not retried: ');
    expect(why).toBe('gave up after 1 attempt (retries.max is 0)');
    expect(readStatus(join(out, 'runs', bad.id))?.error).toBe(bad.error);
    const events = readJsonl<{ kind: string; error?: string }>(runPaths(join(out, 'runs', bad.id)).events);
    expect(events.at(-1)).toMatchObject({ kind: 'run-end', error: cause });
  }, 90_000);

  it('dpo-sweep cancel mid-run: runners checkpoint on SIGTERM; a resubmit resumes them and finishes the sweep', async () => {
    const out = mkdtempSync(join(tmpdir(), 'slurm-cancel-'));
    const log = join(out, 'times.jsonl');
    const plan = writePlan(out, { max_concurrent: 2 });
    // No periodic checkpoint: the only one is the one written on the stop request.
    const behaviour = { '*': { steps: 12, step_s: 0.3, ckpt_every: 1000, log_times: log } };
    const first = sweep(out, plan, behaviour);
    const steps = () => readJsonl<TimeRecord>(log).filter((r) => r.event === 'step');
    const twoRunning = await waitFor(() => new Set(steps().filter((r) => r.step >= 3).map((r) => r.name)).size >= 2, 60_000, 100);
    expect(twoRunning).toBe(true);
    const { io, lines } = captureIO();
    await cancelCommand(out, { wait: 30 }, io);
    expect(lines.join('\n')).toContain('every task has stopped');
    const stopped = await first.promise;
    const ran = stopped.statuses.filter((s) => s.state === 'cancelled');
    expect(ran).toHaveLength(2);
    expect(stopped.statuses.filter((s) => s.state === 'queued')).toHaveLength(2); // never started
    const checkpointAt = new Map<string, number>();
    for (const s of ran) {
      const ev = readJsonl<{ kind: string; step?: number }>(runPaths(join(out, 'runs', s.id)).events);
      const ckpt = ev.filter((e) => e.kind === 'checkpoint').at(-1);
      expect(ckpt?.step).toBeGreaterThanOrEqual(3);
      expect(ckpt?.step).toBeLessThan(12);
      checkpointAt.set(s.name, ckpt!.step!);
    }

    const second = sweep(out, plan, behaviour);
    const done = await second.promise;
    expect(done.statuses.map((s) => s.state)).toEqual(Array(4).fill('succeeded'));
    const starts = readJsonl<TimeRecord>(log).filter((r) => r.event === 'start');
    for (const [name, step] of checkpointAt) {
      expect(starts.filter((r) => r.name === name).map((r) => r.step)).toEqual([0, step]); // resumed, not redone
      expect(readStatus(join(out, 'runs', done.specs.find((s) => s.name === name)!.id))!.resumed_from).toBe(`checkpoint-${step}`);
    }
    expect(readSlurmRecord(out)!.submissions.at(-1)!.tasks).toHaveLength(4);
  }, 120_000);

  it('Ctrl-C (the stop signal): pending tasks cancelled, running runs checkpoint and end cancelled', async () => {
    const out = mkdtempSync(join(tmpdir(), 'slurm-stop-'));
    const log = join(out, 'times.jsonl');
    const stop = new AbortController();
    const run = sweep(out, writePlan(out, { max_concurrent: 2 }), { '*': { steps: 12, step_s: 0.3, ckpt_every: 1000, log_times: log } }, { stopSignal: stop.signal });
    const started = await waitFor(() => new Set(readJsonl<TimeRecord>(log).filter((r) => r.event === 'step' && r.step >= 2).map((r) => r.name)).size >= 2, 60_000, 100);
    expect(started).toBe(true);
    const t0 = Date.now();
    stop.abort();
    const result = await run.promise;
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(result.statuses.map((s) => s.state).sort()).toEqual(['cancelled', 'cancelled', 'queued', 'queued']);
    for (const s of result.statuses.filter((x) => x.state === 'cancelled')) {
      const ev = readJsonl<{ kind: string; step?: number }>(runPaths(join(out, 'runs', s.id)).events);
      expect(ev.some((e) => e.kind === 'checkpoint')).toBe(true); // written on SIGTERM (no periodic ones)
    }
    expect(run.events.some((e) => e.kind === 'run-retry')).toBe(false);
  }, 90_000);

  it('a second executor on the same sweep follows the tasks still in Slurm instead of resubmitting them', async () => {
    const out = mkdtempSync(join(tmpdir(), 'slurm-adopt-'));
    const plan = writePlan(out, { max_concurrent: 2 });
    const behaviour = { '*': { steps: 6, step_s: 0.4 } };
    const first = sweep(out, plan, behaviour);
    await waitFor(() => (readSlurmRecord(out)?.submissions.length ?? 0) > 0, 30_000, 100);
    // What a rerun does after the first CLI died (called directly: the first holds the sweep lock).
    const specs = expandPlan((await loadPlan(plan)).plan);
    const events: SweepEvent[] = [];
    const again = await executeSlurm(specs, {
      out,
      cacheDir: join(out, 'cache'),
      python: plainPython(),
      sweepName: 'slurm-test',
      executor: { max_concurrent: 2 },
      env: { DPO_SWEEP_WORKER_TARGET: fake, FAKE_WORKER: JSON.stringify(behaviour) },
      listener: (e) => events.push(e),
    });
    await first.promise;
    expect(again.map((s) => [s.state, s.attempt])).toEqual(Array(4).fill(['succeeded', 1]));
    expect(readSlurmRecord(out)!.submissions).toHaveLength(1); // nothing submitted twice
    const followed = events.filter((e) => e.kind === 'setup' && /earlier submission: following it/.test(e.message));
    expect(followed).toHaveLength(4);
    expect(events.filter((e) => e.kind === 'run-end')).toHaveLength(4);
  }, 90_000);

  it('stages.sft and an out-of-memory retry reach the tasks through overrides.json', async () => {
    const out = mkdtempSync(join(tmpdir(), 'slurm-stage-'));
    const log = join(out, 'times.jsonl');
    const { promise } = sweep(out, join(repoRoot, 'test/fixtures/plans/staged.yaml'), { '*': { steps: 2, step_s: 0.05, oom_above: 4, log_times: log } }, {
      executor: 'slurm',
      retry: { backoff_s: 0, max: 3 },
    });
    const result = await promise;
    expect(result.statuses.map((s) => [s.name, s.state, s.attempt])).toEqual([
      ['staged-sft', 'succeeded', 2],
      ['staged-beta0.05', 'succeeded', 2],
      ['staged-beta0.1', 'succeeded', 2],
    ]);
    const [sft, ...runs] = result.specs;
    for (const spec of runs) {
      // The stage's final model, given to the task's runner by overrides.json.
      const seen = readJsonl<{ kind: string; model?: string }>(join(out, 'runs', spec.id, 'events.jsonl')).filter((e) => e.kind === 'train-begin');
      expect(seen.map((e) => e.model)).toEqual([join(out, 'runs', sft!.id, 'final')]); // the fake reports it after its OOM check
    }
    // Micro-batch 8 (the default) ran out of memory; the retry task got 4 × accumulation 2.
    const starts = readJsonl<TimeRecord & { batch_size: number; grad_accum: number }>(log).filter((r) => r.event === 'start' && r.name === 'staged-beta0.1');
    expect(starts.map((r) => [r.batch_size, r.grad_accum])).toEqual([
      [8, 1],
      [4, 2],
    ]);
  }, 120_000);

  it('a run spans 2 nodes (resources.nodes_per_run: 2, real worker, gloo): one rank per node, the numbers of one process', async () => {
    if (!severalNodes('the multi-node run')) return;
    const out = mkdtempSync(join(tmpdir(), 'slurm-span-'));
    const plan = join(out, 'plan.yaml');
    writeFileSync(
      plan,
      [
        'name: slurm-span',
        'base:',
        '  model: builtin:tiny-llama',
        '  algorithm: dynamic-beta-dpo',
        `  dataset: {path: ${join(repoRoot, 'configs/data/prefs-hh.jsonl')}, format: hh, limit: 16}`,
        '  training: {max_steps: 3, batch_size: 4, learning_rate: 1.0e-3, scheduler: constant, max_length: 128, save_steps: 1000}',
        '  dynamic_beta: {warmup: 1, alpha: 0.5, beta_min: 0.01}',
        '  resources: {processes_per_run: 2, nodes_per_run: 2}',
        'executor: {kind: slurm}',
        '',
      ].join('\n'),
    );
    const python = workerPython();
    const cacheDir = testCache();
    const spanned = await runSweep(plan, { python, cacheDir, out, stopGraceMs: 15_000 });
    const [status] = spanned.statuses;
    expect(status, status?.error ?? '').toMatchObject({ state: 'succeeded' });
    expect(readFileSync(readSlurmRecord(out)!.submissions[0]!.script, 'utf8')).toMatch(/#SBATCH --nodes=2\n#SBATCH --ntasks-per-node=1\n/);
    const events = readJsonl<{ kind: string; phase?: string; ranks?: { rank: number; node: string }[]; metrics?: { loss: number } }>(
      runPaths(join(out, 'runs', status!.id)).events,
    );
    expect(events.some((e) => e.kind === 'phase' && e.phase === 'launching 2 training processes on 2 nodes')).toBe(true);
    const ranks = events.find((e) => e.kind === 'ranks')!.ranks!;
    expect(ranks.map((r) => r.rank)).toEqual([0, 1]);
    expect(new Set(ranks.map((r) => r.node)).size).toBe(2); // one rank on each node
    for (const r of ranks) expect(lab.nodes).toContain(r.node);
    const losses = events.filter((e) => e.kind === 'step').map((e) => e.metrics!.loss);
    expect(losses).toHaveLength(3);

    // The same run on one local process with the global batch (2 × 4 = 8): the same losses.
    const localOut = mkdtempSync(join(tmpdir(), 'slurm-span-local-'));
    const single = await runSweep(plan, {
      python,
      cacheDir,
      out: localOut,
      executor: 'local',
      sets: ['base.resources.processes_per_run=1', 'base.resources.nodes_per_run=1', 'base.training.batch_size=8'],
    });
    expect(single.statuses[0]!.state).toBe('succeeded');
    const reference = readJsonl<{ kind: string; metrics?: { loss: number } }>(runPaths(join(localOut, 'runs', single.statuses[0]!.id)).events)
      .filter((e) => e.kind === 'step')
      .map((e) => e.metrics!.loss);
    expect(Math.max(...losses.map((x, i) => Math.abs(x - reference[i]!)))).toBeLessThanOrEqual(1e-5);
  }, 300_000);
});

