import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { overridesOf, peel, settingPaths, shapeOf } from '../../src/plan/introspect.js';
import { PlanSchema, SettingsOverridesSchema } from '../../src/plan/schema.js';
import { RunSettingsSchema } from '../../src/sweep/run-spec.js';

describe('PlanSchema', () => {
  it('accepts the contract example shape', () => {
    const plan = PlanSchema.parse({
      name: 'beta-scan',
      extends: 'base-plan.yaml',
      stages: { sft: { algorithm: 'sft', dataset: { name: 'hh' } } },
      base: { model: 'stage:sft', dataset: { path: 'd.jsonl', split: 'train', format: 'hh', eval_split: 'test' }, algorithm: 'dpo', beta: 0.1 },
      sweep: {
        list: [{ name: 'dpo' }, { name: 'beta', algorithm: 'beta-dpo' }],
        grid: { beta: [0.05, 0.1] },
        random: { count: 8, seed: 0, params: { beta: { log_uniform: [0.01, 0.5] } } },
        seeds: [1, 2, 3],
      },
      eval: { prompts: 'p.jsonl', max_new_tokens: 64, temperature: 0, n: 1 },
      judge: { preset: 'hh', baseline: 'stage:sft', model: 'gpt-4o' },
      report: { formats: ['md', 'html'], metric: 'win_rate' },
      executor: { kind: 'slurm', partition: 'gpu', extra_sbatch: [], setup: [] },
    });
    expect(plan.sweep?.random?.seed).toBe(0);
  });

  it('applies no run-settings defaults to base or variants (they apply once per resolved run)', () => {
    const plan = PlanSchema.parse({ name: 'x', base: { training: {} }, sweep: { list: [{ name: 'a', dataset: {} }] } });
    expect(plan.base).toEqual({ training: {} });
    expect(plan.sweep?.list).toEqual([{ name: 'a', dataset: {} }]);
    expect(RunSettingsSchema.parse({}).training.batch_size).toBe(8);
  });

  it('keeps leaf constraints and strictness in base, variants and stages', () => {
    expect(PlanSchema.safeParse({ name: 'x', base: { beta: -1 } }).success).toBe(false);
    expect(PlanSchema.safeParse({ name: 'x', base: { training: { nope: 1 } } }).success).toBe(false);
    expect(PlanSchema.safeParse({ name: 'x', sweep: { list: [{ name: 'a', loss_type: ['nope'] }] } }).success).toBe(false);
    expect(PlanSchema.safeParse({ name: 'x', stages: { sft: { algorithm: 'dpo' } } }).success).toBe(false);
    expect(PlanSchema.safeParse({ name: 'bad name' }).success).toBe(false);
    expect(PlanSchema.safeParse({ name: 'x', sweep: { random: { count: 1, params: { beta: { uniform: [1] } } } } }).success).toBe(false);
  });

  it('describes every field (docs are generated from the descriptions)', () => {
    const undocumented: string[] = [];
    const walk = (schema: z.ZodType, path: string) => {
      for (const [key, field] of Object.entries(shapeOf(schema) ?? {})) {
        const peeled = peel(field);
        if (!peeled.description) undocumented.push(`${path}${key}`);
        walk(peeled.inner, `${path}${key}.`);
      }
    };
    walk(PlanSchema, '');
    expect(undocumented).toEqual([]);
  });
});

describe('overrides of run settings are derived, not written out', () => {
  it('follows new run-settings keys without code changes', () => {
    const Extended = RunSettingsSchema.extend({
      dynamic_beta: z.strictObject({ alpha: z.number().nonnegative().default(0.005).describe('risk weight') }).default({ alpha: 0.005 }),
    });
    const overrides = overridesOf(Extended);
    expect(overrides.parse({ dynamic_beta: {} })).toEqual({ dynamic_beta: {} });
    expect(overrides.safeParse({ dynamic_beta: { alpha: -1 } }).success).toBe(false);
    expect(overrides.safeParse({ dynamic_beta: { alhpa: 1 } }).success).toBe(false);
    expect(settingPaths(Extended)).toContain('dynamic_beta.alpha');
    expect(peel(shapeOf(shapeOf(overrides)!['dynamic_beta']!)!['alpha']!).description).toBe('risk weight');
  });

  it('lists every settings path of RunSettingsSchema', () => {
    const paths = settingPaths(RunSettingsSchema);
    expect(paths).toContain('training.batch_size');
    expect(paths).toContain('dataset.path');
    expect(paths).toContain('beta');
    expect(paths).not.toContain('training.nope');
    expect(Object.keys(shapeOf(SettingsOverridesSchema)!)).toEqual(Object.keys(RunSettingsSchema.shape));
  });
});
