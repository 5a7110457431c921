/**
 * One writer per sweep directory: a lock file holding the owner's pid and host. A lock whose owner
 * is gone (kill -9) is stale and taken over; a live owner makes the second process exit (code 3).
 */
import { linkSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { InputError, LockedError } from '../errors.js';

interface LockInfo {
  pid: number;
  host: string;
  started: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Whether a live process holds the sweep directory: `live`, `none` (no lock, or the lock of a
 * process that is gone), or `elsewhere` (held from another host: cannot tell).
 */
export function lockState(dir: string): 'live' | 'none' | 'elsewhere' {
  let held: LockInfo;
  try {
    held = JSON.parse(readFileSync(join(dir, '.lock'), 'utf8')) as LockInfo;
  } catch {
    return 'none';
  }
  if (held.host !== hostname()) return 'elsewhere';
  return typeof held.pid === 'number' && alive(held.pid) ? 'live' : 'none';
}

export interface SweepLock {
  release(): void;
}

/** Locks this process holds, by path, with how many holders (the pipeline and the sweep inside it). */
const held = new Map<string, { count: number; release: () => void }>();

/**
 * Take the sweep directory's lock. Re-entrant within one process: `dpo-sweep run` holds it over the
 * whole pipeline (training, eval, judge, report) and the training part takes it again.
 */
export function acquireLock(dir: string): SweepLock {
  const path = resolve(dir, '.lock');
  let entry = held.get(path);
  if (!entry) {
    entry = { count: 0, release: takeLock(dir, path).release };
    held.set(path, entry);
  }
  entry.count += 1;
  const mine = entry;
  let released = false;
  return {
    release: () => {
      if (released) return;
      released = true;
      mine.count -= 1;
      if (mine.count === 0) {
        held.delete(path);
        mine.release();
      }
    },
  };
}

function takeLock(dir: string, path: string): SweepLock {
  const mine: LockInfo = { pid: process.pid, host: hostname(), started: new Date().toISOString() };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      createWhole(path, JSON.stringify(mine));
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        try {
          const held = JSON.parse(readFileSync(path, 'utf8')) as LockInfo;
          if (held.pid === process.pid) rmSync(path, { force: true });
        } catch {
          // already gone
        }
      };
      process.once('exit', release);
      return { release };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST') {
        throw new InputError(`cannot take the lock of the sweep directory ${dir}: ${code ?? (error as Error).message}`, [
          `${path} could not be created; is the directory writable (--out)?`,
        ]);
      }
      let text: string;
      try {
        text = readFileSync(path, 'utf8');
      } catch {
        continue; // released meanwhile
      }
      let held: LockInfo | undefined;
      try {
        held = JSON.parse(text) as LockInfo;
      } catch {
        held = undefined; // torn: an older dpo-sweep died mid-write
      }
      if (held && held.host === hostname() && alive(held.pid)) {
        throw new LockedError(
          `${dir} is in use by another dpo-sweep process (pid ${held.pid}, since ${held.started}); ` +
            'wait for it, or watch it with `dpo-sweep status`',
        );
      }
      if (held && held.host !== hostname()) {
        throw new LockedError(`${dir} is locked by a dpo-sweep process on ${held.host} (pid ${held.pid}); remove ${path} if that host is gone`);
      }
      removeStale(path, text);
    }
  }
  throw new LockedError(`could not take the lock ${path}`);
}

/**
 * Remove the stale lock whose content was `text`. Moved aside first and checked: when another
 * process took the stale lock over between our read and our move, what we moved is its live lock,
 * which goes back (a plain remove would have deleted it, and both processes would own the dir).
 */
function removeStale(path: string, text: string): void {
  const aside = `${path}.${process.pid}.stale`;
  try {
    renameSync(path, aside);
  } catch {
    return; // gone already
  }
  let moved: string | undefined;
  try {
    moved = readFileSync(aside, 'utf8');
  } catch {
    moved = undefined;
  }
  if (moved !== text) {
    try {
      linkSync(aside, path);
    } catch {
      // a third process holds it now; it is the owner
    }
  }
  rmSync(aside, { force: true });
}

/**
 * Create `path` holding `text`, failing with EEXIST when it exists. The file appears whole (a
 * temporary file hard-linked into place): a second process never reads a half-written lock, which
 * it would take for the torn lock of a dead process and remove.
 */
function createWhole(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  try {
    linkSync(tmp, path);
  } catch (error) {
    // A filesystem without hard links (some FUSE mounts): exclusive create, written in one call.
    if (!NO_LINKS.has((error as NodeJS.ErrnoException).code ?? '')) throw error;
    writeFileSync(path, text, { flag: 'wx' });
  } finally {
    rmSync(tmp, { force: true });
  }
}

const NO_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV']);
