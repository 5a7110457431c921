/**
 * Retry policy, per failure class (pure). W&B sweeps never retry a failed grid run; here a run
 * killed by the OOM killer, a timeout or a crashed runner is retried with back-off, and an
 * out-of-memory failure retries with half the micro-batch and twice the accumulation, so the
 * global batch (and the maths) stays the same.
 */
import { z } from 'zod';
import type { ErrorClass } from '../execute/run-dir.js';

const FAILURE_CLASSES = ['python-exception', 'killed', 'oom', 'timeout', 'nan-loss', 'bad-data', 'bad-spec', 'runner-crash'] as const;
type FailureClass = (typeof FAILURE_CLASSES)[number];
export const RETRYABLE: readonly FailureClass[] = ['killed', 'oom', 'timeout', 'runner-crash'];

export const RetryPolicySchema = z
  .strictObject({
    max: z.number().int().nonnegative().default(2).describe('retries after the first attempt (per dpo-sweep invocation)'),
    backoff_s: z.number().nonnegative().default(10).describe('wait before the first retry; doubles each retry'),
    on: z
      .array(z.enum(FAILURE_CLASSES))
      .default([...RETRYABLE])
      .describe('failure classes that are retried (python-exception, nan-loss, bad-data and bad-spec fail the same way again)'),
    timeout_s: z.number().positive().optional().describe('wall-clock limit per attempt'),
  })
  .describe('what happens when a run fails (not part of run ids)');
export type RetryPolicy = z.infer<typeof RetryPolicySchema>;

export interface TrainingShape {
  batch_size: number;
  grad_accum: number;
}

export type RetryDecision =
  | { retry: false; reason: string }
  | { retry: true; delayMs: number; training?: TrainingShape; note?: string };

/**
 * Whether the run that just failed its `attempt`-th attempt (1-based) with `errorClass` is retried,
 * after how long, and with which micro-batch shape (`current` is the shape that attempt used).
 */
export function decideRetry(
  errorClass: ErrorClass | null,
  attempt: number,
  policy: RetryPolicy,
  current: TrainingShape,
): RetryDecision {
  if (errorClass === null || errorClass === 'cancelled') return { retry: false, reason: 'not a failure' };
  if (!(policy.on as readonly string[]).includes(errorClass)) return { retry: false, reason: `${errorClass} is not retried` };
  if (attempt > policy.max) {
    return { retry: false, reason: `gave up after ${attempt} attempt${attempt === 1 ? '' : 's'} (retries.max is ${policy.max})` };
  }
  const delayMs = policy.backoff_s * 1000 * 2 ** (attempt - 1);
  if (errorClass !== 'oom') return { retry: true, delayMs };
  if (current.batch_size <= 1) {
    return {
      retry: false,
      reason:
        `out of memory at micro-batch 1 (× accumulation ${current.grad_accum}): nothing left to halve; ` +
        'lower training.max_length, turn on training.gradient_checkpointing or peft, or use a device with more memory',
    };
  }
  // Keep the global batch exactly: the largest micro-batch ≤ half the current one that divides it.
  const global = current.batch_size * current.grad_accum;
  let batch = Math.floor(current.batch_size / 2);
  while (global % batch !== 0) batch -= 1;
  const accum = global / batch;
  return {
    retry: true,
    delayMs,
    training: { batch_size: batch, grad_accum: accum },
    note: `out of memory: retrying with micro-batch ${batch} × accumulation ${accum} (was ${current.batch_size} × ${current.grad_accum})`,
  };
}

/**
 * Why a failed run is final although its class is retried (retries used up, out of memory at
 * micro-batch 1): a line for its status, so the researcher is not left guessing. Undefined when the
 * decision retries, or when the class is never retried (the error says it all).
 */
export function givingUp(errorClass: ErrorClass | null, decision: RetryDecision, policy: RetryPolicy): string | undefined {
  if (decision.retry || errorClass === null || !(policy.on as readonly string[]).includes(errorClass)) return undefined;
  return decision.reason;
}
