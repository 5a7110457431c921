/**
 * Sweep events → a view of every run (pure). The renderers (listr2 on a TTY, plain lines
 * elsewhere) only format this view.
 */
import { asNumber } from '../bridge/json.js';
import type { SweepEvent } from '../execute/events.js';
import type { RunStatus } from '../execute/run-dir.js';

export interface RunView {
  id: string;
  name: string;
  state: 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'skipped';
  phase: string | null;
  step: number;
  total: number | null;
  attempt: number;
  loss: number | undefined;
  beta: number | undefined;
  margin: number | undefined;
  etaSeconds: number | undefined;
  error: string | null;
  errorClass: string | null;
  log: string | null;
}

export function emptyView(id: string, name: string): RunView {
  return {
    id,
    name,
    state: 'queued',
    phase: null,
    step: 0,
    total: null,
    attempt: 0,
    loss: undefined,
    beta: undefined,
    margin: undefined,
    etaSeconds: undefined,
    error: null,
    errorClass: null,
    log: null,
  };
}

/** Apply one event to the view of its run (returns the same object, updated). */
export function reduce(view: RunView, event: SweepEvent): RunView {
  switch (event.kind) {
    case 'run-skipped':
      view.state = 'skipped';
      view.phase = event.reason;
      break;
    case 'run-start':
      view.state = 'running';
      view.attempt = event.attempt;
      view.phase = 'starting';
      view.error = null;
      break;
    case 'run-event': {
      const e = event.event;
      if (e.kind === 'phase') view.phase = String(e.phase);
      if (e.kind === 'train-begin') {
        view.total = typeof e.total === 'number' ? e.total : view.total;
        view.step = typeof e.step === 'number' ? e.step : view.step;
      }
      if (e.kind === 'step') {
        view.phase = 'training';
        view.step = Number(e.step);
        if (typeof e.total === 'number') view.total = e.total;
        const metrics = (e.metrics ?? {}) as Record<string, unknown>;
        view.loss = asNumber(metrics.loss);
        view.beta = asNumber(metrics.beta) ?? view.beta;
        view.margin = asNumber(metrics['rewards/margins']) ?? asNumber(metrics.margin_mean) ?? view.margin;
        const elapsed = asNumber(e.elapsed_s);
        const done = asNumber(e.steps_this_session);
        if (elapsed !== undefined && done && view.total) {
          view.etaSeconds = (elapsed / done) * Math.max(0, view.total - view.step);
        }
      }
      break;
    }
    case 'run-end':
      applyStatus(view, event.status);
      break;
    case 'run-retry':
      view.state = 'queued';
      view.phase = `retry ${event.attempt} in ${Math.round(event.delayMs / 1000)} s after ${event.reason}${event.note ? ` (${event.note})` : ''}`;
      break;
    default:
      break;
  }
  return view;
}

export function applyStatus(view: RunView, status: RunStatus): RunView {
  view.state = status.state === 'queued' ? 'queued' : status.state;
  view.step = status.step;
  view.total = status.total;
  view.attempt = status.attempt;
  view.error = status.error;
  view.errorClass = status.error_class;
  view.log = status.log;
  view.phase = null;
  const loss = asNumber(status.metrics?.loss);
  if (loss !== undefined) view.loss = loss;
  return view;
}

export function formatDuration(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h ? `${h}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}` : `${m}:${String(sec).padStart(2, '0')}`;
}

function num(value: number | undefined, digits = 4): string {
  if (value === undefined) return '-';
  if (!Number.isFinite(value)) return String(value);
  return value.toPrecision(digits);
}

/** One line of live progress for a running run. */
export function progressText(view: RunView): string {
  if (view.state !== 'running') return view.phase ?? view.state;
  if (view.phase && view.phase !== 'training') return view.phase;
  const parts = [`step ${view.step}/${view.total ?? '?'}`, `loss ${num(view.loss)}`];
  if (view.beta !== undefined) parts.push(`β ${num(view.beta)}`);
  if (view.margin !== undefined) parts.push(`margin ${num(view.margin)}`);
  parts.push(`ETA ${formatDuration(view.etaSeconds)}`);
  return parts.join('  ');
}

/** The final table: one row per run, failures with their cause and log. */
export function summaryTable(statuses: RunStatus[]): string {
  const rows = statuses.map((s) => [
    s.id,
    s.name,
    s.state,
    `${s.step}/${s.total ?? '?'}`,
    num(asNumber(s.metrics?.loss) ?? asNumber(s.metrics?.train_loss)),
    s.error_class ?? '',
  ]);
  const header = ['id', 'name', 'state', 'steps', 'loss', 'error'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  const out = [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
  const failures = statuses.filter((s) => s.state === 'failed');
  if (failures.length) {
    out.push('', `${failures.length} failed:`);
    for (const f of failures) out.push(`  ${f.name} (${f.id}): [${f.error_class}] ${f.error}`, `    log: ${f.log}`);
  }
  const ok = statuses.filter((s) => s.state === 'succeeded').length;
  out.push('', `${ok} succeeded, ${failures.length} failed, ${statuses.length - ok - failures.length} not finished`);
  return out.join('\n');
}
