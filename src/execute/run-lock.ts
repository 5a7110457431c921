/**
 * One process per run directory. The runner holds `runs/<id>/.lock` while it executes the run; the
 * executor waits for a live holder (a runner orphaned by a killed CLI, still saving its checkpoint)
 * before starting the run again, and kills it if it outlives the grace period.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface RunLock {
  runner_pid: number;
  /** The runner's parent (the CLI) when it started; a lock whose CLI is gone belongs to an orphan. */
  parent_pid: number;
  since: string;
}

const lockPath = (runDir: string) => join(runDir, '.lock');

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function readRunLock(runDir: string): RunLock | undefined {
  try {
    return JSON.parse(readFileSync(lockPath(runDir), 'utf8')) as RunLock;
  } catch {
    return undefined;
  }
}

/** Take the run lock for this process (the runner); returns its release function. */
export function acquireRunLock(runDir: string): () => void {
  const mine: RunLock = { runner_pid: process.pid, parent_pid: process.ppid, since: new Date().toISOString() };
  writeFileSync(lockPath(runDir), JSON.stringify(mine));
  return () => {
    if (readRunLock(runDir)?.runner_pid === process.pid) rmSync(lockPath(runDir), { force: true });
  };
}

/** Wait until no live process holds the run; kill a holder that outlives `maxWaitMs`. */
export async function waitForRunLock(runDir: string, maxWaitMs: number, kill: (pid: number) => void): Promise<void> {
  const deadline = Date.now() + maxWaitMs;
  for (;;) {
    const lock = readRunLock(runDir);
    if (!lock || lock.runner_pid === process.pid || !alive(lock.runner_pid)) return;
    if (Date.now() > deadline) {
      kill(lock.runner_pid);
      await new Promise((r) => setTimeout(r, 500));
      return;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}
