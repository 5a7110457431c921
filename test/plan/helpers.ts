/** Shared helpers for plan tests: YAML written inline, files served from memory. */
import path from 'node:path';
import { InputError } from '../../src/errors.js';
import { loadPlan, type LoadedPlan, type LoadOptions } from '../../src/plan/load.js';

/** Strips the common indentation of a template literal and its first/last blank lines. */
export function yaml(strings: TemplateStringsArray, ...values: unknown[]): string {
  const text = String.raw({ raw: strings }, ...values).replace(/^\n/, '').replace(/\n[ \t]*$/, '\n');
  const indent = Math.min(...text.split('\n').filter((l) => l.trim()).map((l) => l.match(/^ */)![0].length));
  return text
    .split('\n')
    .map((l) => l.slice(indent))
    .join('\n');
}

export const CWD = '/plans';

/** Loads `plan.yaml` (and any other files) from memory, as if they lived in /plans. */
export function loadFromMemory(files: Record<string, string>, options: Omit<LoadOptions, 'readFile' | 'cwd'> = {}): Promise<LoadedPlan> {
  const byPath = new Map(Object.entries(files).map(([name, text]) => [path.resolve(CWD, name), text]));
  return loadPlan('plan.yaml', {
    cwd: CWD,
    isDirectory: () => false,
    // Nothing exists on disk for an in-memory plan; tests of the existence check pass their own.
    pathKind: false,
    ...options,
    readFile: async (file) => {
      const text = byPath.get(file);
      if (text === undefined) throw Object.assign(new Error(`ENOENT: ${file}`), { code: 'ENOENT' });
      return text;
    },
  });
}

/** The problem lines of a plan that must be rejected. */
export async function problems(text: string, options: { sets?: string[]; files?: Record<string, string> } = {}): Promise<string[]> {
  const error = await loadFromMemory({ 'plan.yaml': text, ...options.files }, options.sets ? { sets: options.sets } : {}).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof InputError)) throw new Error(`expected an InputError, got ${String(error)}`);
  return error.details;
}

/** `file:line:col` of each problem line. */
export function positions(lines: string[]): string[] {
  return lines.map((l) => l.split('  ')[0]!);
}
