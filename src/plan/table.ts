/**
 * The dry-run table of `dpo-sweep plan <file>`: one row per run with its id, name, what it varies
 * and how long it trains. Returns text; the CLI prints it.
 */
import type { RunSpec } from '../sweep/run-spec.js';

const HEADERS = ['id', 'name', 'varied', 'steps'] as const;

export function renderPlanTable(runs: readonly RunSpec[]): string {
  const rows = runs.map((run) => [run.id, run.name, variedText(run.varied), stepsText(run)]);
  const widths = HEADERS.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, c) => (c === cells.length - 1 ? cell : cell.padEnd(widths[c]!)))
      .join('  ')
      .trimEnd();
  const footer = `${runs.length} run${runs.length === 1 ? '' : 's'}`;
  return [line(HEADERS), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line), footer].join('\n') + '\n';
}

/** `beta=0.05 training.seed=1`; empty when the run varies nothing. */
export function variedText(varied: Record<string, unknown>): string {
  return Object.entries(varied)
    .map(([key, value]) => `${key}=${cellValue(value)}`)
    .join(' ');
}

/** `max_steps` when set, else the epochs. */
export function stepsText(run: RunSpec): string {
  const { max_steps, epochs } = run.settings.training;
  if (max_steps !== undefined) return String(max_steps);
  return `${epochs} epoch${epochs === 1 ? '' : 's'}`;
}

function cellValue(value: unknown): string {
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(4)));
  if (typeof value === 'string') return /\s/.test(value) ? JSON.stringify(value) : value;
  if (Array.isArray(value)) return `[${value.map(cellValue).join(',')}]`;
  return JSON.stringify(value);
}
