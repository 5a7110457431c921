/**
 * The worker's Python environment: where the interpreter is, and `setup` (a venv with the pinned
 * packages of py/pyproject.toml, created once, idempotent).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { InputError } from '../errors.js';
import { readJson, writeJsonAtomic } from '../execute/run-dir.js';

/** The package root (holds py/, configs/): two levels above this file in src/ and in dist/. */
export const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const workerRoot = join(packageRoot, 'py');
const pyproject = join(workerRoot, 'pyproject.toml');
const STAMP = '.dpo-sweep-setup.json';

export interface PythonEnv {
  python: string;
  /** `flag` (--python), `env` (DPO_SWEEP_PYTHON) or `venv` (the managed environment). */
  source: 'flag' | 'env' | 'venv';
  venv?: string;
}

export function defaultVenvDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.DPO_SWEEP_VENV ? resolve(env.DPO_SWEEP_VENV) : join(packageRoot, '.venv');
}

export function resolvePython(opts: { python?: string } = {}, env: NodeJS.ProcessEnv = process.env): PythonEnv {
  if (opts.python) return { python: resolve(opts.python), source: 'flag' };
  if (env.DPO_SWEEP_PYTHON) return { python: resolve(env.DPO_SWEEP_PYTHON), source: 'env' };
  const venv = defaultVenvDir(env);
  return { python: join(venv, 'bin', 'python'), source: 'venv', venv };
}

/** `name==version` pins of the worker package (py/pyproject.toml is the one list). */
export function readPins(): Record<string, string> {
  const text = readFileSync(pyproject, 'utf8');
  const block = /^dependencies\s*=\s*\[([\s\S]*?)\]/m.exec(text)?.[1] ?? '';
  const pins: Record<string, string> = {};
  for (const m of block.matchAll(/"([A-Za-z0-9_.-]+)==([^"]+)"/g)) pins[m[1]!.toLowerCase()] = m[2]!;
  return pins;
}

function stampValue(): string {
  return createHash('sha256').update(readFileSync(pyproject)).digest('hex').slice(0, 16);
}

export interface SetupResult {
  python: string;
  changed: boolean;
  message: string;
}

/**
 * Create the managed venv and install the worker with its pinned packages. Does nothing (and says
 * so) when the venv exists and the pins have not changed since it was made. An interpreter given
 * with --python / DPO_SWEEP_PYTHON is used as it is: set-up never installs into it.
 */
export async function setupWorker(
  opts: { python?: string; force?: boolean; log?: (line: string) => void } = {},
  env: NodeJS.ProcessEnv = process.env,
): Promise<SetupResult> {
  const log = opts.log ?? (() => undefined);
  const target = resolvePython(opts, env);
  if (target.source !== 'venv') {
    if (!existsSync(target.python)) {
      throw new InputError(`Python interpreter not found: ${target.python} (from ${target.source === 'flag' ? '--python' : 'DPO_SWEEP_PYTHON'})`);
    }
    return { python: target.python, changed: false, message: `using ${target.python} as it is (not managed by dpo-sweep)` };
  }
  const venv = target.venv!;
  const stamp = readJson<{ stamp: string }>(join(venv, STAMP));
  if (!opts.force && stamp?.stamp === stampValue() && existsSync(target.python)) {
    return { python: target.python, changed: false, message: `worker environment ${venv} is up to date (pins unchanged)` };
  }
  return withLock(`${venv}.lock`, async () => {
    // Another process may have finished the same set-up while we waited for the lock.
    const again = readJson<{ stamp: string }>(join(venv, STAMP));
    if (!opts.force && again?.stamp === stampValue() && existsSync(target.python)) {
      return { python: target.python, changed: false, message: `worker environment ${venv} is up to date (pins unchanged)` };
    }
    const base = env.DPO_SWEEP_BASE_PYTHON ?? 'python3';
    if (!existsSync(target.python)) {
      log(`creating virtual environment ${venv} with ${base}`);
      await execa(base, ['-m', 'venv', venv], { stdio: 'pipe' });
    }
    log('installing the worker and its pinned packages (torch, transformers, trl, …); the first time takes a few minutes');
    const pip = execa(target.python, ['-m', 'pip', 'install', '--disable-pip-version-check', '-e', workerRoot], {
      all: true,
      buffer: { all: true },
      env: { PIP_PROGRESS_BAR: 'off' },
    });
    pip.all?.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) {
        const m = /^(Collecting|Installing collected packages|Successfully installed)\s*(.*)$/.exec(line.trim());
        if (m) log(`pip: ${m[1]} ${m[2]}`.slice(0, 160));
      }
    });
    try {
      await pip;
    } catch (cause) {
      const all = (cause as { all?: string }).all ?? '';
      throw new InputError('installing the Python worker failed', all.split('\n').slice(-15), { cause });
    }
    writeJsonAtomic(join(venv, STAMP), { stamp: stampValue(), pins: readPins(), at: new Date().toISOString() });
    return { python: target.python, changed: true, message: `worker environment ready: ${venv}` };
  });
}

/** For commands that need the worker: set up on first use (with a progress line), else return at once. */
export async function ensureWorker(
  opts: { python?: string; log?: (line: string) => void } = {},
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  const result = await setupWorker(opts, env);
  if (result.changed) opts.log?.(result.message);
  return result.python;
}

async function withLock<T>(lockDir: string, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 30 * 60_000;
  mkdirSync(dirname(lockDir), { recursive: true });
  for (;;) {
    try {
      mkdirSync(lockDir);
      break;
    } catch {
      // A lock older than 30 minutes belongs to a set-up that died.
      try {
        if (Date.now() - statSync(lockDir).mtimeMs > 30 * 60_000) rmSync(lockDir, { recursive: true, force: true });
      } catch {
        // gone meanwhile
      }
      if (Date.now() > deadline) throw new InputError(`timed out waiting for ${lockDir} (another set-up running?)`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lockDir, { recursive: true, force: true });
  }
}
