/** Ask the worker to describe itself without a bridge (the CLI process never imports pythonia). */
import { execa } from 'execa';
import { workerRoot } from '../../setup/python-env.js';

export interface WorkerDescription {
  worker_version: string;
  python: string;
  python_version: string;
  packages: Record<string, string | null>;
  devices: Array<{ index: number; kind: string; name: string; memory_gb?: number }>;
  cuda: boolean;
  torch_error: string | null;
  algorithms: string[];
  loss_types: string[];
  extras: Record<string, boolean>;
}

export async function describeWorker(python: string): Promise<WorkerDescription> {
  const code = 'import json; from dpo_sweep_worker import facade; print(json.dumps(facade.describe()))';
  const { stdout } = await execa(python, ['-c', code], {
    env: { PYTHONPATH: [workerRoot, process.env.PYTHONPATH].filter(Boolean).join(':') },
    timeout: 120_000,
  });
  return JSON.parse(stdout.trim().split('\n').pop()!) as WorkerDescription;
}
