/**
 * Loading the two outputs files and matching them into pairs.
 *
 * A file is a JSON array or JSONL (one object a line; blank lines skipped). Accepted records:
 * - AlpacaEval outputs: `{instruction, output, generator?}`;
 * - TL;DR reference summaries (the seed's eval set): `{post, reference_summary}` → generator `reference`;
 * - HH rows: `{chosen, rejected}` transcripts ("\n\nHuman: … \n\nAssistant: …"); single-turn ones give
 *   `{instruction: human turn, output: chosen reply}`, generator `hh-chosen`; multi-turn rows are skipped
 *   and counted (the seed's HH judge kept single-turn rows only);
 * - preference pairs: `{prompt, chosen}` with string `chosen` → generator `chosen`.
 * Pairs are matched on the instruction with surrounding whitespace trimmed. The first record of a
 * duplicated instruction is kept; duplicates, unmatched instructions and skipped rows are reported.
 * Pairs come out in the order of file A.
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { InputError } from '../errors.js';

export interface OutputRecord {
  instruction: string;
  output: string;
  generator?: string | undefined;
  /** 1-based line (JSONL) or 0-based item index (JSON array), for messages. */
  where: string;
}

export interface OutputsFile {
  path: string;
  records: OutputRecord[];
  /** Most common `generator` in the file, else the file name. */
  generator: string;
  /** Rows skipped as not comparable, by reason (e.g. multi-turn HH transcripts). */
  skipped: Record<string, number>;
}

export interface Pair {
  instruction: string;
  outputA: string;
  outputB: string;
}

export interface PairsReport {
  matched: number;
  /** Instructions of A with no match in B (first 20 listed) and their count. */
  unmatched_a: { count: number; examples: Array<{ where: string; instruction: string }> };
  unmatched_b: { count: number; examples: Array<{ where: string; instruction: string }> };
  /** Repeated instructions (the first occurrence is used). */
  duplicates_a: { count: number; examples: Array<{ where: string; instruction: string }> };
  duplicates_b: { count: number; examples: Array<{ where: string; instruction: string }> };
  skipped_a: Record<string, number>;
  skipped_b: Record<string, number>;
}

const EXAMPLES = 20;
const short = (s: string): string => (s.length > 120 ? `${s.slice(0, 117)}...` : s);

/** Splits an HH transcript into turns; `null` when it does not start with a Human turn. */
export function parseHhTranscript(text: string): Array<{ role: 'human' | 'assistant'; text: string }> | null {
  const normalised = /^\s*Human:/.test(text) ? `\n\n${text.trimStart()}` : text;
  const parts = normalised.split(/\n\n(Human|Assistant):[ \t]?/);
  if (parts.length < 3 || (parts[0] ?? '').trim() !== '') return null;
  const turns: Array<{ role: 'human' | 'assistant'; text: string }> = [];
  for (let i = 1; i + 1 < parts.length; i += 2) {
    turns.push({ role: parts[i] === 'Human' ? 'human' : 'assistant', text: (parts[i + 1] ?? '').trim() });
  }
  return turns;
}

type Normalised = { ok: true; record: Omit<OutputRecord, 'where'> } | { ok: false; skip?: string; error?: string };

function normalise(row: unknown): Normalised {
  if (row === null || typeof row !== 'object' || Array.isArray(row)) return { ok: false, error: 'not a JSON object' };
  const r = row as Record<string, unknown>;
  const str = (k: string): string | undefined => (typeof r[k] === 'string' ? (r[k] as string) : undefined);
  const generator = str('generator');
  if ('instruction' in r || 'output' in r) {
    const instruction = str('instruction');
    const output = str('output');
    if (instruction === undefined) return { ok: false, error: 'field "instruction" must be a string' };
    if (output === undefined) return { ok: false, error: 'field "output" must be a string' };
    return { ok: true, record: { instruction, output, generator } };
  }
  if (str('post') !== undefined && str('reference_summary') !== undefined) {
    return { ok: true, record: { instruction: str('post')!, output: str('reference_summary')!, generator: generator ?? 'reference' } };
  }
  if (str('prompt') !== undefined && str('chosen') !== undefined) {
    return { ok: true, record: { instruction: str('prompt')!, output: str('chosen')!, generator: generator ?? 'chosen' } };
  }
  if (str('chosen') !== undefined) {
    const turns = parseHhTranscript(str('chosen')!);
    if (turns === null) return { ok: false, error: 'field "chosen" is not an HH transcript ("\\n\\nHuman: … \\n\\nAssistant: …")' };
    if (turns.length !== 2 || turns[0]?.role !== 'human' || turns[1]?.role !== 'assistant') {
      return { ok: false, skip: 'multi-turn HH transcript' };
    }
    return { ok: true, record: { instruction: turns[0].text, output: turns[1].text, generator: generator ?? 'hh-chosen' } };
  }
  return {
    ok: false,
    error: 'expected {instruction, output} (AlpacaEval), {post, reference_summary}, {prompt, chosen} or an HH {chosen} transcript',
  };
}

/** Reads an outputs file; every bad row is reported at once, with its line (JSONL) or item (JSON). */
export async function loadOutputsFile(path: string, label: string): Promise<OutputsFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw new InputError(`--${label} ${path}: cannot read the file`, [(cause as Error).message], { cause });
  }
  // A UTF-8 byte order mark (written by some Windows editors and Excel exports) is not part of the data.
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const rows: Array<{ where: string; value: unknown }> = [];
  if (text.trimStart().startsWith('[')) {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (cause) {
      throw new InputError(`${path}: invalid JSON`, [(cause as Error).message], { cause });
    }
    (value as unknown[]).forEach((v, i) => rows.push({ where: `item ${i}`, value: v }));
  } else {
    const problems: string[] = [];
    const lines = text.split('\n');
    lines.forEach((line, i) => {
      if (line.trim() === '') return;
      try {
        rows.push({ where: `line ${i + 1}`, value: JSON.parse(line) });
      } catch (cause) {
        problems.push(`${path}:${i + 1}: not a JSON object (${(cause as Error).message})`);
      }
    });
    if (problems.length > 0) {
      // A pretty-printed JSON object is not JSONL: say what the file is instead of listing every line.
      const whole = parseJson(text);
      if (whole.ok && whole.value !== null && typeof whole.value === 'object' && !Array.isArray(whole.value)) {
        const arrays = Object.entries(whole.value as Record<string, unknown>)
          .filter(([, v]) => Array.isArray(v))
          .map(([k]) => k);
        throw new InputError(`${path}: one JSON object, not a JSON array of records or JSONL`, [
          'expected a JSON array ([{"instruction": …, "output": …}, …]) or one JSON object a line',
          ...(arrays.length > 0 ? [`the records may be in its field ${arrays.map((k) => JSON.stringify(k)).join(' or ')}: write that array to a file of its own`] : []),
        ]);
      }
      throw new InputError(`${path}: invalid JSONL`, problems.slice(0, 50));
    }
  }
  const records: OutputRecord[] = [];
  const skipped: Record<string, number> = {};
  const problems: string[] = [];
  for (const { where, value } of rows) {
    const n = normalise(value);
    if (n.ok) records.push({ ...n.record, where });
    else if (n.skip !== undefined) skipped[n.skip] = (skipped[n.skip] ?? 0) + 1;
    else problems.push(`${path}: ${where}: ${n.error}`);
  }
  if (problems.length > 0) throw new InputError(`${path}: ${problems.length} bad record(s)`, problems.slice(0, 50));
  if (records.length === 0) throw new InputError(`--${label} ${path}: no usable records`, [`skipped: ${JSON.stringify(skipped)}`]);
  const counts = new Map<string, number>();
  for (const r of records) if (r.generator) counts.set(r.generator, (counts.get(r.generator) ?? 0) + 1);
  const generator = [...counts.entries()].sort((x, y) => y[1] - x[1])[0]?.[0] ?? basename(path).replace(/\.(jsonl?|json)$/, '');
  return { path, records, generator, skipped };
}

function parseJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

function indexByInstruction(records: readonly OutputRecord[]) {
  const first = new Map<string, OutputRecord>();
  const duplicates: Array<{ where: string; instruction: string }> = [];
  for (const r of records) {
    const key = r.instruction.trim();
    if (first.has(key)) duplicates.push({ where: r.where, instruction: short(key) });
    else first.set(key, r);
  }
  return { first, duplicates };
}

/** Matches A and B by instruction. Throws an InputError when nothing matches. */
export function matchPairs(a: OutputsFile, b: OutputsFile): { pairs: Pair[]; report: PairsReport } {
  const ia = indexByInstruction(a.records);
  const ib = indexByInstruction(b.records);
  const pairs: Pair[] = [];
  const unmatchedA: Array<{ where: string; instruction: string }> = [];
  for (const [key, ra] of ia.first) {
    const rb = ib.first.get(key);
    if (rb === undefined) unmatchedA.push({ where: ra.where, instruction: short(key) });
    else pairs.push({ instruction: key, outputA: ra.output, outputB: rb.output });
  }
  const unmatchedB: Array<{ where: string; instruction: string }> = [];
  for (const [key, rb] of ib.first) if (!ia.first.has(key)) unmatchedB.push({ where: rb.where, instruction: short(key) });
  const list = (xs: Array<{ where: string; instruction: string }>) => ({ count: xs.length, examples: xs.slice(0, EXAMPLES) });
  const report: PairsReport = {
    matched: pairs.length,
    unmatched_a: list(unmatchedA),
    unmatched_b: list(unmatchedB),
    duplicates_a: list(ia.duplicates),
    duplicates_b: list(ib.duplicates),
    skipped_a: a.skipped,
    skipped_b: b.skipped,
  };
  if (pairs.length === 0) {
    throw new InputError(`no instruction of ${a.path} appears in ${b.path}`, [
      `${a.records.length} records in A, ${b.records.length} in B; pairs are matched on the instruction text (whitespace-trimmed)`,
      ...unmatchedA.slice(0, 3).map((u) => `A ${u.where}: ${JSON.stringify(u.instruction)}`),
    ]);
  }
  return { pairs, report };
}

/** Log lines describing what did not pair up (empty when everything matched). */
export function describeReport(r: PairsReport): string[] {
  const out: string[] = [];
  const show = (what: string, x: { count: number; examples: Array<{ where: string; instruction: string }> }) => {
    if (x.count === 0) return;
    out.push(`${what}: ${x.count}${x.examples[0] ? ` (first: ${x.examples[0].where}: ${JSON.stringify(x.examples[0].instruction)})` : ''}`);
  };
  show('unmatched instructions in --a', r.unmatched_a);
  show('unmatched instructions in --b', r.unmatched_b);
  show('duplicate instructions in --a (first kept)', r.duplicates_a);
  show('duplicate instructions in --b (first kept)', r.duplicates_b);
  for (const [why, n] of Object.entries(r.skipped_a)) out.push(`skipped in --a: ${n} (${why})`);
  for (const [why, n] of Object.entries(r.skipped_b)) out.push(`skipped in --b: ${n} (${why})`);
  return out;
}
