import { cachedFor } from '../cached.ts';

export type DependencyState = 'ok' | 'down';
export type HealthReport = {
  status: 'healthy' | 'degraded' | 'unhealthy';
  storage: DependencyState;
  cache: DependencyState;
  events: DependencyState;
};

export type HealthChecks = {
  storage: (signal: AbortSignal) => Promise<unknown>;
  cache: (signal: AbortSignal) => Promise<unknown>;
  events: (signal: AbortSignal) => Promise<unknown>;
};

/**
 * Probes each dependency with its own deadline, at most once per `cacheMs`,
 * so that probes and dashboards cannot turn into load on the stores.
 */
export class HealthChecker {
  private readonly checks: HealthChecks;
  private readonly timeoutMs: number;
  /** The last report, reused for `cacheMs`. */
  readonly report: () => Promise<HealthReport>;

  constructor(checks: HealthChecks, options: { timeoutMs?: number; cacheMs?: number } = {}) {
    this.checks = checks;
    this.timeoutMs = options.timeoutMs ?? 1000;
    this.report = cachedFor(options.cacheMs ?? 1000, () => this.probe());
  }

  private async probe(): Promise<HealthReport> {
    const [storage, cache, events] = await Promise.all(
      [this.checks.storage, this.checks.cache, this.checks.events].map((check) => this.run(check)),
    );
    const status = storage === 'down' ? 'unhealthy' : cache === 'down' || events === 'down' ? 'degraded' : 'healthy';
    return { status, storage: storage!, cache: cache!, events: events! };
  }

  private async run(check: (signal: AbortSignal) => Promise<unknown>): Promise<DependencyState> {
    const signal = AbortSignal.timeout(this.timeoutMs);
    try {
      await Promise.race([
        check(signal),
        new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true })),
      ]);
      return 'ok';
    } catch {
      return 'down';
    }
  }
}
