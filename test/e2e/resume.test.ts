/**
 * kill -9 of the CLI with the real worker, then a rerun: the run resumes from its last TRL
 * checkpoint (not from step 0), finishes, and its step events continue where it stopped.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { readJsonl, readStatus } from '../../src/execute/run-dir.js';
import { repoRoot, waitFor } from '../helpers/python.js';
import { testCache, workerPython } from '../helpers/worker.js';

const plan = join(repoRoot, 'test/fixtures/plans/e2e-two-betas.yaml');
const bin = join(repoRoot, 'src/cli/bin.ts');

function cli(out: string) {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', bin, plan, '--out', out, '--set', 'base.training.max_steps=12', '--set', 'base.training.save_steps=4', '--set', 'sweep.grid.beta=[0.1]'],
    {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, CI: '1', DPO_SWEEP_PYTHON: workerPython(), DPO_SWEEP_CACHE: testCache() },
    },
  );
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const done = new Promise<{ code: number | null; err: string }>((r) => child.on('exit', (code) => r({ code, err })));
  return { child, done };
}

it('resumes from the last checkpoint after kill -9 of the CLI', async () => {
  const out = mkdtempSync(join(tmpdir(), 'e2e-resume-'));
  const first = cli(out);
  const checkpointed = () => {
    if (!existsSync(join(out, 'runs'))) return false;
    const id = readdirSync(join(out, 'runs'))[0];
    return Boolean(id && existsSync(join(out, 'runs', id, 'checkpoints', 'checkpoint-4', 'trainer_state.json')));
  };
  expect(await waitFor(checkpointed, 120_000, 100)).toBe(true);
  first.child.kill('SIGKILL');
  await first.done;

  const second = await cli(out).done;
  expect(second.code, second.err).toBe(0);
  const id = readdirSync(join(out, 'runs'))[0]!;
  const status = readStatus(join(out, 'runs', id))!;
  expect(status).toMatchObject({ state: 'succeeded', step: 12, total: 12 });
  expect(status.resumed_from).toMatch(/^checkpoint-\d+$/);
  const resumedAt = Number(status.resumed_from!.split('-')[1]);
  expect(resumedAt).toBeGreaterThanOrEqual(4);
  const events = readJsonl<{ kind: string; step?: number; attempt?: number }>(join(out, 'runs', id, 'events.jsonl'));
  const lastStart = events.map((e) => e.kind).lastIndexOf('run-start');
  const steps = events.slice(lastStart).filter((e) => e.kind === 'step').map((e) => e.step);
  expect(steps[0]).toBe(resumedAt + 1); // continued, not restarted
  expect(steps.at(-1)).toBe(12);
}, 300_000);
