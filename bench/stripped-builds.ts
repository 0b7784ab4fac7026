import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

// `node bench/stripped-builds.ts`: copies of dist/ with parts of the hot
// path taken out, for BENCH_API_ENTRY / BENCH_API_ENTRY_B: how much of
// get-hot's CPU each part costs (bench/README.md, "Third round"). They are
// measurements, not proposals: each drops something the service needs.
//
//   .scratch/dist-deadline   no request-deadline hooks
//   .scratch/dist-shedding   no load shedding (under-pressure, the in-flight cap)
//   .scratch/dist-metrics    no metrics hook (latency histogram, access log)
//   .scratch/dist-hooks      none of these three
//   .scratch/dist-stripped   that, and the conventions' header rules and socket
//                            note, a constant request id, no schema on the read
//                            route, and the cached read's headers set as one
//                            object kept per document
//   .scratch/dist-no-schema  the read route without its schema (its id and
//                            headers not validated)
//   .scratch/dist-no-sdk     the OpenTelemetry SDK and @fastify/otel not
//                            imported (tracing cannot start): what loading
//                            them costs a request when tracing is off
//
// Run `make build` first; each edit must find its text, or the script fails.

type Edit = { file: string; from: string; to: string };

const deadline: Edit[] = ['preParsing', 'onSend', 'onResponse'].map((hook) => ({
  file: 'http/request-deadline.js',
  from: `app.addHook('${hook}'`,
  to: `(() => {})('${hook}'`,
}));
const shedding: Edit[] = [
  { file: 'http/load-shedding.js', from: "app.addHook('onRequest'", to: "(() => {})('onRequest'" },
  { file: 'http/load-shedding.js', from: 'await app.register(underPressure,', to: 'await app.register(async () => {},' },
  { file: 'http/load-shedding.js', from: 'app.memoryUsage().eventLoopDelay', to: '0' },
];
const metrics: Edit[] = [{ file: 'http/metrics.js', from: "app.addHook('onResponse'", to: "(() => {})('onResponse'" }];
const hooks = [...deadline, ...shedding, ...metrics];

const noSchema: Edit[] = [{ file: 'documents/routes.js', from: '        schema: getSchema,\n        handler:', to: '        handler:' }];
const stripped: Edit[] = [
  ...hooks,
  {
    file: 'http/conventions.js',
    from: "noteAnswer(request.raw.socket, reply.raw);\n        const error = headerError(request.raw.rawHeaders, request.raw.httpVersion === '1.1') ?? (request.is404 ? unroutedError(app, request) : undefined);",
    to: 'const error = undefined;',
  },
  { file: 'http/request-id.js', from: 'randomUUID()', to: "'00000000-0000-4000-8000-000000000000'" },
  ...noSchema,
  {
    file: 'documents/routes.js',
    from: "                return sendWhole(request, reply, hot, 'hit');",
    to:
      '                { let headers = ONCE.get(hot.metadata); if (!headers) ONCE.set(hot.metadata, (headers = { ...representationOf(hot.metadata).headers, ' +
      "'cache-status': 'docsvc; hit', 'content-type': hot.metadata.contentType, 'content-length': hot.metadata.size })); return reply.headers(headers).send(hot.content); }",
  },
  { file: 'documents/routes.js', from: 'const invalidId', to: 'const ONCE = new WeakMap();\nconst invalidId' },
];

const sdkImports = [
  "import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';",
  "import { W3CTraceContextPropagator } from '@opentelemetry/core';",
  "import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';",
  "import { resourceFromAttributes } from '@opentelemetry/resources';",
  "import { AlwaysOffSampler, AlwaysOnSampler, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler, TracerProvider, } from '@opentelemetry/sdk-trace';",
];
const noSdk: Edit[] = [
  ...sdkImports.map((line) => ({ file: 'telemetry/tracing.js', from: line, to: '' })),
  { file: 'telemetry/tracing.js', from: 'export function startTracing(config, defaultServiceName) {', to: 'export function startTracing() {\n    return undefined;' },
  { file: 'telemetry/http-spans.js', from: "import { FastifyOtelInstrumentation } from '@fastify/otel';", to: '' },
];

const builds = { deadline, shedding, metrics, hooks, stripped, 'no-schema': noSchema, 'no-sdk': noSdk };
for (const [name, edits] of Object.entries(builds)) {
  const dir = `.scratch/dist-${name}`;
  rmSync(dir, { recursive: true, force: true });
  cpSync('dist', dir, { recursive: true });
  for (const { file, from, to } of edits) {
    const path = `${dir}/${file}`;
    const text = readFileSync(path, 'utf8');
    if (!text.includes(from)) throw new Error(`${path} no longer has ${JSON.stringify(from.slice(0, 60))}: update bench/stripped-builds.ts`);
    writeFileSync(path, text.replace(from, to));
  }
  console.log(`${dir}/processes/api.js`);
}
