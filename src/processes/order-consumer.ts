import { ordersConfig } from '../adapters/regions.ts';
import { AppliedOrderStore } from '../consumer/applied-orders.ts';
import { registerDeadLetterGauge } from '../consumer/dead-letter-gauge.ts';
import { OrderEventConsumer } from '../consumer/order-event-consumer.ts';
import { OrderStore } from '../orders/order-store.ts';
import { background, runProcess } from './runtime.ts';

// The downstream order-event consumer: long-polls the queue subscribed to
// the order-events topic and applies each event id at most once. Serves
// /health/live, /health/ready and /metrics on METRICS_PORT; on SIGTERM/SIGINT
// it ends its long poll, finishes the messages in hand, closes its clients
// and exits 0.
await runProcess({
  name: 'consumer',
  serve: background(async ({ config, log, aws }, registry) => {
    // Orders live in the primary region, wherever this process runs.
    const { sqs, dynamo } = aws(ordersConfig(config));
    registerDeadLetterGauge(registry, sqs, config.ORDER_EVENTS_DLQ);
    const consumer = new OrderEventConsumer({
      sqs,
      store: new AppliedOrderStore({ dynamo, table: config.CONSUMER_TABLE, dedupSeconds: config.CONSUMER_DEDUP_SECONDS }),
      orders: new OrderStore({ dynamo, table: config.ORDERS_TABLE }),
      topicArn: config.ORDER_EVENTS_TOPIC_ARN,
      log,
      queue: { name: config.ORDER_EVENTS_QUEUE },
      waitTimeSeconds: config.CONSUMER_WAIT_SECONDS,
      visibilityTimeoutSeconds: config.CONSUMER_VISIBILITY_TIMEOUT_SECONDS,
      registry,
    });
    return {
      loop: consumer,
      describe: { queue: config.ORDER_EVENTS_QUEUE, table: config.CONSUMER_TABLE, orders: config.ORDERS_TABLE },
    };
  }),
});
