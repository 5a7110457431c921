import { readPins, setupWorker } from '../../setup/python-env.js';
import type { CliIO } from '../io.js';
import { describeWorker } from './describe.js';

export async function setupCommand(opts: { python?: string; force?: boolean }, io: CliIO): Promise<number> {
  const result = await setupWorker({ ...opts, log: (line) => io.err(line) }, io.env);
  io.out(result.message);
  return 0;
}

/** Python path, package versions against the pins, devices. Exit 1 when something does not match. */
export async function doctorCommand(opts: { python?: string; json?: boolean }, io: CliIO): Promise<number> {
  const { resolvePython } = await import('../../setup/python-env.js');
  const target = resolvePython(opts, io.env);
  let description;
  try {
    description = await describeWorker(target.python);
  } catch (error) {
    io.err(`cannot run the worker with ${target.python}: ${(error as Error).message.split('\n')[0]}`);
    io.err(target.source === 'venv' ? 'run `dpo-sweep setup` first' : 'check the interpreter, or unset it to use the managed venv');
    return 1;
  }
  const pins = readPins();
  const checks = Object.entries(pins).map(([name, want]) => {
    const have = description.packages[name] ?? null;
    const same = have !== null && (have === want || have.split('+')[0] === want);
    return { name, want, have, ok: same };
  });
  const ok = checks.every((c) => c.ok) && !description.torch_error;
  if (opts.json) {
    io.out(JSON.stringify({ ok, source: target.source, checks, ...description }, null, 2));
    return ok ? 0 : 1;
  }
  io.out(`python      ${description.python} (${description.python_version}, ${target.source})`);
  for (const c of checks) io.out(`${c.ok ? 'ok  ' : 'BAD '}        ${c.name.padEnd(13)} ${c.have ?? 'missing'}${c.ok ? '' : `  (pinned ${c.want})`}`);
  io.out(`devices     ${description.devices.map((d) => `${d.kind}:${d.index} ${d.name}${d.memory_gb ? ` ${d.memory_gb} GB` : ''}`).join(', ')}`);
  const extras = Object.entries(description.extras).filter(([, v]) => v).map(([k]) => k);
  io.out(`extras      ${extras.length ? extras.join(', ') : 'none'}`);
  if (description.torch_error) io.out(`torch       BROKEN: ${description.torch_error}`);
  io.out(ok ? 'worker environment matches the pins' : 'worker environment does NOT match the pins: run `dpo-sweep setup --force`');
  return ok ? 0 : 1;
}
