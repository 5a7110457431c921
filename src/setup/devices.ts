/**
 * Which GPUs a sweep may use, without starting Python (importing torch costs a second): the
 * `--devices` list, else CUDA_VISIBLE_DEVICES, else `nvidia-smi`, else none (CPU slots).
 */
import { execa } from 'execa';
import { InputError } from '../errors.js';

export function parseDevices(text: string): string[] {
  const list = text.split(',').map((d) => d.trim()).filter(Boolean);
  for (const d of list) if (!/^\d+$/.test(d)) throw new InputError(`--devices takes GPU indices like 0,1,2 (got "${d}")`);
  if (new Set(list).size !== list.length) throw new InputError(`--devices lists a device twice: ${text}`);
  return list;
}

export async function detectGpus(env: NodeJS.ProcessEnv = process.env): Promise<string[]> {
  const visible = env.CUDA_VISIBLE_DEVICES;
  if (visible !== undefined) {
    if (visible.trim() === '' || visible.trim() === '-1') return [];
    const ids = visible.split(',').map((d) => d.trim()).filter((d) => /^\d+$/.test(d));
    if (ids.length) return ids;
  }
  try {
    const { stdout } = await execa('nvidia-smi', ['--query-gpu=index', '--format=csv,noheader'], { timeout: 10_000 });
    return stdout.split('\n').map((l) => l.trim()).filter((l) => /^\d+$/.test(l));
  } catch {
    return [];
  }
}
