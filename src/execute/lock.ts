/**
 * One writer per sweep directory: a lock file holding the owner's pid and host. A lock whose owner
 * is gone (kill -9) is stale and taken over; a live owner makes the second process exit (code 3).
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { LockedError } from '../errors.js';

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

export interface SweepLock {
  release(): void;
}

export function acquireLock(dir: string): SweepLock {
  const path = join(dir, '.lock');
  const mine: LockInfo = { pid: process.pid, host: hostname(), started: new Date().toISOString() };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      writeFileSync(path, JSON.stringify(mine), { flag: 'wx' });
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
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      let held: LockInfo | undefined;
      try {
        held = JSON.parse(readFileSync(path, 'utf8')) as LockInfo;
      } catch {
        held = undefined; // torn: its writer died mid-write
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
      rmSync(path, { force: true }); // stale
    }
  }
  throw new LockedError(`could not take the lock ${path}`);
}
