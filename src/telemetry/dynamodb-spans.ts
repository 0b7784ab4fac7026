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
      const requestId = (error as { requestId?: unknown } | null)?.requestId;
      if (typeof requestId === 'string') span.setAttribute('aws.request_id', requestId);
      throw error;
    }),
  );
}
