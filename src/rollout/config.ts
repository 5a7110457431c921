/**
 * The seed's rollout config (`config_rollout.yaml`, or any seed config with a `rollout:` block;
 * seed-spec §2.1, §4) → the worker's `rollout` request. Pure apart from the existence checks of
 * local paths (injected).
 *
 *   generator  rollout.model_name ?? policy_name      (through --model-map; a local folder; builtin:; hub id)
 *   prompts    dataset.dataset_name + dataset.subset  (format detected; generated_data: true → generated)
 *   seed       dataset.seed (42)
 *   sampling   responses_per_prompt | k (8), temperature (0.7), top_p (0.9), max_new_tokens (512), min_new_tokens (10)
 *   engine     st → hf (transformers), vllm → vllm (GPU machines)
 *   judge      rm | reward | pairrm → the reward-model judge; reward_model (RLHFlow/ArmoRM-Llama3-8B-v0.1)
 *
 * Defaults are the seed script's code defaults (seed-spec §2.1, "code default"), except
 * `reward_quantization`, which is `none` unless the config asks for 8-bit (the seed defaulted to
 * 8-bit, which needs bitsandbytes and CUDA).
 */
import path from 'node:path';
import { InputError } from '../errors.js';
import { formatIssue, issueMessage } from '../plan/format.js';
import { isError, type Issue, type Path } from '../plan/issues.js';
import { originOf } from '../plan/origins.js';
import { fromZod } from '../plan/zod-issues.js';
import { seedKeyElsewhere, type LoadedSeedConfig } from '../seed/load.js';
import { formatSeedMessage, locate, note, sortMessages, warning, type SeedMessage } from '../seed/messages.js';
import { pathKindOnDisk, resolveSource, type ModelMap, type PathKind } from '../seed/model-map.js';
import { SeedRolloutSchema } from '../seed/schema.js';

/** What the worker's `rollout()` takes (py/dpo_sweep_worker/rollout.py `Settings`). */
export interface RolloutRequest {
  model: string;
  /** The generator as the config names it (manifest `generator_model`). */
  generator_model: string;
  dataset: { source: string; split: string; name: string; format?: 'generated' };
  output_dir: string;
  cache_dir: string;
  seed: number;
  k: number;
  temperature: number;
  top_p: number;
  max_new_tokens: number;
  min_new_tokens: number;
  batch_size: number;
  vllm_batch_size: number;
  gpu_memory_utilization: number;
  limit: number | null;
  engine: 'hf' | 'vllm';
  precision: 'auto' | 'bf16' | 'fp16' | 'fp32';
  device_map: unknown;
  judge: 'rm';
  reward_model: string;
  reward_model_name: string;
  reward_batch_size: number;
  reward_judge_batch_size: number;
  reward_precision: 'bf16' | 'fp16' | 'fp32' | null;
  reward_device_map: unknown;
  reward_max_length: number | null;
  reward_quantization: '8bit' | 'none';
  reward_trust_remote_code: boolean;
  debug_log_path: string | null;
  debug_log_all: boolean;
  debug_log_empty_only: boolean;
  debug_log_max: number | null;
  flush_every_batches: number;
  log_throughput: boolean;
}

export interface RolloutTranslateOptions {
  /** `--limit N`: wins over `rollout.limit`. */
  limit?: number;
  /** `--out DIR`: wins over `rollout.output_dir`. */
  out?: string;
  cacheDir: string;
  modelMap?: ModelMap;
  /** Base of relative paths (output_dir, debug_log_path, local models/data); default process.cwd(). */
  cwd?: string;
  pathKind?: PathKind;
}

export interface RolloutTranslation {
  request: RolloutRequest;
  /** Unknown keys, ignored keys and translation notes, located and in file order. */
  messages: SeedMessage[];
}

/** The seed's default reward model (seed-spec §2.1). */
export const DEFAULT_REWARD_MODEL = 'RLHFlow/ArmoRM-Llama3-8B-v0.1';
const BLOCKS_NOT_READ = ['dpo_training', 'sft_training', 'risk_test', 'beta_update', 'margin_log', 'beta_dpo', 'debug'] as const;
const EIGHT_BIT = new Set(['8bit', 'int8', 'bnb8']);
const NO_QUANT = new Set(['none', 'false', 'no', 'off', '']);

export function translateRolloutConfig(loaded: LoadedSeedConfig, options: RolloutTranslateOptions): RolloutTranslation {
  const c = loaded.config;
  const messages: SeedMessage[] = [];
  const problems: Issue[] = [];
  const cwd = options.cwd ?? process.cwd();
  const kind = options.pathKind ?? pathKindOnDisk;
  const configDir = path.dirname(loaded.file);

  // ── the rollout block: its own schema (the shared seed schema accepts any mapping there) ────────
  const block = c.rollout ?? {};
  const parsed = SeedRolloutSchema.safeParse(block, { reportInput: true });
  let r: Record<string, unknown> = {};
  if (parsed.success) {
    r = parsed.data;
  } else {
    const found = fromZod(parsed.error.issues, SeedRolloutSchema, ['rollout']);
    for (const i of found) {
      if (i.code === 'unknown-key') messages.push(warning(i.path, `${seedKeyElsewhere(i.path) ?? issueMessage(i)}; ignored`));
      else problems.push(i);
    }
    // The keys without problems still count (so every problem is reported at once).
    const bad = new Set(found.map((i) => String(i.path[1])));
    const rest = Object.fromEntries(Object.entries(block).filter(([k]) => !bad.has(k)));
    const again = SeedRolloutSchema.safeParse(rest, { reportInput: true });
    if (again.success) r = again.data;
    else problems.push(...fromZod(again.error.issues, SeedRolloutSchema, ['rollout']));
  }
  if (c.rollout === undefined || c.rollout === null) {
    messages.push(note([], "no rollout block: the seed rollout script's defaults (k 8, temperature 0.7, top_p 0.9, max_new_tokens 512, min_new_tokens 10, engine st)"));
  }
  const get = <T>(key: string): T | undefined => (r[key] === null ? undefined : (r[key] as T | undefined));

  const errors: { path: Path; text: string }[] = [];
  for (const b of BLOCKS_NOT_READ) {
    if (c[b] !== undefined) messages.push(note([b], 'not read by rollout'));
  }

  // ── models and data ─────────────────────────────────────────────────────────────────────────
  const resolve = (value: string, what: 'model' | 'dataset', at: Path): string => {
    const r = resolveSource(options.modelMap ?? new Map(), value, what, [cwd, configDir], kind);
    if (r.mapped) messages.push(note(at, r.mapped));
    if (r.error) errors.push({ path: at, text: r.error });
    return r.value;
  };

  const modelName = get<string>('model_name');
  const generatorAt: Path = modelName ? ['rollout', 'model_name'] : ['policy_name'];
  const generatorModel = modelName ?? c.policy_name;
  if (!modelName) messages.push(note(['policy_name'], 'the generator (no rollout.model_name)'));
  const model = resolve(generatorModel, 'model', generatorAt);

  const d = c.dataset;
  const source = resolve(d.dataset_name, 'dataset', ['dataset', 'dataset_name']);
  const dataset: RolloutRequest['dataset'] = { source, split: d.subset ?? 'train', name: d.dataset_name };
  if (d.generated_data === true) dataset.format = 'generated';
  if (d.chat_template === false) {
    messages.push(warning(['dataset', 'chat_template'], "false is not available: prompts are always rendered with the generator's chat template (one BOS, one assistant header)"));
  }

  // ── sampling ───────────────────────────────────────────────────────────────────────────────────
  const kAlias = get<number>('k');
  const perPrompt = get<number>('responses_per_prompt');
  if (kAlias !== undefined && perPrompt !== undefined && kAlias !== perPrompt) {
    errors.push({ path: ['rollout', 'k'], text: `${kAlias} disagrees with rollout.responses_per_prompt ${perPrompt} (k is its alias); give one` });
  }
  const engineSeed = get<string>('engine') ?? 'st';
  const engine = engineSeed === 'vllm' ? 'vllm' : 'hf';
  if (engineSeed === 'st' && r['engine'] !== undefined) messages.push(note(['rollout', 'engine'], 'st → hf (transformers generate)'));
  if (engine === 'vllm') messages.push(note(['rollout', 'engine'], 'vllm needs the vllm package and a GPU; rollout.engine: st generates with transformers anywhere'));

  // ── judge ──────────────────────────────────────────────────────────────────────────────────────
  const judge = get<string>('judge');
  if (judge === 'pairrm' || judge === 'reward') messages.push(note(['rollout', 'judge'], `${judge} means the reward-model judge (as in the seed)`));
  const rewardModelName = get<string>('reward_model') ?? DEFAULT_REWARD_MODEL;
  if (!get<string>('reward_model')) messages.push(note(['rollout'], `no reward_model: ${DEFAULT_REWARD_MODEL} (the seed's default)`));
  const rewardModel = resolve(rewardModelName, 'model', get<string>('reward_model') ? ['rollout', 'reward_model'] : ['rollout']);
  const quant = r['reward_quantization'];
  let quantization: '8bit' | 'none' = 'none';
  if (get<boolean>('reward_load_in_8bit') === true) quantization = '8bit';
  else if (typeof quant === 'string' && EIGHT_BIT.has(quant.toLowerCase())) quantization = '8bit';
  else if (typeof quant === 'string' && !NO_QUANT.has(quant.toLowerCase())) {
    errors.push({ path: ['rollout', 'reward_quantization'], text: `${JSON.stringify(quant)} is not supported; use 8bit (bitsandbytes, CUDA) or false` });
  } else if (quant === undefined && get<boolean>('reward_load_in_8bit') === undefined) {
    messages.push(note(['rollout'], 'no reward_quantization: the reward model runs in full precision (the seed defaulted to 8-bit; set reward_quantization: 8bit on a CUDA machine with bitsandbytes)'));
  }
  if (quantization === '8bit') messages.push(note(['rollout', 'reward_quantization'], '8-bit needs bitsandbytes and a CUDA device in the worker'));
  const trustRemote = !/^builtin:/.test(rewardModel);
  if (trustRemote) messages.push(note(['rollout', 'reward_model'], "the reward model may run its own code from its repository (trust_remote_code, as in the seed; ArmoRM needs it)"));

  // ── files ──────────────────────────────────────────────────────────────────────────────────────
  const outputDir = path.resolve(cwd, options.out ?? get<string>('output_dir') ?? 'rollout_output');
  const debugPath = get<string>('debug_log_path');
  if (get<string>('upload_repo_id')) {
    messages.push(note(['rollout', 'upload_repo_id'], 'not uploaded by dpo-sweep rollout; push rollout_judged.jsonl yourself (huggingface-cli upload, HF_TOKEN from the environment)'));
  }
  if (r['device_map'] !== undefined && r['device_map'] !== null) messages.push(note(['rollout', 'device_map'], 'passed to from_pretrained (needs accelerate)'));

  if (problems.some(isError) || errors.length > 0) {
    const lines = [
      ...problems.filter(isError).map((i) => formatIssue({ ...i, origin: i.origin ?? originOf(loaded.origins, i.path) })),
      ...errors.map((e) => formatSeedMessage({ level: 'warning', path: e.path, text: e.text, origin: originOf(loaded.origins, e.path) })),
    ];
    throw new InputError(`invalid rollout config ${loaded.display}: ${lines.length} problem${lines.length === 1 ? '' : 's'}`, lines);
  }

  const limit = options.limit ?? get<number>('limit') ?? null;
  const request: RolloutRequest = {
    model,
    generator_model: generatorModel,
    dataset,
    output_dir: outputDir,
    cache_dir: options.cacheDir,
    seed: d.seed ?? 42,
    k: perPrompt ?? kAlias ?? 8,
    temperature: get<number>('temperature') ?? 0.7,
    top_p: get<number>('top_p') ?? 0.9,
    max_new_tokens: get<number>('max_new_tokens') ?? 512,
    min_new_tokens: get<number>('min_new_tokens') ?? 10,
    batch_size: get<number>('batch_size') ?? 4,
    vllm_batch_size: get<number>('vllm_batch_size') ?? get<number>('batch_size') ?? 500,
    gpu_memory_utilization: get<number>('gpu_memory_utilization') ?? 0.9,
    limit,
    engine,
    precision: c.precision ?? 'auto',
    device_map: r['device_map'] ?? null,
    judge: 'rm',
    reward_model: rewardModel,
    reward_model_name: rewardModelName,
    reward_batch_size: get<number>('reward_batch_size') ?? 4,
    reward_judge_batch_size: get<number>('reward_judge_batch_size') ?? 1,
    reward_precision: get<'bf16' | 'fp16' | 'fp32'>('reward_precision') ?? null,
    reward_device_map: r['reward_device_map'] ?? null,
    reward_max_length: get<number>('reward_max_length') ?? null,
    reward_quantization: quantization,
    reward_trust_remote_code: trustRemote,
    debug_log_path: debugPath ? path.resolve(cwd, debugPath) : null,
    debug_log_all: get<boolean>('debug_log_all') ?? false,
    debug_log_empty_only: get<boolean>('debug_log_empty_only') ?? true,
    debug_log_max: get<number>('debug_log_max') ?? null,
    flush_every_batches: get<number>('flush_every_batches') ?? 1,
    log_throughput: get<boolean>('log_throughput') ?? true,
  };
  if (request.min_new_tokens > request.max_new_tokens) {
    // Point at the key the user wrote: min_new_tokens when given, else max_new_tokens (below the default 10).
    const minGiven = get<number>('min_new_tokens') !== undefined;
    const at: Path = minGiven ? ['rollout', 'min_new_tokens'] : ['rollout', 'max_new_tokens'];
    const text = minGiven
      ? `${request.min_new_tokens} is more than max_new_tokens ${request.max_new_tokens}`
      : `${request.max_new_tokens} is less than min_new_tokens ${request.min_new_tokens} (the seed's default; set rollout.min_new_tokens)`;
    throw new InputError(`invalid rollout config ${loaded.display}: 1 problem`, [
      formatSeedMessage({ level: 'warning', path: at, text, origin: originOf(loaded.origins, at) }),
    ]);
  }
  if (request.k < 2) {
    const at: Path = perPrompt !== undefined ? ['rollout', 'responses_per_prompt'] : ['rollout', 'k'];
    messages.push(warning(at, `${request.k} candidate per prompt: no chosen/rejected pair can be formed, so the judge skips every prompt (too_few) and rollout_judged.jsonl stays empty; use 2 or more`));
  }
  return { request, messages: sortMessages(locate([...loaded.messages, ...messages], loaded.origins)) };
}
