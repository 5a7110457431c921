#!/usr/bin/env node
// The `train-dpo` bin (package.json "bin"): see seed-bins.ts.
import { runSeedBin } from './seed-bins.js';

await runSeedBin('train-dpo');
