/**
 * The results table as CSV (RFC 4180: comma-separated, CRLF line ends, a field quoted when it holds
 * a comma, a double quote, CR or LF, with inner quotes doubled). Numbers are written in full
 * precision; NaN and ±Infinity as `NaN`, `Infinity`, `-Infinity`; missing values as empty fields.
 */
import { METRICS, type Results } from './aggregate.js';
import type { Estimate } from './t-interval.js';

export function csvField(value: unknown): string {
  let text: string;
  if (value === null || value === undefined) text = '';
  else if (typeof value === 'number') text = Number.isNaN(value) ? 'NaN' : String(value);
  else if (typeof value === 'string') text = value;
  else text = JSON.stringify(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function toCsv(header: readonly string[], rows: readonly (readonly unknown[])[]): string {
  return [header, ...rows].map((r) => r.map(csvField).join(',')).join('\r\n') + '\r\n';
}

/** One row per run: identity, varied values, final metrics, the win rate's interval and counts. */
export function resultsCsv(results: Results): string {
  const header = [
    'run',
    'id',
    'variant',
    'state',
    ...results.varied_keys,
    'step',
    'total',
    ...METRICS,
    'win_rate_ci_low',
    'win_rate_ci_high',
    'judge_baseline',
    'judge_pairs',
    'judge_wins',
    'judge_losses',
    'judge_ties',
    'judge_invalid',
    'best',
    'error_class',
  ];
  const rows = results.rows.map((r) => [
    r.run,
    r.id,
    r.group,
    r.state,
    ...results.varied_keys.map((k) => r.varied[k]),
    r.step,
    r.total,
    ...METRICS.map((m) => r.metrics[m]),
    r.win_rate_ci?.[0] ?? null,
    r.win_rate_ci?.[1] ?? null,
    r.judge?.baseline ?? null,
    r.judge?.n_pairs ?? null,
    r.judge?.wins ?? null,
    r.judge?.losses ?? null,
    r.judge?.ties ?? null,
    r.judge?.invalid ?? null,
    r.id === results.best.run?.id ? 'true' : 'false',
    r.error_class,
  ]);
  return toCsv(header, rows);
}

/** One row per variant: for each metric n, mean, sd and the 95 % t-interval across seeds. */
export function variantsCsv(results: Results): string {
  const keys = results.varied_keys.filter((k) => k !== 'training.seed');
  const stat = (e: Estimate) => [e.n, e.mean, e.sd, e.ci?.[0] ?? null, e.ci?.[1] ?? null];
  const header = [
    'variant',
    ...keys,
    'runs',
    'succeeded',
    'seeds',
    ...METRICS.flatMap((m) => [`${m}_n`, `${m}_mean`, `${m}_sd`, `${m}_ci_low`, `${m}_ci_high`]),
    'verdict',
    'best',
  ];
  const rows = results.groups.map((g) => [
    g.group,
    ...keys.map((k) => g.varied[k]),
    g.runs.length,
    g.succeeded,
    g.seeds.filter((s) => s !== null).join(' '),
    ...METRICS.flatMap((m) => stat(g.metrics[m])),
    results.verdicts.find((v) => v.group === g.group)?.outcome ?? null,
    g.group === results.best.group?.group ? 'true' : 'false',
  ]);
  return toCsv(header, rows);
}
