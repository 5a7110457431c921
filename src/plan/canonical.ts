/**
 * Canonical JSON (keys sorted at every level, no whitespace) and the identity of a run: its settings
 * without execution fields. Two runs with the same identity compute the same thing; the run id is
 * its hash (sweep/run-id.ts).
 */
import { EXECUTION_KEYS, EXECUTION_TRAINING_KEYS, type RunSettings } from '../sweep/run-spec.js';

export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** Settings without `EXECUTION_KEYS` and `training.EXECUTION_TRAINING_KEYS` (they never change results). */
export function withoutExecutionFields(settings: RunSettings): Record<string, unknown> {
  const out: Record<string, unknown> = { ...settings };
  for (const key of EXECUTION_KEYS) delete out[key];
  const training = out['training'];
  if (training !== null && typeof training === 'object') {
    const copy: Record<string, unknown> = { ...(training as Record<string, unknown>) };
    for (const key of EXECUTION_TRAINING_KEYS) delete copy[key];
    out['training'] = copy;
  }
  return out;
}

/** The canonical text a run id hashes. */
export function runIdentity(settings: RunSettings): string {
  return canonicalJson(withoutExecutionFields(settings));
}
