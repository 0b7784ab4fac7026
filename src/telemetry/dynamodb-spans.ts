import { SpanKind, context, trace } from '@opentelemetry/api';
import { awsAttributes } from './aws-spans.ts';
import { tracerOf, tracingOn, withSpan } from './tracing.ts';

/**
 * Spans of the lean DynamoDB client (src/adapters/dynamodb-lean.ts), which
 * speaks to DynamoDB over plain HTTP and so is invisible to any AWS SDK
 * instrumentation: the same CLIENT span and attributes as the SDK clients'
 * (`rpc.system` aws-api, `aws.dynamodb.table_names`, `aws.request_id`), one
 * per operation, retries included. The client calls `traceDynamoCall` with
 * the operation and its input; without tracing, or outside a traced
 * operation, it only runs the call.
 */
export type DynamoCall<T> = () => Promise<T>;

export function traceDynamoCall<T>(operation: string, input: Record<string, unknown>, region: string, call: DynamoCall<T>): Promise<T> {
  if (!tracingOn()) return call();
  const parent = context.active();
  if (!trace.getSpan(parent)) return call();
  const span = tracerOf().startSpan(
    `DynamoDB.${operation}`,
    { kind: SpanKind.CLIENT, attributes: { ...awsAttributes('DynamoDB', operation, input, region), 'db.system.name': 'aws.dynamodb' } },
    parent,
  );
  return withSpan(span, parent, () =>
    call().catch((error: unknown) => {
      const requestId = requestIdOf(error);
      if (requestId) span.setAttribute('aws.request_id', requestId);
      throw error;
    }),
  );
}

/** The AWS request id of a failed call: on the client's error ($metadata), or on the one a coded error wraps (cause). */
function requestIdOf(error: unknown): string | undefined {
  for (let current = error, depth = 0; current instanceof Error && depth < 3; current = current.cause, depth++) {
    const metadata: unknown = Reflect.get(current, '$metadata');
    const requestId: unknown = typeof metadata === 'object' && metadata !== null ? Reflect.get(metadata, 'requestId') : undefined;
    if (typeof requestId === 'string') return requestId;
  }
  return undefined;
}
