/**
 * A run's id: the first 12 hex characters of sha256 over its canonical settings (keys sorted at
 * every level) without execution fields (`EXECUTION_KEYS`, `training.EXECUTION_TRAINING_KEYS`).
 * Editing resources or checkpoint cadence keeps the id (and the finished run); editing anything
 * that changes what is computed gives a new one.
 */
import { createHash } from 'node:crypto';
import { runIdentity } from '../plan/canonical.js';
import type { RunSettings } from './run-spec.js';

export const RUN_ID_LENGTH = 12;

export function runId(settings: RunSettings): string {
  return createHash('sha256').update(runIdentity(settings)).digest('hex').slice(0, RUN_ID_LENGTH);
}
