import { Redis } from 'ioredis';
import type { FastifyBaseLogger } from 'fastify';
import { Gauge, type Registry } from 'prom-client';
import type { Config } from '../config.ts';
import { traceRedisCommands } from '../telemetry/redis-spans.ts';
import { readRedisPassword } from './secrets.ts';

export type RedisConnections = { open(connectionName: string): Redis; close(): void };

/**
 * The Redis connections of one process, logging to its logger: the AUTH
 * token is read once, now, with the process's own role (a secret that cannot
 * be read stops the start), and each connection connects in the background:
 * the process starts without Redis and uses it once it answers.
 */
export async function redisConnections(config: Config, log: FastifyBaseLogger): Promise<RedisConnections> {
  const password = await readRedisPassword(config);
  const opened: Redis[] = [];
  return {
    open(connectionName) {
      const redis = createRedis(config, connectionName, log, password);
      redis.connect().catch(() => {});
      opened.push(redis);
      return redis;
    },
    close: () => opened.forEach((redis) => redis.disconnect()),
  };
}

/**
 * Redis is a cache here, never a source of truth: commands fail fast instead
 * of queueing while disconnected, each has a timeout, and reconnects back off
 * up to two seconds forever.
 */
export function createRedis(config: Config, connectionName: string, log?: FastifyBaseLogger, password?: string): Redis {
  const redis = new Redis(config.REDIS_URL, {
    connectionName,
    // From Secrets Manager (REDIS_AUTH_SECRET_ID) when set; else whatever REDIS_URL says.
    ...(password === undefined ? {} : { password }),
    // Subscriptions are renewed by their owner on 'ready', which also resets what they guard.
    autoResubscribe: false,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: config.REDIS_COMMAND_TIMEOUT_MS,
    connectTimeout: config.REDIS_CONNECT_TIMEOUT_MS,
    // A dropped connection whose peer never answers our FIN (a partition) is destroyed after this.
    disconnectTimeout: config.REDIS_COMMAND_TIMEOUT_MS,
    retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 2000),
  });
  // One line per transition, not one per reconnect attempt.
  let up = false;
  redis.on('ready', () => {
    up = true;
    log?.info({ connectionName }, 'redis connected');
  });
  redis.on('error', (err: Error) => {
    if (up) log?.warn({ connectionName, err: err.message }, 'redis connection lost; serving without cache');
    up = false;
  });
  heartbeat(redis, config.REDIS_HEARTBEAT_MS, () => log?.warn({ connectionName }, 'redis connection hung; reconnecting'));
  traceRedisCommands(redis);
  return redis;
}

/**
 * A hung connection (a partition, a frozen server) raises no error: the socket
 * stays open and commands just time out. Two missed pings in a row drop it,
 * so that it counts as down (skipped at no cost, see RedisCircuit) and a
 * subscriber's 'close' tells the in-process cache that invalidations may be
 * missed; ioredis then reconnects with its retry strategy. One miss is
 * tolerated: an event-loop stall alone can time a ping out.
 */
function heartbeat(redis: Redis, intervalMs: number, onHung: () => void): void {
  let missed = 0;
  let dropping = false;
  redis.on('ready', () => {
    missed = 0;
    dropping = false;
  });
  const timer = setInterval(() => {
    if (redis.status !== 'ready' || dropping) return;
    redis.ping().then(
      () => {
        missed = 0;
      },
      () => {
        missed += 1;
        if (missed < 2 || dropping || redis.status !== 'ready') return;
        dropping = true;
        onHung();
        redis.disconnect(true);
      },
    );
  }, intervalMs);
  timer.unref();
  redis.once('end', () => clearInterval(timer));
}

export type CircuitResult<T> = { ok: true; value: T } | { ok: false };

export type RedisCircuitOptions = {
  threshold?: number;
  openMs?: number;
  /** Where transitions are logged: one line when the circuit opens, one when it closes. */
  log?: Pick<FastifyBaseLogger, 'info' | 'warn'>;
};

export const CIRCUIT_GAUGE = 'redis_circuit_open';

/**
 * A circuit around Redis, so that a dead or blackholed cache costs nothing per
 * request: after `threshold` consecutive failures calls are skipped for
 * `openMs`, then one call at a time probes it again. A connection that is not
 * ready counts as open too: nothing is sent on it.
 */
export class RedisCircuit {
  private failures = 0;
  private openUntil = 0;
  private probing = false;
  /** The state last logged; starts closed so that a normal start logs nothing. */
  private reported = false;
  private readonly redis: Redis;
  private readonly threshold: number;
  private readonly openMs: number;
  private readonly log: RedisCircuitOptions['log'];

  constructor(redis: Redis, options: RedisCircuitOptions = {}) {
    this.redis = redis;
    this.threshold = options.threshold ?? 3;
    this.openMs = options.openMs ?? 1000;
    this.log = options.log;
    // Connection state changes open or close it without any call being made. Looked at once
    // ioredis has settled what follows a 'close': 'reconnecting', or 'end' when closed on purpose.
    for (const event of ['ready', 'close']) redis.on(event, () => queueMicrotask(() => this.report()));
  }

  /** Healthy enough to try: connected and the circuit closed (or due a probe). */
  get available(): boolean {
    if (this.redis.status !== 'ready') return false;
    if (this.failures < this.threshold) return true;
    return Date.now() >= this.openUntil && !this.probing;
  }

  get isOpen(): boolean {
    return this.redis.status !== 'ready' || this.failures >= this.threshold;
  }

  /** `force` tries even with the circuit open: for writes whose loss matters more than their latency. */
  async call<T>(command: (redis: Redis) => Promise<T>, force = false): Promise<CircuitResult<T>> {
    if (force ? this.redis.status !== 'ready' : !this.available) return { ok: false };
    const probe = this.failures >= this.threshold;
    if (probe) this.probing = true;
    try {
      const value = await command(this.redis);
      if (this.failures > 0) {
        this.failures = 0;
        this.report();
      }
      return { ok: true, value };
    } catch {
      this.failures += 1;
      if (this.failures >= this.threshold) {
        this.openUntil = Date.now() + this.openMs;
        this.report();
      }
      return { ok: false };
    } finally {
      if (probe) this.probing = false;
    }
  }

  private report(): void {
    const open = this.isOpen;
    // 'end' is a connection closed on purpose (shutdown): the retry strategy never gives up.
    if (open === this.reported || (open && this.redis.status === 'end')) return;
    this.reported = open;
    if (!open) return this.log?.info('redis circuit closed: using Redis again');
    const reason = this.redis.status === 'ready' ? `${this.failures} failures in a row` : `connection ${this.redis.status}`;
    this.log?.warn({ reason, retryInMs: this.openMs }, 'redis circuit open: skipping Redis');
  }
}

/** The circuit's state for Prometheus: 1 while Redis is skipped, 0 while it is used. */
export function registerCircuitGauge(registry: Registry, circuit: RedisCircuit): void {
  new Gauge({
    name: CIRCUIT_GAUGE,
    help: 'Whether the Redis circuit is open (1: Redis is skipped, reads go to the stores) or closed (0)',
    registers: [registry],
    collect() {
      this.set(circuit.isOpen ? 1 : 0);
    },
  });
}
