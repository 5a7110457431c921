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
    limit: positiveInt.optional().describe('keep at most the first this many training rows (in file order, after val_ratio; preference rows whose prompt fills training.max_length are dropped after it)'),
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
    /** Run the reference once over the data and reuse its log-probs (shared across runs and sweeps through the cache). */
    precompute_ref_log_probs: z
      .union([z.boolean(), z.literal('auto')])
      .default('auto')
      .describe('reference log-probs computed once and shared through the cache; auto = when other runs share the reference and data, or the run sees at least half the rows'),
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
    gpus_per_run: positiveInt
      .default(1)
      .describe('device slots one run takes; on CUDA, more than 1 trains with one process per GPU (unless processes_per_run says otherwise)'),
    processes_per_run: positiveInt
      .default(1)
      .describe('training processes per run (DDP, or FSDP with resources.fsdp; gloo on CPU): N processes × batch_size B train on the same global batches as 1 × N·B'),
    nodes_per_run: positiveInt
      .default(1)
      .describe(
        'nodes one run spans (executor: slurm): its processes (processes_per_run, or one per GPU of gpus_per_run) are split evenly over them, one torchrun per node through srun',
      ),
    /** Passed through to transformers/accelerate (`TrainingArguments.fsdp` / `fsdp_config`) when a run has several processes. */
    fsdp: z
      .union([z.boolean(), z.string().min(1), z.record(z.string(), z.unknown())])
      .default(false)
      .describe(
        'FSDP instead of DDP for a multi-process run, passed to TrainingArguments: false = DDP | true | an fsdp option string ("full_shard auto_wrap") | an fsdp_config mapping (e.g. {version: 2, transformer_layer_cls_to_wrap: [LlamaDecoderLayer]}); ignored with one process; untested on CPU',
      ),
  })
  .describe('execution resources (not part of the run id)');

/** β-DPO (Wu et al. 2024; seed-spec §1.3). β₀ is the run's `beta`. */
export const BetaDpoSchema = z
  .strictObject({
    alpha: z.number().nonnegative().default(0.6).describe('β_used = β₀·(1 + α·(mean kept gap − M0))'),
    momentum: z.number().min(0).lt(1).default(0.9).describe('EMA momentum of M0 and σ (higher = slower)'),
    keep_ratio: z.number().gt(0).max(1).default(0.8).describe('fraction of each batch kept (seed `rho`); k = max(1, floor(B·keep_ratio))'),
    min_beta: z.number().positive().default(1e-3).describe('lower bound of β_used'),
    eps: z.number().positive().default(1e-6).describe('floor of σ'),
  })
  .describe('β-DPO: Gaussian data filter around the running gap mean and an adaptive β (algorithm beta-dpo)');

/** Risk-controlled dynamic β (seed-spec §1.2). β₀ is the run's `beta`. */
export const DynamicBetaSchema = z
  .strictObject({
    delta: z.number().gt(0).lt(1).default(0.1).describe('target exceedance probability δ; τ is the (1−δ) quantile'),
    ema_lambda: z.number().min(0).max(1).default(0.1).describe('weight λ of the new batch quantile in the τ EMA'),
    warmup: z.number().int().positive().default(120).describe('controller updates that only collect margins for τ₀'),
    alpha: z.number().nonnegative().default(0.005).describe('step size of log β per update'),
    gamma: z.number().nonnegative().default(2.0).describe('s = tanh(γ·u)'),
    beta_min: z.number().nonnegative().default(0.001).describe('lower clip of β (0 would let β reach 0, where DPO has no gradient: the worker then uses 1e-3·β₀ and warns)'),
    beta_max: z.number().positive().default(2.0).describe('upper clip of β'),
  })
  .describe('risk-based dynamic β (algorithm dynamic-beta-dpo)');

export const PeftSchema = z
  .strictObject({
    r: positiveInt.default(16).describe('LoRA rank'),
    alpha: z.number().positive().default(32).describe('LoRA alpha'),
    dropout: z.number().min(0).lt(1).default(0.05).describe('LoRA dropout'),
    target_modules: z
      .union([z.array(z.string().min(1)).min(1), z.literal('all-linear')])
      .default('all-linear')
      .describe('modules to adapt'),
    save: z
      .enum(['merged', 'adapter'])
      .default('merged')
      .describe('final/: the base model with the adapter merged in, the adapter itself in final/adapter/ (merged); or the adapter alone (adapter)'),
  })
  .describe('LoRA through peft (the reference is the base model with the adapter disabled)');

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
  beta_dpo: BetaDpoSchema.default(BetaDpoSchema.parse({})),
  dynamic_beta: DynamicBetaSchema.default(DynamicBetaSchema.parse({})),
  /** When the adaptive controllers update: once per optimizer step on all its micro-batches and ranks, or per micro-batch (the seed). */
  update_on: z
    .enum(['optimizer_step', 'micro_batch'])
    .default('optimizer_step')
    .describe('controller cadence: optimizer_step (margins of all micro-batches and ranks) | micro_batch (the seed)'),
  training: TrainingSchema.default(TrainingSchema.parse({})),
  peft: PeftSchema.optional(),
  /** Margins kept in each margin-log record's `sample` (seed `jsonl_sample_size`; ≤ 0 keeps all). */
  margin_log: z
    .strictObject({ sample_size: z.number().int().default(64).describe('margins kept per record (<= 0: all)') })
    .default({ sample_size: 64 })
    .describe('margin logs under runs/<id>/margins/'),
  debug: z
    .strictObject({ samples: nonNegativeInt.default(0).describe('tokenised training rows written to debug_samples.jsonl') })
    .default({ samples: 0 })
    .describe('tokenisation debugging (not part of the run id)'),
  /** Experiment trackers, passed to TRL; the package must be installed. */
  report_to: z.array(z.enum(['wandb', 'tensorboard'])).default([]).describe('trackers passed to TRL (package must be installed)'),
  hub: z
    .strictObject({
      push: z.boolean().default(false).describe('push the final model to the Hugging Face Hub (token from HF_TOKEN only)'),
      model_id: z.string().min(1).optional().describe('target repository'),
    })
    .default({ push: false })
    .describe('Hub upload after training (not part of the run id)'),
  resources: ResourcesSchema.default({ gpus_per_run: 1, processes_per_run: 1, nodes_per_run: 1, fsdp: false }),
});

export type RunSettings = z.infer<typeof RunSettingsSchema>;
export type RunSettingsInput = z.input<typeof RunSettingsSchema>;

/** Top-level keys of run settings that never change what a run computes (excluded from its id). */
export const EXECUTION_KEYS = ['resources', 'debug', 'report_to', 'hub'] as const;
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
