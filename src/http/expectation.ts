import type { IncomingMessage, ServerResponse } from 'node:http';
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { rawProblem } from './problem.ts';
import { requestIdOf } from './request-id.ts';

/**
 * An Expect other than 100-continue, which Node answers by itself with a bare
 * 417 before Fastify sees the request: the same 417, as a problem with the
 * headers of every other answer.
 */
function expectationFailed(this: FastifyInstance, request: IncomingMessage, response: ServerResponse) {
  const { status, headers, body } = rawProblem('EXPECTATION_FAILED', requestIdOf(request));
  this.log.info({ code: 'EXPECTATION_FAILED', requestId: headers['x-request-id'] }, 'request refused');
  response.writeHead(status, headers).end(body);
}

export const expectationPlugin = fp(
  async (app) => {
    app.server.on('checkExpectation', expectationFailed.bind(app));
  },
  { name: 'expectation', fastify: '5.x' },
);
