import { relative, resolve } from 'node:path';
import { EXIT, InputError } from '../../errors.js';
import { REPORT_FORMATS, type ReportFormat } from '../../report/collect.js';
import { detectDir } from '../../report/collect.js';
import { notAReportDir, writeReport } from '../../report/write.js';
import type { CliIO } from '../io.js';

export interface ReportCommandOptions {
  /** Formats to write, e.g. `['md', 'html']` or `'md,html'` (default: the plan's, else all). */
  format?: string | string[] | undefined;
  /** Metric for "best run" (overrides `plan.report.metric`); `-name` / `+name` forces the direction. */
  metric?: string | undefined;
}

/**
 * `dpo-sweep report <sweep-or-judge-dir>`: writes `<dir>/report/`. Exit 0 when written, 2 when the
 * directory is neither a sweep nor a judge dir or a format is unknown. A sweep with failed runs
 * still gets its report (the failures are in it) and exits 0.
 */
export async function reportCommand(dir: string, opts: ReportCommandOptions, io: CliIO): Promise<number> {
  const root = resolve(dir);
  const formats = parseFormats(opts.format);
  if (formats instanceof InputError) return fail(formats, io);
  if (detectDir(root) === null) return fail(notAReportDir(dir), io);
  const { files, content } = await writeReport(root, { formats, metric: opts.metric });
  if (content.results.headline) io.err(content.results.headline);
  for (const w of content.data.warnings) io.err(`warning: ${w}`);
  for (const f of files) if (!f.includes(`${'/'}plots${'/'}`)) io.out(relative(process.cwd(), f) || f);
  return EXIT.ok;
}

function parseFormats(value: string | string[] | undefined): ReportFormat[] | undefined | InputError {
  if (value === undefined) return undefined;
  const list = (Array.isArray(value) ? value : [value]).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
  if (list.length === 0) return new InputError('--format: no format given', [`choose from ${REPORT_FORMATS.join(', ')} (comma-separated)`]);
  const bad = list.filter((f) => !(REPORT_FORMATS as readonly string[]).includes(f));
  if (bad.length > 0) return new InputError(`unknown report format${bad.length > 1 ? 's' : ''}: ${bad.join(', ')}`, [`choose from ${REPORT_FORMATS.join(', ')}`]);
  return list as ReportFormat[];
}

function fail(error: InputError, io: CliIO): number {
  io.err(`error: ${error.message}`);
  for (const line of error.details) io.err(`  ${line}`);
  return EXIT.badInput;
}
