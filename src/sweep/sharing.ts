/**
 * Which runs share their reference log-probs (pure): same reference model, same training rows, same
 * truncation. The worker precomputes and caches them once when a run's key is shared
 * (`precompute_ref_log_probs: auto`); the cache itself is keyed by content, so this only decides.
 */
import type { RunSpec } from './run-spec.js';

export function referenceKey(spec: RunSpec): string | null {
  const s = spec.settings;
  if (s.algorithm === 'sft') return null;
  const d = s.dataset;
  return JSON.stringify({
    reference: s.reference ?? s.model,
    data: [d.path ?? null, d.name ?? null, d.split, d.format ?? null, d.limit ?? null, d.val_ratio ?? null, d.eval_split ?? null],
    // the held-out split depends on the seed when it is drawn with val_ratio
    seed: d.val_ratio ? s.training.seed : null,
    max_length: s.training.max_length,
  });
}

/** For each run id, how many runs (itself included) share its reference log-probs. */
export function referenceSharing(specs: readonly RunSpec[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const spec of specs) {
    const key = referenceKey(spec);
    if (key) counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return new Map(specs.map((spec) => [spec.id, counts.get(referenceKey(spec) ?? '') ?? 1]));
}
