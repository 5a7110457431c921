#!/usr/bin/env node
// The `train-sft` bin (package.json "bin"): see seed-bins.ts.
import { runSeedBin } from './seed-bins.js';

await runSeedBin('train-sft');
