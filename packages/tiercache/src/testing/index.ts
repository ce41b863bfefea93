/**
 * `tiercache/testing`: tools for your own tests of code that uses tiercache. Nothing here is loaded by the cache
 * itself, and nothing here touches the network.
 */
export { FakeClock } from './clock.js';
export { ChaosRemoteTier } from './chaos.js';
export type { ChaosCounts, ChaosError, ChaosOperation, ChaosOptions } from './chaos.js';
export { InMemoryRemoteTier } from './in-memory-remote.js';
export type { InMemoryRemoteTierOptions } from './in-memory-remote.js';
