/**
 * What the Markdown, HTML and CSV renderers share: number formatting and the plain tables they
 * all draw (which metric columns have data, the judge table, the failures list). Pure.
 */
import type { JudgeData, ReportData, RunData } from './collect.js';
import { METRIC_LABELS, METRICS, type ExampleSet, type MetricKey, type MetricRule, type Results } from './aggregate.js';
import type { Chart } from './charts.js';
import type { Estimate } from './t-interval.js';

/** Everything a renderer draws. */
export interface ReportContent {
  data: ReportData;
  results: Results;
  charts: Chart[];
  examples: ExampleSet | null;
}

export const DASH = '–';

/** Four significant digits; exponent outside [1e-3, 1e4); NaN and ∞ spelled out. */
export function fmtNum(x: number | null | undefined): string {
  if (x === null || x === undefined) return DASH;
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? '∞' : '−∞';
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 1e4 || a < 1e-3) return x.toExponential(2).replace('-', '−');
  return String(Number(x.toPrecision(4))).replace('-', '−');
}

/** A proportion as a percentage with one decimal: `67.5 %`. */
export function fmtPct(x: number | null | undefined): string {
  if (x === null || x === undefined) return DASH;
  if (!Number.isFinite(x)) return fmtNum(x);
  return `${(100 * x).toFixed(1)} %`;
}

export function fmtCI(ci: [number, number] | null | undefined, pct: boolean): string {
  if (!ci) return DASH;
  return pct ? `${(100 * ci[0]).toFixed(1)} – ${(100 * ci[1]).toFixed(1)} %` : `${fmtNum(ci[0])} – ${fmtNum(ci[1])}`;
}

/** Proportions are shown as percentages. */
export const isProportion = (key: string) => key === 'win_rate' || key === 'lc_win_rate' || key === 'reward_accuracy';

export function fmtMetric(key: string, x: number | null | undefined): string {
  return isProportion(key) ? fmtPct(x) : fmtNum(x);
}

/**
 * `mean ± half-width` (n ≥ 2), the value (n = 1), or a dash. The half-width keeps two significant
 * digits and the mean is rounded to the same decimal place (`0.254 ± 0.026`, `67.5 ± 6.2 %`).
 */
export function fmtEstimate(key: string, e: Estimate): string {
  const { mean, pm, unit } = splitEstimate(key, e);
  return pm === null ? `${mean}${unit}` : `${mean} ${pm}${unit}`;
}

/** `fmtEstimate` in parts: the mean, the `± half` part (null without an interval) and the unit. */
export function splitEstimate(key: string, e: Estimate): { mean: string; pm: string | null; unit: string } {
  if (e.mean === null) return { mean: DASH, pm: null, unit: '' };
  if (e.ci === null) return { mean: fmtMetric(key, e.mean), pm: null, unit: '' };
  const scale = isProportion(key) ? 100 : 1;
  const unit = isProportion(key) ? ' %' : '';
  const mean = e.mean * scale;
  const half = ((e.ci[1] - e.ci[0]) / 2) * scale;
  if (!(half > 0) || !Number.isFinite(half)) return { mean: isProportion(key) ? mean.toFixed(1) : fmtNum(mean), pm: '± 0', unit };
  const decimals = Math.min(8, Math.max(isProportion(key) ? 1 : 0, 1 - Math.floor(Math.log10(half))));
  const fixed = (x: number) => x.toFixed(decimals).replace('-', '−');
  return { mean: fixed(mean), pm: `± ${fixed(half)}`, unit };
}

/** A varied value as written in the plan. */
export function fmtValue(v: unknown): string {
  if (v === undefined) return DASH;
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  return JSON.stringify(v);
}

/** Metric columns with at least one value, in table order. */
export function visibleMetrics(results: Results): MetricKey[] {
  return METRICS.filter((m) => results.rows.some((r) => r.metrics[m] !== null));
}

export function metricTitle(key: MetricKey): string {
  return METRIC_LABELS[key];
}

/** "by `win_rate`, higher is better (named)". */
export function describeMetric(rule: MetricRule): string {
  const why = rule.because === 'prefix' ? `forced by the \`${rule.requested?.trim()[0]}\` prefix` : 'from its name';
  const origin = rule.requested ? `the plan's \`report.metric: ${rule.requested}\`` : 'the default metric';
  return `\`${rule.key}\` (${origin}); ${rule.direction} is better (${why})`;
}

export interface JudgeRow {
  run: string | null;
  baseline: string;
  dir: string;
  preset: string | null;
  model: string | null;
  n_pairs: number | null;
  wins: number | null;
  losses: number | null;
  ties: number | null;
  invalid: number | null;
  win_rate: number | null;
  ci: [number, number] | null;
  lc: number | null;
  p_first: number | null;
  p_longer: number | null;
  order_inconsistent: number | null;
  requests: number | null;
  cache_hits: number | null;
  cost_usd: number | null;
  stopped: string | null;
}

function judgeRow(run: string | null, j: JudgeData): JudgeRow {
  const s = j.summary;
  const n = (x: unknown) => (typeof x === 'number' ? x : null);
  return {
    run,
    baseline: j.baseline,
    dir: j.dir,
    preset: s.preset ?? null,
    model: s.model ?? null,
    n_pairs: n(s.n_pairs),
    wins: n(s.wins),
    losses: n(s.losses),
    ties: n(s.ties),
    invalid: n(s.invalid),
    win_rate: n(s.win_rate),
    ci: Array.isArray(s.win_rate_ci) ? (s.win_rate_ci as [number, number]) : null,
    lc: n(s.lc_win_rate),
    p_first: n(s.p_first),
    p_longer: n(s.p_longer),
    order_inconsistent: n(s.order_inconsistent),
    requests: n(s.requests),
    cache_hits: n(s.cache_hits),
    // What the judgments cost, cached ones included; summaries written before total_cost_usd existed have only cost_usd.
    cost_usd: n(s.total_cost_usd) ?? n(s.cost_usd),
    stopped: s.stopped ?? null,
  };
}

/** Every judgment in the data (all baselines of every run, or the bare judge dir's). */
export function judgeRows(data: ReportData): JudgeRow[] {
  if (data.judge) return [judgeRow(null, data.judge)];
  return data.runs.flatMap((r) => r.judges.map((j) => judgeRow(r.name, j)));
}

/** Judge warnings, each once, with the runs that raised it. */
export function judgeWarnings(data: ReportData): string[] {
  const all = data.judge ? [{ run: null, j: data.judge }] : data.runs.flatMap((r) => r.judges.map((j) => ({ run: r.name, j })));
  const seen = new Map<string, string[]>();
  for (const { run, j } of all) {
    for (const w of Array.isArray(j.summary.warnings) ? j.summary.warnings : []) {
      const list = seen.get(w) ?? [];
      if (run) list.push(run);
      seen.set(w, list);
    }
    if (j.outputs_note) {
      const list = seen.get(j.outputs_note) ?? [];
      if (run) list.push(run);
      seen.set(j.outputs_note, list);
    }
  }
  return [...seen.entries()].map(([w, runs]) => (runs.length > 0 ? `${w} (${runs.join(', ')})` : w));
}

/** Runs that did not succeed, in sweep order. */
export function failures(data: ReportData): RunData[] {
  return data.runs.filter((r) => r.state !== 'succeeded');
}

/** The first line of an error, at most `max` characters. */
export function firstLine(text: string | null, max = 160): string {
  if (!text) return '';
  const line = text.split('\n').find((l) => l.trim().length > 0)?.trim() ?? '';
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/** Long texts are cut for the report, saying how much was left out. */
export function clip(text: string, max: number): string {
  const chars = [...text];
  if (chars.length <= max) return text;
  return `${chars.slice(0, max).join('').trimEnd()}\n… (${chars.length - max} more characters)`;
}

/** `5 runs: 3 succeeded, 1 failed, 1 running`. */
export function runCounts(data: ReportData): string {
  const counts = new Map<string, number>();
  for (const r of data.runs) counts.set(r.state, (counts.get(r.state) ?? 0) + 1);
  const order = ['succeeded', 'failed', 'cancelled', 'running', 'queued', 'missing'];
  const parts = order.filter((s) => counts.has(s)).map((s) => `${counts.get(s)} ${s === 'missing' ? 'not started' : s}`);
  return `${data.runs.length} run${data.runs.length === 1 ? '' : 's'}${parts.length > 0 ? `: ${parts.join(', ')}` : ''}`;
}

export const KIND_LABEL = { win: 'win', loss: 'loss', tie: 'tie' } as const;

/** "A wins" / "B wins" / "tie" / "invalid" for one request's verdict. */
export function verdictWord(v: string, a: string, b: string): string {
  return v === 'a' ? `${a} wins` : v === 'b' ? `${b} wins` : v === 'tie' ? 'tie' : 'invalid';
}
