/**
 * YAML text → value + source positions, with js-yaml only.
 *
 * js-yaml's `listener` reports every node it composes ('open' before the node, 'close' with its
 * kind and result). Nesting those events gives the syntax tree: a mapping node's children are its
 * keys and values in order, a sequence node's children its items. Walking that tree beside the
 * loaded value gives `{line, col}` for every path: the key of a mapping entry, the start of a
 * sequence item. Aliases point at the anchored node, merge keys (`<<: *base`) at the key in the
 * merged mapping, so a merged key maps to where it was written.
 *
 * Problems come back as issues (syntax errors with js-yaml's reason, more than one document,
 * numbers a double cannot hold), never as exceptions.
 */
import * as jsyaml from 'js-yaml';
import { issue, pathKey, type Issue, type IssueData } from './issues.js';

/** A 1-based position in a file. */
export interface Position {
  line: number;
  col: number;
}

export interface YamlDocument {
  /** The loaded value; `undefined` when there were syntax errors or the file is empty. */
  value: unknown;
  /** Dotted path (`base.training.batch_size`, `sweep.list.1.name`) → where it was written. */
  positions: Map<string, Position>;
  issues: Issue[];
}

// Core schema (no timestamps, binary, sets) plus merge keys. js-yaml's typings omit `types`.
const mergeType = (jsyaml as unknown as { types: { merge: jsyaml.Type } }).types.merge;
export const PLAN_YAML_SCHEMA = jsyaml.CORE_SCHEMA.extend({ implicit: [mergeType] });

const MERGE_TAG = 'tag:yaml.org,2002:merge';
/** Stop recording positions past this many paths (alias bombs expand exponentially). */
const MAX_PATHS = 100_000;

interface RawNode {
  open: number;
  kind: string | null;
  tag: string | null;
  result: unknown;
  children: RawNode[];
}

interface Entry {
  key: number; // offset of the key
  value: RawNode | undefined;
}

/** Parses one YAML document. `file` is only used to label issues. */
export function parseYaml(text: string, file: string): YamlDocument {
  const source = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const lines = lineStarts(source);
  const at = (offset: number) => toPosition(lines, offset);
  const roots: RawNode[] = [];
  const stack: RawNode[] = [];
  const listener = (event: 'open' | 'close', state: jsyaml.State): void => {
    if (event === 'open') {
      const node: RawNode = { open: state.position, kind: null, tag: null, result: undefined, children: [] };
      (stack.at(-1)?.children ?? roots).push(node);
      stack.push(node);
    } else {
      const node = stack.pop();
      if (node === undefined) return;
      node.kind = state.kind ?? null;
      node.tag = (state as unknown as { tag: string | null }).tag ?? null;
      node.result = state.result;
    }
  };

  let documents: unknown[];
  try {
    documents = jsyaml.loadAll(source, null, { schema: PLAN_YAML_SCHEMA, listener, filename: file });
  } catch (error) {
    if (error instanceof jsyaml.YAMLException && error.mark) {
      const origin = { kind: 'file' as const, file, line: error.mark.line + 1, col: error.mark.column + 1 };
      return { value: undefined, positions: new Map(), issues: [{ ...issue([], { code: 'yaml-syntax', reason: error.reason }), origin }] };
    }
    throw error;
  }

  const positions = new Map<string, Position>();
  if (documents.length > 1) {
    const second = roots[1];
    const where = second ? at(documentStart(source, skipSpace(source, second.open))) : { line: 1, col: 1 };
    return {
      value: undefined,
      positions,
      issues: [{ ...issue([], { code: 'multiple-documents' }), origin: { kind: 'file', file, ...where } }],
    };
  }
  const value = documents[0];
  const root = roots[0];
  if (value === undefined || value === null || root === undefined) {
    return { value: undefined, positions, issues: [{ ...issue([], { code: 'empty-plan' }), origin: { kind: 'file', file, line: 1, col: 1 } }] };
  }

  const tree = new SyntaxTree(source, roots);
  const issues: Issue[] = [];
  const rootStart = at(skipSpace(source, root.open));
  positions.set('', rootStart);

  const visit = (v: unknown, node: RawNode | undefined, path: (string | number)[], here: Position, seen: Set<object>): void => {
    if (positions.size > MAX_PATHS) return;
    const resolved = node && tree.resolve(node);
    if ((typeof v === 'number' || typeof v === 'string') && resolved && resolved.kind === 'scalar') {
      const problem = numberProblem(v, resolved.tag, tree.rawScalar(resolved));
      if (problem) issues.push({ ...issue([...path], problem), origin: { kind: 'file', file, ...here } });
      return;
    }
    if (v === null || typeof v !== 'object' || seen.has(v)) return;
    seen.add(v);
    if (Array.isArray(v)) {
      const items = resolved?.kind === 'sequence' ? tree.items(resolved, v) : [];
      v.forEach((item, index) => {
        const itemNode = items[index];
        const pos = itemNode ? at(skipSpace(source, itemNode.open)) : here;
        const p = [...path, index];
        positions.set(pathKey(p), pos);
        visit(item, itemNode, p, pos, seen);
      });
    } else {
      const entries = resolved?.kind === 'mapping' ? tree.entries(resolved) : new Map<string, Entry>();
      for (const [key, child] of Object.entries(v as Record<string, unknown>)) {
        const entry = entries.get(key);
        const pos = entry ? at(entry.key) : here;
        const p = [...path, key];
        positions.set(pathKey(p), pos);
        visit(child, entry?.value, p, pos, seen);
      }
    }
    seen.delete(v);
  };
  visit(value, root, [], rootStart, new Set());
  return { value, positions, issues };
}

/** Navigation over the event tree: unwrapping, aliases, mapping entries, sequence items. */
class SyntaxTree {
  private readonly byObject = new Map<unknown, RawNode>();
  private readonly entryCache = new WeakMap<RawNode, Map<string, Entry>>();

  constructor(
    private readonly source: string,
    private readonly roots: readonly RawNode[],
  ) {}

  /** The node that really holds the content: through js-yaml's wrapper nodes and aliases. */
  resolve(node: RawNode, depth = 0): RawNode {
    let current = node;
    // js-yaml tries a block mapping first and keeps the inner node's result when it is not one:
    // the outer node then has a single child with the same kind and result.
    for (;;) {
      const only = current.children.length === 1 ? current.children[0] : undefined;
      if (only && only.kind === current.kind && only.result === current.result && typeof current.result === 'object') {
        current = only;
      } else break;
    }
    if (current.kind === null && current.result !== null && typeof current.result === 'object' && depth < 64) {
      const target = this.anchored(current.result);
      if (target && target !== current) return this.resolve(target, depth + 1);
    }
    return current;
  }

  /** Keys of a mapping node → key offset and value node, merge keys applied (explicit keys win). */
  entries(node: RawNode): Map<string, Entry> {
    const cached = this.entryCache.get(node);
    if (cached) return cached;
    const out = new Map<string, Entry>();
    this.entryCache.set(node, out); // guards recursive merges
    const merges: RawNode[] = [];
    for (const { key, value } of this.pairs(node.children)) {
      const keyNode = this.resolve(key);
      if (keyNode.tag === MERGE_TAG && value) {
        merges.push(value);
        continue;
      }
      out.set(String(keyNode.result), { key: skipSpace(this.source, key.open), value });
    }
    for (const merge of merges) {
      const target = this.resolve(merge);
      const sources = target.kind === 'sequence' ? this.groups(target.children).map((g) => this.resolve(g[0]!)) : [target];
      for (const src of sources) {
        if (src.kind !== 'mapping') continue;
        for (const [k, e] of this.entries(src)) if (!out.has(k)) out.set(k, e);
      }
    }
    return out;
  }

  /** Item nodes of a sequence node, aligned with the loaded array (empty items compose no node). */
  items(node: RawNode, value: unknown[]): (RawNode | undefined)[] {
    const groups = this.groups(node.children).map((g) => g[0]!);
    if (groups.length === value.length) return groups;
    const out: (RawNode | undefined)[] = [];
    let j = 0;
    for (const item of value) {
      const candidate = groups[j];
      if (item === null && candidate && this.resolve(candidate).result !== null) out.push(undefined);
      else {
        out.push(candidate);
        j++;
      }
    }
    return out;
  }

  /** The literal text of a scalar (for numbers a double cannot hold). */
  rawScalar(node: RawNode): string {
    const start = skipSpace(this.source, node.open);
    return /^[^\s,\]}#]+/.exec(this.source.slice(start))?.[0] ?? '';
  }

  /** The innermost mapping or sequence node that produced `result` (the target of an alias). */
  private anchored(result: unknown): RawNode | undefined {
    if (this.byObject.size === 0) {
      const walk = (n: RawNode): void => {
        n.children.forEach(walk);
        if ((n.kind === 'mapping' || n.kind === 'sequence') && !this.byObject.has(n.result)) this.byObject.set(n.result, n);
      };
      this.roots.forEach(walk);
    }
    return this.byObject.get(result);
  }

  /** Mapping children → (key, value) pairs. A child that follows a `:` is a value. */
  private pairs(children: RawNode[]): { key: RawNode; value: RawNode | undefined }[] {
    return this.groups(children).map((g) => ({ key: g[0]!, value: g[1] }));
  }

  /** Groups children into [key, value?] / [item, pairValue?] by whether a `:` precedes them. */
  private groups(children: RawNode[]): RawNode[][] {
    const out: RawNode[][] = [];
    for (const child of children) {
      const last = out.at(-1);
      if (last && last.length === 1 && this.followsColon(child)) last.push(child);
      else out.push([child]);
    }
    return out;
  }

  private followsColon(node: RawNode): boolean {
    let i = node.open - 1;
    while (i >= 0 && (this.source[i] === ' ' || this.source[i] === '\t')) i--;
    return this.source[i] === ':';
  }
}

/**
 * Numbers a double cannot hold. js-yaml leaves an overflowing literal (`1e400`) as a plain string
 * (tag `?`: no implicit type resolved it) and turns a huge integer into an inexact double.
 */
function numberProblem(v: number | string, tag: string | null, raw: string): Extract<IssueData, { code: 'number-range' }> | undefined {
  if (typeof v === 'string') {
    const numeric = /^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?$/.test(v);
    // `1_000` (YAML 1.1 digit grouping) is also left a string; it is no overflow.
    const overflows = numeric && !Number.isFinite(Number(v.replaceAll('_', '')));
    return tag === '?' && overflows ? { code: 'number-range', raw: v, reason: 'overflow' } : undefined;
  }
  if (Number.isNaN(v) || (!Number.isFinite(v) && /^[-+]?\.inf$/i.test(raw))) {
    return { code: 'number-range', raw, reason: 'not-finite' };
  }
  if (!Number.isFinite(v)) return { code: 'number-range', raw, reason: 'overflow' };
  if (Number.isInteger(v) && !Number.isSafeInteger(v) && /^[-+]?(0x[0-9a-f_]+|0o[0-7_]+|[0-9_]+)$/i.test(raw)) {
    return { code: 'number-range', raw, reason: 'unsafe-integer' };
  }
  return undefined;
}

/** Skips spaces, line breaks and comments from `offset` to the next token. */
function skipSpace(source: string, offset: number): number {
  let i = offset;
  for (;;) {
    const ch = source[i];
    if (ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r') i++;
    else if (ch === '#') {
      while (i < source.length && source[i] !== '\n' && source[i] !== '\r') i++;
    } else return i;
  }
}

/** The `---` line that opens the document containing `offset`, if any. */
function documentStart(source: string, offset: number): number {
  const marker = source.lastIndexOf('---', offset);
  return marker >= 0 && (marker === 0 || source[marker - 1] === '\n') ? marker : offset;
}

function lineStarts(source: string): number[] {
  const starts = [0];
  for (let i = 0; i < source.length; i++) {
    const ch = source[i];
    if (ch === '\n') starts.push(i + 1);
    else if (ch === '\r' && source[i + 1] !== '\n') starts.push(i + 1);
  }
  return starts;
}

function toPosition(starts: number[], offset: number): Position {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid]! <= offset) lo = mid;
    else hi = mid - 1;
  }
  return { line: lo + 1, col: offset - starts[lo]! + 1 };
}

