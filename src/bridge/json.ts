/** Values that crossed the bridge as JSON text. */

/** Metrics that crossed the bridge as "NaN" / "Infinity" strings, back to numbers. */
export function asNumber(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (value === 'NaN') return Number.NaN;
  if (value === 'Infinity') return Number.POSITIVE_INFINITY;
  if (value === '-Infinity') return Number.NEGATIVE_INFINITY;
  return undefined;
}
