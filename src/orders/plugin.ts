import { GetTopicAttributesCommand } from '@aws-sdk/client-sns';
import fp from 'fastify-plugin';
import type { Config } from '../config.ts';
import { registerOutboxGauges } from '../outbox/outbox-metrics.ts';
import { OrderEventPublisher } from './order-events.ts';
import { OrderIntake, type OrderIntakeOptions } from './order-intake.ts';
import { OrderStore } from './order-store.ts';
import { orderRoutes } from './routes.ts';

export type OrdersOptions = {
  config: Config;
  /** Test seams of the intake (an injected crash between write and publish). */
  intake?: Pick<OrderIntakeOptions, 'afterWrite'>;
  now?: () => number;
};

/** The orders domain: intake, store with its outbox, the backlog gauges, routes. */
export const ordersPlugin = fp(
  async (app, { config, intake, now }: OrdersOptions) => {
    // Orders live in the primary region, wherever this runs.
    const { regions, clients } = app.regional;
    const aws = clients.of(regions.primary);
    const requests = app.idempotentRequests;
    const store = new OrderStore({ dynamo: aws.dynamo, table: config.ORDERS_TABLE });
    const orders = new OrderIntake({
      store,
      publisher: new OrderEventPublisher({ sns: aws.sns, topicArn: config.ORDER_EVENTS_TOPIC_ARN }),
      log: app.log,
      metrics: app.metrics,
      dedupWindowSeconds: config.ORDER_DEDUP_WINDOW_SECONDS,
      publishTimeoutMs: config.ORDER_PUBLISH_TIMEOUT_MS,
      requests,
      now,
      ...intake,
    });
    registerOutboxGauges(app.metrics.registry, 'orders', store.outbox, { now });
    // Orders still commit without SNS (the outbox holds their events): degraded, not down.
    app.health.add('events', (abortSignal) => aws.sns.send(new GetTopicAttributesCommand({ TopicArn: config.ORDER_EVENTS_TOPIC_ARN }), { abortSignal }));
    await app.register(orderRoutes, { intake: orders });
  },
  { name: 'orders', fastify: '5.x', dependencies: ['regions', 'idempotency', 'metrics', 'health'] },
);
