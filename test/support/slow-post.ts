import { request as httpRequest, type OutgoingHttpHeaders } from 'node:http';

/**
 * A POST /documents whose body arrives in two halves, so that it is in
 * flight when the test wants it to be (a shutdown signal, say).
 * `Expect: 100-continue` makes the server say when it has the request
 * (headers parsed, handler started): `started` resolves then, once the first
 * half is on its way; `finish` sends the rest.
 */
export function slowPost(port: number, body: Buffer, headers: OutgoingHttpHeaders = {}) {
  const req = httpRequest({
    host: '127.0.0.1',
    port,
    method: 'POST',
    path: '/documents',
    headers: { 'content-type': 'application/octet-stream', 'content-length': body.length, connection: 'close', expect: '100-continue', ...headers },
  });
  const started = new Promise<void>((resolve) =>
    req.once('continue', () => {
      req.write(body.subarray(0, body.length / 2));
      resolve();
    }),
  );
  const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
    req.on('response', (res) => {
      let text = '';
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
  });
  req.flushHeaders();
  return { started, finish: () => req.end(body.subarray(body.length / 2)), answer };
}
