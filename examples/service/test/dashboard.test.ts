import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp } from './helpers/app.js';
import type { TestApp } from './helpers/app.js';
import { RedisServer } from './helpers/redis.js';

const CHROMIUM = '/usr/bin/chromium';
/** `UPDATE_SCREENSHOT=1` also writes the screenshot to docs/img/dashboard.png. */
const DOCS_SCREENSHOT = fileURLToPath(new URL('../../../docs/img/dashboard.png', import.meta.url));

/** `UPDATE_SCREENSHOT=1` runs longer, so the picture in the docs has a minute of history on both sides of the outage. */
const UPDATING = process.env['UPDATE_SCREENSHOT'] === '1';
const BEFORE_OUTAGE_MS = UPDATING ? 40_000 : 4000;
const AFTER_OUTAGE_MS = UPDATING ? 20_000 : 2000;

/**
 * Requests from four loops until stopped, so the charts have something to show: mostly product pages (hits after the
 * first of each), some news, and now and then a product nobody asked for yet (a miss). Bounded by count as well.
 */
function traffic(base: string): { stop: () => Promise<number> } {
  let running = true;
  let sent = 0;
  const loop = async (offset: number) => {
    for (let i = offset; running && i < (UPDATING ? 200_000 : 20_000); i += 4) {
      const url =
        i % 40 === 39 ? `/products/${1 + ((i / 40) % 48)}` : i % 5 === 0 ? '/news?limit=5' : `/products/${1 + (i % 8)}`;
      await fetch(base + url).then(
        (r) => r.arrayBuffer(),
        () => undefined,
      );
      sent++;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };
  const loops = Promise.all([0, 1, 2, 3].map(loop));
  return {
    async stop() {
      running = false;
      await loops;
      return sent;
    },
  };
}

async function text(page: Page, selector: string): Promise<string> {
  return (await page.textContent(selector)) ?? '';
}

describe('the dashboard in a real browser', () => {
  let redis: RedisServer;
  let t: TestApp;
  let browser: Browser;
  let shots: string;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`${CHROMIUM} is missing: apt-get update && apt-get install -y chromium`);
    }
    redis = await RedisServer.start();
    t = await startApp({
      database: { kind: 'pglite' },
      env: { REDIS_URL: redis.url, WORKER_INTERVAL: '5s' },
      jobs: true,
      listen: true,
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    shots = await mkdtemp(join(tmpdir(), 'svc-dashboard-'));
  });
  afterAll(async () => {
    await browser?.close();
    await t?.close();
    await redis?.stop();
    if (shots) await rm(shots, { recursive: true, force: true });
  });

  it(
    'loads, counts hits as requests come in, and shows Redis down after it is killed',
    async () => {
      const page = await browser.newPage({ viewport: { width: 1440, height: 960 } });
      const pageErrors: string[] = [];
      page.on('pageerror', (error) => pageErrors.push(error.message));
      page.on('console', (message) => {
        if (message.type() === 'error') pageErrors.push(message.text());
      });

      await page.goto(`${t.url}/dashboard`);
      expect(await page.title()).toContain('tiercache');
      await page.waitForFunction(() => document.getElementById('redis-state')?.textContent === 'ready', null, {
        timeout: 10_000,
      });
      expect(await text(page, '#hits-total')).toBe('0');

      const load = traffic(t.url as string);
      try {
        await page.waitForFunction(
          () => Number((document.getElementById('hits-total')?.textContent ?? '0').replace(/,/g, '')) > 0,
          null,
          { timeout: 10_000 },
        );
        // Some history in the charts before the outage.
        await page.waitForTimeout(BEFORE_OUTAGE_MS);
        expect(Number((await text(page, '#hit-ratio')).replace('%', ''))).toBeGreaterThan(50);

        await redis.kill();
        await page.waitForFunction(() => document.getElementById('redis-state')?.textContent === 'down', null, {
          timeout: 10_000,
        });
        expect(await page.getAttribute('#redis-pill', 'data-tone')).toBe('bad');
        await page.waitForTimeout(AFTER_OUTAGE_MS);
      } finally {
        expect(await load.stop()).toBeGreaterThan(100);
      }

      // Seven charts drawn by uPlot, none with more than five series, and not one script error.
      expect(await page.locator('.uplot canvas').count()).toBe(7);
      for (const chart of await page.locator('.uplot').all()) {
        // The legend lists the x series too.
        expect(await chart.locator('.u-legend .u-series').count()).toBeLessThanOrEqual(6);
      }
      expect(pageErrors).toEqual([]);

      // The latency panels have data, and their legends show the latest values without hovering.
      const legend = (id: string) =>
        page.locator(`#${id} .u-legend .u-series:not(:first-child) .u-value`).allTextContents();
      const latency = await legend('chart-latency');
      expect(latency).toHaveLength(4);
      expect(latency.filter((v) => / ms$/.test(v)).length).toBeGreaterThanOrEqual(2);
      const loader = await legend('chart-loader');
      expect(loader).toHaveLength(2);
      expect(await text(page, '#request-p99')).toMatch(/ ms$/);
      // Hit ratios per key group: the products group is there, with a percentage.
      const groupLabels = await page
        .locator('#chart-groups .u-legend .u-series:not(:first-child) .u-label')
        .allTextContents();
      expect(groupLabels.length).toBeGreaterThanOrEqual(1);
      expect(groupLabels.length).toBeLessThanOrEqual(5);
      expect(groupLabels.some((label) => label.startsWith('product'))).toBe(true);
      const ratios = await legend('chart-groups');
      expect(ratios.some((v) => /%$/.test(v))).toBe(true);

      const file = join(shots, 'dashboard.png');
      await page.screenshot({ path: file, fullPage: true });
      expect((await stat(file)).size).toBeGreaterThan(20_000);
      if (UPDATING) {
        await mkdir(join(DOCS_SCREENSHOT, '..'), { recursive: true });
        await copyFile(file, DOCS_SCREENSHOT);
      }
    },
    BEFORE_OUTAGE_MS + AFTER_OUTAGE_MS + 45_000,
  );
});
