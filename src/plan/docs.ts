/**
 * `docs/plan.md`, generated from the schemas: key, type (in the same words as error messages),
 * default and description of every plan field and run setting. `scripts/gen-plan-docs.ts` writes
 * it; a test fails when the file is stale.
 */
import type { z } from 'zod';
import { RunSettingsSchema } from '../sweep/run-spec.js';
import { describeType } from './format.js';
import { defOf, peel, shapeOf } from './introspect.js';
import { EvalSchema, ExecutorSchema, JudgeSchema, PlanSchema, ReportSchema, SETTINGS_SCHEMAS, StagesSchema, SweepSchema } from './schema.js';

interface Row {
  key: string;
  type: string;
  default: string;
  description: string;
}

export function renderPlanDocs(): string {
  const sections: [string, string, z.ZodType, string][] = [
    ['sweep', 'sweep', SweepSchema, 'Runs = list × grid × random draws × seeds, nested in that order (seeds innermost; the last grid key varies fastest). Grid and random keys are dotted settings paths. A random param is `{uniform: [lo, hi]}`, `{log_uniform: [lo, hi]}` (lo > 0, sampled uniformly in log space) or `{choice: [values]}`; the draws depend only on `seed`, `count` and the params in the order written. `uniform` and `log_uniform` give floats: use `choice` for integer settings.'],
    ['stages', 'stages', StagesSchema, 'Stages that run once before the sweep.'],
    ['eval', 'eval', EvalSchema, 'Generation after each run trains.'],
    ['judge', 'judge', JudgeSchema, 'Pairwise judging of each run against a baseline.'],
    ['report', 'report', ReportSchema, 'The sweep report.'],
    ['executor', 'executor', ExecutorSchema, 'Where runs execute. Not part of run ids.'],
  ];
  const out = [
    '# Plan reference',
    '',
    '<!-- Generated from src/plan/schema.ts and src/sweep/run-spec.ts by `npx tsx scripts/gen-plan-docs.ts`; do not edit by hand. -->',
    '',
    'A plan is one YAML document. `dpo-sweep validate plan.yaml` checks it and lists every problem at once,',
    'each as `file:line:col  path: what was expected, what was found`; `dpo-sweep plan plan.yaml` shows the runs.',
    '',
    '- `extends: other.yaml` starts from another plan (relative to this file); this file\'s keys win, mappings',
    '  merge key by key, lists are replaced. `key: null` (or `key:` left empty) removes what the parent set:',
    '  `sweep: {grid: null}` keeps the parent\'s variants and seeds but not its grid.',
    '- `--set a.b=c` overrides any key after `extends` (the value is YAML: `--set base.loss_type=[sigmoid,ipo]`).',
    '  A list item is picked by index or by variant name (`--set sweep.list.ipo.beta=0.2`). `--set a.b=null`',
    '  removes the key or the item (`--set sweep.list.ipo=null`); a plan that extends nothing has no use for null.',
    '- Run settings may be written nested (`training: {batch_size: 4}`) or dotted (`training.batch_size: 4`);',
    '  either form is overridden by `extends` children and `--set` like the other.',
    '- Top-level keys starting with `x-` are ignored: a place for YAML anchors (`x-common: &common {...}`,',
    '  then `base: *common` or `<<: *common`).',
    '- Each run merges `base` ← its list variant ← grid values ← random values ← seed; defaults (below)',
    '  apply to whatever is still unset. Relative `dataset.path` and `./model` folders resolve against the',
    '  file that wrote them, and must exist when the plan is checked (a hub id has no `./`, `../` or leading `/`).',
    '- A run id hashes the resolved settings without execution fields (`resources`, checkpoint and logging',
    '  cadence): editing those keeps finished runs.',
    '',
    '## Top level',
    '',
    ...table(rows(PlanSchema, '', false)),
    '',
    '## Run settings',
    '',
    '`base`, each `sweep.list` variant and `stages.sft` take these keys. A list variant also needs a `name`',
    '(letters, digits, `.`, `_`, `-`; unique in the list), which starts the names of its runs.',
    '',
    ...table(rows(RunSettingsSchema, '', true)),
  ];
  for (const [title, prefix, schema, intro] of sections) {
    out.push('', `## ${title}`, '', intro, '', ...table(rows(schema, prefix, true)));
  }
  return `${out.join('\n')}\n`;
}

function rows(schema: z.ZodType, prefix: string, recurse: boolean): Row[] {
  const shape = shapeOf(schema) ?? {};
  return Object.entries(shape).flatMap(([name, field]) => {
    const key = prefix ? `${prefix}.${name}` : name;
    const peeled = peel(field);
    const settings = SETTINGS_SCHEMAS.has(field) || SETTINGS_SCHEMAS.has(peeled.inner) || isListOfSettings(peeled.inner);
    const row: Row = {
      key,
      type: settings ? (isListOfSettings(peeled.inner) ? 'a non-empty list of variants' : 'run settings') : describeType(field),
      default: peeled.default ? formatDefault(peeled.default.value) : '',
      description: peeled.description ?? '',
    };
    const nested = recurse && !settings && shapeOf(peeled.inner) ? rows(peeled.inner, key, true) : [];
    return [row, ...nested];
  });
}

function isListOfSettings(schema: z.ZodType): boolean {
  const def = defOf(schema);
  return def.type === 'array' && def.element !== undefined && SETTINGS_SCHEMAS.has(def.element);
}

function formatDefault(value: unknown): string {
  if (value === undefined) return '';
  if (Array.isArray(value)) return `\`[${value.map(String).join(', ')}]\``;
  if (value !== null && typeof value === 'object') return 'see fields';
  return `\`${String(value)}\``;
}

function table(rowsIn: Row[]): string[] {
  const cell = (text: string) => text.replaceAll('|', '\\|').replaceAll('\n', ' ');
  return [
    '| key | type | default | description |',
    '| --- | --- | --- | --- |',
    ...rowsIn.map((r) => `| \`${r.key}\` | ${cell(r.type)} | ${cell(r.default)} | ${cell(r.description)} |`),
  ];
}
