import fp from 'fastify-plugin';

// Headers every answer of an API should carry: no MIME sniffing of stored
// documents (they are served with the client's own Content-Type), no
// framing, no referrer leaks. A JSON API needs no more of helmet than this.
const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
};

/**
 * X-Request-Id and the security headers, set once when the request arrives,
 * so that every answer carries them, errors included. A callback hook: this
 * runs on every request, and a promise per request is measurable at the top.
 */
export const responseHeadersPlugin = fp(
  async (app) => {
    app.addHook('onRequest', (request, reply, done) => {
      reply.headers(SECURITY_HEADERS);
      reply.header('x-request-id', request.id);
      done();
    });
  },
  { name: 'response-headers', fastify: '5.x' },
);
