/**
 * The HTML report in a real browser: Debian's Chromium driven by playwright-core (installed by
 * `.ci/run`). The page must load from file:// with no console error, no page error and no request
 * leaving the file, show every plot with a real size, and screenshot to a non-trivial PNG.
 * Without Chromium: a failure under CI=true (CI must run it), a skip with a message otherwise.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeReport } from '../../src/report/write.js';
import { copyFixture } from './helpers.js';

const CHROMIUM = process.env.DPO_SWEEP_CHROMIUM ?? '/usr/bin/chromium';
const CI = process.env.CI === 'true' || process.env.CI === '1';
const available = existsSync(CHROMIUM);
if (!available && !CI) console.warn(`html-chromium: ${CHROMIUM} not found; skipping the browser test (apt-get install chromium, or CI=true to make this a failure)`);

const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];

describe.runIf(available || CI)('report.html in headless Chromium', () => {
  let browser: Browser;
  let shots: string;
  const dirs: string[] = [];

  beforeAll(async () => {
    shots = mkdtempSync(join(tmpdir(), 'report-shots-'));
    if (available) browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  });
  afterAll(async () => {
    await browser?.close();
    for (const d of [...dirs, shots]) if (d) rmSync(d.endsWith('sweep') || d.endsWith('judge-only') ? join(d, '..') : d, { recursive: true, force: true });
  });

  for (const fixture of ['sweep', 'judge-only'] as const) {
    it(`${fixture}: loads cleanly, shows every plot, screenshots`, async () => {
      if (!available) throw new Error(`Chromium not found at ${CHROMIUM}: CI must run the HTML report test (install the Debian chromium package)`);
      const dir = copyFixture(fixture);
      dirs.push(dir);
      const { dir: reportDir, content } = await writeReport(dir, { formats: ['html'] });
      const file = join(reportDir, 'report.html');

      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const problems: string[] = [];
      const requests: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') problems.push(`console: ${m.text()}`);
      });
      page.on('pageerror', (e) => problems.push(`page: ${e.message}`));
      // Anything but the file itself is a dependency the report must not have.
      await page.route('**/*', async (route) => {
        const url = route.request().url();
        if (url.startsWith('file:') || url.startsWith('data:')) return route.continue();
        requests.push(url);
        return route.abort();
      });
      await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });

      expect(problems).toEqual([]);
      expect(requests).toEqual([]);
      expect(await page.title()).toBe(`${content.data.kind === 'sweep' ? 'Sweep' : 'Judge'} report: ${content.data.name}`);

      // Every chart is there and drawn at a real size (top-level SVGs only).
      const boxes = await page.locator('figure .plot > svg').evaluateAll((els) =>
        els.map((el) => {
          const r = el.getBoundingClientRect();
          return { width: r.width, height: r.height, marks: el.querySelectorAll('[class*="mark-"] path, [class*="mark-"] line, [class*="mark-"] text').length };
        }),
      );
      expect(boxes).toHaveLength(content.charts.length);
      expect(boxes.length).toBeGreaterThan(0);
      for (const b of boxes) {
        expect(b.width).toBeGreaterThan(200);
        expect(b.height).toBeGreaterThan(40);
        expect(b.marks).toBeGreaterThan(0);
      }
      // The tables and examples render with content.
      expect(await page.locator('section#summary ul.verdicts li').count()).toBe(content.results.verdicts.length);
      if (content.data.kind === 'sweep') expect(await page.locator('table.results tbody tr').count()).toBe(content.data.runs.length);
      expect(await page.locator('article.example').count()).toBe(content.examples?.examples.length ?? 0);

      const png = join(shots, `${fixture}.png`);
      await page.screenshot({ path: png, fullPage: true });
      const bytes = readFileSync(png);
      expect(bytes.subarray(1, 4).toString('latin1')).toBe('PNG');
      expect(statSync(png).size).toBeGreaterThan(fixture === 'sweep' ? 150_000 : 40_000);
      await page.close();
    });
  }
});
