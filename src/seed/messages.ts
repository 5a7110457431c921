/**
 * What reading and translating a seed config has to say: warnings (something in the file is ignored
 * or means something else here) and notes (how a key was translated). Each names the seed key it is
 * about; the loader locates it (`file:line:col`) from the YAML positions.
 */
import { formatOrigin, formatPath } from '../plan/format.js';
import type { Origin, Path } from '../plan/issues.js';
import { originOf, type OriginTree } from '../plan/origins.js';

export interface SeedMessage {
  level: 'warning' | 'note';
  /** The seed config key it is about (`dataset.max_len`); [] for the file as a whole. */
  path: Path;
  text: string;
  origin?: Origin;
}

export const warning = (path: Path, text: string): SeedMessage => ({ level: 'warning', path, text });
export const note = (path: Path, text: string): SeedMessage => ({ level: 'note', path, text });

/** Fills in where each message's key was written. */
export function locate(messages: readonly SeedMessage[], origins: OriginTree): SeedMessage[] {
  return messages.map((m) => (m.origin ? m : { ...m, origin: originOf(origins, m.path) }));
}

/** `config_dpo.yaml:14:3  dataset.max_len: never read by the seed; ignored`. */
export function formatSeedMessage(m: SeedMessage): string {
  const path = formatPath(m.path);
  // A message about the whole file names the file, not the line of its first key.
  const where = !m.origin ? '' : path === '' && m.origin.kind === 'file' ? `${m.origin.file}  ` : `${formatOrigin(m.origin)}  `;
  return path ? `${where}${path}: ${m.text}` : `${where}${m.text}`;
}

/** Sorted by where they were written (`--set` last), warnings and notes interleaved. */
export function sortMessages(messages: readonly SeedMessage[]): SeedMessage[] {
  const rank = (o: Origin | undefined): [number, number, number] =>
    !o ? [2, 0, 0] : o.kind === 'set' ? [1, 0, 0] : [0, o.line, o.col];
  return messages
    .map((m, n) => ({ m, n, r: rank(m.origin) }))
    .sort((a, b) => a.r[0] - b.r[0] || a.r[1] - b.r[1] || a.r[2] - b.r[2] || a.n - b.n)
    .map(({ m }) => m);
}
