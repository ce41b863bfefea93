import { describe, expect, it } from 'vitest';
import { clusterFailFastOptions } from '../../src/tiers/redis-cluster-options.js';
import { SENTINEL_RECONNECT_CEILING_MS, failFastOptions, reconnectDelay } from '../../src/tiers/redis-connection.js';

const sentinels = [{ host: '127.0.0.1', port: 26379 }];

describe('failFastOptions', () => {
  it('keeps the fail-fast settings over whatever the user passed', () => {
    const options = failFastOptions({ enableOfflineQueue: true, maxRetriesPerRequest: 20, commandTimeout: 5000 }, 100);
    expect(options).toMatchObject({ enableOfflineQueue: false, maxRetriesPerRequest: 0 });
    // The tier's deadlines (tiers/deadlines.ts) bound every call, with one timer for all; no timer per command.
    expect(options.commandTimeout).toBeUndefined();
    expect(options.connectTimeout).toBe(1000);
    expect(options.reconnectOnError).toBeUndefined();
    expect(options.sentinelRetryStrategy).toBeUndefined();
  });

  it('bounds every sentinel query, reconnects sooner and reconnects on READONLY behind Sentinel', () => {
    const options = failFastOptions({ sentinels, name: 'mymaster' }, 200);
    expect(options).toMatchObject({ sentinels, name: 'mymaster', enableOfflineQueue: false });
    expect(options.sentinelCommandTimeout).toBe(2000);
    for (let attempt = 1; attempt < 40; attempt++) {
      expect(options.retryStrategy?.(attempt)).toBeLessThanOrEqual(SENTINEL_RECONNECT_CEILING_MS);
      expect(options.sentinelRetryStrategy?.(attempt)).toBeLessThanOrEqual(SENTINEL_RECONNECT_CEILING_MS);
    }
    expect(options.reconnectOnError?.(new Error("READONLY You can't write against a read only replica."))).toBe(true);
    expect(options.reconnectOnError?.(new Error('WRONGTYPE Operation against a key'))).toBe(false);
  });

  it("leaves the user's own Sentinel choices alone", () => {
    const mine = (): number => 7;
    const options = failFastOptions(
      { sentinels, name: 'mymaster', sentinelCommandTimeout: 300, sentinelRetryStrategy: mine, reconnectOnError: null },
      100,
    );
    expect(options.sentinelCommandTimeout).toBe(300);
    expect(options.sentinelRetryStrategy).toBe(mine);
    expect(options.reconnectOnError).toBeNull();
  });
});

describe('reconnectDelay', () => {
  it('doubles from 50 ms up to its ceiling, jittered over the upper half', () => {
    expect(reconnectDelay(1, () => 0)).toBe(50);
    expect(reconnectDelay(1, () => 1)).toBe(100);
    expect(reconnectDelay(20, () => 0)).toBe(1000);
    expect(reconnectDelay(20, () => 1)).toBe(2000);
    expect(reconnectDelay(20, () => 1, 500)).toBe(500);
    expect(reconnectDelay(20, () => 0, 500)).toBe(250);
  });
});

describe('the redirection settings of a Cluster tiercache builds', () => {
  it('fails CLUSTERDOWN at once, retries a closed connection or TRYAGAIN within the timeout, caps redirections', () => {
    const options = clusterFailFastOptions({}, 100);
    expect(options).toMatchObject({
      retryDelayOnFailover: 25,
      retryDelayOnClusterDown: 0,
      retryDelayOnTryAgain: 25,
      retryDelayOnMoved: 0,
      maxRedirections: 4,
      slotsRefreshTimeout: 1000,
      enableOfflineQueue: false,
    });
    expect(options.redisOptions).toMatchObject({ maxRetriesPerRequest: 0 });
    expect(options.redisOptions?.commandTimeout).toBeUndefined();
  });

  it("lets the user's own redirection settings win", () => {
    const options = clusterFailFastOptions({ maxRedirections: 16, retryDelayOnClusterDown: 300 }, 100);
    expect(options.maxRedirections).toBe(16);
    expect(options.retryDelayOnClusterDown).toBe(300);
    expect(options.retryDelayOnFailover).toBe(25);
  });
});
