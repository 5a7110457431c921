/**
 * Plan problems as data. Everything that can be wrong with a plan is one `Issue`: a code with its
 * parameters, the plan path it concerns and (once the loader has located it) where it was written.
 * The wording lives in `format.ts` only; tests and tools can inspect issues without parsing text.
 *
 * To add a problem: add a variant to `IssueData` and its sentence to `MESSAGES` in `format.ts`
 * (the compiler insists on both).
 */

/** A path into a plan or into run settings: mapping keys and sequence indices. */
export type Path = readonly (string | number)[];

/** Where something was written: a position in a plan file (1-based) or a `--set` override. */
export type Origin =
  | { kind: 'file'; file: string; line: number; col: number }
  | { kind: 'set'; text: string };

export type IssueData =
  // ── reading ────────────────────────────────────────────────────────────────────────────────
  | { code: 'yaml-syntax'; reason: string }
  | { code: 'multiple-documents' }
  | { code: 'empty-plan' }
  | { code: 'number-range'; raw: string; reason: 'overflow' | 'not-finite' | 'unsafe-integer' }
  | { code: 'unreadable'; file: string; reason: string }
  | { code: 'extends-cycle'; chain: string[] }
  | { code: 'bad-set'; text: string; reason: string }
  | { code: 'unset-nothing'; text: string }
  | { code: 'dotted-conflict'; key: string }
  // ── schema ─────────────────────────────────────────────────────────────────────────────────
  | { code: 'invalid-value'; expected: string; received: unknown; note?: string }
  | { code: 'missing'; expected: string }
  | { code: 'unknown-key'; key: string; allowed: string[]; suggestion?: string }
  | { code: 'custom'; message: string }
  // ── cross-field rules (rules.ts) ───────────────────────────────────────────────────────────
  | { code: 'loss-weights-length'; weights: number; lossTypes: number }
  | { code: 'loss-type-needs-dpo'; algorithm: string; lossType: string[] }
  | { code: 'unknown-setting'; key: string; suggestion?: string }
  | { code: 'duplicate-variant'; name: string; first: Path }
  | { code: 'empty-axis'; key: string }
  | { code: 'bad-range'; dist: string; lo: number; hi: number; reason: 'order' | 'non-positive' }
  | { code: 'dataset-source'; found: 'none' | 'both' }
  | { code: 'path-missing'; kind: 'file' | 'model'; value: string; found: 'none' | 'file' | 'no-config' | 'no-weights' }
  | { code: 'stage-missing'; stage: string; value: string }
  | { code: 'axis-overlap'; key: string; other: Path }
  | { code: 'duplicate-runs'; first: string; second: string }
  | { code: 'duplicate-draws'; first: string; second: string }
  | { code: 'key-needs-algorithm'; key: string; algorithms: string[]; used: string[] }
  | { code: 'sft-preference-key'; key: string }
  | { code: 'dynamic-beta-one-margin'; updateOn: string }
  | { code: 'dynamic-beta-bounds'; betaMin: number; beta: number; betaMax: number }
  | { code: 'seed-range'; seed: number; max: number }
  // ── warnings ───────────────────────────────────────────────────────────────────────────────
  | { code: 'epochs-ignored' }
  | { code: 'eval-steps-no-data' }
  | { code: 'stage-sft-adapter' }
  | { code: 'nodes-split'; key: string; value: number; nodes: number }
  | { code: 'overridden-by-sweep'; key: string; by: Path };

export type IssueCode = IssueData['code'];

export type Issue = IssueData & {
  /** The plan path the problem concerns (shown to the user). */
  path: Path;
  /** Where it was written; filled in by the loader before formatting. */
  origin?: Origin;
  /** Default `error`; warnings never stop a plan from loading. */
  severity?: 'error' | 'warning';
};

/** Builds an issue (`data` is checked against its code's fields). */
export function issue(path: Path, data: IssueData, severity?: 'warning'): Issue {
  return severity ? { ...data, path, severity } : { ...data, path };
}

export function isError(i: Issue): boolean {
  return i.severity !== 'warning';
}

/** The key of a path in `positions` maps: segments joined with dots (`sweep.list.1.name`). */
export function pathKey(path: Path): string {
  return path.join('.');
}
