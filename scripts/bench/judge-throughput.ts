/**
 * Judge throughput benchmark.
 *
 *   npx tsx scripts/bench/judge-throughput.ts [--requests 2000] [--concurrency 32] [--latency 100] [--runs 3] [--no-write]
 *   (BENCH_VERBOSE=1 prints the judge's progress lines with timestamps)
 *
 * Starts the fake OpenAI-compatible server (test/helpers/fake-openai.ts) on 127.0.0.1 with a fixed
 * latency, judges N pairs with the `hh` preset through the real `openai` SDK at the given
 * concurrency, and compares the wall time with the ideal N / concurrency × latency (2000 / 32 ×
 * 100 ms = 6.25 s; target ≤ 1.15×). Then reruns the same judgments, which must send 0 requests
 * (cache). Each run uses a fresh cache; the median run is reported. Updates the "Judge throughput"
 * section of docs/BENCHMARKS.md (creating the file, with a machine header, if missing).
 */
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { cpus } from 'node:os';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runJudge } from '../../src/judge/run.js';

const args = process.argv.slice(2);
const arg = (name: string, dflt: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? Number(args[i + 1]) : dflt;
};
const N = arg('requests', 2000);
const CONCURRENCY = arg('concurrency', 32);
const LATENCY = arg('latency', 100);
const RUNS = arg('runs', 3);
const WRITE = !args.includes('--no-write');
const TARGET = 1.15;

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const ideal = (N / CONCURRENCY) * LATENCY; // ms

const work = mkdtempSync(join(tmpdir(), 'bench-judge-'));
const a = join(work, 'a.jsonl');
const b = join(work, 'b.jsonl');
writeFileSync(a, Array.from({ length: N }, (_, i) => JSON.stringify({ instruction: `Question ${i}: how do I do thing ${i}?`, output: `Answer A ${i}. `.repeat(20), generator: 'a' })).join('\n'));
writeFileSync(b, Array.from({ length: N }, (_, i) => JSON.stringify({ instruction: `Question ${i}: how do I do thing ${i}?`, output: `Answer B ${i}. `.repeat(15), generator: 'b' })).join('\n'));

// The fake server runs in a child process, as a real server would, so it does not compete with the
// judge for this process's event loop.
const child = fork(join(root, 'scripts', 'bench', 'judge-throughput.server.ts'), [String(LATENCY)], {
  execArgv: ['--import', 'tsx'],
  stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
});
const ask = async <T>(msg: string, field: string): Promise<T> => {
  const reply = new Promise<T>((resolveReply, reject) => {
    const timer = setTimeout(() => reject(new Error(`bench server: no reply to ${msg}`)), 30_000);
    const onMessage = (m: unknown) => {
      if (m && typeof m === 'object' && field in m) {
        clearTimeout(timer);
        child.off('message', onMessage);
        resolveReply((m as Record<string, T>)[field] as T);
      }
    };
    child.on('message', onMessage);
  });
  if (msg !== '') child.send(msg);
  return reply;
};
const baseURL = await ask<string>('', 'baseURL');
const server = {
  count: () => ask<number>('count', 'count'),
  close: async () => {
    child.send('close');
    await Promise.race([once(child, 'exit'), new Promise((r) => setTimeout(r, 5_000))]);
    if (child.exitCode === null) child.kill();
  },
};
const env = { OPENAI_API_KEY: 'sk-bench-not-a-real-key', OPENAI_BASE_URL: baseURL };

interface Run {
  wallMs: number;
  requests: number;
  rerunMs: number;
  rerunRequests: number;
}
const runs: Run[] = [];
try {
  for (let r = 0; r < RUNS; r++) {
    const cacheDir = join(work, `cache-${r}`);
    const opts = { a, b, preset: 'hh', out: join(work, `out-${r}`), cacheDir, concurrency: CONCURRENCY, seed: 1 };
    const before = await server.count();
    const t0 = performance.now();
    const s = await runJudge(opts, { env, log: process.env.BENCH_VERBOSE ? (l) => console.log(`${(performance.now() - t0).toFixed(0).padStart(6)} ms  ${l.slice(0, 100)}`) : undefined });
    const wallMs = performance.now() - t0;
    if (s.invalid !== 0 || s.n_pairs !== N) throw new Error(`bench run ${r}: ${s.invalid} invalid of ${s.n_pairs}`);
    const requests = (await server.count()) - before;
    const t1 = performance.now();
    const again = await runJudge({ ...opts, out: join(work, `rerun-${r}`) }, { env });
    const rerunMs = performance.now() - t1;
    const rerunRequests = (await server.count()) - before - requests;
    if (again.requests !== rerunRequests) throw new Error('request counts disagree');
    runs.push({ wallMs, requests, rerunMs, rerunRequests });
    console.log(`run ${r + 1}/${RUNS}: ${requests} requests in ${(wallMs / 1000).toFixed(2)} s (${(wallMs / ideal).toFixed(3)}× ideal); cached rerun ${rerunRequests} requests in ${(rerunMs / 1000).toFixed(2)} s`);
  }
} catch (err) {
  await server.close();
  rmSync(work, { recursive: true, force: true });
  throw err;
}

// The floor: plain fetch() at the same concurrency against the same server, no SDK, no judge.
const floorMs = await (async () => {
  const body = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x'.repeat(1200) }], temperature: 0, max_tokens: 256 });
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < N) {
        next++;
        const res = await fetch(`${baseURL}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
        await res.json();
      }
    }),
  );
  return performance.now() - t0;
})();
console.log(`floor (plain fetch, same server): ${(floorMs / 1000).toFixed(2)} s (${(floorMs / ideal).toFixed(3)}× ideal)`);
await server.close();
rmSync(work, { recursive: true, force: true });

const sorted = [...runs].sort((x, y) => x.wallMs - y.wallMs);
const median = sorted[Math.floor(sorted.length / 2)]!;
const ratio = median.wallMs / ideal;
const verdict = ratio <= TARGET ? 'PASS' : 'FAIL';
console.log(`median: ${(median.wallMs / 1000).toFixed(2)} s vs ideal ${(ideal / 1000).toFixed(2)} s → ${ratio.toFixed(3)}× (target ≤ ${TARGET}×) ${verdict}; cached rerun: ${median.rerunRequests} requests`);

if (WRITE) {
  const docs = join(root, 'docs', 'BENCHMARKS.md');
  const cpu = (() => {
    try {
      return /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown';
    } catch {
      return cpus()[0]?.model ?? 'unknown';
    }
  })();
  const date = new Date().toISOString().slice(0, 10);
  const machine = `${cpus().length} CPUs (nproc), ${cpu}, Node ${process.version}`;
  const load = (() => {
    try {
      return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    } catch {
      return 'n/a';
    }
  })();
  const section = [
    '<!-- judge-throughput:start -->',
    '## Judge throughput',
    '',
    `\`npx tsx scripts/bench/judge-throughput.ts\` — ${date}, ${machine}, load average after the run ${load}.`,
    '',
    `${N} judge requests (\`hh\` preset, real \`openai\` SDK over HTTP) to the fake OpenAI-compatible server on 127.0.0.1 at ${LATENCY} ms latency, concurrency ${CONCURRENCY}, no rate limits; fresh cache each run; server in a child Node process. Ideal = ${N} / ${CONCURRENCY} × ${LATENCY} ms = ${(ideal / 1000).toFixed(2)} s.`,
    '',
    '| run | requests | wall (s) | × ideal | cached rerun: requests | cached rerun (s) |',
    '|---|---|---|---|---|---|',
    ...runs.map((r, i) => `| ${i + 1} | ${r.requests} | ${(r.wallMs / 1000).toFixed(2)} | ${(r.wallMs / ideal).toFixed(3)} | ${r.rerunRequests} | ${(r.rerunMs / 1000).toFixed(2)} |`),
    '',
    `**Median: ${(median.wallMs / 1000).toFixed(2)} s = ${ratio.toFixed(3)}× ideal (target ≤ ${TARGET}×: ${verdict}); cached rerun sends ${median.rerunRequests} requests.**`,
    '',
    `Floor for this machine and server: plain \`fetch()\` at concurrency ${CONCURRENCY}, no SDK and no judge, ${(floorMs / 1000).toFixed(2)} s = ${(floorMs / ideal).toFixed(3)}× ideal. The judge's wall time includes loading and matching the outputs, planning and hashing ${N} prompts, cache lookups and writes, the statistics (bootstrap with 2000 resamples, LC fit) and writing both files.`,
    '<!-- judge-throughput:end -->',
  ].join('\n');
  let text = existsSync(docs)
    ? readFileSync(docs, 'utf8')
    : `# Benchmarks\n\nFirst written on ${date}: ${machine}. Each section names the machine and date of its latest run.\n\n`;
  const re = /<!-- judge-throughput:start -->[\s\S]*?<!-- judge-throughput:end -->/;
  text = re.test(text) ? text.replace(re, section) : `${text.trimEnd()}\n\n${section}\n`;
  writeFileSync(docs, text);
  console.log(`updated ${docs}`);
}
if (ratio > TARGET) process.exitCode = 1;
