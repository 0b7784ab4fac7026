import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { problems } from '../http/schemas.ts';
import { parseIdempotencyKey } from '../idempotency/idempotency-key.ts';
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
      schema: {
        summary: 'Accept an order (the same payload within the dedup window is the same order)',
        tags: ['orders'],
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
        summary: 'Read an order and the state of its order.accepted event',
        tags: ['orders'],
        params: OrderParams,
        response: { 200: OrderView, ...problems(401, 404, 429, 503) },
      },
    },
    async (request) => intake.read(request.tenant, request.params.orderId),
  );
};
