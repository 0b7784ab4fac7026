import { createAwsClients } from './adapters/aws.ts';
import { ConfigError, loadConfig } from './config.ts';
import { AppliedOrderStore } from './consumer/applied-orders.ts';
import { registerDeadLetterGauge } from './consumer/dead-letter-gauge.ts';
import { OrderEventConsumer } from './consumer/order-event-consumer.ts';
import { runUntilSignalled } from './lifecycle.ts';
import { buildOpsServer } from './ops-server.ts';

// The downstream consumer process: long-polls the queue subscribed to the
// order-events topic and applies each event id at most once. Serves
// /health/live, /health/ready and /metrics on METRICS_PORT; on SIGTERM/SIGINT
// it ends its long poll, finishes the messages in hand, closes its clients
// and exits 0.
try {
  const config = loadConfig();
  const aws = createAwsClients(config);
  let consumer: OrderEventConsumer | undefined;
  const ops = buildOpsServer(config, 'consumer', () => consumer?.healthy ?? false);
  consumer = new OrderEventConsumer({
    sqs: aws.sqs,
    store: new AppliedOrderStore({
      dynamo: aws.dynamo,
      table: config.CONSUMER_TABLE,
      dedupSeconds: config.CONSUMER_DEDUP_SECONDS,
    }),
    log: ops.log,
    queue: { name: config.ORDER_EVENTS_QUEUE },
    waitTimeSeconds: config.CONSUMER_WAIT_SECONDS,
    visibilityTimeoutSeconds: config.CONSUMER_VISIBILITY_TIMEOUT_SECONDS,
    registry: ops.registry,
  });
  registerDeadLetterGauge(ops.registry, aws.sqs, config.ORDER_EVENTS_DLQ);
  const running = consumer;
  ops.app.addHook('onClose', async () => {
    await running.stop();
    aws.destroy();
  });
  await ops.app.listen({ port: config.METRICS_PORT, host: config.HOST });
  running.start();
  ops.log.info({ queue: config.ORDER_EVENTS_QUEUE, table: config.CONSUMER_TABLE }, 'consumer started');
  runUntilSignalled(ops.app, config.SHUTDOWN_TIMEOUT_MS);
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(error.message);
    process.exit(78); // EX_CONFIG
  }
  throw error;
}
