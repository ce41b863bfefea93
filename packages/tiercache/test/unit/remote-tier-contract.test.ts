import { ChaosRemoteTier, FakeClock, InMemoryRemoteTier } from '../../src/testing/index.js';
import { describeRemoteTier } from '../contract/remote-tier.js';

describeRemoteTier('InMemoryRemoteTier', async () => {
  const clock = new FakeClock();
  const tier = new InMemoryRemoteTier({ clock });
  return {
    tier,
    advance: async (ms) => void clock.advance(ms),
    now: () => clock.now(),
    close: () => tier.close(),
  };
});

describeRemoteTier('ChaosRemoteTier (healthy) around InMemoryRemoteTier', async () => {
  const clock = new FakeClock();
  const tier = new ChaosRemoteTier(new InMemoryRemoteTier({ clock }));
  return {
    tier,
    advance: async (ms) => void clock.advance(ms),
    now: () => clock.now(),
    close: () => tier.close(),
  };
});
