/**
 * `dpo-sweep status <dir>` on sweep directories that are not in a clean state: runs not started yet,
 * a damaged status.json, a damaged or foreign sweep.json, a folder that is not a sweep at all.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { statusCommand } from '../../src/cli/commands/status.js';
import { main } from '../../src/cli/main.js';
import type { CliIO } from '../../src/cli/io.js';

function captureIO(): { io: CliIO; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (l) => out.push(l), err: (l) => err.push(l), isTTY: false, env: {} }, out, err };
}

function status(id: string, name: string, state: string, step: number, total: number): string {
  return JSON.stringify({ id, name, state, step, total, attempt: 1, metrics: {}, error_class: null, error: null, log: `/x/${id}.log`, updated_at: '2026-01-01T00:00:00Z' });
}

/** A sweep with a stage run, one finished run, one with a torn status.json and one never started. */
function sweepDir(): string {
  const out = mkdtempSync(join(tmpdir(), 'status-'));
  writeFileSync(
    join(out, 'sweep.json'),
    JSON.stringify({
      name: 'odd',
      stages: [{ id: 'stage1', name: 'odd-sft' }],
      runs: [
        { id: 'done1', name: 'a' },
        { id: 'torn1', name: 'b' },
        { id: 'new1', name: 'c' },
      ],
    }),
  );
  for (const id of ['stage1', 'done1', 'torn1']) mkdirSync(join(out, 'runs', id), { recursive: true });
  writeFileSync(join(out, 'runs', 'stage1', 'status.json'), status('stage1', 'odd-sft', 'running', 1, 2));
  writeFileSync(join(out, 'runs', 'done1', 'status.json'), status('done1', 'a', 'succeeded', 3, 3));
  writeFileSync(join(out, 'runs', 'torn1', 'status.json'), '{"id":"torn1","name":"b","state":"runn');
  writeFileSync(join(out, 'runs', 'torn1', 'spec.json'), JSON.stringify({ id: 'torn1', name: 'b', settings: { training: { max_steps: 7 } } }));
  writeFileSync(join(out, 'runs', '.DS_Store'), 'junk');
  // The sweep's dpo-sweep process is alive (this one): its running run is running.
  writeFileSync(join(out, '.lock'), JSON.stringify({ pid: process.pid, host: hostname(), started: 'now' }));
  return out;
}

describe('dpo-sweep status on odd sweep directories', () => {
  it('lists every planned run: not started and unreadable ones as queued, never silently left out', async () => {
    const out = sweepDir();
    const { io, out: lines } = captureIO();
    expect(await statusCommand(out, { json: true }, io)).toBe(0);
    const json = JSON.parse(lines.join('\n')) as { sweep: string; runs: Array<Record<string, unknown>> };
    expect(json.sweep).toBe('odd');
    expect(json.runs.map((r) => [r['id'], r['name'], r['state'], r['step'], r['total']])).toEqual([
      ['stage1', 'odd-sft', 'running', 1, 2],
      ['done1', 'a', 'succeeded', 3, 3],
      ['torn1', 'b', 'queued', 0, 7],
      ['new1', 'c', 'queued', 0, null],
    ]);
    expect(json.runs[2]!['note']).toMatch(/status\.json is unreadable/);
    expect(json.runs[3]).not.toHaveProperty('note');

    const text = captureIO();
    expect(await statusCommand(out, {}, text.io)).toBe(0);
    const shown = text.out.join('\n');
    expect(shown).toContain('1 succeeded, 0 failed, 3 not finished');
    expect(shown).toMatch(/b \(torn1\): status\.json is unreadable/);
  });

  it('a running run of a sweep whose dpo-sweep process is gone shows as queued, with why', async () => {
    for (const lock of [undefined, JSON.stringify({ pid: 2 ** 22 + 12345, host: hostname(), started: 'then' })]) {
      const out = sweepDir();
      rmSync(join(out, '.lock'));
      if (lock) writeFileSync(join(out, '.lock'), lock); // the lock of a process killed with -9
      const { io, out: lines } = captureIO();
      expect(await statusCommand(out, { json: true }, io)).toBe(0);
      const stage = (JSON.parse(lines.join('\n')) as { runs: Array<Record<string, unknown>> }).runs[0]!;
      expect(stage).toMatchObject({ id: 'stage1', state: 'queued', step: 1, note: expect.stringMatching(/^status\.json says running, but no dpo-sweep process holds this sweep directory/) });
      const text = captureIO();
      await statusCommand(out, {}, text.io);
      expect(text.out.join('\n')).toMatch(/odd-sft \(stage1\): status\.json says running, but no dpo-sweep process/);
    }
  });

  it('treats a status.json holding JSON that is not a run status as unreadable', async () => {
    const out = sweepDir();
    writeFileSync(join(out, 'runs', 'done1', 'status.json'), 'null');
    const { io, out: lines } = captureIO();
    expect(await statusCommand(out, { json: true }, io)).toBe(0);
    const runs = (JSON.parse(lines.join('\n')) as { runs: Array<Record<string, unknown>> }).runs;
    expect(runs.find((r) => r['id'] === 'done1')).toMatchObject({ state: 'queued', note: expect.stringMatching(/unreadable/) });
  });

  it('exits 2 with a clear message, never a stack trace, for a missing dir, an empty dir or a damaged sweep.json', async () => {
    const root = mkdtempSync(join(tmpdir(), 'status-bad-'));
    const empty = join(root, 'empty');
    mkdirSync(empty);
    const cases: Array<[string, string | undefined, RegExp]> = [
      [join(root, 'missing'), undefined, /missing does not exist/],
      [empty, undefined, /is not a sweep directory \(no sweep\.json\)/],
      [join(root, 'torn'), '{"name": "x", "ru', /sweep\.json is not a readable sweep index/],
      [join(root, 'object'), '{}', /sweep\.json is not a readable sweep index/],
      [join(root, 'array'), '[]', /sweep\.json is not a readable sweep index/],
      [join(root, 'escape'), '{"name": "x", "runs": [{"id": "../../etc"}]}', /sweep\.json is not a readable sweep index/],
    ];
    for (const [dir, sweepJson, message] of cases) {
      if (sweepJson !== undefined) {
        mkdirSync(dir);
        writeFileSync(join(dir, 'sweep.json'), sweepJson);
      }
      const { io, err } = captureIO();
      expect(await main(['status', dir, '--json'], io), dir).toBe(2);
      expect(err.join('\n')).toMatch(message);
      expect(err.join('\n')).not.toMatch(/internal error|at .*\.js:\d+/);
    }
  });
});
