import { DeleteMessageBatchCommand, GetQueueUrlCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { createAwsClients } from '../adapters/aws.ts';
import { watchQueueOf } from '../bootstrap/resources.ts';
import { loadConfig, parseEnvironment } from '../config.ts';
import { stackEnv } from './emulators.ts';
import { EmulatorPorts } from './ports.ts';

// `make watch-events`: prints the document events of a running `make dev`
// as they arrive, one JSON line each (the CloudEvent, and the message
// attributes subscribers filter on), from the queue the stack subscribes to
// the document-changes topic. Reading takes them off that queue. Ctrl-C ends it.
const ports = parseEnvironment(EmulatorPorts, process.env);
// The stack's endpoints and credentials, unless the environment says otherwise (the SDK reads credentials from it).
Object.assign(process.env, { ...stackEnv({ aws: ports.AWS_EMULATOR_PORT, dynamodb: ports.DYNAMODB_EMULATOR_PORT, redis: ports.REDIS_PORT }), ...process.env });
const config = loadConfig(process.env);
const aws = createAwsClients(config);
const queue = watchQueueOf(config.DOCUMENT_CHANGES_TOPIC_ARN);
const { QueueUrl } = await aws.sqs.send(new GetQueueUrlCommand({ QueueName: queue }));
console.error(`watching ${queue} (${config.DOCUMENT_CHANGES_TOPIC_ARN}); Ctrl-C to stop`);

let running = true;
process.on('SIGINT', () => (running = false));
process.on('SIGTERM', () => (running = false));
while (running) {
  const { Messages = [] } = await aws.sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, MessageAttributeNames: ['All'] }));
  for (const message of Messages) {
    const attributes = Object.fromEntries(Object.entries(message.MessageAttributes ?? {}).map(([name, value]) => [name, value.StringValue]));
    console.log(JSON.stringify({ attributes, event: JSON.parse(message.Body ?? 'null') as unknown }));
  }
  if (Messages.length > 0) {
    await aws.sqs.send(new DeleteMessageBatchCommand({ QueueUrl, Entries: Messages.map((message, i) => ({ Id: String(i), ReceiptHandle: message.ReceiptHandle })) }));
  } else {
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}
aws.destroy();
