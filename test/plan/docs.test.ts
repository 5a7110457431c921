import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { renderPlanDocs } from '../../src/plan/docs.js';
import { settingPaths } from '../../src/plan/introspect.js';
import { RunSettingsSchema } from '../../src/sweep/run-spec.js';

describe('docs/plan.md', () => {
  it('is up to date with the schemas (regenerate: npx tsx scripts/gen-plan-docs.ts)', () => {
    expect(readFileSync('docs/plan.md', 'utf8')).toBe(renderPlanDocs());
  });

  it('documents every run setting with its default', () => {
    const docs = renderPlanDocs();
    for (const key of settingPaths(RunSettingsSchema)) expect(docs).toContain(`| \`${key}\` |`);
    expect(docs).toContain('| `training.batch_size` | a positive integer | `8` | per-device micro-batch |');
  });
});
