import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { Registry, collectDefaultMetrics } from 'prom-client';
import type { Config } from '../config.ts';
import { conventionServerOptions, conventionsPlugin } from '../http/conventions.ts';
import { runUntilSignalled } from './shutdown.ts';
import { tracingLoggerOptions } from '../telemetry/tracing.ts';

export type OpsServer = { app: FastifyInstance; registry: Registry; log: FastifyBaseLogger };

/**
 * The relay and the consumer serve no API, only what their probes and
 * Prometheus need, on METRICS_PORT: liveness, readiness (the loop is running
 * and its dependencies answer; 503 from the first shutdown signal on) and
 * /metrics. `log` is the process's logger. Every answer follows the API's
 * conventions: problem+json errors, request ids, the security headers.
 */
export function buildOpsServer(config: Config, component: string, ready: () => boolean): OpsServer {
  const app = Fastify({
    ...conventionServerOptions,
    logger: { level: config.LOG_LEVEL, ...tracingLoggerOptions() },
    // Probes and scrapes every few seconds are not worth a log line each.
    logController: new LogController({ disableRequestLogging: true }),
  });
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  let draining = false;
  app.addHook('preClose', async () => {
    draining = true;
  });

  app.register(conventionsPlugin);
  // After the conventions, so that their hooks (the 405 router among them) see these routes.
  app.register(async (ops) => {
    ops.get('/health/live', async () => ({ status: 'ok' }));
    ops.get('/health/ready', async (_request, reply) => {
      if (draining) return reply.code(503).header('retry-after', '1').send({ status: 'shutting down' });
      if (!ready()) return reply.code(503).header('retry-after', '5').send({ status: 'not ready' });
      return { status: 'ready' };
    });
    ops.get('/metrics', async (_request, reply) => {
      reply.type(registry.contentType);
      return registry.metrics();
    });
  });
  return { app, registry, log: app.log.child({ component }) };
}

/** What the relay and the consumer have in common: something that starts, stops and knows if it is healthy. */
export type Runnable = { start(): void; stop(): Promise<void>; readonly healthy: boolean };

/**
 * Runs a background process: the ops server on METRICS_PORT, the loop, and
 * on SIGTERM/SIGINT the loop's stop (it finishes what it holds), then
 * `close` for its clients, then exit 0.
 */
export async function runBackgroundLoop(
  config: Config,
  component: string,
  build: (ops: OpsServer) => { loop: Runnable; close(): void; describe: Record<string, unknown> },
): Promise<void> {
  let loop: Runnable | undefined;
  const ops = buildOpsServer(config, component, () => loop?.healthy ?? false);
  const built = build(ops);
  loop = built.loop;
  ops.app.addHook('onClose', async () => {
    await built.loop.stop();
    built.close();
  });
  await ops.app.listen({ port: config.METRICS_PORT, host: config.HOST });
  built.loop.start();
  ops.log.info(built.describe, `${component} started`);
  runUntilSignalled(ops.app, config.SHUTDOWN_TIMEOUT_MS);
}
