/**
 * The judgment cache: content-addressed, persisted, shared across sweeps.
 *
 * Key = sha256 of the canonical JSON of (model, preset version and fingerprint, request parameters,
 * sha256 of the rendered messages, instruction, both outputs, order). Anything that could change a
 * reply or its reading changes the key; nothing else does (file paths, seeds and pair order do not),
 * so a rerun of the same judgments sends no request. What is stored is the final outcome of a pair-and-order:
 * a parsed reply, or a reply still unreadable after the re-ask (an `invalid` that is final). Transport
 * failures are never stored.
 *
 * Layout: `<dir>/<key[0..2]>/<key>.json`, written to a temporary file and renamed (atomic on POSIX).
 * A torn, unreadable or mismatched entry reads as a miss, never as data.
 */
import { rename as renameCb, unlink as unlinkCb, writeFile as writeFileCb } from 'node:fs';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { sha256Hex } from './order.js';

export const CACHE_FORMAT = 1;

export const usageSchema = z.object({
  prompt_tokens: z.number().nonnegative(),
  completion_tokens: z.number().nonnegative(),
  total_tokens: z.number().nonnegative(),
});
export type Usage = z.infer<typeof usageSchema>;

export const cacheEntrySchema = z.object({
  format: z.literal(CACHE_FORMAT),
  key: z.string().regex(/^[0-9a-f]{64}$/),
  /** ISO time the outcome was produced. */
  created: z.string(),
  /** Model asked for. */
  model: z.string(),
  /** Model the server said answered (judge drift shows up here). */
  served_model: z.string().nullable(),
  /** The final reply. */
  raw: z.string(),
  /** The unreadable first reply when the judge was re-asked. */
  first_raw: z.string().nullable(),
  /** Parsed choice by position, or null when the final reply is unreadable. */
  choice: z.enum(['first', 'second', 'tie']).nullable(),
  /** Parser code and text for an unreadable final reply. */
  parse_code: z.string().nullable(),
  parse_detail: z.string().nullable(),
  /** Tokens over all attempts of this outcome. */
  usage: usageSchema.nullable(),
  /** Completed HTTP exchanges that produced this outcome (1, or 2 with a re-ask). */
  exchanges: z.number().int().positive(),
});
export type CacheEntry = z.infer<typeof cacheEntrySchema>;

export interface JudgmentCache {
  get(key: string): Promise<CacheEntry | undefined>;
  put(entry: CacheEntry): Promise<void>;
  /** Looks up many keys at once (results in the same order); optional, for speed. */
  getMany?(keys: readonly string[]): Promise<Array<CacheEntry | undefined>>;
}

export interface CacheKeyParts {
  model: string;
  preset: { version: string; fingerprint: string };
  params: { temperature: number; max_tokens: number };
  /** sha256 of the rendered messages (JSON), as `promptHash()` gives it. */
  prompt: string;
  instruction: string;
  output_first: string;
  output_second: string;
  order: 'ab' | 'ba';
}

/** sha256 (hex) of the rendered messages: the prompt part of the cache key. */
export function promptHash(messages: ReadonlyArray<{ role: string; content: string }>): string {
  return sha256Hex(JSON.stringify(messages.map((m) => [m.role, m.content])));
}

/** The content address of one judgment. Canonical: keys in a fixed order, format version included. */
export function cacheKey(p: CacheKeyParts): string {
  return sha256Hex(
    JSON.stringify([
      CACHE_FORMAT,
      p.model,
      p.preset.version,
      p.preset.fingerprint,
      p.params.temperature,
      p.params.max_tokens,
      p.prompt,
      p.instruction,
      p.output_first,
      p.output_second,
      p.order,
    ]),
  );
}

/** A cache in a folder (default `<cacheDir>/judgments/`). */
export function fileCache(dir: string): JudgmentCache {
  const pathOf = (key: string) => join(dir, key.slice(0, 2), `${key}.json`);
  // One mkdir per shard folder, shared by concurrent writes, not one per write.
  const shards = new Map<string, Promise<unknown>>();
  const cache: JudgmentCache = {
    // Lists each shard folder once and reads only the entries that exist: a cold cache costs at most
    // 256 directory reads instead of one failed open per key.
    async getMany(keys) {
      const byShard = new Map<string, number[]>();
      keys.forEach((k, i) => {
        const shard = k.slice(0, 2);
        const list = byShard.get(shard);
        if (list) list.push(i);
        else byShard.set(shard, [i]);
      });
      const out = new Array<CacheEntry | undefined>(keys.length);
      await Promise.all(
        [...byShard].map(async ([shard, indices]) => {
          let names: Set<string>;
          try {
            names = new Set(await readdir(join(dir, shard)));
          } catch {
            return; // no shard folder: all misses
          }
          for (const i of indices) {
            const k = keys[i] as string;
            if (names.has(`${k}.json`)) out[i] = await cache.get(k);
          }
        }),
      );
      return out;
    },
    async get(key) {
      if (!/^[0-9a-f]{64}$/.test(key)) return undefined;
      let text: string;
      try {
        text = await readFile(pathOf(key), 'utf8');
      } catch {
        return undefined;
      }
      try {
        const parsed = cacheEntrySchema.safeParse(JSON.parse(text));
        return parsed.success && parsed.data.key === key ? parsed.data : undefined;
      } catch {
        return undefined; // torn or foreign file: a miss
      }
    },
    async put(entry) {
      const path = pathOf(entry.key);
      const shard = entry.key.slice(0, 2);
      let made = shards.get(shard);
      if (made === undefined) {
        made = mkdir(join(dir, shard), { recursive: true });
        shards.set(shard, made);
        made.catch(() => shards.delete(shard)); // retried by the next write
      }
      await made;
      const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
      // The callback API: measurably less main-thread work per write than fs/promises' FileHandle.
      await new Promise<void>((resolve, reject) => {
        writeFileCb(tmp, `${JSON.stringify(entry)}\n`, 'utf8', (writeErr) => {
          if (writeErr) {
            unlinkCb(tmp, () => reject(writeErr));
            return;
          }
          renameCb(tmp, path, (renameErr) => {
            if (renameErr) unlinkCb(tmp, () => reject(renameErr));
            else resolve();
          });
        });
      });
    },
  };
  return cache;
}

/** An in-memory cache (tests, and `--no-cache` style use). */
export function memoryCache(): JudgmentCache & { size(): number } {
  const m = new Map<string, CacheEntry>();
  return {
    async get(key) {
      return m.get(key);
    },
    async put(entry) {
      m.set(entry.key, entry);
    },
    size: () => m.size,
  };
}
