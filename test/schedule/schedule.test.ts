import { describe, expect, it } from 'vitest';
import { decideRetry, givingUp, RetryPolicySchema } from '../../src/schedule/retry.js';
import { pickNext, slotNames } from '../../src/schedule/scheduler.js';
import { detectGpus, parseDevices } from '../../src/setup/devices.js';

const policy = RetryPolicySchema.parse({});

describe('retry policy', () => {
  it('retries the transient classes with doubling back-off, up to `max` retries', () => {
    const shape = { batch_size: 8, grad_accum: 1 };
    expect(decideRetry('killed', 1, policy, shape)).toEqual({ retry: true, delayMs: 10_000 });
    expect(decideRetry('timeout', 2, policy, shape)).toEqual({ retry: true, delayMs: 20_000 });
    expect(decideRetry('runner-crash', 3, policy, shape)).toMatchObject({ retry: false });
  });

  it('never retries failures that would repeat', () => {
    for (const c of ['python-exception', 'nan-loss', 'bad-data', 'bad-spec'] as const) {
      expect(decideRetry(c, 1, policy, { batch_size: 8, grad_accum: 1 }).retry).toBe(false);
    }
    expect(decideRetry('cancelled', 1, policy, { batch_size: 8, grad_accum: 1 }).retry).toBe(false);
  });

  it('out of memory: halves the micro-batch and keeps the global batch exactly', () => {
    // 8×2 = 16 → 4×4; 6×1 = 6 → 3×2; 5×1 = 5 → no divisor of 5 in 2..2 → 1×5; 1 → give up.
    expect(decideRetry('oom', 1, policy, { batch_size: 8, grad_accum: 2 })).toMatchObject({ retry: true, training: { batch_size: 4, grad_accum: 4 } });
    expect(decideRetry('oom', 1, policy, { batch_size: 6, grad_accum: 1 })).toMatchObject({ training: { batch_size: 3, grad_accum: 2 } });
    expect(decideRetry('oom', 1, policy, { batch_size: 5, grad_accum: 1 })).toMatchObject({ training: { batch_size: 1, grad_accum: 5 } });
    expect(decideRetry('oom', 1, policy, { batch_size: 1, grad_accum: 8 })).toMatchObject({ retry: false });
  });

  it('follows the plan: classes and max', () => {
    const strict = RetryPolicySchema.parse({ max: 0 });
    expect(decideRetry('killed', 1, strict, { batch_size: 8, grad_accum: 1 }).retry).toBe(false);
    const eager = RetryPolicySchema.parse({ on: ['python-exception'], backoff_s: 1 });
    expect(decideRetry('python-exception', 1, eager, { batch_size: 8, grad_accum: 1 })).toEqual({ retry: true, delayMs: 1000 });
    expect(decideRetry('killed', 1, eager, { batch_size: 8, grad_accum: 1 }).retry).toBe(false);
  });
});

describe('giving up', () => {
  it('says why a retried class is not retried again; says nothing for classes never retried', () => {
    const shape = { batch_size: 8, grad_accum: 1 };
    const gaveUp = (c: Parameters<typeof decideRetry>[0], attempt: number, p = policy, s = shape) => givingUp(c, decideRetry(c, attempt, p, s), p);
    expect(gaveUp('killed', 3)).toBe('gave up after 3 attempts (retries.max is 2)');
    expect(gaveUp('timeout', 1, RetryPolicySchema.parse({ max: 0 }))).toBe('gave up after 1 attempt (retries.max is 0)');
    expect(gaveUp('oom', 1, policy, { batch_size: 1, grad_accum: 4 })).toBe(
      'out of memory at micro-batch 1 (× accumulation 4): nothing left to halve; lower training.max_length, turn on training.gradient_checkpointing or peft, or use a device with more memory',
    );
    expect(gaveUp('killed', 1)).toBeUndefined(); // retried
    expect(gaveUp('python-exception', 1)).toBeUndefined(); // never retried: the error says it all
    expect(gaveUp('cancelled', 1)).toBeUndefined();
  });
});

describe('scheduler', () => {
  it('first come first served, with backfill past a run that does not fit', () => {
    const queue = [
      { id: 'big', need: 2 },
      { id: 'small', need: 1 },
    ];
    expect(pickNext(queue, ['0'], 0, 4)).toEqual({ id: 'small', slots: ['0'] });
    expect(pickNext(queue, ['0', '3'], 0, 4)).toEqual({ id: 'big', slots: ['0', '3'] });
  });

  it('waits out a back-off, and caps a run that asks for more slots than exist', () => {
    expect(pickNext([{ id: 'a', need: 1, notBefore: 100 }], ['0'], 50, 1)).toBeUndefined();
    expect(pickNext([{ id: 'a', need: 1, notBefore: 100 }], ['0'], 150, 1)).toEqual({ id: 'a', slots: ['0'] });
    expect(pickNext([{ id: 'a', need: 8 }], ['0', '1'], 0, 2)).toEqual({ id: 'a', slots: ['0', '1'] });
  });

  it('names slots after devices, or CPU slots', () => {
    expect(slotNames(['2', '3'], 1)).toEqual(['2', '3']);
    expect(slotNames(undefined, 3)).toEqual(['cpu0', 'cpu1', 'cpu2']);
    expect(slotNames([], 0)).toEqual(['cpu0']);
  });
});

describe('devices', () => {
  it('parses --devices and rejects junk', () => {
    expect(parseDevices('0, 1,3')).toEqual(['0', '1', '3']);
    expect(() => parseDevices('0,gpu1')).toThrow(/GPU indices/);
    expect(() => parseDevices('1,1')).toThrow(/twice/);
  });

  it('honours CUDA_VISIBLE_DEVICES (physical ids, or none)', async () => {
    expect(await detectGpus({ CUDA_VISIBLE_DEVICES: '2,3' })).toEqual(['2', '3']);
    expect(await detectGpus({ CUDA_VISIBLE_DEVICES: '' })).toEqual([]);
    expect(await detectGpus({ CUDA_VISIBLE_DEVICES: '-1' })).toEqual([]);
  });
});
