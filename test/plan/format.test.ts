import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { describeType, formatIssue, formatPath, showValue } from '../../src/plan/format.js';

describe('describeType', () => {
  it.each([
    [z.number().int().positive(), 'a positive integer'],
    [z.number().int().nonnegative(), 'a non-negative integer'],
    [z.number().int(), 'an integer'],
    [z.number().positive(), 'a number > 0'],
    [z.number().min(0).lt(0.5), 'a number >= 0 and < 0.5'],
    [z.number().gt(0).lt(1).optional(), 'a number > 0 and < 1'],
    [z.string(), 'a string'],
    [z.string().min(1).default('x'), 'a non-empty string'],
    [z.boolean(), 'true or false'],
    [z.enum(['a', 'b']), 'one of a | b'],
    [z.union([z.boolean(), z.literal('auto')]), 'one of true | false | auto'],
    [z.array(z.number()).min(1), 'a non-empty list of numbers'],
    [z.array(z.enum(['x', 'y'])), 'a list of values from x | y'],
    [z.array(z.number().int().positive()), 'a list of positive integers'],
    [z.strictObject({}), 'a mapping'],
    [z.string().nullable(), 'a string or null'],
    [z.number().meta({ type: 'a learning rate' }), 'a learning rate'],
  ])('%#: %s', (schema, words) => {
    expect(describeType(schema as z.ZodType)).toBe(words);
  });
});

describe('formatPath / showValue / formatIssue', () => {
  it('writes paths as users write them', () => {
    expect(formatPath(['base', 'training', 'batch_size'])).toBe('base.training.batch_size');
    expect(formatPath(['sweep', 'list', 1, 'name'])).toBe('sweep.list[1].name');
    expect(formatPath(['sweep', 'grid', 'dynamic_beta.alpha', 0])).toBe('sweep.grid["dynamic_beta.alpha"][0]');
    expect(formatPath([])).toBe('');
  });

  it('shows values short and recognisable', () => {
    expect(showValue('eight')).toBe('"eight"');
    expect(showValue(0.1)).toBe('0.1');
    expect(showValue(null)).toBe('null');
    expect(showValue(undefined)).toBe('nothing');
    expect(showValue([1, 'a'])).toBe('[1,"a"]');
    expect(showValue('x'.repeat(100))).toHaveLength(60);
  });

  it('prints where, path and message, or just the message', () => {
    const origin = { kind: 'file' as const, file: 'plan.yaml', line: 12, col: 5 };
    expect(formatIssue({ code: 'invalid-value', expected: 'a positive integer', received: 'eight', path: ['base', 'training', 'batch_size'], origin })).toBe(
      'plan.yaml:12:5  base.training.batch_size: expected a positive integer, received "eight"',
    );
    expect(formatIssue({ code: 'unknown-key', key: 'trainig', allowed: ['training'], suggestion: 'training', path: ['base', 'trainig'], origin })).toBe(
      'plan.yaml:12:5  base.trainig: unknown key — did you mean "training"?',
    );
    expect(formatIssue({ code: 'bad-set', text: 'x', reason: 'nope', path: [], origin: { kind: 'set', text: 'x' } })).toBe('--set x  nope');
    expect(formatIssue({ code: 'empty-axis', key: 'beta', path: ['sweep', 'grid', 'beta'] })).toBe('sweep.grid.beta: empty list: the sweep would have no runs');
  });
});
