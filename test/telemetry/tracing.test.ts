import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { documentEventId } from '../../src/documents/document-events.ts';
import { DEAD_ENDPOINT, isolatedStack, newOrder, type IsolatedStack } from '../orders/support.ts';
import { OtlpReceiver, SpanKind, type ReceivedSpan } from '../support/otlp-receiver.ts';
import { ready, startProcess, until, type RunningProcess } from '../support/processes.ts';

// The API, the relay and the consumer as processes, exporting to a real
// OTLP/HTTP receiver with the real exporter. The API cannot reach SNS here,
// so the order's event goes API → DynamoDB (outbox) → relay → SNS → SQS →
// consumer, and the trace must follow it all the way.

let receiver: OtlpReceiver;
let s: IsolatedStack;
let api: RunningProcess;
let relay: RunningProcess;
let consumer: RunningProcess;

const traceparent = (traceId: string) => `00-${traceId}-${randomBytes(8).toString('hex')}-01`;
const newTraceId = () => randomBytes(16).toString('hex');
const describeSpans = (spans: ReceivedSpan[]) =>
  spans.map((span) => `${span.service} ${span.name} ${span.spanId}←${span.parentSpanId}`).join('\n');

function one(spans: ReceivedSpan[], match: (span: ReceivedSpan) => boolean, what: string): ReceivedSpan {
  const found = spans.filter(match);
  expect(found, `${what} in:\n${describeSpans(spans)}`).toHaveLength(1);
  return found[0]!;
}

/** Every span's parent is in the trace, up to the root: no orphan, no broken link. */
function expectConnected(spans: ReceivedSpan[], root: ReceivedSpan) {
  const byId = new Map(spans.map((span) => [span.spanId, span]));
  for (const span of spans) {
    let cursor = span;
    for (let depth = 0; cursor.spanId !== root.spanId; depth++) {
      const parent = byId.get(cursor.parentSpanId);
      expect(parent, `the parent of ${cursor.service} ${cursor.name} in:\n${describeSpans(spans)}`).toBeDefined();
      expect(depth).toBeLessThan(20);
      cursor = parent!;
    }
  }
}

beforeAll(async () => {
  receiver = new OtlpReceiver();
  await receiver.start();
  s = await isolatedStack();
  const names = Object.fromEntries(Object.entries(s.names).map(([key, value]) => [key, String(value)]));
  const otel = { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '100' };
  [api, relay, consumer] = await Promise.all([
    startProcess('api', { ...names, ...otel, AWS_ENDPOINT_URL_SNS: DEAD_ENDPOINT }),
    startProcess('relay', { ...names, ...otel, RELAY_GRACE_MS: '0', RELAY_INTERVAL_MS: '100' }),
    startProcess('order-consumer', { ...names, ...otel, CONSUMER_WAIT_SECONDS: '1' }),
  ]);
  await Promise.all([api, relay, consumer].map((running) => ready(running)));
});

afterAll(async () => {
  await Promise.all([api, relay, consumer].map((running) => running?.stop()));
  s?.close();
  await receiver?.stop();
});

describe('one trace from POST /orders to "order applied", through the relay', () => {
  let traceId = '';
  let orderId = '';
  let spans: ReceivedSpan[] = [];

  beforeAll(async () => {
    // Retried while the API sheds load (503 OVERLOADED on a busy machine), each attempt in a
    // trace of its own; the payload dedup makes it one order, and the trace is the 201's.
    const order = newOrder(2);
    const answer = await until(
      async () => {
        const attempt = newTraceId();
        const response = await fetch(api.url('/orders'), {
          method: 'POST',
          headers: { 'content-type': 'application/json', traceparent: traceparent(attempt) },
          body: JSON.stringify(order),
        });
        return response.status === 201 ? { attempt, ...((await response.json()) as { orderId: string }) } : undefined;
      },
      15_000,
      () => `an accepted order:\n${api.output()}`,
    );
    traceId = answer.attempt;
    orderId = answer.orderId;
    // Applied by the consumer, and its spans exported (batches every 100 ms).
    spans = await until(
      async () => {
        // The API's request may end after the consumer is done: its own publish attempt retries
        // against the dead endpoint while the relay has already delivered.
        const found = receiver.trace(traceId);
        // Each process exports on its own schedule: the relay's spans may come after the consumer's.
        return found.some((span) => span.service === 'docsvc-api' && span.kind === SpanKind.SERVER) &&
          found.some((span) => span.service === 'docsvc-relay' && span.kind === SpanKind.PRODUCER) &&
          found.some((span) => span.service === 'docsvc-consumer' && span.name === 'DynamoDB.UpdateItem')
          ? found
          : undefined;
      },
      20_000,
      () => `the consumer's spans of trace ${traceId}:\n${describeSpans(receiver.spans)}\n${consumer.output()}`,
    );
  });

  it('is sent as OTLP/HTTP protobuf, by three services', () => {
    expect([...receiver.contentTypes]).toEqual(['application/x-protobuf']);
    expect(new Set(spans.map((span) => span.service))).toEqual(new Set(['docsvc-api', 'docsvc-relay', 'docsvc-consumer']));
  });

  it('starts with the server span of the request, continuing the caller\'s traceparent', () => {
    const server = one(spans, (span) => span.kind === SpanKind.SERVER, 'one server span');
    expect(server).toMatchObject({ service: 'docsvc-api', name: 'POST /orders' });
    expect(server.attributes).toMatchObject({ 'http.request.method': 'POST', 'http.route': '/orders', 'http.response.status_code': 201 });
    // Its parent is the caller's span, which is not ours: everything else hangs below it.
    expect(spans.some((span) => span.spanId === server.parentSpanId)).toBe(false);
    expectConnected(spans, server);
  });

  it('has the DynamoDB writes of the API as client spans with their semantic-convention attributes', () => {
    const puts = spans.filter((span) => span.service === 'docsvc-api' && span.name === 'DynamoDB.PutItem');
    expect(puts.map((span) => span.attributes['aws.dynamodb.table_names'])).toEqual([[s.config.ORDERS_TABLE], [s.config.ORDERS_TABLE]]);
    for (const span of puts) {
      expect(span.kind).toBe(SpanKind.CLIENT);
      expect(span.attributes).toMatchObject({ 'rpc.system': 'aws-api', 'rpc.service': 'DynamoDB', 'rpc.method': 'PutItem' });
    }
  });

  it('has the API\'s failed publish as an SNS span in error, the relay\'s creation span as its child, and the consumer below that', () => {
    const failed = one(spans, (span) => span.service === 'docsvc-api' && span.name === 'SNS.PublishBatch', "the API's publish");
    expect(failed.status.code).toBe(2); // ERROR: SNS is unreachable from this API
    expect(failed.attributes).toMatchObject({ 'rpc.system': 'aws-api', 'messaging.system': 'aws.sns', 'messaging.operation.type': 'send' });

    const created = spans.filter((span) => span.kind === SpanKind.PRODUCER);
    const byRelay = one(created, (span) => span.service === 'docsvc-relay', "the relay's creation span");
    const handler = one(spans, (span) => span.service === 'docsvc-api' && span.name.startsWith('handler'), 'the handler span');
    // Parented to the request that accepted the order, though published later by another process.
    expect(byRelay.parentSpanId).toBe(handler.spanId);
    expect(byRelay.attributes).toMatchObject({ 'messaging.system': 'aws.sns', 'messaging.operation.type': 'create', 'messaging.message.id': orderId });

    const processed = one(spans, (span) => span.kind === SpanKind.CONSUMER, 'the process span');
    expect(processed).toMatchObject({ service: 'docsvc-consumer' });
    expect(processed.parentSpanId).toBe(byRelay.spanId);
    expect(processed.attributes).toMatchObject({ 'messaging.system': 'aws_sqs', 'messaging.operation.type': 'process', 'order_events.outcome': 'applied' });
    const consumerCalls = spans.filter((span) => span.service === 'docsvc-consumer' && span.name.startsWith('DynamoDB.'));
    for (const span of consumerCalls) expect(span.parentSpanId).toBe(processed.spanId);
    // The order read first (the event must be the stored order's), then the consumer's own writes.
    const tables = (table: string) => consumerCalls.filter((span) => (span.attributes['aws.dynamodb.table_names'] as string[])[0] === table);
    expect(tables(s.config.ORDERS_TABLE).map((span) => span.name)).toEqual(['DynamoDB.GetItem']);
    expect(tables(s.config.CONSUMER_TABLE).map((span) => span.name).sort()).toEqual(['DynamoDB.PutItem', 'DynamoDB.PutItem', 'DynamoDB.UpdateItem']);
    expect(consumerCalls).toHaveLength(4);
  });

  it('links the relay\'s batch publish (its own trace) to the creation span it carried', async () => {
    const byRelay = one(spans, (span) => span.kind === SpanKind.PRODUCER && span.service === 'docsvc-relay', "the relay's creation span");
    // The sweep's spans end after the creation span, and may be exported in a later batch.
    await until(
      async () => receiver.spans.some((span) => span.service === 'docsvc-relay' && span.name === 'outbox relay' && receiver.spans.some((batch) => batch.parentSpanId === span.spanId && batch.links.some((link) => link.spanId === byRelay.spanId))) || undefined,
      10_000,
      () => describeSpans(receiver.spans.filter((span) => span.service === 'docsvc-relay')),
    );
    const batch = one(
      receiver.spans,
      (span) => span.service === 'docsvc-relay' && span.name === 'SNS.PublishBatch' && span.links.some((link) => link.spanId === byRelay.spanId),
      "the relay's PublishBatch",
    );
    expect(batch.traceId).not.toBe(traceId);
    expect(batch.status.code).not.toBe(2);
    expect(batch.attributes).toMatchObject({
      'rpc.system': 'aws-api',
      'rpc.method': 'PublishBatch',
      'messaging.system': 'aws.sns',
      'messaging.destination.name': s.config.ORDER_EVENTS_TOPIC_ARN.split(':').at(-1),
    });
    const sweep = one(receiver.spans, (span) => span.spanId === batch.parentSpanId, 'the sweep span');
    expect(sweep).toMatchObject({ service: 'docsvc-relay', name: 'outbox relay' });
  });

  it('puts trace_id and span_id on the log lines written inside it', () => {
    const processed = one(spans, (span) => span.kind === SpanKind.CONSUMER, 'the process span');
    const applied = consumer.logs().find((line) => line.msg === 'order applied' && line.orderId === orderId);
    expect(applied).toMatchObject({ trace_id: traceId, span_id: processed.spanId });
    const access = api.logs().find((line) => line.msg === 'request completed' && line.url === '/orders' && line.statusCode === 201);
    expect(access?.trace_id).toBe(traceId);
  });
});

describe('reading a document', () => {
  it('is a trace with the Redis, DynamoDB and S3 calls under the request', async () => {
    const id = `traced-${randomUUID()}`;
    const body = 'x'.repeat(20 * 1024); // above INLINE_CONTENT_MAX_BYTES: the content goes to S3
    const writeTrace = newTraceId();
    await until(
      async () =>
        (
          await fetch(api.url(`/documents/${id}`), {
            method: 'PUT',
            headers: { 'content-type': 'text/plain', traceparent: traceparent(writeTrace) },
            body,
          })
        ).ok,
      15_000,
      () => api.output(),
    );
    // A read refused while the API sheds load is retried in a trace of its own (a 503 fills no cache).
    const { readTrace, read } = await until(
      async () => {
        const attempt = newTraceId();
        const response = await fetch(api.url(`/documents/${id}`), { headers: { traceparent: traceparent(attempt) } });
        return response.status === 503 ? undefined : { readTrace: attempt, read: response };
      },
      15_000,
      () => api.output(),
    );
    expect(read.status).toBe(200);
    expect(read.headers.get('cache-status')).toBe('docsvc; fwd=miss');
    expect(await read.text()).toBe(body);

    const spans = await until(
      async () => {
        const found = receiver.trace(readTrace);
        return found.some((span) => span.kind === SpanKind.SERVER) ? found : undefined;
      },
      10_000,
      () => `the read's spans:\n${describeSpans(receiver.spans)}`,
    );
    const server = one(spans, (span) => span.kind === SpanKind.SERVER, 'the server span');
    expect(server.name).toBe('GET /documents/:id');
    expectConnected(spans, server);
    const clients = spans.filter((span) => span.kind === SpanKind.CLIENT);
    expect(clients.map((span) => span.name).sort()).toEqual(['DynamoDB.GetItem', 'GET', 'S3.GetObject', 'SET']);
    expect(clients.find((span) => span.name === 'GET')!.attributes).toMatchObject({ 'db.system.name': 'redis', 'db.operation.name': 'GET' });
    expect(clients.find((span) => span.name === 'DynamoDB.GetItem')!.attributes).toMatchObject({
      'rpc.system': 'aws-api',
      'aws.dynamodb.table_names': [s.config.DOCUMENTS_TABLE],
    });
    expect(clients.find((span) => span.name === 'S3.GetObject')!.attributes).toMatchObject({
      'rpc.system': 'aws-api',
      'rpc.service': 'S3',
      'aws.s3.bucket': s.config.DOCUMENTS_BUCKET,
    });

    const written = receiver.trace(writeTrace).filter((span) => span.kind === SpanKind.CLIENT).map((span) => span.name);
    expect(written).toEqual(expect.arrayContaining(['DynamoDB.PutItem', 'S3.PutObject']));
  });

  it("links a document's event to the request that created it, though the relay publishes it", async () => {
    const id = `evented-${randomUUID()}`;
    const created = await until(
      async () => {
        const attempt = newTraceId();
        const response = await fetch(api.url(`/documents/${id}`), { method: 'PUT', headers: { 'content-type': 'text/plain', traceparent: traceparent(attempt) }, body: 'news' });
        return response.status === 201 ? attempt : undefined;
      },
      15_000,
      () => api.output(),
    );
    // The API cannot reach SNS here: the relay publishes the event, as a child of the request's handler.
    const spans = await until(
      async () => {
        const found = receiver.trace(created);
        return found.some((span) => span.kind === SpanKind.PRODUCER && span.service === 'docsvc-relay') && found.some((span) => span.kind === SpanKind.SERVER) ? found : undefined;
      },
      20_000,
      () => `the create's spans:\n${describeSpans(receiver.trace(created))}\n${relay.output()}`,
    );
    const byRelay = one(spans, (span) => span.kind === SpanKind.PRODUCER && span.service === 'docsvc-relay', "the relay's creation span");
    const handler = one(spans, (span) => span.service === 'docsvc-api' && span.name.startsWith('handler'), 'the handler span');
    expect(byRelay.parentSpanId).toBe(handler.spanId);
    expect(byRelay.attributes).toMatchObject({
      'messaging.system': 'aws.sns',
      'messaging.destination.name': 'document-changes',
      'messaging.message.id': documentEventId('public', id, 'document.created'),
    });
  });

  it('leaves probes and scrapes untraced', async () => {
    await fetch(api.url('/health/ready'));
    await fetch(api.url('/metrics'));
    // A traced request after them: spans leave in the order they end, so once its span is
    // at the receiver, any span of the probe or the scrape (or of their DynamoDB/S3/SNS checks) would be too.
    const marker = `after-probes-${randomUUID()}`;
    await fetch(api.url(`/documents/${marker}`));
    await until(
      async () => receiver.spans.some((span) => span.kind === SpanKind.SERVER && Object.values(span.attributes).some((value) => String(value).includes(marker))),
      15_000,
      () => `the marker request's span:\n${describeSpans(receiver.spans)}`,
    );
    const names = new Set(receiver.spans.filter((span) => span.service === 'docsvc-api').map((span) => span.name));
    for (const name of ['GET /health/ready', 'GET /metrics', 'S3.HeadBucket', 'SNS.GetTopicAttributes']) expect(names.has(name), name).toBe(false);
  });
});
