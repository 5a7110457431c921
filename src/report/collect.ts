/**
 * Reading a sweep dir or a bare judge dir into a plain `ReportData`: the only part of the report
 * that touches the filesystem on the way in. Tolerant by design — a run with no status, a torn
 * events line, a missing margins log or rollouts file leaves a gap (and, where it matters, a
 * warning), never an exception; failed runs are kept with their error.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { readJson, readJsonl, type RunState, type RunStatus } from '../execute/run-dir.js';
import { loadOutputsFile, type OutputsFile } from '../judge/pairs.js';
import { pairHash } from '../judge/order.js';
import type { JudgmentRecord } from '../judge/records.js';
import type { JudgeSummary } from '../judge/run.js';

export type ReportFormat = 'md' | 'html' | 'json' | 'csv';
export const REPORT_FORMATS: readonly ReportFormat[] = ['md', 'html', 'json', 'csv'];

/** A number read from a log: finite, or NaN/±Infinity (kept, so a diverged run shows as such). */
export type Num = number;

export interface StepPoint {
  step: number;
  epoch: number | null;
  /** Metrics by their logged names (`loss`, `rewards/margins`, `beta`, …). */
  metrics: Record<string, Num>;
}

export interface EvalPoint {
  step: number;
  metrics: Record<string, Num>;
}

/** One record of `margins/epoch_EEE/margins.jsonl` (per optimizer step or micro-batch). */
export interface MarginPoint {
  epoch: number;
  step: number;
  mean: Num | null;
  p10: Num | null;
  median: Num | null;
  p90: Num | null;
  pos_frac: Num | null;
  /** β in force: `beta` (dynamic-β) or `beta_used` (β-DPO); null for plain DPO. */
  beta: Num | null;
}

/** What `rollouts/eval.json` says about a run's generations. */
export interface RolloutStats {
  n: number;
  /** Mean of the per-sample `kl` estimates vs the reference; null when no sample has one. */
  mean_kl: Num | null;
  n_kl: number;
  /** Mean `reward` (reward-model score) when the samples carry one. */
  mean_reward: Num | null;
  /** Mean output length in characters. */
  mean_length: number;
}

export interface JudgeData {
  /** Judge folder, relative to the report's directory ('.' for a bare judge dir). */
  dir: string;
  /** Baseline label: the folder name under `judge/` (or B's generator for a bare judge dir). */
  baseline: string;
  /** `summary.json` as written by the judge layer (fields may be missing in old or partial files). */
  summary: Partial<JudgeSummary>;
  /** `judgments.jsonl`, one record per pair and order. */
  records: JudgmentRecord[];
  /** Both outputs of a pair, by pair hash, when the outputs files could be found and still match. */
  outputs: Record<string, { a: string; b: string }>;
  /** Why outputs are missing, when they are. */
  outputs_note: string | null;
}

export interface RunData {
  id: string;
  name: string;
  /** Dotted settings key → value, as recorded in sweep.json / spec.json. */
  varied: Record<string, unknown>;
  seed: number | null;
  algorithm: string | null;
  /** The configured β (β₀ for adaptive algorithms). */
  beta: number | null;
  /** `missing`: listed in sweep.json with no status.json yet. */
  state: RunState | 'missing';
  step: number;
  total: number | null;
  attempt: number;
  error_class: string | null;
  error: string | null;
  /** Worker log, relative to the report's directory when it lies inside it. */
  log: string | null;
  started_at: string | null;
  finished_at: string | null;
  /** `status.json` metrics (the latest step's), non-finite strings turned back into numbers. */
  status_metrics: Record<string, Num>;
  steps: StepPoint[];
  evals: EvalPoint[];
  margins: MarginPoint[];
  rollouts: RolloutStats | null;
  /** Judgments of this run against its baseline(s); the plan's baseline first. */
  judges: JudgeData[];
}

export interface ReportData {
  kind: 'sweep' | 'judge';
  /** Absolute path of the directory reported on; the report goes to `<dir>/report/`. */
  dir: string;
  /** Sweep name, or the judge dir's folder name. */
  name: string;
  sweep: {
    plan_file: string | null;
    plan_hash: string | null;
    created: string | null;
    updated: string | null;
    versions: Record<string, string>;
  } | null;
  /** `plan.report` as recorded in sweep.json. */
  report: { formats: ReportFormat[] | null; metric: string | null };
  /** `plan.judge` as recorded in sweep.json. */
  judge_config: { preset: string | null; baseline: string | null; model: string | null } | null;
  runs: RunData[];
  /** The judgment of a bare judge dir (kind `judge`). */
  judge: JudgeData | null;
  /** Problems met while reading (unreadable files, torn logs); shown in the report. */
  warnings: string[];
}

export type DirKind = 'sweep' | 'judge' | null;

/** A sweep dir has `sweep.json`; a judge dir has `summary.json` and `judgments.jsonl`. */
export function detectDir(dir: string): DirKind {
  if (existsSync(join(dir, 'sweep.json'))) return 'sweep';
  if (existsSync(join(dir, 'summary.json')) && existsSync(join(dir, 'judgments.jsonl'))) return 'judge';
  return null;
}

/** Reads a sweep or judge dir. Throws only when `dir` is neither (callers check `detectDir` first). */
export async function collectReportData(dir: string, options: { cwd?: string } = {}): Promise<ReportData> {
  const root = resolve(dir);
  const kind = detectDir(root);
  if (kind === null) throw new Error(`${dir} is neither a sweep dir (sweep.json) nor a judge dir (summary.json + judgments.jsonl)`);
  const warnings: string[] = [];
  const cwd = options.cwd ?? process.cwd();
  if (kind === 'judge') {
    const judge = await readJudgeDir(root, root, null, { root, cwd, warnings });
    return {
      kind,
      dir: root,
      name: basename(root),
      sweep: null,
      report: { formats: null, metric: null },
      judge_config: null,
      runs: [],
      judge,
      warnings,
    };
  }
  return collectSweep(root, cwd, warnings);
}

interface SweepJson {
  name?: string;
  plan_file?: string;
  plan_hash?: string;
  plan?: { report?: { formats?: string[]; metric?: string }; judge?: { preset?: string; baseline?: string; model?: string } };
  runs?: Array<{ id: string; name: string; varied?: Record<string, unknown> }>;
  versions?: Record<string, string>;
  created?: string;
  updated?: string;
}

interface SpecJson {
  id?: string;
  name?: string;
  varied?: Record<string, unknown>;
  settings?: { algorithm?: string; beta?: number; training?: { seed?: number } };
}

async function collectSweep(root: string, cwd: string, warnings: string[]): Promise<ReportData> {
  const sweep = readJson<SweepJson>(join(root, 'sweep.json'));
  if (!sweep) warnings.push('sweep.json is not readable JSON; runs are taken from runs/');
  // Entries without a string id (a hand-edited or foreign sweep.json) cannot name a run folder.
  const rawRuns: unknown = isObject(sweep) ? sweep.runs : undefined;
  if (rawRuns !== undefined && !Array.isArray(rawRuns)) warnings.push('sweep.json: "runs" is not a list; runs are taken from runs/');
  const listed = (Array.isArray(rawRuns) ? rawRuns : []).filter(
    (r): r is { id: string; name: string; varied?: Record<string, unknown> } => isObject(r) && typeof r.id === 'string' && r.id !== '',
  );
  if (Array.isArray(rawRuns) && listed.length < rawRuns.length) {
    warnings.push(`sweep.json: ${rawRuns.length - listed.length} run entr${rawRuns.length - listed.length === 1 ? 'y has' : 'ies have'} no id; ignored`);
  }
  const ids = [...new Set(listed.map((r) => r.id))];
  const runsDir = join(root, 'runs');
  // Run dirs not in sweep.json (an older plan's runs) are reported too, after the listed ones.
  if (existsSync(runsDir)) {
    for (const id of readdirSync(runsDir).sort()) {
      if (!ids.includes(id) && isDir(join(runsDir, id))) ids.push(id);
    }
  }
  const plan: NonNullable<SweepJson['plan']> = isObject(sweep) && isObject(sweep.plan) ? sweep.plan : {};
  const baseline = plan.judge?.baseline ?? null;
  const runs: RunData[] = [];
  for (const id of ids) {
    const entry = listed.find((r) => r.id === id);
    runs.push(await readRun(join(runsDir, id), id, entry, baseline, { root, cwd, warnings }));
  }
  const formats = (Array.isArray(plan.report?.formats) ? plan.report.formats : undefined)?.filter((f): f is ReportFormat => (REPORT_FORMATS as readonly string[]).includes(f)) ?? null;
  return {
    kind: 'sweep',
    dir: root,
    name: sweep?.name ?? basename(root),
    sweep: {
      plan_file: sweep?.plan_file ?? null,
      plan_hash: sweep?.plan_hash ?? null,
      created: sweep?.created ?? null,
      updated: sweep?.updated ?? null,
      versions: sweep?.versions ?? {},
    },
    report: { formats: formats && formats.length > 0 ? formats : null, metric: plan.report?.metric ?? null },
    judge_config: plan.judge
      ? { preset: plan.judge.preset ?? null, baseline: plan.judge.baseline ?? null, model: plan.judge.model ?? null }
      : null,
    runs,
    judge: null,
    warnings,
  };
}

interface Ctx {
  /** The directory reported on. */
  root: string;
  cwd: string;
  warnings: string[];
}

async function readRun(
  runDir: string,
  id: string,
  entry: { name: string; varied?: Record<string, unknown> } | undefined,
  baseline: string | null,
  ctx: Ctx,
): Promise<RunData> {
  const spec = objectOrNull(readJson<SpecJson>(join(runDir, 'spec.json')));
  const statusPath = join(runDir, 'status.json');
  const status = objectOrNull(readJson<RunStatus>(statusPath));
  if (status === null && existsSync(statusPath)) {
    ctx.warnings.push(`${rel(ctx.root, statusPath)}: not readable JSON; the run's state is unknown (shown as not started)`);
  }
  const name = status?.name ?? spec?.name ?? entry?.name ?? id;
  const events = safeJsonl(join(runDir, 'events.jsonl'), ctx).filter(isObject);
  const steps: StepPoint[] = [];
  const evals: EvalPoint[] = [];
  for (const e of events) {
    const metrics = isObject(e.metrics) ? numbers(e.metrics) : {};
    const step = typeof e.step === 'number' ? e.step : null;
    if (step === null) continue;
    if (e.kind === 'step') steps.push({ step, epoch: typeof e.epoch === 'number' ? e.epoch : null, metrics });
    else if (e.kind === 'eval') evals.push({ step, metrics });
  }
  const varied = spec?.varied ?? entry?.varied ?? {};
  const seedValue = spec?.settings?.training?.seed ?? varied['training.seed'];
  return {
    id,
    name,
    varied,
    seed: typeof seedValue === 'number' ? seedValue : null,
    algorithm: spec?.settings?.algorithm ?? null,
    beta: typeof spec?.settings?.beta === 'number' ? spec.settings.beta : null,
    state: status?.state ?? 'missing',
    step: status?.step ?? steps.at(-1)?.step ?? 0,
    total: status?.total ?? null,
    attempt: status?.attempt ?? 0,
    error_class: status?.error_class ?? null,
    error: status?.error ?? null,
    log: displayLogPath(status?.log ?? null, runDir, ctx.root),
    started_at: status?.started_at ?? null,
    finished_at: status?.finished_at ?? null,
    status_metrics: status && isObject(status.metrics) ? numbers(status.metrics) : {},
    steps,
    evals,
    margins: readMargins(runDir, ctx),
    rollouts: readRollouts(join(runDir, 'rollouts', 'eval.json'), ctx),
    judges: await readRunJudges(runDir, baseline, ctx),
  };
}

/** Epoch folders in order, each file's records in order. */
function readMargins(runDir: string, ctx: Ctx): MarginPoint[] {
  const dir = join(runDir, 'margins');
  if (!isDir(dir)) return [];
  const out: MarginPoint[] = [];
  for (const epochDir of readdirSync(dir).filter((d) => /^epoch_\d+$/.test(d)).sort()) {
    for (const r of safeJsonl(join(dir, epochDir, 'margins.jsonl'), ctx).filter(isObject)) {
      const n = numbers(r);
      if (n.step === undefined) continue;
      const get = (k: string) => (k in n ? n[k]! : null);
      out.push({
        epoch: n.epoch ?? Number(epochDir.slice(6)),
        step: n.step,
        mean: get('mean'),
        p10: get('p10'),
        median: get('median'),
        p90: get('p90'),
        pos_frac: get('pos_frac'),
        beta: get('beta') ?? get('beta_used'),
      });
    }
  }
  return out;
}

function readRollouts(path: string, ctx: Ctx): RolloutStats | null {
  if (!existsSync(path)) return null;
  const rows = readJson<unknown>(path);
  if (!Array.isArray(rows)) {
    ctx.warnings.push(`${rel(ctx.root, path)}: not a JSON array; rollouts ignored`);
    return null;
  }
  const kls: number[] = [];
  const rewards: number[] = [];
  let length = 0;
  for (const row of rows) {
    if (!isObject(row)) continue;
    const n = numbers(row);
    if (n.kl !== undefined) kls.push(n.kl);
    if (n.reward !== undefined) rewards.push(n.reward);
    if (typeof row.output === 'string') length += [...row.output].length;
  }
  return {
    n: rows.length,
    mean_kl: kls.length > 0 ? mean(kls) : null,
    n_kl: kls.length,
    mean_reward: rewards.length > 0 ? mean(rewards) : null,
    mean_length: rows.length > 0 ? length / rows.length : 0,
  };
}

/** `judge/<baseline>/` folders holding a summary; the plan's baseline first, then by name. */
async function readRunJudges(runDir: string, baseline: string | null, ctx: Ctx): Promise<JudgeData[]> {
  const dir = join(runDir, 'judge');
  if (!isDir(dir)) return [];
  const names = readdirSync(dir)
    .filter((d) => existsSync(join(dir, d, 'summary.json')))
    .sort();
  const preferred = baseline === null ? -1 : names.findIndex((d) => sameBaseline(d, baseline));
  if (preferred > 0) names.unshift(...names.splice(preferred, 1));
  const out: JudgeData[] = [];
  for (const d of names) {
    const judge = await readJudgeDir(join(dir, d), ctx.root, d, ctx, join(runDir, 'rollouts', 'eval.json'));
    if (judge) out.push(judge);
  }
  return out;
}

/** `stage:sft` is stored as a folder like `stage-sft`, `stage_sft` or `sft`. */
function sameBaseline(folder: string, baseline: string): boolean {
  const norm = (s: string) => s.toLowerCase().replace(/[^a-z0-9.]+/g, '-');
  return norm(folder) === norm(baseline) || norm(folder) === norm(baseline.replace(/^stage:/, ''));
}

async function readJudgeDir(dir: string, root: string, baseline: string | null, ctx: Ctx, fallbackA?: string): Promise<JudgeData | null> {
  const summary = readJson<Partial<JudgeSummary>>(join(dir, 'summary.json'));
  if (!isObject(summary)) {
    ctx.warnings.push(`${rel(root, join(dir, 'summary.json'))}: not readable JSON; judgment ignored`);
    return null;
  }
  const all = safeJsonl<JudgmentRecord>(join(dir, 'judgments.jsonl'), ctx);
  // Records the report can use: an index, the pair's hash and instruction, an order and a verdict.
  const records = all.filter(
    (r) =>
      isObject(r) &&
      typeof r.index === 'number' &&
      typeof r.pair === 'string' &&
      typeof r.instruction === 'string' &&
      (r.order === 'ab' || r.order === 'ba') &&
      ['a', 'b', 'tie', 'invalid'].includes(r.verdict as string),
  );
  if (records.length < all.length) {
    ctx.warnings.push(`${rel(root, join(dir, 'judgments.jsonl'))}: ${all.length - records.length} record(s) without index, pair, instruction, order or verdict; ignored`);
  }
  const { outputs, note } = await readPairOutputs(summary, records, dir, ctx, fallbackA);
  return {
    dir: rel(root, dir) || '.',
    baseline: summary.b?.generator ?? baseline ?? 'B',
    summary,
    records,
    outputs,
    outputs_note: note,
  };
}

/**
 * The judge records hold lengths, not outputs; the examples need the texts. They are read back from
 * the outputs files named in the summary (absolute, or relative to the judge dir, the reported dir
 * or the working directory), and used only for pairs whose hash still matches — so an outputs file
 * edited after judging can never be shown next to a verdict it did not get.
 */
async function readPairOutputs(
  summary: Partial<JudgeSummary>,
  records: readonly JudgmentRecord[],
  judgeDir: string,
  ctx: Ctx,
  fallbackA?: string,
): Promise<{ outputs: Record<string, { a: string; b: string }>; note: string | null }> {
  if (records.length === 0) return { outputs: {}, note: null };
  const find = (p: string | undefined, fallback?: string): string | null => {
    const candidates: string[] = [];
    if (p) {
      if (isAbsolute(p)) candidates.push(p);
      else candidates.push(join(judgeDir, p), join(ctx.root, p), resolve(ctx.cwd, p));
    }
    if (fallback) candidates.push(fallback);
    return candidates.find((c) => existsSync(c) && !isDir(c)) ?? null;
  };
  const pathA = find(summary.a?.path, fallbackA);
  const pathB = find(summary.b?.path);
  if (!pathA || !pathB) {
    const missing = [!pathA ? `A (${summary.a?.path ?? 'no path'})` : null, !pathB ? `B (${summary.b?.path ?? 'no path'})` : null].filter(Boolean);
    return { outputs: {}, note: `outputs file not found: ${missing.join(', ')}` };
  }
  let fileA: OutputsFile;
  let fileB: OutputsFile;
  try {
    [fileA, fileB] = await Promise.all([loadOutputsFile(pathA, 'a'), loadOutputsFile(pathB, 'b')]);
  } catch (cause) {
    return { outputs: {}, note: `outputs file unreadable: ${(cause as Error).message}` };
  }
  const firstByInstruction = (f: OutputsFile) => {
    const m = new Map<string, string>();
    for (const r of f.records) if (!m.has(r.instruction.trim())) m.set(r.instruction.trim(), r.output);
    return m;
  };
  const a = firstByInstruction(fileA);
  const b = firstByInstruction(fileB);
  const outputs: Record<string, { a: string; b: string }> = {};
  let stale = 0;
  for (const r of records) {
    if (outputs[r.pair]) continue;
    const key = r.instruction.trim();
    const oa = a.get(key);
    const ob = b.get(key);
    if (oa !== undefined && ob !== undefined && pairHash(key, oa, ob) === r.pair) outputs[r.pair] = { a: oa, b: ob };
    else stale++;
  }
  return { outputs, note: stale > 0 ? `${stale} judged pair(s) no longer match the outputs files; their texts are not shown` : null };
}

/** `readJsonl` that turns an unreadable file into a warning and an empty list. */
function safeJsonl<T = Record<string, unknown>>(path: string, ctx: Ctx): T[] {
  try {
    return readJsonl<T>(path);
  } catch (cause) {
    ctx.warnings.push(`${rel(ctx.root, path)}: ${(cause as Error).message.replace(`${path}:`, 'line ')}; file ignored`);
    return [];
  }
}

/** Numeric fields of an object; "NaN" / "Infinity" / "-Infinity" strings become those numbers. */
export function numbers(obj: Record<string, unknown>): Record<string, Num> {
  const out: Record<string, Num> = {};
  for (const [k, v] of Object.entries(obj)) {
    if (typeof v === 'number') out[k] = v;
    else if (v === 'NaN' || v === 'Infinity' || v === '-Infinity') out[k] = Number(v);
  }
  return out;
}

/**
 * Log paths are absolute where the run wrote them; shown relative to the reported dir when inside it,
 * and re-rooted when the sweep dir was moved (`…/runs/<id>/worker.log` → `runs/<id>/worker.log`).
 */
function displayLogPath(log: string | null, runDir: string, root: string): string | null {
  if (log === null) return existsSync(join(runDir, 'worker.log')) ? rel(root, join(runDir, 'worker.log')) : null;
  const abs = resolve(root, log);
  if (abs.startsWith(root + sep)) return rel(root, abs);
  const moved = join(runDir, basename(log));
  if (log.includes(`${sep}runs${sep}${basename(runDir)}${sep}`) || existsSync(moved)) return rel(root, moved);
  return log;
}

function rel(root: string, path: string): string {
  return relative(root, path).split(sep).join('/');
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function objectOrNull<T>(v: T | undefined): T | null {
  return isObject(v) ? v : null;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function mean(xs: readonly number[]): number {
  return xs.reduce((s, x) => s + x, 0) / xs.length;
}
