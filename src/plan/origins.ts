/**
 * Values that remember where each part was written. A plan is assembled from layers (an `extends`
 * chain, `--set` overrides, dotted keys spread into nested ones); a `Located` value carries an
 * origin tree beside the value so that a problem found at any path, after any merge, is reported
 * where the user wrote it.
 */
import type { Origin, Path } from './issues.js';
import type { Position } from './yaml.js';
import { pathKey } from './issues.js';

export interface OriginTree {
  at: Origin;
  kids?: Map<string, OriginTree>;
}

export interface Located {
  value: unknown;
  origins: OriginTree;
}

export function isMapping(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** The origin of `path`: its own, or that of the deepest written ancestor. */
export function originOf(tree: OriginTree, path: Path): Origin {
  let node = tree;
  for (const segment of path) {
    const next = node.kids?.get(String(segment));
    if (!next) break;
    node = next;
  }
  return node.at;
}

/** Origin tree of a parsed YAML file (`positions` from `parseYaml`). Copies the value (aliases share objects). */
export function fromYaml(value: unknown, positions: Map<string, Position>, file: string): Located {
  const at = (path: Path, fallback: Origin): Origin => {
    const pos = positions.get(pathKey(path));
    return pos ? { kind: 'file', file, line: pos.line, col: pos.col } : fallback;
  };
  const build = (v: unknown, path: Path, here: Origin, depth: number): Located => {
    if (depth > 64 || v === null || typeof v !== 'object') return { value: v, origins: { at: here } };
    const kids = new Map<string, OriginTree>();
    const entries: [string | number, unknown][] = Array.isArray(v) ? v.map((x, i) => [i, x]) : Object.entries(v);
    const out: unknown[] | Record<string, unknown> = Array.isArray(v) ? [] : {};
    for (const [k, child] of entries) {
      const p = [...path, k];
      const built = build(child, p, at(p, here), depth + 1);
      if (Array.isArray(out)) out.push(built.value);
      else defineKey(out, String(k), built.value);
      kids.set(String(k), built.origins);
    }
    return { value: out, origins: { at: here, kids } };
  };
  return build(value, [], at([], { kind: 'file', file, line: 1, col: 1 }), 0);
}

/** Every path of `value` attributed to one origin (a `--set` value). */
export function uniform(value: unknown, at: Origin): Located {
  return { value: clone(value), origins: { at } };
}

/**
 * Deep merge of two layers: mappings merge key by key, anything else in `over` replaces what is
 * below (arrays included). Origins follow the value that wins.
 */
export function overlay(base: Located, over: Located): Located {
  if (!isMapping(base.value) || !isMapping(over.value)) return withoutNullKeys(over);
  const value: Record<string, unknown> = {};
  const kids = new Map<string, OriginTree>();
  for (const [k, v] of Object.entries(base.value)) {
    defineKey(value, k, v);
    kids.set(k, child(base.origins, k));
  }
  for (const [k, v] of Object.entries(over.value)) {
    // `key: null` (or `key:` with no value) over a parent removes the parent's key.
    if (v === null) {
      delete value[k];
      kids.delete(k);
      continue;
    }
    const merged =
      Object.hasOwn(value, k)
        ? overlay({ value: value[k], origins: kids.get(k)! }, { value: v, origins: child(over.origins, k) })
        : withoutNullKeys({ value: v, origins: child(over.origins, k) });
    defineKey(value, k, merged.value);
    kids.set(k, merged.origins);
  }
  return { value, origins: { at: over.origins.at, kids } };
}

/** `doc` without mapping keys whose value is null, at any depth through mappings (list items are kept). */
function withoutNullKeys(doc: Located): Located {
  if (!isMapping(doc.value)) return doc;
  const value: Record<string, unknown> = {};
  const kids = new Map<string, OriginTree>();
  for (const [k, v] of Object.entries(doc.value)) {
    if (v === null) continue;
    const kept = withoutNullKeys({ value: v, origins: child(doc.origins, k) });
    defineKey(value, k, kept.value);
    kids.set(k, kept.origins);
  }
  return { value, origins: { at: doc.origins.at, kids } };
}

/**
 * A copy of `doc` without the value at `path` (`deleteAt`): a mapping key is dropped, a list item
 * spliced out, and the origins of the items after it move with them. Undefined when nothing is there.
 */
export function deleteLocated(doc: Located, path: Path): Located | undefined {
  if (path.length === 0 || getLocated(doc, path) === undefined) return undefined;
  return { value: deleteAt(doc.value, path), origins: originsWithout(doc.origins, doc.value, path) };
}

/** `tree` (the origins of `value`) without the sub-tree at `path`, list indices after it shifted down. */
function originsWithout(tree: OriginTree, value: unknown, path: Path): OriginTree {
  const [head, ...rest] = path as [string | number, ...Path];
  const kids = new Map(tree.kids ?? []);
  if (rest.length > 0) {
    kids.set(String(head), originsWithout(child(tree, head), (value as Record<string | number, unknown>)[head], rest));
    return { at: tree.at, kids };
  }
  if (!Array.isArray(value)) {
    kids.delete(String(head));
    return { at: tree.at, kids };
  }
  const index = Number(head);
  const shifted = new Map<string, OriginTree>();
  for (const [k, sub] of kids) {
    const i = Number(k);
    if (i < index) shifted.set(k, sub);
    else if (i > index) shifted.set(String(i - 1), sub);
  }
  return { at: tree.at, kids: shifted };
}

/** The sub-tree at `key`, or a leaf carrying the parent's origin. */
export function child(tree: OriginTree, key: string | number): OriginTree {
  return tree.kids?.get(String(key)) ?? { at: tree.at };
}

/** The located value at `path`, or undefined when the path does not exist. */
export function getLocated(doc: Located, path: Path): Located | undefined {
  let value = doc.value;
  let origins = doc.origins;
  for (const segment of path) {
    if (value === null || typeof value !== 'object' || !Object.hasOwn(value, segment)) return undefined;
    value = (value as Record<string | number, unknown>)[segment];
    origins = child(origins, segment);
  }
  return { value, origins };
}

/** A copy of `doc` with `path` replaced by `leaf`; missing mappings on the way are created. */
export function setLocated(doc: Located, path: Path, leaf: Located): Located {
  const [head, ...rest] = path;
  if (head === undefined) return leaf;
  const base = doc.value;
  const below = getLocated(doc, [head]) ?? { value: undefined, origins: { at: leaf.origins.at } };
  const replaced = setLocated(below, rest, leaf);
  const kids = new Map(doc.origins.kids ?? []);
  kids.set(String(head), replaced.origins);
  if (Array.isArray(base) && typeof head === 'number') {
    const value = [...base];
    value[head] = replaced.value;
    return { value, origins: { at: doc.origins.at, kids } };
  }
  const value: Record<string, unknown> = isMapping(base) ? { ...base } : {};
  defineKey(value, String(head), replaced.value);
  return { value, origins: { at: doc.origins.at, kids } };
}

/** A copy of plain data without the value at `path` (an array item is spliced out). */
export function deleteAt(value: unknown, path: Path): unknown {
  const [head, ...rest] = path;
  if (head === undefined || value === null || typeof value !== 'object' || !Object.hasOwn(value, head)) return value;
  if (Array.isArray(value)) {
    const copy = [...value];
    if (rest.length === 0) copy.splice(Number(head), 1);
    else copy[Number(head)] = deleteAt(copy[Number(head)], rest);
    return copy;
  }
  const copy: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (k !== String(head)) defineKey(copy, k, v);
    else if (rest.length > 0) defineKey(copy, k, deleteAt(v, rest));
  }
  return copy;
}

/** Structural copy of JSON-like data. */
export function clone<T>(value: T): T {
  if (Array.isArray(value)) return value.map(clone) as T;
  if (isMapping(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) defineKey(out, k, clone(v));
    return out as T;
  }
  return value;
}

/** Assignment that treats `__proto__` as an ordinary key. */
export function defineKey(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** A copy of plain data with `path` set to `leaf` (missing mappings on the way are created). */
export function withValueAt(value: unknown, path: Path, leaf: unknown): unknown {
  return setLocated({ value, origins: { at: { kind: 'set', text: '' } } }, path, { value: leaf, origins: { at: { kind: 'set', text: '' } } }).value;
}
