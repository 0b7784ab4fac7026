import pino, { type LoggerOptions } from 'pino';
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../config.ts';
import { tracingLoggerOptions } from './tracing.ts';

/**
 * The options of every process's logger: its level, the API key never
 * written, and trace ids on each line while a span is active (once tracing
 * has started, so build loggers after startTracing).
 */
export function loggerOptions(config: Config): LoggerOptions {
  return { level: config.LOG_LEVEL, redact: ['req.headers.authorization'], ...tracingLoggerOptions() };
}

/** A process's logger: JSON lines on stdout, each naming the process. */
export function createLogger(config: Config, process: string): FastifyBaseLogger {
  return pino(loggerOptions(config)).child({ process });
}
