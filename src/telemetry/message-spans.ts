import { ROOT_CONTEXT, SpanKind, context, propagation, trace, type Attributes, type Link, type Span } from '@opentelemetry/api';
import { tracerOf, tracingOn, withSpan } from './tracing.ts';

/**
 * Trace context across the order events: W3C `traceparent`/`tracestate`
 * as message attributes, and the spans of the messaging semantic
 * conventions (`create` per message, `receive`, `process`). Every function
 * is a no-op when tracing is off.
 */

/** W3C trace-context fields, as headers or message attributes carry them. */
export type TraceCarrier = Record<string, string>;

const PROPAGATED = ['traceparent', 'tracestate'] as const;

/** The active trace context as W3C fields; empty when nothing is traced. */
export function currentTraceContext(): TraceCarrier {
  const carrier: TraceCarrier = {};
  if (tracingOn()) propagation.inject(context.active(), carrier);
  return carrier;
}

const contextOf = (carrier: TraceCarrier | undefined) =>
  carrier?.traceparent ? propagation.extract(ROOT_CONTEXT, carrier) : undefined;

function linkTo(carrier: TraceCarrier): Link | undefined {
  const spanContext = trace.getSpanContext(contextOf(carrier) ?? ROOT_CONTEXT);
  return spanContext ? { context: spanContext } : undefined;
}

/** Links to the contexts the carriers name (a batch call serves messages of several traces). */
export function linksTo(carriers: readonly (TraceCarrier | undefined)[]): Link[] {
  return carriers.flatMap((carrier) => (carrier ? (linkTo(carrier) ?? []) : []));
}

/**
 * The creation context of one message: a PRODUCER span `create <destination>`
 * whose parent is `origin` (the request that accepted the order, when the
 * relay publishes it later) or else the active context, returned as the
 * fields to send with the message.
 */
export function messageCreation(destination: string, attributes: Attributes, origin?: TraceCarrier): TraceCarrier {
  if (!tracingOn()) return {};
  const parent = contextOf(origin) ?? context.active();
  const span = tracerOf().startSpan(
    `create ${destination}`,
    { kind: SpanKind.PRODUCER, attributes: { 'messaging.operation.type': 'create', 'messaging.operation.name': 'create', ...attributes } },
    parent,
  );
  span.end();
  const carrier: TraceCarrier = {};
  propagation.inject(trace.setSpan(parent, span), carrier);
  return carrier;
}

/** Only the propagated fields, as SNS/SQS message attributes. */
export function messageAttributesOf(carrier: TraceCarrier): Record<string, { DataType: 'String'; StringValue: string }> {
  const attributes: Record<string, { DataType: 'String'; StringValue: string }> = {};
  for (const field of PROPAGATED) {
    const value = carrier[field];
    if (value) attributes[field] = { DataType: 'String', StringValue: value };
  }
  return attributes;
}

/** The propagated fields of received message attributes (SQS: StringValue; an SNS envelope: Value). */
export function carrierOf(attributes: Record<string, { StringValue?: string; Value?: string }> | undefined): TraceCarrier | undefined {
  if (!attributes?.traceparent) return undefined;
  const carrier: TraceCarrier = {};
  for (const field of PROPAGATED) {
    const value = attributes[field]?.StringValue ?? attributes[field]?.Value;
    if (value) carrier[field] = value;
  }
  return carrier;
}

export type SpanOptions = {
  kind?: SpanKind;
  attributes?: Attributes;
  links?: Link[];
  /** Spans begun after the fact (a receive that turned out to bring something) say when it started. */
  startTime?: number;
  /** The context the span continues (a message's creation context); default the active one. */
  parent?: TraceCarrier;
};

/**
 * Runs `work` inside a span that ends with it (ERROR with the exception when
 * it throws). Without tracing, runs `work` alone.
 */
export async function inSpan<T>(name: string, options: SpanOptions, work: (span: Span | undefined) => Promise<T>): Promise<T> {
  if (!tracingOn()) return work(undefined);
  const parent = contextOf(options.parent) ?? context.active();
  const span = tracerOf().startSpan(
    name,
    {
      kind: options.kind ?? SpanKind.INTERNAL,
      ...(options.attributes ? { attributes: options.attributes } : {}),
      ...(options.links ? { links: options.links } : {}),
      ...(options.startTime ? { startTime: options.startTime } : {}),
    },
    parent,
  );
  return withSpan(span, parent, () => work(span));
}

export { SpanKind };
