/**
 * Plan file → validated `Plan`, or one `InputError` listing every problem at once.
 *
 *   read + parse YAML (positions) → resolve `extends` → apply `--set` → spread dotted keys
 *   → schema (zod) → cross-field rules → absolute paths → every resolved run against RunSettingsSchema
 *
 * Each step adds issues instead of stopping, so a user fixes a plan in one round. Every value keeps
 * the origin it was written at through all merges; issues are located, de-duplicated, sorted and
 * worded (format.ts) only at the end. File access is injected (tests pass an in-memory reader).
 */
import { statSync } from 'node:fs';
import { readFile as fsReadFile } from 'node:fs/promises';
import path from 'node:path';
import { InputError } from '../errors.js';
import { formatIssue, formatOrigin, formatPath } from './format.js';
import { peel, defOf, schemaAt } from './introspect.js';
import { isError, issue, type Issue, type Origin, type Path } from './issues.js';
import { expandDottedKeys } from './normalise.js';
import { deleteAt, fromYaml, isMapping, originOf, overlay, withValueAt, type Located } from './origins.js';
import { applySet, parseSet } from './overrides.js';
import { missingPaths, resolvePlanPaths, type PathLookup } from './paths.js';
import { RULES, type Rule } from './rules.js';
import { checkRuns } from './runs.js';
import { PlanSchema, type Plan } from './schema.js';
import { parseYaml } from './yaml.js';
import { fromZod } from './zod-issues.js';

export interface LoadOptions {
  /** `--set a.b=c` overrides, applied in order after `extends`. */
  sets?: readonly string[];
  /** Reads a file as UTF-8 text (default: node:fs). */
  readFile?: (file: string) => Promise<string>;
  /** Whether a path is an existing directory (for local model folders; default: node:fs). */
  isDirectory?: (file: string) => boolean;
  /**
   * What a local path is: a missing `dataset.path` or local model folder is a problem (default:
   * node:fs). Defaults to `isDirectory` when only that is given; `false` skips the check.
   */
  pathKind?: PathLookup | false;
  /** Base for a relative `file` and for relative paths in `--set` values (default: process.cwd()). */
  cwd?: string;
  /** Cross-field rules to run (default: all of `RULES`). */
  rules?: readonly Rule[];
}

export interface LoadedPlan {
  /** The plan with `extends` merged in (and dropped), `--set` applied, dotted keys nested, paths absolute. */
  plan: Plan;
  /** Formatted like errors (`plan.yaml:4:3  base.training.epochs: ...`). */
  warnings: string[];
  /** Absolute path of the plan file. */
  file: string;
}

interface Io {
  readFile: (file: string) => Promise<string>;
  isDirectory: (file: string) => boolean;
  pathKind: PathLookup | false;
  cwd: string;
}

export async function loadPlan(file: string, options: LoadOptions = {}): Promise<LoadedPlan> {
  const io: Io = {
    readFile: options.readFile ?? ((f) => fsReadFile(f, 'utf8')),
    isDirectory: options.isDirectory ?? isDirectoryOnDisk,
    pathKind:
      options.pathKind ?? (options.isDirectory ? (p: string) => (options.isDirectory!(p) ? 'dir' : 'file') : pathKindOnDisk),
    cwd: options.cwd ?? process.cwd(),
  };
  const absolute = path.resolve(io.cwd, file);
  const issues: Issue[] = [];

  let text: string;
  try {
    text = await io.readFile(absolute);
  } catch (error) {
    throw new InputError(`cannot read plan ${file}: ${reasonOf(error)}`, [`${file}: ${reasonOf(error)}`], { cause: error });
  }
  const read = await readChain({ absolute, display: file, text }, [], io, issues, undefined);
  if (!read) throw failure(file, issues);

  // Each file's dotted keys were spread when it was read, so `--set base.training.max_steps=5`
  // replaces a `training.max_steps: 3` written in the file instead of clashing with it.
  let doc = read;
  for (const text of options.sets ?? []) {
    const origin: Origin = { kind: 'set', text };
    const parsed = parseSet(text);
    const applied = 'segments' in parsed ? applySet(doc, parsed) : parsed;
    if ('code' in applied) issues.push({ ...issue([], applied), origin });
    else {
      doc = applied.doc;
      if (applied.removed === false) issues.push({ ...issue([], { code: 'unset-nothing', text }, 'warning'), origin });
    }
  }
  // A `--set` value may itself hold dotted keys (`--set 'base={training.max_steps: 5}'`).
  const expanded = expandDottedKeys(doc);
  issues.push(...expanded.issues);
  doc = expanded.doc;

  const { plan, issues: schemaIssues } = parsePlan(doc.value);
  issues.push(...schemaIssues);
  let resolved: Plan | undefined;
  if (plan) {
    // A rule sees the plan without the values the schema rejected; what it finds below them is a consequence.
    const ruleIssues = (options.rules ?? RULES).flatMap((rule) => rule(plan)).filter((i) => !schemaIssues.some((s) => isPrefix(s.path, i.path)));
    issues.push(...ruleIssues);
    const dirOf = (planPath: Path): string => {
      const origin = originOf(doc.origins, planPath);
      return origin.kind === 'file' ? path.dirname(path.resolve(io.cwd, origin.file)) : io.cwd;
    };
    resolved = resolvePlanPaths(plan, dirOf, io.isDirectory);
    if (io.pathKind) {
      for (const missing of missingPaths(resolved, io.pathKind)) {
        issues.push(issue(missing.planPath, { code: 'path-missing', kind: missing.kind, value: missing.value, found: missing.found }));
      }
    }
    // Duplicates are only meaningful once nothing was removed to keep checking.
    const clean = !issues.some(isError);
    issues.push(...checkRuns(withoutBrokenAxes(resolved, ruleIssues), { duplicates: clean }));
  }

  const located = arrange(
    issues.map((i) => (i.origin ? i : { ...i, origin: originOf(doc.origins, i.path) })),
    file,
    options.sets ?? [],
  );
  const errors = located.filter(isError);
  if (errors.length > 0 || !resolved) throw failure(file, errors, options.sets ?? []);
  // `extends` is resolved: the returned plan stands alone.
  const { extends: _resolved, ...standalone } = resolved;
  return { plan: standalone, warnings: located.filter((i) => !isError(i)).map(formatIssue), file: absolute };
}

interface Source {
  absolute: string;
  /** The path as shown in messages (relative paths stay relative). */
  display: string;
  text?: string;
}

/** Reads a plan and, recursively, what it extends; this file's keys win. Undefined when unusable. */
async function readChain(source: Source, chain: Source[], io: Io, issues: Issue[], extendsAt: Origin | undefined): Promise<Located | undefined> {
  if (chain.some((s) => s.absolute === source.absolute)) {
    const cycle = [...chain.slice(chain.findIndex((s) => s.absolute === source.absolute)), source].map((s) => s.display);
    issues.push({ ...issue(['extends'], { code: 'extends-cycle', chain: cycle }), ...(extendsAt ? { origin: extendsAt } : {}) });
    return undefined;
  }
  let text = source.text;
  if (text === undefined) {
    try {
      text = await io.readFile(source.absolute);
    } catch (error) {
      issues.push({ ...issue(['extends'], { code: 'unreadable', file: source.display, reason: reasonOf(error) }), ...(extendsAt ? { origin: extendsAt } : {}) });
      return undefined;
    }
  }
  const parsed = parseYaml(text, source.display);
  issues.push(...parsed.issues);
  if (parsed.value === undefined) return undefined;
  const origin: Origin = { kind: 'file', file: source.display, line: 1, col: 1 };
  if (!isMapping(parsed.value)) {
    issues.push({ ...issue([], { code: 'invalid-value', expected: 'a mapping of plan keys (name, base, sweep, ...)', received: parsed.value }), origin });
    return undefined;
  }
  // Dotted keys are spread per file, before merging with what it extends: a parent's
  // `training.max_steps: 3` and a child's `training: {max_steps: 5}` are the same setting.
  const spread = expandDottedKeys(fromYaml(parsed.value, parsed.positions, source.display));
  issues.push(...spread.issues);
  const located = spread.doc;
  const parent = parsed.value['extends'];
  if (parent === undefined) return located;
  if (typeof parent !== 'string' || parent === '') return located; // the schema reports it
  const next: Source = {
    absolute: path.resolve(path.dirname(source.absolute), parent),
    // An absolute parent is shown as written; a relative one relative to how this file was shown.
    display: path.isAbsolute(parent) ? path.normalize(parent) : path.normalize(path.join(path.dirname(source.display), parent)),
  };
  const base = await readChain(next, [...chain, source], io, issues, originOf(located.origins, ['extends']));
  return base ? overlay(base, located) : undefined;
}

/** A key left empty (`beta:`) or null: say what null does in a plan. */
function withNullNote(i: Issue): Issue {
  if (i.code !== 'invalid-value' || i.received !== null || i.note) return i;
  return { ...i, note: 'leave the key out for its default; null only removes a key that the plan this one extends sets, or with --set key=null' };
}

/**
 * zod over the whole plan. On failure, the offending values are removed and the plan parsed again
 * (a few rounds), so the cross-field rules still check the rest. Only the first round is reported:
 * later rounds only see the consequences of removing values.
 */
function parsePlan(value: unknown): { plan?: Plan; issues: Issue[] } {
  value = withoutExtensionKeys(value);
  const first = PlanSchema.safeParse(value, { reportInput: true });
  if (first.success) return { plan: first.data, issues: [] };
  const issues = fromZod(first.error.issues, PlanSchema).map(withNullNote);
  let current = value;
  let zodIssues = first.error.issues;
  for (let round = 0; round < 4; round++) {
    const next = salvage(current, zodIssues);
    if (next === undefined) break;
    current = next;
    const again = PlanSchema.safeParse(current);
    if (again.success) return { plan: again.data, issues };
    zodIssues = again.error.issues;
  }
  return { issues };
}

/**
 * The plan without the values zod rejected; undefined when that is not possible. An optional value
 * (or a record entry) is removed; a required one is replaced by a placeholder its schema accepts.
 */
function salvage(value: unknown, zodIssues: readonly { code: string; path: PropertyKey[]; keys?: string[] }[]): unknown {
  let out = value;
  for (const zi of zodIssues) {
    const rel = zi.path.map((p) => (typeof p === 'number' ? p : String(p)));
    if (zi.code === 'unrecognized_keys') {
      for (const key of zi.keys ?? []) out = deleteAt(out, [...rel, key]);
      continue;
    }
    // A bad array item takes its array with it (removing one item would shift the others' indices).
    let target: Path = typeof rel.at(-1) === 'number' ? rel.slice(0, -1) : rel;
    for (;;) {
      if (target.length === 0) return undefined;
      if (removable(target)) {
        out = deleteAt(out, target);
        break;
      }
      const placeholder = placeholderFor(target);
      if (placeholder.found) {
        out = withValueAt(out, target, placeholder.value);
        break;
      }
      target = target.slice(0, -1);
    }
  }
  return out;
}

function removable(path: Path): boolean {
  const parent = schemaAt(PlanSchema, path.slice(0, -1));
  const here = schemaAt(PlanSchema, path);
  return (parent !== undefined && defOf(peel(parent).inner).type === 'record') || (here !== undefined && peel(here).optional);
}

/** A value the schema at `path` accepts (a unique name for names), to keep checking the rest. */
function placeholderFor(path: Path): { found: boolean; value?: unknown } {
  const schema = schemaAt(PlanSchema, path);
  if (!schema) return { found: false };
  const def = defOf(peel(schema).inner);
  const options = def.type === 'enum' ? Object.values(def.entries ?? {}) : [];
  for (const candidate of [`_${path.join('_')}`, 1, 0, 0.5, true, false, ...options, [], {}]) {
    if (schema.safeParse(candidate).success) return { found: true, value: candidate };
  }
  return { found: false };
}

/** One issue per spot; sorted by file position, the top file first, `--set` last in the order given. */
function arrange(issues: Issue[], topFile: string, sets: readonly string[]): Issue[] {
  const seen = new Set<string>();
  const unique = issues.filter((i) => {
    const key = `${formatOrigin(i.origin)}|${formatPath(i.path)}|${i.severity ?? 'error'}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  const rank = (o: Origin | undefined): [number, string, number, number] =>
    !o ? [3, '', 0, 0] : o.kind === 'set' ? [2, '', sets.indexOf(o.text), 0] : [o.file === topFile ? 0 : 1, o.file, o.line, o.col];
  return unique
    .map((i, n) => ({ i, n, r: rank(i.origin) }))
    .sort((a, b) => a.r[0] - b.r[0] || a.r[1].localeCompare(b.r[1]) || a.r[2] - b.r[2] || a.r[3] - b.r[3] || a.n - b.n)
    .map(({ i }) => i);
}

/** Top-level `x-…` keys hold YAML anchors for reuse (as in Compose files); they are not plan keys. */
function withoutExtensionKeys(value: unknown): unknown {
  if (!isMapping(value)) return value;
  return Object.fromEntries(Object.entries(value).filter(([key]) => !key.startsWith('x-')));
}

/** Grid keys and random params a rule rejected (unknown, empty, bad range) are left out of the run checks. */
function withoutBrokenAxes(plan: Plan, ruleIssues: readonly Issue[]): Plan {
  const broken = (source: Path) =>
    ruleIssues.some((i) => isError(i) && source.every((segment, n) => String(i.path[n]) === String(segment)));
  const sweep = plan.sweep;
  if (!sweep) return plan;
  const grid = sweep.grid && Object.fromEntries(Object.entries(sweep.grid).filter(([key]) => !broken(['sweep', 'grid', key])));
  const params = sweep.random && Object.fromEntries(Object.entries(sweep.random.params).filter(([key]) => !broken(['sweep', 'random', 'params', key])));
  const random = sweep.random && params && Object.keys(params).length > 0 ? { ...sweep.random, params } : undefined;
  const { random: _random, grid: _grid, ...rest } = sweep;
  return { ...plan, sweep: { ...rest, ...(grid ? { grid } : {}), ...(random ? { random } : {}) } };
}

function isPrefix(prefix: Path, path: Path): boolean {
  return prefix.length <= path.length && prefix.every((segment, i) => String(path[i]) === String(segment));
}

function failure(file: string, issues: readonly Issue[], sets: readonly string[] = []): InputError {
  const errors = arrange(issues.filter(isError), file, sets);
  const n = errors.length;
  return new InputError(`invalid plan ${file}: ${n} problem${n === 1 ? '' : 's'}`, errors.map(formatIssue));
}

function reasonOf(error: unknown): string {
  const code = (error as { code?: unknown })?.code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EISDIR') return 'is a directory';
  if (code === 'EACCES') return 'permission denied';
  return error instanceof Error ? error.message : String(error);
}

function pathKindOnDisk(p: string): 'file' | 'dir' | undefined {
  try {
    const s = statSync(p);
    return s.isDirectory() ? 'dir' : 'file';
  } catch {
    return undefined;
  }
}

function isDirectoryOnDisk(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}
