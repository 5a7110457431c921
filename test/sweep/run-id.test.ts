import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/plan/canonical.js';
import { runId } from '../../src/sweep/run-id.js';
import { EXECUTION_KEYS, EXECUTION_TRAINING_KEYS, RunSettingsSchema, type RunSettings } from '../../src/sweep/run-spec.js';

const settings = (input: object = {}): RunSettings => RunSettingsSchema.parse({ dataset: { name: 'hh' }, ...input });

/** Independent canonical form: JSON.stringify with a replacer that rebuilds objects with sorted keys. */
function expectedId(s: RunSettings): string {
  const copy = structuredClone(s) as Record<string, unknown>;
  for (const key of EXECUTION_KEYS) delete copy[key];
  for (const key of EXECUTION_TRAINING_KEYS) delete (copy['training'] as Record<string, unknown>)[key];
  const text = JSON.stringify(copy, (_key, value: unknown) =>
    value && typeof value === 'object' && !Array.isArray(value)
      ? Object.fromEntries(Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)))
      : value,
  );
  return createHash('sha256').update(text).digest('hex').slice(0, 12);
}

describe('canonicalJson', () => {
  it('sorts keys at every level and keeps array order', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { f: 1, e: 2 }], c: null } })).toBe('{"a":{"c":null,"d":[3,{"e":2,"f":1}]},"b":1}');
    expect(canonicalJson({ a: undefined, b: 'x' })).toBe('{"b":"x"}');
  });
});

describe('runId', () => {
  it('is the first 12 hex chars of sha256 over the canonical settings without execution fields', () => {
    const s = settings({ beta: 0.2, training: { max_steps: 5 } });
    expect(runId(s)).toMatch(/^[0-9a-f]{12}$/);
    expect(runId(s)).toBe(expectedId(s));
  });

  it('does not depend on key order', () => {
    const a = settings({ beta: 0.2, algorithm: 'dpo', training: { batch_size: 2, grad_accum: 4 } });
    const reordered = Object.fromEntries(Object.entries(a).reverse()) as RunSettings;
    reordered.training = Object.fromEntries(Object.entries(a.training).reverse()) as RunSettings['training'];
    expect(JSON.stringify(reordered)).not.toBe(JSON.stringify(a));
    expect(runId(reordered)).toBe(runId(a));
  });

  it('ignores execution fields', () => {
    const base = settings();
    expect(runId(settings({ resources: { gpus_per_run: 4, processes_per_run: 2 } }))).toBe(runId(base));
    expect(runId(settings({ training: { save_steps: 7, save_total_limit: 9, logging_steps: 3 } }))).toBe(runId(base));
  });

  it('changes with anything that changes what a run computes', () => {
    const base = runId(settings());
    expect(runId(settings({ beta: 0.2 }))).not.toBe(base);
    expect(runId(settings({ training: { seed: 1 } }))).not.toBe(base);
    expect(runId(settings({ training: { learning_rate: 2e-6 } }))).not.toBe(base);
    expect(runId(settings({ loss_type: ['ipo'] }))).not.toBe(base);
    expect(runId(settings({ dataset: { name: 'other' } }))).not.toBe(base);
  });
});
