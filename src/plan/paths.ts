/**
 * Relative file settings resolve against the folder of the plan file that wrote them (so a plan
 * reached through `extends` keeps its own relative paths), `--set` values against the working
 * directory. `dataset.path` is always a file; `model` / `reference` are a local folder only when
 * written as one (`./`, `../`, absolute) or when that folder exists, otherwise a hub id or a
 * `builtin:` / `stage:` reference.
 */
import path from 'node:path';
import type { Path } from './issues.js';
import { defineKey, isMapping } from './origins.js';
import type { Plan } from './schema.js';
import { splitKey } from './variants.js';

type PathKind = 'file' | 'model';

/** Settings that name files or folders. */
export const PATH_SETTINGS: readonly { key: readonly string[]; kind: PathKind }[] = [
  { key: ['dataset', 'path'], kind: 'file' },
  { key: ['model'], kind: 'model' },
  { key: ['reference'], kind: 'model' },
];

/** Resolves one setting value written in a file in `dir`. */
export function resolveSettingPath(kind: PathKind, value: string, dir: string, isDirectory?: (p: string) => boolean): string {
  if (path.isAbsolute(value)) return value;
  if (kind === 'file') return path.resolve(dir, value);
  if (/^[a-z]+:/i.test(value)) return value; // builtin:tiny-llama, stage:sft
  if (/^\.\.?([/\\]|$)/.test(value)) return path.resolve(dir, value);
  return isDirectory?.(path.resolve(dir, value)) ? path.resolve(dir, value) : value;
}

/**
 * A copy of `plan` with path settings made absolute wherever they are written: `base`,
 * `stages.sft`, list variants, grid values and random choices. `dirOf` gives the folder a plan
 * path was written relative to.
 */
export function resolvePlanPaths(plan: Plan, dirOf: (planPath: Path) => string, isDirectory?: (p: string) => boolean): Plan {
  const fix = (value: unknown, at: Path, prefix: readonly string[]): unknown => {
    let out = value;
    for (const { key, kind } of PATH_SETTINGS) {
      if (key.length < prefix.length || !prefix.every((s, i) => key[i] === s)) continue;
      const rest = key.slice(prefix.length);
      const current = getIn(out, rest);
      if (typeof current === 'string') out = setIn(out, rest, resolveSettingPath(kind, current, dirOf([...at, ...rest]), isDirectory));
    }
    return out;
  };
  const copy = structuredClone(plan);
  if (copy.base) copy.base = fix(copy.base, ['base'], []) as Plan['base'];
  if (copy.stages?.sft) copy.stages.sft = fix(copy.stages.sft, ['stages', 'sft'], []) as NonNullable<Plan['stages']>['sft'];
  const sweep = copy.sweep;
  if (sweep?.list) sweep.list = sweep.list.map((variant, i) => fix(variant, ['sweep', 'list', i], []) as typeof variant);
  for (const [key, values] of Object.entries(sweep?.grid ?? {})) {
    sweep!.grid![key] = values.map((v, j) => fix(v, ['sweep', 'grid', key, j], splitKey(key)));
  }
  for (const [key, param] of Object.entries(sweep?.random?.params ?? {})) {
    if ('choice' in param) param.choice = param.choice.map((v, j) => fix(v, ['sweep', 'random', 'params', key, 'choice', j], splitKey(key)));
  }
  return copy;
}

/** What a path is on disk (injected in tests). */
export type PathLookup = (p: string) => 'file' | 'dir' | undefined;

/** A local path setting that does not exist (or is the wrong kind of thing). */
export interface MissingPath {
  /** Where it was written in the plan. */
  planPath: Path;
  kind: 'file' | 'model';
  value: string;
  /** `no-config` / `no-weights`: a folder that is not (yet) a whole model. */
  found: 'none' | 'file' | 'no-config' | 'no-weights';
}

/** Weight files transformers (and peft, for an adapter) load a model from. */
const WEIGHT_FILES = [
  'model.safetensors',
  'model.safetensors.index.json',
  'pytorch_model.bin',
  'pytorch_model.bin.index.json',
  'adapter_model.safetensors',
  'adapter_model.bin',
];

/** What is missing from a local model folder: `config.json` (or an adapter's), or its weights. */
function modelFolderProblem(dir: string, pathKind: PathLookup): 'no-config' | 'no-weights' | undefined {
  const has = (name: string) => pathKind(path.join(dir, name)) === 'file';
  if (!has('config.json') && !has('adapter_config.json')) return 'no-config';
  return WEIGHT_FILES.some(has) ? undefined : 'no-weights';
}

/**
 * Local paths a resolved plan (`resolvePlanPaths`) names that are not there: a `dataset.path` that
 * is neither a file nor a folder, a model or reference written as a local folder (absolute after
 * resolution) that is not a folder. Hub ids, `builtin:` and `stage:` references are not checked.
 */
export function missingPaths(plan: Plan, pathKind: PathLookup): MissingPath[] {
  const out: MissingPath[] = [];
  const check = (value: unknown, at: Path, prefix: readonly string[]): void => {
    for (const { key, kind } of PATH_SETTINGS) {
      if (key.length < prefix.length || !prefix.every((s, i) => key[i] === s)) continue;
      const rest = key.slice(prefix.length);
      const current = getIn(value, rest);
      if (typeof current !== 'string' || !path.isAbsolute(current)) continue;
      const found = pathKind(current);
      if (kind === 'file' ? found === undefined : found !== 'dir') {
        out.push({ planPath: [...at, ...rest], kind, value: current, found: found === 'file' ? 'file' : 'none' });
      } else if (kind === 'model') {
        const problem = modelFolderProblem(current, pathKind);
        if (problem) out.push({ planPath: [...at, ...rest], kind, value: current, found: problem });
      }
    }
  };
  if (plan.base) check(plan.base, ['base'], []);
  if (plan.stages?.sft) check(plan.stages.sft, ['stages', 'sft'], []);
  plan.sweep?.list?.forEach((variant, i) => check(variant, ['sweep', 'list', i], []));
  for (const [key, values] of Object.entries(plan.sweep?.grid ?? {})) values.forEach((v, j) => check(v, ['sweep', 'grid', key, j], splitKey(key)));
  for (const [key, param] of Object.entries(plan.sweep?.random?.params ?? {})) {
    if ('choice' in param) param.choice.forEach((v, j) => check(v, ['sweep', 'random', 'params', key, 'choice', j], splitKey(key)));
  }
  return out;
}

function getIn(value: unknown, keys: readonly string[]): unknown {
  let v = value;
  for (const k of keys) {
    if (!isMapping(v)) return undefined;
    v = v[k];
  }
  return v;
}

function setIn(value: unknown, keys: readonly string[], leaf: unknown): unknown {
  const [head, ...rest] = keys;
  if (head === undefined) return leaf;
  const out: Record<string, unknown> = isMapping(value) ? { ...value } : {};
  defineKey(out, head, setIn(out[head], rest, leaf));
  return out;
}
