import { createHash } from 'node:crypto';
import Fastify, { type FastifyServerOptions } from 'fastify';
import { serverOptions } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { representationOf } from '../src/documents/representation.ts';
import { CACHE_NAME } from '../src/documents/routes.ts';
import { DocumentParams, type DocumentMetadata } from '../src/documents/schemas.ts';
import { conventionServerOptions } from '../src/http/conventions.ts';
import { SECURITY_HEADERS } from '../src/http/security-headers.ts';
import type { Step } from './fastify-ladder.ts';

// One rung of bench/fastify-ladder.ts: bare Fastify answering get-hot's
// headers and 1 KiB body, with the things every production service of ours
// adds to a request that LADDER_STEPS names (comma-separated). Each is the
// service's own piece where it has one, or what Fastify does once it is
// there.

const steps = new Set((process.env.LADDER_STEPS ?? '').split(',').filter(Boolean));
const has = (name: Step) => steps.has(name);

// What a cached 1 KiB read answers besides the conventions' headers, from the service's own pieces (routes.ts).
const body = Buffer.alloc(1024, 'x');
const metadata: DocumentMetadata = {
  id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b', // any valid id: the route reads none
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
if (has('request id')) {
  const { genReqId, requestIdHeader } = conventionServerOptions;
  Object.assign(options, { genReqId, requestIdHeader });
}
if (has('logger')) {
  // The API's: JSON at warn, the per-request child made only when a request logs, Fastify's two lines per request off.
  const { logger, childLoggerFactory, logController } = serverOptions(loadConfig({ LOG_LEVEL: 'warn' }));
  Object.assign(options, { logger, childLoggerFactory, logController });
}
const app = Fastify(options);

app.get('/', async () => ({ hello: 'world' }));
if (has('onRequest hook')) {
  app.addHook('onRequest', (request, reply, done) => {
    reply.headers(SECURITY_HEADERS);
    reply.header('x-request-id', request.id);
    done();
  });
}
if (has('onResponse hook')) app.addHook('onResponse', (_request, _reply, done) => done());

app.route({
  method: ['GET', 'HEAD'],
  url: '/documents/:id',
  ...(has('param schema') ? { schema: { params: DocumentParams } } : {}),
  handler: (request, reply) => {
    if (!has('onRequest hook')) reply.headers(SECURITY_HEADERS).header('x-request-id', request.id);
    return reply.headers(documentHeaders).send(body);
  },
});

await app.listen({ port: 0, host: '127.0.0.1' });
const address = app.server.address();
process.send?.({ port: typeof address === 'object' && address ? address.port : 0, documentPath: `/documents/${metadata.id}` });
// Started by bench/fastify-ladder.ts with an IPC channel: never outlive it.
process.on('disconnect', () => process.exit(0));
