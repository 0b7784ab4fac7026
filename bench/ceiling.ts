import Fastify from 'fastify';

// The ceiling: the least a Fastify 5 process can do per request (one GET
// route, a constant small JSON, no logging, no hooks), in its own process
// like the API, under the same load generator. Every scenario's requests
// per second are reported as a ratio to this, measured in the same run.
//
// GET /same answers what get-hot answers (its headers and its 1 KiB body,
// captured from a real answer of the API and handed over with POST /same by
// the orchestrator, so that they cannot drift): bare Fastify writing the
// same bytes, the reference for what get-hot can reach (ceiling-same-response).
//
// IMPORTS (bench/process-spread.ts; none in make bench): modules to import
// first, comma-separated, relative to this file or packages.

for (const name of (process.env.IMPORTS ?? '').split(',').filter(Boolean)) {
  await import(name.startsWith('.') ? new URL(name, import.meta.url).href : name);
}
const app = Fastify({ logger: false });
app.get('/', async () => ({ hello: 'world' }));

let same: { headers: Record<string, string>; body: Buffer } | undefined;
app.post<{ Body: { headers: Record<string, string>; body: string } }>('/same', async (request) => {
  same = { headers: request.body.headers, body: Buffer.from(request.body.body, 'base64') };
  return { ok: true };
});
app.get('/same', (_request, reply) => {
  if (!same) return reply.code(503).send();
  return reply.headers(same.headers).send(same.body);
});

const port = Number(process.env.PORT ?? 0);
await app.listen({ port, host: '127.0.0.1' });

const stop = () => void app.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// Started by bench/run.ts with an IPC channel: never outlive it.
process.on('disconnect', () => process.exit(0));
