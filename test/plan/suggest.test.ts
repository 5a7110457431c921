import { describe, expect, it } from 'vitest';
import { closest, editDistance } from '../../src/plan/suggest.js';

describe('editDistance', () => {
  it('counts insertions, deletions, substitutions and adjacent swaps', () => {
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('trainig', 'training')).toBe(1);
    expect(editDistance('trianing', 'training')).toBe(1);
    expect(editDistance('', 'abc')).toBe(3);
    expect(editDistance('same', 'same')).toBe(0);
  });
});

describe('closest', () => {
  const keys = ['model', 'reference', 'dataset', 'training', 'beta', 'loss_type'];
  it('suggests a likely typo, case-insensitively', () => {
    expect(closest('trainig', keys)).toBe('training');
    expect(closest('Beta', keys)).toBe('beta');
    expect(closest('lossType', keys)).toBe('loss_type');
  });
  it('stays quiet when nothing is close', () => {
    expect(closest('optimizer', keys)).toBeUndefined();
    expect(closest('x', keys)).toBeUndefined();
  });
});
