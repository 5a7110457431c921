/**
 * The model map: hub ids in a seed config (`policy_name`, `ref_name`, `dataset.dataset_name`, later
 * rollout models) → local directories, files or `builtin:` models, so the same YAML runs offline.
 *
 * Given with `--model-map` and/or the `DPO_SWEEP_MODEL_MAP` environment variable (the flag's entries
 * win), each as one of:
 *   - a JSON or YAML file holding a mapping (relative targets resolve against the file's folder);
 *   - an inline JSON object: `{"W-61/hh-llama32-1b-sft": "/models/sft"}`;
 *   - `hub-id=path` pairs separated by commas: `W-61/hh-llama32-1b-sft=builtin:tiny-llama,...`
 *     (relative targets resolve against the working directory).
 */
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import * as jsyaml from 'js-yaml';
import { InputError } from '../errors.js';
import { isMapping } from '../plan/origins.js';

export interface MapEntry {
  /** `builtin:…` as written, anything else an absolute path. */
  target: string;
  /** Where the entry came from, for messages (`--model-map maps.json`, `DPO_SWEEP_MODEL_MAP`). */
  from: string;
}

export type ModelMap = ReadonlyMap<string, MapEntry>;

export const MODEL_MAP_ENV = 'DPO_SWEEP_MODEL_MAP';

/** What a path is on disk (injected in tests). */
export type PathKind = (p: string) => 'file' | 'dir' | undefined;

export const pathKindOnDisk: PathKind = (p) => {
  try {
    const s = statSync(p);
    return s.isDirectory() ? 'dir' : s.isFile() ? 'file' : undefined;
  } catch {
    return undefined;
  }
};

export interface ModelMapSources {
  /** `--model-map` value. */
  flag?: string | undefined;
  /** `DPO_SWEEP_MODEL_MAP` value. */
  env?: string | undefined;
  /** Base of relative files and targets (default: process.cwd()). */
  cwd?: string;
  readFile?: (file: string) => string;
  pathKind?: PathKind;
}

/** The merged map of both sources (flag entries win). Throws `InputError` on a malformed source. */
export function readModelMap(sources: ModelMapSources): Map<string, MapEntry> {
  const map = new Map<string, MapEntry>();
  const add = (value: string | undefined, label: string) => {
    if (value === undefined || value.trim() === '') return;
    for (const [id, entry] of parseModelMap(value, label, sources)) map.set(id, entry);
  };
  add(sources.env, MODEL_MAP_ENV);
  add(sources.flag, '--model-map');
  return map;
}

/** One source: a file, an inline JSON object or `id=path` pairs. */
export function parseModelMap(value: string, label: string, options: Omit<ModelMapSources, 'flag' | 'env'> = {}): Map<string, MapEntry> {
  const cwd = options.cwd ?? process.cwd();
  const kind = options.pathKind ?? pathKindOnDisk;
  const readFile = options.readFile ?? ((f: string) => readFileSync(f, 'utf8'));
  const trimmed = value.trim();

  if (trimmed.startsWith('{')) return fromObject(parseText(trimmed, `${label} (inline JSON)`, false), `${label} (inline JSON)`, cwd);
  const file = path.resolve(cwd, trimmed);
  if (kind(file) === 'file') {
    const from = `${label} ${trimmed}`;
    let text: string;
    try {
      text = readFile(file);
    } catch (error) {
      throw new InputError(`cannot read the model map ${trimmed} (${label}): ${error instanceof Error ? error.message : String(error)}`);
    }
    return fromObject(parseText(text, from, true), from, path.dirname(file));
  }
  if (!trimmed.includes('=') && (kind(file) === 'dir' || /\.(ya?ml|json)$/i.test(trimmed))) {
    throw new InputError(`${label}: ${file} ${kind(file) === 'dir' ? 'is a directory' : 'does not exist'}; expected a YAML or JSON file of hub id: target`);
  }
  if (!trimmed.includes('=')) {
    throw new InputError(`${label}: "${trimmed}" is neither a file, a JSON object, nor hub-id=path pairs`, [
      'examples: --model-map maps.json | --model-map \'{"org/model": "/models/m"}\' | --model-map org/model=builtin:tiny-llama,org/data=data.jsonl',
    ]);
  }
  const out = new Map<string, MapEntry>();
  for (const pair of trimmed.split(',')) {
    if (pair.trim() === '') continue;
    const eq = pair.indexOf('=');
    const id = pair.slice(0, eq).trim();
    const target = pair.slice(eq + 1).trim();
    if (eq <= 0 || id === '' || target === '') throw new InputError(`${label}: "${pair.trim()}" is not hub-id=path`);
    out.set(id, { target: resolveTarget(target, cwd), from: label });
  }
  return out;
}

/** `located`: name the line and column of a syntax error (a file; an inline value is one line). */
function parseText(text: string, from: string, located: boolean): unknown {
  try {
    return jsyaml.load(text, { schema: jsyaml.CORE_SCHEMA });
  } catch (error) {
    if (!(error instanceof jsyaml.YAMLException)) throw error;
    const at = located && error.mark ? ` (line ${error.mark.line + 1}, column ${error.mark.column + 1})` : '';
    throw new InputError(`${from}: not valid JSON or YAML${at}: ${error.reason}`);
  }
}

function fromObject(value: unknown, from: string, base: string): Map<string, MapEntry> {
  if (!isMapping(value)) throw new InputError(`${from}: expected a mapping of hub id → local path`);
  const out = new Map<string, MapEntry>();
  const bad = Object.entries(value).filter(([, target]) => typeof target !== 'string' || target.trim() === '');
  if (bad.length > 0) {
    throw new InputError(
      `${from}: every target must be a non-empty string (a local path or builtin:<name>)`,
      bad.map(([id, target]) => `${id}: ${JSON.stringify(target)}`),
    );
  }
  for (const [id, target] of Object.entries(value)) out.set(id, { target: resolveTarget(String(target).trim(), base), from });
  return out;
}

function resolveTarget(target: string, base: string): string {
  if (/^builtin:/.test(target)) return target;
  const expanded = target.startsWith('~/') ? path.join(process.env.HOME ?? '~', target.slice(2)) : target;
  return path.resolve(base, expanded);
}

/**
 * `id` through the map: its target, or undefined when the map has no entry. A target that is not a
 * `builtin:` model must exist (a directory for models; a file or directory for datasets).
 * Throws `InputError` naming the id, the target and where the entry came from.
 */
export function mapId(
  map: ModelMap,
  id: string,
  what: 'model' | 'dataset',
  pathKind: PathKind = pathKindOnDisk,
): { target: string; from: string } | undefined {
  const entry = map.get(id);
  if (!entry) return undefined;
  if (entry.target.startsWith('builtin:')) {
    if (what === 'dataset') throw new InputError(`model map: "${id}" is a dataset here; builtin: targets are models only (from ${entry.from})`);
    return entry;
  }
  const kind = pathKind(entry.target);
  const ok = what === 'model' ? kind === 'dir' : kind !== undefined;
  if (!ok) {
    const expected = what === 'model' ? 'a model directory' : 'a dataset file or directory';
    throw new InputError(`model map: "${id}" → ${entry.target} (from ${entry.from}): ${kind === 'file' ? 'is a file' : 'does not exist'}; expected ${expected}`);
  }
  return entry;
}

export interface ResolvedSource {
  /** The map target, an absolute local path, or the value as written (a hub id or builtin:). */
  value: string;
  local: boolean;
  /** `org/x → /models/x (model map, --model-map maps.yaml)` when the map had an entry. */
  mapped?: string;
  /** Why the value cannot be used: a bad map entry, or a local path that does not exist. */
  error?: string;
}

/**
 * A seed config's model or dataset value → what a run uses: the model map's entry; else an
 * existing local folder (models) or file/folder (data), relative to `bases` in order; else a hub id
 * or builtin: model, unless it is written as a path (`./x`, `/x`), which must then exist.
 */
export function resolveSource(map: ModelMap, value: string, what: 'model' | 'dataset', bases: readonly string[], pathKind: PathKind = pathKindOnDisk): ResolvedSource {
  try {
    const entry = mapId(map, value, what, pathKind);
    if (entry) return { value: entry.target, local: true, mapped: `${value} → ${entry.target} (model map, ${entry.from})` };
  } catch (error) {
    if (error instanceof InputError) return { value, local: false, error: error.message };
    throw error;
  }
  if (/^builtin:/.test(value)) return { value, local: false };
  for (const base of bases) {
    const candidate = path.resolve(base, value);
    const found = pathKind(candidate);
    if ((what === 'model' && found === 'dir') || (what === 'dataset' && found !== undefined)) return { value: candidate, local: true };
  }
  if (path.isAbsolute(value) || /^\.\.?[/\\]/.test(value)) {
    return { value, local: false, error: `${value} does not exist (a local ${what === 'model' ? 'model directory' : 'dataset file or folder'})` };
  }
  return { value, local: false };
}
