/**
 * Which queued run goes where (pure). Device slots are named ('0', '1', … for GPUs, 'cpu0', … on
 * CPU); a run needs `need` slots. First come, first served, but a run that does not fit yet does not
 * block smaller runs behind it (backfill).
 */
export interface Pending {
  id: string;
  need: number;
  /** Not before this time (ms since epoch): back-off after a failure. */
  notBefore?: number;
}

export interface Assignment {
  id: string;
  slots: string[];
}

export function pickNext(queue: readonly Pending[], free: readonly string[], now: number, allSlots: number): Assignment | undefined {
  for (const run of queue) {
    if (run.notBefore !== undefined && run.notBefore > now) continue;
    const need = Math.min(run.need, allSlots); // a run asking for more than exists takes all of them
    if (need <= free.length) return { id: run.id, slots: free.slice(0, need) };
  }
  return undefined;
}

/** Slot names: the given devices, or `count` CPU slots. */
export function slotNames(devices: readonly string[] | undefined, count: number): string[] {
  if (devices && devices.length) return [...devices];
  return Array.from({ length: Math.max(1, count) }, (_, i) => `cpu${i}`);
}
