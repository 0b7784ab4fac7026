import { GetTopicAttributesCommand } from '@aws-sdk/client-sns';
import fp from 'fastify-plugin';
import type { AwsClients } from '../adapters/aws.ts';
import type { Config } from '../config.ts';
import type { IdempotentRequests } from '../idempotency/idempotent-requests.ts';
import { registerOutboxGauges } from '../outbox/outbox-metrics.ts';
import { OrderEventPublisher } from './order-events.ts';
import { OrderIntake, type OrderIntakeOptions } from './order-intake.ts';
import { OrderStore } from './order-store.ts';
import { orderRoutes } from './routes.ts';

export type OrdersOptions = {
  config: Config;
  requests: IdempotentRequests;
  /** Clients of the region orders live in (the primary), when it is not this one's. */
  aws?: AwsClients;
  /** Test seams of the intake (an injected crash between write and publish). */
  intake?: Pick<OrderIntakeOptions, 'afterWrite'>;
  now?: () => number;
};

/** The orders domain: intake, store with its outbox, the backlog gauges, routes. */
export const ordersPlugin = fp(
  async (app, { config, requests, intake, now, aws = app.aws }: OrdersOptions) => {
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
  { name: 'orders', fastify: '5.x', dependencies: ['aws', 'metrics', 'health'] },
);
