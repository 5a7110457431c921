/**
 * The written plan (`plan.yaml`), as in ARCHITECTURE.md "Contracts → Plan shape". `docs/plan.md` is
 * generated from these schemas (`npx tsx scripts/gen-plan-docs.ts`), so every field carries its
 * description here.
 *
 * Run settings are not redefined: `base`, list variants and `stages.sft` use the overrides form of
 * `RunSettingsSchema` (every key optional, no defaults). Defaults are applied once per resolved run,
 * by `RunSettingsSchema` itself, after base ← variant ← sweep values are merged (sweep/expand.ts).
 */
import { z } from 'zod';
import { RetryPolicySchema } from '../schedule/retry.js';
import { RunSettingsSchema, type RunSettings } from '../sweep/run-spec.js';
import { overridesOf, shapeOf } from './introspect.js';

/** A deep-partial of run settings: what a plan layer may write. Arrays are replaced whole. */
export type Overrides<T> = T extends readonly unknown[] ? T : T extends object ? { [K in keyof T]?: Overrides<T[K]> } : T;
export type SettingsOverrides = Overrides<RunSettings>;

const NAME_PATTERN = /^[A-Za-z0-9._-]+$/;
const nameType = 'a name of letters, digits, ".", "_" or "-"';
const positiveInt = z.number().int().positive();
const nonNegativeInt = z.number().int().nonnegative();

/** `base`: run settings shared by every run, as overrides of the defaults. */
export const SettingsOverridesSchema = overridesOf(RunSettingsSchema).describe(
  'run settings shared by every run (see "Run settings")',
) as z.ZodType<SettingsOverrides>;

const overridesShape = shapeOf(SettingsOverridesSchema)!;

export const VariantSchema = z
  .strictObject({
    name: z.string().regex(NAME_PATTERN).meta({ description: 'variant name, unique in the list; starts its run names', type: nameType }),
    ...overridesShape,
  })
  .describe('one variant: a name plus run-settings overrides (nested or dotted keys)') as unknown as z.ZodType<
  SettingsOverrides & { name: string }
>;

export const StageSftSchema = z
  .strictObject({
    ...overridesShape,
    algorithm: z.literal('sft').optional().describe('always sft'),
  })
  .describe('supervised fine-tuning stage run once before the sweep; its output model is `stage:sft`') as unknown as z.ZodType<
  SettingsOverrides & { algorithm?: 'sft' }
>;

const rangeType = 'a list [lo, hi] of two numbers';
export const RandomParamSchema = z
  .union([
    z.strictObject({ uniform: z.tuple([z.number(), z.number()]).meta({ description: 'uniform on [lo, hi)', type: rangeType }) }),
    z.strictObject({
      log_uniform: z.tuple([z.number(), z.number()]).meta({ description: 'log-uniform on [lo, hi), lo > 0', type: rangeType }),
    }),
    z.strictObject({ choice: z.array(z.unknown()).min(1).describe('one of these values, equally likely') }),
  ])
  .meta({
    description: 'distribution of one parameter',
    type: '{uniform: [lo, hi]} | {log_uniform: [lo, hi]} | {choice: [values]}',
  });

export const RandomSchema = z
  .strictObject({
    count: positiveInt.describe('number of draws'),
    seed: nonNegativeInt.max(2 ** 32 - 1).default(0).describe('seed of the draws (same seed, same draws; the generator has 32 bits of state)'),
    params: z.record(z.string().min(1), RandomParamSchema).meta({
      description: 'settings path (dotted) → distribution; sampled in the order written',
      type: 'a mapping of settings path → {uniform: [lo, hi]} | {log_uniform: [lo, hi]} | {choice: [values]}',
    }),
  })
  .describe('random search: `count` draws shared by every variant and grid point');

export const GridSchema = z
  .record(z.string().min(1), z.array(z.unknown()).meta({ description: 'values of one axis', type: 'a list of values' }))
  .meta({
    description: 'settings path (dotted) → list of values; the cartesian product, in the order written',
    type: 'a mapping of settings path → list of values',
  });

export const SweepSchema = z
  .strictObject({
    list: z.array(VariantSchema).min(1).optional().describe('named variants; each run starts from one of them'),
    grid: GridSchema.optional(),
    random: RandomSchema.optional(),
    seeds: z.array(nonNegativeInt).min(1).optional().describe('training seeds (`training.seed`), innermost axis'),
  })
  .describe('runs = list × grid × random draws × seeds');

export const StagesSchema = z
  .strictObject({ sft: StageSftSchema.optional() })
  .describe('stages run before the sweep (default: none; the sweep is one train stage)');

export const EvalSchema = z
  .strictObject({
    prompts: z.string().min(1).optional().describe("prompt file or dataset id (default: the dataset's eval split)"),
    max_new_tokens: positiveInt.optional().describe('tokens generated per prompt'),
    temperature: z.number().nonnegative().optional().describe('sampling temperature (0 = greedy; default 0.7)'),
    top_p: z.number().gt(0).max(1).optional().describe('nucleus sampling (default 0.9)'),
    seed: nonNegativeInt.optional().describe('sampling seed, the same for every run (default 42)'),
    limit: positiveInt.optional().describe('use only the first N prompts'),
    n: positiveInt.optional().describe('completions per prompt'),
  })
  .describe('generation after training, per run');

export const JudgeSchema = z
  .strictObject({
    preset: z.string().min(1).optional().describe('hh | tldr | alpaca | a preset directory'),
    baseline: z.string().min(1).optional().describe('stage:sft | a variant name | reference'),
    model: z.string().min(1).optional().describe('judge model at the OpenAI-compatible endpoint'),
    both_orders: z.boolean().optional().describe('judge every pair in both orders (position bias; disagreeing orders count as a tie)'),
    seed: nonNegativeInt.optional().describe('seed of the per-pair order and the bootstrap (default 42)'),
    concurrency: positiveInt.optional().describe('requests in flight at most (default 8)'),
    max_cost: z.number().nonnegative().optional().describe('USD the judge stage may spend in all, over every run of the sweep (needs a price for the model)'),
  })
  .describe('pairwise LLM-as-judge evaluation against a baseline');

export const ReportSchema = z
  .strictObject({
    formats: z.array(z.enum(['md', 'html', 'json', 'csv'])).min(1).optional().describe('report files to write'),
    metric: z.string().min(1).optional().describe('metric that picks the "best run"'),
  })
  .describe('sweep report');

export const ExecutorSchema = z
  .strictObject({
    kind: z.enum(['local', 'slurm']).optional().describe('where runs execute'),
    partition: z.string().min(1).optional().describe('Slurm partition'),
    account: z.string().min(1).optional().describe('Slurm account'),
    qos: z.string().min(1).optional().describe('Slurm QOS'),
    time: z.string().min(1).optional().describe('Slurm time limit per run (e.g. 04:00:00)'),
    mem: z.string().min(1).optional().describe('Slurm memory per run (e.g. 64G)'),
    cpus_per_run: positiveInt.optional().describe('CPU cores per run'),
    gpus_per_run: positiveInt.optional().describe('GPUs per Slurm task (default: the runs\' resources.gpus_per_run)'),
    max_concurrent: positiveInt.optional().describe('runs at once (Slurm array %N)'),
    extra_sbatch: z.array(z.string()).optional().describe('extra #SBATCH lines'),
    setup: z.array(z.string()).optional().describe('shell lines run before each run (module load, ...)'),
  })
  .describe('execution backend (not part of run ids)');

export const PlanSchema = z.strictObject({
  name: z.string().regex(NAME_PATTERN).meta({ description: 'sweep name (default output folder runs/<name>/)', type: nameType }),
  extends: z.string().min(1).optional().describe("another plan file, relative to this one; this file's keys win"),
  stages: StagesSchema.optional(),
  base: SettingsOverridesSchema.optional(),
  sweep: SweepSchema.optional(),
  eval: EvalSchema.optional(),
  judge: JudgeSchema.optional(),
  report: ReportSchema.optional(),
  executor: ExecutorSchema.optional(),
  retries: RetryPolicySchema.partial().optional().describe('failure handling: retries per failure class, back-off, per-attempt timeout (not part of run ids)'),
});

export type Plan = z.output<typeof PlanSchema>;
export type PlanInput = z.input<typeof PlanSchema>;
export type Variant = z.output<typeof VariantSchema>;
export type RandomParam = z.output<typeof RandomParamSchema>;

/** Schemas that stand for run settings (documented once, in the "Run settings" section). */
export const SETTINGS_SCHEMAS: ReadonlySet<z.ZodType> = new Set<z.ZodType>([SettingsOverridesSchema, VariantSchema, StageSftSchema]);

/** Mappings in a plan whose keys are dotted settings paths (kept as one key, never split). */
export const DOTTED_KEY_RECORDS: readonly (readonly string[])[] = [
  ['sweep', 'grid'],
  ['sweep', 'random', 'params'],
];
