/**
 * `dpo-sweep generate --model <dir|builtin:…> --prompts <file> --out <file>`: a model's outputs for
 * evaluation prompts in AlpacaEval format (`instruction`, `output`, `generator`, `dataset`, `kl`),
 * ready for `dpo-sweep judge`. Prompts: AlpacaEval JSON, HH transcripts (single-turn ones), TL;DR
 * posts, a plain list, or message data (seed-spec §5.1–5.3; docs/rollouts.md).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { InputError } from '../../errors.js';
import { defaultCacheDir } from '../../execute/sweep.js';
import { callWorker } from '../../execute/worker-call.js';
import { formatProgress, outputPathProblem, throttle, type RolloutProgress } from '../../rollout/manager.js';
import { ensureWorker } from '../../setup/python-env.js';
import type { CliIO } from '../io.js';

export interface GenerateCommandOptions {
  model: string;
  prompts: string;
  out: string;
  n?: number;
  maxNewTokens?: number;
  temperature?: number;
  topP?: number;
  seed?: number;
  reference?: string;
  rewardModel?: string;
  generator?: string;
  dataset?: string;
  format?: string;
  split?: string;
  limit?: number;
  batchSize?: number;
  cacheDir?: string;
  python?: string;
}

const FORMATS = ['alpaca', 'tldr', 'hh', 'list', 'messages', 'generated', 'pairs'];

/** A local path stays a path (made absolute); `builtin:…` and hub ids pass through. */
function modelArg(value: string): string {
  if (/^[a-z]+:/i.test(value)) return value;
  if (path.isAbsolute(value) || /^\.\.?([/\\]|$)/.test(value) || existsSync(value)) return path.resolve(value);
  return value;
}

/** `builtin:tiny-llama` → `tiny-llama`; `runs/<id>/final` → `<id>`; `org/model` → `model`. */
export function defaultGenerator(model: string): string {
  if (model.startsWith('builtin:')) return model.slice('builtin:'.length);
  const trimmed = model.replace(/[/\\]+$/, '');
  const base = path.basename(trimmed);
  return base === 'final' || /^checkpoint-\d+$/.test(base) ? path.basename(path.dirname(trimmed)) : base;
}

export function generateRequest(opts: GenerateCommandOptions, cacheDir: string): Record<string, unknown> {
  if (opts.format !== undefined && !FORMATS.includes(opts.format)) {
    throw new InputError(`--format ${opts.format}: use one of ${FORMATS.join(', ')}`);
  }
  if (opts.temperature !== undefined && !(opts.temperature >= 0)) throw new InputError(`--temperature must be >= 0, got ${opts.temperature}`);
  if (opts.topP !== undefined && !(opts.topP > 0 && opts.topP <= 1)) throw new InputError(`--top-p must be in (0, 1], got ${opts.topP}`);
  if (!/\.(json|jsonl)$/i.test(opts.out)) throw new InputError(`--out ${opts.out}: name a .json (array) or .jsonl file`);
  const outProblem = outputPathProblem(path.resolve(opts.out), 'file');
  if (outProblem) throw new InputError(`--out ${opts.out}: ${outProblem}`);
  const prompts = /\.(jsonl?|txt)$/i.test(opts.prompts) || existsSync(opts.prompts) ? path.resolve(opts.prompts) : opts.prompts;
  if (/\.(jsonl?|txt)$/i.test(opts.prompts) && !existsSync(prompts)) throw new InputError(`--prompts ${opts.prompts}: no such file`);
  const model = modelArg(opts.model);
  const out: Record<string, unknown> = {
    model,
    prompts,
    out: path.resolve(opts.out),
    cache_dir: cacheDir,
    generator: opts.generator ?? defaultGenerator(model),
  };
  const copy: Array<[keyof GenerateCommandOptions, string]> = [
    ['n', 'n'],
    ['maxNewTokens', 'max_new_tokens'],
    ['temperature', 'temperature'],
    ['topP', 'top_p'],
    ['seed', 'seed'],
    ['dataset', 'dataset'],
    ['format', 'format'],
    ['split', 'split'],
    ['limit', 'limit'],
    ['batchSize', 'batch_size'],
  ];
  for (const [from, to] of copy) if (opts[from] !== undefined) out[to] = opts[from];
  if (opts.reference !== undefined) out['reference'] = modelArg(opts.reference);
  if (opts.rewardModel !== undefined) out['reward_model'] = modelArg(opts.rewardModel);
  return out;
}

export async function generateCommand(opts: GenerateCommandOptions, io: CliIO): Promise<number> {
  const request = generateRequest(opts, opts.cacheDir ?? defaultCacheDir(io.env));
  const python = await ensureWorker({ ...(opts.python ? { python: opts.python } : {}), log: (l) => io.err(`setup: ${l}`) }, io.env);
  const stop = new AbortController();
  const onSignal = () => {
    if (stop.signal.aborted) process.exit(130);
    io.err('stopping after the current batch (Ctrl-C again to quit now)');
    stop.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const show = throttle<RolloutProgress>(2000, (p) => io.err(`generate: ${formatProgress(p)}`), (p) => p.total !== null && p.done >= p.total);
  try {
    const result = (await callWorker('generate', request, {
      python,
      logPath: `${request.out as string}.log`,
      signal: stop.signal,
      onEvent: (e) => {
        if (e.kind !== 'rollout-progress') return;
        const n = (v: unknown) => (typeof v === 'number' ? v : null);
        show({ job: 'generate', phase: 'eval', done: n(e.done) ?? 0, total: n(e.total), tokens: n(e.tokens) ?? 0, tokens_per_s: n(e.tokens_per_s) });
      },
    })) as Record<string, unknown>;
    if (result.status !== 'complete') {
      io.out(`generate stopped after ${String(result.done)} of ${String(result.total)} prompts; nothing written`);
      return 1;
    }
    const kl = typeof result.mean_kl === 'number' ? `, mean KL ${result.mean_kl.toFixed(3)}` : '';
    const reward = typeof result.mean_reward === 'number' ? `, mean reward ${result.mean_reward.toFixed(3)}` : '';
    const skipped = Object.entries((result.skipped as Record<string, number> | undefined) ?? {});
    io.out(`${String(result.outputs)} outputs for ${String(result.prompts)} ${String(result.format)} prompts${kl}${reward} → ${String(result.out)}`);
    if (skipped.length > 0) io.out(`skipped prompts: ${skipped.map(([k, v]) => `${k} ${v}`).join(', ')}`);
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
