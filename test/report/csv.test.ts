import { describe, expect, it } from 'vitest';
import { aggregate } from '../../src/report/aggregate.js';
import { csvField, resultsCsv, toCsv, variantsCsv } from '../../src/report/csv.js';
import { sweepData } from './helpers.js';

describe('CSV (RFC 4180)', () => {
  it('quotes only fields with a comma, a quote, CR or LF, doubling inner quotes', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
    expect(csvField('cr\rhere')).toBe('"cr\rhere"');
    expect(csvField(' spaced ')).toBe(' spaced ');
  });

  it('writes numbers in full, non-finite as words, missing as empty, objects as JSON', () => {
    expect(csvField(0.1 + 0.2)).toBe('0.30000000000000004');
    expect(csvField(Number.NaN)).toBe('NaN');
    expect(csvField(Number.POSITIVE_INFINITY)).toBe('Infinity');
    expect(csvField(Number.NEGATIVE_INFINITY)).toBe('-Infinity');
    expect(csvField(null)).toBe('');
    expect(csvField(undefined)).toBe('');
    expect(csvField({ a: [1, 2] })).toBe('"{""a"":[1,2]}"');
  });

  it('ends every record with CRLF', () => {
    expect(toCsv(['a', 'b'], [[1, 'x,y']])).toBe('a,b\r\n1,"x,y"\r\n');
  });

  it('results.csv: one row per run with varied values, metrics and the win-rate interval', () => {
    const r = aggregate(
      sweepData([
        { name: 'run "a", first', seed: 1, varied: { 'training.seed': 1, tag: 'x,y' }, loss: 0.5, win: 0.6, ci: [0.55, 0.65] },
        { name: 'b', seed: 2, varied: { 'training.seed': 2, tag: 'z' }, loss: Number.NaN, state: 'failed' },
      ]),
    );
    const lines = resultsCsv(r).split('\r\n');
    expect(lines[0]).toBe(
      'run,id,variant,state,training.seed,tag,step,total,loss,reward_margin,reward_accuracy,beta,eval_loss,win_rate,lc_win_rate,kl,' +
        'win_rate_ci_low,win_rate_ci_high,judge_baseline,judge_pairs,judge_wins,judge_losses,judge_ties,judge_invalid,best,error_class',
    );
    expect(lines[1]).toBe('"run ""a"", first","id-run ""a"", first","run ""a"", first",succeeded,1,"x,y",10,10,0.5,,,0.1,,0.6,0.6,,0.55,0.65,sft,40,24,16,0,0,true,');
    expect(lines[2]).toBe('b,id-b,b,failed,2,z,10,10,NaN,,,0.1,,,,,,,,,,,,,false,nan-loss');
    expect(lines[3]).toBe('');
  });

  it('variants.csv: n, mean, sd and interval per metric', () => {
    const r = aggregate(
      sweepData([
        { name: 'v-seed1', seed: 1, loss: 0.6 },
        { name: 'v-seed2', seed: 2, loss: 0.64 },
        { name: 'v-seed3', seed: 3, loss: 0.68 },
      ]),
    );
    const [head, row] = variantsCsv(r).split('\r\n');
    const cells = Object.fromEntries(head!.split(',').map((h, i) => [h, row!.split(',')[i]]));
    expect(cells).toMatchObject({ variant: 'v', runs: '3', succeeded: '3', seeds: '1 2 3', loss_n: '3' });
    expect(Number(cells.loss_mean)).toBeCloseTo(0.64, 12);
    expect(Number(cells.loss_ci_low)).toBeCloseTo(0.5406345, 6);
    expect(Number(cells.loss_ci_high)).toBeCloseTo(0.7393655, 6);
  });
});
