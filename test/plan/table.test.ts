import { describe, expect, it } from 'vitest';
import { renderPlanTable, stepsText, variedText } from '../../src/plan/table.js';
import { RunSettingsSchema, type RunSpec } from '../../src/sweep/run-spec.js';

const spec = (id: string, name: string, varied: Record<string, unknown>, training: object): RunSpec => ({
  id,
  name,
  sweep: 's',
  varied,
  settings: RunSettingsSchema.parse({ dataset: { name: 'hh' }, training }),
});

describe('renderPlanTable', () => {
  it('renders id, name, varied values and steps, aligned', () => {
    const text = renderPlanTable([
      spec('0123456789ab', 'dpo-beta0.05-seed1', { beta: 0.05, 'training.seed': 1 }, { max_steps: 200 }),
      spec('ba9876543210', 'ipo-beta0.1-seed1', { loss_type: ['ipo'], beta: 0.1, 'training.seed': 1 }, { epochs: 2 }),
      spec('ffffffffffff', 'solo', {}, {}),
    ]);
    // Column widths by hand: id 12, name 18 ("dpo-beta0.05-seed1"), varied 40 ("loss_type=[ipo] beta=0.1 training.seed=1").
    const row = (id: string, name: string, varied: string, steps: string) =>
      `${id.padEnd(12)}  ${name.padEnd(18)}  ${varied.padEnd(40)}  ${steps}`.trimEnd();
    expect(text.split('\n')).toEqual([
      row('id', 'name', 'varied', 'steps'),
      row('-'.repeat(12), '-'.repeat(18), '-'.repeat(40), '-'.repeat(8)),
      row('0123456789ab', 'dpo-beta0.05-seed1', 'beta=0.05 training.seed=1', '200'),
      row('ba9876543210', 'ipo-beta0.1-seed1', 'loss_type=[ipo] beta=0.1 training.seed=1', '2 epochs'),
      row('ffffffffffff', 'solo', '', '1 epoch'),
      '3 runs',
      '',
    ]);
  });

  it('words steps and varied values', () => {
    expect(stepsText(spec('a', 'a', {}, { max_steps: 5, epochs: 3 }))).toBe('5');
    expect(variedText({ lr: 1.23456789e-6, name: 'two words', flag: true })).toBe('lr=0.000001235 name="two words" flag=true');
  });
});
