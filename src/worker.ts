import { createAwsClients } from './adapters/aws.ts';
import { loadConfig } from './config.ts';
import { runEntryPoint } from './lifecycle.ts';
import { ordersConfig } from './regions.ts';
import { runBackgroundLoop } from './ops-server.ts';
import { startTracing } from './telemetry/tracing.ts';
import { OrderEventPublisher } from './orders/order-events.ts';
import { OrderStore } from './orders/order-store.ts';
import { registerOutboxGauges } from './outbox/outbox-metrics.ts';
import { OutboxRelay } from './outbox/outbox-relay.ts';

// The outbox relay process: publishes the order events the API left pending.
// Serves /health/live, /health/ready and /metrics (with the backlog) on
// METRICS_PORT; on SIGTERM/SIGINT it finishes the sweep in progress, closes
// its clients and exits 0. Any number of replicas may run.
await runEntryPoint(async () => {
  const config = loadConfig();
  const tracing = startTracing(config, 'docsvc-relay');
  // Orders live in the primary region, wherever this process runs.
  const aws = createAwsClients(ordersConfig(config));
  await runBackgroundLoop(config, 'relay', (ops) => {
    if (tracing) ops.app.addHook('onClose', () => tracing.shutdown());
    const { outbox } = new OrderStore({ dynamo: aws.dynamo, table: config.ORDERS_TABLE });
    registerOutboxGauges(ops.registry, outbox);
    const relay = new OutboxRelay({
      store: outbox,
      publisher: new OrderEventPublisher({ sns: aws.sns, topicArn: config.ORDER_EVENTS_TOPIC_ARN }),
      log: ops.log,
      batchSize: config.RELAY_BATCH_SIZE,
      graceMs: config.RELAY_GRACE_MS,
      leaseMs: config.RELAY_LEASE_SECONDS * 1000,
      intervalMs: config.RELAY_INTERVAL_MS,
      registry: ops.registry,
    });
    return {
      loop: relay,
      close: () => aws.destroy(),
      describe: { owner: relay.owner, table: config.ORDERS_TABLE, topic: config.ORDER_EVENTS_TOPIC_ARN },
    };
  });
});
