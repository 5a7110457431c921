/**
 * What can go wrong on the far side of the bridge. Every error has a non-empty `message`; none
 * holds a live Python reference.
 */
import { DpoSweepError } from '../errors.js';

/** The shape the Python call host returns for an exception (`host._error`). */
export interface PythonFailure {
  type: string;
  module?: string;
  message: string;
  traceback: string;
}

/** A Python exception raised inside a call. The worker is still alive and usable. */
export class PythonError extends DpoSweepError {
  readonly pythonType: string;
  readonly pythonMessage: string;
  readonly traceback: string;
  constructor(failure: PythonFailure, call: string) {
    super('worker', `${failure.type}: ${failure.message || '(no message)'} (in ${call})`);
    this.pythonType = failure.type;
    this.pythonMessage = failure.message;
    this.traceback = failure.traceback;
  }
}

/** The Python process ended while a call was pending (killed, crashed, exited). */
export class WorkerExitError extends DpoSweepError {
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  constructor(exitCode: number | null, signal: NodeJS.Signals | null, call: string) {
    const how = signal ? `was killed by ${signal}` : `exited with code ${exitCode}`;
    super('worker', `the Python worker ${how} during ${call}`);
    this.exitCode = exitCode;
    this.signal = signal;
  }
}

/** A call ran past its timeout; the worker was asked to stop, then killed if it did not. */
export class CallTimeoutError extends DpoSweepError {
  readonly timeoutMs: number;
  /** What the call returned if it stopped gracefully within the grace period. */
  readonly partial: unknown;
  constructor(timeoutMs: number, call: string, partial?: unknown) {
    super('worker', `${call} ran past its ${timeoutMs} ms timeout`);
    this.timeoutMs = timeoutMs;
    this.partial = partial;
  }
}

/** A call was cancelled through its AbortSignal. */
export class CallAbortedError extends DpoSweepError {
  readonly partial: unknown;
  constructor(call: string, reason: unknown, partial?: unknown) {
    const why = reason instanceof Error ? reason.message : reason === undefined ? 'aborted' : String(reason);
    super('worker', `${call} was cancelled (${why})`);
    this.partial = partial;
  }
}

/** The Python side could not be started (missing interpreter, import failure of the host). */
export class BridgeStartError extends DpoSweepError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('worker', message, options);
  }
}
