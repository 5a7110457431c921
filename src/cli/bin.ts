#!/usr/bin/env node
import { main } from './main.js';

const code = await main(process.argv.slice(2));
// Let pending writes to stdout/stderr drain before exiting.
process.exitCode = code;
setImmediate(() => process.exit(code));
