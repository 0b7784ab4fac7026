import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { context } from '@opentelemetry/api';
import { createAwsClients, type AwsClients } from '../adapters/aws.ts';
import { ConfigError, loadConfig, type Config } from '../config.ts';
import { createLogger } from '../telemetry/logger.ts';
import { startTracing, tracerOf, tracingOn, withSpan, type Tracing } from '../telemetry/tracing.ts';
import { buildOpsServer } from './ops-server.ts';
import { runUntilSignalled } from './shutdown.ts';
import { applyStreamingV8Flags } from './v8-flags.ts';

/**
 * The one way a process of the service starts: V8 flags, configuration,
 * tracing, logger, clients, its server, graceful shutdown. Each entry point
 * in this folder is a few lines over it.
 */

/** What a process is built from; a test passes its own to runProcess. */
export type Factories = {
  config(): Config;
  tracing(config: Config, serviceName: string): Tracing | undefined;
  logger(config: Config, process: string): FastifyBaseLogger;
  aws(config: Config): AwsClients;
  /** Arms graceful shutdown of the started server (SIGTERM, SIGINT, a deadline). */
  untilSignalled(server: FastifyInstance, timeoutMs: number): void;
  /** Ends a process whose configuration is bad (EX_CONFIG). */
  exit(code: number): never;
  v8Flags(): void;
};

export const defaultFactories: Factories = {
  config: () => loadConfig(),
  tracing: startTracing,
  logger: createLogger,
  aws: (config) => createAwsClients(config),
  untilSignalled: runUntilSignalled,
  exit: (code) => process.exit(code),
  v8Flags: applyStreamingV8Flags,
};

/** What a process's own code gets. The clients it asks for close after its server. */
export type Runtime = {
  readonly name: string;
  readonly config: Config;
  readonly log: FastifyBaseLogger;
  /** AWS clients of `config` (this region's unless given another's). */
  aws(config?: Config): AwsClients;
  /** Runs once the server has stopped and the process's own `stop` is done, before the tracing flush. */
  onClose(close: () => void): void;
};

/** A long-running process's server, started by the runtime; `stop` runs once it has stopped accepting, before clients close. */
export type Served = {
  server: FastifyInstance;
  listen: { port: number; backlog?: number };
  stop?(): Promise<void>;
  /** Runs once the server listens (a background loop starts). */
  start?(): void;
  /** Logged with the start line. */
  describe?: Record<string, unknown>;
};

export type ProcessDefinition =
  | { name: string; serve(runtime: Runtime): Promise<Served> }
  /** A one-shot task: done when `run` resolves. */
  | { name: string; run(runtime: Runtime): Promise<void> };

/**
 * Starts a process. Building it (a one-shot task: all of it) is one span
 * when tracing is on, and one log line `<name> started` says what runs and
 * whether it traces. A bad configuration ends it with its message and
 * EX_CONFIG (78), not a stack trace.
 */
export async function runProcess(definition: ProcessDefinition, swapped: Partial<Factories> = {}): Promise<void> {
  const make: Factories = { ...defaultFactories, ...swapped };
  make.v8Flags();
  try {
    await start(definition, make);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    make.exit(78);
  }
}

async function start(definition: ProcessDefinition, make: Factories): Promise<void> {
  const config = make.config();
  const tracing = make.tracing(config, `docsvc-${definition.name}`);
  const log = make.logger(config, definition.name);
  const closers: (() => void)[] = [];
  const runtime: Runtime = {
    name: definition.name,
    config,
    log,
    aws: (of = config) => {
      const clients = make.aws(of);
      closers.push(() => clients.destroy());
      return clients;
    },
    onClose: (close) => void closers.push(close),
  };
  const close = async () => {
    for (const closer of closers.reverse()) closer();
    await tracing?.shutdown();
  };
  const started = { process: definition.name, tracing: tracing?.serviceName ?? false };

  if ('run' in definition) {
    log.info(started, `${definition.name} started`);
    try {
      await traced(`${definition.name} run`, () => definition.run(runtime));
    } finally {
      await close();
    }
    return;
  }
  // Not active while it runs: connections opened now would carry it into every later operation.
  const span = tracingOn() ? tracerOf().startSpan(`${definition.name} start`) : undefined;
  const served = await definition.serve(runtime).finally(() => span?.end());
  served.server.addHook('onClose', async () => {
    await served.stop?.();
    await close();
  });
  await served.server.listen({ ...served.listen, host: config.HOST });
  served.start?.();
  log.info({ ...started, ...served.describe }, `${definition.name} started`);
  make.untilSignalled(served.server, config.SHUTDOWN_TIMEOUT_MS);
}

/** Runs a one-shot task in a span of its own, so that its calls are spans of one trace. */
function traced<T>(name: string, work: () => Promise<T>): Promise<T> {
  if (!tracingOn()) return work();
  return withSpan(tracerOf().startSpan(name), context.active(), work);
}

/** What the background processes run: something that starts, stops (finishing what it holds) and knows if it is healthy. */
export type Runnable = { start(): void; stop(): Promise<void>; readonly healthy: boolean };

/** Several loops run and stopped as one; healthy while all are. */
export function together(loops: Runnable[]): Runnable {
  return {
    start: () => loops.forEach((loop) => loop.start()),
    stop: async () => void (await Promise.all(loops.map((loop) => loop.stop()))),
    get healthy() {
      return loops.every((loop) => loop.healthy);
    },
  };
}

/**
 * A background process: its loop, and the ops server (probes, /metrics) on
 * METRICS_PORT; on SIGTERM/SIGINT the loop stops, finishing what it holds,
 * then its clients close.
 */
export function background(
  build: (runtime: Runtime, registry: Registry) => Promise<{ loop: Runnable; describe: Record<string, unknown> }>,
): (runtime: Runtime) => Promise<Served> {
  return async (runtime) => {
    let loop: Runnable | undefined;
    const ops = buildOpsServer(runtime.log, () => loop?.healthy ?? false);
    const built = await build(runtime, ops.registry);
    loop = built.loop;
    return {
      server: ops.app,
      listen: { port: runtime.config.METRICS_PORT },
      start: () => built.loop.start(),
      stop: () => built.loop.stop(),
      describe: built.describe,
    };
  };
}
