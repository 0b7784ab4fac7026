import Fastify from 'fastify';

// The ceiling: the least a Fastify 5 process can do per request (one GET
// route, a constant small JSON, no logging, no hooks), in its own process
// like the API, under the same load generator. Every scenario's requests
// per second are reported as a ratio to this, measured in the same run.

const app = Fastify({ logger: false });
app.get('/', async () => ({ hello: 'world' }));

const port = Number(process.env.PORT ?? 0);
await app.listen({ port, host: '127.0.0.1' });

const stop = () => void app.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// Started by bench/run.ts with an IPC channel: never outlive it.
process.on('disconnect', () => process.exit(0));
