// Shared by the benchmark scripts: machine description and section-wise updates of docs/BENCHMARKS.md.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('../..', import.meta.url));
const docs = `${root}docs/BENCHMARKS.md`;

export function machine() {
  const cpu = cpus()[0]?.model?.trim() ?? 'unknown CPU';
  return `${cpus().length} CPUs (${cpu}), Node ${process.version}`;
}

export function today() {
  return new Date().toISOString().slice(0, 10);
}

export function load() {
  return loadavg().map((x) => x.toFixed(2)).join(' ');
}

/** Replace (or append) the section between `<!-- name:start -->` and `<!-- name:end -->`. */
export function updateSection(name, markdown) {
  const block = `<!-- ${name}:start -->\n${markdown.trim()}\n<!-- ${name}:end -->`;
  const text = existsSync(docs)
    ? readFileSync(docs, 'utf8')
    : `# Benchmarks\n\nEach section names the machine and the date of its latest run. Targets are ratios measured in one run, alternating the two sides, because timings on shared machines are noisy.\n\n`;
  const re = new RegExp(`<!-- ${name}:start -->[\\s\\S]*?<!-- ${name}:end -->`);
  writeFileSync(docs, re.test(text) ? text.replace(re, block) : `${text.trimEnd()}\n\n${block}\n`);
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
