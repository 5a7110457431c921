/**
 * The report's plots: vega-lite specs built from the data, rendered to SVG strings in Node
 * (`vega-lite` compile → `vega` View with the `none` renderer → `toSVG`). Inline data only: no URL
 * is loaded, no font fetched (text is measured by vega's built-in estimate).
 *
 * Each builder returns null when there is nothing to draw, so the report never shows an empty plot.
 */
import { Error as VegaLogError, parse, View } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { ReportData, RunData } from './collect.js';
import type { Outcome, Results } from './aggregate.js';

export interface Chart {
  /** File stem and HTML anchor: `win-rate`, `loss`, … */
  id: string;
  title: string;
  /** One or two sentences saying what is drawn and how to read it. */
  caption: string;
  svg: string;
}

export const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';

/** Tableau-10 without its red and green, which mean "loses" and "beats" in the win-rate plot. */
const PALETTE = ['#4e79a7', '#f28e2b', '#b07aa1', '#76b7b2', '#edc948', '#9c755f', '#ff9da7', '#bab0ac', '#1f77b4', '#8c564b', '#17becf', '#bcbd22'];

const OUTCOME_COLORS: Record<Outcome, string> = {
  beats: '#15803d',
  loses: '#b91c1c',
  'no-difference': '#6b7280',
  'no-data': '#9ca3af',
  baseline: '#9ca3af',
};
const OUTCOME_LABELS: Record<Outcome, string> = {
  beats: 'beats baseline',
  loses: 'loses to baseline',
  'no-difference': 'no significant difference',
  'no-data': 'no valid judgments',
  baseline: 'baseline',
};

const CONFIG = {
  font: FONT,
  background: 'white',
  padding: 8,
  view: { stroke: null },
  axis: {
    labelFontSize: 11,
    titleFontSize: 12,
    titleFontWeight: 500,
    titleColor: '#1f2937',
    labelColor: '#374151',
    gridColor: '#e5e7eb',
    domainColor: '#9ca3af',
    tickColor: '#9ca3af',
    titlePadding: 8,
  },
  legend: { labelFontSize: 11, titleFontSize: 11, titleFontWeight: 600, labelLimit: 260, symbolSize: 80, titleColor: '#1f2937', labelColor: '#374151' },
  header: { labelFontSize: 11, labelColor: '#1f2937', labelFontWeight: 600, labelLimit: 240 },
  range: { category: PALETTE },
  line: { strokeWidth: 1.75 },
} as const;

const WIDTH = 560;

/** Renders one vega-lite spec to an SVG string (standalone: it keeps its xmlns). */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const vg = compile({ config: CONFIG, ...spec } as TopLevelSpec).spec;
  const view = new View(parse(vg), { renderer: 'none', logLevel: VegaLogError });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/**
 * An SVG made fit to sit inline in HTML next to others: no namespace URLs (implied in HTML), and
 * every id (vega's clip paths) prefixed so two plots can never share one.
 */
export function inlineSvg(svg: string, prefix: string): string {
  return svg
    .replace(/\s+xmlns(:xlink)?="[^"]*"/g, '')
    .replace(/\bid="([^"]+)"/g, (_m, id: string) => `id="${prefix}-${id}"`)
    .replace(/url\(#([^)]+)\)/g, (_m, id: string) => `url(#${prefix}-${id})`)
    .replace(/href="#([^"]+)"/g, (_m, id: string) => `href="#${prefix}-${id}"`);
}

const finite = (x: number | null | undefined): x is number => typeof x === 'number' && Number.isFinite(x);

/** Points drawn per run and curve at most; longer series are thinned evenly, the last point kept. */
export const MAX_POINTS = 400;

export function thin<T>(points: readonly T[], max = MAX_POINTS): T[] {
  if (points.length <= max) return [...points];
  const stride = Math.ceil(points.length / max);
  const out = points.filter((_, i) => i % stride === 0);
  if (out.at(-1) !== points.at(-1)) out.push(points.at(-1)!);
  return out;
}

type Row = Record<string, string | number>;

/** Every plot the data allows, in report order. */
export async function buildCharts(data: ReportData, results: Results): Promise<Chart[]> {
  const specs = [
    winRateChart(results),
    curveChart(data, 'loss', 'Loss', 'loss', { eval: 'eval_loss' }),
    curveChart(data, 'margin', 'Reward margin', 'rewards/margins', { zeroRule: true }),
    betaChart(data),
    marginBandChart(data),
    klChart(data, results),
  ].filter((c): c is Omit<Chart, 'svg'> & { spec: TopLevelSpec } => c !== null);
  const out: Chart[] = [];
  for (const { spec, ...chart } of specs) out.push({ ...chart, svg: await renderSvg(spec) });
  return out;
}

/** Win rate per variant: point and 95 % interval (the one its verdict uses), seeds as open circles. */
export function winRateChart(results: Results): (Omit<Chart, 'svg'> & { spec: TopLevelSpec }) | null {
  const verdicts = results.verdicts.filter((v) => v.win_rate !== null);
  if (verdicts.length === 0) return null;
  const order = verdicts.map((v) => v.group);
  const summary: Row[] = verdicts.map((v) => ({
    variant: v.group,
    win_rate: v.win_rate!,
    lo: v.ci?.[0] ?? v.win_rate!,
    hi: v.ci?.[1] ?? v.win_rate!,
    verdict: OUTCOME_LABELS[v.outcome],
  }));
  const seeds: Row[] = [];
  for (const g of results.groups) {
    if (g.runs.length < 2 || !order.includes(g.group)) continue;
    for (const r of results.rows) {
      if (g.runs.includes(r.run) && r.state === 'succeeded' && finite(r.metrics.win_rate)) seeds.push({ variant: g.group, win_rate: r.metrics.win_rate, run: r.run });
    }
  }
  const outcomes = [...new Set(verdicts.map((v) => v.outcome))];
  const y = { field: 'variant', type: 'nominal' as const, sort: order, title: null, axis: { labelLimit: 240, labelFontSize: 12 } };
  const baselines = [...new Set(verdicts.map((v) => v.baseline))].join(', ');
  const x = { type: 'quantitative' as const, scale: { domain: [0, 1] }, axis: { format: '.0%', tickCount: 10 }, title: `win rate vs ${baselines}` };
  const spec: TopLevelSpec = {
    description: 'Win rate against the baseline per variant, with 95 % confidence intervals',
    width: WIDTH,
    height: Math.max(60, 34 * verdicts.length),
    layer: [
      { data: { values: [{ x: 0.5 }] }, mark: { type: 'rule', strokeDash: [4, 4], color: '#6b7280' }, encoding: { x: { field: 'x', ...x } } },
      {
        data: { values: summary },
        mark: { type: 'errorbar', ticks: { size: 10, thickness: 2 }, thickness: 2.5 },
        encoding: {
          y,
          x: { field: 'lo', ...x },
          x2: { field: 'hi' },
          color: { field: 'verdict', type: 'nominal', scale: { domain: outcomes.map((o) => OUTCOME_LABELS[o]), range: outcomes.map((o) => OUTCOME_COLORS[o]) }, legend: { title: 'verdict', orient: 'bottom' } },
        },
      },
      ...(seeds.length > 0
        ? [
            {
              data: { values: seeds },
              mark: { type: 'point' as const, shape: 'circle', size: 36, filled: false, color: '#374151', strokeWidth: 1, opacity: 0.8 },
              encoding: { y, x: { field: 'win_rate', ...x } },
            },
          ]
        : []),
      {
        data: { values: summary },
        mark: { type: 'point', filled: true, size: 90, shape: 'diamond' },
        encoding: { y, x: { field: 'win_rate', ...x }, color: { field: 'verdict', type: 'nominal' } },
      },
    ],
    resolve: { scale: { color: 'shared' } },
  } as TopLevelSpec;
  return {
    id: 'win-rate',
    title: 'Win rate against the baseline',
    caption:
      seeds.length > 0
        ? 'Diamond: win rate (ties count ½); bar: its 95 % confidence interval — Wilson for a variant with one judged run, a t-interval across seeds for several (open circles are the seeds). The dashed line is 50 %.'
        : 'Diamond: win rate (ties count ½); bar: its 95 % Wilson confidence interval. The dashed line is 50 %.',
    spec,
  };
}

/** One line per run over optimizer steps; optional eval points as a dashed line. */
export function curveChart(
  data: ReportData,
  id: string,
  title: string,
  metric: string,
  options: { eval?: string; zeroRule?: boolean } = {},
): (Omit<Chart, 'svg'> & { spec: TopLevelSpec }) | null {
  const rows: Row[] = [];
  for (const run of data.runs) {
    for (const p of thin(run.steps.filter((x) => finite(x.metrics[metric])))) {
      rows.push({ run: run.name, step: p.step, value: p.metrics[metric]!, split: 'train' });
    }
    const evalKey = options.eval;
    if (evalKey) {
      for (const p of run.evals) {
        const value = p.metrics[evalKey];
        if (finite(value)) rows.push({ run: run.name, step: p.step, value, split: 'eval' });
      }
    }
  }
  if (rows.length === 0) return null;
  const hasEval = rows.some((r) => r.split === 'eval');
  const runs = data.runs.filter((r) => rows.some((x) => x.run === r.name)).map((r) => r.name);
  const layers: unknown[] = [];
  if (options.zeroRule) layers.push({ data: { values: [{ y: 0 }] }, mark: { type: 'rule', color: '#9ca3af', strokeDash: [2, 3] }, encoding: { y: { field: 'y', type: 'quantitative' } } });
  layers.push({
    data: { values: rows },
    mark: { type: 'line', point: hasEval ? false : rows.length / runs.length <= 12 ? { size: 16 } : false, interpolate: 'linear' },
    encoding: {
      x: { field: 'step', type: 'quantitative', title: 'optimizer step' },
      y: { field: 'value', type: 'quantitative', title, scale: { zero: false } },
      color: { field: 'run', type: 'nominal', sort: runs, title: 'run' },
      ...(hasEval ? { strokeDash: { field: 'split', type: 'nominal', title: null, scale: { domain: ['train', 'eval'], range: [[1, 0], [5, 3]] } } } : {}),
      detail: { field: 'split', type: 'nominal' },
    },
  });
  const skipped = data.runs.filter((r) => r.steps.some((p) => p.metrics[metric] !== undefined && !finite(p.metrics[metric]))).map((r) => r.name);
  return {
    id,
    title: `${title} per run`,
    caption:
      `${title} (\`${metric}\`) at each logged optimizer step${hasEval ? `; dashed: ${options.eval} at each evaluation` : ''}.` +
      (skipped.length > 0 ? ` Non-finite values are not drawn (${skipped.join(', ')}).` : ''),
    spec: { description: `${title} per run`, width: WIDTH, height: 260, layer: layers } as TopLevelSpec,
  };
}

/** The β a run trains with, over steps: the margins log (denser) or the step events. */
export function betaSeries(run: RunData): Array<{ step: number; beta: number }> {
  const fromMargins = run.margins.filter((m) => finite(m.beta)).map((m) => ({ step: m.step, beta: m.beta! }));
  if (fromMargins.length > 0) return fromMargins;
  return run.steps.filter((p) => finite(p.metrics.beta)).map((p) => ({ step: p.step, beta: p.metrics.beta! }));
}

/** β trajectories of the runs whose β moves (dynamic-β, β-DPO); null when every β is constant. */
export function betaChart(data: ReportData): (Omit<Chart, 'svg'> & { spec: TopLevelSpec }) | null {
  const rows: Row[] = [];
  for (const run of data.runs) {
    const series = betaSeries(run);
    if (new Set(series.map((s) => s.beta)).size < 2) continue;
    for (const s of thin(series)) rows.push({ run: run.name, step: s.step, beta: s.beta });
  }
  if (rows.length === 0) return null;
  return {
    id: 'beta',
    title: 'β trajectories',
    caption: 'β in force at each step, from the margins log (`beta` for dynamic-β, `beta_used` for β-DPO). Runs with a constant β are left out.',
    spec: {
      description: 'beta per step for adaptive runs',
      width: WIDTH,
      height: 240,
      data: { values: rows },
      mark: { type: 'line', interpolate: 'step-after' },
      encoding: {
        x: { field: 'step', type: 'quantitative', title: 'optimizer step' },
        y: { field: 'beta', type: 'quantitative', title: 'β', scale: { zero: false } },
        color: { field: 'run', type: 'nominal', title: 'run' },
      },
    } as TopLevelSpec,
  };
}

/** Per run: the p10–p90 band of the batch's reward margins and its median, from margins.jsonl. */
export function marginBandChart(data: ReportData): (Omit<Chart, 'svg'> & { spec: TopLevelSpec }) | null {
  const rows: Row[] = [];
  for (const run of data.runs) {
    for (const m of thin(run.margins.filter((x) => finite(x.p10) && finite(x.median) && finite(x.p90)))) {
      rows.push({ run: run.name, step: m.step, p10: m.p10!, median: m.median!, p90: m.p90! });
    }
  }
  if (rows.length === 0) return null;
  const runs = data.runs.filter((r) => rows.some((x) => x.run === r.name)).map((r) => r.name);
  const columns = Math.min(3, runs.length);
  const width = columns === 1 ? WIDTH : Math.floor(900 / columns) - 70;
  return {
    id: 'margin-quantiles',
    title: 'Margin quantiles per step',
    caption: 'Implicit reward margin of each pair in the batch (policy vs reference log-ratio gap): band from the 10th to the 90th percentile, line at the median, per optimizer step. All panels share one scale.',
    spec: {
      description: 'margin quantile bands per run',
      data: { values: rows },
      facet: { field: 'run', type: 'nominal', sort: runs, title: null },
      columns,
      spec: {
        width,
        height: 120,
        layer: [
          { mark: { type: 'rule', color: '#9ca3af', strokeDash: [2, 3] }, encoding: { y: { datum: 0, type: 'quantitative' } } },
          {
            mark: { type: 'area', opacity: 0.25, color: '#4e79a7' },
            encoding: {
              x: { field: 'step', type: 'quantitative', title: 'step' },
              y: { field: 'p10', type: 'quantitative', title: 'margin' },
              y2: { field: 'p90' },
            },
          },
          {
            mark: { type: 'line', color: '#1f4e79', strokeWidth: 1.5 },
            encoding: { x: { field: 'step', type: 'quantitative' }, y: { field: 'median', type: 'quantitative' } },
          },
        ],
      },
    } as TopLevelSpec,
  };
}

/** Win rate (or mean reward) against mean KL to the reference, one point per judged run. */
export function klChart(data: ReportData, results: Results): (Omit<Chart, 'svg'> & { spec: TopLevelSpec }) | null {
  const judged = results.rows.some((r) => finite(r.metrics.win_rate) && finite(r.metrics.kl));
  const rows: Row[] = [];
  for (const run of data.runs) {
    const row = results.rows.find((r) => r.id === run.id);
    const kl = run.rollouts?.mean_kl;
    const y = judged ? row?.metrics.win_rate : run.rollouts?.mean_reward;
    if (finite(kl) && finite(y)) rows.push({ run: run.name, variant: row?.group ?? run.name, kl, y });
  }
  if (rows.length === 0) return null;
  const yTitle = judged ? 'win rate' : 'mean reward';
  const variants = [...new Set(rows.map((r) => r.variant as string))];
  return {
    id: 'reward-vs-kl',
    title: `${judged ? 'Win rate' : 'Reward'} vs KL`,
    caption: `Each point is a run: mean KL to the reference over its evaluation samples (\`kl\` in rollouts/eval.json) against its ${judged ? 'win rate vs the baseline' : 'mean reward-model score'}.`,
    spec: {
      description: `${yTitle} against KL per run`,
      width: WIDTH,
      height: 260,
      data: { values: rows },
      layer: [
        {
          mark: { type: 'point', filled: true, size: 70, opacity: 0.9 },
          encoding: {
            x: { field: 'kl', type: 'quantitative', title: 'mean KL(policy ‖ reference)', scale: { zero: false, padding: 20 } },
            y: { field: 'y', type: 'quantitative', title: yTitle, scale: { zero: false, padding: 20 }, axis: judged ? { format: '.0%' } : {} },
            color: { field: 'variant', type: 'nominal', sort: variants, title: 'variant', legend: { orient: 'bottom' } },
          },
        },
        {
          mark: { type: 'text', align: 'left', dx: 7, dy: -6, fontSize: 10, color: '#374151' },
          encoding: { x: { field: 'kl', type: 'quantitative' }, y: { field: 'y', type: 'quantitative' }, text: { field: 'run' } },
        },
      ],
    } as TopLevelSpec,
  };
}
