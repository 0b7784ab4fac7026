import { SpanKind, context, trace, type Attributes } from '@opentelemetry/api';
import type { InitializeHandlerArguments, InitializeHandlerOutput, InitializeMiddleware, MetadataBearer, Pluggable } from '@smithy/types';
import { carrierOf, linksTo } from './message-spans.ts';
import { tracerOf, tracingOn, withSpan } from './tracing.ts';

/**
 * A CLIENT span per AWS SDK call (S3, SNS, SQS, DynamoDB control plane),
 * with the attributes of the AWS SDK semantic conventions, as a middleware
 * of the client's own stack. (The official AWS SDK instrumentation patches
 * the SDK's modules as they are required, which does not see clients that
 * an ES module imports without a loader flag: measured, no span at all.)
 *
 * Only calls made inside a traced operation get a span: background polls,
 * health probes and scrapes do not each start a trace of their own.
 */
export type AwsService = 'DynamoDB' | 'S3' | 'SNS' | 'SQS';

type Input = Record<string, unknown>;
type Entries = { MessageAttributes?: Record<string, { StringValue?: string }> }[] | undefined;

const nameOf = (arnOrUrl: unknown) => (typeof arnOrUrl === 'string' ? arnOrUrl.split(/[:/]/).at(-1) : undefined);

/** What the semantic conventions say about one call, from its input. */
export function awsAttributes(service: AwsService, operation: string, input: Input, region: string | undefined): Attributes {
  const attributes: Attributes = { 'rpc.system': 'aws-api', 'rpc.service': service, 'rpc.method': operation };
  if (region) attributes['cloud.region'] = region;
  if (service === 'DynamoDB' && typeof input.TableName === 'string') attributes['aws.dynamodb.table_names'] = [input.TableName];
  if (service === 'S3') {
    if (typeof input.Bucket === 'string') attributes['aws.s3.bucket'] = input.Bucket;
    if (typeof input.Key === 'string') attributes['aws.s3.key'] = input.Key;
  }
  if (service === 'SNS') {
    attributes['messaging.system'] = 'aws.sns';
    const topic = nameOf(input.TopicArn);
    if (topic) attributes['messaging.destination.name'] = topic;
    if (operation.startsWith('Publish')) attributes['messaging.operation.type'] = 'send';
  }
  if (service === 'SQS') {
    attributes['messaging.system'] = 'aws_sqs';
    const queue = nameOf(input.QueueUrl) ?? (typeof input.QueueName === 'string' ? input.QueueName : undefined);
    if (queue) attributes['messaging.destination.name'] = queue;
    const type = { ReceiveMessage: 'receive', SendMessage: 'send', SendMessageBatch: 'send' }[operation] ?? (/^(Delete|ChangeMessageVisibility)/.test(operation) ? 'settle' : undefined);
    if (type) attributes['messaging.operation.type'] = type;
  }
  const entries = (input.PublishBatchRequestEntries ?? input.Entries) as Entries;
  if (Array.isArray(entries)) attributes['messaging.batch.message_count'] = entries.length;
  return attributes;
}

function middleware<I extends object, O extends MetadataBearer>(service: AwsService, region: () => Promise<string>): InitializeMiddleware<I, O> {
  let resolvedRegion: string | undefined;
  region().then((value) => (resolvedRegion = value), () => {});
  return (next, handlerContext) =>
    async (args: InitializeHandlerArguments<I>): Promise<InitializeHandlerOutput<O>> => {
      const parent = context.active();
      if (!trace.getSpan(parent)) return next(args);
      const operation = (handlerContext.commandName ?? 'Unknown').replace(/Command$/, '');
      const input = args.input as Input;
      // A batch publish carries messages created in other traces: linked, not parented.
      const entries = (input.PublishBatchRequestEntries ?? input.Entries) as Entries;
      const links = Array.isArray(entries) ? linksTo(entries.map((entry) => carrierOf(entry.MessageAttributes))) : [];
      const span = tracerOf().startSpan(
        `${service}.${operation}`,
        { kind: SpanKind.CLIENT, attributes: awsAttributes(service, operation, input, resolvedRegion), links },
        parent,
      );
      return withSpan(span, parent, async () => {
        const output = await next(args);
        const metadata = output.output.$metadata;
        if (metadata.requestId) span.setAttribute('aws.request_id', metadata.requestId);
        if (metadata.httpStatusCode) span.setAttribute('http.response.status_code', metadata.httpStatusCode);
        return output;
      });
    };
}

/** Adds the span middleware to an SDK client when tracing is on; nothing otherwise. */
export function traceAwsCalls<I extends object, O extends MetadataBearer>(
  client: { middlewareStack: { use(pluggable: Pluggable<I, O>): void }; config: { region: () => Promise<string> } },
  service: AwsService,
): void {
  if (!tracingOn()) return;
  client.middlewareStack.use({
    applyToStack: (stack) =>
      stack.add(middleware<I, O>(service, client.config.region), { step: 'initialize', name: 'docsvcTracing', priority: 'high' }),
  });
}
