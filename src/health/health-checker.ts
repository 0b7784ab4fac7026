import { cachedFor } from '../cached.ts';

export type Dependency = 'storage' | 'cache' | 'events';
export type DependencyState = 'ok' | 'down';
export type HealthReport = {
  status: 'healthy' | 'degraded' | 'unhealthy';
  storage: DependencyState;
  cache: DependencyState;
  events: DependencyState;
};

export type Check = (signal: AbortSignal) => Promise<unknown>;

/**
 * Probes each dependency with its own deadline, at most once per `cacheMs`,
 * so that probes and dashboards cannot turn into load on the stores. The
 * domain that owns a dependency adds its check (`add`); a dependency with
 * several checks is up while all answer.
 */
export class HealthChecker {
  private readonly checks = new Map<Dependency, Check[]>();
  private readonly timeoutMs: number;
  /** The last report, reused for `cacheMs`. */
  readonly report: () => Promise<HealthReport>;

  constructor(options: { timeoutMs?: number; cacheMs?: number; now?: () => number } = {}) {
    this.timeoutMs = options.timeoutMs ?? 1000;
    this.report = cachedFor(options.cacheMs ?? 1000, () => this.probe(), options.now);
  }

  add(dependency: Dependency, check: Check): void {
    this.checks.set(dependency, [...(this.checks.get(dependency) ?? []), check]);
  }

  private async probe(): Promise<HealthReport> {
    const [storage, cache, events] = await Promise.all((['storage', 'cache', 'events'] as const).map((dependency) => this.run(dependency)));
    const status = storage === 'down' ? 'unhealthy' : cache === 'down' || events === 'down' ? 'degraded' : 'healthy';
    return { status, storage: storage!, cache: cache!, events: events! };
  }

  private async run(dependency: Dependency): Promise<DependencyState> {
    const signal = AbortSignal.timeout(this.timeoutMs);
    try {
      await Promise.race([
        Promise.all((this.checks.get(dependency) ?? []).map((check) => check(signal))),
        new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true })),
      ]);
      return 'ok';
    } catch {
      return 'down';
    }
  }
}
