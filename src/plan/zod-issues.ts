/**
 * zod issues → plan issues. Keeps the data (what was expected, what was received, which keys are
 * allowed) and drops zod's wording; `format.ts` words it.
 */
import type { z } from 'zod';
import { describeType } from './format.js';
import { keysAt, schemaAt } from './introspect.js';
import { issue, type Issue, type Path } from './issues.js';
import { closest } from './suggest.js';

type ZodIssue = z.core.$ZodIssue;

/** Converts zod issues of `schema` (paths relative to it) into issues at `prefix` + path. */
export function fromZod(zodIssues: readonly ZodIssue[], schema: z.ZodType, prefix: Path = []): Issue[] {
  const out: Issue[] = [];
  for (const zi of zodIssues) {
    const rel = zi.path.map((p) => (typeof p === 'number' ? p : String(p)));
    const path = [...prefix, ...rel];
    const here = schemaAt(schema, rel);
    switch (zi.code) {
      case 'unrecognized_keys': {
        const allowed = keysAt(schema, rel);
        for (const key of zi.keys) {
          const suggestion = closest(key, allowed);
          out.push(issue([...path, key], { code: 'unknown-key', key, allowed, ...(suggestion ? { suggestion } : {}) }));
        }
        break;
      }
      case 'invalid_union': {
        const branch = onlyPlausibleBranch(zi.errors);
        if (branch && here) out.push(...fromZod(branch, here, path));
        else out.push(issue(path, { code: 'invalid-value', expected: describeType(here), received: zi.input }));
        break;
      }
      case 'custom':
        out.push(issue(path, { code: 'custom', message: zi.message }));
        break;
      default:
        if (zi.code === 'invalid_type' && zi.input === undefined) {
          out.push(issue(path, { code: 'missing', expected: describeType(here) }));
        } else {
          const note = zi.code === 'too_big' && zi.maximum === Number.MAX_SAFE_INTEGER ? `integers go up to ${Number.MAX_SAFE_INTEGER}` : undefined;
          out.push(issue(path, { code: 'invalid-value', expected: describeType(here), received: zi.input, ...(note ? { note } : {}) }));
        }
    }
  }
  return out;
}

/**
 * The one union branch the input was evidently meant for: its problems all lie below the union's
 * own level (e.g. `{uniform: [1]}` is a `uniform` with a short range). Undefined when none or
 * several qualify; the union is then reported as a whole.
 */
function onlyPlausibleBranch(branches: readonly (readonly ZodIssue[])[]): readonly ZodIssue[] | undefined {
  const plausible = branches.filter(
(errors) => errors.length > 0 && errors.every((e) => e.path.length > 0));
  return plausible.length === 1 ? plausible[0] : undefined;
}
