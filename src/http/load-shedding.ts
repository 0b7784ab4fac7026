import fp from 'fastify-plugin';
import underPressure from '@fastify/under-pressure';
import { Errors } from '../errors.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** True from the first shutdown signal: readiness turns 503 and new requests get SHUTTING_DOWN. */
    draining: boolean;
    /**
     * True while the event loop lagged past LOAD_SHED_EVENT_LOOP_DELAY_MS in
     * the last sample: this process cannot serve, whatever its dependencies do.
     */
    stalled(): boolean;
  }
  interface FastifyContextConfig {
    /** false exempts a route (health, metrics) from load shedding. */
    shedding?: boolean;
  }
}

export type LoadSheddingOptions = {
  maxEventLoopDelayMs: number;
  maxEventLoopUtilization: number;
  /** Requests in progress at once, past which new ones are refused. */
  maxInFlight: number;
};

/**
 * Sheds load with a fast 503 + Retry-After instead of letting every request's
 * latency grow. Two signals, because overload has two shapes:
 *
 * - CPU-bound: the event loop lags (sampled every 250 ms by under-pressure).
 * - Downstream-bound: the stores answer slower than requests arrive. The event
 *   loop is idle and under-pressure sees nothing, but requests pile up in
 *   flight and each waits behind all the others. A cap on requests in flight
 *   refuses the excess at once, so the ones accepted keep a bounded latency
 *   (about maxInFlight / throughput).
 *
 * And from the moment the server starts to close, a request still arriving
 * on an open connection gets 503 SHUTTING_DOWN (with Connection: close, set
 * by Fastify) while those in flight finish.
 *
 * Probes and metrics are never shed.
 */
export const loadSheddingPlugin = fp(
  async (app, options: LoadSheddingOptions) => {
    app.decorate('draining', false);
    // Fastify stops accepting connections right after its preClose hooks.
    app.addHook('preClose', async () => {
      app.draining = true;
    });

    // under-pressure samples the event loop (its lag and utilisation, every
    // 250 ms). Given no threshold it adds no hook of its own: the one hook
    // below decides from its last sample, which took 5 % off a cached read's
    // CPU (bench/README.md, "Third round").
    await app.register(underPressure, { sampleInterval: 250, exposeStatusRoute: false });
    const { maxEventLoopDelayMs: maxDelay, maxEventLoopUtilization: maxUtilization, maxInFlight } = options;
    const lagging = (delay: number) => maxDelay > 0 && delay > maxDelay;
    const pressed = () => {
      if (maxDelay === 0 && maxUtilization === 0) return false;
      const { eventLoopDelay, eventLoopUtilized } = app.memoryUsage();
      return lagging(eventLoopDelay) || (maxUtilization > 0 && eventLoopUtilized > maxUtilization);
    };
    // Only the delay, not the utilisation: a busy loop that still turns serves.
    app.decorate('stalled', () => lagging(app.memoryUsage().eventLoopDelay));

    let inFlight = 0;
    // One function for every response rather than a closure each: 'close' comes once per response.
    const release = () => {
      inFlight -= 1;
    };
    app.addHook('onRequest', (request, reply, done) => {
      if (request.routeOptions.config.shedding === false) return done();
      if (app.draining) return done(new Errors.ShuttingDown());
      if (inFlight >= maxInFlight || pressed()) return done(new Errors.Overloaded());
      inFlight += 1;
      // 'close' comes once per response: sent, failed, or its client gone.
      reply.raw.on('close', release);
      done();
    });
  },
  { name: 'load-shedding', fastify: '5.x' },
);
