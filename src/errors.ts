/**
 * The error taxonomy. Library code throws these (always keeping `cause`); only the CLI turns them
 * into messages and exit codes (see `cli/main.ts`).
 */

export type ErrorCode =
  | 'bad-input' // plan, config, data, arguments: exit 2
  | 'locked' // the sweep dir is held by another live process: exit 3
  | 'run-failed' // at least one run or stage failed: exit 1
  | 'worker' // the Python worker raised or died
  | 'internal';

export class DpoSweepError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Bad user input. `details` holds one line per problem, already worded for the user. */
export class InputError extends DpoSweepError {
  readonly details: string[];
  constructor(message: string, details: string[] = [], options?: { cause?: unknown }) {
    super('bad-input', message, options);
    this.details = details;
  }
}

export class LockedError extends DpoSweepError {
  constructor(message: string) {
    super('locked', message);
  }
}

export class InternalError extends DpoSweepError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('internal', message, options);
  }
}

export const EXIT = { ok: 0, failed: 1, badInput: 2, locked: 3 } as const;
