/**
 * From `ReportData` to the results: one row per run (varied values and final metrics), runs that
 * differ only in `training.seed` grouped into variants (mean ± 95 % t-interval across seeds), the
 * best run and variant by the plan's metric, and one verdict per variant against the judge
 * baseline. Pure: every number and every verdict word is computed here from the data; nothing is
 * tuned, rounded before comparing, or left out because it looks bad.
 */
import { pairOutcomes } from '../judge/records.js';
import type { JudgeData, ReportData, RunData } from './collect.js';
import { meanCI, type Estimate } from './t-interval.js';

/** The results table's metric columns. */
export const METRICS = ['loss', 'reward_margin', 'reward_accuracy', 'beta', 'eval_loss', 'win_rate', 'lc_win_rate', 'kl'] as const;
export type MetricKey = (typeof METRICS)[number];

/** Column titles, for people. */
export const METRIC_LABELS: Record<MetricKey, string> = {
  loss: 'loss',
  reward_margin: 'reward margin',
  reward_accuracy: 'reward acc.',
  beta: 'β',
  eval_loss: 'eval loss',
  win_rate: 'win rate',
  lc_win_rate: 'LC win rate',
  kl: 'KL',
};

/** Other names accepted for `plan.report.metric` (logged TRL names and common spellings). */
const ALIASES: Record<string, MetricKey> = {
  'train_loss': 'loss',
  'final_loss': 'loss',
  'rewards/margins': 'reward_margin',
  'margin': 'reward_margin',
  'margins': 'reward_margin',
  'reward_margins': 'reward_margin',
  'rewards/accuracies': 'reward_accuracy',
  'accuracy': 'reward_accuracy',
  'reward_accuracies': 'reward_accuracy',
  'eval/loss': 'eval_loss',
  'winrate': 'win_rate',
  'win-rate': 'win_rate',
  'lc': 'lc_win_rate',
  'lc_winrate': 'lc_win_rate',
  'lc-win-rate': 'lc_win_rate',
  'mean_kl': 'kl',
};

export interface ResultRow {
  run: string;
  id: string;
  /** The variant (group) the run belongs to. */
  group: string;
  state: RunData['state'];
  seed: number | null;
  algorithm: string | null;
  varied: Record<string, unknown>;
  step: number;
  total: number | null;
  /** Final values: the last logged step / eval event, the primary judgment, the rollouts' mean KL. */
  metrics: Record<MetricKey, number | null>;
  /** Wilson 95 % interval of the win rate (from the judge summary). */
  win_rate_ci: [number, number] | null;
  /** Pair counts of the primary judgment. */
  judge: { baseline: string; n_pairs: number; wins: number; losses: number; ties: number; invalid: number } | null;
  /** Every final metric by its logged name (for `metric:` values outside the table's columns). */
  raw: Record<string, number>;
  error_class: string | null;
}

export interface GroupRow {
  group: string;
  runs: string[];
  seeds: Array<number | null>;
  /** Varied values shared by the group's runs (`training.seed` left out). */
  varied: Record<string, unknown>;
  /** Runs that succeeded; only they enter the estimates. */
  succeeded: number;
  /** Runs that did not (failed, cancelled, still running, never started). */
  not_succeeded: number;
  metrics: Record<MetricKey, Estimate>;
}

export interface MetricRule {
  /** What the plan (or the caller) asked for, verbatim; null when the default was used. */
  requested: string | null;
  /** The metric: a results column or a logged metric name. */
  key: string;
  direction: 'lower' | 'higher';
  /** Why that direction: a `-`/`+` prefix, the name, or the default choice of metric. */
  because: 'prefix' | 'name';
  /** False when no succeeded run has a finite value for it. */
  available: boolean;
}

export interface Best {
  run: { run: string; id: string; value: number } | null;
  /** Best variant by its mean; null when every variant is a single run (the best run says it). */
  group: { group: string; value: number; n: number } | null;
}

export type Outcome = 'beats' | 'loses' | 'no-difference' | 'no-data' | 'baseline';

export interface Verdict {
  group: string;
  baseline: string;
  outcome: Outcome;
  win_rate: number | null;
  ci: [number, number] | null;
  /** `wilson`: one run's judge interval; `t-seeds`: t-interval of the win rates across seeds. */
  basis: 'wilson' | 't-seeds' | null;
  /** Runs (seeds) with a win rate. */
  n_runs: number;
  /** Valid pairs (wins + losses + ties) over those runs. */
  n_pairs: number;
  text: string;
}

export interface Results {
  /** Varied settings keys over all runs, in order of first appearance. */
  varied_keys: string[];
  rows: ResultRow[];
  groups: GroupRow[];
  /** Some variant has more than one run (seeds): the variants table is worth showing. */
  has_seeds: boolean;
  metric: MetricRule;
  best: Best;
  verdicts: Verdict[];
  /** One sentence over all verdicts; null without judgments. */
  headline: string | null;
}

export const SEED_KEY = 'training.seed';

/** Every number of the report that is not a plot. */
export function aggregate(data: ReportData, options: { metric?: string | null } = {}): Results {
  if (data.kind === 'judge') return judgeOnlyResults(data);
  const rows = data.runs.map(resultRow);
  const varied_keys: string[] = [];
  for (const r of rows) for (const k of Object.keys(r.varied)) if (!varied_keys.includes(k)) varied_keys.push(k);
  const groups = groupRows(rows);
  const metric = metricRule(options.metric ?? data.report.metric, rows);
  const best = pickBest(rows, groups, metric);
  const baselineName = data.judge_config?.baseline ?? null;
  const verdicts = groups.map((g) => groupVerdict(g, rows, baselineName)).filter((v): v is Verdict => v !== null);
  return {
    varied_keys,
    rows,
    groups,
    has_seeds: groups.some((g) => g.runs.length > 1),
    metric,
    best,
    verdicts,
    headline: headline(verdicts),
  };
}

/** The final value of each metric of one run. */
export function resultRow(run: RunData): ResultRow {
  const lastStep = run.steps.at(-1)?.metrics ?? {};
  const lastEval = run.evals.at(-1)?.metrics ?? {};
  const raw: Record<string, number> = { ...run.status_metrics, ...lastStep, ...lastEval };
  const pick = (...keys: string[]): number | null => {
    for (const k of keys) if (raw[k] !== undefined) return raw[k]!;
    return null;
  };
  const judge = run.judges[0] ?? null;
  const s = judge?.summary;
  // β: the adaptive controller's last value when logged, else the configured (constant) β.
  const marginBeta = [...run.margins].reverse().find((m) => m.beta !== null)?.beta ?? null;
  return {
    run: run.name,
    id: run.id,
    group: groupLabel(run),
    state: run.state,
    seed: run.seed,
    algorithm: run.algorithm,
    varied: run.varied,
    step: run.step,
    total: run.total,
    metrics: {
      loss: pick('loss'),
      reward_margin: pick('rewards/margins'),
      reward_accuracy: pick('rewards/accuracies'),
      beta: pick('beta') ?? marginBeta ?? run.beta,
      eval_loss: pick('eval_loss'),
      win_rate: typeof s?.win_rate === 'number' ? s.win_rate : null,
      lc_win_rate: typeof s?.lc_win_rate === 'number' ? s.lc_win_rate : null,
      kl: run.rollouts?.mean_kl ?? null,
    },
    win_rate_ci: Array.isArray(s?.win_rate_ci) ? (s.win_rate_ci as [number, number]) : null,
    judge:
      judge && s
        ? {
            baseline: judge.baseline,
            n_pairs: s.n_pairs ?? 0,
            wins: s.wins ?? 0,
            losses: s.losses ?? 0,
            ties: s.ties ?? 0,
            invalid: s.invalid ?? 0,
          }
        : null,
    raw,
    error_class: run.error_class,
  };
}

/** A run's variant: its name without the `-seed<N>` part the sweep added. */
export function groupLabel(run: Pick<RunData, 'name' | 'seed'>): string {
  if (run.seed === null) return run.name;
  const stripped = run.name.replace(new RegExp(`-seed${run.seed}(?=-|$)`), '');
  return stripped.length > 0 ? stripped : run.name;
}

const withoutSeed = (varied: Record<string, unknown>) => Object.fromEntries(Object.entries(varied).filter(([k]) => k !== SEED_KEY));

/** Runs that differ only in `training.seed`, in order of first appearance. */
export function groupRows(rows: readonly ResultRow[]): GroupRow[] {
  const byKey = new Map<string, ResultRow[]>();
  for (const r of rows) {
    const v = withoutSeed(r.varied);
    const key = `${r.group}\n${JSON.stringify(Object.keys(v).sort().map((k) => [k, v[k]]))}`;
    const list = byKey.get(key);
    if (list) list.push(r);
    else byKey.set(key, [r]);
  }
  return [...byKey.values()].map((members) => {
    const ok = members.filter((r) => r.state === 'succeeded');
    const metrics = Object.fromEntries(
      METRICS.map((m) => [m, meanCI(ok.map((r) => r.metrics[m]).filter((x): x is number => x !== null))]),
    ) as Record<MetricKey, Estimate>;
    return {
      group: members[0]!.group,
      runs: members.map((r) => r.run),
      seeds: members.map((r) => r.seed),
      varied: withoutSeed(members[0]!.varied),
      succeeded: ok.length,
      not_succeeded: members.length - ok.length,
      metrics,
    };
  });
}

/**
 * Which metric picks the best run, and which way. `-name` forces lower-is-better, `+name`
 * higher-is-better; otherwise a name containing loss, kl, nll, perplexity, ppl or error is lower-is-
 * better and anything else (win rates, accuracies, margins, rewards) higher-is-better. With no
 * metric asked for: `win_rate` when some run was judged, else `eval_loss` when logged, else `loss`.
 */
export function metricRule(requested: string | null | undefined, rows: readonly ResultRow[]): MetricRule {
  const ok = rows.filter((r) => r.state === 'succeeded');
  const has = (key: string) => ok.some((r) => Number.isFinite(metricValue(r, key)));
  let name: string;
  let forced: 'lower' | 'higher' | null = null;
  if (requested && requested.trim().length > 0) {
    const t = requested.trim();
    if (t.startsWith('-') || t.startsWith('+')) forced = t.startsWith('-') ? 'lower' : 'higher';
    name = forced ? t.slice(1).trim() : t;
    name = canonicalMetric(name);
  } else {
    name = has('win_rate') ? 'win_rate' : has('eval_loss') ? 'eval_loss' : 'loss';
  }
  return {
    requested: requested ?? null,
    key: name,
    direction: forced ?? directionOf(name),
    because: forced ? 'prefix' : 'name',
    available: has(name),
  };
}

/** A results column for an alias (`rewards/margins` → `reward_margin`); other names unchanged. */
export function canonicalMetric(name: string): string {
  const lower = name.toLowerCase();
  if ((METRICS as readonly string[]).includes(lower)) return lower;
  return ALIASES[lower] ?? name;
}

export function directionOf(name: string): 'lower' | 'higher' {
  return /loss|kl|nll|perplexity|ppl|error/i.test(name) ? 'lower' : 'higher';
}

/** A row's value of a metric: a results column, else the logged metric of that name. */
export function metricValue(row: ResultRow, key: string): number | null {
  if ((METRICS as readonly string[]).includes(key)) return row.metrics[key as MetricKey];
  return row.raw[key] ?? null;
}

/** Best succeeded run and best variant (by mean); ties keep the earlier one. Non-finite values never win. */
export function pickBest(rows: readonly ResultRow[], groups: readonly GroupRow[], rule: MetricRule): Best {
  const better = (x: number, y: number) => (rule.direction === 'lower' ? x < y : x > y);
  let run: Best['run'] = null;
  for (const r of rows) {
    if (r.state !== 'succeeded') continue;
    const v = metricValue(r, rule.key);
    if (v === null || !Number.isFinite(v)) continue;
    if (run === null || better(v, run.value)) run = { run: r.run, id: r.id, value: v };
  }
  let group: Best['group'] = null;
  if (groups.some((g) => g.runs.length > 1)) {
    for (const g of groups) {
      const values = rows
        .filter((r) => g.runs.includes(r.run) && r.state === 'succeeded')
        .map((r) => metricValue(r, rule.key))
        .filter((x): x is number => x !== null && Number.isFinite(x));
      if (values.length === 0) continue;
      const m = values.reduce((s, x) => s + x, 0) / values.length;
      if (group === null || better(m, group.value)) group = { group: g.group, value: m, n: values.length };
    }
  }
  return { run, group };
}

/**
 * The verdict wording, from the interval alone: "beats" only when its lower end is above 0.5,
 * "loses" only when its upper end is below 0.5, otherwise "no significant difference". The
 * comparison uses the unrounded bounds.
 */
export function outcomeOf(ci: [number, number] | null): Outcome {
  if (ci === null) return 'no-data';
  if (ci[0] > 0.5) return 'beats';
  if (ci[1] < 0.5) return 'loses';
  return 'no-difference';
}

const pct = (x: number) => `${(100 * x).toFixed(1)} %`;

/** The sentence for one verdict; every word chosen by `outcome`, every number from the data. */
export function verdictText(v: Omit<Verdict, 'text'>): string {
  if (v.outcome === 'baseline') return `${v.group} is the baseline.`;
  if (v.outcome === 'no-data' || v.win_rate === null) return `${v.group}: no valid judgments against ${v.baseline}.`;
  const basis =
    v.basis === 't-seeds' ? `t-interval over ${v.n_runs} seeds` : `Wilson interval, ${v.n_pairs} pair${v.n_pairs === 1 ? '' : 's'}`;
  const numbers = v.ci
    ? `win rate ${pct(v.win_rate)}, 95 % CI ${pct(v.ci[0])} – ${pct(v.ci[1])} (${basis})`
    : `win rate ${pct(v.win_rate)}, no interval`;
  switch (v.outcome) {
    case 'beats':
      return `${v.group} beats ${v.baseline}: ${numbers}.`;
    case 'loses':
      return `${v.group} loses to ${v.baseline}: ${numbers}.`;
    default:
      return `${v.group} does not beat ${v.baseline} (no significant difference): ${numbers}.`;
  }
}

/**
 * A variant's verdict. One judged run: that run's Wilson interval. Several seeds: the t-interval of
 * their win rates (seed-to-seed spread included; pooling the pairs would hide it). Only succeeded
 * runs count.
 */
export function groupVerdict(g: GroupRow, rows: readonly ResultRow[], planBaseline: string | null): Verdict | null {
  const members = rows.filter((r) => g.runs.includes(r.run) && r.state === 'succeeded' && r.judge !== null);
  if (planBaseline !== null && g.group === planBaseline && members.length === 0) {
    const v = { group: g.group, baseline: planBaseline, outcome: 'baseline' as const, win_rate: null, ci: null, basis: null, n_runs: 0, n_pairs: 0 };
    return { ...v, text: verdictText(v) };
  }
  if (members.length === 0) return null;
  const baseline = members[0]!.judge!.baseline;
  const judged = members.filter((r) => r.metrics.win_rate !== null);
  const n_pairs = members.reduce((s, r) => s + r.judge!.wins + r.judge!.losses + r.judge!.ties, 0);
  let win_rate: number | null = null;
  let ci: [number, number] | null = null;
  let basis: Verdict['basis'] = null;
  if (judged.length === 1) {
    win_rate = judged[0]!.metrics.win_rate;
    ci = judged[0]!.win_rate_ci;
    basis = 'wilson';
  } else if (judged.length > 1) {
    const e = meanCI(judged.map((r) => r.metrics.win_rate!));
    win_rate = e.mean;
    ci = e.ci;
    basis = 't-seeds';
  }
  const v = { group: g.group, baseline, outcome: outcomeOf(ci), win_rate, ci, basis, n_runs: judged.length, n_pairs };
  return { ...v, text: verdictText(v) };
}

/** "1 of 3 variants beats sft; 1 loses; 1 shows no significant difference." */
export function headline(verdicts: readonly Verdict[]): string | null {
  const judged = verdicts.filter((v) => v.outcome !== 'baseline');
  if (judged.length === 0) return null;
  const count = (o: Outcome) => judged.filter((v) => v.outcome === o).length;
  const baselines = [...new Set(judged.map((v) => v.baseline))].join(', ');
  const n = judged.length;
  const beats = count('beats');
  const noun = n === 1 ? 'variant' : 'variants';
  const first =
    beats === 0
      ? `No variant beats ${baselines} (${n} ${noun} judged)`
      : `${beats} of ${n} ${noun} ${beats === 1 ? 'beats' : 'beat'} ${baselines}`;
  const rest: string[] = [];
  if (count('loses') > 0) rest.push(`${count('loses')} ${count('loses') === 1 ? 'loses' : 'lose'}`);
  if (count('no-difference') > 0) rest.push(`${count('no-difference')} ${count('no-difference') === 1 ? 'shows' : 'show'} no significant difference`);
  if (count('no-data') > 0) rest.push(`${count('no-data')} without valid judgments`);
  return `${[first, ...rest].join('; ')}.`;
}

/** A bare judge dir: A against B, one verdict. */
function judgeOnlyResults(data: ReportData): Results {
  const judge = data.judge!;
  const s = judge.summary;
  const a = s.a?.generator ?? 'A';
  const counts = { wins: s.wins ?? 0, losses: s.losses ?? 0, ties: s.ties ?? 0 };
  const ci = Array.isArray(s.win_rate_ci) ? (s.win_rate_ci as [number, number]) : null;
  const win_rate = typeof s.win_rate === 'number' ? s.win_rate : null;
  const v = {
    group: a,
    baseline: judge.baseline,
    outcome: win_rate === null ? ('no-data' as const) : outcomeOf(ci),
    win_rate,
    ci,
    basis: 'wilson' as const,
    n_runs: 1,
    n_pairs: counts.wins + counts.losses + counts.ties,
  };
  const verdicts = [{ ...v, text: verdictText(v) }];
  const short = { beats: `${a} beats ${judge.baseline}.`, loses: `${a} loses to ${judge.baseline}.`, 'no-difference': `${a} does not beat ${judge.baseline}: no significant difference.` };
  return {
    varied_keys: [],
    rows: [],
    groups: [],
    has_seeds: false,
    metric: { requested: null, key: 'win_rate', direction: 'higher', because: 'name', available: win_rate !== null },
    best: { run: null, group: null },
    verdicts,
    headline: v.outcome in short ? short[v.outcome as keyof typeof short] : verdicts[0]!.text,
  };
}

/** One judged pair shown in full. */
export interface Example {
  kind: 'win' | 'loss' | 'tie';
  pair: string;
  index: number;
  instruction: string;
  /** Null when the outputs files could not be read back (see `JudgeData.outputs_note`). */
  output_a: string | null;
  output_b: string | null;
  /** One entry per order judged: what was shown first, and the judge's reply. */
  judgments: Array<{ order: 'ab' | 'ba'; verdict: string; raw: string | null }>;
  inconsistent: boolean;
}

export interface ExampleSet {
  run: string | null;
  a: string;
  baseline: string;
  judge_dir: string;
  examples: Example[];
  note: string | null;
}

/**
 * A few judged pairs: up to `wins` wins, `losses` losses and `ties` ties of A, each kind taken in
 * order of pair hash (a content hash: stable, and blind to how good an example looks). Pairs whose
 * texts can be shown come first.
 */
export function selectExamples(judge: JudgeData, limits = { wins: 2, losses: 2, ties: 1 }): Example[] {
  const outcomes = pairOutcomes(judge.records).sort((x, y) => {
    const hx = judge.outputs[x.pair] ? 0 : 1;
    const hy = judge.outputs[y.pair] ? 0 : 1;
    return hx - hy || (x.pair < y.pair ? -1 : x.pair > y.pair ? 1 : x.index - y.index);
  });
  const take = (verdict: 'a' | 'b' | 'tie', kind: Example['kind'], n: number): Example[] =>
    outcomes
      .filter((o) => o.verdict === verdict)
      .slice(0, n)
      .map((o) => {
        const texts = judge.outputs[o.pair];
        return {
          kind,
          pair: o.pair,
          index: o.index,
          instruction: o.instruction,
          output_a: texts?.a ?? null,
          output_b: texts?.b ?? null,
          judgments: judge.records.filter((r) => r.index === o.index).map((r) => ({ order: r.order, verdict: r.verdict, raw: r.raw })),
          inconsistent: o.inconsistent,
        };
      });
  return [...take('a', 'win', limits.wins), ...take('b', 'loss', limits.losses), ...take('tie', 'tie', limits.ties)];
}

/** Examples of the best run (when judged), else of the first judged run; a bare judge dir's own. */
export function exampleSet(data: ReportData, results: Results): ExampleSet | null {
  if (data.kind === 'judge' && data.judge) {
    return {
      run: null,
      a: data.judge.summary.a?.generator ?? 'A',
      baseline: data.judge.baseline,
      judge_dir: data.judge.dir,
      examples: selectExamples(data.judge),
      note: data.judge.outputs_note,
    };
  }
  const judged = data.runs.filter((r) => r.state === 'succeeded' && r.judges.length > 0 && r.judges[0]!.records.length > 0);
  const run = judged.find((r) => r.id === results.best.run?.id) ?? judged[0];
  if (!run) return null;
  const judge = run.judges[0]!;
  return { run: run.name, a: run.name, baseline: judge.baseline, judge_dir: judge.dir, examples: selectExamples(judge), note: judge.outputs_note };
}
