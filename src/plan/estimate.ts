/**
 * Dry-run estimates for `dpo-sweep plan`: optimizer steps and training tokens per run, from the
 * dataset file when it is local (a sample of its rows), and time when an earlier run of this sweep
 * measured its throughput. Rough by design (about 4 characters per token); labelled as such.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { readJsonl } from '../execute/run-dir.js';
import type { RunSpec } from '../sweep/run-spec.js';

const CHARS_PER_TOKEN = 4;
const SAMPLE_ROWS = 400;

export interface RunEstimate {
  id: string;
  steps: number | null;
  tokens: number | null;
  seconds: number | null;
}

interface DataStats {
  rows: number;
  /** Characters a training example feeds the model (chosen and rejected sequences for preference data). */
  charsPerExample: number;
}

const dataCache = new Map<string, DataStats | null>();

function textOf(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map(textOf).join('');
  if (value && typeof value === 'object') return textOf((value as { content?: unknown }).content ?? '');
  return '';
}

export function datasetStats(path: string, preference: boolean): DataStats | null {
  const key = `${path}|${preference}`;
  if (dataCache.has(key)) return dataCache.get(key)!;
  let stats: DataStats | null = null;
  try {
    const text = readFileSync(path, 'utf8');
    const records: Array<Record<string, unknown>> = path.endsWith('.json')
      ? (JSON.parse(text) as Array<Record<string, unknown>>)
      : text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Record<string, unknown>);
    const sample = records.slice(0, SAMPLE_ROWS);
    const chars = sample.map((r) => {
      if (r.messages) return textOf(r.messages).length;
      const prompt = textOf(r.prompt ?? r.prompt_messages ?? '');
      const chosen = textOf(r.chosen ?? '');
      const rejected = textOf(r.rejected ?? '');
      // HH transcripts repeat the prompt inside chosen and rejected already.
      return preference ? (r.prompt || r.prompt_messages ? 2 * prompt.length : 0) + chosen.length + rejected.length : prompt.length + chosen.length;
    });
    stats = { rows: records.length, charsPerExample: chars.reduce((a, b) => a + b, 0) / Math.max(1, chars.length) };
  } catch {
    stats = null;
  }
  dataCache.set(key, stats);
  return stats;
}

/** Tokens per second measured by finished runs in an existing sweep dir (TRL's `num_tokens` over time). */
export function measuredThroughput(sweepDir: string): number | null {
  const runs = join(sweepDir, 'runs');
  if (!existsSync(runs)) return null;
  const rates: number[] = [];
  for (const id of readdirSync(runs)) {
    try {
      const steps = readJsonl<{ kind: string; elapsed_s?: number; metrics?: { num_tokens?: number } }>(join(runs, id, 'events.jsonl')).filter(
        (e) => e.kind === 'step' && e.metrics?.num_tokens && e.elapsed_s,
      );
      const last = steps.at(-1);
      if (last) rates.push(last.metrics!.num_tokens! / last.elapsed_s!);
    } catch {
      // a run dir being written: skip it
    }
  }
  return rates.length ? rates.reduce((a, b) => a + b, 0) / rates.length : null;
}

export function estimateRun(spec: RunSpec, tokensPerSecond: number | null): RunEstimate {
  const s = spec.settings;
  const t = s.training;
  const preference = s.algorithm !== 'sft';
  const data = s.dataset.path ? datasetStats(s.dataset.path, preference) : null;
  // Training processes, as the worker starts them: processes_per_run, else one per GPU of gpus_per_run
  // (on a GPU machine; a CPU-only estimate cannot tell, and assumes the GPUs are there).
  const processes = s.resources.processes_per_run > 1 ? s.resources.processes_per_run : s.resources.gpus_per_run;
  const global = t.batch_size * t.grad_accum * processes;
  let steps: number | null = t.max_steps ?? null;
  if (steps === null && data) {
    const rows = s.dataset.limit ? Math.min(s.dataset.limit, data.rows) : data.rows;
    steps = Math.ceil((rows * (1 - (s.dataset.val_ratio ?? 0)) * t.epochs) / global);
  }
  const tokens = steps !== null && data ? Math.round((steps * global * Math.min(data.charsPerExample / CHARS_PER_TOKEN, t.max_length * (preference ? 2 : 1)))) : null;
  const seconds = tokens !== null && tokensPerSecond ? tokens / tokensPerSecond : null;
  return { id: spec.id, steps, tokens, seconds };
}

export function renderEstimates(estimates: RunEstimate[], throughputSource: string | null): string {
  const total = estimates.reduce((a, e) => a + (e.tokens ?? 0), 0);
  const known = estimates.filter((e) => e.tokens !== null).length;
  const lines = [
    known
      ? `estimated training tokens: ${formatCount(total)} over ${known}/${estimates.length} runs (about ${CHARS_PER_TOKEN} characters per token, from a sample of the data)`
      : 'no token estimate: the datasets are not local files',
  ];
  const secs = estimates.reduce((a, e) => a + (e.seconds ?? 0), 0);
  if (secs > 0) lines.push(`estimated time: ${Math.round(secs / 60)} min of training at ${throughputSource}`);
  return lines.join('\n');
}

function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return String(n);
}
