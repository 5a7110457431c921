/**
 * Position-bias control: the order in which a pair is shown, and the hashes that name pairs.
 *
 * The order is a pure function of (seed, instruction): sha256(`${seed}\n${instruction}`), first byte
 * even → A first (`ab`), odd → B first (`ba`). Reproducible across runs and machines, independent
 * of file order, and — like AlpacaEval — seeded per instruction, unlike the seed repository's
 * `SystemRandom` swap (seed-spec §7 item 25).
 */
import { createHash } from 'node:crypto';

export type Order = 'ab' | 'ba';

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export function seededOrder(seed: number, instruction: string): Order {
  const digest = createHash('sha256').update(`${seed}\n${instruction}`).digest();
  return ((digest[0] as number) & 1) === 0 ? 'ab' : 'ba';
}

/** The orders to judge for one pair: both, or the seeded one. */
export function ordersFor(seed: number, instruction: string, bothOrders: boolean): Order[] {
  return bothOrders ? ['ab', 'ba'] : [seededOrder(seed, instruction)];
}

/** A pair's name: the first 16 hex digits of sha256 over (instruction, output A, output B). */
export function pairHash(instruction: string, outputA: string, outputB: string): string {
  return sha256Hex(JSON.stringify([instruction, outputA, outputB])).slice(0, 16);
}
