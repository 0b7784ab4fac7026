import { DocumentEventPublisher } from '../documents/document-events.ts';
import { documentStore } from '../documents/stores.ts';
import { ordersConfig } from '../adapters/regions.ts';
import { OrderEventPublisher } from '../orders/order-events.ts';
import { OrderStore } from '../orders/order-store.ts';
import { registerOutboxGauges } from '../outbox/outbox-metrics.ts';
import { OutboxRelay } from '../outbox/outbox-relay.ts';
import { background, runProcess, together } from './runtime.ts';

// The outbox relay: publishes the events the API left pending, of two
// outboxes: order events (orders live in the primary region, wherever this
// runs) and document events (of this region's documents table, to its
// topic). Serves /health/live, /health/ready and /metrics (with both
// backlogs) on METRICS_PORT; on SIGTERM/SIGINT it finishes the sweeps in
// progress, closes its clients and exits 0. Any number of replicas may run.
await runProcess({
  name: 'relay',
  serve: background(async ({ config, log, aws }, registry) => {
    const primary = aws(ordersConfig(config));
    const local = aws();
    const relay = {
      log,
      batchSize: config.RELAY_BATCH_SIZE,
      graceMs: config.RELAY_GRACE_MS,
      leaseMs: config.RELAY_LEASE_SECONDS * 1000,
      intervalMs: config.RELAY_INTERVAL_MS,
      registry,
    };
    const orders = new OrderStore({ dynamo: primary.dynamo, table: config.ORDERS_TABLE }).outbox;
    const documents = documentStore(config, local).outbox;
    registerOutboxGauges(registry, 'orders', orders);
    registerOutboxGauges(registry, 'documents', documents);
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
      describe: {
        owner: orderRelay.owner,
        tables: [config.ORDERS_TABLE, config.DOCUMENTS_TABLE],
        topics: [config.ORDER_EVENTS_TOPIC_ARN, config.DOCUMENT_CHANGES_TOPIC_ARN],
      },
    };
  }),
});
