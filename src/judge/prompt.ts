/**
 * Prompt rendering. Templates use `{{instruction}}`, `{{output_1}}` (shown first) and `{{output_2}}`
 * (shown second). Rendering is a single pass, so text inside an output that looks like a placeholder
 * is left as it is.
 */
import type { Order } from './order.js';

export const PLACEHOLDERS = ['instruction', 'output_1', 'output_2'] as const;
export type Placeholder = (typeof PLACEHOLDERS)[number];

const PLACEHOLDER_RE = /\{\{\s*([A-Za-z0-9_]+)\s*\}\}/g;

/** Problems with a template: unknown placeholders and missing required ones (empty when fine). */
export function checkTemplate(template: string): string[] {
  const seen = new Set<string>();
  for (const m of template.matchAll(PLACEHOLDER_RE)) seen.add(m[1] as string);
  const problems: string[] = [];
  for (const name of seen) {
    if (!(PLACEHOLDERS as readonly string[]).includes(name)) {
      problems.push(`unknown placeholder {{${name}}}; known: ${PLACEHOLDERS.map((p) => `{{${p}}}`).join(', ')}`);
    }
  }
  for (const name of PLACEHOLDERS) {
    if (!seen.has(name)) problems.push(`missing placeholder {{${name}}}`);
  }
  return problems;
}

export function renderTemplate(template: string, values: Record<Placeholder, string>): string {
  return template.replace(PLACEHOLDER_RE, (whole, name: string) =>
    Object.hasOwn(values, name) ? values[name as Placeholder] : whole,
  );
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** The messages for one request: optional system prompt, then the rendered user prompt. */
export function renderMessages(
  preset: { template: string; system?: string | undefined },
  pair: { instruction: string; outputA: string; outputB: string },
  order: Order,
): ChatMessage[] {
  const [first, second] = order === 'ab' ? [pair.outputA, pair.outputB] : [pair.outputB, pair.outputA];
  const user = renderTemplate(preset.template, { instruction: pair.instruction, output_1: first, output_2: second });
  return preset.system !== undefined && preset.system.length > 0
    ? [
        { role: 'system', content: preset.system },
        { role: 'user', content: user },
      ]
    : [{ role: 'user', content: user }];
}
