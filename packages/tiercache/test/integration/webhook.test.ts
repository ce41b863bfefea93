import { createServer } from 'node:http';
import type { IncomingHttpHeaders, Server } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import type { AddressInfo, Server as TcpServer, Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigurationError } from '../../src/errors.js';
import { AlertGate, createWebhookNotifier } from '../../src/observability/webhook.js';
import type { AlertNotification } from '../../src/observability/webhook.js';
import { waitFor } from './helpers/support.js';

/** The part of a Slack incoming-webhook URL that is a credential. */
const SECRET_PATH = '/services/T000/B000/s3cr3t-t0k3n';

interface Received {
  readonly method: string | undefined;
  readonly url: string | undefined;
  readonly headers: IncomingHttpHeaders;
  readonly body: unknown;
}

const closers: (() => Promise<void>)[] = [];
const warned: string[] = [];
const informed: string[] = [];
const logger = { warn: (m: string) => warned.push(m), info: (m: string) => informed.push(m) };

beforeEach(() => {
  warned.length = 0;
  informed.length = 0;
});

afterEach(async () => {
  for (const line of [...warned, ...informed]) expect(line).not.toContain('s3cr3t');
  for (const close of closers.splice(0).reverse()) await close();
});

async function listen(server: Server | TcpServer): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

/** A receiver that records each JSON POST and answers `status` (200 unless changed). */
async function receiver(): Promise<{ url: string; received: Received[]; setStatus: (status: number) => void }> {
  const received: Received[] = [];
  let status = 200;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      received.push({
        method: req.method,
        url: req.url,
        headers: req.headers,
        body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown,
      });
      res.statusCode = status;
      res.end(status === 200 ? 'ok' : 'no_service');
    });
  });
  const port = await listen(server);
  closers.push(
    () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return { url: `http://127.0.0.1:${port}${SECRET_PATH}`, received, setStatus: (s) => (status = s) };
}

/** Accepts connections, reads them, never answers. */
async function blackhole(): Promise<string> {
  const sockets = new Set<Socket>();
  const server = createTcpServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.resume();
  });
  const port = await listen(server);
  closers.push(
    () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
  return `http://127.0.0.1:${port}${SECRET_PATH}`;
}

async function deadUrl(): Promise<string> {
  const server = createTcpServer();
  const port = await listen(server);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}${SECRET_PATH}`;
}

const TIME = Date.UTC(2026, 0, 2, 3, 4, 5);

function alert(overrides: Partial<AlertNotification> = {}): AlertNotification {
  return {
    kind: 'redis-error',
    key: 'user:<1>&co',
    message: 'Command timed out after 100 ms',
    error: Object.assign(new Error('Command timed out'), { code: 'TIERCACHE_TIMEOUT' }),
    time: TIME,
    repeats: 0,
    suppressed: 0,
    ...overrides,
  };
}

describe('createWebhookNotifier against a local HTTP server', () => {
  it('POSTs a Slack-compatible { text, blocks } payload with the alert, escaped for Slack', async () => {
    const server = await receiver();
    const notify = createWebhookNotifier({ url: server.url, label: 'api-1', logger });
    await notify(alert({ repeats: 3, suppressed: 2 }));
    expect(server.received).toHaveLength(1);
    const [request] = server.received as [Received];
    expect(request.method).toBe('POST');
    expect(request.url).toBe(SECRET_PATH);
    expect(request.headers['content-type']).toBe('application/json');
    const text =
      ':rotating_light: [tiercache] Redis error on key `user:&lt;1&gt;&amp;co`: Command timed out after 100 ms ' +
      '(3 more like it since the last alert; 2 other alerts held back)';
    expect(request.body).toEqual({
      text,
      blocks: [
        { type: 'section', text: { type: 'mrkdwn', text } },
        {
          type: 'context',
          elements: [{ type: 'mrkdwn', text: 'api-1 · redis-error · 2026-01-02T03:04:05.000Z · TIERCACHE_TIMEOUT' }],
        },
      ],
    });
    expect(notify.stats).toEqual({ sent: 1, failed: 0, dropped: 0, inFlight: 0 });
  });

  it('POSTs the alert as flat JSON with format "json", with extra headers', async () => {
    const server = await receiver();
    const notify = createWebhookNotifier({
      url: server.url,
      format: 'json',
      label: 'worker-7',
      headers: { authorization: 'Bearer receiver-token' },
      logger,
    });
    await notify({ kind: 'breaker-open', message: 'opened after 10 failures', time: TIME, repeats: 0, suppressed: 0 });
    const [request] = server.received as [Received];
    expect(request.headers['authorization']).toBe('Bearer receiver-token');
    expect(request.body).toEqual({
      source: 'tiercache',
      label: 'worker-7',
      kind: 'breaker-open',
      message: 'opened after 10 failures',
      time: '2026-01-02T03:04:05.000Z',
      repeats: 0,
      suppressed: 0,
    });
  });

  it('behind an AlertGate, receives one alert per key up to the cap, then the summary', async () => {
    const server = await receiver();
    const notify = createWebhookNotifier({ url: server.url, format: 'json', logger });
    let now = TIME;
    const gate = new AlertGate({ notify, maxDistinctKeys: 3, cooldown: '10m' }, { now: () => now });
    for (let round = 0; round < 5; round++) {
      for (const key of ['a', 'b', 'c', 'd', 'e']) gate.report({ kind: 'redis-error', key, message: 'down' });
    }
    await waitFor('three alerts', () => notify.stats.sent === 3);
    now += 10 * 60_000;
    gate.report({ kind: 'breaker-open', message: 'open' });
    await waitFor('the fourth alert', () => notify.stats.sent === 4);
    const bodies = server.received.map((r) => r.body as Record<string, unknown>);
    expect(bodies.map((b) => [b['kind'], b['key']])).toEqual([
      ['redis-error', 'a'],
      ['redis-error', 'b'],
      ['redis-error', 'c'],
      ['breaker-open', undefined],
    ]);
    // 10 over the cap (d, e × 5) and 12 repeats of a, b, c that did not come back after their cooldown.
    expect(bodies[3]?.['suppressed']).toBe(22);
    expect(gate.stats()).toEqual({ sent: 4, suppressed: 10, deduplicated: 12, failed: 0 });
  });

  it('counts a non-2xx answer as a failure, warns once per streak, and logs the recovery', async () => {
    const server = await receiver();
    server.setStatus(404);
    const notify = createWebhookNotifier({ url: server.url, logger });
    for (let i = 0; i < 3; i++) await notify(alert());
    expect(notify.stats).toMatchObject({ sent: 0, failed: 3 });
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatch(/^tiercache: alert webhook at http:\/\/127\.0\.0\.1:\d+ failed \(HTTP 404\)/);
    server.setStatus(200);
    await notify(alert());
    expect(notify.stats).toMatchObject({ sent: 1, failed: 3 });
    expect(informed).toEqual([expect.stringContaining('works again after 3 failed calls')]);
  });
});

describe('createWebhookNotifier against a dead or hung receiver', () => {
  it('resolves at once against a dead port and counts the failure', async () => {
    const notify = createWebhookNotifier({ url: await deadUrl(), timeout: '3s', logger });
    const start = performance.now();
    await notify(alert());
    await notify(alert());
    expect(performance.now() - start).toBeLessThan(1000);
    expect(notify.stats).toMatchObject({ sent: 0, failed: 2 });
    expect(warned).toHaveLength(1);
    expect(warned[0]).toContain('ECONNREFUSED');
  });

  it('resolves within its timeout against a server that never answers', async () => {
    const notify = createWebhookNotifier({ url: await blackhole(), timeout: 300, logger });
    const start = performance.now();
    await notify(alert());
    const elapsed = performance.now() - start;
    expect(elapsed).toBeGreaterThanOrEqual(280);
    expect(elapsed).toBeLessThan(300 + 250);
    expect(notify.stats).toMatchObject({ failed: 1, inFlight: 0 });
    expect(warned[0]).toContain('(timeout)');
  });

  it('drops alerts beyond maxInFlight instead of piling up requests on a hung receiver', async () => {
    const notify = createWebhookNotifier({ url: await blackhole(), timeout: 300, maxInFlight: 2, logger });
    const pending = Array.from({ length: 5 }, () => notify(alert()));
    expect(notify.stats).toMatchObject({ inFlight: 2, dropped: 3 });
    await Promise.all(pending);
    expect(notify.stats).toEqual({ sent: 0, failed: 2, dropped: 3, inFlight: 0 });
  });

  it('costs the reporting path nothing: AlertGate.report returns at once while the webhook hangs', async () => {
    // The first fetch of a process loads its implementation; warm it so the timing below is about the gate.
    await createWebhookNotifier({ url: await deadUrl(), logger: { warn: () => {} } })(alert());
    const timeoutMs = 1000;
    const notify = createWebhookNotifier({ url: await blackhole(), timeout: timeoutMs, logger });
    const gate = new AlertGate({ notify, maxDistinctKeys: 1000 }, { now: () => Date.now() });
    const durations: number[] = [];
    for (let i = 0; i < 200; i++) {
      const start = performance.now();
      gate.report({ kind: 'redis-error', key: `k${i}`, message: 'timeout' });
      durations.push(performance.now() - start);
    }
    durations.sort((x, y) => x - y);
    // Every call returns long before the hung POST could (it only starts it), and the typical one costs nothing.
    // Bounds are loose on purpose: this machine runs other suites at the same time.
    expect(durations[durations.length - 1]).toBeLessThan(timeoutMs / 5);
    expect(durations[100]).toBeLessThan(1);
    expect(gate.stats().sent).toBe(200);
    await waitFor('the hung posts to time out', () => notify.stats.inFlight === 0, { timeoutMs: 5000 });
    expect(notify.stats).toMatchObject({ failed: 4, dropped: 196 });
    expect(gate.stats().failed).toBe(0);
  });
});

describe('createWebhookNotifier options', () => {
  it('refuses a malformed URL without echoing it, and unknown formats', () => {
    let thrown: unknown;
    try {
      createWebhookNotifier({ url: 'hooks.slack.com/services/s3cr3t-t0k3n' });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ConfigurationError);
    expect((thrown as Error).message).not.toContain('s3cr3t');
    expect(() => createWebhookNotifier({ url: 'http://127.0.0.1:1/', format: 'xml' as 'json' })).toThrow(
      ConfigurationError,
    );
    expect(() => createWebhookNotifier({ url: 'http://127.0.0.1:1/', timeout: 0 })).toThrow(ConfigurationError);
    expect(() => createWebhookNotifier({ url: 'http://127.0.0.1:1/', maxInFlight: 0 })).toThrow(ConfigurationError);
  });
});
