/** The real worker for the slow tiers: the managed venv (CI creates it with `dpo-sweep setup`). */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { resolvePython } from '../../src/setup/python-env.js';
import { repoRoot } from './python.js';

export function workerPython(): string {
  const { python } = resolvePython();
  if (!existsSync(python)) {
    throw new Error(`the worker venv is missing (${python}): run \`npx dpo-sweep setup\` first`);
  }
  return python;
}

/** One model/cache dir shared by the slow tests (the tiny model is built once). */
export function testCache(): string {
  const dir = process.env.DPO_SWEEP_TEST_CACHE ?? join(repoRoot, '.cache', 'test');
  mkdirSync(dir, { recursive: true });
  return dir;
}
