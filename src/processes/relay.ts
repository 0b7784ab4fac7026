import { createAwsClients } from '../adapters/aws.ts';
import { loadConfig } from '../config.ts';
import { DocumentEventPublisher } from '../documents/document-events.ts';
import { documentStore } from '../documents/stores.ts';
import { runEntryPoint } from './shutdown.ts';
import { ordersConfig } from '../adapters/regions.ts';
import { runBackgroundLoop, type Runnable } from './ops-server.ts';
import { startTracing } from '../telemetry/tracing.ts';
import { OrderEventPublisher } from '../orders/order-events.ts';
import { OrderStore } from '../orders/order-store.ts';
import { registerOutboxGauges } from '../outbox/outbox-metrics.ts';
import { OutboxRelay } from '../outbox/outbox-relay.ts';

/** Several loops run and stopped as one; healthy while all are. */
function together(loops: Runnable[]): Runnable {
  return {
    start: () => loops.forEach((loop) => loop.start()),
    stop: async () => void (await Promise.all(loops.map((loop) => loop.stop()))),
    get healthy() {
      return loops.every((loop) => loop.healthy);
    },
  };
}

// The outbox relay process: publishes the events the API left pending, of
// two outboxes: order events (orders live in the primary region, wherever
// this runs) and document events (of this region's documents table, to its
// topic). Serves /health/live, /health/ready and /metrics (with both
// backlogs) on METRICS_PORT; on SIGTERM/SIGINT it finishes the sweeps in
// progress, closes its clients and exits 0. Any number of replicas may run.
await runEntryPoint(async () => {
  const config = loadConfig();
  const tracing = startTracing(config, 'docsvc-relay');
  const primary = createAwsClients(ordersConfig(config));
  const local = createAwsClients(config);
  await runBackgroundLoop(config, 'relay', (ops) => {
    if (tracing) ops.app.addHook('onClose', () => tracing.shutdown());
    const relay = {
      log: ops.log,
      batchSize: config.RELAY_BATCH_SIZE,
      graceMs: config.RELAY_GRACE_MS,
      leaseMs: config.RELAY_LEASE_SECONDS * 1000,
      intervalMs: config.RELAY_INTERVAL_MS,
      registry: ops.registry,
    };
    const orders = new OrderStore({ dynamo: primary.dynamo, table: config.ORDERS_TABLE }).outbox;
    const documents = documentStore(config, local).outbox;
    registerOutboxGauges(ops.registry, 'orders', orders);
    registerOutboxGauges(ops.registry, 'documents', documents);
    const orderRelay = new OutboxRelay({
      ...relay,
      name: 'orders',
      store: orders,
      publisher: new OrderEventPublisher({ sns: primary.sns, topicArn: config.ORDER_EVENTS_TOPIC_ARN }),
    });
    const documentRelay = new OutboxRelay({
      ...relay,
      name: 'documents',
      store: documents,
      publisher: new DocumentEventPublisher({ sns: local.sns, topicArn: config.DOCUMENT_CHANGES_TOPIC_ARN }),
    });
    return {
      loop: together([orderRelay, documentRelay]),
      close: () => {
        primary.destroy();
        local.destroy();
      },
      describe: {
        owner: orderRelay.owner,
        tables: [config.ORDERS_TABLE, config.DOCUMENTS_TABLE],
        topics: [config.ORDER_EVENTS_TOPIC_ARN, config.DOCUMENT_CHANGES_TOPIC_ARN],
      },
    };
  });
});
