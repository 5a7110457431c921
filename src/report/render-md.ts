/**
 * `report.md`: the report as Markdown (GitHub-flavoured tables). Plots are referenced as
 * `plots/<id>.svg`, written beside it. Pure: a function of the report content.
 */
import type { Example } from './aggregate.js';
import {
  clip,
  describeMetric,
  DASH,
  failures,
  firstLine,
  fmtCI,
  fmtEstimate,
  fmtMetric,
  fmtNum,
  fmtPct,
  fmtValue,
  judgeRows,
  judgeWarnings,
  metricTitle,
  runCounts,
  verdictWord,
  visibleMetrics,
  type ReportContent,
} from './format.js';

const EXAMPLE_CHARS = 1200;

/** Escapes what would break a table cell or start markup. */
export function mdCell(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

const code = (s: string) => `\`${s.replace(/`/g, 'ˋ')}\``;

function table(head: string[], rows: string[][], align?: Array<'l' | 'r'>): string[] {
  const sep = head.map((_, i) => ((align?.[i] ?? 'l') === 'r' ? '---:' : '---'));
  return [`| ${head.map(mdCell).join(' | ')} |`, `| ${sep.join(' | ')} |`, ...rows.map((r) => `| ${r.map(mdCell).join(' | ')} |`)];
}

/** A fenced block that no backtick run inside the text can close. */
function fence(text: string, lang = 'text'): string[] {
  const longest = Math.max(2, ...[...text.matchAll(/`+/g)].map((m) => m[0].length));
  const f = '`'.repeat(longest + 1);
  return [`${f}${lang}`, text, f];
}

export function renderMarkdown(content: ReportContent, options: { plotsDir?: string | null } = {}): string {
  const { data, results } = content;
  const plotsDir = options.plotsDir === undefined ? 'plots' : options.plotsDir;
  const out: string[] = [];
  const push = (...lines: string[]) => out.push(...lines);

  push(`# ${data.kind === 'sweep' ? 'Sweep' : 'Judge'} report: ${data.name}`, '');
  if (data.kind === 'sweep') {
    const s = data.sweep;
    const facts = [
      `- **Runs:** ${runCounts(data)}`,
      s?.plan_file ? `- **Plan:** ${code(s.plan_file)}${s.plan_hash ? ` (sha256 ${code(s.plan_hash.slice(0, 12))})` : ''}` : null,
      s?.updated ? `- **Updated:** ${s.updated}` : null,
      data.judge_config
        ? `- **Judge:** preset ${code(data.judge_config.preset ?? DASH)}, baseline ${code(data.judge_config.baseline ?? DASH)}${data.judge_config.model ? `, model ${code(data.judge_config.model)}` : ''}`
        : null,
    ].filter((l): l is string => l !== null);
    push(...facts, '');
  } else {
    const s = data.judge!.summary;
    push(
      `- **A:** ${code(s.a?.generator ?? 'A')} (${code(s.a?.path ?? DASH)})`,
      `- **B:** ${code(s.b?.generator ?? 'B')} (${code(s.b?.path ?? DASH)})`,
      `- **Judge:** preset ${code(s.preset ?? DASH)}, model ${code(s.model ?? DASH)}${s.both_orders ? ', both orders' : ''}`,
      '',
    );
  }

  push('## Summary', '');
  if (results.headline) push(`**${results.headline}**`, '');
  for (const v of results.verdicts) push(`- ${v.text}`);
  if (results.verdicts.length > 0) push('');
  if (data.kind === 'sweep') {
    const rule = results.metric;
    if (results.best.run) {
      push(`- **Best run** by ${describeMetric(rule)}: ${code(results.best.run.run)} with ${fmtMetric(rule.key, results.best.run.value)}.`);
      if (results.best.group) {
        push(`- **Best variant** (mean over its succeeded seeds): ${code(results.best.group.group)} with ${fmtMetric(rule.key, results.best.group.value)} (n = ${results.best.group.n}).`);
      }
    } else {
      push(`- **Best run:** none — no succeeded run has a finite ${code(rule.key)}${rule.requested ? ` (the plan's \`report.metric: ${rule.requested}\`)` : ''}.`);
    }
    const failed = failures(data);
    if (failed.length > 0) push(`- **Not succeeded:** ${failed.length} run${failed.length === 1 ? '' : 's'} (see [Failed and unfinished runs](#failed-and-unfinished-runs)).`);
    push('');
  }

  if (data.kind === 'sweep' && results.rows.length > 0) {
    const metrics = visibleMetrics(results);
    push('## Results', '');
    push(
      'Final values: the last logged training step (`loss`, reward margin and accuracy, β), the last evaluation (`eval loss`), the judgment against the baseline (win rate with its Wilson 95 % CI, length-controlled win rate) and the mean KL of the evaluation samples.',
      '',
    );
    if (results.has_seeds) {
      const keys = results.varied_keys.filter((k) => k !== 'training.seed');
      push('### Variants (mean ± 95 % CI across seeds)', '');
      push(
        'Runs that differ only in `training.seed`, averaged over their succeeded runs; ± is the half-width of the Student-t 95 % interval (none for one run).',
        '',
      );
      push(
        ...table(
          ['variant', ...keys, 'runs ok', ...metrics.map(metricTitle)],
          results.groups.map((g) => [
            g.group === results.best.group?.group ? `${g.group} ★` : g.group,
            ...keys.map((k) => fmtValue(g.varied[k])),
            `${g.succeeded}/${g.runs.length}`,
            ...metrics.map((m) => fmtEstimate(m, g.metrics[m])),
          ]),
          ['l', ...keys.map(() => 'l' as const), 'r', ...metrics.map(() => 'r' as const)],
        ),
        '',
      );
    }
    push('### Runs', '');
    const head = ['run', 'state', ...results.varied_keys, 'step', ...metrics.map(metricTitle)];
    if (metrics.includes('win_rate')) head.splice(head.indexOf('win rate') + 1, 0, 'win rate 95 % CI');
    push(
      ...table(
        head,
        results.rows.map((r) => {
          const cells = [
            r.id === results.best.run?.id ? `${r.run} ★` : r.run,
            r.state === 'missing' ? 'not started' : r.state,
            ...results.varied_keys.map((k) => fmtValue(r.varied[k])),
            r.total ? `${r.step}/${r.total}` : String(r.step),
            ...metrics.map((m) => fmtMetric(m, r.metrics[m])),
          ];
          if (metrics.includes('win_rate')) cells.splice(head.indexOf('win rate 95 % CI'), 0, fmtCI(r.win_rate_ci, true));
          return cells;
        }),
        head.map((h) => (h === 'run' || h === 'state' || results.varied_keys.includes(h) ? 'l' : 'r')),
      ),
      '',
    );
    push('★ best by the metric above. The same table is in `results.csv` (per run) and `variants.csv` (per variant).', '');
  }

  const jrows = judgeRows(data);
  if (jrows.length > 0) {
    push('## Judge', '');
    const head = ['run', 'baseline', 'pairs', 'W / L / T', 'invalid', 'win rate', '95 % CI', 'LC', 'P(first)', 'P(longer)', 'cost'];
    if (data.kind === 'judge') head.shift();
    push(
      ...table(
        head,
        jrows.map((j) => {
          const cells = [
            j.baseline,
            fmtNum(j.n_pairs),
            `${fmtNum(j.wins)} / ${fmtNum(j.losses)} / ${fmtNum(j.ties)}`,
            fmtNum(j.invalid),
            fmtPct(j.win_rate),
            fmtCI(j.ci, true),
            fmtPct(j.lc),
            fmtPct(j.p_first),
            fmtPct(j.p_longer),
            j.cost_usd === null ? DASH : `$${j.cost_usd.toFixed(4)}`,
          ];
          return data.kind === 'judge' ? cells : [j.run ?? DASH, ...cells];
        }),
        head.map((h) => (h === 'run' || h === 'baseline' ? 'l' : 'r')),
      ),
      '',
    );
    push(
      'Win rate = (wins + ties/2) / (wins + losses + ties); invalid pairs are excluded. LC: length-controlled win rate. P(first) near 50 % means no position bias; P(longer) far from 50 % means the judge favours length.',
      '',
    );
    const warnings = judgeWarnings(data);
    if (warnings.length > 0) push('Judge warnings:', '', ...warnings.map((w) => `- ${w}`), '');
  }

  if (content.charts.length > 0) {
    push('## Plots', '');
    for (const c of content.charts) {
      push(`### ${c.title}`, '');
      if (plotsDir !== null) push(`![${c.title}](${plotsDir}/${c.id}.svg)`, '');
      push(c.caption, '');
    }
  }

  if (data.kind === 'sweep') {
    const failed = failures(data);
    push('## Failed and unfinished runs', '');
    if (failed.length === 0) push('Every run succeeded.', '');
    else {
      push(
        ...table(
          ['run', 'state', 'error class', 'step', 'attempt', 'log', 'error'],
          failed.map((r) => [
            r.name,
            r.state === 'missing' ? 'not started' : r.state,
            r.error_class ?? DASH,
            r.total ? `${r.step}/${r.total}` : String(r.step),
            String(r.attempt),
            r.log ?? DASH,
            firstLine(r.error) || DASH,
          ]),
        ),
        '',
      );
    }
  }

  const ex = content.examples;
  if (ex && ex.examples.length > 0) {
    push('## Examples', '');
    push(
      `Judged pairs of ${code(ex.a)} (A) against ${code(ex.baseline)} (B)${ex.judge_dir === '.' ? '' : `, from ${code(ex.judge_dir)}`}: up to two wins, two losses and one tie of A, taken in order of pair hash (not picked by hand). Long texts are cut at ${EXAMPLE_CHARS} characters.`,
      '',
    );
    if (ex.note) push(`Note: ${ex.note}.`, '');
    ex.examples.forEach((e, i) => push(...mdExample(e, i + 1, ex.a, ex.baseline), ''));
  }

  push('## Method', '');
  push(
    '- Verdicts: a variant **beats** the baseline only when the lower end of its 95 % win-rate interval is above 50 %, **loses** only when the upper end is below 50 %; otherwise there is **no significant difference**. One judged run: the Wilson interval of its pairs; several seeds: the Student-t interval of the seeds\' win rates.',
    '- Variants: runs that differ only in `training.seed`; means and t-intervals use succeeded runs only.',
    '- Best run: higher is better for win rates, accuracies and margins, lower for names containing loss, kl, nll, perplexity, ppl or error; `report.metric: -name` / `+name` forces the direction. Only succeeded runs with a finite value compete.',
    '- Details: `docs/reports.md`.',
    '',
  );
  if (data.warnings.length > 0) push('## Reading problems', '', ...data.warnings.map((w) => `- ${w}`), '');
  return `${out.join('\n').replace(/\n{3,}/g, '\n\n').trimEnd()}\n`;
}

function mdExample(e: Example, n: number, a: string, b: string): string[] {
  const title = e.kind === 'win' ? `${a} wins` : e.kind === 'loss' ? `${b} wins` : 'tie';
  const out = [`### Example ${n}: ${title}${e.inconsistent ? ' (the two orders disagreed)' : ''}`, '', `**Instruction** (pair ${code(e.pair)}):`, '', ...fence(clip(e.instruction, EXAMPLE_CHARS)), ''];
  if (e.output_a !== null && e.output_b !== null) {
    out.push(`**A — ${a}:**`, '', ...fence(clip(e.output_a, EXAMPLE_CHARS)), '', `**B — ${b}:**`, '', ...fence(clip(e.output_b, EXAMPLE_CHARS)), '');
  } else {
    out.push('_Outputs not available (see the note above)._', '');
  }
  for (const j of e.judgments) {
    out.push(`**Judge** (${j.order === 'ab' ? 'A shown first' : 'B shown first'}): ${verdictWord(j.verdict, a, b)}`, '');
    out.push(...(j.raw === null ? ['_no reply text (rule preset or no reply)_'] : fence(clip(j.raw, EXAMPLE_CHARS))), '');
  }
  return out;
}
