#!/usr/bin/env node
// Every test tier that needs no GPU, slow ones included, then one line: "N passed, N failed".
//   1. TypeScript tests that need no worker (in parallel)
//   2. Python tests (pytest, in the worker venv)
//   3. TypeScript tests that train for real (test/e2e/, *.slow.test.ts), one file at a time
// With CI=true a skipped test counts as a failure: CI must exercise Slurm, Chromium and the worker.
// Usage: npm test [-- --only ts|py|slow] [-- --no-setup] [-- <vitest filter>]
// It first sets up what a fresh clone lacks (build, worker venv, pytest, Chromium when root).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const ci = process.env.CI === 'true' || process.env.CI === '1';
const args = process.argv.slice(2);
const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined;
const env = { ...process.env, HF_HUB_OFFLINE: '1', HF_DATASETS_OFFLINE: '1', TRANSFORMERS_OFFLINE: '1' };
const tmp = mkdtempSync(join(tmpdir(), 'dpo-sweep-tests-'));
const SLOW = ['test/e2e/', '.slow.test.ts'];

const totals = { passed: 0, failed: 0, skipped: 0 };

/** Set-up a fresh clone needs: the compiled CLI, the worker venv (+ pytest), Chromium for the report test. */
function prepare() {
  const run = (cmd, argv, opts = {}) => {
    const r = spawnSync(cmd, argv, { cwd: root, env, stdio: 'inherit', ...opts });
    if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed (exit ${r.status})`);
  };
  if (!existsSync(join(root, 'dist/cli/bin.js'))) run('npm', ['run', 'build']);
  run(process.execPath, [join(root, 'dist/cli/bin.js'), 'setup']);
  const python = join(process.env.DPO_SWEEP_VENV ?? join(root, '.venv'), 'bin', 'python');
  if (spawnSync(python, ['-c', 'import pytest'], { env }).status !== 0) {
    run(python, ['-m', 'pip', 'install', '--disable-pip-version-check', '-q', 'pytest==9.2.0']);
  }
  const hasChromium = spawnSync('sh', ['-c', 'command -v chromium']).status === 0;
  if (!hasChromium && process.getuid?.() === 0 && spawnSync('sh', ['-c', 'command -v apt-get']).status === 0) {
    console.log('installing Debian chromium for the HTML report test');
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
    run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'chromium'], { env: { ...env, DEBIAN_FRONTEND: 'noninteractive' } });
  }
}
if (!args.includes('--no-setup')) prepare();
const problems = [];

function vitest(label, extra) {
  const out = join(tmp, `${label}.json`);
  const r = spawnSync(
    process.execPath,
    [join(root, 'node_modules/vitest/vitest.mjs'), 'run', '--reporter=default', '--reporter=json', `--outputFile=${out}`, ...extra],
    { cwd: root, env, stdio: 'inherit' },
  );
  if (!existsSync(out)) {
    problems.push(`${label}: vitest produced no report (exit ${r.status})`);
    totals.failed += 1;
    return;
  }
  const report = JSON.parse(readFileSync(out, 'utf8'));
  totals.passed += report.numPassedTests;
  totals.failed += report.numFailedTests;
  const skipped = report.numPendingTests + report.numTodoTests;
  totals.skipped += skipped;
  // A file that failed to load has no tests but fails.
  const broken = report.testResults.filter((f) => f.status === 'failed' && f.assertionResults.length === 0);
  for (const f of broken) problems.push(`${label}: ${f.name} failed to run: ${(f.message ?? '').split('\n')[0]}`);
  totals.failed += broken.length;
  if (r.status !== 0 && report.numFailedTests === 0 && broken.length === 0) {
    problems.push(`${label}: vitest exited with ${r.status}`);
    totals.failed += 1;
  }
}

function pytest() {
  const python = join(process.env.DPO_SWEEP_VENV ?? join(root, '.venv'), 'bin', 'python');
  if (!existsSync(python)) {
    problems.push(`python: no worker venv at ${python} (run \`npx dpo-sweep setup\` and install pytest)`);
    totals.failed += 1;
    return;
  }
  const xml = join(tmp, 'pytest.xml');
  const r = spawnSync(python, ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', `--junitxml=${xml}`, 'py/tests'], {
    cwd: root,
    env: { ...env, PYTHONPATH: join(root, 'py') },
    stdio: 'inherit',
  });
  if (!existsSync(xml)) {
    problems.push(`python: pytest produced no report (exit ${r.status})`);
    totals.failed += 1;
    return;
  }
  const text = readFileSync(xml, 'utf8');
  const suite = /<testsuite [^>]*>/.exec(text)?.[0] ?? '';
  const attr = (name) => Number(new RegExp(`${name}="(\\d+)"`).exec(suite)?.[1] ?? 0);
  const tests = attr('tests');
  const failed = attr('failures') + attr('errors');
  const skipped = attr('skipped');
  totals.passed += tests - failed - skipped;
  totals.failed += failed;
  totals.skipped += skipped;
  if (r.status !== 0 && failed === 0) {
    problems.push(`python: pytest exited with ${r.status}`);
    totals.failed += 1;
  }
}

const filters = args.filter((a, i) => a !== '--only' && a !== '--no-setup' && args[i - 1] !== '--only');
if (!only || only === 'ts') vitest('ts', [...SLOW.map((p) => `--exclude=**/${p.endsWith('/') ? `${p}**` : `*${p}`}`), ...filters]);
if (!only || only === 'py') pytest();
if (!only || only === 'slow') vitest('slow', ['--no-file-parallelism', '--maxWorkers=1', ...(filters.length ? filters : ['test/e2e', '.slow.test.ts'])]);

if (ci && totals.skipped > 0) {
  problems.push(`${totals.skipped} test(s) skipped: with CI=true every tier must really run`);
}
for (const p of problems) console.log(`problem: ${p}`);
const failed = totals.failed + (ci ? totals.skipped : 0);
console.log(`${totals.passed} passed, ${failed} failed${!ci && totals.skipped ? `, ${totals.skipped} skipped` : ''}`);
process.exit(failed > 0 || problems.length > 0 ? 1 : 0);
