import { createServer } from 'node:http';

// An OTLP/HTTP endpoint that accepts every export and throws it away, so
// that the tracing scenarios pay for making and sending spans, not for a
// collector. A process of its own: its CPU is nobody's in the table.
let exports = 0;
createServer((request, response) => {
  request.resume();
  request.on('end', () => {
    if (request.method === 'POST') exports += 1;
    response.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
  });
}).listen(Number(process.env.PORT), '127.0.0.1');
process.on('SIGTERM', () => {
  console.error(`[otlp-sink] ${exports} exports received`);
  process.exit(0);
});
