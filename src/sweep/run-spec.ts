/**
 * The one contract between the sweep and the Python worker: a fully resolved run.
 *
 * `RunSettingsSchema` is what a plan's `base`, its variants and `--set` overrides write; every default
 * lives here and nowhere else. `RunSpecSchema` is one resolved run as sent to the worker; the JSON
 * Schema the worker validates against (`py/dpo_sweep_worker/schema/run_spec.schema.json`) is generated
 * from it by `scripts/export-schema.ts`, and a test fails when the two drift.
 */
import { z } from 'zod';

export const ALGORITHMS = ['dpo', 'beta-dpo', 'dynamic-beta-dpo', 'sft'] as const;
export type Algorithm = (typeof ALGORITHMS)[number];

/** TRL 1.13 `DPOConfig.loss_type` values (a list; several combine through `loss_weights`). */
export const TRL_LOSS_TYPES = [
  'sigmoid',
  'hinge',
  'ipo',
  'exo_pair',
  'nca_pair',
  'robust',
  'bco_pair',
  'sppo_hard',
  'aot',
  'aot_unpaired',
  'apo_zero',
  'apo_down',
  'discopop',
  'sft',
  'sigmoid_norm',
] as const;

const positiveInt = z.number().int().positive();
const nonNegativeInt = z.number().int().nonnegative();

export const DatasetSchema = z
  .strictObject({
    /** Local JSON / JSONL file (relative paths resolve against the plan file's folder). */
    path: z.string().min(1).optional().describe('local JSON or JSONL file'),
    /** Hugging Face dataset id (needs the hub, or a local datasets cache). */
    name: z.string().min(1).optional().describe('Hugging Face dataset id'),
    /** Split expression, with slicing: `train`, `train[:1%]`, `train[100:200]`. */
    split: z.string().default('train').describe('split expression, slicing allowed (train[:1%])'),
    /** Row format; detected from the first row's keys when absent. */
    format: z
      .enum(['hh', 'messages', 'pairs', 'generated'])
      .optional()
      .describe('hh transcripts | messages lists | prompt/chosen/rejected pairs | seed rollout-judged rows; detected when absent'),
    /** Held-out split expression for evaluation (e.g. `test` or `train[90%:]`). */
    eval_split: z.string().optional().describe('held-out split for evaluation'),
    /** Fraction of the training rows held out for evaluation (seed `val_ratio`); used when no `eval_split`. */
    val_ratio: z.number().gt(0).lt(1).optional().describe('fraction held out for evaluation when no eval_split'),
    /** Keep at most this many training rows (after parsing), for quick runs. */
    limit: positiveInt.optional().describe('keep at most this many training rows'),
  })
  .describe('preference or instruction data');

export const TrainingSchema = z
  .strictObject({
    /** Optimizer steps; when set it wins over `epochs`. */
    max_steps: positiveInt.optional().describe('optimizer steps (wins over epochs)'),
    epochs: z.number().positive().default(1).describe('epochs when max_steps is absent'),
    /** Per-device micro-batch size. */
    batch_size: positiveInt.default(8).describe('per-device micro-batch'),
    eval_batch_size: positiveInt.optional().describe('per-device eval batch (default: batch_size)'),
    grad_accum: positiveInt.default(1).describe('gradient accumulation micro-batches per optimizer step'),
    learning_rate: z.number().positive().default(1e-6).describe('AdamW learning rate'),
    scheduler: z
      .enum(['linear', 'cosine', 'constant', 'constant_with_warmup'])
      .default('linear')
      .describe('learning-rate schedule'),
    warmup_steps: nonNegativeInt.default(0).describe('learning-rate warm-up steps'),
    max_grad_norm: z.number().positive().default(1.0).describe('gradient clipping norm'),
    weight_decay: z.number().nonnegative().default(0).describe('AdamW weight decay'),
    /** Prompt + completion tokens; longer rows are truncated at the end. */
    max_length: positiveInt.default(1024).describe('max prompt+completion tokens'),
    /** `auto`: bf16 on CUDA, fp32 on CPU. */
    precision: z.enum(['auto', 'fp32', 'bf16', 'fp16']).default('auto').describe('auto = bf16 on CUDA, fp32 on CPU'),
    /** `auto`: on for CUDA, off on CPU (it only costs time there). */
    gradient_checkpointing: z
      .union([z.boolean(), z.literal('auto')])
      .default('auto')
      .describe('auto = on for CUDA, off on CPU'),
    /** Run the reference once over the data and reuse its log-probs (shared across runs through the cache). */
    precompute_ref_log_probs: z.boolean().default(false).describe('precompute reference log-probs once'),
    seed: z.number().int().nonnegative().default(42).describe('training seed'),
    /** Checkpoint cadence in optimizer steps (execution detail: not part of the run id). */
    save_steps: positiveInt.default(100).describe('checkpoint every N optimizer steps'),
    /** Checkpoints kept on disk (execution detail: not part of the run id). */
    save_total_limit: positiveInt.default(2).describe('checkpoints kept'),
    /** Metrics cadence in optimizer steps (execution detail: not part of the run id). */
    logging_steps: positiveInt.default(1).describe('log metrics every N optimizer steps'),
    eval_steps: positiveInt.optional().describe('evaluate every N optimizer steps (needs held-out data)'),
  })
  .describe('optimisation settings');

export const ResourcesSchema = z
  .strictObject({
    gpus_per_run: positiveInt.default(1).describe('device slots one run takes'),
    processes_per_run: positiveInt.default(1).describe('training processes per run (DDP)'),
  })
  .describe('execution resources (not part of the run id)');

export const RunSettingsSchema = z.strictObject({
  /** `builtin:tiny-llama`, a local directory, a hub id, or `stage:sft`. */
  model: z.string().min(1).default('builtin:tiny-llama').describe('builtin:tiny-llama | local dir | hub id | stage:sft'),
  /** Frozen reference; defaults to `model`. */
  reference: z.string().min(1).optional().describe('frozen reference model (default: model)'),
  dataset: DatasetSchema.default({ split: 'train' }),
  algorithm: z.enum(ALGORITHMS).default('dpo').describe('dpo | beta-dpo | dynamic-beta-dpo | sft'),
  /** DPO temperature β (β₀ for the adaptive algorithms). */
  beta: z.number().positive().default(0.1).describe('DPO beta (beta_0 for adaptive algorithms)'),
  /** TRL loss types for plain `dpo`; several combine through `loss_weights`. */
  loss_type: z.array(z.enum(TRL_LOSS_TYPES)).min(1).default(['sigmoid']).describe('TRL loss types (plain dpo)'),
  loss_weights: z.array(z.number()).min(1).optional().describe('one weight per loss_type'),
  label_smoothing: z.number().min(0).lt(0.5).default(0).describe('TRL label smoothing (robust / exo_pair)'),
  training: TrainingSchema.default(TrainingSchema.parse({})),
  resources: ResourcesSchema.default({ gpus_per_run: 1, processes_per_run: 1 }),
});

export type RunSettings = z.infer<typeof RunSettingsSchema>;
export type RunSettingsInput = z.input<typeof RunSettingsSchema>;

/** Top-level keys of run settings that never change what a run computes (excluded from its id). */
export const EXECUTION_KEYS = ['resources'] as const;
/** `training.*` keys that never change what a run computes (excluded from its id). */
export const EXECUTION_TRAINING_KEYS = ['save_steps', 'save_total_limit', 'logging_steps'] as const;

export const RunSpecSchema = z.strictObject({
  /** Hash of the canonical settings without execution fields (see run-id.ts). */
  id: z.string().regex(/^[a-z0-9-]+$/),
  /** Human name: the variant name plus varied values. */
  name: z.string().min(1),
  sweep: z.string().min(1),
  /** Dotted key → value for the keys this run varies (for tables and reports). */
  varied: z.record(z.string(), z.unknown()),
  settings: RunSettingsSchema,
});
export type RunSpec = z.infer<typeof RunSpecSchema>;
