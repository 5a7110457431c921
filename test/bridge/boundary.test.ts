/**
 * The process model, checked on the source: only src/bridge/bridge.ts imports pythonia, and the CLI's
 * import graph (static and lazy imports) never reaches it. Runners reach it; the CLI forks runners.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/python.js';

const src = join(repoRoot, 'src');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : path.endsWith('.ts') ? [path] : [];
  });
}

function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:import|export)\s[^'";]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)].map(
    (m) => m[1] ?? m[2]!,
  );
  // `import type` never loads code.
  const typeOnly = new Set([...text.matchAll(/import\s+type\s[^;]*?from\s+['"]([^'"]+)['"]/g)].map((m) => m[1]!));
  return specs.filter((s) => !typeOnly.has(s));
}

function reachable(entry: string): Set<string> {
  const seen = new Set<string>();
  const stack = [entry];
  while (stack.length) {
    const file = stack.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const spec of imports(file)) {
      if (spec.startsWith('.')) stack.push(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
      else seen.add(`pkg:${spec}`);
    }
  }
  return seen;
}

describe('process model', () => {
  it('only src/bridge/bridge.ts imports pythonia', () => {
    const importers = files(src).filter((f) => imports(f).includes('pythonia'));
    expect(importers.map((f) => f.slice(src.length + 1))).toEqual(['bridge/bridge.ts']);
  });

  it('the CLI never loads the bridge (runners do)', () => {
    const cli = reachable(join(src, 'cli/bin.ts'));
    expect(cli.has('pkg:pythonia')).toBe(false);
    expect(cli.has(join(src, 'bridge/bridge.ts'))).toBe(false);
    expect(cli.has(join(src, 'execute/executor.ts'))).toBe(true);
    const runner = reachable(join(src, 'execute/runner.ts'));
    expect(runner.has('pkg:pythonia')).toBe(true);
  });
});
