import { describe, expect, it } from 'vitest';
import { S3Client } from '@aws-sdk/client-s3';
import { Redis } from 'ioredis';
import { buildApp } from '../../src/app.ts';
import { configFor } from '../support/config.ts';
import { traceAwsCalls } from '../../src/telemetry/aws-spans.ts';
import { currentTraceContext, messageCreation } from '../../src/telemetry/message-spans.ts';
import { traceRedisCommands } from '../../src/telemetry/redis-spans.ts';
import { keyValues, samplerOf, startTracing, tracesEndpoint, tracingLoggerOptions, tracingOn } from '../../src/telemetry/tracing.ts';

// What the OTEL_* variables mean, and that without an endpoint nothing is
// started or installed (the test process never starts the SDK).
describe('tracing configuration', () => {
  it('sends traces to <endpoint>/v1/traces, or to the traces endpoint as given', () => {
    expect(tracesEndpoint(configFor())).toBeUndefined();
    expect(tracesEndpoint(configFor({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' }))).toBe('http://collector:4318/v1/traces');
    expect(
      tracesEndpoint(configFor({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://b/traces' })),
    ).toBe('https://b/traces');
  });

  it('builds the sampler the variables name', () => {
    expect(samplerOf(configFor()).toString()).toMatch(/^ParentBased\{root=AlwaysOnSampler/);
    expect(samplerOf(configFor({ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: 0.01 })).toString()).toMatch(
      /^ParentBased\{root=TraceIdRatioBased\{0.01\}/,
    );
    expect(samplerOf(configFor({ OTEL_TRACES_SAMPLER: 'always_off' })).toString()).toBe('AlwaysOffSampler');
    expect(() => configFor({ OTEL_TRACES_SAMPLER: 'sometimes' })).toThrow(/OTEL_TRACES_SAMPLER: must be one of/);
    expect(() => configFor({ OTEL_TRACES_SAMPLER_ARG: 2 })).toThrow(/OTEL_TRACES_SAMPLER_ARG/);
    expect(() => configFor({ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toThrow(/must be one of http\/protobuf/);
  });

  it('reads key=value lists as the specification writes them (percent-encoded values)', () => {
    expect(keyValues('deployment.environment.name=prod,team=a%2Cb')).toEqual({ 'deployment.environment.name': 'prod', team: 'a,b' });
    expect(keyValues(undefined)).toEqual({});
  });
});

describe('tracing off (no endpoint)', () => {
  it('starts no SDK, even when asked, and OTEL_SDK_DISABLED wins over an endpoint', () => {
    expect(startTracing(configFor(), 'docsvc-api')).toBeUndefined();
    expect(startTracing(configFor({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9', OTEL_SDK_DISABLED: true }), 'docsvc-api')).toBeUndefined();
    expect(tracingOn()).toBe(false);
  });

  it('installs nothing: no span middleware, no Redis wrapper, no log mixin, no request instrumentation', async () => {
    const s3 = new S3Client({ region: 'us-east-1' });
    const before = s3.middlewareStack.identify();
    traceAwsCalls(s3, 'S3');
    expect(s3.middlewareStack.identify()).toEqual(before);
    s3.destroy();

    const redis = new Redis({ lazyConnect: true });
    const send = redis.sendCommand;
    traceRedisCommands(redis);
    expect(redis.sendCommand).toBe(send);
    redis.disconnect();

    expect(tracingLoggerOptions()).toEqual({});
    expect(currentTraceContext()).toEqual({});
    expect(messageCreation('order-events', {}, { traceparent: `00-${'1'.repeat(32)}-${'2'.repeat(16)}-01` })).toEqual({});

    const app = await buildApp({ config: configFor({ LOG_LEVEL: 'silent' }) });
    await app.ready();
    expect(app.hasPlugin('@fastify/otel')).toBe(false);
    expect(app.hasPlugin('http-tracing')).toBe(true);
    await app.close();
  });
});
