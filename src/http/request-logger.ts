import type { FastifyBaseLogger } from 'fastify';
import type { Bindings, ChildLoggerOptions, Level, Logger } from 'pino';

/**
 * The per-request logger, created only when a request actually logs. Fastify
 * makes a pino child (with the request id) for every request; most requests
 * log nothing below the configured level, and serialising the bindings of a
 * child nobody writes to is measurable on the hottest route.
 */
class LazyRequestLogger {
  private real: FastifyBaseLogger | undefined;
  private readonly parent: Logger;
  private readonly bindings: Bindings;
  private readonly options: ChildLoggerOptions;

  constructor(parent: Logger, bindings: Bindings, options: ChildLoggerOptions) {
    this.parent = parent;
    this.bindings = bindings;
    this.options = options;
  }

  private logger(): FastifyBaseLogger {
    return (this.real ??= this.parent.child(this.bindings, this.options) as unknown as FastifyBaseLogger);
  }

  private write(level: Level, args: unknown[]) {
    if (!this.parent.isLevelEnabled(level)) return;
    (this.logger()[level] as (...values: unknown[]) => void)(...args);
  }

  get level() {
    return this.real?.level ?? this.parent.level;
  }
  set level(level: string) {
    this.logger().level = level;
  }
  isLevelEnabled(level: string) {
    return this.real ? (this.real as unknown as Logger).isLevelEnabled(level) : this.parent.isLevelEnabled(level);
  }
  fatal(...args: unknown[]) {
    this.write('fatal', args);
  }
  error(...args: unknown[]) {
    this.write('error', args);
  }
  warn(...args: unknown[]) {
    this.write('warn', args);
  }
  info(...args: unknown[]) {
    this.write('info', args);
  }
  debug(...args: unknown[]) {
    this.write('debug', args);
  }
  trace(...args: unknown[]) {
    this.write('trace', args);
  }
  silent() {}
  child(bindings: Bindings, options?: ChildLoggerOptions) {
    return this.logger().child(bindings, options);
  }
}

export function lazyRequestLogger(parent: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions): FastifyBaseLogger {
  return new LazyRequestLogger(parent as unknown as Logger, bindings, options) as unknown as FastifyBaseLogger;
}
