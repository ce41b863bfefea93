import { describe, expect, it } from 'vitest';
import { Counters } from '../../src/observability/stats.js';
import { CircuitBreaker } from '../../src/resilience/breaker.js';
import { FakeClock, InMemoryRemoteTier } from '../../src/testing/index.js';
import { RemoteAccessor } from '../../src/tiers/remote-accessor.js';
import type { RemoteStatus, StatusListener } from '../../src/types.js';

/** The in-memory tier with a connection state the test sets, as a client that is connecting, up or down. */
class SwitchedTier extends InMemoryRemoteTier {
  #status: RemoteStatus = 'ready';
  readonly #listeners = new Set<StatusListener>();
  override get status(): RemoteStatus {
    return this.#status;
  }
  override onStatus(listener: StatusListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
  switch(status: RemoteStatus): void {
    this.#status = status;
    for (const listener of [...this.#listeners]) listener(status);
  }
}

function setup() {
  const clock = new FakeClock();
  const tier = new SwitchedTier({ clock });
  const breaker = new CircuitBreaker({ threshold: 1, minDistinctKeys: 1, openMs: 1000 }, clock);
  const counters = new Counters();
  const accessor = new RemoteAccessor({
    tier,
    policy: breaker,
    timeoutMs: 1000,
    counters,
    report: () => {},
    onTransition: () => {},
  });
  return { clock, tier, breaker, accessor };
}

describe('the remote accessor', () => {
  it('counts a probe whose connection went down while it waited as a failure, so the breaker opens again', async () => {
    const { clock, tier, breaker, accessor } = setup();
    await accessor.run('get', 'a', () => Promise.reject(new Error('Command timed out')));
    expect(breaker.state).toBe('open');
    clock.advance(1000);
    expect(breaker.state).toBe('half-open');
    tier.switch('connecting');
    const probe = accessor.run('get', 'b', (t) => t.get('b'));
    tier.switch('down');
    const outcome = await probe;
    expect(outcome.ok).toBe(false);
    expect(breaker.state).toBe('open');
  });

  it('waits for a connection being set up and then sends the call', async () => {
    const { tier, accessor } = setup();
    await tier.set('k', 'v', 10_000);
    tier.switch('connecting');
    const call = accessor.run('get', 'k', (t) => t.get('k'));
    tier.switch('ready');
    expect(await call).toEqual({ ok: true, value: 'v' });
  });
});
