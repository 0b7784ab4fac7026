import { createHash } from 'node:crypto';
import Fastify, { type FastifySchema, type FastifyServerOptions } from 'fastify';
import { CACHE_NAME, representationOf } from '../src/documents/representation.ts';
import type { Config } from '../src/config.ts';
import type { DocumentMetadata } from '../src/documents/schemas.ts';
import { requestIdOf } from '../src/http/request-id.ts';
import { SECURITY_HEADERS } from '../src/http/security-headers.ts';
import type { Step } from './fastify-ladder.ts';

// One rung of bench/fastify-ladder.ts: bare Fastify answering get-hot's
// headers and 1 KiB body, with the things every production service of ours
// adds to a request that LADDER_STEPS names (comma-separated). Each is the
// service's own piece where it has one, or what Fastify does once it is
// there. A rung loads only the modules of its steps: which modules a process
// has loaded changes what V8 makes of Node's and Fastify's request path
// (the 'service modules' step, bench/README.md "Fourth round").

const steps = new Set((process.env.LADDER_STEPS ?? '').split(',').filter(Boolean));
const has = (name: Step) => steps.has(name);

// The whole module graph of the API, loaded and not used.
if (has('service modules')) await import('../src/app.ts');

// What a cached 1 KiB read answers besides the conventions' headers, from the service's own pieces (routes.ts).
const body = Buffer.alloc(1024, 'x');
const metadata: DocumentMetadata = {
  id: 'unused', // no header depends on it, and the route answers any valid id
  status: 'ACTIVE',
  contentType: 'application/octet-stream',
  size: body.length,
  checksum: createHash('sha256').update(body).digest('hex'),
  createdAt: new Date().toISOString(),
};
const documentHeaders = {
  ...representationOf(metadata).headers,
  'cache-status': `${CACHE_NAME}; hit`,
  'content-type': metadata.contentType,
  'content-length': String(metadata.size),
};

const options: FastifyServerOptions = { logger: false };
// conventionServerOptions' request id.
if (has('request id')) Object.assign(options, { genReqId: requestIdOf, requestIdHeader: false });
// The service's defaults, loaded by the rungs that use them only.
let defaults: Config | undefined;
async function configOf(): Promise<Config> {
  defaults ??= (await import('../src/config.ts')).loadConfig({ LOG_LEVEL: 'warn' });
  return defaults;
}
if (has('logger')) {
  // The API's: JSON at warn, the per-request child made only when a request logs, Fastify's two lines per request off.
  const { serverOptions } = await import('../src/app.ts');
  const { logger, childLoggerFactory, logController } = serverOptions(await configOf());
  Object.assign(options, { logger, childLoggerFactory, logController });
}
// From here on the service's own plumbing, each in place of what stood in for it above.
if (has('server options')) Object.assign(options, (await import('../src/app.ts')).serverOptions(await configOf()));
const app = Fastify(options);
if (has('conventions')) await app.register((await import('../src/http/conventions.ts')).conventionsPlugin);
if (has('request deadline')) {
  const { headTimeoutOf, requestDeadlinePlugin } = await import('../src/http/request-deadline.ts');
  const { REQUEST_TIMEOUT_MS } = await configOf();
  await app.register(requestDeadlinePlugin, { bodyTimeoutMs: REQUEST_TIMEOUT_MS - headTimeoutOf(REQUEST_TIMEOUT_MS) });
}
if (has('metrics')) await app.register((await import('../src/http/metrics.ts')).metricsPlugin, {});
if (has('load shedding')) {
  const config = await configOf();
  await app.register((await import('../src/http/load-shedding.ts')).loadSheddingPlugin, {
    maxEventLoopDelayMs: config.LOAD_SHED_EVENT_LOOP_DELAY_MS,
    maxEventLoopUtilization: config.LOAD_SHED_EVENT_LOOP_UTILIZATION,
    maxInFlight: config.MAX_IN_FLIGHT_REQUESTS,
  });
}

app.get('/', async () => ({ hello: 'world' }));
if (has('onRequest hook') && !has('conventions')) {
  app.addHook('onRequest', (request, reply, done) => {
    reply.headers(SECURITY_HEADERS);
    reply.header('x-request-id', request.id);
    done();
  });
}
if (has('onResponse hook') && !has('metrics')) app.addHook('onResponse', (_request, _reply, done) => done());

// The read route's whole schema (params, headers, answers, with the problem schema they refer to), or its param alone.
let schema: FastifySchema | undefined;
// Decided once, not on every request the rung is measured by.
const conventionsInHandler = !has('onRequest hook');
if (has('read schema')) {
  app.addSchema((await import('../src/http/schemas.ts')).Problem);
  schema = (await import('../src/documents/routes.ts')).getSchema;
} else if (has('param schema')) {
  schema = { params: (await import('../src/documents/schemas.ts')).DocumentParams };
}
app.route({
  method: ['GET', 'HEAD'],
  url: '/documents/:id',
  ...(schema ? { schema } : {}),
  handler: (request, reply) => {
    if (conventionsInHandler) reply.headers(SECURITY_HEADERS).header('x-request-id', request.id);
    return reply.headers(documentHeaders).send(body);
  },
});

await app.listen({ port: Number(process.env.PORT ?? 0), host: '127.0.0.1' });
// Started by bench/fastify-ladder.ts with an IPC channel: never outlive it.
process.on('disconnect', () => process.exit(0));
