/** Shared by the seed-config tests: paths, a fake CLI io, and the offline rollout-judged data. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CliIO } from '../../src/cli/io.js';
import { repoRoot } from '../helpers/python.js';

export const seedDir = join(repoRoot, 'configs', 'seed');
export const seedConfig = (name: string) => join(seedDir, name);
export const offlineMap = join(seedDir, 'offline-map.yaml');

export interface FakeIO extends CliIO {
  stdout: string[];
  stderr: string[];
}

export function fakeIO(env: NodeJS.ProcessEnv = {}): FakeIO {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (l) => stdout.push(l), err: (l) => stderr.push(l), isTTY: false, env };
}

// ── configs/seed/data/rollout-judged.jsonl ──────────────────────────────────────────────────────

export const ROLLOUT_JUDGED = join(seedDir, 'data', 'rollout-judged.jsonl');
export const ROLLOUT_SOURCE = join(repoRoot, 'configs', 'data', 'prefs-hh.jsonl');
export const ROLLOUT_ROWS = 200;

interface Message {
  role: 'user' | 'assistant';
  content: string;
}

/** seed-spec §3.1 `parse_hh_to_messages`. */
export function hhToMessages(text: string): Message[] {
  let t = text.replace(/\r\n?/g, '\n');
  if (!t.startsWith('\n\nHuman:') && !t.startsWith('\n\nAssistant:')) t = `\n\n${t}`;
  const parts = t.split(/\n\n(Human|Assistant): ?/);
  const out: Message[] = [];
  for (let i = 1; i + 1 < parts.length; i += 2) {
    const content = parts[i + 1]!.replace(/^\n/, '').trim();
    if (content) out.push({ role: parts[i] === 'Human' ? 'user' : 'assistant', content });
  }
  return out;
}

/** One HH pair → one row of the seed's `rollout_judged.jsonl` (seed-spec §3.5). */
export function toRolloutJudged(record: { chosen: string; rejected: string }): Record<string, unknown> {
  const chosen = hhToMessages(record.chosen);
  const rejected = hhToMessages(record.rejected);
  const good = chosen.pop()!;
  const bad = rejected.pop()!;
  if (good.role !== 'assistant' || bad.role !== 'assistant') throw new Error('an HH pair without a final assistant turn');
  return {
    prompt_messages: chosen,
    chosen: [{ role: 'assistant', content: good.content }],
    rejected: [{ role: 'assistant', content: bad.content }],
    metadata: {
      source: 'hh_rollout',
      seed: 42,
      k_candidates: 2,
      generator_model: 'synthetic (configs/data/prefs-hh.jsonl)',
      judge: 'rm',
      reward_model: 'the rule of configs/data/README.md',
      reward_quantization: 'none',
    },
  };
}

/** The expected content of configs/seed/data/rollout-judged.jsonl. */
export function rolloutJudgedText(): string {
  const lines = readFileSync(ROLLOUT_SOURCE, 'utf8').split('\n').filter((l) => l.trim());
  return `${lines
    .slice(0, ROLLOUT_ROWS)
    .map((l) => JSON.stringify(toRolloutJudged(JSON.parse(l) as { chosen: string; rejected: string })))
    .join('\n')}\n`;
}
