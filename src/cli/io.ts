/** What a command may touch of the outside world; tests pass their own. */
export interface CliIO {
  out(line: string): void;
  err(line: string): void;
  isTTY: boolean;
  env: NodeJS.ProcessEnv;
}

/**
 * A reader that goes away (`dpo-sweep plan big.yaml | head`) closes the pipe: the next write fails
 * with EPIPE, which Node raises as an unhandled 'error' event (a stack trace, exit 1). Output to a
 * closed pipe is dropped instead; the command itself carries on (a running sweep keeps running).
 */
const closed = { stdout: false, stderr: false };
function dropWhenClosed(stream: NodeJS.WriteStream, name: keyof typeof closed): void {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    closed[name] = true;
  });
}
dropWhenClosed(process.stdout, 'stdout');
dropWhenClosed(process.stderr, 'stderr');

export const processIO: CliIO = {
  out: (line) => {
    if (!closed.stdout) process.stdout.write(`${line}\n`);
  },
  err: (line) => {
    if (!closed.stderr) process.stderr.write(`${line}\n`);
  },
  isTTY: Boolean(process.stdout.isTTY) && !process.env.CI,
  env: process.env,
};
