import fp from 'fastify-plugin';
import underPressure from '@fastify/under-pressure';
import { Errors } from '../errors.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** false exempts a route (health, metrics) from load shedding. */
    shedding?: boolean;
  }
}

/**
 * Sheds load with a fast 503 + Retry-After once the event loop lags, instead
 * of letting every request's latency grow. Probes and metrics stay answered.
 */
export const loadSheddingPlugin = fp(
  async (app, options: { maxEventLoopDelayMs: number; maxEventLoopUtilization: number }) => {
    await app.register(underPressure, {
      maxEventLoopDelay: options.maxEventLoopDelayMs,
      maxEventLoopUtilization: options.maxEventLoopUtilization,
      sampleInterval: 250,
      exposeStatusRoute: false,
      pressureHandler: (request) => {
        if (request.routeOptions.config.shedding === false) return undefined;
        return Promise.reject(new Errors.Overloaded());
      },
    });
  },
  { name: 'load-shedding', fastify: '5.x' },
);
