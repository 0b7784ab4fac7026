import Fastify, { LogController, type FastifyServerOptions } from 'fastify';
import pino from 'pino';
import { DocumentParams } from '../src/documents/schemas.ts';
import { requestIdOf } from '../src/http/request-id.ts';
import { lazyRequestLogger } from '../src/http/request-logger.ts';
import { SECURITY_HEADERS } from '../src/http/security-headers.ts';

// One rung of bench/fastify-ladder.ts: bare Fastify answering get-hot's
// headers and 1 KiB body, with the first LADDER_STEP of the things every
// production service of ours adds to a request (STEPS, in order). Each is
// the service's own piece where it has one, or what Fastify does once it is
// there.

export const STEPS = ['request id', 'onRequest hook', 'onResponse hook', 'logger', 'param schema'] as const;

const step = Number(process.env.LADDER_STEP ?? 0);
const has = (name: (typeof STEPS)[number]) => STEPS.indexOf(name) < step;

// What a cached read answers besides the conventions' headers (representation.ts, routes.ts).
const DOCUMENT_HEADERS = {
  etag: '"sha256-q83vq83vq83vq83vq83vq83vq83vq83vq83vq83vq80"',
  'accept-ranges': 'bytes',
  'repr-digest': 'sha-256=:q83vq83vq83vq83vq83vq83vq83vq83vq83vq83vq80=:',
  'cache-control': 'private, max-age=31536000, immutable',
  'cache-status': 'docsvc; hit',
  'content-type': 'application/octet-stream',
  'content-length': '1024',
};
const body = Buffer.alloc(1024, 'x');

const options: FastifyServerOptions = { logger: false };
if (has('request id')) Object.assign(options, { genReqId: requestIdOf, requestIdHeader: false });
if (has('logger')) {
  // The API's: JSON at warn, the per-request child made only when a request logs, Fastify's two lines per request off.
  Object.assign(options, {
    logger: undefined,
    loggerInstance: pino({ level: 'warn' }),
    childLoggerFactory: lazyRequestLogger,
    logController: new LogController({ requestIdLogLabel: 'requestId', disableRequestLogging: true }),
  });
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
    return reply.headers(DOCUMENT_HEADERS).send(body);
  },
});

await app.listen({ port: 0, host: '127.0.0.1' });
const address = app.server.address();
process.send?.({ port: typeof address === 'object' && address ? address.port : 0 });
// Started by bench/fastify-ladder.ts with an IPC channel: never outlive it.
process.on('disconnect', () => process.exit(0));
