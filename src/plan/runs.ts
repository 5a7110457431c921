/**
 * Validates every resolved run of a plan against the full `RunSettingsSchema` (defaults applied),
 * and finds runs that would compute the same thing. Problems are mapped back to where the value
 * was written: `base`, a list variant, a grid value, a random param or a seed.
 */
import { RunSettingsSchema } from '../sweep/run-spec.js';
import { runIdentity } from './canonical.js';
import { issue, pathKey, type Issue, type Path } from './issues.js';
import type { Plan } from './schema.js';
import { resolveVariants, sourceOf, type RunDraft } from './variants.js';
import { fromZod } from './zod-issues.js';

export interface CheckOptions {
  /** Report runs with equal settings (default true). */
  duplicates?: boolean;
}

export function checkRuns(plan: Plan, options: CheckOptions = {}): Issue[] {
  const issues: Issue[] = [];
  const seen = new Map<string, RunDraft>();
  for (const draft of resolveVariants(plan)) {
    const parsed = RunSettingsSchema.safeParse(draft.input, { reportInput: true });
    if (!parsed.success) {
      for (const found of fromZod(parsed.error.issues, RunSettingsSchema)) {
        const { planPath, layer } = sourceOf(draft, found.path);
        const axis = draft.layers[layer];
        // An unknown axis key is the gridKeysExist rule's to report, at the key itself.
        if (found.code === 'unknown-key' && axis && axis.key.length > 0 && pathKey(axis.key) === pathKey(found.path)) continue;
        issues.push({ ...found, path: planPath });
      }
      continue;
    }
    if (options.duplicates === false) continue;
    const identity = runIdentity(parsed.data);
    const first = seen.get(identity);
    if (first) {
      const at = firstDifference(first, draft);
      // Same layers all the way down: only the draw differs, so random search drew the same values twice.
      if (at === undefined && plan.sweep?.random) issues.push(issue(['sweep', 'random', 'count'], { code: 'duplicate-draws', first: first.name, second: draft.name }));
      else issues.push(issue(at ?? ['sweep'], { code: 'duplicate-runs', first: first.name, second: draft.name }));
    }
    else seen.set(identity, draft);
  }
  return dedupe(issues);
}

/** Where the second of two equal runs departs from the first: the layer that should have made them differ. */
function firstDifference(a: RunDraft, b: RunDraft): Path | undefined {
  for (let i = 0; i < b.layers.length; i++) {
    const source = b.layers[i]!.source;
    if (pathKey(a.layers[i]?.source ?? []) !== pathKey(source)) return source;
  }
  return undefined;
}

/** One issue per path and code (the same problem shows up in many runs). */
export function dedupe(issues: readonly Issue[]): Issue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const key = `${i.code}|${pathKey(i.path)}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
