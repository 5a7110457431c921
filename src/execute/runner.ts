/**
 * The runner process: hosts one bridge (one Python worker, kept warm across the runs of its slot)
 * and executes runs. The CLI never imports pythonia; it forks one runner per device slot.
 *
 * Two modes:
 * - under a parent (IPC): receives `ToRunner` messages, reports `FromRunner` messages;
 * - standalone (a Slurm task): `node runner.js --run-dir DIR --cache-dir DIR [--attempt N]`,
 *   runs that one run and exits 0 (succeeded) or 1.
 */
import { PythonBridge } from '../bridge/bridge.js';
import { workerRoot } from '../setup/python-env.js';
import type { FromRunner, RunJob, ToRunner, WorkerEvent } from './events.js';
import { readJson, runPaths } from './run-dir.js';
import { FACADE, runOne, workerTarget } from './run-one.js';

const python = process.env.DPO_SWEEP_RUNNER_PYTHON;
const grace = Number(process.env.DPO_SWEEP_STOP_GRACE_MS ?? 60_000);

function send(message: FromRunner): void {
  if (process.send && process.connected) process.send(message);
}

async function main(): Promise<number> {
  if (!python) {
    send({ type: 'fatal', message: 'DPO_SWEEP_RUNNER_PYTHON is not set' });
    return 2;
  }
  const bridge = PythonBridge.open({ python, pythonPath: [workerRoot], gracePeriodMs: grace });
  const args = process.argv.slice(2);
  if (args.includes('--run-dir')) return standalone(bridge, args);

  let current: AbortController | undefined;
  let queue = Promise.resolve();
  let exiting = false;

  const shutdown = async (code: number) => {
    if (exiting) return;
    exiting = true;
    current?.abort(new Error('the sweep process went away'));
    await queue.catch(() => undefined);
    await bridge.stop();
    process.exit(code);
  };

  process.on('disconnect', () => void shutdown(0));
  process.on('SIGTERM', () => void shutdown(0));
  // The parent may have died before the listener above existed (a CLI killed right after forking
  // us): then 'disconnect' never fires. Check now, and keep checking (an orphan is re-parented).
  const parent = process.ppid;
  const orphaned = () => !process.connected || process.ppid !== parent;
  if (orphaned()) void shutdown(0);
  setInterval(() => {
    if (orphaned()) void shutdown(0);
  }, 500).unref();
  process.on('message', (raw) => {
    const message = raw as ToRunner;
    if (message.type === 'run') {
      queue = queue.then(async () => {
        current = new AbortController();
        const status = await runOne(message.job, bridge, {
          onEvent: (event) => send({ type: 'event', runId: message.job.runId, event }),
          signal: current.signal,
        });
        current = undefined;
        send({ type: 'done', runId: message.job.runId, status });
      });
      queue = queue.catch((error: unknown) => {
        send({ type: 'fatal', message: error instanceof Error ? error.message : String(error) });
      });
    } else if (message.type === 'call') {
      queue = queue.then(async () => {
        current = new AbortController();
        try {
          const result = await bridge.call(FACADE, message.fn, message.request, {
            ...(message.logPath ? { logPath: message.logPath } : {}),
            ...(message.timeoutMs ? { timeoutMs: message.timeoutMs } : {}),
            signal: current.signal,
            onEvent: (event) => send({ type: 'call-event', callId: message.callId, event: event as WorkerEvent }),
          });
          send({ type: 'call-result', callId: message.callId, ok: true, result });
        } catch (error) {
          const e = error as Error & { pythonType?: string; traceback?: string };
          send({
            type: 'call-result',
            callId: message.callId,
            ok: false,
            error: {
              name: e.name,
              message: e.message,
              ...(e.pythonType ? { pythonType: e.pythonType } : {}),
              ...(e.traceback ? { traceback: e.traceback } : {}),
            },
          });
        } finally {
          current = undefined;
        }
      });
    } else if (message.type === 'stop') {
      current?.abort(new Error('stop requested'));
    } else if (message.type === 'exit') {
      void shutdown(0);
    }
  });

  let pythonPid: number | null = null;
  try {
    pythonPid = await bridge.pid();
    // Import torch/transformers/TRL now, while the CLI is still planning: the first run starts warm.
    if (workerTarget() === FACADE) void bridge.call(FACADE, 'warmup', {}).catch(() => undefined);
  } catch (error) {
    send({ type: 'fatal', message: error instanceof Error ? error.message : String(error) });
    await shutdown(1);
  }
  send({ type: 'ready', pid: process.pid, pythonPid });
  return new Promise<number>(() => undefined); // lives until told to exit or orphaned
}

async function standalone(bridge: PythonBridge, args: string[]): Promise<number> {
  const value = (flag: string) => {
    const i = args.indexOf(flag);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const runDir = value('--run-dir')!;
  const overrides = readJson<Record<string, unknown>>(runPaths(runDir).overrides);
  const job: RunJob = {
    runId: runDir.split('/').filter(Boolean).pop() ?? runDir,
    runDir,
    ...(overrides ? { overrides } : {}),
    cacheDir: value('--cache-dir') ?? process.env.DPO_SWEEP_CACHE ?? `${runDir}/../../.cache`,
    attempt: Number(value('--attempt') ?? 1),
    resume: true,
    refSharing: Math.max(1, Number(value('--ref-sharing') ?? 1) || 1),
  };
  const controller = new AbortController();
  process.on('SIGTERM', () => controller.abort(new Error('SIGTERM (scancel or pre-emption)')));
  process.on('SIGINT', () => controller.abort(new Error('SIGINT')));
  const status = await runOne(job, bridge, { signal: controller.signal });
  await bridge.stop();
  return status.state === 'succeeded' ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    send({ type: 'fatal', message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    process.exit(70);
  },
);
