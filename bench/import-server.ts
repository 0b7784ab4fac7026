import Fastify from 'fastify';

// bench/process-spread.ts's server: the ceiling's bare Fastify (bench/ceiling.ts's `GET /`)
// after importing the modules IMPORTS names (comma-separated, relative to this file or packages).

for (const name of (process.env.IMPORTS ?? '').split(',').filter(Boolean)) {
  await import(name.startsWith('.') ? new URL(name, import.meta.url).href : name);
}
const app = Fastify({ logger: false });
app.get('/', async () => ({ hello: 'world' }));
await app.listen({ port: 0, host: '127.0.0.1' });
const address = app.server.address();
process.send?.({ port: typeof address === 'object' && address ? address.port : 0 });
// Started by bench/process-spread.ts with an IPC channel: never outlive it.
process.on('disconnect', () => process.exit(0));
