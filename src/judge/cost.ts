/**
 * Cost: a price table per model, overridable by a JSON file or a preset's `price:`, and the
 * estimates `--dry-run` and `--max-cost` use.
 *
 * Estimates are deliberately on the high side: prompt tokens ≈ characters / 4 (+4 per message, +3 per
 * request) and completion tokens = the preset's `max_tokens`. Actual cost uses the `usage` the server
 * returns.
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { InputError } from '../errors.js';
import type { Price } from './presets.js';
import type { Usage } from './cache.js';
import type { ChatMessage } from './prompt.js';

/**
 * USD per million tokens (standard tier), as OpenAI listed them in 2025. Prices change: check them,
 * and override with `--prices prices.json` or a preset's `price:` when they do.
 */
export const DEFAULT_PRICES: Readonly<Record<string, Price>> = {
  'gpt-4o': { input_per_mtok: 2.5, output_per_mtok: 10 },
  'gpt-4o-2024-05-13': { input_per_mtok: 5, output_per_mtok: 15 },
  'gpt-4o-mini': { input_per_mtok: 0.15, output_per_mtok: 0.6 },
  'gpt-4.1': { input_per_mtok: 2, output_per_mtok: 8 },
  'gpt-4.1-mini': { input_per_mtok: 0.4, output_per_mtok: 1.6 },
  'gpt-4.1-nano': { input_per_mtok: 0.1, output_per_mtok: 0.4 },
  'gpt-4-turbo': { input_per_mtok: 10, output_per_mtok: 30 },
  'gpt-4-1106-preview': { input_per_mtok: 10, output_per_mtok: 30 },
  'gpt-4-0125-preview': { input_per_mtok: 10, output_per_mtok: 30 },
  'gpt-4': { input_per_mtok: 30, output_per_mtok: 60 },
  'gpt-3.5-turbo': { input_per_mtok: 0.5, output_per_mtok: 1.5 },
  'gpt-5': { input_per_mtok: 1.25, output_per_mtok: 10 },
  'gpt-5-mini': { input_per_mtok: 0.25, output_per_mtok: 2 },
  'gpt-5-nano': { input_per_mtok: 0.05, output_per_mtok: 0.4 },
  'o3-mini': { input_per_mtok: 1.1, output_per_mtok: 4.4 },
  'o4-mini': { input_per_mtok: 1.1, output_per_mtok: 4.4 },
};

export const pricesFileSchema = z.record(
  z.string().min(1),
  z.strictObject({ input_per_mtok: z.number().nonnegative(), output_per_mtok: z.number().nonnegative() }),
);

/** Reads a `{model: {input_per_mtok, output_per_mtok}}` JSON file. */
export async function loadPricesFile(path: string): Promise<Record<string, Price>> {
  let data: unknown;
  try {
    data = JSON.parse(await readFile(path, 'utf8'));
  } catch (cause) {
    throw new InputError(`--prices ${path}: cannot read a JSON object`, [(cause as Error).message], { cause });
  }
  const parsed = pricesFileSchema.safeParse(data);
  if (!parsed.success) {
    throw new InputError(
      `--prices ${path}: invalid price table`,
      parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`),
    );
  }
  return parsed.data;
}

/**
 * The price of `model`: exact entry, else the longest entry `k` with `model` starting `k-` (so
 * `gpt-4o-mini-2024-07-18` → `gpt-4o-mini`, not `gpt-4o`). `undefined` when unknown.
 */
export function priceFor(model: string, table: Readonly<Record<string, Price>> = DEFAULT_PRICES): Price | undefined {
  if (Object.hasOwn(table, model)) return table[model];
  let best: string | undefined;
  for (const k of Object.keys(table)) {
    if (model.startsWith(`${k}-`) && (best === undefined || k.length > best.length)) best = k;
  }
  return best === undefined ? undefined : table[best];
}

/** USD for a usage at a price. */
export function costOf(usage: Pick<Usage, 'prompt_tokens' | 'completion_tokens'>, price: Price): number {
  return (usage.prompt_tokens * price.input_per_mtok + usage.completion_tokens * price.output_per_mtok) / 1e6;
}

/** Rough prompt tokens of a request: characters / 4, +4 per message, +3. */
export function estimatePromptTokens(messages: readonly ChatMessage[]): number {
  let t = 3;
  for (const m of messages) t += 4 + Math.ceil(m.content.length / 4);
  return t;
}

/** Upper-side estimate of one request: its prompt and `maxTokens` of reply. */
export function estimateRequest(messages: readonly ChatMessage[], maxTokens: number): { prompt_tokens: number; completion_tokens: number } {
  return { prompt_tokens: estimatePromptTokens(messages), completion_tokens: maxTokens };
}
