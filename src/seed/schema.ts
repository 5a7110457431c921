/**
 * The seed repository's training configs (`config_dpo.yaml`, `config_dpo_original.yaml`,
 * `config_beta_dpo.yaml`, `config_sft.yaml`, `config_rollout.yaml`; seed-spec §2.1) as zod schemas,
 * with the seed's key names. One schema serves every command, as in the seed, where the files share
 * one layout; which blocks a command reads is decided in translate.ts.
 *
 * Leniency where the seed was lenient: YAML 1.1 loads `5e-7` as a string and the seed casts it with
 * `float()`, so numeric strings are numbers here; `yes`/`no`/`on`/`off` are booleans (YAML 1.1).
 * Keys the seed requires (`[...]` reads) are optional here unless no run can be built without them;
 * absent ones take the defaults listed in docs/migrating.md.
 */
import { z } from 'zod';
import { describeType } from '../plan/format.js';

const FLOAT_TEXT = /^[-+]?(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][-+]?\d+)?$/;
const BOOL_TEXT: Record<string, boolean> = { yes: true, no: false, on: true, off: false, y: true, n: false };

/** A number; a numeric string too ("5e-7": YAML 1.1 keeps it a string, the seed applies float()). */
function num<T extends z.ZodType<number>>(inner: T) {
  return z
    .preprocess((v) => (typeof v === 'string' && FLOAT_TEXT.test(v.trim()) ? Number(v.trim().replaceAll('_', '')) : v), inner)
    .meta({ type: describeType(inner) });
}

/** A boolean; YAML 1.1 words (yes/no/on/off) too, as PyYAML reads them. */
const bool = z
  .preprocess((v) => (typeof v === 'string' && Object.hasOwn(BOOL_TEXT, v.toLowerCase()) ? BOOL_TEXT[v.toLowerCase()] : v), z.boolean())
  .meta({ type: 'true or false' });

// Integers too may be written `1_000` (YAML 1.1 digit grouping, read as 1000 by the seed's PyYAML).
const int = num(z.number().int());
const positiveInt = num(z.number().int().positive());
const nonNegativeInt = num(z.number().int().nonnegative());
const text = z.string().min(1);
/** Read by nobody in the seed: any value, warned about by translate.ts. */
const unused = z.unknown();

/**
 * A Hugging Face split expression, as `load_dataset(split=…)` and the worker (py/.../data/split.py)
 * read it: `train`, `train[:30%]`, `train[100:200]`, `train[:10%]+test[:10]`, `train[:1%](pct1_dropremainder)`.
 */
const SPLIT_PART = String.raw`\w+(?:\.\w+)*(?:\[(?:-?[\d_]+%?)?:(?:-?[\d_]+%?)?\])?(?:\((?:closest|pct1_dropremainder)\))?`;
const SPLIT_TEXT = new RegExp(String.raw`^\s*${SPLIT_PART}(?:\s*\+\s*${SPLIT_PART})*\s*$`);
const splitExpression = text
  .refine((v) => SPLIT_TEXT.test(v), { message: 'expected a split expression such as train, train[:30%], train[100:200] or train[:10%]+test[:10%]' })
  .meta({ type: 'a split expression (train[:30%])' });

export const SeedDatasetSchema = z.strictObject({
  /** HF dataset id, or a local file/folder (or a model-map entry). */
  dataset_name: text,
  generated_data: bool.optional(),
  chat_template: bool.optional(),
  subset: splitExpression.optional(),
  val_ratio: num(z.number().gt(0).lt(1)).optional(),
  /** Becomes training.seed, which also seeds numpy: 0 … 2**32 − 1. */
  seed: num(z.number().int().nonnegative().max(2 ** 32 - 1)).optional(),
  max_len: unused.optional(),
  /** [FIX2] → TRL DPOConfig, where null means no limit (TRL's default for max_completion_length). */
  max_prompt_length: positiveInt.nullable().optional(),
  max_completion_length: positiveInt.nullable().optional(),
  max_length: positiveInt.nullable().optional(),
  truncation_mode: z.enum(['keep_end', 'keep_start']).optional(),
});

export const SeedDpoTrainingSchema = z.strictObject({
  epochs: num(z.number().positive()).optional(),
  batch_size: positiveInt.optional(),
  eval_batch_size: positiveInt.optional(),
  learning_rate: num(z.number().positive()).optional(),
  log_steps: positiveInt.optional(),
  eval_steps: positiveInt.optional(),
  save_steps: positiveInt.optional(),
  gradient_accumulation: positiveInt.optional(),
  max_grad_norm: num(z.number().positive()).optional(),
  warmup_steps: nonNegativeInt.optional(),
  /** Truthy ⇒ wandb; also the wandb project name in the seed. */
  report: z.union([z.string(), z.boolean(), z.null()]).optional(),
  wandb_project: z.string().nullable().optional(),
  run_name: text.optional(),
  save_dir: text.optional(),
  save_dpo_dir: unused.optional(),
  hub_model_id: text.nullable().optional(),
  /** dpo-sweep addition: the seed's train-beta-dpo pushed whenever hub_model_id was set. */
  push_to_hub: bool.optional(),
});

export const SeedSftTrainingSchema = z.strictObject({
  learning_rate: num(z.number().positive()).optional(),
  batch_size: positiveInt.optional(),
  eval_batch_size: positiveInt.optional(),
  epochs: num(z.number().positive()).optional(),
  log_steps: positiveInt.optional(),
  eval_steps: positiveInt.optional(),
  save_steps: positiveInt.optional(),
  warmup_steps: nonNegativeInt.optional(),
  max_length: positiveInt.optional(),
  save_dir: text.optional(),
  save_only_model: bool.optional(),
  wandb_project: z.string().nullable().optional(),
  run_name: text.optional(),
  push_to_hub: bool.optional(),
  hub_model_id: text.nullable().optional(),
});

export const SeedRiskTestSchema = z.strictObject({
  delta: num(z.number().gt(0).lt(1)).optional(),
  lambda: num(z.number().min(0).max(1)).optional(),
  beta_warmup: nonNegativeInt.optional(),
});

export const SeedBetaUpdateSchema = z.strictObject({
  beta_0: num(z.number().positive()).optional(),
  gamma: num(z.number().nonnegative()).optional(),
  alpha: num(z.number().nonnegative()).optional(),
  beta_max: num(z.number().positive()).optional(),
  beta_min: num(z.number().nonnegative()).optional(),
});

export const SeedMarginLogSchema = z.strictObject({
  jsonl_sample_size: int.optional(),
  save_per_rank: bool.optional(),
  log_dir: text.optional(),
  dpo_log_dir: unused.optional(),
});

export const SeedBetaDpoSchema = z.strictObject({
  beta_0: num(z.number().positive()).optional(),
  m: num(z.number().min(0).lt(1)).optional(),
  rho: num(z.number().gt(0).max(1)).optional(),
  alpha: num(z.number().nonnegative()).optional(),
  min_beta: num(z.number().positive()).optional(),
  eps: num(z.number().positive()).optional(),
  log_margins: bool.optional(),
  log_dir: text.optional(),
});

export const SeedDebugSchema = z.strictObject({
  enabled: bool.optional(),
  output_dir: text.optional(),
  log_all_batches: bool.optional(),
  max_batches: positiveInt.nullable().optional(),
  first_n: nonNegativeInt.optional(),
  random_n: nonNegativeInt.optional(),
  console_n: nonNegativeInt.optional(),
});

/**
 * `rollout:` (read by the seed's rollout script, seed-spec §4). Training commands accept any mapping
 * here and say they ignore it; this schema is for the rollout command.
 */
export const SeedRolloutSchema = z.strictObject({
  engine: z.enum(['st', 'vllm']).optional(),
  vllm_batch_size: positiveInt.nullable().optional(),
  gpu_memory_utilization: num(z.number().gt(0).max(1)).optional(),
  model_name: text.nullable().optional(),
  output_dir: text.optional(),
  upload_repo_id: text.nullable().optional(),
  batch_size: positiveInt.optional(),
  responses_per_prompt: positiveInt.optional(),
  k: positiveInt.optional(),
  temperature: num(z.number().nonnegative()).optional(),
  top_p: num(z.number().gt(0).max(1)).optional(),
  max_new_tokens: positiveInt.optional(),
  min_new_tokens: nonNegativeInt.optional(),
  limit: positiveInt.nullable().optional(),
  device_map: z.union([z.string(), z.record(z.string(), z.unknown())]).nullable().optional(),
  judge: z.enum(['rm', 'reward', 'pairrm']).optional(),
  reward_model: text.optional(),
  reward_batch_size: positiveInt.optional(),
  reward_judge_batch_size: positiveInt.optional(),
  reward_precision: z.enum(['bf16', 'fp16', 'fp32']).nullable().optional(),
  reward_device_map: z.union([z.string(), z.record(z.string(), z.unknown())]).nullable().optional(),
  reward_max_length: positiveInt.nullable().optional(),
  reward_quantization: z.union([z.string(), z.literal(false), z.null()]).optional(),
  reward_load_in_8bit: bool.optional(),
  debug_log_path: text.nullable().optional(),
  debug_log_all: bool.optional(),
  debug_log_empty_only: bool.optional(),
  debug_log_max: positiveInt.nullable().optional(),
  flush_every_batches: positiveInt.optional(),
  log_throughput: bool.optional(),
});

export const SeedConfigSchema = z.strictObject({
  policy_name: text,
  ref_name: text.optional(),
  /** `bf16` → bf16, `fp16` → fp16, anything else fp32 in the seed; here one of the three. */
  precision: z.enum(['bf16', 'fp16', 'fp32']).optional(),
  use_fsdp: bool.optional(),
  dataset: SeedDatasetSchema,
  dpo_training: SeedDpoTrainingSchema.optional(),
  sft_training: SeedSftTrainingSchema.optional(),
  risk_test: SeedRiskTestSchema.optional(),
  beta_update: SeedBetaUpdateSchema.optional(),
  margin_log: SeedMarginLogSchema.optional(),
  beta_dpo: SeedBetaDpoSchema.optional(),
  debug: SeedDebugSchema.optional(),
  rollout: z.record(z.string(), z.unknown()).nullable().optional(),
});

export type SeedConfig = z.output<typeof SeedConfigSchema>;
export type SeedConfigInput = z.input<typeof SeedConfigSchema>;

/** Keys present in seed configs that the seed itself never reads (seed-spec §2.1 "unused"). */
export const NEVER_READ: readonly { path: readonly string[]; reason: string }[] = [
  { path: ['dataset', 'max_len'], reason: 'never read by the seed (sequence lengths are dataset.max_length and sft_training.max_length)' },
  { path: ['dpo_training', 'save_dpo_dir'], reason: 'never read by the seed' },
  { path: ['margin_log', 'dpo_log_dir'], reason: 'never read by the seed' },
];
