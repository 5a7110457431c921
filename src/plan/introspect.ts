/**
 * Reading zod schemas as data: unwrapping optional/default wrappers, walking to the schema at a path,
 * listing the keys allowed at a spot, and deriving the "overrides" form of run settings. Everything
 * here is generic over the schema, so new run settings need no change in this file.
 */
import { z } from 'zod';
import type { Path } from './issues.js';

/** The parts of zod's internal definition this module reads. */
export interface Def {
  type: string;
  innerType?: z.ZodType;
  in?: z.ZodType;
  out?: z.ZodType;
  element?: z.ZodType;
  items?: z.ZodType[];
  options?: z.ZodType[];
  valueType?: z.ZodType;
  keyType?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  catchall?: z.ZodType;
  entries?: Record<string, string | number>;
  values?: unknown[];
  checks?: { _zod: { def: Record<string, unknown> } }[];
  defaultValue?: unknown;
  getter?: () => z.ZodType;
  format?: string;
}

export function defOf(schema: z.ZodType): Def {
  return (schema as unknown as { _zod: { def: Def } })._zod.def;
}

const WRAPPERS = new Set(['optional', 'default', 'prefault', 'nullable', 'readonly', 'catch', 'nonoptional', 'exact_optional']);

export interface Peeled {
  /** The schema under optional/default/nullable/... wrappers (and pipes, from their input side). */
  inner: z.ZodType;
  /** The outermost description met on the way. */
  description: string | undefined;
  /** Metadata (`.meta()`) of the outermost schema that has some. */
  meta: Record<string, unknown> | undefined;
  optional: boolean;
  nullable: boolean;
  /** Present when a `.default()` was met (its value, computed once). */
  default?: { value: unknown };
}

export function peel(schema: z.ZodType): Peeled {
  const out: Peeled = { inner: schema, description: undefined, meta: undefined, optional: false, nullable: false };
  let current: z.ZodType = schema;
  for (let guard = 0; guard < 32; guard++) {
    out.description ??= current.description;
    out.meta ??= z.globalRegistry.get(current) as Record<string, unknown> | undefined;
    const def = defOf(current);
    if (def.type === 'optional' || def.type === 'exact_optional') out.optional = true;
    if (def.type === 'nullable') out.nullable = true;
    if ((def.type === 'default' || def.type === 'prefault') && !out.default) {
      out.optional = true;
      out.default = { value: def.defaultValue };
    }
    if (WRAPPERS.has(def.type) && def.innerType) current = def.innerType;
    else if (def.type === 'pipe' && def.in) current = def.in;
    else if (def.type === 'lazy' && def.getter) current = def.getter();
    else break;
  }
  out.inner = current;
  return out;
}

/** Object schemas (after peeling) expose their shape. */
export function shapeOf(schema: z.ZodType): Record<string, z.ZodType> | undefined {
  const def = defOf(peel(schema).inner);
  return def.type === 'object' ? def.shape : undefined;
}

/** The schema that validates the value at `path` below `schema`, if the path is a real one. */
export function schemaAt(schema: z.ZodType, path: Path): z.ZodType | undefined {
  let current: z.ZodType | undefined = schema;
  for (const segment of path) {
    if (!current) return undefined;
    const inner = peel(current).inner;
    const def = defOf(inner);
    switch (def.type) {
      case 'object':
        current = def.shape && Object.hasOwn(def.shape, segment) ? def.shape[segment] : isOpen(def) ? def.catchall : undefined;
        break;
      case 'array':
        current = def.element;
        break;
      case 'tuple':
        current = def.items?.[Number(segment)];
        break;
      case 'record':
        current = def.valueType;
        break;
      case 'union':
        current = def.options?.map((o) => schemaAt(o, [segment])).find((s) => s !== undefined);
        break;
      default:
        return undefined;
    }
  }
  return current;
}

function isOpen(def: Def): boolean {
  return def.catchall !== undefined && defOf(def.catchall).type !== 'never';
}

/** Keys allowed in the mapping at `path` (empty when it is not a fixed-key mapping). */
export function keysAt(schema: z.ZodType, path: Path): string[] {
  const at = schemaAt(schema, path);
  if (!at) return [];
  const inner = peel(at).inner;
  const def = defOf(inner);
  if (def.type === 'object') return Object.keys(def.shape ?? {});
  if (def.type === 'union') return [...new Set(def.options?.flatMap((o) => keysAt(o, [])) ?? [])];
  return [];
}

/**
 * Every settings path (`beta`, `training`, `training.batch_size`, ...) of an object schema: the
 * keys a sweep axis may vary.
 */
export function settingPaths(schema: z.ZodType, prefix = ''): string[] {
  const shape = shapeOf(schema);
  if (!shape) return [];
  return Object.entries(shape).flatMap(([key, child]) => {
    const path = prefix ? `${prefix}.${key}` : key;
    return [path, ...settingPaths(child, path)];
  });
}

/**
 * The "overrides" form of a settings schema: every object key optional, recursively, with no
 * defaults (defaults are applied once, when a run is resolved). Leaf constraints and descriptions
 * are kept, so an override is checked where it was written.
 */
export function overridesOf(schema: z.ZodType): z.ZodType {
  const { inner, description } = peel(schema);
  const def = defOf(inner);
  if (def.type !== 'object' || !def.shape) return description ? inner.describe(description) : inner;
  const shape = Object.fromEntries(Object.entries(def.shape).map(([k, v]) => [k, overridesOf(v).optional()]));
  const object = isOpen(def) ? z.object(shape).catchall(def.catchall!) : z.strictObject(shape);
  return description ? object.describe(description) : object;
}

/** The value a schema gives to an absent key (its `.default()`), if any. */
export function defaultOf(schema: z.ZodType): { value: unknown } | undefined {
  return peel(schema).default;
}
