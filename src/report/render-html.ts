/**
 * `report.html`: one self-contained page — inline CSS, inline SVG plots, no script, no external
 * resource of any kind — readable on screen and on paper. Pure: a function of the report content.
 */
import type { Example } from './aggregate.js';
import { inlineSvg, type Chart } from './charts.js';
import {
  clip,
  DASH,
  describeMetric,
  failures,
  firstLine,
  fmtCI,
  fmtMetric,
  fmtNum,
  fmtPct,
  fmtValue,
  judgeRows,
  judgeWarnings,
  metricTitle,
  runCounts,
  splitEstimate,
  verdictWord,
  visibleMetrics,
  type ReportContent,
} from './format.js';

const EXAMPLE_CHARS = 1500;

export function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

const code = (s: string) => `<code>${esc(s)}</code>`;

/** Markdown-ish backticks in generated sentences → <code>. */
const inline = (s: string) => esc(s).replace(/`([^`]+)`/g, '<code>$1</code>');

type Cell = { text: string; num?: boolean; html?: boolean; cls?: string };

function table(head: Cell[], rows: Cell[][], cls = ''): string {
  const cell = (tag: 'th' | 'td', c: Cell) => {
    const classes = [c.num ? 'num' : '', c.cls ?? ''].filter(Boolean).join(' ');
    // Long dotted keys (dynamic_beta.alpha) may break after a dot or underscore in a header.
    const text = c.html ? c.text : tag === 'th' ? esc(c.text).replace(/([._])/g, '$1<wbr>') : esc(c.text);
    return `<${tag}${classes ? ` class="${classes}"` : ''}>${text}</${tag}>`;
  };
  return [
    `<div class="table-wrap"><table${cls ? ` class="${cls}"` : ''}>`,
    `<thead><tr>${head.map((h) => cell('th', h)).join('')}</tr></thead>`,
    `<tbody>`,
    ...rows.map((r) => `<tr>${r.map((c) => cell('td', c)).join('')}</tr>`),
    `</tbody></table></div>`,
  ].join('\n');
}

function figure(c: Chart): string {
  return [
    `<figure id="plot-${esc(c.id)}">`,
    `<h3>${esc(c.title)}</h3>`,
    `<div class="plot" role="img" aria-label="${esc(c.title)}">${inlineSvg(c.svg, `p-${c.id}`)}</div>`,
    `<figcaption>${inline(c.caption)}</figcaption>`,
    `</figure>`,
  ].join('\n');
}

export function renderHtml(content: ReportContent): string {
  const { data, results } = content;
  const sections: Array<{ id: string; title: string; body: string }> = [];
  const winChart = content.charts.find((c) => c.id === 'win-rate');
  const otherCharts = content.charts.filter((c) => c.id !== 'win-rate');

  // Summary: the verdicts first, with the plot they come from.
  {
    const parts: string[] = [];
    if (results.headline) parts.push(`<p class="headline">${esc(results.headline)}</p>`);
    if (results.verdicts.length > 0) {
      parts.push('<ul class="verdicts">');
      for (const v of results.verdicts) {
        const badge = { beats: 'beats', loses: 'loses', 'no-difference': 'no sig. difference', 'no-data': 'no data', baseline: 'baseline' }[v.outcome];
        parts.push(`<li><span class="badge ${v.outcome}">${badge}</span>${esc(v.text)}</li>`);
      }
      parts.push('</ul>');
    }
    if (data.kind === 'sweep') {
      const rule = results.metric;
      const items: string[] = [];
      if (results.best.run) {
        items.push(`<li><strong>Best run</strong> by ${inline(describeMetric(rule))}: ${code(results.best.run.run)} with <strong>${esc(fmtMetric(rule.key, results.best.run.value))}</strong>.</li>`);
        if (results.best.group) {
          items.push(
            `<li><strong>Best variant</strong> (mean over its succeeded seeds): ${code(results.best.group.group)} with <strong>${esc(fmtMetric(rule.key, results.best.group.value))}</strong> (n = ${results.best.group.n}).</li>`,
          );
        }
      } else {
        items.push(`<li><strong>Best run:</strong> none — no succeeded run has a finite ${code(rule.key)}.</li>`);
      }
      const failed = failures(data);
      if (failed.length > 0) items.push(`<li><strong>Not succeeded:</strong> ${failed.length} run${failed.length === 1 ? '' : 's'} — see <a href="#failures">Failed and unfinished runs</a>.</li>`);
      parts.push(`<ul class="facts-list">${items.join('')}</ul>`);
    }
    if (winChart) parts.push(figure(winChart));
    sections.push({ id: 'summary', title: 'Summary', body: parts.join('\n') });
  }

  if (data.kind === 'sweep' && results.rows.length > 0) {
    const metrics = visibleMetrics(results);
    const parts: string[] = [
      '<p class="note">Final values: the last logged training step (loss, reward margin and accuracy, β), the last evaluation (eval loss), the judgment against the baseline (win rate with its Wilson 95 % CI, length-controlled win rate) and the mean KL of the evaluation samples. ★ marks the best by the metric in the summary.</p>',
    ];
    if (results.has_seeds) {
      const keys = results.varied_keys.filter((k) => k !== 'training.seed');
      parts.push('<h3 id="variants">Variants — mean ± 95 % CI across seeds</h3>');
      parts.push('<p class="note">Runs that differ only in <code>training.seed</code>, over their succeeded runs; ± is the half-width of the Student-t 95 % interval (none for a single run).</p>');
      parts.push(
        table(
          [{ text: 'variant' }, ...keys.map((k) => ({ text: k })), { text: 'runs ok', num: true }, ...metrics.map((m) => ({ text: metricTitle(m), num: true }))],
          results.groups.map((g) => [
            { text: g.group, cls: g.group === results.best.group?.group ? 'best' : '' },
            ...keys.map((k) => ({ text: fmtValue(g.varied[k]) })),
            { text: `${g.succeeded}/${g.runs.length}`, num: true },
            ...metrics.map((m) => {
              const { mean, pm, unit } = splitEstimate(m, g.metrics[m]);
              return { text: `${esc(mean + unit)}${pm ? `<span class="sub">${esc(pm)}</span>` : ''}`, html: true, num: true };
            }),
          ]),
        ),
      );
    }
    parts.push('<h3 id="runs">Runs</h3>');
    const head: Cell[] = [{ text: 'run' }, { text: 'state' }, ...results.varied_keys.map((k) => ({ text: k })), { text: 'step', num: true }];
    for (const m of metrics) head.push({ text: m === 'win_rate' ? 'win rate (95 % CI)' : metricTitle(m), num: true });
    parts.push(
      table(
        head,
        results.rows.map((r) => {
          const cells: Cell[] = [
            { text: r.run, cls: r.id === results.best.run?.id ? 'best' : '' },
            { text: `<span class="state ${r.state}">${esc(r.state === 'missing' ? 'not started' : r.state)}</span>`, html: true },
            ...results.varied_keys.map((k) => ({ text: fmtValue(r.varied[k]) })),
            { text: r.total ? `${r.step}/${r.total}` : String(r.step), num: true },
          ];
          for (const m of metrics) {
            const ci = m === 'win_rate' && r.win_rate_ci ? `<span class="sub">${esc(fmtCI(r.win_rate_ci, true))}</span>` : '';
            cells.push({ text: `${esc(fmtMetric(m, r.metrics[m]))}${ci}`, html: true, num: true });
          }
          return cells;
        }),
        'results',
      ),
    );
    parts.push('<p class="note">Also in <code>results.csv</code> (one row per run) and <code>variants.csv</code> (one row per variant).</p>');
    sections.push({ id: 'results', title: 'Results', body: parts.join('\n') });
  }

  const jrows = judgeRows(data);
  if (jrows.length > 0) {
    const parts: string[] = [];
    const head: Cell[] = [
      ...(data.kind === 'sweep' ? [{ text: 'run' }] : []),
      { text: 'baseline' },
      { text: 'pairs', num: true },
      { text: 'W / L / T', num: true },
      { text: 'invalid', num: true },
      { text: 'win rate', num: true },
      { text: '95 % CI', num: true },
      { text: 'LC', num: true },
      { text: 'P(first)', num: true },
      { text: 'P(longer)', num: true },
      { text: 'requests', num: true },
      { text: 'cost', num: true },
    ];
    parts.push(
      table(
        head,
        jrows.map((j) => [
          ...(data.kind === 'sweep' ? [{ text: j.run ?? DASH }] : []),
          { text: j.baseline },
          { text: fmtNum(j.n_pairs), num: true },
          { text: `${fmtNum(j.wins)} / ${fmtNum(j.losses)} / ${fmtNum(j.ties)}`, num: true },
          { text: fmtNum(j.invalid), num: true },
          { text: fmtPct(j.win_rate), num: true },
          { text: fmtCI(j.ci, true), num: true },
          { text: fmtPct(j.lc), num: true },
          { text: fmtPct(j.p_first), num: true },
          { text: fmtPct(j.p_longer), num: true },
          { text: j.requests === null ? DASH : `${j.requests}${j.cache_hits ? ` (+${j.cache_hits} cached)` : ''}`, num: true },
          { text: j.cost_usd === null ? DASH : `$${j.cost_usd.toFixed(4)}`, num: true },
        ]),
      ),
    );
    const first = jrows[0]!;
    parts.push(
      `<p class="note">Preset ${code(first.preset ?? DASH)}, judge model ${code(first.model ?? DASH)}. Win rate = (wins + ties/2) / (wins + losses + ties), invalid pairs excluded. LC: length-controlled win rate. P(first) near 50 % means no position bias; P(longer) far from 50 % means the judge favours length.</p>`,
    );
    const warnings = judgeWarnings(data);
    if (warnings.length > 0) parts.push(`<div class="callout"><strong>Judge warnings</strong><ul>${warnings.map((w) => `<li>${esc(w)}</li>`).join('')}</ul></div>`);
    sections.push({ id: 'judge', title: 'Judge', body: parts.join('\n') });
  }

  if (otherCharts.length > 0) {
    sections.push({ id: 'plots', title: data.kind === 'sweep' ? 'Training curves' : 'Plots', body: otherCharts.map(figure).join('\n') });
  }

  if (data.kind === 'sweep') {
    const failed = failures(data);
    const body =
      failed.length === 0
        ? '<p>Every run succeeded.</p>'
        : [
            table(
              [{ text: 'run' }, { text: 'state' }, { text: 'error class' }, { text: 'step', num: true }, { text: 'attempt', num: true }, { text: 'log' }, { text: 'error' }],
              failed.map((r) => [
                { text: r.name },
                { text: `<span class="state ${r.state}">${esc(r.state === 'missing' ? 'not started' : r.state)}</span>`, html: true },
                { text: r.error_class ?? DASH },
                { text: r.total ? `${r.step}/${r.total}` : String(r.step), num: true },
                { text: String(r.attempt), num: true },
                { text: r.log ? code(r.log) : DASH, html: true },
                { text: firstLine(r.error, 200) || DASH, cls: 'wrap' },
              ]),
              'failures',
            ),
          ].join('\n');
    sections.push({ id: 'failures', title: 'Failed and unfinished runs', body });
  }

  const ex = content.examples;
  if (ex && ex.examples.length > 0) {
    const parts = [
      `<p class="note">Judged pairs of ${code(ex.a)} (A) against ${code(ex.baseline)} (B)${ex.judge_dir === '.' ? '' : `, from ${code(ex.judge_dir)}`}: up to two wins, two losses and one tie of A, taken in order of pair hash — not picked by hand. Long texts are cut at ${EXAMPLE_CHARS} characters.</p>`,
    ];
    if (ex.note) parts.push(`<div class="callout">${esc(ex.note)}.</div>`);
    ex.examples.forEach((e, i) => parts.push(htmlExample(e, i + 1, ex.a, ex.baseline)));
    sections.push({ id: 'examples', title: 'Examples', body: parts.join('\n') });
  }

  sections.push({
    id: 'method',
    title: 'Method',
    body: `<ul class="method">
<li><strong>Verdicts.</strong> A variant <em>beats</em> the baseline only when the lower end of its 95 % win-rate interval is above 50 %, and <em>loses</em> only when the upper end is below 50 %; otherwise there is <em>no significant difference</em>. One judged run: the Wilson interval of its pairs; several seeds: the Student-t interval of the seeds' win rates.</li>
<li><strong>Variants.</strong> Runs that differ only in <code>training.seed</code>; means and t-intervals use succeeded runs only.</li>
<li><strong>Best run.</strong> Higher is better for win rates, accuracies and margins; lower for names containing loss, kl, nll, perplexity, ppl or error. <code>report.metric: -name</code> / <code>+name</code> forces the direction. Only succeeded runs with a finite value compete.</li>
<li>Details: <code>docs/reports.md</code>.</li>
</ul>`,
  });
  if (data.warnings.length > 0) {
    sections.push({ id: 'problems', title: 'Reading problems', body: `<ul>${data.warnings.map((w) => `<li>${esc(w)}</li>`).join('')}</ul>` });
  }

  const title = `${data.kind === 'sweep' ? 'Sweep' : 'Judge'} report: ${data.name}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
<header>
<p class="eyebrow">dpo-sweep · ${data.kind === 'sweep' ? 'sweep report' : 'judge report'}</p>
<h1>${esc(data.name)}</h1>
${headerFacts(content)}
</header>
<nav class="toc" aria-label="Contents">
<h2>Contents</h2>
<ol>
${sections.map((s) => `<li><a href="#${s.id}">${esc(s.title)}</a></li>`).join('\n')}
</ol>
</nav>
${sections.map((s) => `<section id="${s.id}">\n<h2>${esc(s.title)}</h2>\n${s.body}\n</section>`).join('\n')}
</main>
</body>
</html>
`;
}

function headerFacts({ data }: ReportContent): string {
  const rows: Array<[string, string]> = [];
  if (data.kind === 'sweep') {
    const s = data.sweep;
    rows.push(['runs', esc(runCounts(data))]);
    if (s?.plan_file) rows.push(['plan', `${code(s.plan_file)}${s.plan_hash ? ` <span class="muted">sha256 ${esc(s.plan_hash.slice(0, 12))}</span>` : ''}`]);
    if (s?.updated) rows.push(['updated', esc(s.updated)]);
    if (data.judge_config) {
      const j = data.judge_config;
      rows.push(['judge', `preset ${code(j.preset ?? DASH)}, baseline ${code(j.baseline ?? DASH)}${j.model ? `, model ${code(j.model)}` : ''}`]);
    }
  } else {
    const s = data.judge!.summary;
    rows.push(['A', `${code(s.a?.generator ?? 'A')} <span class="muted">${esc(s.a?.path ?? '')}</span>`]);
    rows.push(['B', `${code(s.b?.generator ?? 'B')} <span class="muted">${esc(s.b?.path ?? '')}</span>`]);
    rows.push(['judge', `preset ${code(s.preset ?? DASH)}, model ${code(s.model ?? DASH)}${s.both_orders ? ', both orders' : ''}`]);
  }
  return `<dl class="facts">${rows.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${v}</dd>`).join('')}</dl>`;
}

function htmlExample(e: Example, n: number, a: string, b: string): string {
  const title = e.kind === 'win' ? `${a} wins` : e.kind === 'loss' ? `${b} wins` : 'tie';
  const parts = [
    `<article class="example ${e.kind}">`,
    `<h3>Example ${n} <span class="badge ${e.kind === 'win' ? 'beats' : e.kind === 'loss' ? 'loses' : 'no-difference'}">${esc(title)}</span>${e.inconsistent ? ' <span class="muted">(the two orders disagreed)</span>' : ''}</h3>`,
    `<p class="label">Instruction <span class="muted">pair ${esc(e.pair)}</span></p>`,
    `<pre class="text">${esc(clip(e.instruction, EXAMPLE_CHARS))}</pre>`,
  ];
  if (e.output_a !== null && e.output_b !== null) {
    parts.push(
      '<div class="pair">',
      `<div><p class="label">A — ${esc(a)}</p><pre class="text">${esc(clip(e.output_a, EXAMPLE_CHARS))}</pre></div>`,
      `<div><p class="label">B — ${esc(b)}</p><pre class="text">${esc(clip(e.output_b, EXAMPLE_CHARS))}</pre></div>`,
      '</div>',
    );
  } else {
    parts.push('<p class="muted">Outputs not available (see the note above).</p>');
  }
  for (const j of e.judgments) {
    parts.push(`<p class="label">Judge <span class="muted">${j.order === 'ab' ? 'A shown first' : 'B shown first'}</span> → ${esc(verdictWord(j.verdict, a, b))}</p>`);
    parts.push(j.raw === null ? '<p class="muted">No reply text (rule preset or no reply).</p>' : `<pre class="judge">${esc(clip(j.raw, EXAMPLE_CHARS))}</pre>`);
  }
  parts.push('</article>');
  return parts.join('\n');
}

const CSS = `
:root { --fg: #1f2937; --muted: #6b7280; --border: #e5e7eb; --alt: #f9fafb; --accent: #1d4ed8; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; color: var(--fg); background: #fff; font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1200px; margin: 0 auto; padding: 36px 32px 72px; }
h1 { font-size: 30px; line-height: 1.2; margin: 2px 0 14px; letter-spacing: -0.01em; }
h2 { font-size: 21px; margin: 44px 0 14px; padding-bottom: 6px; border-bottom: 1px solid var(--border); }
h3 { font-size: 16px; margin: 26px 0 8px; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; font-size: 12.5px; }
code { background: var(--alt); border: 1px solid var(--border); border-radius: 4px; padding: 0 4px; }
.eyebrow { margin: 0; font-size: 12px; letter-spacing: .08em; text-transform: uppercase; color: var(--muted); }
.muted { color: var(--muted); }
.note { color: #4b5563; font-size: 13.5px; max-width: 80ch; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 18px; margin: 0; font-size: 14px; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
nav.toc { margin: 26px 0 0; padding: 12px 18px; background: var(--alt); border: 1px solid var(--border); border-radius: 8px; display: inline-block; min-width: 260px; }
nav.toc h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); margin: 0 0 4px; padding: 0; border: 0; }
nav.toc ol { margin: 0; padding-left: 20px; columns: 2; column-gap: 36px; }
.headline { font-size: 17px; font-weight: 600; margin: 6px 0 10px; }
ul.verdicts { list-style: none; padding: 0; margin: 0 0 14px; }
ul.verdicts li { margin: 6px 0; }
ul.facts-list { padding-left: 20px; margin: 8px 0 0; }
.badge { display: inline-block; width: 132px; text-align: center; font-size: 11.5px; font-weight: 650; padding: 1px 8px; margin-right: 10px; border-radius: 999px; background: #f3f4f6; color: #374151; vertical-align: 1px; }
.badge.beats { background: #dcfce7; color: #166534; }
.badge.loses { background: #fee2e2; color: #991b1b; }
.badge.no-difference, .badge.no-data, .badge.baseline { background: #f3f4f6; color: #374151; }
h3 .badge { width: auto; margin-left: 8px; }
ul.verdicts li { display: flex; align-items: baseline; }
ul.verdicts .badge { flex: none; }
.table-wrap { overflow-x: auto; margin: 8px 0 10px; border: 1px solid var(--border); border-radius: 8px; }
table { border-collapse: collapse; font-size: 12.5px; min-width: 100%; }
th, td { padding: 5px 7px; text-align: left; vertical-align: top; white-space: nowrap; border-bottom: 1px solid var(--border); }
thead th { background: var(--alt); font-weight: 600; color: #111827; border-bottom: 1px solid #d1d5db; white-space: normal; vertical-align: bottom; min-width: 3em; }
tbody tr:last-child td { border-bottom: 0; }
tbody tr:nth-child(even) td { background: #fcfcfd; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.wrap { white-space: normal; min-width: 260px; }
td .sub { display: block; font-size: 11px; color: var(--muted); }
td.best { font-weight: 650; }
td.best::after { content: " ★"; color: #b45309; }
.state { font-size: 12px; padding: 0 6px; border-radius: 4px; background: #f3f4f6; }
.state.succeeded { background: #ecfdf5; color: #065f46; }
.state.failed { background: #fef2f2; color: #991b1b; }
.state.cancelled, .state.missing, .state.queued { background: #f3f4f6; color: #4b5563; }
.state.running { background: #eff6ff; color: #1e40af; }
figure { margin: 18px 0 30px; break-inside: avoid; page-break-inside: avoid; }
figure h3 { margin-top: 8px; }
.plot svg { display: block; max-width: 100%; height: auto; }
figcaption { margin-top: 6px; color: var(--muted); font-size: 13px; max-width: 80ch; }
.callout { margin: 10px 0; padding: 8px 14px; border-left: 3px solid #f59e0b; background: #fffbeb; font-size: 13.5px; }
.callout ul { margin: 4px 0; padding-left: 18px; }
article.example { margin: 18px 0; padding: 6px 18px 10px; border: 1px solid var(--border); border-radius: 10px; break-inside: avoid; page-break-inside: avoid; }
article.example h3 { margin: 10px 0 6px; }
.label { margin: 10px 0 2px; font-size: 13px; font-weight: 600; }
pre { margin: 4px 0 8px; padding: 10px 12px; white-space: pre-wrap; overflow-wrap: anywhere; background: var(--alt); border: 1px solid var(--border); border-radius: 6px; line-height: 1.45; }
pre.judge { background: #f8fafc; border-style: dashed; }
pre.text { font-family: inherit; font-size: 14px; line-height: 1.5; }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 14px; }
ul.method li { margin: 4px 0; max-width: 90ch; }
@media (max-width: 760px) { main { padding: 20px 16px 48px; } .pair { grid-template-columns: 1fr; } nav.toc ol { columns: 1; } }
@media print {
  body { font-size: 11pt; }
  main { max-width: none; padding: 0; }
  a { color: inherit; }
  h2 { break-after: avoid; page-break-after: avoid; }
  .table-wrap { overflow: visible; border: 0; }
  th, td { white-space: normal; }
  nav.toc { display: none; }
}
`;
