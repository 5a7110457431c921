/**
 * Redaction of secrets from every string that goes to disk, a log line or an error message.
 *
 * Two nets: the exact values of secret-looking environment variables (`*KEY*`, `*TOKEN*`, `*SECRET*`,
 * `*PASSWORD*`, 8+ characters), and the shapes of common keys (`sk-…`, `hf_…`, `Bearer …`) so a key
 * that never passed through the environment is caught too.
 */

export type Redactor = (text: string) => string;

const SECRET_NAME = /KEY|TOKEN|SECRET|PASSWORD/i;
const SHAPES: RegExp[] = [
  /\bsk-[A-Za-z0-9_-]{8,}/g, // OpenAI-style keys (sk-…, sk-proj-…)
  /\bhf_[A-Za-z0-9]{8,}/g, // Hugging Face tokens
  /\b(Bearer\s+)[A-Za-z0-9._~+/=-]{8,}/gi, // Authorization headers
];
export const REDACTED = '[redacted]';

/** Builds a redactor for the secrets visible in `env` (plus the generic key shapes). */
export function makeRedactor(env: NodeJS.ProcessEnv = {}): Redactor {
  const values = Object.entries(env)
    .filter(([name, value]) => SECRET_NAME.test(name) && typeof value === 'string' && value.length >= 8)
    .map(([, value]) => value as string)
    .sort((a, b) => b.length - a.length); // longest first, so a key containing another is fully hidden
  return (text: string) => {
    let out = text;
    for (const v of values) out = out.split(v).join(REDACTED);
    for (const re of SHAPES) {
      out = out.replace(re, (_m, bearer?: string) =>
        typeof bearer === 'string' && /^Bearer/i.test(bearer) ? `${bearer}${REDACTED}` : REDACTED,
      );
    }
    return out;
  };
}

/** Redacts every string inside a JSON-like value (objects, arrays), leaving other values alone. */
export function redactDeep<T>(value: T, redact: Redactor): T {
  if (typeof value === 'string') return redact(value) as T;
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, redact)) as T;
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = redactDeep(v, redact);
    return out as T;
  }
  return value;
}
