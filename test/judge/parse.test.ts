import { describe, expect, it } from 'vitest';
import { finalLabelParser, getParser, PARSER_NAMES, singleTokenParser } from '../../src/judge/parse.js';

const hh = getParser('more-helpful');
const tldr = getParser('preferred');
const alpaca = getParser('alpaca-mM');

describe('final-label parser (HH "More helpful", TL;DR "Preferred")', () => {
  const table: Array<[string, string, ReturnType<typeof hh>]> = [
    ['the protocol format', 'Comparison: A answers the question, B does not.\nMore helpful: A', { ok: true, choice: 'first' }],
    ['B', 'Comparison: B is clearer.\nMore helpful: B', { ok: true, choice: 'second' }],
    ['markdown bold', '**Comparison:** B is clearer.\n**More helpful:** B', { ok: true, choice: 'second' }],
    ['bold label, colon outside', 'Comparison: x\n**More helpful**: A', { ok: true, choice: 'first' }],
    ['"Response A" and a full stop', 'Comparison: x\nMore helpful: Response A.', { ok: true, choice: 'first' }],
    ['CRLF and trailing blank lines', 'Comparison: x\r\nMore helpful: B\r\n\r\n', { ok: true, choice: 'second' }],
    ['label case', 'Comparison: x\nmore helpful: a', { ok: true, choice: 'first' }],
    ['no comparison line is still a verdict', 'More helpful: B', { ok: true, choice: 'second' }],
    ['the word "a" in the explanation is not a verdict', 'Comparison: A is a better answer than B, which is a mess.', { ok: false, code: 'no-verdict-line', detail: 'no line starting with "More helpful:"' }],
    ['"equally" is not a tie', 'Comparison: both are equally good.\nMore helpful: A', { ok: true, choice: 'first' }],
    ['equally, no verdict', 'Comparison: Both responses are equally helpful.', { ok: false, code: 'no-verdict-line', detail: 'no line starting with "More helpful:"' }],
    ['tie is not offered', 'Comparison: same.\nMore helpful: Tie', { ok: false, code: 'tie-not-offered', detail: 'a tie is not an accepted answer for this preset' }],
    ['text after the verdict', 'Comparison: x\nMore helpful: A\nI hope this helps!', { ok: false, code: 'verdict-not-last', detail: 'text follows the "More helpful:" line' }],
    ['verdict with extra words', 'Comparison: x\nMore helpful: A, because it is shorter', { ok: false, code: 'bad-verdict', detail: '"More helpful:" is followed by "A, because it is shorter", not A or B' }],
    ['both letters', 'Comparison: x\nMore helpful: A or B', { ok: false, code: 'bad-verdict', detail: '"More helpful:" is followed by "A or B", not A or B' }],
    ['conflicting verdict lines', 'More helpful: A\nComparison: on reflection\nMore helpful: B', { ok: false, code: 'conflicting-verdicts', detail: 'two "More helpful:" lines disagree' }],
    ['empty', '   \n  ', { ok: false, code: 'empty', detail: 'empty reply' }],
    ['JSON is not the format', '{"comparison": "x", "more_helpful": "A"}', { ok: false, code: 'no-verdict-line', detail: 'no line starting with "More helpful:"' }],
    ['the wrong label', 'Comparison: x\nPreferred: A', { ok: false, code: 'no-verdict-line', detail: 'no line starting with "More helpful:"' }],
  ];
  it.each(table)('%s', (_name, raw, expected) => {
    expect(hh(raw)).toEqual(expected);
  });

  it('TL;DR uses "Preferred"', () => {
    expect(tldr('Comparison: B keeps the key point.\nPreferred: B')).toEqual({ ok: true, choice: 'second' });
    expect(tldr('Comparison: x\nPreferred: Summary A')).toEqual({ ok: true, choice: 'first' });
    expect(tldr('Comparison: x\nMore helpful: A').ok).toBe(false);
  });

  it('accepts Tie only when the preset offers it', () => {
    const p = finalLabelParser({ label: 'Winner', tie: true });
    expect(p('Comparison: same\nWinner: TIE')).toEqual({ ok: true, choice: 'tie' });
    expect(p('Comparison: same\nWinner: equal').ok).toBe(false);
  });
});

describe('single-token parser (AlpacaEval m / M)', () => {
  it.each([
    ['m', { ok: true, choice: 'first' }],
    ['M', { ok: true, choice: 'second' }],
    ['  M\n', { ok: true, choice: 'second' }],
    ['', { ok: false, code: 'empty', detail: 'empty reply' }],
    ['Output (m)', { ok: false, code: 'not-single-token', detail: 'reply "Output (m)" is not exactly m or M' }],
    ['mM', { ok: false, code: 'not-single-token', detail: 'reply "mM" is not exactly m or M' }],
    ['a', { ok: false, code: 'not-single-token', detail: 'reply "a" is not exactly m or M' }],
  ])('%j', (raw, expected) => {
    expect(alpaca(raw)).toEqual(expected);
  });

  it('takes custom identifiers', () => {
    const p = singleTokenParser({ first: '1', second: '2', tie: '0' });
    expect(p('0')).toEqual({ ok: true, choice: 'tie' });
    expect(p('2')).toEqual({ ok: true, choice: 'second' });
  });
});

describe('parser registry', () => {
  it('lists the parsers and rejects unknown names and options', () => {
    expect(PARSER_NAMES).toEqual(expect.arrayContaining(['final-label', 'more-helpful', 'preferred', 'single-token', 'alpaca-mM']));
    expect(() => getParser('regex-anything')).toThrow(/unknown parser "regex-anything"; known: final-label/);
    expect(() => getParser('final-label', {})).toThrow();
    expect(() => getParser('more-helpful', { colour: 'red' })).toThrow();
  });
});
