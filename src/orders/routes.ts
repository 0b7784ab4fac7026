import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { refuseUnlessJson } from '../http/json-body.ts';
import { problems } from '../http/schemas.ts';
import { IdempotencyKeyHeaders, parseIdempotencyKey } from '../idempotency/idempotency-key.ts';
import type { OrderIntake } from './order-intake.ts';
import { MAX_ORDER_BODY_BYTES, NewOrder, Order, OrderParams, OrderView } from './schemas.ts';

export const orderRoutes: FastifyPluginAsyncTypebox<{ intake: OrderIntake }> = async (app, { intake }) => {
  // JSON only. Fastify also parses text/plain by default, which would hand
  // the schema a string (a 400) where the contract wants a 415.
  app.removeContentTypeParser('text/plain');

  app.post(
    '/orders',
    {
      bodyLimit: MAX_ORDER_BODY_BYTES,
      onRequest: refuseUnlessJson,
      config: { openapi: { responseHeaders: { 201: ['Location', 'Idempotent-Replayed'] } } },
      schema: {
        operationId: 'placeOrder',
        summary: 'Accept an order (the same payload within the dedup window is the same order)',
        description:
          'Writes the order with its order.accepted event pending, then tries once to publish the event; the relay publishes ' +
          'it otherwise, so a 201 order always reaches the topic. The same payload from the same tenant within ' +
          'ORDER_DEDUP_WINDOW_SECONDS answers the first order again with Idempotent-Replayed; so does the same ' +
          'Idempotency-Key with the same payload for 24 h (another payload with it: 422; the first still running: 409).',
        tags: ['orders'],
        headers: IdempotencyKeyHeaders,
        body: NewOrder,
        response: { 201: Order, ...problems(400, 401, 409, 413, 415, 422, 429, 503) },
      },
    },
    async (request, reply) => {
      const idempotencyKey = parseIdempotencyKey(request.headers['idempotency-key']);
      const { order, replayed } = await intake.acceptOnce(request.tenant, request.body, idempotencyKey);
      reply.code(201).header('location', `/orders/${order.orderId}`);
      if (replayed) reply.header('idempotent-replayed', 'true');
      return order;
    },
  );

  app.get(
    '/orders/:orderId',
    {
      schema: {
        operationId: 'getOrder',
        summary: 'Read an order and the state of its order.accepted event',
        description:
          "404 for an id that does not exist, another tenant's order, and anything not shaped like an order id: ids are opaque.",
        tags: ['orders'],
        params: OrderParams,
        response: { 200: OrderView, ...problems(401, 404, 429, 503) },
      },
    },
    async (request) => intake.read(request.tenant, request.params.orderId),
  );
};
