/** Read the tensors of a .safetensors file as raw bytes (enough to tell whether weights changed). */
import { readFileSync } from 'node:fs';

export function readSafetensors(path: string): Map<string, Buffer> {
  const buf = readFileSync(path);
  const headerLen = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + headerLen).toString('utf8')) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const base = 8 + headerLen;
  const out = new Map<string, Buffer>();
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    out.set(name, buf.subarray(base + info.data_offsets[0], base + info.data_offsets[1]));
  }
  return out;
}
