import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reportCommand } from '../../src/cli/commands/report.js';
import type { CliIO } from '../../src/cli/io.js';
import { inlineSvg, thin } from '../../src/report/charts.js';
import { fmtEstimate, fmtNum } from '../../src/report/format.js';
import { esc } from '../../src/report/render-html.js';
import { mdCell, renderMarkdown } from '../../src/report/render-md.js';
import { buildReport, writeReport, type ReportOutcome } from '../../src/report/write.js';
import { copyFixture, JUDGE_FIXTURE, SWEEP_FIXTURE } from './helpers.js';

let sweepDir: string;
let judgeDir: string;
let sweep: ReportOutcome;
let judge: ReportOutcome;

beforeAll(async () => {
  sweepDir = copyFixture('sweep');
  judgeDir = copyFixture('judge-only');
  sweep = await writeReport(sweepDir);
  judge = await writeReport(judgeDir);
});
afterAll(() => {
  for (const d of [sweepDir, judgeDir]) rmSync(join(d, '..'), { recursive: true, force: true });
});

/** The <svg>…</svg> blocks of an HTML page. */
const svgs = (html: string) => html.match(/<svg[\s\S]*?<\/svg>/g) ?? [];

describe('report.md', () => {
  it('matches the snapshot of the sweep fixture', async () => {
    // Rendered from the committed fixture in place (nothing is written there).
    const content = await buildReport(SWEEP_FIXTURE);
    await expect(renderMarkdown(content)).toMatchFileSnapshot('__snapshots__/sweep-report.md');
  });

  it('matches the snapshot of the bare judge dir', async () => {
    const content = await buildReport(JUDGE_FIXTURE);
    await expect(renderMarkdown(content)).toMatchFileSnapshot('__snapshots__/judge-report.md');
  });

  it('says when a variant does not beat the baseline, and when it loses', () => {
    const md = readFileSync(join(sweepDir, 'report/report.md'), 'utf8');
    expect(md).toContain('**1 of 3 variants beats sft; 1 loses; 1 shows no significant difference.**');
    expect(md).toContain('- dyn does not beat sft (no significant difference): win rate 52.5 %');
    expect(md).toContain('- bdpo loses to sft: win rate 32.1 %');
    const jmd = readFileSync(join(judgeDir, 'report/report.md'), 'utf8');
    expect(jmd).toContain('**policy-dpo does not beat sft: no significant difference.**');
  });

  it('references every plot it wrote', () => {
    const md = readFileSync(join(sweepDir, 'report/report.md'), 'utf8');
    for (const c of sweep.content.charts) {
      expect(md).toContain(`](plots/${c.id}.svg)`);
      expect(existsSync(join(sweepDir, 'report/plots', `${c.id}.svg`))).toBe(true);
    }
  });

  it('shows what the judgments cost, cached ones included, after a rerun that sent nothing', async () => {
    const dir = copyFixture('judge-only');
    try {
      const file = join(dir, 'summary.json');
      const summary = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
      writeFileSync(file, JSON.stringify({ ...summary, requests: 0, cost_usd: 0, total_cost_usd: 0.1234 }));
      expect(renderMarkdown(await buildReport(dir))).toMatch(/\| \$0\.1234 \|/);
      // A summary from before total_cost_usd existed shows its cost_usd.
      writeFileSync(file, JSON.stringify({ ...summary, cost_usd: 0.0567, total_cost_usd: undefined }));
      expect(renderMarkdown(await buildReport(dir))).toMatch(/\| \$0\.0567 \|/);
    } finally {
      rmSync(join(dir, '..'), { recursive: true, force: true });
    }
  });

  it('escapes table cells', () => {
    expect(mdCell('a|b\nc\\d')).toBe('a\\|b c\\\\d');
  });
});

describe('report.html', () => {
  it('is self-contained: no URL, no src=, no script, no external stylesheet', () => {
    for (const { dir } of [sweep, judge]) {
      const html = readFileSync(join(dir, 'report.html'), 'utf8');
      expect(html).not.toMatch(/https?:/i);
      expect(html).not.toMatch(/\bsrc\s*=/i);
      expect(html).not.toMatch(/<script/i);
      expect(html).not.toMatch(/<link\b/i);
      expect(html).not.toMatch(/@import|url\((?!#)/i);
      expect(html).toMatch(/^<!doctype html>/);
    }
  });

  it('every chart is an inline <svg> with marks', () => {
    const html = readFileSync(join(sweep.dir, 'report.html'), 'utf8');
    const blocks = svgs(html);
    expect(sweep.content.charts.map((c) => c.id)).toEqual(['win-rate', 'loss', 'margin', 'beta', 'margin-quantiles', 'reward-vs-kl']);
    expect(blocks).toHaveLength(sweep.content.charts.length);
    for (const svg of blocks) {
      expect(svg).toMatch(/class="mark-(line|symbol|rule|area|text)/);
      expect(svg).toMatch(/<path [^>]*d="M[^"]+"/);
    }
    // Ids are unique across the page (vega's clip paths would otherwise collide).
    const ids = [...html.matchAll(/\bid="([^"]+)"/g)].map((m) => m[1]);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('has a table of contents, the results, verdicts, failures with log paths and examples', () => {
    const html = readFileSync(join(sweep.dir, 'report.html'), 'utf8');
    for (const id of ['summary', 'results', 'judge', 'plots', 'failures', 'examples', 'method']) {
      expect(html).toContain(`<a href="#${id}">`);
      expect(html).toContain(`<section id="${id}">`);
    }
    expect(html).toContain('<span class="badge beats">beats</span>dpo beats sft');
    expect(html).toContain('<span class="badge loses">loses</span>bdpo loses to sft');
    expect(html).toContain('<code>runs/c2d49954c6bc/worker.log</code>');
    expect(html).toContain('loss is NaN at step 12');
    expect((html.match(/<article class="example/g) ?? []).length).toBe(5);
    expect(html).toMatch(/<article class="example win">[\s\S]*?More helpful: [AB]/);
  });

  it('escapes text from the data', () => {
    expect(esc(`<b onclick="x">'&`)).toBe('&lt;b onclick=&quot;x&quot;&gt;&#39;&amp;');
  });

  it('a judge dir gets a win-rate report only', () => {
    const html = readFileSync(join(judge.dir, 'report.html'), 'utf8');
    expect(svgs(html)).toHaveLength(1);
    expect(html).not.toContain('<section id="results">');
    expect(html).not.toContain('<section id="failures">');
    expect(judge.files.map((f) => f.slice(judge.dir.length + 1)).sort()).toEqual(['plots/win-rate.svg', 'report.html', 'report.md', 'summary.json']);
  });
});

describe('summary.json and files', () => {
  it('writes the four formats (and variants.csv) atomically, no temp files left', () => {
    const names = sweep.files.map((f) => f.slice(sweep.dir.length + 1)).filter((f) => !f.startsWith('plots/'));
    expect(names).toEqual(['report.md', 'report.html', 'results.csv', 'variants.csv', 'summary.json']);
    const summary = JSON.parse(readFileSync(join(sweep.dir, 'summary.json'), 'utf8'));
    expect(summary).toMatchObject({
      report_version: 1,
      kind: 'sweep',
      name: 'fixture-scan',
      runs: { total: 9, by_state: { succeeded: 6, failed: 1, running: 1, missing: 1 } },
      metric: { key: 'win_rate', direction: 'higher', requested: 'win_rate' },
      best: { run: { run: 'dpo-seed3' }, group: { group: 'dpo' } },
      headline: '1 of 3 variants beats sft; 1 loses; 1 shows no significant difference.',
    });
    expect(summary.verdicts.map((v: { outcome: string }) => v.outcome)).toEqual(['beats', 'no-difference', 'loses']);
    expect(summary.failures.map((f: { run: string }) => f.run)).toEqual(['dyn-seed3', 'bdpo-seed2', 'bdpo-seed3']);
    // Non-finite numbers are kept as strings, as in status.json.
    expect(summary.results.find((r: { run: string }) => r.run === 'dyn-seed3').metrics.loss).toBe('NaN');
    const csv = readFileSync(join(sweep.dir, 'results.csv'), 'utf8');
    expect(csv.split('\r\n')).toHaveLength(9 + 2);
  });

  it('plan.report.formats and the caller choose the files', async () => {
    const out = await writeReport(judgeDir, { formats: ['json'] });
    expect(out.files.map((f) => f.slice(out.dir.length + 1))).toEqual(['summary.json']);
  });
});

describe('reportCommand', () => {
  const io = () => {
    const out: string[] = [];
    const err: string[] = [];
    const cli: CliIO = { out: (l) => out.push(l), err: (l) => err.push(l), isTTY: false, env: {} };
    return { cli, out, err };
  };

  it('writes the report and prints the files and the headline', async () => {
    const { cli, out, err } = io();
    expect(await reportCommand(judgeDir, { format: 'md,html' }, cli)).toBe(0);
    expect(out.map((l) => l.split('/').pop())).toEqual(['report.md', 'report.html']);
    expect(err).toEqual(['policy-dpo does not beat sft: no significant difference.']);
  });

  it('exits 2 for a directory that is neither a sweep nor a judge dir', async () => {
    const { cli, out, err } = io();
    expect(await reportCommand(join(sweepDir, 'runs'), {}, cli)).toBe(2);
    expect(out).toEqual([]);
    expect(err[0]).toBe(`error: ${join(sweepDir, 'runs')} is neither a sweep directory nor a judge directory`);
    expect(err.slice(1).join('\n')).toMatch(/sweep\.json[\s\S]*summary\.json and judgments\.jsonl/);
  });

  it('exits 2 for an unknown format, before writing anything', async () => {
    const { cli, err } = io();
    expect(await reportCommand(sweepDir, { format: ['md', 'pdf'] }, cli)).toBe(2);
    expect(err).toEqual(['error: unknown report format: pdf', '  choose from md, html, json, csv']);
  });
});

describe('formatting', () => {
  it('numbers: four significant digits, exponents at the extremes, NaN and ∞ spelled out', () => {
    expect([0.693147, 12.3456, 1234.5, 0.0001234, 123456, 0, Number.NaN, -Infinity, null].map(fmtNum)).toEqual([
      '0.6931',
      '12.35',
      '1235',
      '1.23e−4',
      '1.23e+5',
      '0',
      'NaN',
      '−∞',
      '–',
    ]);
  });

  it('estimates: the half-width to two significant digits, the mean to the same place', () => {
    expect(fmtEstimate('loss', { n: 3, mean: 0.2542, sd: 0.01, ci: [0.2283, 0.2801] })).toBe('0.254 ± 0.026');
    expect(fmtEstimate('win_rate', { n: 3, mean: 0.675, sd: 0.025, ci: [0.6129, 0.7371] })).toBe('67.5 ± 6.2 %');
    expect(fmtEstimate('loss', { n: 1, mean: 0.5, sd: null, ci: null })).toBe('0.5');
    expect(fmtEstimate('beta', { n: 3, mean: 0.1, sd: 0, ci: [0.1, 0.1] })).toBe('0.1 ± 0');
  });

  it('long curves are thinned evenly, keeping the first and last points', () => {
    const xs = Array.from({ length: 1001 }, (_, i) => i);
    const t = thin(xs, 400);
    expect(t.length).toBeLessThanOrEqual(401);
    expect(t[0]).toBe(0);
    expect(t.at(-1)).toBe(1000);
    expect(thin([1, 2, 3], 400)).toEqual([1, 2, 3]);
  });

  it('inline SVG: namespace URLs removed, ids prefixed with their references', () => {
    const svg = '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"><clipPath id="clip1"></clipPath><g clip-path="url(#clip1)"></g></svg>';
    expect(inlineSvg(svg, 'p-x')).toBe('<svg><clipPath id="p-x-clip1"></clipPath><g clip-path="url(#p-x-clip1)"></g></svg>');
  });
});
