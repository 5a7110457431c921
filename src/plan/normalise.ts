/**
 * Dotted keys in settings mappings (`training.batch_size: 4` in `base`, a list variant or
 * `stages.sft`) become nested keys, keeping the origin of the dotted key for everything below it.
 * Writing the same setting twice (`training: {lr: 1}` and `training.lr: 2`) is an issue.
 */
import { issue, type Issue, type Path } from './issues.js';
import { child, defineKey, getLocated, isMapping, setLocated, type Located } from './origins.js';

/** Plan spots that hold run settings. */
function settingsSpots(value: unknown): Path[] {
  const spots: Path[] = [['base'], ['stages', 'sft']];
  const list = isMapping(value) && isMapping(value['sweep']) ? value['sweep']['list'] : undefined;
  if (Array.isArray(list)) list.forEach((_, i) => spots.push(['sweep', 'list', i]));
  return spots;
}

export function expandDottedKeys(doc: Located): { doc: Located; issues: Issue[] } {
  const issues: Issue[] = [];
  let out = doc;
  for (const spot of settingsSpots(doc.value)) {
    const at = getLocated(out, spot);
    if (!at || !isMapping(at.value)) continue;
    out = setLocated(out, spot, expandMapping(at, spot, issues));
  }
  return { doc: out, issues };
}

function expandMapping(m: Located, path: Path, issues: Issue[]): Located {
  let result: Located = { value: {}, origins: { at: m.origins.at, kids: new Map() } };
  for (const [key, raw] of Object.entries(m.value as Record<string, unknown>)) {
    const origins = child(m.origins, key);
    const segments = key.includes('.') && key.split('.').every((s) => s !== '') ? key.split('.') : [key];
    // The value below the first segment: `a.b.c: v` → {b: {c: v}} under `a`, all at the dotted key.
    let incoming: Located = isMapping(raw) ? expandMapping({ value: raw, origins }, [...path, key], issues) : { value: raw, origins };
    for (let i = segments.length - 1; i >= 1; i--) {
      const wrapped: Record<string, unknown> = {};
      defineKey(wrapped, segments[i]!, incoming.value);
      incoming = { value: wrapped, origins: { at: origins.at, kids: new Map([[segments[i]!, incoming.origins]]) } };
    }
    const head = segments[0]!;
    const existing = getLocated(result, [head]);
    const merged = existing ? mergeDisjoint(existing, incoming) : incoming;
    if (!merged) {
      issues.push({ ...issue([...path, key], { code: 'dotted-conflict', key }), origin: origins.at });
      continue;
    }
    result = setLocated(result, [head], merged);
  }
  return result;
}

/** Merges two mappings that must not write the same leaf; undefined on a clash. */
function mergeDisjoint(a: Located, b: Located): Located | undefined {
  if (!isMapping(a.value) || !isMapping(b.value)) return undefined;
  let out = a;
  for (const key of Object.keys(b.value)) {
    const incoming = getLocated(b, [key])!;
    const existing = getLocated(out, [key]);
    const merged = existing ? mergeDisjoint(existing, incoming) : incoming;
    if (!merged) return undefined;
    out = setLocated(out, [key], merged);
  }
  return out;
}
