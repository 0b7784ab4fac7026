import { request as httpRequest, type OutgoingHttpHeaders } from 'node:http';

/**
 * A POST /documents whose body arrives in two halves, so that it is in flight
 * when the test wants it to be (a shutdown signal, say). `sent` resolves once
 * the first half is handed to the kernel; `finish` sends the rest.
 */
export function slowPost(port: number, body: Buffer, headers: OutgoingHttpHeaders = {}) {
  const req = httpRequest({
    host: '127.0.0.1',
    port,
    method: 'POST',
    path: '/documents',
    headers: { 'content-type': 'application/octet-stream', 'content-length': body.length, connection: 'close', ...headers },
  });
  const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
    req.on('response', (res) => {
      let text = '';
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
  });
  const sent = new Promise<void>((resolve) => req.write(body.subarray(0, body.length / 2), () => resolve()));
  return { sent, finish: () => req.end(body.subarray(body.length / 2)), answer };
}
