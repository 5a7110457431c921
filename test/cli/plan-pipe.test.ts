/**
 * `dpo-sweep plan big.yaml | head -3`: the reader closes the pipe early. The CLI must end quietly
 * (exit 0, no EPIPE stack trace), not crash on the unhandled stream error.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/python.js';

describe('dpo-sweep plan into a pipe that closes early', () => {
  it('exits 0 without a stack trace when the reader stops after the first lines of a 1000-run table', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'plan-pipe-'));
    const plan = join(dir, 'big.yaml');
    const values = (n: number, f: (i: number) => number) => `[${Array.from({ length: n }, (_, i) => f(i)).join(', ')}]`;
    writeFileSync(
      plan,
      [
        'name: big',
        'base:',
        `  dataset: {path: ${join(repoRoot, 'configs/data/prefs-hh.jsonl')}}`,
        '  training: {max_steps: 3}',
        'sweep:',
        '  grid:',
        `    beta: ${values(10, (i) => (i + 1) / 100)}`,
        `    training.learning_rate: ${values(10, (i) => (i + 1) * 1e-6)}`,
        `  seeds: ${values(10, (i) => i)}`,
      ].join('\n'),
    );
    const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'src/cli/bin.ts'), 'plan', plan], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    let first = '';
    // Read the first chunk, then close our end of the pipe, as `head -1` does.
    child.stdout.once('data', (d: Buffer) => {
      first = d.toString();
      child.stdout.destroy();
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    expect(first).toMatch(/^plan "big": 1000 runs/);
    expect(stderr).not.toMatch(/EPIPE|Unhandled|at .*:\d+:\d+/);
    expect(code).toBe(0);
  }, 60_000);
});
