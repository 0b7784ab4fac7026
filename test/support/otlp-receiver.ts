import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import protobuf from 'protobufjs';

// The part of the OTLP trace protocol (opentelemetry-proto, trace/v1 and
// collector/trace/v1) a test looks at; protobuf skips the fields left out.
const PROTO = `
syntax = "proto3";
message AnyValue { oneof value { string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4; ArrayValue array_value = 5; } }
message ArrayValue { repeated AnyValue values = 1; }
message KeyValue { string key = 1; AnyValue value = 2; }
message Resource { repeated KeyValue attributes = 1; }
message Status { string message = 2; int32 code = 3; }
message Link { bytes trace_id = 1; bytes span_id = 2; }
message Span {
  bytes trace_id = 1; bytes span_id = 2; bytes parent_span_id = 4; string name = 5; int32 kind = 6;
  fixed64 start_time_unix_nano = 7; fixed64 end_time_unix_nano = 8; repeated KeyValue attributes = 9;
  repeated Link links = 13; Status status = 15;
}
message InstrumentationScope { string name = 1; }
message ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
`;
const Request = protobuf.parse(PROTO, { keepCase: true }).root.lookupType('ExportTraceServiceRequest');

export const SpanKind = { INTERNAL: 1, SERVER: 2, CLIENT: 3, PRODUCER: 4, CONSUMER: 5 } as const;

type AttributeValue = string | boolean | number | AttributeValue[];

/** One span as received, ids in lowercase hex (as in traceparent). */
export type ReceivedSpan = {
  service: string;
  scope: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Record<string, AttributeValue>;
  links: { traceId: string; spanId: string }[];
  status: { code: number; message: string };
};

type Wire = Record<string, any>;

function valueOf(value: Wire | undefined): AttributeValue {
  if (!value) return '';
  if ('string_value' in value) return value.string_value;
  if ('bool_value' in value) return value.bool_value;
  if ('int_value' in value) return Number(value.int_value);
  if ('double_value' in value) return value.double_value;
  if ('array_value' in value) return (value.array_value.values ?? []).map(valueOf);
  return '';
}

const attributesOf = (list: Wire[] | undefined) =>
  Object.fromEntries((list ?? []).map((pair) => [pair.key, valueOf(pair.value)]));
const hex = (bytes: Uint8Array | undefined) => Buffer.from(bytes ?? []).toString('hex');

/** Decodes an OTLP/HTTP protobuf export request into spans. */
export function decodeSpans(body: Buffer): ReceivedSpan[] {
  const request = Request.toObject(Request.decode(body), { oneofs: false }) as Wire;
  return (request.resource_spans ?? []).flatMap((resourceSpans: Wire) => {
    const resource = attributesOf(resourceSpans.resource?.attributes);
    return (resourceSpans.scope_spans ?? []).flatMap((scopeSpans: Wire) =>
      (scopeSpans.spans ?? []).map((span: Wire) => ({
        service: String(resource['service.name'] ?? ''),
        scope: String(scopeSpans.scope?.name ?? ''),
        traceId: hex(span.trace_id),
        spanId: hex(span.span_id),
        parentSpanId: hex(span.parent_span_id),
        name: span.name ?? '',
        kind: span.kind ?? 0,
        attributes: attributesOf(span.attributes),
        links: (span.links ?? []).map((link: Wire) => ({ traceId: hex(link.trace_id), spanId: hex(link.span_id) })),
        status: { code: span.status?.code ?? 0, message: span.status?.message ?? '' },
      })),
    );
  });
}

/**
 * A small OTLP/HTTP receiver: what the real exporters of the processes send
 * to POST /v1/traces, decoded and kept. It answers as a collector does (200,
 * an empty protobuf ExportTraceServiceResponse).
 */
export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  readonly contentTypes = new Set<string>();
  private server: Server | undefined;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        if (request.method !== 'POST' || request.url !== '/v1/traces') {
          response.writeHead(404).end();
          return;
        }
        this.contentTypes.add(String(request.headers['content-type']));
        this.spans.push(...decodeSpans(Buffer.concat(chunks)));
        response.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
      });
    });
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    this.server.close();
    await once(this.server, 'close');
  }

  trace(traceId: string): ReceivedSpan[] {
    return this.spans.filter((span) => span.traceId === traceId);
  }
}
