/** A bad option value names the option, exits 2 and prints no stack trace and no full help. */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { repoRoot } from '../helpers/python.js';

it('a bad numeric option value names the option', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(repoRoot, 'src/cli/bin.ts'), 'generate', '--model', 'm', '--prompts', 'p', '--out', 'o', '--n', '0'], {
    cwd: repoRoot,
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect(r.status).toBe(2);
  expect(r.stderr).toContain(`option '--n <n>' argument '0' is invalid. expected a positive integer, got "0"`);
  expect(r.stderr).toContain('--help for usage');
  expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  expect(r.stderr).not.toContain('Options:'); // not the whole help
});
