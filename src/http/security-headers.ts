import fp from 'fastify-plugin';

// What an API that serves client-supplied bytes must say on every answer: no
// MIME sniffing (documents keep the client's own Content-Type), and a policy
// under which a stored HTML document runs nothing and cannot be framed
// (frame-ancestors supersedes X-Frame-Options). Nothing here is rendered for
// a person, so helmet's other headers would only add bytes to every answer.
export const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'; sandbox",
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
