/**
 * `--set a.b=c` overrides. The key is a dotted plan path; the value is YAML (`0.2`, `[sigmoid, ipo]`,
 * `{log_uniform: [0.01, 0.5]}`). Inside `sweep.grid` and `sweep.random.params` the rest of the key
 * is one dotted settings key (`--set sweep.grid.dynamic_beta.alpha=[0.001,0.01]`); a list item is
 * picked by index or by variant name (`--set sweep.list.dpo.beta=0.2`). A `null` value removes the
 * key or the item (`--set base.beta=null`, `--set sweep.list.ipo=null`, `--set sweep.grid=null`).
 */
import * as jsyaml from 'js-yaml';
import type { IssueData, Path } from './issues.js';
import { deleteLocated, getLocated, isMapping, setLocated, uniform, type Located } from './origins.js';
import { DOTTED_KEY_RECORDS } from './schema.js';
import { PLAN_YAML_SCHEMA } from './yaml.js';

export interface SetOverride {
  /** As typed (`base.beta=0.2`); also the origin shown for problems in its value. */
  text: string;
  segments: string[];
  value: unknown;
}

type BadSet = Extract<IssueData, { code: 'bad-set' }>;

const bad = (text: string, reason: string): BadSet => ({ code: 'bad-set', text, reason });

export function parseSet(text: string): SetOverride | BadSet {
  const eq = text.indexOf('=');
  if (eq <= 0) return bad(text, 'expected key=value (e.g. --set base.beta=0.2)');
  const key = text.slice(0, eq).trim();
  const raw = text.slice(eq + 1);
  const segments = key.split('.');
  if (segments.some((s) => s === '')) return bad(text, `"${key}" has an empty key segment`);
  if (raw.trim() === '') return bad(text, `no value after "=" (write ${key}=<value>)`);
  try {
    return { text, segments, value: jsyaml.load(raw, { schema: PLAN_YAML_SCHEMA }) };
  } catch (error) {
    const reason = error instanceof jsyaml.YAMLException ? error.reason : String(error);
    return bad(text, `the value is not valid YAML: ${reason}`);
  }
}

/** The plan path a `--set` key designates in `doc`. */
export function resolveSetPath(doc: Located, set: SetOverride): Path | BadSet {
  const path: (string | number)[] = [];
  for (let i = 0; i < set.segments.length; i++) {
    if (DOTTED_KEY_RECORDS.some((record) => record.join('.') === path.join('.'))) {
      path.push(set.segments.slice(i).join('.'));
      break;
    }
    const segment = set.segments[i]!;
    const here = getLocated(doc, path)?.value;
    if (Array.isArray(here)) {
      if (/^\d+$/.test(segment)) {
        const index = Number(segment);
        if (index > here.length) return bad(set.text, `${path.join('.')} has ${here.length} items; no item ${index}`);
        path.push(index);
        continue;
      }
      // A variant name may itself hold dots (`beta-dpo-b0.5`): the longest name that matches wins.
      const byName = (end: number) => here.findIndex((item) => isMapping(item) && item['name'] === set.segments.slice(i, end).join('.'));
      let end = set.segments.length;
      while (end > i && byName(end) < 0) end--;
      if (end === i) return bad(set.text, `no item named "${segment}" in ${path.join('.')}`);
      path.push(byName(end));
      i = end - 1; // the name's last segment; the loop's i++ moves past it
    } else {
      path.push(segment);
    }
  }
  return path;
}

/**
 * Applies one override; its values are attributed to the override itself. `key=null` (or `key=~`)
 * removes the key, or the list item, instead: `removed: false` when nothing was there to remove.
 * `nullRemoves: false` sets a null value (the seed's configs, where null means "all" or "none").
 */
export function applySet(doc: Located, set: SetOverride, options: { nullRemoves?: boolean } = {}): { doc: Located; removed?: boolean } | BadSet {
  const path = resolveSetPath(doc, set);
  if (!Array.isArray(path)) return path as BadSet;
  if (set.value === null && options.nullRemoves !== false) {
    const removed = deleteLocated(doc, path);
    return removed ? { doc: removed, removed: true } : { doc, removed: false };
  }
  return { doc: setLocated(doc, path, uniform(set.value, { kind: 'set', text: set.text })) };
}
