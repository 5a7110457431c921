/**
 * Judge presets are data: a folder with `preset.yaml` and the files it names.
 *
 * ```yaml
 * kind: llm                 # or: rule
 * version: 1                # bump when the meaning changes; part of the cache key
 * prompt: prompt.txt        # template with {{instruction}}, {{output_1}}, {{output_2}}
 * system: system.txt        # optional system message
 * reask: reask.txt          # optional follow-up after an unreadable reply ({{detail}} = what was wrong)
 * parser: more-helpful      # a name from parse.ts
 * parser_options: {}        # optional, per parser
 * model: gpt-4o-2024-08-06  # default judge model (--model overrides)
 * temperature: 0
 * max_tokens: 256
 * price: {input_per_mtok: 2.5, output_per_mtok: 10}   # optional, overrides the built-in table
 * ```
 * A `kind: rule` preset needs no key and no network: either `pattern` (a regular expression a good
 * output matches; `flags` optional) or `module` (a JS file exporting
 * `judge({instruction, outputA, outputB}) → 'a' | 'b' | 'tie'`).
 *
 * `--preset NAME` is a folder under the shipped `configs/judges/`; a value containing a path
 * separator or starting with `.` is a folder of your own.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import yaml from 'js-yaml';
import { z } from 'zod';
import { InputError } from '../errors.js';
import { getParser, type Parser } from './parse.js';
import { checkTemplate } from './prompt.js';
import { sha256Hex } from './order.js';

const priceSchema = z.strictObject({
  /** USD per million prompt tokens. */
  input_per_mtok: z.number().nonnegative(),
  /** USD per million completion tokens. */
  output_per_mtok: z.number().nonnegative(),
});

const version = z.union([z.number(), z.string().min(1)]).transform(String);
const fileName = z.string().min(1);

export const llmPresetSchema = z.strictObject({
  kind: z.literal('llm'),
  version,
  description: z.string().optional(),
  prompt: fileName,
  system: fileName.optional(),
  reask: fileName.optional(),
  parser: z.string().min(1),
  parser_options: z.record(z.string(), z.unknown()).default({}),
  model: z.string().min(1),
  temperature: z.number().min(0).max(2).default(0),
  max_tokens: z.number().int().positive().default(256),
  price: priceSchema.optional(),
});

export const rulePresetSchema = z
  .strictObject({
    kind: z.literal('rule'),
    version,
    description: z.string().optional(),
    pattern: z.string().min(1).optional(),
    flags: z.string().regex(/^[dgimsuvy]*$/).optional(),
    module: fileName.optional(),
  })
  .refine((p) => (p.pattern === undefined) !== (p.module === undefined), {
    message: 'a rule preset needs exactly one of `pattern` or `module`',
  });

export const presetFileSchema = z.discriminatedUnion('kind', [llmPresetSchema, rulePresetSchema]);

export type Price = z.infer<typeof priceSchema>;
export type RuleVerdict = 'a' | 'b' | 'tie';
export type RuleJudge = (args: { instruction: string; outputA: string; outputB: string }) => RuleVerdict | Promise<RuleVerdict>;

interface PresetCommon {
  /** Folder name (or the path given). */
  name: string;
  dir: string;
  version: string;
  description?: string | undefined;
}

export interface LlmPreset extends PresetCommon {
  kind: 'llm';
  template: string;
  system?: string | undefined;
  /** Follow-up message after an unreadable reply; `{{detail}}` is replaced by what was wrong. */
  reask: string;
  parserName: string;
  parserOptions: Record<string, unknown>;
  parse: Parser;
  model: string;
  temperature: number;
  maxTokens: number;
  price?: Price | undefined;
}

export interface RulePreset extends PresetCommon {
  kind: 'rule';
  /** What the rule is, for records and logs: `pattern:/…/flags` or `module:rule.mjs`. */
  rule: string;
  judge: RuleJudge;
}

export type JudgePreset = LlmPreset | RulePreset;

export const DEFAULT_REASK =
  'Your previous reply could not be read ({{detail}}). Answer again, following the required format exactly and adding nothing after the final line.';

/** The shipped presets folder: `<package root>/configs/judges`. */
export function builtinPresetsDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'configs', 'judges'))) {
      return join(dir, 'configs', 'judges');
    }
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return resolve('configs', 'judges');
}

/** Names of the presets in a folder (sub-folders holding a `preset.yaml`). */
export function listPresets(presetsDir: string = builtinPresetsDir()): string[] {
  if (!existsSync(presetsDir)) return [];
  return readdirSync(presetsDir)
    .filter((n) => existsSync(join(presetsDir, n, 'preset.yaml')))
    .sort();
}

function looksLikePath(value: string): boolean {
  return value.includes('/') || value.includes(sep) || value.startsWith('.') || isAbsolute(value);
}

/** Resolves `--preset` to a folder, or throws an InputError listing the known presets. */
export function resolvePresetDir(nameOrPath: string, presetsDir: string = builtinPresetsDir()): string {
  if (looksLikePath(nameOrPath)) {
    const dir = resolve(nameOrPath);
    if (!existsSync(join(dir, 'preset.yaml'))) {
      throw new InputError(`preset folder ${dir} has no preset.yaml`, [
        'a custom preset is a folder with preset.yaml and a prompt template (see docs/judge.md)',
      ]);
    }
    return dir;
  }
  const dir = join(presetsDir, nameOrPath);
  if (!existsSync(join(dir, 'preset.yaml'))) {
    throw new InputError(`unknown judge preset "${nameOrPath}"`, [
      `known presets: ${listPresets(presetsDir).join(', ') || '(none)'}`,
      'or pass a folder of your own, e.g. --preset ./my-judge/',
    ]);
  }
  return dir;
}

async function readPresetFile(dir: string, file: string, presetYaml: string): Promise<string> {
  const path = resolve(dir, file);
  try {
    if (!statSync(path).isFile()) throw new Error('not a file');
    return await readFile(path, 'utf8');
  } catch (cause) {
    throw new InputError(`${presetYaml}: cannot read ${file}`, [`expected a file at ${path}`], { cause });
  }
}

/** Loads and validates a preset folder (every problem reported at once, with file and line). */
export async function loadPreset(nameOrPath: string, presetsDir?: string): Promise<JudgePreset> {
  const dir = resolvePresetDir(nameOrPath, presetsDir);
  const presetYaml = join(dir, 'preset.yaml');
  let text: string;
  try {
    if (!statSync(presetYaml).isFile()) throw new Error('not a file');
    text = await readFile(presetYaml, 'utf8');
  } catch (cause) {
    throw new InputError(`${presetYaml}: cannot read the judge preset`, [(cause as Error).message], { cause });
  }
  let data: unknown;
  try {
    data = yaml.load(text, { filename: presetYaml });
  } catch (cause) {
    const mark = (cause as { mark?: { line: number; column: number } }).mark;
    const where = mark ? `${presetYaml}:${mark.line + 1}:${mark.column + 1}` : presetYaml;
    throw new InputError(`${where}: invalid YAML`, [String((cause as Error).message).split('\n')[0] ?? ''], { cause });
  }
  const parsed = presetFileSchema.safeParse(data);
  if (!parsed.success) {
    throw new InputError(
      `${presetYaml}: invalid judge preset`,
      parsed.error.issues.map((i) => `${i.path.length > 0 ? i.path.join('.') : '(top level)'}: ${i.message}`),
    );
  }
  const p = parsed.data;
  const common = { name: nameOrPath, dir, version: p.version, description: p.description };

  if (p.kind === 'llm') {
    const [template, system, reask] = await Promise.all([
      readPresetFile(dir, p.prompt, presetYaml),
      p.system !== undefined ? readPresetFile(dir, p.system, presetYaml) : Promise.resolve(undefined),
      p.reask !== undefined ? readPresetFile(dir, p.reask, presetYaml) : Promise.resolve(DEFAULT_REASK),
    ]);
    const problems = checkTemplate(template).map((m) => `${p.prompt}: ${m}`);
    let parse: Parser | undefined;
    try {
      parse = getParser(p.parser, p.parser_options);
    } catch (cause) {
      const issues = (cause as { issues?: Array<{ path: PropertyKey[]; message: string }> }).issues;
      if (issues) problems.push(...issues.map((i) => `parser_options.${i.path.join('.')}: ${i.message}`));
      else problems.push(`parser: ${(cause as Error).message}`);
    }
    if (problems.length > 0 || parse === undefined) {
      throw new InputError(`${presetYaml}: invalid judge preset`, problems);
    }
    return {
      ...common,
      kind: 'llm',
      template,
      system: system?.trim(),
      reask: reask.trim(),
      parserName: p.parser,
      parserOptions: p.parser_options,
      parse,
      model: p.model,
      temperature: p.temperature,
      maxTokens: p.max_tokens,
      price: p.price,
    };
  }

  if (p.pattern !== undefined) {
    let re: RegExp;
    try {
      re = new RegExp(p.pattern, (p.flags ?? '').replace(/[gy]/g, ''));
    } catch (cause) {
      throw new InputError(`${presetYaml}: invalid pattern`, [(cause as Error).message], { cause });
    }
    const judge: RuleJudge = ({ outputA, outputB }) => {
      const a = re.test(outputA);
      const b = re.test(outputB);
      return a === b ? 'tie' : a ? 'a' : 'b';
    };
    return { ...common, kind: 'rule', rule: `pattern:/${p.pattern}/${p.flags ?? ''}`, judge };
  }

  const modulePath = resolve(dir, p.module as string);
  let mod: { judge?: unknown; default?: unknown };
  try {
    mod = (await import(pathToFileURL(modulePath).href)) as typeof mod;
  } catch (cause) {
    throw new InputError(`${presetYaml}: cannot load rule module ${p.module}`, [(cause as Error).message], { cause });
  }
  const fn = typeof mod.judge === 'function' ? mod.judge : typeof mod.default === 'function' ? mod.default : undefined;
  if (fn === undefined) {
    throw new InputError(`${presetYaml}: rule module ${p.module} exports no judge function`, [
      "export function judge({ instruction, outputA, outputB }) { return 'a' | 'b' | 'tie'; }",
    ]);
  }
  return { ...common, kind: 'rule', rule: `module:${p.module}`, judge: fn as RuleJudge };
}

/**
 * The preset's identity for the cache key: name, version and a hash of everything that shapes a
 * request or its reading (template, system, re-ask text, parser and its options).
 */
export function presetFingerprint(p: LlmPreset): string {
  return sha256Hex(
    JSON.stringify({
      template: p.template,
      system: p.system ?? null,
      reask: p.reask,
      parser: p.parserName,
      parser_options: p.parserOptions,
    }),
  ).slice(0, 16);
}
