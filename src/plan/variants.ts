/**
 * A plan's runs before defaults: list × grid × random draws × seeds, each as the stack of layers it
 * was merged from (base ← variant ← grid values ← random values ← seed). Keeping the layers lets any
 * problem found in a resolved run be reported where its value was written. Pure and deterministic;
 * sweep/expand.ts turns drafts into RunSpecs.
 */
import { RunSettingsSchema, type RunSettings } from '../sweep/run-spec.js';
import type { Path } from './issues.js';
import { defineKey, isMapping } from './origins.js';
import { drawRandom } from './random.js';
import type { Plan } from './schema.js';

export type LayerKind = 'base' | 'variant' | 'grid' | 'random' | 'seed';

export interface Layer {
  kind: LayerKind;
  /** Where the layer was written in the plan: `base`, `sweep.list[i]`, `sweep.grid.<key>[j]`, ... */
  source: Path;
  /** The settings path an axis layer sets (`dynamic_beta.alpha` → ['dynamic_beta', 'alpha']); [] for base and variants. */
  key: Path;
  /** Nested settings this layer writes. */
  values: Record<string, unknown>;
}

export interface RunDraft {
  /** Position in expansion order. */
  index: number;
  /** Variant name (or plan name) plus the short axis values: `dpo-beta0.05-seed1`. */
  name: string;
  /** The list variant this run comes from, if any. */
  variant: string | undefined;
  /** Dotted settings path → value, for everything this run varies (variant overrides and axes). */
  varied: Record<string, unknown>;
  layers: Layer[];
  /** The merged settings, before defaults. */
  input: Record<string, unknown>;
}

const SEED_KEY = ['training', 'seed'];

/** Splits a dotted settings key (`training.batch_size`). */
export function splitKey(dotted: string): string[] {
  return dotted.split('.');
}

/** Sweep axes in expansion order: grid keys, random params, then seeds. */
export function axisKeys(plan: Plan): { key: string; source: Path }[] {
  const grid = Object.keys(plan.sweep?.grid ?? {}).map((key) => ({ key, source: ['sweep', 'grid', key] }));
  const random = Object.keys(plan.sweep?.random?.params ?? {}).map((key) => ({ key, source: ['sweep', 'random', 'params', key] }));
  const seeds = plan.sweep?.seeds ? [{ key: SEED_KEY.join('.'), source: ['sweep', 'seeds'] }] : [];
  return [...grid, ...random, ...seeds];
}

const cache = new WeakMap<Plan, RunDraft[]>();

export function resolveVariants(plan: Plan): RunDraft[] {
  const cached = cache.get(plan);
  if (cached) return cached;
  const sweep = plan.sweep ?? {};
  const base: Layer = { kind: 'base', source: ['base'], key: [], values: (plan.base ?? {}) as Record<string, unknown> };
  const variants: (Layer | undefined)[] = sweep.list
    ? sweep.list.map((variant, i) => {
        const { name: _name, ...values } = variant;
        return { kind: 'variant', source: ['sweep', 'list', i], key: [], values: values as Record<string, unknown> };
      })
    : [undefined];
  const gridCombos = cartesian(
    Object.entries(sweep.grid ?? {}).map(([key, values]) =>
      values.map((value, j): Layer => ({ kind: 'grid', source: ['sweep', 'grid', key, j], key: splitKey(key), values: nest(splitKey(key), value) })),
    ),
  );
  const draws: Layer[][] = sweep.random
    ? drawRandom(sweep.random).map((draw) =>
        draw.map(({ key, value, choice }): Layer => {
          const source = ['sweep', 'random', 'params', key, ...(choice === undefined ? [] : ['choice', choice])];
          return { kind: 'random', source, key: splitKey(key), values: nest(splitKey(key), value) };
        }),
      )
    : [[]];
  const seeds: (Layer | undefined)[] = sweep.seeds
    ? sweep.seeds.map((seed, k) => ({ kind: 'seed', source: ['sweep', 'seeds', k], key: SEED_KEY, values: nest(SEED_KEY, seed) }))
    : [undefined];

  const labels = shortLabels(axisKeys(plan).map((a) => a.key));
  const drafts: RunDraft[] = [];
  for (const variant of variants) {
    for (const combo of gridCombos) {
      for (const draw of draws) {
        for (const seed of seeds) {
          const layers = [base, ...(variant ? [variant] : []), ...combo, ...draw, ...(seed ? [seed] : [])];
          const variantName = variant ? sweep.list![Number(variant.source[2])]!.name : undefined;
          const varied: Record<string, unknown> = {};
          if (variant) for (const [k, v] of leaves(variant.values)) varied[k] = v;
          const parts: string[] = [];
          for (const layer of layers) {
            if (layer.kind === 'base' || layer.kind === 'variant') continue;
            const key = layer.key.join('.');
            const value = valueAt(layer.values, layer.key);
            varied[key] = value;
            parts.push(`${labels.get(key) ?? key}${shortValue(value, layer)}`);
          }
          drafts.push({
            index: drafts.length,
            name: sanitize([variantName ?? plan.name, ...parts].join('-')),
            variant: variantName,
            varied,
            layers,
            input: layers.reduce<Record<string, unknown>>((acc, layer) => mergeSettings(acc, layer.values), {}),
          });
        }
      }
    }
  }
  uniquifyNames(drafts);
  cache.set(plan, drafts);
  return drafts;
}

/** Where the value at settings `path` of a draft was written: the last layer that wrote it. */
export function sourceOf(draft: RunDraft, path: Path): { planPath: Path; layer: number } {
  for (let i = draft.layers.length - 1; i >= 0; i--) {
    const layer = draft.layers[i]!;
    if (layer.kind === 'base' || layer.kind === 'variant') {
      const depth = writtenDepth(layer.values, path);
      if (depth >= 0) return { planPath: [...layer.source, ...path.slice(0, depth)], layer: i };
    } else if (startsWith(path, layer.key)) {
      return { planPath: [...layer.source, ...path.slice(layer.key.length)], layer: i };
    }
  }
  return { planPath: ['base', ...path], layer: -1 };
}

const settingsCache = new WeakMap<RunDraft, RunSettings | null>();

/**
 * The draft's settings with defaults applied, for rules. Values that do not validate (reported by
 * `checkRuns`) fall back to their defaults, so rules still see the rest; undefined when even that
 * does not validate.
 */
export function settingsOf(draft: RunDraft): RunSettings | undefined {
  if (!settingsCache.has(draft)) {
    let input: unknown = draft.input;
    let settings: RunSettings | null = null;
    for (let round = 0; round < 4 && settings === null; round++) {
      const parsed = RunSettingsSchema.safeParse(input);
      if (parsed.success) settings = parsed.data;
      else input = parsed.error.issues.reduce((acc, zi) => withoutPath(acc, zi.code === 'unrecognized_keys' ? [...zi.path, ...zi.keys] : zi.path), input);
    }
    settingsCache.set(draft, settings);
  }
  return settingsCache.get(draft) ?? undefined;
}

/** Removes the value at `path` (a bad array item removes its array). */
function withoutPath(value: unknown, path: readonly PropertyKey[]): unknown {
  const keys = typeof path.at(-1) === 'number' ? path.slice(0, -1) : path;
  if (keys.length === 0 || !isMapping(value)) return value;
  const [head, ...rest] = keys.map(String);
  const out = mergeSettings({}, value);
  if (rest.length === 0) delete out[head!];
  else if (Object.hasOwn(out, head!)) defineKey(out, head!, withoutPath(out[head!], rest));
  return out;
}

/** Deep merge of settings layers into a fresh object: mappings merge, anything else replaces. */
export function mergeSettings(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(base)) defineKey(out, k, copy(v));
  for (const [k, v] of Object.entries(over)) {
    const current = out[k];
    defineKey(out, k, isMapping(current) && isMapping(v) ? mergeSettings(current, v) : copy(v));
  }
  return out;
}

function copy(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(copy);
  return isMapping(v) ? mergeSettings({}, v) : v;
}

/** The value at a path of nested mappings (undefined if absent). */
export function valueAt(values: unknown, path: Path): unknown {
  let v = values;
  for (const segment of path) {
    if (v === null || typeof v !== 'object' || !Object.hasOwn(v, segment)) return undefined;
    v = (v as Record<string | number, unknown>)[segment];
  }
  return v;
}

function nest(path: readonly string[], value: unknown): Record<string, unknown> {
  return path.reduceRight<unknown>((acc, key) => {
    const o: Record<string, unknown> = {};
    defineKey(o, key, acc);
    return o;
  }, value) as Record<string, unknown>;
}

/**
 * How many leading segments of `path` this layer wrote: the full length when it wrote the value,
 * fewer when it wrote a non-mapping above it, -1 when it wrote nothing there.
 */
function writtenDepth(values: unknown, path: Path): number {
  let v = values;
  for (let k = 0; k < path.length; k++) {
    if (v === null || typeof v !== 'object') return k;
    const segment = path[k]!;
    if (!Object.hasOwn(v, segment)) return Array.isArray(v) ? k : -1;
    v = (v as Record<string | number, unknown>)[segment];
  }
  return path.length;
}

function startsWith(path: Path, prefix: Path): boolean {
  return prefix.length <= path.length && prefix.every((segment, i) => String(path[i]) === String(segment));
}

function cartesian<T>(axes: T[][]): T[][] {
  return axes.reduce<T[][]>((combos, axis) => combos.flatMap((combo) => axis.map((value) => [...combo, value])), [[]]);
}

/** Dotted leaves of nested mappings (arrays are leaves). */
function leaves(values: Record<string, unknown>, prefix = ''): [string, unknown][] {
  return Object.entries(values).flatMap(([k, v]) => {
    const key = prefix ? `${prefix}.${k}` : k;
    return isMapping(v) && Object.keys(v).length > 0 ? leaves(v, key) : [[key, v] as [string, unknown]];
  });
}

/** Axis labels for run names: the last segment of each key, unless two axes share it. */
function shortLabels(keys: string[]): Map<string, string> {
  const last = keys.map((k) => splitKey(k).at(-1)!);
  return new Map(keys.map((k, i) => [k, last.filter((l) => l === last[i]).length > 1 ? k.replaceAll('.', '_') : last[i]!]));
}

function shortValue(value: unknown, layer: Layer): string {
  if (typeof value === 'number') {
    return layer.kind === 'random' && !Number.isInteger(value) ? String(Number(value.toPrecision(3))) : String(value);
  }
  if (Array.isArray(value) && value.every((v) => v === null || typeof v !== 'object')) return value.map(String).join('+');
  if (value !== null && typeof value === 'object') return String(layer.source.at(-1));
  return String(value);
}

function sanitize(name: string): string {
  return name.replace(/[^A-Za-z0-9._+=-]/g, '_');
}

/** Rounded values can make two names equal; later ones get `-2`, `-3`, ... */
function uniquifyNames(drafts: RunDraft[]): void {
  const taken = new Set<string>();
  for (const draft of drafts) {
    let name = draft.name;
    for (let n = 2; taken.has(name); n++) name = `${draft.name}-${n}`;
    draft.name = name;
    taken.add(name);
  }
}
