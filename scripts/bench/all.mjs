#!/usr/bin/env zx
// Every benchmark, one after the other (they share the CPU: never in parallel), each writing its own
// section of docs/BENCHMARKS.md.  npm run bench  [-- --quick: fewer rounds and the short sizes only]
import { $, argv } from 'zx';

$.verbose = true;
const quick = Boolean(argv.quick);
await $`npm run build`;
await $`npx zx scripts/bench/cli-speed.mjs --rounds ${quick ? 3 : 7}`;
await $`npx tsx scripts/bench/judge-throughput.ts`;
await $`npx zx scripts/bench/overhead.mjs --rounds ${quick ? 1 : 3} --steps ${quick ? 60 : 300}`;
await $`npx zx scripts/bench/algorithms.mjs`;
await $`npx zx scripts/bench/generation.mjs`;
await $`npx zx scripts/bench/sweep-vs-plain.mjs --steps ${quick ? '30' : '30,300'}`;
await $`npx zx scripts/bench/quickstart.mjs`;
