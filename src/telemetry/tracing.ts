import { SpanStatusCode, context, propagation, trace, type Context, type Span, type Tracer } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  TracerProvider,
  type Sampler,
} from '@opentelemetry/sdk-trace';
import type { Config } from '../config.ts';

/**
 * OpenTelemetry tracing, started explicitly by each entry point. Every
 * setting comes from Config (the standard OTEL_* variables, declared in
 * config.ts) and is handed to the SDK here; nothing is patched at import
 * time, so the instrumentation is a few explicit hooks (Fastify, the AWS
 * clients, Redis, the lean DynamoDB client, the order events) that each ask
 * `tracingOn()` once, when their client is built. Without an endpoint no SDK
 * is started and those hooks install nothing.
 */

let provider: TracerProvider | undefined;
let tracer: Tracer | undefined;

export type Tracing = { serviceName: string; shutdown(): Promise<void> };

/** Whether this process records spans; false unless startTracing() ran with an endpoint. */
export function tracingOn(): boolean {
  return provider !== undefined;
}

/** The tracer of the service's own spans; only called where tracingOn() holds. */
export function tracerOf(): Tracer {
  tracer ??= trace.getTracer('docsvc');
  return tracer;
}

/** `key=value,key=value` (OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_HEADERS), values percent-decoded. */
export function keyValues(text: string | undefined): Record<string, string> {
  const pairs: Record<string, string> = {};
  for (const pair of text ? text.split(',') : []) {
    const eq = pair.indexOf('=');
    pairs[decodeURIComponent(pair.slice(0, eq).trim())] = decodeURIComponent(pair.slice(eq + 1).trim());
  }
  return pairs;
}

export function samplerOf(config: Config): Sampler {
  const ratio = new TraceIdRatioBasedSampler(config.OTEL_TRACES_SAMPLER_ARG);
  switch (config.OTEL_TRACES_SAMPLER) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return ratio;
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: ratio });
    default:
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}

export function tracesEndpoint(config: Config): string | undefined {
  if (config.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return config.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  const base = config.OTEL_EXPORTER_OTLP_ENDPOINT;
  return base ? `${base.replace(/\/+$/, '')}/v1/traces` : undefined;
}

/**
 * Starts the SDK for this process when an endpoint is configured: the W3C
 * trace-context propagator, the AsyncLocalStorage context manager, and a
 * batching OTLP/HTTP (protobuf) exporter. Returns undefined, having started
 * nothing, when tracing is off.
 */
export function startTracing(config: Config, defaultServiceName: string): Tracing | undefined {
  const url = tracesEndpoint(config);
  if (!url || config.OTEL_SDK_DISABLED || provider) return undefined;
  const serviceName = config.OTEL_SERVICE_NAME ?? defaultServiceName;
  const exporter = new OTLPTraceExporter({
    url,
    headers: keyValues(config.OTEL_EXPORTER_OTLP_HEADERS),
    timeoutMillis: config.OTEL_EXPORTER_OTLP_TIMEOUT,
  });
  const started = new TracerProvider({
    resource: resourceFromAttributes({ ...keyValues(config.OTEL_RESOURCE_ATTRIBUTES), 'service.name': serviceName }),
    sampler: samplerOf(config),
    spanProcessors: [new BatchSpanProcessor({ exporter, scheduledDelayMillis: config.OTEL_BSP_SCHEDULE_DELAY })],
  });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(started);
  provider = started;
  return {
    serviceName,
    // Exports what is still buffered; called once the process has stopped serving.
    shutdown: () => started.shutdown(),
  };
}

/**
 * Runs `work` with `span` active (a child of `parent`); the span ends with
 * it, in ERROR with the exception when it throws.
 */
export async function withSpan<T>(span: Span, parent: Context, work: () => Promise<T>): Promise<T> {
  try {
    return await context.with(trace.setSpan(parent, span), work);
  } catch (error) {
    const failure = error instanceof Error ? error : new Error(String(error));
    span.recordException(failure);
    span.setStatus({ code: SpanStatusCode.ERROR, message: failure.message });
    throw error;
  } finally {
    span.end();
  }
}

/** pino mixin: trace_id and span_id on every line written while a span is active. */
export function traceLogFields(): Record<string, string> {
  const span = trace.getSpan(context.active());
  if (!span) return {};
  const { traceId, spanId } = span.spanContext();
  return { trace_id: traceId, span_id: spanId };
}

/** The logger options that add trace ids to log lines, when tracing is on. */
export function tracingLoggerOptions(): { mixin?: () => Record<string, string> } {
  return tracingOn() ? { mixin: traceLogFields } : {};
}
