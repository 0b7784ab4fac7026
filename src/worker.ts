import { createAwsClients } from './adapters/aws.ts';
import { ConfigError, loadConfig } from './config.ts';
import { runUntilSignalled } from './lifecycle.ts';
import { buildOpsServer } from './ops-server.ts';
import { OrderEventPublisher } from './orders/order-events.ts';
import { OrderStore } from './orders/order-store.ts';
import { registerOutboxGauges } from './outbox/outbox-metrics.ts';
import { OutboxRelay } from './outbox/outbox-relay.ts';

// The outbox relay process: publishes the order events the API left pending.
// Serves /health/live, /health/ready and /metrics (with the backlog) on
// METRICS_PORT; on SIGTERM/SIGINT it finishes the sweep in progress, closes
// its clients and exits 0. Any number of replicas may run.
try {
  const config = loadConfig();
  const aws = createAwsClients(config);
  const store = new OrderStore({ dynamo: aws.dynamo, table: config.ORDERS_TABLE });
  let relay: OutboxRelay | undefined;
  const ops = buildOpsServer(config, 'relay', () => relay?.healthy ?? false);
  relay = new OutboxRelay({
    store,
    publisher: new OrderEventPublisher({ sns: aws.sns, topicArn: config.ORDER_EVENTS_TOPIC_ARN }),
    log: ops.log,
    batchSize: config.RELAY_BATCH_SIZE,
    graceMs: config.RELAY_GRACE_MS,
    leaseMs: config.RELAY_LEASE_SECONDS * 1000,
    intervalMs: config.RELAY_INTERVAL_MS,
    registry: ops.registry,
  });
  registerOutboxGauges(ops.registry, store);
  const running = relay;
  ops.app.addHook('onClose', async () => {
    await running.stop();
    aws.destroy();
  });
  await ops.app.listen({ port: config.METRICS_PORT, host: config.HOST });
  running.start();
  ops.log.info({ owner: running.owner, table: config.ORDERS_TABLE, topic: config.ORDER_EVENTS_TOPIC_ARN }, 'relay started');
  runUntilSignalled(ops.app, config.SHUTDOWN_TIMEOUT_MS);
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(error.message);
    process.exit(78); // EX_CONFIG
  }
  throw error;
}
