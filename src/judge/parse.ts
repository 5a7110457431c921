/**
 * Reply parsers, by name. Pure and strict: a reply that does not follow the preset's format is
 * `invalid` (with a reason), never a silent tie, and a letter or word inside an explanation is never
 * read as a verdict (the seed matched the English word "a" as label A and read "equally" as a tie).
 *
 * Parsers report the choice by position as shown to the judge (`first` / `second` / `tie`); the
 * caller maps it to A's side through the order.
 *
 * | name            | format                                                                  |
 * |-----------------|-------------------------------------------------------------------------|
 * | `final-label`   | free text, then a last line `<label>: A` or `<label>: B` (opt. `Tie`)   |
 * | `more-helpful`  | `final-label` with label `More helpful` (DPO paper, HH dialogue)        |
 * | `preferred`     | `final-label` with label `Preferred` (DPO paper, TL;DR summaries)       |
 * | `single-token`  | the whole reply is one identifier (default `m` / `M`)                    |
 * | `alpaca-mM`     | `single-token` with `m` = first, `M` = second (AlpacaEval)              |
 */
import { z } from 'zod';

export type Choice = 'first' | 'second' | 'tie';

export type ParseResult =
  | { ok: true; choice: Choice }
  | {
      ok: false;
      /** Stable code: empty | no-verdict-line | verdict-not-last | bad-verdict | tie-not-offered | conflicting-verdicts | not-single-token */
      code: string;
      /** One line for people. */
      detail: string;
    };

export type Parser = (raw: string) => ParseResult;

const finalLabelOptions = z.strictObject({
  /** The label before the colon on the verdict line, e.g. `More helpful`. */
  label: z.string().min(1),
  /** Whether `Tie` is an accepted verdict (default false: the DPO protocols offer only A or B). */
  tie: z.boolean().default(false),
  /** Identifiers of the first and second output (default `A`, `B`; compared case-insensitively). */
  first: z.string().min(1).default('A'),
  second: z.string().min(1).default('B'),
});

const singleTokenOptions = z.strictObject({
  /** Identifier of the output shown first (compared exactly, case-sensitive). */
  first: z.string().min(1).default('m'),
  /** Identifier of the output shown second. */
  second: z.string().min(1).default('M'),
  /** Optional identifier for a tie. */
  tie: z.string().min(1).optional(),
});

export type FinalLabelOptions = z.input<typeof finalLabelOptions>;
export type SingleTokenOptions = z.input<typeof singleTokenOptions>;

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const DECORATION = /^[\s*_`"'#>]+|[\s*_`"'.]+$/g; // markdown bold/italics/code, quotes, a final full stop

export function finalLabelParser(input: FinalLabelOptions): Parser {
  const o = finalLabelOptions.parse(input);
  // "More helpful:" at the start of a line, tolerating markdown such as "**More helpful:** A".
  const labelRe = new RegExp(`^[\\s*_#>\`]*${o.label.trim().split(/\s+/).map(escapeRegExp).join('\\s+')}[\\s*_\`]*:(.*)$`, 'i');
  const pick = (value: string): Choice | 'bad' | 'tie-not-offered' => {
    // "Response A", "Summary B" are the verdict; nothing else may share the line.
    const v = value.replace(DECORATION, '').replace(/^(?:response|summary|output|answer)\s+/i, '').trim();
    if (v.toLowerCase() === o.first.toLowerCase()) return 'first';
    if (v.toLowerCase() === o.second.toLowerCase()) return 'second';
    if (/^tie$/i.test(v)) return o.tie ? 'tie' : 'tie-not-offered';
    return 'bad';
  };
  return (raw: string) => {
    const lines = raw
      .replace(/\r\n?/g, '\n')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.length > 0);
    if (lines.length === 0) return { ok: false, code: 'empty', detail: 'empty reply' };
    const verdictLines: Array<{ index: number; value: string }> = [];
    lines.forEach((line, index) => {
      const m = labelRe.exec(line);
      if (m) verdictLines.push({ index, value: m[1] ?? '' });
    });
    const last = verdictLines[verdictLines.length - 1];
    if (last === undefined) {
      return { ok: false, code: 'no-verdict-line', detail: `no line starting with "${o.label}:"` };
    }
    if (last.index !== lines.length - 1) {
      return { ok: false, code: 'verdict-not-last', detail: `text follows the "${o.label}:" line` };
    }
    const choice = pick(last.value);
    if (choice === 'bad') {
      return {
        ok: false,
        code: 'bad-verdict',
        detail: `"${o.label}:" is followed by ${JSON.stringify(last.value.trim().slice(0, 40))}, not ${o.first} or ${o.second}${o.tie ? ' or Tie' : ''}`,
      };
    }
    if (choice === 'tie-not-offered') {
      return { ok: false, code: 'tie-not-offered', detail: `a tie is not an accepted answer for this preset` };
    }
    for (const earlier of verdictLines.slice(0, -1)) {
      const c = pick(earlier.value);
      if (c !== choice && c !== 'bad') {
        return { ok: false, code: 'conflicting-verdicts', detail: `two "${o.label}:" lines disagree` };
      }
    }
    return { ok: true, choice };
  };
}

export function singleTokenParser(input: SingleTokenOptions = {}): Parser {
  const o = singleTokenOptions.parse(input);
  return (raw: string) => {
    const v = raw.trim();
    if (v.length === 0) return { ok: false, code: 'empty', detail: 'empty reply' };
    if (v === o.first) return { ok: true, choice: 'first' };
    if (v === o.second) return { ok: true, choice: 'second' };
    if (o.tie !== undefined && v === o.tie) return { ok: true, choice: 'tie' };
    return {
      ok: false,
      code: 'not-single-token',
      detail: `reply ${JSON.stringify(v.slice(0, 40))} is not exactly ${o.first} or ${o.second}${o.tie ? ` or ${o.tie}` : ''}`,
    };
  };
}

type ParserFactory = (options: Record<string, unknown>) => Parser;

const PARSERS: Record<string, ParserFactory> = {
  'final-label': (o) => finalLabelParser(o as FinalLabelOptions),
  'more-helpful': (o) => finalLabelParser({ label: 'More helpful', ...o }),
  preferred: (o) => finalLabelParser({ label: 'Preferred', ...o }),
  'single-token': (o) => singleTokenParser(o as SingleTokenOptions),
  'alpaca-mM': (o) => singleTokenParser({ first: 'm', second: 'M', ...o }),
};

export const PARSER_NAMES = Object.keys(PARSERS);

/**
 * The parser called `name`, configured with `options` (validated; throws a ZodError on bad options
 * and an Error naming the known parsers on an unknown name — presets.ts turns both into InputErrors).
 */
export function getParser(name: string, options: Record<string, unknown> = {}): Parser {
  const factory = Object.hasOwn(PARSERS, name) ? PARSERS[name] : undefined;
  if (factory === undefined) throw new Error(`unknown parser "${name}"; known: ${PARSER_NAMES.join(', ')}`);
  return factory(options);
}
