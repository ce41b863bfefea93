/**
 * Redis Cluster given as a node list: its validation and the ioredis `ClusterOptions` tiercache builds for a Cluster it
 * owns (fail-fast like the standalone connection, see failFastOptions).
 */
import type { ClusterOptions } from 'ioredis';
import { ConfigurationError, describeValue } from '../errors.js';
import { failFastOptions, reconnectDelay } from './redis-connection.js';

export interface ClusterNodeAddress {
  readonly host: string;
  readonly port: number;
}

/**
 * `redis: { cluster: … }`: a Redis Cluster that tiercache connects to (and closes on `close()`). A few reachable nodes
 * are enough; the client discovers the rest.
 */
export interface RedisClusterOptions {
  /** Seed nodes: `[{ host, port }, …]` or `'host:port,host:port'`. */
  readonly cluster: readonly ClusterNodeAddress[] | string;
  /**
   * ioredis Cluster options (`redisOptions` for the per-node connections: password, TLS, …). tiercache overrides what
   * makes a call fail fast: command timeout, no offline queue, no retry of a command in flight.
   */
  readonly options?: ClusterOptions;
}

const NODE = /^\[?([^\s[\]]+?)\]?:(\d{1,5})$/;

function validPort(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 65_535) {
    throw new ConfigurationError(`Expected \`${name}\` to be a port from 1 to 65535, got ${describeValue(value)}`);
  }
  return value;
}

/** Parses `'host:port,host:port'` (IPv6 as `[::1]:7000`); names the first entry that is not `host:port`. */
export function parseClusterNodes(name: string, text: string): ClusterNodeAddress[] {
  const entries = text
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  if (entries.length === 0) {
    throw new ConfigurationError(`Expected \`${name}\` to list cluster nodes as host:port,host:port, got \`${text}\``);
  }
  return entries.map((entry, i) => {
    const match = NODE.exec(entry);
    if (match === null) {
      throw new ConfigurationError(`Expected \`${name}\` entry ${i + 1} to be host:port, got \`${entry}\``);
    }
    return { host: match[1] as string, port: validPort(`${name}[${i}].port`, Number(match[2])) };
  });
}

/**
 * Whether a `redis` option is the node-list form: a plain object with a `cluster` field (an ioredis client has a
 * `cluster` method, the CLUSTER command, so only plain objects count).
 */
export function isClusterSpec(value: unknown): value is RedisClusterOptions {
  if (typeof value !== 'object' || value === null || !('cluster' in value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Checks `redis: { cluster, options }` and returns it with the node list parsed. */
export function validateClusterSpec(value: RedisClusterOptions): RedisClusterOptions & {
  readonly cluster: readonly ClusterNodeAddress[];
} {
  const unknown = Object.keys(value).filter((key) => key !== 'cluster' && key !== 'options');
  if (unknown.length > 0) {
    throw new ConfigurationError(`Unknown option \`redis.${unknown[0]}\`; a cluster takes \`cluster\` and \`options\``);
  }
  const raw: unknown = value.cluster;
  let nodes: ClusterNodeAddress[];
  if (typeof raw === 'string') nodes = parseClusterNodes('redis.cluster', raw);
  else if (Array.isArray(raw) && raw.length > 0) {
    nodes = raw.map((node: unknown, i) => {
      const where = `redis.cluster[${i}]`;
      if (typeof node !== 'object' || node === null) {
        throw new ConfigurationError(`Expected \`${where}\` to be { host, port }, got ${describeValue(node)}`);
      }
      const { host, port } = node as Record<string, unknown>;
      if (typeof host !== 'string' || host.trim() === '') {
        throw new ConfigurationError(`Expected \`${where}.host\` to be a non-empty string, got ${describeValue(host)}`);
      }
      return { host, port: validPort(`${where}.port`, port) };
    });
  } else {
    throw new ConfigurationError(
      `Expected \`redis.cluster\` to be a non-empty list of { host, port } or a 'host:port,host:port' string, got ${describeValue(raw)}`,
    );
  }
  const options: unknown = value.options;
  if (options !== undefined && (typeof options !== 'object' || options === null || Array.isArray(options))) {
    throw new ConfigurationError(
      `Expected \`redis.options\` to be ioredis ClusterOptions, got ${describeValue(options)}`,
    );
  }
  return options === undefined ? { cluster: nodes } : { cluster: nodes, options: options as ClusterOptions };
}

/**
 * How the client follows the cluster through slot moves and failovers: give up where a retry cannot finish within the
 * cache's timeout, and let the breaker and the fail-safe cover the gap; a user's own values win. Measured on a 6-node
 * local cluster (node-timeout 2000), 16 loops of GET, a master SIGKILLed: with ioredis' defaults (a closed connection
 * or CLUSTERDOWN retried every 100 ms, 16 redirections) a command to the dead master went on retrying, refreshing the
 * slots, for up to ~1.4 s (p99 ~920 ms) after its caller had given up at 100 ms, and ~350 ended in "Too many Cluster
 * redirections"; with these a doomed command settles within ~110 ms (p99 ~40 ms), after at most 4 tries. About as
 * many still end in that message: each is now 4 quick tries, not 16 slow ones. See docs/scaling.md.
 */
export function redirectionOptions(
  timeoutMs: number,
): Pick<
  ClusterOptions,
  | 'maxRedirections'
  | 'retryDelayOnMoved'
  | 'retryDelayOnFailover'
  | 'retryDelayOnClusterDown'
  | 'retryDelayOnTryAgain'
  | 'slotsRefreshTimeout'
> {
  return {
    // CLUSTERDOWN lasts until a replica is promoted (seconds): no retry. A closed connection is retried, a few times
    // within the timeout: ioredis also closes connections of its own when it refreshes the slots, and a command caught
    // on one would otherwise fail though the cluster is fine (the topology suite did, right after start).
    retryDelayOnFailover: Math.max(1, Math.round(timeoutMs / 4)),
    retryDelayOnClusterDown: 0,
    // TRYAGAIN (a multi-key command during a slot migration) clears in milliseconds: a retry fits in the timeout.
    retryDelayOnTryAgain: Math.max(1, Math.round(timeoutMs / 4)),
    // MOVED is followed at once (and refreshes the slots); a chain longer than a migration's MOVED + ASK is a loop.
    retryDelayOnMoved: 0,
    maxRedirections: 4,
    // A refresh is a CLUSTER SLOTS to one node; bounded like a connect, so a blackholed node does not stall it.
    slotsRefreshTimeout: Math.max(1000, timeoutMs * 10),
  };
}

/** The ClusterOptions of a Cluster tiercache builds itself. */
export function clusterFailFastOptions(
  user: ClusterOptions = {},
  timeoutMs: number,
): ClusterOptions & { redisOptions: NonNullable<ClusterOptions['redisOptions']> & { replyMapping: 'legacy' } } {
  const { redisOptions, ...rest } = user;
  // What ioredis decides per node itself (the pool sets them) is left out rather than silently ignored.
  const {
    retryStrategy: _retryStrategy,
    enableOfflineQueue: _offlineQueue,
    lazyConnect: _lazyConnect,
    ...node
  } = failFastOptions(redisOptions ?? {}, timeoutMs);
  return {
    clusterRetryStrategy: (attempt) => reconnectDelay(attempt),
    ...redirectionOptions(timeoutMs),
    ...rest,
    // Per-node connections: each command is bounded; ioredis keeps their own offline queue on (they connect lazily)
    // and they do not reconnect (the cluster refreshes its slots and opens new ones instead).
    // The tier parses replies in the classic (RESP2-style) shapes, whatever the user's client prefers.
    redisOptions: { ...node, replyMapping: 'legacy' },
    enableOfflineQueue: false,
    lazyConnect: false,
  };
}
