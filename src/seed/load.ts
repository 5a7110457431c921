/**
 * Seed config file → validated `SeedConfig`, or one `InputError` listing every problem at once
 * (wrong types, bad values, missing keys, each with `file:line:col`), like plans:
 *
 *   read + parse YAML (positions) → apply `--set` (seed key paths) → SeedConfigSchema
 *
 * Unknown keys are warnings (with a did-you-mean), never errors: a seed config may carry keys of a
 * seed branch we do not know. Keys that look like secrets are errors: tokens come from the
 * environment only and must not sit in a file that gets copied into sweep.json and wandb.
 */
import { readFile as fsReadFile } from 'node:fs/promises';
import path from 'node:path';
import { InputError } from '../errors.js';
import { formatIssue, issueMessage } from '../plan/format.js';
import { keysAt } from '../plan/introspect.js';
import { isError, type Issue, type Origin, type Path } from '../plan/issues.js';
import { deleteAt, fromYaml, getLocated, isMapping, originOf, type Located, type OriginTree } from '../plan/origins.js';
import { applySet, parseSet, type SetOverride } from '../plan/overrides.js';
import { closest } from '../plan/suggest.js';
import { parseYaml } from '../plan/yaml.js';
import { fromZod } from '../plan/zod-issues.js';
import { formatSeedMessage, sortMessages, warning, type SeedMessage } from './messages.js';
import { SeedConfigSchema, SeedRolloutSchema, type SeedConfig } from './schema.js';

export interface SeedLoadOptions {
  /** `--set dpo_training.batch_size=2` overrides (seed key paths), applied in order. */
  sets?: readonly string[];
  /** Reads a file as UTF-8 text (default: node:fs). */
  readFile?: (file: string) => Promise<string>;
  /** Base for a relative `file` (default: process.cwd()). */
  cwd?: string;
}

export interface LoadedSeedConfig {
  /** Validated, unknown keys removed, numeric strings made numbers. */
  config: SeedConfig;
  /** Absolute path of the config file. */
  file: string;
  /** The path as given (shown in messages). */
  display: string;
  /** Where every key was written (for locating later messages). */
  origins: OriginTree;
  /** Warnings about unknown keys, located. */
  messages: SeedMessage[];
}

const SECRET_KEY = /(^|_)(token|secret|password|api_?key)s?($|_)/i;

/** Keys of other seed configs (multi_dataset_testing, seed-spec §2.2) that the seed trainers never read. */
const FOREIGN_KEYS: Record<string, string> = {
  max_steps: 'not a key of the seed trainers (they never read it); pass --max-steps N to cap the optimizer steps',
  max_samples: 'not a key of the seed trainers (they never read it); use a split slice in dataset.subset (train[:1000])',
  hf_name: 'never read by the seed',
  experiment_name: 'never read by the seed',
};

/**
 * Names from TRL / Hugging Face `TrainingArguments` and from dpo-sweep plans → the seed's own key
 * name (looked up in the block where the unknown key was written, then in every other block).
 */
const OTHER_NAMES: Record<string, string> = {
  grad_accum: 'gradient_accumulation',
  gradient_accumulation_steps: 'gradient_accumulation',
  num_train_epochs: 'epochs',
  per_device_train_batch_size: 'batch_size',
  per_device_eval_batch_size: 'eval_batch_size',
  logging_steps: 'log_steps',
  lr: 'learning_rate',
  output_dir: 'save_dir',
  beta: 'beta_0',
  warmup: 'beta_warmup',
  ema_lambda: 'lambda',
  momentum: 'm',
  keep_ratio: 'rho',
  model: 'policy_name',
  reference: 'ref_name',
  ref_model: 'ref_name',
  split: 'subset',
  num_return_sequences: 'responses_per_prompt',
  n: 'responses_per_prompt',
  max_tokens: 'max_new_tokens',
  min_tokens: 'min_new_tokens',
};

/** Every seed key: block ('' for the top level) → its keys. */
const SEED_KEYS: readonly (readonly [string, readonly string[]])[] = [
  ['', keysAt(SeedConfigSchema, [])],
  ...keysAt(SeedConfigSchema, [])
    .map((block) => [block, block === 'rollout' ? keysAt(SeedRolloutSchema, []) : keysAt(SeedConfigSchema, [block])] as const)
    .filter(([, keys]) => keys.length > 0),
];

/**
 * For an unknown key that is a seed key of another block (`dataset.beta_warmup`), or another
 * tool's name for one (`dpo_training.grad_accum`): where the seed reads it. Undefined otherwise.
 */
export function seedKeyElsewhere(at: Path): string | undefined {
  const key = String(at.at(-1));
  const block = at.length === 2 ? String(at[0]) : at.length === 1 ? '' : undefined;
  if (block === undefined) return undefined;
  const names = [key, ...(Object.hasOwn(OTHER_NAMES, key) ? [OTHER_NAMES[key]!] : [])];
  const here = SEED_KEYS.find(([b]) => b === block)?.[1] ?? [];
  const same = names.find((n) => n !== key && here.includes(n));
  if (same) return `unknown key — the seed's name for it is ${block ? `${block}.` : ''}${same}`;
  // A key here that the name is the start of (rollout.model → model_name) is what was meant.
  const longer = here.find((k) => k.startsWith(`${key}_`));
  if (longer && closest(key, here) === undefined) return `unknown key — did you mean "${longer}"?`;
  // Another tool's name points elsewhere only when nothing here is spelled like it.
  const wanted = closest(key, here) === undefined ? names : [key];
  const elsewhere = SEED_KEYS.filter(([b]) => b !== block).flatMap(([b, keys]) => wanted.filter((n) => keys.includes(n)).map((n) => (b ? `${b}.${n}` : n)));
  if (elsewhere.length === 0) return undefined;
  return `unknown key ${block ? `in ${block}` : 'at the top level'} — the seed reads ${elsewhere.join(' or ')}`;
}

export async function loadSeedConfig(file: string, options: SeedLoadOptions = {}): Promise<LoadedSeedConfig> {
  const readFile = options.readFile ?? ((f: string) => fsReadFile(f, 'utf8'));
  const absolute = path.resolve(options.cwd ?? process.cwd(), file);
  let text: string;
  try {
    text = await readFile(absolute);
  } catch (error) {
    throw new InputError(`cannot read config ${file}: ${reasonOf(error)}`, [], { cause: error });
  }

  const parsed = parseYaml(text, file);
  // parseYaml words its issues for plans; say "config" here.
  parsed.issues = parsed.issues.map((i) =>
    i.code === 'multiple-documents'
      ? { code: 'custom', message: 'a second YAML document starts here; a seed config holds exactly one (remove the "---" separator)', path: i.path, ...(i.origin ? { origin: i.origin } : {}) }
      : i,
  );
  const top: Origin = { kind: 'file', file, line: 1, col: 1 };
  if (parsed.value === undefined || !isMapping(parsed.value)) {
    const issues = parsed.issues.filter((i) => i.code !== 'empty-plan');
    if (issues.length === 0) {
      const what = parsed.value === undefined ? 'the config is empty' : 'a seed config is a mapping of keys (policy_name, dataset, dpo_training, ...)';
      issues.push({ code: 'custom', message: what, path: [], origin: top });
    }
    throw failure(file, issues, []);
  }

  let doc: Located = fromYaml(parsed.value, parsed.positions, file);
  const issues: Issue[] = [...parsed.issues];
  for (const setText of options.sets ?? []) {
    const origin: Origin = { kind: 'set', text: setText };
    const set = parseSet(setText);
    // In the seed's configs null is a value (`max_batches: null` = every batch), not a removal.
    const applied = 'segments' in set ? (intoValue(doc, set) ?? applySet(doc, set, { nullRemoves: false })) : set;
    if ('code' in applied) issues.push({ ...applied, reason: applied.reason.replace('--set base.beta=0.2', '--set dpo_training.batch_size=4'), path: [], origin });
    else doc = applied.doc;
  }

  const first = SeedConfigSchema.safeParse(doc.value, { reportInput: true });
  const found = first.success ? [] : fromZod(first.error.issues, SeedConfigSchema);
  const messages: SeedMessage[] = [];
  let value = doc.value;
  // A number the YAML could not hold is reported once, by the parser, not again by the schema.
  const outOfRange = new Set(parsed.issues.filter((i) => i.code === 'number-range').map((i) => i.path.join('\0')));
  for (const i of found) {
    if (i.code !== 'unknown-key') {
      if (!outOfRange.has(i.path.join('\0'))) issues.push(i);
    } else if (SECRET_KEY.test(i.key)) {
      issues.push({
        code: 'custom',
        message: 'secrets are read from the environment only (HF_TOKEN, WANDB_API_KEY, ...); remove this key from the file',
        path: i.path,
      });
    } else {
      const elsewhere = seedKeyElsewhere(i.path);
      const text = Object.hasOwn(FOREIGN_KEYS, i.key) ? FOREIGN_KEYS[i.key]! : elsewhere ? `${elsewhere}; ignored` : `${issueMessage(i)}; ignored`;
      messages.push({ ...warning(i.path, text), origin: originOf(doc.origins, i.path) });
      value = deleteAt(value, i.path);
    }
  }
  if (issues.some(isError)) throw failure(file, issues, messages, doc.origins);

  const second = SeedConfigSchema.safeParse(value);
  if (!second.success) {
    // Only unknown keys were left to remove; anything else is a bug in this loader.
    throw failure(file, fromZod(second.error.issues, SeedConfigSchema), messages, doc.origins);
  }
  return { config: second.data, file: absolute, display: file, origins: doc.origins, messages: sortMessages(messages) };
}

/** `--set policy_name.x=1`: a key below a value that is not a block would replace that value. */
function intoValue(doc: Located, set: SetOverride): { code: 'bad-set'; text: string; reason: string } | undefined {
  const { segments } = set;
  for (let n = 1; n < segments.length; n++) {
    const value = getLocated(doc, segments.slice(0, n))?.value;
    if (value === undefined || value === null || isMapping(value)) continue;
    const key = segments.slice(0, n).join('.');
    return { code: 'bad-set', text: set.text, reason: `${key} is a value (${JSON.stringify(value)}), not a block of keys; write --set ${key}=<value>` };
  }
  return undefined;
}

function failure(file: string, issues: readonly Issue[], warnings: readonly SeedMessage[], origins?: OriginTree): InputError {
  const located = issues
    .filter(isError)
    .map((i) => (i.origin || !origins ? i : { ...i, origin: originOf(origins, i.path) }))
    .sort((a, b) => rank(a.origin) - rank(b.origin));
  const seen = new Set<string>();
  const lines = located.map(formatIssue).filter((l) => !seen.has(l) && seen.add(l));
  const n = lines.length;
  return new InputError(`invalid config ${file}: ${n} problem${n === 1 ? '' : 's'}`, [
    ...lines,
    ...sortMessages(warnings).map((w) => `warning: ${formatSeedMessage(w)}`),
  ]);
}

/** File positions first, in order; `--set` overrides after them. */
function rank(origin: Origin | undefined): number {
  if (!origin) return Number.MAX_SAFE_INTEGER;
  return origin.kind === 'set' ? Number.MAX_SAFE_INTEGER - 1 : origin.line * 10_000 + origin.col;
}

function reasonOf(error: unknown): string {
  const code = (error as { code?: unknown })?.code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EISDIR') return 'is a directory';
  if (code === 'EACCES') return 'permission denied';
  return error instanceof Error ? error.message : String(error);
}

