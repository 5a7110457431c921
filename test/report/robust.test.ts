/**
 * `dpo-sweep report` on directories that are not quite what the runner writes: JSONL lines that are
 * valid JSON but not objects, a sweep.json whose runs list is damaged, judgment records missing
 * fields, an unreadable status.json, and a report folder that cannot be written. Each gives a report
 * (with a warning) or a clean exit-2 error, never a crash.
 */
import { appendFileSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { reportCommand } from '../../src/cli/commands/report.js';
import type { CliIO } from '../../src/cli/io.js';
import { InputError } from '../../src/errors.js';
import { collectReportData } from '../../src/report/collect.js';
import { writeReport } from '../../src/report/write.js';
import { copyFixture } from './helpers.js';

const RUN = '65859f5a86a3'; // dpo-seed1: succeeded, judged against stage-sft

function sweepJson(dir: string): Record<string, unknown> & { runs: Array<Record<string, unknown>> } {
  return JSON.parse(readFileSync(join(dir, 'sweep.json'), 'utf8'));
}

describe('collectReportData on damaged sweep dirs', () => {
  it('JSONL lines that are JSON but not objects (null, 5) in events and margins are skipped', async () => {
    const dir = copyFixture('sweep');
    const clean = (await collectReportData(dir)).runs.find((r) => r.id === RUN)!;
    appendFileSync(join(dir, 'runs', RUN, 'events.jsonl'), 'null\n5\n"text"\n');
    appendFileSync(join(dir, 'runs', RUN, 'margins', 'epoch_000', 'margins.jsonl'), 'null\n[1,2]\n');
    const run = (await collectReportData(dir)).runs.find((r) => r.id === RUN)!;
    expect(run.steps).toEqual(clean.steps);
    expect(run.margins).toEqual(clean.margins);
  });

  it('sweep.json with a runs entry lacking an id, or runs not a list: the run folders are still reported, with a warning', async () => {
    const dir = copyFixture('sweep');
    const s = sweepJson(dir);
    const total = (await collectReportData(dir)).runs.length;
    s.runs[0] = { name: 'no-id' };
    writeFileSync(join(dir, 'sweep.json'), JSON.stringify(s));
    const data = await collectReportData(dir);
    expect(data.runs).toHaveLength(total); // the id-less entry's folder is still found under runs/
    expect(data.warnings).toContain('sweep.json: 1 run entry has no id; ignored');

    writeFileSync(join(dir, 'sweep.json'), JSON.stringify({ ...s, runs: { a: 1 } }));
    const data2 = await collectReportData(dir);
    // Every run folder is still reported; only the listed run that never started (no folder) is unknown.
    expect(data2.runs.map((r) => r.id).sort()).toEqual(readdirSync(join(dir, 'runs')).sort());
    expect(data2.runs).toHaveLength(total - 1);
    expect(data2.warnings).toContain('sweep.json: "runs" is not a list; runs are taken from runs/');
  });

  it('an unreadable status.json is a warning naming it (the run shows as not started), not silence', async () => {
    const dir = copyFixture('sweep');
    writeFileSync(join(dir, 'runs', RUN, 'status.json'), '{"state": "succ');
    const data = await collectReportData(dir);
    expect(data.runs.find((r) => r.id === RUN)!.state).toBe('missing');
    expect(data.warnings).toContain(`runs/${RUN}/status.json: not readable JSON; the run's state is unknown (shown as not started)`);
  });

  it('judgment records without an instruction (or pair, order, verdict) are dropped with a warning; the report is written', async () => {
    const dir = copyFixture('sweep');
    const file = join(dir, 'runs', RUN, 'judge', 'stage-sft', 'judgments.jsonl');
    const before = readFileSync(file, 'utf8').trim().split('\n').length;
    appendFileSync(file, `${JSON.stringify({ index: 999, pair: 'x', verdict: 'a', order: 'ab' })}\n${JSON.stringify({ index: 998, instruction: 'q', verdict: 'a' })}\n`);
    const data = await collectReportData(dir);
    expect(data.runs.find((r) => r.id === RUN)!.judges[0]!.records).toHaveLength(before);
    expect(data.warnings).toContain(`runs/${RUN}/judge/stage-sft/judgments.jsonl: 2 record(s) without index, pair, instruction, order or verdict; ignored`);
    const { files } = await writeReport(dir);
    expect(files.some((f) => f.endsWith('report.md'))).toBe(true);
  });
});

describe('writing the report', () => {
  const io = () => {
    const err: string[] = [];
    const cli: CliIO = { out: () => undefined, err: (l) => err.push(l), isTTY: false, env: {} };
    return { cli, err };
  };

  it('a report folder that cannot be written is an InputError (exit 2), not a stack trace', async () => {
    const dir = copyFixture('judge-only');
    writeFileSync(join(dir, 'report'), 'a file where the folder goes');
    await expect(writeReport(dir)).rejects.toBeInstanceOf(InputError);
    await expect(writeReport(dir)).rejects.toThrow(`cannot write the report to ${join(dir, 'report')}`);
    rmSync(join(dir, 'report'));
    // plots/ blocked by a file: the same clean error.
    const { files } = await writeReport(dir, { formats: ['json'] });
    expect(files).toHaveLength(1);
    writeFileSync(join(dir, 'report', 'plots'), 'x');
    await expect(writeReport(dir, { formats: ['md'] })).rejects.toThrow(`cannot write the report to ${join(dir, 'report', 'plots')}`);
  });

  it('--format with no format in it is refused (exit 2) instead of writing nothing', async () => {
    const dir = copyFixture('judge-only');
    const { cli, err } = io();
    expect(await reportCommand(dir, { format: ',' }, cli)).toBe(2);
    expect(err[0]).toBe('error: --format: no format given');
  });
});
