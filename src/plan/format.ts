/**
 * All plan wording in one place: issue sentences, paths, origins, and the human names of schema
 * types (shared with the generated docs, so an error says what the docs say).
 */
import type { z } from 'zod';
import { defOf, peel, type Def } from './introspect.js';
import type { Issue, IssueData, Origin, Path } from './issues.js';

/** `plan.yaml:12:5` or `--set base.beta=0.2`. */
export function formatOrigin(origin: Origin | undefined): string {
  if (!origin) return '(plan)';
  return origin.kind === 'file' ? `${origin.file}:${origin.line}:${origin.col}` : `--set ${origin.text}`;
}

/** `base.training.batch_size`, `sweep.list[1].name`, `sweep.grid["dynamic_beta.alpha"][0]`. */
export function formatPath(path: Path): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (/^[A-Za-z0-9_-]+$/.test(segment)) out += out ? `.${segment}` : segment;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

/** A value as the user would recognise it, kept short. */
export function showValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'number') return Number.isNaN(value) ? 'NaN' : String(value);
  if (typeof value === 'string') return truncate(JSON.stringify(value), 60);
  if (typeof value === 'boolean' || value === null) return String(value);
  try {
    return truncate(JSON.stringify(value) ?? String(value), 60);
  } catch {
    return String(value);
  }
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

type Messages = { [C in IssueData['code']]: (issue: Extract<IssueData, { code: C }>) => string };

const RANGE_REASON = {
  overflow: 'is out of range (too large for a 64-bit float)',
  'not-finite': 'is not a finite number',
  'unsafe-integer': `is too large for an exact integer (at most ${Number.MAX_SAFE_INTEGER})`,
} as const;

const MESSAGES: Messages = {
  'yaml-syntax': (i) => `YAML syntax error: ${i.reason}`,
  'multiple-documents': () => 'a second YAML document starts here; a plan file holds exactly one (remove the "---" separator)',
  'empty-plan': () => 'the plan is empty; it needs at least a name',
  'number-range': (i) => `${truncate(i.raw, 40)} ${RANGE_REASON[i.reason]}`,
  unreadable: (i) => `cannot read ${i.file}: ${i.reason}`,
  'extends-cycle': (i) => `extends cycle: ${i.chain.join(' → ')}`,
  'bad-set': (i) => i.reason,
  'unset-nothing': (i) => `removes nothing: ${i.text.slice(0, i.text.indexOf('='))} is not set in the plan`,
  'dotted-conflict': (i) => `"${i.key}" sets a value that this mapping also writes elsewhere`,
  'invalid-value': (i) => `expected ${i.expected}, received ${showValue(i.received)}${i.note ? ` (${i.note})` : ''}`,
  missing: (i) => `missing (expected ${i.expected})`,
  'unknown-key': (i) =>
    i.suggestion
      ? `unknown key — did you mean "${i.suggestion}"?`
      : i.allowed.length > 0 && i.allowed.length <= 16
        ? `unknown key — allowed here: ${i.allowed.join(', ')}`
        : 'unknown key',
  custom: (i) => i.message,
  'loss-weights-length': (i) =>
    `${i.weights} loss weight${i.weights === 1 ? '' : 's'} for ${i.lossTypes} loss type${i.lossTypes === 1 ? '' : 's'}; give one weight per loss_type`,
  'loss-type-needs-dpo': (i) => `loss_type [${i.lossType.join(', ')}] only applies to algorithm dpo (this run uses ${i.algorithm})`,
  'unknown-setting': (i) =>
    i.suggestion ? `"${i.key}" is not a run setting — did you mean "${i.suggestion}"?` : `"${i.key}" is not a run setting (see docs/plan.md)`,
  'duplicate-variant': (i) => `variant name "${i.name}" is already used by ${formatPath(i.first)}`,
  'empty-axis': () => 'empty list: the sweep would have no runs',
  'bad-range': (i) =>
    i.reason === 'order' ? `${i.dist} range [${i.lo}, ${i.hi}] needs lo < hi` : `${i.dist} range [${i.lo}, ${i.hi}] needs lo > 0`,
  'dataset-source': (i) =>
    i.found === 'none'
      ? 'no dataset: set dataset.path (a local file) or dataset.name (a hub id)'
      : 'dataset.path and dataset.name are both set; keep one',
  'path-missing': (i) =>
    i.kind === 'file'
      ? `no such file or folder: ${i.value} (a relative dataset.path is read from the folder of the file that wrote it)`
      : i.found === 'file'
        ? `${i.value} is a file; a local model is a folder (config.json, weights, tokenizer)`
        : i.found === 'no-config'
          ? `${i.value} is not a model folder: it has no config.json (nor an adapter's adapter_config.json)`
          : i.found === 'no-weights'
            ? `${i.value} has no model weights (model.safetensors, a sharded index, pytorch_model.bin or an adapter's): a copy or download that did not finish?`
            : `no such model folder: ${i.value} (a hub id is written without ./, ../ or a leading /)`,
  'stage-missing': (i) => `${i.value} needs a stages.${i.stage} section`,
  'axis-overlap': (i) => `"${i.key}" is also varied by ${formatPath(i.other)}; vary each setting in one place`,
  'duplicate-runs': (i) => `runs "${i.first}" and "${i.second}" resolve to the same settings; remove one or make them differ`,
  'duplicate-draws': (i) =>
    `random search drew the same values twice: runs "${i.first}" and "${i.second}" resolve to the same settings; lower the count, change sweep.random.seed, or give the params more values (a choice with few values repeats)`,
  'key-needs-algorithm': (i) =>
    `${i.key} only applies to algorithm ${i.algorithms.join(' or ')}, and no run that takes this value uses it (they use ${i.used.join(', ')})`,
  'sft-preference-key': (i) => `${i.key} is a preference-training setting; algorithm sft does not use it`,
  'dynamic-beta-one-margin': (i) =>
    `dynamic-beta-dpo: each controller update (${i.updateOn}) would see a single margin, which carries no spread, so beta would never move; ` +
    `use batch_size ≥ 2${i.updateOn === 'optimizer_step' ? ', or grad_accum ≥ 2' : ''}, or processes_per_run ≥ 2`,
  'dynamic-beta-bounds': (i) =>
    `dynamic β needs 0 <= dynamic_beta.beta_min <= beta <= dynamic_beta.beta_max; this run has beta_min ${i.betaMin}, beta ${i.beta}, beta_max ${i.betaMax}`,
  'seed-range': (i) => `training seed ${i.seed} is too large: the worker seeds numpy, which takes 0 to ${i.max}`,
  'stage-sft-adapter': () =>
    'the sweep starts from the SFT stage\'s final model, so its LoRA adapter is saved merged: use peft.save: merged (the default)',
  'nodes-split': (i) => `resources.${i.key} is ${i.value}, which does not split evenly over resources.nodes_per_run ${i.nodes} nodes`,
  'eval-steps-no-data': () => 'has no effect: the run has no held-out data (set dataset.val_ratio or dataset.eval_split)',
  'epochs-ignored': () => 'training.epochs is ignored because training.max_steps is set',
  'overridden-by-sweep': (i) => `overridden in every run by ${formatPath(i.by)}`,
};

/** The sentence for an issue, without where. */
export function issueMessage(issue: IssueData): string {
  return (MESSAGES[issue.code] as (i: IssueData) => string)(issue);
}

/** `plan.yaml:12:5  base.training.batch_size: expected a positive integer, received "eight"`. */
export function formatIssue(issue: Issue): string {
  const where = issue.origin ? `${formatOrigin(issue.origin)}  ` : '';
  const path = formatPath(issue.path);
  return path ? `${where}${path}: ${issueMessage(issue)}` : `${where}${issueMessage(issue)}`;
}

// ── schema types in words ──────────────────────────────────────────────────────────────────────

/** What a schema accepts, in words (`a positive integer`, `one of dpo | sft`). */
export function describeType(schema: z.ZodType | undefined, plural = false): string {
  if (!schema) return plural ? 'valid values' : 'a valid value';
  const peeled = peel(schema);
  const custom = peeled.meta?.['type'];
  const text = typeof custom === 'string' && !plural ? custom : describeDef(defOf(peeled.inner), plural);
  return peeled.nullable ? `${text} or null` : text;
}

function describeDef(def: Def, plural: boolean): string {
  const noun = (one: string, many: string) => (plural ? many : one);
  switch (def.type) {
    case 'number':
      return describeNumber(def, plural);
    case 'string': {
      const checks = (def.checks ?? []).map((c) => c._zod.def);
      const regex = checks.find((c) => c['format'] === 'regex')?.['pattern'];
      if (regex instanceof RegExp) return noun(`a string matching ${regex.source}`, `strings matching ${regex.source}`);
      const min = checks.find((c) => c['check'] === 'min_length')?.['minimum'];
      return typeof min === 'number' && min >= 1 ? noun('a non-empty string', 'non-empty strings') : noun('a string', 'strings');
    }
    case 'boolean':
      return plural ? 'booleans' : 'true or false';
    case 'enum':
    case 'literal':
    case 'union': {
      const atoms = atomsOf(def);
      if (atoms) return `${plural ? 'values from' : 'one of'} ${atoms.join(' | ')}`;
      return (def.options ?? []).map((o) => describeType(o, plural)).join(' or ');
    }
    case 'array': {
      const min = (def.checks ?? []).map((c) => c._zod.def).find((c) => c['check'] === 'min_length')?.['minimum'];
      const list = typeof min === 'number' && min >= 1 ? 'non-empty list' : 'list';
      return `${plural ? `${list}s` : `a ${list}`} of ${describeType(def.element, true)}`;
    }
    case 'tuple':
      return noun(`a list of ${def.items?.length ?? 0} values`, `lists of ${def.items?.length ?? 0} values`);
    case 'object':
    case 'record':
      return noun('a mapping', 'mappings');
    case 'null':
      return 'null';
    case 'unknown':
    case 'any':
      return noun('any value', 'values');
    default:
      return noun(`a ${def.type}`, `${def.type}s`);
  }
}

/** Enum values, literals and booleans of a union, flattened (`true | false | auto`). */
function atomsOf(def: Def): string[] | undefined {
  if (def.type === 'enum') return Object.values(def.entries ?? {}).map(String);
  if (def.type === 'literal') return (def.values ?? []).map(String);
  if (def.type === 'boolean') return ['true', 'false'];
  if (def.type !== 'union') return undefined;
  const parts = (def.options ?? []).map((o) => atomsOf(defOf(peel(o).inner)));
  return parts.every((p) => p !== undefined) ? parts.flat() : undefined;
}

function describeNumber(def: Def, plural: boolean): string {
  const checks = (def.checks ?? []).map((c) => c._zod.def);
  const integer = checks.some((c) => c['check'] === 'number_format' && /int/.test(String(c['format'])));
  const lower = checks.find((c) => c['check'] === 'greater_than');
  const upper = checks.find((c) => c['check'] === 'less_than');
  const kind = integer ? (plural ? 'integers' : 'an integer') : plural ? 'numbers' : 'a number';
  if (integer && lower && !upper) {
    const min = Number(lower['value']);
    const inclusive = lower['inclusive'] === true;
    if ((min === 0 && !inclusive) || (min === 1 && inclusive)) return plural ? 'positive integers' : 'a positive integer';
    if (min === 0 && inclusive) return plural ? 'non-negative integers' : 'a non-negative integer';
  }
  const bounds: string[] = [];
  if (lower) bounds.push(`${lower['inclusive'] ? '>=' : '>'} ${String(lower['value'])}`);
  if (upper) bounds.push(`${upper['inclusive'] ? '<=' : '<'} ${String(upper['value'])}`);
  return bounds.length ? `${kind} ${bounds.join(' and ')}` : kind;
}
