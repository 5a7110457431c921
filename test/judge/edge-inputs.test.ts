/**
 * Inputs a researcher meets that the main judge tests do not: files saved with a BOM, a
 * pretty-printed JSON object instead of records, an unreadable preset.yaml, an --out that cannot be
 * written (caught before anything is spent), a blank API key, a judge reply with `$` patterns fed
 * back through the re-ask, and Ctrl-C in the CLI command. The real SDK talks to a local server.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { judgeCommand } from '../../src/judge/command.js';
import { loadOutputsFile } from '../../src/judge/pairs.js';
import { loadPreset } from '../../src/judge/presets.js';
import { runJudge, type JudgeOptions } from '../../src/judge/run.js';
import { startFakeOpenAI, type FakeOpenAI } from '../helpers/fake-openai.js';

const KEY = 'sk-test-edge-0123456789abcdef';
const FAST_RETRY = { baseMs: 5, maxMs: 20, maxAttempts: 2 };

let server: FakeOpenAI;
let work: string;

beforeEach(async () => {
  server = await startFakeOpenAI();
  work = mkdtempSync(join(tmpdir(), 'judge-edge-'));
});
afterEach(async () => {
  await server.close();
  rmSync(work, { recursive: true, force: true });
});

function files(n = 3): { a: string; b: string } {
  const a = join(work, 'a.jsonl');
  const b = join(work, 'b.jsonl');
  writeFileSync(a, Array.from({ length: n }, (_, i) => JSON.stringify({ instruction: `q${i}?`, output: `answer A ${i}`, generator: 'dpo' })).join('\n'));
  writeFileSync(b, Array.from({ length: n }, (_, i) => JSON.stringify({ instruction: `q${i}?`, output: `answer B ${i}`, generator: 'sft' })).join('\n'));
  return { a, b };
}

const options = (f: { a: string; b: string }, extra: Partial<JudgeOptions> = {}): JudgeOptions => ({
  ...f,
  preset: 'hh',
  out: join(work, 'out'),
  cacheDir: join(work, 'cache'),
  retry: FAST_RETRY,
  timeoutMs: 5_000,
  ...extra,
});

async function inputError(p: Promise<unknown>): Promise<InputError> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(InputError);
  return e as InputError;
}

describe('outputs files', () => {
  it('a UTF-8 BOM at the start of a JSON array or a JSONL file is not data', async () => {
    const json = join(work, 'bom.json');
    const jsonl = join(work, 'bom.jsonl');
    writeFileSync(json, `\uFEFF${JSON.stringify([{ instruction: 'q', output: 'x', generator: 'g' }])}`);
    writeFileSync(jsonl, `\uFEFF${JSON.stringify({ instruction: 'q', output: 'y' })}\n${JSON.stringify({ instruction: 'r', output: 'z' })}\n`);
    const a = await loadOutputsFile(json, 'a');
    expect(a.records.map((r) => [r.instruction, r.output])).toEqual([['q', 'x']]);
    const b = await loadOutputsFile(jsonl, 'b');
    expect(b.records.map((r) => [r.instruction, r.output, r.where])).toEqual([
      ['q', 'y', 'line 1'],
      ['r', 'z', 'line 2'],
    ]);
  });

  it('a pretty-printed JSON object says what it is (and where the records may be), not one error per line', async () => {
    const p = join(work, 'wrapped.json');
    writeFileSync(p, JSON.stringify({ model: 'x', data: [{ instruction: 'q', output: 'y' }] }, null, 2));
    const e = await inputError(loadOutputsFile(p, 'a'));
    expect(e.message).toBe(`${p}: one JSON object, not a JSON array of records or JSONL`);
    expect(e.details.join('\n')).toMatch(/field "data"/);
    // A genuinely broken JSONL file still lists its bad lines.
    writeFileSync(p, '{"instruction": "q", "output": "y"}\n{oops\n');
    const e2 = await inputError(loadOutputsFile(p, 'a'));
    expect(e2.message).toBe(`${p}: invalid JSONL`);
    expect(e2.details[0]).toMatch(/:2: not a JSON object/);
  });
});

describe('preset folder', () => {
  it('a preset.yaml that cannot be read is an InputError naming it, not a crash', async () => {
    const dir = join(work, 'bad-preset');
    mkdirSync(join(dir, 'preset.yaml'), { recursive: true }); // a folder where the file should be
    const e = await inputError(loadPreset(dir));
    expect(e.message).toBe(`${join(dir, 'preset.yaml')}: cannot read the judge preset`);
  });
});

describe('runJudge before the first request', () => {
  it('an --out that cannot be written stops with exit-2 input error before any request is sent', async () => {
    const f = files();
    const blocker = join(work, 'a-file');
    writeFileSync(blocker, 'not a folder');
    const e = await inputError(runJudge(options(f, { out: blocker }), { env: { OPENAI_API_KEY: KEY, OPENAI_BASE_URL: server.baseURL } }));
    expect(e.message).toBe(`--out ${blocker}: cannot write judgments there`);
    expect(server.count()).toBe(0);
    // Rule presets too (no request there, but no stack trace either).
    const e2 = await inputError(runJudge(options(f, { preset: 'format-rule', out: join(blocker, 'sub') }), { env: {} }));
    expect(e2.message).toMatch(/cannot write judgments there/);
    // --dry-run writes nothing, so the same --out is fine there.
    const dry = await runJudge(options(f, { out: blocker, dryRun: true }), { env: { OPENAI_API_KEY: KEY, OPENAI_BASE_URL: server.baseURL } });
    expect(dry.planned_requests).toBe(3);
  });

  it('a blank OPENAI_API_KEY counts as missing for an llm preset', async () => {
    const e = await inputError(runJudge(options(files()), { env: { OPENAI_API_KEY: '   ', OPENAI_BASE_URL: server.baseURL } }));
    expect(e.message).toMatch(/OPENAI_API_KEY is not set/);
    expect(server.count()).toBe(0);
  });
});

describe('re-ask', () => {
  it('a reply holding `$\'` or `$&` is quoted literally in the re-ask, not expanded as a replacement pattern', async () => {
    server.setHandler((req) => (req.body.messages.length > 2 ? 'Comparison: fine.\nMore helpful: A' : "Comparison: x\nMore helpful: $' or $&"));
    const s = await runJudge(options(files(1)), { env: { OPENAI_API_KEY: KEY, OPENAI_BASE_URL: server.baseURL } });
    expect(s).toMatchObject({ reasks: 1, invalid: 0 });
    const reask = server.requests.find((r) => r.body.messages.length > 2)!;
    expect(reask.prompt).toContain(`"$' or $&"`);
    const template = readFileSync(join(__dirname, '../../configs/judges/hh/reask.txt'), 'utf8').trim();
    const [before, after] = template.split(/\{\{\s*detail\s*\}\}/);
    expect(reask.prompt.startsWith(before!)).toBe(true);
    expect(reask.prompt.endsWith(after!)).toBe(true);
    // The detail appears once: `$'` would have pasted the rest of the template into it.
    expect(reask.prompt.split(after!.trim()).length).toBe(2);
  });
});

describe('--max-cost reached mid-way', () => {
  it('nothing is lost: judged pairs are cached, and the rerun sends requests only for the pairs the budget stopped', async () => {
    // 100 000 prompt tokens a request at $2.5/M = $0.25 each: far over the estimate, so the budget bites mid-way.
    server.setHandler(() => ({ kind: 'reply', content: 'Comparison: x\nMore helpful: A', usage: { prompt_tokens: 100_000, completion_tokens: 10 } }));
    const f = files(6);
    const env = { OPENAI_API_KEY: KEY, OPENAI_BASE_URL: server.baseURL };
    const first = await runJudge(options(f, { maxCost: 0.6, concurrency: 1 }), { env });
    expect(first).toMatchObject({ stopped: 'budget', requests: 2, invalid: 4, invalid_reasons: { budget: 4 } });
    expect(first.wins + first.losses + first.ties + first.invalid).toBe(6);
    server.setHandler(() => 'Comparison: x\nMore helpful: A');
    const second = await runJudge(options(f, { maxCost: 10, concurrency: 1 }), { env });
    expect(second).toMatchObject({ stopped: null, requests: 4, cache_hits: 2, invalid: 0, n_pairs: 6 });
    expect(server.count()).toBe(6);
    const third = await runJudge(options(f), { env });
    expect(third).toMatchObject({ requests: 0, cache_hits: 6, invalid: 0 });
  });
});

describe('judgeCommand and signals', () => {
  it('SIGINT cancels: unsent pairs end cancelled, the files are written, exit 1; the handlers are removed', async () => {
    server.setHandler(() => ({ kind: 'hang' }));
    const f = files(4);
    const before = new Set(process.listeners('SIGINT'));
    const lines: string[] = [];
    const running = judgeCommand(
      { a: f.a, b: f.b, preset: 'hh', out: join(work, 'out'), cacheDir: join(work, 'cache'), timeout: 30, concurrency: 2 },
      { log: (l) => lines.push(l), env: { OPENAI_API_KEY: KEY, OPENAI_BASE_URL: server.baseURL }, handleSignals: true },
    );
    // Wait for the first requests to be in flight, then deliver "Ctrl-C" to the command's handler.
    for (let i = 0; i < 200 && server.count() < 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(server.count()).toBe(2);
    const ours = process.listeners('SIGINT').filter((l) => !before.has(l));
    expect(ours).toHaveLength(1);
    (ours[0] as () => void)();
    const { exitCode, summary } = await running;
    expect(exitCode).toBe(1);
    expect(summary).toMatchObject({ stopped: 'cancelled', n_pairs: 4, invalid: 4, invalid_reasons: { cancelled: 4 } });
    expect(existsSync(join(work, 'out', 'judgments.jsonl'))).toBe(true);
    expect(readFileSync(join(work, 'out', 'judgments.jsonl'), 'utf8').trim().split('\n')).toHaveLength(4);
    expect(server.count()).toBe(2);
    expect(process.listeners('SIGINT').filter((l) => !before.has(l))).toHaveLength(0);
    expect(lines.join('\n')).toMatch(/stopped early \(cancelled\)/);
  });
});
