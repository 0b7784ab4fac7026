import { createAwsClients } from '../adapters/aws.ts';
import { loadConfig } from '../config.ts';
import { AppliedOrderStore } from '../consumer/applied-orders.ts';
import { registerDeadLetterGauge } from '../consumer/dead-letter-gauge.ts';
import { OrderEventConsumer } from '../consumer/order-event-consumer.ts';
import { runEntryPoint } from './shutdown.ts';
import { ordersConfig } from '../adapters/regions.ts';
import { runBackgroundLoop } from './ops-server.ts';
import { OrderStore } from '../orders/order-store.ts';
import { startTracing } from '../telemetry/tracing.ts';

// The downstream consumer process: long-polls the queue subscribed to the
// order-events topic and applies each event id at most once. Serves
// /health/live, /health/ready and /metrics on METRICS_PORT; on SIGTERM/SIGINT
// it ends its long poll, finishes the messages in hand, closes its clients
// and exits 0.
await runEntryPoint(async () => {
  const config = loadConfig();
  const tracing = startTracing(config, 'docsvc-consumer');
  // Orders live in the primary region, wherever this process runs.
  const aws = createAwsClients(ordersConfig(config));
  await runBackgroundLoop(config, 'consumer', (ops) => {
    if (tracing) ops.app.addHook('onClose', () => tracing.shutdown());
    registerDeadLetterGauge(ops.registry, aws.sqs, config.ORDER_EVENTS_DLQ);
    const consumer = new OrderEventConsumer({
      sqs: aws.sqs,
      store: new AppliedOrderStore({
        dynamo: aws.dynamo,
        table: config.CONSUMER_TABLE,
        dedupSeconds: config.CONSUMER_DEDUP_SECONDS,
      }),
      orders: new OrderStore({ dynamo: aws.dynamo, table: config.ORDERS_TABLE }),
      topicArn: config.ORDER_EVENTS_TOPIC_ARN,
      log: ops.log,
      queue: { name: config.ORDER_EVENTS_QUEUE },
      waitTimeSeconds: config.CONSUMER_WAIT_SECONDS,
      visibilityTimeoutSeconds: config.CONSUMER_VISIBILITY_TIMEOUT_SECONDS,
      registry: ops.registry,
    });
    return {
      loop: consumer,
      close: () => aws.destroy(),
      describe: { queue: config.ORDER_EVENTS_QUEUE, table: config.CONSUMER_TABLE, orders: config.ORDERS_TABLE },
    };
  });
});
