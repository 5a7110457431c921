/**
 * `writeReport(dir)`: read a sweep or judge dir, compute the results, render, and write
 * `<dir>/report/` — `report.md` (+ `plots/*.svg`), `report.html`, `summary.json`, `results.csv`
 * and `variants.csv`, as `plan.report.formats` (or the caller) asks; all four by default. Each
 * file is written to a temporary name and renamed, so a reader never sees half a file;
 * `summary.json` is written last.
 */
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import { aggregate, exampleSet, type Results } from './aggregate.js';
import { buildCharts } from './charts.js';
import { collectReportData, detectDir, REPORT_FORMATS, type ReportData, type ReportFormat } from './collect.js';
import { resultsCsv, variantsCsv } from './csv.js';
import { failures, judgeRows, type ReportContent } from './format.js';
import { renderHtml } from './render-html.js';
import { renderMarkdown } from './render-md.js';

export interface ReportOptions {
  /** Files to write (default: `plan.report.formats`, else all four). */
  formats?: readonly ReportFormat[] | undefined;
  /** Metric for "best run", as `plan.report.metric` (default: the plan's, else see `metricRule`). */
  metric?: string | undefined;
  /** Where relative outputs paths in judge summaries are also looked up (default: process.cwd()). */
  cwd?: string | undefined;
}

export interface ReportOutcome {
  /** The report folder. */
  dir: string;
  /** Absolute paths written. */
  files: string[];
  content: ReportContent;
}

/** Everything the renderers need, without writing anything. */
export async function buildReport(dir: string, options: ReportOptions = {}): Promise<ReportContent> {
  if (detectDir(dir) === null) throw notAReportDir(dir);
  const data = await collectReportData(dir, { cwd: options.cwd });
  const results = aggregate(data, { metric: options.metric ?? null });
  const charts = await buildCharts(data, results);
  return { data, results, charts, examples: exampleSet(data, results) };
}

export function notAReportDir(dir: string): InputError {
  return new InputError(`${dir} is neither a sweep directory nor a judge directory`, [
    'a sweep directory holds sweep.json (written by `dpo-sweep run`)',
    'a judge directory holds summary.json and judgments.jsonl (written by `dpo-sweep judge --out <dir>`)',
  ]);
}

export async function writeReport(dir: string, options: ReportOptions = {}): Promise<ReportOutcome> {
  const content = await buildReport(dir, options);
  const { data, results } = content;
  const formats = new Set<ReportFormat>(options.formats ?? data.report.formats ?? REPORT_FORMATS);
  const out = join(data.dir, 'report');
  // A report folder that cannot be written (a file named `report`, a read-only dir) is the user's to
  // fix: an InputError naming it, not a stack trace.
  const unwritable = (path: string, cause: unknown) =>
    new InputError(`cannot write the report to ${path}`, [(cause as Error).message, `${out} must be a folder you can write`], { cause });
  try {
    mkdirSync(out, { recursive: true });
  } catch (cause) {
    throw unwritable(out, cause);
  }
  const files: string[] = [];
  const write = (name: string, text: string) => {
    const path = join(out, name);
    const tmp = `${path}.tmp-${process.pid}`;
    try {
      writeFileSync(tmp, text);
      renameSync(tmp, path);
    } catch (cause) {
      rmSync(tmp, { force: true });
      throw unwritable(path, cause);
    }
    files.push(path);
  };
  if (formats.has('md')) {
    if (content.charts.length > 0) {
      try {
        mkdirSync(join(out, 'plots'), { recursive: true });
      } catch (cause) {
        throw unwritable(join(out, 'plots'), cause);
      }
    }
    for (const c of content.charts) write(`plots/${c.id}.svg`, c.svg);
    write('report.md', renderMarkdown(content));
  }
  if (formats.has('html')) write('report.html', renderHtml(content));
  if (formats.has('csv') && data.kind === 'sweep') {
    write('results.csv', resultsCsv(results));
    write('variants.csv', variantsCsv(results));
  }
  if (formats.has('json')) write('summary.json', `${JSON.stringify(reportSummary(content, { plotFiles: formats.has('md') }), jsonSafe, 2)}\n`);
  return { dir: out, files, content };
}

/** Non-finite numbers as strings ("NaN", "Infinity"), as in status.json; JSON has no NaN. */
function jsonSafe(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? String(value) : value;
}

/** `summary.json`: the report's numbers for programs. */
export function reportSummary(content: ReportContent, options: { plotFiles?: boolean } = {}) {
  const { data, results } = content;
  const states: Record<string, number> = {};
  for (const r of data.runs) states[r.state] = (states[r.state] ?? 0) + 1;
  return {
    report_version: 1,
    kind: data.kind,
    name: data.name,
    sweep: data.sweep,
    judge_config: data.judge_config,
    runs: { total: data.runs.length, by_state: states },
    metric: results.metric,
    best: results.best,
    headline: results.headline,
    verdicts: results.verdicts,
    varied_keys: results.varied_keys,
    results: results.rows,
    variants: results.groups,
    judges: judgeRows(data),
    failures: failures(data).map((r) => ({
      run: r.name,
      id: r.id,
      state: r.state,
      error_class: r.error_class,
      error: r.error,
      log: r.log,
      step: r.step,
      total: r.total,
      attempt: r.attempt,
    })),
    plots: content.charts.map((c) => ({ id: c.id, title: c.title, file: options.plotFiles ? `plots/${c.id}.svg` : null })),
    examples: content.examples
      ? {
          run: content.examples.run,
          baseline: content.examples.baseline,
          judge_dir: content.examples.judge_dir,
          pairs: content.examples.examples.map((e) => ({ pair: e.pair, index: e.index, kind: e.kind })),
        }
      : null,
    warnings: data.warnings,
  };
}

export type { ReportData, Results };
