import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import type { Redis } from 'ioredis';
import { tracerOf, tracingOn } from './tracing.ts';

/**
 * A CLIENT span per Redis command sent inside a traced operation (cache
 * reads and fills, tombstones, rate-limit counters); heartbeats and the
 * invalidation subscriber's traffic stay untraced. The connection's own
 * sendCommand is wrapped, once, when tracing is on: ioredis has no hook.
 */
export function traceRedisCommands(redis: Redis): void {
  if (!tracingOn()) return;
  const send = redis.sendCommand.bind(redis);
  const { host, port } = redis.options;
  redis.sendCommand = (command, stream) => {
    const parent = context.active();
    if (!trace.getSpan(parent)) return send(command, stream);
    const operation = command.name.toUpperCase();
    const span = tracerOf().startSpan(
      operation,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'db.system.name': 'redis',
          'db.operation.name': operation,
          ...(host ? { 'server.address': host } : {}),
          ...(port ? { 'server.port': port } : {}),
        },
      },
      parent,
    );
    command.promise.then(
      () => span.end(),
      (error: unknown) => {
        span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
        span.end();
      },
    );
    return send(command, stream);
  };
}
